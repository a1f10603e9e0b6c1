//! The S2 stream decoder: chunks in, CRC-checked plain bytes out, input split anywhere.
//!
//! Memory is the caller's buffer (one block; nats-server writes blocks of up to 1 MiB, the
//! format allows 4 MiB) plus about 80 bytes of state. Compressed chunks are not buffered:
//! their elements are decoded as the bytes arrive, straight into the block buffer. A block is
//! handed out only after its CRC-32C matched, so nothing unchecked ever reaches the caller.

use super::block::{Elements, decoded_len};
use super::crc32c;
use super::error::DecodeError;
use super::{
    CHUNK_COMPRESSED, CHUNK_STREAM_ID, CHUNK_UNCOMPRESSED, MAGIC_S2, MAGIC_SNAPPY, MAX_BLOCK_SIZE,
    MAX_SNAPPY_BLOCK_SIZE, max_block_encoded_len,
};

/// What a chunk's body is being read as.
#[derive(Debug, Clone)]
enum State {
    /// A chunk header (type, 24-bit length).
    Header { have: u8, bytes: [u8; 4] },
    /// The body of a stream identifier.
    Magic { have: u8, bytes: [u8; 6] },
    /// A data chunk's checksum; then the block.
    Checksum {
        compressed: bool,
        have: u8,
        bytes: [u8; 4],
    },
    /// A compressed block's leading varint.
    Length { have: u8, bytes: [u8; 5] },
    /// A compressed block's elements.
    Elements(Elements),
    /// An uncompressed chunk's data.
    Raw { pos: usize },
    /// A padding or reserved skippable chunk.
    Skip,
    /// A checked block, `buf[pos..len]` not yet handed out.
    Ready { pos: usize },
    /// Failed for good.
    Failed(DecodeError),
}

/// What [`Decoder::feed`] did.
#[derive(Debug)]
pub struct Feed<'a> {
    /// How many input bytes were used. The rest must be passed again.
    pub consumed: usize,
    /// A decoded block (or its part not yet read by [`Decoder::read`]); empty if the input
    /// ended before one was complete. Valid until the next call.
    pub plain: &'a [u8],
}

/// An incremental S2 stream decoder over a block buffer `B` (`[u8; N]`, `&mut [u8]`,
/// `Vec<u8>`). Blocks larger than the buffer (or than 4 MiB) fail with
/// [`DecodeError::BlockTooLarge`].
#[derive(Debug)]
pub struct Decoder<B> {
    buf: B,
    max: usize,
    state: State,
    /// Body bytes of the current chunk not read yet.
    chunk_left: usize,
    /// The current data chunk's checksum and decoded length.
    crc: u32,
    len: usize,
    /// A stream identifier has been seen; the last one said Snappy (64 KiB blocks).
    started: bool,
    snappy: bool,
    bytes_in: u64,
    bytes_out: u64,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Decoder<B> {
    /// A decoder for a stream that starts now (its first chunk must be a stream identifier).
    pub fn new(buf: B) -> Decoder<B> {
        let max = buf.as_ref().len().min(MAX_BLOCK_SIZE);
        Decoder {
            buf,
            max,
            state: State::Header {
                have: 0,
                bytes: [0; 4],
            },
            chunk_left: 0,
            crc: 0,
            len: 0,
            started: false,
            snappy: false,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Starts over on a new stream (a new connection), keeping the buffer.
    pub fn reset(&mut self) {
        self.state = State::Header {
            have: 0,
            bytes: [0; 4],
        };
        self.started = false;
        self.snappy = false;
        self.bytes_in = 0;
        self.bytes_out = 0;
    }

    /// The largest block this decoder accepts.
    pub fn max_block(&self) -> usize {
        self.max
    }

    /// Compressed bytes consumed and plain bytes produced so far (for ratios and metrics).
    pub fn totals(&self) -> (u64, u64) {
        (self.bytes_in, self.bytes_out)
    }

    /// True between chunks: every byte fed so far belonged to a complete chunk and every
    /// decoded byte has been handed out.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. })
    }

    /// Consumes `input` until a block is complete (and returns it) or the input is used up.
    /// Call again with `&input[consumed..]` until `consumed == 0` and `plain` is empty.
    pub fn feed(&mut self, input: &[u8]) -> Result<Feed<'_>, DecodeError> {
        let consumed = if matches!(self.state, State::Ready { .. }) {
            0
        } else {
            self.advance(input)?
        };
        let plain = match self.state {
            State::Ready { pos } => {
                self.state = State::Header {
                    have: 0,
                    bytes: [0; 4],
                };
                &self.buf.as_ref()[pos..self.len]
            }
            _ => &[][..],
        };
        Ok(Feed { consumed, plain })
    }

    /// `io::Read` style: consumes from `input` and writes plain bytes into `out`; returns
    /// (input bytes consumed, bytes written). Stops when `out` is full or `input` is used up.
    pub fn read(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), DecodeError> {
        let (mut used, mut written) = (0, 0);
        loop {
            if let State::Ready { pos } = self.state {
                let n = (self.len - pos).min(out.len() - written);
                out[written..written + n].copy_from_slice(&self.buf.as_ref()[pos..pos + n]);
                written += n;
                self.state = if pos + n == self.len {
                    State::Header {
                        have: 0,
                        bytes: [0; 4],
                    }
                } else {
                    State::Ready { pos: pos + n }
                };
                if written == out.len() {
                    return Ok((used, written));
                }
            }
            if used == input.len() {
                return Ok((used, written));
            }
            used += self.advance(&input[used..])?;
        }
    }

    /// Reads chunks from `input` until a block is ready or the input ends; returns bytes used.
    fn advance(&mut self, input: &[u8]) -> Result<usize, DecodeError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        let mut used = 0;
        while used < input.len() && !matches!(self.state, State::Ready { .. }) {
            match self.step(&input[used..]) {
                Ok(n) => used += n,
                Err(e) => {
                    self.state = State::Failed(e);
                    return Err(e);
                }
            }
        }
        self.bytes_in += used as u64;
        Ok(used)
    }

    /// One step of the chunk machine on non-empty `input`; returns bytes used.
    fn step(&mut self, input: &[u8]) -> Result<usize, DecodeError> {
        // Body bytes of the current chunk available now.
        let body = &input[..input.len().min(self.chunk_left)];
        match &mut self.state {
            State::Header { have, bytes } => {
                let n = collect(bytes, have, input);
                if usize::from(*have) == bytes.len() {
                    let b = *bytes;
                    self.chunk_header(b[0], le24(&b[1..]))?;
                }
                Ok(n)
            }
            State::Magic { have, bytes } => {
                let n = collect(bytes, have, body);
                self.chunk_left -= n;
                if usize::from(*have) == bytes.len() {
                    self.snappy = match bytes {
                        m if m == MAGIC_S2 => false,
                        m if m == MAGIC_SNAPPY => true,
                        _ => return Err(DecodeError::BadStreamIdentifier),
                    };
                    self.started = true;
                    self.next_chunk();
                }
                Ok(n)
            }
            State::Checksum {
                compressed,
                have,
                bytes,
            } => {
                let n = collect(bytes, have, body);
                self.chunk_left -= n;
                if usize::from(*have) == bytes.len() {
                    self.crc = u32::from_le_bytes(*bytes);
                    if *compressed {
                        self.state = State::Length {
                            have: 0,
                            bytes: [0; 5],
                        };
                    } else {
                        self.len = self.chunk_left;
                        self.state = State::Raw { pos: 0 };
                    }
                    self.check_end()?;
                }
                Ok(n)
            }
            State::Length { have, bytes } => {
                // Bytes at a time: the varint is at most 5, never worth a fast path.
                bytes[usize::from(*have)] = body[0];
                *have += 1;
                self.chunk_left -= 1;
                if let Some((len, _)) = decoded_len(&bytes[..usize::from(*have)])? {
                    self.start_block(len)?;
                    self.check_end()?;
                } else if self.chunk_left == 0 {
                    return Err(DecodeError::Corrupt("block ends inside its length"));
                }
                Ok(1)
            }
            State::Elements(e) => {
                e.decode(body, self.buf.as_mut())?;
                self.chunk_left -= body.len();
                self.check_end()?;
                Ok(body.len())
            }
            State::Raw { pos } => {
                let p = *pos;
                self.buf.as_mut()[p..p + body.len()].copy_from_slice(body);
                *pos += body.len();
                self.chunk_left -= body.len();
                self.check_end()?;
                Ok(body.len())
            }
            State::Skip => {
                self.chunk_left -= body.len();
                if self.chunk_left == 0 {
                    self.next_chunk();
                }
                Ok(body.len())
            }
            State::Ready { .. } | State::Failed(_) => Ok(0),
        }
    }

    /// Acts on a complete chunk header.
    fn chunk_header(&mut self, kind: u8, len: usize) -> Result<(), DecodeError> {
        if !self.started && kind != CHUNK_STREAM_ID {
            return Err(DecodeError::NoStreamIdentifier);
        }
        self.chunk_left = len;
        let max = self.block_limit();
        self.state = match kind {
            CHUNK_STREAM_ID if len == MAGIC_S2.len() => State::Magic {
                have: 0,
                bytes: [0; 6],
            },
            CHUNK_STREAM_ID => return Err(DecodeError::BadStreamIdentifier),
            CHUNK_COMPRESSED | CHUNK_UNCOMPRESSED => {
                let data = len
                    .checked_sub(4)
                    .ok_or(DecodeError::Corrupt("data chunk shorter than its checksum"))?;
                let limit = if kind == CHUNK_COMPRESSED {
                    max_block_encoded_len(max)
                } else {
                    max
                };
                if data > limit {
                    return Err(DecodeError::BlockTooLarge {
                        len: data as u32,
                        max: limit as u32,
                    });
                }
                State::Checksum {
                    compressed: kind == CHUNK_COMPRESSED,
                    have: 0,
                    bytes: [0; 4],
                }
            }
            0x02..=0x7F => return Err(DecodeError::UnsupportedChunk(kind)),
            // Padding (0xfe) and reserved skippable chunks (0x80..=0xfd, the S2 index 0x99).
            _ if len == 0 => State::Header {
                have: 0,
                bytes: [0; 4],
            },
            _ => State::Skip,
        };
        Ok(())
    }

    /// The decoded length of a compressed block is known: check it against the buffer.
    fn start_block(&mut self, len: u32) -> Result<(), DecodeError> {
        let max = self.block_limit();
        if len as usize > max {
            return Err(DecodeError::BlockTooLarge {
                len,
                max: max as u32,
            });
        }
        self.len = len as usize;
        self.state = State::Elements(Elements::new(self.len));
        Ok(())
    }

    fn block_limit(&self) -> usize {
        if self.snappy {
            self.max.min(MAX_SNAPPY_BLOCK_SIZE)
        } else {
            self.max
        }
    }

    /// At the end of a data chunk's bytes: check the block and its CRC, then hand it out.
    fn check_end(&mut self) -> Result<(), DecodeError> {
        if self.chunk_left != 0 {
            return Ok(());
        }
        match &self.state {
            State::Elements(e) => e.finish()?,
            State::Raw { .. } => {}
            State::Length { .. } => {
                return Err(DecodeError::Corrupt("block ends inside its length"));
            }
            _ => return Ok(()),
        }
        let plain = &self.buf.as_ref()[..self.len];
        let actual = crc32c::masked(plain);
        if actual != self.crc {
            return Err(DecodeError::Crc {
                expected: self.crc,
                actual,
            });
        }
        self.bytes_out += self.len as u64;
        self.state = State::Ready { pos: 0 };
        Ok(())
    }

    fn next_chunk(&mut self) {
        self.state = State::Header {
            have: 0,
            bytes: [0; 4],
        };
    }
}

/// Copies from `input` into the unfilled part of `bytes`; returns how many were taken.
fn collect(bytes: &mut [u8], have: &mut u8, input: &[u8]) -> usize {
    let h = usize::from(*have);
    let n = (bytes.len() - h).min(input.len());
    bytes[h..h + n].copy_from_slice(&input[..n]);
    *have += n as u8;
    n
}

fn le24(b: &[u8]) -> usize {
    usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16
}
