//! Fault injection for the log (feature `mock-flash`, and always in tests): a NOR flash mock
//! that enforces NOR rules and cuts power anywhere, and a workload runner that checks the log
//! against a plain model after every recovery. The fuzz target and the tests share it.
//!
//! This is test support: it allocates, and it reports violations as `String`s.

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use super::{Config, Error, Flush, Log, WhenFull};

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

/// The payload the workload appends as sequence number `seq` in epoch `salt`: its length and
/// bytes depend on both, so a record from another epoch or position never matches.
pub fn payload(seq: u64, salt: u32, max_len: usize, out: &mut Vec<u8>) {
    let mut r = Rng(seq.wrapping_mul(0x100_0000_01B3) ^ u64::from(salt) << 40);
    let len = r.below(max_len as u64 + 1) as usize;
    out.clear();
    out.extend((0..len).map(|_| r.next_u64() as u8));
}

/// One workload step, relative to the log's state when it runs (so a script stays meaningful
/// after a recovery changed the state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Append the next payload.
    Append,
    /// Sync.
    Sync,
    /// Acknowledge `frac`/256 of the unacknowledged records.
    Ack(u8),
    /// Read the record `pick`/256 of the way through the log, by sequence number.
    Read(u8),
    /// Walk a cursor from `pick`/256 of the way through the log over up to `n` records.
    Scan(u8, u8),
    /// Drop the log and open it again (a clean restart).
    Reopen,
}

impl Step {
    /// A step from a byte of entropy (appends weighted up so the ring wraps).
    pub fn from_entropy(r: &mut Rng) -> Step {
        let x = r.next_u64();
        let (a, b) = ((x >> 8) as u8, (x >> 16) as u8);
        match x % 32 {
            0..=16 => Step::Append,
            17..=20 => Step::Sync,
            21..=24 => Step::Ack(a),
            25..=27 => Step::Read(a),
            28..=30 => Step::Scan(a, b % 16),
            _ => Step::Reopen,
        }
    }
}

/// A seeded script of `n` steps.
pub fn script(seed: u64, n: usize) -> Vec<Step> {
    let mut r = Rng(seed);
    (0..n).map(|_| Step::from_entropy(&mut r)).collect()
}

/// The plain model: what must be true of the log.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Salt of every sequence number ever appended (index `seq - 1`).
    pub salts: Vec<u32>,
    /// Highest seq the log reported appended.
    pub last: u64,
    /// Highest seq known durable.
    pub synced: u64,
    /// Highest seq the caller acknowledged.
    pub acked: u64,
    /// Acked cursor known durable.
    pub durable_acked: u64,
    /// Records below this may be gone (acknowledged and reclaimed, or reported dropped).
    pub may_lose_below: u64,
    /// Current epoch (one per recovery): salts new payloads.
    pub epoch: u32,
}

/// The outcome of one workload run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    /// Steps completed.
    pub steps: usize,
    /// Recoveries after a power cut.
    pub recoveries: usize,
    /// Writes and erases the run performed (to size exhaustive cut loops).
    pub flash_ops: u64,
    /// Appends refused because the log was full.
    pub refused: u64,
}

/// Runs `steps` against a log on `flash`, checking every result against the model. When the
/// flash reports a power cut, powers it back on, recovers, checks the recovered log against the
/// model, and carries on with the next step. `max_len` bounds payloads.
pub fn run<const R: usize, const W: usize, const E: usize>(
    flash: MockFlash<R, W, E>,
    config: Config,
    steps: &[Step],
    max_len: usize,
) -> Result<(Outcome, MockFlash<R, W, E>), String> {
    run_with_recuts(flash, config, steps, max_len, 0, 0)
}

/// [`run`], arming a new cut within `recut` operations after each recovery (0: none), picked
/// by `seed`: crashes during the recovery's first writes, again and again.
pub fn run_with_recuts<const R: usize, const W: usize, const E: usize>(
    flash: MockFlash<R, W, E>,
    config: Config,
    steps: &[Step],
    max_len: usize,
    recut: u64,
    seed: u64,
) -> Result<(Outcome, MockFlash<R, W, E>), String> {
    let mut cuts = Rng(seed);
    let mut m = Model {
        may_lose_below: 1,
        ..Model::default()
    };
    let mut log = Log::open(flash, config).map_err(|e| format!("open: {e:?}"))?;
    let mut out = Outcome::default();
    let mut buf = vec![0u8; max_len];
    let mut want = Vec::new();
    for (i, &step) in steps.iter().enumerate() {
        let before = log.stats();
        let res = do_step(
            &mut log, &mut m, step, max_len, &mut buf, &mut want, &mut out,
        )
        .map_err(|e| format!("step {i} {step:?}: {e}"))?;
        // A clean restart syncs first; that sync may meet the power cut.
        let res = match res {
            Some(Error::Config) => match log.sync() {
                Ok(()) => Some(Error::Config),
                Err(e @ Error::Flash(MockError::PowerCut)) => Some(e),
                Err(e) => return Err(format!("step {i}: sync before reopen: {e:?}")),
            },
            other => other,
        };
        match res {
            None => {}
            Some(Error::Config) => {
                // A clean restart: drop the log, open it again; nothing may change.
                m.synced = m.last;
                m.durable_acked = log.stats().durable_acked;
                let s0 = log.stats();
                log = Log::open(log.into_inner(), config)
                    .map_err(|e| format!("step {i}: reopen: {e:?}"))?;
                let s = log.stats();
                if s.last != s0.last || s.acked != s0.durable_acked || s.first != s0.first {
                    return Err(format!(
                        "step {i}: clean reopen changed the log: {s0:?} -> {s:?}"
                    ));
                }
                m.acked = s.acked;
            }
            Some(cut) => {
                if !log.flash().is_off() {
                    return Err(format!(
                        "step {i} {step:?}: error {cut:?} without a power cut"
                    ));
                }
                // The append in flight may have dropped the oldest sector.
                if config.when_full == WhenFull::DropOldest && step == Step::Append {
                    m.may_lose_below = m
                        .may_lose_below
                        .max(before.first + before.oldest_sector_records);
                }
                let mut max_last = if step == Step::Append {
                    m.last + 1
                } else {
                    m.last
                };
                // Recover; the check appends once, and a re-armed cut may strike there again.
                for round in 0.. {
                    let mut flash = log.into_inner();
                    flash.power_on();
                    if recut > 0 && round < 8 {
                        flash.cut_power(Cut::AtOp {
                            n: cuts.below(recut),
                            keep_seed: cuts.next_u64(),
                        });
                    }
                    log = Log::open(flash, config)
                        .map_err(|e| format!("step {i}: reopen after cut: {e:?}"))?;
                    let again = recovered(&mut log, &mut m, max_last, max_len, &mut buf, &mut want)
                        .map_err(|e| format!("step {i} {step:?}: after cut {round}: {e}"))?;
                    if !again {
                        break;
                    }
                    max_last = m.last + 1;
                }
                out.recoveries += 1;
            }
        }
        out.steps += 1;
    }
    let mut flash = log.into_inner();
    out.flash_ops = flash.counts().writes + flash.counts().erases;
    flash.power_on();
    // A final clean reopen must find the same log.
    let mut log = Log::open(flash, config).map_err(|e| format!("final open: {e:?}"))?;
    check_all(&mut log, &m, max_len, &mut buf, &mut want).map_err(|e| format!("final: {e}"))?;
    Ok((out, log.into_inner()))
}

type L<const R: usize, const W: usize, const E: usize> = Log<MockFlash<R, W, E>>;

/// One step. `Ok(Some(Error::Flash(PowerCut)))`: the flash lost power (the caller recovers);
/// `Ok(Some(Error::Config))`: the step is a clean restart (the caller reopens).
fn do_step<const R: usize, const W: usize, const E: usize>(
    log: &mut L<R, W, E>,
    m: &mut Model,
    step: Step,
    max_len: usize,
    buf: &mut [u8],
    want: &mut Vec<u8>,
    out: &mut Outcome,
) -> Result<Option<Error<MockError>>, String> {
    let st = log.stats();
    match step {
        Step::Append => {
            let seq = m.last + 1;
            let salt = m.epoch;
            if m.salts.len() < seq as usize {
                m.salts.push(salt);
            } else {
                m.salts[seq as usize - 1] = salt;
            }
            payload(seq, salt, max_len, want);
            match log.append(want) {
                Ok(a) => {
                    if a.seq != seq {
                        return Err(format!("append got seq {} want {seq}", a.seq));
                    }
                    m.last = seq;
                    if a.dropped > 0 {
                        m.may_lose_below =
                            m.may_lose_below.max(st.first + st.oldest_sector_records);
                    }
                    // A raw NOR flash needs no flush: the mock counts it as synced only at sync.
                }
                Err(Error::Full) => {
                    out.refused += 1;
                    if log.stats().last != m.last {
                        return Err("a refused append changed the log".into());
                    }
                }
                Err(e @ Error::Flash(MockError::PowerCut)) => return Ok(Some(e)),
                Err(e) => return Err(format!("append: {e:?}")),
            }
        }
        Step::Sync => match log.sync() {
            Ok(()) => {
                m.synced = m.last;
                m.durable_acked = log.stats().durable_acked;
                if log.stats().synced != m.last {
                    return Err(format!(
                        "sync: synced {} want {}",
                        log.stats().synced,
                        m.last
                    ));
                }
            }
            Err(e @ Error::Flash(MockError::PowerCut)) => return Ok(Some(e)),
            Err(e) => return Err(format!("sync: {e:?}")),
        },
        Step::Ack(frac) => {
            let from = m.acked.max(st.first.saturating_sub(1));
            let seq = from + (m.last - from) * u64::from(frac) / 255;
            if seq > 0 {
                log.ack(seq).map_err(|e| format!("ack {seq}: {e:?}"))?;
                m.acked = m.acked.max(seq);
            }
            if log.stats().acked != m.acked {
                return Err(format!("acked {} want {}", log.stats().acked, m.acked));
            }
        }
        Step::Read(pick) => {
            if st.last >= st.first {
                let seq = st.first + (st.last - st.first) * u64::from(pick) / 255;
                match log.read(seq, buf) {
                    Ok(n) => {
                        payload(seq, salt_of(m, seq)?, max_len, want);
                        if &buf[..n] != want.as_slice() {
                            return Err(format!("read {seq}: wrong payload"));
                        }
                    }
                    Err(e @ Error::Flash(MockError::PowerCut)) => return Ok(Some(e)),
                    Err(e) => return Err(format!("read {seq}: {e:?}")),
                }
            }
            if log.read(st.last + 1, buf) != Err(Error::NotFound) {
                return Err("read past the end found something".into());
            }
        }
        Step::Scan(pick, n) => {
            let from = st.first + (st.last + 1 - st.first) * u64::from(pick) / 255;
            let mut c = log
                .cursor(from)
                .map_err(|e| format!("cursor {from}: {e:?}"))?;
            let mut expect = from;
            for _ in 0..n {
                match log.read_next(&mut c, buf) {
                    Ok(Some(r)) => {
                        if r.seq != expect {
                            return Err(format!("scan from {from}: got {} want {expect}", r.seq));
                        }
                        payload(r.seq, salt_of(m, r.seq)?, max_len, want);
                        if &buf[..r.len] != want.as_slice() {
                            return Err(format!("scan: wrong payload at {}", r.seq));
                        }
                        expect += 1;
                    }
                    Ok(None) => {
                        if expect != st.last + 1 {
                            return Err(format!("scan ended at {expect}, last {}", st.last));
                        }
                        break;
                    }
                    Err(e) => return Err(format!("scan at {expect}: {e:?}")),
                }
            }
        }
        Step::Reopen => return Ok(Some(Error::Config)),
    }
    // Invariants after every step.
    let s = log.stats();
    if s.last != m.last || s.acked != m.acked || s.durable_acked > s.acked || s.synced > s.last {
        return Err(format!(
            "stats {s:?} vs model last {} acked {}",
            m.last, m.acked
        ));
    }
    if s.first > m.acked.max(m.may_lose_below.saturating_sub(1)) + 1 {
        return Err(format!(
            "lost records: first {} but acked {} may_lose_below {}",
            s.first, m.acked, m.may_lose_below
        ));
    }
    Ok(None)
}

fn salt_of(m: &Model, seq: u64) -> Result<u32, String> {
    m.salts
        .get((seq as usize).wrapping_sub(1))
        .copied()
        .ok_or_else(|| format!("seq {seq} never appended"))
}

/// Checks a log just recovered from a power cut against the model and adopts it.
/// `max_last`: the highest seq that may have reached flash (the append in flight included).
/// `Ok(true)`: the power went again during the check's own append.
fn recovered<const R: usize, const W: usize, const E: usize>(
    log: &mut L<R, W, E>,
    m: &mut Model,
    max_last: u64,
    max_len: usize,
    buf: &mut [u8],
    want: &mut Vec<u8>,
) -> Result<bool, String> {
    let s = log.stats();
    if s.last < m.synced {
        return Err(format!(
            "synced records lost: last {} < synced {}",
            s.last, m.synced
        ));
    }
    if s.last > max_last {
        return Err(format!(
            "phantom records: last {} > appended {max_last}",
            s.last
        ));
    }
    if s.acked > m.acked {
        return Err(format!(
            "acked cursor ahead: {} > acked {}",
            s.acked, m.acked
        ));
    }
    if s.acked < m.durable_acked {
        return Err(format!(
            "durable ack lost: {} < {}",
            s.acked, m.durable_acked
        ));
    }
    // Acknowledged records may have been reclaimed before the ack itself reached flash.
    m.may_lose_below = m.may_lose_below.max(m.acked + 1);
    m.last = s.last;
    m.acked = s.acked;
    m.synced = s.last;
    m.durable_acked = s.acked;
    check_all(log, m, max_len, buf, want)?;
    m.epoch += 1;
    // It accepts appends again (unless it is full of unacknowledged records and refuses).
    let seq = m.last + 1;
    if m.salts.len() < seq as usize {
        m.salts.push(m.epoch);
    } else {
        m.salts[seq as usize - 1] = m.epoch;
    }
    payload(seq, m.epoch, max_len, want);
    let before = log.stats();
    match log.append(want) {
        Ok(a) if a.seq == seq => {
            m.last = seq;
            if a.dropped > 0 {
                m.may_lose_below = m
                    .may_lose_below
                    .max(before.first + before.oldest_sector_records);
            }
            let n = log
                .read(seq, buf)
                .map_err(|e| format!("read back {seq}: {e:?}"))?;
            if buf.get(..n) != Some(want.as_slice()) {
                return Err(format!("read back {seq}: wrong payload"));
            }
        }
        Ok(a) => {
            return Err(format!(
                "append after recovery got seq {} want {seq}",
                a.seq
            ));
        }
        Err(Error::Full) if log.when_full == WhenFull::RefuseNew => {}
        // Another armed cut may strike here: the caller recovers again.
        Err(Error::Flash(MockError::PowerCut)) => {
            if log.when_full == WhenFull::DropOldest {
                m.may_lose_below = m
                    .may_lose_below
                    .max(before.first + before.oldest_sector_records);
            }
            return Ok(true);
        }
        Err(e) => return Err(format!("append after recovery: {e:?}")),
    }
    Ok(false)
}

/// Reads the whole log with a cursor and by sequence number and compares it with the model.
fn check_all<const R: usize, const W: usize, const E: usize>(
    log: &mut L<R, W, E>,
    m: &Model,
    max_len: usize,
    buf: &mut [u8],
    want: &mut Vec<u8>,
) -> Result<(), String> {
    let s = log.stats();
    if s.last != m.last {
        return Err(format!("last {} want {}", s.last, m.last));
    }
    if s.first > m.acked.max(m.may_lose_below.saturating_sub(1)) + 1 {
        return Err(format!(
            "records lost: first {} but acked {} may_lose_below {}",
            s.first, m.acked, m.may_lose_below
        ));
    }
    let mut c = log.cursor(0).map_err(|e| format!("cursor: {e:?}"))?;
    let mut expect = s.first;
    for _ in 0..=(s.last + 1 - s.first) {
        match log.read_next(&mut c, buf) {
            Ok(Some(r)) => {
                if r.seq != expect {
                    return Err(format!("cursor: seq {} want {expect}", r.seq));
                }
                payload(r.seq, salt_of(m, r.seq)?, max_len, want);
                if &buf[..r.len] != want.as_slice() {
                    return Err(format!("record {} is not what was appended", r.seq));
                }
                expect += 1;
            }
            Ok(None) => break,
            Err(e) => return Err(format!("cursor at {expect}: {e:?}")),
        }
    }
    if expect != s.last + 1 {
        return Err(format!("cursor stopped at {expect}, last {}", s.last));
    }
    Ok(())
}
