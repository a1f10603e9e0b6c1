//! twig's MQTT listener end to end: the twig binary with `[mqtt_listener]`, rumqttc devices
//! (3.1.1 and 5), `mosquitto_pub`/`mosquitto_sub`, async-nats clients.
//!
//! The MQTT-only cases run against mosquitto 2.0 too (`_mosquitto`), so they check MQTT
//! behaviour, not twig's idea of it:
//! - QoS 0/1/2 between devices, delivered at the lower of publish and subscription QoS;
//! - retained messages: kept, sent on subscribe with RETAIN, cleared by an empty one;
//! - a second connection with the same client id takes the session over and closes the first
//!   (MQTT 5: twig tells it with DISCONNECT 0x8E);
//! - `mosquitto_pub`/`mosquitto_sub` at each QoS, 3.1.1 and 5.
//!
//! twig only (NATS on the other side):
//! - devices and NATS clients see each other's messages under nats-server's mapping, with
//!   `Nmqtt-Pub` headers; NATS -> MQTT at the subscription's QoS (nats-server: QoS 0 only);
//!   MQTT 5 request/response both ways (NATS reply subject <-> response topic and correlation
//!   data);
//! - a QoS 1 publish on a stream subject is acknowledged only once its stream stored it: a
//!   stream that refuses gets MQTT 5 PUBACK 0x97 and closes a 3.1.1 connection unacknowledged;
//! - users and passwords from `[authorization]`: a bad password is CONNACK 0x86 / 4;
//! - the log line `Listening for MQTT clients on mqtt://HOST:PORT`.
//!
//! Run: `cargo test -p twig-tests --test mqtt_listener` (needs mosquitto and mosquitto-clients;
//! tests/run installs them).

#[path = "common/uplink.rs"]
mod common;
#[path = "common/mqtt.rs"]
mod mqtt;

use std::time::Duration;

use common::*;
use mqtt::*;
use twig_tests::harness::free_port;

/// Runs an async test body against twig and against mosquitto.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn twig() {
                super::$name(super::Broker::twig()).await
            }
            #[tokio::test]
            async fn mosquitto() {
                super::$name(super::Broker::mosquitto()).await
            }
        }
    };
}

async fn qos_between_devices(b: Broker) {
    use v4::QoS;
    let port = b.port();
    let mut sub = v4::dev(port, "qos-sub").await;
    sub.subscribe("t/#", QoS::ExactlyOnce).await;
    sub.subscribe("low/+", QoS::AtMostOnce).await;
    let publ = v4::dev(port, "qos-pub").await;
    let p5 = v5::dev(port, "qos-pub5").await;
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publ.client
            .publish(format!("t/{i}"), qos, false, format!("m{i}"))
            .await
            .unwrap();
    }
    p5.client
        .publish("t/v5", v5::QoS::ExactlyOnce, false, "from v5")
        .await
        .unwrap();
    publ.client
        .publish("low/x", QoS::ExactlyOnce, false, "capped")
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        let p = sub.publish().await;
        got.push((
            p.topic,
            p.qos,
            String::from_utf8_lossy(&p.payload).into_owned(),
        ));
    }
    // One publisher's messages arrive in order; across publishers, any order.
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("low/x".into(), QoS::AtMostOnce, "capped".into()),
            ("t/0".into(), QoS::AtMostOnce, "m0".into()),
            ("t/1".into(), QoS::AtLeastOnce, "m1".into()),
            ("t/2".into(), QoS::ExactlyOnce, "m2".into()),
            ("t/v5".into(), QoS::ExactlyOnce, "from v5".into()),
        ],
        "{}",
        b.name()
    );
    sub.quiet().await;
    drop(p5);
}
both!(qos_between_devices);

async fn retained_messages(b: Broker) {
    use v4::QoS;
    let port = b.port();
    let mut publ = v4::dev(port, "ret-pub").await;
    for (topic, payload) in [("r/a", "kept a"), ("r/b", "kept b"), ("r/b", "kept b2")] {
        publ.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .unwrap();
        // Acknowledged: the broker has it (twig: on disk).
        publ.wait(|p| matches!(p, v4::Packet::PubAck(_))).await;
    }
    let mut s = v4::dev(port, "ret-sub").await;
    s.subscribe("r/#", QoS::AtLeastOnce).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let p = s.publish().await;
        assert!(
            p.retain,
            "{}: a retained message is sent with RETAIN",
            b.name()
        );
        seen.push((p.topic, String::from_utf8_lossy(&p.payload).into_owned()));
    }
    seen.sort();
    // Replaced, not added.
    assert_eq!(
        seen,
        [
            ("r/a".to_string(), "kept a".to_string()),
            ("r/b".to_string(), "kept b2".to_string())
        ],
        "{}",
        b.name()
    );
    s.quiet().await;
    // A live message to a subscriber is not marked retained (3.1.1 §3.3.1.3).
    let mut live = v4::dev(port, "ret-live").await;
    live.subscribe("r/a", QoS::AtLeastOnce).await;
    let first = live.publish().await;
    assert!(first.retain);
    publ.client
        .publish("r/a", QoS::AtLeastOnce, true, "")
        .await
        .unwrap();
    let cleared = live.publish().await;
    assert_eq!(
        (cleared.payload.len(), cleared.retain),
        (0, false),
        "{}",
        b.name()
    );
    let mut after = v4::dev(port, "ret-after").await;
    after.subscribe("r/#", QoS::AtLeastOnce).await;
    let p = after.publish().await;
    assert_eq!(p.topic, "r/b", "{}: r/a was cleared", b.name());
    after.quiet().await;
}
both!(retained_messages);

async fn takeover(b: Broker) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = b.port();
    // rumqttc's v5 client does not surface a DISCONNECT from the server: the first connection
    // speaks raw MQTT 5 to read it byte for byte.
    let mut first = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let connect: &[u8] = &[
        0x10, 20, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 7, b's', b'a', b'm', b'e',
        b'-', b'i', b'd',
    ];
    assert_eq!(connect.len(), 22);
    first.write_all(connect).await.unwrap();
    let mut head = [0u8; 2];
    tokio::time::timeout(STEP, first.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    let mut body = vec![0u8; usize::from(head[1])];
    first.read_exact(&mut body).await.unwrap();
    assert_eq!(
        (head[0], body[1]),
        (0x20, 0),
        "{}: CONNACK accepted",
        b.name()
    );
    let mut second = v5::dev(port, "same-id").await;
    // The spec: the server closes the first connection (MQTT-3.1.4-3), telling it why with
    // DISCONNECT 0x8E, which twig sends and mosquitto 2.0.11 leaves out.
    let mut rest = Vec::new();
    tokio::time::timeout(STEP, first.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    match b {
        Broker::Twig(..) => assert_eq!(rest, [0xE0, 1, 0x8E]),
        Broker::Mosquitto(_) => assert!(rest.is_empty() || rest == [0xE0, 1, 0x8E], "{rest:x?}"),
    }
    second.subscribe("to/second", v5::QoS::AtLeastOnce).await;
    let other = v5::dev(port, "someone").await;
    other
        .client
        .publish("to/second", v5::QoS::AtLeastOnce, false, "hi")
        .await
        .unwrap();
    assert_eq!(&second.publish().await.payload[..], b"hi", "{}", b.name());
}
both!(takeover);

async fn mosquitto_clients(b: Broker) {
    let port = b.port().to_string();
    for (version, qos) in [
        ("mqttv311", "0"),
        ("mqttv311", "1"),
        ("mqttv311", "2"),
        ("mqttv5", "1"),
        ("mqttv5", "2"),
    ] {
        let topic = format!("cli/{version}/{qos}");
        let sub = mosquitto_client("mosquitto_sub")
            .args([
                "-p", &port, "-V", version, "-q", qos, "-t", &topic, "-C", "2", "-W", "10",
            ])
            .args(["-F", "%t %q %p"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let sub = std::thread::spawn(move || sub.wait_with_output().unwrap());
        // mosquitto_sub says nothing once subscribed: a retained message reaches it whenever
        // it subscribes, and live ones follow until it has two (bounded by its -W 10).
        let publish = |args: &[&str]| {
            let ok = mosquitto_client("mosquitto_pub")
                .args(["-p", &port, "-V", version, "-q", qos, "-t", &topic])
                .args(args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "mosquitto_pub {args:?}");
        };
        publish(&["-r", "-m", "first"]);
        for _ in 0..50 {
            if sub.is_finished() {
                break;
            }
            publish(&["-m", "second"]);
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = sub.join().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{} {version} qos {qos}: {text}", b.name());
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with(&format!("{topic} {qos} "))),
            "{} {version}: {text}",
            b.name()
        );
        assert!(lines.iter().any(|l| l.ends_with(" second")), "{text}");
        // Clear the retained message for the next round.
        mosquitto_client("mosquitto_pub")
            .args(["-p", &port, "-t", &topic, "-r", "-n"])
            .status()
            .unwrap();
    }
}
both!(mosquitto_clients);

#[tokio::test]
async fn nats_clients_and_devices_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let twig = twig_mqtt(dir.path(), free_port(), "", "");
    let port = mqtt_port_of(&twig);
    let nc = connect(&twig.url()).await;
    let mut from_dev = nc.subscribe("dev.>").await.unwrap();
    nc.flush().await.unwrap();
    let d = v4::dev(port, "sensor-1").await;
    for (i, qos) in [
        v4::QoS::AtMostOnce,
        v4::QoS::AtLeastOnce,
        v4::QoS::ExactlyOnce,
    ]
    .into_iter()
    .enumerate()
    {
        d.client
            .publish(format!("dev/1/t{i}"), qos, false, format!("{i}"))
            .await
            .unwrap();
    }
    for i in 0..3 {
        let m = next(&mut from_dev).await;
        assert_eq!(m.subject.as_str(), format!("dev.1.t{i}"));
        assert_eq!(&m.payload[..], format!("{i}").as_bytes());
        let h = m.headers.expect("MQTT headers");
        assert_eq!(
            h.get("Nmqtt-Pub").map(|v| v.as_str()),
            Some(&*i.to_string())
        );
    }
    // nats-server's mapping: `.` in a topic is `//` in the subject.
    d.client
        .publish("dev/a.b", v4::QoS::AtMostOnce, false, "dot")
        .await
        .unwrap();
    assert_eq!(next(&mut from_dev).await.subject.as_str(), "dev.a//b");

    // NATS -> MQTT at the subscription's QoS (1 here, 0 below).
    let mut dev = v4::dev(port, "actuator-1").await;
    dev.subscribe("cmd/#", v4::QoS::AtLeastOnce).await;
    dev.subscribe("info/+", v4::QoS::AtMostOnce).await;
    nc.publish("cmd.valve.open", "1".into()).await.unwrap();
    nc.publish("info.x", "i".into()).await.unwrap();
    nc.flush().await.unwrap();
    let mut got = [dev.publish().await, dev.publish().await];
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(
        (got[0].topic.as_str(), got[0].qos),
        ("cmd/valve/open", v4::QoS::AtLeastOnce)
    );
    assert_eq!(
        (got[1].topic.as_str(), got[1].qos),
        ("info/x", v4::QoS::AtMostOnce)
    );
    // A request from NATS: the reply subject is the MQTT 5 response topic.
    let mut d5 = v5::dev(port, "responder").await;
    d5.subscribe("svc/echo", v5::QoS::AtLeastOnce).await;
    let asking = nc.clone();
    let ask = tokio::spawn(async move { asking.request("svc.echo", "ping".into()).await });
    let req = d5.publish().await;
    let rt = req
        .properties
        .and_then(|p| p.response_topic)
        .expect("a response topic");
    d5.client
        .publish(rt, v5::QoS::AtLeastOnce, false, "pong")
        .await
        .unwrap();
    let answer = tokio::time::timeout(STEP, ask)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&answer.payload[..], b"pong");
}

#[tokio::test]
async fn a_stream_subject_is_acknowledged_once_stored() {
    let dir = tempfile::tempdir().unwrap();
    // A 2-sector stream that refuses when full: 64 KiB of 2 KiB readings fill it quickly.
    let streams = "[[streams]]\nname = \"READINGS\"\nsubjects = [\"dev.>\"]\nsync = \"always\"\n\
                   max_bytes = \"128KiB\"\nwhen_full = \"refuse\"\n";
    let twig = twig_mqtt(dir.path(), free_port(), streams, "");
    let port = mqtt_port_of(&twig);
    let mut d = v5::dev(port, "meter").await;
    let payload = vec![b'x'; 2000];
    let mut acked = 0u64;
    let mut refused = 0;
    for i in 0..80 {
        d.client
            .publish(
                format!("dev/m/{i}"),
                v5::QoS::AtLeastOnce,
                false,
                payload.clone(),
            )
            .await
            .unwrap();
        let ack = d.wait(|p| matches!(p, v5::Packet::PubAck(_))).await;
        let v5::Packet::PubAck(ack) = ack else {
            unreachable!()
        };
        use rumqttc::v5::mqttbytes::v5::PubAckReason;
        match ack.reason {
            PubAckReason::Success => {
                acked += 1;
                // Acknowledged: it is in the stream already.
                let jsz = twig.monitor("/jsz");
                let msgs = jsz["streams"][0]["messages"].as_u64().unwrap();
                assert!(
                    msgs >= acked,
                    "PUBACK {acked} before the stream had it ({msgs})"
                );
            }
            PubAckReason::QuotaExceeded => refused += 1,
            r => panic!("unexpected PUBACK reason {r:?}"),
        }
    }
    assert!(
        acked > 10 && refused > 0,
        "acked {acked}, refused {refused}"
    );
    // 3.1.1 cannot say no: the connection closes without the PUBACK.
    let mut d4 = v4::dev(port, "meter-311").await;
    d4.client
        .publish("dev/m/x", v4::QoS::AtLeastOnce, false, payload.clone())
        .await
        .unwrap();
    let why = tokio::time::timeout(STEP, d4.closed.recv())
        .await
        .expect("closed");
    assert!(why.is_some());
    while let Ok(p) = d4.rx.try_recv() {
        assert!(
            !matches!(p, v4::Packet::PubAck(_)),
            "a refused message is not acknowledged"
        );
    }
}

#[tokio::test]
async fn users_and_passwords_from_the_authorization_section() {
    let dir = tempfile::tempdir().unwrap();
    let auth = "[authorization]\nusers = [ { user = \"meter\", password = \"s3cret\" } ]\n";
    let twig = twig_mqtt(dir.path(), free_port(), auth, "");
    let port = mqtt_port_of(&twig);
    let mut o = v4::options(port, "good");
    o.set_credentials("meter", "s3cret");
    let mut good = v4::connect(o).await;
    good.subscribe("a", v4::QoS::AtMostOnce).await;

    let mut o = v4::options(port, "bad");
    o.set_credentials("meter", "guess");
    let mut bad = v4::connect(o).await;
    let why = tokio::time::timeout(STEP, bad.closed.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(why.contains("BadUserNamePassword"), "{why}");

    let mut o = v5::options(port, "bad5");
    o.set_credentials("nobody", "x");
    let mut bad5 = v5::connect(o).await;
    let why = tokio::time::timeout(STEP, bad5.closed.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(why.contains("BadUserNamePassword"), "{why}");
    // No credentials at all: refused too.
    let mut anon = v4::dev(port, "anon").await;
    assert!(
        tokio::time::timeout(STEP, anon.closed.recv())
            .await
            .unwrap()
            .is_some()
    );
    assert!(twig.log().contains("authentication error - User \"meter\""));
}

#[tokio::test]
async fn the_listening_line_is_nats_servers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let toml = format!(
        "port = -1\nstore_dir = \"{}\"\n[mqtt_listener]\nhost = \"127.0.0.1\"\nport = {port}\n",
        dir.path().display()
    );
    let twig = Twig::with_config(dir.path(), &toml);
    twig.wait_log(
        &format!("[INF] Listening for MQTT clients on mqtt://127.0.0.1:{port}\n"),
        1,
    );
    // A device can talk right away.
    let mut d = v4::dev(port, "x").await;
    d.subscribe("x", v4::QoS::AtMostOnce).await;
}
