//! Hostile load on the MQTT listener, many idle devices: N connections (2,000;
//! `TWIG_IDLE_MQTT_SESSIONS` to change it), each a clean 3.1.1 session with one subscription
//! (raw CONNECT and SUBSCRIBE, then nothing). What each costs twig in resident memory is
//! asserted: an idle session holds no read or write buffer, no channel of its own, and no
//! capacity left from its last burst, so it stays within a few KiB (issue 16's target is
//! 4 KiB; mosquitto's is about 1 KiB).

#[path = "common/uplink.rs"]
mod common;
#[path = "common/mqtt.rs"]
mod mqtt;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mqtt::{mqtt_port_of, twig_mqtt};
use twig_tests::harness::free_port;

/// Resident memory per idle session with one subscription, at most (the target is 4 KiB).
const PER_SESSION: u64 = 8 * 1024;

/// Sessions opened per round (CONNECTs, then CONNACKs, SUBSCRIBEs, SUBACKs), so the listen
/// backlog is never the limit.
const BATCH: usize = 200;

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let digit = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n > 0 { digit | 0x80 } else { digit });
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// CONNECT: MQTT 3.1.1, clean session, keep-alive 0 (none: the session is idle for good).
fn connect(client_id: &str) -> Vec<u8> {
    let mut body = string("MQTT");
    body.extend_from_slice(&[4, 0x02, 0, 0]);
    body.extend_from_slice(&string(client_id));
    packet(0x10, &body)
}

/// SUBSCRIBE packet id 1 to `filter` at QoS 1.
fn subscribe(filter: &str) -> Vec<u8> {
    let mut body = vec![0, 1];
    body.extend_from_slice(&string(filter));
    body.push(1);
    packet(0x82, &body)
}

fn read_exact(s: &mut TcpStream, n: usize, what: &str) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    buf
}

/// Opens sessions `from..to`: each connected and subscribed (its SUBACK read).
fn open(port: u16, from: usize, to: usize) -> Vec<TcpStream> {
    let mut group = Vec::new();
    for i in from..to {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&connect(&format!("idle-{i}"))).unwrap();
        group.push(s);
    }
    for (i, s) in (from..).zip(group.iter_mut()) {
        let ack = read_exact(s, 4, &format!("CONNACK of session {i}"));
        assert_eq!(ack, [0x20, 2, 0, 0], "CONNACK of session {i}");
        s.write_all(&subscribe(&format!("idle/{i}/+"))).unwrap();
    }
    for (i, s) in (from..).zip(group.iter_mut()) {
        let ack = read_exact(s, 5, &format!("SUBACK of session {i}"));
        assert_eq!(ack, [0x90, 3, 0, 1, 1], "SUBACK of session {i}");
    }
    group
}

#[test]
fn idle_mqtt_sessions_with_a_subscription_cost_a_few_kib_each() {
    let n: usize = std::env::var("TWIG_IDLE_MQTT_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let limits = format!("max_connections = {}\nmax_sessions = {}\n", n + 10, n + 10);
    let twig = twig_mqtt(dir.path(), free_port(), "", &limits);
    let port = mqtt_port_of(&twig);
    // A few sessions first: what every session shares (the executor's queues, the sublist's
    // first nodes, the registry's first table) is then paid for.
    let mut socks = open(port, 0, 10);
    let before = twig.sut.rss_bytes();
    let mut from = 10;
    while from < 10 + n {
        let to = (from + BATCH).min(10 + n);
        socks.extend(open(port, from, to));
        from = to;
    }
    let after = twig.sut.rss_bytes();
    let per = after.saturating_sub(before) / n as u64;
    eprintln!(
        "twig: {n} idle MQTT sessions: RSS {} KiB -> {} KiB, {per} B per session",
        before >> 10,
        after >> 10
    );
    let mqttz = twig.monitor("/mqttz");
    assert_eq!(mqttz["listener"]["connections"], (n + 10) as u64, "{mqttz}");
    assert!(
        per <= PER_SESSION,
        "{per} B per idle MQTT session, over {PER_SESSION}"
    );
    drop(socks);
}
