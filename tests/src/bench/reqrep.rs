//! `reqrep`: one responder echoing a payload of the same size, one requester making sequential
//! requests (one in flight), latency per request from PUB written to reply read.

use super::conn::{BenchError, Conn, Event};
use super::report::{Report, Value, human, percentile_us, rate};
use super::{Options, pub_frame};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

/// Answers every request on `o.subject` until stopped, the deadline, or an error.
fn responder(
    o: &Options,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<(), String>>,
) -> Option<String> {
    let setup = Conn::connect(o.addr(), "twig-bench-responder", deadline).and_then(|mut c| {
        c.send(format!("SUB {} 1\r\n", o.subject).as_bytes(), deadline)?;
        c.barrier(deadline)?;
        Ok(c)
    });
    let mut conn = match setup {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(format!("responder: {e}")));
            return None;
        }
    };
    conn.stop_on(stop);
    let _ = ready.send(Ok(()));
    let payload = o.payload();
    let mut out = Vec::with_capacity(payload.len() + 128);
    loop {
        out.clear();
        match conn.next(deadline) {
            Ok(Some(Event::Msg {
                reply: Some(reply), ..
            })) => pub_frame(&mut out, reply, None, &payload),
            Ok(Some(_)) => continue,
            Ok(None) => return None,
            Err(e) => return Some(format!("responder: {e}")),
        }
        if let Err(e) = conn.send(&out, deadline) {
            return Some(format!("responder: {e}"));
        }
    }
}

/// `reqrep`: p50/p90/p99 latency of sequential requests, in microseconds.
pub fn run_reqrep(o: &Options) -> Result<Report, BenchError> {
    let deadline = Instant::now() + o.limit;
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = {
        let (o, stop) = (o.clone(), stop.clone());
        thread::spawn(move || responder(&o, deadline, stop, ready_tx))
    };
    let ready = ready_rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .map_err(|_| "responder not ready before the time limit".to_string())
        .and_then(|r| r);
    let result = ready
        .map_err(BenchError::Setup)
        .and_then(|()| requests(o, deadline));
    stop.store(true, Ordering::Relaxed);
    let responder_error = handle.join().unwrap_or(Some("responder panicked".into()));
    let (mut lat_ns, mut errors) = result?;
    errors.extend(responder_error);
    let done = lat_ns.len() as u64;
    if done < o.msgs && errors.is_empty() {
        errors.push(format!(
            "time limit reached after {done} of {} requests",
            o.msgs
        ));
    }
    let total_ns: u64 = lat_ns.iter().sum();
    lat_ns.sort_unstable();
    let (p50, p90, p99) = (
        percentile_us(&lat_ns, 50),
        percentile_us(&lat_ns, 90),
        percentile_us(&lat_ns, 99),
    );
    let max = percentile_us(&lat_ns, 100);
    let mean = if done > 0 {
        total_ns as f64 / done as f64 / 1000.0
    } else {
        0.0
    };
    let rps = rate(done, std::time::Duration::from_nanos(total_ns));
    eprintln!(
        "reqrep {} B: {done}/{} requests, p50 {p50:.1} us, p90 {p90:.1} us, p99 {p99:.1} us, max {max:.1} us ({} req/s)",
        o.size,
        o.msgs,
        human(rps)
    );
    let mut r = Report::default();
    r.set("mode", Value::Str("reqrep".into()))
        .set("url", Value::Str(o.url.clone()))
        .set("size", Value::Int(o.size as u64))
        .set("msgs", Value::Int(o.msgs))
        .set("done", Value::Int(done))
        .set("secs", Value::Float(total_ns as f64 / 1e9))
        .set("msgs_per_sec", Value::Float(rps))
        .set("p50_us", Value::Float(p50))
        .set("p90_us", Value::Float(p90))
        .set("p99_us", Value::Float(p99))
        .set("max_us", Value::Float(max))
        .set("mean_us", Value::Float(mean))
        .set("complete", Value::Bool(done == o.msgs))
        .set("errors", Value::List(errors));
    Ok(r)
}

/// Makes `o.warmup + o.msgs` requests one after another; returns the measured latencies.
fn requests(o: &Options, deadline: Instant) -> Result<(Vec<u64>, Vec<String>), BenchError> {
    let mut conn = Conn::connect(o.addr(), "twig-bench-requester", deadline)?;
    let inbox = format!("_INBOX.twigbench.{}", std::process::id());
    conn.send(format!("SUB {inbox}.* 1\r\n").as_bytes(), deadline)?;
    conn.barrier(deadline)?;
    let payload = o.payload();
    let (mut frame, mut reply) = (Vec::with_capacity(payload.len() + 128), String::new());
    let mut lat_ns = Vec::with_capacity(usize::try_from(o.msgs).unwrap_or(0).min(1 << 24));
    let mut errors = Vec::new();
    'requests: for i in 0..o.warmup.saturating_add(o.msgs) {
        frame.clear();
        reply.clear();
        reply.push_str(&inbox);
        reply.push('.');
        reply.push_str(&i.to_string());
        pub_frame(
            &mut frame,
            o.subject.as_bytes(),
            Some(reply.as_bytes()),
            &payload,
        );
        let t0 = Instant::now();
        if let Err(e) = conn.send(&frame, deadline) {
            errors.push(format!("requester: {e}"));
            break;
        }
        loop {
            match conn.next(deadline) {
                // A reply to an earlier request cannot arrive (one in flight), but check anyway.
                Ok(Some(Event::Msg {
                    subject, payload, ..
                })) if subject == reply.as_bytes() => {
                    if payload.len() == o.size {
                        break;
                    }
                    errors.push(format!(
                        "requester: got a {} B reply, expected {} B",
                        payload.len(),
                        o.size
                    ));
                    break 'requests;
                }
                Ok(Some(_)) => {}
                Ok(None) => break 'requests,
                Err(e) => {
                    errors.push(format!("requester: {e}"));
                    break 'requests;
                }
            }
        }
        if i >= o.warmup {
            lat_ns.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
    }
    Ok((lat_ns, errors))
}
