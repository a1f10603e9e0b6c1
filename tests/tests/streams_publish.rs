//! Flash-backed streams against an official client: async-nats' JetStream publish works
//! against twig unchanged (PubAck shape, sequence numbers, `Nats-Msg-Id` duplicates), stored
//! messages survive restarts and `kill -9` right after their PubAcks, full streams refuse or
//! drop oldest as configured, and `/jsz` shows it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream;
use futures::StreamExt;
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target, free_port};

const STEP: Duration = Duration::from_secs(10);

struct Twig {
    server: ServerUnderTest,
    http: u16,
    _dir: tempfile::TempDir,
    file: PathBuf,
}

/// Starts twig with one stream `NAME` on `subjects`, its file in a temp dir, plus `extra`
/// lines inside the `[[streams]]` table.
fn start(subjects: &str, extra: &str) -> Twig {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.stream");
    let conf = dir.path().join("twig.toml");
    std::fs::write(
        &conf,
        format!(
            "store_dir = {:?}\n[[streams]]\nname = \"ORDERS\"\nsubjects = [{subjects}]\nfile = {:?}\n{extra}\n",
            dir.path().display().to_string(),
            file.display().to_string()
        ),
    )
    .unwrap();
    let http = free_port();
    let opts = ServerOptions {
        http_port: Some(http),
        extra_args: vec!["-c".into(), conf.display().to_string()],
        ..ServerOptions::new()
    };
    let server = ServerUnderTest::start_target(Target::Twig, &opts);
    Twig {
        server,
        http,
        _dir: dir,
        file,
    }
}

fn jsz(http: u16) -> serde_json::Value {
    let mut s = TcpStream::connect(("127.0.0.1", http)).expect("connect to monitor");
    s.set_read_timeout(Some(STEP)).unwrap();
    write!(
        s,
        "GET /jsz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let body = text.split("\r\n\r\n").nth(1).expect("body");
    let v: serde_json::Value = serde_json::from_str(body).expect("jsz JSON");
    v["streams"][0].clone()
}

async fn client(t: &Twig) -> async_nats::Client {
    tokio::time::timeout(STEP, async_nats::connect(t.server.url()))
        .await
        .expect("connect in time")
        .expect("connect")
}

#[tokio::test]
async fn pubacks_sequences_duplicates_and_restart() {
    let mut t = start("\"orders.>\"", "");
    let c = client(&t).await;
    let mut plain = c.subscribe("orders.>").await.unwrap();
    c.flush().await.unwrap();
    let js = jetstream::new(c.clone());

    for want in 1..=3u64 {
        let ack = js
            .publish("orders.new", format!("m{want}").into())
            .await
            .unwrap()
            .await
            .expect("PubAck");
        assert_eq!(
            (ack.stream.as_str(), ack.sequence, ack.duplicate),
            ("ORDERS", want, false)
        );
    }
    // Stored messages are still delivered to plain subscribers.
    for want in 1..=3u64 {
        let m = tokio::time::timeout(STEP, plain.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.payload, format!("m{want}").as_bytes());
    }

    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", "order-42");
    let first = js
        .publish_with_headers("orders.x", h.clone(), "a".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((first.sequence, first.duplicate), (4, false));
    let again = js
        .publish_with_headers("orders.x", h, "a".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        (again.sequence, again.duplicate),
        (4, true),
        "duplicate gets the original seq"
    );

    // The exact bytes (reference §4.1), through a plain request.
    let raw = c.request("orders.raw", "r".into()).await.unwrap();
    assert_eq!(&raw.payload[..], br#"{"stream":"ORDERS","seq":5}"#);
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", "order-42");
    let raw = c
        .request_with_headers("orders.x", h, "a".into())
        .await
        .unwrap();
    assert_eq!(
        &raw.payload[..],
        br#"{"stream":"ORDERS","seq":4,"duplicate": true}"#
    );
    // Not a stream subject: no-responders as before.
    assert!(c.request("other", "x".into()).await.is_err());

    let s = jsz(t.http);
    assert_eq!(s["name"], "ORDERS");
    assert_eq!(
        (s["first_seq"].as_u64(), s["last_seq"].as_u64()),
        (Some(1), Some(5)),
        "{s}"
    );
    assert_eq!(
        (s["messages"].as_u64(), s["backlog"].as_u64()),
        (Some(5), Some(5)),
        "{s}"
    );
    assert_eq!(
        (s["duplicates"].as_u64(), s["synced_seq"].as_u64()),
        (Some(2), Some(5)),
        "{s}"
    );
    drop(c);

    // Restart: the sequence goes on from the file.
    t.server.restart();
    let c = client(&t).await;
    let js = jetstream::new(c);
    let ack = js
        .publish("orders.new", "after".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 6);
    // The duplicate window was re-learned from the file.
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", "order-42");
    let again = js
        .publish_with_headers("orders.x", h, "a".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        (again.sequence, again.duplicate),
        (4, true),
        "dedup survives a restart"
    );
    let s = jsz(t.http);
    assert_eq!(
        (s["first_seq"].as_u64(), s["last_seq"].as_u64()),
        (Some(1), Some(6)),
        "{s}"
    );
}

#[tokio::test]
async fn every_acked_message_survives_kill_9() {
    let mut t = start("\"orders.>\"", "max_bytes = \"16MiB\"");
    let c = client(&t).await;
    let js = jetstream::new(c);
    let n = 5_000u64;
    // Many in flight: publish all, then collect the acks.
    let mut futs = Vec::new();
    for i in 0..n {
        futs.push(
            js.publish("orders.k", format!("msg-{i}").into())
                .await
                .unwrap(),
        );
    }
    let mut acked = Vec::new();
    for (i, f) in futs.into_iter().enumerate() {
        let ack = tokio::time::timeout(STEP, f)
            .await
            .unwrap()
            .expect("PubAck");
        acked.push((ack.sequence, format!("msg-{i}")));
    }
    // SIGKILL at once: nothing gets to flush anything.
    t.server.stop();
    let on_file = twig_tests::stream_file::records(&t.file, 16 << 20);
    let by_seq: std::collections::HashMap<u64, Vec<u8>> = on_file.into_iter().collect();
    for (seq, body) in &acked {
        assert_eq!(
            by_seq.get(seq).map(Vec::as_slice),
            Some(body.as_bytes()),
            "acked seq {seq} is on file"
        );
    }
    assert_eq!(acked.len() as u64, n);
}

#[tokio::test]
async fn full_stream_refuses_or_drops_oldest() {
    // 128 KiB = 2 sectors; 4 KiB messages, nothing forwarded: it fills after ~30.
    let t = start("\"orders.>\"", "max_bytes = 131072\nwhen_full = \"refuse\"");
    let c = client(&t).await;
    let body = bytes::Bytes::from(vec![b'x'; 4096]);
    let mut refused = None;
    for i in 0..200 {
        let r = c.request("orders.big", body.clone()).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
        if v.get("error").is_some() {
            refused = Some((i, v));
            break;
        }
    }
    let (i, v) = refused.expect("a full refuse-mode stream refuses");
    assert!(i > 10, "stored some first ({i})");
    assert_eq!(v["error"]["code"], 503, "{v}");
    assert_eq!(v["error"]["err_code"], 10077, "{v}");
    assert_eq!(v["stream"], "ORDERS");
    assert_eq!(v["seq"], 0);
    // async-nats sees a JetStream error.
    let js = jetstream::new(c.clone());
    assert!(
        js.publish("orders.big", body.clone())
            .await
            .unwrap()
            .await
            .is_err()
    );
    assert!(jsz(t.http)["refused"].as_u64().unwrap() >= 2);
    drop(t);

    let t = start(
        "\"orders.>\"",
        "max_bytes = 131072\nwhen_full = \"drop_oldest\"",
    );
    let c = client(&t).await;
    let js = jetstream::new(c);
    for want in 1..=200u64 {
        let ack = js
            .publish("orders.big", body.clone())
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.sequence, want);
    }
    let s = jsz(t.http);
    assert!(s["dropped"].as_u64().unwrap() > 100, "{s}");
    assert!(s["first_seq"].as_u64().unwrap() > 100, "{s}");
    assert_eq!(s["last_seq"], 200);
}

#[tokio::test]
async fn max_msgs_marks_older_messages_done() {
    let t = start("\"orders.*\", \"audit\"", "max_msgs = 10\nsync = \"50ms\"");
    let c = client(&t).await;
    let js = jetstream::new(c);
    for _ in 0..25 {
        js.publish("audit", "a".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let deadline = Instant::now() + STEP;
    loop {
        let s = jsz(t.http);
        if s["synced_seq"] == 25 {
            assert_eq!(s["acked_seq"], 15, "{s}");
            assert_eq!(s["backlog"], 10, "{s}");
            assert_eq!(s["expired"], 15, "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "interval sync never ran: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn max_age_marks_old_messages_done() {
    let t = start("\"orders.>\"", "max_age = \"1s\"");
    let c = client(&t).await;
    let js = jetstream::new(c);
    for _ in 0..5 {
        js.publish("orders.a", "a".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // Checked once a second by the stream's thread: done within a few seconds.
    let deadline = Instant::now() + STEP;
    loop {
        let s = jsz(t.http);
        if s["expired"] == 5 {
            assert_eq!(
                (s["acked_seq"].as_u64(), s["backlog"].as_u64()),
                (Some(5), Some(0)),
                "{s}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "max_age never applied: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_message_larger_than_a_sector_is_refused() {
    let t = start("\"orders.>\"", "");
    let c = client(&t).await;
    let r = c
        .request("orders.huge", bytes::Bytes::from(vec![b'x'; 70_000]))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    assert_eq!(v["error"]["code"], 400, "{v}");
    assert_eq!(
        (v["stream"].as_str(), v["seq"].as_u64()),
        (Some("ORDERS"), Some(0))
    );
    // The stream goes on.
    let r = c.request("orders.ok", "small".into()).await.unwrap();
    assert_eq!(&r.payload[..], br#"{"stream":"ORDERS","seq":1}"#);
    assert_eq!(jsz(t.http)["refused"], 1);
}
