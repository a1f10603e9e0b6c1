//! `pub` (publish only) and `pubsub` (one publisher, N subscribers on the same subject).
//!
//! Throughput is what subscribers received: total delivered / (last receipt - first publish).
//! A run ends when every subscriber has all messages, at the time limit, or when no message
//! arrived for `idle` after publishing finished (the server dropped some, e.g. slow consumer).

use super::conn::{BenchError, Conn, Event};
use super::report::{Report, Value, human, rate};
use super::{Options, pub_frame};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Subscribers note the time and report progress every this many messages (an `Instant::now`
/// per message would cost the bench CPU that the server should get).
const STRIDE: u64 = 256;

/// What the publisher did.
struct Published {
    sent: u64,
    first: Instant,
    /// When the server answered the PING sent after the last message: all were processed.
    flushed: Option<Instant>,
    error: Option<String>,
}

/// Publishes `o.msgs` messages in batches of whole frames, then waits for a PONG.
fn publish(conn: &mut Conn, o: &Options, deadline: Instant) -> Published {
    let mut frame = Vec::new();
    pub_frame(&mut frame, o.subject.as_bytes(), None, &o.payload());
    let per_batch = (o.batch / frame.len().max(1)).max(1);
    let batch = frame.repeat(per_batch);
    let per_batch = per_batch as u64;
    let first = Instant::now();
    let mut out = Published {
        sent: 0,
        first,
        flushed: None,
        error: None,
    };
    while out.sent < o.msgs && Instant::now() < deadline {
        let n = per_batch.min(o.msgs - out.sent);
        // The last, shorter batch is a prefix of the full one (whole frames).
        let len = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .saturating_mul(frame.len());
        let bytes = batch.get(..len).unwrap_or(&batch);
        if let Err(e) = conn.send(bytes, deadline) {
            out.error = Some(format!("publisher: {e}"));
            return out;
        }
        out.sent += n;
    }
    match conn.barrier(deadline) {
        Ok(()) => out.flushed = Some(Instant::now()),
        Err(e) => out.error = Some(format!("publisher flush: {e}")),
    }
    out
}

/// `pub`: publish with no subscribers; the rate is messages the server took per second.
pub fn run_pub(o: &Options) -> Result<Report, BenchError> {
    let deadline = Instant::now() + o.limit;
    let mut conn = Conn::connect(o.addr(), "twig-bench-pub", deadline)?;
    let p = publish(&mut conn, o, deadline);
    let secs = p.flushed.unwrap_or_else(Instant::now) - p.first;
    let msgs_per_sec = rate(p.sent, secs);
    eprintln!(
        "pub {} B: {}/{} msgs in {:.3} s = {} msgs/s ({:.1} MB/s)",
        o.size,
        p.sent,
        o.msgs,
        secs.as_secs_f64(),
        human(msgs_per_sec),
        msgs_per_sec * o.size as f64 / 1e6
    );
    let mut errors: Vec<String> = p.error.into_iter().collect();
    if p.sent < o.msgs && errors.is_empty() {
        errors.push(format!(
            "time limit reached after publishing {} of {}",
            p.sent, o.msgs
        ));
    }
    let mut r = common("pub", o);
    r.set("sent", Value::Int(p.sent))
        .set("secs", Value::Float(secs.as_secs_f64()))
        .set("msgs_per_sec", Value::Float(msgs_per_sec))
        .set(
            "mb_per_sec",
            Value::Float(msgs_per_sec * o.size as f64 / 1e6),
        )
        .set(
            "complete",
            Value::Bool(p.sent == o.msgs && p.flushed.is_some()),
        )
        .set("errors", Value::List(errors));
    Ok(r)
}

/// What one subscriber saw.
struct Received {
    got: u64,
    last: Option<Instant>,
    error: Option<String>,
}

/// Subscribes, signals ready after the SUB is registered, then counts messages.
fn subscriber(
    o: &Options,
    id: usize,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
    ready: mpsc::Sender<Result<(), String>>,
    probed: Arc<AtomicU64>,
) -> Received {
    let probe = o.probe_subject();
    let setup =
        Conn::connect(o.sub_addr(), &format!("twig-bench-sub-{id}"), deadline).and_then(|mut c| {
            let filter = o.sub_subject.as_deref().unwrap_or(&o.subject);
            let subs: String = (1..=o.sids)
                .map(|sid| format!("SUB {filter} {sid}\r\n"))
                .collect();
            c.send(subs.as_bytes(), deadline)?;
            if let Some(p) = &probe {
                c.send(format!("SUB {p} {}\r\n", o.sids + 1).as_bytes(), deadline)?;
            }
            c.barrier(deadline)?;
            Ok(c)
        });
    let mut conn = match setup {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(format!("subscriber {id}: {e}")));
            return Received {
                got: 0,
                last: None,
                error: None,
            };
        }
    };
    conn.stop_on(stop);
    let _ = ready.send(Ok(()));
    let mut r = Received {
        got: 0,
        last: None,
        error: None,
    };
    let mut got_probe = false;
    let want = o.msgs * o.sids as u64;
    while r.got < want {
        match conn.next(deadline) {
            Ok(Some(Event::Msg { subject, .. }))
                if probe.as_ref().is_some_and(|p| p.as_bytes() == subject) =>
            {
                if !got_probe {
                    got_probe = true;
                    probed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Some(Event::Msg { payload, .. })) => {
                if payload.len() != o.size {
                    r.error = Some(format!(
                        "subscriber {id}: got a {} B payload, sent {} B",
                        payload.len(),
                        o.size
                    ));
                    break;
                }
                r.got += 1;
                if r.got.is_multiple_of(STRIDE) {
                    r.last = Some(Instant::now());
                    progress.fetch_add(STRIDE, Ordering::Relaxed);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                r.error = Some(format!("subscriber {id}: {e}"));
                break;
            }
        }
    }
    if r.got == want {
        r.last = Some(Instant::now());
    }
    r
}

/// `pubsub --subs N`: one publisher, N subscribers, delivered messages per second.
pub fn run_pubsub(o: &Options) -> Result<Report, BenchError> {
    let deadline = Instant::now() + o.limit;
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = mpsc::channel();
    let probed = Arc::new(AtomicU64::new(0));
    let subs: Vec<_> = (0..o.subs)
        .map(|id| {
            let (o, stop, progress, ready, probed) = (
                o.clone(),
                stop.clone(),
                progress.clone(),
                ready_tx.clone(),
                probed.clone(),
            );
            thread::spawn(move || subscriber(&o, id, deadline, stop, progress, ready, probed))
        })
        .collect();
    let mut errors = Vec::new();
    for _ in 0..o.subs {
        let wait = deadline.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(wait) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("subscribers not ready before the time limit".into()),
        }
    }
    let published = if errors.is_empty() {
        match Conn::connect(o.addr(), "twig-bench-pub", deadline) {
            Ok(mut c) => match await_interest(&mut c, o, &probed, deadline) {
                Ok(()) => Some(publish(&mut c, o, deadline)),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            Err(e) => {
                errors.push(format!("publisher: {e}"));
                None
            }
        }
    } else {
        None
    };
    if published.is_some() {
        wait_for(&subs, &progress, deadline, o.idle);
    }
    stop.store(true, Ordering::Relaxed);
    let received: Vec<Received> = subs
        .into_iter()
        .map(|h| {
            h.join().unwrap_or(Received {
                got: 0,
                last: None,
                error: Some("subscriber panicked".into()),
            })
        })
        .collect();
    let Some(p) = published else {
        return Err(BenchError::Setup(errors.join("; ")));
    };
    errors.extend(p.error);
    errors.extend(received.iter().filter_map(|r| r.error.clone()));
    let delivered: u64 = received.iter().map(|r| r.got).sum();
    let expected = p.sent * (o.subs * o.sids) as u64;
    if p.sent < o.msgs && errors.is_empty() {
        errors.push(format!(
            "time limit reached after publishing {} of {}",
            p.sent, o.msgs
        ));
    }
    if delivered < expected && errors.is_empty() {
        errors.push(format!(
            "{} messages never arrived (time limit, or nothing for {:?})",
            expected - delivered,
            o.idle
        ));
    }
    let last = received
        .iter()
        .filter_map(|r| r.last)
        .max()
        .unwrap_or(p.first);
    let secs = last.saturating_duration_since(p.first);
    let msgs_per_sec = rate(delivered, secs);
    let pub_secs = p.flushed.unwrap_or(last).saturating_duration_since(p.first);
    eprintln!(
        "pubsub 1:{} {} B: delivered {delivered}/{expected} msgs in {:.3} s = {} msgs/s ({:.1} MB/s); published {} msgs/s",
        o.subs,
        o.size,
        secs.as_secs_f64(),
        human(msgs_per_sec),
        msgs_per_sec * o.size as f64 / 1e6,
        human(rate(p.sent, pub_secs)),
    );
    let mut r = common("pubsub", o);
    r.set("subs", Value::Int(o.subs as u64))
        .set("sids", Value::Int(o.sids as u64))
        .set("sent", Value::Int(p.sent))
        .set("delivered", Value::Int(delivered))
        .set("expected", Value::Int(expected))
        .set("secs", Value::Float(secs.as_secs_f64()))
        .set("msgs_per_sec", Value::Float(msgs_per_sec))
        .set(
            "mb_per_sec",
            Value::Float(msgs_per_sec * o.size as f64 / 1e6),
        )
        .set("pub_msgs_per_sec", Value::Float(rate(p.sent, pub_secs)))
        .set(
            "complete",
            Value::Bool(p.sent == o.msgs && delivered == expected),
        )
        .set("errors", Value::List(errors));
    Ok(r)
}

/// With subscribers on another server: probes until each has seen one (see
/// [`Options::probe_subject`]), so no measured message is published before the interest is
/// known where it is published.
fn await_interest(
    conn: &mut Conn,
    o: &Options,
    probed: &AtomicU64,
    deadline: Instant,
) -> Result<(), String> {
    let Some(probe) = o.probe_subject() else {
        return Ok(());
    };
    let frame = format!("PUB {probe} 0\r\n\r\n");
    while probed.load(Ordering::Relaxed) < o.subs as u64 {
        if Instant::now() >= deadline {
            return Err("interest never crossed to the publisher's server".into());
        }
        conn.send(frame.as_bytes(), deadline)
            .and_then(|()| conn.barrier(deadline))
            .map_err(|e| format!("publisher probe: {e}"))?;
        thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Waits until every subscriber is done, the deadline passes, or no progress for `idle`.
fn wait_for(
    subs: &[thread::JoinHandle<Received>],
    progress: &AtomicU64,
    deadline: Instant,
    idle: Duration,
) {
    let (mut seen, mut since) = (progress.load(Ordering::Relaxed), Instant::now());
    while !subs.iter().all(|h| h.is_finished()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
        let now = progress.load(Ordering::Relaxed);
        if now != seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() >= idle {
            return;
        }
    }
}

/// Fields every throughput report starts with.
fn common(mode: &str, o: &Options) -> Report {
    let mut r = Report::default();
    r.set("mode", Value::Str(mode.into()))
        .set("url", Value::Str(o.url.clone()))
        .set("size", Value::Int(o.size as u64))
        .set("msgs", Value::Int(o.msgs));
    r
}
