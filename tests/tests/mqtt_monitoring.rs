//! The MQTT listener in monitoring: each device in `/connz` (`type` mqtt, `mqtt_client` its
//! client id, as nats-server lists its MQTT clients) with its counters and user, the
//! listener's counters in `/metrics` (`twig_mqtt_*`) and `/mqttz`; NATS clients beside them
//! with their `authorized_user` too.

#[path = "common/uplink.rs"]
mod common;
#[path = "common/mqtt.rs"]
mod mqtt;

use std::io::{Read, Write};

use common::*;
use mqtt::*;
use twig_tests::harness::free_port;

fn metrics(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw
}

/// The `/connz?auth=1` entry of the MQTT client `id`, if listed.
fn mqtt_entry(twig: &Twig, id: &str) -> Option<serde_json::Value> {
    let connz = twig.monitor("/connz?auth=1&subs=1");
    connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["mqtt_client"] == id)
        .cloned()
}

#[tokio::test]
async fn devices_are_listed_in_connz_and_counted_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let auth = "[authorization]\nusers = [ { user = \"meter\", password = \"s3cret\" } ]\n";
    let twig = twig_mqtt(dir.path(), free_port(), auth, "");
    let port = mqtt_port_of(&twig);
    let mut o = v4::options(port, "meter-1");
    o.set_credentials("meter", "s3cret");
    let mut dev = v4::connect(o).await;
    dev.subscribe("cmd/meter-1", v4::QoS::AtLeastOnce).await;
    dev.subscribe("cmd/all", v4::QoS::AtMostOnce).await;
    for i in 0..3 {
        dev.client
            .publish(
                "readings/meter-1",
                v4::QoS::AtLeastOnce,
                false,
                format!("{i}"),
            )
            .await
            .unwrap();
        dev.wait(|p| matches!(p, v4::Packet::PubAck(_))).await;
    }
    // A device that fails to log in is counted, never listed.
    let mut o = v4::options(port, "intruder");
    o.set_credentials("meter", "guess");
    let mut bad = v4::connect(o).await;
    tokio::time::timeout(STEP, bad.closed.recv())
        .await
        .unwrap()
        .unwrap();

    let mut entry = None;
    eventually("meter-1 in /connz with its counters", || {
        entry = mqtt_entry(&twig, "meter-1");
        entry
            .as_ref()
            .is_some_and(|e| e["in_msgs"] == 3 && e["subscriptions"] == 2)
    })
    .await;
    let e = entry.unwrap();
    assert_eq!(e["type"], "mqtt", "{e}");
    assert_eq!(e["kind"], "Client", "{e}");
    assert_eq!(e["authorized_user"], "meter", "{e}");
    assert_eq!(e["in_bytes"], 3, "{e}");
    assert!(mqtt_entry(&twig, "intruder").is_none());
    // A NATS client of the same user is listed beside it, as `nats`, with its user too.
    let nc = async_nats::ConnectOptions::with_user_and_password("meter".into(), "s3cret".into())
        .name("meter-app")
        .connect(twig.url())
        .await
        .unwrap();
    nc.flush().await.unwrap();
    let connz = twig.monitor("/connz?auth=1");
    let app = connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "meter-app")
        .cloned()
        .unwrap_or_else(|| panic!("the NATS client in /connz: {connz}"));
    assert_eq!(app["type"], "nats", "{app}");
    assert_eq!(app["authorized_user"], "meter", "{app}");
    assert!(app.get("mqtt_client").is_none(), "{app}");
    assert_eq!(connz["total"], 2, "{connz}");

    let text = metrics(twig.http_port);
    for line in [
        "twig_mqtt_connections 1",
        "twig_mqtt_sessions 1",
        "twig_mqtt_in_msgs_total 3",
        "twig_mqtt_auth_failures_total 1",
        "# TYPE twig_mqtt_dropped_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
    }
    let mqttz = twig.monitor("/mqttz");
    assert_eq!(mqttz["listener"]["connections"], 1, "{mqttz}");

    // Gone from /connz once it disconnects.
    dev.client.disconnect().await.unwrap();
    eventually("meter-1 gone from /connz", || {
        mqtt_entry(&twig, "meter-1").is_none()
    })
    .await;
}
