//! Hostile load on the monitoring port, twig only (nats-server's monitor is Go's net/http,
//! with no bound on connections, so there is nothing to compare): with 300 client connections
//! present (`TWIG_MON_NATS_CONNS`),
//! - a burst of `/connz?subs=1` requests from 20 threads at once: all answered, in full;
//! - requests with huge headers, a huge URL, a head that never ends: `431`, memory bounded;
//! - 1,000 monitoring connections opened and held idle (`TWIG_MON_IDLE`, slowloris) against
//!   `http_max_connections = 100`: the first 100 are held (until `http_timeout`), the next 100
//!   are answered `503`, the rest closed at once; the client port keeps serving meanwhile;
//! - when the flood ends the monitor answers again, and twig's RSS stays within a bound.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use twig_tests::harness::raw::{RawConn, ReadEnd};
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target};
use twig_tests::hostile::{STEP, client, env_count, http_get, peak_rss, round_trip, try_http_get};

/// `http_max_connections` of the test.
const LIMIT: usize = 100;
/// Growth of twig's peak RSS allowed over the whole test: held monitoring connections cost a
/// few KiB each, a `/connz` body of 300 connections some hundred KiB per request in flight.
const GROWTH: u64 = 32 << 20;

/// Sends `request` (written from a thread of its own: the server may answer before reading
/// it all) and returns the status of the answer, `None` if closed without one.
fn status_of(port: u16, request: Vec<u8>) -> Option<u16> {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to monitoring");
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&request);
    });
    let mut reply = Vec::new();
    let _ = (&s).read_to_end(&mut reply);
    drop(s);
    let _ = writer.join();
    let reply = String::from_utf8_lossy(&reply).into_owned();
    reply.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_monitoring_flood_is_bounded_and_the_client_port_unaffected() {
    let idle = env_count("TWIG_MON_IDLE", 1000);
    let nats_conns = env_count("TWIG_MON_NATS_CONNS", 300);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("twig.toml");
    // A long http_timeout: the held connections stay held while the test looks at them.
    std::fs::write(
        &config,
        format!(
            "http_max_connections = {LIMIT}\nhttp_max_request = \"8KB\"\nhttp_timeout = \"120s\"\n"
        ),
    )
    .unwrap();
    let options = ServerOptions {
        http_port: Some(0),
        extra_args: vec!["-c".into(), config.display().to_string()],
        ..ServerOptions::default()
    };
    let server = ServerUnderTest::start_target(Target::Twig, &options);
    let addr = server.addr();
    let http = server.http_port().expect("monitoring port");

    let mut sub = client(&addr);
    sub.send(b"SUB mon.check 1\r\n");
    assert_eq!(sub.ping_pong(STEP), ReadEnd::Matched);
    let mut publ = client(&addr);
    let mut others: Vec<RawConn> = (0..nats_conns)
        .map(|i| {
            let mut c = client(&addr);
            c.send(format!("SUB device.{i}.> 1\r\nSUB device.{i}.cmd 2\r\n").as_bytes());
            c
        })
        .collect();
    for c in &mut others {
        assert_eq!(c.ping_pong(STEP), ReadEnd::Matched);
    }
    assert!(round_trip(&mut publ, &mut sub, "mon.check", 10));
    let before = server.rss_bytes();
    let before_peak = peak_rss(server.pid());

    // A burst of /connz from 20 threads: each answered in full (under the limit of 100).
    let burst: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| {
                        let (status, body) = http_get(http, "/connz?subs=1&limit=100000");
                        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                        (status, v["num_connections"].as_u64().unwrap_or(0))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in burst {
        for (status, n) in t.join().unwrap() {
            assert_eq!(status, 200);
            assert_eq!(n, nats_conns as u64 + 2);
        }
    }
    let after_connz = peak_rss(server.pid());

    // Oversized heads, 20 of each at once: 431, never buffered whole.
    let mut huge_header = b"GET /varz HTTP/1.1\r\nX-Pad: ".to_vec();
    huge_header.resize(64 * 1024, b'h');
    huge_header.extend_from_slice(b"\r\n\r\n");
    let mut huge_url = b"GET /varz?".to_vec();
    huge_url.resize(100 * 1024, b'u');
    huge_url.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    let mut endless = b"GET /varz HTTP/1.1\r\n".to_vec();
    endless.resize(256 * 1024, b'e');
    let big: Vec<_> = (0..60)
        .map(|i| {
            let request = [&huge_header, &huge_url, &endless][i % 3].clone();
            std::thread::spawn(move || status_of(http, request))
        })
        .collect();
    for t in big {
        assert_eq!(t.join().unwrap(), Some(431));
    }

    // Slowloris: connections opened one after another (so accepted in this order) and held.
    let mut held: Vec<TcpStream> = Vec::with_capacity(idle);
    for i in 0..idle {
        let s = TcpStream::connect_timeout(&format!("127.0.0.1:{http}").parse().unwrap(), STEP)
            .unwrap_or_else(|e| panic!("monitoring connection {i}: {e}"));
        held.push(s);
    }
    // The client port serves meanwhile.
    assert!(round_trip(&mut publ, &mut sub, "mon.check", 100));
    // Past the limit: 503 for the next LIMIT, the close for the rest; never left waiting.
    let mut refused_503 = 0;
    let mut closed = 0;
    for (i, s) in held.iter().enumerate().skip(LIMIT) {
        s.set_read_timeout(Some(STEP)).unwrap();
        let mut reply = Vec::new();
        match (&*s).read_to_end(&mut reply) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("monitoring connection {i} over the limit: {e}"),
        }
        let text = String::from_utf8_lossy(&reply);
        if text.starts_with("HTTP/1.1 503 ") {
            refused_503 += 1;
        } else {
            assert!(reply.is_empty(), "connection {i}: {text:?}");
            closed += 1;
        }
    }
    assert_eq!(refused_503, LIMIT.min(idle.saturating_sub(LIMIT)));
    // Another request now: no slot, a clear answer or the close.
    assert!(matches!(
        try_http_get(http, "/healthz"),
        None | Some((503, _))
    ));
    // The held ones are still waiting for their request, not closed.
    for (i, s) in held.iter().enumerate().take(LIMIT) {
        s.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let r = (&*s).read(&mut byte);
        assert!(
            matches!(&r, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "held connection {i}: {r:?}"
        );
    }
    let peak = peak_rss(server.pid());
    let during = server.rss_bytes();

    // The flood ends: the monitor answers again (the server sees the closes a moment later,
    // hence the bounded retry).
    drop(held);
    let deadline = Instant::now() + STEP;
    loop {
        if let Some((200, body)) = try_http_get(http, "/varz") {
            assert!(body.contains("\"server_id\""), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the monitor did not answer again"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(round_trip(&mut publ, &mut sub, "mon.check", 100));
    let after = server.rss_bytes();
    eprintln!(
        "twig: {nats_conns} client connections, 100 /connz, 60 oversized heads, {idle} idle \
         monitoring connections ({refused_503} answered 503, {closed} closed): RSS {} KiB \
         before (peak {} KiB), peak after /connz {} KiB, {} KiB with the idle ones held, \
         peak {} KiB, {} KiB after",
        before >> 10,
        before_peak >> 10,
        after_connz >> 10,
        during >> 10,
        peak >> 10,
        after >> 10
    );
    assert!(
        peak <= before_peak.max(before) + GROWTH,
        "peak RSS {} KiB, over {} KiB + {} KiB",
        peak >> 10,
        before_peak.max(before) >> 10,
        GROWTH >> 10
    );
    drop(others);
}
