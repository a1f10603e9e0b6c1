//! Where readings wait while the gateway is unreachable.

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
