//! The table's tests: behaviour, compaction in a small ring, and power cuts at every flash
//! write and erase of a scripted run, checked against a plain model.

extern crate std;

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use std::format;

use super::*;
use crate::log::testing::{Cut, MockFlash, Rng};

const SECTOR: usize = 512;
type Flash = MockFlash<4, 4, SECTOR>;

fn config(sectors: usize) -> Config {
    Config::new(0, (sectors * SECTOR) as u32)
}

fn get(t: &mut Table<Flash>, key: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    t.get(key, &mut out).unwrap().then_some(out)
}

#[test]
fn put_get_delete_and_reopen() {
    let mut t = Table::open(Flash::new(4), config(4)).unwrap();
    assert!(t.is_empty());
    t.put(b"retain/a", b"1").unwrap();
    t.put(b"retain/b", b"2").unwrap();
    t.put(b"sess/x", b"3").unwrap();
    t.put(b"retain/a", b"one").unwrap();
    assert!(t.delete(b"retain/b").unwrap());
    assert!(!t.delete(b"retain/b").unwrap());
    assert_eq!(get(&mut t, b"retain/a").as_deref(), Some(&b"one"[..]));
    assert_eq!(get(&mut t, b"retain/b"), None);
    let keys: Vec<&[u8]> = t.keys_with_prefix(b"retain/").collect();
    assert_eq!(keys, [&b"retain/a"[..]]);
    t.sync().unwrap();
    let mut t = Table::open(t.into_inner(), config(4)).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(get(&mut t, b"retain/a").as_deref(), Some(&b"one"[..]));
    assert_eq!(get(&mut t, b"sess/x").as_deref(), Some(&b"3"[..]));
}

#[test]
fn compaction_keeps_a_small_ring_going() {
    let mut t = Table::open(Flash::new(4), config(4)).unwrap();
    // Cold keys, written once: they live only if compaction copies them forward.
    for c in 0..4u8 {
        t.put(&[b'c', c], &[c; 50]).unwrap();
    }
    for i in 0..2_000u32 {
        let key = format!("k{}", i % 5);
        let value = vec![i as u8; (i % 40) as usize];
        t.put(key.as_bytes(), &value).unwrap();
        if i % 7 == 0 {
            t.delete(format!("k{}", (i + 2) % 5).as_bytes()).unwrap();
        }
    }
    t.sync().unwrap();
    let before: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..5)
        .map(|i| {
            let k = format!("k{i}").into_bytes();
            let v = get(&mut t, &k);
            (k, v)
        })
        .collect();
    let mut t = Table::open(t.into_inner(), config(4)).unwrap();
    for (k, v) in before {
        assert_eq!(get(&mut t, &k), v);
    }
    for c in 0..4u8 {
        assert_eq!(get(&mut t, &[b'c', c]), Some(vec![c; 50]));
    }
    assert!(
        t.log().stats().acked > 1_000,
        "the ring turned over many times"
    );
}

#[test]
fn live_data_is_bounded() {
    let mut t = Table::open(Flash::new(4), config(4)).unwrap();
    assert_eq!(t.max_live(), 2 * (SECTOR - 64));
    let mut n = 0;
    while t.put(format!("key{n}").as_bytes(), &[7; 100]).is_ok() {
        n += 1;
    }
    assert_eq!(t.put(b"more", &[0; 100]), Err(Error::Full));
    assert!(n >= 5, "{n} values of 100 bytes in 1 KiB of live data");
    // Deleting makes room again, and the ring still turns over.
    t.delete(b"key0").unwrap();
    for _ in 0..50 {
        t.put(b"key0", &[1; 100]).unwrap();
    }
    assert_eq!(t.put(&[0; 70_000], b""), Err(Error::TooLarge));
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Sync,
}

/// Cold keys (10..14) written once at the start, so they survive only by being copied
/// forward; then hot keys (0..6) overwritten and deleted at random.
fn script(seed: u64, n: usize) -> Vec<Op> {
    let mut r = Rng(seed);
    let mut ops: Vec<Op> = (10..14).map(|k| Op::Put(k, 40)).collect();
    ops.push(Op::Sync);
    ops.extend((0..n).map(|_| match r.below(10) {
        0..=5 => Op::Put(r.below(6) as u8, r.below(60) as u8),
        6..=7 => Op::Delete(r.below(6) as u8),
        _ => Op::Sync,
    }));
    ops
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn value(i: usize, len: u8) -> Vec<u8> {
    (0..len)
        .map(|b| (i as u8).wrapping_mul(31).wrapping_add(b))
        .collect()
}

/// Runs `ops` until the flash fails; returns the model after each completed op (index 0:
/// before any), the index of the state the last completed sync made durable, and the flash.
fn run(mut flash: Flash, ops: &[Op]) -> (Vec<Model>, usize, Flash) {
    let mut states = vec![Model::new()];
    let mut synced = 0;
    let mut t = match Table::open(flash.clone(), config(4)) {
        Ok(t) => t,
        Err(_) => return (states, synced, flash),
    };
    for (i, op) in ops.iter().enumerate() {
        let mut m = states.last().cloned().unwrap_or_default();
        let r = match *op {
            Op::Put(k, len) => {
                let v = value(i, len);
                m.insert(vec![k], v.clone());
                t.put(&[k], &v)
            }
            Op::Delete(k) => {
                m.remove(&vec![k]);
                t.delete(&[k]).map(|_| ())
            }
            Op::Sync => t.sync(),
        };
        match r {
            Ok(()) => {
                states.push(m);
                if matches!(op, Op::Sync) {
                    synced = states.len() - 1;
                }
            }
            Err(Error::Full) => states.push(states.last().cloned().unwrap_or_default()),
            Err(_) => {
                // The power went during this op: it may or may not have happened.
                states.push(m);
                flash = t.into_inner();
                return (states, synced, flash);
            }
        }
    }
    flash = t.into_inner();
    (states, synced, flash)
}

fn recovered(flash: Flash) -> Model {
    let mut t = Table::open(flash, config(4)).expect("opens after any cut");
    let keys: Vec<Vec<u8>> = t.keys().map(<[u8]>::to_vec).collect();
    keys.into_iter()
        .map(|k| {
            let v = get(&mut t, &k).unwrap();
            (k, v)
        })
        .collect()
}

fn cut_everywhere(cached: bool, seed: u64) {
    let fresh = || {
        if cached {
            Flash::new_cached(4)
        } else {
            Flash::new(4)
        }
    };
    let ops = script(seed, 300);
    let (_, _, dry) = run(fresh(), &ops);
    let total = dry.counts().writes + dry.counts().erases;
    assert!(total > 100, "the script wraps the ring: {total} operations");
    for n in 0..total {
        let mut flash = fresh();
        flash.cut_power(Cut::AtOp {
            n,
            keep_seed: n.wrapping_mul(0x9E37_79B9),
        });
        let (states, synced, mut flash) = run(flash, &ops);
        flash.power_on();
        let got = recovered(flash);
        let ok = states[synced..].contains(&got);
        assert!(
            ok,
            "cut at op {n}: recovered {got:?}, synced state #{synced} of {}",
            states.len()
        );
    }
}

#[test]
fn power_cut_at_every_operation() {
    cut_everywhere(false, 1);
    cut_everywhere(false, 2);
}

#[test]
fn power_cut_at_every_operation_page_cache() {
    cut_everywhere(true, 3);
}
