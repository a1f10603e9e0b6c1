//! mqtt-bench: N MQTT publishers (rumqttc) against one broker, one subscriber counting what
//! arrives, either over MQTT (the same broker) or over NATS (twig's bridge, nats-server's MQTT
//! listener). Run by `tests/bench-mqtt`.
//!
//! ```text
//! mqtt-bench --mqtt 127.0.0.1:1883 --sub-mqtt 127.0.0.1:1883 --pubs 4 --msgs 50000 --qos 1
//! mqtt-bench --mqtt 127.0.0.1:1883 --sub-nats 127.0.0.1:4222 --pubs 4 --msgs 50000 --qos 0
//! ```
//! Each publisher sends `--msgs` messages of `--size` bytes to `bench/p<i>`; the subscriber
//! listens on `bench/#` (MQTT, at the same QoS) or `bench.>` (NATS) and records which
//! (publisher, sequence) pairs arrived. Before the clock starts, probes are published until the
//! subscriber sees one, so the path (e.g. the bridge's subscription) is in place.
//!
//! One JSON line on stdout:
//! `{"rate":..,"received":..,"expected":..,"sent":..,"lost":..,"dups":..,"secs":..}`;
//! `rate` is distinct messages per second from the first publish to the last arrival.
//! `lost` counts messages that never arrived (the run ends `--idle` seconds, 3 by default, after the last progress);
//! `sent` is how many publishes the clients took (all of them unless a connection failed).

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use twig_core::wire::{Limits, Mode, Op, Parser};

const USAGE: &str =
    "usage: mqtt-bench --mqtt HOST:PORT (--sub-mqtt HOST:PORT | --sub-nats HOST:PORT)
  [--pubs N (4)] [--msgs N per publisher (25000)] [--size BYTES (64)] [--qos 0|1 (0)]
  [--limit SECS (60)] [--idle SECS (3)]";

struct Opts {
    mqtt: String,
    sub_mqtt: Option<String>,
    sub_nats: Option<String>,
    pubs: usize,
    msgs: usize,
    size: usize,
    qos: QoS,
    limit: Duration,
    /// How long the subscriber waits without progress before counting the rest as lost. A
    /// server that fsyncs every message one by one (nats-server with `sync_interval:
    /// always`) answers 100 publishers' full windows only after seconds.
    idle: Duration,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        mqtt: String::new(),
        sub_mqtt: None,
        sub_nats: None,
        pubs: 4,
        msgs: 25_000,
        size: 64,
        qos: QoS::AtMostOnce,
        limit: Duration::from_secs(60),
        idle: Duration::from_secs(3),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match a.as_str() {
            "--mqtt" => o.mqtt = val()?,
            "--sub-mqtt" => o.sub_mqtt = Some(val()?),
            "--sub-nats" => o.sub_nats = Some(val()?),
            "--pubs" => o.pubs = num(val()?)?.max(1),
            "--msgs" => o.msgs = num(val()?)?.max(1),
            "--size" => o.size = num(val()?)?.max(16),
            "--qos" => {
                o.qos = match val()?.as_str() {
                    "0" => QoS::AtMostOnce,
                    "1" => QoS::AtLeastOnce,
                    q => return Err(format!("--qos {q}: 0 or 1")),
                }
            }
            "--limit" => o.limit = Duration::from_secs(num(val()?)? as u64),
            "--idle" => o.idle = Duration::from_secs(num(val()?)?.max(1) as u64),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if o.mqtt.is_empty() || o.sub_mqtt.is_some() == o.sub_nats.is_some() {
        return Err("--mqtt and one of --sub-mqtt / --sub-nats are needed".into());
    }
    Ok(o)
}

fn host_port(s: &str) -> Result<(String, u16), String> {
    let (h, p) = s.rsplit_once(':').ok_or(format!("{s}: HOST:PORT"))?;
    Ok((h.to_owned(), p.parse().map_err(|e| format!("{s}: {e}"))?))
}

/// Payload: `p<publisher>-<seq>` padded with `.` to the size (probes: `probe`).
fn payload(publisher: usize, seq: usize, size: usize) -> Vec<u8> {
    let mut v = format!("p{publisher}-{seq}").into_bytes();
    v.resize(size.max(v.len()), b'.');
    v
}

fn parse_payload(p: &[u8]) -> Option<(usize, usize)> {
    let end = p.iter().position(|&b| b == b'.').unwrap_or(p.len());
    let text = std::str::from_utf8(p.get(1..end)?).ok()?;
    let (a, b) = text.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// What the subscriber saw.
#[derive(Default)]
struct Tally {
    seen: HashSet<(usize, usize)>,
    dups: u64,
    probes: u64,
    last: Option<Instant>,
}

impl Tally {
    fn add(&mut self, payload: &[u8]) {
        match parse_payload(payload) {
            Some(key) => {
                if !self.seen.insert(key) {
                    self.dups += 1;
                }
                self.last = Some(Instant::now());
            }
            None => self.probes += 1,
        }
    }
}

/// An MQTT client whose event loop runs in a task; incoming payloads go to `tx`.
fn mqtt_client(
    addr: &str,
    id: &str,
    tx: Option<mpsc::UnboundedSender<bytes::Bytes>>,
) -> Result<(AsyncClient, tokio::task::JoinHandle<()>), String> {
    let (host, port) = host_port(addr)?;
    let mut o = MqttOptions::new(id, host, port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(100);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 1000);
    let task = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Some(tx) = &tx
                        && tx.send(p.payload).is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("mqtt-bench: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((client, task))
}

/// A raw NATS subscriber on `bench.>`: payloads go to `tx`; returns once subscribed.
async fn nats_sub(addr: &str, tx: mpsc::UnboundedSender<bytes::Bytes>) -> Result<(), String> {
    let mut sock = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("NATS {addr}: {e}"))?;
    sock.set_nodelay(true).ok();
    sock.write_all(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\nSUB bench.> 1\r\nPING\r\n",
    )
    .await
    .map_err(|e| e.to_string())?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut parser = Parser::new(
            Mode::FromServer,
            Limits {
                max_control_line: 4096,
                max_payload: 64 << 20,
            },
        );
        let mut buf = vec![0u8; 256 * 1024];
        let mut filled = 0;
        loop {
            let n = match sock.read(&mut buf[filled..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            filled += n;
            let mut start = 0;
            while let Ok(Some((op, used))) = parser.parse(&buf[start..filled]) {
                match op {
                    Op::Msg { payload, .. } | Op::Hmsg { payload, .. }
                        if tx.send(bytes::Bytes::copy_from_slice(payload)).is_err() =>
                    {
                        return;
                    }
                    Op::Pong => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Op::Ping => {
                        let _ = sock.write_all(b"PONG\r\n").await;
                    }
                    _ => {}
                }
                start += used;
            }
            buf.copy_within(start..filled, 0);
            filled -= start;
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .map_err(|_| "NATS subscriber: no PONG".to_string())?
        .map_err(|_| "NATS subscriber ended".to_string())
}

async fn run(o: Opts) -> Result<String, String> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _sub_task = if let Some(s) = &o.sub_mqtt {
        let (c, task) = mqtt_client(s, "bench-sub", Some(tx))?;
        c.subscribe("bench/#", o.qos)
            .await
            .map_err(|e| e.to_string())?;
        Some((c, task))
    } else {
        nats_sub(o.sub_nats.as_deref().unwrap_or_default(), tx).await?;
        None
    };
    let mut pubs = Vec::new();
    for i in 0..o.pubs {
        pubs.push(mqtt_client(&o.mqtt, &format!("bench-pub-{i}"), None)?);
    }
    // Probe until the path is in place.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        pubs[0]
            .0
            .publish("bench/probe", QoS::AtMostOnce, false, b"probe".to_vec())
            .await
            .map_err(|e| e.to_string())?;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            break;
        }
        if Instant::now() > deadline {
            return Err("the subscriber never saw a probe".into());
        }
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {}

    let sent = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    for (i, (client, _)) in pubs.iter().enumerate() {
        let (client, qos, msgs, size, sent) = (client.clone(), o.qos, o.msgs, o.size, sent.clone());
        tokio::spawn(async move {
            let topic = format!("bench/p{i}");
            for seq in 0..msgs {
                if client
                    .publish(topic.clone(), qos, false, payload(i, seq, size))
                    .await
                    .is_err()
                {
                    return;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let expected = o.pubs * o.msgs;
    let mut tally = Tally::default();
    let hard = t0 + o.limit;
    while tally.seen.len() < expected && Instant::now() < hard {
        match tokio::time::timeout(o.idle, rx.recv()).await {
            Ok(Some(p)) => tally.add(&p),
            Ok(None) | Err(_) => break,
        }
    }
    let secs = tally
        .last
        .map_or(0.0, |l| l.duration_since(t0).as_secs_f64())
        .max(1e-9);
    let received = tally.seen.len();
    let rate = received as f64 / secs;
    eprintln!(
        "mqtt-bench: {received}/{expected} in {secs:.3}s = {rate:.0} msgs/s ({} dups, {} sent)",
        tally.dups,
        sent.load(Ordering::Relaxed)
    );
    Ok(format!(
        "{{\"rate\":{rate:.1},\"received\":{received},\"expected\":{expected},\"sent\":{},\"lost\":{},\"dups\":{},\"secs\":{secs:.4}}}",
        sent.load(Ordering::Relaxed),
        expected - received,
        tally.dups
    ))
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mqtt-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mqtt-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(o)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mqtt-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
