//! S2 compression (klauspost/compress `s2`), the codec nats-server 2.10+ uses on leafnode and
//! route connections: both formats, no heap, no `unsafe`.
//!
//! - Block format: Snappy's literals and copies plus S2's repeat offsets
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
//!
//! # Wrapping a connection (the uplink)
//!
//! 1. After the hub's first INFO: [`mode::leaf_plan`]`(configured, &thresholds,
//!    info.compression, time since connect)`. `Plain { connect }`: CONNECT with
//!    `compress_mode: connect`, nothing else changes. `Compress { info, level, connect }`:
//!    write `INFO {"client_id":1,"compression":info}` plain and flush it; from the next byte
//!    on, both directions are S2; read the hub's INFO again through the decoder, then CONNECT
//!    (with `compress_mode: connect`) through the encoder.
//! 2. Writer: `Encoder::new(level, vec![0u32; tables_len(Level::Best)])` (768 KiB; enough for
//!    any level, so `s2_auto` can move with the RTT by [`Encoder::set_level`] +
//!    [`mode::Thresholds::level_for`] on each PONG). Each batch the writer would have written
//!    is one `encode_to_vec(batch, &mut wire)`, a flush point: the hub can decode everything
//!    sent so far. Output is at most [`Encoder::max_output_len`] (input + 8 bytes per 64 KiB
//!    block + 10 once). Keepalive lines go in the same stream (the lane order is the
//!    writer's; compression keeps it).
//! 3. Reader: `Decoder::new(vec![0u8; NATS_BLOCK_SIZE])` (1 MiB: nats-server's blocks; a
//!    configurable limit up to [`MAX_BLOCK_SIZE`]); per socket read, loop
//!    [`Decoder::feed`] (or [`Decoder::read`] into the parse buffer) until nothing is consumed
//!    or produced. An error is fatal for the connection; its `Display` is the log line.
//! 4. Over websocket, S2 wraps the frames (frame, then compress; decompress, then unframe),
//!    as nats-server does.
//!
//! Memory per connection: decoder buffer + ~100 bytes; encoder tables + the output buffer.

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
