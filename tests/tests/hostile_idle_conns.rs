//! Hostile load, many idle devices: N connections (10,000; `TWIG_IDLE_CONNS` to change it),
//! each with one SUB, then nothing. What each costs twig in resident memory is asserted: read
//! buffers are not held by an idle connection, caches are made on first use, so it stays
//! within a few KiB, and 10,000 fit in 48 MiB RSS in all (issue 13). `TWIG_TEST_TARGET=nats-server` measures nats-server the same way (the
//! bound is then only printed).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target};

/// Resident memory per idle connection with one subscription, at most (the target is 4 KiB).
const PER_CONN: u64 = 8 * 1024;
/// twig's whole RSS with 10,000 of them, at most (nats-server takes ~470 MiB).
const TOTAL_10K: u64 = 48 << 20;

/// Connects, subscribes and waits for the PONG that says the SUB is registered.
fn idle_client(addr: &str, i: usize) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    write!(
        w,
        "CONNECT {{\"verbose\":false}}\r\nSUB idle.{i}.> 1\r\nPING\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed at client {i}");
        if line == "PONG\r\n" {
            return r.into_inner();
        }
        assert!(line.starts_with("INFO "), "client {i}: {line:?}");
    }
}

#[test]
fn idle_connections_with_a_subscription_cost_a_few_kib_each() {
    let n: usize = std::env::var("TWIG_IDLE_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // One descriptor per client here too: take the hard open files limit (the server
    // raises its own).
    let l = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    )
    .expect("raise RLIMIT_NOFILE");
    let server = ServerUnderTest::start(&ServerOptions::new());
    let addr = server.addr();
    // One connection first: what every connection shares (the executor, the sublist's first
    // node) is then paid for.
    let mut conns = vec![idle_client(&addr, 0)];
    let before = server.rss_bytes();
    conns.extend((1..=n).map(|i| idle_client(&addr, i)));
    let after = server.rss_bytes();
    let per = after.saturating_sub(before) / n as u64;
    eprintln!(
        "{}: {n} idle connections: RSS {} KiB -> {} KiB, {per} B per connection",
        server.target().name(),
        before >> 10,
        after >> 10
    );
    if server.target() == Target::Twig {
        assert!(
            per <= PER_CONN,
            "{per} B per idle connection, over {PER_CONN}"
        );
        if n <= 10_000 {
            assert!(
                after <= TOTAL_10K,
                "{} KiB RSS with {n} idle connections, over {} KiB",
                after >> 10,
                TOTAL_10K >> 10
            );
        }
    }
    drop(conns);
}
