//! Reloading stream limits (SIGHUP, `twig --signal reload`) on a running stream, with its
//! publisher connected throughout:
//!
//! - a lower `max_msgs` on a stream holding 50 messages marks the oldest 40 done at once, as
//!   a publish past the limit would (`/jsz` `expired`, `acked_seq`), `/jsz` shows the new
//!   `max_msgs`, `max_age` and `when_full`, and the next publishes keep to the new limit;
//! - a changed `max_bytes` (the file's size) is named in the log as needing a restart and the
//!   rest still reloads;
//! - a limit the file format does not allow refuses the whole reload: the limits in force
//!   stay;
//! - `when_full` switched by a reload decides the next publish into a full file (refused, then
//!   stored again over the oldest).

#[path = "common/uplink.rs"]
mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use async_nats::jetstream;
use common::*;
use futures::StreamExt;

fn config(dir: &Path, limits: &str) -> String {
    format!(
        "store_dir = {:?}\n[[streams]]\nname = \"ORDERS\"\nsubjects = [\"orders.>\"]\n{limits}\n",
        dir.display().to_string()
    )
}

/// `/jsz`'s entry of the one stream.
fn stream(twig: &Twig) -> serde_json::Value {
    twig.monitor("/jsz")["streams"][0].clone()
}

/// Waits until the stream's `/jsz` entry satisfies `ok`.
fn wait_stream(twig: &Twig, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + STEP;
    loop {
        let s = stream(twig);
        if ok(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: /jsz shows {s}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Sends the reload signal and waits for the `n`-th reload outcome in the log.
fn reload(twig: &Twig, n: usize) {
    twig.sut.signal("reload");
    twig.sut.wait_reloads(n, STEP);
}

async fn publish(js: &jetstream::Context, n: u64) -> u64 {
    js.publish("orders.new", format!("m{n}").into())
        .await
        .expect("publish")
        .await
        .expect("PubAck")
        .sequence
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_max_msgs_applies_to_the_running_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twig.toml");
    std::fs::write(&path, config(dir.path(), "max_msgs = 100")).unwrap();
    let twig = Twig::start(&["-c".into(), path.display().to_string()]);
    let c = async_nats::connect(twig.url()).await.expect("connect");
    let mut live = c.subscribe("orders.>").await.unwrap();
    c.flush().await.unwrap();
    let js = jetstream::new(c.clone());
    for n in 1..=50 {
        assert_eq!(publish(&js, n).await, n);
    }
    let s = stream(&twig);
    assert_eq!(
        (s["max_msgs"].as_u64(), s["expired"].as_u64()),
        (Some(100), Some(0)),
        "{s}"
    );
    assert_eq!(s["when_full"], "drop_oldest", "{s}");
    let max_bytes = s["max_bytes"].as_u64().unwrap();

    // Lower max_msgs, add max_age, refuse when full; and a bigger file, which needs a restart.
    std::fs::write(
        &path,
        config(
            dir.path(),
            "max_msgs = 10\nmax_age = \"1h\"\nwhen_full = \"refuse\"\nmax_bytes = \"128MiB\"",
        ),
    )
    .unwrap();
    reload(&twig, 1);
    let log = twig.log();
    assert!(log.contains("Reloaded: streams"), "{log}");
    assert!(log.contains("streams[ORDERS].max_bytes"), "{log}");
    wait_stream(&twig, "the new max_msgs in force", |s| {
        s["max_msgs"] == 10 && s["expired"] == 40 && s["acked_seq"] == 40
    });
    let s = stream(&twig);
    assert_eq!(s["max_age"].as_u64(), Some(3_600_000_000_000), "{s}");
    assert_eq!(s["when_full"], "refuse", "{s}");
    assert_eq!(
        s["max_bytes"].as_u64(),
        Some(max_bytes),
        "the file keeps its size: {s}"
    );
    assert_eq!(s["last_seq"], 50, "{s}");

    // The publisher never reconnected, and its next messages keep to the new limit.
    for n in 51..=55 {
        assert_eq!(publish(&js, n).await, n);
    }
    wait_stream(&twig, "max_msgs on new publishes", |s| {
        s["expired"] == 45 && s["acked_seq"] == 45
    });
    assert_eq!(c.statistics().connects.load(Ordering::Relaxed), 1);
    for n in 1..=55 {
        let m = tokio::time::timeout(STEP, live.next())
            .await
            .expect("live delivery in time")
            .unwrap();
        assert_eq!(m.payload, format!("m{n}").as_bytes());
    }

    // A max_bytes the file format does not allow refuses the whole reload.
    std::fs::write(
        &path,
        config(dir.path(), "max_msgs = 5\nmax_bytes = 100000"),
    )
    .unwrap();
    reload(&twig, 2);
    let log = twig.log();
    let refused = log
        .lines()
        .find(|l| l.contains("Failed to reload server configuration"))
        .unwrap_or_else(|| panic!("not refused:\n{log}"));
    assert!(refused.contains("max_bytes"), "{refused}");
    assert_eq!(publish(&js, 56).await, 56);
    wait_stream(&twig, "the limits in force stay", |s| s["last_seq"] == 56);
    let s = stream(&twig);
    assert_eq!(
        (s["max_msgs"].as_u64(), s["expired"].as_u64()),
        (Some(10), Some(46)),
        "{s}"
    );

    // Raising the limit back goes in force too (the reload compares with the limits in force).
    std::fs::write(&path, config(dir.path(), "max_msgs = 100")).unwrap();
    reload(&twig, 3);
    wait_stream(&twig, "max_msgs raised", |s| {
        s["max_msgs"] == 100 && s["when_full"] == "drop_oldest"
    });
    assert_eq!(c.statistics().connects.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_full_changed_by_a_reload_decides_the_next_publish() {
    // 128 KiB = 2 sectors; 4 KiB messages, nothing forwarded: it fills after ~30.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twig.toml");
    let limits = |when: &str| format!("max_bytes = 131072\nwhen_full = \"{when}\"");
    std::fs::write(&path, config(dir.path(), &limits("drop_oldest"))).unwrap();
    let twig = Twig::start(&["-c".into(), path.display().to_string()]);
    let c = async_nats::connect(twig.url()).await.expect("connect");
    let body = bytes::Bytes::from(vec![b'x'; 4096]);
    let pub_ack = |c: async_nats::Client, body: bytes::Bytes| async move {
        let r = c.request("orders.big", body).await.expect("PubAck");
        serde_json::from_slice::<serde_json::Value>(&r.payload).unwrap()
    };
    // Full several times over: the oldest are dropped, every publish is stored.
    for seq in 1..=100u64 {
        let v = pub_ack(c.clone(), body.clone()).await;
        assert_eq!(v["seq"], seq, "{v}");
    }
    assert!(stream(&twig)["dropped"].as_u64().unwrap() > 0);

    std::fs::write(&path, config(dir.path(), &limits("refuse"))).unwrap();
    reload(&twig, 1);
    wait_stream(&twig, "when_full = refuse in force", |s| {
        s["when_full"] == "refuse"
    });
    // The file is still full: once the sector being written is (at most 16 of these), the
    // next publish is refused as a full refuse-mode stream's, where drop_oldest stored it.
    let mut stored = 0u64;
    let v = loop {
        let v = pub_ack(c.clone(), body.clone()).await;
        if v.get("error").is_some() {
            break v;
        }
        stored += 1;
        assert!(stored <= 16, "still stored after a sector's worth: {v}");
    };
    assert_eq!(v["error"]["err_code"], 10077, "{v}");
    assert_eq!(stream(&twig)["refused"], 1);

    std::fs::write(&path, config(dir.path(), &limits("drop_oldest"))).unwrap();
    reload(&twig, 2);
    wait_stream(&twig, "when_full = drop_oldest in force", |s| {
        s["when_full"] == "drop_oldest"
    });
    let v = pub_ack(c.clone(), body.clone()).await;
    assert_eq!(v["seq"], 101 + stored, "{v}");
    assert_eq!(c.statistics().connects.load(Ordering::Relaxed), 1);
}
