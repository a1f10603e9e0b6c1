//! Framing: the fixed header, variable byte integers, and a checked reader over one packet.
//!
//! Promise: once [`Header::peek`] has returned a header and the buffer holds `header.len()`
//! bytes, every read below is bounds-checked and returns an [`Error`], never panics.

use super::{Error, ErrorKind, PacketType};

/// Largest Remaining Length MQTT can express (four bytes of 7 bits).
pub const MAX_REMAINING: usize = 268_435_455;

/// The fixed header of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The packet type.
    pub kind: PacketType,
    /// The low four bits of the first byte.
    pub flags: u8,
    /// Bytes of the fixed header (2..=5).
    pub head_len: usize,
    /// The Remaining Length.
    pub remaining: usize,
}

impl Header {
    /// The whole packet's size in bytes.
    #[allow(clippy::len_without_is_empty)] // a packet is never empty: its header is there
    pub fn len(&self) -> usize {
        self.head_len.saturating_add(self.remaining)
    }

    /// Reads the fixed header at the start of `buf`.
    ///
    /// `Ok(None)`: not enough bytes yet to know the size. A packet larger than `max` bytes
    /// (fixed header included, as MQTT 5's Maximum Packet Size counts) is [`ErrorKind::TooLarge`]
    /// as soon as its length is known, before its body arrives. Bad type or flags are errors
    /// at once too, so a reader never buffers a packet it will refuse.
    pub fn peek(buf: &[u8], max: usize) -> Result<Option<Header>, Error> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let kind = PacketType::from_nibble(first >> 4)
            .ok_or(Error::malformed("reserved packet type 0 or 15"))?;
        let flags = first & 0x0F;
        check_flags(kind, flags)?;
        let Some((remaining, n)) = varint(buf.get(1..).unwrap_or(&[]))? else {
            return Ok(None);
        };
        let header = Header {
            kind,
            flags,
            head_len: 1 + n,
            remaining: remaining as usize,
        };
        if header.len() > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                "packet larger than maximum packet size",
            ));
        }
        Ok(Some(header))
    }
}

/// Fixed-header flags (MQTT 3.1.1 §2.2.2, MQTT 5 §2.1.3): PUBLISH carries DUP/QoS/RETAIN,
/// PUBREL/SUBSCRIBE/UNSUBSCRIBE must be 0b0010, all others 0b0000.
fn check_flags(kind: PacketType, flags: u8) -> Result<(), Error> {
    match kind {
        PacketType::Publish => {
            let qos = (flags >> 1) & 3;
            if qos == 3 {
                return Err(Error::malformed("PUBLISH with QoS 3"));
            }
            if qos == 0 && flags & 0x08 != 0 {
                return Err(Error::malformed("PUBLISH QoS 0 with DUP set"));
            }
            Ok(())
        }
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe if flags == 0b0010 => {
            Ok(())
        }
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => {
            Err(Error::malformed("reserved fixed header flags must be 0010"))
        }
        _ if flags == 0 => Ok(()),
        _ => Err(Error::malformed("reserved fixed header flags must be 0000")),
    }
}

/// A variable byte integer at the start of `buf`: `Ok(None)` if it is cut short, an error
/// past four bytes. Returns the value and the bytes it took. Non-minimal encodings
/// (`0x80 0x00`) are accepted as the spec's decoding algorithm does.
pub fn varint(buf: &[u8]) -> Result<Option<(u32, usize)>, Error> {
    let mut value: u32 = 0;
    for (i, &b) in buf.iter().enumerate().take(4) {
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(Error::malformed(
            "variable byte integer longer than 4 bytes",
        ))
    } else {
        Ok(None)
    }
}

/// Bytes a variable byte integer takes.
pub const fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// A checked cursor over the bytes of one packet (after the fixed header).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// What is left unread.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.rest.len() {
            return Err(Error::malformed("field runs past the end of the packet"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        let b = self.take(1)?;
        Ok(b.first().copied().unwrap_or(0))
    }

    /// A big-endian two-byte integer.
    pub fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(match b {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            _ => 0,
        })
    }

    /// A big-endian four-byte integer.
    pub fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(match b {
            [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => 0,
        })
    }

    /// A variable byte integer; a truncated one is malformed (the packet is complete).
    pub fn varint(&mut self) -> Result<u32, Error> {
        let (value, n) =
            varint(self.rest)?.ok_or(Error::malformed("variable byte integer cut short"))?;
        self.take(n)?;
        Ok(value)
    }

    /// Binary data: a two-byte length and that many bytes.
    pub fn binary(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// A UTF-8 encoded string (MQTT 3.1.1 §1.5.3, MQTT 5 §1.5.4): well-formed UTF-8 without
    /// U+0000, else malformed.
    pub fn string(&mut self) -> Result<&'a str, Error> {
        let bytes = self.binary()?;
        utf8(bytes)
    }
}

/// Checks MQTT's UTF-8 string rules.
pub fn utf8(bytes: &[u8]) -> Result<&str, Error> {
    let s =
        core::str::from_utf8(bytes).map_err(|_| Error::malformed("string is not valid UTF-8"))?;
    if bytes.contains(&0) {
        return Err(Error::malformed("string contains U+0000"));
    }
    Ok(s)
}
