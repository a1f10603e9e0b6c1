//! Opening (recovery), appending, syncing and acknowledging: everything that changes the ring.

use super::format::{self, Geo, Kind, SectorHeader, Slot};
use super::{Appended, Config, Error, Flush, Log, Stats, WhenFull};

/// What a scan of one sector's records found.
struct Scan {
    /// Data records with a valid checksum, in order from the sector start.
    records: u64,
    /// Offset after the last valid record.
    end: u32,
    /// Whether the scan stopped at erased bytes (true) or at something invalid (false).
    clean: bool,
    /// The highest acknowledged cursor found in an ack record.
    acked: u64,
}

impl<F: Flush> Log<F> {
    /// Bytes of RAM the log needs besides the flash value itself.
    pub const STATE_BYTES: usize = core::mem::size_of::<Log<()>>();

    /// Opens the log in `config`'s region of `flash`, recovering whatever a previous run left:
    /// every valid record up to the first torn one, and the acknowledged cursor. Only reads.
    ///
    /// A region that never held a log (erased, or anything else) opens as an empty log whose
    /// first record will be sequence number 1.
    pub fn open(mut flash: F, config: Config) -> Result<Self, Error<F::Error>> {
        let geo = Geo::new(&flash, config.start, config.end).ok_or(Error::Config)?;
        // 1. The newest sector: the highest counter among valid headers.
        let mut newest: Option<(u32, SectorHeader)> = None;
        for i in 0..geo.sectors {
            if let Some(h) = format::read_sector_header(&mut flash, &geo, i)?
                && newest.is_none_or(|(_, n)| h.counter > n.counter)
            {
                newest = Some((i, h));
            }
        }
        let mut log = Log {
            flash,
            geo,
            when_full: config.when_full,
            len: 0,
            head: geo.sectors - 1,
            head_counter: 0,
            head_base: 1,
            head_off: geo.sector,
            head_open: false,
            first: 1,
            second: 1,
            next_seq: 1,
            acked: 0,
            written_acked: 0,
            durable_acked: 0,
            synced: 0,
            dropped: 0,
        };
        let Some((head, hh)) = newest else {
            return Ok(log);
        };
        // 2. Walk back while each sector is the one written just before the next.
        let mut tail = head;
        let mut tail_h = hh;
        let mut second = hh.base;
        let mut len = 1;
        while len < geo.sectors {
            let i = geo.back(head, len);
            let Some(h) = format::read_sector_header(&mut log.flash, &geo, i)? else {
                break;
            };
            let plausible = tail_h
                .base
                .checked_sub(h.base)
                .is_some_and(|n| n <= u64::from(geo.sector));
            if h.counter.checked_add(1) != Some(tail_h.counter) || !plausible {
                break;
            }
            second = tail_h.base;
            tail = i;
            tail_h = h;
            len += 1;
        }
        // 3. The oldest sector is the one an interrupted erase may have hit: it must still hold
        //    every record the next sector's base says it has, or it is not part of the log.
        if len > 1 {
            let want = second - tail_h.base;
            let scan = log.scan(tail, &tail_h, Some(want))?;
            if scan.records < want {
                tail = geo.next(tail);
                len -= 1;
                tail_h = format::read_sector_header(&mut log.flash, &geo, tail)?.unwrap_or(hh);
                second = if len > 1 {
                    format::read_sector_header(&mut log.flash, &geo, geo.next(tail))?
                        .map_or(hh.base, |h| h.base)
                } else {
                    hh.base
                };
            }
        }
        // 4. The newest sector: where appends continue, and the latest ack record.
        let scan = log.scan(head, &hh, None)?;
        let reusable = scan.clean && format::is_erased(&mut log.flash, &geo, head, scan.end)?;
        log.len = len;
        log.head = head;
        log.head_counter = hh.counter;
        log.head_base = hh.base;
        log.head_off = scan.end;
        log.head_open = reusable;
        log.first = tail_h.base;
        log.second = second;
        log.next_seq = hh.base.saturating_add(scan.records);
        let last = log.next_seq - 1;
        log.acked = hh.acked.max(scan.acked).min(last);
        log.written_acked = log.acked;
        log.durable_acked = log.acked;
        log.synced = last;
        Ok(log)
    }

    /// Scans sector `index` from its first record, checking every checksum, until erased bytes,
    /// an invalid record, or `limit` data records.
    fn scan(&mut self, index: u32, h: &SectorHeader, limit: Option<u64>) -> Result<Scan, F::Error> {
        let geo = self.geo;
        let mut s = Scan {
            records: 0,
            end: geo.data0,
            clean: false,
            acked: 0,
        };
        while limit.is_none_or(|l| s.records < l) {
            if s.end >= geo.sector {
                // Full to the last byte: nothing after it to be torn.
                s.clean = true;
                break;
            }
            let seq = h.base.saturating_add(s.records);
            let rh = match format::read_slot(&mut self.flash, &geo, index, s.end)? {
                Slot::Erased => {
                    s.clean = true;
                    break;
                }
                Slot::Garbage => break,
                Slot::Header(rh) => rh,
            };
            let Some(first8) =
                format::verify_record(&mut self.flash, &geo, index, s.end, h.counter, seq, &rh)?
            else {
                break;
            };
            match rh.kind {
                Kind::Data => s.records += 1,
                Kind::Ack => s.acked = s.acked.max(u64::from_le_bytes(first8)),
            }
            // The slot checked that the record fits in the sector.
            s.end += geo.record_size(rh.len as usize).unwrap_or(geo.sector);
        }
        Ok(s)
    }

    /// Erases the whole region and opens an empty log there (sequence numbers restart at 1).
    pub fn format(mut flash: F, config: Config) -> Result<Self, Error<F::Error>> {
        Geo::new(&flash, config.start, config.end).ok_or(Error::Config)?;
        flash.erase(config.start, config.end)?;
        flash.flush()?;
        Self::open(flash, config)
    }

    /// Appends one record and returns its sequence number. The record is written to flash
    /// before this returns; it is durable after the next [`Log::sync`] (at once on [`Direct`]).
    ///
    /// [`Direct`]: super::Direct
    pub fn append(&mut self, payload: &[u8]) -> Result<Appended, Error<F::Error>> {
        let size = self.geo.record_size(payload.len()).ok_or(Error::TooLarge)?;
        let mut dropped = 0;
        if !self.head_fits(size) {
            dropped = self.open_next(false)?;
        }
        let seq = self.next_seq;
        self.write(Kind::Data, seq, payload)?;
        self.next_seq += 1;
        Ok(Appended { seq, dropped })
    }

    /// Acknowledges every record up to and including `seq`: their sectors may be erased and
    /// reused. Takes effect at once in RAM (reads still work until the sector is reused) and
    /// on flash at the next [`Log::sync`]. Acknowledging less than before does nothing.
    pub fn ack(&mut self, seq: u64) -> Result<(), Error<F::Error>> {
        if seq >= self.next_seq {
            return Err(Error::InvalidAck);
        }
        self.acked = self.acked.max(seq);
        Ok(())
    }

    /// Makes every record appended so far, and the acknowledged cursor, durable: writes an ack
    /// record if the cursor moved (when there is room without dropping anything; otherwise the
    /// next sector header carries it), then calls [`Flush::flush`].
    pub fn sync(&mut self) -> Result<(), Error<F::Error>> {
        if self.acked > self.written_acked {
            let size = self.geo.record_size(8).ok_or(Error::Config)?;
            let room = self.head_fits(size)
                || match self.open_next(true) {
                    Ok(_) => true,
                    Err(Error::Full) => false,
                    Err(e) => return Err(e),
                };
            if room && self.acked > self.written_acked {
                let acked = self.acked;
                self.write(Kind::Ack, self.next_seq, &acked.to_le_bytes())?;
                self.written_acked = acked;
            }
        }
        self.flash.flush()?;
        self.synced = self.next_seq - 1;
        self.durable_acked = self.written_acked;
        Ok(())
    }

    /// The log's counters.
    pub fn stats(&self) -> Stats {
        Stats {
            first: self.first(),
            last: self.next_seq - 1,
            acked: self.acked,
            durable_acked: self.durable_acked,
            synced: self.synced,
            oldest_sector_records: self.tail_end() - self.first(),
            sectors_used: self.len,
            sectors: self.geo.sectors,
            dropped: self.dropped,
        }
    }

    /// The largest payload one record can carry.
    pub fn max_payload(&self) -> usize {
        self.geo.max_payload as usize
    }

    /// Changes the full behaviour.
    pub fn set_when_full(&mut self, when_full: WhenFull) {
        self.when_full = when_full;
    }

    /// The flash, for its own statistics or operations outside the log's region.
    pub fn flash(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    pub(crate) fn first(&self) -> u64 {
        if self.len == 0 {
            self.next_seq
        } else {
            self.first
        }
    }

    /// First sequence number after the oldest sector.
    fn tail_end(&self) -> u64 {
        if self.len <= 1 {
            self.next_seq
        } else {
            self.second
        }
    }

    fn head_fits(&self, size: u32) -> bool {
        self.head_open
            && self
                .head_off
                .checked_add(size)
                .is_some_and(|e| e <= self.geo.sector)
    }

    /// Writes one record at the head; a failed write closes the head (its end is unknown).
    fn write(&mut self, kind: Kind, seq: u64, payload: &[u8]) -> Result<(), Error<F::Error>> {
        let (geo, head, off, counter) = (self.geo, self.head, self.head_off, self.head_counter);
        match format::write_record(
            &mut self.flash,
            &geo,
            head,
            off,
            counter,
            seq,
            kind,
            payload,
        ) {
            Ok(size) => {
                self.head_off += size;
                Ok(())
            }
            Err(e) => {
                self.head_open = false;
                Err(Error::Flash(e))
            }
        }
    }

    /// Opens the sector after the head, reclaiming or dropping the oldest one if the ring is
    /// full. Returns the unacknowledged records dropped. `keep_data`: never drop (for acks).
    fn open_next(&mut self, keep_data: bool) -> Result<u64, Error<F::Error>> {
        let geo = self.geo;
        let next = geo.next(self.head);
        let mut dropped = 0;
        if self.len >= geo.sectors {
            // The ring is full: `next` is the oldest sector.
            let end = self.tail_end();
            let unacked = end.saturating_sub(self.first.max(self.acked.saturating_add(1)));
            if unacked > 0 {
                if keep_data || self.when_full == WhenFull::RefuseNew {
                    return Err(Error::Full);
                }
                dropped = unacked;
            }
            // The base of the sector after the new oldest one (the head's if it is the head).
            let after = geo.next(geo.next(next));
            let second = if self.len > 2 {
                format::read_sector_header(&mut self.flash, &geo, after)?
                    .map_or(self.head_base, |h| h.base)
            } else {
                self.next_seq
            };
            // The oldest sector leaves the log before it is erased: if the erase fails, it is
            // outside the ring and will be erased again before use.
            self.len -= 1;
            self.first = end;
            self.second = second;
            self.dropped += dropped;
        }
        // Everything written so far must be durable before a later sector header claims it.
        self.flash.flush()?;
        self.flash
            .erase(geo.addr(next, 0), geo.addr(next, 0) + geo.sector)?;
        // And the erase durable before the header: over a page cache, a crash could otherwise
        // bring back records of an earlier, lost attempt at this sector under the same counter.
        self.flash.flush()?;
        let h = SectorHeader {
            counter: self.head_counter + 1,
            base: self.next_seq,
            acked: self.acked,
        };
        format::write_sector_header(&mut self.flash, &geo, next, &h)?;
        if self.len == 0 {
            self.first = self.next_seq;
        }
        if self.len == 1 {
            self.second = self.next_seq;
        }
        self.len += 1;
        self.head = next;
        self.head_counter = h.counter;
        self.head_base = h.base;
        self.head_off = geo.data0;
        self.head_open = true;
        self.written_acked = self.acked;
        Ok(dropped)
    }
}
