//! The MQTT bridge end to end: a real mosquitto (Debian's, with `configs/mosquitto.conf`), a
//! real nats-server hub, the twig binary, rumqttc devices and async-nats clients.
//!
//! - a device's publish reaches NATS subscribers on twig and on the hub, with nats-server's
//!   MQTT headers; a NATS publish (from twig or the hub) reaches MQTT subscribers with the
//!   export's QoS and retain flag, and the bridge does not loop its own messages;
//! - mosquitto restarted mid-stream while it holds messages for a frozen twig: the bridge
//!   reconnects, no QoS 1 message is lost;
//! - twig killed (-9) with QoS 1 messages in flight and restarted: every message arrives, each
//!   exactly once in twig's stream (redeliveries de-duplicated by `Nats-Msg-Id`) and in the
//!   hub's JetStream stream it forwards to;
//! - the mapping edge cases (`.` in topics, empty levels, `$`-topics, wildcard characters)
//!   behave as nats-server's, row by row from twig-core's tables;
//! - the bridge over TLS (`mqtts://`) with a client certificate.
//!
//! Run: `cargo test -p twig-tests --test mqtt_bridge` (needs `mosquitto`; tests/run installs it).

#[path = "common/uplink.rs"]
mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use twig_tests::hub::{Hub, HubOptions, HubVersion};
use twig_tests::mosquitto::Mosquitto;

/// A device: an rumqttc client whose event loop runs in a task, reconnecting on errors.
struct Device {
    client: AsyncClient,
    publishes: UnboundedReceiver<Publish>,
    connacks: UnboundedReceiver<()>,
}

impl Device {
    /// Connects `id` to the broker on `port` (persistent session unless `clean`).
    async fn connect(port: u16, id: &str, clean: bool) -> Device {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_clean_session(clean);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_inflight(100);
        let (client, mut event_loop) = AsyncClient::new(o, 1000);
        let (ptx, publishes) = unbounded_channel();
        let (ctx, mut connacks) = unbounded_channel();
        tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if ptx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if ctx.send(()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // The broker restarts in some tests: retry (bounded by the test's deadlines).
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(STEP, connacks.recv())
            .await
            .expect("device CONNACK in time");
        Device {
            client,
            publishes,
            connacks,
        }
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.client.subscribe(filter, qos).await.unwrap();
    }

    async fn next(&mut self) -> Publish {
        tokio::time::timeout(STEP, self.publishes.recv())
            .await
            .expect("no MQTT message within the deadline")
            .expect("device loop ended")
    }

    async fn publish(&self, topic: &str, qos: QoS, retain: bool, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, qos, retain, payload.into())
            .await
            .unwrap();
    }
}

/// The `[mqtt]` section for a broker, with `body` (imports, exports) appended.
fn mqtt_section(broker: &Mosquitto, client_id: &str, body: &str) -> String {
    format!(
        "[mqtt]\nurls = [\"{}\"]\nclient_id = \"{client_id}\"\nkeepalive = \"5s\"\n{body}\n",
        broker.url()
    )
}

fn leaf_section(hub: &Hub) -> String {
    format!(
        "[leafnodes]\n[[leafnodes.remotes]]\nurls = [\"{}\"]\n",
        hub.leaf_url()
    )
}

/// Waits until `/mqttz` shows the bridge connected with at least `connects` connections.
async fn bridge_up(twig: &Twig, connects: u64) {
    eventually("the bridge connects to the broker", || {
        let z = twig.monitor("/mqttz");
        z["connected"] == true && z["connects"].as_u64().unwrap_or(0) >= connects
    })
    .await;
}

/// Publishes `probe` from the device until a NATS subscriber sees it: the bridge's
/// subscription is in place at the broker.
async fn import_ready(device: &Device, topic: &str, sub: &mut async_nats::Subscriber) {
    let deadline = Instant::now() + STEP;
    loop {
        device.publish(topic, QoS::AtMostOnce, false, "probe").await;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), {
            use futures::StreamExt;
            sub.next()
        })
        .await
        {
            // Let stragglers arrive, then drop them.
            while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), {
                use futures::StreamExt;
                sub.next()
            })
            .await
            {}
            return;
        }
        assert!(Instant::now() < deadline, "the import never delivered");
    }
}

#[tokio::test]
async fn a_device_publish_reaches_nats_on_twig_and_on_the_hub() {
    // A retained reading is on the broker before twig first connects: MQTT 3.1.1 marks a
    // message retained only when it is delivered for a new subscription, so that is when the
    // bridge sees the flag. The broker is stopped (it saves the retained message) until the
    // NATS subscribers are in place.
    let mut broker = Mosquitto::start();
    {
        let mut d = Device::connect(broker.port, "door", true).await;
        d.subscribe("sensors/room1/door", QoS::AtLeastOnce).await;
        d.publish("sensors/room1/door", QoS::AtLeastOnce, true, "open")
            .await;
        assert_eq!(d.next().await.payload, "open", "the broker has it");
    }
    broker.stop();
    let hub = Hub::start(HubVersion::V2_15);
    let conf = format!(
        "{}{}",
        leaf_section(&hub),
        mqtt_section(
            &broker,
            "twig-in",
            "[[mqtt.import]]\ntopic = \"sensors/#\"\nqos = 1\n"
        )
    );
    let twig = Twig::with_config(broker.dir(), &conf);
    twig.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let tc = connect(&twig.url()).await;
    let mut at_twig = tc.subscribe("sensors.>").await.unwrap();
    tc.flush().await.unwrap();
    let mut at_hub = hc.subscribe("sensors.>").await.unwrap();
    interest_ready(&hc, &tc).await;
    broker.restart();
    bridge_up(&twig, 1).await;

    for sub in [&mut at_twig, &mut at_hub] {
        let m = next(sub).await;
        assert_eq!(
            (m.subject.as_str(), &m.payload[..]),
            ("sensors.room1.door", &b"open"[..])
        );
        let h = m.headers.expect("MQTT-originated messages carry headers");
        assert_eq!(h.get("Nmqtt-Pub").unwrap().as_str(), "1");
        assert_eq!(h.get("Twig-Mqtt-Retain").unwrap().as_str(), "1");
    }
    // The retained message came after the SUBACK: the subscription is in place.
    let device = Device::connect(broker.port, "dev-1", true).await;
    device
        .publish("sensors/room1/temp", QoS::AtLeastOnce, false, "21.5")
        .await;
    device
        .publish("sensors/room1/hum", QoS::AtMostOnce, false, "40")
        .await;
    for sub in [&mut at_twig, &mut at_hub] {
        let m = next(sub).await;
        assert_eq!(
            (m.subject.as_str(), &m.payload[..]),
            ("sensors.room1.temp", &b"21.5"[..])
        );
        let h = m.headers.unwrap();
        assert_eq!(h.get("Nmqtt-Pub").unwrap().as_str(), "1");
        assert!(h.get("Twig-Mqtt-Retain").is_none());
        let m = next(sub).await;
        assert_eq!(m.subject.as_str(), "sensors.room1.hum");
        assert_eq!(m.headers.unwrap().get("Nmqtt-Pub").unwrap().as_str(), "0");
    }
    assert_quiet(&mut at_twig).await;
    assert_quiet(&mut at_hub).await;
    eventually("every QoS 1 message acknowledged", || {
        let z = twig.monitor("/mqttz");
        z["acked"].as_u64() == Some(2) && z["pending_acks"] == 0
    })
    .await;
    let z = twig.monitor("/mqttz");
    assert_eq!(z["in_msgs"], 3, "{z}");
    assert_eq!(z["imports"][0], "sensors/#");
}

#[tokio::test]
async fn a_nats_publish_reaches_mqtt_subscribers_with_qos_and_retain_and_does_not_loop() {
    let hub = Hub::start(HubVersion::V2_15);
    let broker = Mosquitto::start();
    // The import overlaps the export on purpose: the broker echoes the export back once
    // (MQTT 3.1.1 has no "no local"), and the bridge's owner rule stops it there.
    let conf = format!(
        "{}{}",
        leaf_section(&hub),
        mqtt_section(
            &broker,
            "twig-out",
            "[[mqtt.export]]\nsubject = \"cmd.>\"\nqos = 1\nretain = true\n\
             [[mqtt.import]]\ntopic = \"cmd/#\"\nqos = 1\n"
        )
    );
    let twig = Twig::with_config(broker.dir(), &conf);
    twig.wait_up(1);
    bridge_up(&twig, 1).await;
    let tc = connect(&twig.url()).await;
    let hc = connect(&hub.client_url()).await;
    let mut lamp = Device::connect(broker.port, "lamp", true).await;
    lamp.subscribe("cmd/#", QoS::AtLeastOnce).await;
    let mut echo = tc.subscribe("cmd.>").await.unwrap();
    tc.flush().await.unwrap();

    // From the hub: repeat until the export's interest has reached it.
    let deadline = Instant::now() + STEP;
    let first = loop {
        hc.publish("cmd.probe", "p".into()).await.unwrap();
        hc.flush().await.unwrap();
        if let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(100), lamp.publishes.recv()).await
        {
            break p;
        }
        assert!(Instant::now() < deadline, "hub -> MQTT never delivered");
    };
    assert_eq!(first.topic, "cmd/probe");
    while tokio::time::timeout(Duration::from_millis(300), lamp.publishes.recv())
        .await
        .is_ok()
    {}
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), {
        use futures::StreamExt;
        echo.next()
    })
    .await
    {}

    tc.publish("cmd.lamp.set", "on".into()).await.unwrap();
    tc.publish("cmd.a//b", "dot".into()).await.unwrap();
    tc.flush().await.unwrap();
    let p = lamp.next().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("cmd/lamp/set", &b"on"[..])
    );
    assert_eq!(p.qos, QoS::AtLeastOnce);
    let p = lamp.next().await;
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("cmd/a.b", &b"dot"[..]));
    // Exactly once at the device: the echo is not exported again.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), lamp.publishes.recv())
            .await
            .is_err(),
        "an export looped back to the device"
    );
    // NATS sees each original and one echo from the broker (with the MQTT header).
    let mut seen = Vec::new();
    for _ in 0..4 {
        let m = next(&mut echo).await;
        let mqtt = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nmqtt-Pub"))
            .is_some();
        seen.push((m.subject.to_string(), mqtt));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("cmd.a//b".to_string(), false),
            ("cmd.a//b".to_string(), true),
            ("cmd.lamp.set".to_string(), false),
            ("cmd.lamp.set".to_string(), true),
        ]
    );
    assert_quiet(&mut echo).await;

    // Retained: a device subscribing later gets the last command with the retain flag.
    let mut late = Device::connect(broker.port, "late-lamp", true).await;
    late.subscribe("cmd/lamp/set", QoS::AtLeastOnce).await;
    let p = late.next().await;
    assert_eq!((p.topic.as_str(), p.retain), ("cmd/lamp/set", true));
    let z = twig.monitor("/mqttz");
    assert!(z["out_msgs"].as_u64().unwrap() >= 3, "{z}");
    assert_eq!(z["exports"][0]["dropped"], 0, "{z}");
}

/// Collects numbered payloads (`n-<i>`) from `sub` until every `0..total` was seen.
async fn collect_numbers(sub: &mut async_nats::Subscriber, total: usize, within: Duration) {
    use futures::StreamExt;
    let mut seen: HashSet<usize> = HashSet::new();
    let deadline = Instant::now() + within;
    while seen.len() < total {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, sub.next()).await;
        let Ok(Some(m)) = m else {
            let missing: Vec<usize> = (0..total).filter(|i| !seen.contains(i)).take(10).collect();
            panic!(
                "only {} of {total} messages arrived; missing e.g. {missing:?}",
                seen.len()
            );
        };
        let text = String::from_utf8_lossy(&m.payload).to_string();
        if let Some(i) = text.strip_prefix("n-").and_then(|i| i.parse().ok()) {
            seen.insert(i);
        }
    }
}

#[tokio::test]
async fn mosquitto_restarted_mid_stream_loses_no_qos1_message() {
    let mut broker = Mosquitto::start();
    let conf = mqtt_section(
        &broker,
        "twig-restart",
        "reconnect_delay_max = \"500ms\"\n[[mqtt.import]]\ntopic = \"meter/#\"\nqos = 1\n",
    );
    let twig = Twig::with_config(broker.dir(), &conf);
    bridge_up(&twig, 1).await;
    let tc = connect(&twig.url()).await;
    let mut sub = tc.subscribe("meter.>").await.unwrap();
    tc.flush().await.unwrap();
    let device = Device::connect(broker.port, "meter-1", false).await;
    import_ready(&device, "meter/probe", &mut sub).await;

    const N: usize = 3000;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let publisher = tokio::spawn(async move {
        let mut device = device;
        for i in 0..N {
            device
                .publish("meter/kwh", QoS::AtLeastOnce, false, format!("n-{i}"))
                .await;
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let _ = done_tx.send(());
        // Keep the device (and its retransmissions) alive until the test is done.
        while device.connacks.recv().await.is_some() {}
    });
    eventually("a third of the messages reached twig", || {
        twig.monitor("/mqttz")["in_msgs"].as_u64().unwrap_or(0) > (N / 3) as u64
    })
    .await;
    // Freeze twig so the broker has to hold the rest for twig's session (queued, and in flight
    // on the frozen socket), then restart the broker under it: only a persistent session in a
    // persisted broker keeps them (the test fails with `clean_session = true`).
    let frozen = Frozen::stop(twig.sut.pid());
    tokio::time::timeout(Duration::from_secs(60), done_rx)
        .await
        .expect("the device published everything")
        .unwrap();
    broker.restart();
    drop(frozen);
    collect_numbers(&mut sub, N, Duration::from_secs(60)).await;
    bridge_up(&twig, 2).await;
    let z = twig.monitor("/mqttz");
    assert!(z["reconnects"].as_u64().unwrap() >= 1, "{z}");
    assert!(z["disconnects"].as_u64().unwrap() >= 1, "{z}");
    publisher.abort();
}

/// A process stopped with SIGSTOP until dropped (SIGCONT), also when the test fails.
struct Frozen(u32);

impl Frozen {
    fn stop(pid: u32) -> Frozen {
        signal("-STOP", pid);
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

fn signal(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

#[tokio::test]
async fn twig_killed_with_qos1_in_flight_loses_nothing_and_stores_each_once() {
    // A hub with JetStream and a stream on the same subjects: twig's stream forwards to it.
    let (hub, _hub_store, hjs) = js_hub_with_stream("HUBMETERS", "meter.>").await;
    let broker = Mosquitto::start();
    let file = broker.dir().join("meters.stream");
    let size: u64 = 1024 * 1024;
    let conf = format!(
        "server_name = \"gw-mqtt\"\nstore_dir = {:?}\n{}[[streams]]\nname = \"METERS\"\nsubjects = [\"meter.>\"]\nfile = {:?}\nmax_bytes = \"1MiB\"\n{}",
        broker.dir().display().to_string(),
        leaf_section(&hub),
        file.display().to_string(),
        mqtt_section(
            &broker,
            "twig-crash",
            "reconnect_delay_max = \"200ms\"\n[[mqtt.import]]\ntopic = \"meter/#\"\nqos = 1\n"
        )
    );
    let mut twig = Twig::with_config(broker.dir(), &conf);
    bridge_up(&twig, 1).await;
    let device = Device::connect(broker.port, "meter-2", false).await;

    const N: usize = 3000;
    let publisher = tokio::spawn(async move {
        let mut device = device;
        for i in 0..N {
            device
                .publish("meter/kwh", QoS::AtLeastOnce, false, format!("n-{i}"))
                .await;
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        while device.connacks.recv().await.is_some() {}
    });
    eventually("a third of the messages reached twig", || {
        twig.monitor("/mqttz")["in_msgs"].as_u64().unwrap_or(0) > (N / 3) as u64
    })
    .await;
    // kill -9 with QoS 1 messages in flight (received, some stored, not all acknowledged),
    // then start again on the same port: the broker redelivers what was not acknowledged.
    twig.sut.restart();
    bridge_up(&twig, 1).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jsz = twig.monitor("/jsz");
        let stored = jsz["streams"][0]["messages"].as_u64().unwrap_or(0);
        let pending = twig.monitor("/mqttz")["pending_acks"].as_u64().unwrap_or(1);
        if stored >= N as u64 && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stream holds {stored} of {N} messages: {jsz}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The hub's stream: every message once (twig's forwarder de-duplicates by its own ids,
    // and twig's stream held each MQTT message once).
    wait_hub_count(&hjs, "HUBMETERS", N, Duration::from_secs(60), &twig).await;
    let at_hub = hub_payloads(&hjs, "HUBMETERS", N).await;
    for i in 0..N {
        let c = at_hub.get(&format!("n-{i}")).copied().unwrap_or(0);
        assert_eq!(c, 1, "message n-{i} is {c} times in the hub stream");
    }
    let jsz = twig.monitor("/jsz");
    twig.sut.stop();
    let payloads: Vec<String> = twig_tests::stream_file::records(&file, size)
        .into_iter()
        .map(|(_, p)| String::from_utf8_lossy(&p).into_owned())
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in payloads {
        *counts.entry(p).or_default() += 1;
    }
    for i in 0..N {
        let c = counts.get(&format!("n-{i}")).copied().unwrap_or(0);
        assert_eq!(c, 1, "message n-{i} stored {c} times; {jsz}");
    }
    publisher.abort();
}

/// A 2.15 hub with JetStream (its store in the returned dir) and a stream `name` on `subjects`.
async fn js_hub_with_stream(
    name: &str,
    subjects: &str,
) -> (Hub, tempfile::TempDir, async_nats::jetstream::Context) {
    let store = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(
        HubVersion::V2_15,
        &HubOptions {
            extra: format!(
                "jetstream {{\n  store_dir: {:?}\n}}\n",
                store.path().display().to_string()
            ),
            ..HubOptions::default()
        },
    );
    let js = async_nats::jetstream::new(connect(&hub.client_url()).await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.into(),
        subjects: vec![subjects.into()],
        ..Default::default()
    })
    .await
    .expect("create the hub stream");
    (hub, store, js)
}

/// Waits until the hub stream `name` holds `n` messages (never more), within `within`.
async fn wait_hub_count(
    js: &async_nats::jetstream::Context,
    name: &str,
    n: usize,
    within: Duration,
    twig: &Twig,
) {
    let deadline = Instant::now() + within;
    loop {
        let got = match js.get_stream(name).await {
            Ok(mut st) => st.info().await.map_or(0, |i| i.state.messages),
            Err(_) => 0,
        };
        assert!(got <= n as u64, "the hub stream holds {got} > {n} messages");
        if got == n as u64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the hub stream holds {got} of {n}; twig: {} {}",
            twig.monitor("/mqttz"),
            twig.monitor("/jsz")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How often each payload is in a hub stream of `total` messages (read with an ordered
/// consumer).
async fn hub_payloads(
    js: &async_nats::jetstream::Context,
    name: &str,
    total: usize,
) -> BTreeMap<String, usize> {
    use futures::StreamExt;
    let stream = js.get_stream(name).await.unwrap();
    let c = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut msgs = c.messages().await.unwrap();
    let mut counts = BTreeMap::new();
    for _ in 0..total {
        let m = tokio::time::timeout(STEP, msgs.next())
            .await
            .expect("next hub message in time")
            .expect("stream open")
            .expect("message");
        *counts
            .entry(String::from_utf8_lossy(&m.payload).into_owned())
            .or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn mapping_edge_cases_behave_as_nats_server() {
    let broker = Mosquitto::start();
    let conf = mqtt_section(
        &broker,
        "twig-map",
        "[[mqtt.import]]\ntopic = \"#\"\nqos = 0\nsubject_prefix = \"in.\"\n\
         [[mqtt.import]]\ntopic = \"$foo/#\"\nqos = 0\nsubject_prefix = \"in.\"\n\
         [[mqtt.export]]\nsubject = \"out.>\"\nstrip_prefix = \"out.\"\n",
    );
    let twig = Twig::with_config(broker.dir(), &conf);
    bridge_up(&twig, 1).await;
    let tc = connect(&twig.url()).await;
    let mut inbound = tc.subscribe("in.>").await.unwrap();
    tc.flush().await.unwrap();
    let mut device = Device::connect(broker.port, "edge", true).await;
    import_ready(&device, "probe", &mut inbound).await;

    // MQTT -> NATS: every topic twig-core maps, as nats-server maps it. `$SYS` is the
    // broker's own; clients do not publish there.
    let rows: Vec<_> = twig_core::mqtt::testdata::PUBLISH
        .iter()
        .filter(|c| c.subject.is_ok() && !c.topic.starts_with("$SYS"))
        // mosquitto refuses control characters in topics (it closes the client).
        .filter(|c| !c.topic.bytes().any(|b| b < 0x20))
        .collect();
    for (i, c) in rows.iter().enumerate() {
        device
            .publish(c.topic, QoS::AtLeastOnce, false, format!("row-{i}"))
            .await;
    }
    // Refused by the mapping (nats-server closes such a client): counted, not delivered.
    device.publish("a b", QoS::AtLeastOnce, false, "bad").await;
    device.publish("end", QoS::AtLeastOnce, false, "end").await;
    let mut got = BTreeMap::new();
    loop {
        let m = next(&mut inbound).await;
        let p = String::from_utf8_lossy(&m.payload).to_string();
        assert_ne!(
            p, "bad",
            "an unmappable topic was published as {}",
            m.subject
        );
        if p == "end" {
            break;
        }
        got.insert(p, m.subject.to_string());
    }
    for (i, c) in rows.iter().enumerate() {
        let want = format!("in.{}", c.subject.unwrap());
        assert_eq!(
            got.get(&format!("row-{i}")),
            Some(&want),
            "topic {:?}",
            c.topic
        );
    }
    eventually("the refused topic is counted", || {
        twig.monitor("/mqttz")["unmapped"].as_u64().unwrap_or(0) >= 1
    })
    .await;

    // NATS -> MQTT: each subject arrives under nats-server's topic. A top-level `#` does not
    // see `$` topics, so the device subscribes to those separately.
    device.subscribe("#", QoS::AtLeastOnce).await;
    device.subscribe("$foo/#", QoS::AtLeastOnce).await;
    let rows: Vec<_> = twig_core::mqtt::testdata::SUBJECTS
        .iter()
        .filter(|c| c.topic.is_ok_and(|t| !t.contains(['+', '#'])))
        .collect();
    // The device's subscriptions are in place once a probe comes back.
    let deadline = Instant::now() + STEP;
    loop {
        tc.publish("out.probe", "probe".into()).await.unwrap();
        if let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(100), device.publishes.recv()).await
            && p.topic == "probe"
        {
            break;
        }
        assert!(Instant::now() < deadline, "NATS -> MQTT never delivered");
    }
    for (i, c) in rows.iter().enumerate() {
        tc.publish(format!("out.{}", c.subject), format!("s-{i}").into())
            .await
            .unwrap();
    }
    tc.publish("out.end", "end".into()).await.unwrap();
    let mut got = BTreeMap::new();
    loop {
        let p = device.next().await;
        let payload = String::from_utf8_lossy(&p.payload).to_string();
        if payload == "end" {
            break;
        }
        got.insert(payload, p.topic);
    }
    for (i, c) in rows.iter().enumerate() {
        assert_eq!(
            got.get(&format!("s-{i}")).map(String::as_str),
            c.topic.ok(),
            "subject {:?}",
            c.subject
        );
    }
}

#[tokio::test]
async fn the_bridge_connects_over_tls_with_a_client_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let certs = tempfile::tempdir().unwrap();
    // mosquitto (dropping to its own user when started as root) must read the files.
    std::fs::set_permissions(certs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let [ca, cert, key, client, client_key] =
        twig_tests::pki::write(certs.path(), "broker test CA", "twig-bridge");
    let tls_port = twig_tests::harness::free_port();
    let broker = Mosquitto::start_with(&format!(
        "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
        ca.display(),
        cert.display(),
        key.display()
    ));
    let q = |p: &std::path::PathBuf| format!("{:?}", p.display().to_string());
    let conf = format!(
        "[mqtt]\nurls = [\"mqtts://127.0.0.1:{tls_port}\"]\nclient_id = \"twig-tls\"\n\
         tls = {{ ca_file = {}, cert_file = {}, key_file = {} }}\n\
         [[mqtt.import]]\ntopic = \"secure/#\"\nqos = 1\n",
        q(&ca),
        q(&client),
        q(&client_key)
    );
    let twig = Twig::with_config(broker.dir(), &conf);
    bridge_up(&twig, 1).await;
    assert_eq!(
        twig.monitor("/mqttz")["url"],
        format!("mqtts://127.0.0.1:{tls_port}")
    );
    let tc = connect(&twig.url()).await;
    let mut sub = tc.subscribe("secure.>").await.unwrap();
    tc.flush().await.unwrap();
    let device = Device::connect(broker.port, "plain-device", true).await;
    import_ready(&device, "secure/probe", &mut sub).await;
    device
        .publish("secure/door", QoS::AtLeastOnce, false, "locked")
        .await;
    let m = next(&mut sub).await;
    assert_eq!(
        (m.subject.as_str(), &m.payload[..]),
        ("secure.door", &b"locked"[..])
    );

    // A broker certificate that does not chain to the configured CA is refused.
    let wrong = conf
        .replacen(&q(&ca), &q(&cert), 1)
        .replace("twig-tls", "twig-wrong-ca");
    let other = Twig::with_config(broker.dir(), &wrong);
    eventually("the bridge reports the failed handshake", || {
        let z = other.monitor("/mqttz");
        z["disconnects"].as_u64().unwrap_or(0) >= 2 && z["last_error"].is_string()
    })
    .await;
    let z = other.monitor("/mqttz");
    assert_eq!(
        (&z["connected"], &z["connects"]),
        (&false.into(), &0.into()),
        "{z}"
    );
}

/// A stream that refuses new messages when full (`when_full = "refuse"`) while the hub is
/// away: the bridge holds the PUBACKs of what its stream refused (the broker keeps those and
/// everything after them) and offers them again; once the hub is back and the forwarder has
/// made room, every message reaches the hub stream exactly once. Acknowledging a refused
/// message would have lost it.
#[tokio::test]
async fn a_full_refusing_stream_holds_pubacks_until_the_forwarder_makes_room() {
    let (mut hub, _hub_store, hjs) = js_hub_with_stream("HUBFULL", "full.>").await;
    hub.stop();

    let broker = Mosquitto::start();
    let conf = format!(
        "server_name = \"gw-full\"\nstore_dir = {:?}\n[leafnodes]\nreconnect_delay_max = \"250ms\"\n\
         [[leafnodes.remotes]]\nurls = [\"{}\"]\n\
         [[streams]]\nname = \"FULL\"\nsubjects = [\"full.>\"]\nmax_bytes = \"256KiB\"\nwhen_full = \"refuse\"\n{}",
        broker.dir().display().to_string(),
        hub.leaf_url(),
        mqtt_section(
            &broker,
            "twig-full",
            "[[mqtt.import]]\ntopic = \"full/#\"\nqos = 1\n"
        )
    );
    let twig = Twig::with_config(broker.dir(), &conf);
    bridge_up(&twig, 1).await;
    let device = Device::connect(broker.port, "meter-full", false).await;

    // About 2.5 times what the stream file holds.
    const N: usize = 1500;
    let pad = "x".repeat(400);
    for i in 0..N {
        device
            .publish("full/w", QoS::AtLeastOnce, false, format!("f-{i}-{pad}"))
            .await;
    }
    eventually(
        "the stream refused messages and the bridge held their PUBACKs",
        || {
            let z = twig.monitor("/mqttz");
            let s = twig.monitor("/jsz")["streams"][0].clone();
            z["store_failed"].as_u64().unwrap_or(0) > 0
                && z["pending_acks"].as_u64().unwrap_or(0) > 0
                && s["refused"].as_u64().unwrap_or(0) > 0
        },
    )
    .await;

    hub.restart();
    wait_hub_count(&hjs, "HUBFULL", N, Duration::from_secs(90), &twig).await;
    let at_hub = hub_payloads(&hjs, "HUBFULL", N).await;
    for i in 0..N {
        let c = at_hub.get(&format!("f-{i}-{pad}")).copied().unwrap_or(0);
        assert_eq!(c, 1, "message f-{i} is {c} times in the hub stream");
    }
    eventually("every PUBACK sent", || {
        twig.monitor("/mqttz")["pending_acks"].as_u64() == Some(0)
    })
    .await;
}
