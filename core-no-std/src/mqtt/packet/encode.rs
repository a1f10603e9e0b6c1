//! Writing packets: the body is written twice, once into a [`Counter`] for the Remaining
//! Length and once for real, so no buffer is needed in between.

use super::*;

impl Packet<'_> {
    /// The packet type.
    pub fn kind(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    fn first_byte(&self) -> u8 {
        let flags = match self {
            Packet::Publish(p) => u8::from(p.dup) << 3 | (p.qos as u8) << 1 | u8::from(p.retain),
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
            _ => 0,
        };
        (self.kind() as u8) << 4 | flags
    }

    /// The size of the whole packet as [`Packet::encode`] writes it for `v`.
    pub fn encoded_len(&self, v: Version) -> Result<usize, Error> {
        let mut c = Counter(0);
        self.body(v, &mut c)?;
        Ok(1 + frame::varint_len(c.0 as u32) + c.0)
    }

    /// Writes the packet for protocol level `v` (properties are left out for 3.1.1). MQTT 5
    /// acknowledgements and DISCONNECT with reason 0 and no properties take the short form.
    pub fn encode<O: Out + ?Sized>(&self, v: Version, out: &mut O) -> Result<usize, Error> {
        let mut c = Counter(0);
        self.body(v, &mut c)?;
        if c.0 > frame::MAX_REMAINING {
            return Err(Error::new(
                ErrorKind::BufferTooSmall,
                "packet too large for MQTT",
            ));
        }
        out.put(&[self.first_byte()])?;
        out.varint(c.0 as u32)?;
        self.body(v, out)?;
        Ok(1 + frame::varint_len(c.0 as u32) + c.0)
    }

    /// Writes into a slice; returns the length.
    pub fn encode_to_slice(&self, v: Version, buf: &mut [u8]) -> Result<usize, Error> {
        self.encode(v, &mut SliceOut::new(buf))
    }

    fn body<O: Out + ?Sized>(&self, v: Version, out: &mut O) -> Result<(), Error> {
        let v5 = v == Version::V5;
        let props = |out: &mut O, p: &Props<'_>| if v5 { p.emit(out) } else { Ok(()) };
        match self {
            Packet::Connect(c) => connect(c, out),
            Packet::ConnAck(a) => {
                out.put(&[u8::from(a.session_present), a.code])?;
                props(out, &a.props)
            }
            Packet::Publish(p) => {
                out.binary(p.topic.as_bytes())?;
                if p.qos != QoS::AtMostOnce {
                    out.put(&p.pkid.to_be_bytes())?;
                }
                props(out, &p.props)?;
                out.put(p.payload)
            }
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                out.put(&a.pkid.to_be_bytes())?;
                if v5 && (a.reason != 0 || !a.props.is_empty()) {
                    out.put(&[a.reason])?;
                    if !a.props.is_empty() {
                        a.props.emit(out)?;
                    }
                }
                Ok(())
            }
            Packet::Subscribe(s) => {
                out.put(&s.pkid.to_be_bytes())?;
                props(out, &s.props)?;
                out.put(s.filters.as_bytes())
            }
            Packet::Unsubscribe(s) => {
                out.put(&s.pkid.to_be_bytes())?;
                props(out, &s.props)?;
                out.put(s.filters.as_bytes())
            }
            Packet::SubAck(s) | Packet::UnsubAck(s) => {
                out.put(&s.pkid.to_be_bytes())?;
                props(out, &s.props)?;
                if v5 || matches!(self, Packet::SubAck(_)) {
                    out.put(s.codes)?;
                }
                Ok(())
            }
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(d) | Packet::Auth(d) => {
                if v5 && (d.reason != 0 || !d.props.is_empty()) {
                    out.put(&[d.reason])?;
                    if !d.props.is_empty() {
                        d.props.emit(out)?;
                    }
                }
                Ok(())
            }
        }
    }
}

fn connect<O: Out + ?Sized>(c: &Connect<'_>, out: &mut O) -> Result<(), Error> {
    let v5 = c.version == Version::V5;
    out.binary(b"MQTT")?;
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos as u8) << 3 | u8::from(w.retain) << 5;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    out.put(&[if v5 { 5 } else { 4 }, flags])?;
    out.put(&c.keep_alive.to_be_bytes())?;
    if v5 {
        c.props.emit(out)?;
    }
    out.binary(c.client_id.as_bytes())?;
    if let Some(w) = &c.will {
        if v5 {
            w.props.emit(out)?;
        }
        out.binary(w.topic.as_bytes())?;
        out.binary(w.payload)?;
    }
    if let Some(u) = c.username {
        out.binary(u.as_bytes())?;
    }
    if let Some(p) = c.password {
        out.binary(p)?;
    }
    Ok(())
}

impl<'a> Filters<'a> {
    /// A filter list built elsewhere (filter string, options byte, repeated), validated.
    pub fn new(bytes: &'a [u8], v: Version) -> Result<Filters<'a>, Error> {
        let mut r = frame::Reader::new(bytes);
        if r.is_empty() {
            return Err(Error::protocol("SUBSCRIBE without a topic filter"));
        }
        while !r.is_empty() {
            r.string()?;
            decode::sub_options(r.u8()?, v)?;
        }
        Ok(Filters { bytes })
    }
}

impl<'a> Topics<'a> {
    /// A string list built elsewhere (length-prefixed strings), validated.
    pub fn new(bytes: &'a [u8]) -> Result<Topics<'a>, Error> {
        let mut r = frame::Reader::new(bytes);
        if r.is_empty() {
            return Err(Error::protocol("UNSUBSCRIBE without a topic filter"));
        }
        while !r.is_empty() {
            r.string()?;
        }
        Ok(Topics { bytes })
    }
}
