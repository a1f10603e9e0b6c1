//! twig-core's S2 codec against real nats-servers.
//!
//! - Captures: a nats-server 2.15 hub and a nats-server leaf, both with the same
//!   `compression` mode, joined through a recording proxy. Messages of every kind go both
//!   ways; the bytes each server wrote must decode (split exactly as the proxy read them, and
//!   byte by byte) to the protocol carrying exactly those messages.
//! - Interop: a leaf spoken by hand (`leaf_raw`: twig-core's wire and S2 codecs) negotiates
//!   with a 2.15 hub in every mode, sends with our encoder, reads with our decoder through
//!   tiny reads; against 2.9 the negotiation falls back to plain text.

#[path = "common/uplink.rs"]
mod common;
#[path = "common/s2.rs"]
mod s2common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use s2common::*;
use tokio::time::Instant;
use twig_core::s2::mode::{LeafPlan, Mode};
use twig_core::s2::{Decoder, Level, MAX_BLOCK_SIZE};
use twig_core::testing::Rng;
use twig_core::wire::Op;
use twig_tests::hub::{Hub, HubOptions, HubVersion};
use twig_tests::leaf_raw::{Got, RawLeaf};
use twig_tests::nats_server::{NatsServer, Options};
use twig_tests::recorder::{Direction, Recorder};

/// Runs hub and leaf with `compression` (a nats-server config value) through the recorder,
/// sends [`messages`] both ways, and checks both directions of the capture.
async fn capture(compression: &str, expect: &str, tag: &str) {
    let hub = Hub::start_with(
        HubVersion::V2_15,
        &HubOptions {
            leafnodes: format!("compression: {compression}"),
            ..HubOptions::default()
        },
    );
    let rec = Recorder::start(SocketAddr::from(([127, 0, 0, 1], hub.leaf_port)));
    let leaf = NatsServer::start(&Options {
        extra: format!(
            "leafnodes {{\n  remotes: [{{ url: \"nats-leaf://127.0.0.1:{}\", compression: {compression} }}]\n}}\n",
            rec.port
        ),
        ..Options::default()
    });
    let deadline = std::time::Instant::now() + STEP;
    let leafz = loop {
        let leafz = http_json(hub.http_port, "/leafz");
        if leafz["leafnodes"] == 1 {
            break leafz;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "leaf never connected:\n{}",
            leaf.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        leafz["leafs"][0]["compression"], expect,
        "hub's /leafz: {leafz}"
    );

    let hub_client = connect(&hub.client_url()).await;
    let leaf_client = connect(&leaf.client_url()).await;
    let mut at_hub = hub_client.subscribe("up.>").await.unwrap();
    interest_ready(&hub_client, &leaf_client).await;
    let mut at_leaf = leaf_client.subscribe("down.>").await.unwrap();
    interest_ready(&leaf_client, &hub_client).await;
    let up = messages("up", 1);
    let down = messages("down", 2);
    publish_all(&leaf_client, &up).await;
    receive_all(&mut at_hub, &up).await;
    publish_all(&hub_client, &down).await;
    receive_all(&mut at_leaf, &down).await;
    // Both messages have crossed the proxy, so both are recorded.
    let conns = rec.connections();
    let conn = conns
        .first()
        .expect("the leaf connected through the recorder");
    assert!(!conn.up.cut && !conn.down.cut);

    for (dir, prefix, want) in [(&conn.up, "up", &up), (&conn.down, "down", &down)] {
        let (info, plain) = decode_direction(dir, None);
        let (got, names) = messages_in(&plain, prefix);
        assert!(&got == want, "{tag} {prefix}: decoded messages differ");
        // Split differently: every 1 and 7 bytes for the first 20 KB, 1000 for all.
        let small: Vec<_> = dir.reads.iter().take(3).cloned().collect();
        let head = Direction {
            reads: small,
            cut: false,
        };
        let (_, p1) = decode_direction(&head, Some(1));
        let (_, p7) = decode_direction(&head, Some(7));
        assert_eq!(p1, p7);
        let (_, p1000) = decode_direction(dir, Some(1000));
        assert!(p1000 == plain);
        eprintln!(
            "{tag} {prefix}: {} wire bytes -> {} plain; ops {:?}...; first line {}",
            dir.bytes().len(),
            plain.len(),
            &names[..names.len().min(6)],
            &info[..info.len().min(400)]
        );
        save_vector(tag, prefix, dir, &plain);
    }
}

/// With `TWIG_S2_SAVE=1`, keeps the first 96 KB of a capture as a test vector of twig-core
/// (`core-no-std/testdata/s2/`): the S2 stream after the INFO line, cut at a chunk boundary,
/// and what it decodes to.
fn save_vector(tag: &str, prefix: &str, dir: &Direction, _plain: &[u8]) {
    if std::env::var_os("TWIG_S2_SAVE").is_none() {
        return;
    }
    let all = dir.bytes();
    let eol = all.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let stream = &all[eol..];
    // Walk the chunks; stop at the last boundary within 96 KB.
    let mut end = 0;
    while end + 4 <= stream.len() {
        let len = usize::from(stream[end + 1])
            | usize::from(stream[end + 2]) << 8
            | usize::from(stream[end + 3]) << 16;
        if end + 4 + len > 96 * 1024 {
            break;
        }
        end += 4 + len;
    }
    let mut d = Decoder::new(vec![0u8; MAX_BLOCK_SIZE]);
    let mut out = Vec::new();
    let mut input = &stream[..end];
    loop {
        let f = d.feed(input).unwrap();
        out.extend_from_slice(f.plain);
        input = &input[f.consumed..];
        if f.consumed == 0 && f.plain.is_empty() {
            break;
        }
    }
    let dir_path = twig_tests::harness::workspace_root().join("core-no-std/testdata/s2");
    std::fs::create_dir_all(&dir_path).unwrap();
    let base = dir_path.join(format!("{tag}-{prefix}"));
    std::fs::write(base.with_extension("s2"), &stream[..end]).unwrap();
    std::fs::write(base.with_extension("txt"), &out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_s2_fast_decodes() {
    capture("s2_fast", "s2_fast", "s2_fast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_s2_better_decodes() {
    capture("s2_better", "s2_better", "s2_better").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_s2_best_decodes() {
    capture("s2_best", "s2_best", "s2_best").await;
}

/// On loopback the RTT is under 10 ms: `s2_auto` frames without compressing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_s2_auto_decodes() {
    capture("s2_auto", "s2_uncompressed", "s2_auto").await;
}

/// `s2_auto` with thresholds that make any RTT "far": best, chosen the auto way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_s2_auto_far_decodes() {
    capture(
        "{ mode: s2_auto, rtt_thresholds: [\"0s\", \"0s\", \"1ns\"] }",
        "s2_best",
        "s2_auto_far",
    )
    .await;
}

/// The ops of `msgs` as a leaf sends them (`LMSG`, or `HMSG` with a header block).
fn leaf_ops(msgs: &[Sent]) -> Vec<Vec<u8>> {
    msgs.iter()
        .map(|m| {
            let block = m.headers.as_ref().map(|h| {
                let mut b = b"NATS/1.0\r\n".to_vec();
                for (k, v) in h {
                    b.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
                }
                b.extend_from_slice(b"\r\n");
                b
            });
            let op = Op::Lmsg {
                subject: m.subject.as_bytes(),
                reply: None,
                queues: twig_core::wire::Queues::EMPTY,
                headers: block.as_deref(),
                payload: &m.payload,
            };
            let mut out = Vec::new();
            op.encode_into(&mut out).unwrap();
            out
        })
        .collect()
}

/// One case of the hand-spoken leaf against a hub.
struct Case {
    version: HubVersion,
    hub: &'static str,
    ours: Mode,
    /// Our encoder's level after negotiation (`None`: plain text).
    level: Option<Level>,
    /// What the hub's /leafz says it compresses with.
    hub_mode: &'static str,
    read_size: usize,
    write_piece: usize,
    /// Fewer, smaller messages (for the 1-byte reads).
    small: bool,
}

async fn raw_interop(case: Case) {
    let tag = format!(
        "{} hub {} / ours {:?}",
        case.version.name(),
        case.hub,
        case.ours
    );
    let leafnodes = if case.version == HubVersion::V2_9 {
        String::new()
    } else {
        format!("compression: {}", case.hub)
    };
    let hub = Hub::start_with(
        case.version,
        &HubOptions {
            leafnodes,
            ..HubOptions::default()
        },
    );
    let deadline = Instant::now() + STEP * 3;
    let name = format!("raw_{}", twig_tests::harness::free_port());
    let mut leaf =
        RawLeaf::connect(hub.leaf_port, case.ours, &name, case.read_size, deadline).await;
    leaf.write_piece = case.write_piece;
    assert_eq!(
        leaf.level(),
        case.level,
        "{tag}: negotiated {:?}",
        leaf.plan
    );
    if case.version == HubVersion::V2_9 {
        assert!(leaf.hub_info.get("compression").is_none());
        assert_eq!(
            leaf.plan,
            LeafPlan::Plain {
                connect: Mode::NotSupported
            }
        );
    }
    let leafz = http_json(hub.http_port, "/leafz");
    assert_eq!(
        leafz["leafs"][0]["compression"].as_str().unwrap_or(""),
        case.hub_mode,
        "{tag}: {leafz}"
    );

    let hub_client = connect(&hub.client_url()).await;
    let mut at_hub = hub_client.subscribe("up.>").await.unwrap();
    hub_client.flush().await.unwrap();
    loop {
        if let Got::LsPlus(s) = leaf.next(deadline).await
            && s == "up.>"
        {
            break;
        }
    }
    let mut rng = Rng::new(17);
    let (up, down) = if case.small {
        let mut u = messages("up", 3);
        let mut d = messages("down", 4);
        for v in [&mut u, &mut d] {
            v.retain(|m| m.payload.len() < 20_000);
        }
        (u, d)
    } else {
        (messages("up", 3), messages("down", 4))
    };
    // Leaf -> hub: flushes of 1..20 ops; halfway, the level changes as s2_auto would.
    let ops = leaf_ops(&up);
    let mut i = 0;
    while i < ops.len() {
        let n = (1 + rng.below(20)).min(ops.len() - i);
        leaf.send(&ops[i..i + n].concat()).await;
        i += n;
        if i > ops.len() / 2 && leaf.level() == Some(Level::Best) {
            leaf.set_level(Level::Fast);
        }
    }
    for m in &up {
        let got = next(&mut at_hub).await;
        assert_eq!(got.subject.as_str(), m.subject, "{tag}");
        assert!(got.payload == m.payload, "{tag}: payload of {}", m.subject);
        let headers: Option<Vec<(String, String)>> = got.headers.as_ref().map(|h| {
            h.iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| (k.to_string(), v.to_string())))
                .collect()
        });
        assert_eq!(headers, m.headers, "{tag}: headers of {}", m.subject);
    }
    // Hub -> leaf.
    leaf.send(b"LS+ down.>\r\nPING\r\n").await;
    while leaf.next(deadline).await != Got::Pong {}
    publish_all(&hub_client, &down).await;
    for m in &down {
        let got = loop {
            match leaf.next(deadline).await {
                Got::Msg {
                    subject,
                    headers,
                    payload,
                    ..
                } if subject.starts_with("down.") => break (subject, headers, payload),
                _ => {}
            }
        };
        assert_eq!(got.0, m.subject, "{tag}");
        assert_eq!(got.1.as_deref().map(header_pairs), m.headers, "{tag}");
        assert!(got.2 == m.payload, "{tag}: payload of {}", m.subject);
    }
    eprintln!(
        "{tag}: {} plain bytes up as {} on the wire",
        leaf.sent.0, leaf.sent.1
    );
}

fn case(hub: &'static str, ours: Mode, level: Option<Level>, hub_mode: &'static str) -> Case {
    Case {
        version: HubVersion::V2_15,
        hub,
        ours,
        level,
        hub_mode,
        read_size: 4096,
        write_piece: 0,
        small: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_leaf_auto_on_loopback_frames_uncompressed() {
    raw_interop(case(
        "s2_auto",
        Mode::Auto,
        Some(Level::Uncompressed),
        "s2_uncompressed",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_leaf_fast_against_auto_hub() {
    raw_interop(case(
        "s2_auto",
        Mode::Fast,
        Some(Level::Fast),
        "s2_uncompressed",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_leaf_better_against_best_hub_with_small_reads() {
    raw_interop(Case {
        read_size: 13,
        write_piece: 1000,
        ..case("s2_best", Mode::Better, Some(Level::Better), "s2_best")
    })
    .await;
}

/// A hub that only accepts compresses the way we asked; we switch to fast halfway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_leaf_best_against_accepting_hub() {
    raw_interop(case("accept", Mode::Best, Some(Level::Best), "s2_best")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_leaf_byte_reads_and_writes() {
    raw_interop(Case {
        read_size: 1,
        write_piece: 1,
        small: true,
        ..case("s2_fast", Mode::Best, Some(Level::Best), "s2_fast")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_leaf_hub_compression_off_stays_plain() {
    raw_interop(case("off", Mode::Auto, None, "off")).await;
}

/// nats-server 2.9 knows no compression: the same leaf falls back to plain text, unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_leaf_hub_2_9_falls_back_to_plain() {
    raw_interop(Case {
        version: HubVersion::V2_9,
        ..case("", Mode::Auto, None, "")
    })
    .await;
}
