//! `connect`: a reconnect storm. `--conns N` clients connect at once (one thread each, up to
//! `--parallel`, the rest in turn on those threads), each timed from its TCP connect to the
//! PONG of its first PING (INFO, CONNECT and PING/PONG done: the server serves it). Every
//! client stays connected until all are in, as after a restart. Reports p50/p90/p99/max.

use super::Options;
use super::conn::{BenchError, Conn};
use super::report::{Report, Value, percentile_us};
use std::net::TcpStream;
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Instant;

/// `connect --conns N --parallel P`.
pub fn run_connect(o: &Options) -> Result<Report, BenchError> {
    let deadline = Instant::now() + o.limit;
    let n = usize::try_from(o.msgs).unwrap_or(usize::MAX).max(1);
    let threads = o.parallel.clamp(1, n);
    let start = Arc::new(Barrier::new(threads));
    let (tx, rx) = mpsc::channel::<Result<u64, String>>();
    let (hold_tx, hold_rx) = mpsc::channel::<Vec<TcpStream>>();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (start, tx, hold_tx, addr) =
                (start.clone(), tx.clone(), hold_tx.clone(), o.url.clone());
            thread::spawn(move || {
                let addr = addr.strip_prefix("nats://").unwrap_or(&addr).to_string();
                let mut held = Vec::new();
                start.wait();
                // Connections t, t + threads, t + 2 * threads...
                for i in (t..n).step_by(threads) {
                    let t0 = Instant::now();
                    match Conn::connect(&addr, &format!("storm-{i}"), deadline) {
                        Ok(c) => {
                            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            held.push(c.into_stream());
                            let _ = tx.send(Ok(ns));
                        }
                        Err(e) => {
                            let _ = tx.send(Err(format!("client {i}: {e}")));
                        }
                    }
                }
                let _ = hold_tx.send(held);
            })
        })
        .collect();
    drop((tx, hold_tx));
    let mut lat: Vec<u64> = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for r in rx {
        match r {
            Ok(ns) => lat.push(ns),
            Err(e) if errors.len() < 10 => errors.push(e),
            Err(_) => {}
        }
    }
    // Everyone in: now the clients may go.
    let held: Vec<Vec<TcpStream>> = hold_rx.iter().collect();
    for h in handles {
        let _ = h.join();
    }
    drop(held);
    lat.sort_unstable();
    let (p50, p90, p99) = (
        percentile_us(&lat, 50),
        percentile_us(&lat, 90),
        percentile_us(&lat, 99),
    );
    let max = lat.last().map_or(0.0, |&ns| ns as f64 / 1e3);
    eprintln!(
        "connect: {}/{n} clients served, {threads} at once; time to PONG p50 {:.0} us, p90 \
         {:.0} us, p99 {:.0} us, max {max:.0} us",
        lat.len(),
        p50,
        p90,
        p99
    );
    let mut r = Report::default();
    r.set("mode", Value::Str("connect".into()))
        .set("url", Value::Str(o.url.clone()))
        .set("conns", Value::Int(n as u64))
        .set("parallel", Value::Int(threads as u64))
        .set("served", Value::Int(lat.len() as u64))
        .set("p50_us", Value::Float(p50))
        .set("p90_us", Value::Float(p90))
        .set("p99_us", Value::Float(p99))
        .set("max_us", Value::Float(max))
        .set("complete", Value::Bool(lat.len() == n))
        .set("errors", Value::List(errors));
    Ok(r)
}
