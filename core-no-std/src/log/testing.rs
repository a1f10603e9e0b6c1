//! Fault injection for the log (feature `mock-flash`, and always in tests): the NOR flash mock
//! (`mock.rs`, re-exported here) and a workload runner that checks the log against a plain model
//! after every recovery. The fuzz target and the tests share it.
//!
//! This is test support: it allocates, and it reports violations as `String`s.

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

pub use super::mock::{Counts, Cut, MockError, MockFlash, Rng};
use super::{Config, Error, Log, WhenFull};

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
