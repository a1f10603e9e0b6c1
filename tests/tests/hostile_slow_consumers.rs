//! Hostile load, slow consumers next to fast ones: one publisher floods a subject with a
//! bounded count of messages, four subscribers read everything, four never read (small
//! receive buffers). As nats-server does, the stuck ones are cut off once `max_pending` bytes
//! wait for them: no `-ERR` is written, the connection closes, and /varz counts them in
//! `slow_consumers`. The fast ones receive every message, in order, and are never cut off.
//! twig's peak RSS stays within what `max_pending` allows the stuck ones, plus a margin.
//! `TWIG_TEST_TARGET=nats-server` runs the same outcomes against nats-server (RSS printed).

#[path = "common/uplink.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target};
use twig_tests::hostile::peak_rss;

const MSGS: usize = 20_000;
const PAYLOAD: usize = 1000;
const MAX_PENDING: u64 = 1 << 20;
const FAST: usize = 4;
const SLOW: usize = 4;
/// Messages the publisher may be ahead of the slowest fast subscriber: far under the stall
/// mark (3/4 of `max_pending`), so a fast reader descheduled on a busy machine is never
/// mistaken for a slow one. The stuck readers are not waited for.
const WINDOW: usize = 200;
const STEP: Duration = Duration::from_secs(30);

/// A client, subscribed to `flood` if `sub`; `rcvbuf` shrinks its receive buffer before
/// connecting, so a reader that never reads stops taking bytes early.
fn client(addr: SocketAddr, rcvbuf: Option<usize>, sub: bool) -> BufReader<TcpStream> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n).unwrap();
    }
    sock.connect(&addr.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut w = s.try_clone().unwrap();
    let sub = if sub { "SUB flood 1\r\n" } else { "" };
    write!(w, "CONNECT {{\"verbose\":false}}\r\n{sub}PING\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed before PONG");
        if line == "PONG\r\n" {
            return r;
        }
        assert!(line.starts_with("INFO "), "{line:?}");
    }
}

/// Reads `MSGS` messages, checking each one's sequence number; bumps `seen` after each.
fn read_all(mut r: BufReader<TcpStream>, seen: &AtomicUsize) -> BufReader<TcpStream> {
    let mut line = String::new();
    let mut body = vec![0; PAYLOAD + 2];
    let mut want = 0;
    while want < MSGS {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "fast subscriber closed after {want} messages"
        );
        if line == "PING\r\n" {
            // nats-server's first keepalive comes early.
            r.get_ref().write_all(b"PONG\r\n").unwrap();
            continue;
        }
        assert_eq!(line, format!("MSG flood 1 {PAYLOAD}\r\n"), "message {want}");
        r.read_exact(&mut body).unwrap();
        let seq: usize = std::str::from_utf8(&body[..10]).unwrap().parse().unwrap();
        assert_eq!(seq, want, "out of order");
        want += 1;
        seen.store(want, Ordering::Release);
    }
    r
}

/// Reads a stuck subscriber to its end: how many messages it got, and any non-MSG line.
fn drain(mut r: BufReader<TcpStream>) -> (usize, Vec<String>) {
    let (mut msgs, mut other) = (0, Vec::new());
    let mut line = String::new();
    let mut body = vec![0; PAYLOAD + 2];
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return (msgs, other),
            Ok(_) => {}
        }
        if line.starts_with("MSG ") {
            if r.read_exact(&mut body).is_err() {
                return (msgs, other);
            }
            msgs += 1;
        } else if line.ends_with("\r\n") {
            other.push(line.clone());
        }
    }
}

#[test]
fn stuck_subscribers_are_cut_off_and_fast_ones_get_every_message() {
    let opts = ServerOptions {
        max_pending: Some(MAX_PENDING),
        http_port: Some(0),
        ..ServerOptions::new()
    };
    let server = ServerUnderTest::start(&opts);
    let http = server.http_port().unwrap();
    let addr: SocketAddr = server.addr().parse().unwrap();
    let base = peak_rss(server.pid());

    let slow: Vec<_> = (0..SLOW).map(|_| client(addr, Some(4096), true)).collect();
    let seen: Arc<Vec<AtomicUsize>> = Arc::new((0..FAST).map(|_| AtomicUsize::new(0)).collect());
    let fast: Vec<_> = (0..FAST)
        .map(|i| {
            let r = client(addr, None, true);
            let seen = seen.clone();
            thread::spawn(move || read_all(r, &seen[i]))
        })
        .collect();

    let mut publisher = client(addr, None, false).into_inner();
    let mut payload = vec![b'x'; PAYLOAD];
    let started = Instant::now();
    for i in 0..MSGS {
        // Wait for the fast readers only when the window is full (bounded by STEP).
        let deadline = Instant::now() + STEP;
        while seen.iter().any(|s| s.load(Ordering::Acquire) + WINDOW < i) {
            assert!(Instant::now() < deadline, "fast readers stuck at {i}");
            thread::sleep(Duration::from_micros(200));
        }
        payload[..10].copy_from_slice(format!("{i:010}").as_bytes());
        write!(publisher, "PUB flood {PAYLOAD}\r\n").unwrap();
        publisher.write_all(&payload).unwrap();
        publisher.write_all(b"\r\n").unwrap();
    }
    for f in fast {
        drop(f.join().expect("a fast subscriber failed"));
    }
    let took = started.elapsed();

    // The stuck ones: cut off (their socket ends) after fewer than all messages, no -ERR.
    for (i, s) in slow.into_iter().enumerate() {
        let (got, other) = drain(s);
        assert!(got < MSGS, "stuck subscriber {i} got all {got} messages");
        assert!(
            other.iter().all(|l| !l.starts_with("-ERR")),
            "stuck subscriber {i} was sent {other:?} (nats-server sends no -ERR)"
        );
        eprintln!("stuck subscriber {i}: {got} messages before the close");
    }
    let varz = common::http_json(http, "/varz");
    let peak = peak_rss(server.pid());
    eprintln!(
        "{}: {MSGS} x {PAYLOAD} B to {FAST} fast + {SLOW} stuck in {took:?}; peak RSS {} KiB \
         (idle {} KiB); slow_consumers {}",
        server.target().name(),
        peak >> 10,
        base >> 10,
        varz["slow_consumers"]
    );
    assert_eq!(varz["slow_consumers"].as_u64(), Some(SLOW as u64), "{varz}");
    // The publisher stays connected.
    write!(publisher, "PING\r\n").unwrap();
    let mut r = BufReader::new(publisher);
    let mut line = String::new();
    // A server PING may come first.
    while line != "PONG\r\n" {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "the publisher was closed"
        );
        assert!(line == "PONG\r\n" || line == "PING\r\n", "{line:?}");
    }
    if server.target() == Target::Twig {
        // max_pending per stuck reader, the fast readers' windows, read buffers: 16 MiB of
        // margin. Without the cut-off each stuck reader would hold all 20 MB.
        let bound = base + SLOW as u64 * MAX_PENDING + (16 << 20);
        assert!(
            peak <= bound,
            "peak RSS {} KiB over {} KiB",
            peak >> 10,
            bound >> 10
        );
    }
}
