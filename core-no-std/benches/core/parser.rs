//! Parser throughput in MB/s and ops/s over captured and synthetic streams.

use std::hint::black_box;
use std::time::{Duration, Instant};

use twig_core::wire::{Limits, Mode, Op, Parser};

/// Runs `f` repeatedly for about `budget` and returns the mean time per call.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < budget {
        f();
        calls += 1;
    }
    start.elapsed() / calls.max(1)
}

fn report(name: &str, bytes: usize, ops: usize, per_call: Duration) {
    let secs = per_call.as_secs_f64();
    println!(
        "{name:<44} {:>8.0} MB/s {:>7.2} Mops/s",
        bytes as f64 / secs / 1e6,
        ops as f64 / secs / 1e6
    );
}

/// Parses the whole buffer in one read; returns the op count.
fn parse_all(mode: Mode, buf: &[u8]) -> usize {
    let mut p = Parser::new(mode, Limits::default().for_server_link());
    let mut ops = p.ops(buf);
    let mut n = 0;
    for op in &mut ops {
        black_box(op.expect("valid stream"));
        n += 1;
    }
    assert_eq!(ops.consumed(), buf.len());
    n
}

/// Parses the buffer as a connection reader would: `read` bytes at a time into a buffer
/// that keeps the unconsumed tail, so ops split across reads are completed next time.
fn parse_in_reads(mode: Mode, stream: &[u8], read: usize) -> usize {
    let mut p = Parser::new(mode, Limits::default().for_server_link());
    let mut buf: Vec<u8> = Vec::with_capacity(read * 2);
    let mut n = 0;
    for chunk in stream.chunks(read) {
        buf.extend_from_slice(chunk);
        let mut ops = p.ops(&buf);
        for op in &mut ops {
            black_box(op.expect("valid stream"));
            n += 1;
        }
        let used = ops.consumed();
        buf.drain(..used);
    }
    n
}

/// `copies` of `unit` back to back.
fn repeat(unit: &[u8], min_len: usize) -> Vec<u8> {
    let copies = min_len.div_ceil(unit.len().max(1));
    unit.repeat(copies)
}

/// A synthetic hot-path mix: small publishes, deliveries with reply subjects and headers.
fn synthetic(mode: Mode) -> Vec<u8> {
    let payload = [b'x'; 128];
    let headers = b"NATS/1.0\r\nNats-Msg-Id: 0123456789\r\n\r\n";
    let ops: Vec<Op<'_>> = match mode {
        Mode::FromClient => vec![
            Op::Pub {
                subject: b"sensors.room1.temp",
                reply: None,
                payload: &payload[..16],
            },
            Op::Pub {
                subject: b"svc.echo",
                reply: Some(b"_INBOX.abcdefghijkl.1"),
                payload: &payload,
            },
            Op::Hpub {
                subject: b"orders.new",
                reply: None,
                headers,
                payload: &payload[..64],
            },
            Op::Ping,
        ],
        Mode::FromServer => vec![
            Op::Msg {
                subject: b"sensors.room1.temp",
                sid: b"1",
                reply: None,
                payload: &payload[..16],
            },
            Op::Msg {
                subject: b"svc.echo",
                sid: b"22",
                reply: Some(b"_INBOX.abcdefghijkl.1"),
                payload: &payload,
            },
            Op::Hmsg {
                subject: b"orders.new",
                sid: b"3",
                reply: None,
                headers,
                payload: &payload[..64],
            },
            Op::Pong,
        ],
        Mode::Leaf => vec![
            Op::LsPlus {
                subject: b"sensors.>",
                queue: None,
            },
            Op::Lmsg {
                subject: b"sensors.room1.temp",
                reply: None,
                queues: twig_core::wire::Queues::EMPTY,
                headers: None,
                payload: &payload[..16],
            },
            Op::Lmsg {
                subject: b"jobs",
                reply: Some(b"_INBOX.abcdefghijkl.1"),
                queues: twig_core::wire::Queues::from_list(&[b"workers"]),
                headers: Some(headers),
                payload: &payload,
            },
        ],
    };
    let mut unit = Vec::new();
    for op in &ops {
        let mut out = vec![0; op.encoded_len()];
        op.encode(&mut out).expect("encodes");
        unit.extend_from_slice(&out);
    }
    unit
}

/// Parser throughput over the captured nats-server conversations and synthetic mixes.
pub fn bench_parser() {
    const MIN: usize = 4 << 20;
    let budget = Duration::from_millis(400);
    let captures: [(&str, Mode, &[u8]); 3] = [
        (
            "captured client-subscriber.s2c",
            Mode::FromServer,
            include_bytes!("../../testdata/nats-2.15.1/client-subscriber.s2c"),
        ),
        (
            "captured client-publisher.c2s",
            Mode::FromClient,
            include_bytes!("../../testdata/nats-2.15.1/client-publisher.c2s"),
        ),
        (
            "captured leaf.s2c",
            Mode::Leaf,
            include_bytes!("../../testdata/nats-2.15.1/leaf.s2c"),
        ),
    ];
    println!(
        "parser throughput (streams repeated to >= {} MiB)",
        MIN >> 20
    );
    let mut streams: Vec<(String, Mode, Vec<u8>)> = captures
        .iter()
        .map(|&(name, mode, bytes)| (name.to_string(), mode, repeat(bytes, MIN)))
        .collect();
    for mode in [Mode::FromClient, Mode::FromServer, Mode::Leaf] {
        streams.push((
            format!("synthetic {mode:?}"),
            mode,
            repeat(&synthetic(mode), MIN),
        ));
    }
    for (name, mode, stream) in &streams {
        let ops = parse_all(*mode, stream);
        let t = time_per_call(budget, || {
            black_box(parse_all(*mode, black_box(stream)));
        });
        report(&format!("{name}, one read"), stream.len(), ops, t);
        assert_eq!(parse_in_reads(*mode, stream, 4096), ops);
        let t = time_per_call(budget, || {
            black_box(parse_in_reads(*mode, black_box(stream), 4096));
        });
        report(&format!("{name}, 4 KiB reads"), stream.len(), ops, t);
    }
}
