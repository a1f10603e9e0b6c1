//! Store-and-forward over narrow links: twig's uplink goes through the link emulator
//! (`twig_tests::link_emu`) to a real nats-server 2.15 hub with JetStream. A backlog published
//! while the hub was down drains when it is back, and in every case the hub stream holds each
//! message exactly once and in order, and twig sent each message at most 1.05 times
//! (`forward_sent / forwarded` in `/jsz`).
//!
//! Short forms (what `tests/run` runs): a few hundred to a few thousand messages per link.
//! `TWIG_LINK_SCALE=10` (or more) multiplies the counts; the benchmark (`tests/bench --only
//! link`) has the long forms and the comparison with nats-server. Durations are printed
//! (`--nocapture`) with the share of the line rate they reached, never asserted.

#[path = "common/uplink.rs"]
mod common;
#[path = "common/forward.rs"]
mod forward;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::{Twig, connect};
use forward::*;
use futures::StreamExt;
use twig_tests::link_emu::schedule::{self, Pattern};
use twig_tests::link_emu::{LinkEmulator, LinkSpec};

const MS: Duration = Duration::from_millis(1);

fn scale() -> u64 {
    std::env::var("TWIG_LINK_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// One emulated link and its backlog.
struct Case {
    /// Bytes per second each way.
    rate: u64,
    rtt: Duration,
    messages: u64,
    /// Stalls from the drain's start: (seed, pattern).
    stalls: Option<(u64, Pattern)>,
    /// Lines added to twig's `[leafnodes]`.
    leaf: &'static str,
    /// Alarms (`alarms.x`, stream ALARMS with `forward_priority = 9`, hub stream ALARMS)
    /// published before the hub starts, after the backlog.
    alarms: u64,
}

/// What a drain did.
struct Drained {
    twig: Twig,
    link: LinkEmulator,
    _hub: (twig_tests::hub::Hub, tempfile::TempDir),
}

/// Publishes the backlog while the hub is down, starts the hub, waits for the hub stream to
/// hold it all; checks exactly once and in order and the re-send ratio.
async fn drain(
    c: &Case,
    during: impl AsyncFnOnce(&Twig, &LinkEmulator, &jetstream::Context),
) -> Drained {
    let (mut hub, store) = js_hub();
    create_stream(&hub, "EDGE", "orders.>").await;
    if c.alarms > 0 {
        create_stream(&hub, "ALARMS", "alarms.>").await;
    }
    hub.stop();
    let leaf = format!("127.0.0.1:{}", hub.leaf_port).parse().unwrap();
    let link = LinkEmulator::start(LinkSpec::symmetric(c.rate, c.rtt), leaf).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats-leaf://127.0.0.1:{}", link.port());
    let alarm_stream = if c.alarms > 0 { ALARM_STREAM } else { "" };
    let conf = twig_config_url(dir.path(), &url, c.leaf, alarm_stream);
    let twig = Twig::with_config(dir.path(), &conf);
    let n = c.messages;
    publish(&twig.url(), 0, n).await;
    for i in 0..c.alarms {
        publish_alarm(&twig, i).await;
    }

    hub.restart();
    let ready = Instant::now();
    if let Some((seed, p)) = &c.stalls {
        let spans = schedule::stalls(p, *seed, Duration::from_secs(3600));
        link.stalls_from_now(&spans);
    }
    let before = link.stats();
    let js = jetstream::new(connect(&hub.client_url()).await);
    twig.wait_up(1);
    let up = ready.elapsed();
    let up_at = link.elapsed();
    // Generous: ten times the line time plus a minute.
    let line = Duration::from_secs_f64((n * 250) as f64 / c.rate as f64);
    let deadline = line * 10 + Duration::from_secs(60);
    let (_, took) = futures::join!(during(&twig, &link, &js), async {
        wait_count_within(&js, "EDGE", n, deadline).await;
        ready.elapsed()
    });
    let after = link.stats();
    let end_at = link.elapsed();
    // Stall time inside the drain is time the line could not be used.
    let stalled: Duration = link
        .stalls()
        .iter()
        .map(|s| s.end().min(end_at).saturating_sub(s.at.max(up_at)))
        .sum();
    let got = read_back(&js, "EDGE").await;
    assert_exactly(&got, 0..n);
    let s = wait_backlog_zero(&twig).await;
    let (sent, fwd) = (
        s["forward_sent"].as_u64().unwrap(),
        s["forwarded"].as_u64().unwrap(),
    );
    assert_eq!(fwd, n, "{s}");
    let up_bytes = after.up.delivered - before.up.delivered;
    let line_time = up_bytes as f64 / c.rate as f64;
    let drain_time = (took - up).saturating_sub(stalled).as_secs_f64();
    eprintln!(
        "{n} messages over {} B/s, {:?} RTT: hub ready -> all in the hub stream {took:.2?} \
         (link up after {up:.2?}); {up_bytes} B up ({:.1} B/message), {} B down; line time \
         {line_time:.2} s = {:.0}% of the drain time (less {stalled:.2?} stalled); \
         forward_sent / forwarded = {sent} / {fwd} = {:.3}; timeouts {}",
        c.rate,
        c.rtt,
        up_bytes as f64 / n as f64,
        after.down.delivered - before.down.delivered,
        100.0 * line_time / drain_time,
        sent as f64 / fwd as f64,
        s["forward_timeouts"]
    );
    assert!(
        sent as f64 <= fwd as f64 * 1.05,
        "twig sent {sent} messages for {fwd} forwarded: {s}"
    );
    // What the forwarder measured (/jsz): no round trip shorter than the link's, and a rate.
    let min_rtt = s["forward_min_rtt_ms"].as_f64().unwrap_or(0.0);
    eprintln!(
        "forwarder: min RTT {min_rtt:.0} ms, SRTT {} ms, RTO {} ms, rate {} B/s, window {} B",
        s["forward_rtt_ms"], s["forward_rto_ms"], s["forward_rate"], s["forward_window_bytes"]
    );
    assert!(min_rtt >= c.rtt.as_secs_f64() * 900.0, "{s}");
    assert!(s["forward_rate"].as_u64().unwrap_or(0) > 0, "{s}");
    Drained {
        twig,
        link,
        _hub: (hub, store),
    }
}

/// twig's alarm stream: drains ahead of ORDERS on the same remote.
const ALARM_STREAM: &str = "[[streams]]\nname = \"ALARMS\"\nsubjects = [\"alarms.>\"]\n\
                            forward_priority = 9\n";

/// Publishes alarm `i` to twig and waits for twig's PubAck (stored on twig's flash).
async fn publish_alarm(twig: &Twig, i: u64) {
    let js = jetstream::new(connect(&twig.url()).await);
    js.publish("alarms.x", payload(i))
        .await
        .unwrap()
        .await
        .expect("twig stores the alarm");
}

async fn nothing(_: &Twig, _: &LinkEmulator, _: &jetstream::Context) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_over_20_kbytes_per_second_and_600_ms() {
    let c = Case {
        rate: 20_000,
        rtt: 600 * MS,
        messages: 600 * scale(),
        stalls: None,
        leaf: "",
        alarms: 0,
    };
    drain(&c, nothing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_over_1_mbit_and_200_ms() {
    let c = Case {
        rate: 125_000,
        rtt: 200 * MS,
        messages: 2_000 * scale(),
        stalls: None,
        leaf: "",
        alarms: 0,
    };
    drain(&c, nothing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_over_10_mbit_and_50_ms() {
    let c = Case {
        rate: 1_250_000,
        rtt: 50 * MS,
        messages: 10_000 * scale(),
        stalls: None,
        leaf: "",
        alarms: 0,
    };
    drain(&c, nothing).await;
}

/// Stalls of 1-3 s every 1-4 s, with keepalive pings every second (two unanswered ones make
/// twig drop the link): the stalls are shorter than that, so the link stays up and nothing is
/// sent twice for a stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_over_a_link_that_stalls() {
    let c = Case {
        rate: 125_000,
        rtt: 200 * MS,
        messages: 3_000 * scale(),
        stalls: Some((
            7,
            Pattern {
                gap: (1000 * MS, 4000 * MS),
                len: (1000 * MS, 2500 * MS),
            },
        )),
        leaf: "ping_interval = \"2s\"\nping_max = 2",
        alarms: 0,
    };
    let d = drain(&c, nothing).await;
    let leafz = d.twig.monitor("/leafz");
    eprintln!("stalls: {:?}", &d.link.stalls()[..3]);
    assert_eq!(
        leafz["remotes"][0]["connects"].as_u64(),
        Some(1),
        "the link stayed up through the stalls: {leafz}"
    );
}

/// Requests to a hub responder are answered while a backlog drains over a 1 Mbit/s link,
/// and the keepalive (a ping every second, the link dropped after two unanswered) never
/// waits behind the backlog: the link stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_requests_and_keepalives_get_through_during_a_drain() {
    let c = Case {
        rate: 125_000,
        rtt: 200 * MS,
        messages: 3_000 * scale(),
        stalls: None,
        leaf: "ping_interval = \"1s\"\nping_max = 2",
        alarms: 0,
    };
    let d = drain(
        &c,
        async |twig: &Twig, _: &LinkEmulator, js: &jetstream::Context| {
            let hc = js.client();
            let mut requests = hc.subscribe("live.echo").await.unwrap();
            let responder = hc.clone();
            let task = tokio::spawn(async move {
                while let Some(m) = requests.next().await {
                    if let Some(r) = m.reply {
                        let _ = responder.publish(r, m.payload).await;
                    }
                }
            });
            hc.flush().await.unwrap();
            let local = connect(&twig.url()).await;
            common::interest_ready(&hc, &local).await;
            let mut rtts = Vec::new();
            while hub_count(js, "EDGE").await < c.messages {
                let t = Instant::now();
                let r =
                    tokio::time::timeout(common::STEP, local.request("live.echo", "ping".into()))
                        .await
                        .expect("a live request answered in time during the drain")
                        .expect("reply");
                assert_eq!(&r.payload[..], b"ping");
                rtts.push(t.elapsed());
            }
            task.abort();
            eprintln!("live round trips during the drain: {rtts:.2?}");
            assert!(
                rtts.len() >= 3,
                "only {} round trips during the drain",
                rtts.len()
            );
        },
    )
    .await;
    let leafz = d.twig.monitor("/leafz");
    assert_eq!(
        leafz["remotes"][0]["connects"].as_u64(),
        Some(1),
        "no keepalive timed out: {leafz}"
    );
    // The hub offers s2_auto (nats-server's default) and twig too: at 200 ms of round trip
    // both pick s2_best, so the live traffic above crossed inside S2 frames.
    assert_eq!(
        leafz["leafs"][0]["compression"].as_str(),
        Some("s2_best"),
        "the drain ran compressed: {leafz}"
    );
}

/// A SIGHUP reload in the middle of a drain (new users and log levels) leaves the uplink and
/// the forwarder alone: the drain goes on over the same link to exactly once and in order,
/// and the new users are in force for new clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_during_a_drain_keeps_it_going() {
    let c = Case {
        rate: 125_000,
        rtt: 200 * MS,
        messages: 3_000 * scale(),
        stalls: None,
        leaf: "",
        alarms: 0,
    };
    let d = drain(
        &c,
        async |twig: &Twig, _: &LinkEmulator, js: &jetstream::Context| {
            // Reload once the drain is under way and well before it ends.
            let deadline = Instant::now() + common::STEP;
            let mut at = hub_count(js, "EDGE").await;
            while at == 0 {
                assert!(Instant::now() < deadline, "the drain did not start");
                tokio::time::sleep(10 * MS).await;
                at = hub_count(js, "EDGE").await;
            }
            let path = twig.config.as_ref().expect("a config file");
            let old = std::fs::read_to_string(path).unwrap();
            let new = format!(
                "debug = true\n{old}\n[authorization]\n\
                 users = [{{ user = \"ops\", password = \"ops-pass\" }}]\n"
            );
            std::fs::write(path, new).unwrap();
            twig.sut.signal("reload");
            twig.wait_log("Reloaded server configuration", 1);
            let at_reload = hub_count(js, "EDGE").await;
            eprintln!(
                "reloaded with {at} .. {at_reload} of {} in the hub",
                c.messages
            );
            assert!(at_reload < c.messages, "the drain ended before the reload");
            let log = twig.log();
            assert!(
                log.contains("Authorization reloaded on open connections"),
                "{log}"
            );
            // In force for new clients: a login is needed now.
            let anon = async_nats::ConnectOptions::new()
                .max_reconnects(Some(0))
                .connect(twig.url())
                .await;
            assert!(anon.is_err(), "an anonymous client got in after the reload");
            let ops =
                async_nats::ConnectOptions::with_user_and_password("ops".into(), "ops-pass".into())
                    .connect(twig.url())
                    .await
                    .expect("the new user logs in");
            ops.flush().await.unwrap();
        },
    )
    .await;
    let leafz = d.twig.monitor("/leafz");
    assert_eq!(
        leafz["remotes"][0]["connects"].as_u64(),
        Some(1),
        "the reload did not redial the hub: {leafz}"
    );
}

/// Priorities on a metered link: 100 alarms waiting with a 3,000-message telemetry backlog
/// all reach the hub before a quarter of the telemetry, and an alarm published in the middle
/// of the drain reaches the hub stream long before the backlog ends (its latency is printed,
/// and compared with two round trips plus its own transfer in the benchmark).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_stream_drains_ahead_of_a_telemetry_backlog() {
    let c = Case {
        rate: 125_000,
        rtt: 200 * MS,
        messages: 3_000 * scale(),
        stalls: None,
        leaf: "",
        alarms: 100,
    };
    let n = c.messages;
    drain(
        &c,
        async |twig: &Twig, _: &LinkEmulator, js: &jetstream::Context| {
            let mut sub = js.client().subscribe("alarms.>").await.unwrap();
            js.client().flush().await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                assert!(Instant::now() < deadline, "the alarm backlog did not drain");
                if hub_count(js, "ALARMS").await == 100 {
                    break;
                }
                tokio::time::sleep(10 * MS).await;
            }
            let telemetry = hub_count(js, "EDGE").await;
            eprintln!("all 100 waiting alarms at the hub with {telemetry} of {n} telemetry there");
            assert!(telemetry < n / 4, "{telemetry} of {n} telemetry went first");
            // The drain goes on; an alarm now.
            while hub_count(js, "EDGE").await < n / 2 {
                tokio::time::sleep(10 * MS).await;
            }
            let t = Instant::now();
            publish_alarm(twig, 100).await;
            let stored = t.elapsed();
            let m = tokio::time::timeout(common::STEP, async {
                loop {
                    let m = common::next(&mut sub).await;
                    if number(&m.payload) == 100 {
                        return m;
                    }
                }
            })
            .await
            .expect("the alarm reaches the hub");
            let took = t.elapsed();
            let left = n - hub_count(js, "EDGE").await;
            eprintln!(
                "alarm published mid-drain: at the hub {took:.2?} later (stored by twig after \
             {stored:.2?}; RTT {:?}); {left} telemetry messages still to go",
                c.rtt
            );
            assert_eq!(m.subject.as_str(), "alarms.x");
            assert!(left > 0, "the alarm waited for the whole backlog");
        },
    )
    .await;
}
