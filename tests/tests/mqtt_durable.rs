//! The MQTT listener's durability across kill -9, with a real nats-server JetStream hub:
//! - a device sends QoS 1 readings into a `sync = "always"` stream while twig is killed (-9)
//!   at seeded random points: every reading that got its PUBACK is in the hub's stream
//!   exactly once, and no reading is there twice;
//! - retained messages (set and cleared) survive a kill -9;
//! - a persistent session (subscription and the QoS 1 messages queued while the device was
//!   away) survives a kill -9. The publisher's PUBACK waits for the offline session's store
//!   commit of its copy (mqtt_queued_kills.rs kills at random PUBACKs);
//! - QoS 2: twig killed after the PUBREC, before the PUBREL: the device repeats the PUBLISH
//!   (DUP) and sends PUBREL to the restarted twig, gets PUBREC and PUBCOMP, and a NATS
//!   subscriber gets the message once.
//!
//! Run: `cargo test -p twig-tests --test mqtt_durable` (`TWIG_MQTT_DUR_N` readings, default
//! 10,000; `TWIG_MQTT_DUR_SEED` picks the kill points).

#[path = "common/uplink.rs"]
mod common;
#[path = "common/forward.rs"]
mod forward;
#[path = "common/mqtt.rs"]
mod mqtt;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::*;
use forward::{create_stream, js_hub, read_back};
use mqtt::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use twig_tests::harness::free_port;
use twig_tests::hub::Hub;

/// How long one run of readings may take in all (kills and restarts included).
const RUN_DEADLINE: Duration = Duration::from_secs(300);

fn n_readings() -> u64 {
    std::env::var("TWIG_MQTT_DUR_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// twig as leaf `gw1` of `hub`, with stream `ORDERS` on `orders.>` (`sync = "always"`) and an
/// MQTT listener on `mqtt_port`.
fn twig(dir: &Path, hub: Option<&Hub>, mqtt_port: u16) -> Twig {
    let leaf = hub.map_or(String::new(), |h| {
        format!(
            "[leafnodes]\nreconnect_delay_max = \"250ms\"\n[[leafnodes.remotes]]\nurls = [{:?}]\n\
             ignore_discovered_servers = true\n",
            h.leaf_url()
        )
    });
    let toml = format!(
        "server_name = \"gw1\"\nport = -1\nstore_dir = {:?}\n\
         [mqtt_listener]\nport = {mqtt_port}\n{leaf}\
         [[streams]]\nname = \"ORDERS\"\nsubjects = [\"orders.>\"]\nmax_bytes = \"64MiB\"\n\
         sync = \"always\"\n",
        dir.display().to_string()
    );
    let t = Twig::with_config(dir, &toml);
    t.wait_mqtt_listening(mqtt_port);
    t
}

fn reading(i: u64) -> Vec<u8> {
    let mut p = format!("{i:010}-").into_bytes();
    p.resize(100, b'r');
    p
}

/// A seeded xorshift, so a failing run can be repeated with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// What the device saw over every connection.
#[derive(Default)]
struct Tally {
    /// Readings written to the socket (an `Outgoing::Publish`).
    sent: BTreeSet<u64>,
    /// Readings twig acknowledged.
    acked: BTreeSet<u64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubacked_readings_survive_kill_9_and_reach_the_hub_once() {
    let n = n_readings();
    let seed = std::env::var("TWIG_MQTT_DUR_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let mut rng = Rng(seed);
    // Three kills, each after a random number of acknowledgements (the device has up to
    // 64 readings unacknowledged at that moment: the kill lands amid writes and fsyncs).
    let mut kills: VecDeque<u64> = {
        let mut k: Vec<u64> = (0..3).map(|_| n / 10 + rng.next() % (n * 8 / 10)).collect();
        k.sort_unstable();
        k.into()
    };
    eprintln!("TWIG_MQTT_DUR_SEED={seed} kills after acks {kills:?}");

    let (hub, _store) = js_hub();
    create_stream(&hub, "EDGE", "orders.>").await;
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let mut t = twig(dir.path(), Some(&hub), mqtt_port);

    let mut tally = Tally::default();
    let mut next = 0u64;
    let mut connections = 0;
    let t0 = Instant::now();
    while next < n {
        assert!(t0.elapsed() < RUN_DEADLINE, "readings stuck at {next}");
        connections += 1;
        let mut o = MqttOptions::new("meter-1", "127.0.0.1", mqtt_port);
        o.set_keep_alive(Duration::from_secs(10));
        o.set_inflight(64);
        let (client, mut el) = AsyncClient::new(o, 256);
        // Readings handed to the client, in order: rumqttc sends requests in order, so the
        // k-th `Outgoing::Publish` is the k-th of these.
        let (feed_tx, mut feed_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let from = next;
        let feeder = tokio::spawn(async move {
            for i in from..n {
                if feed_tx.send(i).is_err()
                    || client
                        .publish(
                            format!("orders/m/{}", i % 7),
                            QoS::AtLeastOnce,
                            false,
                            reading(i),
                        )
                        .await
                        .is_err()
                {
                    return;
                }
            }
        });
        let mut queued: VecDeque<u64> = VecDeque::new();
        let mut by_pkid: HashMap<u16, u64> = HashMap::new();
        let mut connected = false;
        loop {
            let ev = match tokio::time::timeout(STEP, el.poll()).await {
                Ok(Ok(ev)) => ev,
                // The connection ended (killed twig), or twig is not up yet.
                Ok(Err(_)) => break,
                Err(_) => panic!("device event loop stalled at reading {next}"),
            };
            match ev {
                Event::Incoming(Packet::ConnAck(_)) => connected = true,
                Event::Outgoing(Outgoing::Publish(pkid)) => {
                    while let Ok(i) = feed_rx.try_recv() {
                        queued.push_back(i);
                    }
                    let i = queued
                        .pop_front()
                        .expect("a publish the feeder handed over");
                    by_pkid.insert(pkid, i);
                    tally.sent.insert(i);
                    next = i + 1;
                }
                Event::Incoming(Packet::PubAck(a)) => {
                    let i = by_pkid.remove(&a.pkid).expect("PUBACK of a sent packet id");
                    tally.acked.insert(i);
                    if kills
                        .front()
                        .is_some_and(|&k| tally.acked.len() as u64 >= k)
                    {
                        kills.pop_front();
                        t.kill_and_restart_mqtt(mqtt_port);
                    }
                }
                _ => {}
            }
            if next >= n && by_pkid.is_empty() && connected {
                break;
            }
        }
        feeder.abort();
        // Unacknowledged readings of a dead connection are not sent again: each one is
        // in the stream at most once, and the acknowledged ones exactly once.
        if !connected {
            // twig restarting: the next connection attempt waits a little.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(kills.is_empty(), "kills left {kills:?}");
    eprintln!(
        "{} readings sent, {} acknowledged, over {connections} connections",
        tally.sent.len(),
        tally.acked.len()
    );

    // The hub's stream holds every acknowledged reading exactly once, and nothing twice.
    let js = jetstream::new(connect(&hub.client_url()).await);
    let deadline = Instant::now() + RUN_DEADLINE;
    loop {
        let s = forward::stream_state(&t);
        if s["backlog"] == 0 && s["in_flight"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "backlog not drained: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = read_back(&js, "EDGE").await;
    let mut seen = BTreeSet::new();
    for (i, id) in &got {
        assert!(seen.insert(*i), "reading {i} is in the hub stream twice");
        assert!(tally.sent.contains(i), "reading {i} was never sent");
        assert!(id.starts_with("gw1.ORDERS."), "reading {i} has id {id:?}");
    }
    let missing: Vec<_> = tally.acked.difference(&seen).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged readings are not in the hub stream, e.g. {missing:?}",
        tally.acked.difference(&seen).count()
    );
    assert!(
        tally.acked.len() as u64 >= n - 3 * 64,
        "too few acknowledged"
    );
}

#[tokio::test]
async fn retained_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let mut t = twig(dir.path(), None, mqtt_port);
    let mut d = v4::dev(mqtt_port, "ret-pub").await;
    for i in 0..20 {
        d.client
            .publish(
                format!("state/dev{i}"),
                QoS::AtLeastOnce,
                true,
                format!("on-{i}"),
            )
            .await
            .unwrap();
        d.wait(|p| matches!(p, Packet::PubAck(_))).await;
    }
    // An empty retained message clears one.
    d.client
        .publish("state/dev7", QoS::AtLeastOnce, true, Vec::new())
        .await
        .unwrap();
    d.wait(|p| matches!(p, Packet::PubAck(_))).await;
    t.kill_and_restart_mqtt(mqtt_port);

    let mut s = v4::dev(mqtt_port, "ret-sub").await;
    s.subscribe("state/+", QoS::AtLeastOnce).await;
    let mut got = BTreeSet::new();
    for _ in 0..19 {
        let p = s.publish().await;
        assert!(p.retain, "{p:?}");
        got.insert((
            p.topic.clone(),
            String::from_utf8(p.payload.to_vec()).unwrap(),
        ));
    }
    s.quiet().await;
    let want: BTreeSet<_> = (0..20)
        .filter(|&i| i != 7)
        .map(|i| (format!("state/dev{i}"), format!("on-{i}")))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_persistent_session_and_its_queue_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let mut t = twig(dir.path(), None, mqtt_port);
    let lasting = |id: &str| {
        let mut o = v4::options(mqtt_port, id);
        o.set_clean_session(false);
        o
    };
    {
        let mut s = v4::connect(lasting("valve-9")).await;
        s.subscribe("cmd/valve-9/#", QoS::AtLeastOnce).await;
        s.client.disconnect().await.unwrap();
        tokio::time::timeout(STEP, s.closed.recv())
            .await
            .expect("disconnected");
    }
    let mut p = v4::dev(mqtt_port, "console").await;
    for i in 0..10 {
        p.client
            .publish(
                "cmd/valve-9/set",
                QoS::AtLeastOnce,
                false,
                format!("pos-{i}"),
            )
            .await
            .unwrap();
        p.wait(|p| matches!(p, Packet::PubAck(_))).await;
    }
    // The publisher's PUBACK came after the offline session's store commit: on flash.
    assert_eq!(t.monitor("/mqttz")["listener"]["stored_queued"], 10);
    t.kill_and_restart_mqtt(mqtt_port);
    assert_eq!(t.monitor("/mqttz")["listener"]["stored_queued"], 10);

    let (client, mut el) = AsyncClient::new(lasting("valve-9"), 10);
    let mut got = Vec::new();
    let deadline = Instant::now() + STEP;
    let mut present = None;
    while got.len() < 10 {
        assert!(Instant::now() < deadline, "got {got:?}");
        match tokio::time::timeout(STEP, el.poll()).await.expect("event") {
            Ok(Event::Incoming(Packet::ConnAck(a))) => present = Some(a.session_present),
            Ok(Event::Incoming(Packet::Publish(m))) => {
                assert_eq!(m.qos, QoS::AtLeastOnce);
                got.push(String::from_utf8(m.payload.to_vec()).unwrap());
            }
            Ok(_) => {}
            Err(e) => panic!("device connection ended: {e}"),
        }
    }
    drop(client);
    assert_eq!(present, Some(true), "the session was kept");
    let want: Vec<String> = (0..10).map(|i| format!("pos-{i}")).collect();
    assert_eq!(got, want);
}

/// QoS 2 from a device, twig killed after its PUBREC: the device sends PUBREL to the new
/// twig, gets PUBCOMP, and a NATS subscriber gets the message once (not again on PUBREL).
#[tokio::test]
async fn qos2_is_exactly_once_across_a_kill_after_pubrec() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let mut t = twig(dir.path(), None, mqtt_port);
    let nc = connect(&t.url()).await;
    let mut sub = nc.subscribe("alarm.>").await.unwrap();
    sync(&nc).await;

    // A raw 3.1.1 device, so the test decides when each packet goes.
    let connect_packet = |id: &str| {
        let mut v = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x00, 0x00, 0x0a];
        v.extend_from_slice(&(id.len() as u16).to_be_bytes());
        v.extend_from_slice(id.as_bytes());
        let mut p = vec![0x10, v.len() as u8];
        p.extend(v);
        p
    };
    let open = |id: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", mqtt_port)).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        s.write_all(&connect_packet(id)).unwrap();
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).unwrap();
        assert_eq!(ack[0], 0x20, "CONNACK {ack:?}");
        s
    };
    // clean session 0 keeps the QoS 2 state: CONNECT flags 0x00 is clean_session = false.
    let mut s = open("siren");
    let topic = b"alarm/fire";
    let mut publish = vec![0x34, (2 + topic.len() + 2 + 4) as u8, 0, topic.len() as u8];
    publish.extend_from_slice(topic);
    publish.extend_from_slice(&[0x00, 0x07]);
    publish.extend_from_slice(b"FIRE");
    s.write_all(&publish).unwrap();
    let mut rec = [0u8; 4];
    s.read_exact(&mut rec).unwrap();
    assert_eq!(rec, [0x50, 0x02, 0x00, 0x07], "PUBREC");
    let first = next(&mut sub).await;
    assert_eq!(&first.payload[..], b"FIRE");

    t.kill_and_restart_mqtt(mqtt_port);
    let nc = connect(&t.url()).await;
    let mut sub = nc.subscribe("alarm.>").await.unwrap();
    sync(&nc).await;
    let mut s = open("siren");
    // The device retries the PUBLISH with DUP (it does not know the PUBREC was kept), then
    // sends PUBREL.
    publish[0] |= 0x08;
    s.write_all(&publish).unwrap();
    s.read_exact(&mut rec).unwrap();
    assert_eq!(rec, [0x50, 0x02, 0x00, 0x07], "PUBREC again");
    s.write_all(&[0x62, 0x02, 0x00, 0x07]).unwrap();
    let mut comp = [0u8; 4];
    s.read_exact(&mut comp).unwrap();
    assert_eq!(comp, [0x70, 0x02, 0x00, 0x07], "PUBCOMP");
    assert_quiet(&mut sub).await;
}
