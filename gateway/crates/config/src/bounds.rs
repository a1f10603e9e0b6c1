//! The largest value of every duration, size and count in the config, in one place.
//!
//! Why: each value ends up in arithmetic (`Instant + d`, `n × max_pending`, doubling back-offs,
//! casts to the u32/u16 fields of the wire and the log). Unchecked, `ping_interval =
//! 9223372036854775807` passed the parser and panicked at the first `Instant + d` (an abort in
//! the release profile). With these maxima nothing the config allows can overflow, and an
//! out-of-range value is a clear error at start and at `twig -t`, naming the option.
//!
//! Every struct is destructured without `..`, so a new field does not build until it is given
//! a bound here or named as not a number. Lower bounds (not zero, at least `max_payload`...)
//! stay with the checks of each section; both formats (TOML and nats-server's) end in
//! [`Config::validate`](super::Config::validate), so both are covered.
use std::time::Duration;

use super::leaf::{LeafConfig, ProxyConfig, RemoteConfig, RemoteTlsConfig};
use super::mqtt::{ExportConfig, ImportConfig, MqttConfig};
use super::mqtt_listener::MqttListenerConfig;
use super::streams::{StreamConfig, SyncPolicy};
use super::sync::SyncConfig;
use super::{Config, ConfigError, LoginThrottleConfig, TlsConfig, invalid, values};

/// The longest duration any parser accepts (ten years): a safety net under the table below,
/// far from every overflow (about 3.2e17 ns, u64 holds 1.8e19).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Timeouts, intervals and back-offs: a day is far beyond any useful one.
pub const MAX_TIMER: Duration = Duration::from_secs(24 * 3600);
/// How long things are remembered (duplicate windows, throttled addresses).
pub const MAX_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// A byte budget (per connection, per link, per queue): 1 GiB, so that even 65536 of them
/// add up in a u64 and one fits a 32-bit `usize`.
pub const MAX_BUFFER: u64 = 1 << 30;
/// Connections, subscriptions per connection, queue lengths, remembered entries.
pub const MAX_COUNT: u64 = 1 << 20;
/// Remembered ids and sequences (about 160 B each: 4 Mi of them is 640 MiB).
pub const MAX_REMEMBERED: u64 = 1 << 22;
/// Unanswered PINGs, free login failures: small counters.
pub const MAX_SMALL: u64 = 1000;
/// Threads that run connections.
pub const MAX_THREADS: u64 = 1024;
/// Messages a stream keeps (`max_msgs`): sequence numbers stay far from u64's end.
pub const MAX_STREAM_MSGS: u64 = 1 << 48;

/// The options over their maximum; the first one is the error.
struct Check(Result<(), ConfigError>);

impl Check {
    fn dur(&mut self, option: impl Into<String>, d: Duration, max: Duration) {
        if self.0.is_ok() && d > max {
            self.0 = Err(invalid(
                option,
                format!(
                    "{} is too long, the maximum is {}",
                    values::format_duration(d),
                    values::format_duration(max)
                ),
            ));
        }
    }

    fn opt_dur(&mut self, option: impl Into<String>, d: Option<Duration>, max: Duration) {
        if let Some(d) = d {
            self.dur(option, d, max);
        }
    }

    fn size(&mut self, option: impl Into<String>, n: usize, max: u64) {
        if self.0.is_ok() && n as u64 > max {
            self.0 = Err(invalid(
                option,
                format!(
                    "{n} bytes is too large, the maximum is {max} ({})",
                    human(max)
                ),
            ));
        }
    }

    fn count(&mut self, option: impl Into<String>, n: u64, max: u64) {
        if self.0.is_ok() && n > max {
            self.0 = Err(invalid(
                option,
                format!("{n} is too large, the maximum is {max}"),
            ));
        }
    }
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n.is_multiple_of(1 << 30) => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n.is_multiple_of(1 << 20) => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n.is_multiple_of(1 << 10) => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn count(n: usize) -> u64 {
    n as u64
}

/// Checks every number of `c` against its maximum.
pub(crate) fn check(c: &Config) -> Result<(), ConfigError> {
    let Config {
        host: _,
        port: _,
        server_name: _,
        http_host: _,
        http_port: _,
        http_max_connections,
        http_max_request,
        http_timeout,
        max_payload,
        max_control_line,
        max_pending,
        max_connections,
        max_subscriptions,
        ping_interval,
        ping_max,
        auth_timeout,
        write_deadline,
        threads,
        no_header_support: _,
        authorization,
        allow_anonymous: _,
        tls,
        log_file: _,
        pid_file: _,
        lame_duck_duration,
        lame_duck_grace_period,
        debug: _,
        trace: _,
        leafnodes,
        store_dir: _,
        streams,
        sync,
        mqtt,
        listen_backlog,
        mqtt_listener,
    } = c;
    let mut k = Check(Ok(()));
    // `max_payload` (64 MiB) and `max_control_line` (1 MiB) keep their checks in `validate`,
    // with the lower bound; listed here so they are not forgotten.
    let _ = (max_payload, max_control_line);
    k.size("max_pending", *max_pending, MAX_BUFFER);
    k.count(
        "http_max_connections",
        count(*http_max_connections),
        count(super::MAX_HTTP_CONNECTIONS),
    );
    k.size(
        "http_max_request",
        *http_max_request,
        count(*super::HTTP_MAX_REQUEST_RANGE.end()),
    );
    k.dur("http_timeout", *http_timeout, MAX_TIMER);
    k.count("max_connections", count(*max_connections), MAX_COUNT);
    k.count("max_subscriptions", count(*max_subscriptions), MAX_COUNT);
    k.dur("ping_interval", *ping_interval, MAX_TIMER);
    k.count("ping_max", u64::from(*ping_max), MAX_SMALL);
    k.opt_dur("auth_timeout", *auth_timeout, MAX_TIMER);
    k.dur("write_deadline", *write_deadline, MAX_TIMER);
    k.count("threads", count(*threads), MAX_THREADS);
    k.dur("lame_duck_duration", *lame_duck_duration, MAX_TIMER);
    k.dur("lame_duck_grace_period", *lame_duck_grace_period, MAX_TIMER);
    throttle(&mut k, &authorization.login_throttle);
    k.count(
        "authorization.max_bcrypt_checks",
        count(authorization.max_bcrypt_checks),
        MAX_THREADS,
    );
    if let Some(TlsConfig {
        cert_file: _,
        key_file: _,
        ca_file: _,
        verify: _,
        verify_and_map: _,
        timeout,
    }) = tls
    {
        k.dur("tls.timeout", *timeout, MAX_TIMER);
    }
    leaf(&mut k, leafnodes);
    for (i, s) in streams.iter().enumerate() {
        stream(&mut k, i, s);
    }
    for (i, s) in sync.iter().enumerate() {
        sync_entry(&mut k, i, s);
    }
    if let Some(m) = mqtt {
        mqtt_section(&mut k, m);
    }
    k.count(
        "listen_backlog",
        u64::from(*listen_backlog),
        u64::from(super::MAX_LISTEN_BACKLOG),
    );
    if let Some(m) = mqtt_listener {
        listener(&mut k, m);
    }
    k.0
}

fn listener(k: &mut Check, m: &MqttListenerConfig) {
    let MqttListenerConfig {
        host: _,
        port: _,
        tls,
        no_auth_user: _,
        max_connections,
        max_sessions,
        max_packet_size,
        receive_maximum: _, // u16s: bounded by their type (MQTT's own fields)
        max_inflight: _,
        max_queued_bytes,
        max_queued_messages,
        max_subscriptions,
        topic_alias_maximum: _,
        max_client_id_len: _, // at most 65535, checked with the section
        max_keep_alive,
        max_session_expiry: _, // below u32::MAX seconds, checked with the section
        connect_timeout,
        write_deadline,
        max_qos: _,
        retain_available: _,
        max_retained,
        max_retained_bytes,
        store_file: _,
        store_size: _, // below 4 GiB, checked with the section
        max_store_queue_bytes,
    } = m;
    let at = |f: &str| format!("mqtt_listener.{f}");
    k.count(at("max_connections"), count(*max_connections), MAX_COUNT);
    k.count(at("max_sessions"), count(*max_sessions), MAX_COUNT);
    k.size(
        at("max_packet_size"),
        *max_packet_size,
        super::MAX_PAYLOAD_LIMIT as u64,
    );
    k.size(at("max_queued_bytes"), *max_queued_bytes, MAX_BUFFER);
    k.count(
        at("max_queued_messages"),
        count(*max_queued_messages),
        MAX_COUNT,
    );
    k.count(
        at("max_subscriptions"),
        count(*max_subscriptions),
        MAX_COUNT,
    );
    k.dur(
        at("max_keep_alive"),
        *max_keep_alive,
        Duration::from_secs(65_535),
    );
    k.dur(at("connect_timeout"), *connect_timeout, MAX_TIMER);
    k.dur(at("write_deadline"), *write_deadline, MAX_TIMER);
    k.count(at("max_retained"), count(*max_retained), MAX_COUNT);
    k.size(at("max_retained_bytes"), *max_retained_bytes, MAX_BUFFER);
    k.size(
        at("max_store_queue_bytes"),
        *max_store_queue_bytes,
        MAX_BUFFER,
    );
    if let Some(t) = tls {
        k.dur(at("tls.timeout"), t.timeout, MAX_TIMER);
    }
}

fn throttle(k: &mut Check, t: &LoginThrottleConfig) {
    let LoginThrottleConfig {
        free_failures,
        first_delay,
        max_delay,
        forget_after,
        max_addresses,
    } = t;
    let at = |f: &str| format!("authorization.login_throttle.{f}");
    k.count(at("free_failures"), u64::from(*free_failures), MAX_SMALL);
    k.dur(at("first_delay"), *first_delay, MAX_TIMER);
    k.dur(at("max_delay"), *max_delay, MAX_TIMER);
    k.dur(at("forget_after"), *forget_after, MAX_WINDOW);
    k.count(at("max_addresses"), count(*max_addresses), MAX_COUNT);
}

fn leaf(k: &mut Check, l: &LeafConfig) {
    let LeafConfig {
        remotes,
        reconnect_delay_min,
        reconnect_delay_max,
        ping_interval,
        ping_max,
        write_deadline,
        max_pending,
        unsent_limit,
        dial_timeout,
    } = l;
    let at = |f: &str| format!("leafnodes.{f}");
    k.dur(at("reconnect_delay_min"), *reconnect_delay_min, MAX_TIMER);
    k.dur(at("reconnect_delay_max"), *reconnect_delay_max, MAX_TIMER);
    k.dur(at("ping_interval"), *ping_interval, MAX_TIMER);
    k.count(at("ping_max"), u64::from(*ping_max), MAX_SMALL);
    k.dur(at("write_deadline"), *write_deadline, MAX_TIMER);
    k.size(at("max_pending"), *max_pending, MAX_BUFFER);
    k.size(at("unsent_limit"), *unsent_limit, MAX_BUFFER);
    k.dur(at("dial_timeout"), *dial_timeout, MAX_TIMER);
    for (i, r) in remotes.iter().enumerate() {
        let RemoteConfig {
            urls: _,
            credentials: _,
            nkey: _,
            user: _,
            password: _,
            token: _,
            tls,
            first_info_timeout,
            dial_timeout_override,
            ignore_discovered_servers: _,
            deny_imports: _,
            deny_exports: _,
            compression,
            proxy,
            ws_no_masking: _,
        } = r;
        let at = |f: &str| format!("leafnodes.remotes[{i}].{f}");
        k.dur(at("first_info_timeout"), *first_info_timeout, MAX_TIMER);
        k.opt_dur(at("dial_timeout"), *dial_timeout_override, MAX_TIMER);
        if let Some(ProxyConfig {
            url: _,
            username: _,
            password: _,
            timeout,
        }) = proxy
        {
            k.opt_dur(at("proxy.timeout"), *timeout, MAX_TIMER);
        }
        for d in compression.thresholds.as_slice() {
            k.dur(at("compression.rtt_thresholds"), *d, MAX_TIMER);
        }
        if let Some(RemoteTlsConfig {
            ca_file: _,
            cert_file: _,
            key_file: _,
            server_name: _,
            timeout,
        }) = tls
        {
            k.dur(at("tls.timeout"), *timeout, MAX_TIMER);
        }
    }
}

fn stream(k: &mut Check, i: usize, s: &StreamConfig) {
    let StreamConfig {
        name: _,
        subjects: _,
        file: _,
        max_bytes,
        max_msgs,
        max_age,
        when_full: _,
        sync,
        duplicate_window,
        max_duplicate_ids,
        queue_bytes,
        forward: _,
        forward_window,
        forward_ack_timeout,
        forward_remote,
        forward_priority: _,
    } = s;
    let at = |f: &str| format!("streams[{i}].{f}");
    // The log addresses its file with u32 offsets (also checked with the sector rules).
    k.size(at("max_bytes"), *max_bytes, 1 << 31);
    k.count(at("max_msgs"), *max_msgs, MAX_STREAM_MSGS);
    k.opt_dur(at("max_age"), *max_age, MAX_DURATION);
    if let SyncPolicy::Interval(d) = sync {
        k.dur(at("sync"), *d, MAX_TIMER);
    }
    k.dur(at("duplicate_window"), *duplicate_window, MAX_WINDOW);
    k.count(
        at("max_duplicate_ids"),
        count(*max_duplicate_ids),
        MAX_REMEMBERED,
    );
    k.size(at("queue_bytes"), *queue_bytes, MAX_BUFFER);
    k.count(at("forward_window"), count(*forward_window), 65_536);
    k.dur(at("forward_ack_timeout"), *forward_ack_timeout, MAX_TIMER);
    k.count(at("forward_remote"), count(*forward_remote), MAX_SMALL);
}

fn sync_entry(k: &mut Check, i: usize, s: &SyncConfig) {
    let SyncConfig {
        stream: _,
        durable: _,
        filter_subject: _,
        api_prefix: _,
        batch,
        expires,
        remote,
        create: _,
        deliver_policy: _,
        ack_wait,
        max_ack_pending,
        request_timeout,
        retry_delay,
        require_subscriber: _,
        state_file: _,
        max_remembered,
        queue_bytes,
    } = s;
    let at = |f: &str| format!("sync[{i}].{f}");
    k.count(at("batch"), u64::from(*batch), 10_000);
    k.dur(at("expires"), *expires, MAX_TIMER);
    k.count(at("remote"), count(*remote), MAX_SMALL);
    k.dur(at("ack_wait"), *ack_wait, MAX_TIMER);
    k.count(
        at("max_ack_pending"),
        u64::from(*max_ack_pending),
        MAX_COUNT,
    );
    k.dur(at("request_timeout"), *request_timeout, MAX_TIMER);
    k.dur(at("retry_delay"), *retry_delay, MAX_TIMER);
    k.count(at("max_remembered"), count(*max_remembered), MAX_REMEMBERED);
    k.size(at("queue_bytes"), *queue_bytes, MAX_BUFFER);
}

fn mqtt_section(k: &mut Check, m: &MqttConfig) {
    let MqttConfig {
        urls: _,
        client_id: _,
        username: _,
        password: _,
        tls: _,
        keepalive,
        clean_session: _,
        connect_timeout,
        reconnect_delay_min,
        reconnect_delay_max,
        max_inflight: _, // a u16: bounded by its type (the packet id space)
        max_unacked,
        queue,
        max_packet_size,
        import,
        export,
    } = m;
    k.dur("mqtt.keepalive", *keepalive, Duration::from_secs(65_535));
    k.dur("mqtt.connect_timeout", *connect_timeout, MAX_TIMER);
    k.dur("mqtt.reconnect_delay_min", *reconnect_delay_min, MAX_TIMER);
    k.dur("mqtt.reconnect_delay_max", *reconnect_delay_max, MAX_TIMER);
    k.count(
        "mqtt.max_unacked",
        count(*max_unacked),
        super::mqtt::MAX_UNACKED as u64,
    );
    k.count("mqtt.queue", count(*queue), MAX_COUNT);
    // MQTT's own limit: the remaining length is at most 268,435,455.
    k.size("mqtt.max_packet_size", *max_packet_size, 268_435_455);
    for imp in import {
        // No numbers but `qos` (0 or 1, checked by the mapping).
        let ImportConfig {
            topic: _,
            qos: _,
            subject_prefix: _,
        } = imp;
    }
    for (i, e) in export.iter().enumerate() {
        let ExportConfig {
            subject: _,
            strip_prefix: _,
            topic_prefix: _,
            qos: _,
            retain: _,
            queue,
            queue_bytes,
        } = e;
        k.count(format!("mqtt.export[{i}].queue"), count(*queue), MAX_COUNT);
        k.size(
            format!("mqtt.export[{i}].queue_bytes"),
            *queue_bytes,
            MAX_BUFFER,
        );
    }
}

#[cfg(test)]
#[path = "bounds_tests.rs"]
mod tests;
