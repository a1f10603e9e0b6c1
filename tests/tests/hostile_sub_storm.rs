//! Hostile load, a SUB/UNSUB storm on a slowed uplink: twig is a leaf of a real nats-server
//! 2.15 hub through the link emulator (20 KB/s each way), and many local clients loop SUB
//! and UNSUB on distinct long subjects (a bounded number of rounds), keeping one in 300. Compression is off, so the link is the bottleneck it claims to be.
//! The interest lines (`LS+`/`LS-`) are far more than the link carries: once the uplink's
//! backlog is full twig holds the changes back and later sends the difference, so its RSS
//! stays bounded, and after the storm the hub's view of twig's interest (/leafz?subs=1)
//! becomes exactly the subjects still subscribed.

#[path = "common/uplink.rs"]
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{Twig, http_json};
use twig_tests::hostile::peak_rss;
use twig_tests::hub::{Hub, HubVersion};
use twig_tests::link_emu::{LinkEmulator, LinkSpec};

const CLIENTS: usize = 40;
const ROUNDS: usize = 1500;
/// Every KEEP-th subject stays subscribed.
const KEEP: usize = 300;
/// The uplink's backlog limit (`leafnodes.max_pending`).
const LEAF_PENDING: u64 = 64 << 10;
/// How long the hub may take to learn the final interest over the slow link.
const CONVERGE: Duration = Duration::from_secs(60);

/// Subject `i` of client `c`: long, so the lines of the storm add up to megabytes.
fn subject(c: usize, i: usize) -> String {
    format!("storm.{c}.{i}.{}", "p".repeat(150))
}

/// One client's storm: SUB and UNSUB each subject but every KEEP-th, then a PING whose PONG
/// says twig handled all of it. Returns the connection (its subscriptions stay).
fn storm(addr: &str, c: usize) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(CONVERGE)).unwrap();
    let mut w = std::io::BufWriter::new(s.try_clone().unwrap());
    w.write_all(b"CONNECT {\"verbose\":false}\r\n").unwrap();
    for i in 0..ROUNDS {
        write!(w, "SUB {} {i}\r\n", subject(c, i)).unwrap();
        if i % KEEP != 0 {
            write!(w, "UNSUB {i}\r\n").unwrap();
        }
    }
    w.write_all(b"PING\r\n").unwrap();
    w.flush().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "client {c} closed");
        if line == "PONG\r\n" {
            return r.into_inner();
        }
        assert!(line.starts_with("INFO "), "client {c}: {line:?}");
    }
}

/// The `storm.` subjects the hub has from its one leaf.
fn hub_view(hub: &Hub) -> BTreeSet<String> {
    let leafz = http_json(hub.http_port, "/leafz?subs=1");
    let Some(leaf) = leafz["leafs"].get(0) else {
        return BTreeSet::new();
    };
    leaf["subscriptions_list"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str())
                .filter(|s| s.starts_with("storm."))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn interest_churn_on_a_slow_uplink_stays_bounded_and_converges() {
    let hub = Hub::start(HubVersion::V2_15);
    let leaf = format!("127.0.0.1:{}", hub.leaf_port).parse().unwrap();
    let link =
        LinkEmulator::start(LinkSpec::symmetric(20_000, Duration::from_millis(40)), leaf).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let twig = Twig::with_config(
        dir.path(),
        &format!(
            "[leafnodes]\nmax_pending = {LEAF_PENDING}\nunsent_limit = 16384\n\
             [[leafnodes.remotes]]\nurls = [\"nats-leaf://127.0.0.1:{}\"]\n\
             compression = \"off\"\n",
            link.port()
        ),
    );
    twig.wait_up(1);
    let addr = twig.sut.addr();
    let base = peak_rss(twig.sut.pid());

    let t0 = Instant::now();
    let conns: Vec<TcpStream> = (0..CLIENTS)
        .map(|c| {
            let addr = addr.clone();
            thread::spawn(move || storm(&addr, c))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let storm_took = t0.elapsed();
    let after_storm = peak_rss(twig.sut.pid());
    // The backlog limit, the kept subscriptions, parser and socket buffers: 12 MiB of margin,
    // under the ~20 MiB the storm's lines would take if they were all queued.
    let bound = base + LEAF_PENDING + (12 << 20);
    assert!(
        after_storm <= bound,
        "peak RSS {} KiB after the storm, over {} KiB",
        after_storm >> 10,
        bound >> 10
    );

    let want: BTreeSet<String> = (0..CLIENTS)
        .flat_map(|c| (0..ROUNDS).step_by(KEEP).map(move |i| subject(c, i)))
        .collect();
    let deadline = Instant::now() + CONVERGE;
    let mut seen = hub_view(&hub);
    while seen != want {
        assert!(
            Instant::now() < deadline,
            "the hub's view did not converge within {CONVERGE:?}: {} of {} subjects, {} extra",
            seen.intersection(&want).count(),
            want.len(),
            seen.difference(&want).count()
        );
        // Polling the hub's monitor; the deadline bounds the loop.
        thread::sleep(Duration::from_millis(200));
        seen = hub_view(&hub);
    }
    let converged = t0.elapsed();
    let peak = peak_rss(twig.sut.pid());
    let stats = link.stats();
    let lines = CLIENTS * ROUNDS * 2 - want.len();
    let line_bytes = lines * (subject(0, 0).len() + 12);
    eprintln!(
        "{CLIENTS} clients x {ROUNDS} rounds ({lines} interest changes, ~{} KiB as lines): \
         storm {storm_took:?}, hub converged to {} subjects after {converged:?}; twig peak RSS \
         {} KiB (idle {} KiB, {} KiB after the storm); link stats {stats:?}",
        line_bytes >> 10,
        want.len(),
        peak >> 10,
        base >> 10,
        after_storm >> 10
    );
    // And while the hub caught up.
    assert!(
        peak <= bound,
        "peak RSS {} KiB over {} KiB",
        peak >> 10,
        bound >> 10
    );
    drop(conns);
}
