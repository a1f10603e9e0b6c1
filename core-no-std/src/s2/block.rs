//! The S2 block format, decoding side: an element machine that survives input split anywhere.
//!
//! A block is the varint of its decoded length followed by elements. The low two bits of an
//! element's first byte are its tag (as in Snappy):
//!
//! | tag | element | bytes | length | offset |
//! |---|---|---|---|---|
//! | 0 | literal | 1 + 0..4 | `m + 1` (`m < 60`), else the next `m - 59` bytes LE + 1 | - |
//! | 1 | copy1 | 2 | 4 + bits 2..4 | bits 5..7 and the next byte (11 bits) |
//! | 1 | S2 repeat (copy1 with offset 0) | 2 + 0..3 | see below | the last copy's offset |
//! | 2 | copy2 | 3 | 1 + bits 2..7 | the next 2 bytes LE |
//! | 3 | copy4 | 5 | 1 + bits 2..7 | the next 4 bytes LE |
//!
//! S2's extension is the repeat: a copy1 with offset 0 reuses the previous copy's offset, and
//! its 3 length bits `b` mean 4 + `b` for `b` < 5, or take 1, 2 or 3 more bytes: `x + 8`,
//! `x + 260`, `x + 65540`. That makes long matches and repeated structure (the same field at the
//! same distance, message after message) cost 2-5 bytes. Snappy blocks are valid S2 blocks;
//! the reverse is not true. Offsets may reach anywhere back in the block (no window).
//!
//! [`Elements`] is the one decoder: the stream decoder feeds it a chunk's bytes as they arrive
//! and [`decode_block`] feeds it a whole block. After every call, the decoded prefix is
//! exact, and every offset and length is checked before use: nothing panics on any input.

use super::error::DecodeError;

/// Bytes a block element's tag takes, given at least its first byte (and, for copy1, its
/// second, else 2 so the caller reads one more and asks again).
fn tag_len(tag: &[u8]) -> usize {
    let b0 = tag[0];
    match b0 & 3 {
        0 => match b0 >> 2 {
            m @ 60..=63 => 1 + usize::from(m - 59),
            _ => 1,
        },
        1 => match tag.get(1) {
            Some(&b1) if b0 & 0xE0 == 0 && b1 == 0 => match (b0 >> 2) & 7 {
                5 => 3,
                6 => 4,
                7 => 5,
                _ => 2,
            },
            _ => 2,
        },
        2 => 3,
        _ => 5,
    }
}

/// Little-endian value of up to 4 bytes.
fn le(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0u32, |v, &b| (v << 8) | u32::from(b))
}

/// Where a block's decoding stands: declared length, bytes decoded, the repeat offset, a
/// literal in progress and an element tag split across inputs.
#[derive(Debug, Clone)]
pub(crate) struct Elements {
    len: usize,
    pos: usize,
    offset: usize,
    lit_left: usize,
    tag: [u8; 5],
    tag_have: u8,
}

impl Elements {
    /// A block that decodes to `len` bytes (the caller has checked `len` fits its buffer).
    pub(crate) fn new(len: usize) -> Elements {
        Elements {
            len,
            pos: 0,
            offset: 0,
            lit_left: 0,
            tag: [0; 5],
            tag_have: 0,
        }
    }

    /// Decodes all of `input` (the next bytes of the block) into `out`, which is at least the
    /// block's declared length long.
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
        let out = out
            .get_mut(..self.len)
            .ok_or(DecodeError::Corrupt("output buffer shorter than the block"))?;
        let mut i = 0;
        while i < input.len() {
            if self.lit_left > 0 {
                let n = self.lit_left.min(input.len() - i);
                out[self.pos..self.pos + n].copy_from_slice(&input[i..i + n]);
                self.pos += n;
                self.lit_left -= n;
                i += n;
                continue;
            }
            let rest = &input[i..];
            if self.tag_have == 0 {
                let need = tag_len(rest);
                if rest.len() >= need {
                    self.element(&rest[..need], out)?;
                    i += need;
                    continue;
                }
            }
            // The tag is split across inputs: collect it a byte at a time.
            self.tag[usize::from(self.tag_have)] = input[i];
            self.tag_have += 1;
            i += 1;
            let have = usize::from(self.tag_have);
            let need = tag_len(&self.tag[..have]);
            if have >= need {
                let tag = self.tag;
                self.tag_have = 0;
                self.element(&tag[..need], out)?;
            }
        }
        Ok(())
    }

    /// Checks that the block's bytes ended exactly where its last element and its declared
    /// length did.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.tag_have != 0 || self.lit_left != 0 {
            return Err(DecodeError::Corrupt("block ends inside an element"));
        }
        if self.pos != self.len {
            return Err(DecodeError::Corrupt(
                "block decodes to fewer bytes than it declares",
            ));
        }
        Ok(())
    }

    fn element(&mut self, tag: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
        let b0 = tag[0];
        let left = (self.len - self.pos) as u64;
        match b0 & 3 {
            0 => {
                let m = b0 >> 2;
                let n = if m < 60 {
                    u64::from(m) + 1
                } else {
                    u64::from(le(&tag[1..])) + 1
                };
                if n > left {
                    return Err(DecodeError::Corrupt("literal runs past the block's end"));
                }
                // n <= left, which is a usize.
                self.lit_left = n as usize;
                Ok(())
            }
            1 => {
                let bits = u32::from((b0 >> 2) & 7);
                let offset = (usize::from(b0 & 0xE0) << 3) | usize::from(tag[1]);
                let n = if offset == 0 {
                    // S2 repeat: the previous offset, a longer length.
                    match bits {
                        5 => le(&tag[2..3]) + 8,
                        6 => le(&tag[2..4]) + 260,
                        7 => le(&tag[2..5]) + 65540,
                        b => b + 4,
                    }
                } else {
                    self.offset = offset;
                    bits + 4
                };
                self.copy(u64::from(n), left, out)
            }
            2 => {
                self.offset = le(&tag[1..3]) as usize;
                self.copy(u64::from(b0 >> 2) + 1, left, out)
            }
            _ => {
                // A u32 offset fits usize on every target twig builds for (32 and 64 bit).
                self.offset = le(&tag[1..5]) as usize;
                self.copy(u64::from(b0 >> 2) + 1, left, out)
            }
        }
    }

    fn copy(&mut self, n: u64, left: u64, out: &mut [u8]) -> Result<(), DecodeError> {
        let offset = self.offset;
        if offset == 0 || offset > self.pos {
            return Err(DecodeError::Corrupt("copy offset out of range"));
        }
        if n > left {
            return Err(DecodeError::Corrupt("copy runs past the block's end"));
        }
        let n = n as usize;
        let d = self.pos;
        let src = d - offset;
        if offset >= n {
            out.copy_within(src..src + n, d);
        } else {
            // Overlapping: the result repeats the last `offset` bytes. Copy in rounds that
            // each double what is already periodic, so a run of one byte costs log(n) copies.
            let mut done = 0;
            while done < n {
                let k = (offset + done).min(n - done);
                out.copy_within(src..src + k, d + done);
                done += k;
            }
        }
        self.pos += n;
        Ok(())
    }
}

/// Reads a block's leading varint (its decoded length): `Ok(Some((len, header bytes)))`,
/// `Ok(None)` if `src` ends inside it.
pub(crate) fn decoded_len(src: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut v: u64 = 0;
    for (i, &b) in src.iter().enumerate() {
        if i >= 5 {
            break;
        }
        v |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(v)
                .map(|v| Some((v, i + 1)))
                .map_err(|_| DecodeError::Corrupt("block length does not fit 32 bits"));
        }
    }
    if src.len() >= 5 {
        Err(DecodeError::Corrupt(
            "block length varint longer than 5 bytes",
        ))
    } else {
        Ok(None)
    }
}

/// Decodes one whole S2 (or Snappy) block into `out`; returns the decoded length. Fails with
/// [`DecodeError::BlockTooLarge`] if `out` is too short for the length the block declares.
pub fn decode_block(src: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    let (len, hdr) =
        decoded_len(src)?.ok_or(DecodeError::Corrupt("block ends inside its length"))?;
    if len as usize > out.len() {
        return Err(DecodeError::BlockTooLarge {
            len,
            max: u32::try_from(out.len()).unwrap_or(u32::MAX),
        });
    }
    let mut e = Elements::new(len as usize);
    e.decode(&src[hdr..], out)?;
    e.finish()?;
    Ok(len as usize)
}
