//! The S2 codec's errors: small `Copy` values with a sentence each.

use core::fmt;

/// Why a stream could not be decoded. After one, the decoder stays failed: the connection
/// carrying the stream has to be dropped (nats-server closes it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The first chunk was not a stream identifier (`0xff`, 6 bytes).
    NoStreamIdentifier,
    /// A stream identifier chunk with the wrong length or a magic other than `S2sTwO` or
    /// `sNaPpY`.
    BadStreamIdentifier,
    /// A reserved unskippable chunk type (`0x02..=0x7f`).
    UnsupportedChunk(u8),
    /// A block declares more decoded bytes than this decoder's buffer holds (or a chunk is
    /// longer than any encoder would make a block of that size).
    BlockTooLarge {
        /// The declared size (decoded, or of the chunk).
        len: u32,
        /// This decoder's limit.
        max: u32,
    },
    /// The compressed data is not a valid S2 block.
    Corrupt(&'static str),
    /// A block decoded but its CRC-32C does not match the chunk's checksum.
    Crc {
        /// The masked checksum the chunk carries.
        expected: u32,
        /// The masked checksum of what it decoded to.
        actual: u32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::NoStreamIdentifier => {
                f.write_str("s2: stream does not start with a stream identifier chunk")
            }
            DecodeError::BadStreamIdentifier => f.write_str("s2: bad stream identifier chunk"),
            DecodeError::UnsupportedChunk(t) => {
                write!(
                    f,
                    "s2: unsupported (reserved unskippable) chunk type 0x{t:02x}"
                )
            }
            DecodeError::BlockTooLarge { len, max } => {
                write!(
                    f,
                    "s2: block of {len} bytes exceeds the limit of {max} bytes"
                )
            }
            DecodeError::Corrupt(why) => write!(f, "s2: corrupt input: {why}"),
            DecodeError::Crc { expected, actual } => write!(
                f,
                "s2: corrupt input, crc mismatch (chunk says {expected:08x}, data is {actual:08x})"
            ),
        }
    }
}

/// Why a block could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is smaller than [`Encoder::max_output_len`](super::Encoder::max_output_len)
    /// of the input.
    OutputTooSmall {
        /// Bytes needed in the worst case.
        needed: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::OutputTooSmall { needed } => {
                write!(f, "s2: output buffer too small (needs {needed} bytes)")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}
#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}
