//! Store-and-forward against a real nats-server 2.15 hub with JetStream: messages published
//! to twig (with PubAcks) while the hub is away reach the hub's stream exactly once and in
//! order once it is back, also when twig is killed (-9) during the drain and when the hub is
//! killed again and again during continuous publishing; a full store drops the oldest and
//! counts it; `forward = "core"` reaches a hub without JetStream at least once.
//!
//! Counts: `TWIG_FWD_N` (default 100000) messages for the drain tests. Timings are printed
//! (`--nocapture`), never asserted.

#[path = "common/uplink.rs"]
mod common;
#[path = "common/forward.rs"]
mod forward;

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use common::{Twig, connect};
use forward::*;
use futures::StreamExt;
use twig_tests::hub::{Hub, HubVersion};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_reaches_the_hub_exactly_once_in_order() {
    let n = n_messages();
    let (mut hub, _store) = js_hub();
    create_stream(&hub, "EDGE", "orders.>").await;
    hub.stop();
    let dir = tempfile::tempdir().unwrap();
    let twig = Twig::with_config(dir.path(), &twig_config(dir.path(), &hub, ""));

    let t = Instant::now();
    let seqs = publish(&twig.url(), 0, n).await;
    let publish_time = t.elapsed();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    let s = stream_state(&twig);
    assert_eq!(
        (s["backlog"].as_u64(), s["forwarded"].as_u64()),
        (Some(n), Some(0)),
        "{s}"
    );
    assert_eq!(s["forward_state"], "waiting for link", "{s}");

    hub.restart();
    let ready = Instant::now();
    let js = jetstream::new(connect(&hub.client_url()).await);
    twig.wait_up(1);
    let up = ready.elapsed();
    let took = ready.elapsed() + wait_count(&js, "EDGE", n).await;
    eprintln!(
        "drain: {n} messages of {SIZE} B published to twig in {publish_time:?}; hub ready -> \
         hub stream holding them: {took:?} ({:.0} msg/s); link up after {up:?} (reconnect \
         back-off), then {:.0} msg/s",
        n as f64 / took.as_secs_f64(),
        n as f64 / (took - up).as_secs_f64()
    );
    let s = wait_backlog_zero(&twig).await;
    assert_eq!(s["forwarded"].as_u64(), Some(n), "{s}");
    assert_eq!(s["acked_seq"].as_u64(), Some(n), "{s}");
    assert_eq!(s["forward_state"], "idle", "{s}");

    // With the link up, new messages go up once: through the forwarder, not also live.
    let local = connect(&twig.url()).await;
    let mut here = local.subscribe("orders.>").await.unwrap();
    local.flush().await.unwrap();
    publish(&twig.url(), n, n + 10).await;
    for i in n..n + 10 {
        assert_eq!(
            number(&common::next(&mut here).await.payload),
            i,
            "local subscriber"
        );
    }
    wait_count(&js, "EDGE", n + 10).await;
    let got = read_back(&js, "EDGE").await;
    assert_exactly(&got, 0..n + 10);
    assert_eq!(got[0].1, "gw1.ORDERS.1");
    common::assert_quiet(&mut here).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_twice_during_the_drain_loses_and_repeats_nothing() {
    let n = n_messages();
    let (mut hub, _store) = js_hub();
    create_stream(&hub, "EDGE", "orders.>").await;
    hub.stop();
    let dir = tempfile::tempdir().unwrap();
    // A small window slows the drain enough to be caught in the middle.
    let mut twig = Twig::with_config(
        dir.path(),
        &twig_config(dir.path(), &hub, "forward_window = 64"),
    );
    publish(&twig.url(), 0, n).await;

    hub.restart();
    let js = jetstream::new(connect(&hub.client_url()).await);
    let mut kills = Vec::new();
    for round in 1..=2u64 {
        // Kill twig once the hub got more than round/3 of the backlog.
        let mark = n * round / 3;
        let deadline = Instant::now() + DRAIN_DEADLINE;
        let at = loop {
            let c = hub_count(&js, "EDGE").await;
            if c > mark {
                break c;
            }
            assert!(Instant::now() < deadline, "drain stuck at {c}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        twig.sut.restart();
        kills.push(at);
    }
    assert!(
        kills.iter().all(|&k| k < n),
        "twig must be killed in the middle of the drain (hub counts at the kills: {kills:?})"
    );
    let took = wait_count(&js, "EDGE", n).await;
    eprintln!("kill -9 at hub counts {kills:?}; drain finished {took:?} after the second kill");
    let got = read_back(&js, "EDGE").await;
    assert_exactly(&got, 0..n);
    let s = wait_backlog_zero(&twig).await;
    assert_eq!(s["acked_seq"].as_u64(), Some(n), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_killed_five_times_during_publishing() {
    let slice = 1000;
    let (mut hub, _store) = js_hub();
    create_stream(&hub, "EDGE", "orders.>").await;
    let dir = tempfile::tempdir().unwrap();
    let twig = Twig::with_config(dir.path(), &twig_config(dir.path(), &hub, ""));
    twig.wait_up(1);

    let url = twig.url();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = stop.clone();
    // Publishes slice after slice until the restarts are over.
    let publisher = tokio::spawn(async move {
        let mut all = Vec::new();
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let from = all.len() as u64;
            all.extend(publish(&url, from, from + slice).await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        all
    });
    for i in 1..=5u64 {
        // Some publishing between kills (and while the hub is starting again).
        let deadline = Instant::now() + DRAIN_DEADLINE;
        while stream_state(&twig)["last_seq"].as_u64().unwrap_or(0) < i * 3 * slice {
            assert!(Instant::now() < deadline, "publishing stuck");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        hub.restart();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seqs = publisher.await.unwrap();
    let n = seqs.len() as u64;
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "every publish acknowledged by twig"
    );
    let js = jetstream::new(connect(&hub.client_url()).await);
    let took = wait_count(&js, "EDGE", n).await;
    eprintln!("hub restarted 5 times; the last of {n} arrived {took:?} after publishing ended");
    let got = read_back(&js, "EDGE").await;
    assert_exactly(&got, 0..n);
    wait_backlog_zero(&twig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_drops_the_oldest_and_the_hub_gets_the_newest_in_order() {
    let (mut hub, _store) = js_hub();
    create_stream(&hub, "EDGE", "orders.>").await;
    hub.stop();
    let dir = tempfile::tempdir().unwrap();
    let conf = twig_config(dir.path(), &hub, "when_full = \"drop_oldest\"")
        .replace("max_bytes = \"64MiB\"", "max_bytes = \"256KiB\"");
    let twig = Twig::with_config(dir.path(), &conf);
    let total = 5000;
    publish(&twig.url(), 0, total).await;
    let s = stream_state(&twig);
    let (first, last) = (
        s["first_seq"].as_u64().unwrap(),
        s["last_seq"].as_u64().unwrap(),
    );
    let dropped = s["dropped"].as_u64().unwrap();
    assert_eq!(last, total, "{s}");
    assert!(first > 1, "the oldest were dropped: {s}");
    assert_eq!(dropped, first - 1, "every dropped message is counted: {s}");

    hub.restart();
    let js = jetstream::new(connect(&hub.client_url()).await);
    let kept = last - first + 1;
    wait_count(&js, "EDGE", kept).await;
    let got = read_back(&js, "EDGE").await;
    // Sequence k carries payload number k - 1.
    assert_exactly(&got, first - 1..total);
    let s = wait_backlog_zero(&twig).await;
    assert_eq!(s["forwarded"].as_u64(), Some(kept), "{s}");
}

/// Against 2.15 and Debian's 2.9 hub, neither with JetStream.
async fn core_mode_reaches_a_hub_subscriber_after_an_outage(v: HubVersion) {
    let mut hub = Hub::start(v);
    let dir = tempfile::tempdir().unwrap();
    let twig = Twig::with_config(
        dir.path(),
        &twig_config(dir.path(), &hub, "forward = \"core\""),
    );
    twig.wait_up(1);
    hub.stop();
    let m = 2000;
    let seqs = publish(&twig.url(), 0, m).await;
    assert_eq!(seqs.len() as u64, m);
    assert_eq!(stream_state(&twig)["forward"], "core");

    hub.restart();
    twig.wait_up(2);
    // The subscriber arrives after the hub: until then the forwarder waits for interest.
    let deadline = Instant::now() + common::STEP;
    loop {
        let s = stream_state(&twig);
        if s["forward_state"] == "waiting for hub interest" {
            assert_eq!(s["forwarded"].as_u64(), Some(0), "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hc = connect(&hub.client_url()).await;
    let mut sub = hc.subscribe("orders.>").await.unwrap();
    hc.flush().await.unwrap();
    let mut seen = Vec::new();
    while (seen.len() as u64) < m {
        let msg = common::next(&mut sub).await;
        let k = number(&msg.payload);
        if !seen.contains(&k) {
            seen.push(k);
        }
    }
    assert_eq!(seen, (0..m).collect::<Vec<_>>(), "in order, at least once");
    let s = wait_backlog_zero(&twig).await;
    assert_eq!(s["forwarded"].as_u64(), Some(m), "{s}");
}
per_version!(core_mode_reaches_a_hub_subscriber_after_an_outage);

/// A publisher far faster than the disk (no PubAcks, so nothing paces it) fills the stream's
/// queue: its reader then waits for room instead of dropping or blocking the event loop, and
/// every message is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_faster_than_the_disk_is_held_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let conf = format!(
        "store_dir = {:?}\n[[streams]]\nname = \"ORDERS\"\nsubjects = [\"orders.>\"]\n",
        dir.path().display().to_string()
    );
    let twig = Twig::with_config(dir.path(), &conf);
    let c = connect(&twig.url()).await;
    let other = connect(&twig.url()).await;
    let n = 50_000u64;
    for i in 0..n {
        c.publish("orders.fast", payload(i)).await.unwrap();
    }
    c.flush().await.unwrap();
    // Another connection on the same event loop is served meanwhile and afterwards.
    common::sync(&other).await;
    let deadline = Instant::now() + common::STEP;
    loop {
        let s = stream_state(&twig);
        if s["last_seq"].as_u64() == Some(n) {
            assert_eq!(s["forward"], "off", "{s}");
            eprintln!(
                "publishes that waited for room in the queue: {}",
                s["queue_waits"]
            );
            break;
        }
        assert!(Instant::now() < deadline, "stored {s}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A message the hub's stream refuses for good (larger than its `max_msg_size`: error 400)
/// is skipped and counted; the ones around it go on, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_hub_refuses_for_good_is_skipped_and_counted() {
    let (hub, _store) = js_hub();
    let js = jetstream::new(connect(&hub.client_url()).await);
    js.create_stream(stream::Config {
        name: "EDGE".into(),
        subjects: vec!["orders.>".into()],
        max_message_size: 512,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let twig = Twig::with_config(dir.path(), &twig_config(dir.path(), &hub, ""));
    let tj = jetstream::new(connect(&twig.url()).await);
    for i in 0..5u64 {
        let mut p = payload(i).to_vec();
        if i == 2 {
            p.resize(1000, b'y');
        }
        tj.publish("orders.x", p.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    wait_count(&js, "EDGE", 4).await;
    let got = read_back(&js, "EDGE").await;
    assert_exactly(&got, [0, 1, 3, 4].into_iter());
    let s = wait_backlog_zero(&twig).await;
    assert_eq!(
        (s["forward_skipped"].as_u64(), s["forwarded"].as_u64()),
        (Some(1), Some(4)),
        "{s}"
    );
    let err = s["last_forward_error"].as_str().unwrap_or_default();
    assert!(err.contains("message 3") && err.contains("400"), "{s}");
}

/// Live traffic and the backlog share the link: while a backlog drains (slowed by a small
/// window), requests to a hub responder keep being answered, and a local publisher flooding a
/// hub subscriber the whole time does not stop the drain from finishing. Nothing here is
/// timed: "starved" shows as no round trip completing during the drain, or the drain not
/// finishing while the flood runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_traffic_and_the_drain_share_the_link() {
    let n = n_messages().min(50_000);
    let (mut hub, _store) = js_hub();
    create_stream(&hub, "EDGE", "orders.>").await;
    hub.stop();
    let dir = tempfile::tempdir().unwrap();
    let twig = Twig::with_config(
        dir.path(),
        // Uncompressed, as this test was written: it is about the lanes sharing one link.
        // (With s2_auto on loopback, S2's uncompressed framing, one loaded CI run saw only 2
        // live round trips during the drain: not explained yet, see the issue-15 note.)
        &twig_config(dir.path(), &hub, "forward_window = 32").replace(
            "ignore_discovered_servers = true\n",
            "ignore_discovered_servers = true\ncompression = \"off\"\n",
        ),
    );
    publish(&twig.url(), 0, n).await;

    hub.restart();
    let hc = connect(&hub.client_url()).await;
    let js = jetstream::new(hc.clone());
    // A responder and a flood subscriber at the hub.
    let mut requests = hc.subscribe("live.echo").await.unwrap();
    let responder = hc.clone();
    tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            if let Some(r) = m.reply {
                let _ = responder.publish(r, m.payload).await;
            }
        }
    });
    let mut flood_sub = hc.subscribe("live.flood").await.unwrap();
    let flood_seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = flood_seen.clone();
    tokio::spawn(async move {
        while flood_sub.next().await.is_some() {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    hc.flush().await.unwrap();
    twig.wait_up(1);
    let local = connect(&twig.url()).await;
    common::interest_ready(&hc, &local).await;

    // The flood: bounded, stops once the drain is over.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooding = stop.clone();
    let flooder = local.clone();
    let flood = tokio::spawn(async move {
        let mut sent = 0u64;
        while !flooding.load(std::sync::atomic::Ordering::Relaxed) && sent < 20_000_000 {
            flooder.publish("live.flood", payload(sent)).await.unwrap();
            sent += 1;
            if sent.is_multiple_of(1000) {
                tokio::task::yield_now().await;
            }
        }
        sent
    });

    // Round trips through the hub while the hub stream is still filling.
    let mut during = 0u32;
    let deadline = Instant::now() + DRAIN_DEADLINE;
    let drained_at = loop {
        let c = hub_count(&js, "EDGE").await;
        if c >= n {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "drain stuck at {c} of {n} under live traffic"
        );
        let r = tokio::time::timeout(common::STEP, local.request("live.echo", "ping".into()))
            .await
            .expect("a live request answered in time during the drain")
            .expect("reply");
        assert_eq!(&r.payload[..], b"ping");
        if hub_count(&js, "EDGE").await < n {
            during += 1;
        }
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flood.await.unwrap();
    eprintln!(
        "share: {during} live round trips completed during the drain of {n}; {sent} flood \
         messages published meanwhile, {} seen at the hub so far",
        flood_seen.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(drained_at, n);
    assert!(
        during >= 3,
        "only {during} live round trips during the drain"
    );
    assert!(
        flood_seen.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no flood message reached the hub during the drain"
    );
    let got = read_back(&js, "EDGE").await;
    assert_exactly(&got, 0..n);
}
