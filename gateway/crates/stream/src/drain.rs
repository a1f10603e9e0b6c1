//! The forwarder's shell, run by the stream's thread: reads records from the log from the
//! acknowledged cursor, writes them as `LMSG`/`HMSG` into the uplink's bulk lane, and feeds
//! the hub's PubAcks (or, in `core` mode, PONGs) into the [`Forwarder`].
//!
//! On the wire (`jetstream` mode) a forwarded message keeps its subject, body and the
//! publisher's headers, except that `Nats-Msg-Id` becomes `<gateway>.<stream>.<seq>` (stable
//! across restarts: the hub's stream drops the repeats of a resumed drain), and its reply
//! subject is `_TF.<gateway>.<stream>.<seq in base 36>`. An internal subscription on
//! `_TF.<gateway>.<stream>.>` sits in the router from the start, so its `LS+` reaches
//! the hub on every (re)connect with the rest of twig's interest, and the hub's JetStream
//! sends the PubAcks back over the link like any reply.
//!
//! A record goes out only while the hub has interest in its subject (a hub advertises its
//! JetStream streams' subjects as `LS+`), only while the link's backlog is below its stall
//! mark (live traffic keeps its share) and never blocks: a refused push is retried when the
//! writer made progress.
use std::sync::Arc;
use std::time::Instant;

use twig_core::log::{Cursor, Log};
use twig_core::wire::{HeaderWriter, Headers, Op, Queues};

use super::flash::{FileFlash, SECTOR};
use super::forward::{Forwarder, Settings};
use super::hub::{Refusal, parse_puback, parse_seq_token, permanent, seq_token, subject_token};
use super::priority::Board;
use super::record;
use twig_config::Config;
use twig_config::{ForwardMode, StreamConfig};
use twig_router::internal::{InternalSub, Owned, new_owner};
use twig_router::remote::{Remote, remote_interest};
use twig_router::{MatchCache, Message, Router};

/// Reply subjects of forwarded messages start with this.
/// Short: it is on every forwarded message and its PubAck. (It was `_TWIG_FWD` with decimal
/// sequence numbers: PubAcks of that format, late from before an upgrade, match nothing.)
pub const REPLY_PREFIX: &str = "_TF";

/// Most records sent per step, so the thread gets back to publishers in between.
const BURST: usize = 256;

/// What keeps the forwarder from sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Nothing: everything is sent or the window is full.
    No,
    /// The hub has no interest in the next record's subject.
    Interest,
    /// The link's backlog is at its stall mark or full.
    Room,
    /// A stream of a higher `forward_priority` has a backlog waiting.
    Priority,
}

/// What a step asks of the thread's loop.
#[derive(Debug, Clone, Copy)]
pub struct Wake {
    /// More can be sent right away.
    pub again: bool,
    /// Wait for the link's writer (room, or a `core` batch to be written or answered).
    pub progress: bool,
    /// A timer of the forwarder.
    pub at: Option<Instant>,
}

/// One stream's forwarding to its remote.
pub struct Drain {
    /// The remote (the uplink's link) it drains to.
    pub link: Arc<dyn Remote>,
    sub: Arc<InternalSub>,
    acks: async_channel::Receiver<Owned>,
    /// A PubAck taken while waiting, handled at the next step.
    pub pending: Option<Owned>,
    /// The protocol state.
    pub fwd: Forwarder,
    router: Arc<Router>,
    core: bool,
    reply_prefix: String,
    id_prefix: String,
    stream: String,
    epoch: u64,
    cursor: Option<Cursor>,
    buf: Vec<u8>,
    hbuf: Vec<u8>,
    reply: Vec<u8>,
    queues: Vec<u8>,
    cache: MatchCache,
    /// Why it is not sending.
    pub blocked: Blocked,
    /// The last error PubAck or forwarding problem.
    pub last_error: Option<String>,
    /// Messages the hub refused for good (or that could never be sent): skipped.
    pub skipped: u64,
    board: Arc<Board>,
    priority: u8,
    /// Whether this stream's backlog is on the board.
    waiting: bool,
}

impl Drain {
    /// The drain of a stream that forwards (`None` for `forward = "off"`), resuming after
    /// `acked`.
    pub fn start(
        router: &Arc<Router>,
        config: &Config,
        cfg: &StreamConfig,
        gateway: &str,
        acked: u64,
        board: Arc<Board>,
    ) -> Option<Drain> {
        let remotes = config.leafnodes.remotes.len();
        let mode = cfg.forward_mode(remotes);
        let link = router.remote(cfg.forward_remote)?;
        if mode == ForwardMode::Off {
            return None;
        }
        let token = subject_token(gateway);
        let reply_prefix = format!("{REPLY_PREFIX}.{token}.{}.", cfg.name);
        let (sub, acks) = InternalSub::new(
            new_owner(),
            format!("{reply_prefix}>").as_bytes(),
            None,
            // One answer per copy in flight, and some room for repeats.
            cfg.forward_window.saturating_add(64),
            // A PubAck is about 100 B (a JetStream error a few hundred): 1 KiB each is room.
            cfg.forward_window.saturating_add(64).saturating_mul(1024),
        );
        if let Err(e) = router.insert_internal(&sub) {
            tracing::error!("stream {}: cannot subscribe for PubAcks: {e}", cfg.name);
            return None;
        }
        let core = mode == ForwardMode::Core;
        Some(Drain {
            link,
            sub,
            acks,
            pending: None,
            fwd: Forwarder::new(
                Settings {
                    window: cfg.forward_window,
                    ack_timeout: cfg.forward_ack_timeout,
                    core,
                },
                acked,
            ),
            router: router.clone(),
            core,
            reply_prefix,
            id_prefix: format!("{gateway}.{}.", cfg.name),
            stream: cfg.name.clone(),
            epoch: 0,
            cursor: None,
            buf: vec![0; SECTOR],
            hbuf: Vec::new(),
            reply: Vec::new(),
            queues: Vec::new(),
            cache: MatchCache::default(),
            blocked: Blocked::No,
            last_error: None,
            skipped: 0,
            board,
            priority: cfg.forward_priority,
            waiting: false,
        })
    }

    /// Notified when a stream of a higher priority on the same remote no longer holds this
    /// one back (create it before checking, then wait).
    pub fn listen_board(&self) -> event_listener::EventListener {
        self.board.listen()
    }

    /// The PubAck channel (the thread's loop waits on it).
    pub fn acks(&self) -> &async_channel::Receiver<Owned> {
        &self.acks
    }

    /// `/jsz`'s `forward_state`.
    pub fn state(&self, now: Instant, backlog: bool) -> &'static str {
        if !self.fwd.is_up() {
            "waiting for link"
        } else if self.fwd.backing_off(now) {
            "backing off"
        } else if self.blocked == Blocked::Interest {
            "waiting for hub interest"
        } else if self.blocked == Blocked::Priority {
            "waiting for a higher-priority stream"
        } else if backlog || self.fwd.in_flight() > 0 {
            "draining"
        } else {
            "idle"
        }
    }

    /// Follows the link, takes PubAcks and PONGs, sends what the window allows. The caller
    /// then moves the log's acknowledged cursor to [`Forwarder::acked`].
    pub fn step(&mut self, log: &mut Log<FileFlash>, now: Instant) -> Wake {
        let c = self.link.counters();
        let connected = self.link.is_up();
        if self.fwd.is_up() && (!connected || c.epoch != self.epoch) {
            self.fwd.link_down();
            self.cursor = None;
        }
        if connected && !self.fwd.is_up() {
            self.fwd.link_up();
            self.epoch = c.epoch;
            if !self.core && !self.link.may_subscribe(&self.sub.subject) {
                self.error(format!(
                    "the hub does not let this gateway subscribe to {} (leafnode import \
                     permissions): its PubAcks cannot come back",
                    String::from_utf8_lossy(&self.sub.subject)
                ));
            }
        }
        let s = log.stats();
        // Expired by a limit, or dropped from a full file: done without the hub.
        self.fwd.skip_to(s.acked.max(s.first.saturating_sub(1)));
        // What the writer wrote since the last step: the messages' clocks start at their writes.
        if self.fwd.is_up() {
            let link = &self.link;
            self.fwd
                .written(now, c.bulk_out, |end| link.written_at(end));
        }
        if let Some(m) = self.pending.take() {
            self.puback(now, &m);
        }
        while let Ok(m) = self.acks.try_recv() {
            self.puback(now, &m);
        }
        if self.core {
            if self.fwd.needs_ping(c.bulk_out)
                && let Some(n) = self.link.ping()
            {
                self.fwd.pinged(c.bulk_out, n);
            }
            self.fwd.pongs(now, c.pongs);
        }
        if self.fwd.poll(now) {
            let what = if self.core { "PONG" } else { "PubAck" };
            self.error(format!(
                "no {what} for message {} within {:?}, sending it again (does a stream on the \
                 hub cover its subject?)",
                self.fwd.acked() + 1,
                self.fwd.estimates().rto
            ));
        }
        self.blocked = Blocked::No;
        let mut sent = 0;
        let mut again = false;
        while let Some(seq) = self.fwd.want(now) {
            // Only what is on disk: a record lost to a power cut before its sync would have
            // its sequence number (and so its Nats-Msg-Id) reused by the next message, which
            // the hub would then drop as a duplicate.
            if seq > s.synced {
                self.fwd.idle();
                break;
            }
            if sent == BURST {
                again = true;
                break;
            }
            if self.link.stalled() {
                self.blocked = Blocked::Room;
                break;
            }
            if seq >= self.fwd.next() && self.board.higher_waiting(self.priority) {
                self.blocked = Blocked::Priority;
                break;
            }
            match self.send(log, seq) {
                Ok(true) => sent += 1,
                Ok(false) => {
                    // Read past the end (records dropped meanwhile) or nothing to read.
                    break;
                }
                Err(b) => {
                    self.blocked = b;
                    self.cursor = None;
                    break;
                }
            }
        }
        if sent > 0 {
            self.link.wake();
            if self.core {
                self.fwd.core_batch(self.link.counters().bulk_in);
            }
        }
        // On the board while new messages wait (a lower stream then holds back); off it, the
        // lower streams are woken through the link's change event they all listen to.
        let waiting = self.fwd.is_up()
            && self.fwd.next() <= s.synced
            && !matches!(self.blocked, Blocked::Interest | Blocked::Priority);
        if waiting != self.waiting {
            self.waiting = waiting;
            self.board.set(self.priority, waiting);
        }
        let barrier_wait = self.core && self.fwd.in_flight() > 0;
        Wake {
            again,
            // Follow the writer while messages wait to be written: their clocks start then.
            progress: self.blocked == Blocked::Room || barrier_wait || self.fwd.unwritten(),
            at: self.fwd.poll_at(),
        }
    }

    /// Reads the record at `seq` (or the next one still on file) and queues it. `Ok(false)`
    /// when the log has nothing there.
    fn send(&mut self, log: &mut Log<FileFlash>, seq: u64) -> Result<bool, Blocked> {
        if seq < self.fwd.next() {
            return self.resend(log, seq);
        }
        let mut cur = match self.cursor {
            Some(c) if c.seq() == seq => c,
            _ => match log.cursor(seq) {
                Ok(c) => c,
                Err(e) => {
                    self.error(format!("cannot read the log at {seq}: {e:?}"));
                    return Ok(false);
                }
            },
        };
        let r = match log.read_next(&mut cur, &mut self.buf) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(false),
            Err(e) => {
                // A damaged sector: the cursor moved past it; its records are lost.
                if cur.seq() > seq {
                    self.fwd.gone(cur.seq() - 1);
                }
                self.error(format!(
                    "cannot read records {seq}..{}: {e:?}; skipped",
                    cur.seq()
                ));
                self.cursor = Some(cur);
                return Ok(false);
            }
        };
        let buf = std::mem::take(&mut self.buf);
        let res = self.queue_record(buf.get(..r.len).unwrap_or_default(), r.seq);
        self.buf = buf;
        if res.is_ok() {
            self.cursor = Some(cur);
        }
        res.map(|()| true)
    }

    /// Sends `seq` again (presumed lost), read through a cursor of its own so the drain's
    /// stays where it is. A record no longer on file is done.
    fn resend(&mut self, log: &mut Log<FileFlash>, seq: u64) -> Result<bool, Blocked> {
        let read = log
            .cursor(seq)
            .ok()
            .and_then(|mut cur| log.read_next(&mut cur, &mut self.buf).ok().flatten());
        let Some(r) = read.filter(|r| r.seq == seq) else {
            self.fwd.skip(seq);
            return Ok(true);
        };
        let buf = std::mem::take(&mut self.buf);
        let res = self.queue_record(buf.get(..r.len).unwrap_or_default(), seq);
        self.buf = buf;
        res.map(|()| true)
    }

    /// Queues one record read from the log (or skips it for good with an error).
    fn queue_record(&mut self, rec: &[u8], seq: u64) -> Result<(), Blocked> {
        let Some(m) = record::decode(rec) else {
            self.error(format!("record {seq} is not a message"));
            self.skipped += 1;
            self.fwd.skip(seq);
            return Ok(());
        };
        self.queues.clear();
        let result = self.router.lookup(&mut self.cache, m.subject);
        if !remote_interest(result, &self.link, &mut self.queues) {
            return Err(Blocked::Interest);
        }
        // Headers: the publisher's, with our Nats-Msg-Id (`jetstream` mode).
        let headers: Option<&[u8]> = if !self.link.headers() {
            if !self.core {
                self.error(
                    "the hub did not negotiate headers: forwarding without Nats-Msg-Id, so \
                     without de-duplication"
                        .into(),
                );
            }
            None
        } else if self.core {
            m.headers
        } else {
            let id = format!("{}{}", self.id_prefix, seq);
            let old = m.headers.and_then(|h| Headers::parse(h).ok());
            let need = m.headers.map_or(0, <[u8]>::len) + id.len() + 32;
            self.hbuf.clear();
            self.hbuf.resize(need, 0);
            let len = match HeaderWriter::new(&mut self.hbuf) {
                Ok(mut w) => {
                    let _ = w.push(b"Nats-Msg-Id", id.as_bytes());
                    for (k, v) in old.iter().flat_map(Headers::iter) {
                        // Expectations (`Nats-Expected-Last-Sequence`...) were about twig's
                        // stream, where they were already checked.
                        if k != b"Nats-Msg-Id" && !k.starts_with(b"Nats-Expected-") {
                            let _ = w.push(k, v);
                        }
                    }
                    w.finish()
                }
                Err(_) => 0,
            };
            self.hbuf.get(..len)
        };
        let reply = if self.core {
            None
        } else {
            self.reply.clear();
            self.reply.extend_from_slice(self.reply_prefix.as_bytes());
            seq_token(seq, &mut self.reply);
            Some(&self.reply[..])
        };
        let size = headers.map_or(0, <[u8]>::len) + m.payload.len();
        let refused = if size > self.link.max_payload() {
            Some("larger than the hub's max_payload")
        } else if !self.link.may_publish(m.subject) {
            Some("the hub does not allow publishing its subject")
        } else {
            None
        };
        if let Some(why) = refused {
            // It can never go up; waiting would stop the stream for good.
            let text = format!(
                "message {} on {} skipped: {why}",
                seq,
                String::from_utf8_lossy(m.subject)
            );
            self.error(text);
            self.skipped += 1;
            self.fwd.skip(seq);
            return Ok(());
        }
        let msg = Message {
            subject: m.subject,
            reply,
            headers,
            payload: m.payload,
        };
        // Encoded as `LMSG`/`HMSG` and counted by the link; refused when its backlog has no
        // room (retried when the writer progresses). Where it ends in the connection's bytes
        // tells when it is written.
        let Some(end) = self.link.forward(&msg, &self.queues) else {
            return Err(Blocked::Room);
        };
        let len = Op::Lmsg {
            subject: msg.subject,
            reply: msg.reply,
            queues: Queues::from_raw(&self.queues),
            headers: msg.headers,
            payload: msg.payload,
        }
        .encoded_len();
        self.fwd.sent(seq, len as u64, end);
        Ok(())
    }

    fn puback(&mut self, now: Instant, m: &Owned) {
        let Some(seq) = m
            .subject
            .rsplit(|&b| b == b'.')
            .next()
            .and_then(parse_seq_token)
        else {
            return;
        };
        let current = seq > self.fwd.acked() && seq < self.fwd.next();
        match parse_puback(m) {
            Ok(()) => self.fwd.ack(now, seq, true),
            Err(Refusal { code, text }) if permanent(code) => {
                // Sending it again would be refused again, and stop the stream for good.
                if current {
                    self.skipped += 1;
                    self.error(format!(
                        "the hub refused message {seq} for good ({code}: {text}); skipped"
                    ));
                }
                self.fwd.ack(now, seq, true);
            }
            Err(Refusal { code, text }) => {
                if current {
                    self.error(format!(
                        "the hub refused message {seq} ({code}: {text}); sending again"
                    ));
                }
                self.fwd.ack(now, seq, false);
            }
        }
    }

    fn error(&mut self, text: String) {
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!("stream {}: forwarding: {text}", self.stream);
        }
        self.last_error = Some(text);
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        if self.waiting {
            self.board.set(self.priority, false);
        }
        self.router.remove_internal(&self.sub);
    }
}
