//! `[mqtt_listener]`: MQTT 3.1.1 / 5.0 devices connect to twig directly (see the `mqtt`
//! component's `listener`). nats-server's format writes it `mqtt { ... }`.
//!
//! ```toml
//! [mqtt_listener]
//! port = 1883                 # -1: a random free port (logged)
//! # host = "0.0.0.0"          # default: both loopbacks, as the client port
//! [mqtt_listener.tls]         # optional, same keys as [tls] (client certificates too)
//! cert_file = "server.pem"
//! key_file = "server-key.pem"
//! ```
//!
//! Every limit has a default sized for a small gateway; each bounds memory in bytes or counts.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Port, TlsConfig, invalid, values};

/// The MQTT port nats-server and mosquitto default to.
pub const DEFAULT_PORT: u16 = 1883;

/// `[mqtt_listener]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttListenerConfig {
    /// Address to listen on (default: both loopbacks, `127.0.0.1` and `::1`, as `host`).
    pub host: Option<String>,
    /// Port (default 1883; `-1` = a random free port, logged once bound).
    #[serde(deserialize_with = "values::de_port")]
    pub port: Port,
    /// TLS (MQTT over TLS, with client certificates when `verify`).
    pub tls: Option<TlsConfig>,
    /// The user MQTT clients without a user name log in as (nats-server's `mqtt.no_auth_user`;
    /// default: the server's `authorization.no_auth_user`).
    pub no_auth_user: Option<String>,
    /// Most MQTT connections at once (default 10000); more get CONNACK "server unavailable".
    pub max_connections: usize,
    /// Most sessions, connected or kept offline (default 10000); a new client id past it gets
    /// CONNACK "server unavailable".
    pub max_sessions: usize,
    /// Largest packet a client may send, fixed header included (default 1 MiB; at most
    /// `max_payload`'s 64 MiB bound). Advertised as MQTT 5 Maximum Packet Size.
    #[serde(deserialize_with = "values::de_size")]
    pub max_packet_size: usize,
    /// QoS 1/2 publishes a client may have unacknowledged towards twig (default 64; MQTT 5
    /// Receive Maximum). A 3.1.1 client is simply not read past it.
    pub receive_maximum: u16,
    /// QoS 1/2 messages in flight towards a client (default 64; the client's own Receive
    /// Maximum lowers it). nats-server's `max_ack_pending`.
    pub max_inflight: u16,
    /// Bytes of messages queued for one session, online or offline (default 1 MiB).
    #[serde(deserialize_with = "values::de_size")]
    pub max_queued_bytes: usize,
    /// Messages queued for one session (default 1000).
    pub max_queued_messages: usize,
    /// Subscriptions (topic filters) per session (default 100).
    pub max_subscriptions: usize,
    /// Topic aliases a client may set (default 16; MQTT 5 Topic Alias Maximum).
    pub topic_alias_maximum: u16,
    /// Longest client id, in bytes (default 128).
    pub max_client_id_len: usize,
    /// Longest keep-alive a client may ask for (default 0s: no cap); a client asking for more,
    /// or for none, gets this one (MQTT 5 Server Keep Alive). Whole seconds.
    #[serde(deserialize_with = "values::de_duration")]
    pub max_keep_alive: Duration,
    /// Longest session expiry (default 7 days); a 3.1.1 `clean_session = false` session gets
    /// this one.
    #[serde(deserialize_with = "values::de_duration")]
    pub max_session_expiry: Duration,
    /// Time a client has to send CONNECT, and twig to answer it (default 10s).
    #[serde(deserialize_with = "values::de_duration")]
    pub connect_timeout: Duration,
    /// A write to a client that takes longer than this closes the connection (default 10s).
    #[serde(deserialize_with = "values::de_duration")]
    pub write_deadline: Duration,
    /// Highest QoS accepted and granted (default 2).
    pub max_qos: u8,
    /// Whether retained messages are kept (default true).
    pub retain_available: bool,
    /// Retained messages kept at most (default 10000).
    pub max_retained: usize,
    /// Bytes of retained messages kept at most (default 4 MiB; the store file bounds them too:
    /// a full store refuses more).
    #[serde(deserialize_with = "values::de_size")]
    pub max_retained_bytes: usize,
    /// The file for retained messages and persistent sessions (default
    /// `<store_dir>/mqtt.store`).
    pub store_file: Option<PathBuf>,
    /// Its size, pre-allocated (default 16 MiB; a multiple of 64 KiB, at least 256 KiB).
    #[serde(deserialize_with = "values::de_size")]
    pub store_size: usize,
    /// Bytes of requests waiting for the store's thread at most (default 8 MiB; at least
    /// 64 KiB): session changes, queued QoS 1/2 messages of persistent sessions, retained
    /// messages. Past it the session that writes waits (its device is not read meanwhile);
    /// nothing acknowledged is dropped. Counted as `store_waits` in `/mqttz`.
    #[serde(deserialize_with = "values::de_size")]
    pub max_store_queue_bytes: usize,
}

impl Default for MqttListenerConfig {
    fn default() -> Self {
        MqttListenerConfig {
            host: None,
            port: Port::Fixed(DEFAULT_PORT),
            tls: None,
            no_auth_user: None,
            max_connections: 10_000,
            max_sessions: 10_000,
            max_packet_size: 1024 * 1024,
            receive_maximum: 64,
            max_inflight: 64,
            max_queued_bytes: 1024 * 1024,
            max_queued_messages: 1000,
            max_subscriptions: 100,
            topic_alias_maximum: 16,
            max_client_id_len: 128,
            max_keep_alive: Duration::ZERO,
            max_session_expiry: Duration::from_secs(7 * 24 * 3600),
            connect_timeout: Duration::from_secs(10),
            write_deadline: Duration::from_secs(10),
            max_qos: 2,
            retain_available: true,
            max_retained: 10_000,
            max_retained_bytes: 4 * 1024 * 1024,
            store_file: None,
            store_size: 16 * 1024 * 1024,
            max_store_queue_bytes: 8 * 1024 * 1024,
        }
    }
}

impl MqttListenerConfig {
    /// The store file: `store_file`, else `<store_dir>/mqtt.store`.
    pub fn store_path(&self, store_dir: &Path) -> PathBuf {
        self.store_file
            .clone()
            .unwrap_or_else(|| store_dir.join("mqtt.store"))
    }
}

/// Checks `[mqtt_listener]` (`auth` says whether `[authorization]` is configured,
/// `allow_anonymous` whether the config lets anyone in anyway).
pub fn validate(
    m: &MqttListenerConfig,
    auth: bool,
    allow_anonymous: bool,
) -> Result<(), ConfigError> {
    let at = |f: &str| format!("mqtt_listener.{f}");
    if let Some(h) = &m.host {
        super::check_host(&at("host"), h)?;
        if !super::is_loopback(h) && !auth && !allow_anonymous {
            return Err(invalid(
                at("host"),
                format!(
                    "{h:?} reaches beyond this machine, and no [authorization] is configured: \
                     any device on the network could publish and subscribe. Add users, or set \
                     allow_anonymous = true if that is what you want"
                ),
            ));
        }
    }
    if let Some(t) = &m.tls {
        if t.verify && t.ca_file.is_none() {
            return Err(invalid(
                at("tls.verify"),
                "needs ca_file to verify client certificates against",
            ));
        }
        if t.timeout.is_zero() {
            return Err(invalid(at("tls.timeout"), "must be longer than zero"));
        }
    }
    let positive = [
        ("max_connections", m.max_connections),
        ("max_sessions", m.max_sessions),
        ("receive_maximum", usize::from(m.receive_maximum)),
        ("max_inflight", usize::from(m.max_inflight)),
        ("max_queued_messages", m.max_queued_messages),
        ("max_subscriptions", m.max_subscriptions),
        ("max_client_id_len", m.max_client_id_len),
    ];
    for (name, v) in positive {
        if v == 0 {
            return Err(invalid(at(name), "must be at least 1"));
        }
    }
    if m.max_client_id_len > 65_535 {
        return Err(invalid(
            at("max_client_id_len"),
            "at most 65535 (MQTT strings)",
        ));
    }
    // 5 bytes: the smallest PUBLISH; the top: MQTT's Remaining Length (256 MiB) and twig's
    // payload bound.
    if m.max_packet_size < 5 || m.max_packet_size > super::MAX_PAYLOAD_LIMIT {
        return Err(invalid(
            at("max_packet_size"),
            format!("{} must be between 5 bytes and 64 MiB", m.max_packet_size),
        ));
    }
    if m.max_queued_bytes < 1024 {
        return Err(invalid(at("max_queued_bytes"), "must be at least 1 KiB"));
    }
    if m.max_store_queue_bytes < 64 * 1024 {
        return Err(invalid(
            at("max_store_queue_bytes"),
            "must be at least 64 KiB",
        ));
    }
    let whole = |d: Duration| d.subsec_nanos() == 0;
    if !whole(m.max_keep_alive) || m.max_keep_alive.as_secs() > 65_535 {
        return Err(invalid(
            at("max_keep_alive"),
            "whole seconds up to 65535s (MQTT counts it in seconds); 0s: no cap",
        ));
    }
    if !whole(m.max_session_expiry) || m.max_session_expiry.as_secs() >= u64::from(u32::MAX) {
        return Err(invalid(
            at("max_session_expiry"),
            "whole seconds, below 136 years (MQTT counts it in seconds)",
        ));
    }
    for (name, d) in [
        ("connect_timeout", m.connect_timeout),
        ("write_deadline", m.write_deadline),
    ] {
        if d.is_zero() {
            return Err(invalid(at(name), "must be longer than zero"));
        }
    }
    if m.max_qos > 2 {
        return Err(invalid(at("max_qos"), "0, 1 or 2"));
    }
    let sector = super::STREAM_SECTOR;
    if !m.store_size.is_multiple_of(sector) || m.store_size < 4 * sector {
        return Err(invalid(
            at("store_size"),
            format!(
                "{} must be a multiple of 64 KiB and at least 256 KiB",
                m.store_size
            ),
        ));
    }
    if m.store_size as u64 > u64::from(u32::MAX) + 1 - sector as u64 {
        return Err(invalid(at("store_size"), "must be below 4 GiB"));
    }
    if m.store_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        return Err(invalid(at("store_file"), "must not be empty"));
    }
    Ok(())
}
