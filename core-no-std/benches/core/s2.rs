//! S2: bytes up the link per backlog message and CPU per MB, per level and flush size.
//!
//! The backlog is `testing::sensor_backlog`: ~100-115 B JSON readings, each an HMSG with a
//! reply subject and a `Nats-Msg-Id` header, as twig's forwarder sends them (~215 B a message
//! on the wire). A "flush" is one `Encoder::encode` call: what the uplink writer compresses at
//! once; the stream goes on across flushes (one identifier per connection).

use std::hint::black_box;
use std::time::{Duration, Instant};

use twig_core::s2::{Decoder, Encoder, Level, tables_len};
use twig_core::testing::{Rng, sensor_backlog};

const MESSAGES: usize = 20_000;

fn levels() -> [(Level, &'static str); 4] {
    [
        (Level::Uncompressed, "s2_uncompressed"),
        (Level::Fast, "s2_fast"),
        (Level::Better, "s2_better"),
        (Level::Best, "s2_best"),
    ]
}

/// The backlog cut into flushes of `per_flush` messages (whole messages).
fn flushes(backlog: &[u8], per_flush: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    let mut i = 0;
    while i < backlog.len() {
        // Each message ends with its payload's CRLF; count HMSG starts instead.
        if backlog[i..].starts_with(b"HMSG ") {
            if count == per_flush {
                out.push(&backlog[start..i]);
                start = i;
                count = 0;
            }
            count += 1;
        }
        i += 1;
    }
    out.push(&backlog[start..]);
    out
}

pub fn bench_s2() {
    bench_s2_vs_nats_server();
    let mut rng = Rng::new(2026);
    let backlog = sensor_backlog(&mut rng, 1_000_000, MESSAGES);
    println!(
        "\nS2 on {MESSAGES} backlog messages ({:.1} B each uncompressed), bytes per message and \
         CPU per MB of plain input:",
        backlog.len() as f64 / MESSAGES as f64
    );
    println!(
        "{:<16} {:>9} {:>10} {:>10} {:>12} {:>12}",
        "level", "per flush", "B/msg", "ratio", "enc ms/MB", "dec ms/MB"
    );
    for (level, name) in levels() {
        for per_flush in [1usize, 10, 100, 1000] {
            let parts = flushes(&backlog, per_flush);
            let mut tables = vec![0u32; tables_len(Level::Best)];
            let mut out = vec![0u8; backlog.len() * 2];
            let mut stream_len = 0;
            let enc = min_of(5, || {
                let mut e = Encoder::new(level, &mut tables[..]);
                let mut w = 0;
                for p in &parts {
                    w += e.encode(p, &mut out[w..]).expect("room");
                }
                stream_len = w;
                black_box(w);
            });
            let stream = out[..stream_len].to_vec();
            let mut buf = vec![0u8; 1 << 20];
            let dec = min_of(5, || {
                let mut d = Decoder::new(&mut buf[..]);
                let mut input = &stream[..];
                let mut n = 0;
                loop {
                    let f = d.feed(input).expect("valid");
                    n += f.plain.len();
                    input = &input[f.consumed..];
                    if f.consumed == 0 && f.plain.is_empty() {
                        break;
                    }
                }
                assert_eq!(n, backlog.len());
            });
            let mb = backlog.len() as f64 / 1e6;
            println!(
                "{name:<16} {per_flush:>9} {:>10.1} {:>10.3} {:>12.2} {:>12.2}",
                stream_len as f64 / MESSAGES as f64,
                stream_len as f64 / backlog.len() as f64,
                enc.as_secs_f64() * 1e3 / mb,
                dec.as_secs_f64() * 1e3 / mb,
            );
        }
    }
}

/// Streams nats-server 2.15.1 wrote at each level (`testdata/s2`): its bytes, and ours for
/// the same plain text in one flush.
pub fn bench_s2_vs_nats_server() {
    let files: [(&str, &[u8]); 3] = [
        (
            "s2_fast-down",
            include_bytes!("../../testdata/s2/s2_fast-down.s2"),
        ),
        (
            "s2_better-up",
            include_bytes!("../../testdata/s2/s2_better-up.s2"),
        ),
        (
            "s2_best-up",
            include_bytes!("../../testdata/s2/s2_best-up.s2"),
        ),
    ];
    println!(
        "\nnats-server 2.15.1's S2 streams (testdata/s2) re-encoded by twig-core in one flush:"
    );
    println!(
        "{:<14} {:>9} {:>12} {:>9} {:>10} {:>10}",
        "capture", "plain", "nats-server", "fast", "better", "best"
    );
    for (name, stream) in files {
        let mut d = Decoder::new(vec![0u8; 1 << 20]);
        let mut plain = Vec::new();
        let mut input = stream;
        loop {
            let f = d.feed(input).expect("valid");
            plain.extend_from_slice(f.plain);
            input = &input[f.consumed..];
            if f.consumed == 0 && f.plain.is_empty() {
                break;
            }
        }
        let ours: Vec<usize> = [Level::Fast, Level::Better, Level::Best]
            .into_iter()
            .map(|level| {
                let mut e = Encoder::new(level, vec![0u32; tables_len(Level::Best)]);
                let mut out = vec![0u8; e.max_output_len(plain.len())];
                e.encode(&plain, &mut out).expect("room")
            })
            .collect();
        println!(
            "{name:<14} {:>9} {:>12} {:>9} {:>10} {:>10}",
            plain.len(),
            stream.len(),
            ours[0],
            ours[1],
            ours[2]
        );
    }
}

/// The fastest of `runs` runs of `f` (the machine is shared and noisy).
fn min_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}
