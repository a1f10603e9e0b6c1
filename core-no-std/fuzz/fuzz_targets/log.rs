//! The flash log under random operations and random power cuts, checked against a plain model
//! (`twig_core::log::testing`): after every recovery the log holds a contiguous run of what was
//! appended, everything synced and not acknowledged, an acked cursor no further than acked and
//! no older than synced, and it accepts appends again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twig_core::log::testing::{Cut, MockFlash, Rng, Step, run_with_recuts};
use twig_core::log::{Config, WhenFull};

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let Some((cut_bytes, rest)) = rest.split_first_chunk::<4>() else { return };
    // Each further byte is one step (steps are relative to the log's state, so any byte string
    // is a meaningful script).
    let steps: Vec<Step> = rest
        .iter()
        .take(2000)
        .map(|&b| Step::from_entropy(&mut Rng(u64::from(b) | 0x100)))
        .collect();
    let cut_word = u32::from_le_bytes(*cut_bytes);
    let cut = match head & 3 {
        0 => Cut::AtOp { n: u64::from(cut_word % 512), keep_seed: u64::from(cut_word) },
        1 => Cut::AfterBytes(u64::from(cut_word % 40_000)),
        2 => Cut::AtOp { n: u64::from(cut_word % 64), keep_seed: u64::from(cut_word) },
        _ => Cut::AtOp { n: u64::MAX, keep_seed: 0 },
    };
    let when = if head & 4 == 0 { WhenFull::RefuseNew } else { WhenFull::DropOldest };
    let recut = if head & 8 == 0 { 0 } else { 1 + u64::from(cut_word >> 24) };
    let max_len = [0usize, 7, 40, 120, 300][usize::from(head >> 4) % 5];
    let seed = u64::from(cut_word).wrapping_mul(31);
    let res = match (head >> 6) & 3 {
        0 => {
            let mut f = MockFlash::<1, 4, 256>::new(4);
            f.cut_power(cut);
            run_with_recuts(f, Config::new(0, 4 * 256).when_full(when), &steps, max_len.min(200), recut, seed).map(|_| ())
        }
        1 => {
            let mut f = MockFlash::<8, 8, 512>::new(3);
            f.cut_power(cut);
            run_with_recuts(f, Config::new(512, 3 * 512).when_full(when), &steps, max_len, recut, seed).map(|_| ())
        }
        2 => {
            let mut f = MockFlash::<4, 32, 1024>::new(2);
            f.cut_power(cut);
            run_with_recuts(f, Config::new(0, 2 * 1024).when_full(when), &steps, max_len, recut, seed).map(|_| ())
        }
        _ => {
            // A file in a page cache.
            let mut f = MockFlash::<1, 1, 256>::new_cached(5);
            f.cut_power(cut);
            run_with_recuts(f, Config::new(0, 5 * 256).when_full(when), &steps, max_len.min(200), recut, seed).map(|_| ())
        }
    };
    if let Err(e) = res {
        panic!("{e}");
    }
});
