//! Encoder tests: canonical bytes survive parse-then-encode unchanged, ops survive
//! encode-then-parse unchanged, and seeded random streams never panic the parser.

extern crate std;

use std::string::String;
use std::vec::Vec;

#[cfg(feature = "alloc")]
use super::MsgHead;
use super::test_util::{Rng, assert_split_invariant, encode, one, run, run_whole};
use super::{
    CRLF, EncodeError, Limits, Mode, Op, Parser, Queues, encode_lmsg_head, encode_msg_head,
    encode_pub_head,
};

use Mode::{FromClient, FromServer, Leaf};

/// Canonical bytes of every op and argument form, with the mode they are read in.
const CANONICAL: &[(Mode, &[u8])] = &[
    (
        FromServer,
        b"INFO {\"server_id\":\"N\",\"max_payload\":1048576} \r\n",
    ),
    (
        FromClient,
        b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n",
    ),
    (FromClient, b"PUB foo 5\r\nhello\r\n"),
    (FromClient, b"PUB foo _INBOX.a 0\r\n\r\n"),
    (FromClient, b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
    (
        FromClient,
        b"HPUB foo bar 28 30\r\nNATS/1.0 503\r\nA: b\r\nC: d\r\n\r\nhi\r\n",
    ),
    (FromClient, b"SUB foo.* 1\r\n"),
    (FromClient, b"SUB foo.> workers 22\r\n"),
    (FromClient, b"UNSUB 22\r\n"),
    (FromClient, b"UNSUB 22 18446744073709551615\r\n"),
    (FromServer, b"MSG foo 1 5\r\nhello\r\n"),
    (FromServer, b"MSG foo 1 _INBOX.a 5\r\nhe\r\no\r\n"),
    (FromServer, b"HMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
    (FromServer, b"HMSG foo 1 bar 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
    (FromServer, b"PING\r\n"),
    (FromServer, b"PONG\r\n"),
    (FromServer, b"+OK\r\n"),
    (
        FromServer,
        b"-ERR 'Permissions Violation for Publish to \"x\"'\r\n",
    ),
    (Leaf, b"LS+ foo\r\n"),
    (Leaf, b"LS+ jobs workers 4294967295\r\n"),
    (Leaf, b"LS- foo\r\n"),
    (Leaf, b"LS- jobs workers\r\n"),
    (Leaf, b"LMSG foo 2\r\nhi\r\n"),
    (Leaf, b"LMSG svc.echo _INBOX.leafreq 3\r\nabc\r\n"),
    (Leaf, b"LMSG orders.new + _INBOX.abc workers 5\r\nhello\r\n"),
    (
        Leaf,
        b"LMSG orders.new + _INBOX.abc q1 q2 q3 q4 q5 0\r\n\r\n",
    ),
    (Leaf, b"LMSG orders.new | workers others 5\r\nhello\r\n"),
    (Leaf, b"HMSG foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
    (Leaf, b"HMSG foo bar 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
    (
        Leaf,
        b"HMSG orders.new + _INBOX.abc workers 22 27\r\nNATS/1.0\r\nA: bcdef\r\n\r\nhello\r\n",
    ),
    (
        Leaf,
        b"HMSG orders.new | workers 12 12\r\nNATS/1.0\r\n\r\n\r\n",
    ),
];

#[test]
fn canonical_bytes_parse_encode_and_parse_again_unchanged() {
    for &(mode, bytes) in CANONICAL {
        let text = String::from_utf8_lossy(bytes);
        let op = one(mode, bytes).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let again = encode(&op);
        assert_eq!(again, bytes, "re-encoding {text}");
        assert_eq!(one(mode, &again), Ok(op), "re-parsing {text}");
    }
}

#[test]
fn non_canonical_input_encodes_canonically() {
    let cases: [(Mode, &[u8], &[u8]); 6] = [
        (FromClient, b"pub  foo\t2\r\nhi\r\n", b"PUB foo 2\r\nhi\r\n"),
        (FromClient, b"SUB foo  1\r\n", b"SUB foo 1\r\n"),
        (FromServer, b"INFO {}\r\n", b"INFO {} \r\n"),
        (FromServer, b"-ERR text\r\n", b"-ERR 'text'\r\n"),
        (Leaf, b"LMSG foo + r 2\r\nhi\r\n", b"LMSG foo r 2\r\nhi\r\n"),
        (
            Leaf,
            b"MSG foo | q 2\r\nhi\r\n",
            b"LMSG foo | q 2\r\nhi\r\n",
        ),
    ];
    for (mode, input, canonical) in cases {
        assert_eq!(encode(&one(mode, input).unwrap()), canonical);
    }
}

#[test]
fn encode_refuses_small_buffers_and_corrupting_fields() {
    let op = Op::Pub {
        subject: b"foo",
        reply: None,
        payload: b"hello",
    };
    assert_eq!(op.encoded_len(), 18);
    assert_eq!(
        op.encode(&mut [0; 17]),
        Err(EncodeError::BufferTooSmall { needed: 18 })
    );
    let bad = [
        Op::Pub {
            subject: b"fo o",
            reply: None,
            payload: b"",
        },
        Op::Pub {
            subject: b"",
            reply: None,
            payload: b"",
        },
        Op::Pub {
            subject: b"a",
            reply: Some(b"b\r\nPING"),
            payload: b"",
        },
        Op::Sub {
            subject: b"a",
            queue: Some(b"q\t"),
            sid: b"1",
        },
        Op::Connect(b"{}\r\nPUB a 1"),
        Op::Err(b"x\ny"),
        Op::Lmsg {
            subject: b"a",
            reply: None,
            queues: Queues::from_list(&[b"q 1"]),
            headers: None,
            payload: b"",
        },
    ];
    for op in bad {
        assert_eq!(
            op.encode(&mut [0; 64]),
            Err(EncodeError::InvalidArgument),
            "{op:?}"
        );
    }
}

#[test]
fn head_helpers_write_what_the_op_encoders_write() {
    let mut out = [0u8; 128];
    let n = encode_msg_head(b"foo", b"7", Some(b"r"), None, 5, &mut out).unwrap();
    assert_eq!(&out[..n], b"MSG foo 7 r 5\r\n");
    let n = encode_msg_head(b"foo", b"7", None, Some(12), 14, &mut out).unwrap();
    assert_eq!(&out[..n], b"HMSG foo 7 12 14\r\n");
    let n = encode_pub_head(b"foo", None, Some(12), 14, &mut out).unwrap();
    assert_eq!(&out[..n], b"HPUB foo 12 14\r\n");
    let n = encode_lmsg_head(
        b"jobs",
        Some(b"_R"),
        Queues::from_list(&[b"w"]),
        None,
        5,
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[..n], b"LMSG jobs + _R w 5\r\n");
    let n = encode_lmsg_head(
        b"jobs",
        None,
        Queues::from_raw(b"w  v"),
        Some(12),
        14,
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[..n], b"HMSG jobs | w v 12 14\r\n");
    assert_eq!(
        encode_pub_head(b"foo", None, Some(15), 14, &mut out),
        Err(EncodeError::InvalidArgument)
    );
    assert_eq!(
        encode_msg_head(b"foo", b"1", None, None, 5, &mut [0; 4]),
        Err(EncodeError::BufferTooSmall { needed: 13 })
    );

    // Head + payload + CRLF is the whole message.
    let mut msg = Vec::new();
    let n = encode_msg_head(b"foo", b"1", None, None, 2, &mut out).unwrap();
    msg.extend_from_slice(&out[..n]);
    msg.extend_from_slice(b"hi");
    msg.extend_from_slice(CRLF);
    assert_eq!(
        msg,
        encode(&Op::Msg {
            subject: b"foo",
            sid: b"1",
            reply: None,
            payload: b"hi"
        })
    );
}

#[cfg(feature = "alloc")]
#[test]
fn msg_head_struct_and_appending_to_a_vector() {
    // What the gateway's outbound buffer does.
    let head = MsgHead {
        subject: b"foo",
        sid: b"7",
        reply: None,
        header_len: Some(12),
        total_len: 14,
    };
    assert_eq!(head.encoded_len(), 18);
    let mut v = b"PONG\r\n".to_vec();
    assert_eq!(head.encode_into(&mut v), Ok(18));
    assert_eq!(v, b"PONG\r\nHMSG foo 7 12 14\r\n");
    let bad = MsgHead {
        subject: b"f o",
        ..head
    };
    assert_eq!(bad.encode_into(&mut v), Err(EncodeError::InvalidArgument));
    assert_eq!(v.len(), 24, "nothing appended on error");
    assert_eq!(Op::Ping.encode_into(&mut v), Ok(6));
    assert!(v.ends_with(b"PING\r\n"));
}

// ---- seeded property tests ----

const WORDS: &[&[u8]] = &[
    b"a",
    b"foo.bar",
    b"_INBOX.x7",
    b"q",
    b"workers",
    b"$SYS.>",
    b"1",
    b"+",
    b"|",
];
const PAYLOADS: &[&[u8]] = &[
    b"",
    b"x",
    b"hello",
    b"\r\n",
    b"PING\r\n",
    b"NATS/1.0\r\n\r\n",
    b"\x00\xff",
];

fn word(rng: &mut Rng) -> &'static [u8] {
    rng.pick(WORDS)
}

fn opt_word(rng: &mut Rng) -> Option<&'static [u8]> {
    rng.chance(50).then(|| word(rng))
}

/// A random valid op of any kind, paired with the mode that reads it back.
fn random_op<'q>(rng: &mut Rng, queues: &'q [&'static [u8]]) -> (Mode, Op<'q>) {
    let payload = rng.pick(PAYLOADS);
    let headers: &[u8] = rng.pick(&[&b"NATS/1.0\r\n\r\n"[..], b"NATS/1.0 503\r\nK: v\r\n\r\n"]);
    match rng.below(15) {
        0 => (FromServer, Op::Info(b"{\"a\": [1, 2]}")),
        1 => (FromClient, Op::Connect(b"{}")),
        2 => (
            FromClient,
            Op::Pub {
                subject: word(rng),
                reply: opt_word(rng),
                payload,
            },
        ),
        3 => (
            FromClient,
            Op::Hpub {
                subject: word(rng),
                reply: opt_word(rng),
                headers,
                payload,
            },
        ),
        4 => (
            FromClient,
            Op::Sub {
                subject: word(rng),
                queue: opt_word(rng),
                sid: word(rng),
            },
        ),
        5 => (
            FromClient,
            Op::Unsub {
                sid: word(rng),
                max: rng.chance(50).then(|| rng.next_u64()),
            },
        ),
        6 => (
            FromServer,
            Op::Msg {
                subject: word(rng),
                sid: word(rng),
                reply: opt_word(rng),
                payload,
            },
        ),
        7 => (
            FromServer,
            Op::Hmsg {
                subject: word(rng),
                sid: word(rng),
                reply: opt_word(rng),
                headers,
                payload,
            },
        ),
        8 => (FromServer, rng.pick(&[Op::Ping, Op::Pong, Op::Ok])),
        9 => (FromServer, Op::Err(b"Authorization Violation")),
        10 => (
            Leaf,
            Op::LsPlus {
                subject: word(rng),
                queue: rng.chance(50).then(|| (word(rng), rng.next_u64() as u32)),
            },
        ),
        11 => (
            Leaf,
            Op::LsMinus {
                subject: word(rng),
                queue: opt_word(rng),
            },
        ),
        _ => {
            // The reply must not read as a `+`/`|` marker when there are no queues.
            let mut reply = opt_word(rng);
            if queues.is_empty() && matches!(reply, Some(b"+" | b"|")) {
                reply = None;
            }
            let headers = rng.chance(50).then_some(headers);
            (
                Leaf,
                Op::Lmsg {
                    subject: word(rng),
                    reply,
                    queues: Queues::from_list(queues),
                    headers,
                    payload,
                },
            )
        }
    }
}

#[test]
fn random_valid_ops_round_trip() {
    let mut rng = Rng::new(0x7769_7265);
    let lists: [&[&[u8]]; 3] = [&[], &[b"q"], &[b"workers", b"a", b"q"]];
    for _ in 0..5000 {
        let queues = rng.pick(&lists);
        let (mode, op) = random_op(&mut rng, queues);
        let bytes = encode(&op);
        let back = one(mode, &bytes).unwrap_or_else(|e| panic!("{op:?} -> {e:?}"));
        assert_eq!(back, op);
        assert_eq!(encode(&back), bytes);
    }
}

#[test]
fn random_streams_of_valid_ops_parse_the_same_split_anywhere() {
    let mut rng = Rng::new(42);
    for _ in 0..30 {
        let mode = rng.pick(&[FromClient, FromServer, Leaf]);
        let mut stream = Vec::new();
        let mut count = 0;
        while stream.len() < 300 {
            let (m, op) = random_op(&mut rng, &[b"w"]);
            if m == mode {
                stream.extend_from_slice(&encode(&op));
                count += 1;
            }
        }
        let run = assert_split_invariant(mode, Limits::default(), &stream);
        assert_eq!((run.ops.len(), run.error, run.leftover), (count, None, 0));
    }
}

#[test]
fn random_and_mutated_bytes_never_panic_and_split_the_same() {
    let mut rng = Rng::new(0xdead_beef);
    let alphabet = b"PUBHMSGLINFOCNTK+-ER|> \t\r\n0123456789qx.";
    let limits = Limits {
        max_control_line: 24,
        max_payload: 16,
    };
    for round in 0..3000 {
        let mode = rng.pick(&[FromClient, FromServer, Leaf]);
        let mut bytes: Vec<u8> = if round % 2 == 0 {
            // Noise over a protocol-ish alphabet (pure random bytes die at the first byte).
            (0..rng.below(60)).map(|_| rng.pick(alphabet)).collect()
        } else {
            // A valid op with a few bytes changed, inserted or removed.
            let (_, op) = random_op(&mut rng, &[b"q"]);
            let mut b = encode(&op);
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(b.len() + 1);
                match rng.below(3) {
                    0 if at < b.len() => b[at] = rng.next_u64() as u8,
                    1 => b.insert(at, rng.pick(alphabet)),
                    _ if at < b.len() => {
                        b.remove(at);
                    }
                    _ => {}
                }
            }
            b
        };
        if round % 7 == 0 {
            bytes.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
        }
        // Whole, split anywhere, bytewise: never a panic, always the same result.
        let whole = run_whole(mode, limits, &bytes);
        for at in 0..=bytes.len() {
            let (a, b) = bytes.split_at(at);
            assert_eq!(
                run(mode, limits, [a, b]),
                whole,
                "{:?} split at {at}",
                String::from_utf8_lossy(&bytes)
            );
        }
        // Contract-breaking callers (unrelated buffers each call) must not panic either.
        let mut p = Parser::new(mode, limits);
        for chunk in bytes.chunks(5) {
            let _ = p.parse(chunk);
        }
    }
}

/// Found by the `parser` fuzz target: a CR in the middle of a control line. nats-server's
/// `splitArg` treats it as an argument separator, so it never lands inside a token, and
/// free text (JSON, `-ERR`) keeps it and still re-encodes to bytes that parse back.
#[test]
fn a_stray_cr_separates_arguments_and_free_text_round_trips() {
    let mut p = Parser::new(Mode::FromClient, Limits::default());
    let (op, _) = p.parse(b"SUB a\rq 1\r\n").unwrap().unwrap();
    assert_eq!(
        op,
        Op::Sub {
            subject: b"a",
            queue: Some(b"q"),
            sid: b"1"
        }
    );
    for line in [
        &b"CONNECT {\"a\":\r1}\r\n"[..],
        b"CONNECT {}\r\r\n",
        b"-ERR 'x\ry'\r\n",
    ] {
        let mut p = Parser::new(Mode::FromClient, Limits::default());
        let (op, used) = p.parse(line).unwrap().unwrap();
        assert_eq!(used, line.len());
        let mut out = [0u8; 64];
        let n = op
            .encode(&mut out)
            .expect("free text with a lone CR encodes");
        let mut p = Parser::new(Mode::FromClient, Limits::default());
        assert_eq!(p.parse(&out[..n]).unwrap().unwrap().0, op);
    }
}

#[test]
fn connect_written_in_place_parses_back() {
    let mut out = [0u8; 32];
    let n = super::encode_connect_with(&mut out, |json| {
        json.get_mut(..2)?.copy_from_slice(b"{}");
        Some(2)
    })
    .unwrap();
    assert_eq!(&out[..n], b"CONNECT {}\r\n");
    assert_eq!(one(FromClient, &out[..n]), Ok(Op::Connect(b"{}")));
    assert_eq!(
        super::encode_connect_with(&mut out[..11], |_| Some(2)),
        Err(EncodeError::BufferTooSmall { needed: 12 })
    );
    assert_eq!(
        super::encode_connect_with(&mut out, |json| {
            json.get_mut(..3)?.copy_from_slice(b"{\n}");
            Some(3)
        }),
        Err(EncodeError::InvalidArgument)
    );
}
