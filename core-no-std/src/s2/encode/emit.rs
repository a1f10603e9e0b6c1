//! Writing block elements: literals, copies and S2 repeats, each the shortest form S2 has.

/// A bounded output cursor: every write checks room and fails with `None`, which the block
/// encoders take as "not worth compressing" (the chunk is then stored uncompressed).
pub(crate) struct Out<'a> {
    buf: &'a mut [u8],
    pub(crate) pos: usize,
}

impl<'a> Out<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Out<'a> {
        Out { buf, pos: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(bytes.len())?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(bytes);
        self.pos = end;
        Some(())
    }

    /// The block's leading varint.
    pub(crate) fn varint(&mut self, mut v: u32) -> Option<()> {
        let mut b = [0u8; 5];
        let mut n = 0;
        while v >= 0x80 {
            b[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        b[n] = v as u8;
        self.put(&b[..=n])
    }

    /// A literal run (any length up to 4 GiB; blocks are at most 4 MiB).
    pub(crate) fn literal(&mut self, lit: &[u8]) -> Option<()> {
        if lit.is_empty() {
            return Some(());
        }
        let n = (lit.len() - 1) as u32;
        let le = n.to_le_bytes();
        match n {
            0..60 => self.put(&[(n as u8) << 2])?,
            60..0x100 => self.put(&[60 << 2, le[0]])?,
            0x100..0x1_0000 => self.put(&[61 << 2, le[0], le[1]])?,
            0x1_0000..0x100_0000 => self.put(&[62 << 2, le[0], le[1], le[2]])?,
            _ => self.put(&[63 << 2, le[0], le[1], le[2], le[3]])?,
        }
        self.put(lit)
    }

    /// An S2 repeat of the last offset, `len >= 4`.
    pub(crate) fn repeat(&mut self, mut len: usize) -> Option<()> {
        loop {
            let r = match len {
                0..4 => return None,
                4..=8 => return self.put(&[(((len - 4) as u8) << 2) | 1, 0]),
                9..=263 => return self.put(&[(5 << 2) | 1, 0, (len - 8) as u8]),
                264..=65_795 => {
                    let x = ((len - 260) as u32).to_le_bytes();
                    return self.put(&[(6 << 2) | 1, 0, x[0], x[1]]);
                }
                _ => len.min(65_540 + 0xFF_FFFF),
            };
            // The 5-byte form; a longer run (bigger than any block) takes several.
            let x = ((r - 65_540) as u32).to_le_bytes();
            self.put(&[(7 << 2) | 1, 0, x[0], x[1], x[2]])?;
            len -= r;
            if len == 0 {
                return Some(());
            }
            if len < 4 {
                return None;
            }
        }
    }

    /// A copy of `len >= 4` bytes from `offset` back (not a repeat).
    pub(crate) fn copy(&mut self, offset: usize, len: usize) -> Option<()> {
        if offset == 0 || len < 4 {
            return None;
        }
        if offset < 2048 {
            if len <= 11 {
                return self.copy1(offset, len);
            }
            if len <= 64 {
                return self.copy2(offset, len);
            }
            // A short copy1 sets the offset; the rest is a repeat of it (2 + 3 bytes).
            self.copy1(offset, 11)?;
            return self.repeat(len - 11);
        }
        let head = match len {
            0..=64 => len,
            65..=67 => 60,
            _ => 64,
        };
        if offset < 0x1_0000 {
            self.copy2(offset, head)?;
        } else {
            let o = (offset as u32).to_le_bytes();
            self.put(&[(((head - 1) as u8) << 2) | 3, o[0], o[1], o[2], o[3]])?;
        }
        if len > head {
            self.repeat(len - head)?;
        }
        Some(())
    }

    fn copy1(&mut self, offset: usize, len: usize) -> Option<()> {
        let tag = (((offset >> 8) as u8) << 5) | (((len - 4) as u8) << 2) | 1;
        self.put(&[tag, offset as u8])
    }

    fn copy2(&mut self, offset: usize, len: usize) -> Option<()> {
        let o = (offset as u16).to_le_bytes();
        self.put(&[(((len - 1) as u8) << 2) | 2, o[0], o[1]])
    }
}

/// Bytes [`Out::copy`] (or [`Out::repeat`] when `repeat`) takes for a match: what the best
/// level's parser weighs a candidate by.
pub(crate) fn copy_cost(offset: usize, len: usize, repeat: bool) -> usize {
    if repeat {
        return repeat_cost(len);
    }
    if offset < 2048 {
        match len {
            0..=11 => 2,
            12..=64 => 3,
            _ => 2 + repeat_cost(len - 11),
        }
    } else {
        let (head, cost) = if offset < 0x1_0000 { (64, 3) } else { (64, 5) };
        match len {
            0..=64 => cost,
            65..=67 => cost + repeat_cost(len - 60),
            _ => cost + repeat_cost(len - head),
        }
    }
}

pub(crate) fn repeat_cost(len: usize) -> usize {
    match len {
        0..=8 => 2,
        9..=263 => 3,
        264..=65_795 => 4,
        _ => 5,
    }
}
