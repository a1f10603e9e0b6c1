//! A device's QoS 1 publish on a plain (non-stream) subject whose copy goes into the queue of
//! an offline persistent session is PUBACKed only once that copy is on flash (issue 16: what
//! twig acknowledged survives kill -9).
//!
//! Each round: the persistent subscriber (3.1.1, clean session 0) is offline; a device
//! pipelines `N` QoS 1 publishes to the subscriber's topic and reads its PUBACKs; twig is
//! killed (-9) right after a seeded random one of them; twig starts again; the subscriber
//! comes back with its session and must get every message that was PUBACKed (at least once:
//! duplicates are counted, not refused), acknowledging each, then goes offline again.
//!
//! Run: `cargo test -p twig-tests --test mqtt_queued_kills` (`TWIG_MQTT_QK_ROUNDS` rounds,
//! default 4; `TWIG_MQTT_QK_SEED` picks the kill points).

#[path = "common/uplink.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use twig_tests::harness::free_port;

/// Publishes per round (under the session's default queue limit of 1000 messages).
const N: u16 = 300;
const TOPIC: &[u8] = b"cmd/pump-7/set";
const FILTER: &[u8] = b"cmd/pump-7/#";

fn twig(dir: &Path, mqtt_port: u16) -> Twig {
    let toml = format!(
        "port = -1\nstore_dir = {:?}\n[mqtt_listener]\nport = {mqtt_port}\n",
        dir.display().to_string()
    );
    let t = Twig::with_config(dir, &toml);
    t.wait_mqtt_listening(mqtt_port);
    t
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(header: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![header];
    let mut len = body.len();
    loop {
        let b = (len % 128) as u8;
        len /= 128;
        p.push(if len > 0 { b | 0x80 } else { b });
        if len == 0 {
            break;
        }
    }
    p.extend_from_slice(body);
    p
}

/// One packet (fixed header byte, body), or `None` once the connection ends or `deadline`
/// passes.
fn read_packet(s: &mut TcpStream, deadline: Instant) -> Option<(u8, Vec<u8>)> {
    let byte = |s: &mut TcpStream| -> Option<u8> {
        let mut b = [0u8; 1];
        loop {
            if Instant::now() >= deadline {
                return None;
            }
            match s.read(&mut b) {
                Ok(0) => return None,
                Ok(_) => return Some(b[0]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
        }
    };
    let header = byte(s)?;
    let mut len = 0usize;
    for shift in [0, 7, 14, 21] {
        let b = byte(s)?;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    for b in body.iter_mut() {
        *b = byte(s)?;
    }
    Some((header, body))
}

/// An MQTT 3.1.1 connection with a lasting session (clean session 0); returns it and
/// whether the session was present.
fn open(port: u16, id: &str) -> (TcpStream, bool) {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.extend_from_slice(&[4, 0x00, 0, 60]);
    put_str(&mut body, id.as_bytes());
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(&packet(0x10, &body)).unwrap();
    match read_packet(&mut s, Instant::now() + STEP) {
        Some((0x20, b)) if b.len() == 2 && b[1] == 0 => (s, b[0] & 1 == 1),
        other => panic!("CONNACK expected, got {other:?}"),
    }
}

fn publish(pkid: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, TOPIC);
    body.extend_from_slice(&pkid.to_be_bytes());
    body.extend_from_slice(payload);
    packet(0x32, &body)
}

fn payload(round: u32, i: u16) -> Vec<u8> {
    format!("r{round}-m{i:05}").into_bytes()
}

/// The subscriber, back with its session: takes the queued messages (acknowledging each)
/// until it has every one of `want`, then disconnects. Counts what it got per payload.
fn drain(port: u16, want: &BTreeSet<Vec<u8>>, got: &mut BTreeMap<Vec<u8>, u32>) {
    let (mut s, present) = open(port, "pump-7");
    assert!(present, "the subscriber's session was kept");
    let deadline = Instant::now() + STEP;
    while !want.iter().all(|w| got.contains_key(w)) {
        // Waits for the missing ones until the deadline; the caller says which.
        let Some((h, body)) = read_packet(&mut s, deadline) else {
            break;
        };
        if h & 0xf0 != 0x30 {
            continue;
        }
        assert_eq!((h >> 1) & 3, 1, "delivered at QoS 1");
        let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let pkid = [body[2 + tlen], body[3 + tlen]];
        *got.entry(body[4 + tlen..].to_vec()).or_default() += 1;
        s.write_all(&[0x40, 2, pkid[0], pkid[1]]).unwrap();
    }
    s.write_all(&[0xE0, 0]).unwrap();
}

#[test]
fn pubacked_messages_queued_for_an_offline_session_survive_kill_9() {
    let rounds: u32 = std::env::var("TWIG_MQTT_QK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let mut seed: u64 = std::env::var("TWIG_MQTT_QK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("TWIG_MQTT_QK_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut t = twig(dir.path(), port);

    // The subscriber: a lasting session with one QoS 1 subscription, then offline.
    {
        let (mut s, _) = open(port, "pump-7");
        let mut body = vec![0, 1];
        put_str(&mut body, FILTER);
        body.push(1);
        s.write_all(&packet(0x82, &body)).unwrap();
        match read_packet(&mut s, Instant::now() + STEP) {
            Some((0x90, b)) => assert_eq!(b, [0, 1, 1], "SUBACK"),
            other => panic!("SUBACK expected, got {other:?}"),
        }
        s.write_all(&[0xE0, 0]).unwrap();
    }
    // The session and its subscription are on flash before the first kill.
    let deadline = Instant::now() + STEP;
    while t.monitor("/mqttz")["listener"]["stored_sessions"] != 1 {
        assert!(Instant::now() < deadline, "the session was not stored");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut acked_total = 0;
    let mut got: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    let mut want: BTreeSet<Vec<u8>> = BTreeSet::new();
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Killed right after this many PUBACKs (1..=N).
        let kill_after = 1 + (seed % u64::from(N)) as usize;
        let (mut dev, _) = open(port, &format!("console-{round}"));
        // All at once: twig reads them as its receive maximum lets it, the rest wait in the
        // socket.
        let mut all = Vec::new();
        for i in 1..=N {
            all.extend(publish(i, &payload(round, i)));
        }
        dev.write_all(&all).unwrap();
        let deadline = Instant::now() + STEP * 3;
        let mut acked = 0;
        while acked < kill_after {
            match read_packet(&mut dev, deadline) {
                Some((0x40, b)) => {
                    let pkid = u16::from_be_bytes([b[0], b[1]]);
                    assert!(want.insert(payload(round, pkid)), "PUBACK {pkid} twice");
                    acked += 1;
                }
                Some(other) => panic!("PUBACK expected, got {other:?}"),
                None => panic!("the device's connection ended or went quiet"),
            }
        }
        t.kill_and_restart_mqtt(port);
        drop(dev);
        acked_total += acked;
        drain(port, &want, &mut got);
        let missing: Vec<_> = want
            .iter()
            .filter(|w| !got.contains_key(*w))
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} PUBACKed messages lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    let dups: u32 = got.values().map(|n| n - 1).sum();
    eprintln!(
        "{rounds} rounds, {acked_total} PUBACKed, {} received ({dups} duplicates)",
        got.len()
    );
    // Memory bound: twig's RSS after the rounds stays small.
    let rss = t.monitor("/varz")["mem"].as_u64().unwrap_or(0);
    assert!(rss < 200 * 1024 * 1024, "twig RSS {rss}");
}
