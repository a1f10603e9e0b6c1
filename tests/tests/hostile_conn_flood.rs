//! Hostile load, a connection flood past `max_connections`: the server is full (200 held
//! connections, `TWIG_FLOOD_MAX`), then 2,000 more (`TWIG_FLOOD_ATTEMPTS`) connect from 40
//! threads at once (`TWIG_FLOOD_THREADS`). Each extra one gets INFO and nats-server's exact
//! `-ERR 'maximum connections exceeded'`, then the close; the held clients keep a pub/sub
//! round trip going during the flood and after it; every refusal is counted (`/varz`
//! `refused_connections`, `/metrics` `twig_refused_connections_total`, twig's own: nats-server
//! counts none); twig's resident memory stays within a bound and a freed slot is usable again.
//! `TWIG_TEST_TARGET=nats-server` runs the same against nats-server (the texts are asserted,
//! the memory only printed, the counter skipped).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use twig_tests::harness::raw::{RawConn, ReadEnd};
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target};
use twig_tests::hostile::{STEP, client, env_count, http_get, peak_rss, round_trip, varz};

const REFUSAL: &str = "-ERR 'maximum connections exceeded'\r\n";
/// Growth of twig's peak RSS over the full server allowed for the flood: refused connections
/// are gone at once, so only the ones in flight (one per thread) cost anything.
const FLOOD_GROWTH: u64 = 16 << 20;

/// How one refused attempt went: `None` when it went as nats-server does (INFO, the -ERR,
/// the close), else what was received.
fn refused_attempt(addr: &str) -> Option<String> {
    let mut c = RawConn::connect(addr);
    let end = c.read_until(STEP, |r| {
        twig_tests::harness::raw::contains(r, REFUSAL.as_bytes())
    });
    let closed = end == ReadEnd::Matched && c.read_until_closed(STEP);
    let text = c.text();
    let info_then_err = text
        .split_once("\r\n")
        .is_some_and(|(info, rest)| info.starts_with("INFO {") && rest == REFUSAL);
    (!(closed && info_then_err)).then_some(text)
}

#[test]
fn a_flood_past_max_connections_is_refused_like_nats_server_and_counted() {
    let max = env_count("TWIG_FLOOD_MAX", 200);
    let attempts = env_count("TWIG_FLOOD_ATTEMPTS", 2000);
    let threads = env_count("TWIG_FLOOD_THREADS", 40).max(1);
    let mut options = ServerOptions::new();
    options.max_connections = Some(u32::try_from(max).unwrap());
    options.http_port = Some(0);
    let server = ServerUnderTest::start(&options);
    let target = server.target();
    let addr = server.addr();
    let http = server.http_port().expect("monitoring port");

    // A subscriber and a publisher, then idle clients up to the limit.
    let mut sub = client(&addr);
    sub.send(b"SUB flood.check 1\r\n");
    assert_eq!(sub.ping_pong(STEP), ReadEnd::Matched);
    let mut publ = client(&addr);
    let mut held: Vec<RawConn> = (2..max).map(|_| client(&addr)).collect();
    assert!(round_trip(&mut publ, &mut sub, "flood.check", 10));
    let before = server.rss_bytes();
    let before_peak = peak_rss(server.pid());

    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (addr, next) = (addr.clone(), next.clone());
            std::thread::spawn(move || {
                let mut wrong = Vec::new();
                while next.fetch_add(1, Relaxed) < attempts {
                    if let Some(text) = refused_attempt(&addr) {
                        wrong.push(text);
                    }
                }
                wrong
            })
        })
        .collect();
    // Round trips while the flood lasts (bounded: the flood ends, or 1,000 of them).
    let mut during = 0;
    while next.load(Relaxed) < attempts && during < 1000 {
        assert!(
            round_trip(&mut publ, &mut sub, "flood.check", 10),
            "round trip {during} during the flood"
        );
        during += 1;
    }
    let mut wrong = Vec::new();
    for w in workers {
        wrong.extend(w.join().unwrap());
    }
    let peak = peak_rss(server.pid());
    assert!(
        wrong.is_empty(),
        "{} of {attempts} attempts not refused like nats-server, e.g. {:?}",
        wrong.len(),
        wrong.first()
    );
    assert!(round_trip(&mut publ, &mut sub, "flood.check", 100));

    // Every refusal counted.
    if target == Target::Twig {
        let v = varz(http);
        assert_eq!(v["refused_connections"], attempts as u64, "{v}");
        assert_eq!(v["connections"], max as u64, "{v}");
        let (_, metrics) = http_get(http, "/metrics");
        let line = format!("\ntwig_refused_connections_total {attempts}\n");
        assert!(metrics.contains(&line), "{metrics}");
    }

    // A freed slot is taken again (the close is seen by the server a moment later, hence the
    // bounded retry: a refusal before it is counted, which is fine).
    drop(held.pop());
    let deadline = Instant::now() + STEP;
    let mut again = loop {
        let mut c = RawConn::connect(&addr);
        c.read_info(STEP);
        c.send(b"CONNECT {\"verbose\":false}\r\nSUB flood.check 2\r\n");
        if c.ping_pong(STEP) == ReadEnd::Matched {
            break c;
        }
        assert!(c.text().contains(REFUSAL), "{}", c.text());
        assert!(Instant::now() < deadline, "the freed slot never came back");
        // Waiting for the server to see the close; bounded by the deadline above.
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(round_trip(&mut publ, &mut again, "flood.check", 10));

    let after = server.rss_bytes();
    eprintln!(
        "{}: {max} held, {attempts} refused from {threads} threads, {during} round trips \
         during: RSS {} KiB before, peak {} KiB (peak before {} KiB), {} KiB after",
        target.name(),
        before >> 10,
        peak >> 10,
        before_peak >> 10,
        after >> 10
    );
    if target == Target::Twig {
        assert!(
            peak <= before_peak.max(before) + FLOOD_GROWTH,
            "peak RSS {} KiB during the flood, over {} KiB + {} KiB",
            peak >> 10,
            before_peak.max(before) >> 10,
            FLOOD_GROWTH >> 10
        );
        assert!(
            after <= before + (4 << 20),
            "RSS {} KiB after the flood, {} KiB before",
            after >> 10,
            before >> 10
        );
    }
    drop(held);
}
