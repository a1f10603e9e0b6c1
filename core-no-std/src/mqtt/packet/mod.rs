//! The MQTT 3.1.1 and 5.0 packet codec: borrowed views of complete packets, and encoders that
//! write into any [`Out`] (a caller's slice, a counter, a `Vec` with `alloc`).
//!
//! One codec for both directions: [`decode`] reads every packet type, [`Packet::encode`]
//! writes every packet type, and `decode(encode(p)) == p` (fuzzed). It is the server side of
//! twig's MQTT listener; `gateway/MQTT.md` says why rumqttc's `mqttbytes` is not.
//!
//! Contract (as smoltcp's `wire`):
//! - [`decode`] returns `Ok(None)` until the buffer holds a whole packet, and refuses a packet
//!   larger than the limit as soon as its fixed header says so, so a reader never buffers more
//!   than `max` bytes. Splitting the input anywhere changes nothing (the reader keeps its
//!   bytes until the packet is whole; no state lives here).
//! - It never panics, on any input (fuzz target `mqtt_packet`).
//! - It is strict where a server must be: reserved flag bits, exact lengths, UTF-8 without
//!   U+0000, non-zero packet ids, property blocks exactly as long as they say, properties
//!   allowed in the packet and given once, subscription options, CONNECT flag rules. Each
//!   refusal is an [`Error`] whose [`ErrorKind`] maps to the reason code a server answers with
//!   ([`Error::reason`]); the text says which rule.
//!
//! What is left to the session (it needs state): which packets may come when (CONNECT first
//! and once), topic aliases, receive maximum, topic-name and filter rules beyond UTF-8
//! (wildcards, `$share`), keep-alive.

mod decode;
mod encode;
pub mod frame;
pub mod props;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use frame::Header;
pub use props::{Ctx, PropWriter, Props, Value};

/// The protocol level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// MQTT 3.1.1 (level 4).
    V4,
    /// MQTT 5.0 (level 5).
    V5,
}

/// Quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// At most once.
    AtMostOnce = 0,
    /// At least once.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS of a two-bit value; 3 is `None`.
    pub fn from_bits(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Control packet types (the high nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum PacketType {
    Connect = 1,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    PingReq,
    PingResp,
    Disconnect,
    Auth,
}

impl PacketType {
    /// The type of a high nibble; 0 is reserved and 15 is AUTH (MQTT 5 only: the decoder
    /// refuses it on a 3.1.1 connection).
    pub fn from_nibble(n: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match n {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }
}

/// What kind of rule a packet broke; decides the reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Malformed Packet (0x81).
    Malformed,
    /// Protocol Error (0x82).
    Protocol,
    /// Packet Too Large (0x95).
    TooLarge,
    /// A CONNECT with a protocol level twig does not speak (3.1.1: CONNACK 0x01; 5: 0x84).
    UnsupportedVersion(u8),
    /// A CONNECT whose protocol name is not `MQTT` (or `MQIsdp` for level 3): close.
    BadProtocolName,
    /// The encoder's output buffer is full, or a field is too long for its length prefix.
    BufferTooSmall,
}

/// A refused packet: the kind and the rule (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    /// Which reason code applies.
    pub kind: ErrorKind,
    /// The rule that was broken, in words.
    pub what: &'static str,
}

impl Error {
    /// An error.
    pub const fn new(kind: ErrorKind, what: &'static str) -> Self {
        Error { kind, what }
    }

    pub(crate) const fn malformed(what: &'static str) -> Self {
        Error::new(ErrorKind::Malformed, what)
    }

    pub(crate) const fn protocol(what: &'static str) -> Self {
        Error::new(ErrorKind::Protocol, what)
    }

    /// The MQTT 5 reason code for this error (CONNACK or DISCONNECT).
    pub fn reason(&self) -> u8 {
        match self.kind {
            ErrorKind::Malformed => reason::MALFORMED_PACKET,
            ErrorKind::Protocol => reason::PROTOCOL_ERROR,
            ErrorKind::TooLarge => reason::PACKET_TOO_LARGE,
            ErrorKind::UnsupportedVersion(_) | ErrorKind::BadProtocolName => {
                reason::UNSUPPORTED_PROTOCOL_VERSION
            }
            ErrorKind::BufferTooSmall => reason::IMPLEMENTATION_SPECIFIC_ERROR,
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.what)
    }
}

/// MQTT 5 reason codes (§2.4) and the 3.1.1 CONNACK return codes.
#[allow(missing_docs)]
pub mod reason {
    pub const SUCCESS: u8 = 0x00;
    pub const GRANTED_QOS_1: u8 = 0x01;
    pub const GRANTED_QOS_2: u8 = 0x02;
    pub const DISCONNECT_WITH_WILL: u8 = 0x04;
    pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
    pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
    pub const UNSPECIFIED_ERROR: u8 = 0x80;
    pub const MALFORMED_PACKET: u8 = 0x81;
    pub const PROTOCOL_ERROR: u8 = 0x82;
    pub const IMPLEMENTATION_SPECIFIC_ERROR: u8 = 0x83;
    pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
    pub const CLIENT_ID_NOT_VALID: u8 = 0x85;
    pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
    pub const NOT_AUTHORIZED: u8 = 0x87;
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    pub const SERVER_BUSY: u8 = 0x89;
    pub const BAD_AUTH_METHOD: u8 = 0x8C;
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    pub const PACKET_ID_IN_USE: u8 = 0x91;
    pub const PACKET_ID_NOT_FOUND: u8 = 0x92;
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    pub const QUOTA_EXCEEDED: u8 = 0x97;
    pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
    pub const RETAIN_NOT_SUPPORTED: u8 = 0x9A;
    pub const QOS_NOT_SUPPORTED: u8 = 0x9B;
    pub const SHARED_SUBS_NOT_SUPPORTED: u8 = 0x9E;
    pub const SUB_IDS_NOT_SUPPORTED: u8 = 0xA1;
    pub const WILDCARD_SUBS_NOT_SUPPORTED: u8 = 0xA2;
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;

    /// MQTT 3.1.1 CONNACK return codes (§3.2.2.3).
    pub mod v4 {
        pub const ACCEPTED: u8 = 0x00;
        pub const UNACCEPTABLE_PROTOCOL_VERSION: u8 = 0x01;
        pub const IDENTIFIER_REJECTED: u8 = 0x02;
        pub const SERVER_UNAVAILABLE: u8 = 0x03;
        pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x04;
        pub const NOT_AUTHORIZED: u8 = 0x05;
        /// SUBACK failure.
        pub const SUBACK_FAILURE: u8 = 0x80;
    }
}

/// CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Protocol level.
    pub version: Version,
    /// Clean Session (3.1.1) / Clean Start (5).
    pub clean_start: bool,
    /// Keep alive in seconds (0: none).
    pub keep_alive: u16,
    /// CONNECT properties (5 only).
    pub props: Props<'a>,
    /// Client identifier (may be empty).
    pub client_id: &'a str,
    /// The will, if the Will Flag is set.
    pub will: Option<Will<'a>>,
    /// User name, if the flag is set.
    pub username: Option<&'a str>,
    /// Password, if the flag is set.
    pub password: Option<&'a [u8]>,
}

/// The will in a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Will<'a> {
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// Will properties (5 only).
    pub props: Props<'a>,
    /// Will topic.
    pub topic: &'a str,
    /// Will payload.
    pub payload: &'a [u8],
}

/// CONNACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck<'a> {
    /// Session Present.
    pub session_present: bool,
    /// Return code (3.1.1) or reason code (5).
    pub code: u8,
    /// CONNACK properties (5 only).
    pub props: Props<'a>,
}

/// PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// DUP flag.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name (may be empty in 5 with a topic alias).
    pub topic: &'a str,
    /// Packet identifier; 0 for QoS 0.
    pub pkid: u16,
    /// PUBLISH properties (5 only).
    pub props: Props<'a>,
    /// Application message.
    pub payload: &'a [u8],
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (the variant of [`Packet`] says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack<'a> {
    /// Packet identifier.
    pub pkid: u16,
    /// Reason code (5; always 0 in 3.1.1).
    pub reason: u8,
    /// Properties (5 only).
    pub props: Props<'a>,
}

/// Subscription options (MQTT 5 §3.8.3.1; 3.1.1 has QoS only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local.
    pub no_local: bool,
    /// Retain As Published.
    pub retain_as_published: bool,
    /// Retain Handling (0, 1 or 2).
    pub retain_handling: u8,
}

impl SubOptions {
    /// The options byte.
    pub fn to_byte(self) -> u8 {
        self.qos as u8
            | u8::from(self.no_local) << 2
            | u8::from(self.retain_as_published) << 3
            | (self.retain_handling & 3) << 4
    }
}

/// SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// Packet identifier.
    pub pkid: u16,
    /// Properties (5 only).
    pub props: Props<'a>,
    /// Topic filters with their options.
    pub filters: Filters<'a>,
}

/// The validated filter list of a SUBSCRIBE (at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filters<'a> {
    bytes: &'a [u8],
}

impl<'a> Filters<'a> {
    /// The raw list.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Each filter and its options.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, SubOptions)> + use<'a> {
        let mut r = frame::Reader::new(self.bytes);
        core::iter::from_fn(move || {
            let filter = r.string().ok()?;
            let options = decode::sub_options(r.u8().ok()?, Version::V5).ok()?;
            Some((filter, options))
        })
    }
}

/// SUBACK or UNSUBACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubAck<'a> {
    /// Packet identifier.
    pub pkid: u16,
    /// Properties (5 only).
    pub props: Props<'a>,
    /// One return/reason code per filter (UNSUBACK in 3.1.1: none).
    pub codes: &'a [u8],
}

/// UNSUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// Packet identifier.
    pub pkid: u16,
    /// Properties (5 only).
    pub props: Props<'a>,
    /// The filters (validated strings, at least one).
    pub filters: Topics<'a>,
}

/// A validated list of strings (UNSUBSCRIBE's filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topics<'a> {
    bytes: &'a [u8],
}

impl<'a> Topics<'a> {
    /// The raw list.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Each filter.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let mut r = frame::Reader::new(self.bytes);
        core::iter::from_fn(move || r.string().ok())
    }
}

/// DISCONNECT or AUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    /// Reason code (0 in 3.1.1).
    pub reason: u8,
    /// Properties (5 only).
    pub props: Props<'a>,
}

/// One MQTT control packet, borrowing the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Packet<'a> {
    Connect(Connect<'a>),
    ConnAck(ConnAck<'a>),
    Publish(Publish<'a>),
    PubAck(Ack<'a>),
    PubRec(Ack<'a>),
    PubRel(Ack<'a>),
    PubComp(Ack<'a>),
    Subscribe(Subscribe<'a>),
    SubAck(SubAck<'a>),
    Unsubscribe(Unsubscribe<'a>),
    UnsubAck(SubAck<'a>),
    PingReq,
    PingResp,
    Disconnect(Reason<'a>),
    Auth(Reason<'a>),
}

/// Where an encoder writes.
pub trait Out {
    /// Appends bytes, or fails without a partial write being meaningful.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error>;

    /// A variable byte integer.
    fn varint(&mut self, mut value: u32) -> Result<(), Error> {
        if value as usize > frame::MAX_REMAINING {
            return Err(Error::new(
                ErrorKind::BufferTooSmall,
                "value too large for a varint",
            ));
        }
        loop {
            let mut b = (value & 0x7F) as u8;
            value >>= 7;
            if value != 0 {
                b |= 0x80;
            }
            self.put(&[b])?;
            if value == 0 {
                return Ok(());
            }
        }
    }

    /// Two-byte length and the bytes.
    fn binary(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let len = u16::try_from(bytes.len())
            .map_err(|_| Error::new(ErrorKind::BufferTooSmall, "field longer than 65535"))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }
}

/// Counts bytes (for lengths before writing).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counter(pub usize);

impl Out for Counter {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.0 = self.0.saturating_add(bytes.len());
        Ok(())
    }
}

/// Writes into a caller's slice.
#[derive(Debug)]
pub struct SliceOut<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> SliceOut<'b> {
    /// An empty writer over `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        SliceOut { buf, len: 0 }
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Out for SliceOut<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self.len.saturating_add(bytes.len());
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(Error::new(ErrorKind::BufferTooSmall, "output buffer full"))?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

#[cfg(feature = "alloc")]
impl Out for alloc::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}
