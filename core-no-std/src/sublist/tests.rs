//! Scripted cases, many after nats-server's sublist_test.go. The seeded model test is in
//! `model.rs`.

extern crate std;

use super::*;
use crate::subject::SubjectError;
use std::collections::BTreeMap;
use std::vec::Vec;
use std::{format, vec};

/// A result in a comparable shape: sorted plain subscribers, and group name -> sorted members.
pub(super) type Shape = (Vec<u32>, BTreeMap<Vec<u8>, Vec<u32>>);

pub(super) fn shape(r: &MatchResult<u32>) -> Shape {
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

pub(super) fn plain(ids: &[u32]) -> Shape {
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
