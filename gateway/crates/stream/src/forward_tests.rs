//! The forwarder as scripts: a conversation with a link and a hub, in simulated time. The
//! first tests drive it by hand; [`Sim`] puts it on a model link (a socket buffer, a line of
//! a given rate, a one-way delay each way, a hub that stores each message once and answers
//! every copy) to check the promises over whole drains: nothing sent twice without a loss,
//! the line kept busy, stalls and losses repaired by re-sending only what was lost.
use super::*;
use std::collections::BTreeSet;

const MS: Duration = Duration::from_millis(1);

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

/// A hand-driven link: `queued` and `out` are the bulk lane's byte counters.
struct Script {
    f: Forwarder,
    t0: Instant,
    now: Instant,
    queued: u64,
    out: u64,
}

impl Script {
    fn new(f: Forwarder) -> Script {
        let t0 = Instant::now();
        Script {
            f,
            t0,
            now: t0,
            queued: 0,
            out: 0,
        }
    }

    fn up(mut self) -> Script {
        self.f.link_up();
        self
    }

    /// Time moves to `ms` after the start; the timers run. Whether a timeout expired.
    fn at(&mut self, ms: u64) -> bool {
        self.now = self.t0 + Duration::from_millis(ms);
        self.f.poll(self.now)
    }

    /// Sends what the forwarder wants, `size` bytes each, from a log ending at `last`.
    fn send(&mut self, last: u64, size: u64) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(seq) = self.f.want(self.now) {
            if seq > last {
                self.f.idle();
                break;
            }
            self.queued += size;
            self.f.sent(seq, size, self.queued);
            out.push(seq);
        }
        out
    }

    /// The writer wrote everything queued.
    fn write(&mut self) {
        self.out = self.queued;
        self.f.written(self.now, self.out, |_| None);
    }

    fn ack(&mut self, seqs: impl IntoIterator<Item = u64>) {
        for s in seqs {
            self.f.ack(self.now, s, true);
        }
    }
}

#[test]
fn nothing_goes_out_until_the_link_is_up_then_what_the_window_allows() {
    let mut s = Script::new(js(3));
    assert_eq!(s.f.want(s.now), None);
    s = s.up();
    assert_eq!(s.send(10, 100), [1, 2, 3], "three messages at most");
    assert_eq!(s.f.in_flight(), 3);
    s.write();
    s.ack([1]);
    assert_eq!((s.f.acked(), s.f.counts.forwarded), (1, 1));
    assert_eq!(s.send(10, 100), [4]);
    // Out of order: 3 before 2 leaves the cursor at 1 until 2 comes.
    s.ack([3]);
    assert_eq!(s.f.acked(), 1);
    assert_eq!(s.send(10, 100), Vec::<u64>::new(), "3 still takes a slot");
    s.ack([2]);
    assert_eq!(s.f.acked(), 3);
    assert_eq!(s.send(10, 100), [5, 6]);
    s.write();
    s.ack([4]);
    assert_eq!(s.send(6, 100), Vec::<u64>::new(), "the log ends at 6");
    assert_eq!(s.f.want(s.now), Some(7));
}

#[test]
fn the_window_in_bytes_starts_small_and_grows_with_the_measured_rate() {
    let mut s = Script::new(js(100_000)).up();
    // 16 KiB before anything is measured: 17 messages of 1000 B (the last one crosses it).
    assert_eq!(s.send(u64::MAX, 1000).len(), 17);
    assert_eq!(s.f.window(), pace::INITIAL_WINDOW);
    // A link of 100 kB/s and 100 ms: each round trip, everything written comes back.
    let mut t = 0;
    for _ in 0..12 {
        s.write();
        t += 100;
        s.at(t);
        let inflight: Vec<u64> = (s.f.acked() + 1..s.f.next()).collect();
        s.ack(inflight);
        s.send(u64::MAX, 1000);
    }
    let e = s.f.estimates();
    assert!(e.window > pace::INITIAL_WINDOW, "{e:?}");
    assert_eq!(e.min_rtt, Some(100 * MS));
    assert_eq!(s.f.counts.timeouts + s.f.counts.lost, 0);
}

#[test]
fn a_message_queued_behind_a_slow_link_never_times_out_before_it_is_written() {
    let mut s = Script::new(js(10)).up();
    s.send(3, 100);
    // Nothing written for a minute (the writer is behind a slow link): no timer runs.
    assert_eq!(s.f.poll_at(), None);
    assert!(!s.at(60_000));
    assert_eq!(s.send(3, 100), Vec::<u64>::new(), "nothing is re-sent");
    // Written now: the initial timeout (5 s) counts from here.
    s.write();
    assert_eq!(s.f.poll_at(), Some(s.now + Duration::from_secs(5)));
    assert!(!s.at(64_999));
    assert!(s.at(65_000));
    // Only the oldest goes again, not the window.
    assert_eq!(s.send(3, 100), [1]);
    assert_eq!(s.f.counts.timeouts, 1);
    // The next timeout waits twice as long (and counts from the write of the copy).
    s.write();
    assert!(!s.at(65_000 + 9_999));
    assert!(s.at(75_000));
    assert_eq!(s.send(3, 100), [1], "the oldest again: it holds the cursor");
}

#[test]
fn after_a_round_trip_is_measured_the_timeout_follows_it() {
    let mut s = Script::new(js(100)).up();
    s.send(1, 100);
    s.write();
    s.at(600);
    s.ack([1]);
    // RFC 6298: first sample R = 600 ms gives RTO = R + 4 * R/2 = 1.8 s.
    assert_eq!(s.f.estimates().rto, 1800 * MS);
    s.send(2, 100);
    s.write();
    assert_eq!(s.f.poll_at(), Some(s.now + 1800 * MS));
}

#[test]
fn the_timeout_allows_for_the_bytes_in_front_that_are_not_known_delivered() {
    let mut s = Script::new(js(100)).up();
    // A round trip and a rate: 1000 B acknowledged 100 ms after the last PubAck.
    s.send(1, 1000);
    s.write();
    s.at(100);
    s.ack([1]);
    s.send(2, 1000);
    s.write();
    s.at(200);
    s.ack([2]);
    let rate = s.f.estimates().rate;
    assert!(rate > 9_000.0 && rate < 11_000.0, "{rate}");
    // Other traffic put 50 kB on the lane before message 3: about 5 s at that rate.
    s.queued += 50_000;
    s.send(3, 1000);
    s.write();
    let due = s.f.poll_at().unwrap();
    let plain = s.now + s.f.estimates().rto;
    assert!(due > plain + Duration::from_secs(4), "{:?}", due - plain);
}

#[test]
fn a_message_lost_while_later_ones_are_acknowledged_is_sent_again_alone() {
    let mut s = Script::new(js(100)).up();
    s.send(5, 100);
    s.write();
    s.at(100);
    // The hub never answers 3 (it dropped it); 4 and 5 come back.
    s.ack([1, 2, 4, 5]);
    assert_eq!(
        s.send(5, 100),
        Vec::<u64>::new(),
        "not yet: it may be reordered"
    );
    // Written together with 4 and 5: due 5's round trip after its write, plus 25 ms.
    assert_eq!(s.f.poll_at(), Some(s.t0 + 125 * MS));
    assert!(!s.at(124));
    assert_eq!(s.send(5, 100), Vec::<u64>::new());
    s.at(125);
    assert_eq!(s.send(5, 100), [3]);
    assert_eq!((s.f.counts.lost, s.f.counts.timeouts), (1, 0));
    s.write();
    s.at(225);
    s.ack([3]);
    assert_eq!((s.f.acked(), s.f.counts.sent), (5, 6));
}

#[test]
fn an_error_puback_backs_off_then_sends_that_message_again_only() {
    let mut s = Script::new(js(8)).up();
    assert_eq!(s.send(2, 100), [1, 2]);
    s.write();
    s.at(50);
    s.ack([1]);
    s.f.ack(s.now, 2, false);
    assert!(s.f.backing_off(s.now));
    assert_eq!(s.f.want(s.now), None);
    assert_eq!(s.f.poll_at(), Some(s.now + MIN_BACKOFF));
    s.at(150);
    assert_eq!(s.send(2, 100), [2], "the refused one goes again, alone");
    // A second error waits twice as long.
    s.write();
    s.f.ack(s.now, 2, false);
    assert!(s.f.backing_off(s.now + 2 * MIN_BACKOFF - MS));
    assert!(!s.f.backing_off(s.now + 2 * MIN_BACKOFF));
    assert_eq!(s.f.counts.errors, 2);
    s.at(350);
    assert_eq!(s.send(2, 100), [2]);
    s.write();
    s.ack([2]);
    // Success resets the back-off.
    assert_eq!(s.send(3, 100), [3]);
    s.write();
    s.f.ack(s.now, 3, false);
    assert!(!s.f.backing_off(s.now + MIN_BACKOFF));
    assert_eq!(s.f.counts.sent, 5);
}

#[test]
fn a_reconnect_sends_again_from_the_cursor_and_stale_acks_are_ignored() {
    let mut s = Script::new(js(10)).up();
    assert_eq!(s.send(5, 100), [1, 2, 3, 4, 5]);
    s.write();
    s.ack([1, 2]);
    s.f.link_down();
    assert_eq!(s.f.want(s.now), None);
    // A PubAck of the old connection arriving late moves nothing.
    s.ack([4]);
    assert_eq!(s.f.acked(), 2);
    s = s.up();
    s.queued = 0;
    assert_eq!(s.send(5, 100), [3, 4, 5]);
    // The hub had stored 3 and 4: duplicates count as stored.
    s.ack([3, 4, 5]);
    assert_eq!((s.f.acked(), s.f.in_flight()), (5, 0));
    assert_eq!(s.f.counts.sent, 8);
}

#[test]
fn records_dropped_or_expired_move_the_cursor() {
    let mut s = Script::new(js(8)).up();
    s.send(3, 100);
    // 4..=9 cannot be read (a damaged sector): the next read returns 10. They count as
    // done, but only once 1..=3 are acknowledged.
    s.queued += 100;
    s.f.sent(10, 100, s.queued);
    assert_eq!((s.f.acked(), s.f.next(), s.f.in_flight()), (0, 11, 4));
    s.write();
    s.ack([1, 2, 3]);
    assert_eq!(s.f.acked(), 9);
    s.ack([10]);
    assert_eq!(s.f.acked(), 10);
    // Nothing in flight: a gap moves the cursor at once.
    s.f.gone(11);
    assert_eq!((s.f.acked(), s.f.next()), (11, 12));
    // The file dropped the oldest records, in flight or not.
    s.send(14, 100);
    s.f.skip_to(20);
    assert_eq!((s.f.acked(), s.f.next(), s.f.in_flight()), (20, 21, 0));
    assert_eq!(s.f.estimates().inflight, 0);
    // max_age marked up to 22 done before it was sent.
    s.f.skip_to(22);
    assert_eq!(s.f.want(s.now), Some(23));
    s.f.skip_to(5);
    assert_eq!(s.f.acked(), 22);
    // A record that can never go up is skipped without being sent.
    s.f.skip(23);
    assert_eq!((s.f.acked(), s.f.counts.sent), (23, 7));
}

#[test]
fn core_mode_acks_a_batch_with_the_pong_of_its_ping() {
    let mut s = Script::new(Forwarder::new(
        Settings {
            window: 100,
            ack_timeout: Duration::from_secs(5),
            core: true,
        },
        0,
    ))
    .up();
    s.send(3, 100);
    s.f.core_batch(300);
    assert!(!s.f.needs_ping(200), "not written yet");
    // A keepalive PING (number 1) went out before the batch was written.
    assert!(s.f.needs_ping(300));
    s.f.pinged(300, 2);
    s.send(5, 100);
    s.f.core_batch(500);
    s.f.pongs(s.now, 1);
    assert_eq!(s.f.acked(), 0, "PONG 1 answers the keepalive");
    s.f.pongs(s.now, 2);
    assert_eq!(s.f.acked(), 3);
    assert!(s.f.needs_ping(500));
    s.f.pinged(500, 3);
    // The link drops before PONG 3: 4 and 5 go again.
    s.f.link_down();
    s = s.up();
    assert_eq!(s.send(5, 100), [4, 5]);
    s.f.core_batch(100);
    s.f.pinged(100, 1);
    s.f.pongs(s.now, 1);
    assert_eq!((s.f.acked(), s.f.counts.forwarded), (5, 5));
}

/// A model link: twig's lane -> a socket buffer of `buffer` bytes (the kernel's and a
/// middlebox's) -> a line of `rate` bytes per second -> `delay` -> the hub, which stores the
/// first copy of each message and answers every copy -> `delay` -> PubAck. Time moves in
/// steps of at most 1 ms.
struct Sim {
    f: Forwarder,
    now: Instant,
    t0: Instant,
    rate: f64,
    delay: Duration,
    buffer: u64,
    /// Lane: queued and written byte counters; copies in lane order.
    queued: u64,
    written: u64,
    copies: VecDeque<(u64, u64)>,
    /// Bytes that have crossed the line (fractional: the line moves bytes per step).
    crossed: f64,
    /// PubAcks on their way back, in arrival order.
    acks: VecDeque<(Instant, u64)>,
    /// Stalls (from the start): nothing crosses the line.
    stalls: Vec<(Duration, Duration)>,
    /// Messages whose first copy the hub loses.
    lose: BTreeSet<u64>,
    stored: Vec<u64>,
    seen: BTreeSet<u64>,
    size: u64,
}

impl Sim {
    fn new(rate: f64, rtt: Duration, window: usize) -> Sim {
        let t0 = Instant::now();
        let mut f = js(window);
        f.link_up();
        Sim {
            f,
            now: t0,
            t0,
            rate,
            delay: rtt / 2,
            buffer: 256 * 1024,
            queued: 0,
            written: 0,
            copies: VecDeque::new(),
            crossed: 0.0,
            acks: VecDeque::new(),
            stalls: Vec::new(),
            lose: BTreeSet::new(),
            stored: Vec::new(),
            seen: BTreeSet::new(),
            size: 220,
        }
    }

    fn stalled(&self) -> bool {
        let t = self.now - self.t0;
        self.stalls.iter().any(|&(at, len)| t >= at && t < at + len)
    }

    /// Drains `n` messages; returns how long it took.
    fn drain(&mut self, n: u64, limit: Duration) -> Duration {
        let step = MS;
        while self.f.acked() < n {
            assert!(
                self.now - self.t0 < limit,
                "stuck at {} of {n}: {:?} {:?}",
                self.f.acked(),
                self.f.counts,
                self.f.estimates()
            );
            // PubAcks due.
            while self.acks.front().is_some_and(|a| a.0 <= self.now) {
                let (_, seq) = self.acks.pop_front().unwrap();
                self.f.ack(self.now, seq, true);
            }
            self.f.poll(self.now);
            // The forwarder queues what it may.
            while let Some(seq) = self.f.want(self.now) {
                if seq > n {
                    self.f.idle();
                    break;
                }
                self.queued += self.size;
                self.f.sent(seq, self.size, self.queued);
                self.copies.push_back((seq, self.queued));
            }
            // The writer fills the socket buffer.
            let in_buffer = self.written - self.crossed as u64;
            let room = self.buffer.saturating_sub(in_buffer);
            let w = (self.queued - self.written).min(room);
            if w > 0 {
                self.written += w;
                self.f.written(self.now, self.written, |_| None);
            }
            // The line carries bytes; whole copies arrive at the hub `delay` later, and
            // their PubAcks are back another `delay` after that.
            if !self.stalled() {
                let can = self.rate * step.as_secs_f64();
                self.crossed = (self.crossed + can).min(self.written as f64);
            }
            while self
                .copies
                .front()
                .is_some_and(|c| c.1 as f64 <= self.crossed)
            {
                let (seq, _) = self.copies.pop_front().unwrap();
                if self.lose.remove(&seq) {
                    continue;
                }
                if self.seen.insert(seq) {
                    self.stored.push(seq);
                }
                self.acks.push_back((self.now + 2 * self.delay, seq));
            }
            self.now += step;
        }
        self.now - self.t0
    }

    /// The hub holds 1..=n once each, in order.
    fn assert_exactly_once_in_order(&self, n: u64) {
        assert_eq!(self.stored, (1..=n).collect::<Vec<_>>());
    }
}

#[test]
fn on_model_links_from_10_kbytes_to_100_mbit_nothing_is_sent_twice_and_the_line_stays_busy() {
    let size = 220u64;
    // (bytes per second, round trip, line time in seconds).
    let links = [
        (10_000.0, 600, 20.0),
        (20_000.0, 600, 20.0),
        (20_000.0, 0, 10.0),
        (125_000.0, 200, 10.0),
        (1_250_000.0, 50, 5.0),
        (12_500_000.0, 20, 2.0),
        (12_500_000.0, 0, 1.0),
    ];
    for (rate, rtt, line) in links {
        let rtt = rtt * MS;
        let n = (rate * line / size as f64) as u64;
        let mut sim = Sim::new(rate, rtt, 65_536);
        let took = sim.drain(n, Duration::from_secs(600));
        sim.assert_exactly_once_in_order(n);
        let e = sim.f.estimates();
        let used = (n * size) as f64 / rate / took.as_secs_f64();
        let c = sim.f.counts;
        eprintln!(
            "{rate} B/s, {rtt:?}: {n} messages in {took:?} = {:.1}% of the line; sent {} \
             ({} timeouts, {} lost); window {} B, rate {:.0} B/s, srtt {:?}",
            used * 100.0,
            c.sent,
            c.timeouts,
            c.lost,
            e.window,
            e.rate,
            e.srtt
        );
        assert_eq!(c.sent, n, "{rate} B/s, {rtt:?}: re-sends without a loss");
        assert!(
            used >= 0.9,
            "{rate} B/s, {rtt:?}: {:.1}% of the line",
            used * 100.0
        );
        // What waits in front of a newcomer stays near one round trip of the line.
        let bdp = rate * rtt.max(pace::RTT_FLOOR).as_secs_f64();
        assert!(
            (e.window as f64) < 2.5 * bdp + pace::MIN_WINDOW as f64,
            "{rate} B/s, {rtt:?}: window {} for a BDP of {bdp:.0}",
            e.window
        );
    }
}

#[test]
fn a_stalling_link_costs_a_few_probes_per_stall_and_nothing_else() {
    let (rate, rtt) = (125_000.0, 200 * MS);
    let n = 5000;
    let mut sim = Sim::new(rate, rtt, 65_536);
    for k in 0..4u32 {
        sim.stalls
            .push((Duration::from_secs(2 + 3 * u64::from(k)), 2500 * MS));
    }
    sim.drain(n, Duration::from_secs(600));
    sim.assert_exactly_once_in_order(n);
    let c = sim.f.counts;
    eprintln!("4 stalls of 2.5 s: {c:?}");
    assert!(c.sent - n <= 4 * 4, "{c:?}");
    assert_eq!(c.lost, 0, "{c:?}");
}

#[test]
fn losses_at_the_hub_are_repaired_by_sending_only_those_again() {
    let (rate, rtt) = (125_000.0, 200 * MS);
    let n = 3000;
    let mut sim = Sim::new(rate, rtt, 65_536);
    sim.lose = [10, 500, 501, 502, 2999, 3000].into_iter().collect();
    sim.drain(n, Duration::from_secs(600));
    // The hub stored each once; the repaired ones came later than their neighbours.
    let mut stored = sim.stored.clone();
    stored.sort_unstable();
    assert_eq!(stored, (1..=n).collect::<Vec<_>>());
    let c = sim.f.counts;
    eprintln!("6 losses: {c:?}");
    // The last two had nothing after them: found by the timeout, one at a time.
    assert!(c.sent - n >= 6 && c.sent - n <= 8, "{c:?}");
}

/// A stream thread that looks late (held up by a sync to flash) still starts each message's
/// round trip at its write: the round trip measured is the link's, not shortened by the wait.
#[test]
fn a_late_look_at_the_writer_still_times_from_the_write() {
    let mut s = Script::new(js(10)).up();
    assert_eq!(s.send(2, 100), [1, 2]);
    // Written at 0 ms (1) and 10 ms (2); the thread looks only at 60 ms.
    let t0 = s.t0;
    s.at(60);
    s.out = s.queued;
    s.f.written(s.now, s.out, |end| {
        Some(t0 + if end <= 100 { Duration::ZERO } else { 10 * MS })
    });
    s.at(200);
    s.ack([1]);
    assert_eq!(s.f.estimates().min_rtt, Some(200 * MS));
    s.at(210);
    s.ack([2]);
    assert_eq!(s.f.estimates().min_rtt, Some(200 * MS));
    // A time from the future (another clock) is never later than the look.
    assert_eq!(s.send(3, 100), [3]);
    s.out = s.queued;
    s.f.written(s.now, s.out, |_| Some(t0 + 10_000 * MS));
    s.at(400);
    s.ack([3]);
    assert_eq!(s.f.estimates().min_rtt, Some(190 * MS));
}
