//! A seeded model test: thousands of interleaved inserts, removes and lookups checked against a
//! plain `Vec` of subscriptions and `subject::matches`, with the cache on, off and thrashing.

extern crate std;

use super::tests::{Shape, plain, shape};
use super::*;
use crate::subject::matches;
use std::format;
use std::string::String;
use std::vec::Vec;

use crate::testing::Rng;

fn random_filter(rng: &mut Rng) -> String {
    const TOKENS: &[&str] = &["a", "b", "c", "d", "*", "*"];
    let n = 1 + rng.below(4);
    let mut parts: Vec<&str> = (0..n).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
    if rng.below(5) == 0 {
        parts.push(">");
    }
    parts.join(".")
}

fn random_published(rng: &mut Rng) -> String {
    // `*` and `>` here are published literally (a non-pedantic server accepts them).
    const TOKENS: &[&str] = &["a", "b", "c", "d", "e", "a", "b", "*", ">"];
    let n = 1 + rng.below(5);
    let s: Vec<&str> = (0..n).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
    match rng.below(40) {
        0 => format!("{}.", s.join(".")),
        1 => format!("a..{}", s.join(".")),
        _ => s.join("."),
    }
}

/// One model entry: (subject, queue, subscriber, refs).
type Entry = (String, Option<&'static str>, u32, u32);

fn model_lookup(model: &[Entry], subject: &str) -> Shape {
    let mut r = MatchResult::new();
    for (filter, queue, id, _) in model {
        if matches(filter.as_bytes(), subject.as_bytes()) {
            let group = queue.map(|q| Arc::<[u8]>::from(q.as_bytes()));
            r.push(id, group.as_ref());
        }
    }
    shape(&r)
}

/// The knobs of one model run.
struct Run {
    seed: u64,
    cache: usize,
    ops: usize,
    /// Few subjects, many subscribers: nodes grow past the point where they build an index.
    crowded: bool,
}

fn run_model(run: Run) {
    let Run {
        seed,
        cache,
        ops,
        crowded,
    } = run;
    let ids = if crowded { 60 } else { 6 };
    let filter = |rng: &mut Rng| {
        if crowded {
            String::from(["a", "a.*", ">", "*"][rng.below(4)])
        } else {
            random_filter(rng)
        }
    };
    const QUEUES: &[Option<&str>] = &[None, None, Some("q1"), Some("q2")];
    let mut rng = Rng(seed);
    let mut sl: Sublist<u32> = Sublist::with_cache_capacity(cache);
    let mut model: Vec<Entry> = Vec::new();
    let mut nonempty_lookups = 0;
    for op in 0..ops {
        // Keep around 250 subscriptions: enough to collide, small enough to churn.
        let insert_below = if model.len() > 250 { 2 } else { 3 };
        match rng.below(10) {
            n if n < insert_below => {
                let (subject, queue, id) = (
                    filter(&mut rng),
                    QUEUES[rng.below(4)],
                    rng.below(ids) as u32,
                );
                let got = sl
                    .insert(subject.as_bytes(), queue.map(str::as_bytes), id)
                    .unwrap();
                let refs = match model
                    .iter_mut()
                    .find(|e| e.0 == subject && e.1 == queue && e.2 == id)
                {
                    Some(e) => {
                        e.3 += 1;
                        e.3
                    }
                    None => {
                        model.push((subject.clone(), queue, id, 1));
                        1
                    }
                };
                let interest = model
                    .iter()
                    .filter(|e| e.0 == subject && e.1 == queue)
                    .count();
                assert_eq!(
                    got,
                    Update { refs, interest },
                    "op {op}: insert {subject} {queue:?} {id}"
                );
            }
            n if n < 5 => {
                // Mostly an existing entry, sometimes a random (probably absent) one.
                let (subject, queue, id) = if !model.is_empty() && rng.below(4) != 0 {
                    let e = &model[rng.below(model.len())];
                    (e.0.clone(), e.1, e.2)
                } else {
                    (
                        filter(&mut rng),
                        QUEUES[rng.below(4)],
                        rng.below(ids) as u32,
                    )
                };
                let got = sl.remove(subject.as_bytes(), queue.map(str::as_bytes), &id);
                match model
                    .iter()
                    .position(|e| e.0 == subject && e.1 == queue && e.2 == id)
                {
                    None => assert_eq!(got, Err(SublistError::NotFound), "op {op}"),
                    Some(i) => {
                        model[i].3 -= 1;
                        let refs = model[i].3;
                        if refs == 0 {
                            model.swap_remove(i);
                        }
                        let interest = model
                            .iter()
                            .filter(|e| e.0 == subject && e.1 == queue)
                            .count();
                        assert_eq!(
                            got,
                            Ok(Update { refs, interest }),
                            "op {op}: remove {subject}"
                        );
                    }
                }
            }
            _ => {
                let subject = random_published(&mut rng);
                let want = model_lookup(&model, &subject);
                nonempty_lookups += usize::from(want != plain(&[]));
                if let Some(cached) = sl.lookup_cached(subject.as_bytes()) {
                    assert_eq!(shape(&cached), want, "op {op}: stale cache for {subject}");
                }
                assert_eq!(
                    shape(&sl.lookup(subject.as_bytes())),
                    want,
                    "op {op}: {subject}"
                );
                assert_eq!(
                    shape(&sl.lookup_uncached(subject.as_bytes())),
                    want,
                    "op {op}"
                );
            }
        }
        assert_eq!(sl.len(), model.len(), "op {op}");
        assert!(sl.cache_len() <= cache);
        if op % 500 == 0 {
            let mut held: Vec<Entry> = sl
                .iter()
                .map(|s| {
                    let q = s.queue.map(|q| if q == b"q1" { "q1" } else { "q2" });
                    (
                        String::from_utf8(s.subject.to_vec()).unwrap(),
                        q,
                        *s.subscriber,
                        s.refs,
                    )
                })
                .collect();
            let mut want = model.clone();
            held.sort();
            want.sort();
            assert_eq!(held, want, "op {op}: iter");
        }
    }
    assert!(
        nonempty_lookups > ops / 20,
        "the generator should find subscribers: {nonempty_lookups}"
    );
    // Drain through the batch path and check the trie is pruned back to its root.
    type Removal<'a> = (Vec<u8>, Option<&'a [u8]>, u32);
    let batch: Vec<Removal<'_>> = model
        .iter()
        .flat_map(|(s, q, id, refs)| {
            (0..*refs).map(move |_| (s.as_bytes().to_vec(), q.map(str::as_bytes), *id))
        })
        .collect();
    let (removed, err) = sl.remove_batch(batch.iter().map(|(s, q, id)| (&s[..], *q, id)));
    assert_eq!((removed, err), (batch.len(), None));
    assert!(sl.is_empty());
    assert_eq!(sl.trie.live_nodes(), 1);
    assert!(sl.lookup(b"a.b").is_empty());
}

#[test]
fn model_with_default_cache() {
    run_model(Run {
        seed: 0x50b1_0001,
        cache: DEFAULT_CACHE_CAPACITY,
        ops: 20_000,
        crowded: false,
    });
}

#[test]
fn model_with_thrashing_cache() {
    run_model(Run {
        seed: 0x50b1_0002,
        cache: 4,
        ops: 20_000,
        crowded: false,
    });
}

#[test]
fn model_without_cache() {
    run_model(Run {
        seed: 0x50b1_0003,
        cache: 0,
        ops: 10_000,
        crowded: false,
    });
}

#[test]
fn model_with_crowded_nodes() {
    run_model(Run {
        seed: 0x50b1_0004,
        cache: 16,
        ops: 10_000,
        crowded: true,
    });
}
