//! The link emulator (`twig_tests::link_emu`) does what its spec says, on real loopback
//! sockets: the rate it delivers, the delay it adds, jitter without reordering, stalls and
//! cuts on the seeded schedule. Bounds are generous (a shared 2-core machine): these check
//! that each knob has its effect, not its precision.
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use twig_tests::link_emu::schedule::{self, Pattern};
use twig_tests::link_emu::{Cut, CutKind, LinkEmulator, LinkSpec, Shape, Span};

const MS: Duration = Duration::from_millis(1);
/// Deadline of any one wait.
const STEP: Duration = Duration::from_secs(20);

/// A server that accepts connections and hands each to `serve` on its own thread.
fn server(serve: impl Fn(TcpStream) + Send + Sync + Copy + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            thread::spawn(move || serve(s));
        }
    });
    addr
}

fn echo(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// Bytes of a test stream: position-dependent, so a reordering or loss shows.
fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// Writes `n` pattern bytes on `s` from a thread.
fn send_pattern(mut s: TcpStream, n: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        // One period longer than a write, so every write can start at its pattern offset.
        let chunk: Vec<u8> = (0..64 * 1024 + 251).map(pattern_byte).collect();
        let mut sent = 0;
        while sent < n {
            let off = sent % 251;
            let k = (n - sent).min(64 * 1024);
            s.write_all(&chunk[off..off + k]).unwrap();
            sent += k;
        }
    })
}

/// Reads `n` bytes, checking the pattern; returns when the first and last arrived.
fn recv_pattern(s: &mut TcpStream, n: usize) -> (Instant, Instant) {
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut got, mut first) = (0, None);
    while got < n {
        let k = s.read(&mut buf).expect("read within the deadline");
        assert!(k > 0, "stream ended after {got} of {n} bytes");
        first.get_or_insert_with(Instant::now);
        for (j, b) in buf[..k].iter().enumerate() {
            assert_eq!(*b, pattern_byte(got + j), "byte {} differs", got + j);
        }
        got += k;
    }
    (first.unwrap(), Instant::now())
}

#[test]
fn each_direction_is_delivered_at_its_rate_intact() {
    let (up_rate, down_rate) = (1_000_000u64, 400_000u64);
    // The target sends `down` bytes, and receives `up` bytes checking them.
    let (up, down) = (2_000_000usize, 800_000usize);
    let (tx, rx) = mpsc::channel();
    let target = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let w = send_pattern(s.try_clone().unwrap(), down);
            tx.send(recv_pattern(&mut s, up)).unwrap();
            w.join().unwrap();
        });
        addr
    };
    let spec = LinkSpec::new(
        Shape::new(Some(up_rate), 5 * MS),
        Shape::new(Some(down_rate), 5 * MS),
    );
    let link = LinkEmulator::start(spec, target).unwrap();
    let mut c = TcpStream::connect(link.addr()).unwrap();
    let w = send_pattern(c.try_clone().unwrap(), up);
    let (d0, d1) = recv_pattern(&mut c, down);
    let (u0, u1) = rx.recv_timeout(STEP).unwrap();
    w.join().unwrap();
    let rate = |n: usize, a: Instant, b: Instant| n as f64 / (b - a).as_secs_f64();
    let (ur, dr) = (rate(up, u0, u1), rate(down, d0, d1));
    eprintln!("up {ur:.0} B/s (set {up_rate}), down {dr:.0} B/s (set {down_rate})");
    for (got, set) in [(ur, up_rate), (dr, down_rate)] {
        let ratio = got / set as f64;
        assert!(
            (0.8..1.15).contains(&ratio),
            "{got:.0} B/s for a {set} B/s link"
        );
    }
    // The counters move just after each write returns.
    let deadline = Instant::now() + STEP;
    let want = (up as u64, down as u64);
    while (link.stats().up.delivered, link.stats().down.delivered) != want {
        assert!(Instant::now() < deadline, "{:?}", link.stats());
        thread::sleep(MS);
    }
    assert_eq!(link.stats().connections, 1);
}

#[test]
fn the_delay_is_added_each_way() {
    let target = server(echo);
    let spec = LinkSpec::new(Shape::new(None, 60 * MS), Shape::new(None, 40 * MS));
    let link = LinkEmulator::start(spec, target).unwrap();
    assert_eq!(link.spec().rtt(), 100 * MS);
    let mut c = TcpStream::connect(link.addr()).unwrap();
    c.set_nodelay(true).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    let mut rtts = Vec::new();
    for i in 0..5u8 {
        let t = Instant::now();
        c.write_all(&[i]).unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        assert_eq!(b[0], i);
        rtts.push(t.elapsed());
    }
    eprintln!("round trips through a 60 + 40 ms link: {rtts:?}");
    for r in rtts {
        assert!(r >= 100 * MS && r < 250 * MS, "round trip {r:?}");
    }
}

#[test]
fn jitter_varies_the_delay_but_never_reorders() {
    // The sender stamps each 16-byte record with its send time (this process's clock).
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    let target = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(STEP)).unwrap();
            let mut rec = [0u8; 16];
            let mut delays = Vec::new();
            for i in 0..300u64 {
                s.read_exact(&mut rec).unwrap();
                let now = t0.elapsed().as_micros() as u64;
                assert_eq!(u64::from_le_bytes(rec[..8].try_into().unwrap()), i, "order");
                let sent = u64::from_le_bytes(rec[8..].try_into().unwrap());
                delays.push(Duration::from_micros(now - sent));
            }
            tx.send(delays).unwrap();
        });
        addr
    };
    let mut up = Shape::new(Some(1_000_000), 20 * MS);
    up.jitter = 40 * MS;
    let link = LinkEmulator::start(LinkSpec::new(up, Shape::unlimited()), target).unwrap();
    let mut c = TcpStream::connect(link.addr()).unwrap();
    c.set_nodelay(true).unwrap();
    for i in 0..300u64 {
        let mut rec = i.to_le_bytes().to_vec();
        rec.extend_from_slice(&(t0.elapsed().as_micros() as u64).to_le_bytes());
        c.write_all(&rec).unwrap();
        thread::sleep(2 * MS);
    }
    let delays = rx.recv_timeout(STEP).unwrap();
    let (lo, hi) = (*delays.iter().min().unwrap(), *delays.iter().max().unwrap());
    eprintln!("one-way delay with 20 ms + up to 40 ms jitter: {lo:?} .. {hi:?}");
    assert!(lo >= 20 * MS, "{lo:?}");
    assert!(
        hi - lo >= 15 * MS,
        "jitter shows no spread: {lo:?} .. {hi:?}"
    );
    assert!(hi < 200 * MS, "{hi:?}");
}

/// Arrival times of a trickle sent every 5 ms for `len` through `link` (to a reader at the
/// target), counted on the link's timeline.
fn trickle(link_spec: LinkSpec, len: Duration) -> (Vec<Duration>, Vec<Span>) {
    let (tx, rx) = mpsc::channel();
    let target = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(STEP)).unwrap();
            let mut b = [0u8; 1024];
            loop {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send((Instant::now(), n)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        addr
    };
    let link = LinkEmulator::start(link_spec, target).unwrap();
    let start = Instant::now() - link.elapsed();
    let mut c = TcpStream::connect(link.addr()).unwrap();
    c.set_nodelay(true).unwrap();
    let sent = (len.as_millis() / 5) as usize;
    for _ in 0..sent {
        c.write_all(b"x")
            .expect("the connection stays open through a stall");
        thread::sleep(5 * MS);
    }
    let mut arrivals = Vec::new();
    let mut got = 0;
    while got < sent {
        let (t, n) = rx
            .recv_timeout(STEP)
            .expect("everything arrives in the end");
        arrivals.push(t - start);
        got += n;
    }
    (arrivals, link.stalls())
}

#[test]
fn stalls_hold_everything_on_the_seeded_schedule_then_it_flows_on() {
    let pattern = Pattern {
        gap: (200 * MS, 400 * MS),
        len: (300 * MS, 500 * MS),
    };
    let mut spec = LinkSpec::symmetric(100_000, 20 * MS);
    spec.seed = 42;
    spec.stalls = schedule::stalls(&pattern, spec.seed, Duration::from_secs(2));
    let (arrivals, stalls) = trickle(spec.clone(), Duration::from_millis(2500));
    assert_eq!(stalls, spec.stalls, "the schedule is the seed's");
    assert!(stalls.len() >= 2, "{stalls:?}");
    eprintln!("stalls {stalls:?}");
    for s in &stalls {
        // Nothing arrives inside a stall (the first 10 ms: a segment on its way).
        let inside: Vec<_> = arrivals
            .iter()
            .filter(|&&t| t > s.at + 15 * MS && t < s.end())
            .collect();
        assert!(inside.is_empty(), "arrivals during stall {s:?}: {inside:?}");
        // And the trickle resumes right after.
        assert!(
            arrivals
                .iter()
                .any(|&t| t >= s.end() && t < s.end() + 100 * MS),
            "nothing within 100 ms after stall {s:?}"
        );
    }
}

#[test]
fn a_reset_cut_resets_both_ends_and_refuses_until_the_link_is_back() {
    let (tx, rx) = mpsc::channel();
    let target = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let tx = tx.clone();
                thread::spawn(move || {
                    s.set_read_timeout(Some(STEP)).unwrap();
                    let mut b = [0u8; 64];
                    let end = loop {
                        match s.read(&mut b) {
                            Ok(0) => break "eof".to_string(),
                            Ok(n) => {
                                let _ = s.write_all(&b[..n]);
                            }
                            Err(e) => break format!("{:?}", e.kind()),
                        }
                    };
                    let _ = tx.send(end);
                });
            }
        });
        addr
    };
    let mut spec = LinkSpec::symmetric(100_000, 10 * MS);
    spec.cuts = vec![Cut {
        span: Span {
            at: 400 * MS,
            len: 600 * MS,
        },
        kind: CutKind::Reset,
    }];
    let link = LinkEmulator::start(spec, target).unwrap();
    let mut c = TcpStream::connect(link.addr()).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"hi").unwrap();
    let mut b = [0u8; 2];
    c.read_exact(&mut b).unwrap();
    let t = Instant::now();
    let err = c.read(&mut b).map(|n| n.to_string());
    eprintln!(
        "client's read after the cut: {err:?} after {:?}",
        t.elapsed()
    );
    assert_eq!(
        err.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionReset),
        "the client is reset"
    );
    assert!(link.elapsed() >= 400 * MS);
    assert_eq!(
        rx.recv_timeout(STEP).unwrap(),
        "ConnectionReset",
        "the target is reset"
    );
    // Down: a new connection is accepted by the kernel, then reset.
    assert!(link.elapsed() < 900 * MS, "too slow to test the down time");
    let mut d = TcpStream::connect(link.addr()).unwrap();
    d.set_read_timeout(Some(STEP)).unwrap();
    let r = d.read(&mut b);
    assert!(
        matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset) || matches!(r, Ok(0)),
        "{r:?}"
    );
    // Back up. On a loaded machine the emulator may take a connection made right at the end
    // of the cut as still inside it (and reset it): try again until one echoes, within a
    // deadline; each such try counts as refused.
    while link.elapsed() < 1000 * MS {
        thread::sleep(10 * MS);
    }
    let deadline = Instant::now() + STEP;
    let mut tries = 0u64;
    loop {
        tries += 1;
        let mut e = TcpStream::connect(link.addr()).unwrap();
        e.set_read_timeout(Some(STEP)).unwrap();
        if e.write_all(b"ok").is_ok() && e.read_exact(&mut b).is_ok() {
            assert_eq!(&b, b"ok");
            break;
        }
        assert!(Instant::now() < deadline, "the link did not come back up");
        thread::sleep(50 * MS);
    }
    let s = link.stats();
    assert_eq!(s.cuts, 1, "{s:?}");
    assert_eq!(
        s.refused, tries,
        "the down-time connection and retries: {s:?}"
    );
    assert_eq!(s.connections, 2, "{s:?}");
}

#[test]
fn a_silent_drop_forwards_nothing_and_tells_no_one() {
    let target = server(echo);
    let link = LinkEmulator::start(LinkSpec::symmetric(100_000, 10 * MS), target).unwrap();
    let mut c = TcpStream::connect(link.addr()).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"hi").unwrap();
    let mut b = [0u8; 2];
    c.read_exact(&mut b).unwrap();
    link.cut(CutKind::Drop, 300 * MS);
    // Writes still succeed, nothing comes back, and the socket is not closed.
    c.write_all(b"lost").unwrap();
    c.set_read_timeout(Some(300 * MS)).unwrap();
    let r = c.read(&mut b);
    assert!(
        matches!(&r, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{r:?}"
    );
    let before = link.stats().up.delivered;
    c.write_all(b"more").unwrap();
    thread::sleep(100 * MS);
    assert_eq!(
        link.stats().up.delivered,
        before,
        "nothing forwarded after a drop"
    );
    // After the down time a new connection works.
    while link.elapsed() < 400 * MS {
        thread::sleep(10 * MS);
    }
    let mut e = TcpStream::connect(link.addr()).unwrap();
    e.set_read_timeout(Some(STEP)).unwrap();
    e.write_all(b"ok").unwrap();
    e.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ok");
}

#[test]
fn a_slow_reader_makes_the_sender_block_instead_of_growing_a_buffer() {
    // A target that never reads: the link must stop taking bytes once its queue, the line
    // and the sockets are full, so the client's writes block.
    let target = server(|s| {
        thread::sleep(STEP);
        drop(s);
    });
    let link = LinkEmulator::start(LinkSpec::symmetric(1_000_000, 10 * MS), target).unwrap();
    let mut c = TcpStream::connect(link.addr()).unwrap();
    c.set_write_timeout(Some(500 * MS)).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0usize;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        match c.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    let taken = link.stats().up.read;
    eprintln!("written {written} B before blocking; the link took {taken} B");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the writer never blocked"
    );
    assert!(
        taken < 8 << 20,
        "the link took {taken} B from a stuck connection"
    );
}
