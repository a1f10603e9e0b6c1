//! Scripted cases first (many after nats-server's sublist_test.go), then a seeded model test:
//! thousands of interleaved inserts, removes and lookups checked against a plain `Vec` of
//! subscriptions and `subject::matches`, with the cache on, off and thrashing.

extern crate std;

use super::*;
use crate::subject::{SubjectError, matches};
use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;
use std::{format, vec};

/// A result in a comparable shape: sorted plain subscribers, and group name -> sorted members.
type Shape = (Vec<u32>, BTreeMap<Vec<u8>, Vec<u32>>);

fn shape(r: &MatchResult<u32>) -> Shape {
    let mut plain = r.plain().to_vec();
    plain.sort_unstable();
    let mut groups = BTreeMap::new();
    for g in r.groups() {
        let mut m = g.members().to_vec();
        m.sort_unstable();
        assert!(!m.is_empty(), "groups in a result are never empty");
        assert!(
            groups.insert(g.name().to_vec(), m).is_none(),
            "one entry per group name"
        );
    }
    (plain, groups)
}

fn plain(ids: &[u32]) -> Shape {
    (ids.to_vec(), BTreeMap::new())
}

#[test]
fn literal_and_wildcard_subscriptions() {
    let mut sl = Sublist::new();
    sl.insert(b"foo.bar", None, 1).unwrap();
    sl.insert(b"foo.*", None, 2).unwrap();
    sl.insert(b"foo.>", None, 3).unwrap();
    sl.insert(b">", None, 4).unwrap();
    sl.insert(b"*.bar", None, 5).unwrap();
    sl.insert(b"foo", None, 6).unwrap();

    assert_eq!(shape(&sl.lookup(b"foo.bar")), plain(&[1, 2, 3, 4, 5]));
    assert_eq!(shape(&sl.lookup(b"foo.baz")), plain(&[2, 3, 4]));
    assert_eq!(shape(&sl.lookup(b"foo.bar.baz")), plain(&[3, 4]));
    assert_eq!(shape(&sl.lookup(b"foo")), plain(&[4, 6]));
    assert_eq!(shape(&sl.lookup(b"nope")), plain(&[4]));
    assert_eq!(sl.len(), 6);
}

#[test]
fn published_subjects_with_empty_tokens_reach_nobody() {
    let mut sl = Sublist::new();
    sl.insert(b">", None, 1).unwrap();
    sl.insert(b">", Some(b"queue"), 2).unwrap();
    for subject in [
        &b""[..],
        b".foo",
        b"..foo",
        b"foo..",
        b"foo.",
        b"foo..bar",
        b"foo...bar",
    ] {
        assert!(sl.lookup(subject).is_empty(), "{subject:?}");
    }
    assert_eq!(sl.cache_len(), 0, "malformed subjects are not cached");
}

#[test]
fn wildcard_characters_inside_tokens_are_literals() {
    let mut sl = Sublist::new();
    sl.insert(b"foo.*-", None, 1).unwrap();
    sl.insert(b"foo.>-", None, 2).unwrap();
    sl.insert(b"foo*", None, 3).unwrap();
    assert!(sl.lookup(b"foo.bar").is_empty());
    assert_eq!(shape(&sl.lookup(b"foo.*-")), plain(&[1]));
    assert_eq!(shape(&sl.lookup(b"foo.>-")), plain(&[2]));
    assert_eq!(shape(&sl.lookup(b"foo*")), plain(&[3]));
    // A publish on `foo.*` is a literal token `*`: only wildcard subscriptions take it.
    sl.insert(b"foo.*", None, 4).unwrap();
    assert_eq!(shape(&sl.lookup(b"foo.*")), plain(&[4]));
    assert_eq!(sl.remove(b"foo.bar", None, &1), Err(SublistError::NotFound));
    assert_eq!(sl.len(), 4);
}

#[test]
fn queue_groups_are_merged_by_name_across_subjects() {
    let mut sl = Sublist::new();
    sl.insert(b"orders.new", Some(b"workers"), 1).unwrap();
    sl.insert(b"orders.*", Some(b"workers"), 2).unwrap();
    sl.insert(b"orders.>", Some(b"audit"), 3).unwrap();
    sl.insert(b"orders.new", None, 4).unwrap();
    let (p, groups) = shape(&sl.lookup(b"orders.new"));
    assert_eq!(p, vec![4]);
    assert_eq!(groups.get(&b"workers"[..]), Some(&vec![1, 2]));
    assert_eq!(groups.get(&b"audit"[..]), Some(&vec![3]));
    assert_eq!(sl.lookup(b"orders.new").fanout(), 3);
}

#[test]
fn invalid_subjects_and_queues_are_refused() {
    let mut sl: Sublist<u32> = Sublist::new();
    for (subject, err) in [
        (&b""[..], SubjectError::Empty),
        (b"foo.", SubjectError::EmptyToken),
        (b".foo", SubjectError::EmptyToken),
        (b"foo..bar", SubjectError::EmptyToken),
        (b"foo.>.bar", SubjectError::TokenAfterFullWildcard),
        (b"foo bar", SubjectError::Whitespace),
    ] {
        assert_eq!(
            sl.insert(subject, None, 1),
            Err(SublistError::InvalidSubject(err))
        );
        assert_eq!(
            sl.remove(subject, None, &1),
            Err(SublistError::InvalidSubject(err))
        );
    }
    assert_eq!(
        sl.insert(b"foo", Some(b""), 1),
        Err(SublistError::InvalidQueue(SubjectError::Empty))
    );
    assert_eq!(
        sl.insert(b"foo", Some(b"a b"), 1),
        Err(SublistError::InvalidQueue(SubjectError::Whitespace))
    );
    assert!(sl.is_empty());
    assert_eq!(sl.stats().inserts, 0);
}

#[test]
fn duplicates_are_reference_counted() {
    let mut sl = Sublist::new();
    assert_eq!(
        sl.insert(b"a.b", None, 7),
        Ok(Update {
            refs: 1,
            interest: 1
        })
    );
    let generation = sl.generation();
    assert_eq!(
        sl.insert(b"a.b", None, 7),
        Ok(Update {
            refs: 2,
            interest: 1
        })
    );
    assert_eq!(
        sl.generation(),
        generation,
        "a second reference changes no answer"
    );
    assert_eq!(
        sl.insert(b"a.b", None, 8),
        Ok(Update {
            refs: 1,
            interest: 2
        })
    );
    assert_eq!(shape(&sl.lookup(b"a.b")), plain(&[7, 8]));
    assert_eq!(sl.len(), 2);

    assert_eq!(
        sl.remove(b"a.b", None, &7),
        Ok(Update {
            refs: 1,
            interest: 2
        })
    );
    assert_eq!(shape(&sl.lookup(b"a.b")), plain(&[7, 8]));
    assert_eq!(
        sl.remove(b"a.b", None, &7),
        Ok(Update {
            refs: 0,
            interest: 1
        })
    );
    assert_eq!(sl.remove(b"a.b", None, &7), Err(SublistError::NotFound));
    assert_eq!(
        sl.remove(b"a.b", None, &8),
        Ok(Update {
            refs: 0,
            interest: 0
        })
    );
    assert!(sl.lookup(b"a.b").is_empty());

    // Queue weights, as a leafnode advertises them.
    assert_eq!(sl.insert(b"svc", Some(b"q"), 1).unwrap().interest, 1);
    assert_eq!(sl.insert(b"svc", Some(b"q"), 2).unwrap().interest, 2);
    assert_eq!(sl.insert(b"svc", Some(b"r"), 2).unwrap().interest, 1);
    assert_eq!(sl.remove(b"svc", Some(b"q"), &1).unwrap().interest, 1);
    assert_eq!(sl.remove(b"svc", Some(b"q"), &2).unwrap().interest, 0);
    assert_eq!(
        sl.remove(b"svc", Some(b"q"), &2),
        Err(SublistError::NotFound)
    );
    assert_eq!(sl.remove(b"svc", None, &2), Err(SublistError::NotFound));
}

#[test]
fn removing_everything_prunes_the_trie() {
    let mut sl = Sublist::new();
    let subjects: [&[u8]; 6] = [b"a.b.c", b"a.*.c", b"a.>", b"a.b", b"*.*.*.*", b"x.y.z.>"];
    for (i, s) in (0u32..6).zip(subjects) {
        sl.insert(s, None, i).unwrap();
        sl.insert(s, Some(b"q"), i).unwrap();
    }
    assert!(sl.trie.live_nodes() > 10);
    for (i, s) in (0u32..6).zip(subjects).rev() {
        sl.remove(s, Some(b"q"), &i).unwrap();
        sl.remove(s, None, &i).unwrap();
    }
    assert_eq!(sl.trie.live_nodes(), 1, "only the root is left");
    assert!(sl.is_empty());
    assert_eq!(sl.iter().count(), 0);
    // Freed nodes are reused.
    let allocated = sl.trie.nodes.len();
    sl.insert(b"a.b.c", None, 1).unwrap();
    assert_eq!(sl.trie.nodes.len(), allocated);
    assert_eq!(shape(&sl.lookup(b"a.b.c")), plain(&[1]));
}

#[test]
fn cache_is_patched_on_insert_and_evicted_on_remove() {
    let mut sl = Sublist::new();
    sl.insert(b"foo.bar", None, 1).unwrap();
    let before = sl.lookup(b"foo.bar");
    sl.lookup(b"other");
    assert_eq!(sl.cache_len(), 2);

    // A wildcard insert patches the entries it matches; results already handed out stay.
    sl.insert(b"foo.*", None, 2).unwrap();
    assert_eq!(shape(&before), plain(&[1]));
    assert_eq!(
        shape(&sl.lookup_cached(b"foo.bar").unwrap()),
        plain(&[1, 2])
    );
    assert!(sl.lookup_cached(b"other").unwrap().is_empty());

    // A literal insert touches only its own entry.
    sl.insert(b"other", Some(b"q"), 3).unwrap();
    assert_eq!(sl.cache_len(), 2);
    assert_eq!(sl.lookup_cached(b"other").unwrap().groups().len(), 1);

    // Removes evict: literal by key, wildcard by scan.
    sl.remove(b"other", Some(b"q"), &3).unwrap();
    assert!(sl.lookup_cached(b"other").is_none());
    assert!(sl.lookup_cached(b"foo.bar").is_some());
    sl.remove(b"foo.*", None, &2).unwrap();
    assert!(sl.lookup_cached(b"foo.bar").is_none());
    assert_eq!(shape(&sl.lookup(b"foo.bar")), plain(&[1]));

    let stats = sl.stats();
    assert_eq!(
        (stats.inserts, stats.removes, stats.subscriptions),
        (3, 2, 1)
    );
    assert_eq!(stats.cache_hits, 4);
    assert_eq!(stats.matches, 7);
    assert_eq!(stats.cache_misses(), 3);
    assert_eq!(
        (stats.cache_entries, stats.max_fanout, stats.total_fanout),
        (1, 1, 1)
    );
}

#[test]
fn cache_stays_bounded() {
    let mut sl: Sublist<u32> = Sublist::with_cache_capacity(64);
    sl.insert(b">", None, 1).unwrap();
    for i in 0..10_000 {
        let r = sl.lookup(format!("s.{i}").as_bytes());
        assert_eq!(r.plain(), &[1]);
        assert!(sl.cache_len() <= 64);
    }
    assert!(sl.cache_len() >= 32, "eviction keeps about half");
    sl.set_cache_capacity(10);
    assert!(sl.cache_len() <= 10);
    sl.set_cache_capacity(0);
    sl.lookup(b"x");
    assert_eq!(sl.cache_len(), 0);
}

#[test]
fn remove_batch_clears_what_it_must() {
    let mut sl = Sublist::new();
    sl.insert(b"a.*", None, 1).unwrap();
    sl.insert(b"a.b", None, 1).unwrap();
    sl.insert(b"c", None, 2).unwrap();
    sl.lookup(b"a.b");
    sl.lookup(b"c");
    let (removed, err) = sl.remove_batch([
        (&b"a.*"[..], None, &1),
        (&b"nope"[..], None, &1),
        (&b"a.b"[..], None, &1),
    ]);
    assert_eq!((removed, err), (2, Some(SublistError::NotFound)));
    assert_eq!(
        sl.cache_len(),
        0,
        "a wildcard left, so the cache was cleared"
    );
    assert_eq!(shape(&sl.lookup(b"c")), plain(&[2]));
    assert!(sl.lookup(b"a.b").is_empty());
}

#[test]
fn iter_lists_every_subscription() {
    let mut sl = Sublist::new();
    sl.insert(b"a.>", None, 1).unwrap();
    sl.insert(b"a.>", None, 1).unwrap();
    sl.insert(b"a.>", Some(b"q"), 2).unwrap();
    type Row = (Vec<u8>, Option<Vec<u8>>, u32, u32);
    let mut all: Vec<Row> = sl
        .iter()
        .map(|s| {
            (
                s.subject.to_vec(),
                s.queue.map(<[u8]>::to_vec),
                *s.subscriber,
                s.refs,
            )
        })
        .collect();
    all.sort();
    assert_eq!(
        all,
        vec![
            (b"a.>".to_vec(), None, 1, 2),
            (b"a.>".to_vec(), Some(b"q".to_vec()), 2, 1)
        ]
    );
}

#[test]
fn many_subscribers_on_one_node_use_the_index() {
    let mut sl = Sublist::new();
    for i in 0..1_000 {
        sl.insert(b"hot", None, i).unwrap();
        sl.insert(b"hot", Some(b"q"), i).unwrap();
    }
    for i in (0..1_000).step_by(2) {
        sl.remove(b"hot", None, &i).unwrap();
        sl.remove(b"hot", Some(b"q"), &i).unwrap();
    }
    let (p, g) = shape(&sl.lookup(b"hot"));
    let odd: Vec<u32> = (0..1_000).filter(|i| i % 2 == 1).collect();
    assert_eq!(p, odd);
    assert_eq!(g.get(&b"q"[..]), Some(&odd));
}

/// xorshift64*, seeded: the model test is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

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
