//! What crosses the bridge and under which name (the checked, compiled form of the
//! `[mqtt]` section: config validation builds it, the bridge uses it): `[[mqtt.import]]` topic filters and the
//! subjects their messages get, `[[mqtt.export]]` subject filters and the topics their messages
//! get. Pure functions over twig-core's `mqtt` mapping (exactly nats-server's), so the same
//! device topic is the same subject whether a device talks to twig's bridge or to a hub's
//! MQTT listener.

use twig_core::mqtt::{
    filter_to_subjects, is_reserved_topic, max_subject_len, max_topic_len,
    publish_topic_to_subject, subject_to_topic,
};

use super::{ExportConfig, ImportConfig};

/// One import: the MQTT subscription and how its topics become subjects.
#[derive(Debug, Clone)]
pub struct Import {
    /// The MQTT topic filter.
    pub filter: String,
    /// Subscription QoS (0 or 1).
    pub qos: u8,
    prefix: Vec<u8>,
    /// The filter starts with a wildcard level: MQTT never delivers `$` topics to it.
    reserved: bool,
}

impl Import {
    /// Checks an `[[mqtt.import]]`.
    pub fn new(c: &ImportConfig) -> Result<Import, String> {
        let mut buf = vec![0; max_subject_len(c.topic.len())];
        let subjects = filter_to_subjects(c.topic.as_bytes(), &mut buf)
            .map_err(|e| format!("topic {:?}: {e}", c.topic))?;
        let reserved = subjects.reserved;
        if c.qos > 1 {
            return Err(format!(
                "qos {}: 0 or 1 (QoS 2 is not bridged; subscribe with 1)",
                c.qos
            ));
        }
        let prefix = c.subject_prefix.clone().unwrap_or_default();
        if !prefix.is_empty() {
            let probe = format!("{prefix}x");
            if !prefix.ends_with('.')
                || twig_core::subject::validate_publish(probe.as_bytes()).is_err()
            {
                return Err(format!(
                    "subject_prefix {prefix:?}: subject tokens ending in `.`, without wildcards"
                ));
            }
        }
        Ok(Import {
            filter: c.topic.clone(),
            qos: c.qos,
            prefix: prefix.into_bytes(),
            reserved,
        })
    }

    /// Whether a topic the broker delivered belongs to this import. Brokers deliver by
    /// subscription, and twig has several on one connection, so a message is matched back to
    /// the import whose filter covers it (the first one, in configuration order).
    pub fn covers(&self, topic: &str) -> bool {
        if self.reserved && is_reserved_topic(topic.as_bytes()) {
            return false;
        }
        topic_matches(&self.filter, topic)
    }

    /// The NATS subject for a topic (appended to `out`), or why it cannot be mapped.
    pub fn subject(
        &self,
        topic: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), twig_core::mqtt::MqttError> {
        out.clear();
        out.extend_from_slice(&self.prefix);
        let start = out.len();
        out.resize(start + max_subject_len(topic.len()), 0);
        let n = publish_topic_to_subject(topic.as_bytes(), &mut out[start..])?;
        out.truncate(start + n);
        Ok(())
    }
}

/// MQTT topic filter matching (MQTT 3.1.1 §4.7): `+` one level, `#` the rest including the
/// parent level.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// One export: the NATS subscription and how its subjects become topics.
#[derive(Debug, Clone)]
pub struct Export {
    /// The NATS subject filter.
    pub subject: String,
    /// MQTT QoS of the publishes (0 or 1).
    pub qos: u8,
    /// Retain flag of the publishes.
    pub retain: bool,
    /// Messages waiting for the MQTT side.
    pub queue: usize,
    /// Bytes they may hold.
    pub queue_bytes: usize,
    strip: Vec<u8>,
    topic_prefix: String,
}

impl Export {
    /// Checks an `[[mqtt.export]]`.
    pub fn new(c: &ExportConfig) -> Result<Export, String> {
        if twig_core::subject::validate(c.subject.as_bytes()).is_err() {
            return Err(format!(
                "subject {:?} is not a valid subject filter",
                c.subject
            ));
        }
        if c.qos > 1 {
            return Err(format!("qos {}: 0 or 1", c.qos));
        }
        if c.queue == 0 {
            return Err("queue must be at least 1".into());
        }
        let strip = c.strip_prefix.clone().unwrap_or_default();
        if !strip.is_empty() && (!strip.ends_with('.') || !c.subject.starts_with(&strip)) {
            return Err(format!(
                "strip_prefix {strip:?} must end in `.` and start the subject {:?}",
                c.subject
            ));
        }
        let topic_prefix = c.topic_prefix.clone().unwrap_or_default();
        if topic_prefix.contains(['+', '#', '\0']) {
            return Err(format!(
                "topic_prefix {topic_prefix:?}: no wildcards or NUL"
            ));
        }
        Ok(Export {
            subject: c.subject.clone(),
            qos: c.qos,
            retain: c.retain,
            queue: c.queue,
            queue_bytes: c.queue_bytes,
            strip: strip.into_bytes(),
            topic_prefix,
        })
    }

    /// The MQTT topic a message on `subject` is published to: the prefix is stripped, the rest
    /// mapped back as nats-server does (`a.b//c` -> `a/b.c`), `topic_prefix` prepended.
    /// `None` when it maps to no valid topic (empty, or with MQTT wildcards).
    pub fn topic(&self, subject: &[u8]) -> Option<String> {
        let rest = subject
            .strip_prefix(self.strip.as_slice())
            .unwrap_or(subject);
        let mut buf = vec![0; max_topic_len(rest.len())];
        let n = subject_to_topic(rest, &mut buf).ok()?;
        buf.truncate(n);
        let mapped = String::from_utf8(buf).ok()?;
        let topic = format!("{}{mapped}", self.topic_prefix);
        // A NATS subject may hold `+` or `#`, which no MQTT PUBLISH may carry.
        (!topic.contains(['+', '#', '\0'])).then_some(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(topic: &str, prefix: Option<&str>) -> Import {
        Import::new(&ImportConfig {
            topic: topic.into(),
            qos: 1,
            subject_prefix: prefix.map(Into::into),
        })
        .unwrap()
    }

    fn export(subject: &str, strip: Option<&str>, prefix: Option<&str>) -> Export {
        Export::new(&ExportConfig {
            subject: subject.into(),
            strip_prefix: strip.map(Into::into),
            topic_prefix: prefix.map(Into::into),
            qos: 0,
            retain: false,
            queue: 8,
            queue_bytes: 1 << 20,
        })
        .unwrap()
    }

    fn subject(i: &Import, topic: &str) -> String {
        let mut out = Vec::new();
        i.subject(topic, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_publish_row_of_twig_core_maps_the_same_through_an_import() {
        let all = import("#", None);
        for case in twig_core::mqtt::testdata::PUBLISH {
            let mut out = Vec::new();
            let got = all.subject(case.topic, &mut out).map(|()| out);
            assert_eq!(
                got.as_deref().map_err(|e| *e),
                case.subject.map(str::as_bytes),
                "{}",
                case.topic
            );
        }
    }

    #[test]
    fn prefixes_and_edge_topics() {
        let i = import("sensors/#", Some("mqtt."));
        assert_eq!(subject(&i, "sensors/room1/temp"), "mqtt.sensors.room1.temp");
        assert_eq!(subject(&i, "sensors/a.b"), "mqtt.sensors.a//b");
        assert_eq!(subject(&i, "sensors//x"), "mqtt.sensors./.x");
        assert!(i.covers("sensors") && i.covers("sensors/x/y") && !i.covers("other/x"));
        let top = import("#", None);
        assert!(
            !top.covers("$SYS/broker/uptime"),
            "$ topics never match a top-level #"
        );
        assert!(import("$SYS/#", None).covers("$SYS/broker/uptime"));
        assert!(
            import("+/temp", None).covers("/temp"),
            "+ matches an empty level"
        );
        for bad in ["a/#/b", "a+", ""] {
            let c = ImportConfig {
                topic: bad.into(),
                qos: 0,
                subject_prefix: None,
            };
            assert!(Import::new(&c).is_err(), "{bad:?}");
        }
        let c = ImportConfig {
            topic: "a".into(),
            qos: 0,
            subject_prefix: Some("no-dot".into()),
        };
        assert!(Import::new(&c).is_err());
    }

    #[test]
    fn exports_map_subjects_back_to_topics() {
        let e = export("cmd.>", None, None);
        assert_eq!(e.topic(b"cmd.lamp.set").as_deref(), Some("cmd/lamp/set"));
        assert_eq!(e.topic(b"cmd.a//b").as_deref(), Some("cmd/a.b"));
        let e = export("mqtt.>", Some("mqtt."), Some("zigbee2mqtt/"));
        assert_eq!(
            e.topic(b"mqtt.lamp.set").as_deref(),
            Some("zigbee2mqtt/lamp/set")
        );
        assert_eq!(export("x.>", None, None).topic(b"x.a+b"), None);
        for case in twig_core::mqtt::testdata::SUBJECTS {
            let got = export(">", None, None).topic(case.subject.as_bytes());
            if let Ok(t) = case.topic
                && !t.contains(['+', '#'])
            {
                assert_eq!(got.as_deref(), Some(t), "{}", case.subject);
            }
        }
        assert!(
            Export::new(&ExportConfig {
                subject: "a.>".into(),
                strip_prefix: Some("b.".into()),
                topic_prefix: None,
                qos: 0,
                retain: false,
                queue: 1,
                queue_bytes: 1 << 20,
            })
            .is_err()
        );
    }

    #[test]
    fn filter_matching_follows_mqtt() {
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(!topic_matches("a/+/c", "a/b/d"));
        assert!(topic_matches("a/#", "a"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(!topic_matches("a/b", "a/b/c"));
        assert!(topic_matches("+", "a") && !topic_matches("+", "a/b"));
    }
}
