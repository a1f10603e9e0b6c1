//! The on-flash layout: sector headers, record headers, alignment, and the few flash I/O
//! helpers every other part goes through. All integers are little-endian.
//!
//! ```text
//! sector:  [sector header, 32 B, padded to A][record][record]...[0xFF...]
//! sector header: magic "TLG1" u32 | counter u64 | base seq u64 | acked u64 | crc32 of the 28 before
//! record:  [len:24 | kind:8 (u32)][crc32 (u32)][pad to H][payload][pad to A]
//! record crc = crc32(sector counter u64 | seq u64 | len/kind u32 | payload)
//! ```
//!
//! `A` is the larger of the flash's `READ_SIZE` and `WRITE_SIZE`; `H` is 8 rounded up to `A`.
//! Every record starts and ends on an `A` boundary, so each flash word is written exactly once
//! between erases. The record checksum is seeded with the sector's counter and the record's
//! sequence number: a stale record left from an earlier lap of the ring (an interrupted erase,
//! or a page a file system never wrote back) can never pass for a record of the current lap.

use embedded_storage::nor_flash::NorFlash;

use super::crc::Crc32;

/// Bytes of the staging buffer on the stack for headers, record heads and tails, and scans.
/// A record that fits (header and up to 248 payload bytes) goes to flash in one write; on
/// the gateway each write is a `pwrite`, and a 64-byte MQTT reading with its subject and
/// `Nmqtt-Pub` headers is about 150 bytes, which at 128 took three. 256 bytes of stack is
/// still small next to a microcontroller task's (ESP32 and STM32 tasks get kilobytes).
pub(crate) const STAGE: usize = 256;
/// The largest `max(READ_SIZE, WRITE_SIZE)` supported (the stage must hold whole words).
pub(crate) const MAX_ALIGN: usize = 64;

const MAGIC: u32 = u32::from_le_bytes(*b"TLG1");
/// Encoded size of a sector header (before padding to `A`).
pub(crate) const SECTOR_HEADER_LEN: usize = 32;
/// Encoded size of a record header (before padding to `A`).
pub(crate) const RECORD_HEADER_LEN: usize = 8;
const MAX_LEN: u32 = 0x00FF_FFFF;

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An appended record: it has a sequence number.
    Data,
    /// A persisted acknowledged cursor (payload: u64). Takes no sequence number.
    Ack,
}

impl Kind {
    const fn byte(self) -> u8 {
        match self {
            Kind::Data => 0x44,
            Kind::Ack => 0x41,
        }
    }
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0x44 => Some(Kind::Data),
            0x41 => Some(Kind::Ack),
            _ => None,
        }
    }
}

/// Sizes derived from the flash type and the configured region, fixed once the log is open.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geo {
    /// Address of sector 0 of the ring.
    pub start: u32,
    /// Sectors in the ring (>= 2).
    pub sectors: u32,
    /// Bytes per sector (`ERASE_SIZE`).
    pub sector: u32,
    /// Record alignment `A`.
    pub align: u32,
    /// Record header size `H` (8 rounded up to `A`).
    pub hdr: u32,
    /// Offset of the first record in a sector.
    pub data0: u32,
    /// Largest payload a record can carry.
    pub max_payload: u32,
}

/// `x` rounded up to a multiple of `a` (a power of two), or `None` on overflow.
pub(crate) const fn align_up(x: u32, a: u32) -> Option<u32> {
    match x.checked_add(a - 1) {
        Some(v) => Some(v & !(a - 1)),
        None => None,
    }
}

impl Geo {
    /// Checks a region `[start, end)` of `F`; `None` if it cannot hold a log.
    pub(crate) fn new<F: NorFlash>(flash: &F, start: u32, end: u32) -> Option<Geo> {
        let align = F::READ_SIZE.max(F::WRITE_SIZE);
        let erase = F::ERASE_SIZE;
        if !align.is_power_of_two()
            || !F::READ_SIZE.is_power_of_two()
            || !F::WRITE_SIZE.is_power_of_two()
            || align > MAX_ALIGN
            || erase == 0
            || !erase.is_multiple_of(align)
        {
            return None;
        }
        let sector = u32::try_from(erase).ok()?;
        let align = align as u32;
        if !start.is_multiple_of(sector) || !end.is_multiple_of(sector) || end <= start {
            return None;
        }
        if usize::try_from(end).ok()? > flash.capacity() {
            return None;
        }
        let sectors = (end - start) / sector;
        let hdr = align_up(RECORD_HEADER_LEN as u32, align)?;
        let data0 = align_up(SECTOR_HEADER_LEN as u32, align)?;
        // A sector must at least hold its header and one acknowledgement record.
        let room = sector.checked_sub(data0)?.checked_sub(hdr)?;
        let max_payload = (room & !(align - 1)).min(MAX_LEN);
        if sectors < 2 || max_payload < 8 {
            return None;
        }
        Some(Geo {
            start,
            sectors,
            sector,
            align,
            hdr,
            data0,
            max_payload,
        })
    }

    /// Flash address of `offset` within sector `index`.
    pub(crate) fn addr(&self, index: u32, offset: u32) -> u32 {
        // In range by construction: index < sectors, offset <= sector, and the region fits in
        // the flash's u32 address space (checked in `new`).
        self.start + index * self.sector + offset
    }

    /// Bytes a record with `len` payload bytes takes, or `None` if it can never fit.
    pub(crate) fn record_size(&self, len: usize) -> Option<u32> {
        let len = u32::try_from(len).ok().filter(|&l| l <= self.max_payload)?;
        self.hdr.checked_add(align_up(len, self.align)?)
    }

    /// The sector after `index` in the ring.
    pub(crate) fn next(&self, index: u32) -> u32 {
        if index + 1 >= self.sectors {
            0
        } else {
            index + 1
        }
    }

    /// The sector `back` places before `index` in the ring (`back < sectors`).
    pub(crate) fn back(&self, index: u32, back: u32) -> u32 {
        (index + self.sectors - back % self.sectors) % self.sectors
    }
}

/// A decoded sector header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SectorHeader {
    /// How many sectors had been opened before this one, plus one: strictly increasing.
    pub counter: u64,
    /// Sequence number of the first data record in this sector.
    pub base: u64,
    /// The acknowledged cursor when the sector was opened.
    pub acked: u64,
}

impl SectorHeader {
    pub(crate) fn encode(&self) -> [u8; SECTOR_HEADER_LEN] {
        let mut b = [0u8; SECTOR_HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..12].copy_from_slice(&self.counter.to_le_bytes());
        b[12..20].copy_from_slice(&self.base.to_le_bytes());
        b[20..28].copy_from_slice(&self.acked.to_le_bytes());
        let crc = Crc32::new().update(&b[0..28]).finish();
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; SECTOR_HEADER_LEN]) -> Option<SectorHeader> {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let dword = |i: usize| u64::from(word(i)) | (u64::from(word(i + 4)) << 32);
        if word(0) != MAGIC || word(28) != Crc32::new().update(&b[0..28]).finish() {
            return None;
        }
        let h = SectorHeader {
            counter: dword(4),
            base: dword(12),
            acked: dword(20),
        };
        // Counter 0 and sequence 0 are never written: they mean "none".
        (h.counter != 0 && h.base != 0).then_some(h)
    }
}

/// A decoded record header (not yet checked against its payload).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordHeader {
    pub kind: Kind,
    pub len: u32,
    pub crc: u32,
}

/// What sits at a record position.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot {
    /// The header bytes are all 0xFF: nothing was ever written here.
    Erased,
    /// Something that is not a plausible record header (torn write, garbage).
    Garbage,
    /// A plausible header.
    Header(RecordHeader),
}

fn lenkind(kind: Kind, len: u32) -> u32 {
    len | (u32::from(kind.byte()) << 24)
}

/// The record checksum: sector counter, sequence number, length/kind, payload.
pub(crate) fn record_crc(counter: u64, seq: u64, kind: Kind, len: u32) -> Crc32 {
    Crc32::new()
        .update(&counter.to_le_bytes())
        .update(&seq.to_le_bytes())
        .update(&lenkind(kind, len).to_le_bytes())
}

/// Reads `buf.len()` bytes at `addr` (both already aligned to `READ_SIZE`).
pub(crate) fn read<F: NorFlash>(flash: &mut F, addr: u32, buf: &mut [u8]) -> Result<(), F::Error> {
    if buf.is_empty() {
        Ok(())
    } else {
        flash.read(addr, buf)
    }
}

/// Reads and decodes the header of sector `index`.
pub(crate) fn read_sector_header<F: NorFlash>(
    flash: &mut F,
    geo: &Geo,
    index: u32,
) -> Result<Option<SectorHeader>, F::Error> {
    let mut stage = [0u8; STAGE];
    let n = geo.data0 as usize;
    let buf = stage.get_mut(..n).unwrap_or_default();
    read(flash, geo.addr(index, 0), buf)?;
    let mut b = [0u8; SECTOR_HEADER_LEN];
    b.copy_from_slice(stage.get(..SECTOR_HEADER_LEN).unwrap_or_default());
    Ok(SectorHeader::decode(&b))
}

/// Writes the header of sector `index` (which must be freshly erased).
pub(crate) fn write_sector_header<F: NorFlash>(
    flash: &mut F,
    geo: &Geo,
    index: u32,
    h: &SectorHeader,
) -> Result<(), F::Error> {
    let mut stage = [0xFFu8; STAGE];
    if let Some(dst) = stage.get_mut(..SECTOR_HEADER_LEN) {
        dst.copy_from_slice(&h.encode());
    }
    flash.write(
        geo.addr(index, 0),
        stage.get(..geo.data0 as usize).unwrap_or_default(),
    )
}

/// Reads the record header at `offset` of sector `index`; `offset` must leave room for it.
pub(crate) fn read_slot<F: NorFlash>(
    flash: &mut F,
    geo: &Geo,
    index: u32,
    offset: u32,
) -> Result<Slot, F::Error> {
    if offset.saturating_add(geo.hdr) > geo.sector {
        return Ok(Slot::Garbage);
    }
    let mut stage = [0u8; STAGE];
    let buf = stage.get_mut(..geo.hdr as usize).unwrap_or_default();
    read(flash, geo.addr(index, offset), buf)?;
    if buf.iter().all(|&b| b == 0xFF) {
        return Ok(Slot::Erased);
    }
    let lk = u32::from_le_bytes([stage[0], stage[1], stage[2], stage[3]]);
    let crc = u32::from_le_bytes([stage[4], stage[5], stage[6], stage[7]]);
    let len = lk & MAX_LEN;
    let (Some(kind), Some(size)) = (
        Kind::from_byte((lk >> 24) as u8),
        geo.record_size(len as usize),
    ) else {
        return Ok(Slot::Garbage);
    };
    if offset.saturating_add(size) > geo.sector || (kind == Kind::Ack && len != 8) {
        return Ok(Slot::Garbage);
    }
    Ok(Slot::Header(RecordHeader { kind, len, crc }))
}

/// Writes one record at `offset` of sector `index` in at most three flash writes: the header
/// with as much payload as fits in the stage, the aligned middle straight from `payload`, and
/// the tail padded to `A`. Returns the bytes the record takes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_record<F: NorFlash>(
    flash: &mut F,
    geo: &Geo,
    index: u32,
    offset: u32,
    counter: u64,
    seq: u64,
    kind: Kind,
    payload: &[u8],
) -> Result<u32, F::Error> {
    // Callers check the size first; a payload that slipped through writes nothing.
    let Some(size) = geo.record_size(payload.len()) else {
        return Ok(0);
    };
    let len = payload.len() as u32;
    let crc = record_crc(counter, seq, kind, len).update(payload).finish();
    let mut stage = [0xFFu8; STAGE];
    stage[0..4].copy_from_slice(&lenkind(kind, len).to_le_bytes());
    stage[4..8].copy_from_slice(&crc.to_le_bytes());
    let hdr = geo.hdr as usize;
    let head = payload.len().min(STAGE - hdr);
    let (first, rest) = payload.split_at(head);
    if let Some(dst) = stage.get_mut(hdr..hdr + head) {
        dst.copy_from_slice(first);
    }
    let first_len = align_up((hdr + head) as u32, geo.align).unwrap_or(size) as usize;
    let mut at = geo.addr(index, offset);
    flash.write(at, stage.get(..first_len).unwrap_or_default())?;
    if rest.is_empty() {
        return Ok(size);
    }
    // `hdr + head == STAGE` here, a multiple of A: the rest starts aligned.
    at += first_len as u32;
    let middle = rest.len() & !(geo.align as usize - 1);
    let (mid, tail) = rest.split_at(middle);
    if !mid.is_empty() {
        flash.write(at, mid)?;
        at += middle as u32;
    }
    if !tail.is_empty() {
        let mut word = [0xFFu8; MAX_ALIGN];
        word[..tail.len()].copy_from_slice(tail);
        flash.write(at, word.get(..geo.align as usize).unwrap_or_default())?;
    }
    Ok(size)
}

/// Reads the payload of a record whose header says `len` bytes into `out[..len]`.
pub(crate) fn read_payload<F: NorFlash>(
    flash: &mut F,
    geo: &Geo,
    index: u32,
    offset: u32,
    out: &mut [u8],
) -> Result<(), F::Error> {
    let at = geo.addr(index, offset + geo.hdr);
    let middle = out.len() & !(geo.align as usize - 1);
    let (mid, tail) = out.split_at_mut(middle);
    read(flash, at, mid)?;
    if !tail.is_empty() {
        let mut word = [0u8; MAX_ALIGN];
        let w = word.get_mut(..geo.align as usize).unwrap_or_default();
        read(flash, at + middle as u32, w)?;
        tail.copy_from_slice(w.get(..tail.len()).unwrap_or_default());
    }
    Ok(())
}

/// Streams a record's payload through the stage, checking its checksum. Returns the first
/// eight payload bytes (an ack record's value) when it checks out.
pub(crate) fn verify_record<F: NorFlash>(
    flash: &mut F,
    geo: &Geo,
    index: u32,
    offset: u32,
    counter: u64,
    seq: u64,
    h: &RecordHeader,
) -> Result<Option<[u8; 8]>, F::Error> {
    let mut crc = record_crc(counter, seq, h.kind, h.len);
    let mut first = [0u8; 8];
    let mut stage = [0u8; STAGE];
    let padded = align_up(h.len, geo.align).unwrap_or(0);
    let mut done = 0u32;
    while done < padded {
        let n = (padded - done).min(STAGE as u32);
        let buf = stage.get_mut(..n as usize).unwrap_or_default();
        read(flash, geo.addr(index, offset + geo.hdr + done), buf)?;
        let useful = h.len.saturating_sub(done).min(n) as usize;
        let data = buf.get(..useful).unwrap_or_default();
        if done == 0 {
            for (d, s) in first.iter_mut().zip(data) {
                *d = *s;
            }
        }
        crc = crc.update(data);
        done += n;
    }
    Ok((crc.finish() == h.crc).then_some(first))
}

/// Whether `[offset, sector end)` of sector `index` is all 0xFF.
pub(crate) fn is_erased<F: NorFlash>(
    flash: &mut F,
    geo: &Geo,
    index: u32,
    offset: u32,
) -> Result<bool, F::Error> {
    let mut stage = [0u8; STAGE];
    let mut at = offset;
    while at < geo.sector {
        let n = (geo.sector - at).min(STAGE as u32);
        let buf = stage.get_mut(..n as usize).unwrap_or_default();
        read(flash, geo.addr(index, at), buf)?;
        if buf.iter().any(|&b| b != 0xFF) {
            return Ok(false);
        }
        at += n;
    }
    Ok(true)
}
