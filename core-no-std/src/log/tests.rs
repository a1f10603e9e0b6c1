//! The log's tests: behaviour, cost (flash operations per append), and power cuts at every
//! write and erase of a scripted workload.

extern crate std;

use std::vec;
use std::vec::Vec;

use super::testing::{Counts, Cut, MockFlash, Rng, Step, payload, run, run_with_recuts, script};
use super::{Appended, Config, Error, Log, WhenFull};

/// 8 sectors of 512 bytes, byte-addressable reads, 4-byte writes.
type Small = MockFlash<1, 4, 512>;

fn small() -> Log<Small> {
    Log::open(Small::new(8), Config::new(0, 8 * 512)).unwrap()
}

#[test]
fn append_read_reopen() {
    let mut log = small();
    assert_eq!(log.stats().last, 0);
    assert_eq!(
        log.append(b"hello").unwrap(),
        Appended { seq: 1, dropped: 0 }
    );
    assert_eq!(log.append(b"").unwrap().seq, 2);
    assert_eq!(log.append(&[7; 100]).unwrap().seq, 3);
    let mut buf = [0u8; 128];
    assert_eq!(log.read(1, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(log.read(2, &mut buf), Ok(0));
    assert_eq!(log.read(3, &mut buf), Ok(100));
    assert_eq!(log.read(4, &mut buf), Err(Error::NotFound));
    assert_eq!(log.read(0, &mut buf), Err(Error::NotFound));
    assert_eq!(
        log.read(3, &mut buf[..99]),
        Err(Error::BufferTooSmall { needed: 100 })
    );
    log.sync().unwrap();
    let mut log = Log::open(log.into_inner(), Config::new(0, 8 * 512)).unwrap();
    assert_eq!(log.stats().last, 3);
    assert_eq!(log.read(1, &mut buf), Ok(5));
    assert_eq!(log.append(b"after").unwrap().seq, 4);
}

#[test]
fn refuse_then_ack_reclaims() {
    let mut log = small();
    let mut n = 0;
    while log.append(&[1; 60]).is_ok() {
        n += 1;
        assert!(n < 1000);
    }
    assert_eq!(log.append(&[1; 60]), Err(Error::Full));
    assert_eq!(log.stats().sectors_used, 8);
    // Acknowledging part of the oldest sector frees nothing; all of it frees one sector.
    log.ack(1).unwrap();
    assert_eq!(log.append(&[1; 60]), Err(Error::Full));
    let oldest = log.stats().oldest_sector_records;
    log.ack(oldest).unwrap();
    let a = log.append(&[1; 60]).unwrap();
    assert_eq!(
        a,
        Appended {
            seq: n + 1,
            dropped: 0
        }
    );
    assert_eq!(log.stats().first, oldest + 1);
    // Reading an acknowledged record that is still on flash works.
    assert_eq!(log.read(oldest + 1, &mut [0; 64]), Ok(60));
    assert_eq!(log.read(1, &mut [0; 64]), Err(Error::NotFound));
    assert_eq!(log.ack(n + 2), Err(Error::InvalidAck));
}

#[test]
fn drop_oldest_counts() {
    let mut log = Log::open(
        Small::new(8),
        Config::new(0, 8 * 512).when_full(WhenFull::DropOldest),
    )
    .unwrap();
    let mut dropped = 0;
    for i in 0..200u32 {
        dropped += log.append(&i.to_le_bytes().repeat(10)).unwrap().dropped;
    }
    let s = log.stats();
    assert_eq!(s.last, 200);
    assert_eq!(dropped, s.first - 1);
    assert_eq!(s.dropped, dropped);
    // Acknowledged records do not count as dropped.
    log.ack(s.first + 2).unwrap();
    let oldest = log.stats().oldest_sector_records;
    let mut more = 0;
    for _ in 0..oldest + 5 {
        more += log.append(&[0; 40]).unwrap().dropped;
    }
    assert!(more > 0);
    assert_eq!(log.stats().dropped, dropped + more);
    // The cursor still reads from the new oldest record on.
    let mut c = log.cursor(0).unwrap();
    let r = log.read_next(&mut c, &mut [0; 64]).unwrap().unwrap();
    assert_eq!(r.seq, log.stats().first);
}

#[test]
fn ack_survives_restart() {
    let mut log = small();
    for _ in 0..20 {
        log.append(&[3; 30]).unwrap();
    }
    log.ack(7).unwrap();
    assert_eq!(log.stats().durable_acked, 0);
    log.sync().unwrap();
    assert_eq!(log.stats().durable_acked, 7);
    let log = Log::open(log.into_inner(), Config::new(0, 8 * 512)).unwrap();
    assert_eq!(log.stats().acked, 7);
    // Unsynced acks are not claimed durable.
    let mut log = log;
    log.ack(9).unwrap();
    let log = Log::open(log.into_inner(), Config::new(0, 8 * 512)).unwrap();
    assert_eq!(log.stats().acked, 7);
}

#[test]
fn cursor_follows_appends_across_sectors() {
    let mut log = small();
    let mut c = log.cursor(1).unwrap();
    let mut buf = [0u8; 200];
    assert_eq!(log.read_next(&mut c, &mut buf), Ok(None));
    let mut want = Vec::new();
    for seq in 1..=60u64 {
        payload(seq, 0, 90, &mut want);
        log.append(&want).unwrap();
        if seq % 3 == 0 {
            log.ack(seq - 1).unwrap();
            log.sync().unwrap();
        }
        if seq % 7 == 0 {
            for s in c.seq()..=seq {
                let r = log.read_next(&mut c, &mut buf).unwrap().unwrap();
                assert_eq!(r.seq, s);
                payload(s, 0, 90, &mut want);
                assert_eq!(&buf[..r.len], &want[..]);
            }
            assert_eq!(log.read_next(&mut c, &mut buf), Ok(None));
        }
    }
    // Seeks land on every record.
    for seq in log.stats().first..=60 {
        let mut c = log.cursor(seq).unwrap();
        assert_eq!(c.seq(), seq);
        assert_eq!(log.read_next(&mut c, &mut buf).unwrap().unwrap().seq, seq);
    }
}

#[test]
fn bad_configs() {
    assert_eq!(
        Log::open(Small::new(8), Config::new(0, 512)).err(),
        Some(Error::Config)
    );
    assert_eq!(
        Log::open(Small::new(8), Config::new(1, 1024)).err(),
        Some(Error::Config)
    );
    assert_eq!(
        Log::open(Small::new(8), Config::new(0, 9 * 512)).err(),
        Some(Error::Config)
    );
    // Not a power-of-two write size.
    assert_eq!(
        Log::open(MockFlash::<1, 3, 513>::new(4), Config::new(0, 4 * 513)).err(),
        Some(Error::Config)
    );
    let mut log = small();
    assert_eq!(log.append(&[0; 512]), Err(Error::TooLarge));
    let max = log.max_payload();
    assert_eq!(log.append(&vec![0; max]).unwrap().seq, 1);
    assert_eq!(log.append(&vec![0; max + 1]), Err(Error::TooLarge));
}

#[test]
fn garbage_flash_opens_empty_and_is_erased_before_use() {
    let mut flash = Small::new(8);
    // Fill with a pattern through the NOR rules: every word written once.
    for s in 0..8u32 {
        flash.write(s * 512, &[0x5A; 512]).unwrap();
    }
    let mut log = Log::open(flash, Config::new(0, 8 * 512)).unwrap();
    assert_eq!(log.stats().last, 0);
    assert_eq!(log.append(b"x").unwrap().seq, 1);
    assert_eq!(log.read(1, &mut [0; 4]), Ok(1));
}

#[test]
fn bit_rot_is_reported_and_skipped() {
    let mut log = small();
    for i in 0..30u8 {
        log.append(&[i; 40]).unwrap();
    }
    // Damage a payload byte of record 2 (sector 0: header 32, record 1 at 32..80).
    log.flash().corrupt(32 + 48 + 8 + 3, 0x10);
    let mut buf = [0u8; 64];
    assert_eq!(log.read(2, &mut buf), Err(Error::Corrupted));
    let mut c = log.cursor(1).unwrap();
    assert_eq!(log.read_next(&mut c, &mut buf).unwrap().unwrap().seq, 1);
    assert_eq!(log.read_next(&mut c, &mut buf), Err(Error::Corrupted));
    // The cursor moved to the next sector.
    let r = log.read_next(&mut c, &mut buf).unwrap().unwrap();
    assert!(r.seq > 2);
    assert_eq!(buf[0] as u64, r.seq - 1);
}

use embedded_storage::nor_flash::NorFlash;

/// Cost is a test: flash operations per append, sync, ack and read (sequential-storage style).
#[test]
fn flash_operation_counts() {
    let mut log = small();
    let c0 = log.flash().counts();
    log.append(&[1; 20]).unwrap();
    // The first append opens sector 0: flush, erase, flush, header write, record write.
    assert_eq!(
        log.flash().counts() - c0,
        Counts {
            writes: 2,
            write_bytes: 32 + 28,
            erases: 1,
            flushes: 2,
            ..Counts::default()
        }
    );
    let c = log.flash().counts();
    log.append(&[1; 20]).unwrap();
    // An append into the open sector: one write, no read.
    assert_eq!(
        log.flash().counts() - c,
        Counts {
            writes: 1,
            write_bytes: 28,
            ..Counts::default()
        }
    );
    let c = log.flash().counts();
    log.sync().unwrap();
    // Nothing to write: one flush (a no-op on `Direct`).
    assert_eq!(
        log.flash().counts() - c,
        Counts {
            flushes: 1,
            ..Counts::default()
        }
    );
    log.ack(1).unwrap();
    let c = log.flash().counts();
    log.sync().unwrap();
    // A moved ack costs one 16-byte record.
    assert_eq!(
        log.flash().counts() - c,
        Counts {
            writes: 1,
            write_bytes: 16,
            flushes: 1,
            ..Counts::default()
        }
    );
    let c = log.flash().counts();
    log.append(&[1; 200]).unwrap();
    // Header and payload fit the 256-byte stage: one write, even unaligned (padded).
    assert_eq!(
        log.flash().counts() - c,
        Counts {
            writes: 1,
            write_bytes: 208,
            ..Counts::default()
        }
    );
    let c = log.flash().counts();
    log.append(&[1; 185]).unwrap();
    // 185 B pads to 196 with its header. The sector is now full (512 B).
    assert_eq!(
        log.flash().counts() - c,
        Counts {
            writes: 1,
            write_bytes: 196,
            ..Counts::default()
        }
    );
    log.ack(2).unwrap();
    let c = log.flash().counts();
    log.sync().unwrap();
    // No room for an ack record: the next sector's header carries the ack (flush, erase,
    // flush, header write, then sync's flush).
    assert_eq!(
        log.flash().counts() - c,
        Counts {
            writes: 1,
            write_bytes: 32,
            erases: 1,
            flushes: 3,
            ..Counts::default()
        }
    );
    assert_eq!(log.stats().durable_acked, 2);
    let c = log.flash().counts();
    let mut buf = [0u8; 256];
    log.read(3, &mut buf).unwrap();
    let read_cost = log.flash().counts() - c;
    // A random read: the seek walks two record headers (the oldest sector's base is in RAM);
    // the read takes the next sector's header (where this sector ends), skips the ack record's
    // header, reads the record header and the payload.
    assert_eq!(
        read_cost,
        Counts {
            reads: 6,
            read_bytes: 8 * 2 + 32 + 8 + 8 + 200,
            ..Counts::default()
        }
    );

    // Records longer than the stage, in 1 KiB sectors: the stage, then the aligned rest
    // straight from the caller, then the unaligned tail word; three writes at most.
    let mut log = Log::open(MockFlash::<1, 4, 1024>::new(4), Config::new(0, 4 * 1024)).unwrap();
    log.append(&[1; 20]).unwrap();
    let c = log.flash().counts();
    log.append(&[2; 300]).unwrap();
    assert_eq!(
        log.flash().counts() - c,
        Counts {
            writes: 2,
            write_bytes: 308,
            ..Counts::default()
        }
    );
    let c = log.flash().counts();
    log.append(&[3; 301]).unwrap();
    assert_eq!(
        log.flash().counts() - c,
        Counts {
            writes: 3,
            write_bytes: 312,
            ..Counts::default()
        }
    );
    let mut buf = [0u8; 512];
    assert_eq!(log.read(2, &mut buf), Ok(300));
    assert!(buf[..300].iter().all(|&b| b == 2));
    assert_eq!(log.read(3, &mut buf), Ok(301));
    assert!(buf[..301].iter().all(|&b| b == 3));

    // Steady state over many wraps with the ring full and acks keeping up: per append about
    // one write, plus one erase + flush + header per sector.
    let mut log = small();
    for i in 1..=40u64 {
        log.append(&[0; 24]).unwrap();
        log.ack(i.saturating_sub(20)).unwrap();
    }
    let c = log.flash().counts();
    let n = 2000u64;
    for i in 41..41 + n {
        log.append(&[0; 24]).unwrap();
        log.ack(i - 20).unwrap();
    }
    let d = log.flash().counts() - c;
    let per_sector = (512 - 32) / 32; // 15 records of 32 bytes
    let sectors = n.div_ceil(per_sector);
    assert!(d.erases.abs_diff(sectors) <= 1, "{d:?}");
    assert_eq!(d.writes, n + d.erases, "{d:?}");
    // One header read per reclaimed sector (the new oldest sector's successor).
    assert!(d.reads <= d.erases, "{d:?}");
    std::println!("steady state, {n} appends of 24 B on 8 x 512 B sectors: {d:?}");
}

#[test]
fn ram_size() {
    type L = Log<super::Direct<Small>>;
    let state = L::STATE_BYTES;
    let cursor = core::mem::size_of::<super::Cursor>();
    std::println!("log state {state} B (+ the flash value), cursor {cursor} B");
    assert!(state <= 128, "{state}");
    assert_eq!(cursor, 32);
}

/// The scripted workload: 1,200 steps of appends (random sizes), syncs, acks, reads, cursor
/// scans and restarts, several laps around the ring.
const STEPS: usize = 1200;

fn workload_laps<const R: usize, const W: usize, const E: usize>(
    flash: MockFlash<R, W, E>,
    cfg: Config,
    seed: u64,
) -> u64 {
    let steps = script(seed, STEPS);
    let (out, flash) = run(flash, cfg, &steps, 120).unwrap();
    assert_eq!(out.steps, STEPS);
    assert_eq!(out.recoveries, 0);
    let laps = flash.counts().erases / (cfg.end / E as u32) as u64;
    std::println!(
        "{STEPS} steps: {} flash ops, {} erases ({laps} laps), {} refused",
        out.flash_ops,
        flash.counts().erases,
        out.refused
    );
    assert!(laps >= 3, "the workload must wrap the ring several times");
    out.flash_ops
}

/// Cuts power at every write and erase of the workload (each in turn, one cut per run, a
/// different amount of the cut operation done each time), recovers, checks the recovered log
/// against the model, and runs the rest of the workload on it.
fn cut_everywhere<const R: usize, const W: usize, const E: usize>(
    new: fn() -> MockFlash<R, W, E>,
    cfg: Config,
    seed: u64,
) {
    let total = workload_laps(new(), cfg, seed);
    let steps = script(seed, STEPS);
    for n in 0..total {
        let mut flash = new();
        flash.cut_power(Cut::AtOp {
            n,
            keep_seed: n ^ seed,
        });
        let (out, _) =
            run(flash, cfg, &steps, 120).unwrap_or_else(|e| panic!("cut at op {n}: {e}"));
        assert_eq!(out.recoveries, 1, "cut at op {n} never happened");
    }
    std::println!("cut power at each of {total} flash operations: all recovered");
}

#[test]
fn power_cut_at_every_operation_refuse_new() {
    cut_everywhere(
        || MockFlash::<1, 4, 512>::new(6),
        Config::new(0, 6 * 512),
        1,
    );
}

#[test]
fn power_cut_at_every_operation_drop_oldest_wide_words() {
    // 16-byte words, 4-byte reads, a region that does not start at 0.
    cut_everywhere(
        || MockFlash::<4, 16, 1024>::new(5),
        Config::new(1024, 5 * 1024).when_full(WhenFull::DropOldest),
        2,
    );
}

#[test]
fn power_cut_at_every_operation_page_cache() {
    // A file in a page cache: at the cut, unsynced 16-byte blocks keep old or new contents.
    cut_everywhere(
        || MockFlash::<1, 1, 512>::new_cached(6),
        Config::new(0, 6 * 512).when_full(WhenFull::DropOldest),
        3,
    );
}

/// The same invariants as the fuzz target, seeded: random scripts, configs and cut points
/// (several cuts per run, by operation and by byte).
#[test]
fn seeded_random_power_cuts() {
    for seed in 0..300u64 {
        let mut r = Rng(seed);
        let steps = script(r.next_u64(), 150 + r.below(250) as usize);
        let when = if r.below(2) == 0 {
            WhenFull::RefuseNew
        } else {
            WhenFull::DropOldest
        };
        let max_len = 1 + r.below(200) as usize;
        let cut = if r.below(2) == 0 {
            Cut::AtOp {
                n: r.below(400),
                keep_seed: r.next_u64(),
            }
        } else {
            Cut::AfterBytes(r.below(20_000))
        };
        // Half the runs cut again after every recovery, within the next 1..60 operations.
        let recut = if r.below(2) == 0 { 0 } else { 1 + r.below(60) };
        let cs = r.next_u64();
        let res = match r.below(3) {
            0 => {
                let mut f = MockFlash::<1, 4, 256>::new(4);
                f.cut_power(cut);
                run_with_recuts(
                    f,
                    Config::new(0, 4 * 256).when_full(when),
                    &steps,
                    max_len.min(200),
                    recut,
                    cs,
                )
                .map(|_| ())
            }
            1 => {
                let mut f = MockFlash::<8, 8, 512>::new(3);
                f.cut_power(cut);
                run_with_recuts(
                    f,
                    Config::new(0, 3 * 512).when_full(when),
                    &steps,
                    max_len,
                    recut,
                    cs,
                )
                .map(|_| ())
            }
            _ => {
                let mut f = MockFlash::<1, 1, 256>::new_cached(5);
                f.cut_power(cut);
                run_with_recuts(
                    f,
                    Config::new(256, 5 * 256).when_full(when),
                    &steps,
                    max_len.min(200),
                    recut,
                    cs,
                )
                .map(|_| ())
            }
        };
        res.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

#[test]
fn scripts_use_every_step() {
    let s = script(1, STEPS);
    for want in [Step::Append, Step::Sync, Step::Reopen] {
        assert!(s.contains(&want));
    }
    assert!(s.iter().any(|s| matches!(s, Step::Ack(_))));
    assert!(s.iter().any(|s| matches!(s, Step::Read(_))));
    assert!(s.iter().any(|s| matches!(s, Step::Scan(..))));
}

#[test]
fn records_from_another_sector_life_fail_their_checksum() {
    use super::format::{Geo, Kind, Slot, read_slot, verify_record, write_record};
    let mut flash = Small::new(2);
    let geo = Geo::new(&flash, 0, 1024).unwrap();
    write_record(
        &mut flash,
        &geo,
        0,
        geo.data0,
        7,
        100,
        Kind::Data,
        b"payload",
    )
    .unwrap();
    let Slot::Header(h) = read_slot(&mut flash, &geo, 0, geo.data0).unwrap() else {
        panic!()
    };
    assert!(
        verify_record(&mut flash, &geo, 0, geo.data0, 7, 100, &h)
            .unwrap()
            .is_some()
    );
    // Same bytes, another sector counter or another sequence number: rejected.
    assert!(
        verify_record(&mut flash, &geo, 0, geo.data0, 8, 100, &h)
            .unwrap()
            .is_none()
    );
    assert!(
        verify_record(&mut flash, &geo, 0, geo.data0, 7, 101, &h)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_copied_sector_does_not_join_the_ring() {
    // Three sectors of log in a ring of six; then sector 0's bytes appear in sector 5 (just
    // before the oldest): same base, but its counter does not precede the oldest one's.
    let mut log = small6();
    while log.stats().sectors_used < 3 {
        log.append(&[9; 50]).unwrap();
    }
    log.sync().unwrap();
    let mut flash = log.into_inner();
    let copy = flash.bytes()[..512].to_vec();
    flash.write(5 * 512, &copy).unwrap();
    let log = Log::open(flash, Config::new(0, 6 * 512)).unwrap();
    assert_eq!(log.stats().sectors_used, 3);
    assert_eq!(log.stats().first, 1);
}

fn small6() -> Log<Small> {
    Log::open(Small::new(6), Config::new(0, 6 * 512)).unwrap()
}
