//! S2 compression (klauspost/compress `s2`), the codec nats-server 2.10+ uses on leafnode and
//! route connections: both formats, no heap, no `unsafe`.
//!
//! - [`block`]-level format: Snappy's literals and copies plus S2's repeat offsets
//!   (a copy1 with offset 0) and longer copies; [`decode_block`] decodes one block.
//! - Stream (framing) format: a stream identifier chunk (`ff 06 00 00 "S2sTwO"`; Snappy's
//!   `"sNaPpY"` is read too), then data chunks, each a type byte, a 24-bit length, the masked
//!   CRC-32C of the plain bytes and either a compressed block (`0x00`) or the bytes as they are
//!   (`0x01`); padding (`0xfe`) and reserved skippable chunks (`0x80..=0xfd`) are skipped,
//!   reserved unskippable ones (`0x02..=0x7f`) are an error.
//! - [`Decoder`]: incremental, input split at any byte, memory = the caller's block buffer,
//!   CRC checked before anything is handed out. [`Encoder`]: levels `s2_uncompressed`,
//!   `s2_fast`, `s2_better`, `s2_best`; hash tables in the caller's `[u32]`.
//! - [`mode`]: nats-server's compression modes and the leaf side's negotiation.
//!
//! The wire: on a compressed leafnode connection every byte after the INFO exchange is one
//! S2 stream per direction; nats-server writes a whole stream per flush (identifier and
//! chunks, blocks of up to 1 MiB) and reads with a 4 MiB block limit.

mod block;
mod crc32c;
mod decode;
pub mod encode;
mod encoder;
mod error;
pub mod mode;

// The tests build streams with `Encoder::encode_to_vec` (feature `alloc`).
#[cfg(all(test, feature = "alloc"))]
mod tests;

pub use block::decode_block;
pub use crc32c::{crc32c, masked as masked_crc};
pub use decode::{Decoder, Feed};
pub use encode::{Level, tables_len};
pub use encoder::{DEFAULT_BLOCK_SIZE, Encoder, MIN_BLOCK_SIZE};
pub use error::{DecodeError, EncodeError};

/// The largest block the format allows (and nats-server's reader accepts).
pub const MAX_BLOCK_SIZE: usize = 4 << 20;
/// The block size nats-server's writer uses (klauspost's default).
pub const NATS_BLOCK_SIZE: usize = 1 << 20;
/// Blocks of a Snappy-framed stream are at most this long.
pub const MAX_SNAPPY_BLOCK_SIZE: usize = 1 << 16;

pub(crate) const CHUNK_COMPRESSED: u8 = 0x00;
pub(crate) const CHUNK_UNCOMPRESSED: u8 = 0x01;
pub(crate) const CHUNK_STREAM_ID: u8 = 0xFF;
pub(crate) const MAGIC_S2: &[u8; 6] = b"S2sTwO";
pub(crate) const MAGIC_SNAPPY: &[u8; 6] = b"sNaPpY";
/// The stream identifier chunk an S2 stream starts with.
pub const STREAM_IDENTIFIER: &[u8; 10] = b"\xff\x06\x00\x00S2sTwO";

/// The longest a compressed block of `n` plain bytes can be (varint, one literal of
/// everything): a chunk claiming more is corrupt, whatever it holds.
pub const fn max_block_encoded_len(n: usize) -> usize {
    n + 5 + 5
}
