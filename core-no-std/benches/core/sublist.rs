//! Sublist matches per second with 10,000 subscriptions, a tenth of them wildcards.

use std::hint::black_box;
use std::time::{Duration, Instant};

use twig_core::sublist::Sublist;

use twig_core::testing::Rng;

/// Runs `step` in rounds until `budget` has passed; returns calls per second.
fn rate(budget: Duration, mut step: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    let mut calls = 0usize;
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            step(calls);
            calls += 1;
        }
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

/// Sublist lookups per second with 10,000 subscriptions, a tenth of them wildcards, over
/// random 4-token literal subjects (20 tokens per level, so 160,000 possible subjects):
/// - cache-hit heavy: publishes drawn from 512 subjects, which all fit in the cache;
/// - cache-miss heavy: publishes drawn from all 160,000, so nearly every lookup walks the trie
///   and churns the (default, 1024-entry) cache;
/// - inbox churn: SUB on a fresh literal `_INBOX.<n>`, one lookup of it, UNSUB, as old-style
///   request/reply does, while the hot subjects stay cached.
pub fn bench_sublist() {
    const SUBS: usize = 10_000;
    const WILDCARDS: usize = SUBS / 10;
    const LEVEL: usize = 20;
    let budget = Duration::from_millis(1_500);
    let mut rng = Rng(0x7716_0001);
    let literal = |rng: &mut Rng| -> Vec<String> {
        (0..4)
            .map(|level| format!("l{level}t{}", rng.below(LEVEL)))
            .collect()
    };

    let mut sl: Sublist<u32> = Sublist::new();
    for id in 0..SUBS {
        let mut tokens = literal(&mut rng);
        if id < WILDCARDS {
            if rng.below(3) == 0 {
                // `>` after one to three tokens.
                tokens.truncate(1 + rng.below(3));
                tokens.push(">".into());
            } else {
                let at = rng.below(4);
                tokens[at] = "*".into();
            }
        }
        let queue: Option<&[u8]> = (id % 7 == 0).then_some(b"workers");
        sl.insert(tokens.join(".").as_bytes(), queue, id as u32)
            .expect("valid subject");
    }

    let hot: Vec<Vec<u8>> = (0..512)
        .map(|_| literal(&mut rng).join(".").into_bytes())
        .collect();
    let cold: Vec<Vec<u8>> = (0..200_000)
        .map(|_| literal(&mut rng).join(".").into_bytes())
        .collect();

    let mut fanout = 0usize;
    let hits = rate(budget, |i| {
        let r = sl.lookup(&hot[i % hot.len()]);
        fanout += r.fanout();
        black_box(r);
    });
    let stats = sl.stats();
    println!(
        "sublist: {SUBS} subs ({WILDCARDS} wildcard), {hits:.0} matches/s cache-hit heavy \
         (hit rate {:.3}, mean fanout {:.1})",
        stats.cache_hit_rate(),
        stats.avg_fanout(),
    );

    let before = sl.stats();
    let misses = rate(budget, |i| {
        black_box(sl.lookup(&cold[i % cold.len()]));
    });
    let after = sl.stats();
    let hit_rate = (after.cache_hits - before.cache_hits) as f64
        / (after.matches - before.matches).max(1) as f64;
    println!(
        "sublist: {SUBS} subs ({WILDCARDS} wildcard), {misses:.0} matches/s cache-miss heavy \
         (hit rate {hit_rate:.3})",
    );

    let mut next_inbox = 0u64;
    let churn = rate(budget, |i| {
        next_inbox += 1;
        let inbox = format!("_INBOX.{next_inbox}");
        sl.insert(inbox.as_bytes(), None, 1).expect("valid inbox");
        black_box(sl.lookup(inbox.as_bytes()));
        sl.remove(inbox.as_bytes(), None, &1)
            .expect("just inserted");
        black_box(sl.lookup(&hot[i % hot.len()]));
    });
    println!(
        "sublist: {SUBS} subs, {churn:.0} inbox cycles/s (sub, reply lookup, unsub, hot lookup; \
         cache {} entries)",
        sl.cache_len(),
    );
    black_box(fanout);
}
