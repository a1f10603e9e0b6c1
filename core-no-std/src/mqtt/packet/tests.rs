//! Byte-level tests of the codec: packets as a client writes them, and every rule a server
//! enforces, each with the reason code it maps to.

use super::props::id;
use super::*;

const MAX: usize = 1 << 16;

fn read(bytes: &[u8], v: Version) -> Result<Packet<'_>, Error> {
    match decode(bytes, v, MAX)? {
        Some((p, n)) => {
            assert_eq!(n, bytes.len(), "one whole packet");
            Ok(p)
        }
        None => panic!("incomplete: {bytes:02x?}"),
    }
}

fn refused(bytes: &[u8], v: Version) -> (ErrorKind, u8) {
    let e = read(bytes, v).expect_err("must be refused");
    (e.kind, e.reason())
}

/// Every prefix is incomplete (never an error, never a different packet), the whole packet
/// reads, and it encodes back to a packet that reads the same.
fn roundtrip(bytes: &[u8], v: Version) -> Packet<'_> {
    for cut in 0..bytes.len() {
        assert_eq!(decode(&bytes[..cut], v, MAX), Ok(None), "prefix {cut}");
    }
    let p = read(bytes, v).unwrap();
    let mut out = [0u8; 512];
    let n = p.encode_to_slice(v, &mut out).unwrap();
    assert_eq!(p.encoded_len(v), Ok(n));
    let again = read(&out[..n], v).unwrap();
    assert_eq!(again, p);
    p
}

const MALFORMED: (ErrorKind, u8) = (ErrorKind::Malformed, 0x81);
const PROTOCOL: (ErrorKind, u8) = (ErrorKind::Protocol, 0x82);

#[rustfmt::skip]
const CONNECT_V4: &[u8] = &[
    0x10, 26,
    0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04,
    0b1110_1110, // user, password, will retain, will QoS 1, will, clean
    0x00, 0x3C,
    0x00, 0x01, b'c',
    0x00, 0x01, b't',
    0x00, 0x01, b'w',
    0x00, 0x01, b'u',
    0x00, 0x02, b'p', b'w',
];

#[test]
fn connect_v4_reads_every_field() {
    let Packet::Connect(c) = roundtrip(CONNECT_V4, Version::V4) else {
        panic!()
    };
    assert_eq!(c.version, Version::V4);
    assert!(c.clean_start);
    assert_eq!(c.keep_alive, 60);
    assert_eq!(c.client_id, "c");
    let w = c.will.unwrap();
    assert_eq!(
        (w.qos, w.retain, w.topic, w.payload),
        (QoS::AtLeastOnce, true, "t", &b"w"[..])
    );
    assert_eq!(c.username, Some("u"));
    assert_eq!(c.password, Some(&b"pw"[..]));
}

#[rustfmt::skip]
const CONNECT_V5: &[u8] = &[
    0x10, 37,
    0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
    0b0000_0110, // will QoS 0, will, clean start
    0x00, 0x0A,
    13, // properties
      id::SESSION_EXPIRY, 0, 0, 0x0E, 0x10,
      id::RECEIVE_MAXIMUM, 0, 20,
      id::MAXIMUM_PACKET_SIZE, 0, 0, 0x10, 0,
    0x00, 0x00, // empty client id
    5, id::WILL_DELAY, 0, 0, 0, 30, // will properties
    0x00, 0x01, b't',
    0x00, 0x00,
];

#[test]
fn connect_v5_reads_properties_and_will_properties() {
    let Packet::Connect(c) = roundtrip(CONNECT_V5, Version::V4) else {
        panic!()
    };
    assert_eq!(c.version, Version::V5, "CONNECT says its own level");
    assert_eq!(c.props.u32(id::SESSION_EXPIRY), Some(3600));
    assert_eq!(c.props.u16(id::RECEIVE_MAXIMUM), Some(20));
    assert_eq!(c.props.u32(id::MAXIMUM_PACKET_SIZE), Some(4096));
    assert_eq!(c.client_id, "");
    let w = c.will.unwrap();
    assert_eq!(w.props.u32(id::WILL_DELAY), Some(30));
    assert_eq!((w.topic, w.payload), ("t", &b""[..]));
}

type Bytes = heapless::Vec<u8, 64>;

fn connect_v4_with(flags: u8, tail: &[u8]) -> Bytes {
    let head = [
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x3C, 0x00, 0x01, b'c',
    ];
    let mut pkt = Bytes::new();
    pkt.extend_from_slice(&[0x10, (head.len() + tail.len()) as u8])
        .unwrap();
    pkt.extend_from_slice(&head).unwrap();
    pkt.extend_from_slice(tail).unwrap();
    pkt
}

#[test]
fn connect_rules() {
    let v = Version::V4;
    // Reserved flag bit 0 (MQTT-3.1.2-3).
    assert_eq!(refused(&connect_v4_with(0x03, &[]), v), MALFORMED);
    // Password without user name (MQTT-3.1.2-22).
    assert_eq!(
        refused(&connect_v4_with(0x42, &[0, 2, b'p', b'w']), v),
        MALFORMED
    );
    // Will QoS without the will flag (MQTT-3.1.2-13), will QoS 3 (MQTT-3.1.2-14).
    assert_eq!(refused(&connect_v4_with(0x0A, &[]), v), MALFORMED);
    assert_eq!(
        refused(&connect_v4_with(0x1E, &[0, 1, b't', 0, 0]), v),
        MALFORMED
    );
    // Bytes after the payload.
    assert_eq!(refused(&connect_v4_with(0x02, &[0xFF]), v), MALFORMED);
    // Protocol level 3 (MQTT 3.1, "MQIsdp") and 6: CONNACK 0x01 / 0x84.
    let mut l6 = connect_v4_with(0x02, &[]);
    l6[8] = 6;
    assert_eq!(
        read(&l6, v).unwrap_err().kind,
        ErrorKind::UnsupportedVersion(6)
    );
    #[rustfmt::skip]
    let mqisdp = [0x10, 15, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 2, 0, 60, 0, 1, b'c'];
    assert_eq!(
        read(&mqisdp, v).unwrap_err().kind,
        ErrorKind::UnsupportedVersion(3)
    );
    let mut name = connect_v4_with(0x02, &[]);
    name[4] = b'X';
    assert_eq!(read(&name, v).unwrap_err().kind, ErrorKind::BadProtocolName);
    // A client id that is not UTF-8.
    let mut bad = connect_v4_with(0x02, &[]);
    bad[14] = 0xFF;
    assert_eq!(refused(&bad, v), MALFORMED);
}

#[test]
fn publish_v4_qos0_qos1_and_rules() {
    let v = Version::V4;
    let Packet::Publish(p) = roundtrip(&[0x30, 5, 0, 1, b'a', b'h', b'i'], v) else {
        panic!()
    };
    assert_eq!(
        (p.topic, p.qos, p.pkid, p.payload),
        ("a", QoS::AtMostOnce, 0, &b"hi"[..])
    );
    let Packet::Publish(p) = roundtrip(&[0x3B, 6, 0, 1, b'a', 0, 7, b'x'], v) else {
        panic!()
    };
    assert_eq!(
        (p.dup, p.qos, p.retain, p.pkid),
        (true, QoS::AtLeastOnce, true, 7)
    );
    // QoS 3, DUP on QoS 0 (MQTT-3.3.1-2), packet id 0 (MQTT-2.3.1-1).
    assert_eq!(refused(&[0x36, 3, 0, 1, b'a'], v), MALFORMED);
    assert_eq!(refused(&[0x38, 3, 0, 1, b'a'], v), MALFORMED);
    assert_eq!(refused(&[0x32, 5, 0, 1, b'a', 0, 0], v), PROTOCOL);
    // Empty topic (MQTT-4.7.3-1), U+0000 (MQTT-1.5.3-2), invalid UTF-8 (MQTT-1.5.3-1).
    assert_eq!(refused(&[0x30, 3, 0, 0, b'x'], v), MALFORMED);
    assert_eq!(refused(&[0x30, 4, 0, 1, 0, b'x'], v), MALFORMED);
    assert_eq!(refused(&[0x30, 5, 0, 2, 0xC3, 0x28, b'x'], v), MALFORMED);
}

#[test]
fn publish_v5_properties() {
    let v = Version::V5;
    #[rustfmt::skip]
    let pkt = [
        0x32, 38, 0, 1, b'a', 0, 9,
        30,
          id::PAYLOAD_FORMAT, 1,
          id::MESSAGE_EXPIRY, 0, 0, 0, 60,
          id::TOPIC_ALIAS, 0, 3,
          id::RESPONSE_TOPIC, 0, 1, b'r',
          id::CORRELATION_DATA, 0, 2, 0xAB, 0xCD,
          id::USER_PROPERTY, 0, 1, b'k', 0, 1, b'v',
          id::CONTENT_TYPE, 0, 1, b'j',
        b'{', b'}',
    ];
    let Packet::Publish(p) = roundtrip(&pkt, v) else {
        panic!()
    };
    assert_eq!(p.props.byte(id::PAYLOAD_FORMAT), Some(1));
    assert_eq!(p.props.u32(id::MESSAGE_EXPIRY), Some(60));
    assert_eq!(p.props.u16(id::TOPIC_ALIAS), Some(3));
    assert_eq!(p.props.str(id::RESPONSE_TOPIC), Some("r"));
    assert_eq!(p.props.bin(id::CORRELATION_DATA), Some(&[0xAB, 0xCD][..]));
    assert_eq!(
        p.props.user().collect::<heapless::Vec<_, 4>>(),
        [("k", "v")]
    );
    assert_eq!(p.props.str(id::CONTENT_TYPE), Some("j"));
    assert_eq!(p.payload, b"{}");
    // An empty topic is allowed in 5 (with an alias; the session checks that).
    assert!(read(&[0x30, 3, 0, 0, 0], v).is_ok());
}

#[test]
fn property_block_rules() {
    let v = Version::V5;
    // Block says 2 bytes, the user property inside takes 7: malformed (rumqttc reads on).
    #[rustfmt::skip]
    let overrun = [0x30, 13, 0, 1, b'a', 2, id::USER_PROPERTY, 0, 1, b'k', 0, 1, b'v', b'x', b'y'];
    assert_eq!(refused(&overrun, v), MALFORMED);
    // Twice the same property: protocol error; user properties may repeat.
    #[rustfmt::skip]
    let dup = [0x30, 15, 0, 1, b'a', 10, 2, 0, 0, 0, 1, 2, 0, 0, 0, 9, b'p'];
    assert_eq!(refused(&dup, v), PROTOCOL);
    #[rustfmt::skip]
    let users = [0x30, 18, 0, 1, b'a', 14, 38, 0, 1, b'k', 0, 1, b'1', 38, 0, 1, b'k', 0, 1, b'2'];
    let Packet::Publish(p) = read(&users, v).unwrap() else {
        panic!()
    };
    assert_eq!(p.props.user().count(), 2);
    // A property of another packet (Session Expiry in PUBLISH), an unknown one, a value out
    // of range (payload format 2, topic alias 0).
    assert_eq!(
        refused(&[0x30, 9, 0, 1, b'a', 5, 0x11, 0, 0, 0, 1], v),
        PROTOCOL
    );
    assert_eq!(refused(&[0x30, 6, 0, 1, b'a', 2, 0x7F, 0], v), MALFORMED);
    assert_eq!(refused(&[0x30, 6, 0, 1, b'a', 2, 0x01, 2], v), PROTOCOL);
    assert_eq!(refused(&[0x30, 7, 0, 1, b'a', 3, 0x23, 0, 0], v), PROTOCOL);
    // A truncated property length inside a whole frame: malformed, not "need more".
    assert_eq!(refused(&[0x30, 4, 0, 1, b'a', 0x80], v), MALFORMED);
}

#[test]
fn fixed_header_rules() {
    let v = Version::V4;
    // Reserved types, reserved flags on SUBSCRIBE / PUBREL / PINGREQ.
    assert_eq!(refused(&[0x00, 0], v), MALFORMED);
    assert_eq!(refused(&[0xF0, 0], v), MALFORMED, "AUTH in 3.1.1");
    assert_eq!(
        decode(&[0x80, 6], v, MAX).unwrap_err().kind,
        ErrorKind::Malformed,
        "known at once"
    );
    assert_eq!(refused(&[0x60, 2, 0, 1], v), MALFORMED);
    assert_eq!(refused(&[0xC1, 0], v), MALFORMED);
    // PINGREQ and 3.1.1 DISCONNECT have no body; 3.1.1 acks exactly two bytes.
    assert_eq!(refused(&[0xC0, 1, 0], v), MALFORMED);
    assert_eq!(refused(&[0xE0, 1, 0], v), MALFORMED);
    assert_eq!(refused(&[0x40, 3, 0, 1, 0], v), MALFORMED);
    // A fifth length byte.
    assert_eq!(refused(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01], v), MALFORMED);
}

#[test]
fn maximum_packet_size_counts_the_whole_packet() {
    let pkt = [0x30, 4, 0, 1, b'a', b'x'];
    assert!(decode(&pkt, Version::V4, 6).unwrap().is_some());
    let e = decode(&pkt, Version::V4, 5).unwrap_err();
    assert_eq!((e.kind, e.reason()), (ErrorKind::TooLarge, 0x95));
    // Known from the header alone: a 1 MB packet is refused after 4 bytes.
    let e = decode(&[0x30, 0x80, 0x80, 0x40], Version::V4, MAX).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge);
}

#[test]
fn subscribe_options_and_rules() {
    let v5 = Version::V5;
    #[rustfmt::skip]
    let pkt = [0x82, 11, 0, 5, 0, 0, 1, b'a', 0b0010_1101, 0, 1, b'b', 0x02];
    let Packet::Subscribe(s) = roundtrip(&pkt, v5) else {
        panic!()
    };
    assert_eq!(s.pkid, 5);
    let f: heapless::Vec<_, 4> = s.filters.iter().collect();
    let o = SubOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: 2,
    };
    assert_eq!(f[0], ("a", o));
    assert_eq!(f[1].1.qos, QoS::ExactlyOnce);
    assert_eq!(o.to_byte(), 0b0010_1101);
    // Retain handling 3, reserved bits, no filter, packet id 0.
    assert_eq!(refused(&[0x82, 7, 0, 5, 0, 0, 1, b'a', 0x30], v5), PROTOCOL);
    assert_eq!(
        refused(&[0x82, 7, 0, 5, 0, 0, 1, b'a', 0x40], v5),
        MALFORMED
    );
    assert_eq!(refused(&[0x82, 3, 0, 5, 0], v5), PROTOCOL);
    assert_eq!(refused(&[0x82, 7, 0, 0, 0, 0, 1, b'a', 0], v5), PROTOCOL);
    // 3.1.1: only the QoS bits (MQTT-3.8.3-4).
    assert_eq!(
        refused(&[0x82, 6, 0, 5, 0, 1, b'a', 0x04], Version::V4),
        MALFORMED
    );
}

#[test]
fn subscription_identifier_zero_is_a_protocol_error() {
    assert_eq!(
        refused(&[0x82, 9, 0, 5, 2, 0x0B, 0, 0, 1, b'a', 0], Version::V5),
        PROTOCOL
    );
    let Packet::Subscribe(s) =
        read(&[0x82, 9, 0, 5, 2, 0x0B, 7, 0, 1, b'a', 0], Version::V5).unwrap()
    else {
        panic!()
    };
    assert_eq!(s.props.u32(id::SUBSCRIPTION_ID), Some(7));
}

#[test]
fn acks_and_disconnect_short_forms() {
    let v5 = Version::V5;
    // DISCONNECT with Remaining Length 0 is "normal disconnection" (rumqttc refuses it).
    let Packet::Disconnect(d) = roundtrip(&[0xE0, 0], v5) else {
        panic!()
    };
    assert_eq!(d.reason, 0);
    let Packet::Disconnect(d) = roundtrip(&[0xE0, 1, 0x04], v5) else {
        panic!()
    };
    assert_eq!(d.reason, 0x04);
    let Packet::Disconnect(d) = roundtrip(&[0xE0, 7, 0x00, 5, 0x11, 0, 0, 0, 9], v5) else {
        panic!()
    };
    assert_eq!(d.props.u32(id::SESSION_EXPIRY), Some(9));
    // PUBACK: 2, 3 or more bytes.
    let Packet::PubAck(a) = roundtrip(&[0x40, 2, 0, 1], v5) else {
        panic!()
    };
    assert_eq!((a.pkid, a.reason), (1, 0));
    let Packet::PubRec(a) = roundtrip(&[0x50, 3, 0, 1, 0x10], v5) else {
        panic!()
    };
    assert_eq!(a.reason, 0x10);
    let Packet::PubRel(a) = roundtrip(&[0x62, 8, 0, 1, 0x92, 4, 0x1F, 0, 1, b'x'], v5) else {
        panic!()
    };
    assert_eq!(a.props.str(id::REASON_STRING), Some("x"));
    roundtrip(&[0x70, 2, 0, 1], Version::V4);
    roundtrip(&[0xC0, 0], Version::V4);
    roundtrip(&[0xD0, 0], Version::V4);
}

#[test]
fn server_packets_encode_byte_for_byte() {
    let mut buf = [0u8; 64];
    let mut enc = |p: Packet<'_>, v: Version| {
        let n = p.encode_to_slice(v, &mut buf).unwrap();
        Bytes::from_slice(&buf[..n]).unwrap()
    };
    let ack = ConnAck {
        session_present: true,
        code: 0,
        props: Props::EMPTY,
    };
    assert_eq!(enc(Packet::ConnAck(ack), Version::V4), [0x20, 2, 1, 0]);
    let mut pb = [0u8; 16];
    let mut o = SliceOut::new(&mut pb);
    PropWriter::new(&mut o)
        .put(id::SERVER_KEEP_ALIVE, Value::U16(30))
        .unwrap()
        .put(id::ASSIGNED_CLIENT_ID, Value::Str("x"))
        .unwrap();
    let n = o.len();
    let props = Props::new(&pb[..n], Ctx::ConnAck).unwrap();
    let ack = ConnAck {
        session_present: false,
        code: 0,
        props,
    };
    assert_eq!(
        enc(Packet::ConnAck(ack), Version::V5),
        [0x20, 10, 0, 0, 7, 0x13, 0, 30, 0x12, 0, 1, b'x']
    );
    let sub = SubAck {
        pkid: 3,
        props: Props::EMPTY,
        codes: &[0x01, 0x80],
    };
    assert_eq!(
        enc(Packet::SubAck(sub), Version::V4),
        [0x90, 4, 0, 3, 1, 0x80]
    );
    assert_eq!(
        enc(Packet::SubAck(sub), Version::V5),
        [0x90, 5, 0, 3, 0, 1, 0x80]
    );
    let unsub = SubAck {
        pkid: 3,
        props: Props::EMPTY,
        codes: &[0x00],
    };
    assert_eq!(enc(Packet::UnsubAck(unsub), Version::V4), [0xB0, 2, 0, 3]);
    assert_eq!(
        enc(Packet::UnsubAck(unsub), Version::V5),
        [0xB0, 4, 0, 3, 0, 0]
    );
    let d = Reason {
        reason: 0x8D,
        props: Props::EMPTY,
    };
    assert_eq!(enc(Packet::Disconnect(d), Version::V5), [0xE0, 1, 0x8D]);
    let a = Ack {
        pkid: 9,
        reason: 0x87,
        props: Props::EMPTY,
    };
    assert_eq!(enc(Packet::PubAck(a), Version::V5), [0x40, 3, 0, 9, 0x87]);
    assert_eq!(enc(Packet::PubAck(a), Version::V4), [0x40, 2, 0, 9]);
}

#[test]
fn a_full_buffer_is_an_error_not_a_panic() {
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "topic",
        pkid: 1,
        props: Props::EMPTY,
        payload: b"payload",
    });
    let mut buf = [0u8; 8];
    let e = p.encode_to_slice(Version::V4, &mut buf).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BufferTooSmall);
}
