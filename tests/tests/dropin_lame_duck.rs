//! Lame duck mode as a fleet sees it, on nats-server 2.15.1 and on twig side by side: several
//! clients connected, `--signal ldm`, then
//! - every client gets an INFO with `"ldm":true`, with the same keys and value types as
//!   nats-server's;
//! - a new connection is refused at once (the listener is closed before anyone is told);
//! - the clients are closed one after the other over the duration, not all at once;
//! - the process exits 0.
//!
//! (The official clients' side, a lame-duck callback and the move to a second server, is in
//! `dropin_clients.rs` and the Python suites.)

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use twig_tests::harness::{RawConn, ServerOptions, ServerUnderTest, Target};

const STEP: Duration = Duration::from_secs(5);
const CLIENTS: usize = 4;

/// What one server did in lame duck mode.
struct Seen {
    ldm_info: Value,
    refused: bool,
    /// When each client's connection ended, from the signal.
    closed_after: Vec<Duration>,
    exit: Option<i32>,
}

fn keys(v: &Value) -> BTreeMap<String, &'static str> {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    v.as_object()
        .expect("INFO is an object")
        .iter()
        .map(|(k, v)| (k.clone(), kind(v)))
        .collect()
}

fn run(target: Target) -> Seen {
    // nats-server's minimum duration is 30 s; it closes at most one second apart after the
    // grace period, so four clients are gone about four seconds after the signal.
    let opts = ServerOptions {
        lame_duck: Some((Duration::from_secs(30), Duration::from_secs(1))),
        ..ServerOptions::default()
    };
    let mut server = ServerUnderTest::start_target(target, &opts);
    let mut conns: Vec<RawConn> = (0..CLIENTS)
        .map(|_| {
            let mut c = RawConn::connect(&server.addr());
            c.expect("\r\n", STEP);
            // protocol 1 and a first PONG: the client takes async INFO.
            c.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n");
            c.expect("PONG\r\n", STEP);
            c
        })
        .collect();
    let t0 = Instant::now();
    server.signal("ldm");
    conns[0].expect("\"ldm\":true", STEP);
    let text = conns[0].text();
    let line = text
        .split("\r\n")
        .find(|l| l.starts_with("INFO ") && l.contains("\"ldm\":true"))
        .expect("the ldm INFO line");
    let ldm_info: Value = serde_json::from_str(line.trim_start_matches("INFO ")).unwrap();
    let refused = TcpStream::connect_timeout(&server.addr().parse().unwrap(), STEP).is_err();
    let handles: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                let closed = c.read_until_closed(Duration::from_secs(40));
                assert!(c.text().contains("\"ldm\":true"), "{}", c.text());
                closed.then(|| t0.elapsed())
            })
        })
        .collect();
    let closed_after: Vec<Duration> = handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap()
                .expect("closed by the server in lame duck mode")
        })
        .collect();
    let exit = server.wait_exit(Duration::from_secs(40));
    Seen {
        ldm_info,
        refused,
        closed_after,
        exit,
    }
}

#[test]
fn lame_duck_mode_refuses_new_clients_and_closes_the_others_one_by_one_on_both() {
    let nats = run(Target::NatsServer);
    let twig = run(Target::Twig);
    for (name, seen) in [("nats-server", &nats), ("twig", &twig)] {
        assert!(
            seen.refused,
            "{name}: a new connection was accepted in lame duck mode"
        );
        assert_eq!(seen.exit, Some(0), "{name}: exit code after lame duck mode");
        let first = seen.closed_after.iter().min().unwrap();
        let last = seen.closed_after.iter().max().unwrap();
        println!("{name}: closes after {:?}", seen.closed_after);
        // Spread, not all at once: four closes at most a second apart span about three
        // seconds; half a second is far from both.
        assert!(
            *last - *first >= Duration::from_millis(500),
            "{name}: every client closed at once: {:?}",
            seen.closed_after
        );
    }
    let (mut n, mut t) = (keys(&nats.ldm_info), keys(&twig.ldm_info));
    // As in the first INFO (dropin_info.rs): on purpose, with the reasons in
    // gateway/crates/clients/src/state.rs.
    for k in ["api_lvl", "xkey"] {
        n.remove(k);
    }
    t.remove("twig_version");
    assert_eq!(
        n, t,
        "ldm INFO keys and types differ:\nnats-server {n:?}\ntwig {t:?}"
    );
}
