//! QoS 2 from a device into a `sync = "always"` stream, with twig killed (-9) at each step of
//! the handshake: after the PUBLISH (before its PUBREC was read), after the PUBREC, and after
//! the PUBREL (before its PUBCOMP was read). The device then does what a device does after a
//! reconnect (MQTT-4.4.0-1: it sends the PUBLISH again with DUP until it has the PUBREC, then
//! the PUBREL until it has the PUBCOMP), and in every case the stream holds the message once.
//!
//! A NATS subscriber on the subject (connected to each twig in turn) gets it once too when
//! the kill comes after the PUBREC: twig sends the PUBREC only once "published" is on flash.
//! A kill before the PUBREC can land after the message was routed and before that record was
//! synced; the repeat is then published again under the same `Nats-Msg-Id`, which the stream
//! drops and a plain subscriber cannot (no broker can tell it from a new message without the
//! receiver's help), so that case checks the stream only.

#[path = "common/uplink.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use twig_tests::harness::free_port;

/// twig with stream ORDERS on `orders.>` (`sync = "always"`) and an MQTT listener.
fn twig(dir: &Path, mqtt_port: u16) -> Twig {
    let toml = format!(
        "port = -1\nstore_dir = {:?}\n[mqtt_listener]\nport = {mqtt_port}\n\
         [[streams]]\nname = \"ORDERS\"\nsubjects = [\"orders.>\"]\nsync = \"always\"\n",
        dir.display().to_string()
    );
    let t = Twig::with_config(dir, &toml);
    t.wait_mqtt_listening(mqtt_port);
    t
}

/// A raw MQTT 3.1.1 device with a lasting session (clean session 0), so the test decides
/// when each packet goes.
fn open(port: u16) -> TcpStream {
    let id = b"siren";
    let mut v = vec![
        0,
        4,
        b'M',
        b'Q',
        b'T',
        b'T',
        4,
        0x00,
        0,
        10,
        0,
        id.len() as u8,
    ];
    v.extend_from_slice(id);
    let mut p = vec![0x10, v.len() as u8];
    p.extend(v);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(&p).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack[0], 0x20, "CONNACK {ack:?}");
    s
}

/// PUBLISH QoS 2, packet id 7, `orders/siren`, "FIRE"; `dup` sets DUP.
fn publish(dup: bool) -> Vec<u8> {
    let topic = b"orders/siren";
    let mut p = vec![
        if dup { 0x3C } else { 0x34 },
        (2 + topic.len() + 2 + 4) as u8,
        0,
        topic.len() as u8,
    ];
    p.extend_from_slice(topic);
    p.extend_from_slice(&[0x00, 0x07]);
    p.extend_from_slice(b"FIRE");
    p
}

const PUBREC: [u8; 4] = [0x50, 0x02, 0x00, 0x07];
const PUBREL: [u8; 4] = [0x62, 0x02, 0x00, 0x07];
const PUBCOMP: [u8; 4] = [0x70, 0x02, 0x00, 0x07];

fn expect(s: &mut TcpStream, want: [u8; 4], what: &str) {
    let mut got = [0u8; 4];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, want, "{what}");
}

/// The packet after which twig is killed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Publish,
    Pubrec,
    Pubrel,
}

/// Messages in the stream, per /jsz.
fn stored(t: &Twig) -> u64 {
    t.monitor("/jsz")["streams"][0]["messages"]
        .as_u64()
        .unwrap()
}

async fn kill_at(step: Step) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut t = twig(dir.path(), port);
    let nc = connect(&t.url()).await;
    let mut sub = nc.subscribe("orders.>").await.unwrap();
    nc.flush().await.unwrap();
    let mut copies = 0;

    let mut s = open(port);
    s.write_all(&publish(false)).unwrap();
    if step != Step::Publish {
        expect(&mut s, PUBREC, "PUBREC");
    }
    if step == Step::Pubrel {
        s.write_all(&PUBREL).unwrap();
    }
    if step != Step::Publish {
        // PUBREC means durable in the stream and published: the subscriber has it.
        let m = tokio::time::timeout(STEP, sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&m.payload[..], b"FIRE");
        copies += 1;
    }
    t.kill_and_restart_mqtt(port);
    drop(s);
    if step == Step::Publish {
        // What the first twig delivered before it died is in the client's buffer.
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
            assert_eq!(&m.payload[..], b"FIRE");
            copies += 1;
        }
    }

    let nc = connect(&t.url()).await;
    let mut sub = nc.subscribe("orders.>").await.unwrap();
    nc.flush().await.unwrap();
    let mut s = open(port);
    if step != Step::Pubrel {
        // It has no PUBREC for sure (or it does, and repeats it as a device must): DUP.
        s.write_all(&publish(true)).unwrap();
        expect(&mut s, PUBREC, "PUBREC after the restart");
    }
    s.write_all(&PUBREL).unwrap();
    expect(&mut s, PUBCOMP, "PUBCOMP");

    assert_eq!(stored(&t), 1, "{step:?}: the stream holds it once");
    // The subscriber of the second twig: a round trip through twig, then whatever came.
    nc.flush().await.unwrap();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        assert_eq!(&m.payload[..], b"FIRE");
        copies += 1;
    }
    if step != Step::Publish {
        assert_eq!(copies, 1, "{step:?}: a plain subscriber got it once");
    } else {
        eprintln!("{step:?}: a plain subscriber got {copies} copies");
        assert!(
            (1..=2).contains(&copies),
            "{step:?}: {copies} copies to a plain subscriber"
        );
    }
}

#[tokio::test]
async fn qos2_into_a_stream_killed_after_the_publish() {
    kill_at(Step::Publish).await;
}

#[tokio::test]
async fn qos2_into_a_stream_killed_after_the_pubrec() {
    kill_at(Step::Pubrec).await;
}

#[tokio::test]
async fn qos2_into_a_stream_killed_after_the_pubrel() {
    kill_at(Step::Pubrel).await;
}
