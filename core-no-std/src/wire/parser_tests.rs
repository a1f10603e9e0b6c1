//! Parser tests: each op and argument form, as a peer would send it, then every error.

use super::test_util::{assert_split_invariant, one, run_whole};
use super::{Limits, Mode, Op, ParseError, Parser, Queues};

extern crate std;
use std::string::String;

use Mode::{FromClient, FromServer, Leaf};

#[test]
fn client_ops() {
    assert_eq!(
        one(FromClient, b"CONNECT {\"verbose\":false}\r\n"),
        Ok(Op::Connect(b"{\"verbose\":false}"))
    );
    assert_eq!(
        one(FromClient, b"PUB foo 5\r\nhello\r\n"),
        Ok(Op::Pub {
            subject: b"foo",
            reply: None,
            payload: b"hello"
        })
    );
    assert_eq!(
        one(FromClient, b"PUB foo _INBOX.1 0\r\n\r\n"),
        Ok(Op::Pub {
            subject: b"foo",
            reply: Some(b"_INBOX.1"),
            payload: b""
        })
    );
    assert_eq!(
        one(FromClient, b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
        Ok(Op::Hpub {
            subject: b"foo",
            reply: None,
            headers: b"NATS/1.0\r\n\r\n",
            payload: b"hi"
        })
    );
    assert_eq!(
        one(FromClient, b"HPUB foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
        Ok(Op::Hpub {
            subject: b"foo",
            reply: Some(b"r"),
            headers: b"NATS/1.0\r\n\r\n",
            payload: b""
        })
    );
    assert_eq!(
        one(FromClient, b"SUB foo 1\r\n"),
        Ok(Op::Sub {
            subject: b"foo",
            queue: None,
            sid: b"1"
        })
    );
    assert_eq!(
        one(FromClient, b"SUB foo workers 2\r\n"),
        Ok(Op::Sub {
            subject: b"foo",
            queue: Some(b"workers"),
            sid: b"2"
        })
    );
    assert_eq!(
        one(FromClient, b"UNSUB 1\r\n"),
        Ok(Op::Unsub {
            sid: b"1",
            max: None
        })
    );
    assert_eq!(
        one(FromClient, b"UNSUB 1 2\r\n"),
        Ok(Op::Unsub {
            sid: b"1",
            max: Some(2)
        })
    );
    assert_eq!(one(FromClient, b"PING\r\n"), Ok(Op::Ping));
    assert_eq!(one(FromClient, b"PONG\r\n"), Ok(Op::Pong));
}

#[test]
fn server_ops() {
    assert_eq!(
        one(FromServer, b"INFO {\"max_payload\":1048576} \r\n"),
        Ok(Op::Info(b"{\"max_payload\":1048576}"))
    );
    assert_eq!(
        one(FromServer, b"MSG foo 1 5\r\nhello\r\n"),
        Ok(Op::Msg {
            subject: b"foo",
            sid: b"1",
            reply: None,
            payload: b"hello"
        })
    );
    assert_eq!(
        one(FromServer, b"MSG foo 1 bar 2\r\nhi\r\n"),
        Ok(Op::Msg {
            subject: b"foo",
            sid: b"1",
            reply: Some(b"bar"),
            payload: b"hi"
        })
    );
    assert_eq!(
        one(FromServer, b"HMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
        Ok(Op::Hmsg {
            subject: b"foo",
            sid: b"1",
            reply: None,
            headers: b"NATS/1.0\r\n\r\n",
            payload: b"hi"
        })
    );
    assert_eq!(
        one(FromServer, b"HMSG foo 1 bar 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
        Ok(Op::Hmsg {
            subject: b"foo",
            sid: b"1",
            reply: Some(b"bar"),
            headers: b"NATS/1.0\r\n\r\n",
            payload: b""
        })
    );
    assert_eq!(one(FromServer, b"+OK\r\n"), Ok(Op::Ok));
    assert_eq!(
        one(FromServer, b"-ERR 'Stale Connection'\r\n"),
        Ok(Op::Err(b"Stale Connection"))
    );
    assert_eq!(one(FromServer, b"PING\r\n"), Ok(Op::Ping));
}

#[test]
fn leaf_interest() {
    assert_eq!(
        one(Leaf, b"LS+ foo.>\r\n"),
        Ok(Op::LsPlus {
            subject: b"foo.>",
            queue: None
        })
    );
    assert_eq!(
        one(Leaf, b"LS+ jobs workers 2\r\n"),
        Ok(Op::LsPlus {
            subject: b"jobs",
            queue: Some((b"workers", 2))
        })
    );
    assert_eq!(
        one(Leaf, b"LS- foo.>\r\n"),
        Ok(Op::LsMinus {
            subject: b"foo.>",
            queue: None
        })
    );
    assert_eq!(
        one(Leaf, b"LS- jobs workers\r\n"),
        Ok(Op::LsMinus {
            subject: b"jobs",
            queue: Some(b"workers")
        })
    );
    // nats-server: exactly 1 or 3 arguments; a queue without its weight closes the link.
    assert_eq!(
        one(Leaf, b"LS+ jobs workers\r\n"),
        Err(ParseError::ArgCount)
    );
    assert_eq!(
        one(Leaf, b"LS+ jobs workers 1 2\r\n"),
        Err(ParseError::ArgCount)
    );
    assert_eq!(
        one(Leaf, b"LS+ jobs workers x\r\n"),
        Err(ParseError::BadNumber)
    );
    assert_eq!(
        one(Leaf, b"LS+ jobs workers 4294967296\r\n"),
        Err(ParseError::BadNumber)
    );
    assert_eq!(one(Leaf, b"LS+ \r\n"), Err(ParseError::ArgCount));
    assert_eq!(one(Leaf, b"LS- a b c\r\n"), Err(ParseError::ArgCount));
}

fn lmsg<'a>(
    subject: &'a [u8],
    reply: Option<&'a [u8]>,
    queues: &'a [&'a [u8]],
    headers: Option<&'a [u8]>,
    payload: &'a [u8],
) -> Op<'a> {
    Op::Lmsg {
        subject,
        reply,
        queues: Queues::from_list(queues),
        headers,
        payload,
    }
}

#[test]
fn leaf_messages_in_every_form() {
    let cases: [(&[u8], Op<'_>); 9] = [
        (
            b"LMSG foo 2\r\nhi\r\n",
            lmsg(b"foo", None, &[], None, b"hi"),
        ),
        (
            b"LMSG foo _INBOX.x 2\r\nhi\r\n",
            lmsg(b"foo", Some(b"_INBOX.x"), &[], None, b"hi"),
        ),
        (
            b"LMSG foo + _INBOX.x q1 q2 2\r\nhi\r\n",
            lmsg(b"foo", Some(b"_INBOX.x"), &[b"q1", b"q2"], None, b"hi"),
        ),
        (
            b"LMSG foo | q1 2\r\nhi\r\n",
            lmsg(b"foo", None, &[b"q1"], None, b"hi"),
        ),
        (
            b"LMSG foo | q1 q2 q3 q4 q5 2\r\nhi\r\n",
            lmsg(
                b"foo",
                None,
                &[b"q1", b"q2", b"q3", b"q4", b"q5"],
                None,
                b"hi",
            ),
        ),
        // `+` with no queue names is accepted too (nats-server does).
        (
            b"LMSG foo + r 2\r\nhi\r\n",
            lmsg(b"foo", Some(b"r"), &[], None, b"hi"),
        ),
        (
            b"HMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
            lmsg(b"foo", None, &[], Some(b"NATS/1.0\r\n\r\n"), b"hi"),
        ),
        (
            b"HMSG foo + r q1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
            lmsg(
                b"foo",
                Some(b"r"),
                &[b"q1"],
                Some(b"NATS/1.0\r\n\r\n"),
                b"hi",
            ),
        ),
        (
            b"HMSG foo | q1 q2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
            lmsg(
                b"foo",
                None,
                &[b"q1", b"q2"],
                Some(b"NATS/1.0\r\n\r\n"),
                b"hi",
            ),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            one(Leaf, bytes),
            Ok(want),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    // On a leaf link a plain MSG reads as LMSG, as in nats-server; LMSG reads the same anywhere.
    assert_eq!(
        one(Leaf, b"MSG foo r 2\r\nhi\r\n"),
        Ok(lmsg(b"foo", Some(b"r"), &[], None, b"hi"))
    );
    assert_eq!(
        one(FromServer, b"LMSG foo r 2\r\nhi\r\n"),
        Ok(lmsg(b"foo", Some(b"r"), &[], None, b"hi"))
    );
    // Leaf argument errors.
    assert_eq!(one(Leaf, b"LMSG foo\r\n"), Err(ParseError::ArgCount));
    assert_eq!(
        one(Leaf, b"LMSG foo x r q 2\r\n"),
        Err(ParseError::BadReplyIndicator)
    );
    assert_eq!(one(Leaf, b"HMSG foo 2\r\n"), Err(ParseError::ArgCount));
    assert_eq!(
        one(Leaf, b"HMSG foo ++ r q 2 2\r\n"),
        Err(ParseError::BadReplyIndicator)
    );
    assert_eq!(
        one(Leaf, b"HMSG foo | q 3 2\r\n"),
        Err(ParseError::HeaderSizeExceedsTotal)
    );
    assert_eq!(one(Leaf, b"LMSG foo | q x\r\n"), Err(ParseError::BadSize));
}

#[test]
fn op_names_are_case_insensitive_and_blanks_are_runs_of_spaces_and_tabs() {
    assert_eq!(
        one(FromClient, b"pub foo 2\r\nhi\r\n"),
        one(FromClient, b"PUB foo 2\r\nhi\r\n")
    );
    assert_eq!(
        one(FromClient, b"pUb\tfoo \t bar\t\t2 \r\nhi\r\n"),
        one(FromClient, b"PUB foo bar 2\r\nhi\r\n")
    );
    assert_eq!(
        one(FromClient, b"sub foo  1\r\n"),
        Ok(Op::Sub {
            subject: b"foo",
            queue: None,
            sid: b"1"
        })
    );
    assert_eq!(
        one(Leaf, b"ls+  jobs\tworkers   3\r\n"),
        Ok(Op::LsPlus {
            subject: b"jobs",
            queue: Some((b"workers", 3))
        })
    );
    assert_eq!(
        one(Leaf, b"lmsg foo |\tq1  q2 2\r\nhi\r\n"),
        Ok(lmsg(b"foo", None, &[b"q1", b"q2"], None, b"hi"))
    );
    assert_eq!(one(FromServer, b"ping\r\n"), Ok(Op::Ping));
    assert_eq!(one(FromServer, b"+ok\r\n"), Ok(Op::Ok));
    assert_eq!(one(FromServer, b"-err\t'x'\r\n"), Ok(Op::Err(b"x")));
    assert_eq!(one(FromClient, b"connect\t {}\r\n"), Ok(Op::Connect(b"{}")));
    assert_eq!(one(FromServer, b"info {} \t\r\n"), Ok(Op::Info(b"{}")));
}

#[test]
fn tolerated_like_nats_server() {
    // A bare LF ends a control line; after PING/PONG/+OK anything up to it is ignored;
    // INFO/CONNECT need no blank before the JSON; -ERR text may come unquoted.
    assert_eq!(
        one(FromClient, b"PUB foo 2\nhi\r\n"),
        Ok(Op::Pub {
            subject: b"foo",
            reply: None,
            payload: b"hi"
        })
    );
    assert_eq!(one(FromClient, b"PING\n"), Ok(Op::Ping));
    assert_eq!(one(FromClient, b"PINGS and more\r\n"), Ok(Op::Ping));
    assert_eq!(one(FromClient, b"CONNECT{}\r\n"), Ok(Op::Connect(b"{}")));
    assert_eq!(one(FromServer, b"-ERR oops\r\n"), Ok(Op::Err(b"oops")));
    assert_eq!(
        one(FromClient, b"PUB foo 002\r\nhi\r\n"),
        Ok(Op::Pub {
            subject: b"foo",
            reply: None,
            payload: b"hi"
        })
    );
}

#[test]
fn argument_errors_close_without_an_err() {
    let cases: [(&[u8], ParseError); 11] = [
        (b"PUB foo\r\n", ParseError::ArgCount),
        (b"PUB \r\n", ParseError::ArgCount),
        (b"PUB a b c 1\r\n", ParseError::ArgCount),
        (b"PUB foo -1\r\n", ParseError::BadSize),
        (b"PUB foo 1x\r\n", ParseError::BadSize),
        (b"PUB foo 1000000000\r\n", ParseError::BadSize),
        (b"HPUB foo 2\r\n", ParseError::ArgCount),
        (b"HPUB foo 13 12\r\n", ParseError::HeaderSizeExceedsTotal),
        (b"HPUB foo x 12\r\n", ParseError::BadSize),
        (b"SUB foo\r\n", ParseError::ArgCount),
        (b"UNSUB\t\r\n", ParseError::ArgCount),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            one(FromClient, bytes),
            Err(want),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(want.server_err(), None);
        assert!(want.closes_connection());
    }
    assert_eq!(one(FromServer, b"MSG foo 2\r\n"), Err(ParseError::ArgCount));
    assert_eq!(
        one(FromServer, b"HMSG foo 1 2\r\n"),
        Err(ParseError::ArgCount)
    );
    assert_eq!(
        one(FromServer, b"HMSG foo 1 3 2\r\n"),
        Err(ParseError::HeaderSizeExceedsTotal)
    );
}

#[test]
fn unknown_ops_are_refused_at_the_first_wrong_byte() {
    let mut p = Parser::new(FromClient, Limits::default());
    assert_eq!(
        p.parse(b"FOO"),
        Err(ParseError::UnknownOp),
        "no need to wait for the line end"
    );
    assert_eq!(p.parse(b"PUBX"), Err(ParseError::UnknownOp));
    assert_eq!(p.parse(b"PU"), Ok(None), "could still become PUB");
    for bytes in [
        &b"\r\n"[..],
        b" PING\r\n",
        b"PUB\r\n",
        b"PIN\r\n",
        b"-ERR\r\n",
        b"LS*\r\n",
        b"RS+ x\r\n",
    ] {
        assert_eq!(
            one(FromClient, bytes),
            Err(ParseError::UnknownOp),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(
        ParseError::UnknownOp.server_err(),
        Some("Unknown Protocol Operation")
    );
}

#[test]
fn control_line_limit_counts_arguments_like_nats_server() {
    let limits = Limits {
        max_control_line: 10,
        max_payload: 100,
    };
    let mut p = Parser::new(FromClient, limits);
    // `PUB ` then exactly 10 bytes of arguments: accepted.
    assert_eq!(p.parse(b"PUB abcdefg 12\r\n"), Ok(None));
    p.reset();
    assert_eq!(
        p.parse(b"PUB abcdefgh 12\r\n"),
        Err(ParseError::ControlLineTooLong)
    );
    // Found before the line ends, as soon as it is too long...
    assert_eq!(p.parse(b"SUB abcdefgh"), Ok(None));
    assert_eq!(p.parse(b"SUB abcdefgh 1"), Ok(None));
    assert_eq!(
        p.parse(b"SUB abcdefgh 1\r"),
        Ok(None),
        "a CR may be the line's end"
    );
    assert_eq!(
        p.parse(b"SUB abcdefgh 12"),
        Err(ParseError::ControlLineTooLong)
    );
    // Blanks before the arguments do not count (nats-server skips them), up to a bound.
    assert_eq!(p.parse(b"PUB \t  abcdefg 12\r\n"), Ok(None));
    p.reset();
    assert_eq!(p.parse(b"PUB           "), Ok(None));
    assert_eq!(
        p.parse(b"PUB            "),
        Err(ParseError::ControlLineTooLong)
    );
    // ... and for ops without arguments too, which would otherwise grow without bound.
    assert_eq!(
        p.parse(b"PING 0123456789A"),
        Err(ParseError::ControlLineTooLong)
    );
    assert_eq!(
        ParseError::ControlLineTooLong.server_err(),
        Some("maximum control line exceeded")
    );
    // A leaf link gets nats-server's 16x.
    assert_eq!(Limits::default().for_server_link().max_control_line, 65536);
}

#[test]
fn max_payload_is_refused_before_the_payload_arrives() {
    let limits = Limits {
        max_control_line: 4096,
        max_payload: 4,
    };
    let mut p = Parser::new(FromClient, limits);
    assert_eq!(p.parse(b"PUB foo 4\r\n"), Ok(None));
    p.reset();
    assert_eq!(p.parse(b"PUB foo 5\r\n"), Err(ParseError::MaxPayload));
    assert_eq!(p.parse(b"HPUB foo 2 5\r\n"), Err(ParseError::MaxPayload));
    let mut leaf = Parser::new(Leaf, limits);
    assert_eq!(
        leaf.parse(b"LMSG foo | q 5\r\n"),
        Err(ParseError::MaxPayload)
    );
    assert_eq!(
        ParseError::MaxPayload.server_err(),
        Some("Maximum Payload Violation")
    );
}

#[test]
fn payload_must_end_with_crlf() {
    assert_eq!(
        one(FromClient, b"PUB foo 2\r\nhix\r\n"),
        Err(ParseError::MissingPayloadCrlf)
    );
    assert_eq!(
        one(FromClient, b"PUB foo 2\r\nhi\rx"),
        Err(ParseError::MissingPayloadCrlf)
    );
    let mut p = Parser::new(FromClient, Limits::default());
    assert_eq!(p.parse(b"PUB foo 2\r\nhi"), Ok(None));
    assert_eq!(
        p.parse(b"PUB foo 2\r\nhix"),
        Err(ParseError::MissingPayloadCrlf),
        "refused at the byte"
    );
    assert_eq!(
        ParseError::MissingPayloadCrlf.server_err(),
        Some("Unknown Protocol Operation")
    );
}

#[test]
fn needed_tells_how_big_the_pending_op_is() {
    let mut p = Parser::new(FromClient, Limits::default());
    assert_eq!(p.needed(), None);
    assert_eq!(p.parse(b"PUB foo 1000\r\n"), Ok(None));
    assert_eq!(p.needed(), Some(14 + 1000 + 2));
    p.reset();
    assert_eq!(p.needed(), None);
    assert!(Limits::default().max_op_len() >= 4096 + 1024 * 1024);
}

#[test]
fn ops_iterator_walks_a_buffer_and_reports_consumption() {
    let mut p = Parser::new(FromServer, Limits::default());
    let buf = b"PING\r\nMSG a 1 2\r\nhi\r\nPONG\r\nMSG b 1 5\r\nhel";
    let mut ops = p.ops(buf);
    assert_eq!(ops.next(), Some(Ok(Op::Ping)));
    assert_eq!(
        ops.next(),
        Some(Ok(Op::Msg {
            subject: b"a",
            sid: b"1",
            reply: None,
            payload: b"hi"
        }))
    );
    assert_eq!(ops.next(), Some(Ok(Op::Pong)));
    assert_eq!(ops.next(), None);
    assert_eq!(ops.consumed(), 27);
    assert_eq!(p.needed(), Some(18));
    p.reset();
    let mut ops = p.ops(b"PING\r\nBAD\r\nPING\r\n");
    assert_eq!(ops.next(), Some(Ok(Op::Ping)));
    assert_eq!(ops.next(), Some(Err(ParseError::UnknownOp)));
    assert_eq!(ops.next(), None, "nothing after an error");
}

#[test]
fn a_long_mixed_stream_parses_the_same_split_anywhere() {
    let client: &[u8] = b"CONNECT {\"verbose\":false,\"headers\":true}\r\nPING\r\nSUB foo.* 1\r\nsub bar q 2\r\n\
PUB foo.a 5\r\nhello\r\nPUB foo.b _INBOX.1 0\r\n\r\nHPUB foo.c 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nworld\r\n\
UNSUB 1 10\r\nUNSUB 2\r\npong\r\nPUB x 3\r\na\r\n\r\n";
    let run = assert_split_invariant(FromClient, Limits::default(), client);
    assert_eq!((run.ops.len(), run.error, run.leftover), (11, None, 0));

    let server: &[u8] = b"INFO {\"server_id\":\"N\"} \r\n+OK\r\nMSG foo.a 1 5\r\nhello\r\n\
HMSG foo.c 2 r 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nworld\r\n-ERR 'Invalid Subject'\r\nPING\r\n";
    let run = assert_split_invariant(FromServer, Limits::default(), server);
    assert_eq!((run.ops.len(), run.error), (6, None));

    let leaf: &[u8] =
        b"LS+ a.>\r\nLS+ jobs w 3\r\nLMSG jobs + _INBOX.1 w v 2\r\nhi\r\nLMSG jobs | w 0\r\n\r\n\
HMSG a.b 12 12\r\nNATS/1.0\r\n\r\n\r\nLS- jobs w\r\nLS- a.>\r\nPING\r\n";
    let run = assert_split_invariant(Leaf, Limits::default(), leaf);
    assert_eq!((run.ops.len(), run.error), (8, None));
}

#[test]
fn errors_are_the_same_split_anywhere() {
    let limits = Limits {
        max_control_line: 16,
        max_payload: 8,
    };
    let streams: [(&[u8], ParseError); 5] = [
        (b"PING\r\nFOO\r\nPUB foo 2\r\nhi\r\n", ParseError::UnknownOp),
        (
            b"PING\r\nPUB foo.bar.baz.quux 2\r\nhi\r\n",
            ParseError::ControlLineTooLong,
        ),
        (
            b"PING\r\nPUB foo 9\r\n123456789\r\n",
            ParseError::MaxPayload,
        ),
        (
            b"PING\r\nPUB foo 2\r\nhix\r\n",
            ParseError::MissingPayloadCrlf,
        ),
        (b"PING\r\nLS+ q w\r\n", ParseError::ArgCount),
    ];
    for (stream, want) in streams {
        let run = assert_split_invariant(Leaf, limits, stream);
        assert_eq!(run.error, Some(want));
        assert_eq!(run.ops.len(), 1);
    }
    // The whole run in one read gives the same answer as the helper's runs.
    assert_eq!(
        run_whole(Leaf, limits, b"PING\r\nX").error,
        Some(ParseError::UnknownOp)
    );
}

/// nats-server reads an `UNSUB` max it cannot parse as "unsubscribe now" and keeps the
/// connection; the parser says so with a max of 0.
#[test]
fn unsub_with_a_non_numeric_max_means_now() {
    assert_eq!(
        one(FromClient, b"UNSUB 1 many\r\n"),
        Ok(Op::Unsub {
            sid: b"1",
            max: Some(0)
        })
    );
}
