//! twig-bench's pieces: `scan` (what the server sends) -> `conn` (one blocking connection) ->
//! `pubsub` / `reqrep` (the modes) -> `report` (one JSON line per run).
//!
//! No async runtime and no client library: std threads, blocking sockets with short timeouts,
//! and pre-built protocol bytes, so the bench spends as little CPU as it can on the same cores
//! as the server it measures.

pub mod conn;
pub mod jspub;
pub mod pubsub;
pub mod report;
pub mod reqrep;
pub mod scan;
pub mod storm;

use std::time::Duration;

/// Everything a run needs, from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// `HOST:PORT` of the server (a `nats://` prefix is accepted and dropped).
    pub url: String,
    /// Payload size in bytes.
    pub size: usize,
    /// Messages to publish (requests to make, for `reqrep`).
    pub msgs: u64,
    /// Hard limit on the whole run.
    pub limit: Duration,
    /// Subscribers for `pubsub`.
    pub subs: usize,
    /// Subject to publish on.
    pub subject: String,
    /// `pubsub`: what the subscribers subscribe to (default `subject`).
    pub sub_subject: Option<String>,
    /// Requests made before latencies are recorded (`reqrep`).
    pub warmup: u64,
    /// Bytes the publisher writes per `write` call (whole PUB frames).
    pub batch: usize,
    /// Subscribers give up after this long without a new message once publishing is done.
    pub idle: Duration,
    /// `jspub`: publishes awaiting their PubAck at most.
    pub inflight: u64,
    /// `pubsub`: subscribers connect here instead of `url` (e.g. a hub, with the publisher on
    /// its leaf). The interest must then cross servers before the run starts: see
    /// [`Options::probe_subject`].
    pub sub_url: Option<String>,
    /// `pubsub`: subscriptions per subscriber connection, all on the same subject (a fan-out
    /// of `subs * sids` deliveries per message; sids 1..=sids).
    pub sids: usize,
    /// `connect`: clients connecting at once (the rest in turn on their threads).
    pub parallel: usize,
    /// `jspub`: what each message carries.
    pub payload: PayloadKind,
}

/// Payloads of `jspub`: the same bytes every time, or different per message (what a link's
/// compression then meets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// `size` printable bytes, the same for every message.
    Fixed,
    /// A JSON sensor reading of about 120 bytes, values varying per message.
    Json,
    /// `size` random bytes per message.
    Random,
}

/// splitmix64 of `x`: deterministic per-message randomness.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Message `i`'s payload for `kind` (`size` bytes for fixed and random ones).
pub fn payload_of(kind: PayloadKind, size: usize, i: u64, out: &mut Vec<u8>) {
    out.clear();
    match kind {
        PayloadKind::Fixed => out.extend((b'a'..=b'z').cycle().take(size)),
        PayloadKind::Random => {
            let mut x = i.wrapping_mul(0x2545_F491_4F6C_DD1D);
            while out.len() < size {
                x = mix(x);
                out.extend_from_slice(&x.to_le_bytes());
            }
            out.truncate(size);
        }
        PayloadKind::Json => {
            // 48 sensors on 6 sites reporting in turn, values drifting around a mean.
            let r = mix(i);
            let sensor = i % 48;
            let temp = 180 + (r % 90) as i64 + (sensor as i64 % 7) * 10;
            let rh = 300 + (r >> 8) % 400;
            let batt = 340 + (r >> 20) % 80;
            let ts = 1_764_620_000_000u64 + i * 250 + (r >> 40) % 50;
            let s = format!(
                "{{\"site\":\"plant-{}\",\"sensor\":\"th-{:02}\",\"seq\":{i},\"ts\":{ts},\
                 \"temp_c\":{}.{:02},\"rh_pct\":{}.{},\"batt_v\":{}.{:02},\"ok\":{}}}",
                sensor / 8,
                sensor,
                temp / 10,
                (r >> 4) % 100,
                rh / 10,
                rh % 10,
                batt / 100,
                batt % 100,
                (r >> 60) != 0
            );
            out.extend_from_slice(s.as_bytes());
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            url: "127.0.0.1:4222".into(),
            size: 128,
            msgs: 100_000,
            limit: Duration::from_secs(30),
            subs: 1,
            subject: "twig.bench".into(),
            sub_subject: None,
            warmup: 100,
            batch: 64 * 1024,
            idle: Duration::from_secs(2),
            inflight: 256,
            sub_url: None,
            sids: 1,
            parallel: 1000,
            payload: PayloadKind::Fixed,
        }
    }
}

impl Options {
    /// The subscribers' address (`sub_url`, else `url`).
    pub fn sub_addr(&self) -> &str {
        let u = self.sub_url.as_deref().unwrap_or(&self.url);
        u.strip_prefix("nats://").unwrap_or(u)
    }

    /// With subscribers on another server, each also subscribes this subject (after the
    /// measured one) and the publisher sends probes to it until every subscriber got one:
    /// interest crosses a link in order, so then the measured subject's interest has too.
    pub fn probe_subject(&self) -> Option<String> {
        self.sub_url
            .as_ref()
            .map(|_| format!("{}.ready", self.subject))
    }

    /// The address to connect to.
    pub fn addr(&self) -> &str {
        self.url.strip_prefix("nats://").unwrap_or(&self.url)
    }

    /// A payload of `size` printable bytes.
    pub fn payload(&self) -> Vec<u8> {
        (b'a'..=b'z').cycle().take(self.size).collect()
    }
}

/// `PUB <subject> [reply] <size>\r\n<payload>\r\n` appended to `out`.
pub fn pub_frame(out: &mut Vec<u8>, subject: &[u8], reply: Option<&[u8]>, payload: &[u8]) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject);
    out.push(b' ');
    if let Some(reply) = reply {
        out.extend_from_slice(reply);
        out.push(b' ');
    }
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_readings_are_about_120_bytes_and_differ() {
        let mut a = Vec::new();
        let mut sizes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            payload_of(PayloadKind::Json, 0, i, &mut a);
            serde_json::from_slice::<serde_json::Value>(&a).expect("JSON");
            sizes.push(a.len());
            seen.insert(a.clone());
        }
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!((110.0..=130.0).contains(&mean), "{mean}");
        assert_eq!(seen.len(), 1000);
        payload_of(PayloadKind::Random, 128, 7, &mut a);
        assert_eq!(a.len(), 128);
    }
}
