//! `/varz` and `/healthz` bodies, and the value formats nats-server's monitoring uses:
//! RFC 3339 timestamps with trimmed nanoseconds, Go durations as integer nanoseconds,
//! `auth_timeout` as seconds, and uptimes like `1h2m3s`.
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use twig_config::Config;
use twig_router::stats::Stats;
use twig_util::clock::UtcTime;

/// nats-server's client protocol level (`PROTO`), reported in INFO and `/varz`.
pub const PROTO: u32 = 1;

/// The `/varz` body: the nats-server fields that apply to twig, in nats-server's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Varz {
    /// Server id (a server public nkey).
    pub server_id: String,
    /// Server name (the id unless configured).
    pub server_name: String,
    /// The nats-server version twig speaks ([`twig_util::version::NATS_SERVER`]).
    pub version: String,
    /// Client protocol level ([`PROTO`]).
    pub proto: u32,
    /// The commit twig was built from (omitted when the build did not know it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// Where nats-server names its Go version: the Rust compiler that built twig.
    pub go: String,
    /// twig's own version.
    pub twig_version: String,
    /// Client listen host.
    pub host: String,
    /// Client listen port (the bound one when random).
    pub port: u16,
    /// Clients must authenticate (omitted when false, as nats-server).
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// TLS on the client port (omitted when false).
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// Client certificates verified (omitted when false).
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// `max_connections`.
    pub max_connections: usize,
    /// `ping_interval`, as integer nanoseconds (Go `time.Duration`).
    #[serde(serialize_with = "nanos")]
    pub ping_interval: Duration,
    /// `ping_max`.
    pub ping_max: u32,
    /// Monitoring host.
    pub http_host: String,
    /// Monitoring port (the bound one when random).
    pub http_port: u16,
    /// Auth timeout in seconds (nats-server keeps it as a float of seconds).
    #[serde(serialize_with = "seconds")]
    pub auth_timeout: Duration,
    /// `max_control_line`.
    pub max_control_line: usize,
    /// `max_payload`.
    pub max_payload: usize,
    /// `max_pending`.
    pub max_pending: usize,
    /// TLS handshake timeout in seconds.
    #[serde(serialize_with = "seconds")]
    pub tls_timeout: Duration,
    /// `write_deadline`, as integer nanoseconds.
    #[serde(serialize_with = "nanos")]
    pub write_deadline: Duration,
    /// When the server started.
    #[serde(serialize_with = "rfc3339")]
    pub start: SystemTime,
    /// When this snapshot was taken.
    #[serde(serialize_with = "rfc3339")]
    pub now: SystemTime,
    /// `now - start` as nats-server writes it (`1h2m3s`).
    pub uptime: String,
    /// Resident memory in bytes.
    pub mem: u64,
    /// CPUs available to the process.
    pub cores: usize,
    /// Open client connections.
    pub connections: usize,
    /// Client connections accepted since start.
    pub total_connections: u64,
    /// Leafnode connections (uplinks) that are up.
    pub leafnodes: usize,
    /// Messages received from clients.
    pub in_msgs: u64,
    /// Payload bytes received.
    pub in_bytes: u64,
    /// Messages delivered.
    pub out_msgs: u64,
    /// Payload bytes delivered.
    pub out_bytes: u64,
    /// Connections closed as slow consumers.
    pub slow_consumers: u64,
    /// Connections closed as stale.
    pub stale_connections: u64,
    /// Failed logins since start (twig's own field).
    pub auth_failures: u64,
    /// Connections refused past `max_connections` since start (twig's own field).
    pub refused_connections: u64,
    /// Subscriptions in the server.
    pub subscriptions: u64,
}

impl Varz {
    /// A snapshot with the config's limits, the process figures (memory, cores, uptime) and
    /// zero counters; fill those from [`Varz::with_stats`] and the server's own state.
    /// `port`/`http_port` are the bound ports (they differ from the config when random).
    pub fn new(
        config: &Config,
        server_id: &str,
        port: u16,
        http_port: u16,
        start: SystemTime,
    ) -> Varz {
        let now = twig_util::clock::now();
        Varz {
            server_id: server_id.to_string(),
            server_name: config
                .server_name
                .clone()
                .unwrap_or_else(|| server_id.to_string()),
            version: twig_util::version::NATS_SERVER.to_string(),
            proto: PROTO,
            git_commit: twig_util::version::git_commit().map(str::to_owned),
            go: twig_util::version::RUSTC.to_string(),
            twig_version: twig_util::version::TWIG.to_string(),
            host: config.listen_host().to_string(),
            port,
            auth_required: config.authorization.is_enabled(),
            tls_required: config.tls.is_some(),
            tls_verify: config.tls.as_ref().is_some_and(|t| t.verify),
            max_connections: config.max_connections,
            ping_interval: config.ping_interval,
            ping_max: config.ping_max,
            http_host: config.effective_http_host().to_string(),
            http_port,
            auth_timeout: config.effective_auth_timeout(),
            max_control_line: config.max_control_line,
            max_payload: config.max_payload,
            max_pending: config.max_pending,
            tls_timeout: config
                .tls
                .as_ref()
                .map_or(twig_config::default_tls_timeout(), |t| t.timeout),
            write_deadline: config.write_deadline,
            start,
            now,
            uptime: format_uptime(now.duration_since(start).unwrap_or_default()),
            mem: resident_memory(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            connections: 0,
            total_connections: 0,
            leafnodes: 0,
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
            slow_consumers: 0,
            stale_connections: 0,
            auth_failures: 0,
            refused_connections: 0,
            subscriptions: 0,
        }
    }

    /// Copies the shared counters in.
    pub fn with_stats(mut self, stats: &Stats) -> Varz {
        self.total_connections = stats.total_connections.load(Relaxed);
        self.in_msgs = stats.in_msgs.load(Relaxed);
        self.in_bytes = stats.in_bytes.load(Relaxed);
        self.out_msgs = stats.out_msgs.load(Relaxed);
        self.out_bytes = stats.out_bytes.load(Relaxed);
        self.slow_consumers = stats.slow_consumers.load(Relaxed);
        self.stale_connections = stats.stale_connections.load(Relaxed);
        self.auth_failures = stats.auth_failures.load(Relaxed);
        self.refused_connections = stats.refused_connections.load(Relaxed);
        self
    }
}

/// The `/healthz` body: `{"status":"ok"}`, or `unavailable` with a reason (served as 503).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthz {
    /// `ok` or `unavailable`.
    pub status: String,
    /// HTTP status for failures (omitted when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// What is wrong (omitted when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Healthz {
    /// Healthy.
    pub fn ok() -> Healthz {
        Healthz {
            status: "ok".into(),
            status_code: None,
            error: None,
        }
    }

    /// Not healthy, for `reason`.
    pub fn unavailable(reason: impl Into<String>) -> Healthz {
        Healthz {
            status: "unavailable".into(),
            status_code: Some(503),
            error: Some(reason.into()),
        }
    }

    /// True for `ok`.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

/// Resident memory of this process in bytes (0 where `/proc` is missing). Read from
/// `/proc/self/status` (`VmRSS`, in kB) rather than `statm`, whose page counts would need the
/// page size, which varies on ARM boards (4, 16 or 64 KiB) and takes a libc call to learn.
pub fn resident_memory() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_vm_rss(&s))
        .unwrap_or(0)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// RFC 3339 in UTC with trailing zeros of the fraction trimmed, as Go's `time.RFC3339Nano`
/// (`2026-11-22T05:26:43.55051189Z`, or `...:43Z` on a whole second).
pub fn format_rfc3339(t: SystemTime) -> String {
    let u = UtcTime::from_system_time(t);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    );
    if u.nanos > 0 {
        let frac = format!("{:09}", u.nanos);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// An uptime or idle time as nats-server writes it: whole seconds, then minutes, hours, days
/// and years as they are reached (`0s`, `5m3s`, `1h2m3s`, `2d0h0m1s`, `1y3d4h5m6s`).
pub fn format_uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    let years = days / 365;
    let (s, m, h) = (secs % 60, mins % 60, hours % 24);
    if years > 0 {
        format!("{years}y{}d{h}h{m}m{s}s", days % 365)
    } else if days > 0 {
        format!("{days}d{h}h{m}m{s}s")
    } else if hours > 0 {
        format!("{hours}h{m}m{s}s")
    } else if mins > 0 {
        format!("{mins}m{s}s")
    } else {
        format!("{secs}s")
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn nanos<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Whole seconds print as integers (`2`, as Go prints a float64 of 2), others as floats.
fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.subsec_nanos() == 0 {
        s.serialize_u64(d.as_secs())
    } else {
        s.serialize_f64(d.as_secs_f64())
    }
}

pub(super) fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(*t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn timestamps_as_go_writes_them() {
        let t = UNIX_EPOCH + Duration::new(1_795_324_003, 550_511_890);
        assert_eq!(format_rfc3339(t), "2026-11-22T05:06:43.55051189Z");
        let t = UNIX_EPOCH + Duration::new(1_795_324_003, 0);
        assert_eq!(format_rfc3339(t), "2026-11-22T05:06:43Z");
        let t = UNIX_EPOCH + Duration::new(0, 1);
        assert_eq!(format_rfc3339(t), "1970-01-01T00:00:00.000000001Z");
    }

    #[test]
    fn uptimes_as_nats_server_writes_them() {
        let s = Duration::from_secs;
        assert_eq!(format_uptime(Duration::from_millis(999)), "0s");
        assert_eq!(format_uptime(s(59)), "59s");
        assert_eq!(format_uptime(s(60)), "1m0s");
        assert_eq!(format_uptime(s(3723)), "1h2m3s");
        assert_eq!(format_uptime(s(2 * 86_400 + 1)), "2d0h0m1s");
        assert_eq!(
            format_uptime(s(368 * 86_400 + 4 * 3600 + 5 * 60 + 6)),
            "1y3d4h5m6s"
        );
    }

    #[test]
    fn rss_from_proc_status() {
        let status = "Name:\ttwig\nVmPeak:\t  9000 kB\nVmRSS:\t    1536 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(1536 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        if cfg!(target_os = "linux") {
            assert!(resident_memory() > 0);
        }
    }

    #[test]
    fn varz_from_config_and_stats() {
        let config = Config::default();
        let stats = Stats::default();
        stats.in_msgs.store(7, Relaxed);
        stats.total_connections.store(3, Relaxed);
        let start = SystemTime::now() - Duration::from_secs(61);
        let v = Varz::new(&config, "NSERVER", 4222, 8222, start).with_stats(&stats);
        assert_eq!(v.server_name, "NSERVER");
        assert_eq!(v.uptime, "1m1s");
        assert_eq!((v.in_msgs, v.total_connections), (7, 3));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["ping_interval"], 120_000_000_000u64);
        assert_eq!(json["write_deadline"], 10_000_000_000u64);
        assert_eq!(json["auth_timeout"], 2);
        assert_eq!(json["http_host"], "127.0.0.1");
        assert!(json.get("auth_required").is_none());
        assert!(json["start"].as_str().unwrap().ends_with('Z'));
    }
}
