//! `/metrics`: the `/varz` numbers in the Prometheus text format (version 0.0.4), each with
//! `# HELP` and `# TYPE`. Counters end in `_total`, as Prometheus naming asks.
use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use super::Varz;

/// Renders `v` as Prometheus text.
pub fn render(v: &Varz) -> String {
    let mut out = String::with_capacity(2048);
    let info_labels = format!(
        "server_id=\"{}\",server_name=\"{}\",version=\"{}\"",
        escape(&v.server_id),
        escape(&v.server_name),
        escape(&v.version)
    );
    family(&mut out, "twig_info", "gauge", "Server identity.");
    let _ = writeln!(out, "twig_info{{{info_labels}}} 1");

    let start = v
        .start
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let uptime = v
        .now
        .duration_since(v.start)
        .unwrap_or_default()
        .as_secs_f64();
    let gauges: [(&str, &str, f64); 9] = [
        (
            "twig_start_time_seconds",
            "Start time, seconds since the Unix epoch.",
            start,
        ),
        ("twig_uptime_seconds", "Seconds since start.", uptime),
        (
            "twig_memory_resident_bytes",
            "Resident memory of the process.",
            v.mem as f64,
        ),
        (
            "twig_cores",
            "CPUs available to the process.",
            v.cores as f64,
        ),
        (
            "twig_connections",
            "Open client connections.",
            v.connections as f64,
        ),
        (
            "twig_max_connections",
            "Configured connection limit.",
            v.max_connections as f64,
        ),
        (
            "twig_subscriptions",
            "Subscriptions in the server.",
            v.subscriptions as f64,
        ),
        (
            "twig_max_payload_bytes",
            "Configured payload limit.",
            v.max_payload as f64,
        ),
        (
            "twig_max_pending_bytes",
            "Configured per-connection outbound buffer limit.",
            v.max_pending as f64,
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let counters: [(&str, &str, u64); 9] = [
        (
            "twig_accepted_connections_total",
            "Client connections accepted since start.",
            v.total_connections,
        ),
        (
            "twig_in_msgs_total",
            "Messages received from clients.",
            v.in_msgs,
        ),
        (
            "twig_in_bytes_total",
            "Payload bytes received from clients.",
            v.in_bytes,
        ),
        ("twig_out_msgs_total", "Messages delivered.", v.out_msgs),
        (
            "twig_out_bytes_total",
            "Payload bytes delivered.",
            v.out_bytes,
        ),
        (
            "twig_slow_consumers_total",
            "Connections closed as slow consumers.",
            v.slow_consumers,
        ),
        (
            "twig_stale_connections_total",
            "Connections closed for missing PONGs.",
            v.stale_connections,
        ),
        (
            "twig_auth_failures_total",
            "Logins refused (Authorization Violation).",
            v.auth_failures,
        ),
        (
            "twig_refused_connections_total",
            "Connections refused past max_connections.",
            v.refused_connections,
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

/// The MQTT listener's numbers (the app fills them from the listener's snapshot: this crate
/// does not use the MQTT component).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MqttListener {
    pub connections: u64,
    pub total_connections: u64,
    pub sessions: u64,
    pub stored_sessions: u64,
    pub stored_queued: u64,
    pub retained: u64,
    pub retained_refused: u64,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub auth_failures: u64,
    pub dropped: u64,
    pub store_waits: u64,
}

/// Appends the MQTT listener's families (`twig_mqtt_*`).
pub fn render_mqtt(out: &mut String, m: &MqttListener) {
    let gauges: [(&str, &str, u64); 5] = [
        (
            "twig_mqtt_connections",
            "Open MQTT connections.",
            m.connections,
        ),
        (
            "twig_mqtt_sessions",
            "MQTT sessions held (connected or kept offline).",
            m.sessions,
        ),
        (
            "twig_mqtt_stored_sessions",
            "Persistent MQTT sessions on flash.",
            m.stored_sessions,
        ),
        (
            "twig_mqtt_stored_queued_messages",
            "Messages queued on flash for offline persistent sessions.",
            m.stored_queued,
        ),
        (
            "twig_mqtt_retained_messages",
            "Retained messages on flash.",
            m.retained,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let counters: [(&str, &str, u64); 7] = [
        (
            "twig_mqtt_accepted_connections_total",
            "MQTT connections accepted since start.",
            m.total_connections,
        ),
        (
            "twig_mqtt_in_msgs_total",
            "PUBLISH packets from MQTT devices.",
            m.in_msgs,
        ),
        (
            "twig_mqtt_in_bytes_total",
            "Payload bytes from MQTT devices.",
            m.in_bytes,
        ),
        (
            "twig_mqtt_auth_failures_total",
            "MQTT logins refused.",
            m.auth_failures,
        ),
        (
            "twig_mqtt_retained_refused_total",
            "Retained messages refused by the limits.",
            m.retained_refused,
        ),
        (
            "twig_mqtt_dropped_total",
            "Deliveries to MQTT sessions dropped (full queue or expired).",
            m.dropped,
        ),
        (
            "twig_mqtt_store_waits_total",
            "Times an MQTT session waited for room in the store thread's queue              (max_store_queue_bytes).",
            m.store_waits,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escape backslash, double quote and newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};
    use twig_config::Config;

    #[test]
    fn every_sample_has_help_and_type() {
        let start = SystemTime::now() - Duration::from_secs(5);
        let mut v = Varz::new(&Config::default(), "NID", 4222, 0, start);
        v.server_name = "edge \"1\"".into();
        v.in_msgs = 42;
        v.connections = 3;
        let text = render(&v);
        assert!(text.contains("\ntwig_in_msgs_total 42\n"), "{text}");
        assert!(text.contains("\ntwig_connections 3\n"), "{text}");
        assert!(text.contains("server_name=\"edge \\\"1\\\"\""), "{text}");
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(declared.last().map(String::as_str), Some(name), "{line}");
                let value = line.rsplit(' ').next().unwrap();
                value.parse::<f64>().expect(line);
            }
        }
        assert_eq!(declared.len(), 19);
    }
}
