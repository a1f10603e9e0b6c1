//! The `/leafz` body (reference §5): nats-server's shape for the leafnode connections that
//! are up, plus a twig extension, `remotes`, with every configured remote whether up or not
//! (a gateway's operator wants to see why the uplink is down, not only that it is missing).
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::varz::rfc3339;

/// The `/leafz` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leafz {
    /// This server's id.
    pub server_id: String,
    /// When the snapshot was taken.
    #[serde(serialize_with = "rfc3339")]
    pub now: SystemTime,
    /// Leafnode connections that are up.
    pub leafnodes: usize,
    /// One entry per connection that is up.
    pub leafs: Vec<LeafInfo>,
    /// twig: every configured remote, up or down.
    pub remotes: Vec<RemoteInfo>,
}

/// One leafnode connection, as nats-server reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeafInfo {
    /// The hub's server name.
    pub name: String,
    /// twig is always the spoke (it solicits).
    pub is_spoke: bool,
    /// The hub account the credentials bound to.
    pub account: String,
    /// The hub's address.
    pub ip: String,
    /// The hub's leafnode port.
    pub port: u16,
    /// Last PING round trip, as a Go duration (`1.234ms`).
    pub rtt: String,
    /// Messages from the hub.
    pub in_msgs: u64,
    /// Messages to the hub.
    pub out_msgs: u64,
    /// Payload bytes from the hub.
    pub in_bytes: u64,
    /// Payload bytes to the hub.
    pub out_bytes: u64,
    /// Interest the hub advertised (its subscriptions on this connection).
    pub subscriptions: usize,
    /// Those subjects (with `?subs=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list: Option<Vec<String>>,
    /// Compression in use: the negotiated mode (`off`, `s2_uncompressed`, `s2_fast`,
    /// `s2_better`, `s2_best`), or `not supported` for a hub without it (2.9).
    pub compression: String,
}

/// twig's view of one configured remote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteInfo {
    /// The URL in use or last tried (`host:port`).
    pub url: String,
    /// Whether the link is up.
    pub connected: bool,
    /// Why the last attempt or connection ended (omitted while up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Connections established since start.
    pub connects: u64,
    /// Failed attempts since the link was last up.
    pub attempts: u64,
    /// Local subjects and queue groups advertised to the hub.
    pub local_interest: usize,
    /// Bytes queued for the hub.
    pub pending_bytes: usize,
    /// Messages dropped because the backlog to the hub was full.
    pub dropped_msgs: u64,
}

/// A duration as Go's `time.Duration.String()` writes it (`0s`, `512µs`, `1.5ms`, `2.25s`).
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let trim = |v: f64, unit: &str| {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}{unit}")
    };
    match nanos {
        0 => "0s".into(),
        1..=999 => format!("{nanos}ns"),
        1_000..=999_999 => trim(nanos as f64 / 1e3, "µs"),
        1_000_000..=999_999_999 => trim(nanos as f64 / 1e6, "ms"),
        _ => trim(d.as_secs_f64(), "s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(750)), "750ns");
        assert_eq!(go_duration(Duration::from_micros(512)), "512µs");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_millis(2250)), "2.25s");
    }
}
