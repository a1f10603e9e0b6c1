//! One direction of one proxied connection: a reader thread that fills the bottleneck queue
//! from the source socket, and a transmitter thread that empties it at the link's rate, holds
//! each segment for the one-way delay (plus jitter) and writes it to the destination.
//!
//! The model is a router in front of a slow line: bytes wait in a bounded queue (the
//! bottleneck buffer), leave it at `rate` (a token bucket of `burst` bytes), then take
//! `delay + jitter` to arrive. A segment never arrives before the one in front of it, so
//! jitter never reorders the byte stream. When the queue is full the reader stops reading, the
//! kernel's buffers fill and the sender's writes block, as on a real narrow link.
//!
//! CPU: the transmitter wakes at most once per [`GRANULE`] while data flows (it sends every
//! segment due within a granule at once, coalesced into one write) and once per [`POLL`]
//! when idle (to notice cuts); the reader sleeps in `read` or on the queue's condition
//! variable.
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::schedule::{CutKind, Rng};
use super::{Control, Shape};

/// How often blocked threads look at the connection's cut flag and the emulator's stop flag.
pub const POLL: Duration = Duration::from_millis(50);
/// Segments due within this much are sent together (one write, one wake-up).
pub const GRANULE: Duration = Duration::from_millis(2);

/// A connection's fate, shared by its four threads.
#[derive(Default)]
pub struct ConnState {
    cut: AtomicU8,
}

const LIVE: u8 = 0;
const RESET: u8 = 1;
const DROPPED: u8 = 2;

impl ConnState {
    /// How it was cut, if it was.
    pub fn cut(&self) -> Option<CutKind> {
        match self.cut.load(Ordering::Acquire) {
            RESET => Some(CutKind::Reset),
            DROPPED => Some(CutKind::Drop),
            _ => None,
        }
    }

    /// Cuts it (the first cut wins).
    pub fn set(&self, kind: CutKind) {
        let v = match kind {
            CutKind::Reset => RESET,
            CutKind::Drop => DROPPED,
        };
        let _ = self
            .cut
            .compare_exchange(LIVE, v, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Which way bytes go: `Up` from the client (the connecting side) to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Client to target.
    Up = 0,
    /// Target to client.
    Down = 1,
}

#[derive(Default)]
struct Queue {
    segs: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The source ended; once the queue is empty the destination's write side is shut.
    eof: bool,
}

/// The bottleneck queue between a reader and a transmitter.
#[derive(Default)]
pub struct Pipe {
    q: Mutex<Queue>,
    data: Condvar,
    room: Condvar,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Everything one direction's threads share.
pub struct Dir {
    /// The direction's shape.
    pub shape: Shape,
    /// Link-wide state.
    pub ctl: Arc<Control>,
    /// The connection's fate.
    pub conn: Arc<ConnState>,
    /// The queue.
    pub pipe: Arc<Pipe>,
    /// Which way.
    pub way: Way,
}

fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// A reset cut: the socket is closed with a RST once the last thread lets go of it.
fn reset_on_close(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

/// Reads the source into the queue while it has room.
pub fn read_loop(d: &Dir, mut src: TcpStream) {
    let _ = src.set_read_timeout(Some(POLL));
    let limit = d.shape.queue.max(1);
    // Wait for some room rather than read a few bytes at a time from a full queue.
    let min_room = d.shape.segment().min(limit / 4).max(1);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if d.ctl.stopped() {
            d.conn.set(CutKind::Reset);
        }
        match d.conn.cut() {
            Some(CutKind::Reset) => return reset_on_close(&src),
            Some(CutKind::Drop) => return discard(&d.ctl, &mut src),
            None => {}
        }
        let room = {
            let mut q = d.pipe.lock();
            while q.bytes + min_room > limit && d.conn.cut().is_none() && !d.ctl.stopped() {
                q = d
                    .pipe
                    .room
                    .wait_timeout(q, POLL)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            limit.saturating_sub(q.bytes)
        };
        if d.conn.cut().is_some() || d.ctl.stopped() {
            continue;
        }
        let want = room.clamp(1, buf.len());
        match src.read(&mut buf[..want]) {
            Ok(0) => {
                d.pipe.lock().eof = true;
                d.pipe.data.notify_one();
                return;
            }
            Ok(n) => {
                d.ctl.count_read(d.way, n);
                let mut q = d.pipe.lock();
                for seg in buf[..n].chunks(d.shape.segment()) {
                    q.segs.push_back(seg.to_vec());
                }
                q.bytes += n;
                drop(q);
                d.pipe.data.notify_one();
            }
            Err(e) if transient(&e) => {}
            Err(_) => {
                // The source reset or failed: the other end gets a reset too.
                d.conn.set(CutKind::Reset);
                d.pipe.data.notify_one();
            }
        }
    }
}

/// A silently dropped connection: read and throw away until this end closes its socket (or
/// the emulator stops).
fn discard(ctl: &Control, src: &mut TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    while !ctl.stopped() {
        match src.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if transient(&e) => {}
            Err(_) => return,
        }
    }
}

/// Empties the queue at the link's rate into the destination, each segment after the
/// one-way delay and jitter.
pub fn transmit_loop(d: &Dir, mut dst: TcpStream, mut rng: Rng) {
    let _ = dst.set_write_timeout(Some(POLL));
    let shape = &d.shape;
    let burst = shape.rate.map_or(Duration::ZERO, |r| per(shape.burst, r));
    // What is on the line (left the queue, not yet arrived) is bounded by the rate; with no
    // rate limit, by this.
    let flight_cap = shape.flight_cap();
    let mut tat = Instant::now();
    // The line was busy at the last pass (a segment waited for it): a late wake-up must not
    // cost line time, so the next segment follows on from `tat` even if that has passed.
    let mut busy = false;
    let mut last_arrival = tat;
    let mut flight: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut flight_bytes = 0usize;
    let mut out = Vec::new();
    loop {
        if d.ctl.stopped() {
            d.conn.set(CutKind::Reset);
        }
        match d.conn.cut() {
            Some(CutKind::Reset) => return reset_on_close(&dst),
            // The reader of this socket keeps it open; this thread has nothing more to do.
            Some(CutKind::Drop) => return,
            None => {}
        }
        let now = Instant::now();
        let stall_end = d.ctl.stalled_until(now);
        let mut next_tx = None;
        let done;
        {
            let mut q = d.pipe.lock();
            let mut freed = false;
            while stall_end.is_none() && flight_bytes < flight_cap {
                let Some(n) = q.segs.front().map(Vec::len) else {
                    break;
                };
                let (depart, finish) = match shape.rate {
                    Some(r) => {
                        let start = if busy { tat } else { tat.max(now) };
                        let finish = start + per(n, r);
                        (finish.checked_sub(burst).unwrap_or(now).max(now), finish)
                    }
                    None => (now, now),
                };
                if depart > now + GRANULE {
                    next_tx = Some(depart - GRANULE);
                    break;
                }
                busy = true;
                tat = finish;
                let seg = q.segs.pop_front().unwrap_or_default();
                q.bytes -= n;
                freed = true;
                let jitter = rng.duration(Duration::ZERO, shape.jitter);
                let arrival = (depart + shape.delay + jitter).max(last_arrival);
                last_arrival = arrival;
                flight_bytes += n;
                flight.push_back((arrival, seg));
            }
            busy = next_tx.is_some();
            done = q.eof && q.segs.is_empty();
            drop(q);
            if freed {
                d.pipe.room.notify_one();
            }
        }
        if stall_end.is_none() {
            out.clear();
            while let Some((_, seg)) = flight.pop_front_if(|f| f.0 <= now + GRANULE / 2) {
                flight_bytes -= seg.len();
                out.extend_from_slice(&seg);
            }
            if !out.is_empty() {
                if !write_all(d, &mut dst, &out) {
                    continue;
                }
                d.ctl.count_delivered(d.way, out.len());
            }
        }
        if done && flight.is_empty() {
            let _ = dst.shutdown(Shutdown::Write);
            return;
        }
        let mut wake = now + POLL;
        for t in [next_tx, flight.front().map(|f| f.0), stall_end]
            .into_iter()
            .flatten()
        {
            wake = wake.min(t);
        }
        let q = d.pipe.lock();
        // The reader queued more since the pass above: send it now.
        let sendable = stall_end.is_none() && next_tx.is_none() && flight_bytes < flight_cap;
        if sendable && !q.segs.is_empty() {
            continue;
        }
        // New data only matters when nothing is queued (else the timer is what counts).
        if q.segs.is_empty() && !q.eof {
            let left = wake.saturating_duration_since(Instant::now());
            let _ = d.pipe.data.wait_timeout(q, left);
        } else {
            drop(q);
            let left = wake.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                std::thread::sleep(left);
            }
        }
    }
}

/// Writes all of `buf`, watching the cut flag while the destination is slow. False when the
/// connection was cut meanwhile or the destination failed (then it is reset both ways).
fn write_all(d: &Dir, dst: &mut TcpStream, buf: &[u8]) -> bool {
    let mut pos = 0;
    while pos < buf.len() {
        if d.conn.cut().is_some() || d.ctl.stopped() {
            return false;
        }
        match dst.write(&buf[pos..]) {
            Ok(0) => {
                d.conn.set(CutKind::Reset);
                return false;
            }
            Ok(n) => pos += n,
            Err(e) if transient(&e) => {}
            Err(_) => {
                d.conn.set(CutKind::Reset);
                return false;
            }
        }
    }
    true
}

/// Time `n` bytes take at `rate` bytes per second.
pub fn per(n: usize, rate: u64) -> Duration {
    let nanos = (n as u128 * 1_000_000_000) / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
