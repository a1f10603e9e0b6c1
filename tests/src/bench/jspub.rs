//! `jspub`: durable publishes with PubAcks (a stream on the subject must exist): up to
//! `--inflight` publishes await their PubAck at once; the rate counts acknowledged messages.

use super::conn::{BenchError, Conn, Event};
use super::report::{Report, Value, human, rate};
use super::{Options, PayloadKind, payload_of, pub_frame};
use std::time::Instant;

/// Publishes `o.msgs` messages with reply subjects and counts the PubAcks.
pub fn run_jspub(o: &Options) -> Result<Report, BenchError> {
    let deadline = Instant::now() + o.limit;
    let mut conn = Conn::connect(o.addr(), "twig-bench-jspub", deadline)?;
    let inbox = format!("_INBOX.twigjs.{}", std::process::id());
    conn.send(format!("SUB {inbox}.* 1\r\n").as_bytes(), deadline)?;
    conn.barrier(deadline)?;
    let mut payload = o.payload();
    let mut frame = Vec::with_capacity(64 * 1024);
    let (mut sent, mut acked, mut bad) = (0u64, 0u64, 0u64);
    let mut errors = Vec::new();
    let t0 = Instant::now();
    while acked + bad < o.msgs {
        // Refill once half the window came back: few large writes, not one per ack.
        let inflight = sent - acked - bad;
        if sent < o.msgs && inflight <= o.inflight / 2 {
            frame.clear();
            while sent < o.msgs && sent - acked - bad < o.inflight {
                let reply = format!("{inbox}.{sent}");
                if o.payload != PayloadKind::Fixed {
                    payload_of(o.payload, o.size, sent, &mut payload);
                }
                pub_frame(
                    &mut frame,
                    o.subject.as_bytes(),
                    Some(reply.as_bytes()),
                    &payload,
                );
                sent += 1;
            }
            if let Err(e) = conn.send(&frame, deadline) {
                errors.push(e.to_string());
                break;
            }
        }
        match conn.next(deadline) {
            Ok(Some(Event::Msg { payload, .. })) => {
                if payload.windows(7).any(|w| w == b"\"error\"") {
                    bad += 1;
                } else {
                    acked += 1;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                errors.push(format!("time limit after {acked} PubAcks"));
                break;
            }
            Err(e) => {
                errors.push(e.to_string());
                break;
            }
        }
    }
    let elapsed = t0.elapsed();
    let rps = rate(acked, elapsed);
    if bad > 0 {
        errors.push(format!("{bad} publishes answered with an error"));
    }
    eprintln!(
        "jspub {} B, {} in flight: {acked}/{} acked in {:.2}s ({} msgs/s)",
        o.size,
        o.inflight,
        o.msgs,
        elapsed.as_secs_f64(),
        human(rps)
    );
    let mut r = Report::default();
    r.set("mode", Value::Str("jspub".into()))
        .set("url", Value::Str(o.url.clone()))
        .set("size", Value::Int(o.size as u64))
        .set("msgs", Value::Int(o.msgs))
        .set("done", Value::Int(acked))
        .set("secs", Value::Float(elapsed.as_secs_f64()))
        .set("msgs_per_sec", Value::Float(rps))
        .set("complete", Value::Bool(acked == o.msgs))
        .set("errors", Value::List(errors));
    Ok(r)
}
