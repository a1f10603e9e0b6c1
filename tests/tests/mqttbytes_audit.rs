//! The evidence behind `gateway/MQTT.md` ("one codec"): how rumqttc 0.25.1's own `mqttbytes`
//! (`rumqttc::mqttbytes::v4`, `rumqttc::v5::mqttbytes::v5`) reads what a *client* sends, i.e.
//! whether it could be the server side of twig's MQTT listener.
//!
//! Each test is one packet, byte for byte, and asserts what rumqttc does with it today. The
//! spec reference says what a server must do instead. If rumqttc changes one of these
//! behaviours, its test fails: that is the signal to look at the verdict again.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

fn v4_read(bytes: &[u8]) -> (Result<v4::Packet, rumqttc::mqttbytes::Error>, usize) {
    let mut buf = BytesMut::from(bytes);
    let r = v4::Packet::read(&mut buf, 1 << 20);
    (r, buf.len())
}

fn v5_read(bytes: &[u8]) -> (Result<v5::Packet, rumqttc::v5::mqttbytes::Error>, usize) {
    let mut buf = BytesMut::from(bytes);
    let r = v5::Packet::read(&mut buf, Some(1 << 20));
    (r, buf.len())
}

/// v5 DISCONNECT with Remaining Length 0 is the normal disconnect (MQTT 5 §3.14.2.1: "the
/// Reason Code and Property Length can be omitted"), what paho and mosquitto_pub send. rumqttc
/// rejects it as a malformed packet.
#[test]
fn v5_normal_disconnect_without_reason_is_refused() {
    let (r, _) = v5_read(&[0xE0, 0x00]);
    assert!(
        matches!(r, Err(rumqttc::v5::mqttbytes::Error::PayloadRequired)),
        "{r:?}"
    );
}

/// A truncated variable byte integer *inside* a complete frame is reported as "need more
/// bytes", after the frame was already taken out of the buffer: a reader that waits for more
/// (as rumqttc's own `Codec::decode` does) silently drops the packet instead of closing with
/// 0x81 Malformed Packet.
#[test]
fn v5_truncated_property_length_inside_frame_looks_incomplete() {
    // PUBLISH QoS 0, topic "a", property length byte with the continuation bit and nothing after.
    let (r, left) = v5_read(&[0x30, 0x04, 0x00, 0x01, b'a', 0x80]);
    assert!(
        matches!(r, Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_))),
        "{r:?}"
    );
    assert_eq!(left, 0, "the frame was consumed");
}

/// The property block is not bounded by its length: properties may run into the payload
/// (MQTT 5 §2.2.2: the Property Length is the length of the properties; a mismatch is a
/// Malformed Packet). Here the block says 2 bytes, a 7-byte user property is read anyway and
/// the payload shrinks.
#[test]
fn v5_property_block_overrun_is_accepted() {
    let pkt = [
        0x30, 13, 0x00, 0x01, b'a', 0x02, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', b'x', b'y',
    ];
    let (r, _) = v5_read(&pkt);
    let Ok(v5::Packet::Publish(p)) = r else {
        panic!("{r:?}")
    };
    let props = p.properties.expect("properties");
    assert_eq!(props.user_properties, vec![("k".into(), "v".into())]);
    assert_eq!(&p.payload[..], b"xy");
}

/// A property given twice is a Protocol Error (MQTT 5 §2.2.2.2, e.g. 3.3.2.3.3 for Message
/// Expiry); rumqttc keeps the last one.
#[test]
fn v5_duplicate_property_is_accepted() {
    let pkt = [
        0x30, 15, 0x00, 0x01, b'a', 10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 9, b'p',
    ];
    let (r, _) = v5_read(&pkt);
    let Ok(v5::Packet::Publish(p)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(p.properties.unwrap().message_expiry_interval, Some(9));
}

/// v5 topic names are `Bytes`, never checked for UTF-8 (MQTT 5 §1.5.4: a server MUST close on
/// ill-formed UTF-8, 0x81 or 0x80).
#[test]
fn v5_invalid_utf8_topic_is_accepted() {
    let (r, _) = v5_read(&[0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, 0x00]);
    assert!(matches!(r, Ok(v5::Packet::Publish(_))), "{r:?}");
}

/// Reserved fixed-header flags: SUBSCRIBE, UNSUBSCRIBE and PUBREL must be 0b0010 (MQTT-3.8.1-1,
/// 3.10.1-1, 3.6.1-1; a server MUST close). rumqttc never looks at them.
#[test]
fn reserved_fixed_header_flags_are_ignored() {
    // SUBSCRIBE with flags 0000, pkid 1, filter "a" QoS 0.
    let sub = [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00];
    assert!(matches!(v4_read(&sub).0, Ok(v4::Packet::Subscribe(_))));
    // PUBREL with flags 0000.
    assert!(matches!(
        v4_read(&[0x60, 0x02, 0x00, 0x01]).0,
        Ok(v4::Packet::PubRel(_))
    ));
    // PINGREQ with a body (Remaining Length must be 0).
    assert!(matches!(
        v4_read(&[0xC0, 0x01, 0x00]).0,
        Ok(v4::Packet::PingReq)
    ));
}

fn connect_v4(flags: u8, tail: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x3C];
    body.extend_from_slice(&[0x00, 0x01, b'c']);
    body.extend_from_slice(tail);
    let mut pkt = vec![0x10, body.len() as u8];
    pkt.extend(body);
    pkt
}

/// CONNECT's reserved flag bit 0 must be 0 (MQTT-3.1.2-3); a password without a user name is
/// refused in 3.1.1 (MQTT-3.1.2-22); bytes after the payload are malformed. All accepted.
#[test]
fn v4_connect_flag_rules_are_not_checked() {
    assert!(matches!(
        v4_read(&connect_v4(0x03, &[])).0,
        Ok(v4::Packet::Connect(_))
    ));
    let pw = connect_v4(0x42, &[0x00, 0x02, b'p', b'w']);
    let Ok(v4::Packet::Connect(c)) = v4_read(&pw).0 else {
        panic!()
    };
    assert_eq!(
        c.login.unwrap().username,
        "",
        "password without user name accepted"
    );
    let trailing = connect_v4(0x02, &[0xFF, 0xFF]);
    assert!(matches!(v4_read(&trailing).0, Ok(v4::Packet::Connect(_))));
}

/// The v4 reader takes protocol level 5 as well and then reads an MQTT 5 CONNECT without its
/// properties: the property length byte becomes part of the client id length.
#[test]
fn v4_reader_misreads_a_v5_connect() {
    // v5 CONNECT, clean start, keep alive 60, no properties, client id "c".
    let pkt = [
        0x10, 14, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x01,
        b'c',
    ];
    let r = v4_read(&pkt).0;
    let Ok(v4::Packet::Connect(c)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(c.protocol, rumqttc::mqttbytes::Protocol::V5);
    assert_eq!(
        c.client_id, "",
        "client id read from the property length byte"
    );
}

/// 3.1.1 topic rules a server enforces: a zero-length topic (MQTT-4.7.3-1) and U+0000
/// (MQTT-1.5.3-2) are accepted; SUBSCRIBE/UNSUBSCRIBE packet id 0 (MQTT-2.3.1-1) and reserved
/// subscription option bits (MQTT-3.8.3-4) too.
#[test]
fn v4_topic_and_packet_id_rules_are_not_checked() {
    assert!(matches!(
        v4_read(&[0x30, 0x03, 0x00, 0x00, b'x']).0,
        Ok(v4::Packet::Publish(_))
    ));
    assert!(matches!(
        v4_read(&[0x30, 0x04, 0x00, 0x01, 0x00, b'x']).0,
        Ok(v4::Packet::Publish(_))
    ));
    let sub0 = [0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0xFC];
    assert!(matches!(v4_read(&sub0).0, Ok(v4::Packet::Subscribe(_))));
    let unsub0 = [0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, b'a'];
    assert!(matches!(v4_read(&unsub0).0, Ok(v4::Packet::Unsubscribe(_))));
}

/// Maximum Packet Size is the size of the whole packet (MQTT 5 §3.1.2.11.4); rumqttc compares
/// the limit with the Remaining Length, so a packet up to 5 bytes over the limit passes.
#[test]
fn max_size_compares_remaining_length_not_packet_size() {
    let mut buf = BytesMut::from(&[0x30, 0x04, 0x00, 0x01, b'a', b'x'][..]);
    // The packet is 6 bytes; a 4-byte limit lets it through.
    assert!(matches!(
        v4::Packet::read(&mut buf, 4),
        Ok(v4::Packet::Publish(_))
    ));
}
