//! The fault injector: an in-memory NOR flash that enforces NOR rules and cuts power after any
//! number of operations or bytes (feature `mock-flash`, and always in tests). Test support: it
//! allocates.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use super::Flush;

/// A small deterministic PRNG (splitmix64): tests and the mock need no `rand`.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (0 if `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// Mock flash errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MockError {
    /// Offset or length not a multiple of the read/write/erase size.
    NotAligned,
    /// Outside the flash.
    OutOfBounds,
    /// A word written twice without an erase between (NOR without multiwrite forbids it).
    WriteTwice(u32),
    /// A write would turn a 0 bit into 1.
    ZeroToOne(u32),
    /// The power is off (a cut happened): nothing works until [`MockFlash::power_on`].
    PowerCut,
}

impl NorFlashError for MockError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            MockError::NotAligned => NorFlashErrorKind::NotAligned,
            MockError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// Flash operation counts (cost is a test).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `read` calls.
    pub reads: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// `write` calls.
    pub writes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// `erase` calls (each of one sector, for the log).
    pub erases: u64,
    /// `flush` calls.
    pub flushes: u64,
}

impl core::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            reads: self.reads - o.reads,
            read_bytes: self.read_bytes - o.read_bytes,
            writes: self.writes - o.writes,
            write_bytes: self.write_bytes - o.write_bytes,
            erases: self.erases - o.erases,
            flushes: self.flushes - o.flushes,
        }
    }
}

/// When the power goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The `n`-th write or erase from now (0-based) is cut short: `keep_seed` picks how much of
    /// it happens (from nothing to everything but the return).
    AtOp {
        /// Which operation.
        n: u64,
        /// Picks the bytes kept and the undefined bits.
        keep_seed: u64,
    },
    /// After this many more bytes written or erased.
    AfterBytes(u64),
}

/// An in-memory NOR flash: `R`/`W`/`E` are `READ_SIZE`, `WRITE_SIZE` and `ERASE_SIZE`.
///
/// Rules enforced (each an error, never a silent success): alignment and bounds; a word is
/// written at most once between erases; a write never turns a 0 bit into 1. Power cuts: a cut
/// write leaves the words before the cut written, the word at the cut undefined (a random
/// subset of its 0 bits programmed; if that subset is empty the word reads, and counts as,
/// erased) and the rest untouched; a cut erase leaves the sector mixed
/// (bytes erased, untouched, or with a random subset of their bits back at 1), every word of it
/// unwritable until erased again.
///
/// With `cached = true` it behaves like a file in a page cache: at a cut, every 16-byte block
/// changed since the last `flush` independently keeps its new or its old contents.
#[derive(Clone, Debug)]
pub struct MockFlash<const R: usize, const W: usize, const E: usize> {
    mem: Vec<u8>,
    /// Per word: may be written (erased and not yet written).
    writable: Vec<bool>,
    cached: bool,
    durable_mem: Vec<u8>,
    durable_writable: Vec<bool>,
    /// Per 16-byte block: changed since the last flush.
    dirty: Vec<bool>,
    counts: Counts,
    cut: Option<Cut>,
    off: bool,
    rng: Rng,
}

const BLOCK: usize = 16;

impl<const R: usize, const W: usize, const E: usize> MockFlash<R, W, E> {
    /// A factory-fresh flash of `sectors` erased sectors.
    pub fn new(sectors: usize) -> Self {
        let size = sectors * E;
        MockFlash {
            mem: vec![0xFF; size],
            writable: vec![true; size / W],
            cached: false,
            durable_mem: Vec::new(),
            durable_writable: Vec::new(),
            dirty: Vec::new(),
            counts: Counts::default(),
            cut: None,
            off: false,
            rng: Rng(0x5EED),
        }
    }

    /// The same, behaving like a file in a page cache (see the type's docs).
    pub fn new_cached(sectors: usize) -> Self {
        let mut f = Self::new(sectors);
        f.cached = true;
        f.durable_mem = f.mem.clone();
        f.durable_writable = f.writable.clone();
        f.dirty = vec![false; f.mem.len().div_ceil(BLOCK)];
        f
    }

    /// Operation counts so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Arms a power cut.
    pub fn cut_power(&mut self, cut: Cut) {
        self.cut = Some(cut);
    }

    /// Whether a cut happened and the power is still off.
    pub fn is_off(&self) -> bool {
        self.off
    }

    /// Restores power (and disarms any cut not yet reached).
    pub fn power_on(&mut self) {
        self.off = false;
        self.cut = None;
    }

    /// The raw contents.
    pub fn bytes(&self) -> &[u8] {
        &self.mem
    }

    /// Flips bits at `addr` behind the log's back (bit rot).
    pub fn corrupt(&mut self, addr: usize, mask: u8) {
        if let Some(b) = self.mem.get_mut(addr) {
            *b ^= mask;
        }
    }

    fn touch(&mut self, from: usize, to: usize) {
        if self.cached {
            for b in from / BLOCK..to.div_ceil(BLOCK) {
                if let Some(d) = self.dirty.get_mut(b) {
                    *d = true;
                }
            }
        }
    }

    /// Goes dark: in cache mode, each dirty block keeps old or new contents at random.
    fn go_dark(&mut self) {
        self.off = true;
        self.cut = None;
        if self.cached {
            for b in 0..self.dirty.len() {
                if self.dirty[b] && self.rng.next_u64() & 1 == 0 {
                    let (s, e) = (b * BLOCK, ((b + 1) * BLOCK).min(self.mem.len()));
                    self.mem[s..e].copy_from_slice(&self.durable_mem[s..e]);
                    for w in s / W..e.div_ceil(W) {
                        self.writable[w] = self.durable_writable[w];
                    }
                }
            }
            self.durable_mem.clone_from(&self.mem);
            self.durable_writable.clone_from(&self.writable);
            self.dirty.iter_mut().for_each(|d| *d = false);
        }
    }

    /// How many bytes of an operation of `len` bytes happen before the power goes, if it goes.
    fn budget(&mut self, len: usize) -> Option<usize> {
        match self.cut {
            Some(Cut::AtOp { n: 0, keep_seed }) => {
                self.rng = Rng(keep_seed);
                Some(self.rng.below(len as u64 + 1) as usize)
            }
            Some(Cut::AtOp { n, keep_seed }) => {
                self.cut = Some(Cut::AtOp {
                    n: n - 1,
                    keep_seed,
                });
                None
            }
            Some(Cut::AfterBytes(b)) if (b as usize) < len => Some(b as usize),
            Some(Cut::AfterBytes(b)) => {
                self.cut = Some(Cut::AfterBytes(b - len as u64));
                None
            }
            None => None,
        }
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<usize, MockError> {
        let o = offset as usize;
        if !o.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(MockError::NotAligned);
        }
        if o.checked_add(len).is_none_or(|e| e > self.mem.len()) {
            return Err(MockError::OutOfBounds);
        }
        Ok(o)
    }
}

impl<const R: usize, const W: usize, const E: usize> ErrorType for MockFlash<R, W, E> {
    type Error = MockError;
}

impl<const R: usize, const W: usize, const E: usize> ReadNorFlash for MockFlash<R, W, E> {
    const READ_SIZE: usize = R;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
        if self.off {
            return Err(MockError::PowerCut);
        }
        let o = self.check(offset, bytes.len(), R)?;
        bytes.copy_from_slice(&self.mem[o..o + bytes.len()]);
        self.counts.reads += 1;
        self.counts.read_bytes += bytes.len() as u64;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const R: usize, const W: usize, const E: usize> NorFlash for MockFlash<R, W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
        if self.off {
            return Err(MockError::PowerCut);
        }
        if to < from {
            return Err(MockError::OutOfBounds);
        }
        let o = self.check(from, (to - from) as usize, E)?;
        let len = (to - from) as usize;
        self.counts.erases += 1;
        self.touch(o, o + len);
        if let Some(keep) = self.budget(len) {
            // The contents are undefined; four shapes, picked at random: the erase had not
            // started, it went front to back, back to front, or bytes are anywhere between old
            // and 0xFF.
            let shape = self.rng.next_u64() % 4;
            for i in 0..len {
                let r = self.rng.next_u64();
                let erased = match shape {
                    0 => false,
                    1 => i < keep,
                    2 => i >= len - keep,
                    _ => (r % (len as u64 + 1)) < keep as u64,
                };
                let b = &mut self.mem[o + i];
                *b = if erased {
                    0xFF
                } else if shape < 3 || r & 0x100 != 0 {
                    *b
                } else {
                    *b | (r >> 16) as u8
                };
            }
            for w in o / W..(o + len) / W {
                self.writable[w] = false;
            }
            self.go_dark();
            return Err(MockError::PowerCut);
        }
        self.mem[o..o + len].fill(0xFF);
        self.writable[o / W..(o + len) / W].fill(true);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
        if self.off {
            return Err(MockError::PowerCut);
        }
        let o = self.check(offset, bytes.len(), W)?;
        for (k, chunk) in bytes.chunks(W).enumerate() {
            let at = o + k * W;
            if !self.writable[at / W] {
                return Err(MockError::WriteTwice(at as u32));
            }
            for (j, &b) in chunk.iter().enumerate() {
                if b & !self.mem[at + j] != 0 {
                    return Err(MockError::ZeroToOne((at + j) as u32));
                }
            }
        }
        self.counts.writes += 1;
        self.counts.write_bytes += bytes.len() as u64;
        self.touch(o, o + bytes.len());
        let keep = self.budget(bytes.len());
        let done = keep.unwrap_or(bytes.len());
        let whole = done / W * W;
        for (i, &b) in bytes[..whole].iter().enumerate() {
            self.mem[o + i] &= b;
        }
        for w in o / W..(o + whole) / W {
            self.writable[w] = false;
        }
        if keep.is_some() {
            // The word being programmed when the power went: a random subset of its 0 bits.
            if whole < bytes.len() {
                for (i, &b) in bytes.iter().enumerate().skip(whole).take(W) {
                    let r = self.rng.next_u64() as u8;
                    self.mem[o + i] &= b | r;
                }
                // A program cut off before any bit changed cannot be told from no program at
                // all: like littlefs and sequential-storage, treat a word that reads erased as
                // erased (writable). Any changed bit makes it written.
                let word = &self.mem[o + whole..o + whole + W];
                self.writable[(o + whole) / W] = word.iter().all(|&b| b == 0xFF);
            }
            self.go_dark();
            return Err(MockError::PowerCut);
        }
        Ok(())
    }
}

impl<const R: usize, const W: usize, const E: usize> Flush for MockFlash<R, W, E> {
    fn flush(&mut self) -> Result<(), MockError> {
        if self.off {
            return Err(MockError::PowerCut);
        }
        self.counts.flushes += 1;
        if self.cached {
            self.durable_mem.clone_from(&self.mem);
            self.durable_writable.clone_from(&self.writable);
            self.dirty.iter_mut().for_each(|d| *d = false);
        }
        Ok(())
    }
}
