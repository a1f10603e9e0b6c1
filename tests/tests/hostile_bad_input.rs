//! Hostile load, oversized and malformed input from many clients at once: 200 clients
//! (`TWIG_BAD_CLIENTS`), each sending one kind of bad input, all at the same time, while a
//! good publisher and subscriber keep exchanging messages. Each kind is first sent to
//! nats-server 2.15.1, one client alone: what it answers (the lines after INFO, and whether it
//! closes) is what twig must answer, byte for byte. Asserted: every bad client got exactly
//! that, twig did not fall over, every good message arrived, twig's peak RSS grew within a
//! bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use twig_tests::harness::raw::{RawConn, ReadEnd, contains};
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target};
use twig_tests::hostile::{STEP, client, env_count, peak_rss, round_trip};

/// Growth of twig's peak RSS allowed while the bad clients run (each holds at most a control
/// line, 4 KiB, and its read buffer).
const GROWTH: u64 = 24 << 20;

const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n";

/// One kind of bad input: sent after CONNECT (unless it is the CONNECT); `ping` adds a PING
/// for the kinds a server survives, so the answer ends at its PONG.
struct Kind {
    name: &'static str,
    connect_first: bool,
    bytes: Vec<u8>,
    ping: bool,
}

fn kinds() -> Vec<Kind> {
    let k = |name, bytes: &[u8], ping| Kind {
        name,
        connect_first: true,
        bytes: bytes.to_vec(),
        ping,
    };
    let mut long_sub = b"SUB ".to_vec();
    long_sub.resize(5000, b'a');
    long_sub.extend_from_slice(b" 1\r\n");
    let mut long_no_end = b"PUB ".to_vec();
    long_no_end.resize(6000, b'b');
    vec![
        // Declared over max_payload (1 MiB): refused on the PUB line, nothing is read.
        k("payload over max_payload", b"PUB big 2000000\r\n", false),
        k(
            "header size over max_payload",
            b"HPUB big 2000000 2000010\r\n",
            false,
        ),
        k("header size over total", b"HPUB h 20 10\r\n", false),
        k("control line over max_control_line", &long_sub, false),
        k("control line without an end", &long_no_end, false),
        k("unknown op", b"FOO bar\r\n", false),
        k("PUB without a size", b"PUB foo\r\n", false),
        k("PUB with a negative size", b"PUB foo -1\r\n", false),
        k("PUB with too many args", b"PUB a b c 1\r\nx\r\n", false),
        k(
            "payload longer than declared",
            b"PUB foo 3\r\nhello\r\n",
            false,
        ),
        k("SUB on an invalid subject", b"SUB foo..bar 1\r\n", true),
        k("SUB without a sid", b"SUB foo\r\n", false),
        k("UNSUB of a word", b"UNSUB x\r\n", true),
        k("garbage bytes", b"\x00\xff\xfe\x01 garbage\r\n", false),
        Kind {
            name: "CONNECT with invalid JSON",
            connect_first: false,
            bytes: b"CONNECT {bad json\r\n".to_vec(),
            ping: false,
        },
    ]
}

/// What the server at `addr` answers `kind`: the text after INFO, `<closed>` at the close.
fn answer(addr: &str, kind: &Kind) -> String {
    let mut c = RawConn::connect(addr);
    c.read_info(STEP);
    let info_len = c.received().len();
    let mut bytes = if kind.connect_first {
        CONNECT.to_vec()
    } else {
        Vec::new()
    };
    bytes.extend_from_slice(&kind.bytes);
    if kind.ping {
        bytes.extend_from_slice(b"PING\r\n");
    }
    // The server may close before taking it all: what it said is read below all the same.
    let _ = c.try_send(&bytes);
    let ping = kind.ping;
    let end = c.read_until(STEP, |r| ping && contains(r, b"PONG\r\n"));
    // The server's own PINGs (nats-server sends a first one soon after CONNECT) are not
    // part of the answer.
    let mut text = String::from_utf8_lossy(c.received().get(info_len..).unwrap_or_default())
        .replace("PING\r\n", "");
    match end {
        ReadEnd::Closed => text.push_str("<closed>"),
        ReadEnd::Matched => {}
        ReadEnd::TimedOut => text.push_str("<no answer>"),
    }
    text
}

#[test]
fn many_clients_sending_bad_input_get_nats_server_answers_and_good_ones_are_unaffected() {
    let clients = env_count("TWIG_BAD_CLIENTS", 200);
    let options = ServerOptions::new();
    let kinds = Arc::new(kinds());
    // The reference: nats-server, one client at a time.
    let reference = ServerUnderTest::start_target(Target::NatsServer, &options);
    let want: Arc<Vec<String>> =
        Arc::new(kinds.iter().map(|k| answer(&reference.addr(), k)).collect());
    drop(reference);
    for (k, w) in kinds.iter().zip(want.iter()) {
        eprintln!("nats-server, {}: {w:?}", k.name);
    }

    let server = ServerUnderTest::start(&options);
    let addr = server.addr();
    let mut sub = client(&addr);
    sub.send(b"SUB good 1\r\n");
    assert_eq!(sub.ping_pong(STEP), ReadEnd::Matched);
    let mut publ = client(&addr);
    assert!(round_trip(&mut publ, &mut sub, "good", 10));
    let before = server.rss_bytes();
    let before_peak = peak_rss(server.pid());

    let next = Arc::new(AtomicUsize::new(0));
    let bad: Vec<_> = (0..clients)
        .map(|i| {
            let (addr, kinds, want, next) =
                (addr.clone(), kinds.clone(), want.clone(), next.clone());
            std::thread::spawn(move || {
                let kind = i % kinds.len();
                let got = answer(&addr, &kinds[kind]);
                next.fetch_add(1, Relaxed);
                if got == want[kind] {
                    Ok(())
                } else {
                    Err((kind, got))
                }
            })
        })
        .collect();
    // Good traffic while the bad clients run (bounded: they end, or 1,000 rounds).
    let mut rounds = 0;
    while next.load(Relaxed) < clients && rounds < 1000 {
        assert!(
            round_trip(&mut publ, &mut sub, "good", 10),
            "good messages lost at round {rounds}"
        );
        rounds += 1;
    }
    let mut wrong = Vec::new();
    for t in bad {
        if let Err((kind, got)) = t.join().unwrap() {
            wrong.push(format!(
                "{}: twig {got:?}, nats-server {:?}",
                kinds[kind].name, want[kind]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // A half-sent message, then the close: nothing to answer, nothing to break.
    for _ in 0..kinds.len() {
        let mut c = RawConn::connect(&addr);
        c.read_info(STEP);
        c.send(CONNECT);
        c.send(b"PUB half 100\r\nonly a part");
    }
    assert!(round_trip(&mut publ, &mut sub, "good", 100));
    let peak = peak_rss(server.pid());
    let after = server.rss_bytes();
    eprintln!(
        "{}: {clients} bad clients, {rounds} good rounds during: RSS {} KiB before, \
         peak {} KiB (peak before {} KiB), {} KiB after",
        server.target().name(),
        before >> 10,
        peak >> 10,
        before_peak >> 10,
        after >> 10
    );
    if server.target() == Target::Twig {
        assert!(
            peak <= before_peak.max(before) + GROWTH,
            "peak RSS {} KiB, over {} KiB + {} KiB",
            peak >> 10,
            before_peak.max(before) >> 10,
            GROWTH >> 10
        );
    }
}
