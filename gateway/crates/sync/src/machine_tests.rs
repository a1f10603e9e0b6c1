//! The pull conversation, as the hub would hold it.
use super::*;

fn plan(create: bool) -> Plan {
    Plan {
        api_prefix: "$JS.hub.API".into(),
        stream: "CMD".into(),
        durable: "edge".into(),
        inbox: "_INBOX.t".into(),
        batch: 2,
        expires: Duration::from_secs(10),
        create: create.then(|| b"{}".to_vec()),
        request_timeout: Duration::from_secs(1),
        retry_delay: Duration::from_secs(3),
    }
}

fn sent(outs: &[Out]) -> Vec<(String, String, String)> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Send(s) => Some((
                s.subject.clone(),
                s.reply.clone().unwrap_or_default(),
                String::from_utf8_lossy(&s.payload).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

fn inbox(subject: &str, reply: Option<&str>, headers: Option<&str>, body: &str) -> Owned {
    Owned {
        subject: subject.as_bytes().into(),
        reply: reply.map(|r| r.as_bytes().into()),
        headers: headers.map(|h| h.as_bytes().into()),
        payload: body.as_bytes().into(),
        charge: None,
    }
}

fn data(req: u64, sseq: u64) -> Owned {
    inbox(
        &format!("_INBOX.t.p.{req}"),
        Some(&format!("$JS.ACK.CMD.edge.1.{sseq}.{sseq}.17.0@cmd.x")),
        Some("NATS/1.0\r\nK: v\r\n\r\n"),
        &format!("m{sseq}"),
    )
}

fn status(req: u64, line: &str) -> Owned {
    inbox(
        &format!("_INBOX.t.p.{req}"),
        None,
        Some(&format!("NATS/1.0 {line}\r\n\r\n")),
        "",
    )
}

const PULL: &str = "$JS.hub.API.CONSUMER.MSG.NEXT.CMD.edge";
const PULL_BODY: &str = "{\"batch\":2,\"expires\":10000000000}";

#[test]
fn create_then_pull_deliver_and_ack_then_pull_again() {
    let t0 = Instant::now();
    let mut m = Machine::new(plan(true));
    assert_eq!(m.phase(), Phase::Down);
    let outs = m.up(t0);
    assert_eq!(
        sent(&outs),
        [(
            "$JS.hub.API.CONSUMER.CREATE.CMD.edge".into(),
            "_INBOX.t.c.1".into(),
            "{}".into()
        )]
    );
    // Another name's answer, or a stale one, changes nothing.
    assert!(
        m.on_msg(t0, &inbox("_INBOX.t.c.9", None, None, "{}"))
            .is_empty()
    );
    assert!(
        m.on_msg(t0, &inbox("_INBOX.u.c.1", None, None, "{}"))
            .is_empty()
    );
    let outs = m.on_msg(t0, &inbox("_INBOX.t.c.1", None, None, r#"{"type":"x"}"#));
    assert_eq!(
        sent(&outs),
        [(PULL.into(), "_INBOX.t.p.2".into(), PULL_BODY.into())]
    );
    assert_eq!(m.phase(), Phase::Pulling);
    assert_eq!(m.poll_at(), Some(t0 + Duration::from_secs(11)));

    let outs = m.on_msg(t0, &data(2, 5));
    let [Out::Deliver(d)] = &outs[..] else {
        panic!("{outs:?}")
    };
    assert_eq!(
        (d.stream_seq, &*d.subject, &*d.payload),
        (5, &b"cmd.x"[..], &b"m5"[..])
    );
    assert_eq!(d.headers.as_deref(), Some(&b"NATS/1.0\r\nK: v\r\n\r\n"[..]));
    let ack = m.ack(d);
    assert_eq!(
        (ack.subject.as_str(), ack.reply.as_deref(), &ack.payload[..]),
        (
            "$JS.ACK.CMD.edge.1.5.5.17.0",
            Some("_INBOX.t.a.5"),
            &b"+ACK"[..]
        )
    );
    let nak = m.nak(d, Duration::from_secs(2));
    assert_eq!(
        (nak.subject.as_str(), nak.reply, &nak.payload[..]),
        (
            "$JS.ACK.CMD.edge.1.5.5.17.0",
            None,
            &b"-NAK {\"delay\":2000000000}"[..]
        )
    );
    // The second message fills the batch: the next request goes out at once.
    let outs = m.on_msg(t0, &data(2, 6));
    assert!(matches!(outs[0], Out::Deliver(_)));
    assert_eq!(
        sent(&outs),
        [(PULL.into(), "_INBOX.t.p.3".into(), PULL_BODY.into())]
    );
    assert_eq!(
        m.on_msg(t0, &inbox("_INBOX.t.a.5", None, None, "")),
        [Out::Confirmed(5)]
    );
}

#[test]
fn statuses_end_requests_and_stale_ones_are_ignored() {
    let t0 = Instant::now();
    let mut m = Machine::new(plan(false));
    assert_eq!(sent(&m.up(t0))[0].1, "_INBOX.t.p.1");
    // A heartbeat pushes the deadline out.
    let t1 = t0 + Duration::from_secs(5);
    assert!(m.on_msg(t1, &status(1, "100 Idle Heartbeat")).is_empty());
    assert_eq!(m.poll_at(), Some(t1 + Duration::from_secs(11)));
    // Expired: ask again.
    let outs = m.on_msg(t1, &status(1, "408 Request Timeout"));
    assert_eq!(sent(&outs)[0].1, "_INBOX.t.p.2");
    // The old request's statuses count for nothing, its messages are still delivered.
    assert!(m.on_msg(t1, &status(1, "408 Request Timeout")).is_empty());
    assert!(matches!(m.on_msg(t1, &data(1, 9))[..], [Out::Deliver(_)]));
    let outs = m.on_msg(t1, &status(2, "404 No Messages"));
    assert_eq!(sent(&outs)[0].1, "_INBOX.t.p.3");
    // 409: report, wait, then start over (no create configured: pull).
    let outs = m.on_msg(t1, &status(3, "409 Consumer Deleted"));
    assert_eq!(
        outs,
        [Out::Error(
            "pull request ended: 409 Consumer Deleted".into()
        )]
    );
    assert_eq!(m.phase(), Phase::Waiting);
    assert!(m.poll(t1 + Duration::from_secs(2)).is_empty());
    let outs = m.poll(t1 + Duration::from_secs(3));
    assert_eq!(sent(&outs)[0].1, "_INBOX.t.p.4");
}

#[test]
fn lost_requests_no_interest_and_link_loss() {
    let t0 = Instant::now();
    let mut m = Machine::new(plan(true));
    m.up(t0);
    // Nobody took the create (no hub interest yet): re-sent shortly.
    assert!(m.unsent(t0).is_empty());
    assert_eq!(m.phase(), Phase::Waiting);
    let outs = m.poll(t0 + NO_INTEREST_RETRY);
    assert_eq!(sent(&outs)[0].1, "_INBOX.t.c.2");
    // No answer: error, retry after the delay.
    let t1 = t0 + NO_INTEREST_RETRY + Duration::from_secs(1);
    assert!(matches!(m.poll(t1)[..], [Out::Error(_)]));
    let outs = m.poll(t1 + Duration::from_secs(3));
    assert_eq!(sent(&outs)[0].1, "_INBOX.t.c.3");
    // The stream is missing: error, retry.
    let outs = m.on_msg(
        t1,
        &inbox(
            "_INBOX.t.c.3",
            None,
            None,
            r#"{"error":{"code":404,"err_code":10059,"description":"stream not found"}}"#,
        ),
    );
    assert!(matches!(&outs[..], [Out::Error(e)] if e.contains("stream not found")));
    let t2 = t1 + Duration::from_secs(3);
    m.poll(t2);
    // Exists with another config: used as it is.
    let outs = m.on_msg(
        t2,
        &inbox(
            "_INBOX.t.c.4",
            None,
            None,
            r#"{"error":{"err_code":10148}}"#,
        ),
    );
    assert_eq!(sent(&outs)[0].1, "_INBOX.t.p.5");
    // A pull that never gets any answer: create again, then pull.
    let outs = m.poll(t2 + Duration::from_secs(11));
    assert_eq!(sent(&outs)[0].1, "_INBOX.t.c.6");
    // The link drops: nothing until it is back.
    m.down();
    assert_eq!((m.phase(), m.poll_at()), (Phase::Down, None));
    assert!(m.poll(t2 + Duration::from_secs(60)).is_empty());
    assert_eq!(sent(&m.up(t2))[0].1, "_INBOX.t.c.7");
}

#[test]
fn odd_messages_are_reported_not_delivered() {
    let t0 = Instant::now();
    let mut m = Machine::new(plan(false));
    m.up(t0);
    let no_ack = inbox("_INBOX.t.p.1", Some("_INBOX.x"), None, "x");
    assert!(matches!(m.on_msg(t0, &no_ack)[..], [Out::Error(_)]));
    let no_subject = inbox(
        "_INBOX.t.p.1",
        Some("$JS.ACK.CMD.edge.1.1.1.1.0"),
        None,
        "x",
    );
    assert!(matches!(m.on_msg(t0, &no_subject)[..], [Out::Error(_)]));
    assert!(
        m.on_msg(t0, &inbox("_INBOX.t.p.x", None, None, ""))
            .is_empty()
    );
    assert!(m.on_msg(t0, &inbox("_INBOX.t", None, None, "")).is_empty());
    assert!(
        m.on_msg(t0, &inbox("_INBOX.t.z.1", None, None, ""))
            .is_empty()
    );
}

#[test]
fn no_interest_backs_off_and_is_reported_once() {
    let t0 = Instant::now();
    let mut m = Machine::new(plan(false));
    m.up(t0);
    let mut now = t0;
    let mut waits = Vec::new();
    let mut errors = 0;
    for _ in 0..8 {
        errors += m.unsent(now).len();
        let at = m.poll_at().unwrap();
        waits.push((at - now).as_millis());
        now = at;
        assert_eq!(sent(&m.poll(now)).len(), 1);
    }
    assert_eq!(waits, [50, 100, 200, 400, 800, 1600, 3000, 3000]);
    assert_eq!(errors, 1);
    assert_eq!(m.requests(), 9);
    // An answer to the open request resets the back-off.
    let req = m.req;
    m.on_msg(now, &status(req, "100 Idle Heartbeat"));
    m.unsent(now);
    assert_eq!(m.poll_at(), Some(now + NO_INTEREST_RETRY));
}
