//! Layer 3, component `twig-stream`: flash-backed streams and their forwarder. It uses `router`,
//! `config`, `util` and twig-core, never another component: the streams plug into the router
//! as its durable store, and the forwarder reaches its hub through `Router::remote`.
//!
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
//! The streams plug into the router as its durable store ([`Streams`] is a
//! [`Store`], each [`Stream`] a [`Durable`]). The router's hot path is untouched for other
//! subjects: publishers ask [`Streams::find`] once per message only when streams are
//! configured; it is a linear scan of the stream filters (a gateway has a handful).

pub mod drain;
pub mod flash;
pub mod forward;
pub mod hub;
pub mod pace;
pub mod priority;
pub mod record;
pub mod reload;
mod worker;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_channel::{Sender, TrySendError};

use serde::Serialize;

use twig_config::Config;
use twig_config::StreamConfig;
use twig_router::store::{Durable, Store};
pub use twig_router::store::{Full, Notify, Stored, Submit};
use twig_router::{Message, Router};

/// What a queued [`Request`] costs beyond its buffers: the request itself and the
/// allocator's share of its (up to three) allocations.
const REQUEST_OVERHEAD: usize = std::mem::size_of::<Request>() + 3 * 16;

/// The bytes waiting for a stream's thread, bounded by the stream's `queue_bytes`. When full,
/// the publishing reader stops reading (asynchronously) until the thread catches up:
/// back-pressure to the publishers of stream subjects only, so a flood of large messages
/// holds `queue_bytes` of memory (plus one message per paused publisher), never the
/// messages' count times their size. Why not refuse instead: the publisher loses nothing
/// (as nats-server's JetStream, whose publishers are paused by TCP when its ingest queue is
/// full), and its socket buffer, not twig's heap, holds what it sends meanwhile.
pub(crate) struct Queue {
    /// Bytes queued now (see [`Request::cost`]).
    bytes: AtomicUsize,
    /// `queue_bytes`.
    limit: usize,
    /// Notified when the thread took requests (publishers waiting for room retry).
    room: event_listener::Event,
}

impl Queue {
    fn new(limit: usize) -> Queue {
        Queue {
            bytes: AtomicUsize::new(0),
            limit,
            room: event_listener::Event::new(),
        }
    }

    /// Counts `n` bytes in if the queue is below its limit. A message is let in while there
    /// is any room at all, so one larger than the whole limit still goes in (the queue then
    /// holds at most the limit plus one message) and large messages do not wait longer than
    /// small ones.
    fn reserve(&self, n: usize) -> bool {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b < self.limit).then_some(b + n)
            })
            .is_ok()
    }

    /// The stream's thread took a request of `n` bytes.
    pub(crate) fn release(&self, n: usize) {
        self.bytes.fetch_sub(n, Ordering::AcqRel);
    }

    /// Wakes the publishers waiting for room (once per round of the thread, not per request).
    pub(crate) fn wake(&self) {
        self.room.notify(usize::MAX);
    }
}

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
    /// Told the outcome once it is known (after the sync, like the PubAck): for components
    /// that hold their own acknowledgement until the message is durable (the MQTT bridge's
    /// PUBACK).
    pub notify: Option<Notify>,
    /// Refused before queuing: larger than a sector, the largest record the log stores (the
    /// thread answers it, in order, with the same 400 error PubAck as the log would).
    pub too_large: bool,
}

impl Request {
    /// Bytes it holds while queued.
    pub(crate) fn cost(&self) -> usize {
        self.record.capacity()
            + self.reply.as_ref().map_or(0, |r| r.len())
            + self.msg_id.as_ref().map_or(0, |r| r.len())
            + REQUEST_OVERHEAD
    }
}

/// A stream's counters, as `/jsz` shows them.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
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
    /// `max_msgs` in force (0 = no limit; a reload may change it).
    pub max_msgs: u64,
    /// `max_age` in force, in nanoseconds as JetStream's (0 = no limit).
    pub max_age: u64,
    /// `when_full` in force: `drop_oldest` or `refuse`.
    pub when_full: String,
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
    /// `forward`: `jetstream`, `core` or `off`.
    pub forward: String,
    /// `off`, `waiting for link`, `waiting for hub interest`, `waiting for a
    /// higher-priority stream`, `backing off`, `draining` or `idle`.
    pub forward_state: String,
    /// Messages the hub acknowledged (PubAck, duplicates included; `core`: PONG).
    pub forwarded: u64,
    /// Messages sent to the hub, re-sends included.
    pub forward_sent: u64,
    /// Sent and not yet acknowledged.
    pub in_flight: u64,
    /// Retransmission timeouts (each re-sent one message).
    pub forward_timeouts: u64,
    /// Messages re-sent because later ones were acknowledged and they were not.
    pub forward_lost: u64,
    /// `forward_priority`.
    pub forward_priority: u8,
    /// Smoothed round trip, write to PubAck, in milliseconds (0: not measured).
    pub forward_rtt_ms: f64,
    /// Shortest round trip on this connection, in milliseconds.
    pub forward_min_rtt_ms: f64,
    /// The retransmission timeout now, in milliseconds.
    pub forward_rto_ms: f64,
    /// Measured delivery rate to the hub, bytes per second (0: not measured).
    pub forward_rate: u64,
    /// Bytes the forwarder keeps in flight at most now (about 2 bandwidth-delay products).
    pub forward_window_bytes: u64,
    /// Bytes queued or in flight.
    pub forward_inflight_bytes: u64,
    /// Error PubAcks.
    pub forward_errors: u64,
    /// Messages never forwarded: refused by the hub for good (a 4xx error such as a size
    /// limit of the hub's stream), or unsendable (larger than the hub's `max_payload`, not
    /// allowed by its permissions).
    pub forward_skipped: u64,
    /// The last error PubAck or forwarding problem.
    pub last_forward_error: Option<String>,
    /// Publishes that found the stream's queue full (their publisher waited for room).
    pub queue_waits: u64,
    /// Bytes waiting for the stream's thread now.
    pub queued_bytes: u64,
    /// `queue_bytes`: the most bytes that may wait for the stream's thread.
    pub queue_bytes: u64,
}

/// One running stream.
pub struct Stream {
    /// Its configuration as started (a reload's limits live in its thread, see
    /// [`Streams::reload`]).
    pub config: StreamConfig,
    forwards: bool,
    tx: Sender<Request>,
    queue: Arc<Queue>,
    /// New limits for its thread (a reload).
    limits: Sender<reload::Limits>,
    state: Arc<Mutex<StreamState>>,
    /// Requests that found the queue full (their reader then waited for room).
    pub waits: AtomicU64,
}

/// Every configured stream.
pub struct Streams {
    streams: Vec<Stream>,
    filters: Vec<(Box<[u8]>, usize)>,
}

impl Streams {
    /// Opens every configured stream's file and starts its thread; PubAcks and forwarded
    /// messages go through `router` (register the result with `Router::set_store`).
    pub fn start(router: &Arc<Router>, config: &Config) -> Result<Streams, StreamError> {
        let mut streams = Vec::new();
        let mut filters = Vec::new();
        let remotes = config.leafnodes.remotes.len();
        let any_forward = config
            .streams
            .iter()
            .any(|s| s.forward_mode(remotes) != twig_config::ForwardMode::Off);
        let gateway = if any_forward {
            hub::gateway_id(config)?
        } else {
            String::new()
        };
        // One priority board per remote, shared by the streams draining to it.
        let boards: Vec<Arc<priority::Board>> = (0..remotes.max(1))
            .map(|_| Arc::new(priority::Board::default()))
            .collect();
        for (i, cfg) in config.streams.iter().enumerate() {
            let board = boards[cfg.forward_remote.min(boards.len() - 1)].clone();
            let queue = Arc::new(Queue::new(cfg.queue_bytes));
            let (tx, state, limits) =
                worker::spawn(router, config, cfg, queue.clone(), &gateway, board)?;
            for s in &cfg.subjects {
                filters.push((s.as_bytes().into(), i));
            }
            streams.push(Stream {
                config: cfg.clone(),
                forwards: cfg.forward_mode(remotes) != twig_config::ForwardMode::Off,
                tx,
                queue,
                limits,
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

    /// A reload's `[[streams]]`: what [`reload::plan`] finds reloadable between `running`
    /// (the entries in force: the start config with earlier reloads' limits, in its order)
    /// and `next` goes to the streams' threads (each enforces its new limits before its next
    /// batch); the plan is returned, its `restart` to be named as needing a restart. Called
    /// from a reload's blocking thread: it waits for room in a thread's (small) limits queue
    /// rather than lose a change.
    pub fn reload(&self, running: &[StreamConfig], next: &[StreamConfig]) -> reload::Plan {
        let plan = reload::plan(running, next);
        for (i, limits) in &plan.limits {
            if let Some(s) = self.streams.get(*i)
                && s.limits.send_blocking(*limits).is_err()
            {
                tracing::error!(
                    "stream {}: its thread is gone, limits not reloaded",
                    s.config.name
                );
            }
        }
        plan
    }

    /// Snapshots of every stream's counters.
    pub fn states(&self) -> Vec<StreamState> {
        self.streams
            .iter()
            .map(|s| {
                let mut st = twig_util::lock::lock(&s.state).clone();
                st.queue_waits = s.waits.load(Ordering::Relaxed);
                st.queued_bytes = s.queue.bytes.load(Ordering::Relaxed) as u64;
                st.queue_bytes = s.queue.limit as u64;
                st
            })
            .collect()
    }
}

impl Stream {
    /// Hands a request to the stream's thread without waiting. When its queue is full (in
    /// bytes, see [`Queue`]) the request comes back as [`Submit::Full`]: the caller (a
    /// client's reader) waits for room with [`Full::wait`] before reading more, so only that
    /// publisher is held back, never the executor thread it shares with other connections.
    pub fn try_submit(&self, req: Request) -> Submit {
        let n = req.cost();
        if !self.queue.reserve(n) {
            self.waits.fetch_add(1, Ordering::Relaxed);
            let (tx, queue) = (self.tx.clone(), self.queue.clone());
            return Submit::Full(Full::new(async move {
                loop {
                    // Listen before trying, so a wake between the two is not missed.
                    let room = queue.room.listen();
                    if tx.is_closed() {
                        return false;
                    }
                    if queue.reserve(n) {
                        return tx.try_send(req).is_ok();
                    }
                    room.await;
                }
            }));
        }
        // Unbounded: the bytes above bound it, so only a stopped thread refuses.
        match self.tx.try_send(req) {
            Ok(()) => Submit::Queued,
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => Submit::Gone,
        }
    }
}

impl Durable for Stream {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the stream drains to a hub: then its forwarder is the only way its messages
    /// go up (live publishes on its subjects stay local, see `Router::publish`).
    fn forwards(&self) -> bool {
        self.forwards
    }

    /// Encodes the record (on the publisher's thread) and hands it to the stream's thread.
    /// The message's `Nats-Msg-Id` header de-duplicates; its reply subject gets the PubAck.
    fn submit(&self, msg: &Message<'_>, time_ns: u64, notify: Option<Notify>) -> Submit {
        let size = record::HEAD + msg.subject.len() + msg.headers.map_or(0, <[u8]>::len);
        // Larger than a sector, the log refuses it anyway: queue no copy of it.
        let too_large = size + msg.payload.len() > flash::SECTOR;
        let record = if too_large {
            Vec::new()
        } else {
            let Some(r) = record::encode(time_ns, msg.subject, msg.headers, msg.payload) else {
                return Submit::Invalid;
            };
            r
        };
        let msg_id = msg
            .headers
            .and_then(|h| twig_core::wire::Headers::parse(h).ok())
            .and_then(|h| h.get(b"Nats-Msg-Id"))
            .map(Box::from);
        self.try_submit(Request {
            record,
            reply: msg.reply.map(Box::from),
            msg_id,
            notify,
            too_large,
        })
    }
}

impl Store for Streams {
    fn find(&self, subject: &[u8]) -> Option<&dyn Durable> {
        Streams::find(self, subject).map(|s| s as &dyn Durable)
    }
}

/// A process-unique number (test directories).
#[cfg(test)]
pub(crate) fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod queue_tests {
    use super::Queue;

    #[test]
    fn lets_in_while_below_the_limit_so_any_message_fits() {
        let q = Queue::new(100);
        assert!(q.reserve(60));
        // Below the limit: in, even past it (one message over at most).
        assert!(q.reserve(500));
        assert!(!q.reserve(1));
        q.release(500);
        assert!(q.reserve(1));
        q.release(61);
        assert_eq!(q.bytes.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
}
