//! `[mqtt]`: the bridge to an MQTT broker (see the `mqtt` component).
//!
//! ```toml
//! [mqtt]
//! urls = ["mqtt://127.0.0.1:1883"]   # or mqtts://host:8883 with [mqtt.tls]
//! client_id = "twig-bridge"
//! [[mqtt.import]]                     # MQTT topic filter -> NATS subjects
//! topic = "sensors/#"
//! qos = 1
//! [[mqtt.export]]                     # NATS subject filter -> MQTT topics
//! subject = "cmd.>"
//! qos = 1
//! ```

pub mod mapping;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid, values};

/// Most QoS 1 messages from the broker that can be unacknowledged at once: packet ids are 16
/// bits, so a broker can never have more in flight to one client.
pub const MAX_UNACKED: usize = 65_535;

/// `[mqtt]`: where the broker is, how twig connects, and what crosses the bridge.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker URLs, tried in turn: `mqtt://host[:1883]` (also `tcp://`) or `mqtts://host[:8883]`
    /// (also `ssl://`; needs `[mqtt.tls]`).
    pub urls: Vec<String>,
    /// The MQTT client id. With a persistent session the broker keeps the session (and the
    /// QoS 1 messages for it) under this id, so it must be unique per gateway and stable.
    pub client_id: String,
    /// User name for the broker.
    pub username: Option<String>,
    /// Password for the broker.
    #[serde(alias = "pass")]
    pub password: Option<String>,
    /// TLS towards the broker (required by `mqtts://` URLs).
    pub tls: Option<MqttTlsConfig>,
    /// MQTT keepalive (default 30s; whole seconds, at least 1s).
    #[serde(deserialize_with = "values::de_duration")]
    pub keepalive: Duration,
    /// Start a fresh session on every connect (default false: the broker keeps twig's
    /// subscriptions and queues QoS 1 messages while twig is away).
    pub clean_session: bool,
    /// Time allowed for TCP, TLS and CONNACK (default 5s; whole seconds).
    #[serde(deserialize_with = "values::de_duration")]
    pub connect_timeout: Duration,
    /// First retry after a lost or refused connection (default 50ms, jittered), doubled per
    /// failure up to `reconnect_delay_max`.
    #[serde(deserialize_with = "values::de_duration")]
    pub reconnect_delay_min: Duration,
    /// Cap of the reconnect back-off (default 5s).
    #[serde(deserialize_with = "values::de_duration")]
    pub reconnect_delay_max: Duration,
    /// QoS 1 messages twig publishes to the broker (exports) that may wait for their PUBACK
    /// at once (default 100).
    pub max_inflight: u16,
    /// QoS 1 messages from the broker twig holds unacknowledged at once, waiting for their
    /// stream to make them durable (default and most 65535, the packet id space, so the bridge
    /// never stops reading because of its own limit; the broker's own window, mosquitto's
    /// `max_inflight_messages`, is what bounds it in practice).
    pub max_unacked: usize,
    /// Requests (acknowledgements, exports) waiting for the MQTT thread (default 1024;
    /// acknowledgements never wait: twig holds them itself when this is full). Messages from
    /// the broker wait in at most 4 batches of 1024 before twig stops reading the socket.
    pub queue: usize,
    /// Largest MQTT packet accepted or sent (default 1 MiB).
    #[serde(deserialize_with = "values::de_size")]
    pub max_packet_size: usize,
    /// MQTT topic filters to bring into NATS.
    pub import: Vec<ImportConfig>,
    /// NATS subject filters to send to the broker.
    pub export: Vec<ExportConfig>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            urls: Vec::new(),
            client_id: "twig-bridge".into(),
            username: None,
            password: None,
            tls: None,
            keepalive: Duration::from_secs(30),
            clean_session: false,
            connect_timeout: Duration::from_secs(5),
            reconnect_delay_min: Duration::from_millis(50),
            reconnect_delay_max: Duration::from_secs(5),
            max_inflight: 100,
            max_unacked: MAX_UNACKED,
            queue: 1024,
            max_packet_size: 1024 * 1024,
            import: Vec::new(),
            export: Vec::new(),
        }
    }
}

/// `[mqtt.tls]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTlsConfig {
    /// PEM CA certificates the broker's certificate must chain to (verified against the URL's
    /// host name).
    pub ca_file: PathBuf,
    /// Client certificate chain (PEM), for brokers that verify clients.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// One `[[mqtt.import]]`: messages on MQTT topics matching `topic` are published in NATS.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// The MQTT topic filter twig subscribes to (`+` and `#` allowed).
    pub topic: String,
    /// QoS of the subscription (0 or 1, default 1). QoS 1 messages are acknowledged to the
    /// broker only once durable in their stream, or handed to the router when no stream stores
    /// the subject.
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Prepended to the mapped subject (`"mqtt."`: topic `a/b` -> `mqtt.a.b`). Without it the
    /// subject is exactly the one nats-server's MQTT listener would use.
    #[serde(default)]
    pub subject_prefix: Option<String>,
}

/// One `[[mqtt.export]]`: NATS messages on subjects matching `subject` are published to the
/// broker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// The NATS subject filter (wildcards allowed). Its interest also reaches the hub.
    pub subject: String,
    /// Removed from the front of each subject before it is mapped to a topic (it must be a
    /// prefix of `subject`, ending in `.`).
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// Prepended to the mapped topic (`"zigbee2mqtt/"`).
    #[serde(default)]
    pub topic_prefix: Option<String>,
    /// QoS of the MQTT publishes (0 or 1, default 0).
    #[serde(default)]
    pub qos: u8,
    /// Publish with the retain flag (default false).
    #[serde(default)]
    pub retain: bool,
    /// NATS messages waiting for the MQTT side (default 1024); beyond it they are dropped and
    /// counted, as a slow subscriber would be.
    #[serde(default = "default_export_queue")]
    pub queue: usize,
    /// Bytes those messages may hold at most (default 8 MiB); beyond it they are dropped and
    /// counted too.
    #[serde(
        default = "default_export_queue_bytes",
        deserialize_with = "values::de_size"
    )]
    pub queue_bytes: usize,
}

fn default_export_queue_bytes() -> usize {
    8 * 1024 * 1024
}

fn default_qos() -> u8 {
    1
}

fn default_export_queue() -> usize {
    1024
}

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    /// `mqtts://` or `ssl://`.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port (1883 plain, 8883 TLS by default).
    pub port: u16,
}

impl MqttUrl {
    /// Parses `mqtt://host[:port]`, `tcp://…`, `mqtts://…` or `ssl://…`.
    pub fn parse(url: &str) -> Result<MqttUrl, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("{url:?}: expected mqtt://host[:port] or mqtts://host[:port]")
        })?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => return Err(format!("{url:?}: unknown scheme {other:?} (mqtt or mqtts)")),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('@') || rest.contains('/') {
            return Err(format!(
                "{url:?}: only host[:port] (put credentials in username/password)"
            ));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = match rest.rsplit_once(':') {
            // `[::1]:1883`, `host:1883`
            Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("{url:?}: bad port {p:?}"))?;
                (h, port)
            }
            _ => (rest, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(MqttUrl {
            tls,
            host: host.to_owned(),
            port,
        })
    }
}

/// Checks the section (only when present).
pub fn validate(m: &MqttConfig) -> Result<(), ConfigError> {
    if m.urls.is_empty() {
        return Err(invalid("mqtt.urls", "at least one broker URL is needed"));
    }
    for (i, u) in m.urls.iter().enumerate() {
        let url = MqttUrl::parse(u).map_err(|e| invalid(format!("mqtt.urls[{i}]"), e))?;
        if url.tls && m.tls.is_none() {
            return Err(invalid(
                format!("mqtt.urls[{i}]"),
                "mqtts:// needs [mqtt.tls] with a ca_file",
            ));
        }
    }
    if m.client_id.is_empty() || m.client_id.len() > 65_535 {
        return Err(invalid(
            "mqtt.client_id",
            "must be set (a persistent session is kept under it)",
        ));
    }
    if m.password.is_some() && m.username.is_none() {
        return Err(invalid("mqtt.password", "needs mqtt.username"));
    }
    if let Some(t) = &m.tls
        && t.cert_file.is_some() != t.key_file.is_some()
    {
        return Err(invalid("mqtt.tls", "cert_file and key_file go together"));
    }
    let whole_secs = |d: Duration| d.subsec_nanos() == 0 && d.as_secs() >= 1;
    if !whole_secs(m.keepalive) || m.keepalive.as_secs() > 65_535 {
        return Err(invalid(
            "mqtt.keepalive",
            "whole seconds between 1s and 65535s (MQTT counts it in seconds)",
        ));
    }
    if !whole_secs(m.connect_timeout) {
        return Err(invalid(
            "mqtt.connect_timeout",
            "whole seconds, at least 1s",
        ));
    }
    if m.reconnect_delay_min.is_zero() || m.reconnect_delay_max < m.reconnect_delay_min {
        return Err(invalid(
            "mqtt.reconnect_delay_min",
            "must be above zero and at most reconnect_delay_max",
        ));
    }
    if m.max_inflight == 0 {
        return Err(invalid("mqtt.max_inflight", "must be at least 1"));
    }
    if m.max_unacked == 0 || m.max_unacked > MAX_UNACKED {
        return Err(invalid("mqtt.max_unacked", "between 1 and 65535"));
    }
    if m.queue == 0 {
        return Err(invalid("mqtt.queue", "must be at least 1"));
    }
    if m.max_packet_size < 64 || m.max_packet_size > 268_435_455 {
        return Err(invalid(
            "mqtt.max_packet_size",
            "between 64 bytes and 256 MiB (MQTT's limit)",
        ));
    }
    if m.import.is_empty() && m.export.is_empty() {
        return Err(invalid(
            "mqtt",
            "nothing to bridge: add [[mqtt.import]] or [[mqtt.export]]",
        ));
    }
    for (i, imp) in m.import.iter().enumerate() {
        mapping::Import::new(imp).map_err(|e| invalid(format!("mqtt.import[{i}]"), e))?;
    }
    for (i, exp) in m.export.iter().enumerate() {
        mapping::Export::new(exp).map_err(|e| invalid(format!("mqtt.export[{i}]"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        let u = MqttUrl::parse("mqtt://broker").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "broker", 1883));
        let u = MqttUrl::parse("mqtts://10.0.0.1:18883").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "10.0.0.1", 18883));
        let u = MqttUrl::parse("tcp://[::1]:1884/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1884));
        assert!(MqttUrl::parse("ssl://h").unwrap().tls);
        for bad in [
            "broker:1883",
            "http://h",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://u:p@h",
        ] {
            assert!(MqttUrl::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    fn load(text: &str) -> Result<crate::Config, String> {
        crate::Config::from_toml(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_section_loads_with_defaults_for_everything_left_out() {
        let c = load(
            "[mqtt]\nurls = [\"mqtt://broker\"]\n[[mqtt.import]]\ntopic = \"sensors/#\"\n\
             [[mqtt.export]]\nsubject = \"cmd.>\"\nqos = 1\nretain = true\n",
        )
        .unwrap();
        let m = c.mqtt.unwrap();
        assert_eq!(m.client_id, "twig-bridge");
        assert!(!m.clean_session, "a persistent session by default");
        assert_eq!(m.keepalive, Duration::from_secs(30));
        assert_eq!(m.max_unacked, MAX_UNACKED);
        assert_eq!(
            (m.import[0].qos, m.import[0].subject_prefix.as_deref()),
            (1, None)
        );
        assert_eq!(
            (m.export[0].qos, m.export[0].retain, m.export[0].queue),
            (1, true, 1024)
        );
        assert!(load("port = 4222\n").unwrap().mqtt.is_none());
    }

    #[test]
    fn mistakes_are_named() {
        let base = "[[mqtt.import]]\ntopic = \"a/#\"\n";
        for (section, needle) in [
            ("[mqtt]\nurls = []\n", "mqtt.urls"),
            ("[mqtt]\nurls = [\"mqtts://b\"]\n", "mqtt.urls[0]"),
            ("[mqtt]\nurls = [\"http://b\"]\n", "mqtt.urls[0]"),
            (
                "[mqtt]\nurls = [\"mqtt://b\"]\nkeepalive = \"500ms\"\n",
                "mqtt.keepalive",
            ),
            (
                "[mqtt]\nurls = [\"mqtt://b\"]\nclient_id = \"\"\n",
                "mqtt.client_id",
            ),
            (
                "[mqtt]\nurls = [\"mqtt://b\"]\npassword = \"p\"\n",
                "mqtt.password",
            ),
            (
                "[mqtt]\nurls = [\"mqtt://b\"]\nmax_unacked = 70000\n",
                "mqtt.max_unacked",
            ),
            ("[mqtt]\nurls = [\"mqtt://b\"]\nbogus = 1\n", "bogus"),
        ] {
            let e = load(&format!("{section}{base}")).unwrap_err();
            assert!(e.contains(needle), "{section}: {e}");
        }
        let url = "[mqtt]\nurls = [\"mqtt://b\"]\n";
        for (body, needle) in [
            ("[[mqtt.import]]\ntopic = \"a/#/b\"\n", "mqtt.import[0]"),
            (
                "[[mqtt.import]]\ntopic = \"a\"\nqos = 2\n",
                "mqtt.import[0]",
            ),
            (
                "[[mqtt.import]]\ntopic = \"a\"\nsubject_prefix = \"x\"\n",
                "mqtt.import[0]",
            ),
            ("[[mqtt.export]]\nsubject = \"a..b\"\n", "mqtt.export[0]"),
            (
                "[[mqtt.export]]\nsubject = \"a.>\"\nstrip_prefix = \"b.\"\n",
                "mqtt.export[0]",
            ),
            ("", "nothing to bridge"),
        ] {
            let e = load(&format!("{url}{body}")).unwrap_err();
            assert!(e.contains(needle), "{body}: {e}");
        }
    }
}
