//! MQTT 5 properties (§2.2.2): a validated, borrowed property block and a writer for one.
//!
//! [`Props::parse`] checks a block once, completely: every identifier known and allowed in
//! that packet (Table 2-4), none repeated that may appear only once, every value inside the
//! block and of the right form. After that the accessors only re-walk a block that is known
//! to be good, so they cannot fail.

use super::frame::{Reader, varint_len};
use super::{Error, Out};

/// Property identifiers.
#[allow(missing_docs)]
pub mod id {
    pub const PAYLOAD_FORMAT: u8 = 0x01;
    pub const MESSAGE_EXPIRY: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_ID: u8 = 0x0B;
    pub const SESSION_EXPIRY: u8 = 0x11;
    pub const ASSIGNED_CLIENT_ID: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTH_METHOD: u8 = 0x15;
    pub const AUTH_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFO: u8 = 0x17;
    pub const WILL_DELAY: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFO: u8 = 0x19;
    pub const RESPONSE_INFO: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUB_AVAILABLE: u8 = 0x28;
    pub const SUB_ID_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUB_AVAILABLE: u8 = 0x2A;
}

/// Where a property block sits: which identifiers it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Ctx {
    Connect,
    ConnAck,
    Publish,
    Will,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl Ctx {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// The form of a property's value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Byte,
    U16,
    U32,
    Varint,
    Str,
    Bin,
    Pair,
}

/// Form and allowed packets of a property identifier (MQTT 5 Table 2-4).
fn spec(prop: u8) -> Option<(Form, u16)> {
    use Ctx::*;
    use id::*;
    let b = |c: &[Ctx]| c.iter().fold(0u16, |m, c| m | c.bit());
    Some(match prop {
        PAYLOAD_FORMAT => (Form::Byte, b(&[Publish, Will])),
        MESSAGE_EXPIRY => (Form::U32, b(&[Publish, Will])),
        CONTENT_TYPE | RESPONSE_TOPIC => (Form::Str, b(&[Publish, Will])),
        CORRELATION_DATA => (Form::Bin, b(&[Publish, Will])),
        SUBSCRIPTION_ID => (Form::Varint, b(&[Publish, Subscribe])),
        SESSION_EXPIRY => (Form::U32, b(&[Connect, ConnAck, Disconnect])),
        ASSIGNED_CLIENT_ID | RESPONSE_INFO => (Form::Str, b(&[ConnAck])),
        SERVER_KEEP_ALIVE => (Form::U16, b(&[ConnAck])),
        AUTH_METHOD => (Form::Str, b(&[Connect, ConnAck, Auth])),
        AUTH_DATA => (Form::Bin, b(&[Connect, ConnAck, Auth])),
        REQUEST_PROBLEM_INFO | REQUEST_RESPONSE_INFO => (Form::Byte, b(&[Connect])),
        WILL_DELAY => (Form::U32, b(&[Will])),
        SERVER_REFERENCE => (Form::Str, b(&[ConnAck, Disconnect])),
        REASON_STRING => (
            Form::Str,
            b(&[ConnAck, Ack, SubAck, UnsubAck, Disconnect, Auth]),
        ),
        RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM => (Form::U16, b(&[Connect, ConnAck])),
        TOPIC_ALIAS => (Form::U16, b(&[Publish])),
        MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUB_AVAILABLE
        | SUB_ID_AVAILABLE
        | SHARED_SUB_AVAILABLE => (Form::Byte, b(&[ConnAck])),
        USER_PROPERTY => (Form::Pair, 0x7FF),
        MAXIMUM_PACKET_SIZE => (Form::U32, b(&[Connect, ConnAck])),
        _ => return None,
    })
}

/// One property value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Value<'a> {
    Byte(u8),
    U16(u16),
    U32(u32),
    Varint(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

/// A validated property block (without its length prefix). Empty for MQTT 3.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Props<'a> {
    block: &'a [u8],
}

impl<'a> Props<'a> {
    /// No properties.
    pub const EMPTY: Props<'static> = Props { block: &[] };

    /// Reads and validates the length-prefixed property block at the reader's position.
    pub fn parse(r: &mut Reader<'a>, ctx: Ctx) -> Result<Props<'a>, Error> {
        let len = r.varint()?;
        let block = r.take(len as usize)?;
        Props::check(block, ctx)?;
        Ok(Props { block })
    }

    /// Validates a block built elsewhere (e.g. with [`PropWriter`]) for use in `ctx`.
    pub fn new(block: &'a [u8], ctx: Ctx) -> Result<Props<'a>, Error> {
        Props::check(block, ctx)?;
        Ok(Props { block })
    }

    fn check(block: &'a [u8], ctx: Ctx) -> Result<(), Error> {
        let mut seen: u64 = 0;
        let mut r = Reader::new(block);
        while !r.is_empty() {
            let prop = r.u8()?;
            let (form, allowed) =
                spec(prop).ok_or(Error::malformed("unknown property identifier"))?;
            if allowed & ctx.bit() == 0 {
                return Err(Error::protocol("property not allowed in this packet"));
            }
            let repeatable =
                prop == id::USER_PROPERTY || (prop == id::SUBSCRIPTION_ID && ctx == Ctx::Publish);
            let bit = 1u64 << prop;
            if seen & bit != 0 && !repeatable {
                return Err(Error::protocol("property given more than once"));
            }
            seen |= bit;
            let value = read_value(&mut r, form)?;
            check_value(prop, value)?;
        }
        Ok(())
    }

    /// The raw block (no length prefix).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.block
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }

    /// Every property in order.
    pub fn iter(&self) -> PropIter<'a> {
        PropIter {
            r: Reader::new(self.block),
        }
    }

    /// The first value of property `prop`.
    pub fn get(&self, prop: u8) -> Option<Value<'a>> {
        self.iter().find(|(p, _)| *p == prop).map(|(_, v)| v)
    }

    /// A one-byte property.
    pub fn byte(&self, prop: u8) -> Option<u8> {
        match self.get(prop)? {
            Value::Byte(v) => Some(v),
            _ => None,
        }
    }

    /// A two-byte property.
    pub fn u16(&self, prop: u8) -> Option<u16> {
        match self.get(prop)? {
            Value::U16(v) => Some(v),
            _ => None,
        }
    }

    /// A four-byte or variable byte integer property.
    pub fn u32(&self, prop: u8) -> Option<u32> {
        match self.get(prop)? {
            Value::U32(v) | Value::Varint(v) => Some(v),
            _ => None,
        }
    }

    /// A string property.
    pub fn str(&self, prop: u8) -> Option<&'a str> {
        match self.get(prop)? {
            Value::Str(v) => Some(v),
            _ => None,
        }
    }

    /// A binary property.
    pub fn bin(&self, prop: u8) -> Option<&'a [u8]> {
        match self.get(prop)? {
            Value::Bin(v) => Some(v),
            _ => None,
        }
    }

    /// The user properties in order.
    pub fn user(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.iter().filter_map(|(_, v)| match v {
            Value::Pair(k, v) => Some((k, v)),
            _ => None,
        })
    }

    /// Bytes the block takes on the wire with its length prefix.
    pub fn wire_len(&self) -> usize {
        varint_len(self.block.len() as u32) + self.block.len()
    }

    /// Writes the block with its length prefix.
    pub fn emit<O: Out + ?Sized>(&self, out: &mut O) -> Result<(), Error> {
        out.varint(self.block.len() as u32)?;
        out.put(self.block)
    }
}

fn read_value<'a>(r: &mut Reader<'a>, form: Form) -> Result<Value<'a>, Error> {
    Ok(match form {
        Form::Byte => Value::Byte(r.u8()?),
        Form::U16 => Value::U16(r.u16()?),
        Form::U32 => Value::U32(r.u32()?),
        Form::Varint => Value::Varint(r.varint()?),
        Form::Str => Value::Str(r.string()?),
        Form::Bin => Value::Bin(r.binary()?),
        Form::Pair => Value::Pair(r.string()?, r.string()?),
    })
}

/// Values the spec forbids (each a Protocol Error, MQTT 5 §3.1.2.11, §3.2.2.3, §3.3.2.3).
fn check_value(prop: u8, value: Value<'_>) -> Result<(), Error> {
    use id::*;
    let bad = match (prop, value) {
        (
            PAYLOAD_FORMAT
            | REQUEST_PROBLEM_INFO
            | REQUEST_RESPONSE_INFO
            | MAXIMUM_QOS
            | RETAIN_AVAILABLE
            | WILDCARD_SUB_AVAILABLE
            | SUB_ID_AVAILABLE
            | SHARED_SUB_AVAILABLE,
            Value::Byte(v),
        ) => v > 1,
        (RECEIVE_MAXIMUM | TOPIC_ALIAS, Value::U16(0)) => true,
        (MAXIMUM_PACKET_SIZE, Value::U32(0)) => true,
        (SUBSCRIPTION_ID, Value::Varint(0)) => true,
        _ => false,
    };
    if bad {
        return Err(Error::protocol("property value out of range"));
    }
    Ok(())
}

/// Iterator over a validated block.
#[derive(Debug, Clone)]
pub struct PropIter<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for PropIter<'a> {
    type Item = (u8, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let prop = self.r.u8().ok()?;
        let (form, _) = spec(prop)?;
        let value = read_value(&mut self.r, form).ok()?;
        Some((prop, value))
    }
}

/// Builds a property block (without its length prefix) into any [`Out`].
pub struct PropWriter<'o, O: Out + ?Sized> {
    out: &'o mut O,
}

impl<'o, O: Out + ?Sized> PropWriter<'o, O> {
    /// A writer appending to `out`.
    pub fn new(out: &'o mut O) -> Self {
        PropWriter { out }
    }

    /// Writes one property.
    pub fn put(&mut self, prop: u8, value: Value<'_>) -> Result<&mut Self, Error> {
        self.out.put(&[prop])?;
        match value {
            Value::Byte(v) => self.out.put(&[v])?,
            Value::U16(v) => self.out.put(&v.to_be_bytes())?,
            Value::U32(v) => self.out.put(&v.to_be_bytes())?,
            Value::Varint(v) => self.out.varint(v)?,
            Value::Str(s) => self.out.binary(s.as_bytes())?,
            Value::Bin(b) => self.out.binary(b)?,
            Value::Pair(k, v) => {
                self.out.binary(k.as_bytes())?;
                self.out.binary(v.as_bytes())?;
            }
        }
        Ok(self)
    }
}
