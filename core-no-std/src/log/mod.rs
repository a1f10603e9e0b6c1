//! An append-only, crash-safe record log over NOR flash: the store behind twig's streams, on an
//! MCU's own flash and (over a pre-allocated file or MTD partition) on the gateway.
//!
//! # What it is
//!
//! A ring of flash sectors (`ERASE_SIZE` each) holding records. Every record gets a sequence
//! number (`u64`, starting at 1, one more per append, never reused while its sector is on flash,
//! carried across restarts). The caller reads from any sequence number without removing
//! anything ([`Log::cursor`], [`Log::read_next`], [`Log::read`]) and moves an *acknowledged
//! cursor* forward ([`Log::ack`]); a sector whose records are all acknowledged is erased and
//! reused when the ring needs room. When the ring is full of unacknowledged records the caller's
//! [`WhenFull`] decides: refuse the append ([`Error::Full`]) or drop the oldest sector and say
//! how many unacknowledged records went ([`Appended::dropped`]).
//!
//! RAM does not grow with the number of records: the state is a few counters (see
//! [`Log::STATE_BYTES`], 128 bytes on 32- and 64-bit targets), an operation uses at most a 128-byte
//! stage and a 64-byte word buffer on the stack, and a [`Cursor`] is 32 bytes the caller owns. Nothing here allocates; nothing panics on any flash contents.
//!
//! # Durability: what "synced" means
//!
//! [`Log::append`] writes the record to flash before it returns. [`Log::sync`] then calls
//! [`Flush::flush`] and from its return on, every record appended before it survives any power
//! cut (until it is acknowledged and its sector reclaimed, or dropped by [`WhenFull::DropOldest`]),
//! and so does the acknowledged cursor as it was at the call. On a raw NOR flash a write is
//! durable when it returns, so [`Direct`] has an empty `flush` and every append is synced once it
//! returns; over a file, `flush` is `fsync` and many appends share one: that is group commit.
//!
//! There is no separate commit marker: a record is self-validating (length, kind, CRC-32 seeded
//! with its sector's counter and its sequence number) and sequence numbers are positional, so
//! recovery keeps the longest valid prefix and a torn record can only ever be the end of the log.
//! A marker per batch would cost one more write per batch and guarantee nothing more.
//!
//! # On flash
//!
//! See `format.rs`: a 32-byte sector header (magic, sector counter, sequence number of the
//! sector's first record, acknowledged cursor at the time, CRC) and per record an 8-byte header
//! (length, kind, CRC) before the payload, everything aligned to `max(READ_SIZE, WRITE_SIZE)` so
//! each flash word is written exactly once between erases (no `MultiwriteNorFlash` needed). The
//! acknowledged cursor is stored in each new sector's header and, at [`Log::sync`] when it has
//! moved, as a 16-byte ack record in the current sector.
//!
//! Assumption about the flash (the one littlefs and `sequential-storage` make): a word that
//! reads all 0xFF may be programmed. A program cut off before it changed any bit cannot be told
//! apart from no program at all; one that changed any bit makes the record fail its checksum,
//! and the log then appends in a fresh sector.
//!
//! A sector is erased immediately before its header is written; before erasing, the log calls
//! `flush`, so a later sector's header never claims records an earlier sector has not got. On
//! open ([`Log::open`]) the log reads every sector header, takes the highest counter as the
//! newest sector and walks back while counters and sequence numbers are consecutive. It checks
//! the oldest sector record by record (it is the only sector ever erased while it holds data, so
//! an erase cut short shows there) and the newest one (the only one ever appended to), and
//! checks that the newest sector is erased after its last record before appending there again;
//! otherwise the next append opens a new sector. A sector outside the ring, whatever it holds, is
//! erased before use. Open only reads.
//!
//! # Why not `sequential-storage`
//!
//! `sequential-storage`'s `queue` (v8) is the closest existing crate and this module learned from
//! it (CRC per item, page states, the power-cut mock and the model fuzzer). It was not used
//! because:
//! - **No acknowledged cursor without popping.** Removing an item is `pop`, which overwrites the
//!   item's CRC word in place and so needs `MultiwriteNorFlash` (a second write to a written
//!   word: not allowed on ECC flash such as STM32L4/G4/H7) and costs one flash write per item.
//!   The forwarder here must read ahead of what the cloud has acknowledged, keep it until the
//!   PubAck, then release thousands of records at once; here that is one 16-byte record per
//!   sync, or nothing at all when the next sector header carries it.
//! - **No sequence numbers and no reading at a cursor.** Iteration starts at the oldest item
//!   every time; a `u64` sequence would have to live in the payload, and resuming at `acked + 1`
//!   after a restart would scan from the oldest item. Here a seek is a binary search over
//!   sector headers plus a walk of record headers within one sector.
//! - **Async only** (`embedded-storage-async`). The gateway's file-backed flash and bare-metal
//!   firmware without an executor would both need a `block_on` shim; `embedded-storage`'s
//!   blocking `NorFlash` suits both, and an async front can wrap this later.
//! - **No flush hook.** `NorFlash` has none; over a file, durability needs `fsync`, and group
//!   commit needs a notion of "synced up to seq N" ([`Flush`], [`Stats::synced`]).
//! - **Cost.** Its own queue cost test asserts about 17 flash reads and 3 writes per 50-byte
//!   push without caches (it finds the newest page by reading page states on every push); here an
//!   append into the open sector is 1 write and no read (asserted in the tests), and items are
//!   limited to one page and 64 KiB (`u16` length) where the gateway needs ~1 MiB messages.
//!
//! # Testing
//!
//! `testing` (feature `mock-flash`, always in tests) has a NOR flash mock that enforces the
//! write-once-per-word and 1->0 rules and alignment, and cuts power after any number of operations
//! or bytes (a cut write leaves its last word undefined, a cut erase leaves the sector mixed), and
//! a workload runner that checks the log against a plain model after every recovery. The tests
//! cut power at every write and erase of a 1,200-step workload; `fuzz/fuzz_targets/log.rs`
//! replays random operations with random cuts.

mod crc;
mod format;
#[cfg(any(test, feature = "mock-flash"))]
mod mock;
mod read;
mod ring;
#[cfg(any(test, feature = "mock-flash"))]
pub mod testing;
#[cfg(test)]
mod tests;

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};

pub use crc::Crc32;
pub use read::{Cursor, Record};

/// A NOR flash that can make its completed writes durable.
///
/// On a raw NOR flash a write is durable when it returns: wrap it in [`Direct`]. A flash that
/// caches writes (a file: the page cache) implements `flush` as `fsync`.
pub trait Flush: NorFlash {
    /// Makes every write and erase that returned before this call durable.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

impl<T: Flush> Flush for &mut T {
    fn flush(&mut self) -> Result<(), Self::Error> {
        T::flush(self)
    }
}

/// A NOR flash whose writes are durable when they return (every raw MCU flash): `flush` is a
/// no-op.
#[derive(Debug, Default)]
pub struct Direct<F>(pub F);

impl<F: ErrorType> ErrorType for Direct<F> {
    type Error = F::Error;
}

impl<F: ReadNorFlash> ReadNorFlash for Direct<F> {
    const READ_SIZE: usize = F::READ_SIZE;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<F: NorFlash> NorFlash for Direct<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0.erase(from, to)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.write(offset, bytes)
    }
}

impl<F: NorFlash> Flush for Direct<F> {
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// What an append does when every sector holds unacknowledged records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse the append with [`Error::Full`]; nothing on flash changes.
    #[default]
    RefuseNew,
    /// Erase the oldest sector and report how many unacknowledged records it held.
    DropOldest,
}

/// Where the log lives and how it behaves when full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// First address of the region (a multiple of `ERASE_SIZE`).
    pub start: u32,
    /// End of the region, exclusive (a multiple of `ERASE_SIZE`; at least two sectors).
    pub end: u32,
    /// Full behaviour.
    pub when_full: WhenFull,
}

impl Config {
    /// The region `[start, end)`, refusing new records when full.
    pub const fn new(start: u32, end: u32) -> Self {
        Config {
            start,
            end,
            when_full: WhenFull::RefuseNew,
        }
    }

    /// The same region with another full behaviour.
    pub const fn when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }
}

/// Errors, generic over the flash's own error (like `sequential-storage`'s `Error<S>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The flash failed; after a failed write the current sector is closed (the next append
    /// opens a new one), after a failed erase the sector is erased again before use.
    Flash(E),
    /// The region is not a whole number (>= 2) of sectors inside the flash, or the flash's
    /// `READ_SIZE`/`WRITE_SIZE` are not powers of two up to 64, or sectors are too small.
    Config,
    /// [`WhenFull::RefuseNew`] and no sector can be reclaimed: acknowledge records first.
    Full,
    /// The record can never fit in one sector.
    TooLarge,
    /// The buffer cannot hold the record; nothing was consumed.
    BufferTooSmall {
        /// The record's length.
        needed: usize,
    },
    /// No record has that sequence number on flash (reclaimed, dropped, or not yet appended).
    NotFound,
    /// `ack` of a sequence number that was never appended.
    InvalidAck,
    /// A record failed its checksum when read (the flash decayed or was changed behind the
    /// log's back). [`Log::read_next`] has moved the cursor past the damaged sector.
    Corrupted,
}

impl<E> From<E> for Error<E> {
    fn from(e: E) -> Self {
        Error::Flash(e)
    }
}

/// A successful append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The record's sequence number.
    pub seq: u64,
    /// Unacknowledged records dropped to make room ([`WhenFull::DropOldest`]); usually 0.
    pub dropped: u64,
}

/// A snapshot of the log's counters (no flash access).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Sequence number of the oldest record on flash (`last + 1` when empty).
    pub first: u64,
    /// Sequence number of the newest record (0 before the first append).
    pub last: u64,
    /// Everything up to here is acknowledged (0: nothing).
    pub acked: u64,
    /// The acknowledged cursor a restart would resume from (as of the last sync).
    pub durable_acked: u64,
    /// Everything up to here survives a power cut (as of the last sync).
    pub synced: u64,
    /// Records the oldest sector holds: a [`WhenFull::DropOldest`] append may lose
    /// `first..first + oldest_sector_records` (acknowledged ones included).
    pub oldest_sector_records: u64,
    /// Sectors holding the log.
    pub sectors_used: u32,
    /// Sectors in the ring.
    pub sectors: u32,
    /// Unacknowledged records dropped since open.
    pub dropped: u64,
}

/// The log. `F` is the flash (see [`Flush`]); all state besides it is [`Log::STATE_BYTES`].
#[derive(Debug)]
pub struct Log<F> {
    flash: F,
    geo: format::Geo,
    when_full: WhenFull,
    /// Sectors in the chain (0 for a log that has never been written).
    len: u32,
    /// Newest sector: index, counter, first seq, write offset, and whether appends may go there.
    head: u32,
    head_counter: u64,
    head_base: u64,
    head_off: u32,
    head_open: bool,
    /// First seq of the oldest sector, and of the sector after it (`next_seq` if it is the head).
    first: u64,
    second: u64,
    next_seq: u64,
    acked: u64,
    /// The acked cursor last written to flash, and the one made durable by the last flush.
    written_acked: u64,
    durable_acked: u64,
    synced: u64,
    dropped: u64,
}
