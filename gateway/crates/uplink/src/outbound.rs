//! The uplink's outbound buffer: two lanes, so keepalive never waits behind bulk data.
//!
//! - The **urgent** lane holds handshake and keepalive lines (CONNECT, PING, PONG). The writer
//!   drains it before anything else, and between chunks of bulk data.
//! - The **bulk** lane holds interest (`LS+`/`LS-`) and messages (`LMSG`/`HMSG`) in order.
//!   Producers append whole ops; every [`CHUNK`] bytes or so the end of an op is recorded as a
//!   mark, and the writer writes bulk data one marked chunk at a time, looking at the urgent
//!   lane in between. So a PONG is at most one chunk (or one large message) behind, never
//!   behind a whole backlog (nats-server #7615: a leaf went stale because its PONG waited
//!   behind queued data on a slow link).
//!
//! Flow control, as nats-server does for a fast producer: once the backlog (queued plus taken by
//! the writer and not yet written) passes 3/4 of `max_pending`, local publishers feeding the
//! link wait for it to drain, up to [`STALL_MAX`](twig_util::stall::STALL_MAX) per read batch ([`LinkOutbound::stalled`],
//! [`LinkOutbound::wait_drained`]). Messages that would still push it past `max_pending` are
//! dropped and counted (core NATS is at-most-once, and cutting an edge link for a burst would
//! lose more); interest lines are always queued, since dropping one would leave the hub with
//! wrong interest. Before the hub confirmed CONNECT the bulk lane is shut, so nothing but
//! CONNECT can reach a hub first.
//!
//! Lock order: the outbound mutex is a leaf; nothing else is taken while it is held.
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use event_listener::Event;

pub use twig_router::remote::Counters;

/// Bulk bytes between marks: the most urgent lines wait behind (plus one op larger than this).
pub const CHUNK: usize = 16 * 1024;

/// Websocket pings waiting for their pong, at most (older ones are answered by a later one).
pub const MAX_WS_PONGS: usize = 4;

/// Write times remembered per connection (16 B each): more than a forwarder's step sees
/// between two looks, even when a stream thread is held up by a sync to flash.
pub const WRITE_TIMES: usize = 256;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; wake the writer (once per batch is enough).
    Queued,
    /// Dropped: the link is down, or the backlog is at `max_pending`.
    Dropped,
}

#[derive(Default)]
struct State {
    urgent: Vec<u8>,
    /// Payloads of websocket pings to answer (control frames: the writer frames them apart
    /// from the NATS bytes). At most [`MAX_WS_PONGS`]; a pong may answer only the latest ping.
    ws_pongs: Vec<Vec<u8>>,
    bulk: Vec<u8>,
    /// Ends of ops in `bulk` where the writer may pause for urgent lines.
    marks: Vec<usize>,
    last_mark: usize,
    /// Bulk bytes the writer took and has not written yet.
    held: usize,
    bulk_open: bool,
    closed: bool,
    /// Per connection (zeroed by `reset`): bulk bytes queued and written so far, PINGs queued
    /// and PONGs received. The stream forwarder's `core` mode acknowledges a batch with a PING
    /// queued once the batch is written, and the PONG that answers it (the hub answers PINGs
    /// in order, and every PING goes through the urgent lane, so queue order is wire order).
    bulk_in: u64,
    bulk_out: u64,
    /// When the latest writes ended, as `(bulk_out after the write, time)`, oldest first, at
    /// most [`WRITE_TIMES`]: a forwarder starts a message's round trip at the write that put
    /// its last byte in the socket, not when its own thread next looks (which a busy stream
    /// thread does late, making round trips look shorter than the link's).
    write_times: VecDeque<(u64, Instant)>,
    pings: u64,
    pongs: u64,
    /// Connections so far (bumped by `reset`), so a forwarder notices a reconnect it slept
    /// through.
    epoch: u64,
}

impl State {
    fn backlog(&self) -> usize {
        self.bulk.len().saturating_add(self.held)
    }
}

/// The two-lane buffer of one uplink (reused across reconnects, see [`LinkOutbound::reset`]).
pub struct LinkOutbound {
    state: Mutex<State>,
    ready: Event,
    drained: Event,
    /// Notified whenever the writer wrote bulk bytes (forwarders waiting for room or for a
    /// batch to be on the wire).
    progress: Event,
    max_pending: usize,
}

/// What the writer took: urgent bytes, and possibly a bulk batch with its marks.
#[derive(Default)]
pub struct Taken {
    /// Websocket pongs to write first (payloads of the pings they answer).
    pub ws_pongs: Vec<Vec<u8>>,
    /// Urgent lines, written first.
    pub urgent: Vec<u8>,
    /// Bulk bytes (only when asked for and available).
    pub bulk: Vec<u8>,
    /// Op ends inside `bulk`.
    pub marks: Vec<usize>,
}

impl LinkOutbound {
    /// A closed buffer whose bulk lane holds at most `max_pending` bytes of messages.
    pub fn new(max_pending: usize) -> Self {
        LinkOutbound {
            state: Mutex::new(State {
                closed: true,
                ..State::default()
            }),
            ready: Event::new(),
            drained: Event::new(),
            progress: Event::new(),
            max_pending,
        }
    }

    /// Empties both lanes and opens the urgent lane for a new connection; bulk stays shut
    /// until [`LinkOutbound::open_bulk`].
    pub fn reset(&self) {
        let mut st = self.lock();
        let epoch = st.epoch + 1;
        *st = State {
            epoch,
            ..State::default()
        };
        drop(st);
        self.drained.notify(usize::MAX);
        self.progress.notify(usize::MAX);
    }

    /// Opens the bulk lane (the hub confirmed CONNECT).
    pub fn open_bulk(&self) {
        self.lock().bulk_open = true;
    }

    /// Whether the bulk lane takes data.
    pub fn bulk_open(&self) -> bool {
        let st = self.lock();
        st.bulk_open && !st.closed
    }

    /// Closes both lanes and drops what is queued; the writer stops.
    pub fn close(&self) {
        {
            let mut st = self.lock();
            st.closed = true;
            st.bulk_open = false;
            st.urgent = Vec::new();
            st.ws_pongs = Vec::new();
            st.bulk = Vec::new();
            st.marks = Vec::new();
            st.held = 0;
        }
        self.ready.notify(usize::MAX);
        self.drained.notify(usize::MAX);
        self.progress.notify(usize::MAX);
    }

    /// Queues a keepalive or barrier `PING` on the urgent lane; returns its number on this
    /// connection (the PONG with the same number answers it), `None` when closed.
    pub fn push_ping(&self) -> Option<u64> {
        let n = {
            let mut st = self.lock();
            if st.closed {
                return None;
            }
            st.urgent.extend_from_slice(b"PING\r\n");
            st.pings += 1;
            st.pings
        };
        self.ready.notify(1);
        Some(n)
    }

    /// Queues a websocket pong answering a ping with `payload` (websocket remotes).
    pub fn push_ws_pong(&self, payload: &[u8]) {
        {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            if st.ws_pongs.len() >= MAX_WS_PONGS {
                st.ws_pongs.remove(0);
            }
            st.ws_pongs.push(payload.to_vec());
        }
        self.ready.notify(1);
    }

    /// The hub answered a PING.
    pub fn pong(&self) {
        self.lock().pongs += 1;
        self.progress.notify(usize::MAX);
    }

    /// This connection's counters.
    pub fn counters(&self) -> Counters {
        let st = self.lock();
        Counters {
            epoch: st.epoch,
            bulk_in: st.bulk_in,
            bulk_out: st.bulk_out,
            pings: st.pings,
            pongs: st.pongs,
        }
    }

    /// A listener notified when bulk bytes are written, a PONG arrives, or the link resets
    /// or closes (create it before checking, then wait).
    pub fn listen_progress(&self) -> event_listener::EventListener {
        self.progress.listen()
    }

    /// Queues an urgent line and wakes the writer.
    pub fn push_urgent(&self, bytes: &[u8]) -> Pushed {
        {
            let mut st = self.lock();
            if st.closed {
                return Pushed::Dropped;
            }
            st.urgent.extend_from_slice(bytes);
        }
        self.ready.notify(1);
        Pushed::Queued
    }

    /// Queues an interest line (never dropped while the bulk lane is open).
    pub fn push_proto(&self, bytes: &[u8]) -> Pushed {
        let pushed = self.push_bulk(bytes.len(), false, |b| {
            b.extend_from_slice(bytes);
            Ok(())
        });
        match pushed {
            Some(_) => Pushed::Queued,
            None => Pushed::Dropped,
        }
    }

    /// Queues a message of exactly `len` bytes written by `fill`, unless the backlog is at
    /// `max_pending`. A failing `fill` leaves nothing behind.
    pub fn push_msg(
        &self,
        len: usize,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), ()>,
    ) -> Pushed {
        match self.push_bulk(len, true, fill) {
            Some(_) => Pushed::Queued,
            None => Pushed::Dropped,
        }
    }

    /// [`LinkOutbound::push_msg`] that tells where the message ends in this connection's bulk
    /// bytes ([`Counters::bulk_in`] right after it): once [`Counters::bulk_out`] reaches that,
    /// the message is written to the socket. `None` when dropped.
    pub fn push_msg_at(
        &self,
        len: usize,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), ()>,
    ) -> Option<u64> {
        self.push_bulk(len, true, fill)
    }

    fn push_bulk(
        &self,
        len: usize,
        droppable: bool,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), ()>,
    ) -> Option<u64> {
        let mut st = self.lock();
        if !st.bulk_open || st.closed {
            return None;
        }
        if droppable && st.backlog().saturating_add(len) > self.max_pending {
            return None;
        }
        let before = st.bulk.len();
        st.bulk.reserve(len);
        if fill(&mut st.bulk).is_err() {
            st.bulk.truncate(before);
            return None;
        }
        let end = st.bulk.len();
        st.bulk_in += (end - before) as u64;
        if end - st.last_mark >= CHUNK {
            st.marks.push(end);
            st.last_mark = end;
        }
        Some(st.bulk_in)
    }

    /// Whether the backlog is at `max_pending` (a message would be dropped).
    pub fn full(&self) -> bool {
        self.lock().backlog() >= self.max_pending
    }

    /// Whether the backlog is above half of `max_pending`.
    pub fn above_half(&self) -> bool {
        self.lock().backlog() > self.max_pending / 2
    }

    /// Wakes the writer (producers call it once per batch).
    pub fn wake(&self) {
        self.ready.notify(1);
    }

    /// Bytes queued or taken by the writer and not yet written.
    pub fn pending(&self) -> usize {
        let st = self.lock();
        st.urgent.len() + st.backlog()
    }

    /// Whether publishers feeding the link should wait: the backlog is past 3/4 of
    /// `max_pending` (nats-server's stall mark).
    pub fn stalled(&self) -> bool {
        let st = self.lock();
        !st.closed && st.backlog() > self.stall_mark()
    }

    fn stall_mark(&self) -> usize {
        self.max_pending / 4 * 3
    }

    /// When the first remembered write that took this connection's bulk bytes to `end` or
    /// past it ended; `None` before any such write. A byte older than every remembered write
    /// gets the oldest one's time, the closest known.
    pub fn written_at(&self, end: u64) -> Option<Instant> {
        let st = self.lock();
        let i = st.write_times.partition_point(|&(out, _)| out < end);
        st.write_times.get(i).map(|&(_, at)| at)
    }

    /// Notified when the backlog drops below the stall mark.
    pub fn drained(&self) -> &Event {
        &self.drained
    }

    /// Waits until the backlog is below the stall mark, or `max`.
    pub async fn wait_drained(&self, max: Duration) {
        twig_util::stall::wait_until_drained(&self.drained, max, || self.stalled()).await;
    }

    /// The writer wrote `n` bytes of what it took, the write ending at `now`.
    pub fn written(&self, n: usize, now: Instant) {
        let mut st = self.lock();
        let was = st.backlog() > self.stall_mark();
        st.held = st.held.saturating_sub(n);
        st.bulk_out += n as u64;
        if n > 0 {
            if st.write_times.len() == WRITE_TIMES {
                st.write_times.pop_front();
            }
            let out = st.bulk_out;
            st.write_times.push_back((out, now));
        }
        let now = st.backlog() > self.stall_mark();
        drop(st);
        if was && !now {
            self.drained.notify(usize::MAX);
        }
        if n > 0 {
            self.progress.notify(usize::MAX);
        }
    }

    /// Takes urgent bytes, and bulk bytes if `want_bulk`, into `into` (whose buffers must be
    /// empty) without waiting. Returns false once closed.
    pub fn try_take(&self, want_bulk: bool, into: &mut Taken) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        std::mem::swap(&mut st.urgent, &mut into.urgent);
        std::mem::swap(&mut st.ws_pongs, &mut into.ws_pongs);
        if want_bulk && !st.bulk.is_empty() {
            std::mem::swap(&mut st.bulk, &mut into.bulk);
            std::mem::swap(&mut st.marks, &mut into.marks);
            st.last_mark = 0;
            st.held = into.bulk.len();
        }
        true
    }

    /// Waits until there is something to take (urgent bytes; bulk bytes if `want_bulk`) and
    /// takes it. Returns false once closed.
    pub async fn take(&self, want_bulk: bool, into: &mut Taken) -> bool {
        loop {
            let listener = self.ready.listen();
            {
                let st = self.lock();
                if st.closed {
                    return false;
                }
                let has = !st.urgent.is_empty()
                    || !st.ws_pongs.is_empty()
                    || (want_bulk && !st.bulk.is_empty());
                drop(st);
                if has {
                    return self.try_take(want_bulk, into);
                }
            }
            listener.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Appends are whole ops, so a holder's panic leaves nothing half-written.
        twig_util::lock::lock(&self.state)
    }
}

/// Where the writer is in a bulk batch: the next chunk to write ends at the next mark.
pub fn next_chunk(taken: &Taken, pos: usize) -> std::ops::Range<usize> {
    let end = taken
        .marks
        .iter()
        .copied()
        .find(|&m| m > pos)
        .unwrap_or(taken.bulk.len())
        .min(taken.bulk.len());
    pos..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_is_shut_until_confirmed_and_dropped_when_closed() {
        let out = LinkOutbound::new(1 << 20);
        assert_eq!(out.push_urgent(b"CONNECT {}\r\n"), Pushed::Dropped);
        out.reset();
        assert_eq!(out.push_urgent(b"CONNECT {}\r\n"), Pushed::Queued);
        assert_eq!(out.push_proto(b"LS+ foo\r\n"), Pushed::Dropped);
        out.open_bulk();
        assert_eq!(out.push_proto(b"LS+ foo\r\n"), Pushed::Queued);
        out.close();
        assert_eq!(out.push_proto(b"LS+ bar\r\n"), Pushed::Dropped);
        assert_eq!(out.pending(), 0);
    }

    #[test]
    fn messages_past_max_pending_are_dropped_interest_is_not() {
        let out = LinkOutbound::new(10);
        out.reset();
        out.open_bulk();
        let msg = |n: usize| {
            move |b: &mut Vec<u8>| {
                b.extend(std::iter::repeat_n(b'x', n));
                Ok(())
            }
        };
        assert_eq!(out.push_msg(8, msg(8)), Pushed::Queued);
        assert!(out.stalled(), "8 of 10 is past the 3/4 stall mark");
        assert_eq!(out.push_msg(8, msg(8)), Pushed::Dropped);
        assert_eq!(out.push_proto(b"LS- foo\r\n"), Pushed::Queued);
        assert_eq!(out.pending(), 17);
        // What the writer took still counts until it is written.
        let mut t = Taken::default();
        out.try_take(true, &mut t);
        assert_eq!(out.pending(), 17);
        assert_eq!(out.push_msg(8, msg(8)), Pushed::Dropped);
        out.written(17, Instant::now());
        assert!(!out.stalled());
        assert_eq!(out.push_msg(8, msg(8)), Pushed::Queued);
    }

    #[test]
    fn a_stalled_publisher_waits_until_the_writer_catches_up_or_the_limit() {
        let out = std::sync::Arc::new(LinkOutbound::new(100));
        out.reset();
        out.open_bulk();
        out.push_msg(90, |b| {
            b.resize(90, b'x');
            Ok(())
        });
        assert!(out.stalled());
        // Nobody writes: the wait ends at the limit.
        let t0 = std::time::Instant::now();
        smol::block_on(out.wait_drained(Duration::from_millis(20)));
        assert!(t0.elapsed() >= Duration::from_millis(20));
        // The writer catches up: the wait ends then.
        let mut t = Taken::default();
        out.try_take(true, &mut t);
        let o = out.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            o.written(90, Instant::now());
        });
        let t0 = std::time::Instant::now();
        smol::block_on(out.wait_drained(Duration::from_secs(10)));
        assert!(t0.elapsed() < Duration::from_secs(5));
        writer.join().unwrap();
    }

    #[test]
    fn websocket_pongs_are_taken_first_and_bounded() {
        let out = LinkOutbound::new(1 << 20);
        out.push_ws_pong(b"closed: dropped");
        out.reset();
        for i in 0..10u8 {
            out.push_ws_pong(&[i]);
        }
        let mut t = Taken::default();
        assert!(smol::block_on(out.take(false, &mut t)));
        // Only the latest few: a pong may answer the latest ping alone (RFC 6455 5.5.3).
        assert_eq!(t.ws_pongs, [[6u8], [7], [8], [9]]);
        assert!(t.urgent.is_empty());
    }

    #[test]
    fn urgent_lines_overtake_a_bulk_backlog_at_chunk_ends() {
        let out = LinkOutbound::new(1 << 24);
        out.reset();
        out.open_bulk();
        // 1 MiB of 100-byte messages.
        for _ in 0..(1 << 20) / 100 {
            out.push_msg(100, |b| {
                b.extend_from_slice(&[b'm'; 98]);
                b.extend_from_slice(b"\r\n");
                Ok(())
            });
        }
        // Simulate the writer: take bulk, write one chunk, then a PONG is queued.
        let mut t = Taken::default();
        assert!(out.try_take(true, &mut t));
        let first = next_chunk(&t, 0);
        assert!(first.end >= CHUNK && first.end < CHUNK + 100, "{first:?}");
        assert_eq!(first.end % 100, 0, "chunks end at op boundaries");
        out.push_urgent(b"PONG\r\n");
        let mut u = Taken::default();
        assert!(out.try_take(false, &mut u));
        assert_eq!(u.urgent, b"PONG\r\n");
        assert!(u.bulk.is_empty());
        // The rest of the batch is still in order after the first chunk.
        let second = next_chunk(&t, first.end);
        assert_eq!(second.start, first.end);
        assert!(second.end > second.start);
    }
}
