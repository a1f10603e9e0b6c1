//! `store_dir` and `[[streams]]`: flash-backed streams (see the `stream` component).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{ConfigError, invalid, values};

/// One `[[streams]]` entry.
///
/// Limits and how each is enforced (the log drops or reclaims whole 64 KiB sectors only):
/// - `max_bytes`: the size of the pre-allocated file; the ring can never hold more. When every
///   sector holds unforwarded messages, `when_full` decides.
/// - `max_msgs`: after each append, messages beyond the newest `max_msgs` are marked done
///   (acknowledged: never forwarded, and their sectors become reusable). The file may still
///   hold them until their sector is reused.
/// - `max_age`: checked once a second by the stream's thread; messages older than it are
///   marked done the same way.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// The stream's name (the PubAck's `stream`): no spaces, dots, `*`, `>`, or path separators.
    pub name: String,
    /// Subjects stored (wildcards allowed).
    pub subjects: Vec<String>,
    /// The file; default `<store_dir>/<name>.stream`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// File size (a multiple of 64 KiB, at least 128 KiB). Default 64 MiB.
    #[serde(default = "default_max_bytes", deserialize_with = "values::de_size")]
    pub max_bytes: usize,
    /// Keep at most this many messages (0 = no limit).
    #[serde(default)]
    pub max_msgs: u64,
    /// Keep messages at most this long (absent = no limit).
    #[serde(default, deserialize_with = "values::de_opt_duration")]
    pub max_age: Option<Duration>,
    /// What to do when the file is full of unforwarded messages.
    #[serde(default)]
    pub when_full: WhenFullConfig,
    /// When messages are made durable (and so acknowledged).
    #[serde(default)]
    pub sync: SyncPolicy,
    /// `Nats-Msg-Id` de-duplication window (nats-server's default: 2 minutes).
    #[serde(
        default = "default_dup_window",
        deserialize_with = "values::de_duration"
    )]
    pub duplicate_window: Duration,
    /// Most `Nats-Msg-Id`s remembered (about 160 bytes of RAM each: the id twice, a map entry
    /// and an arrival-order entry); beyond it the oldest are
    /// forgotten before the window ends.
    #[serde(default = "default_dup_max")]
    pub max_duplicate_ids: usize,
    /// Bytes of messages waiting for the stream's thread, at most (default 4 MiB; each
    /// message counts its record, reply subject, id and bookkeeping). While the queue is
    /// full a publisher's reader pauses (its socket fills, TCP slows the client), so a flood
    /// of large messages holds this much memory, not the messages' count times their size.
    /// A message is let in while the queue is below the limit, so the queue may go one
    /// message over it and any message fits.
    #[serde(default = "default_queue_bytes", deserialize_with = "values::de_size")]
    pub queue_bytes: usize,
    /// How the stream drains upstream (see [`ForwardMode`]); absent = `jetstream` when
    /// `[leafnodes]` has a remote, else `off`. Resolve with [`StreamConfig::forward_mode`].
    #[serde(default)]
    pub forward: Option<ForwardMode>,
    /// Messages sent to the hub and not yet acknowledged, at most (default 4096). Within it
    /// the forwarder keeps about two bandwidth-delay products of the link in flight (measured
    /// from the PubAcks), so a slow link is not flooded and a fast one is kept busy; raise it
    /// for links of over ~10 Mbit/s with long round trips.
    #[serde(default = "default_forward_window")]
    pub forward_window: usize,
    /// The retransmission timeout until the link's round trip is measured (default 5s); then
    /// timeouts follow the measured round trip as TCP's do (RFC 6298), and only messages
    /// presumed lost are sent again.
    #[serde(
        default = "default_forward_ack_timeout",
        deserialize_with = "values::de_duration"
    )]
    pub forward_ack_timeout: Duration,
    /// Which `[[leafnodes.remotes]]` entry (by position, from 0) the stream drains to.
    #[serde(default)]
    pub forward_remote: usize,
    /// Streams draining to the same remote with a higher priority go first (default 0): a
    /// stream sends new messages only while no higher one has a backlog waiting.
    #[serde(default)]
    pub forward_priority: u8,
}

/// `forward`: how a stream's messages reach the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardMode {
    /// Published to the hub's JetStream with `Nats-Msg-Id` = `<gateway>.<stream>.<seq>`;
    /// a message is done once the hub's PubAck says it is stored (or a duplicate): exactly
    /// once within the hub stream's duplicate window.
    Jetstream,
    /// Core publish to a hub without JetStream, acknowledged by a PING/PONG round trip once
    /// written: the hub has processed it (delivered to whoever was interested). At least
    /// once: after a crash or a lost link the unacknowledged tail is sent again.
    Core,
    /// Kept locally only; live publishes still reach the hub where it has interest.
    Off,
}

fn default_forward_window() -> usize {
    4096
}

fn default_forward_ack_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_dup_max() -> usize {
    100_000
}

fn default_queue_bytes() -> usize {
    4 * 1024 * 1024
}

fn default_max_bytes() -> usize {
    64 * 1024 * 1024
}

fn default_dup_window() -> Duration {
    Duration::from_secs(120)
}

/// `when_full`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFullConfig {
    /// Drop the oldest sector of messages (counted in monitoring).
    #[default]
    DropOldest,
    /// Refuse new messages with a JetStream-style error.
    Refuse,
}

/// `sync`: `"always"` (group commit: fsync before acknowledging, one fsync per batch of
/// messages that arrived together) or an interval (`"100ms"`: acknowledge once written, fsync
/// at most that late; a power cut may lose the last interval).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Group commit.
    #[default]
    Always,
    /// fsync at this interval.
    Interval(Duration),
}

impl<'de> Deserialize<'de> for SyncPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "always" {
            return Ok(SyncPolicy::Always);
        }
        values::parse_duration(&s)
            .map(SyncPolicy::Interval)
            .map_err(|e| serde::de::Error::custom(format!("sync: `always` or a duration: {e}")))
    }
}

/// Sector size of a file-backed stream: the unit the log erases, reclaims and drops, and the
/// largest record it can hold (a message plus its subject, headers and 14 bytes of framing).
/// Here because `max_bytes` is checked against it.
pub const SECTOR: usize = 64 * 1024;

/// Checks each stream and that names are unique; `remotes` is the number of configured
/// `[[leafnodes.remotes]]` (a forwarding stream needs its remote).
pub fn validate(streams: &[StreamConfig], remotes: usize) -> Result<(), ConfigError> {
    let sector = SECTOR;
    for (i, s) in streams.iter().enumerate() {
        let opt = |f: &str| format!("streams[{i}].{f}");
        if s.name.is_empty()
            || s.name
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
        {
            return Err(invalid(
                opt("name"),
                format!("{:?} is not a stream name", s.name),
            ));
        }
        if streams[..i].iter().any(|o| o.name == s.name) {
            return Err(invalid(
                opt("name"),
                format!("{:?} is declared twice", s.name),
            ));
        }
        if s.subjects.is_empty() {
            return Err(invalid(opt("subjects"), "at least one subject is needed"));
        }
        for subj in &s.subjects {
            if twig_core::subject::validate(subj.as_bytes()).is_err() {
                return Err(invalid(
                    opt("subjects"),
                    format!("{subj:?} is not a valid subject"),
                ));
            }
        }
        if !s.max_bytes.is_multiple_of(sector)
            || s.max_bytes < 2 * sector
            || s.max_bytes as u64 > 1 << 31
        {
            return Err(invalid(
                opt("max_bytes"),
                format!(
                    "{} must be a multiple of 64 KiB, from 128 KiB to 2 GiB",
                    s.max_bytes
                ),
            ));
        }
        if s.queue_bytes < sector {
            return Err(invalid(opt("queue_bytes"), "must be at least 64 KiB"));
        }
        if s.max_duplicate_ids == 0 {
            return Err(invalid(opt("max_duplicate_ids"), "must be at least 1"));
        }
        if s.forward_window == 0 || s.forward_window > 65_536 {
            return Err(invalid(opt("forward_window"), "must be from 1 to 65536"));
        }
        if s.forward_ack_timeout.is_zero() {
            return Err(invalid(opt("forward_ack_timeout"), "must be above zero"));
        }
        if s.forward_mode(remotes) != ForwardMode::Off && s.forward_remote >= remotes {
            return Err(invalid(
                opt("forward"),
                format!(
                    "forwarding needs [[leafnodes.remotes]] entry {} (there are {remotes})",
                    s.forward_remote
                ),
            ));
        }
        if let SyncPolicy::Interval(d) = s.sync
            && d.is_zero()
        {
            return Err(invalid(
                opt("sync"),
                "the interval must be above zero (or `always`)",
            ));
        }
    }
    Ok(())
}

impl StreamConfig {
    /// The forwarding mode in force given the number of configured remotes.
    pub fn forward_mode(&self, remotes: usize) -> ForwardMode {
        self.forward.unwrap_or(if remotes > 0 {
            ForwardMode::Jetstream
        } else {
            ForwardMode::Off
        })
    }

    /// The stream's file.
    pub fn path(&self, store_dir: &std::path::Path) -> PathBuf {
        self.file
            .clone()
            .unwrap_or_else(|| store_dir.join(format!("{}.stream", self.name)))
    }
}
