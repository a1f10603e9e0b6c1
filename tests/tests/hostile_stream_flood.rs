//! Hostile load, stream flood: one raw client writes 60 KB messages to a `sync = "always"`
//! stream as fast as its socket takes them. The stream's queue is bounded in bytes
//! (`queue_bytes`): the publisher's reader pauses while the queue is full, so twig's peak RSS
//! stays near the limit, every message is stored exactly once and acknowledged, the waits are
//! counted in /jsz, and the client stays connected. A message larger than the log's record
//! limit is refused (400 PubAck) before it is queued.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use twig_tests::harness::{ServerOptions, ServerUnderTest, Target, free_port};
use twig_tests::hostile::peak_rss;

const MSGS: usize = 1500;
const PAYLOAD: usize = 60_000;
const QUEUE_BYTES: u64 = 4 << 20;
const STEP: Duration = Duration::from_secs(30);

fn jsz(http: u16) -> serde_json::Value {
    let mut s = TcpStream::connect(("127.0.0.1", http)).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    write!(
        s,
        "GET /jsz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["streams"][0].clone()
}

#[test]
fn flood_of_large_messages_stays_within_the_queue_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("twig.toml");
    // 2048 sectors: each 60 KB message takes one, so all of them fit without dropping.
    std::fs::write(
        &conf,
        format!(
            "store_dir = {:?}\n[[streams]]\nname = \"FLOOD\"\nsubjects = [\"flood.>\"]\n\
             max_bytes = {}\nsync = \"always\"\nqueue_bytes = {QUEUE_BYTES}\n",
            dir.path().display().to_string(),
            128 << 20
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
    let base = peak_rss(server.pid());

    let sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(STEP)).unwrap();
    let mut w = sock.try_clone().unwrap();
    let mut r = BufReader::new(sock);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO "), "{line}");
    w.write_all(b"CONNECT {\"verbose\":false}\r\nSUB acks.* 1\r\nPING\r\n")
        .unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "PONG\r\n");

    // The writer floods from its own thread; this one reads the PubAcks meanwhile.
    let writer = std::thread::spawn(move || {
        let payload = vec![b'x'; PAYLOAD];
        for i in 0..MSGS {
            write!(w, "PUB flood.data acks.{i} {PAYLOAD}\r\n").unwrap();
            w.write_all(&payload).unwrap();
            w.write_all(b"\r\n").unwrap();
        }
        w.write_all(b"PING\r\n").unwrap();
        w
    });
    let (mut ok, mut errors) = (0, 0);
    let mut seqs = std::collections::HashSet::new();
    let mut pong = false;
    while ok + errors < MSGS || !pong {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "twig closed the flood");
        if line == "PONG\r\n" {
            pong = true;
            continue;
        }
        assert!(line.starts_with("MSG acks."), "unexpected {line:?}");
        let n: usize = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
        let mut body = vec![0; n + 2];
        r.read_exact(&mut body).unwrap();
        let ack: serde_json::Value = serde_json::from_slice(&body[..n]).unwrap();
        match ack["seq"].as_u64() {
            Some(seq) if ack.get("error").is_none() => {
                assert!(seqs.insert(seq), "seq {seq} acknowledged twice");
                ok += 1;
            }
            _ => errors += 1,
        }
    }
    let mut w = writer.join().unwrap();

    // Larger than a sector: refused before it is queued, with the log's 400 PubAck, and the
    // client stays connected.
    let big = vec![b'y'; 100_000];
    write!(w, "PUB flood.big acks.big {}\r\n", big.len()).unwrap();
    w.write_all(&big).unwrap();
    w.write_all(b"\r\nPING\r\n").unwrap();
    // The PONG may come first: the PubAck is sent by the stream's thread.
    let (mut refusal, mut pong) = (None, false);
    while refusal.is_none() || !pong {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "twig closed the connection"
        );
        if line == "PONG\r\n" {
            pong = true;
            continue;
        }
        assert!(line.starts_with("MSG acks.big 1 "), "{line:?}");
        let n: usize = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
        let mut body = vec![0; n + 2];
        r.read_exact(&mut body).unwrap();
        refusal = Some(serde_json::from_slice::<serde_json::Value>(&body[..n]).unwrap());
    }
    let ack = refusal.unwrap();
    assert_eq!(ack["error"]["code"].as_u64(), Some(400), "{ack}");

    let peak = peak_rss(server.pid());
    let s = jsz(http);
    eprintln!(
        "flood: base peak {} KiB, peak {} KiB, acked {ok}, errors {errors}, jsz {s}",
        base >> 10,
        peak >> 10
    );
    // Back-pressure, not refusal: every message is stored once and acknowledged.
    assert_eq!((ok, errors), (MSGS, 0));
    assert_eq!(s["messages"].as_u64(), Some(MSGS as u64));
    assert_eq!(s["last_seq"].as_u64(), Some(MSGS as u64));
    assert_eq!(s["refused"].as_u64(), Some(1));
    assert_eq!(s["queue_bytes"].as_u64(), Some(QUEUE_BYTES));
    assert!(
        s["queue_waits"].as_u64().unwrap() > 0,
        "the queue never filled"
    );
    // The queue, one message over it, the read buffer: far under 32 MiB more than idle.
    let bound = base + QUEUE_BYTES + (32 << 20);
    assert!(
        peak <= bound,
        "peak RSS {} KiB over {} KiB",
        peak >> 10,
        bound >> 10
    );
}
