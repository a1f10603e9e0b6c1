//! twig's uplink with S2 compression against real nats-server hubs, through a recording
//! proxy: every mode (twig's and the hub's), messages of every size both ways (empty to just
//! under max_payload, with and without headers), and the bytes each side wrote decoded with
//! twig-core's codec, split as the proxy read them and byte by byte.
//!
//! - The negotiation is nats-server's: the hub's `/leafz` and twig's show the mode each side
//!   uses; twig's INFO and CONNECT carry what a nats-server leaf would send.
//! - A 2.9 hub (no compression) gets the plain protocol, unchanged.

#[path = "common/uplink.rs"]
mod common;
#[path = "common/s2.rs"]
mod s2common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use s2common::*;
use twig_tests::hub::{Hub, HubOptions, HubVersion};
use twig_tests::recorder::{Direction, Recorder};

/// twig's TOML for one remote through `port` with `compression` (a TOML value).
fn remote(port: u16, compression: &str) -> String {
    format!(
        "server_name = \"edge_{port}\"\n[[leafnodes.remotes]]\nurls = [\"nats-leaf://127.0.0.1:{port}\"]\n\
         compression = {compression}\n"
    )
}

/// The JSON of the first `name` line in `plain` (`CONNECT {...}`, `INFO {...}`).
fn json_line(plain: &[u8], name: &str) -> serde_json::Value {
    let text = String::from_utf8_lossy(plain);
    let line = text
        .split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} line in {:?}", &text[..text.len().min(300)]));
    serde_json::from_str(line).unwrap()
}

/// Waits for the hub's `/leafz` to list the leaf; returns its entry.
async fn hub_leaf(hub: &Hub) -> serde_json::Value {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let leafz = http_json(hub.http_port, "/leafz");
        if leafz["leafnodes"] == 1 {
            return leafz["leafs"][0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "hub /leafz: {leafz}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The bytes twig wrote: its INFO line plain, then the S2 stream, decoded; or all plain when
/// nothing was negotiated. Returns (twig's INFO if any, the plain protocol).
fn twig_side(up: &Direction, compressed: bool) -> (Option<serde_json::Value>, Vec<u8>) {
    if !compressed {
        let all = up.bytes();
        assert!(
            all.starts_with(b"CONNECT "),
            "twig began with {:?}",
            &all[..20]
        );
        return (None, all);
    }
    let (info, plain) = decode_direction(up, None);
    // The same stream cut every byte (first reads) and every 1000 bytes decodes the same.
    let head = Direction {
        reads: up.reads.iter().take(3).cloned().collect(),
        cut: false,
    };
    assert_eq!(
        decode_direction(&head, Some(1)).1,
        decode_direction(&head, Some(7)).1
    );
    assert!(decode_direction(up, Some(1000)).1 == plain);
    let json: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO ")).unwrap();
    (Some(json), plain)
}

/// One case: a hub with `hub_mode`, twig with `twig_mode` (TOML value); `twig_uses` is the
/// mode twig must end up with (CONNECT `compress_mode`, twig's /leafz), `hub_uses` the hub's
/// (its /leafz).
async fn case(hub_mode: &str, twig_mode: &str, twig_uses: &str, hub_uses: &str) {
    let hub = Hub::start_with(
        HubVersion::V2_15,
        &HubOptions {
            leafnodes: format!("compression: {hub_mode}"),
            ..HubOptions::default()
        },
    );
    let rec = Recorder::start(SocketAddr::from(([127, 0, 0, 1], hub.leaf_port)));
    let twig = Twig::with_config(hub.dir(), &remote(rec.port, twig_mode));
    twig.wait_up(1);
    let tag = format!("hub {hub_mode}, twig {twig_mode}");
    assert_eq!(hub_leaf(&hub).await["compression"], hub_uses, "{tag}");
    let leafz = twig.monitor("/leafz");
    assert_eq!(
        leafz["leafs"][0]["compression"], twig_uses,
        "{tag}: {leafz}"
    );

    let hub_client = connect(&hub.client_url()).await;
    let twig_client = connect(&twig.url()).await;
    let mut at_hub = hub_client.subscribe("up.>").await.unwrap();
    interest_ready(&hub_client, &twig_client).await;
    let mut at_twig = twig_client.subscribe("down.>").await.unwrap();
    interest_ready(&twig_client, &hub_client).await;
    let up = messages("up", 11);
    let down = messages("down", 12);
    publish_all(&twig_client, &up).await;
    receive_all(&mut at_hub, &up).await;
    publish_all(&hub_client, &down).await;
    receive_all(&mut at_twig, &down).await;

    let conns = rec.connections();
    let conn = conns.first().expect("twig connected through the recorder");
    assert!(!conn.up.cut && !conn.down.cut);
    let twig_compresses = !matches!(twig_uses, "off" | "not supported");
    let (info, plain) = twig_side(&conn.up, twig_compresses);
    if let Some(info) = &info {
        // s2_auto is announced as itself (the level is twig's own business), as nats-server.
        let announced = if twig_mode.contains("s2_auto") {
            "s2_auto"
        } else {
            twig_uses
        };
        assert_eq!(info["compression"], announced, "{tag}: {info}");
        assert_ne!(info["client_id"], 0);
    }
    assert_eq!(
        json_line(&plain, "CONNECT")["compress_mode"],
        twig_uses,
        "{tag}"
    );
    let (sent, _) = messages_in(&plain, "up");
    assert!(sent == up, "{tag}: twig's bytes decode to other messages");
    // The hub's side: its plain INFO, then S2 once compression is on (either side's wish
    // turns it on for both directions).
    let down_bytes = if twig_compresses {
        let (info, plain) = decode_direction(&conn.down, None);
        assert!(info.starts_with("INFO "), "{tag}");
        plain
    } else {
        conn.down.bytes()
    };
    let (got, _) = messages_in(&down_bytes, "down");
    assert!(
        got == down,
        "{tag}: the hub's bytes decode to other messages"
    );
    eprintln!(
        "{tag}: up {} wire bytes for {} plain, down {} for {}",
        conn.up.bytes().len(),
        plain.len(),
        conn.down.bytes().len(),
        down_bytes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_fast_both_ways() {
    case("s2_fast", "\"s2_fast\"", "s2_fast", "s2_fast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_better_both_ways() {
    case("s2_better", "\"s2_better\"", "s2_better", "s2_better").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_best_both_ways() {
    case("s2_best", "\"s2_best\"", "s2_best", "s2_best").await;
}

/// s2_auto on both sides with an RTT under the first threshold: both frame without
/// compressing. (Thresholds of seconds: with the default 10 ms a loaded machine's loopback
/// can measure above it and pick s2_fast.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_auto_near_is_uncompressed_framing() {
    case(
        "{ mode: s2_auto, rtt_thresholds: [\"10s\", \"20s\", \"30s\"] }",
        "{ mode = \"s2_auto\", rtt_thresholds = [\"10s\", \"20s\", \"30s\"] }",
        "s2_uncompressed",
        "s2_uncompressed",
    )
    .await;
}

/// s2_auto with thresholds that make any RTT far: twig picks best, the auto way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_auto_with_thresholds_picks_its_level_by_rtt() {
    case(
        "s2_fast",
        "{ mode = \"s2_auto\", rtt_thresholds = [\"0\", \"0\", \"0\", \"1ns\"] }",
        "s2_best",
        "s2_fast",
    )
    .await;
}

/// twig accepting takes the hub's mode; the hub compresses at its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_takes_the_hubs_mode() {
    case("s2_better", "\"accept\"", "s2_better", "s2_better").await;
}

/// Off on either side, or accept on both: plain, and CONNECT says "off".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_on_either_side_is_plain() {
    case("s2_auto", "\"off\"", "off", "off").await;
    case("off", "\"s2_best\"", "off", "off").await;
    case("accept", "\"accept\"", "off", "off").await;
}

/// A 2.9 hub knows no compression: twig (default s2_auto) speaks the plain protocol and
/// says "not supported", as a 2.10+ nats-server leaf does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_9_hub_gets_the_plain_protocol() {
    let hub = Hub::start(HubVersion::V2_9);
    let rec = Recorder::start(SocketAddr::from(([127, 0, 0, 1], hub.leaf_port)));
    let twig = Twig::with_config(hub.dir(), &remote(rec.port, "\"s2_auto\""));
    twig.wait_up(1);
    assert_eq!(
        twig.monitor("/leafz")["leafs"][0]["compression"],
        "not supported"
    );
    let hub_client = connect(&hub.client_url()).await;
    let twig_client = connect(&twig.url()).await;
    let mut at_hub = hub_client.subscribe("up.>").await.unwrap();
    interest_ready(&hub_client, &twig_client).await;
    let mut at_twig = twig_client.subscribe("down.>").await.unwrap();
    interest_ready(&twig_client, &hub_client).await;
    let up = messages("up", 21);
    let down = messages("down", 22);
    publish_all(&twig_client, &up).await;
    receive_all(&mut at_hub, &up).await;
    publish_all(&hub_client, &down).await;
    receive_all(&mut at_twig, &down).await;
    let conns = rec.connections();
    let (_, plain) = twig_side(&conns[0].up, false);
    assert_eq!(
        json_line(&plain, "CONNECT")["compress_mode"],
        "not supported"
    );
    assert!(messages_in(&plain, "up").0 == up);
    assert!(messages_in(&conns[0].down.bytes(), "down").0 == down);
}
