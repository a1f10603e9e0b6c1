//! Traffic through the uplink against real hubs (nats-server 2.15 and Debian's 2.9): twig is a
//! leafnode of the hub; async-nats clients on both sides.

#[path = "common/uplink.rs"]
mod common;

use std::collections::HashMap;

use async_nats::{HeaderMap, Subscriber};
use bytes::Bytes;
use common::*;
use twig_tests::hub::{Hub, HubVersion};

async fn pub_sub_both_ways(v: HubVersion) {
    let hub = Hub::start(v);
    let twig = Twig::leaf_of(&hub);
    twig.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let tc = connect(&twig.url()).await;

    let mut at_hub = hc.subscribe("up.>").await.unwrap();
    interest_ready(&hc, &tc).await;
    let mut at_twig = tc.subscribe("down.*").await.unwrap();
    interest_ready(&tc, &hc).await;

    tc.publish("up.a", "from twig".into()).await.unwrap();
    let mut h = HeaderMap::new();
    h.insert("Edge-Id", "gw-7");
    tc.publish_with_headers("up.b.c", h.clone(), "with headers".into())
        .await
        .unwrap();
    hc.publish("down.x", "from hub".into()).await.unwrap();
    hc.publish_with_headers("down.y", h, "hub headers".into())
        .await
        .unwrap();
    // Not matching either side's interest: goes nowhere.
    tc.publish("elsewhere", "x".into()).await.unwrap();

    let m = next(&mut at_hub).await;
    assert_eq!(
        (m.subject.as_str(), &m.payload[..]),
        ("up.a", &b"from twig"[..])
    );
    let m = next(&mut at_hub).await;
    assert_eq!(m.subject.as_str(), "up.b.c");
    assert_eq!(m.headers.unwrap().get("Edge-Id").unwrap().as_str(), "gw-7");
    let m = next(&mut at_twig).await;
    assert_eq!(
        (m.subject.as_str(), &m.payload[..]),
        ("down.x", &b"from hub"[..])
    );
    let m = next(&mut at_twig).await;
    assert_eq!(m.payload, Bytes::from("hub headers"));
    assert_eq!(m.headers.unwrap().get("Edge-Id").unwrap().as_str(), "gw-7");
    assert_quiet(&mut at_hub).await;
    assert_quiet(&mut at_twig).await;

    // Monitoring on both sides sees the link.
    let leafz = twig.monitor("/leafz?subs=1");
    assert_eq!(leafz["leafnodes"], 1, "{leafz}");
    let leaf = &leafz["leafs"][0];
    assert_eq!(leaf["account"], "$G");
    assert_eq!(leaf["is_spoke"], true);
    assert!(leaf["out_msgs"].as_u64().unwrap() >= 2, "{leaf}");
    assert!(leaf["in_msgs"].as_u64().unwrap() >= 2, "{leaf}");
    let subs = leaf["subscriptions_list"].as_array().unwrap();
    assert!(subs.iter().any(|s| s == "up.>"), "{leaf}");
    assert_eq!(twig.monitor("/varz")["leafnodes"], 1);
    assert_eq!(twig.monitor("/healthz?leafnodes=true")["status"], "ok");
    let hub_leafz = http_json(hub.http_port, "/leafz?subs=1");
    assert_eq!(hub_leafz["leafnodes"], 1, "{hub_leafz}");
    let hub_side = hub_leafz["leafs"][0]["subscriptions_list"].to_string();
    assert!(hub_side.contains("down.*"), "{hub_side}");
}
per_version!(pub_sub_both_ways);

/// Collects `want` messages from the subscribers; returns payload -> how many times seen.
async fn collect(subs: &mut [&mut Subscriber], want: usize) -> HashMap<Bytes, usize> {
    let mut seen: HashMap<Bytes, usize> = HashMap::new();
    let deadline = std::time::Instant::now() + STEP;
    let mut total = 0;
    while total < want {
        assert!(
            std::time::Instant::now() < deadline,
            "only {total} of {want} messages arrived"
        );
        for s in subs.iter_mut() {
            let got = tokio::time::timeout(
                std::time::Duration::from_millis(5),
                futures::StreamExt::next(s),
            )
            .await;
            if let Ok(Some(m)) = got {
                *seen.entry(m.payload).or_default() += 1;
                total += 1;
            }
        }
    }
    for s in subs.iter_mut() {
        assert_quiet(s).await;
    }
    seen
}

fn exactly_once(seen: &HashMap<Bytes, usize>, prefix: &str, n: usize) {
    for i in 0..n {
        let key = Bytes::from(format!("{prefix}{i}"));
        assert_eq!(
            seen.get(&key),
            Some(&1),
            "{prefix}{i} seen {:?} times",
            seen.get(&key)
        );
    }
}

async fn queue_group_on_both_sides_gets_each_message_once(v: HubVersion) {
    let hub = Hub::start(v);
    let twig = Twig::leaf_of(&hub);
    twig.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let tc = connect(&twig.url()).await;
    let mut h1 = hc
        .queue_subscribe("jobs.run", "workers".into())
        .await
        .unwrap();
    let mut h2 = hc
        .queue_subscribe("jobs.*", "workers".into())
        .await
        .unwrap();
    let mut t1 = tc
        .queue_subscribe("jobs.run", "workers".into())
        .await
        .unwrap();
    let mut t2 = tc
        .queue_subscribe("jobs.>", "workers".into())
        .await
        .unwrap();
    interest_ready(&hc, &tc).await;
    interest_ready(&tc, &hc).await;

    const N: usize = 100;
    for i in 0..N {
        hc.publish("jobs.run", format!("h{i}").into())
            .await
            .unwrap();
        tc.publish("jobs.run", format!("t{i}").into())
            .await
            .unwrap();
    }
    let seen = collect(&mut [&mut h1, &mut h2, &mut t1, &mut t2], 2 * N).await;
    exactly_once(&seen, "h", N);
    exactly_once(&seen, "t", N);

    // Only the hub's members left: twig must name the group in its LMSG, or the hub would
    // deliver to no queue subscriber at all.
    t1.unsubscribe().await.unwrap();
    t2.unsubscribe().await.unwrap();
    sync(&tc).await;
    for i in 0..N {
        tc.publish("jobs.run", format!("up{i}").into())
            .await
            .unwrap();
    }
    let seen = collect(&mut [&mut h1, &mut h2], N).await;
    exactly_once(&seen, "up", N);

    // Only twig's members left: the hub names the group, twig delivers to one member.
    let mut t3 = tc
        .queue_subscribe("jobs.run", "workers".into())
        .await
        .unwrap();
    let mut t4 = tc
        .queue_subscribe("jobs.run", "workers".into())
        .await
        .unwrap();
    interest_ready(&tc, &hc).await;
    h1.unsubscribe().await.unwrap();
    h2.unsubscribe().await.unwrap();
    sync(&hc).await;
    for i in 0..N {
        hc.publish("jobs.run", format!("down{i}").into())
            .await
            .unwrap();
    }
    let seen = collect(&mut [&mut t3, &mut t4], N).await;
    exactly_once(&seen, "down", N);
}
per_version!(queue_group_on_both_sides_gets_each_message_once);

async fn request_reply_both_ways(v: HubVersion) {
    let hub = Hub::start(v);
    let twig = Twig::leaf_of(&hub);
    twig.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let tc = connect(&twig.url()).await;

    // A responder on each side; each answers one request, then unsubscribes.
    let responder = |client: async_nats::Client, mut sub: Subscriber, tag: &'static str| {
        tokio::spawn(async move {
            if let Some(m) = futures::StreamExt::next(&mut sub).await
                && let Some(reply) = m.reply
            {
                let body = format!("{tag}:{}", String::from_utf8_lossy(&m.payload));
                client.publish(reply, body.into()).await.unwrap();
            }
            sub.unsubscribe().await.unwrap();
            client.flush().await.unwrap();
        })
    };
    let hub_svc = hc.subscribe("svc.hub").await.unwrap();
    let hub_task = responder(hc.clone(), hub_svc, "hub");
    interest_ready(&hc, &tc).await;
    let twig_svc = tc.subscribe("svc.twig").await.unwrap();
    let _twig_task = responder(tc.clone(), twig_svc, "twig");
    interest_ready(&tc, &hc).await;

    // The only interest in svc.hub is remote: a reply, not a 503.
    let r = tokio::time::timeout(STEP, tc.request("svc.hub", "ping".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.payload, Bytes::from("hub:ping"));
    let r = tokio::time::timeout(STEP, hc.request("svc.twig", "pong".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.payload, Bytes::from("twig:pong"));

    // Nobody anywhere: twig answers 503 at once.
    let e = tc.request("svc.none", "x".into()).await.unwrap_err();
    assert_eq!(e.kind(), async_nats::RequestErrorKind::NoResponders, "{e}");

    // The hub's responder went away: once twig hears the LS-, requests get a 503 again.
    hub_task.await.unwrap();
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let req = async_nats::Request::new()
            .payload("x".into())
            .timeout(Some(std::time::Duration::from_millis(300)));
        match tc.send_request("svc.hub", req).await {
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => break,
            _ => assert!(std::time::Instant::now() < deadline, "no 503 after LS-"),
        }
    }
}
per_version!(request_reply_both_ways);

async fn removed_interest_stops_the_flow(v: HubVersion) {
    let hub = Hub::start(v);
    let twig = Twig::leaf_of(&hub);
    twig.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let tc = connect(&twig.url()).await;
    let leaf = |key: &str| twig.monitor("/leafz")["leafs"][0][key].as_u64().unwrap();

    // Hub side unsubscribes: twig stops sending up.
    let mut at_hub = hc.subscribe("flow.up").await.unwrap();
    interest_ready(&hc, &tc).await;
    tc.publish("flow.up", "1".into()).await.unwrap();
    next(&mut at_hub).await;
    at_hub.unsubscribe().await.unwrap();
    eventually("twig hears the hub's LS-", || {
        !twig.monitor("/leafz?subs=1")["leafs"][0]["subscriptions_list"]
            .to_string()
            .contains("flow.up")
    })
    .await;
    let out_before = leaf("out_msgs");
    for _ in 0..10 {
        tc.publish("flow.up", "dropped at the edge".into())
            .await
            .unwrap();
    }
    sync(&tc).await;
    assert_eq!(
        leaf("out_msgs"),
        out_before,
        "twig still forwards without interest"
    );

    // Twig side unsubscribes: the hub stops sending down.
    let mut at_twig = tc.subscribe("flow.down").await.unwrap();
    let mut marker = tc.subscribe("flow.marker").await.unwrap();
    interest_ready(&tc, &hc).await;
    hc.publish("flow.down", "1".into()).await.unwrap();
    next(&mut at_twig).await;
    at_twig.unsubscribe().await.unwrap();
    let hub_port = hub.http_port;
    eventually("the hub hears twig's LS-", || {
        !http_json(hub_port, "/leafz?subs=1")["leafs"][0]["subscriptions_list"]
            .to_string()
            .contains("flow.down")
    })
    .await;
    let in_before = leaf("in_msgs");
    for _ in 0..10 {
        hc.publish("flow.down", "not for twig".into())
            .await
            .unwrap();
    }
    // The marker leaves the hub after those ten, on the same link: once it is here, any of
    // them that had been sent would be here too.
    hc.publish("flow.marker", "m".into()).await.unwrap();
    next(&mut marker).await;
    assert_eq!(
        leaf("in_msgs") - in_before,
        1,
        "the hub still sent flow.down after twig's LS-"
    );
}
per_version!(removed_interest_stops_the_flow);

async fn two_twigs_exchange_messages_through_the_hub(v: HubVersion) {
    let hub = Hub::start(v);
    let a = Twig::leaf_of(&hub);
    let b = Twig::leaf_of(&hub);
    a.wait_up(1);
    b.wait_up(1);
    let ac = connect(&a.url()).await;
    let bc = connect(&b.url()).await;
    let mut at_a = ac.subscribe("site.a.>").await.unwrap();
    interest_ready(&ac, &bc).await;
    let mut at_b = bc.subscribe("site.b.>").await.unwrap();
    interest_ready(&bc, &ac).await;
    bc.publish("site.a.cmd", "from b".into()).await.unwrap();
    ac.publish("site.b.cmd", "from a".into()).await.unwrap();
    assert_eq!(next(&mut at_a).await.payload, Bytes::from("from b"));
    assert_eq!(next(&mut at_b).await.payload, Bytes::from("from a"));
    // Request/reply across two edges.
    let svc = bc.subscribe("site.b.svc").await.unwrap();
    let bc2 = bc.clone();
    tokio::spawn(async move {
        let mut svc = svc;
        while let Some(m) = futures::StreamExt::next(&mut svc).await {
            if let Some(r) = m.reply {
                bc2.publish(r, "served by b".into()).await.unwrap();
            }
        }
    });
    interest_ready(&bc, &ac).await;
    let r = tokio::time::timeout(STEP, ac.request("site.b.svc", "q".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.payload, Bytes::from("served by b"));
    assert_quiet(&mut at_a).await;
}
per_version!(two_twigs_exchange_messages_through_the_hub);

async fn messages_over_the_hubs_max_payload_are_dropped_not_fatal(v: HubVersion) {
    let hub = Hub::start_with(
        v,
        &twig_tests::hub::HubOptions {
            extra: "max_payload: 1024".into(),
            ..Default::default()
        },
    );
    let twig = Twig::leaf_of(&hub);
    twig.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let tc = connect(&twig.url()).await;
    let mut at_hub = hc.subscribe("big.>").await.unwrap();
    interest_ready(&hc, &tc).await;
    // twig accepts 2 KiB locally (its own max_payload is 1 MiB) but the hub would close the
    // link over it: it stays at the edge, counted, and the link lives on.
    tc.publish("big.one", vec![b'x'; 2048].into())
        .await
        .unwrap();
    tc.publish("big.two", "small".into()).await.unwrap();
    let m = next(&mut at_hub).await;
    assert_eq!(m.subject.as_str(), "big.two");
    let leafz = twig.monitor("/leafz");
    assert_eq!(leafz["remotes"][0]["dropped_msgs"], 1, "{leafz}");
    assert_eq!(leafz["remotes"][0]["connects"], 1, "{leafz}");
}
per_version!(messages_over_the_hubs_max_payload_are_dropped_not_fatal);
