//! The forwarder's protocol logic, sans IO: which message to send next, what is in flight,
//! when the acknowledged cursor moves, what to send again and when. Time is passed in; the
//! shell (`drain.rs`) reads the log, queues messages on the link's bulk lane, tells the
//! forwarder when the link's writer has written them to the socket, and feeds PubAcks (or
//! PONGs) back.
//!
//! - **Cursor.** `acked` only moves over a contiguous run of acknowledged messages, so a
//!   restart from it never skips one. PubAcks may come in any order. The `Nats-Msg-Id` is
//!   stable, so whatever the hub already stored comes back as a duplicate PubAck, which counts
//!   as stored: exactly once and in order at the hub.
//! - **Clocks start at the write.** A message's round trip and timeout count from when its
//!   bytes left twig's buffer for the socket ([`Forwarder::written`], fed with the link's
//!   bulk byte counter), not from when it was queued behind others on a slow link.
//! - **Window.** The bytes queued or in flight stay below twice the bandwidth-delay product
//!   (delivery rate times minimum round trip, [`super::pace`]), so the link is kept busy but
//!   what waits in front of a live message or another stream is about one round trip; at most
//!   `window` messages are outstanding.
//! - **Selective re-sends.** A message is sent again only once it is presumed lost, never while
//!   its copy is still queued or within its round trip: when a message written after it was
//!   acknowledged and it was not within that message's round trip plus a reordering allowance
//!   (RACK, RFC 8985); when nothing at all was acknowledged for a retransmission timeout
//!   (RFC 6298: SRTT + 4 RTTVAR, plus the time the bytes in front of it need to cross the
//!   link), then only the oldest message, with the timeout doubled until a PubAck comes; or
//!   after an error PubAck and a back-off. Re-sends go before new messages, lowest first.
//! - **Reconnects.** A new connection sends again from the cursor (what was in flight may
//!   have been lost with the old one); the estimates are kept, except the minimum round trip.
//! - `core` mode: no PubAcks. After a batch is written to the socket the shell queues a PING;
//!   the PONG answering it acknowledges every message sent before the batch's end
//!   ([`Forwarder::core_batch`], [`Forwarder::pinged`], [`Forwarder::pongs`]).
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::pace::{self, Bandwidth, Rtt};

/// First wait after an error PubAck; doubles per error up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait after repeated error PubAcks.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Outstanding messages looked at from the cursor for loss detection and the timer: a bound
/// on the work per step (holes further out are found once the cursor gets there).
const SCAN: usize = 512;
/// Least reordering allowance: PubAcks of one connection come back in order, but a twig
/// stream feeding several hub streams gets their answers interleaved.
const MIN_REORDER: Duration = Duration::from_millis(25);

/// How a forwarder behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Messages outstanding at most.
    pub window: usize,
    /// The retransmission timeout until a round trip was measured.
    pub ack_timeout: Duration,
    /// `core` mode (PING/PONG barriers instead of PubAcks).
    pub core: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The latest copy is in the link's buffer.
    Queued,
    /// The latest copy was written to the socket.
    Written,
    /// Presumed lost: waits to be sent again.
    Lost,
    /// Acknowledged (or skipped).
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    state: State,
    /// Bytes on the wire.
    size: u64,
    /// Where its latest copy ends in the connection's bulk bytes.
    end: u64,
    /// When its latest copy was written.
    written: Option<Instant>,
    /// Bytes acknowledged, and when the last PubAck came, at the write (BBR's snapshot).
    delivered: u64,
    delivered_at: Option<Instant>,
    /// Written while the forwarder had nothing more to send.
    app_limited: bool,
    sends: u32,
}

impl Slot {
    fn done() -> Slot {
        Slot {
            state: State::Done,
            size: 0,
            end: 0,
            written: None,
            delivered: 0,
            delivered_at: None,
            app_limited: false,
            sends: 0,
        }
    }
}

/// A `core` batch: everything up to `upto` is acknowledged by the PONG answering the PING
/// queued once the link's bulk lane has written `mark` bytes.
#[derive(Debug, Clone, Copy)]
struct Barrier {
    upto: u64,
    mark: u64,
    ping: Option<u64>,
}

/// Counters for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages the hub acknowledged (duplicates included).
    pub forwarded: u64,
    /// Messages sent (re-sends included).
    pub sent: u64,
    /// Retransmission timeouts (each sends one message again).
    pub timeouts: u64,
    /// Messages presumed lost because later ones were acknowledged.
    pub lost: u64,
    /// Error PubAcks.
    pub errors: u64,
}

/// What the forwarder believes about its link, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimates {
    /// Smoothed round trip (write to PubAck).
    pub srtt: Option<Duration>,
    /// Shortest round trip on this connection.
    pub min_rtt: Option<Duration>,
    /// Retransmission timeout now (backed off included).
    pub rto: Duration,
    /// Delivery rate, bytes per second (0: not measured).
    pub rate: f64,
    /// Window, bytes.
    pub window: u64,
    /// Bytes queued or in flight.
    pub inflight: u64,
}

/// One stream's forwarding state.
#[derive(Debug)]
pub struct Forwarder {
    cfg: Settings,
    acked: u64,
    next: u64,
    /// Sequence numbers `acked + 1 .. next`, in order; the front is never done.
    slots: VecDeque<Slot>,
    up: bool,
    retry_at: Option<Instant>,
    backoff: twig_util::backoff::Backoff,
    barriers: VecDeque<Barrier>,
    /// Copies queued and not yet written, `(seq, end)` in the lane's order.
    unwritten: VecDeque<(u64, u64)>,
    /// Waiting to be sent again, lowest first.
    lost: BTreeSet<u64>,
    /// Bytes of copies queued or written and not acknowledged.
    inflight: u64,
    rtt: Rtt,
    bw: Bandwidth,
    /// Bytes acknowledged on this connection, and when the last PubAck came.
    delivered: u64,
    delivered_at: Option<Instant>,
    /// Round trips counted as BBR does: a round ends when a message written after its start
    /// is acknowledged.
    round: u64,
    round_end: u64,
    /// Samples of messages written before `delivered` reaches this are app-limited.
    app_limited_until: u64,
    /// The furthest bulk byte known delivered (the end of an acknowledged copy).
    acked_end: u64,
    /// RACK: where the latest-written acknowledged copy ends in the lane, and its round
    /// trip (the lane's order is the wire's; copies written together share a time stamp).
    rack: Option<(u64, Duration)>,
    /// The last PubAck that acknowledged something new (or the link coming up).
    progress_at: Option<Instant>,
    /// Retransmission timeouts in a row without a PubAck.
    rto_backoff: u32,
    /// Counters.
    pub counts: Counts,
}

impl Forwarder {
    /// A forwarder resuming after `acked` (the log's acknowledged cursor), link down.
    pub fn new(cfg: Settings, acked: u64) -> Forwarder {
        Forwarder {
            cfg,
            acked,
            next: acked + 1,
            slots: VecDeque::new(),
            up: false,
            retry_at: None,
            backoff: twig_util::backoff::Backoff::new(MIN_BACKOFF, MAX_BACKOFF),
            barriers: VecDeque::new(),
            unwritten: VecDeque::new(),
            lost: BTreeSet::new(),
            inflight: 0,
            rtt: Rtt::default(),
            bw: Bandwidth::default(),
            delivered: 0,
            delivered_at: None,
            round: 0,
            round_end: 0,
            app_limited_until: 0,
            acked_end: 0,
            rack: None,
            progress_at: None,
            rto_backoff: 0,
            counts: Counts::default(),
        }
    }

    /// Everything up to here is acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The next new sequence number to send.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Messages sent and not acknowledged.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.state != State::Done).count()
    }

    /// Whether the link is up as far as the forwarder knows.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Waiting out a back-off after an error PubAck (until then nothing is sent).
    pub fn backing_off(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| now < t)
    }

    /// Copies queued on the link and not yet written (the shell then follows the writer).
    pub fn unwritten(&self) -> bool {
        !self.unwritten.is_empty()
    }

    /// The window in bytes.
    pub fn window(&self) -> u64 {
        pace::window(self.bw.get(self.round), self.rtt.min())
    }

    /// The current estimates.
    pub fn estimates(&self) -> Estimates {
        Estimates {
            srtt: self.rtt.srtt(),
            min_rtt: self.rtt.min(),
            rto: self.rto(),
            rate: self.bw.get(self.round),
            window: self.window(),
            inflight: self.inflight,
        }
    }

    fn rto(&self) -> Duration {
        let base = self.rtt.rto(self.cfg.ack_timeout);
        base.saturating_mul(1 << self.rto_backoff.min(10))
            .min(pace::MAX_RTO.max(self.cfg.ack_timeout))
    }

    /// The link came up (a new connection): send from the cursor.
    pub fn link_up(&mut self) {
        self.up = true;
        self.backoff.reset();
        self.retry_at = None;
        self.rewind();
        self.rtt.forget_min();
    }

    /// The link went down: whatever was in flight is sent again on the next connection.
    pub fn link_down(&mut self) {
        self.up = false;
        self.rewind();
    }

    fn rewind(&mut self) {
        self.next = self.acked + 1;
        self.slots.clear();
        self.barriers.clear();
        self.unwritten.clear();
        self.lost.clear();
        self.inflight = 0;
        self.delivered = 0;
        self.delivered_at = None;
        self.round_end = 0;
        self.app_limited_until = 0;
        self.acked_end = 0;
        self.rack = None;
        self.progress_at = None;
        self.rto_backoff = 0;
    }

    fn index(&self, seq: u64) -> Option<usize> {
        if seq <= self.acked || seq >= self.next {
            return None;
        }
        usize::try_from(seq - self.acked - 1).ok()
    }

    /// Everything up to `seq` is done without the hub (expired by a limit, or dropped from a
    /// full file): moves the cursor there.
    pub fn skip_to(&mut self, seq: u64) {
        if seq <= self.acked {
            return;
        }
        let n = usize::try_from(seq - self.acked).unwrap_or(usize::MAX);
        let gone = self.slots.drain(..n.min(self.slots.len()));
        for s in gone {
            if matches!(s.state, State::Queued | State::Written) {
                self.inflight = self.inflight.saturating_sub(s.size);
            }
        }
        self.lost = self.lost.split_off(&(seq + 1));
        self.acked = seq;
        self.next = self.next.max(seq + 1);
        self.barriers.retain(|b| b.upto > seq);
        self.advance();
    }

    /// The sequence number to send now: a message presumed lost (lowest first), else the
    /// next new one if the window has room. The shell sends it if the log has it, then calls
    /// [`Forwarder::sent`] (or [`Forwarder::skip`]).
    pub fn want(&self, now: Instant) -> Option<u64> {
        if !self.up || self.backing_off(now) {
            return None;
        }
        if let Some(&seq) = self.lost.first() {
            return Some(seq);
        }
        let room = self.slots.len() < self.cfg.window && self.inflight < self.window();
        room.then_some(self.next)
    }

    /// The log has nothing more to send: what is written until the acknowledged bytes pass
    /// what is in flight now says nothing about the link's rate.
    pub fn idle(&mut self) {
        self.app_limited_until = self.delivered + self.inflight.max(1);
    }

    /// `seq` was queued on the link: `size` bytes, ending at bulk byte `end` of this
    /// connection. A new message may be past [`Forwarder::next`] when the records in between
    /// are gone (see [`Forwarder::gone`]); one below it is a re-send.
    pub fn sent(&mut self, seq: u64, size: u64, end: u64) {
        if seq < self.next {
            let Some(i) = self.index(seq) else { return };
            let s = &mut self.slots[i];
            if s.state != State::Lost {
                return;
            }
            self.lost.remove(&seq);
            s.state = State::Queued;
            s.size = size;
            s.end = end;
            s.written = None;
            s.sends += 1;
        } else {
            if seq > self.next {
                self.gone(seq - 1);
            }
            self.slots.push_back(Slot {
                state: State::Queued,
                size,
                end,
                written: None,
                delivered: 0,
                delivered_at: None,
                app_limited: false,
                sends: 1,
            });
            self.next = seq + 1;
        }
        self.inflight += size;
        self.unwritten.push_back((seq, end));
        self.counts.sent += 1;
    }

    /// `seq` is done without being sent (a record that can never go up).
    pub fn skip(&mut self, seq: u64) {
        if seq >= self.next {
            if seq > self.next {
                self.gone(seq - 1);
            }
            self.slots.push_back(Slot::done());
            self.next = seq + 1;
        } else if let Some(i) = self.index(seq) {
            let s = self.slots[i];
            match s.state {
                State::Lost => {
                    self.lost.remove(&seq);
                }
                State::Queued | State::Written => {
                    self.inflight = self.inflight.saturating_sub(s.size);
                }
                State::Done => {}
            }
            self.slots[i].state = State::Done;
        }
        self.advance();
    }

    /// The records from [`Forwarder::next`] to `upto` cannot be read (a damaged sector): they
    /// count as done once everything sent before them is acknowledged.
    pub fn gone(&mut self, upto: u64) {
        if upto < self.next {
            return;
        }
        if self.slots.is_empty() {
            self.skip_to(upto);
            return;
        }
        // Bounded by the records of one sector: the thread skips dropped sectors up front.
        for _ in self.next..=upto {
            self.slots.push_back(Slot::done());
        }
        self.next = upto + 1;
    }

    /// The link's writer has written `bulk_out` bulk bytes of this connection by `now`;
    /// `write_time(end)` tells when the write that reached `end` ended, when the link knows (else
    /// `now`).
    pub fn written(
        &mut self,
        now: Instant,
        bulk_out: u64,
        write_time: impl Fn(u64) -> Option<Instant>,
    ) {
        while let Some(&(seq, end)) = self.unwritten.front() {
            if end > bulk_out {
                break;
            }
            self.unwritten.pop_front();
            let Some(i) = self.index(seq) else { continue };
            let (delivered, at) = (self.delivered, self.delivered_at);
            let app_limited = self.app_limited_until > delivered;
            let s = &mut self.slots[i];
            if s.state == State::Queued && s.end == end {
                s.state = State::Written;
                s.written = Some(write_time(end).map_or(now, |t| t.min(now)));
                s.delivered = delivered;
                s.delivered_at = Some(at.unwrap_or(now));
                s.app_limited = app_limited;
            }
        }
    }

    /// The hub answered for `seq`: stored (or a duplicate) when `stored`, else refused (sent
    /// again after a back-off).
    pub fn ack(&mut self, now: Instant, seq: u64, stored: bool) {
        let Some(i) = self.index(seq) else {
            // Stale: from before a reconnect, or already past the cursor.
            return;
        };
        if !stored {
            self.counts.errors += 1;
            self.retry_at = Some(now + self.backoff.next_nominal());
            // A copy still queued is the retry already.
            if self.slots[i].state == State::Written {
                self.mark_lost(i);
            }
            return;
        }
        self.backoff.reset();
        self.complete(now, i);
        self.advance();
    }

    fn mark_lost(&mut self, i: usize) {
        let s = &mut self.slots[i];
        if matches!(s.state, State::Queued | State::Written) {
            self.inflight = self.inflight.saturating_sub(s.size);
        }
        s.state = State::Lost;
        self.lost.insert(self.acked + 1 + i as u64);
    }

    /// Slot `i` is acknowledged: samples for the estimates, then done.
    fn complete(&mut self, now: Instant, i: usize) {
        let s = self.slots[i];
        match s.state {
            State::Done => return,
            State::Lost => {
                self.lost.remove(&(self.acked + 1 + i as u64));
            }
            State::Queued | State::Written => {
                self.inflight = self.inflight.saturating_sub(s.size);
            }
        }
        self.slots[i].state = State::Done;
        self.delivered += s.size;
        if let (Some(w), 1) = (s.written, s.sends) {
            // Karn: only a message sent once says how long a round trip takes.
            let rtt = now.saturating_duration_since(w);
            self.rtt.sample(rtt);
            if let Some(at) = s.delivered_at {
                let dt = now.saturating_duration_since(at).as_secs_f64();
                if dt > 0.0 {
                    let rate = (self.delivered - s.delivered) as f64 / dt;
                    self.bw.sample(self.round, rate, s.app_limited);
                }
            }
            if s.delivered >= self.round_end {
                self.round += 1;
                self.round_end = self.delivered;
            }
            if self.rack.is_none_or(|(x, _)| s.end >= x) {
                self.rack = Some((s.end, rtt));
            }
            self.acked_end = self.acked_end.max(s.end);
        }
        self.delivered_at = Some(now);
        self.progress_at = Some(now);
        self.rto_backoff = 0;
    }

    fn advance(&mut self) {
        while self.slots.front().is_some_and(|s| s.state == State::Done) {
            self.slots.pop_front();
            self.acked += 1;
            self.counts.forwarded += 1;
        }
    }

    fn reorder_window(&self) -> Duration {
        self.rtt
            .min()
            .map_or(MIN_REORDER, |m| (m / 4).max(MIN_REORDER))
    }

    /// The oldest copy on the wire and when its retransmission timeout expires: no PubAck
    /// for a timeout after it was written (or after the last PubAck), plus the time the bytes
    /// in front of it that are not known delivered take at the measured rate.
    fn rto_due(&self) -> Option<(usize, Instant)> {
        let (i, s) = self
            .slots
            .iter()
            .enumerate()
            .take(SCAN)
            .find(|(_, s)| s.state == State::Written)?;
        let w = s.written?;
        let base = self.progress_at.map_or(w, |p| p.max(w));
        let ahead = s.end.saturating_sub(s.size).saturating_sub(self.acked_end);
        let xfer = pace::transfer(ahead, self.bw.get(self.round));
        Some((i, base + xfer + self.rto()))
    }

    /// RACK: copies written before the latest acknowledged one (earlier in the lane) are lost
    /// once they were not acknowledged within its round trip plus the reordering allowance.
    /// Each such copy with that deadline.
    fn rack_due(&self) -> impl Iterator<Item = (usize, Instant)> + '_ {
        let wait = self.rack.map(|(_, rtt)| rtt + self.reorder_window());
        self.slots
            .iter()
            .take(SCAN)
            .enumerate()
            .filter_map(move |(i, s)| {
                let (xmit, _) = self.rack?;
                let w = s
                    .written
                    .filter(|_| s.state == State::Written && s.end < xmit)?;
                Some((i, w + wait?))
            })
    }

    /// Runs the timers: marks what is presumed lost (sent again next). Returns whether a
    /// retransmission timeout expired.
    pub fn poll(&mut self, now: Instant) -> bool {
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
        }
        if !self.up {
            return false;
        }
        let lost: Vec<usize> = self
            .rack_due()
            .filter(|&(_, due)| now >= due)
            .map(|(i, _)| i)
            .collect();
        for i in lost {
            self.mark_lost(i);
            self.counts.lost += 1;
        }
        match self.rto_due() {
            Some((i, due)) if now >= due => {
                self.mark_lost(i);
                self.counts.timeouts += 1;
                self.rto_backoff += 1;
                // The timer restarts from here.
                self.progress_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// When [`Forwarder::poll`] or a back-off ending has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        let timers = [
            self.retry_at,
            self.up.then(|| self.rto_due().map(|d| d.1)).flatten(),
            self.up
                .then(|| self.rack_due().map(|d| d.1).min())
                .flatten(),
        ];
        timers.into_iter().flatten().min()
    }

    /// `core` mode: the messages sent so far end at bulk byte `mark` of this connection; once
    /// the link has written that far, a PING acknowledges them.
    pub fn core_batch(&mut self, mark: u64) {
        let upto = self.next - 1;
        if !self.cfg.core
            || upto <= self.acked
            || self.barriers.back().is_some_and(|b| b.upto >= upto)
        {
            return;
        }
        self.barriers.push_back(Barrier {
            upto,
            mark,
            ping: None,
        });
    }

    /// `core` mode: whether a batch is written (the link wrote `written` bulk bytes) and
    /// waits for its PING.
    pub fn needs_ping(&self, written: u64) -> bool {
        self.barriers
            .iter()
            .find(|b| b.ping.is_none())
            .is_some_and(|b| b.mark <= written)
    }

    /// `core` mode: the PING for every written batch without one was queued as number `n`.
    pub fn pinged(&mut self, written: u64, n: u64) {
        for b in self.barriers.iter_mut() {
            if b.ping.is_none() && b.mark <= written {
                b.ping = Some(n);
            }
        }
    }

    /// `core` mode: the hub answered `pongs` PINGs on this connection so far.
    pub fn pongs(&mut self, now: Instant, pongs: u64) {
        while let Some(b) = self.barriers.front().copied() {
            if b.ping.is_none_or(|p| p > pongs) {
                break;
            }
            self.barriers.pop_front();
            let n = usize::try_from(b.upto.saturating_sub(self.acked)).unwrap_or(usize::MAX);
            for i in 0..n.min(self.slots.len()) {
                self.complete(now, i);
            }
            self.advance();
        }
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
