//! twig-core's flash log on the MCU: a sensor's offline backlog written to NOR flash,
//! acknowledged, then the power cut at every single flash operation of a workload, and each
//! time the log recovered on "reboot" with nothing lost that had been appended, in order, and
//! ready for the next append. The flash is a RAM-backed NOR model (erase to 0xFF, writes only
//! clear bits) that fails from a chosen operation on: the fault injector.

use core::fmt::Write as _;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use heapless::String;
use twig_core::log::{Config, Direct, Log};

use crate::check::{Checks, Outcome};
use crate::{ensure, fail};

const SECTOR: usize = 1024;
const SECTORS: usize = 8;
const SIZE: usize = SECTOR * SECTORS;
/// Readings taken while the gateway was unreachable, and how many it acknowledged since.
const OFFLINE: u64 = 120;
const ACKED: u64 = 50;

/// A NOR flash in RAM (the caller's array) with a power switch.
struct RamNor<'m> {
    mem: &'m mut [u8; SIZE],
    /// Writes and erases left before the power fails (`None`: never).
    ops_left: Option<u32>,
    /// Writes and erases performed.
    ops: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlashError {
    PowerCut,
    OutOfBounds,
    NotAligned,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::PowerCut => NorFlashErrorKind::Other,
        }
    }
}

impl<'m> RamNor<'m> {
    fn new(mem: &'m mut [u8; SIZE]) -> Self {
        RamNor {
            mem,
            ops_left: None,
            ops: 0,
        }
    }

    /// Counts an operation; `Some(partial)` when the power fails during it (`partial`: how
    /// much of it still happens, in 1/2), `None` when it completes.
    fn operate(&mut self) -> Result<bool, FlashError> {
        self.ops += 1;
        match self.ops_left {
            Some(0) => Err(FlashError::PowerCut),
            Some(1) => {
                self.ops_left = Some(0);
                Ok(false) // this operation is cut halfway
            }
            Some(n) => {
                self.ops_left = Some(n - 1);
                Ok(true)
            }
            None => Ok(true),
        }
    }

    fn range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, FlashError> {
        let start = offset as usize;
        let end = start.checked_add(len).ok_or(FlashError::OutOfBounds)?;
        if end > SIZE {
            return Err(FlashError::OutOfBounds);
        }
        Ok(start..end)
    }
}

impl ErrorType for RamNor<'_> {
    type Error = FlashError;
}

impl ReadNorFlash for RamNor<'_> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        if self.ops_left == Some(0) {
            return Err(FlashError::PowerCut);
        }
        let r = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.mem[r]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        SIZE
    }
}

impl NorFlash for RamNor<'_> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let r = self.range(from, to.saturating_sub(from) as usize)?;
        if r.start % SECTOR != 0 || r.end % SECTOR != 0 {
            return Err(FlashError::NotAligned);
        }
        let whole = self.operate()?;
        // A cut erase leaves the first half of the range erased and the rest as it was.
        let end = if whole {
            r.end
        } else {
            r.start + (r.end - r.start) / 2
        };
        self.mem[r.start..end].fill(0xff);
        if whole {
            Ok(())
        } else {
            Err(FlashError::PowerCut)
        }
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let r = self.range(offset, bytes.len())?;
        if r.start % 4 != 0 || r.len() % 4 != 0 {
            return Err(FlashError::NotAligned);
        }
        let whole = self.operate()?;
        // A cut write programs its first half of words only. NOR programming clears bits.
        let n = if whole { r.len() } else { r.len() / 8 * 4 };
        for (dst, src) in self.mem[r.start..r.start + n].iter_mut().zip(bytes) {
            *dst &= *src;
        }
        if whole {
            Ok(())
        } else {
            Err(FlashError::PowerCut)
        }
    }
}

/// `r`'s value, or `Err(())` after printing what failed.
fn step<T, E: core::fmt::Debug>(r: Result<T, E>, what: &str) -> Result<T, ()> {
    r.map_err(|e| cortex_m_semihosting::hprintln!("  flash log: {} failed: {:?}", what, e))
}

fn config() -> Config {
    Config::new(0, SIZE as u32)
}

/// The record for reading `seq`: what the sensor would have stored.
fn reading(seq: u64) -> String<32> {
    let mut s = String::new();
    let _ = write!(s, "{{\"seq\":{seq},\"t\":{}}}", 2000 + seq % 97);
    s
}

pub fn run() -> Outcome {
    let mut c = Checks::default();
    // Offline: the backlog fills; back online: the gateway acknowledges the first records.
    // Two flash images on the stack: the state before the workload, and the one it runs on.
    let mut base = [0xffu8; SIZE];
    let mut work = [0xffu8; SIZE];
    let mut log = match Log::format(Direct(RamNor::new(&mut base)), config()) {
        Ok(log) => log,
        Err(e) => fail!("format: {:?}", e),
    };
    for seq in 1..=OFFLINE {
        let appended = log.append(reading(seq).as_bytes());
        ensure!(
            c,
            appended.map(|a| a.seq) == Ok(seq),
            "append {}: {:?}",
            seq,
            appended
        );
    }
    let mut cursor = step(log.cursor(1), "cursor")?;
    let mut buf = [0u8; 64];
    for seq in 1..=ACKED {
        let got = step(log.read_next(&mut cursor, &mut buf), "read")?;
        let ok = got.is_some_and(|r| r.seq == seq && &buf[..r.len] == reading(seq).as_bytes());
        ensure!(c, ok, "read back {}: {:?}", seq, got);
    }
    step(log.ack(ACKED), "ack")?;
    step(log.sync(), "sync")?;
    // The base image is complete; the log lets go of it.
    let _ = log.into_inner();

    // The workload a cut interrupts: more readings, an acknowledgement, a sync.
    fn workload(
        log: &mut Log<Direct<RamNor<'_>>>,
        appended: &mut u64,
    ) -> Result<(), twig_core::log::Error<FlashError>> {
        for _ in 0..50 {
            let next = log.stats().last + 1;
            log.append(reading(next).as_bytes())?;
            *appended = next;
        }
        log.ack(ACKED + 100)?;
        log.sync()?;
        for _ in 0..110 {
            let next = log.stats().last + 1;
            log.append(reading(next).as_bytes())?;
            *appended = next;
        }
        Ok(())
    }
    // Its operations, counted on a run without a cut.
    work.copy_from_slice(&base);
    let mut full = step(Log::open(Direct(RamNor::new(&mut work)), config()), "open")?;
    let mut last = 0;
    step(workload(&mut full, &mut last), "uncut workload")?;
    let done = full.stats();
    let total_ops = full.into_inner().0.ops;

    for cut in 0..=total_ops {
        let mut appended = OFFLINE;
        work.copy_from_slice(&base);
        let mut log = step(
            Log::open(Direct(RamNor::new(&mut work)), config()),
            "open before the cut",
        )?;
        // The power fails at the workload's operation number `cut` (counting from 0).
        log.flash().0.ops_left = Some(cut);
        let _ = workload(&mut log, &mut appended);
        // Reboot: the power is back, the log recovers from what is on flash.
        let mut flash = log.into_inner().0;
        flash.ops_left = None;
        let mut log = match Log::open(Direct(flash), config()) {
            Ok(log) => log,
            Err(e) => fail!("cut at op {}: open failed: {:?}", cut, e),
        };
        let s = log.stats();
        ensure!(
            c,
            s.last >= appended,
            "cut {}: last {} < appended {}",
            cut,
            s.last,
            appended
        );
        ensure!(
            c,
            s.acked >= ACKED,
            "cut {}: acked {} went back",
            cut,
            s.acked
        );
        // Every unacknowledged record is there, intact and in order.
        let mut cursor = step(log.cursor(s.acked + 1), "cursor after recovery")?;
        let mut want = s.acked + 1;
        while let Some(r) = step(log.read_next(&mut cursor, &mut buf), "read after recovery")? {
            let intact = r.seq == want && &buf[..r.len] == reading(want).as_bytes();
            ensure!(c, intact, "cut {}: record {} reads {:?}", cut, want, r);
            want += 1;
        }
        ensure!(
            c,
            want == s.last + 1,
            "cut {}: read up to {}, last {}",
            cut,
            want - 1,
            s.last
        );
        // And the log takes the next reading.
        let next = log.append(reading(s.last + 1).as_bytes());
        ensure!(
            c,
            next.map(|a| a.seq) == Ok(s.last + 1),
            "cut {}: append after recovery",
            cut
        );
    }
    cortex_m_semihosting::hprintln!(
        "     flash log: {} x {} B sectors, records {}..={} after the workload ({} sectors used); \
         power cut at each of its {} flash operations",
        SECTORS,
        SECTOR,
        done.first,
        done.last,
        done.sectors_used,
        total_ops + 1
    );
    Ok(c.count)
}
