//! async-nats against the server under test (`TWIG_TEST_TARGET=twig|nats-server`):
//! what applications do every day. Each test starts its own server.

use async_nats::{Client, ConnectOptions, HeaderMap, Message, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use twig_tests::harness::{RawConn, ServerOptions, ServerUnderTest};

const STEP: Duration = Duration::from_secs(5);

async fn connect(server: &ServerUnderTest) -> Client {
    ConnectOptions::new()
        .connection_timeout(STEP)
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.url()))
}

/// A server round trip: once this returns, the server has processed everything `client` sent
/// before, and the client has received everything the server sent it before. (async-nats'
/// `flush` only flushes the socket, it does not wait for a PONG.)
async fn sync(client: &Client) {
    let inbox = client.new_inbox();
    let mut s = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, Bytes::new()).await.unwrap();
    next(&mut s).await;
}

async fn next(sub: &mut Subscriber) -> Message {
    tokio::time::timeout(STEP, sub.next())
        .await
        .expect("no message within deadline")
        .expect("subscription ended")
}

/// The stream yields nothing more for a short while (used after everything expected arrived).
async fn assert_quiet(sub: &mut Subscriber) {
    if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        panic!("unexpected extra message on {}: {:?}", m.subject, m.payload);
    }
}

#[tokio::test]
async fn publish_subscribe_delivers_in_order() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let sub_client = connect(&server).await;
    let pub_client = connect(&server).await;
    let mut sub = sub_client.subscribe("greet.joe").await.unwrap();
    sync(&sub_client).await;

    for i in 0..10 {
        pub_client
            .publish("greet.joe", format!("hello {i}").into())
            .await
            .unwrap();
    }
    pub_client
        .publish("greet.bob", "not for joe".into())
        .await
        .unwrap();
    sync(&pub_client).await;

    for i in 0..10 {
        let m = next(&mut sub).await;
        assert_eq!(m.subject.as_str(), "greet.joe");
        assert_eq!(m.payload, Bytes::from(format!("hello {i}")));
        assert!(m.headers.is_none());
    }
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn empty_and_binary_payloads_arrive_unchanged() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let client = connect(&server).await;
    let mut sub = client.subscribe("bin").await.unwrap();
    sync(&client).await;
    let binary: Vec<u8> = (0..=255u8)
        .chain(b"\r\nPUB x 1\r\n".iter().copied())
        .collect();
    client.publish("bin", Bytes::new()).await.unwrap();
    client.publish("bin", binary.clone().into()).await.unwrap();
    assert_eq!(next(&mut sub).await.payload, Bytes::new());
    assert_eq!(next(&mut sub).await.payload, Bytes::from(binary));
}

#[tokio::test]
async fn wildcards_star_matches_one_token_and_gt_the_rest() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let sub_client = connect(&server).await;
    let pub_client = connect(&server).await;
    let mut star = sub_client.subscribe("sensors.*.temp").await.unwrap();
    let mut gt = sub_client.subscribe("sensors.>").await.unwrap();
    sync(&sub_client).await;

    for s in [
        "sensors.a.temp",
        "sensors.a.humidity",
        "sensors",
        "sensors.b.temp",
        "sensors.a.temp.x",
        "other.a.temp",
        "sensors.end.temp", // matches both: marks the end
    ] {
        pub_client.publish(s, s.into()).await.unwrap();
    }
    sync(&pub_client).await;

    async fn until_end(sub: &mut Subscriber) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            let m = next(sub).await;
            got.push(m.subject.to_string());
            if m.subject.as_str() == "sensors.end.temp" {
                return got;
            }
        }
    }
    assert_eq!(
        until_end(&mut star).await,
        ["sensors.a.temp", "sensors.b.temp", "sensors.end.temp"]
    );
    assert_eq!(
        until_end(&mut gt).await,
        [
            "sensors.a.temp",
            "sensors.a.humidity",
            "sensors.b.temp",
            "sensors.a.temp.x",
            "sensors.end.temp"
        ]
    );
}

#[tokio::test]
async fn queue_group_delivers_each_message_once_across_members() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u32)>();
    let mut members = Vec::new();
    for member in 0..3 {
        let client = connect(&server).await;
        let mut sub = client
            .queue_subscribe("orders.new", "workers".into())
            .await
            .unwrap();
        sync(&client).await;
        let tx = tx.clone();
        members.push(tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let n: u32 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                if tx.send((member, n)).is_err() {
                    break;
                }
            }
            drop(client);
        }));
    }
    drop(tx);
    let watcher = connect(&server).await;
    let mut all = watcher.subscribe("orders.new").await.unwrap();
    sync(&watcher).await;

    let publisher = connect(&server).await;
    for n in 0..300u32 {
        publisher
            .publish("orders.new", n.to_string().into())
            .await
            .unwrap();
    }
    sync(&publisher).await;

    let mut per_member: HashMap<usize, usize> = HashMap::new();
    let mut seen = BTreeSet::new();
    for _ in 0..300 {
        let (member, n) = tokio::time::timeout(STEP, rx.recv())
            .await
            .expect("queue group stopped receiving")
            .expect("members ended");
        assert!(seen.insert(n), "message {n} delivered twice in the group");
        *per_member.entry(member).or_default() += 1;
    }
    if let Ok(Some((m, n))) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("extra delivery of {n} to member {m}");
    }
    assert_eq!(seen.len(), 300);
    assert_eq!(
        per_member.len(),
        3,
        "every member gets some: {per_member:?}"
    );

    for n in 0..300u32 {
        assert_eq!(next(&mut all).await.payload, Bytes::from(n.to_string()));
    }
    assert_quiet(&mut all).await;
    for m in members {
        m.abort();
    }
}

#[tokio::test]
async fn request_reply_round_trips() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let responder = connect(&server).await;
    let mut svc = responder.subscribe("svc.echo").await.unwrap();
    sync(&responder).await;
    let replier = responder.clone();
    let task = tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            let reply = m.reply.expect("request has a reply subject");
            let mut body = b"echo:".to_vec();
            body.extend_from_slice(&m.payload);
            replier.publish(reply, body.into()).await.unwrap();
        }
    });

    let requester = connect(&server).await;
    for i in 0..20 {
        let resp = requester
            .request("svc.echo", format!("q{i}").into())
            .await
            .expect("request answered");
        assert_eq!(resp.payload, Bytes::from(format!("echo:q{i}")));
    }
    task.abort();
}

#[tokio::test]
async fn headers_round_trip_between_clients() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let client = connect(&server).await;
    let mut sub = client.subscribe("hdr.test").await.unwrap();
    sync(&client).await;

    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", "abc-1");
    headers.insert("Unit", "C");
    headers.append("Multi", "one");
    headers.append("Multi", "two");
    client
        .publish_with_headers("hdr.test", headers, "21.5".into())
        .await
        .unwrap();
    let m = next(&mut sub).await;
    let h = m.headers.expect("headers delivered");
    assert_eq!(h.get("Nats-Msg-Id").map(|v| v.as_str()), Some("abc-1"));
    assert_eq!(h.get("Unit").map(|v| v.as_str()), Some("C"));
    let multi: Vec<&str> = h.get_all("Multi").map(|v| v.as_str()).collect();
    assert_eq!(multi, ["one", "two"]);
    assert_eq!(m.payload, Bytes::from("21.5"));

    // Headers-only message with an empty payload.
    let mut only = HeaderMap::new();
    only.insert("K", "v");
    client
        .publish_with_headers("hdr.test", only, Bytes::new())
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(
        m.headers.and_then(|h| h.get("K").map(|v| v.to_string())),
        Some("v".into())
    );
    assert!(m.payload.is_empty());
}

#[tokio::test]
async fn client_without_headers_gets_plain_msg_with_headers_stripped() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let addr = server.addr();
    let mut raw = tokio::task::spawn_blocking(move || {
        let mut raw = RawConn::connect(&addr);
        raw.read_info(STEP);
        raw.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false}\r\nSUB hdr.strip 7\r\n");
        raw.ping_pong(STEP);
        raw
    })
    .await
    .unwrap();

    let client = connect(&server).await;
    let mut headers = HeaderMap::new();
    headers.insert("A", "b");
    client
        .publish_with_headers("hdr.strip", headers, "hello".into())
        .await
        .unwrap();
    sync(&client).await;

    let text = tokio::task::spawn_blocking(move || {
        raw.expect("hello\r\n", STEP);
        raw.ping_pong(STEP);
        raw.text()
    })
    .await
    .unwrap();
    assert!(
        text.contains("\r\nMSG hdr.strip 7 5\r\nhello\r\n"),
        "expected a plain MSG of the payload only, got {text:?}"
    );
    assert!(
        !text.contains("HMSG") && !text.contains("NATS/1.0"),
        "{text:?}"
    );
}

#[tokio::test]
async fn request_without_responders_fails_fast() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let client = ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(server.url())
        .await
        .unwrap();
    let started = Instant::now();
    let err = client
        .request("nobody.home", "anyone?".into())
        .await
        .expect_err("nobody answers");
    assert_eq!(
        err.kind(),
        async_nats::RequestErrorKind::NoResponders,
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no-responders took {:?}: the server must answer with a 503 at once",
        started.elapsed()
    );
}

#[tokio::test]
async fn auto_unsubscribe_stops_after_max_messages() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let client = connect(&server).await;
    let mut sub = client.subscribe("limited").await.unwrap();
    sub.unsubscribe_after(3).await.unwrap();
    sync(&client).await;
    // A second subscriber shows the server went on routing the later messages.
    let mut witness = client.subscribe("limited").await.unwrap();
    sync(&client).await;

    for i in 0..5 {
        client
            .publish("limited", format!("m{i}").into())
            .await
            .unwrap();
    }
    sync(&client).await;
    for i in 0..3 {
        assert_eq!(next(&mut sub).await.payload, Bytes::from(format!("m{i}")));
    }
    let end = tokio::time::timeout(STEP, sub.next())
        .await
        .expect("stream ends");
    assert!(end.is_none(), "got a 4th message: {end:?}");
    for i in 0..5 {
        assert_eq!(
            next(&mut witness).await.payload,
            Bytes::from(format!("m{i}"))
        );
    }
}

#[tokio::test]
async fn drain_delivers_pending_messages_then_ends() {
    let server = ServerUnderTest::start(&ServerOptions::new());
    let sub_client = connect(&server).await;
    let pub_client = connect(&server).await;
    let mut sub = sub_client.subscribe("work").await.unwrap();
    sync(&sub_client).await;
    for i in 0..50 {
        pub_client
            .publish("work", format!("{i}").into())
            .await
            .unwrap();
    }
    // After the publisher's round trip the server has routed all 50, after the subscriber's
    // they reached the client (async-nats drops what is still in flight when draining).
    sync(&pub_client).await;
    sync(&sub_client).await;
    sub.drain().await.unwrap();

    let mut got = Vec::new();
    while let Some(m) = tokio::time::timeout(STEP, sub.next())
        .await
        .expect("drain ends")
    {
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    let want: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(got, want);

    // Draining the whole client closes it after its subscriptions are drained.
    let mut other = sub_client.subscribe("work2").await.unwrap();
    sync(&sub_client).await;
    pub_client.publish("work2", "last".into()).await.unwrap();
    sync(&pub_client).await;
    sync(&sub_client).await;
    sub_client.drain().await.unwrap();
    assert_eq!(next(&mut other).await.payload, Bytes::from("last"));
    let end = tokio::time::timeout(STEP, other.next())
        .await
        .expect("stream ends");
    assert!(end.is_none());
}
