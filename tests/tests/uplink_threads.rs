//! twig with `threads = 2` as the leaf of a real nats-server hub: subscriptions made on one
//! connection and auto-unsubscribed by deliveries from another (often on the other executor
//! thread), over and over; once the subscribers are gone, no interest is left at the hub.
//! (The sublist and the uplink's interest counts must see each change in the same order.)

#[path = "common/uplink.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use twig_tests::harness::raw::{RawConn, ReadEnd};
use twig_tests::hub::{Hub, HubVersion};

const SUBSCRIBERS: usize = 4;
const ROUNDS: usize = 500;
const DEADLINE: Duration = Duration::from_secs(10);

#[test]
fn auto_unsubscribes_from_other_threads_leave_no_interest_at_the_hub() {
    let hub = Hub::start(HubVersion::V2_15);
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "threads = 2\n[[leafnodes.remotes]]\nurls = [{:?}]\n",
        hub.leaf_url()
    );
    let twig = Twig::with_config(dir.path(), &toml);
    twig.wait_up(1);
    let addr = twig.sut.addr();
    let connect = b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";

    // Publishers: one connection per subject, publishing until the subscribers are done.
    let done = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            let (addr, done) = (addr.clone(), done.clone());
            std::thread::spawn(move || {
                let mut p = RawConn::connect(&addr);
                p.send(connect);
                let line = format!("PUB t.{i} 1\r\nx\r\n").repeat(20);
                let mut sent = 0u64;
                while !done.load(Ordering::Acquire) && sent < 2_000_000 {
                    p.send(line.as_bytes());
                    sent += 20;
                }
                assert_eq!(p.ping_pong(DEADLINE), ReadEnd::Matched, "publisher {i}");
            })
        })
        .collect();
    // Subscribers: SUB with an auto-unsubscribe after one message, again and again, without
    // waiting: the publishers' deliveries expire them as they are made.
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = RawConn::connect(&addr);
                s.send(connect);
                for sid in 1..=ROUNDS {
                    s.send(format!("SUB t.{i} {sid}\r\nUNSUB {sid} 1\r\n").as_bytes());
                    if sid % 50 == 0 {
                        assert_eq!(s.ping_pong(DEADLINE), ReadEnd::Matched, "subscriber {i}");
                    }
                }
                assert_eq!(s.ping_pong(DEADLINE), ReadEnd::Matched, "subscriber {i}");
                // Closing removes whatever is still subscribed.
            })
        })
        .collect();
    for s in subscribers {
        s.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for p in publishers {
        p.join().unwrap();
    }

    let deadline = Instant::now() + DEADLINE;
    loop {
        let leafz = twig.monitor("/leafz");
        let left = leafz["remotes"][0]["local_interest"].as_u64().unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} local interest left at the hub after every subscriber closed: {leafz}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
