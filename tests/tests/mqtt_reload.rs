//! A reload of `[authorization]` (SIGHUP, as `twig --signal reload` sends) applies to MQTT
//! devices as it does to NATS clients: a removed user's session is closed (MQTT 5
//! DISCONNECT 0x87), narrowed permissions apply to the sessions already open (a publish now
//! denied gets PUBACK 0x87, a subscription no longer allowed is removed, a deny rule filters
//! deliveries), new users log in, and a device whose rights still hold stays connected.

#[path = "common/uplink.rs"]
mod common;
#[path = "common/mqtt.rs"]
mod mqtt;

use common::*;
use futures::StreamExt;
use mqtt::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twig_tests::harness::free_port;

const BEFORE: &str = "[authorization]\nusers = [\n\
    { user = \"dev1\", password = \"p1\", permissions = { publish = [\"sensors.dev1.>\"], \
      subscribe = [\"cmd.dev1.>\", \"cmd.all\"] } },\n\
    { user = \"dev2\", password = \"p2\" },\n\
    { user = \"ops\", password = \"po\" },\n]\n";

/// dev1 may publish its temperature only, loses `cmd.all` and may not read
/// `cmd.dev1.secret`; dev2 is gone; dev3 is new.
const AFTER: &str = "[authorization]\nusers = [\n\
    { user = \"dev1\", password = \"p1\", permissions = { publish = [\"sensors.dev1.temp\"], \
      subscribe = { allow = [\"cmd.dev1.>\"], deny = [\"cmd.dev1.secret\"] } } },\n\
    { user = \"dev3\", password = \"p3\" },\n\
    { user = \"ops\", password = \"po\" },\n]\n";

fn device(port: u16, id: &str, user: &str, pass: &str) -> v5::MqttOptions {
    let mut o = v5::options(port, id);
    o.set_credentials(user, pass);
    o
}

#[tokio::test]
async fn a_reload_applies_to_mqtt_devices() {
    let dir = tempfile::tempdir().unwrap();
    let twig = twig_mqtt(dir.path(), free_port(), BEFORE, "");
    let port = mqtt_port_of(&twig);
    let ops = async_nats::ConnectOptions::with_user_and_password("ops".into(), "po".into())
        .connect(twig.url())
        .await
        .unwrap();
    let mut readings = ops.subscribe("sensors.>").await.unwrap();
    ops.flush().await.unwrap();

    let mut dev1 = v5::connect(device(port, "dev1", "dev1", "p1")).await;
    dev1.subscribe("cmd/dev1/+", v5::QoS::AtLeastOnce).await;
    dev1.subscribe("cmd/all", v5::QoS::AtLeastOnce).await;
    // rumqttc's v5 client does not surface a DISCONNECT from the server: dev2 speaks raw
    // MQTT 5 to read it byte for byte.
    let mut dev2 = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let connect: &[u8] = &[
        0x10, 27, 0, 4, b'M', b'Q', b'T', b'T', 5, 0xC2, 0, 60, 0, // user, password, clean
        0, 4, b'd', b'e', b'v', b'2', 0, 4, b'd', b'e', b'v', b'2', 0, 2, b'p', b'2',
    ];
    assert_eq!(connect.len(), 29);
    dev2.write_all(connect).await.unwrap();
    let mut head = [0u8; 2];
    tokio::time::timeout(STEP, dev2.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    let mut body = vec![0u8; usize::from(head[1])];
    dev2.read_exact(&mut body).await.unwrap();
    assert_eq!((head[0], body[1]), (0x20, 0), "dev2 logged in");

    let path = twig.config.as_ref().expect("config file");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace(BEFORE, AFTER);
    std::fs::write(path, text).unwrap();
    twig.sut.signal("reload");
    twig.wait_log("Authorization reloaded on MQTT sessions", 1);
    let log = twig.log();
    assert!(
        log.contains("Authorization reloaded on MQTT sessions (2 checked, 1 closed"),
        "{log}"
    );

    // The removed user: DISCONNECT 0x87 (Not authorized), then the connection ends.
    let mut rest = Vec::new();
    tokio::time::timeout(STEP, dev2.read_to_end(&mut rest))
        .await
        .expect("dev2 closed in time")
        .unwrap();
    assert_eq!(rest, [0xE0, 1, 0x87], "DISCONNECT Not authorized");
    // It cannot log in again; the new user can.
    let mut again = v5::connect(device(port, "dev2b", "dev2", "p2")).await;
    let why = tokio::time::timeout(STEP, again.closed.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(why.contains("BadUserNamePassword"), "{why}");
    let mut dev3 = v5::connect(device(port, "dev3", "dev3", "p3")).await;
    dev3.subscribe("x", v5::QoS::AtMostOnce).await;

    // dev1 stays connected under its new rules: a publish no longer allowed gets PUBACK
    // 0x87 and reaches nobody; its temperature still goes through.
    dev1.client
        .publish("sensors/dev1/hum", v5::QoS::AtLeastOnce, false, "55")
        .await
        .unwrap();
    let denied = dev1.wait(|p| matches!(p, v5::Packet::PubAck(_))).await;
    let v5::Packet::PubAck(ack) = denied else {
        unreachable!()
    };
    assert_eq!(
        ack.reason,
        rumqttc::v5::mqttbytes::v5::PubAckReason::NotAuthorized
    );
    dev1.client
        .publish("sensors/dev1/temp", v5::QoS::AtLeastOnce, false, "21.5")
        .await
        .unwrap();
    let m = tokio::time::timeout(STEP, readings.next())
        .await
        .expect("a reading in time")
        .unwrap();
    assert_eq!(
        (m.subject.as_str(), &m.payload[..]),
        ("sensors.dev1.temp", &b"21.5"[..])
    );

    // `cmd/all` was removed from its session; `cmd.dev1.secret` is filtered; its own
    // commands arrive.
    for s in ["cmd.all", "cmd.dev1.secret", "cmd.dev1.led"] {
        ops.publish(s, "on".into()).await.unwrap();
    }
    ops.flush().await.unwrap();
    let p = dev1.publish().await;
    assert_eq!(&p.topic[..], b"cmd/dev1/led");
    assert!(dev1.closed.try_recv().is_err(), "dev1 was disconnected");
    let log = twig.log();
    assert!(log.contains("MQTT subscription removed"), "{log}");
}
