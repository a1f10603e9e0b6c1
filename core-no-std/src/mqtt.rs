//! MQTT topic <-> NATS subject mapping, exactly as nats-server maps them.
//!
//! nats-server's MQTT listener (`server/mqtt.go`, `mqttToNATSSubjectConversion` and
//! `natsSubjectToMQTTTopic`) turns every MQTT topic into a NATS subject with these rules, and
//! twig must use the same ones so that a device sees the same subjects whether it talks to
//! twig or to a hub:
//!
//! | MQTT                         | NATS                  |
//! |------------------------------|-----------------------|
//! | `a/b` (level separator)      | `a.b`                 |
//! | `a.b` (a literal dot)        | `a//b`                |
//! | `/a` (leading separator)     | `/.a`                 |
//! | `a/` (trailing separator)    | `a./`                 |
//! | `a//b` (empty level)         | `a./.b`               |
//! | `+` / `#` (filters only)     | `*` / `>`             |
//!
//! A filter `a/#` also matches the topic `a` itself, so it maps to two subscriptions, `a.>`
//! and `a` (see [`FilterSubjects::parent`]). Filters whose subject is `*`, `>` or starts with
//! `*.` never deliver subjects starting with `$` ([`FilterSubjects::delivers`], MQTT-4.7.2-1).
//!
//! Everything writes into a caller's buffer; [`max_subject_len`] and [`max_topic_len`] size it.
//! The reverse mapping [`subject_to_topic`] is what a NATS message's subject becomes when it is
//! delivered to an MQTT subscriber; it is lossy for subjects that did not come from MQTT
//! (nats-server drops a `/` that is not followed by `.` or `/`), but
//! `subject_to_topic(publish_topic_to_subject(t)) == t` for every topic that maps.

pub mod packet;
#[doc(hidden)]
pub mod testdata;

/// Why a topic, filter or subject could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MqttError {
    /// The topic or filter is empty (MQTT-4.7.3-1), or a subject maps to an empty topic.
    EmptyTopic,
    /// A publish topic contains `+` or `#` (MQTT-3.3.2-2).
    WildcardInTopic,
    /// A character nats-server refuses: NUL, ASCII whitespace (space, `\t`, `\n`, `\r`,
    /// `\f`) or DEL (0x7F).
    InvalidChar,
    /// The topic or filter is not valid UTF-8 (MQTT-1.5.3-1).
    InvalidUtf8,
    /// A filter with a misplaced wildcard: `#` not alone in the last level, `+` not alone in
    /// its level, or a `>` level that is not the last (nats-server refuses that subscription).
    InvalidFilter,
    /// A filter that maps into `$MQTT.`, which nats-server keeps for its own state.
    ReservedSubject,
    /// The output buffer is too small; [`max_subject_len`] / [`max_topic_len`] give a size
    /// that always fits.
    BufferTooSmall,
}

impl core::fmt::Display for MqttError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MqttError::EmptyTopic => "empty MQTT topic",
            MqttError::WildcardInTopic => "wildcard in MQTT publish topic",
            MqttError::InvalidChar => "character not supported in MQTT topics",
            MqttError::InvalidUtf8 => "MQTT topic is not valid UTF-8",
            MqttError::InvalidFilter => "invalid MQTT topic filter",
            MqttError::ReservedSubject => "MQTT filter maps into the reserved $MQTT. subjects",
            MqttError::BufferTooSmall => "output buffer too small",
        })
    }
}

/// The subscriptions an MQTT filter maps to, borrowing the caller's output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterSubjects<'a> {
    /// The NATS subscription subject (`a/+/#` -> `a.*.>`).
    pub subject: &'a [u8],
    /// For a filter ending in `/#`, the extra subscription that matches the parent level
    /// (`a/#` -> `a`), because MQTT's `#` also matches its parent (MQTT-4.7.1-2). nats-server
    /// derives it from the subject: any subject of 3+ bytes ending in `.>` gets one.
    pub parent: Option<&'a [u8]>,
    /// The filter starts with a wildcard level (`*`, `>` or `*.…`), so it must not deliver
    /// subjects that start with `$` (MQTT-4.7.2-1); see [`FilterSubjects::delivers`].
    pub reserved: bool,
}

impl FilterSubjects<'_> {
    /// Whether a message on `subject` that matched one of these subscriptions may be delivered
    /// to the MQTT subscriber: false for `$`-subjects on top-level wildcard filters.
    pub fn delivers(&self, subject: &[u8]) -> bool {
        !(self.reserved && is_reserved_topic(subject))
    }
}

/// Output size that always fits [`publish_topic_to_subject`] / [`filter_to_subjects`] for an
/// input of `topic_len` bytes: every byte becomes at most two, plus one trailing `/`.
pub const fn max_subject_len(topic_len: usize) -> usize {
    topic_len.saturating_mul(2).saturating_add(1)
}

/// Output size that always fits [`subject_to_topic`] for a subject of `subject_len` bytes
/// (the reverse mapping never grows).
pub const fn max_topic_len(subject_len: usize) -> usize {
    subject_len
}

/// Maps an MQTT PUBLISH topic name to the NATS subject nats-server publishes it on; returns the
/// subject's length in `out`.
///
/// Rejects what nats-server rejects (it closes the MQTT connection): an empty topic, invalid
/// UTF-8, NUL, whitespace, DEL, and the wildcards `+` and `#`. Like nats-server, the NATS
/// wildcard characters `*` and `>` pass through unchanged (`a/*` -> `a.*`).
pub fn publish_topic_to_subject(topic: &[u8], out: &mut [u8]) -> Result<usize, MqttError> {
    convert(topic, false, out)
}

/// Maps an MQTT SUBSCRIBE topic filter to the NATS subscription(s) nats-server creates for it.
///
/// Besides what [`publish_topic_to_subject`] rejects (wildcards aside), this rejects filters
/// nats-server answers with a SUBACK failure (a `>` level before the last; a subject starting
/// with `$MQTT.`) and, stricter than nats-server, filters MQTT 3.1.1 forbids: `#` that is not
/// the whole last level, `+` that is not a whole level (MQTT-4.7.1-2, 4.7.1-3). nats-server
/// would subscribe `a+` as the literal subject `a*`, a topic no MQTT client can publish.
pub fn filter_to_subjects<'a>(
    filter: &[u8],
    out: &'a mut [u8],
) -> Result<FilterSubjects<'a>, MqttError> {
    let len = convert(filter, true, &mut *out)?;
    check_filter_levels(filter)?;
    let out: &'a [u8] = out;
    let subject = out.get(..len).ok_or(MqttError::BufferTooSmall)?;
    if subject.starts_with(b"$MQTT.") {
        return Err(MqttError::ReservedSubject);
    }
    check_subscription_tokens(subject)?;
    let parent = match subject.strip_suffix(b".>") {
        Some(parent) if !parent.is_empty() => Some(parent),
        _ => None,
    };
    Ok(FilterSubjects {
        subject,
        parent,
        reserved: is_reserved_filter_subject(subject),
    })
}

/// Maps a NATS subject to the MQTT topic nats-server delivers it with; returns the topic's
/// length in `out`.
///
/// The reverse of [`publish_topic_to_subject`]: `.` -> `/`, `//` -> `.`, `/.` -> `/`, and any
/// other `/` is dropped, as nats-server does. A subject that maps to nothing (`/`) is
/// [`MqttError::EmptyTopic`]: nats-server would send an empty topic, which MQTT forbids.
pub fn subject_to_topic(subject: &[u8], out: &mut [u8]) -> Result<usize, MqttError> {
    let mut w = Writer { out, len: 0 };
    let mut rest = subject;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'/' => match rest.split_first() {
                Some((b'.', tail)) => {
                    w.push(b'/')?;
                    rest = tail;
                }
                Some((b'/', tail)) => {
                    w.push(b'.')?;
                    rest = tail;
                }
                // A lone `/` has no MQTT meaning; nats-server drops it.
                _ => {}
            },
            b'.' => w.push(b'/')?,
            other => w.push(other)?,
        }
    }
    if w.len == 0 {
        return Err(MqttError::EmptyTopic);
    }
    Ok(w.len)
}

/// Whether a filter's NATS subject is a top-level wildcard (`*`, `>`, or starting with `*.`),
/// which must not deliver `$`-subjects. nats-server's `isMQTTReservedSubscription`.
pub fn is_reserved_filter_subject(subject: &[u8]) -> bool {
    subject == b"*" || subject == b">" || subject.starts_with(b"*.")
}

/// Whether a topic or subject starts with `$` (system topics such as `$SYS/...`), which
/// top-level wildcard filters must not match.
pub fn is_reserved_topic(topic_or_subject: &[u8]) -> bool {
    topic_or_subject.first() == Some(&b'$')
}

/// Bytes written so far into a caller's buffer; overflow is an error, never a panic.
struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn push(&mut self, b: u8) -> Result<(), MqttError> {
        let slot = self
            .out
            .get_mut(self.len)
            .ok_or(MqttError::BufferTooSmall)?;
        *slot = b;
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    fn push2(&mut self, a: u8, b: u8) -> Result<(), MqttError> {
        self.push(a)?;
        self.push(b)
    }

    fn last(&self) -> Option<u8> {
        self.out.get(..self.len)?.last().copied()
    }
}

/// The one conversion nats-server uses for topic names and filters alike.
fn convert(topic: &[u8], wildcards_ok: bool, out: &mut [u8]) -> Result<usize, MqttError> {
    if topic.is_empty() {
        return Err(MqttError::EmptyTopic);
    }
    // nats-server validates UTF-8 and NUL on the whole topic before converting.
    if core::str::from_utf8(topic).is_err() {
        return Err(MqttError::InvalidUtf8);
    }
    if topic.contains(&0) {
        return Err(MqttError::InvalidChar);
    }
    let mut w = Writer { out, len: 0 };
    for (i, &b) in topic.iter().enumerate() {
        let next = topic.get(i.saturating_add(1)).copied();
        match b {
            b'/' => {
                // A separator that starts the topic or follows one that ended in `.` opens an
                // empty level: `/.`. One before another separator or at the end closes a
                // level before an empty one: `./`. Otherwise it is a plain `.`.
                if i == 0 || w.last() == Some(b'.') {
                    w.push2(b'/', b'.')?;
                } else if next.is_none() || next == Some(b'/') {
                    w.push2(b'.', b'/')?;
                } else {
                    w.push(b'.')?;
                }
            }
            // Whitespace would split a NATS control line; DEL is the subject tree's pivot.
            // (Vertical tab is not in nats-server's list and passes.)
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0x7f => return Err(MqttError::InvalidChar),
            b'.' => w.push2(b'/', b'/')?,
            b'+' | b'#' if !wildcards_ok => return Err(MqttError::WildcardInTopic),
            b'+' => w.push(b'*')?,
            b'#' => w.push(b'>')?,
            other => w.push(other)?,
        }
    }
    // A subject must not end in an empty token: `/` alone gave `/.`, close it.
    if w.last() == Some(b'.') {
        w.push(b'/')?;
    }
    Ok(w.len)
}

/// MQTT 3.1.1 wildcard placement: `+` and `#` fill a whole level, `#` only the last one.
fn check_filter_levels(filter: &[u8]) -> Result<(), MqttError> {
    let mut levels = filter.split(|&b| b == b'/').peekable();
    while let Some(level) = levels.next() {
        let has_plus = level.contains(&b'+');
        let has_hash = level.contains(&b'#');
        let whole = level.len() == 1;
        let last = levels.peek().is_none();
        if (has_plus && !whole) || (has_hash && !(whole && last)) {
            return Err(MqttError::InvalidFilter);
        }
    }
    Ok(())
}

/// What nats-server's sublist refuses to insert: an empty token or a `>` token before the end.
/// (A literal `>` level in an MQTT filter becomes such a token.)
fn check_subscription_tokens(subject: &[u8]) -> Result<(), MqttError> {
    let mut tokens = subject.split(|&b| b == b'.').peekable();
    while let Some(token) = tokens.next() {
        let last = tokens.peek().is_none();
        if token.is_empty() || (token == b">" && !last) {
            return Err(MqttError::InvalidFilter);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
