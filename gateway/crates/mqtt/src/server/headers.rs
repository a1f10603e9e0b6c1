//! MQTT 5 properties <-> NATS headers and reply subjects.
//!
//! MQTT -> NATS (a device's PUBLISH):
//! - `Nmqtt-Pub: <qos>` always (as nats-server and the bridge set it), `Twig-Mqtt-Retain: 1`
//!   on retained messages (as the bridge), `Nats-Msg-Id` for QoS 1/2 (stream de-duplication).
//! - User properties become headers of the same name and value (a name that is not a valid
//!   NATS header name, or a value with CR/LF, is left out). Payload format, content type and
//!   message expiry become `Twig-Mqtt-Payload-Format`, `Twig-Mqtt-Content-Type`,
//!   `Twig-Mqtt-Expiry` (seconds).
//! - Response topic and correlation data become the reply subject
//!   `$MQTT.rsp.<correlation as hex, or _>.<subject of the response topic>`. Whoever answers
//!   the NATS request publishes to it; twig subscribes `$MQTT.rsp.>` and republishes the
//!   answer to the response topic with the correlation data (see [`decode_reply`]). The
//!   subject carries everything, so twig keeps no table of open requests. nats-server keeps
//!   `$MQTT.` for its MQTT state and twig-core's mapping refuses MQTT filters that map into
//!   it, so no device can subscribe to other devices' answers. Correlation data longer than
//!   [`MAX_CORRELATION`] bytes would not fit a NATS control line: the reply subject is then
//!   the response topic's subject alone and the correlation data is lost (logged by the shell).
//!
//! NATS -> MQTT (a delivery to an MQTT 5 subscriber): the reverse. Every header but
//! `Nmqtt-*`, `Twig-Mqtt-*` and `Nats-*` (NATS's own metadata) becomes a user property; a
//! reply subject becomes the response topic (`_INBOX.x` -> `_INBOX/x`, so a device answers a
//! NATS request by publishing to it), or, for `$MQTT.rsp.` subjects, the response topic and
//! correlation data it encodes.

use twig_core::mqtt::packet::{PropWriter, QoS, Value, props::id};
use twig_core::mqtt::{max_subject_len, publish_topic_to_subject, subject_to_topic};
use twig_core::wire::{HeaderWriter, Headers};

/// Prefix of the reply subjects that carry a response topic.
pub const REPLY_PREFIX: &str = "$MQTT.rsp.";

/// Longest correlation data carried in a reply subject (as hex: 1 KiB of the subject).
pub const MAX_CORRELATION: usize = 512;

/// Header names.
pub const NMQTT_PUB: &str = "Nmqtt-Pub";
/// The retain flag of an MQTT-originated message.
pub const RETAIN: &str = "Twig-Mqtt-Retain";
/// MQTT 5 payload format indicator.
pub const PAYLOAD_FORMAT: &str = "Twig-Mqtt-Payload-Format";
/// MQTT 5 content type.
pub const CONTENT_TYPE: &str = "Twig-Mqtt-Content-Type";
/// MQTT 5 message expiry interval (seconds).
pub const EXPIRY: &str = "Twig-Mqtt-Expiry";
/// Stream de-duplication id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// MQTT 5 correlation data (hex) of an answer twig republished from a `$MQTT.rsp.` subject to
/// its response topic.
pub const CORRELATION: &str = "Twig-Mqtt-Correlation";

/// An answer published to a `$MQTT.rsp.` reply subject, as it goes to its response topic: the
/// topic's subject, and the header block with the correlation data added.
pub fn answer(subject: &str, headers: Option<&[u8]>) -> Option<(String, Vec<u8>)> {
    let (topic, corr) = decode_reply(subject)?;
    let target = topic_subject(&topic)?;
    let hex: Option<String> = corr.map(|c| c.iter().map(|b| format!("{b:02x}")).collect());
    let mut fields: Vec<(String, String)> = Vec::new();
    if let Some(h) = headers.and_then(|h| Headers::parse(h).ok()) {
        for (k, v) in h.iter() {
            if let (Ok(k), Ok(v)) = (std::str::from_utf8(k), std::str::from_utf8(v))
                && !k.eq_ignore_ascii_case(CORRELATION)
            {
                fields.push((k.to_string(), v.to_string()));
            }
        }
    }
    if let Some(h) = hex {
        fields.push((CORRELATION.to_string(), h));
    }
    let block = if fields.is_empty() {
        Vec::new()
    } else {
        header_block(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    };
    Some((target, block))
}

/// Maps a topic to its subject (nats-server's mapping).
pub fn topic_subject(topic: &str) -> Option<String> {
    let mut buf = vec![0u8; max_subject_len(topic.len())];
    let n = publish_topic_to_subject(topic.as_bytes(), &mut buf).ok()?;
    buf.truncate(n);
    String::from_utf8(buf).ok()
}

/// Maps a subject to its topic.
pub fn subject_topic(subject: &str) -> Option<String> {
    let mut buf = vec![0u8; subject.len()];
    let n = subject_to_topic(subject.as_bytes(), &mut buf).ok()?;
    buf.truncate(n);
    String::from_utf8(buf).ok()
}

/// The reply subject for a response topic and correlation data; `None` if the response topic
/// does not map (the caller refuses the PUBLISH: MQTT-3.3.2-14).
pub fn encode_reply(response_topic: &str, correlation: Option<&[u8]>) -> Option<String> {
    let subject = topic_subject(response_topic)?;
    let corr = match correlation {
        Some(c) if c.len() > MAX_CORRELATION => return Some(subject),
        Some(c) if !c.is_empty() => c.iter().map(|b| format!("{b:02x}")).collect(),
        _ => "_".to_string(),
    };
    Some(format!("{REPLY_PREFIX}{corr}.{subject}"))
}

/// The response topic and correlation data a `$MQTT.rsp.` subject carries.
pub fn decode_reply(subject: &str) -> Option<(String, Option<Vec<u8>>)> {
    let rest = subject.strip_prefix(REPLY_PREFIX)?;
    let (corr, subject) = rest.split_once('.')?;
    let correlation = if corr == "_" {
        None
    } else {
        if corr.len() % 2 != 0 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..corr.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(corr.get(i..i + 2)?, 16).ok())
            .collect();
        Some(bytes?)
    };
    Some((subject_topic(subject)?, correlation))
}

/// A NATS header block from `(name, value)` pairs; fields NATS cannot carry are left out.
pub fn header_block<'a>(fields: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Vec<u8> {
    let len: usize = 12
        + fields
            .clone()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
    let mut buf = vec![0u8; len];
    let Ok(mut w) = HeaderWriter::new(&mut buf) else {
        return Vec::new();
    };
    for (k, v) in fields {
        // A field NATS refuses (a name with a blank or ':', a value with CR/LF) is skipped.
        let _ = w.push(k.as_bytes(), v.as_bytes());
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// `Nats-Msg-Id` of a QoS 1 message: the same for every delivery of it (the client keeps
/// the packet id when it sends it again), different for another message under the same id
/// unless topic and payload are the same too. FNV-1a: stable across builds and machines.
pub fn qos1_msg_id(client_id: &str, pkid: u16, topic: &str, payload: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in topic.as_bytes().iter().chain(&[0xff]).chain(payload) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{client_id}:{pkid}:{h:016x}")
}

/// The properties of an incoming PUBLISH as NATS headers, in one block with `Nmqtt-Pub`.
pub struct Inbound<'a> {
    /// QoS.
    pub qos: QoS,
    /// RETAIN.
    pub retain: bool,
    /// `Nats-Msg-Id`.
    pub msg_id: Option<&'a str>,
    /// The PUBLISH's property block (MQTT 5), empty for 3.1.1.
    pub props: twig_core::mqtt::packet::Props<'a>,
}

impl Inbound<'_> {
    /// The header block.
    pub fn block(&self) -> Vec<u8> {
        let qos = match self.qos {
            QoS::AtMostOnce => "0",
            QoS::AtLeastOnce => "1",
            QoS::ExactlyOnce => "2",
        };
        let format = self.props.byte(id::PAYLOAD_FORMAT).map(|b| b.to_string());
        let expiry = self.props.u32(id::MESSAGE_EXPIRY).map(|s| s.to_string());
        let mut fields: Vec<(&str, &str)> = vec![(NMQTT_PUB, qos)];
        if self.retain {
            fields.push((RETAIN, "1"));
        }
        if let Some(id) = self.msg_id {
            fields.push((MSG_ID, id));
        }
        if let Some(f) = &format {
            fields.push((PAYLOAD_FORMAT, f));
        }
        if let Some(c) = self.props.str(id::CONTENT_TYPE) {
            fields.push((CONTENT_TYPE, c));
        }
        if let Some(e) = &expiry {
            fields.push((EXPIRY, e));
        }
        fields.extend(self.props.user());
        header_block(fields.iter().copied())
    }
}

/// What a NATS message's headers say for MQTT delivery.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// QoS it was published with from MQTT (`Nmqtt-Pub`), if it came from MQTT.
    pub qos: Option<QoS>,
    /// `Twig-Mqtt-Retain: 1`.
    pub retain: bool,
    /// Message expiry in seconds.
    pub expiry: Option<u32>,
    /// The MQTT 5 property block (payload format, content type, response topic, correlation
    /// data, user properties; expiry, alias and subscription id are added when sent).
    pub props: Vec<u8>,
}

/// Reads a delivery's headers and reply subject.
pub fn outbound(headers: Option<&[u8]>, reply: Option<&str>) -> Outbound {
    let mut o = Outbound::default();
    let mut props = Vec::new();
    let mut w = PropWriter::new(&mut props);
    if let Some(h) = headers.and_then(|h| Headers::parse(h).ok()) {
        for (k, v) in h.iter() {
            let (Ok(k), Ok(v)) = (std::str::from_utf8(k), std::str::from_utf8(v)) else {
                continue;
            };
            if k.eq_ignore_ascii_case(NMQTT_PUB) {
                o.qos = match v {
                    "0" => Some(QoS::AtMostOnce),
                    "1" => Some(QoS::AtLeastOnce),
                    "2" => Some(QoS::ExactlyOnce),
                    _ => None,
                };
            } else if k.eq_ignore_ascii_case(RETAIN) {
                o.retain = v == "1";
            } else if k.eq_ignore_ascii_case(EXPIRY) {
                o.expiry = v.parse().ok();
            } else if k.eq_ignore_ascii_case(PAYLOAD_FORMAT) {
                if v == "1" {
                    let _ = w.put(id::PAYLOAD_FORMAT, Value::Byte(1));
                }
            } else if k.eq_ignore_ascii_case(CONTENT_TYPE) {
                let _ = w.put(id::CONTENT_TYPE, Value::Str(v));
            } else if k.eq_ignore_ascii_case(CORRELATION) {
                if let Some(c) = unhex(v) {
                    let _ = w.put(id::CORRELATION_DATA, Value::Bin(&c));
                }
            } else if !is_internal(k) && !v.contains('\0') && !k.contains('\0') {
                let _ = w.put(id::USER_PROPERTY, Value::Pair(k, v));
            }
        }
    }
    if let Some(reply) = reply {
        let (topic, corr) = match decode_reply(reply) {
            Some((t, c)) => (Some(t), c),
            None => (subject_topic(reply), None),
        };
        if let Some(t) = topic {
            let _ = w.put(id::RESPONSE_TOPIC, Value::Str(&t));
        }
        if let Some(c) = corr {
            let _ = w.put(id::CORRELATION_DATA, Value::Bin(&c));
        }
    }
    o.props = props;
    o
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn is_internal(k: &str) -> bool {
    let lower = |p: &str| k.len() >= p.len() && k[..p.len()].eq_ignore_ascii_case(p);
    lower("Nmqtt-") || lower("Twig-Mqtt-") || lower("Nats-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subject_carries_response_topic_and_correlation() {
        let r = encode_reply("dev/1/resp", Some(&[0xAB, 0x01])).unwrap();
        assert_eq!(r, "$MQTT.rsp.ab01.dev.1.resp");
        assert_eq!(
            decode_reply(&r),
            Some(("dev/1/resp".into(), Some(vec![0xAB, 0x01])))
        );
        let r = encode_reply("a.b", None).unwrap();
        assert_eq!(r, "$MQTT.rsp._.a//b");
        assert_eq!(decode_reply(&r), Some(("a.b".into(), None)));
        assert_eq!(encode_reply("a/+", None), None, "wildcards are refused");
        let long = vec![1u8; MAX_CORRELATION + 1];
        assert_eq!(encode_reply("x", Some(&long)).as_deref(), Some("x"));
        assert_eq!(decode_reply("$MQTT.rsp.abc.x"), None, "odd hex");
    }

    #[test]
    fn an_answer_goes_to_its_response_topic_with_the_correlation_data() {
        let reply = encode_reply("dev/1/resp", Some(&[0xCA, 0xFE])).unwrap();
        let hdr = header_block([("unit", "C")].into_iter());
        let (subject, block) = answer(&reply, Some(&hdr)).unwrap();
        assert_eq!(subject, "dev.1.resp");
        let o = outbound(Some(&block), None);
        let props =
            twig_core::mqtt::packet::Props::new(&o.props, twig_core::mqtt::packet::Ctx::Publish)
                .unwrap();
        assert_eq!(props.bin(id::CORRELATION_DATA), Some(&[0xCA, 0xFE][..]));
        assert_eq!(props.user().collect::<Vec<_>>(), [("unit", "C")]);
        let (subject, block) = answer("$MQTT.rsp._.a.b", None).unwrap();
        assert_eq!((subject.as_str(), block.len()), ("a.b", 0));
        assert_eq!(answer("a.b", None), None, "not a reply subject");
    }

    #[test]
    fn headers_to_properties_and_back() {
        let block = header_block(
            [
                (NMQTT_PUB, "1"),
                (RETAIN, "1"),
                (CONTENT_TYPE, "json"),
                (PAYLOAD_FORMAT, "1"),
                (EXPIRY, "30"),
                ("Nats-Msg-Id", "x"),
                ("unit", "C"),
                ("bad key", "dropped"),
            ]
            .into_iter(),
        );
        let o = outbound(Some(&block), Some("_INBOX.abc"));
        assert_eq!(
            (o.qos, o.retain, o.expiry),
            (Some(QoS::AtLeastOnce), true, Some(30))
        );
        let props =
            twig_core::mqtt::packet::Props::new(&o.props, twig_core::mqtt::packet::Ctx::Publish)
                .unwrap();
        assert_eq!(props.str(id::CONTENT_TYPE), Some("json"));
        assert_eq!(props.byte(id::PAYLOAD_FORMAT), Some(1));
        assert_eq!(props.user().collect::<Vec<_>>(), [("unit", "C")]);
        assert_eq!(props.str(id::RESPONSE_TOPIC), Some("_INBOX/abc"));
    }
}
