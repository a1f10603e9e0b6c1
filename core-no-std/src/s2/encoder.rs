//! The S2 stream encoder: plain bytes in, a stream identifier once, then one data chunk per
//! block, each with its masked CRC-32C.
//!
//! Every [`Encoder::encode`] call is a flush point: its output holds whole chunks, so the
//! peer can decode everything it got as soon as it arrives. That is how nats-server drives its
//! writer too (it compresses whatever one `flushOutbound` took). Unlike nats-server, which
//! resets its writer per flush and so repeats the 10-byte stream identifier every time, this
//! writes it once per stream: on a narrow link with one small message per flush that is a
//! real share of the bytes.

use super::crc32c;
use super::encode::{Level, encode_block};
use super::error::EncodeError;
use super::{CHUNK_COMPRESSED, CHUNK_UNCOMPRESSED, MAX_BLOCK_SIZE, STREAM_IDENTIFIER};

/// The block size the encoder cuts input into unless told otherwise. Blocks are compressed
/// independently, so bigger blocks find more matches; 64 KiB holds ~500 backlog messages (the
/// gain beyond that is small) and keeps every offset within a 3-byte copy.
pub const DEFAULT_BLOCK_SIZE: usize = 64 * 1024;

/// The smallest block size [`Encoder::with_block_size`] accepts (as klauspost's writer).
pub const MIN_BLOCK_SIZE: usize = 4 * 1024;

/// Bytes of framing per chunk: type, 24-bit length, checksum.
const CHUNK_HEADER: usize = 8;

/// An S2 stream encoder at a [`Level`] over hash tables `T` (`[u32; N]`, `&mut [u32]`,
/// `Vec<u32>`; [`tables_len`](super::tables_len) says how many slots each level wants).
#[derive(Debug)]
pub struct Encoder<T> {
    tables: T,
    level: Level,
    block: usize,
    /// Above every position in the tables (see `encode`'s module doc).
    pub(crate) base: u32,
    started: bool,
    bytes_in: u64,
    bytes_out: u64,
}

impl<T: AsMut<[u32]>> Encoder<T> {
    /// A new stream at `level`.
    pub fn new(level: Level, tables: T) -> Encoder<T> {
        Encoder {
            tables,
            level,
            block: DEFAULT_BLOCK_SIZE,
            base: 1,
            started: false,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Cuts input into blocks of `size` bytes (clamped to 4 KiB..=4 MiB).
    #[must_use]
    pub fn with_block_size(mut self, size: usize) -> Encoder<T> {
        self.block = size.clamp(MIN_BLOCK_SIZE, MAX_BLOCK_SIZE);
        self
    }

    /// Changes the level from the next call on (`s2_auto` follows the measured RTT). The
    /// stream goes on: no new stream identifier is needed.
    pub fn set_level(&mut self, level: Level) {
        self.level = level;
    }

    /// The current level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The block size.
    pub fn block_size(&self) -> usize {
        self.block
    }

    /// Starts a new stream (a new connection): the next output begins with the identifier.
    pub fn reset(&mut self) {
        self.started = false;
        self.bytes_in = 0;
        self.bytes_out = 0;
    }

    /// Plain bytes taken and stream bytes produced so far (for ratios and metrics).
    pub fn totals(&self) -> (u64, u64) {
        (self.bytes_in, self.bytes_out)
    }

    /// The most bytes [`Encoder::encode`] writes for `plain_len` plain bytes.
    pub fn max_output_len(&self, plain_len: usize) -> usize {
        let chunks = plain_len.div_ceil(self.block);
        let id = if self.started {
            0
        } else {
            STREAM_IDENTIFIER.len()
        };
        id + chunks * CHUNK_HEADER + plain_len
    }

    /// Encodes all of `plain` into `out` as whole chunks; returns the bytes written. `out` must
    /// hold [`Encoder::max_output_len`] bytes. An empty `plain` writes nothing but, at the
    /// start of a stream, the identifier.
    pub fn encode(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
        let needed = self.max_output_len(plain.len());
        if out.len() < needed {
            return Err(EncodeError::OutputTooSmall { needed });
        }
        let mut w = 0;
        if !self.started {
            out[..STREAM_IDENTIFIER.len()].copy_from_slice(STREAM_IDENTIFIER);
            w = STREAM_IDENTIFIER.len();
            self.started = true;
        }
        for piece in plain.chunks(self.block) {
            let crc = crc32c::masked(piece);
            let body = w + CHUNK_HEADER;
            let mem = self.tables.as_mut();
            if u64::from(self.base) + piece.len() as u64 >= u64::from(u32::MAX) {
                // Positions would wrap: start the tables over (once per ~4 GiB).
                mem.fill(0);
                self.base = 1;
            }
            let dst = &mut out[body..body + piece.len()];
            let compressed =
                encode_block(self.level, piece, dst, mem, self.base).filter(|&n| n < piece.len());
            // piece.len() <= 4 MiB, and base + len < u32::MAX was made true above.
            self.base += piece.len() as u32;
            let (kind, len) = match compressed {
                Some(n) => (CHUNK_COMPRESSED, n),
                None => {
                    out[body..body + piece.len()].copy_from_slice(piece);
                    (CHUNK_UNCOMPRESSED, piece.len())
                }
            };
            let chunk_len = ((4 + len) as u32).to_le_bytes();
            out[w] = kind;
            out[w + 1..w + 4].copy_from_slice(&chunk_len[..3]);
            out[w + 4..body].copy_from_slice(&crc.to_le_bytes());
            w = body + len;
        }
        self.bytes_in += plain.len() as u64;
        self.bytes_out += w as u64;
        Ok(w)
    }

    /// [`Encoder::encode`], appending to `out`.
    #[cfg(feature = "alloc")]
    pub fn encode_to_vec(
        &mut self,
        plain: &[u8],
        out: &mut alloc::vec::Vec<u8>,
    ) -> Result<usize, EncodeError> {
        let start = out.len();
        out.resize(start + self.max_output_len(plain.len()), 0);
        let n = self.encode(plain, &mut out[start..])?;
        out.truncate(start + n);
        Ok(n)
    }
}
