//! The S2 block encoders: `s2_fast`, `s2_better`, `s2_best`, each its own match finder over
//! the same element writer (`emit`).
//!
//! No heap: the hash tables are a `[u32]` the caller provides ([`tables_len`] says how much
//! each level wants; less works, with a worse ratio). Tables are never cleared between
//! blocks: an entry holds `base + position`, and each block gets a `base` above every entry
//! of the blocks before it, so an old entry reads as empty. A flush of 100 bytes therefore
//! costs what 100 bytes cost, not a 256 KiB memset.
//!
//! An encoder gives up (`None`) as soon as its output would not be smaller than the input;
//! the stream encoder then stores the block uncompressed, as every S2 writer does.

pub(crate) mod best;
pub(crate) mod better;
pub(crate) mod emit;
pub(crate) mod fast;

use emit::Out;

/// How hard the encoder works, as nats-server's compression modes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `s2_uncompressed`: S2 framing (checksums) with every block stored as is.
    Uncompressed,
    /// `s2_fast`.
    Fast,
    /// `s2_better`.
    Better,
    /// `s2_best`.
    Best,
}

/// Blocks shorter than this are stored: a literal tag and the varint would eat any gain.
pub(crate) const MIN_COMPRESS: usize = 16;

/// Table slots (`u32`) each level uses at most; a smaller slice works with a worse ratio.
pub const fn tables_len(level: Level) -> usize {
    match level {
        Level::Uncompressed => 0,
        Level::Fast => 1 << 14,
        Level::Better => (1 << 16) + (1 << 14),
        Level::Best => (1 << 17) + (1 << 16),
    }
}

/// One hash table in the caller's slots.
pub(crate) struct Table<'a> {
    slots: &'a mut [u32],
    pub(crate) bits: u32,
    base: u32,
}

impl<'a> Table<'a> {
    /// Takes the largest power of two of at most `1 << max_bits` slots off the front of
    /// `mem`; `None` if fewer than 256 are left.
    fn take(mem: &mut &'a mut [u32], max_bits: u32, base: u32) -> Option<Table<'a>> {
        let avail = mem.len();
        if avail < 256 {
            return None;
        }
        let bits = (usize::BITS - 1 - avail.leading_zeros()).min(max_bits);
        let (slots, rest) = core::mem::take(mem).split_at_mut(1 << bits);
        *mem = rest;
        Some(Table { slots, bits, base })
    }

    /// The position stored under `h` if it belongs to this block and is before `s`.
    #[inline]
    pub(crate) fn get(&self, h: usize, s: usize) -> Option<usize> {
        let v = self.slots[h];
        let p = v.checked_sub(self.base)? as usize;
        (p < s).then_some(p)
    }

    #[inline]
    pub(crate) fn insert(&mut self, h: usize, p: usize) {
        self.slots[h] = self.base.wrapping_add(p as u32);
    }

    /// The raw slot (for hash chains, which store positions the same way).
    #[inline]
    pub(crate) fn raw(&self, i: usize) -> u32 {
        self.slots[i]
    }

    #[inline]
    pub(crate) fn set_raw(&mut self, i: usize, v: u32) {
        self.slots[i] = v;
    }

    pub(crate) fn base(&self) -> u32 {
        self.base
    }
}

/// Compresses `src` as one block (varint + elements) into `dst`; `None` if the result would
/// not be shorter than `dst` allows (the caller then stores `src` uncompressed). `base` must be
/// above every value already in `mem` (see the module doc) and `base + src.len()` must fit
/// `u32`.
pub(crate) fn encode_block(
    level: Level,
    src: &[u8],
    dst: &mut [u8],
    mut mem: &mut [u32],
    base: u32,
) -> Option<usize> {
    if src.len() < MIN_COMPRESS || level == Level::Uncompressed {
        return None;
    }
    let mut out = Out::new(dst);
    out.varint(u32::try_from(src.len()).ok()?)?;
    match level {
        Level::Uncompressed => return None,
        Level::Fast => {
            let mut t = Table::take(&mut mem, 14, base)?;
            fast::encode(src, &mut out, &mut t)?;
        }
        Level::Better => {
            let mut short = Table::take(&mut mem, 14, base)?;
            match Table::take(&mut mem, 16, base) {
                Some(mut long) => better::encode(src, &mut out, &mut short, &mut long)?,
                // Too little memory for two tables: fast's matcher on the one there is.
                None => fast::encode(src, &mut out, &mut short)?,
            }
        }
        Level::Best => {
            let mut head = Table::take(&mut mem, 16, base)?;
            let mut chain = Table::take(&mut mem, 17, base)?;
            best::encode(src, &mut out, &mut head, &mut chain)?;
        }
    }
    Some(out.pos)
}

/// Multiplicative hash of `x` into `bits` (1..=32) bits.
#[inline]
pub(crate) fn hash(x: u64, bits: u32) -> usize {
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

#[inline]
pub(crate) fn load32(src: &[u8], i: usize) -> u32 {
    let b = &src[i..i + 4];
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[inline]
pub(crate) fn load64(src: &[u8], i: usize) -> u64 {
    let b = &src[i..i + 8];
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// How many bytes from `b` on equal those from `a` on (`a < b`), up to the end of `src`.
#[inline]
pub(crate) fn match_len(src: &[u8], a: usize, b: usize) -> usize {
    let n = src.len();
    let mut k = 0;
    while b + k + 8 <= n {
        let x = load64(src, a + k) ^ load64(src, b + k);
        if x != 0 {
            return k + (x.trailing_zeros() / 8) as usize;
        }
        k += 8;
    }
    while b + k < n && src[a + k] == src[b + k] {
        k += 1;
    }
    k
}
