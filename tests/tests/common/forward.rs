//! Helpers for the store-and-forward tests: a JetStream hub, twig's config with a stream
//! `ORDERS` forwarding to it, numbered payloads, and exactly-once-in-order checks of the hub's
//! stream.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use twig_tests::hub::{Hub, HubOptions, HubVersion};

use crate::common::{self, Twig, connect};

/// How long the hub's stream may take to receive a backlog, or a reader to read it back.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(120);
/// The payload size of the test messages.
pub const SIZE: usize = 128;

pub fn n_messages() -> u64 {
    std::env::var("TWIG_FWD_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// A directory in memory when the machine has one (`/dev/shm`): the hub's JetStream store
/// with `sync_interval: always` then costs no disk flushes.
pub fn fast_dir(prefix: &str) -> tempfile::TempDir {
    let b = tempfile::Builder::new().prefix(prefix).clone();
    match Path::new("/dev/shm").is_dir() {
        true => b.tempdir_in("/dev/shm").or_else(|_| b.tempdir()),
        false => b.tempdir(),
    }
    .expect("temp dir")
}

/// A hub with JetStream on; its store syncs every message (`sync_interval: always`) so that
/// killing it never loses a message it acknowledged.
pub fn js_hub() -> (Hub, tempfile::TempDir) {
    let store = fast_dir("twig-hub-js-");
    let options = HubOptions {
        extra: format!(
            "jetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n",
            store.path().display().to_string()
        ),
        ..HubOptions::default()
    };
    (Hub::start_with(HubVersion::V2_15, &options), store)
}

pub async fn create_stream(hub: &Hub, name: &str, subjects: &str) {
    let js = jetstream::new(connect(&hub.client_url()).await);
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: vec![subjects.into()],
        ..Default::default()
    })
    .await
    .expect("create the hub stream");
}

/// twig's config: `gw1`, one stream `ORDERS` on `orders.>` draining to `hub`, plus `extra`
/// lines in the stream's table.
pub fn twig_config(dir: &Path, hub: &Hub, extra: &str) -> String {
    twig_config_url(dir, &hub.leaf_url(), "", extra)
}

/// The same config with the remote at `url`, `leaf` lines added to `[leafnodes]`.
pub fn twig_config_url(dir: &Path, url: &str, leaf: &str, extra: &str) -> String {
    format!(
        "server_name = \"gw1\"\nstore_dir = {:?}\n\
         [leafnodes]\nreconnect_delay_max = \"250ms\"\n{leaf}\n\
         [[leafnodes.remotes]]\nurls = [{url:?}]\n\
         [[streams]]\nname = \"ORDERS\"\nsubjects = [\"orders.>\"]\nmax_bytes = \"64MiB\"\n{extra}\n",
        dir.display().to_string(),
    )
}

pub fn payload(i: u64) -> bytes::Bytes {
    let mut p = format!("{i:010}-").into_bytes();
    p.resize(SIZE, b'x');
    p.into()
}

pub fn number(p: &[u8]) -> u64 {
    std::str::from_utf8(&p[..10])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a test payload: {:?}", String::from_utf8_lossy(p)))
}

/// Publishes `from..to` to twig with PubAcks, many in flight; returns twig's sequences.
pub async fn publish(url: &str, from: u64, to: u64) -> Vec<u64> {
    let js = jetstream::new(connect(url).await);
    let mut seqs = Vec::new();
    let mut i = from;
    while i < to {
        let end = (i + 4000).min(to);
        let mut acks = Vec::new();
        for k in i..end {
            acks.push(
                js.publish(format!("orders.{}", k % 7), payload(k))
                    .await
                    .unwrap(),
            );
        }
        for a in acks {
            seqs.push(
                tokio::time::timeout(common::STEP, a)
                    .await
                    .expect("PubAck in time")
                    .expect("PubAck")
                    .sequence,
            );
        }
        i = end;
    }
    seqs
}

/// Messages in the hub's stream (0 while the hub cannot answer).
pub async fn hub_count(js: &jetstream::Context, name: &str) -> u64 {
    match tokio::time::timeout(common::STEP, js.get_stream(name)).await {
        Ok(Ok(mut s)) => s.info().await.map_or(0, |i| i.state.messages),
        _ => 0,
    }
}

/// Waits until the hub's stream holds `want` messages; returns how long it took.
pub async fn wait_count(js: &jetstream::Context, name: &str, want: u64) -> Duration {
    wait_count_within(js, name, want, DRAIN_DEADLINE).await
}

/// [`wait_count`] with a deadline of its own (slow links).
pub async fn wait_count_within(
    js: &jetstream::Context,
    name: &str,
    want: u64,
    deadline: Duration,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let n = hub_count(js, name).await;
        assert!(n <= want, "the hub stream holds {n} > {want} messages");
        if n == want {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < deadline,
            "the hub stream holds {n} of {want} after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every message of the hub's stream, in stream order: (payload number, Nats-Msg-Id).
pub async fn read_back(js: &jetstream::Context, name: &str) -> Vec<(u64, String)> {
    let stream = js.get_stream(name).await.unwrap();
    let total = stream.cached_info().state.messages;
    let c = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut msgs = c.messages().await.unwrap();
    let mut out = Vec::with_capacity(total as usize);
    let deadline = Instant::now() + DRAIN_DEADLINE;
    while (out.len() as u64) < total {
        assert!(Instant::now() < deadline, "read {} of {total}", out.len());
        let m = tokio::time::timeout(common::STEP, msgs.next())
            .await
            .expect("next message in time")
            .expect("stream open")
            .expect("message");
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        out.push((number(&m.payload), id));
    }
    out
}

/// The hub holds exactly `want` (payload numbers), in this order, each with twig's id.
pub fn assert_exactly(got: &[(u64, String)], want: impl Iterator<Item = u64>) {
    let want: Vec<u64> = want.collect();
    let nums: Vec<u64> = got.iter().map(|g| g.0).collect();
    if nums != want {
        let first_bad = nums.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "the hub stream holds {} messages, want {}; first difference at index {first_bad:?}",
            nums.len(),
            want.len()
        );
    }
    for (n, id) in got {
        assert!(id.starts_with("gw1.ORDERS."), "message {n} has id {id:?}");
    }
}

pub fn stream_state(twig: &Twig) -> serde_json::Value {
    twig.monitor("/jsz")["streams"][0].clone()
}

/// Waits until twig's `/jsz` shows no backlog; returns the stream's state.
pub async fn wait_backlog_zero(twig: &Twig) -> serde_json::Value {
    let deadline = Instant::now() + common::STEP;
    loop {
        let s = stream_state(twig);
        if s["backlog"] == 0 && s["in_flight"] == 0 {
            return s;
        }
        assert!(Instant::now() < deadline, "backlog not drained: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
