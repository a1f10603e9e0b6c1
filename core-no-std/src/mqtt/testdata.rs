//! The mapping cases shared by twig-core's unit tests and the live test against a real
//! nats-server (`tests/tests/mqtt_mapping.rs`), so both check the very same table.
//!
//! Not part of the API: hidden from the docs and free to change.

use super::MqttError::{self, *};

/// An MQTT PUBLISH topic and the NATS subject it is published on, or why it is refused.
/// nats-server closes the MQTT connection on every refused topic and delivers nothing.
#[derive(Debug, Clone, Copy)]
pub struct PublishCase {
    /// The MQTT topic name.
    pub topic: &'static str,
    /// The NATS subject, or the error.
    pub subject: Result<&'static str, MqttError>,
}

/// The subscriptions an accepted filter maps to.
#[derive(Debug, Clone, Copy)]
pub struct FilterMapping {
    /// The main NATS subscription.
    pub subject: &'static str,
    /// The extra parent-level subscription of `x/#`.
    pub parent: Option<&'static str>,
    /// Top-level wildcard: `$`-subjects are not delivered.
    pub reserved: bool,
}

/// What nats-server does with a filter, where that needs saying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFilter {
    /// As twig-core: subscribes the mapping, or answers the SUBACK with failure (0x80).
    Same,
    /// twig-core refuses it, but nats-server subscribes this literal subject.
    Accepts(&'static str),
    /// nats-server treats the SUBSCRIBE as malformed and closes the connection.
    Disconnects,
}

/// An MQTT SUBSCRIBE filter, its mapping, and NATS subjects that must and must not reach it.
#[derive(Debug, Clone, Copy)]
pub struct FilterCase {
    /// The MQTT topic filter.
    pub filter: &'static str,
    /// The mapping, or the error twig-core returns.
    pub mapping: Result<FilterMapping, MqttError>,
    /// What nats-server does.
    pub server: ServerFilter,
    /// NATS subjects that are delivered to an MQTT client subscribed with the filter.
    pub hits: &'static [&'static str],
    /// NATS subjects that are not delivered to it.
    pub misses: &'static [&'static str],
}

/// A NATS subject and the MQTT topic a subscriber receives it with. nats-server sends an empty
/// topic where twig-core says [`MqttError::EmptyTopic`].
#[derive(Debug, Clone, Copy)]
pub struct SubjectCase {
    /// The NATS subject a message is published on.
    pub subject: &'static str,
    /// The MQTT topic it is delivered with.
    pub topic: Result<&'static str, MqttError>,
}

const fn publish(topic: &'static str, subject: &'static str) -> PublishCase {
    PublishCase {
        topic,
        subject: Ok(subject),
    }
}

const fn refused(topic: &'static str, error: MqttError) -> PublishCase {
    PublishCase {
        topic,
        subject: Err(error),
    }
}

/// Publish topics, from the plain to the corner cases of `/` and `.`.
pub const PUBLISH: &[PublishCase] = &[
    publish("foo", "foo"),
    publish("sensors/room1/temp", "sensors.room1.temp"),
    publish("a/b.c", "a.b//c"),
    publish("/x", "/.x"),
    publish("x/", "x./"),
    publish("/a/", "/.a./"),
    publish("a//b", "a./.b"),
    publish("a///b", "a././.b"),
    publish("/", "/./"),
    publish("//", "/././"),
    publish(".", "//"),
    publish("a.b", "a//b"),
    publish("./", "//./"),
    publish("/.", "/.//"),
    publish("a/./b", "a.//.b"),
    publish("$SYS/x", "$SYS.x"),
    publish("$foo/bar", "$foo.bar"),
    publish("température/é", "température.é"),
    publish("a\x0bb", "a\x0bb"),
    publish("a/*", "a.*"),
    publish("a/>", "a.>"),
    refused("", EmptyTopic),
    refused("a b", InvalidChar),
    refused("a\tb", InvalidChar),
    refused("a\nb", InvalidChar),
    refused("a\x7fb", InvalidChar),
    refused("a\0b", InvalidChar),
    refused("a/+", WildcardInTopic),
    refused("#", WildcardInTopic),
    refused("a/b#", WildcardInTopic),
];

const fn filter(
    filter: &'static str,
    subject: &'static str,
    parent: Option<&'static str>,
    reserved: bool,
    hits: &'static [&'static str],
    misses: &'static [&'static str],
) -> FilterCase {
    FilterCase {
        filter,
        mapping: Ok(FilterMapping {
            subject,
            parent,
            reserved,
        }),
        server: ServerFilter::Same,
        hits,
        misses,
    }
}

const fn bad_filter(filter: &'static str, error: MqttError, server: ServerFilter) -> FilterCase {
    FilterCase {
        filter,
        mapping: Err(error),
        server,
        hits: &[],
        misses: &[],
    }
}

const fn server_only(
    filter: &'static str,
    server_subject: &'static str,
    hits: &'static [&'static str],
) -> FilterCase {
    FilterCase {
        filter,
        mapping: Err(InvalidFilter),
        server: ServerFilter::Accepts(server_subject),
        hits,
        misses: &[],
    }
}

/// Topic filters, with subjects published on the NATS side to see which arrive.
#[rustfmt::skip]
pub const FILTERS: &[FilterCase] = &[
    filter("foo/bar", "foo.bar", None, false, &["foo.bar"], &["foo", "foo.bar.baz"]),
    filter("a/+", "a.*", None, false, &["a.b", "a./"], &["a", "a.b.c", "b.c"]),
    filter("+/b", "*.b", None, true, &["a.b", "/.b"], &["$x.b", "a.c", "b"]),
    filter("+", "*", None, true, &["a"], &["$x", "a.b"]),
    filter("#", ">", None, true, &["a", "a.b.c"], &["$x", "$SYS.x"]),
    filter("a/#", "a.>", Some("a"), false, &["a", "a.b", "a.b.c"], &["b", "ab"]),
    filter("a/+/#", "a.*.>", Some("a.*"), false, &["a.b", "a.b.c"], &["a"]),
    filter("+/#", "*.>", Some("*"), true, &["a", "a.b"], &["$x", "$x.y"]),
    filter("/#", "/.>", Some("/"), false, &["/.a", "/.a.b"], &["a"]),
    filter("a//#", "a./.>", Some("a./"), false, &["a./", "a./.b"], &["a", "a.b"]),
    filter("$foo/#", "$foo.>", Some("$foo"), false, &["$foo", "$foo.x"], &["foo.x"]),
    filter("$foo/+", "$foo.*", None, false, &["$foo.bar"], &["$foo"]),
    filter("/+", "/.*", None, false, &["/.a"], &["a"]),
    filter("a.b/+", "a//b.*", None, false, &["a//b.c"], &["a.b.c"]),
    filter("sensors/+/temp", "sensors.*.temp", None, false, &["sensors.r1.temp"], &["sensors.r1.hum"]),
    // A literal `*` becomes a NATS wildcard on nats-server too.
    filter("a/*", "a.*", None, false, &["a.b"], &["a"]),
    bad_filter("#/a", InvalidFilter, ServerFilter::Same),
    bad_filter("a/#/b", InvalidFilter, ServerFilter::Same),
    bad_filter("a/>/b", InvalidFilter, ServerFilter::Same),
    server_only("a+", "a*", &["a*"]),
    server_only("+a", "*a", &["*a"]),
    server_only("a#", "a>", &["a>"]),
    server_only("a/b#", "a.b>", &["a.b>"]),
    bad_filter("a b/#", InvalidChar, ServerFilter::Same),
    bad_filter("a\x7f", InvalidChar, ServerFilter::Same),
    bad_filter("$MQTT/sess/#", ReservedSubject, ServerFilter::Same),
    bad_filter("", EmptyTopic, ServerFilter::Disconnects),
    bad_filter("a\0", InvalidChar, ServerFilter::Disconnects),
];

const fn deliver(subject: &'static str, topic: &'static str) -> SubjectCase {
    SubjectCase {
        subject,
        topic: Ok(topic),
    }
}

/// NATS subjects and the MQTT topics subscribers receive them with.
pub const SUBJECTS: &[SubjectCase] = &[
    deliver("a", "a"),
    deliver("a.b", "a/b"),
    deliver("a//b", "a.b"),
    deliver("a./.b", "a//b"),
    deliver("/.x", "/x"),
    deliver("x./", "x/"),
    deliver("a.b//c", "a/b.c"),
    deliver("/./", "/"),
    deliver("//", "."),
    // A `/` not followed by `.` or `/` is dropped: the mapping is lossy for such subjects.
    deliver("a/b", "ab"),
    deliver("a/", "a"),
    deliver("a/x/b.c", "axb/c"),
    deliver("$foo.bar", "$foo/bar"),
    SubjectCase {
        subject: "/",
        topic: Err(EmptyTopic),
    },
];
