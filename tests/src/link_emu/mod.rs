//! A link emulator: a userspace TCP proxy that makes loopback look like a narrow uplink
//! (cellular, satellite, rural DSL). This kernel has no `netem` qdisc, so delay, jitter, cuts
//! and stalls are done here, in the tests' own process or as the `twig-link` binary.
//!
//! ```text
//!   twig --TCP--> [emulator: up shape] --TCP--> hub
//!   twig <--TCP-- [emulator: down shape] <--TCP-- hub
//! ```
//!
//! Per direction ([`Shape`]): a rate in bytes per second (token bucket with `burst` bytes), a
//! bottleneck queue of `queue` bytes in front of it (when full, the proxy stops reading and
//! the sender's writes block, as on a real link), a one-way `delay` and a `jitter` drawn per
//! segment that never reorders bytes (a segment never arrives before the one in front of it).
//! Link-wide, on a timeline counted from the emulator's start ([`LinkSpec`]):
//! - stalls: nothing moves either way for a while, the sockets stay open, and what was queued
//!   flows on afterwards ([`LinkEmulator::stall`] starts one now);
//! - cuts: every open connection is reset or silently dropped, and for the cut's length new
//!   connections are too ([`schedule::CutKind`], [`LinkEmulator::cut`]).
//!
//! Random schedules and jitter come from the spec's `seed`: the same spec gives the same run
//! ([`schedule::Pattern`]). [`Stats`] counts the bytes each way (what a metered link bills).
//!
//! Threads: one accepting, one running the scheduled cuts, and per connection two per
//! direction (a reader and a transmitter, [`pipe`]); each wakes at most every 2 ms while
//! data flows and every 50 ms when idle.
pub mod pipe;
pub mod schedule;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipe::{ConnState, Dir, POLL, Pipe, Way};
pub use schedule::{Cut, CutKind, Pattern, Rng, Span};

/// One direction of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Bytes per second; `None`: no limit.
    pub rate: Option<u64>,
    /// Token bucket depth: bytes that may leave at once after an idle while.
    pub burst: usize,
    /// One-way delay.
    pub delay: Duration,
    /// Extra delay drawn per segment from `0..=jitter` (never reordering).
    pub jitter: Duration,
    /// The bottleneck buffer: bytes waiting for the line at most.
    pub queue: usize,
}

impl Shape {
    /// `rate` bytes per second after `delay`; the queue holds 100 ms of the line (at least
    /// 32 KiB), the bucket one segment, no jitter.
    pub fn new(rate: Option<u64>, delay: Duration) -> Shape {
        let queue = rate.map_or(4 << 20, |r| {
            usize::try_from(r / 10)
                .unwrap_or(usize::MAX)
                .clamp(32 << 10, 16 << 20)
        });
        let mut s = Shape {
            rate,
            burst: 0,
            delay,
            jitter: Duration::ZERO,
            queue,
        };
        s.burst = s.segment();
        s
    }

    /// No rate limit, no delay.
    pub fn unlimited() -> Shape {
        Shape::new(None, Duration::ZERO)
    }

    /// Segment size: what leaves the queue as one unit (2 ms of the line, 1460 B to 64 KiB).
    pub fn segment(&self) -> usize {
        self.rate.map_or(64 << 10, |r| {
            usize::try_from(r / 500)
                .unwrap_or(usize::MAX)
                .clamp(1460, 64 << 10)
        })
    }

    /// Bytes on the line (left the queue, not arrived) at most: what the rate puts there in
    /// the delay, twice over; without a rate limit, 4 MiB.
    pub fn flight_cap(&self) -> usize {
        match self.rate {
            None => 4 << 20,
            Some(r) => {
                let t = self.delay + self.jitter + Duration::from_millis(10);
                let b = (u128::from(r) * t.as_nanos() / 1_000_000_000) as usize;
                b.saturating_mul(2).max(self.segment() * 4)
            }
        }
    }
}

/// The whole link: both directions and the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    /// Client to target (twig to hub: what an edge pays for).
    pub up: Shape,
    /// Target to client.
    pub down: Shape,
    /// Seeds the jitter draws.
    pub seed: u64,
    /// Stalls on the timeline (sorted, not overlapping; see [`schedule::stalls`]).
    pub stalls: Vec<Span>,
    /// Cuts on the timeline (sorted; see [`schedule::cuts`]).
    pub cuts: Vec<Cut>,
    /// `SO_RCVBUF`/`SO_SNDBUF` of the proxy's sockets: keeps the kernel from holding much in
    /// front of the emulated queue (0: the kernel's default).
    pub socket_buffer: usize,
}

impl LinkSpec {
    /// `rate` bytes per second each way and a round trip of `rtt` (half of it each way).
    pub fn symmetric(rate: u64, rtt: Duration) -> LinkSpec {
        let s = Shape::new(Some(rate), rtt / 2);
        LinkSpec::new(s, s)
    }

    /// A link of these two directions, seed 1, nothing scheduled.
    pub fn new(up: Shape, down: Shape) -> LinkSpec {
        LinkSpec {
            up,
            down,
            seed: 1,
            stalls: Vec::new(),
            cuts: Vec::new(),
            socket_buffer: 32 << 10,
        }
    }

    /// Plain loopback through the proxy (a reference for the shaped runs).
    pub fn unlimited() -> LinkSpec {
        LinkSpec::new(Shape::unlimited(), Shape::unlimited())
    }

    /// The round trip without queueing.
    pub fn rtt(&self) -> Duration {
        self.up.delay + self.down.delay
    }
}

/// Bytes through the link, counted from its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WayStats {
    /// Read from the sending end.
    pub read: u64,
    /// Written to the receiving end.
    pub delivered: u64,
}

/// What the link did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client to target.
    pub up: WayStats,
    /// Target to client.
    pub down: WayStats,
    /// Connections accepted and forwarded.
    pub connections: u64,
    /// Connections accepted while the link was down (reset or dropped at once).
    pub refused: u64,
    /// Cuts carried out.
    pub cuts: u64,
}

/// Link-wide state shared by every thread.
pub struct Control {
    t0: Instant,
    stalls: Mutex<Vec<Span>>,
    /// The link is down (after a cut) until then, and how new connections are treated.
    down: Mutex<Option<(Instant, CutKind)>>,
    conns: Mutex<Vec<Weak<ConnState>>>,
    read: [AtomicU64; 2],
    delivered: [AtomicU64; 2],
    connections: AtomicU64,
    refused: AtomicU64,
    cuts: AtomicU64,
    stop: AtomicBool,
}

impl Control {
    fn new(spec: &LinkSpec) -> Control {
        let mut stalls = Vec::new();
        for s in &spec.stalls {
            merge(&mut stalls, *s);
        }
        Control {
            t0: Instant::now(),
            stalls: Mutex::new(stalls),
            down: Mutex::new(None),
            conns: Mutex::new(Vec::new()),
            read: Default::default(),
            delivered: Default::default(),
            connections: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// The emulator is shutting down.
    pub fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// When the stall covering `now` ends, if one does.
    pub fn stalled_until(&self, now: Instant) -> Option<Instant> {
        let t = now.saturating_duration_since(self.t0);
        let stalls = lock(&self.stalls);
        let i = stalls.partition_point(|s| s.at <= t);
        let s = stalls.get(i.checked_sub(1)?)?;
        s.contains(t).then(|| self.t0 + s.end())
    }

    /// `n` bytes read from a sending end.
    pub fn count_read(&self, way: Way, n: usize) {
        self.read[way as usize].fetch_add(n as u64, Relaxed);
    }

    /// `n` bytes written to a receiving end.
    pub fn count_delivered(&self, way: Way, n: usize) {
        self.delivered[way as usize].fetch_add(n as u64, Relaxed);
    }

    fn cut_all(&self, kind: CutKind, down: Duration) {
        *lock(&self.down) = Some((Instant::now() + down, kind));
        let mut conns = lock(&self.conns);
        conns.retain(|c| match c.upgrade() {
            Some(c) => {
                c.set(kind);
                false
            }
            None => false,
        });
        self.cuts.fetch_add(1, Relaxed);
    }

    fn is_down(&self) -> Option<CutKind> {
        let down = *lock(&self.down);
        down.filter(|(until, _)| Instant::now() < *until)
            .map(|(_, k)| k)
    }
}

/// Adds a span to a sorted list of disjoint spans, merging overlaps.
fn merge(list: &mut Vec<Span>, s: Span) {
    let i = list.partition_point(|x| x.at < s.at);
    list.insert(i, s);
    let mut out: Vec<Span> = Vec::with_capacity(list.len());
    for x in list.drain(..) {
        match out.last_mut() {
            Some(last) if x.at <= last.end() => {
                let end = last.end().max(x.end());
                last.len = end - last.at;
            }
            _ => out.push(x),
        }
    }
    *list = out;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running emulator; stops (resetting its connections) when dropped.
pub struct LinkEmulator {
    addr: SocketAddr,
    spec: LinkSpec,
    ctl: Arc<Control>,
    threads: Vec<JoinHandle<()>>,
}

impl LinkEmulator {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `target`.
    pub fn start(spec: LinkSpec, target: SocketAddr) -> io::Result<LinkEmulator> {
        LinkEmulator::listen(spec, target, "127.0.0.1:0".parse().expect("address"))
    }

    /// Listens on `listen` and forwards every connection to `target`.
    pub fn listen(
        spec: LinkSpec,
        target: SocketAddr,
        listen: SocketAddr,
    ) -> io::Result<LinkEmulator> {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(listen),
            socket2::Type::STREAM,
            None,
        )?;
        sock.set_reuse_address(true)?;
        small_buffers(&sock, spec.socket_buffer)?;
        sock.bind(&listen.into())?;
        sock.listen(128)?;
        let listener: TcpListener = sock.into();
        let addr = listener.local_addr()?;
        let ctl = Arc::new(Control::new(&spec));
        let mut threads = Vec::new();
        let (c, s) = (ctl.clone(), spec.clone());
        threads.push(
            std::thread::Builder::new()
                .name("link-accept".into())
                .spawn(move || accept_loop(&listener, &c, &s, target))?,
        );
        let (c, cuts) = (ctl.clone(), spec.cuts.clone());
        threads.push(
            std::thread::Builder::new()
                .name("link-cuts".into())
                .spawn(move || cut_loop(&c, &cuts))?,
        );
        Ok(LinkEmulator {
            addr,
            spec,
            ctl,
            threads,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The spec it runs.
    pub fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    /// Time since the start (the timeline of the schedules).
    pub fn elapsed(&self) -> Duration {
        self.ctl.t0.elapsed()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let c = &self.ctl;
        let way = |i: usize| WayStats {
            read: c.read[i].load(Relaxed),
            delivered: c.delivered[i].load(Relaxed),
        };
        Stats {
            up: way(0),
            down: way(1),
            connections: c.connections.load(Relaxed),
            refused: c.refused.load(Relaxed),
            cuts: c.cuts.load(Relaxed),
        }
    }

    /// Stops all forwarding for `len`, from now; sockets stay open.
    pub fn stall(&self, len: Duration) {
        let at = self.elapsed();
        merge(&mut lock(&self.ctl.stalls), Span { at, len });
    }

    /// Cuts every connection now, and refuses new ones (as `kind` says) for `down`.
    pub fn cut(&self, kind: CutKind, down: Duration) {
        self.ctl.cut_all(kind, down);
    }

    /// Adds stalls counted from now (e.g. a seeded schedule that should start with a drain).
    pub fn stalls_from_now(&self, spans: &[Span]) {
        let now = self.elapsed();
        let mut stalls = lock(&self.ctl.stalls);
        for s in spans {
            merge(
                &mut stalls,
                Span {
                    at: now + s.at,
                    len: s.len,
                },
            );
        }
    }

    /// Stalls on the timeline, scheduled and started by [`LinkEmulator::stall`].
    pub fn stalls(&self) -> Vec<Span> {
        lock(&self.ctl.stalls).clone()
    }
}

impl Drop for LinkEmulator {
    fn drop(&mut self) {
        self.ctl.stop.store(true, Relaxed);
        // Wakes the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Small kernel buffers (set before `listen`/`connect`, so the window advertised in the
/// handshake fits them; accepted sockets inherit them), with an Ethernet-sized segment: on
/// loopback the segment is 64 KiB, and a window smaller than one segment makes TCP wait for
/// delayed ACKs (40 ms each) instead of sending.
fn small_buffers(sock: &socket2::Socket, size: usize) -> io::Result<()> {
    if size > 0 {
        sock.set_recv_buffer_size(size)?;
        sock.set_send_buffer_size(size)?;
        sock.set_tcp_mss(1460)?;
    }
    Ok(())
}

fn accept_loop(listener: &TcpListener, ctl: &Arc<Control>, spec: &LinkSpec, target: SocketAddr) {
    let mut n = 0u64;
    for client in listener.incoming() {
        if ctl.stopped() {
            return;
        }
        let Ok(client) = client else { continue };
        if let Some(kind) = ctl.is_down() {
            ctl.refused.fetch_add(1, Relaxed);
            refuse(ctl, client, kind);
            continue;
        }
        n += 1;
        if let Err(e) = forward(ctl, spec, client, target, n) {
            eprintln!("link emulator: cannot reach {target}: {e}");
        }
    }
}

/// A connection made while the link is down.
fn refuse(ctl: &Arc<Control>, client: TcpStream, kind: CutKind) {
    match kind {
        CutKind::Reset => {
            let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        }
        CutKind::Drop => {
            // Accepted and never answered; read and thrown away until the client gives up.
            let ctl = ctl.clone();
            let _ = std::thread::Builder::new()
                .name("link-void".into())
                .spawn(move || {
                    let conn = Arc::new(ConnState::default());
                    conn.set(CutKind::Drop);
                    let d = Dir {
                        shape: Shape::unlimited(),
                        ctl,
                        conn,
                        pipe: Arc::new(Pipe::default()),
                        way: Way::Up,
                    };
                    pipe::read_loop(&d, client);
                });
        }
    }
}

fn forward(
    ctl: &Arc<Control>,
    spec: &LinkSpec,
    client: TcpStream,
    target: SocketAddr,
    n: u64,
) -> io::Result<()> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        None,
    )?;
    small_buffers(&sock, spec.socket_buffer)?;
    if let Err(e) = sock.connect_timeout(&target.into(), Duration::from_secs(5)) {
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        return Err(e);
    }
    let server: TcpStream = sock.into();
    for s in [&client, &server] {
        let _ = s.set_nodelay(true);
    }
    let conn = Arc::new(ConnState::default());
    {
        let mut conns = lock(&ctl.conns);
        conns.retain(|c| c.strong_count() > 0);
        conns.push(Arc::downgrade(&conn));
    }
    ctl.connections.fetch_add(1, Relaxed);
    let ways = [
        (Way::Up, spec.up, client.try_clone()?, server.try_clone()?),
        (Way::Down, spec.down, server, client),
    ];
    for (way, shape, src, dst) in ways {
        let d = Arc::new(Dir {
            shape,
            ctl: ctl.clone(),
            conn: conn.clone(),
            pipe: Arc::new(Pipe::default()),
            way,
        });
        let rng = Rng::new(spec.seed, n * 2 + way as u64);
        let dr = d.clone();
        std::thread::Builder::new()
            .name(format!("link-{way:?}-rd"))
            .spawn(move || pipe::read_loop(&dr, src))?;
        std::thread::Builder::new()
            .name(format!("link-{way:?}-tx"))
            .spawn(move || pipe::transmit_loop(&d, dst, rng))?;
    }
    Ok(())
}

fn cut_loop(ctl: &Control, cuts: &[Cut]) {
    for c in cuts {
        let at = ctl.t0 + c.span.at;
        loop {
            if ctl.stopped() {
                return;
            }
            let now = Instant::now();
            if now >= at {
                break;
            }
            std::thread::sleep((at - now).min(POLL));
        }
        ctl.cut_all(c.kind, c.span.len);
    }
}

/// A rate such as `20000`, `20KB`, `20KB/s`, `1Mbit`, `10mbit/s`, `512kbit` in bytes per
/// second (K = 1000: links are sold in decimal units); `none` or `unlimited` for no limit.
pub fn parse_rate(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "none" || t == "unlimited" {
        return Ok(None);
    }
    let t = t.strip_suffix("/s").unwrap_or(&t);
    let (num, unit) = split_number(t);
    let n: f64 = num.parse().map_err(|_| format!("not a rate: {s:?}"))?;
    let bytes = match unit {
        "" | "b" => n,
        "kb" => n * 1e3,
        "mb" => n * 1e6,
        "gb" => n * 1e9,
        "bit" => n / 8.0,
        "kbit" => n * 1e3 / 8.0,
        "mbit" => n * 1e6 / 8.0,
        "gbit" => n * 1e9 / 8.0,
        _ => return Err(format!("unknown unit in rate {s:?}")),
    };
    if bytes < 1.0 {
        return Err(format!("rate {s:?} is below 1 byte per second"));
    }
    Ok(Some(bytes as u64))
}

/// A size such as `65536`, `64KiB`, `64KB`, `4MiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, unit) = split_number(&t);
    let n: f64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let f = match unit {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" | "k" => 1024.0,
        "mb" => 1e6,
        "mib" | "m" => 1024.0 * 1024.0,
        _ => return Err(format!("unknown unit in size {s:?}")),
    };
    Ok((n * f) as usize)
}

/// A duration such as `300ms`, `1.5s`, `2m`, `250us`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, unit) = split_number(&t);
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("unknown unit in duration {s:?} (ms, s, m)")),
    };
    if !(0.0..1e9).contains(&secs) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn split_number(t: &str) -> (&str, &str) {
    let i = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    (&t[..i], t[i..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_as_links_are_sold() {
        assert_eq!(parse_rate("20KB/s"), Ok(Some(20_000)));
        assert_eq!(parse_rate("1Mbit"), Ok(Some(125_000)));
        assert_eq!(parse_rate("10mbit/s"), Ok(Some(1_250_000)));
        assert_eq!(parse_rate("none"), Ok(None));
        assert!(parse_rate("fast").is_err());
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("3 days").is_err());
    }

    #[test]
    fn stalls_merge_and_are_found_by_time() {
        let ms = Duration::from_millis;
        let mut l = Vec::new();
        merge(
            &mut l,
            Span {
                at: ms(100),
                len: ms(50),
            },
        );
        merge(
            &mut l,
            Span {
                at: ms(300),
                len: ms(50),
            },
        );
        merge(
            &mut l,
            Span {
                at: ms(120),
                len: ms(100),
            },
        );
        assert_eq!(
            l,
            [
                Span {
                    at: ms(100),
                    len: ms(120)
                },
                Span {
                    at: ms(300),
                    len: ms(50)
                }
            ]
        );
        let mut spec = LinkSpec::unlimited();
        spec.stalls = l;
        let c = Control::new(&spec);
        assert_eq!(c.stalled_until(c.t0 + ms(99)), None);
        assert_eq!(c.stalled_until(c.t0 + ms(150)), Some(c.t0 + ms(220)));
        assert_eq!(c.stalled_until(c.t0 + ms(250)), None);
        assert_eq!(c.stalled_until(c.t0 + ms(349)), Some(c.t0 + ms(350)));
        assert_eq!(c.stalled_until(c.t0 + ms(350)), None);
    }

    #[test]
    fn defaults_scale_with_the_rate() {
        let slow = Shape::new(Some(20_000), Duration::from_millis(300));
        assert_eq!((slow.segment(), slow.queue), (1460, 32 << 10));
        let fast = Shape::new(Some(12_500_000), Duration::from_millis(25));
        assert_eq!((fast.segment(), fast.queue), (25_000, 1_250_000));
        assert!(fast.flight_cap() >= 2 * 12_500_000 / 40);
    }
}
