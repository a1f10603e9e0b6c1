//! The server under test at its limits: max payload, a slow consumer that stops reading, and
//! clients that reconnect when the server restarts.

use async_nats::{ConnectOptions, client::PublishErrorKind};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use twig_tests::harness::{RawConn, ServerOptions, ServerUnderTest, Target};

const STEP: Duration = Duration::from_secs(5);

#[tokio::test]
async fn max_payload_is_announced_and_enforced() {
    let opts = ServerOptions {
        max_payload: Some(1024),
        ..ServerOptions::default()
    };
    let server = ServerUnderTest::start(&opts);
    let client = ConnectOptions::new().connect(server.url()).await.unwrap();
    assert_eq!(client.server_info().max_payload, 1024);
    assert_eq!(client.max_payload(), 1024);
    let err = client
        .publish("big", vec![b'x'; 2000].into())
        .await
        .expect_err("client refuses to send over max_payload");
    assert_eq!(err.kind(), PublishErrorKind::MaxPayloadExceeded);

    // A raw client that ignores the limit is told so and cut off.
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let mut raw = RawConn::connect(&addr);
        let info = raw.read_info(STEP);
        assert_eq!(info["max_payload"], 1024);
        raw.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB ok 1024\r\n");
        raw.send(&[b'y'; 1024]);
        raw.send(b"\r\nPUB big 1025\r\n");
        raw.expect("-ERR 'Maximum Payload Violation'\r\n", STEP);
        assert!(
            raw.read_until_closed(STEP),
            "connection closed after the violation"
        );
    })
    .await
    .unwrap();
}

/// A subscriber that never reads while a publisher pushes: the server must cut it off once its
/// pending bytes pass `max_pending`, and (for twig) keep its own memory bounded meanwhile.
#[test]
fn slow_consumer_is_disconnected_and_memory_stays_bounded() {
    const MAX_PENDING: u64 = 1024 * 1024;
    const PAYLOAD: usize = 64 * 1024;
    const TOTAL: usize = 200 * 1024 * 1024;
    const TWIG_RSS_BOUND: u64 = 64 * 1024 * 1024;

    let opts = ServerOptions {
        max_pending: Some(MAX_PENDING),
        ..ServerOptions::default()
    };
    let server = ServerUnderTest::start(&opts);

    let mut sub = RawConn::connect(&server.addr());
    sub.read_info(STEP);
    sub.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB firehose 1\r\n");
    assert_eq!(
        sub.ping_pong(STEP),
        twig_tests::harness::raw::ReadEnd::Matched
    );
    // From here on the subscriber reads nothing until the publisher is done.

    let pid = server.pid();
    let max_rss = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (max_rss, done) = (Arc::clone(&max_rss), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = twig_tests::harness::rss_bytes(pid) {
                    max_rss.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let mut publisher = RawConn::connect(&server.addr());
    publisher.read_info(STEP);
    publisher.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
    let mut frame = format!("PUB firehose {PAYLOAD}\r\n").into_bytes();
    frame.extend(std::iter::repeat_n(b'z', PAYLOAD));
    frame.extend_from_slice(b"\r\n");
    let started = Instant::now();
    let mut sent = 0;
    // Push until the server reports the slow consumer (or the bound is reached).
    while sent < TOTAL {
        publisher.send(&frame);
        sent += PAYLOAD;
        if sent % (4 << 20) == 0 && server.log().contains("Slow Consumer") {
            break;
        }
    }
    // The publisher itself must still be served normally.
    assert_eq!(
        publisher.ping_pong(Duration::from_secs(30)),
        twig_tests::harness::raw::ReadEnd::Matched,
        "publisher answered after pushing {sent} bytes"
    );
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let max_rss = max_rss.load(Ordering::Relaxed);
    eprintln!(
        "{}: pushed {} MiB in {:?}, max RSS {} MiB",
        server.target().name(),
        sent >> 20,
        started.elapsed(),
        max_rss >> 20
    );

    // Now the subscriber reads: it gets at most what was buffered, then the close.
    assert!(
        sub.read_until_closed(Duration::from_secs(15)),
        "slow consumer was not disconnected; it read {} bytes",
        sub.received().len()
    );
    assert!(
        sub.received().len() < TOTAL / 2,
        "the subscriber got {} of {TOTAL} bytes: it was not cut off",
        sub.received().len()
    );
    assert!(
        server.log().contains("Slow Consumer"),
        "the server logs the slow consumer; log:\n{}",
        server.log()
    );
    if server.target() == Target::Twig {
        assert!(
            max_rss < TWIG_RSS_BOUND,
            "twig's RSS reached {max_rss} bytes with max_pending {MAX_PENDING}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reconnect_and_resubscribe_after_server_restart() {
    let mut server = ServerUnderTest::start(&ServerOptions::new());
    let opts = || {
        ConnectOptions::new()
            .reconnect_delay_callback(|_| Duration::from_millis(100))
            .connection_timeout(STEP)
    };
    let sub_client = opts().connect(server.url()).await.unwrap();
    let pub_client = opts().connect(server.url()).await.unwrap();
    let mut sub = sub_client.subscribe("after.restart").await.unwrap();
    // Before the restart: wait until the subscription is live.
    let deadline = Instant::now() + STEP;
    loop {
        pub_client
            .publish("after.restart", "before".into())
            .await
            .unwrap();
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            break;
        }
        assert!(Instant::now() < deadline, "subscription never live");
    }

    tokio::task::block_in_place(|| server.restart());

    // Both clients reconnect on their own; the subscription is restored by the client, so
    // publishing repeatedly must eventually reach it (earlier ones may precede the SUB).
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        let _ = pub_client.publish("after.restart", "after".into()).await;
        match tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            Ok(Some(m)) if m.payload == "after" => break m,
            Ok(Some(_)) => {} // a late "before"
            Ok(None) => panic!("subscription ended on restart"),
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "no message after restart; state {:?}; server log:\n{}",
            sub_client.connection_state(),
            server.log()
        );
    };
    assert_eq!(got.subject.as_str(), "after.restart");
    assert_eq!(
        sub_client.connection_state(),
        async_nats::connection::State::Connected
    );
}

/// `max_subscriptions`: the SUB past the limit gets nats-server's `-ERR 'maximum subscriptions
/// exceeded'` (and no `+OK`), is not subscribed, and the connection stays open; after an
/// UNSUB there is room again. A live sid reused at the limit is refused too (nats-server
/// checks the count first).
#[test]
fn max_subscriptions_is_enforced() {
    const ERR: &str = "-ERR 'maximum subscriptions exceeded'\r\n";
    let opts = ServerOptions {
        max_subscriptions: Some(3),
        ..ServerOptions::default()
    };
    let server = ServerUnderTest::start(&opts);
    let mut c = RawConn::connect(&server.addr());
    c.read_info(STEP);
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":false}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\n");
    assert_eq!(
        c.ping_pong(STEP),
        twig_tests::harness::raw::ReadEnd::Matched
    );
    let seen = c.received().len();
    let text = c.text();
    assert_eq!(count(&text, "+OK\r\n"), 4, "{text:?}");
    assert!(!text.contains("-ERR"), "{text:?}");

    c.send(b"SUB d 4\r\nSUB a 1\r\nPUB d 1\r\nx\r\n");
    assert_eq!(
        c.ping_pong(STEP),
        twig_tests::harness::raw::ReadEnd::Matched
    );
    let tail = String::from_utf8_lossy(&c.received()[seen..]).into_owned();
    assert_eq!(count(&tail, ERR), 2, "both SUBs refused: {tail:?}");
    assert_eq!(
        count(&tail, "+OK\r\n"),
        1,
        "only the PUB is acknowledged: {tail:?}"
    );
    assert!(
        !tail.contains("MSG d"),
        "a refused SUB got a message: {tail:?}"
    );
    assert!(!c.is_closed(), "the connection stays open");

    // Room again after an UNSUB.
    let seen = c.received().len();
    c.send(b"UNSUB 1\r\nSUB d 4\r\nPUB d 1\r\ny\r\n");
    c.expect("MSG d 4 1\r\ny\r\n", STEP);
    let tail = String::from_utf8_lossy(&c.received()[seen..]).into_owned();
    assert!(!tail.contains("-ERR"), "{tail:?}");
    // Logged as nats-server does (the log is read by another thread: wait for it).
    server.wait_log("maximum subscriptions exceeded");
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}
