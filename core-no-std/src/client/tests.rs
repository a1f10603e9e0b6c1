//! Conversations with a scripted server, byte for byte: what the server sends goes in,
//! what the client must answer comes out (smoltcp's TCP tests read the same way).

extern crate std;

use std::string::String;
use std::vec::Vec;

use super::*;
use crate::wire::{HeaderWriter, ParseError};

const INFO: &[u8] = b"INFO {\"server_id\":\"NTEST\",\"version\":\"2.15.1\",\"proto\":1,\"headers\":true,\"max_payload\":1048576,\"client_id\":7} \r\n";
const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"rust\",\"version\":\"0.1.0\",\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\n";

type TestClient = Client<'static, 4, 256, 64>;

/// One side of the conversation: the client under test and the clock.
struct Talk {
    c: TestClient,
    now: u64,
    /// Received bytes not consumed yet (for [`Talk::server_partial`]).
    pending: Vec<u8>,
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Talk {
    fn new(options: Options<'static>) -> Talk {
        let mut c = TestClient::new(options);
        c.connect(0);
        Talk {
            c,
            now: 0,
            pending: Vec::new(),
        }
    }

    /// A client past the handshake, with nothing left to send.
    fn connected() -> Talk {
        let mut t = Talk::new(Options::new());
        t.server(INFO);
        t.sends(&[CONNECT, b"PING\r\n"].concat());
        assert_eq!(t.server(b"PONG\r\n"), [Event::Connected]);
        t
    }

    /// The server sends `bytes` (whole ops); returns the events, in order.
    fn server<'a>(&mut self, bytes: &'a [u8]) -> Vec<Event<'a>> {
        let mut events = Vec::new();
        let mut at = 0;
        for _ in 0..1000 {
            let (n, event) = self.c.handle(self.now, &bytes[at..]);
            at += n;
            match event {
                Some(e) => events.push(e),
                None if n == 0 => break,
                None => {}
            }
        }
        let closed = self.c.status() == Status::Closed;
        assert!(
            at == bytes.len() || closed,
            "left unconsumed: {:?}",
            show(&bytes[at..])
        );
        events
    }

    /// The client must send exactly `expected` now (and it counts as sent).
    fn sends(&mut self, expected: &[u8]) {
        let out = self.c.transmit().to_vec();
        assert_eq!(show(&out), show(expected));
        self.c.transmitted(out.len());
    }

    /// The clock moves to `now` and the timers run.
    fn at<'a>(&mut self, now: u64) -> Vec<Event<'a>> {
        self.now = now;
        self.server(b"")
    }
}

#[test]
fn handshake_sends_connect_every_subscription_and_a_ping() {
    let mut c = TestClient::new(Options::new());
    assert_eq!(c.status(), Status::Idle);
    assert_eq!(c.subscribe(b"cmd.7", None), Ok(Sid(1)));
    assert_eq!(c.subscribe(b"cfg.>", Some(b"workers")), Ok(Sid(2)));
    assert_eq!(c.transmit(), b"", "nothing goes out before a connection");
    let mut t = Talk {
        c,
        now: 0,
        pending: Vec::new(),
    };
    t.c.connect(0);
    assert_eq!(t.c.status(), Status::AwaitingInfo);
    assert_eq!(t.server(INFO), [Event::Info(&INFO[5..INFO.len() - 3])]);
    assert_eq!(t.c.status(), Status::Connecting);
    t.sends(&[CONNECT, b"SUB cmd.7 1\r\nSUB cfg.> workers 2\r\nPING\r\n"].concat());
    assert_eq!(
        t.c.publish(b"a", None, None, b""),
        Err(ClientError::NotConnected)
    );
    assert_eq!(t.server(b"PONG\r\n"), [Event::Connected]);
    assert_eq!(t.c.status(), Status::Connected);
}

#[test]
fn credentials_and_name_go_into_connect() {
    let mut t = Talk::new(Options::new().name("sensor-7").user_password("u", "p\"w"));
    t.server(INFO);
    t.sends(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"u\",\"pass\":\"p\\\"w\",\"name\":\"sensor-7\",\"lang\":\"rust\",\"version\":\"0.1.0\",\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\nPING\r\n");

    let mut t = Talk::new(Options::new().token("s3cret").echo(false));
    t.server(INFO);
    t.sends(b"CONNECT {\"echo\":false,\"verbose\":false,\"pedantic\":false,\"auth_token\":\"s3cret\",\"lang\":\"rust\",\"version\":\"0.1.0\",\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\nPING\r\n");
}

#[test]
fn publishes_plain_with_reply_and_with_headers() {
    let mut t = Talk::connected();
    t.c.publish(b"sensors.7.temp", None, None, b"21.5").unwrap();
    t.c.publish(b"svc.time", Some(b"_INBOX.7"), None, b"")
        .unwrap();
    t.sends(b"PUB sensors.7.temp 4\r\n21.5\r\nPUB svc.time _INBOX.7 0\r\n\r\n");

    let mut block = [0u8; 64];
    let mut w = HeaderWriter::new(&mut block).unwrap();
    w.push(b"Nats-Msg-Id", b"7-42").unwrap();
    let n = w.finish();
    t.c.publish(b"sensors.7.temp", None, Some(&block[..n]), b"21.5")
        .unwrap();
    t.sends(b"HPUB sensors.7.temp 31 35\r\nNATS/1.0\r\nNats-Msg-Id: 7-42\r\n\r\n21.5\r\n");
}

#[test]
fn publish_refuses_what_the_server_would() {
    let mut t = Talk::connected();
    let c = &mut t.c;
    assert_eq!(
        c.publish(b"a.*", None, None, b""),
        Err(ClientError::InvalidSubject(SubjectError::Wildcard))
    );
    assert_eq!(
        c.publish(b"a b", None, None, b""),
        Err(ClientError::InvalidSubject(SubjectError::Whitespace))
    );
    assert_eq!(
        c.publish(b"a", Some(b""), None, b""),
        Err(ClientError::InvalidSubject(SubjectError::Empty))
    );
    assert_eq!(
        c.publish(b"a", None, Some(b"HTTP/1.1\r\n\r\n"), b""),
        Err(ClientError::BadHeaders(
            crate::wire::HeaderError::BadVersion
        ))
    );
    assert_eq!(c.transmit(), b"");
}

#[test]
fn server_limits_from_info_apply_to_publish() {
    let mut t = Talk::new(Options::new());
    t.server(b"INFO {\"server_id\":\"N\",\"headers\":false,\"max_payload\":8} \r\n");
    t.c.transmitted(usize::MAX);
    t.server(b"PONG\r\n");
    assert_eq!(t.c.server_max_payload(), 8);
    assert_eq!(
        t.c.publish(b"a", None, None, b"123456789"),
        Err(ClientError::MaxPayload)
    );
    assert_eq!(t.c.publish(b"a", None, None, b"12345678"), Ok(()));
    assert_eq!(
        t.c.publish(b"a", None, Some(b"NATS/1.0\r\n\r\n"), b""),
        Err(ClientError::HeadersUnsupported)
    );
}

#[test]
fn messages_arrive_as_borrowed_events_for_known_sids_only() {
    let mut t = Talk::connected();
    let sid = t.c.subscribe(b"cmd.>", None).unwrap();
    t.sends(b"SUB cmd.> 1\r\n");
    let script = b"MSG cmd.led 1 _INBOX.x 2\r\non\r\n\
                   HMSG cmd.led 1 25 27\r\nNATS/1.0\r\nPriority: 1\r\n\r\nhi\r\n\
                   MSG cmd.led 99 1\r\nx\r\n\
                   MSG cmd.led nope 1\r\nx\r\n";
    let events = t.server(script);
    assert_eq!(events.len(), 2, "sids 99 and `nope` are not ours: dropped");
    assert_eq!(
        events[0],
        Event::Message(Message {
            sid,
            subject: b"cmd.led",
            reply: Some(b"_INBOX.x"),
            header_block: None,
            payload: b"on",
        })
    );
    let Event::Message(m) = events[1] else {
        panic!("{:?}", events[1])
    };
    let headers = m.headers().unwrap().unwrap();
    assert_eq!(headers.get(b"Priority"), Some(&b"1"[..]));
    assert_eq!((m.payload, m.status()), (&b"hi"[..], None));
}

#[test]
fn no_responders_status_is_recognised() {
    let mut t = Talk::connected();
    t.c.subscribe(b"_INBOX.r", None).unwrap();
    t.c.publish(b"svc.none", Some(b"_INBOX.r"), None, b"?")
        .unwrap();
    t.sends(b"SUB _INBOX.r 1\r\nPUB svc.none _INBOX.r 1\r\n?\r\n");
    let events =
        t.server(b"HMSG _INBOX.r 1 40 40\r\nNATS/1.0 503\r\nNats-Subject: svc.none\r\n\r\n\r\n");
    let [Event::Message(m)] = events[..] else {
        panic!("{events:?}")
    };
    assert!(m.is_no_responders());
}

#[test]
fn server_pings_are_answered_even_split_at_every_byte() {
    let mut t = Talk::connected();
    for b in b"PING\r\n" {
        assert!(t.server_partial(core::slice::from_ref(b)).is_empty());
    }
    t.sends(b"PONG\r\n");
    assert_eq!(t.server(b"PING\r\nPING\r\n"), []);
    t.sends(b"PONG\r\nPONG\r\n");
}

impl Talk {
    /// Like [`Talk::server`], for bytes that may end inside an op: they are kept in a
    /// buffer the way a real caller keeps them.
    fn server_partial(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        loop {
            let buf = self.pending.clone();
            let (n, event) = self.c.handle(self.now, &buf);
            if let Some(e) = event {
                events.push(std::format!("{e:?}"));
            }
            self.pending.drain(..n);
            if n == 0 {
                break;
            }
        }
        events
    }
}

#[test]
fn keepalive_pings_on_time_and_a_silent_server_is_stale() {
    let mut t = Talk::new(Options::new().ping_interval_ms(1000));
    t.now = 5;
    t.server(INFO);
    t.c.transmitted(usize::MAX);
    t.now = 10;
    t.server(b"PONG\r\n");
    assert_eq!(
        t.c.poll_at(),
        Some(1010),
        "first keepalive one interval after connecting"
    );
    assert_eq!(t.at(1009), []);
    t.sends(b"");
    assert_eq!(t.at(1010), []);
    t.sends(b"PING\r\n");
    assert_eq!(t.c.poll_at(), Some(2010));
    assert_eq!(
        t.server(b"PONG\r\n"),
        [Event::Pong],
        "the answer resets the count"
    );
    assert_eq!(t.at(2010), []);
    t.sends(b"PING\r\n");
    assert_eq!(t.at(3010), []);
    t.sends(b"PING\r\n");
    assert_eq!(
        t.at(4010),
        [Event::Closed(Close::Stale)],
        "two PINGs unanswered"
    );
    assert_eq!(t.c.status(), Status::Closed);
    assert_eq!(t.c.poll_at(), None);
    assert_eq!(t.server(b"PONG\r\n"), [], "a closed session takes no input");
}

#[test]
fn user_pings_come_back_as_pongs() {
    let mut t = Talk::connected();
    t.c.ping().unwrap();
    t.sends(b"PING\r\n");
    assert_eq!(t.server(b"PONG\r\n"), [Event::Pong]);
}

#[test]
fn a_handshake_that_does_not_finish_in_time_is_given_up() {
    let mut t = Talk::new(Options::new().connect_timeout_ms(500));
    assert_eq!(t.c.poll_at(), Some(500));
    assert_eq!(t.at(499), []);
    assert_eq!(t.at(500), [Event::Closed(Close::ConnectTimeout)]);

    let mut t = Talk::new(Options::new().connect_timeout_ms(500));
    t.server(INFO);
    assert_eq!(
        t.c.poll_at(),
        Some(500),
        "the deadline covers INFO and PONG"
    );
    assert_eq!(t.at(600), [Event::Closed(Close::ConnectTimeout)]);
    assert_eq!(t.c.transmit(), b"", "unsent bytes go with the session");
}

#[test]
fn errors_that_close_end_the_session_and_others_are_reported() {
    let mut t = Talk::new(Options::new().user_password("u", "wrong"));
    t.server(INFO);
    assert_eq!(
        t.server(b"-ERR 'Authorization Violation'\r\n"),
        [Event::Closed(Close::ServerError(
            b"Authorization Violation"
        ))]
    );
    assert_eq!(t.c.status(), Status::Closed);

    let mut t = Talk::connected();
    t.c.subscribe(b"secret", None).unwrap();
    assert_eq!(
        t.server(b"-ERR 'Permissions Violation for Subscription to \"secret\"'\r\n"),
        [Event::ServerError(
            b"Permissions Violation for Subscription to \"secret\""
        )]
    );
    assert_eq!(t.c.status(), Status::Connected);
    assert_eq!(
        t.server(b"-ERR 'Stale Connection'\r\n"),
        [Event::Closed(Close::ServerError(b"Stale Connection"))]
    );
}

#[test]
fn what_a_server_never_sends_ends_the_session() {
    let cases: [(&[u8], Close<'static>); 5] = [
        (b"HELLO\r\n", Close::Protocol(ParseError::UnknownOp)),
        (b"PUB a 1\r\nx\r\n", Close::UnexpectedOp),
        (
            b"MSG a 1 3\r\nxy\r\n",
            Close::Protocol(ParseError::MissingPayloadCrlf),
        ),
        (b"MSG a 1 2000\r\n", Close::Protocol(ParseError::MaxPayload)),
        (b"INFO {\"tls_required\":true} \r\n", Close::TlsRequired),
    ];
    for (bytes, why) in cases {
        let mut t = Talk::new(Options::new().max_incoming_payload(1024));
        if !bytes.starts_with(b"INFO") {
            t.server(INFO);
            t.c.transmitted(usize::MAX);
        }
        assert_eq!(t.server(bytes), [Event::Closed(why)], "{}", show(bytes));
    }
    let mut t = Talk::new(Options::new());
    let events = t.server(b"INFO {\"max_payload\":\"big\"} \r\n");
    assert!(
        matches!(events[..], [Event::Closed(Close::BadInfo(_))]),
        "{events:?}"
    );
}

#[test]
fn a_transmit_buffer_too_small_for_connect_is_reported() {
    let mut c = Client::<'static, 1, 64>::new(Options::new());
    c.connect(0);
    assert_eq!(
        c.handle(0, INFO),
        (
            INFO.len(),
            Some(Event::Closed(Close::TransmitBufferTooSmall))
        )
    );
}

#[test]
fn reconnecting_subscribes_again_and_publishing_waits_for_it() {
    let mut t = Talk::connected();
    let a = t.c.subscribe(b"cmd.7", None).unwrap();
    let b = t.c.subscribe(b"cfg.7", Some(b"q")).unwrap();
    t.c.unsubscribe_after(b, 3).unwrap();
    t.sends(b"SUB cmd.7 1\r\nSUB cfg.7 q 2\r\nUNSUB 2 3\r\n");
    assert_eq!(t.server(b"MSG cfg.7 2 0\r\n\r\n").len(), 1);
    t.c.publish(b"lost", None, None, b"").unwrap();

    t.c.disconnected();
    assert_eq!(t.c.status(), Status::Idle);
    assert_eq!(
        t.c.transmit(),
        b"",
        "bytes of the old connection are dropped"
    );
    assert_eq!(
        t.c.publish(b"x", None, None, b""),
        Err(ClientError::NotConnected)
    );
    t.c.connect(100);
    t.server(INFO);
    t.sends(
        &[
            CONNECT,
            b"SUB cmd.7 1\r\nSUB cfg.7 q 2\r\nUNSUB 2 2\r\nPING\r\n",
        ]
        .concat(),
    );
    assert_eq!(t.server(b"PONG\r\n"), [Event::Connected]);
    assert_eq!(t.server(b"MSG cmd.7 1 0\r\n\r\n").len(), 1);
    let _ = a;
}

#[test]
fn unsubscribing_stops_messages_at_once() {
    let mut t = Talk::connected();
    let a = t.c.subscribe(b"a", None).unwrap();
    let b = t.c.subscribe(b"b", None).unwrap();
    t.sends(b"SUB a 1\r\nSUB b 2\r\n");
    t.c.unsubscribe(a).unwrap();
    assert_eq!(t.c.unsubscribe(a), Err(ClientError::UnknownSid));
    assert_eq!(
        t.server(b"MSG a 1 0\r\n\r\n"),
        [],
        "in flight when we let go"
    );
    t.sends(b"UNSUB 1\r\n");
    t.c.unsubscribe_after(b, 2).unwrap();
    t.sends(b"UNSUB 2 2\r\n");
    assert_eq!(
        t.server(b"MSG b 2 0\r\n\r\nMSG b 2 0\r\n\r\nMSG b 2 0\r\n\r\n")
            .len(),
        2
    );
    assert_eq!(t.c.subscription_count(), 0);

    // Never sent: forgotten without a word.
    let mut c = TestClient::new(Options::new());
    let s = c.subscribe(b"x", None).unwrap();
    c.unsubscribe(s).unwrap();
    assert_eq!(c.subscription_count(), 0);
}

#[test]
fn a_full_transmit_buffer_is_a_value_not_a_loss() {
    let mut t = Talk::connected();
    let payload = [b'x'; 115]; // `PUB a 115` takes 128 bytes: two fill the 256.
    t.c.publish(b"a", None, None, &payload).unwrap();
    t.c.publish(b"a", None, None, &payload).unwrap();
    assert_eq!(
        t.c.publish(b"a", None, None, b""),
        Err(ClientError::BufferFull)
    );
    assert_eq!(
        t.c.publish(b"a", None, None, &[0; 300]),
        Err(ClientError::TooLarge)
    );
    // A subscription made now waits for room, and publishing waits behind it.
    t.c.subscribe(b"reply.7", None).unwrap();
    let mut out = [0u8; 12];
    assert_eq!(t.c.poll_transmit(&mut out), 12);
    assert_eq!(
        t.c.publish(b"a", None, None, b""),
        Err(ClientError::BufferFull),
        "11 bytes would fit, but the 15-byte SUB is owed first"
    );
    let mut rest = Vec::new();
    let mut out = [0u8; 100];
    loop {
        let n = t.c.poll_transmit(&mut out);
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&out[..n]);
    }
    assert!(
        show(&rest).ends_with("xx\r\nSUB reply.7 1\r\n"),
        "{}",
        show(&rest)
    );
    t.c.publish(b"a", None, None, b"").unwrap();
    t.sends(b"PUB a 0\r\n\r\n");
}

#[test]
fn subscribe_checks_names_and_capacity() {
    let mut c = TestClient::new(Options::new());
    assert_eq!(
        c.subscribe(b"a..b", None),
        Err(ClientError::InvalidSubject(SubjectError::EmptyToken))
    );
    assert_eq!(
        c.subscribe(b"a", Some(b"q q")),
        Err(ClientError::InvalidQueue(SubjectError::Whitespace))
    );
    assert_eq!(c.subscribe(&[b'a'; 65], None), Err(ClientError::NamesFull));
    for _ in 0..4 {
        c.subscribe(b"a", None).unwrap();
    }
    assert_eq!(
        c.subscribe(b"a", None),
        Err(ClientError::TooManySubscriptions)
    );
}

/// A whole session's server side, fed whole and then split at every byte: same events,
/// same bytes out.
#[test]
fn a_conversation_split_at_every_byte_reads_the_same() {
    let script: Vec<u8> = [
        INFO,
        b"PONG\r\nPING\r\n",
        b"MSG cmd.7 1 2\r\non\r\n",
        b"HMSG cmd.7 1 _INBOX.9 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n",
        b"INFO {\"server_id\":\"NTEST\",\"ldm\":true} \r\n",
        b"-ERR 'Permissions Violation for Publish to \"x\"'\r\n",
    ]
    .concat();
    let run = |chunk: usize| {
        let mut t = Talk::new(Options::new());
        t.c.subscribe(b"cmd.7", None).unwrap();
        let mut events = Vec::new();
        let mut out = Vec::new();
        for piece in script.chunks(chunk) {
            events.extend(t.server_partial(piece));
            out.extend_from_slice(t.c.transmit());
            t.c.transmitted(usize::MAX);
        }
        (events, out)
    };
    let (events, out) = run(script.len());
    assert_eq!(events.len(), 6, "{events:?}");
    assert!(show(&out).ends_with("SUB cmd.7 1\r\nPING\r\nPONG\r\n"));
    for chunk in 1..8 {
        assert_eq!(
            run(chunk),
            (events.clone(), out.clone()),
            "chunks of {chunk}"
        );
    }
}

/// Whatever the server sends, the client never panics and never loops.
#[test]
fn random_bytes_never_panic() {
    let pieces: [&[u8]; 12] = [
        INFO,
        b"PING\r\n",
        b"PONG\r\n",
        b"MSG a 1 1\r\nx\r\n",
        b"HMSG a 1 12 12\r\n",
        b"NATS/1.0\r\n\r\n",
        b"-ERR 'x'\r\n",
        b"+OK\r\n",
        b"\r\n",
        b" ",
        b"9",
        b"\xff",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut t = Talk::new(Options::new().max_incoming_payload(64));
        t.c.subscribe(b"a", None).unwrap();
        for _ in 0..40 {
            let piece = pieces[(next() % 12) as usize];
            t.now += next() % 3000;
            let _ = t.server_partial(piece);
            let _ = t.c.publish(b"a", None, None, b"x");
            t.c.transmitted((next() % 64) as usize);
            if t.c.status() == Status::Closed {
                t.c.connect(t.now);
                t.pending.clear();
            }
        }
    }
}

/// nkey login: the INFO nonce is signed and `CONNECT` carries the public key and signature.
#[cfg(all(feature = "nkey", feature = "std"))]
#[test]
fn nkey_signs_each_connections_nonce() {
    use crate::nkey::Signer;
    let kp = nkeys::KeyPair::new_user();
    let signer: &'static Signer = std::boxed::Box::leak(std::boxed::Box::new(
        Signer::from_seed(&kp.seed().unwrap()).unwrap(),
    ));
    let mut c = Client::<'static, 4, 512, 64>::new(Options::new().nkey(signer));
    for nonce in ["R8PRc2NtUyGZ2x8", "another-nonce-x"] {
        c.connect(0);
        let info = std::format!(
            "INFO {{\"server_id\":\"N\",\"version\":\"2.15.1\",\"proto\":1,\"headers\":true,\"max_payload\":1048576,\"auth_required\":true,\"nonce\":\"{nonce}\"}} \r\n"
        );
        let (n, _) = c.handle(1, info.as_bytes());
        assert_eq!(n, info.len());
        let out = show(c.transmit());
        let json = out
            .strip_prefix("CONNECT ")
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["nkey"], kp.public_key().as_str());
        let sig = v["sig"].as_str().unwrap();
        assert_eq!(sig.len(), crate::nkey::SIGNATURE_LEN);
        let want = kp.sign(nonce.as_bytes()).unwrap();
        let mut enc = [0u8; crate::nkey::SIGNATURE_LEN];
        crate::nkey::base64url_encode(&want, &mut enc).unwrap();
        assert_eq!(sig.as_bytes(), &enc[..]);
        let sent = c.transmit().len();
        c.transmitted(sent);
        c.disconnected();
    }
    // No nonce: the server does no nkey login, and CONNECT goes without nkey and sig.
    c.connect(0);
    c.handle(1, INFO);
    let out = show(c.transmit());
    assert!(
        out.starts_with("CONNECT ") && !out.contains("\"nkey\"") && !out.contains("\"sig\""),
        "{out}"
    );
}
