//! A crash-safe key-value table on the [`log`](crate::log) (feature `alloc`): the store behind
//! MQTT retained messages, persistent sessions and QoS 2 state.
//!
//! # Design: log-structured, index in RAM
//!
//! Every change is one record appended to the log: `put` (key and value) or `delete` (key).
//! RAM holds an index from each live key to the sequence number of its newest record (not the
//! value: values are read from flash on demand, so retained payloads do not sit in memory).
//! On [`Table::open`] the index is rebuilt by reading every record after the log's
//! acknowledged cursor, the newest record of a key winning.
//!
//! Compaction keeps one sector free: before an append, while at most one sector is free, the
//! records of the oldest sector that are still the newest of their key are appended again
//! (copied forward) and the log's acknowledged cursor moves past that sector, which the log
//! then erases when it needs room. Deletes and superseded values there are simply left
//! behind: nothing older than the oldest sector exists, so a delete has nothing left to hide.
//! [`Table::put`] refuses a value that would take the live data past [`Table::max_live`]
//! (the ring less two sectors, record overhead included), so compaction always finds a sector
//! with something to reclaim.
//!
//! # Crash safety
//!
//! Nothing here adds to the log's guarantees, it uses them: the log keeps the longest valid
//! prefix of its records across a power cut and everything up to the last [`Table::sync`]
//! survives. Replaying a prefix of the records gives the table as it was after a prefix of the
//! caller's operations (copies forward change no value), so after a cut the table is as it
//! was after some operation between the last completed `sync` and the cut: never older than
//! the last sync, never a mix. The log flushes before it erases a sector, so a copy is durable
//! before the original goes. The tests cut power at every flash write and erase of a scripted
//! run and check exactly that against a model.

#[cfg(test)]
mod tests;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::log::{self, Config, Flush, Log, WhenFull};

/// Errors (the log's, plus the table's own limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The log failed.
    Log(log::Error<E>),
    /// The live data would not fit (keep under [`Table::max_live`]).
    Full,
    /// A key over 65535 bytes, or a record over the log's largest.
    TooLarge,
}

impl<E> From<log::Error<E>> for Error<E> {
    fn from(e: log::Error<E>) -> Self {
        Error::Log(e)
    }
}

const PUT: u8 = 1;
const DELETE: u8 = 2;
/// The log's record header.
const RECORD_HEADER: usize = 8;
/// Room per sector the table does not count on: the log's 32-byte sector header and its
/// acknowledgement records.
const SECTOR_RESERVE: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    seq: u64,
    len: usize,
}

/// A key-value table on a log; `F` is the flash (see [`log::Flush`]).
pub struct Table<F: Flush> {
    log: Log<F>,
    index: BTreeMap<Vec<u8>, Slot>,
    live: usize,
    max_live: usize,
    buf: Vec<u8>,
}

impl<F: Flush> Table<F> {
    /// Opens the table in `config`'s region (a fresh, erased region is an empty table).
    pub fn open(flash: F, config: Config) -> Result<Self, Error<F::Error>> {
        let log = Log::open(flash, config.when_full(WhenFull::RefuseNew))?;
        Self::load(log, config)
    }

    /// Erases the region and opens an empty table.
    pub fn format(flash: F, config: Config) -> Result<Self, Error<F::Error>> {
        let log = Log::format(flash, config.when_full(WhenFull::RefuseNew))?;
        Self::load(log, config)
    }

    fn load(log: Log<F>, config: Config) -> Result<Self, Error<F::Error>> {
        let sectors = (config.end.saturating_sub(config.start) as usize) / F::ERASE_SIZE;
        let mut t = Table {
            log,
            index: BTreeMap::new(),
            live: 0,
            max_live: sectors.saturating_sub(2) * F::ERASE_SIZE.saturating_sub(SECTOR_RESERVE),
            buf: Vec::new(),
        };
        let from = t.log.stats().acked + 1;
        let mut cursor = t.log.cursor(from)?;
        loop {
            let rec = match t.log.read_next_vec(&mut cursor, &mut t.buf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                // A sector that decayed: its records are lost, the scan goes on after it.
                Err(log::Error::Corrupted) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some((op, key, _)) = split(t.buf.get(..rec.len).unwrap_or(&[])) else {
                continue;
            };
            let key = key.to_vec();
            match op {
                PUT => t.set(
                    key,
                    Slot {
                        seq: rec.seq,
                        len: rec.len,
                    },
                ),
                _ => t.unset(&key),
            }
        }
        Ok(t)
    }

    /// Bytes of live data the table accepts in all (records as they sit on flash).
    pub fn max_live(&self) -> usize {
        self.max_live
    }

    /// Bytes of live data now.
    pub fn live_bytes(&self) -> usize {
        self.live
    }

    /// Live keys.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.index.contains_key(key)
    }

    /// The length of `key`'s value, without reading it.
    pub fn value_len(&self, key: &[u8]) -> Option<usize> {
        let slot = self.index.get(key)?;
        Some(slot.len.saturating_sub(3 + key.len()))
    }

    /// The live keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.index.keys().map(Vec::as_slice)
    }

    /// The live keys starting with `prefix`, in order.
    pub fn keys_with_prefix<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        self.index
            .range::<[u8], _>((
                core::ops::Bound::Included(prefix),
                core::ops::Bound::Unbounded,
            ))
            .map(|(k, _)| k.as_slice())
            .take_while(move |k| k.starts_with(prefix))
    }

    /// Reads `key`'s value into `out`; false if it has none.
    pub fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool, Error<F::Error>> {
        let Some(slot) = self.index.get(key).copied() else {
            return Ok(false);
        };
        self.buf.resize(slot.len, 0);
        let n = self.log.read(slot.seq, &mut self.buf)?;
        let (_, _, value) = split(self.buf.get(..n).unwrap_or(&[])).ok_or(Error::TooLarge)?;
        out.clear();
        out.extend_from_slice(value);
        Ok(true)
    }

    /// Sets `key` to `value` (durable after the next [`Table::sync`]).
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error<F::Error>> {
        let len = 3 + key.len() + value.len();
        if key.len() > usize::from(u16::MAX) || len > self.log.max_payload() {
            return Err(Error::TooLarge);
        }
        let old = self.index.get(key).map_or(0, |s| cost_in::<F>(s.len));
        if self.live.saturating_sub(old) + cost_in::<F>(len) > self.max_live {
            return Err(Error::Full);
        }
        let seq = self.append(PUT, key, value)?;
        self.set(key.to_vec(), Slot { seq, len });
        Ok(())
    }

    /// Removes `key`; false if it had no value.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, Error<F::Error>> {
        if !self.index.contains_key(key) {
            return Ok(false);
        }
        self.append(DELETE, key, &[])?;
        self.unset(key);
        Ok(true)
    }

    /// Makes every change so far durable.
    pub fn sync(&mut self) -> Result<(), Error<F::Error>> {
        self.log.sync()?;
        Ok(())
    }

    /// The log (for its statistics).
    pub fn log(&self) -> &Log<F> {
        &self.log
    }

    /// The flash.
    pub fn into_inner(self) -> F {
        self.log.into_inner()
    }

    fn set(&mut self, key: Vec<u8>, slot: Slot) {
        if let Some(old) = self.index.insert(key, slot) {
            self.live -= cost_in::<F>(old.len);
        }
        self.live += cost_in::<F>(slot.len);
    }

    fn unset(&mut self, key: &[u8]) {
        if let Some(old) = self.index.remove(key) {
            self.live -= cost_in::<F>(old.len);
        }
    }

    fn append(&mut self, op: u8, key: &[u8], value: &[u8]) -> Result<u64, Error<F::Error>> {
        let klen = u16::try_from(key.len()).map_err(|_| Error::TooLarge)?;
        let len = 3 + key.len() + value.len();
        if len > self.log.max_payload() {
            return Err(Error::TooLarge);
        }
        self.make_room()?;
        let mut rec = Vec::with_capacity(len);
        rec.push(op);
        rec.extend_from_slice(&klen.to_be_bytes());
        rec.extend_from_slice(key);
        rec.extend_from_slice(value);
        Ok(self.log.append(&rec)?.seq)
    }

    /// Compacts oldest sectors until two sectors are free (an acknowledged oldest sector
    /// counts: the log erases it when it needs the room). Each round turns one sector over;
    /// within a ring's worth of rounds one of them held garbage, since the live data is
    /// bounded by the ring less two sectors.
    fn make_room(&mut self) -> Result<(), Error<F::Error>> {
        for _ in 0..=self.log.stats().sectors {
            let s = self.log.stats();
            let mut free = s.sectors.saturating_sub(s.sectors_used);
            if s.acked + 1 >= s.first + s.oldest_sector_records && s.sectors_used > 1 {
                free += 1;
            }
            if free >= 2 || s.last == 0 {
                return Ok(());
            }
            self.compact_oldest()?;
        }
        Ok(())
    }

    /// Copies the live records of the oldest sector forward and acknowledges the sector.
    fn compact_oldest(&mut self) -> Result<(), Error<F::Error>> {
        let s = self.log.stats();
        let end = s.first + s.oldest_sector_records; // exclusive
        let start = (s.acked + 1).max(s.first);
        if start >= end || end > s.last + 1 {
            return Ok(());
        }
        let mut cursor = self.log.cursor(start)?;
        let mut buf = Vec::new();
        while cursor.seq() < end {
            let rec = match self.log.read_next_vec(&mut cursor, &mut buf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(log::Error::Corrupted) => continue,
                Err(e) => return Err(e.into()),
            };
            if rec.seq >= end {
                break;
            }
            let Some((PUT, key, _)) = split(buf.get(..rec.len).unwrap_or(&[])) else {
                continue;
            };
            if self.index.get(key).is_some_and(|slot| slot.seq == rec.seq) {
                // Still the newest value of its key: copy it forward (the log has the room,
                // one sector was free). The copy needs no new room check.
                let seq = self.log.append(buf.get(..rec.len).unwrap_or(&[]))?.seq;
                let key = key.to_vec();
                self.set(key, Slot { seq, len: rec.len });
            }
        }
        self.log.ack(end - 1)?;
        Ok(())
    }
}

/// Flash bytes a record of `len` payload bytes takes: the log's header, rounded up to the
/// flash word.
fn cost_in<F: Flush>(len: usize) -> usize {
    let align = F::READ_SIZE.max(F::WRITE_SIZE).max(1);
    (RECORD_HEADER + len).div_ceil(align) * align
}

/// `(op, key, value)` of a record.
fn split(rec: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&op, rest) = rec.split_first()?;
    let (klen, rest) = rest.split_at_checked(2)?;
    let klen = usize::from(u16::from_be_bytes([*klen.first()?, *klen.get(1)?]));
    let (key, value) = rest.split_at_checked(klen)?;
    Some((op, key, value))
}
