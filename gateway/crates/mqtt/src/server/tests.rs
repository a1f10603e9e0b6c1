//! The session as conversations, byte for byte: what the client sends, what twig answers,
//! what the shell is asked to do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

struct Denied(&'static str);

impl Permissions for Denied {
    fn publish(&self, subject: &str) -> bool {
        subject != self.0
    }
    fn subscribe(&self, subject: &str, _: Option<&str>) -> bool {
        subject != self.0
    }
}

struct T {
    s: Session,
    now: Instant,
}

impl T {
    fn new(cfg: Config) -> T {
        let now = Instant::now();
        T {
            s: Session::new(Arc::new(cfg), now),
            now,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.handle(self.now, Input::Bytes(bytes));
    }

    fn input(&mut self, i: Input<'_>) {
        self.s.handle(self.now, i);
    }

    /// Asserts what twig wrote since the last look.
    fn recv(&mut self, bytes: &[u8]) {
        assert_eq!(self.s.take_transmit(), bytes, "bytes to the client");
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    fn later(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.s.handle(self.now, Input::Tick);
    }

    fn accept(&mut self, previous: Option<SessionState>) {
        let evs = self.events();
        assert!(matches!(evs.first(), Some(Event::Connect(_))), "{evs:?}");
        self.input(Input::Accept(Accept {
            permissions: Box::new(Denied("secret")),
            previous,
        }));
    }

    fn done(&mut self, t: Ticket) {
        self.input(Input::Done(t, Outcome::Ok));
    }
}

fn v4_connect(flags: u8, keep_alive: u16, id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags];
    body.extend_from_slice(&keep_alive.to_be_bytes());
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    let mut p = vec![0x10, body.len() as u8];
    p.extend(body);
    p
}

fn v5_connect(flags: u8, keep_alive: u16, props: &[u8], id: &str, tail: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, flags];
    body.extend_from_slice(&keep_alive.to_be_bytes());
    body.push(props.len() as u8);
    body.extend_from_slice(props);
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    body.extend_from_slice(tail);
    let mut p = vec![0x10, body.len() as u8];
    p.extend(body);
    p
}

/// CONNACK of a v5 connection with the default config (receive max 64, max packet 1 MiB,
/// topic alias max 16).
const V5_CONNACK: &[u8] = &[
    0x20, 14, 0, 0, 11, 0x21, 0, 64, 0x27, 0, 0x10, 0, 0, 0x22, 0, 16,
];

fn v4_session() -> T {
    let mut t = T::new(Config::default());
    t.send(&v4_connect(0x02, 60, "dev1"));
    t.accept(None);
    t.recv(&[0x20, 2, 0, 0]);
    t.events();
    t
}

fn v5_session(props: &[u8]) -> T {
    let mut t = T::new(Config::default());
    t.send(&v5_connect(0x02, 60, props, "dev5", &[]));
    t.accept(None);
    t.recv(V5_CONNACK);
    t.events();
    t
}

fn publish_events(evs: &[Event]) -> Vec<&Publish> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn v4_connect_is_authenticated_then_acknowledged() {
    let mut t = T::new(Config::default());
    t.send(&v4_connect(0xC2, 60, "dev1")[..]);
    // User and password flags set but no fields: malformed, closed without CONNACK.
    assert_eq!(t.events(), [Event::Close, Event::Expired]);

    let mut t = T::new(Config::default());
    t.send(&v4_connect(0x02, 60, "dev1"));
    let evs = t.events();
    let Some(Event::Connect(info)) = evs.first() else {
        panic!("{evs:?}")
    };
    assert_eq!(
        (info.version, info.client_id.as_str(), info.clean_start),
        (4, "dev1", true)
    );
    t.recv(b"");
    t.input(Input::Accept(Accept {
        permissions: Box::new(AllowAll),
        previous: None,
    }));
    t.recv(&[0x20, 2, 0, 0]);
    t.send(&[0xC0, 0]);
    t.recv(&[0xD0, 0]);
}

#[test]
fn v4_connect_refusals() {
    // An empty client id needs Clean Session (MQTT-3.1.3-8): 0x02.
    let mut t = T::new(Config::default());
    t.send(&v4_connect(0x00, 60, ""));
    t.recv(&[0x20, 2, 0, 2]);
    assert_eq!(t.events(), [Event::Close, Event::Expired]);
    // Protocol level 6: 0x01.
    let mut t = T::new(Config::default());
    let mut c = v4_connect(0x02, 60, "x");
    c[8] = 6;
    t.send(&c);
    t.recv(&[0x20, 2, 0, 1]);
    // The first packet is not CONNECT: closed.
    let mut t = T::new(Config::default());
    t.send(&[0xC0, 0]);
    t.recv(b"");
    assert_eq!(t.events(), [Event::Close, Event::Expired]);
    // Bad password: 0x04 (3.1.1) / 0x86 (5).
    let mut t = T::new(Config::default());
    t.send(&v4_connect(0x02, 60, "x"));
    t.events();
    t.input(Input::Reject(0x86));
    t.recv(&[0x20, 2, 0, 4]);
    let mut t = T::new(Config::default());
    t.send(&v5_connect(0x02, 60, &[], "x", &[]));
    t.events();
    t.input(Input::Reject(0x86));
    t.recv(&[0x20, 3, 0, 0x86, 0]);
    // No CONNECT within the connect timeout.
    let mut t = T::new(Config::default());
    t.later(10_000);
    assert_eq!(t.events(), [Event::Close, Event::Expired]);
}

#[test]
fn v5_connack_properties_assigned_id_and_server_keep_alive() {
    let cfg = Config {
        max_keep_alive: 30,
        ..Config::default()
    };
    let mut t = T::new(cfg);
    t.send(&v5_connect(0x02, 0, &[], "", &[]));
    let evs = t.events();
    let Some(Event::Connect(info)) = evs.first() else {
        panic!()
    };
    assert!(info.assigned);
    let id = info.client_id.clone();
    assert!(id.len() <= 23, "{id}");
    t.input(Input::Accept(Accept {
        permissions: Box::new(AllowAll),
        previous: None,
    }));
    let mut want = vec![0x20, 0, 0, 0, 0];
    let mut props = vec![
        0x21, 0, 64, 0x27, 0, 0x10, 0, 0, 0x22, 0, 16, 0x13, 0, 30, 0x12,
    ];
    props.extend_from_slice(&(id.len() as u16).to_be_bytes());
    props.extend_from_slice(id.as_bytes());
    want[4] = props.len() as u8;
    want.extend(props);
    want[1] = (want.len() - 2) as u8;
    t.recv(&want);
    // Keep-alive is the server's 30 s: closed at 45 s without a packet (0x8D).
    t.later(44_000);
    t.recv(b"");
    t.later(1_000);
    t.recv(&[0xE0, 1, 0x8D]);
    assert!(t.events().contains(&Event::Close));
}

#[test]
fn keep_alive_is_one_and_a_half_times() {
    let mut t = T::new(Config::default());
    t.send(&v4_connect(0x02, 10, "k"));
    t.accept(None);
    t.recv(&[0x20, 2, 0, 0]);
    t.events();
    t.later(14_999);
    assert!(t.events().is_empty());
    t.send(&[0xC0, 0]);
    t.recv(&[0xD0, 0]);
    t.later(14_999);
    assert!(t.events().is_empty());
    t.later(1);
    assert_eq!(t.events(), [Event::Close, Event::Expired]);
}

#[test]
fn qos0_publish_maps_topic_and_headers() {
    let mut t = v4_session();
    t.send(&[0x30, 9, 0, 5, b'a', b'/', b'b', b'.', b'c', b'h', b'i'][..]);
    let evs = t.events();
    let p = publish_events(&evs)[0];
    assert_eq!(p.subject, "a.b//c");
    assert_eq!(p.topic, "a/b.c");
    assert_eq!(p.headers, b"NATS/1.0\r\nNmqtt-Pub: 0\r\n\r\n");
    assert_eq!((p.payload.as_slice(), p.ticket), (&b"hi"[..], None));
    // A wildcard in a topic name: closed (MQTT-3.3.2-2).
    t.send(&[0x30, 4, 0, 2, b'a', b'+']);
    assert!(t.events().contains(&Event::Close));
}

#[test]
fn qos1_puback_waits_for_durable_and_keeps_order() {
    let mut t = v4_session();
    t.send(&[
        0x32, 6, 0, 1, b'a', 0, 1, b'x', 0x32, 6, 0, 1, b'a', 0, 2, b'y',
    ]);
    let evs = t.events();
    let ps = publish_events(&evs);
    assert_eq!(ps.len(), 2);
    let (t1, t2) = (ps[0].ticket.unwrap(), ps[1].ticket.unwrap());
    let h = String::from_utf8(ps[0].headers.clone()).unwrap();
    assert!(
        h.contains("Nmqtt-Pub: 1\r\n") && h.contains("Nats-Msg-Id: dev1:1:"),
        "{h}"
    );
    t.recv(b"");
    t.done(t2);
    t.recv(b""); // the second waits for the first (MQTT 3.1.1 §4.6)
    t.done(t1);
    t.recv(&[0x40, 2, 0, 1, 0x40, 2, 0, 2]);
}

#[test]
fn qos1_refused_by_the_stream() {
    let mut t = v5_session(&[]);
    t.send(&[0x32, 7, 0, 1, b'a', 0, 1, 0, b'x']);
    let evs = t.events();
    let tk = publish_events(&evs)[0].ticket.unwrap();
    t.input(Input::Done(tk, Outcome::Refused(0x97)));
    t.recv(&[0x40, 3, 0, 1, 0x97]);
    // 3.1.1: closed without PUBACK, so the client sends it again.
    let mut t = v4_session();
    t.send(&[0x32, 6, 0, 1, b'a', 0, 1, b'x']);
    let evs = t.events();
    let tk = publish_events(&evs)[0].ticket.unwrap();
    t.input(Input::Done(tk, Outcome::Refused(0x97)));
    t.recv(b"");
    assert!(t.events().contains(&Event::Close));
}

#[test]
fn denied_publish_and_subscribe() {
    // 3.1.1: acknowledged and dropped (as mosquitto does); 5: 0x87.
    let mut t = v4_session();
    t.send(&[
        0x32, 11, 0, 6, b's', b'e', b'c', b'r', b'e', b't', 0, 1, b'x',
    ]);
    assert!(publish_events(&t.events()).is_empty());
    t.recv(&[0x40, 2, 0, 1]);
    let mut t = v5_session(&[]);
    t.send(&[
        0x32, 12, 0, 6, b's', b'e', b'c', b'r', b'e', b't', 0, 1, 0, b'x',
    ]);
    assert!(publish_events(&t.events()).is_empty());
    t.recv(&[0x40, 3, 0, 1, 0x87]);
    // SUBSCRIBE: 0x80 in 3.1.1, 0x87 in 5.
    let mut t = v4_session();
    t.send(&[0x82, 11, 0, 3, 0, 6, b's', b'e', b'c', b'r', b'e', b't', 1]);
    t.recv(&[0x90, 3, 0, 3, 0x80]);
    let mut t = v5_session(&[]);
    t.send(&[
        0x82, 12, 0, 3, 0, 0, 6, b's', b'e', b'c', b'r', b'e', b't', 1,
    ]);
    t.recv(&[0x90, 4, 0, 3, 0, 0x87]);
}

#[test]
fn qos2_in_is_published_once() {
    let mut t = v4_session();
    let publish = [0x34, 6, 0, 1, b'a', 0, 7, b'x'];
    t.send(&publish);
    let evs = t.events();
    let p = publish_events(&evs)[0];
    assert!(String::from_utf8_lossy(&p.headers).contains("Nats-Msg-Id: dev1:q2:0"));
    t.send(&[0x3C, 6, 0, 1, b'a', 0, 7, b'x']); // DUP before PUBREC: not published again
    assert!(publish_events(&t.events()).is_empty());
    t.done(p.ticket.unwrap());
    t.recv(&[0x50, 2, 0, 7]);
    t.send(&[0x3C, 6, 0, 1, b'a', 0, 7, b'x']); // DUP after PUBREC: PUBREC again
    assert!(publish_events(&t.events()).is_empty());
    t.recv(&[0x50, 2, 0, 7]);
    t.send(&[0x62, 2, 0, 7]);
    t.recv(&[0x70, 2, 0, 7]);
    t.send(&publish); // same packet id after PUBCOMP: a new message
    assert_eq!(publish_events(&t.events()).len(), 1);
}

#[test]
fn qos2_in_persistent_session_is_stored_before_published() {
    let mut t = T::new(Config::default());
    t.send(&v4_connect(0x00, 60, "p")); // Clean Session 0: the session lasts
    t.accept(None);
    t.recv(&[0x20, 2, 0, 0]);
    t.events();
    t.send(&[0x34, 6, 0, 1, b'a', 0, 7, b'x']);
    let evs = t.events();
    assert!(publish_events(&evs).is_empty(), "not before it is stored");
    let Some(Event::Persist(Change::Qos2Received { pkid: 7, n: 0, .. }, Some(tk))) = evs.first()
    else {
        panic!("{evs:?}")
    };
    t.done(*tk);
    let evs = t.events();
    let p = publish_events(&evs)[0];
    t.done(p.ticket.unwrap());
    t.recv(b""); // PUBREC only once "published" is stored too (no repeat after a crash)
    let evs = t.events();
    let Some(Event::Persist(Change::Qos2Published { pkid: 7, n: 0, .. }, Some(tk))) = evs.first()
    else {
        panic!("{evs:?}")
    };
    t.done(*tk);
    t.recv(&[0x50, 2, 0, 7]);
    t.send(&[0x62, 2, 0, 7]);
    t.recv(b""); // PUBCOMP only once the release is stored
    let evs = t.events();
    let Some(Event::Persist(Change::Qos2Released { pkid: 7, .. }, Some(tk))) = evs.first() else {
        panic!("{evs:?}")
    };
    t.done(*tk);
    t.recv(&[0x70, 2, 0, 7]);
}

#[test]
fn receive_maximum_and_topic_aliases_in() {
    let cfg = Config {
        receive_maximum: 1,
        ..Config::default()
    };
    let mut t = T::new(cfg);
    t.send(&v5_connect(0x02, 60, &[], "r", &[]));
    t.accept(None);
    t.s.take_transmit();
    t.events();
    t.send(&[0x32, 7, 0, 1, b'a', 0, 1, 0, b'x']);
    assert!(!t.s.wants_input());
    t.send(&[0x32, 7, 0, 1, b'a', 0, 2, 0, b'x']);
    t.recv(&[0xE0, 1, 0x93]);

    let mut t = v5_session(&[]);
    // Alias 1 = "ab", then an empty topic with alias 1.
    t.send(&[0x30, 8, 0, 2, b'a', b'b', 3, 0x23, 0, 1]);
    t.send(&[0x30, 6, 0, 0, 3, 0x23, 0, 1]);
    let evs = t.events();
    let ps = publish_events(&evs);
    assert_eq!((ps[0].topic.as_str(), ps[1].topic.as_str()), ("ab", "ab"));
    t.send(&[0x30, 6, 0, 0, 3, 0x23, 0, 2]); // unknown alias
    t.recv(&[0xE0, 1, 0x82]);
    let mut t = v5_session(&[]);
    t.send(&[0x30, 7, 0, 1, b'a', 3, 0x23, 0, 17]); // above Topic Alias Maximum 16
    t.recv(&[0xE0, 1, 0x94]);
}

#[test]
fn malformed_and_too_large_close_with_reason() {
    let mut t = v5_session(&[]);
    t.send(&[0x80, 0]);
    t.recv(&[0xE0, 1, 0x81]);
    let cfg = Config {
        max_packet_size: 16,
        ..Config::default()
    };
    let mut t = T::new(cfg);
    t.send(&v5_connect(0x02, 60, &[], "z", &[]));
    t.accept(None);
    t.s.take_transmit();
    t.send(&[0x30, 20]);
    t.recv(&[0xE0, 1, 0x95]);
}

fn subscribe(t: &mut T, pkid: u8, filter: &str, opts: u8, v5_props: Option<&[u8]>) -> Vec<Event> {
    let mut body = vec![0, pkid];
    if let Some(p) = v5_props {
        body.push(p.len() as u8);
        body.extend_from_slice(p);
    }
    body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
    body.extend_from_slice(filter.as_bytes());
    body.push(opts);
    let mut pkt = vec![0x82, body.len() as u8];
    pkt.extend(body);
    t.send(&pkt);
    t.events()
}

fn deliver(t: &mut T, sub: u32, subject: &str, headers: Option<&[u8]>, payload: &[u8]) {
    t.input(Input::Deliver(Delivery {
        sub,
        subject,
        reply: None,
        headers,
        payload,
        retained: false,
        own: false,
    }));
}

#[test]
fn subscribe_maps_filters_shares_and_retained() {
    let mut t = v4_session();
    let evs = subscribe(&mut t, 1, "a/#", 1, None);
    assert_eq!(
        evs,
        [
            Event::Subscribe {
                id: 0,
                subject: "a.>".into(),
                queue: None
            },
            Event::Subscribe {
                id: 0,
                subject: "a".into(),
                queue: None
            },
            Event::SendRetained {
                id: 0,
                subject: "a.>".into()
            },
            Event::SendRetained {
                id: 0,
                subject: "a".into()
            },
        ]
    );
    t.recv(&[0x90, 3, 0, 1, 1]);
    // A shared subscription: queue group, no retained messages.
    let evs = subscribe(&mut t, 2, "$share/g/b/+", 0, None);
    assert_eq!(
        evs,
        [Event::Subscribe {
            id: 1,
            subject: "b.*".into(),
            queue: Some("g".into())
        }]
    );
    t.recv(&[0x90, 3, 0, 2, 0]);
    // A bad filter: SUBACK failure.
    subscribe(&mut t, 3, "a#", 0, None);
    t.recv(&[0x90, 3, 0, 3, 0x80]);
    // UNSUBSCRIBE.
    t.send(&[0xA2, 7, 0, 4, 0, 3, b'a', b'/', b'#']);
    let evs = t.events();
    assert_eq!(evs.len(), 2);
    t.recv(&[0xB0, 2, 0, 4]);
}

#[test]
fn qos1_delivery_window_ack_and_redelivery() {
    // The client accepts one message in flight (Receive Maximum 1).
    let mut t = v5_session(&[0x21, 0, 1]);
    subscribe(&mut t, 1, "t", 1, Some(&[]));
    t.recv(&[0x90, 4, 0, 1, 0, 1]);
    let h = b"NATS/1.0\r\nNmqtt-Pub: 1\r\n\r\n";
    deliver(&mut t, 0, "t", Some(h), b"1");
    deliver(&mut t, 0, "t", Some(h), b"2");
    t.recv(&[0x32, 7, 0, 1, b't', 0, 1, 0, b'1']);
    t.send(&[0x40, 2, 0, 1]);
    t.recv(&[0x32, 7, 0, 1, b't', 0, 2, 0, b'2']);
    // The connection drops; the session is taken over by a new connection.
    t.input(Input::Closed);
    let state = t.s.take_state();
    assert_eq!(state.inflight.len(), 1);
    let mut t2 = T::new(Config::default());
    t2.send(&v5_connect(0x00, 60, &[0x11, 0, 0, 0, 60], "dev5", &[]));
    t2.accept(Some(state));
    let out = t2.s.take_transmit();
    assert_eq!(out[..4], [0x20, 14, 1, 0], "session present");
    // Sent again with DUP.
    assert_eq!(out[16..], [0x3A, 7, 0, 1, b't', 0, 2, 0, b'2']);
}

#[test]
fn nats_message_at_subscription_qos_with_properties() {
    let mut t = v5_session(&[0x22, 0, 4]); // the client takes 4 topic aliases
    // Subscription identifier 9, no local, retain as published.
    subscribe(&mut t, 1, "s/+", 0b1101, Some(&[0x0B, 9]));
    t.recv(&[0x90, 4, 0, 1, 0, 1]);
    // A NATS message (no Nmqtt-Pub): delivered at the subscription's QoS 1.
    let h = b"NATS/1.0\r\nunit: C\r\nTwig-Mqtt-Retain: 1\r\n\r\n";
    deliver(&mut t, 0, "s.x", Some(h), b"7");
    #[rustfmt::skip]
    let want = [
        0x33, 24, 0, 3, b's', b'/', b'x', 0, 1,
        15, 0x26, 0, 4, b'u', b'n', b'i', b't', 0, 1, b'C', 0x0B, 9, 0x23, 0, 1,
        b'7',
    ];
    t.recv(&want);
    // The second time the topic goes by its alias.
    deliver(&mut t, 0, "s.x", None, b"8");
    t.recv(&[0x32, 11, 0, 0, 0, 2, 5, 0x0B, 9, 0x23, 0, 1, b'8']);
    // Its own messages are not delivered back (No Local).
    t.input(Input::Deliver(Delivery {
        sub: 0,
        subject: "s.x",
        reply: None,
        headers: None,
        payload: b"9",
        retained: false,
        own: true,
    }));
    t.recv(b"");
}

#[test]
fn request_reply_through_nats() {
    let mut t = v5_session(&[]);
    // Response topic "r/1", correlation data 0x01 0x02.
    #[rustfmt::skip]
    t.send(&[0x30, 15, 0, 1, b'q', 11, 0x08, 0, 3, b'r', b'/', b'1', 0x09, 0, 2, 1, 2]);
    let evs = t.events();
    assert_eq!(
        publish_events(&evs)[0].reply.as_deref(),
        Some("$MQTT.rsp.0102.r.1")
    );
    // A NATS request delivered to the device: the inbox becomes the response topic.
    subscribe(&mut t, 1, "svc", 0, Some(&[]));
    t.s.take_transmit();
    t.input(Input::Deliver(Delivery {
        sub: 0,
        subject: "svc",
        reply: Some("_INBOX.ab"),
        headers: None,
        payload: b"",
        retained: false,
        own: false,
    }));
    t.recv(&[
        0x30, 18, 0, 3, b's', b'v', b'c', 12, 0x08, 0, 9, b'_', b'I', b'N', b'B', b'O', b'X', b'/',
        b'a', b'b',
    ]);
}

#[test]
fn client_maximum_packet_size_drops_what_does_not_fit() {
    let mut t = v5_session(&[0x27, 0, 0, 0, 16]);
    subscribe(&mut t, 1, "t", 1, Some(&[]));
    t.s.take_transmit();
    deliver(&mut t, 0, "t", None, &[0u8; 32]);
    t.recv(b"");
    assert_eq!(t.s.dropped, 1);
    deliver(&mut t, 0, "t", None, b"ok");
    t.recv(&[0x32, 8, 0, 1, b't', 0, 2, 0, b'o', b'k']);
}

#[test]
fn will_on_abnormal_close_only_and_after_its_delay() {
    // Will "w" = "bye", retained, QoS 0; will delay 5 s; session expiry 60 s.
    let will = [5, 0x18, 0, 0, 0, 5, 0, 1, b'w', 0, 3, b'b', b'y', b'e'];
    let mut t = T::new(Config::default());
    t.send(&v5_connect(0x26, 60, &[0x11, 0, 0, 0, 60], "w1", &will));
    t.accept(None);
    t.s.take_transmit();
    t.events();
    t.input(Input::Closed);
    assert!(
        publish_events(&t.events()).is_empty(),
        "not before the delay"
    );
    t.later(5_000);
    let evs = t.events();
    assert!(matches!(&evs[0], Event::Retain(Retain::Set { topic, .. }) if topic == "w"));
    assert_eq!(publish_events(&evs)[0].payload, b"bye");
    // A normal DISCONNECT discards it.
    let mut t = T::new(Config::default());
    t.send(&v5_connect(0x06, 60, &[], "w2", &will));
    t.accept(None);
    t.events();
    t.send(&[0xE0, 0]);
    t.later(10_000);
    assert!(publish_events(&t.events()).is_empty());
}

#[test]
fn offline_session_queues_then_expires() {
    let mut t = T::new(Config::default());
    t.send(&v5_connect(0x00, 60, &[0x11, 0, 0, 0, 10], "o", &[]));
    t.accept(None);
    t.s.take_transmit();
    subscribe(&mut t, 1, "t", 1, Some(&[]));
    t.input(Input::Closed);
    t.events();
    deliver(&mut t, 0, "t", None, b"queued");
    let evs = t.events();
    assert!(
        matches!(&evs[0], Event::Persist(Change::Queued { .. }, None)),
        "{evs:?}"
    );
    t.later(10_000);
    let evs = t.events();
    assert!(evs.contains(&Event::Expired), "{evs:?}");
}

#[test]
fn an_idle_session_is_small() {
    let t = v4_session();
    let size = std::mem::size_of::<Session>();
    assert!(size <= 768, "Session is {size} bytes");
    assert_eq!(t.s.heap_bytes(), 0);
}

/// Random conversations: valid packets, their mutations and cuts, deliveries, answers to
/// tickets in any order, clock jumps. No panic, and what twig writes always parses.
pub(super) fn random_conversation(seed: u64, steps: usize) -> usize {
    use twig_core::mqtt::packet::{Version, decode};
    let mut r = twig_core::testing::Rng::new(seed);
    let cfg = Config {
        receive_maximum: 1 + (r.next_u64() % 4) as u16,
        max_inflight: 1 + (r.next_u64() % 4) as u16,
        max_queued_messages: 8,
        max_keep_alive: (r.next_u64() % 3) as u16 * 10,
        topic_alias_maximum: (r.next_u64() % 3) as u16,
        ..Config::default()
    };
    let v5 = r.next_u64().is_multiple_of(2);
    let mut t = T::new(cfg.clone());
    let connect = if v5 {
        v5_connect(
            0x06,
            5,
            &[0x11, 0, 0, 0, 30, 0x21, 0, 2, 0x22, 0, 2],
            "rnd",
            &[0, 0, 1, b'w', 0, 0],
        )
    } else {
        let mut c = v4_connect(0x04, 5, "rnd");
        c.extend_from_slice(&[0, 1, b'w', 0, 0]);
        c[1] += 5;
        c
    };
    #[rustfmt::skip]
    let packets: [&[u8]; 12] = [
        &[0x32, 7, 0, 1, b'a', 0, 1, 0, b'x'],
        &[0x34, 6, 0, 1, b'a', 0, 2, b'x'],
        &[0x62, 2, 0, 2],
        &[0x82, 7, 0, 3, 0, 1, b'a', 2],
        &[0x82, 6, 0, 3, 0, 1, b'#', 1],
        &[0xA2, 5, 0, 4, 0, 1, b'a'],
        &[0x40, 2, 0, 1],
        &[0x50, 2, 0, 2],
        &[0x70, 2, 0, 2],
        &[0xC0, 0],
        &[0x30, 6, 0, 0, 3, 0x23, 0, 1],
        &[0xE0, 0],
    ];
    let mut tickets = Vec::new();
    let version = if v5 { Version::V5 } else { Version::V4 };
    let mut wire = Vec::new();
    let step = |t: &mut T, tickets: &mut Vec<Ticket>, r: &mut twig_core::testing::Rng| {
        match r.next_u64() % 10 {
            0 => t.send(&connect),
            1..=3 => {
                let mut p = packets[(r.next_u64() % packets.len() as u64) as usize].to_vec();
                if r.next_u64().is_multiple_of(4) && !p.is_empty() {
                    let i = (r.next_u64() % p.len() as u64) as usize;
                    p[i] ^= 1 << (r.next_u64() % 8);
                }
                let cut = (r.next_u64() % (p.len() as u64 + 1)) as usize;
                t.send(&p[..cut]);
                t.send(&p[cut..]);
            }
            4 => t.input(Input::Accept(Accept {
                permissions: Box::new(Denied("a")),
                previous: None,
            })),
            5 => deliver(t, (r.next_u64() % 3) as u32, "a", None, b"m"),
            6 => {
                if !tickets.is_empty() {
                    let i = (r.next_u64() % tickets.len() as u64) as usize;
                    let tk = tickets.swap_remove(i);
                    let o = if r.next_u64().is_multiple_of(5) {
                        Outcome::Refused(0x97)
                    } else {
                        Outcome::Ok
                    };
                    t.input(Input::Done(tk, o));
                }
            }
            7 => t.later(r.next_u64() % 8_000),
            8 if r.next_u64().is_multiple_of(8) => t.input(match r.next_u64() % 4 {
                0 => Input::Closed,
                1 => Input::TakenOver,
                2 => Input::Shutdown,
                _ => Input::Reject(0x87),
            }),
            _ => t.input(Input::Tick),
        }
        for e in t.events() {
            match e {
                Event::Publish(Publish {
                    ticket: Some(tk), ..
                })
                | Event::Persist(_, Some(tk)) => tickets.push(tk),
                _ => {}
            }
        }
    };
    let mut packets_out = 0;
    for _ in 0..steps {
        step(&mut t, &mut tickets, &mut r);
        wire.extend(t.s.take_transmit());
        if t.s.is_offline() {
            // The next connection (the session's state taken over, as the shell does).
            let state = t.s.take_state();
            t = T::new(cfg.clone());
            t.send(&connect);
            t.events();
            t.input(Input::Accept(Accept {
                permissions: Box::new(Denied("a")),
                previous: Some(state),
            }));
            tickets.clear();
            wire.clear();
            t.s.take_transmit();
        }
        // Everything twig wrote is whole, valid packets.
        while !wire.is_empty() {
            match decode(&wire, version, usize::MAX) {
                Ok(Some((_, n))) => {
                    wire.drain(..n);
                    packets_out += 1;
                }
                other => panic!("seed {seed}: twig wrote {wire:02x?}: {other:?}"),
            }
        }
    }
    packets_out
}

#[test]
fn random_conversations_never_panic() {
    let packets: usize = (0..300).map(|seed| random_conversation(seed, 300)).sum();
    // The conversations get somewhere: many packets from twig, not just closes.
    assert!(packets > 5_000, "{packets} packets written");
}

#[test]
fn v4_window_holds_back_publishes_past_receive_maximum() {
    // 3.1.1 has no Receive Maximum: a client may send more QoS 1 publishes in one read than
    // twig takes. The rest wait in the session and go on as PUBACKs free the window.
    let cfg = Config {
        receive_maximum: 2,
        ..Config::default()
    };
    let mut t = T::new(cfg);
    t.send(&v4_connect(0x02, 60, "w"));
    t.accept(None);
    t.recv(&[0x20, 2, 0, 0]);
    t.events();
    let mut burst = Vec::new();
    for pkid in 1..=5u8 {
        burst.extend_from_slice(&[0x32, 6, 0, 1, b'a', 0, pkid, b'x']);
    }
    t.send(&burst);
    let evs = t.events();
    let tickets: Vec<Ticket> = publish_events(&evs)
        .iter()
        .map(|p| p.ticket.unwrap())
        .collect();
    assert_eq!(tickets.len(), 2, "only the window's worth is taken");
    assert!(!t.s.wants_input());
    t.done(tickets[0]);
    t.recv(&[0x40, 2, 0, 1]);
    let evs = t.events();
    let more: Vec<Ticket> = publish_events(&evs)
        .iter()
        .map(|p| p.ticket.unwrap())
        .collect();
    assert_eq!(more.len(), 1, "one PUBACK lets one more in");
    for tk in [tickets[1], more[0]] {
        t.done(tk);
    }
    t.recv(&[0x40, 2, 0, 2, 0x40, 2, 0, 3]);
    let evs = t.events();
    let last: Vec<Ticket> = publish_events(&evs)
        .iter()
        .map(|p| p.ticket.unwrap())
        .collect();
    assert_eq!(last.len(), 2);
    for tk in last {
        t.done(tk);
    }
    t.recv(&[0x40, 2, 0, 4, 0x40, 2, 0, 5]);
    assert!(t.s.wants_input());
}

/// QoS 0 to a client reading slower than messages come: past the write buffer the messages
/// wait in the session's queue (bounded by max_queued_bytes) and go out in order as the
/// client reads, instead of being dropped; an offline client keeps none of them.
#[test]
fn qos0_past_the_write_buffer_waits_in_the_queue_and_goes_in_order() {
    let mut t = T::new(Config {
        max_write_buffer: 64,
        ..Config::default()
    });
    t.send(&v4_connect(0x00, 60, "slow"));
    t.accept(None);
    t.recv(&[0x20, 2, 0, 0]);
    subscribe(&mut t, 1, "t", 0, None);
    t.s.take_transmit();
    for i in 0..20u8 {
        deliver(&mut t, 0, "t", None, &[i; 10]);
    }
    assert_eq!(t.s.dropped, 0, "nothing dropped");
    // The client reads: each look lets more out, all 20 in order.
    let mut got = Vec::new();
    for _ in 0..40 {
        got.extend(t.s.take_transmit());
        t.later(0);
    }
    let publish = |i: u8| {
        let mut p = vec![0x30, 13, 0, 1, b't'];
        p.extend([i; 10]);
        p
    };
    let want: Vec<u8> = (0..20).flat_map(publish).collect();
    assert_eq!(got, want);
    // Offline (a lasting session): QoS 0 left in the queue is dropped, and counted.
    for i in 0..10u8 {
        deliver(&mut t, 0, "t", None, &[i; 10]);
    }
    t.input(Input::Closed);
    assert!(t.s.dropped > 0);
    assert!(t.s.subscriptions().len() == 1);
}

/// Rights that let everything through but messages on one subject.
struct DeliverDenied(&'static str);

impl Permissions for DeliverDenied {
    fn publish(&self, _: &str) -> bool {
        true
    }
    fn subscribe(&self, _: &str, _: Option<&str>) -> bool {
        true
    }
    fn deliver(&self, subject: &str, _: Option<&str>) -> bool {
        subject != self.0
    }
}

#[test]
fn a_queue_kept_offline_is_filtered_by_the_next_login() {
    // A persistent session subscribes to everything and goes away; two messages queue, one
    // on a subject the next login may not receive (a restored session queues without any
    // login: the store keeps no rights).
    let mut t = T::new(Config::default());
    t.send(&v5_connect(0x00, 60, &[0x11, 0, 0, 0, 60], "dev5", &[]));
    t.accept(None);
    t.s.take_transmit();
    subscribe(&mut t, 1, "#", 1, Some(&[]));
    t.input(Input::Closed);
    t.events();
    let h = b"NATS/1.0\r\nNmqtt-Pub: 1\r\n\r\n";
    deliver(&mut t, 0, "secret", Some(h), b"s");
    deliver(&mut t, 0, "open", Some(h), b"o");
    let state = t.s.take_state();
    assert_eq!(state.queue.len(), 2);
    let secret = state.queue[0].serial;

    let mut t2 = T::new(Config::default());
    t2.send(&v5_connect(0x00, 60, &[0x11, 0, 0, 0, 60], "dev5", &[]));
    let evs = t2.events();
    assert!(matches!(evs.first(), Some(Event::Connect(_))), "{evs:?}");
    t2.input(Input::Accept(Accept {
        permissions: Box::new(DeliverDenied("secret")),
        previous: Some(state),
    }));
    let out = t2.s.take_transmit();
    assert_eq!(out[..4], [0x20, 14, 1, 0], "session present");
    // Only "open" goes out; "secret" is forgotten, on flash too.
    assert_eq!(
        out[16..],
        [0x32, 10, 0, 4, b'o', b'p', b'e', b'n', 0, 1, 0, b'o']
    );
    let evs = t2.events();
    assert!(
        evs.iter().any(|e| matches!(e,
            Event::Persist(Change::Done { serial, .. }, None) if *serial == secret)),
        "{evs:?}"
    );
    assert_eq!(t2.s.dropped, 1);
}
