//! The forwarder's protocol logic, sans IO: which sequence number to send next, what is in
//! flight, when the acknowledged cursor moves, when to re-send. Time is passed in; the shell
//! (`drain.rs`) reads the log, writes to the link and feeds PubAcks and PONGs back.
//!
//! - A window of at most `window` messages is in flight (sent, not yet acknowledged).
//! - The cursor (`acked`) only moves over a contiguous run of acknowledged messages, so a
//!   restart from it never skips one. PubAcks may arrive in any order.
//! - Any loss is handled by going back to the cursor ("go-back-N"): the link going down, an
//!   acknowledgement missing for `ack_timeout`, or an error PubAck (then after a back-off).
//!   Whatever the hub already stored comes back as a duplicate PubAck (`jetstream` mode: the
//!   `Nats-Msg-Id` is stable), which counts as stored.
//! - `core` mode: no PubAcks. After a batch is written to the socket the shell queues a PING;
//!   the PONG answering it acknowledges every message sent before the batch's end
//!   ([`Forwarder::core_batch`], [`Forwarder::pinged`], [`Forwarder::pongs`]).
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// First wait after an error PubAck; doubles per error up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait after repeated error PubAcks.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How a forwarder behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Messages in flight at most.
    pub window: usize,
    /// Re-send from the cursor when the oldest message in flight is unacknowledged this long.
    pub ack_timeout: Duration,
    /// `core` mode (PING/PONG barriers instead of PubAcks).
    pub core: bool,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    sent: Instant,
    done: bool,
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
    /// Go-back-N re-sends started by a timeout.
    pub timeouts: u64,
    /// Error PubAcks.
    pub errors: u64,
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
    backoff: Duration,
    barriers: VecDeque<Barrier>,
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
            backoff: MIN_BACKOFF,
            barriers: VecDeque::new(),
            counts: Counts::default(),
        }
    }

    /// Everything up to here is acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The next sequence number to send.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Messages sent and not acknowledged.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| !s.done).count()
    }

    /// Whether the link is up as far as the forwarder knows.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Waiting out a back-off after an error PubAck (until then nothing is sent).
    pub fn backing_off(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| now < t)
    }

    /// The link came up (a new connection): send from the cursor.
    pub fn link_up(&mut self) {
        self.up = true;
        self.backoff = MIN_BACKOFF;
        self.retry_at = None;
        self.rewind();
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
    }

    /// Everything up to `seq` is done without the hub (expired by a limit, or dropped from a
    /// full file): moves the cursor there.
    pub fn skip_to(&mut self, seq: u64) {
        if seq <= self.acked {
            return;
        }
        let n = usize::try_from(seq - self.acked).unwrap_or(usize::MAX);
        if n >= self.slots.len() {
            self.slots.clear();
        } else {
            self.slots.drain(..n);
        }
        self.acked = seq;
        self.next = self.next.max(seq + 1);
        self.barriers.retain(|b| b.upto > seq);
        self.advance();
    }

    /// The sequence number to send now, if the window has room (the shell sends it if the
    /// log has it, then calls [`Forwarder::sent`]).
    pub fn want(&self, now: Instant) -> Option<u64> {
        let ready = self.up && !self.backing_off(now) && self.slots.len() < self.cfg.window;
        ready.then_some(self.next)
    }

    /// `seq` was sent (it may be past [`Forwarder::next`] when the records in between are
    /// gone: see [`Forwarder::gone`]).
    pub fn sent(&mut self, now: Instant, seq: u64) {
        if seq < self.next {
            return;
        }
        if seq > self.next {
            self.gone(seq - 1);
        }
        self.slots.push_back(Slot {
            sent: now,
            done: false,
        });
        self.next = seq + 1;
        self.counts.sent += 1;
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
            self.slots.push_back(Slot {
                sent: self.slots.back().map_or_else(Instant::now, |s| s.sent),
                done: true,
            });
        }
        self.next = upto + 1;
    }

    /// The hub answered for `seq`: stored (or a duplicate) when `stored`, else refused (sent
    /// again from the cursor after a back-off).
    pub fn ack(&mut self, now: Instant, seq: u64, stored: bool) {
        if seq <= self.acked || seq >= self.next {
            // Stale: from before a rewind or a reconnect.
            return;
        }
        if !stored {
            self.counts.errors += 1;
            self.retry_at = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            self.rewind();
            return;
        }
        self.backoff = MIN_BACKOFF;
        let i = usize::try_from(seq - self.acked - 1).unwrap_or(usize::MAX);
        if let Some(s) = self.slots.get_mut(i) {
            s.done = true;
        }
        self.advance();
    }

    fn advance(&mut self) {
        while self.slots.front().is_some_and(|s| s.done) {
            self.slots.pop_front();
            self.acked += 1;
            self.counts.forwarded += 1;
        }
    }

    /// Checks the timer: the oldest message in flight unacknowledged for `ack_timeout` sends
    /// everything again from the cursor. Returns whether it did.
    pub fn poll(&mut self, now: Instant) -> bool {
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
        }
        match self.slots.front() {
            Some(s) if now >= s.sent + self.cfg.ack_timeout => {
                self.counts.timeouts += 1;
                self.rewind();
                true
            }
            _ => false,
        }
    }

    /// When [`Forwarder::poll`] or a back-off ending has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        let timeout = self.slots.front().map(|s| s.sent + self.cfg.ack_timeout);
        match (timeout, self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
    pub fn pongs(&mut self, pongs: u64) {
        while let Some(b) = self.barriers.front().copied() {
            if b.ping.is_none_or(|p| p > pongs) {
                break;
            }
            self.barriers.pop_front();
            let n = usize::try_from(b.upto.saturating_sub(self.acked)).unwrap_or(usize::MAX);
            for s in self.slots.iter_mut().take(n) {
                s.done = true;
            }
            self.advance();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(window: usize) -> Forwarder {
        Forwarder::new(
            Settings {
                window,
                ack_timeout: Duration::from_secs(5),
                core: false,
            },
            0,
        )
    }

    /// Sends everything the window allows from a log holding `last` records.
    fn send_all(f: &mut Forwarder, now: Instant, last: u64) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(seq) = f.want(now) {
            if seq > last {
                break;
            }
            f.sent(now, seq);
            out.push(seq);
        }
        out
    }

    #[test]
    fn nothing_goes_out_until_the_link_is_up_then_a_window_at_a_time() {
        let t = Instant::now();
        let mut f = js(3);
        assert_eq!(f.want(t), None);
        f.link_up();
        assert_eq!(send_all(&mut f, t, 10), [1, 2, 3]);
        assert_eq!(f.in_flight(), 3);
        f.ack(t, 1, true);
        assert_eq!((f.acked(), f.counts.forwarded), (1, 1));
        assert_eq!(send_all(&mut f, t, 10), [4]);
        // Out of order: 3 before 2 leaves the cursor at 1 until 2 comes.
        f.ack(t, 3, true);
        assert_eq!(f.acked(), 1);
        assert_eq!(
            send_all(&mut f, t, 10),
            Vec::<u64>::new(),
            "3 still takes a slot"
        );
        f.ack(t, 2, true);
        assert_eq!(f.acked(), 3);
        assert_eq!(send_all(&mut f, t, 10), [5, 6]);
        // The log ends at 6: nothing more to send.
        f.ack(t, 4, true);
        assert_eq!(send_all(&mut f, t, 6), Vec::<u64>::new());
        assert_eq!(f.want(t), Some(7));
    }

    #[test]
    fn a_reconnect_sends_again_from_the_cursor_and_stale_acks_are_ignored() {
        let t = Instant::now();
        let mut f = js(10);
        f.link_up();
        assert_eq!(send_all(&mut f, t, 5), [1, 2, 3, 4, 5]);
        f.ack(t, 1, true);
        f.ack(t, 2, true);
        f.link_down();
        assert_eq!(f.want(t), None);
        // A PubAck of the old connection arriving late moves nothing.
        f.ack(t, 4, true);
        assert_eq!(f.acked(), 2);
        f.link_up();
        assert_eq!(send_all(&mut f, t, 5), [3, 4, 5]);
        // The hub had stored 3 and 4: duplicates count as stored.
        for s in 3..=5 {
            f.ack(t, s, true);
        }
        assert_eq!((f.acked(), f.in_flight()), (5, 0));
        assert_eq!(f.counts.sent, 8);
    }

    #[test]
    fn a_missing_ack_resends_from_the_oldest_after_the_timeout() {
        let t = Instant::now();
        let mut f = js(4);
        f.link_up();
        send_all(&mut f, t, 4);
        f.ack(t, 2, true);
        let due = t + Duration::from_secs(5);
        assert_eq!(f.poll_at(), Some(due));
        assert!(!f.poll(due - Duration::from_millis(1)));
        assert!(f.poll(due));
        assert_eq!(f.counts.timeouts, 1);
        assert_eq!(send_all(&mut f, due, 4), [1, 2, 3, 4]);
        assert_eq!(f.poll_at(), Some(due + Duration::from_secs(5)));
    }

    #[test]
    fn an_error_puback_backs_off_then_resends_from_the_cursor() {
        let t = Instant::now();
        let mut f = js(8);
        f.link_up();
        send_all(&mut f, t, 3);
        f.ack(t, 1, true);
        f.ack(t, 2, false);
        assert!(f.backing_off(t));
        assert_eq!(f.want(t), None);
        assert_eq!(f.poll_at(), Some(t + MIN_BACKOFF));
        let later = t + MIN_BACKOFF;
        assert!(!f.poll(later));
        assert_eq!(f.poll_at(), None, "the back-off is over: no timer left");
        assert_eq!(send_all(&mut f, later, 3), [2, 3]);
        // A second error waits twice as long.
        f.ack(later, 2, false);
        assert_eq!(f.poll_at(), Some(later + 2 * MIN_BACKOFF));
        assert_eq!(f.counts.errors, 2);
        // Success resets the back-off.
        let l2 = later + 2 * MIN_BACKOFF;
        send_all(&mut f, l2, 3);
        f.ack(l2, 2, true);
        f.ack(l2, 3, false);
        assert_eq!(f.poll_at(), Some(l2 + MIN_BACKOFF));
    }

    #[test]
    fn records_dropped_or_expired_move_the_cursor() {
        let t = Instant::now();
        let mut f = js(8);
        f.link_up();
        send_all(&mut f, t, 3);
        // 4..=9 cannot be read (a damaged sector): the next read returns 10. They count as
        // done, but only once 1..=3 are acknowledged.
        f.sent(t, 10);
        assert_eq!((f.acked(), f.next(), f.in_flight()), (0, 11, 4));
        for s in 1..=3 {
            f.ack(t, s, true);
        }
        assert_eq!(f.acked(), 9);
        f.ack(t, 10, true);
        assert_eq!(f.acked(), 10);
        // Nothing in flight: a gap moves the cursor at once.
        f.gone(11);
        assert_eq!((f.acked(), f.next()), (11, 12));
        // The file dropped the oldest records, in flight or not.
        send_all(&mut f, t, 14);
        f.skip_to(20);
        assert_eq!((f.acked(), f.next(), f.in_flight()), (20, 21, 0));
        // max_age marked up to 22 done before it was sent.
        f.skip_to(22);
        assert_eq!(f.want(t), Some(23));
        f.skip_to(5);
        assert_eq!(f.acked(), 22);
    }

    #[test]
    fn core_mode_acks_a_batch_with_the_pong_of_its_ping() {
        let t = Instant::now();
        let mut f = Forwarder::new(
            Settings {
                window: 100,
                ack_timeout: Duration::from_secs(5),
                core: true,
            },
            0,
        );
        f.link_up();
        send_all(&mut f, t, 3);
        f.core_batch(300);
        assert!(!f.needs_ping(200), "not written yet");
        // A keepalive PING (number 1) went out before the batch was written.
        assert!(f.needs_ping(300));
        f.pinged(300, 2);
        send_all(&mut f, t, 5);
        f.core_batch(500);
        f.pongs(1);
        assert_eq!(f.acked(), 0, "PONG 1 answers the keepalive");
        f.pongs(2);
        assert_eq!(f.acked(), 3);
        assert!(f.needs_ping(500));
        f.pinged(500, 3);
        // The link drops before PONG 3: 4 and 5 go again.
        f.link_down();
        f.link_up();
        assert_eq!(send_all(&mut f, t, 5), [4, 5]);
        f.core_batch(100);
        f.pinged(100, 1);
        f.pongs(1);
        assert_eq!((f.acked(), f.counts.forwarded), (5, 5));
    }
}
