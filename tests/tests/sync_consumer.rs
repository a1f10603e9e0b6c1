//! Sync from the cloud (`[[sync]]`): a durable pull consumer on a real nats-server 2.15 hub
//! stream, delivered to async-nats subscribers on twig, each once, after twig was away, across
//! hub restarts and `kill -9` of twig, and when the hub forgets its acks.

#[path = "common/uplink.rs"]
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::DeliverPolicy};
use async_nats::{HeaderMap, Subscriber};
use common::*;
use futures::StreamExt;
use twig_tests::hub::{Hub, HubOptions, HubVersion};

/// A 2.15 hub with JetStream (domain `hub`) whose store lives in `store` (kept across restarts).
fn js_hub(store: &Path) -> Hub {
    js_hub_version(store, HubVersion::V2_15)
}

fn js_hub_version(store: &Path, version: HubVersion) -> Hub {
    let options = HubOptions {
        extra: format!(
            "jetstream {{\n  store_dir: {:?}\n  domain: hub\n}}\n",
            store.display().to_string()
        ),
        ..HubOptions::default()
    };
    Hub::start_with(version, &options)
}

/// twig joined to `hub` with one `[[sync]]` consumer `edge` on `CMD`, filter `cmd.edge.>`.
fn twig_config(hub: &Hub, store: &Path) -> String {
    format!(
        r#"server_name = "edge-gw"
store_dir = {store:?}
[leafnodes]
reconnect_delay_max = "250ms"
[[leafnodes.remotes]]
urls = ["{url}"]
[[sync]]
stream = "CMD"
durable = "edge"
filter_subject = "cmd.edge.>"
api_prefix = "$JS.hub.API"
batch = 50
expires = "2s"
ack_wait = "2s"
retry_delay = "200ms"
request_timeout = "1s"
"#,
        store = store.display().to_string(),
        url = hub.leaf_url(),
    )
}

async fn make_stream(js: &jetstream::Context) {
    js.create_stream(jetstream::stream::Config {
        name: "CMD".into(),
        subjects: vec!["cmd.>".into()],
        ..Default::default()
    })
    .await
    .expect("create stream CMD");
}

/// Publishes `payload` to the hub stream with `N` and `Nats-Msg-Id` headers, retrying (with
/// the same id: the hub drops the repeat) until acknowledged.
async fn publish_acked(js: &jetstream::Context, subject: &str, payload: String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut h = HeaderMap::new();
        h.insert("N", payload.as_str());
        h.insert("Nats-Msg-Id", payload.as_str());
        let attempt = async {
            let ack = js
                .publish_with_headers(subject.to_string(), h, payload.clone().into())
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map(|_| ()).map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(())) => return,
            _ if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => panic!("{payload} not stored by the hub within 30s"),
        }
    }
}

/// Receives until `want` distinct payloads were seen (or `within` passes); returns payloads
/// in arrival order.
async fn receive(
    sub: &mut Subscriber,
    got: &mut Vec<(String, String)>,
    want: usize,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let distinct = got
            .iter()
            .map(|(_, p)| p)
            .collect::<std::collections::HashSet<_>>()
            .len();
        if distinct >= want {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sub.next()).await {
            Ok(Some(m)) => {
                let payload = String::from_utf8_lossy(&m.payload).into_owned();
                if let Some(h) = &m.headers {
                    assert_eq!(
                        h.get("N").map(|v| v.as_str()),
                        Some(payload.as_str()),
                        "headers kept"
                    );
                }
                got.push((m.subject.to_string(), payload));
            }
            Ok(None) => panic!("subscription ended"),
            Err(_) => panic!(
                "only {distinct} of {want} distinct messages within {within:?}: {:?}",
                &got[got.len().saturating_sub(5)..]
            ),
        }
    }
}

fn sync_state(twig: &Twig) -> serde_json::Value {
    twig.monitor("/jsz")["consumers"][0].clone()
}

#[tokio::test]
async fn a_backlog_from_while_twig_was_away_then_live_messages_each_once_in_order() {
    backlog_then_live(HubVersion::V2_15).await;
}

/// Debian's nats-server 2.9 as the hub: the same conversation works there too.
#[tokio::test]
async fn backlog_then_live_with_a_2_9_hub() {
    backlog_then_live(HubVersion::V2_9).await;
}

async fn backlog_then_live(version: HubVersion) {
    let js_store = tempfile::tempdir().unwrap();
    let twig_store = tempfile::tempdir().unwrap();
    let mut hub = js_hub_version(js_store.path(), version);
    let hc = connect(&hub.client_url()).await;
    let js = jetstream::new(hc.clone());
    make_stream(&js).await;
    for i in 0..200 {
        publish_acked(&js, &format!("cmd.edge.{}", i % 4), format!("b{i}")).await;
    }
    for i in 0..5 {
        publish_acked(&js, "cmd.other.x", format!("other{i}")).await;
    }
    // The hub is away when twig starts: the subscriber is in place before the link is up.
    hub.stop();
    let twig = Twig::with_config(twig_store.path(), &twig_config(&hub, twig_store.path()));
    let tc = connect(&twig.url()).await;
    let mut sub = tc.subscribe("cmd.>").await.unwrap();
    sync(&tc).await;
    assert_eq!(sync_state(&twig)["state"], "down");
    hub.restart();
    twig.wait_up(1);

    let mut got = Vec::new();
    receive(&mut sub, &mut got, 200, STEP).await;
    let want: Vec<(String, String)> = (0..200)
        .map(|i| (format!("cmd.edge.{}", i % 4), format!("b{i}")))
        .collect();
    assert_eq!(
        got, want,
        "the backlog, in order, once, under its own subjects"
    );

    // Live: published while the link is up, delivered at once, in order.
    let hc = connect(&hub.client_url()).await;
    let js = jetstream::new(hc.clone());
    for i in 0..20 {
        publish_acked(&js, "cmd.edge.live", format!("l{i}")).await;
    }
    let mut live = Vec::new();
    receive(&mut sub, &mut live, 20, STEP).await;
    let want: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
    assert_eq!(
        live.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
        want
    );
    assert_quiet(&mut sub).await;

    // The consumer twig created: durable, explicit acks, the filter; nothing left unacked.
    let stream = js.get_stream("CMD").await.unwrap();
    let deadline = Instant::now() + STEP;
    let info = loop {
        let info = stream
            .consumer_info("edge")
            .await
            .expect("consumer created");
        if info.num_ack_pending == 0 && info.num_pending == 0 {
            break info;
        }
        assert!(Instant::now() < deadline, "still unacked: {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(info.config.durable_name.as_deref(), Some("edge"));
    assert_eq!(info.config.ack_policy, AckPolicy::Explicit);
    assert_eq!(info.config.deliver_policy, DeliverPolicy::All);
    assert_eq!(info.config.filter_subject, "cmd.edge.>");
    assert_eq!(info.delivered.stream_sequence, 225);

    let st = sync_state(&twig);
    assert_eq!(st["state"], "pulling", "{st}");
    assert_eq!(st["delivered"], 220, "{st}");
    assert_eq!(st["skipped_duplicates"], 0, "{st}");
    assert_eq!(st["last_stream_seq"], 225, "{st}");
    assert_eq!(st["acked"], 220, "{st}");
}

#[tokio::test]
async fn hub_restarts_and_kill_9_of_twig_lose_nothing_and_deliver_nothing_twice() {
    const N: usize = 300;
    let js_store = tempfile::tempdir().unwrap();
    let twig_store = tempfile::tempdir().unwrap();
    let mut hub = js_hub(js_store.path());
    let hc = connect(&hub.client_url()).await;
    let js = jetstream::new(hc.clone());
    make_stream(&js).await;
    let mut twig = Twig::with_config(twig_store.path(), &twig_config(&hub, twig_store.path()));
    let tc = connect(&twig.url()).await;
    let mut sub = tc.subscribe("cmd.edge.>").await.unwrap();
    sync(&tc).await;
    twig.wait_up(1);

    // Publishes p0..p{N-1} at a steady pace; `pause` holds it between two messages.
    let sent = Arc::new(AtomicUsize::new(0));
    let pause = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (js, sent, pause) = (js.clone(), sent.clone(), pause.clone());
        tokio::spawn(async move {
            for i in 0..N {
                while pause.load(Ordering::Acquire) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                publish_acked(&js, &format!("cmd.edge.{}", i % 3), format!("p{i}")).await;
                sent.store(i + 1, Ordering::Release);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };

    let mut got = Vec::new();
    receive(&mut sub, &mut got, 60, STEP).await;
    // The hub dies mid-stream (kill -9) and comes back: deliveries and acks in flight are
    // lost with the link.
    hub.restart();
    receive(&mut sub, &mut got, 130, Duration::from_secs(30)).await;

    // twig is killed (-9) between two messages, then more are published while it is away.
    pause.store(true, Ordering::Release);
    let quiet = sent.load(Ordering::Acquire);
    receive(&mut sub, &mut got, quiet, Duration::from_secs(30)).await;
    // Quiet means twig also wrote down and acked what it delivered (the subscriber may see a
    // message before twig's state file has it: a kill in that window delivers it again, the
    // documented at-least-once side).
    wait_all_acked(&js).await;
    twig.sut.stop();
    pause.store(false, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent.load(Ordering::Acquire) < quiet + 40 {
        assert!(Instant::now() < deadline, "publisher stuck");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    twig.sut.restart();
    // async-nats re-subscribes on its own once twig listens again.
    receive(&mut sub, &mut got, quiet + 40, Duration::from_secs(30)).await;

    // Once more a hub restart while messages flow.
    hub.restart();
    receive(&mut sub, &mut got, N, Duration::from_secs(60)).await;
    publisher.await.unwrap();
    // Redeliveries of anything whose ack was lost come after ack_wait (2s): give them time
    // to show up as duplicates.
    let st_deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < st_deadline {
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            got.push((
                m.subject.to_string(),
                String::from_utf8_lossy(&m.payload).into_owned(),
            ));
        }
    }

    let mut count: HashMap<String, usize> = HashMap::new();
    for (_, p) in &got {
        *count.entry(p.clone()).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    for i in 0..N {
        assert_eq!(count.get(&format!("p{i}")), Some(&1), "p{i} lost");
    }
    let st = sync_state(&twig);
    eprintln!("after restarts: {st}");
}

#[tokio::test]
async fn a_hub_that_forgot_the_acks_gets_them_again_and_twig_delivers_nothing_twice() {
    let js_store = tempfile::tempdir().unwrap();
    let snapshot = tempfile::tempdir().unwrap();
    let twig_store = tempfile::tempdir().unwrap();
    let mut hub = js_hub(js_store.path());
    {
        let hc = connect(&hub.client_url()).await;
        let js = jetstream::new(hc.clone());
        make_stream(&js).await;
        for i in 0..50 {
            publish_acked(&js, "cmd.edge.a", format!("f{i}")).await;
        }
    }
    // The hub's store with the stream and no consumer yet.
    hub.stop();
    copy_dir(js_store.path(), snapshot.path());
    hub.restart();

    let mut twig = Twig::with_config(twig_store.path(), &twig_config(&hub, twig_store.path()));
    let tc = connect(&twig.url()).await;
    let mut sub = tc.subscribe("cmd.edge.>").await.unwrap();
    sync(&tc).await;
    let mut got = Vec::new();
    receive(&mut sub, &mut got, 50, STEP).await;
    assert_eq!(got.len(), 50);
    let deadline = Instant::now() + STEP;
    while sync_state(&twig)["acked"] != 50 {
        assert!(
            Instant::now() < deadline,
            "acks not confirmed: {}",
            sync_state(&twig)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // twig restarts (kill -9: what it remembers comes from its file), and the hub comes back
    // from the old store: no consumer, no acks. twig creates the consumer again and gets all
    // 50 from the start: each is recognised, acked, and not delivered again.
    twig.sut.restart();
    hub.stop();
    std::fs::remove_dir_all(js_store.path()).unwrap();
    copy_dir(snapshot.path(), js_store.path());
    hub.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sync_state(&twig)["skipped_duplicates"] != 50 {
        assert!(
            Instant::now() < deadline,
            "redeliveries not skipped: {}",
            sync_state(&twig)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A new message still arrives, and nothing else.
    let hc = connect(&hub.client_url()).await;
    let js = jetstream::new(hc.clone());
    publish_acked(&js, "cmd.edge.a", "new".into()).await;
    let mut more = Vec::new();
    receive(&mut sub, &mut more, 1, STEP).await;
    assert_eq!(more, [("cmd.edge.a".to_string(), "new".to_string())]);
    assert_quiet(&mut sub).await;
    let st = sync_state(&twig);
    assert_eq!(
        (st["delivered"].as_u64(), st["last_stream_seq"].as_u64()),
        (Some(1), Some(51)),
        "{st}"
    );
}

#[tokio::test]
async fn an_existing_consumer_is_used_as_it_is() {
    let js_store = tempfile::tempdir().unwrap();
    let twig_store = tempfile::tempdir().unwrap();
    let hub = js_hub(js_store.path());
    let hc = connect(&hub.client_url()).await;
    let js = jetstream::new(hc.clone());
    make_stream(&js).await;
    // Made by the operator with another filter: twig's create is refused ("consumer already
    // exists") and twig pulls from it unchanged.
    let stream = js.get_stream("CMD").await.unwrap();
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("edge".into()),
            filter_subject: "cmd.edge.only".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    publish_acked(&js, "cmd.edge.skip", "not-for-the-filter".into()).await;
    publish_acked(&js, "cmd.edge.only", "o1".into()).await;

    let twig = Twig::with_config(twig_store.path(), &twig_config(&hub, twig_store.path()));
    let tc = connect(&twig.url()).await;
    let mut sub = tc.subscribe("cmd.>").await.unwrap();
    sync(&tc).await;
    let mut got = Vec::new();
    receive(&mut sub, &mut got, 1, STEP).await;
    assert_eq!(got, [("cmd.edge.only".to_string(), "o1".to_string())]);
    assert_quiet(&mut sub).await;
    let info = stream.consumer_info("edge").await.unwrap();
    assert_eq!(info.config.filter_subject, "cmd.edge.only");
}

#[tokio::test]
async fn a_missing_stream_is_reported_and_picked_up_once_it_exists() {
    let js_store = tempfile::tempdir().unwrap();
    let twig_store = tempfile::tempdir().unwrap();
    let hub = js_hub(js_store.path());
    let twig = Twig::with_config(twig_store.path(), &twig_config(&hub, twig_store.path()));
    let tc = connect(&twig.url()).await;
    let mut sub = tc.subscribe("cmd.edge.>").await.unwrap();
    sync(&tc).await;
    let deadline = Instant::now() + STEP;
    loop {
        let st = sync_state(&twig);
        if st["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("stream not found"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no error shown: {st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hc = connect(&hub.client_url()).await;
    let js = jetstream::new(hc.clone());
    make_stream(&js).await;
    publish_acked(&js, "cmd.edge.go", "first".into()).await;
    let mut got = Vec::new();
    receive(&mut sub, &mut got, 1, STEP).await;
    assert_eq!(got, [("cmd.edge.go".to_string(), "first".to_string())]);
}

/// Waits until the hub's consumer has nothing pending or unacknowledged.
async fn wait_all_acked(js: &jetstream::Context) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = match js.get_stream("CMD").await {
            Ok(stream) => stream.consumer_info("edge").await.ok(),
            Err(_) => None,
        };
        if info
            .as_ref()
            .is_some_and(|i| i.num_ack_pending == 0 && i.num_pending == 0)
        {
            return;
        }
        assert!(Instant::now() < deadline, "consumer not drained: {info:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
