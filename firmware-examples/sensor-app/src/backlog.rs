//! Where readings wait while the gateway is unreachable.

use twig_core::log::{Config, Error as LogError, Flush, Log, WhenFull};

/// An append-only queue of records that survives what the board's storage survives: the
/// boards put it on flash. Records come back oldest first and are removed only once the
/// gateway has them.
pub trait Backlog {
    /// Appends a record; `false` when there is no room (the reading is dropped, counted by
    /// the caller).
    fn push(&mut self, record: &[u8]) -> bool;
    /// Copies the `i`-th oldest record into `buf`; its length, or `None` past the end.
    fn get(&mut self, i: usize, buf: &mut [u8]) -> Option<usize>;
    /// Removes the `n` oldest records (the gateway acknowledged them).
    fn remove_front(&mut self, n: usize);
    /// Number of records waiting.
    fn len(&self) -> usize;
    /// Whether nothing waits.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A backlog in RAM: `N` records of at most `R` bytes. Lost on reset; for boards without a
/// spare flash region, and until the flash log is wired in.
pub struct RamBacklog<const N: usize, const R: usize> {
    records: heapless::Deque<heapless::Vec<u8, R>, N>,
}

impl<const N: usize, const R: usize> RamBacklog<N, R> {
    /// An empty backlog.
    pub const fn new() -> Self {
        RamBacklog {
            records: heapless::Deque::new(),
        }
    }
}

impl<const N: usize, const R: usize> Default for RamBacklog<N, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const R: usize> Backlog for RamBacklog<N, R> {
    fn push(&mut self, record: &[u8]) -> bool {
        let Ok(v) = heapless::Vec::from_slice(record) else {
            return false;
        };
        self.records.push_back(v).is_ok()
    }

    fn get(&mut self, i: usize, buf: &mut [u8]) -> Option<usize> {
        let r = self.records.iter().nth(i)?;
        let dst = buf.get_mut(..r.len())?;
        dst.copy_from_slice(r);
        Some(r.len())
    }

    fn remove_front(&mut self, n: usize) {
        for _ in 0..n {
            self.records.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.records.len()
    }
}

/// The backlog on flash: twig-core's crash-safe record log. A record stays on flash until the
/// gateway acknowledged it ([`Backlog::remove_front`] moves the log's acknowledged cursor and
/// syncs it), so readings taken offline survive a reset or a power cut. When the region is full
/// of unacknowledged readings, the oldest sector's readings make room (the newest matter most).
pub struct FlashBacklog<F: Flush> {
    log: Log<F>,
}

impl<F: Flush> FlashBacklog<F> {
    /// Opens the log in `start..end` of `flash`, recovering what an earlier run left there.
    pub fn open(flash: F, start: u32, end: u32) -> Result<Self, LogError<F::Error>> {
        let config = Config::new(start, end).when_full(WhenFull::DropOldest);
        Ok(FlashBacklog {
            log: Log::open(flash, config)?,
        })
    }

    /// The first record not acknowledged yet.
    fn oldest(&self) -> u64 {
        let s = self.log.stats();
        s.acked.saturating_add(1).max(s.first)
    }
}

impl<F: Flush> Backlog for FlashBacklog<F> {
    fn push(&mut self, record: &[u8]) -> bool {
        // A raw NOR write is durable when it returns (`Direct`); no sync needed per record.
        self.log.append(record).is_ok()
    }

    fn get(&mut self, i: usize, buf: &mut [u8]) -> Option<usize> {
        let seq = self.oldest().saturating_add(i as u64);
        self.log.read(seq, buf).ok()
    }

    fn remove_front(&mut self, n: usize) {
        let upto = self.oldest().saturating_add(n as u64).saturating_sub(1);
        if self.log.ack(upto).is_ok() {
            let _ = self.log.sync();
        }
    }

    fn len(&self) -> usize {
        let s = self.log.stats();
        usize::try_from(s.last.saturating_add(1).saturating_sub(self.oldest()))
            .unwrap_or(usize::MAX)
    }
}
