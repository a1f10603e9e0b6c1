//! Reading packets. Each function gets exactly one packet's body (after the fixed header)
//! and must consume all of it.

use super::frame::{Header, Reader};
use super::props::{Ctx, Props};
use super::*;

/// Reads the packet at the start of `buf`.
///
/// `version` is the connection's protocol level, used for every packet but CONNECT, which
/// says its own. `max` bounds the whole packet (fixed header included). Returns the packet
/// and the bytes it took, or `Ok(None)` while the packet is incomplete.
pub fn decode(
    buf: &[u8],
    version: Version,
    max: usize,
) -> Result<Option<(Packet<'_>, usize)>, Error> {
    let Some(h) = Header::peek(buf, max)? else {
        return Ok(None);
    };
    let Some(body) = buf.get(h.head_len..h.len()) else {
        return Ok(None);
    };
    let packet = body_of(h, body, version)?;
    Ok(Some((packet, h.len())))
}

fn body_of(h: Header, body: &[u8], v: Version) -> Result<Packet<'_>, Error> {
    let mut r = Reader::new(body);
    let packet = match h.kind {
        PacketType::Connect => Packet::Connect(connect(&mut r)?),
        PacketType::ConnAck => Packet::ConnAck(connack(&mut r, v)?),
        PacketType::Publish => Packet::Publish(publish(&mut r, h.flags, v)?),
        PacketType::PubAck => Packet::PubAck(ack(&mut r, v)?),
        PacketType::PubRec => Packet::PubRec(ack(&mut r, v)?),
        PacketType::PubRel => Packet::PubRel(ack(&mut r, v)?),
        PacketType::PubComp => Packet::PubComp(ack(&mut r, v)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe(&mut r, v)?),
        PacketType::SubAck => Packet::SubAck(suback(&mut r, v, Ctx::SubAck)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe(&mut r, v)?),
        PacketType::UnsubAck => Packet::UnsubAck(suback(&mut r, v, Ctx::UnsubAck)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect(reason(&mut r, v, Ctx::Disconnect)?),
        PacketType::Auth if v == Version::V5 => Packet::Auth(reason(&mut r, v, Ctx::Auth)?),
        PacketType::Auth => return Err(Error::malformed("AUTH is not a 3.1.1 packet")),
    };
    if !r.is_empty() {
        return Err(Error::malformed("bytes after the end of the packet"));
    }
    Ok(packet)
}

fn props<'a>(r: &mut Reader<'a>, v: Version, ctx: Ctx) -> Result<Props<'a>, Error> {
    match v {
        Version::V4 => Ok(Props::EMPTY),
        Version::V5 => Props::parse(r, ctx),
    }
}

fn pkid(r: &mut Reader<'_>) -> Result<u16, Error> {
    match r.u16()? {
        0 => Err(Error::protocol("packet identifier 0")),
        id => Ok(id),
    }
}

fn connect<'a>(r: &mut Reader<'a>) -> Result<Connect<'a>, Error> {
    let name = r.binary()?;
    let level = r.u8()?;
    let version = match (name, level) {
        (b"MQTT", 4) => Version::V4,
        (b"MQTT", 5) => Version::V5,
        (b"MQTT", l) | (b"MQIsdp", l) => {
            return Err(Error::new(
                ErrorKind::UnsupportedVersion(l),
                "unsupported protocol level",
            ));
        }
        _ => {
            return Err(Error::new(
                ErrorKind::BadProtocolName,
                "protocol name is not MQTT",
            ));
        }
    };
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(Error::malformed("CONNECT reserved flag set"));
    }
    let keep_alive = r.u16()?;
    let props = props(r, version, Ctx::Connect)?;
    let client_id = r.string()?;
    let will_qos = (flags >> 3) & 3;
    let will_retain = flags & 0x20 != 0;
    let will = if flags & 0x04 != 0 {
        let qos = QoS::from_bits(will_qos).ok_or(Error::malformed("will QoS 3"))?;
        let wprops = props_will(r, version)?;
        Some(Will {
            qos,
            retain: will_retain,
            props: wprops,
            topic: r.string()?,
            payload: r.binary()?,
        })
    } else {
        if will_qos != 0 || will_retain {
            return Err(Error::malformed("will QoS or retain without a will"));
        }
        None
    };
    let has_user = flags & 0x80 != 0;
    let has_pass = flags & 0x40 != 0;
    if version == Version::V4 && has_pass && !has_user {
        return Err(Error::malformed("password without user name"));
    }
    let username = if has_user { Some(r.string()?) } else { None };
    let password = if has_pass { Some(r.binary()?) } else { None };
    Ok(Connect {
        version,
        clean_start: flags & 0x02 != 0,
        keep_alive,
        props,
        client_id,
        will,
        username,
        password,
    })
}

fn props_will<'a>(r: &mut Reader<'a>, v: Version) -> Result<Props<'a>, Error> {
    props(r, v, Ctx::Will)
}

fn connack<'a>(r: &mut Reader<'a>, v: Version) -> Result<ConnAck<'a>, Error> {
    let flags = r.u8()?;
    if flags & 0xFE != 0 {
        return Err(Error::malformed("CONNACK reserved flags set"));
    }
    let code = r.u8()?;
    Ok(ConnAck {
        session_present: flags & 1 != 0,
        code,
        props: props(r, v, Ctx::ConnAck)?,
    })
}

fn publish<'a>(r: &mut Reader<'a>, flags: u8, v: Version) -> Result<Publish<'a>, Error> {
    let qos = QoS::from_bits((flags >> 1) & 3).ok_or(Error::malformed("PUBLISH with QoS 3"))?;
    let topic = r.string()?;
    if topic.is_empty() && v == Version::V4 {
        return Err(Error::malformed("empty topic name"));
    }
    let pkid = if qos == QoS::AtMostOnce { 0 } else { pkid(r)? };
    let props = props(r, v, Ctx::Publish)?;
    let payload = r.take(r.rest().len())?;
    Ok(Publish {
        dup: flags & 0x08 != 0,
        qos,
        retain: flags & 0x01 != 0,
        topic,
        pkid,
        props,
        payload,
    })
}

/// PUBACK/PUBREC/PUBREL/PUBCOMP: in 5 the reason code and the properties may be left out.
fn ack<'a>(r: &mut Reader<'a>, v: Version) -> Result<Ack<'a>, Error> {
    let pkid = pkid(r)?;
    if v == Version::V4 || r.is_empty() {
        return Ok(Ack {
            pkid,
            reason: 0,
            props: Props::EMPTY,
        });
    }
    let reason = r.u8()?;
    let props = if r.is_empty() {
        Props::EMPTY
    } else {
        Props::parse(r, Ctx::Ack)?
    };
    Ok(Ack {
        pkid,
        reason,
        props,
    })
}

/// Subscription options byte (3.1.1: QoS only, the rest reserved; 5: bits 6-7 reserved,
/// Retain Handling 3 is a Protocol Error).
pub(super) fn sub_options(b: u8, v: Version) -> Result<SubOptions, Error> {
    let qos = QoS::from_bits(b & 3).ok_or(Error::malformed("subscription QoS 3"))?;
    let reserved = match v {
        Version::V4 => 0xFC,
        Version::V5 => 0xC0,
    };
    if b & reserved != 0 {
        return Err(Error::malformed("reserved subscription option bits set"));
    }
    let retain_handling = (b >> 4) & 3;
    if retain_handling == 3 {
        return Err(Error::protocol("retain handling 3"));
    }
    Ok(SubOptions {
        qos,
        no_local: b & 0x04 != 0,
        retain_as_published: b & 0x08 != 0,
        retain_handling,
    })
}

fn subscribe<'a>(r: &mut Reader<'a>, v: Version) -> Result<Subscribe<'a>, Error> {
    let pkid = pkid(r)?;
    let props = props(r, v, Ctx::Subscribe)?;
    let bytes = r.rest();
    if bytes.is_empty() {
        return Err(Error::protocol("SUBSCRIBE without a topic filter"));
    }
    while !r.is_empty() {
        r.string()?;
        sub_options(r.u8()?, v)?;
    }
    Ok(Subscribe {
        pkid,
        props,
        filters: Filters { bytes },
    })
}

fn unsubscribe<'a>(r: &mut Reader<'a>, v: Version) -> Result<Unsubscribe<'a>, Error> {
    let pkid = pkid(r)?;
    let props = props(r, v, Ctx::Unsubscribe)?;
    let bytes = r.rest();
    if bytes.is_empty() {
        return Err(Error::protocol("UNSUBSCRIBE without a topic filter"));
    }
    while !r.is_empty() {
        r.string()?;
    }
    Ok(Unsubscribe {
        pkid,
        props,
        filters: Topics { bytes },
    })
}

fn suback<'a>(r: &mut Reader<'a>, v: Version, ctx: Ctx) -> Result<SubAck<'a>, Error> {
    let pkid = pkid(r)?;
    let props = props(r, v, ctx)?;
    let codes = r.take(r.rest().len())?;
    // 3.1.1's UNSUBACK is the packet id alone; everything else has a code per filter.
    let want_codes = !(v == Version::V4 && ctx == Ctx::UnsubAck);
    if want_codes == codes.is_empty() {
        return Err(Error::malformed("wrong number of return codes"));
    }
    Ok(SubAck { pkid, props, codes })
}

/// DISCONNECT / AUTH: 3.1.1's DISCONNECT is empty; in 5 an empty one is reason 0.
fn reason<'a>(r: &mut Reader<'a>, v: Version, ctx: Ctx) -> Result<Reason<'a>, Error> {
    if v == Version::V4 || r.is_empty() {
        return Ok(Reason {
            reason: 0,
            props: Props::EMPTY,
        });
    }
    let reason = r.u8()?;
    let props = if r.is_empty() {
        Props::EMPTY
    } else {
        Props::parse(r, ctx)?
    };
    Ok(Reason { reason, props })
}
