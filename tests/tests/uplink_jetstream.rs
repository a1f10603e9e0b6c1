//! A local client using the hub's JetStream through twig's uplink, as it would through a
//! nats-server leaf: a pull consumer's messages arrive under their stored subjects and its
//! acks reach the hub (nats-server moves the `@<subject>` suffix of the `$JS.ACK` reply into
//! the subject when it delivers to a client).

#[path = "common/uplink.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull};
use common::*;
use futures::StreamExt;
use twig_tests::hub::{Hub, HubOptions};

fn js_hub(store: &Path) -> Hub {
    let options = HubOptions {
        extra: format!(
            "jetstream {{\n  store_dir: {:?}\n}}\n",
            store.display().to_string()
        ),
        ..HubOptions::default()
    };
    Hub::start_with(twig_tests::hub::HubVersion::V2_15, &options)
}

#[tokio::test]
async fn a_pull_consumer_on_a_hub_stream_through_twig_gets_stored_subjects_and_its_acks_land() {
    let store = tempfile::tempdir().unwrap();
    let hub = js_hub(store.path());
    let hc = connect(&hub.client_url()).await;
    let hub_js = jetstream::new(hc.clone());
    let stream = hub_js
        .create_stream(jetstream::stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .expect("create stream");
    for i in 0..10 {
        hub_js
            .publish(format!("orders.eu.{i}"), format!("o{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    stream
        .create_consumer(pull::Config {
            durable_name: Some("app".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("create consumer");

    let twig = Twig::leaf_of(&hub);
    twig.wait_up(1);
    let tc = connect(&twig.url()).await;
    let js = jetstream::new(tc.clone());
    // Through twig: the hub's `$JS.API.>` interest carries the API requests up.
    let consumer: jetstream::consumer::PullConsumer = eventually_consumer(&js).await;
    let mut batch = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("fetch");
    let mut got = Vec::new();
    while let Some(m) = batch.next().await {
        let m = m.expect("message");
        got.push((
            m.subject.to_string(),
            String::from_utf8_lossy(&m.payload).into_owned(),
        ));
        m.ack().await.expect("ack");
        if got.len() == 10 {
            break;
        }
    }
    let want: Vec<_> = (0..10)
        .map(|i| (format!("orders.eu.{i}"), format!("o{i}")))
        .collect();
    assert_eq!(got, want, "stored subjects, in order");
    sync(&tc).await;

    // The acks reached the hub: nothing pending, nothing waiting for redelivery.
    let mut c: jetstream::consumer::PullConsumer = hub_js
        .get_consumer_from_stream("app", "ORDERS")
        .await
        .unwrap();
    let mut acked = false;
    for _ in 0..100 {
        let info = c.info().await.unwrap();
        if info.num_ack_pending == 0
            && info.num_pending == 0
            && info.ack_floor.stream_sequence == 10
        {
            acked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        acked,
        "the hub saw every ack: {:?}",
        c.info().await.unwrap()
    );
}

/// The consumer, once the hub's JetStream interest has reached twig.
async fn eventually_consumer(js: &jetstream::Context) -> jetstream::consumer::PullConsumer {
    for _ in 0..100 {
        if let Ok(c) = js.get_consumer_from_stream("app", "ORDERS").await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the hub's JetStream API is not reachable through twig");
}
