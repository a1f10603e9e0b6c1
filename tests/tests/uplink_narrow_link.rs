//! The uplink over a narrow link (`twig_tests::link_emu` between twig and a real nats-server
//! 2.15 hub): a link dropped because a write blocked past `write_deadline` says so in the log,
//! instead of blaming the hub.

#[path = "common/uplink.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Twig, connect};
use twig_tests::hub::{Hub, HubVersion};
use twig_tests::link_emu::{LinkEmulator, LinkSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_blocked_past_the_deadline_is_logged_as_such() {
    let hub = Hub::start(HubVersion::V2_15);
    let leaf = format!("127.0.0.1:{}", hub.leaf_port).parse().unwrap();
    let link = LinkEmulator::start(
        LinkSpec::symmetric(20_000, Duration::from_millis(100)),
        leaf,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let twig = Twig::with_config(
        dir.path(),
        &format!(
            "[leafnodes]\nwrite_deadline = \"1s\"\nreconnect_delay_max = \"250ms\"\n\
             [[leafnodes.remotes]]\nurls = [\"nats-leaf://127.0.0.1:{}\"]\n",
            link.port()
        ),
    );
    twig.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let _sub = hc.subscribe("bulk.>").await.unwrap();
    hc.flush().await.unwrap();
    let local = connect(&twig.url()).await;
    common::interest_ready(&hc, &local).await;
    // The radio goes quiet with a megabyte on its way: more than the socket and the link's
    // queue hold, so twig's writer blocks. Random bytes: S2 (on by default) must not shrink
    // the megabyte to nothing.
    link.stall(Duration::from_secs(5));
    let mut rng = twig_core::testing::Rng::new(7);
    for _ in 0..1000 {
        let body: Vec<u8> = (0..1000).map(|_| rng.next_u64() as u8).collect();
        local.publish("bulk.data", body.into()).await.unwrap();
    }
    local.flush().await.unwrap();
    let t = Instant::now();
    twig.wait_log("Leafnode connection closed", 1);
    let log = twig.log();
    let line = log
        .lines()
        .find(|l| l.contains("Leafnode connection closed"))
        .unwrap_or_default()
        .to_owned();
    eprintln!("after {:?}: {line}", t.elapsed());
    assert!(
        line.contains("write deadline exceeded") && line.contains("write_deadline"),
        "{line}"
    );
    assert!(!line.contains("closed by the hub"), "{line}");
}
