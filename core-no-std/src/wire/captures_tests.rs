//! Real conversations with nats-server 2.15.1 (core-no-std/testdata, see its README):
//! every captured byte parses in its mode, every op re-encodes to exactly the captured
//! bytes, and splitting the stream anywhere changes nothing.

extern crate std;

use std::string::String;
use std::vec::Vec;

use super::test_util::{assert_split_invariant, encode};
use super::{Headers, Limits, Mode, Op, ParseError, Parser, Queues};

use Mode::{FromClient, FromServer, Leaf};

struct Capture {
    name: &'static str,
    mode: Mode,
    bytes: &'static [u8],
    /// The error the stream ends with (the hand-made `err-*` client bytes), if any.
    error: Option<ParseError>,
}

macro_rules! capture {
    ($name:literal, $ext:literal, $mode:expr, $error:expr) => {
        Capture {
            name: concat!($name, ".", $ext),
            mode: $mode,
            bytes: include_bytes!(concat!("../../testdata/nats-2.15.1/", $name, ".", $ext)),
            error: $error,
        }
    };
    // A conversation: the client's bytes (with the error they end in, if any) and the server's.
    ($name:literal, $c2s_error:expr) => {
        [
            capture!($name, "c2s", FromClient, $c2s_error),
            capture!($name, "s2c", FromServer, None),
        ]
    };
}

fn captures() -> Vec<Capture> {
    let conversations = [
        capture!("auth-ok", None),
        capture!("client-publisher", None),
        capture!("client-subscriber", None),
        capture!("err-auth-first-op", None),
        capture!("err-auth-timeout", None),
        capture!("err-auth-violation", None),
        capture!("err-control-line", Some(ParseError::ControlLineTooLong)),
        capture!("err-invalid-subject", None),
        capture!("err-max-payload", Some(ParseError::MaxPayload)),
        capture!("err-no-responders-headers", None),
        capture!("err-pedantic-publish", None),
        capture!("err-protocol", None),
        capture!("err-pub-args", Some(ParseError::ArgCount)),
        capture!("err-unknown-op", Some(ParseError::UnknownOp)),
        capture!("verbose-lowercase", None),
        capture!("verbose-ok", None),
    ];
    let mut all: Vec<Capture> = conversations.into_iter().flatten().collect();
    all.push(capture!("leaf", "c2s", Leaf, None));
    all.push(capture!("leaf", "s2c", Leaf, None));
    all
}

/// nats-py writes `PUB subj  4` (two spaces for no reply) and the lower-case file uses
/// lower-case names; such lines re-encode canonically, i.e. equal to the capture once the
/// op name is upper-cased and runs of blanks are single spaces.
fn canonical_line(raw: &[u8]) -> Vec<u8> {
    let line_len = raw
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |i| i + 1);
    let (line, rest) = raw.split_at(line_len);
    let mut out: Vec<u8> = Vec::new();
    for (i, b) in line.iter().enumerate() {
        let blank = *b == b' ' || *b == b'\t';
        if blank && out.last() == Some(&b' ') {
            continue;
        }
        let in_name = !line[..i].contains(&b' ');
        out.push(if blank {
            b' '
        } else if in_name {
            b.to_ascii_uppercase()
        } else {
            *b
        });
    }
    out.extend_from_slice(rest);
    out
}

#[test]
fn every_capture_parses_completely_in_its_mode() {
    for c in captures() {
        let mut p = Parser::new(c.mode, Limits::default());
        let mut at = 0;
        let mut ops = 0;
        let end = loop {
            match p.parse(&c.bytes[at..]) {
                Ok(Some((op, n))) => {
                    let raw = &c.bytes[at..at + n];
                    let again = encode(&op);
                    let exact = again == raw;
                    let quirk = matches!(
                        op,
                        Op::Pub { .. }
                            | Op::Hpub { .. }
                            | Op::Sub { .. }
                            | Op::Unsub { .. }
                            | Op::Ping
                            | Op::Connect(_)
                    ) && (c.name.starts_with("client-")
                        || c.name.starts_with("verbose-lowercase"))
                        && again == canonical_line(raw);
                    assert!(
                        exact || quirk,
                        "{}: {:?} re-encoded as {:?}",
                        c.name,
                        String::from_utf8_lossy(raw),
                        String::from_utf8_lossy(&again)
                    );
                    check_headers(c.name, &op);
                    at += n;
                    ops += 1;
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        assert_eq!(end, c.error, "{}: how the stream ends", c.name);
        if c.error.is_none() {
            assert_eq!(at, c.bytes.len(), "{}: every byte consumed", c.name);
        }
        assert!(ops > 0 || c.bytes.is_empty(), "{}: has ops", c.name);
    }
}

/// Every header block nats-server or nats-py wrote parses.
fn check_headers(name: &str, op: &Op<'_>) {
    let headers = match *op {
        Op::Hpub { headers, .. } | Op::Hmsg { headers, .. } => headers,
        Op::Lmsg {
            headers: Some(h), ..
        } => h,
        _ => return,
    };
    if let Err(e) = Headers::parse(headers) {
        panic!(
            "{name}: header block {:?}: {e:?}",
            String::from_utf8_lossy(headers)
        );
    }
}

#[test]
fn every_capture_parses_the_same_split_anywhere() {
    for c in captures() {
        let run = assert_split_invariant(c.mode, Limits::default(), c.bytes);
        assert_eq!(run.error, c.error, "{}", c.name);
    }
}

fn ops_of(c: &Capture) -> Vec<Op<'static>> {
    let mut p = Parser::new(c.mode, Limits::default());
    p.ops(c.bytes).filter_map(Result::ok).collect()
}

fn find(name: &str) -> Capture {
    captures()
        .into_iter()
        .find(|c| c.name == name)
        .expect("capture exists")
}

#[test]
fn captured_leaf_messages_carry_reply_and_queues() {
    let ops = ops_of(&find("leaf.s2c"));
    let queued_requests = ops.iter().filter(|op| {
        matches!(op, Op::Lmsg { subject: b"jobs", reply: Some(_), queues, headers: None, .. }
            if *queues == Queues::from_list(&[b"workers"]))
    });
    assert_eq!(queued_requests.count(), 2);
    assert!(ops.contains(&Op::Lmsg {
        subject: b"jobs",
        reply: None,
        queues: Queues::from_list(&[b"workers"]),
        headers: None,
        payload: b"job-1",
    }));
    let c2s = ops_of(&find("leaf.c2s"));
    assert!(c2s.contains(&Op::LsPlus {
        subject: b"jobs",
        queue: Some((b"workers", 2))
    }));
    assert!(c2s.contains(&Op::LsMinus {
        subject: b"jobs",
        queue: Some(b"workers")
    }));
}

#[test]
fn captured_no_responders_and_errors_read_as_nats_server_meant() {
    let ops = ops_of(&find("client-publisher.s2c"));
    let status = ops.iter().find_map(|op| match op {
        Op::Hmsg {
            headers,
            payload: b"",
            ..
        } => Headers::parse(headers).ok(),
        _ => None,
    });
    let h = status.expect("a headers-only HMSG");
    assert_eq!(h.status(), Some(503));
    assert_eq!(h.get(b"Nats-Subject"), Some(&b"nobody.home"[..]));

    for (name, err) in [
        ("err-control-line.s2c", ParseError::ControlLineTooLong),
        ("err-max-payload.s2c", ParseError::MaxPayload),
        ("err-unknown-op.s2c", ParseError::UnknownOp),
    ] {
        let text = err.server_err().expect("has an -ERR").as_bytes();
        assert!(
            ops_of(&find(name)).contains(&Op::Err(text)),
            "{name} shows {err:?}'s text"
        );
    }
    // Argument errors close without a word: the server sent only its INFO.
    assert!(matches!(
        ops_of(&find("err-pub-args.s2c"))[..],
        [Op::Info(_)]
    ));
}
