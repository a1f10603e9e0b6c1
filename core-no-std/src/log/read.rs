//! Reading without removing: cursors the caller owns, seeks by sequence number.

use super::format::{self, Kind, Slot};
use super::{Error, Flush, Log};

/// A position in the log: the next record [`Log::read_next`] returns. 32 bytes, `Copy`, owned
/// by the caller; any number of cursors can read one log. A cursor whose sector was reclaimed or
/// dropped moves on to the oldest record still there (the returned [`Record::seq`] shows the
/// jump); a cursor at the end waits there for new records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    seq: u64,
    /// Counter of the sector the cursor is in (0: not placed yet).
    counter: u64,
    /// First sequence number after this sector (0: not known yet, or the sector is the newest).
    end: u64,
    sector: u32,
    off: u32,
}

impl Cursor {
    /// The sequence number of the record the cursor reads next (if it is still on flash).
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// One record read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// Its length: the payload is `buf[..len]`.
    pub len: usize,
}

impl<F: Flush> Log<F> {
    /// A cursor at `seq`: at the oldest record if `seq` is older, at the end if it is newer.
    /// Costs a binary search over sector headers and a walk over the record headers of one
    /// sector.
    pub fn cursor(&mut self, seq: u64) -> Result<Cursor, Error<F::Error>> {
        let geo = self.geo;
        let seq = seq.max(self.first()).min(self.next_seq);
        if self.len == 0 {
            return Ok(Cursor {
                seq,
                counter: 0,
                end: 0,
                sector: 0,
                off: 0,
            });
        }
        // Chain position p is sector tail + p with counter tail_counter + p.
        let last = self.len - 1;
        let tail = geo.back(self.head, last);
        let mut pos = last;
        if self.head_base > seq {
            // Find the last position whose base is <= seq: base(lo) <= seq < base(hi).
            let (mut lo, mut hi) = (0, last);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let i = (tail + mid) % geo.sectors;
                let h = format::read_sector_header(&mut self.flash, &geo, i)?
                    .ok_or(Error::Corrupted)?;
                if h.base <= seq {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            pos = lo;
        }
        let sector = (tail + pos) % geo.sectors;
        let counter = self.head_counter - u64::from(last - pos);
        let base = if pos == last {
            self.head_base
        } else if pos == 0 {
            self.first
        } else {
            format::read_sector_header(&mut self.flash, &geo, sector)?
                .ok_or(Error::Corrupted)?
                .base
        };
        // Walk record headers up to `seq`; every step moves forward, the slot check stops at
        // the sector's end.
        let mut off = geo.data0;
        let mut at = base;
        while at < seq {
            let Slot::Header(h) = format::read_slot(&mut self.flash, &geo, sector, off)? else {
                return Err(Error::Corrupted);
            };
            off += geo.record_size(h.len as usize).ok_or(Error::Corrupted)?;
            if h.kind == Kind::Data {
                at += 1;
            }
        }
        Ok(Cursor {
            seq,
            counter,
            end: 0,
            sector,
            off,
        })
    }

    fn placed(&self, c: &Cursor) -> bool {
        let Some(age) = self.head_counter.checked_sub(c.counter) else {
            return false;
        };
        self.len > 0
            && c.counter != 0
            && age < u64::from(self.len)
            && self.geo.back(self.head, age as u32) == c.sector
            && c.seq >= self.first()
    }

    /// Reads the record at `cursor` into `buf` and moves the cursor past it. `Ok(None)` at the
    /// end of the log. [`Error::BufferTooSmall`] leaves the cursor where it was;
    /// [`Error::Corrupted`] moves it to the next sector.
    pub fn read_next(
        &mut self,
        cursor: &mut Cursor,
        buf: &mut [u8],
    ) -> Result<Option<Record>, Error<F::Error>> {
        let geo = self.geo;
        // Each round moves the cursor forward by a record or a sector, or returns.
        let rounds = u64::from(geo.sectors) * u64::from(geo.sector / geo.hdr + 2);
        for _ in 0..rounds {
            if !self.placed(cursor) {
                *cursor = self.cursor(cursor.seq)?;
            }
            if cursor.seq >= self.next_seq {
                return Ok(None);
            }
            let end = if cursor.counter == self.head_counter {
                self.next_seq
            } else {
                if cursor.end == 0 {
                    let after = geo.next(cursor.sector);
                    cursor.end = format::read_sector_header(&mut self.flash, &geo, after)?
                        .ok_or(Error::Corrupted)?
                        .base;
                }
                cursor.end
            };
            if cursor.seq >= end {
                cursor.sector = geo.next(cursor.sector);
                cursor.counter += 1;
                cursor.off = geo.data0;
                cursor.end = 0;
                continue;
            }
            let ok = match format::read_slot(&mut self.flash, &geo, cursor.sector, cursor.off)? {
                Slot::Header(h) if h.kind == Kind::Ack => {
                    cursor.off += geo.record_size(8).unwrap_or(geo.sector);
                    continue;
                }
                Slot::Header(h) => {
                    let len = h.len as usize;
                    let Some(out) = buf.get_mut(..len) else {
                        return Err(Error::BufferTooSmall { needed: len });
                    };
                    format::read_payload(&mut self.flash, &geo, cursor.sector, cursor.off, out)?;
                    let crc = format::record_crc(cursor.counter, cursor.seq, Kind::Data, h.len);
                    if crc.update(out).finish() == h.crc {
                        let rec = super::Record {
                            seq: cursor.seq,
                            len,
                        };
                        cursor.off += geo.record_size(len).unwrap_or(geo.sector);
                        cursor.seq += 1;
                        return Ok(Some(rec));
                    }
                    false
                }
                Slot::Erased | Slot::Garbage => false,
            };
            if !ok {
                // Skip the rest of this sector: its record boundaries cannot be trusted.
                cursor.seq = end;
                cursor.off = geo.sector;
                return Err(Error::Corrupted);
            }
        }
        Err(Error::Corrupted)
    }

    /// Reads record `seq` into `buf`; returns its length.
    pub fn read(&mut self, seq: u64, buf: &mut [u8]) -> Result<usize, Error<F::Error>> {
        let mut c = self.cursor(seq)?;
        if c.seq != seq {
            return Err(Error::NotFound);
        }
        match self.read_next(&mut c, buf)? {
            Some(r) if r.seq == seq => Ok(r.len),
            _ => Err(Error::NotFound),
        }
    }

    /// [`Log::read_next`] into a `Vec`, growing it as needed (feature `alloc`).
    #[cfg(feature = "alloc")]
    pub fn read_next_vec(
        &mut self,
        cursor: &mut Cursor,
        buf: &mut alloc::vec::Vec<u8>,
    ) -> Result<Option<Record>, Error<F::Error>> {
        match self.read_next(cursor, buf) {
            Err(Error::BufferTooSmall { needed }) => {
                buf.resize(needed, 0);
                self.read_next(cursor, buf)
            }
            other => other,
        }
    }
}
