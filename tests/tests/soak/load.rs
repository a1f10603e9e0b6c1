//! The soak's load generators, each a loop bounded in rate that runs until `stop` is set:
//! plain publishers, a stream publisher with PubAcks, request/reply, connection churn and
//! slow consumers that are cut and come back.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use twig_tests::nats_raw::RawNats;

use crate::forward::payload;

/// Counters of what the load did, read at the end for the report.
#[derive(Default)]
pub struct Stats {
    pub plain_published: AtomicU64,
    pub plain_received_local: AtomicU64,
    pub plain_received_hub: AtomicU64,
    pub stream_acked: AtomicU64,
    pub requests_ok: AtomicU64,
    pub requests_failed: AtomicU64,
    pub churn_connections: AtomicU64,
    pub slow_published: AtomicU64,
    pub slow_cycles: AtomicU64,
    pub slow_cut: AtomicU64,
    pub slow_not_cut: AtomicU64,
}

/// Everything the load loops share.
pub struct Load {
    pub twig_url: String,
    pub twig_port: u16,
    pub stop: AtomicBool,
    pub stats: Stats,
}

impl Load {
    fn running(&self) -> bool {
        !self.stop.load(Relaxed)
    }
}

/// Publishes `per_tick` messages of 128 B to `soak.plain.<id>` every 10 ms.
pub async fn plain_publisher(load: Arc<Load>, id: u32, per_tick: u64) {
    let c = crate::common::connect(&load.twig_url).await;
    let subject = format!("soak.plain.{id}");
    let body = bytes::Bytes::from(vec![b'p'; 128]);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while load.running() {
        tick.tick().await;
        for _ in 0..per_tick {
            c.publish(subject.clone(), body.clone()).await.unwrap();
        }
        load.stats.plain_published.fetch_add(per_tick, Relaxed);
    }
    c.flush().await.unwrap();
}

/// Counts what arrives on `soak.plain.>` at `url` (twig or the hub) into `counter`.
pub async fn plain_subscriber(load: Arc<Load>, url: String, hub: bool) {
    let c = crate::common::connect(&url).await;
    let mut sub = c.subscribe("soak.plain.>").await.unwrap();
    c.flush().await.unwrap();
    let counter = match hub {
        true => &load.stats.plain_received_hub,
        false => &load.stats.plain_received_local,
    };
    while load.running() {
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            counter.fetch_add(1, Relaxed);
        }
    }
}

/// Publishes numbered messages to the stream subject `orders.<n % 7>`, one every `every`,
/// each awaited for its PubAck (twig acknowledges from its own store, hub up or down).
/// Returns how many were acknowledged: the numbers `0..n`.
pub async fn stream_publisher(load: Arc<Load>, every: Duration) -> u64 {
    let js = jetstream::new(crate::common::connect(&load.twig_url).await);
    let mut tick = tokio::time::interval(every);
    let mut n = 0u64;
    while load.running() {
        tick.tick().await;
        let ack = js
            .publish(format!("orders.{}", n % 7), payload(n))
            .await
            .unwrap();
        let ack = tokio::time::timeout(crate::common::STEP, ack)
            .await
            .unwrap_or_else(|_| panic!("no PubAck for stream message {n} in time"))
            .unwrap_or_else(|e| panic!("PubAck for stream message {n}: {e}"));
        assert_eq!(ack.sequence, n + 1, "twig's stream sequence");
        n += 1;
        load.stats.stream_acked.store(n, Relaxed);
    }
    n
}

/// A responder on `soak.rpc` and a requester asking it every `every`.
pub async fn request_reply(load: Arc<Load>, every: Duration) {
    let server = crate::common::connect(&load.twig_url).await;
    let mut service = server.subscribe("soak.rpc").await.unwrap();
    server.flush().await.unwrap();
    let responder = {
        let load = load.clone();
        tokio::spawn(async move {
            while load.running() {
                let m = tokio::time::timeout(Duration::from_millis(200), service.next()).await;
                if let Ok(Some(m)) = m
                    && let Some(reply) = m.reply
                {
                    server.publish(reply, m.payload).await.unwrap();
                }
            }
        })
    };
    let client = crate::common::connect(&load.twig_url).await;
    let mut tick = tokio::time::interval(every);
    while load.running() {
        tick.tick().await;
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            client.request("soak.rpc", "ping".into()),
        )
        .await;
        match r {
            Ok(Ok(m)) if m.payload.as_ref() == b"ping" => &load.stats.requests_ok,
            _ => &load.stats.requests_failed,
        }
        .fetch_add(1, Relaxed);
    }
    responder.await.unwrap();
}

/// Connects, subscribes three subjects (one unique, so interest goes up to the hub and is
/// withdrawn again), publishes one message, waits for a PONG, disconnects; every `every`.
pub async fn churn(load: Arc<Load>, id: u32, every: Duration) {
    let mut tick = tokio::time::interval(every);
    let mut i = 0u64;
    while load.running() {
        tick.tick().await;
        let deadline = tokio::time::Instant::now() + crate::common::STEP;
        let mut c = RawNats::connect(load.twig_port, deadline).await;
        c.subscribe("soak.plain.>", 1).await;
        c.subscribe(&format!("soak.churn.{id}.{i}"), 2).await;
        c.subscribe("soak.churn.*.all", 3).await;
        c.publish(b"soak.churn.x.all", b"hello").await;
        c.flush(deadline).await;
        drop(c);
        i += 1;
        load.stats.churn_connections.fetch_add(1, Relaxed);
    }
}

/// Publishes 1 KiB messages to `soak.slow.x`, `per_tick` every 10 ms, for the slow consumers.
pub async fn slow_publisher(load: Arc<Load>, per_tick: u64) {
    let c = crate::common::connect(&load.twig_url).await;
    let body = bytes::Bytes::from(vec![b's'; 1024]);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while load.running() {
        tick.tick().await;
        for _ in 0..per_tick {
            c.publish("soak.slow.x", body.clone()).await.unwrap();
        }
        load.stats.slow_published.fetch_add(per_tick, Relaxed);
    }
}

/// A consumer that subscribes `soak.slow.>` with a 4 KiB receive buffer and stops reading
/// for `stall`: twig's outbound queue for it passes `max_pending` and twig cuts it. Then it
/// reads to the end (counting the cut when twig closed it) and connects again.
pub fn slow_consumer(load: Arc<Load>, stall: Duration) {
    let addr: SocketAddr = format!("127.0.0.1:{}", load.twig_port).parse().unwrap();
    while load.running() {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        // A small window: the kernel cannot absorb what twig queues for this client.
        sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        sock.connect_timeout(&addr.into(), crate::common::STEP)
            .expect("slow consumer connect");
        let mut s: TcpStream = sock.into();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s.write_all(
            b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB soak.slow.> 1\r\nPING\r\n",
        )
        .expect("slow consumer handshake");
        read_until(&mut s, b"PONG\r\n");
        load.stats.slow_cycles.fetch_add(1, Relaxed);
        // Not reading: the stall, in short steps so a stop is seen soon.
        let until = Instant::now() + stall;
        while load.running() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Read what is left; twig closing the connection ends it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0u8; 64 * 1024];
        let cut = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break true,
            }
            if Instant::now() >= deadline || !load.running() {
                break false;
            }
        };
        if !cut && !load.running() {
            // Stopped before twig had to cut it: neither outcome.
            break;
        }
        match cut {
            true => &load.stats.slow_cut,
            false => &load.stats.slow_not_cut,
        }
        .fetch_add(1, Relaxed);
    }
}

/// Reads until `needle` arrived (within [`crate::common::STEP`]); MSGs before it are skipped.
fn read_until(s: &mut TcpStream, needle: &[u8]) {
    let deadline = Instant::now() + crate::common::STEP;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        assert!(
            Instant::now() < deadline,
            "slow consumer: no {needle:?} in time"
        );
        match s.read(&mut buf) {
            Ok(0) => panic!("slow consumer: closed during the handshake"),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        // Only the tail can still hold the start of the needle: the buffer stays small.
        if seen.len() > 64 * 1024 {
            seen.drain(..seen.len() - needle.len());
        }
    }
}
