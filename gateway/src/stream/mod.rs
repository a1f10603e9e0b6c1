//! Flash-backed streams: messages published on a stream's subjects are appended to a
//! twig-core [`Log`](twig_core::log::Log) in a pre-allocated file ([`flash::FileFlash`]) and,
//! when the publisher gave a reply subject, acknowledged with a JetStream-shaped PubAck once
//! durable per the stream's `sync` policy.
//!
//! Threads: the log's API is blocking, so each stream has one thread owning its log
//! ([`worker`]). Sessions hand it messages over a bounded channel; it appends everything that
//! is waiting, fsyncs once (group commit), then routes the PubAcks to the reply subjects through
//! the router (so the publisher's own inbox subscription gets them, like any reply).
//!
//! The router's hot path is untouched for other subjects: a session asks
//! [`Streams::find`] once per message only when streams are configured; it is a linear scan of
//! the stream filters (a gateway has a handful).

pub mod flash;
pub mod record;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::config::StreamConfig;
use crate::server::state::Shared;

/// Messages waiting for a stream's thread. When full, the publishing reader blocks until the
/// thread catches up: back-pressure to the publishers of stream subjects.
const QUEUE: usize = 4096;

/// Why streams could not start.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The file could not be opened or sized.
    #[error("stream {name}: cannot open {path}: {source}")]
    File {
        /// The stream.
        name: String,
        /// Its file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The log refused the file.
    #[error("stream {name}: cannot open the log in {path}: {reason}")]
    Log {
        /// The stream.
        name: String,
        /// Its file.
        path: String,
        /// What the log said.
        reason: String,
    },
    /// The thread could not be started.
    #[error("stream {name}: cannot start its thread: {source}")]
    Thread {
        /// The stream.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A message for a stream's thread.
pub struct Request {
    /// The encoded record ([`record::encode`]).
    pub record: Vec<u8>,
    /// Where the PubAck goes.
    pub reply: Option<Box<[u8]>>,
    /// `Nats-Msg-Id`, for de-duplication.
    pub msg_id: Option<Box<[u8]>>,
}

/// A stream's counters, as `/jsz` shows them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StreamState {
    /// The stream.
    pub name: String,
    /// The file.
    pub file: String,
    /// Messages on file (`last - first + 1`, acknowledged ones included until reclaimed).
    pub messages: u64,
    /// Bytes of the file in use (whole sectors).
    pub bytes: u64,
    /// The file's size.
    pub max_bytes: u64,
    /// Oldest sequence number on file.
    pub first_seq: u64,
    /// Newest sequence number.
    pub last_seq: u64,
    /// Everything up to here is done (forwarded or expired by a limit).
    pub acked_seq: u64,
    /// Messages after the acknowledged cursor.
    pub backlog: u64,
    /// Everything up to here is on disk.
    pub synced_seq: u64,
    /// Unforwarded messages dropped because the file was full (`drop_oldest`).
    pub dropped: u64,
    /// Messages refused because the file was full (`refuse`) or too large for a sector.
    pub refused: u64,
    /// Publishes answered as duplicates.
    pub duplicates: u64,
    /// Messages marked done by `max_msgs` or `max_age`.
    pub expired: u64,
}

/// One running stream.
pub struct Stream {
    /// Its configuration.
    pub config: StreamConfig,
    tx: SyncSender<Request>,
    state: Arc<Mutex<StreamState>>,
    /// Requests that found the queue full (the reader then waited).
    pub waits: AtomicU64,
}

/// Every configured stream.
pub struct Streams {
    streams: Vec<Stream>,
    filters: Vec<(Box<[u8]>, usize)>,
}

impl Streams {
    /// Opens every configured stream's file and starts its thread.
    pub fn start(shared: &Arc<Shared>) -> Result<Streams, StreamError> {
        let mut streams = Vec::new();
        let mut filters = Vec::new();
        for (i, cfg) in shared.config.streams.iter().enumerate() {
            let (tx, state) = worker::spawn(shared, cfg, QUEUE)?;
            for s in &cfg.subjects {
                filters.push((s.as_bytes().into(), i));
            }
            streams.push(Stream {
                config: cfg.clone(),
                tx,
                state,
                waits: AtomicU64::new(0),
            });
        }
        Ok(Streams { streams, filters })
    }

    /// The stream storing `subject`, if any (the first declared wins).
    pub fn find(&self, subject: &[u8]) -> Option<&Stream> {
        self.filters
            .iter()
            .find(|(f, _)| twig_core::subject::matches(f, subject))
            .and_then(|(_, i)| self.streams.get(*i))
    }

    /// Snapshots of every stream's counters.
    pub fn states(&self) -> Vec<StreamState> {
        self.streams
            .iter()
            .map(|s| s.state.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }
}

impl Stream {
    /// Hands a message to the stream's thread; blocks while its queue is full. Returns
    /// false if the thread is gone (its log failed; the failure was logged).
    pub fn submit(&self, req: Request) -> bool {
        match self.tx.try_send(req) {
            Ok(()) => true,
            Err(TrySendError::Full(req)) => {
                self.waits.fetch_add(1, Ordering::Relaxed);
                self.tx.send(req).is_ok()
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// A process-unique number (test directories).
#[cfg(test)]
pub(crate) fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
