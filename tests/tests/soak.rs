//! Soak: twig under mixed, rate-bounded load for a while, its RSS sampled from /proc, and
//! the RSS must stay flat. The load: plain publishers (local and hub-side subscribers), a
//! stream publisher whose stream buffers while the hub is down and forwards when it is back,
//! request/reply, connection churn, slow consumers that twig cuts and that come back, and a
//! hub (nats-server 2.15 with JetStream) that is killed and restarted on a schedule.
//!
//! Length: `TWIG_SOAK_SECS` (default 80, the CI short form). The long form is
//! `tests/soak --minutes 30` (tests/BENCH.md). Samples go to `TWIG_SOAK_CSV` (default
//! `target/soak-rss.csv`).
//!
//! What is asserted:
//! - long form (30 minutes or more): the mean RSS of the last 10 minutes is within 5% of the
//!   mean of minutes 10-20 (issue 13);
//! - short form: the mean RSS of the second half is at most 1.2 × the first half's + 4 MiB;
//! - every stream message twig acknowledged reaches the hub's stream exactly once, in order;
//! - twig cut slow consumers, request/reply and the hub-side subscriber got traffic.

#[path = "common/uplink.rs"]
mod common;
#[path = "common/forward.rs"]
mod forward;
#[path = "soak/load.rs"]
mod load;
#[path = "soak/rss.rs"]
mod rss;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::Twig;
use forward::*;
use load::Load;

/// twig's `max_pending`: small, so the slow consumers pass it within their stall (with
/// `max_payload` 64 KiB: twig wants `max_pending` to hold one message at least).
const MAX_PENDING: u64 = 256 * 1024;

/// The schedule of one soak, scaled from its length.
struct Plan {
    total: Duration,
    sample_every: Duration,
    /// (when the hub goes down, for how long), from the start.
    flaps: Vec<(Duration, Duration)>,
    slow_stall: Duration,
}

impl Plan {
    fn new(total: Duration) -> Plan {
        let secs = total.as_secs();
        if secs >= 600 {
            // Long form: the hub goes away at 2:00 of every 5 minutes, for 20, 30 or 40 s.
            let downs = [20, 30, 40];
            let flaps = (0..)
                .map(|i| (120 + 300 * i, downs[i as usize % 3]))
                .take_while(|&(at, d)| at + d + 30 < secs)
                .map(|(at, d)| (Duration::from_secs(at), Duration::from_secs(d)))
                .collect();
            Plan {
                total,
                sample_every: Duration::from_secs(10),
                flaps,
                slow_stall: Duration::from_secs(12),
            }
        } else {
            // Short form: two flaps, at a quarter and three quarters, an eighth long each.
            let q = secs / 4;
            let d = Duration::from_secs((secs / 8).max(2));
            Plan {
                total,
                sample_every: Duration::from_secs(2),
                flaps: vec![(Duration::from_secs(q), d), (Duration::from_secs(3 * q), d)],
                slow_stall: Duration::from_secs(12),
            }
        }
    }
}

fn soak_secs() -> u64 {
    std::env::var("TWIG_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(80)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_stays_flat_under_mixed_load_and_a_flapping_hub() {
    let plan = Plan::new(Duration::from_secs(soak_secs()));
    let (mut hub, _store) = js_hub();
    create_stream(&hub, "EDGE", "orders.>").await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "max_payload = 65536\nmax_pending = {MAX_PENDING}\n{}",
        twig_config(dir.path(), &hub, "")
    );
    let twig = Twig::with_config(dir.path(), &config);
    twig.wait_up(1);
    let pid = twig.sut.pid();
    let load = Arc::new(Load {
        twig_url: twig.url(),
        twig_port: twig.sut.port(),
        stop: false.into(),
        stats: load::Stats::default(),
    });
    eprintln!(
        "soak: {:?}, samples every {:?}, hub flaps {:?}, load average at start {}",
        plan.total,
        plan.sample_every,
        plan.flaps,
        rss::loadavg()
    );

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(load::plain_subscriber(
        load.clone(),
        twig.url(),
        false,
    )));
    tasks.push(tokio::spawn(load::plain_subscriber(
        load.clone(),
        hub.client_url(),
        true,
    )));
    common::interest_ready(
        &common::connect(&hub.client_url()).await,
        &common::connect(&twig.url()).await,
    )
    .await;
    for id in 0..3 {
        // 3 × 300 msg/s of 128 B.
        tasks.push(tokio::spawn(load::plain_publisher(load.clone(), id, 3)));
    }
    tasks.push(tokio::spawn(load::request_reply(
        load.clone(),
        Duration::from_millis(50),
    )));
    for id in 0..2 {
        tasks.push(tokio::spawn(load::churn(
            load.clone(),
            id,
            Duration::from_millis(200),
        )));
    }
    // 1000 msg/s of 1 KiB to the slow consumers: a stall of 12 s is 12 MB, more than the
    // kernel's send buffer (up to 4 MiB, tcp_wmem) plus `max_pending` can hold.
    tasks.push(tokio::spawn(load::slow_publisher(load.clone(), 10)));
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let (load, stall) = (load.clone(), plan.slow_stall);
            std::thread::spawn(move || load::slow_consumer(load, stall))
        })
        .collect();
    let stream_pub = tokio::spawn(load::stream_publisher(
        load.clone(),
        Duration::from_millis(20),
    ));

    let start = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut flaps = plan.flaps.iter().peekable();
    let mut down_since: Option<(Duration, Duration)> = None;
    let mut flapped = 0;
    loop {
        let now = start.elapsed();
        if now >= next_sample {
            samples.push(rss::Sample {
                at: now,
                rss_kib: rss::vm_rss_kib(pid),
                hub_up: down_since.is_none(),
                stream_acked: load.stats.stream_acked.load(Relaxed),
                load1: rss::loadavg().split(' ').next().unwrap_or("").to_owned(),
            });
            next_sample += plan.sample_every;
        }
        if now >= plan.total {
            break;
        }
        match down_since {
            None => {
                if let Some(&&(at, d)) = flaps.peek()
                    && now >= at
                {
                    flaps.next();
                    hub.stop();
                    flapped += 1;
                    down_since = Some((now, d));
                }
            }
            Some((since, d)) if now >= since + d => {
                tokio::task::block_in_place(|| hub.restart());
                down_since = None;
            }
            Some(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(down_since.is_none(), "the plan ends with the hub up");

    load.stop.store(true, Relaxed);
    let acked = stream_pub.await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    for t in slow {
        t.join().unwrap();
    }
    let end_rss = rss::vm_rss_kib(pid);
    let s = &load.stats;
    let varz = twig.monitor("/varz");
    eprintln!(
        "soak done: hub flaps {flapped}; plain published {}, received on twig {}, on the hub {}; \
         stream acked {acked}; requests ok {} failed {}; churn connections {}; slow consumer \
         messages {} cycles {} cut {} not cut {} (varz slow_consumers {}); load average at end {}",
        s.plain_published.load(Relaxed),
        s.plain_received_local.load(Relaxed),
        s.plain_received_hub.load(Relaxed),
        s.requests_ok.load(Relaxed),
        s.requests_failed.load(Relaxed),
        s.churn_connections.load(Relaxed),
        s.slow_published.load(Relaxed),
        s.slow_cycles.load(Relaxed),
        s.slow_cut.load(Relaxed),
        s.slow_not_cut.load(Relaxed),
        varz["slow_consumers"],
        rss::loadavg()
    );

    // The figures first, so that a failure below still leaves them.
    rss::write_csv(&samples);
    rss::print_table(&samples, end_rss);

    // The stream: every acknowledged message on the hub, once, in order.
    let js = jetstream::new(common::connect(&hub.client_url()).await);
    wait_count(&js, "EDGE", acked).await;
    let got = read_back(&js, "EDGE").await;
    assert_exactly(&got, 0..acked);
    let st = stream_state(&twig);
    eprintln!("twig stream after the soak: {st}");
    rss::assert_flat(&samples, plan.total);

    assert_eq!(flapped, plan.flaps.len());
    assert!(
        s.slow_cut.load(Relaxed) > 0,
        "twig never cut a slow consumer"
    );
    assert!(
        s.requests_ok.load(Relaxed) > 0 && s.plain_received_hub.load(Relaxed) > 0,
        "request/reply or the hub-side subscriber got nothing"
    );
}
