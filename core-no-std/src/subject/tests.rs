//! Subject rules as nats-server 2.15.1 applies them, then seeded property tests of matching
//! against a naive model built on `Vec`s of tokens.

extern crate std;

use super::*;
use std::string::String;
use std::vec;
use std::vec::Vec;

use SubjectError::*;

type Rule = (
    &'static str,
    Result<(), SubjectError>,
    Result<(), SubjectError>,
);

/// (subject, subscribe rules, publish rules). Rows marked [wire] were probed on a live
/// nats-server 2.15.1 (SUB answers `+OK` or `-ERR 'Invalid Subject'`; a pedantic PUB answers
/// `-ERR 'Invalid Publish Subject'`); the others come from nats-server's sublist_test.go.
const RULES: &[Rule] = &[
    ("foo", Ok(()), Ok(())),
    ("foo.bar.baz", Ok(()), Ok(())),
    (">", Ok(()), Err(Wildcard)),     // [wire]
    ("*", Ok(()), Err(Wildcard)),     // [wire]
    ("foo.>", Ok(()), Err(Wildcard)), // [wire]
    ("foo.*", Ok(()), Err(Wildcard)), // [wire]
    ("a.*.>", Ok(()), Err(Wildcard)), // [wire]
    ("*.*.*", Ok(()), Err(Wildcard)),
    (
        "foo.>.bar",
        Err(TokenAfterFullWildcard),
        Err(TokenAfterFullWildcard),
    ), // [wire]
    (
        ">.bar",
        Err(TokenAfterFullWildcard),
        Err(TokenAfterFullWildcard),
    ),
    (
        ">.>",
        Err(TokenAfterFullWildcard),
        Err(TokenAfterFullWildcard),
    ), // [wire]
    ("", Err(Empty), Err(Empty)),
    (".", Err(EmptyToken), Err(EmptyToken)),
    ("foo..bar", Err(EmptyToken), Err(EmptyToken)), // [wire]
    (".foo", Err(EmptyToken), Err(EmptyToken)),     // [wire]
    ("foo.", Err(EmptyToken), Err(EmptyToken)),     // [wire]
    ("foo.>.", Err(EmptyToken), Err(EmptyToken)),
    ("*..", Err(EmptyToken), Err(EmptyToken)), // malformation reported before the wildcard
    ("foo bar", Err(Whitespace), Err(Whitespace)),
    ("foo\tbar", Err(Whitespace), Err(Whitespace)),
    ("foo.\t", Err(Whitespace), Err(Whitespace)),
    ("foo\r", Err(Whitespace), Err(Whitespace)),
    ("foo\n.bar", Err(Whitespace), Err(Whitespace)),
    ("f\x0coo", Err(Whitespace), Err(Whitespace)), // nats-server's SUB path accepts this one
    ("foo\x0bbar", Ok(()), Ok(())),                // vertical tab is not in nats-server's set
    // Wildcard characters that are not a whole token are literals. [wire] for foo*, *foo, foo>.
    ("foo*", Ok(()), Ok(())),
    ("*foo", Ok(()), Ok(())),
    ("foo>", Ok(()), Ok(())),
    ("foo.>*", Ok(()), Ok(())),
    ("foo**", Ok(()), Ok(())),
    ("foo.**", Ok(()), Ok(())),
    ("foo*bar", Ok(()), Ok(())),
    ("foo.*bar", Ok(()), Ok(())),
    (">bar", Ok(()), Ok(())),
    ("foo.>>", Ok(()), Ok(())),
    ("foo.*-", Ok(()), Ok(())),
    // Bytes that are not separators, wildcards or whitespace are opaque. [wire]
    ("\u{0}a", Ok(()), Ok(())),
    ("$SYS.REQ.SERVER.PING", Ok(()), Ok(())),
    ("_INBOX.abc.*", Ok(()), Err(Wildcard)),
];

#[test]
fn subject_rules_match_nats_server() {
    for &(subject, sub, publish) in RULES {
        let s = subject.as_bytes();
        assert_eq!(validate(s), sub, "subscribe rules for {subject:?}");
        assert_eq!(
            validate_publish(s),
            publish,
            "publish rules for {subject:?}"
        );
        assert_eq!(is_valid(s), sub.is_ok(), "{subject:?}");
        assert_eq!(is_valid_publish(s), publish.is_ok(), "{subject:?}");
    }
}

#[test]
fn invalid_utf8_is_opaque() {
    assert_eq!(validate(b"\xff.\xfe"), Ok(())); // [wire] SUB \xff answers +OK
    assert_eq!(validate_publish(b"a.\xff"), Ok(()));
}

#[test]
fn very_long_subjects_are_valid_and_match() {
    // nats-server has no subject length limit other than its control line.
    let mut long = Vec::new();
    for _ in 0..10_000 {
        long.extend_from_slice(b"token.");
    }
    long.extend_from_slice(b"end");
    assert_eq!(validate_publish(&long), Ok(()));
    assert_eq!(num_tokens(&long), 10_001);
    assert!(matches(b">", &long));
    assert!(matches(b"token.>", &long));
    assert!(!matches(b"token.*", &long));
    assert!(matches(&long, &long));
    let mut filter = long.clone();
    filter.truncate(filter.len() - 3);
    filter.push(b'*');
    assert!(matches(&filter, &long));
    assert!(filter_contains(&filter, &long));
    assert!(collide(&filter, b"token.>"));

    let mut bad = long.clone();
    bad.push(b'.');
    assert_eq!(validate(&bad), Err(EmptyToken));
}

#[test]
fn queue_names() {
    assert_eq!(validate_queue(b"workers"), Ok(()));
    assert_eq!(validate_queue(b"v1.workers.*"), Ok(())); // dots and wildcards are plain bytes
    assert_eq!(validate_queue(SYSTEM_QUEUE), Ok(())); // refused by permission, not syntax
    assert_eq!(validate_queue(b""), Err(Empty));
    assert_eq!(validate_queue(b"a b"), Err(Whitespace));
    assert_eq!(validate_queue(b"a\x0cb"), Err(Whitespace));
}

#[test]
fn literals_and_tokens() {
    assert!(is_literal(b"foo.bar"));
    assert!(is_literal(b"foo*.bar"));
    assert!(!is_literal(b"*"));
    assert!(!is_literal(b">"));
    assert!(!is_literal(b"foo.*.bar"));
    assert!(!is_literal(b"foo.bar.>"));

    let t: Vec<&[u8]> = tokens(b"foo.bar.baz.*").collect();
    assert_eq!(t, vec![&b"foo"[..], b"bar", b"baz", b"*"]);
    let t: Vec<&[u8]> = tokens(b".a..").collect();
    assert_eq!(t, vec![&b""[..], b"a", b"", b""]);
    assert_eq!(tokens(b"").count(), 1);
    assert_eq!(num_tokens(b""), 0);
    assert_eq!(num_tokens(b"a.b"), 2);

    let mut it = tokens(b"a.b.c");
    it.next();
    assert_eq!(it.remainder(), Some(&b"b.c"[..]));
    assert_eq!(
        SubjectError::Wildcard.as_str(),
        "wildcard in publish subject"
    );
}

/// (filter, subject, delivered?). From nats-server's TestSublistMatchLiterals and
/// TestSublistMatchWithEmptyTokens, plus [wire] rows probed on 2.15.1.
const MATCHES: &[(&str, &str, bool)] = &[
    ("foo", "foo", true),
    ("bar", "foo", false),
    ("*", "foo", true),
    (">", "foo", true),
    (">", "foo.bar", true),
    ("foo.>", "foo.bar", true),
    ("bar.>", "foo.bar", false),
    ("stats.>", "stats.test.22", true),
    ("stats.*.*", "stats.test.22", true),
    ("foo", "foo.bar", false),
    ("stats.test.foos", "stats.test.foos", true),
    ("stats.test.foo", "stats.test.foos", false),
    ("stats.test.*", "stats.test", false),
    ("stats.*", "stats.test.foos", false),
    ("stats.*.*.foos", "stats.test.foos", false),
    ("foo.>", "foo", false),
    ("*bar", "*bar", true),
    ("foo*", "foo*", true), // [wire]
    ("*", "foo*", true),    // [wire]
    ("*foo", "foo*", false),
    ("foo.*", "foo*", false),
    ("foo.***.bar", "foo.***.bar", true),
    ("foo>", "foo>", true),
    ("foo.*", "foo.*", true), // a publish on foo.* in non-pedantic mode [wire]
    ("foo.>", "foo.*", true), // [wire]
    ("*", "foo.*", false),    // [wire]
    ("foo.bar", "foo.*", false),
    ("*", ">", true), // [wire]
    (">", ">", true), // [wire]
    ("foo.*-", "foo.bar", false),
    ("foo.*-", "foo.*-", true),
    // Empty tokens in the published subject never match, not even `>`.
    (">", ".foo", false),
    (">", "..foo", false),
    (">", "foo..", false),
    (">", "foo.", false),
    (">", "foo..bar", false),
    ("foo.>", "foo.bar..baz", false),
    ("*.*", "foo.", false),
    (">", "", false),
    // An invalid filter matches nothing.
    ("foo.>.bar", "foo.x.bar", false),
    ("foo..bar", "foo..bar", false),
    ("", "", false),
    ("foo bar", "foo bar", false),
];

#[test]
fn matching_table() {
    for &(filter, subject, want) in MATCHES {
        assert_eq!(
            matches(filter.as_bytes(), subject.as_bytes()),
            want,
            "{filter:?} vs {subject:?}"
        );
    }
}

#[test]
fn subset_and_collision_tables() {
    // nats-server TestIsSubsetMatch, as (narrower, wider, contained?).
    for (narrower, wider, want) in [
        ("foo.bar", "foo.bar", true),
        ("foo.*", ">", true),
        ("foo.*", "*.*", true),
        ("foo.*", "foo.*", true),
        ("foo.*", "foo.bar", false),
        ("foo.>", ">", true),
        ("foo.>", "*.>", true),
        ("foo.>", "foo.>", true),
        ("foo.>", "foo.bar", false),
        ("foo..bar", "foo.*", false),
        ("foo.*", "foo..bar", false),
        ("foo.>", "foo.*.>", false),
        ("foo.*.>", "foo.>", true),
        ("foo", "foo.>", false),
    ] {
        assert_eq!(
            filter_contains(wider.as_bytes(), narrower.as_bytes()),
            want,
            "{wider:?} contains {narrower:?}"
        );
    }
    // nats-server TestSublistSubjectCollide, plus the `*x` case where twig is exact.
    for (a, b, want) in [
        ("foo.*", "foo.*.bar.>", false),
        ("foo.*.bar.>", "foo.*", false),
        ("foo.*", "foo.foo", true),
        ("foo.*", "*.foo", true),
        ("foo.bar.>", "*.bar.foo", true),
        ("foo", "foo.>", false),
        ("a.*.>", "*.b", false),
        ("*x.*", "y.*", false),
        ("foo..bar", "foo..bar", false),
    ] {
        assert_eq!(collide(a.as_bytes(), b.as_bytes()), want, "{a:?} vs {b:?}");
    }
}

pub(crate) use crate::testing::Rng;

/// A random subject of 0..=4 tokens; `weird` mixes in malformed and look-alike tokens.
fn random_subject(rng: &mut Rng, weird: bool) -> String {
    const NORMAL: &[&str] = &["a", "b", "c", "*", ">"];
    const WEIRD: &[&str] = &["a", "b", "*", ">", "", "a*", ">b", " ", "a\tb"];
    let n = rng.below(5);
    let mut parts = Vec::new();
    for _ in 0..n {
        parts.push(rng.pick(if weird { WEIRD } else { NORMAL }));
    }
    parts.join(".")
}

/// The model: split into `Vec`s and recurse, straight from the rules in prose.
fn model_valid(subject: &str) -> bool {
    let toks: Vec<&str> = subject.split('.').collect();
    !subject.is_empty()
        && toks
            .iter()
            .all(|t| !t.is_empty() && !t.contains([' ', '\t', '\n', '\r', '\x0c']))
        && toks.iter().rev().skip(1).all(|t| *t != ">")
}

fn model_match_tokens(f: &[&str], s: &[&str]) -> bool {
    match (f.first(), s.first()) {
        (None, None) => true,
        (Some(&">"), Some(_)) => true,
        (Some(ft), Some(st)) => (*ft == "*" || ft == st) && model_match_tokens(&f[1..], &s[1..]),
        _ => false,
    }
}

fn model_matches(filter: &str, subject: &str) -> bool {
    let f: Vec<&str> = filter.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    model_valid(filter)
        && !subject.is_empty()
        && s.iter().all(|t| !t.is_empty())
        && model_match_tokens(&f, &s)
}

#[test]
fn validation_agrees_with_model() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..20_000 {
        let s = random_subject(&mut rng, true);
        assert_eq!(is_valid(s.as_bytes()), model_valid(&s), "{s:?}");
        let literal = !s.split('.').any(|t| t == "*" || t == ">");
        assert_eq!(
            is_valid_publish(s.as_bytes()),
            model_valid(&s) && literal,
            "{s:?}"
        );
    }
}

#[test]
fn matches_agrees_with_model() {
    let mut rng = Rng(0x5eed_0002);
    let mut hits = 0;
    for _ in 0..50_000 {
        let weird = rng.below(4) == 0;
        let filter = random_subject(&mut rng, weird);
        let subject = random_subject(&mut rng, weird);
        let want = model_matches(&filter, &subject);
        hits += usize::from(want);
        assert_eq!(
            matches(filter.as_bytes(), subject.as_bytes()),
            want,
            "{filter:?} vs {subject:?}"
        );
    }
    assert!(
        hits > 1_000,
        "the generator should produce plenty of matches, got {hits}"
    );
}

/// Every subject over the tokens `a`, `b`, `c` plus one token no filter names, up to `max` tokens:
/// any witness for containment or collision of filters of fewer tokens can be rewritten into one.
fn all_literals(max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut frontier = vec![String::new()];
    for _ in 0..max {
        let mut next = Vec::new();
        for prefix in &frontier {
            for t in ["a", "b", "c", "z"] {
                let s = if prefix.is_empty() {
                    String::from(t)
                } else {
                    std::format!("{prefix}.{t}")
                };
                next.push(s);
            }
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    out
}

#[test]
fn contains_and_collide_agree_with_brute_force() {
    let literals = all_literals(5);
    let mut rng = Rng(0x5eed_0003);
    let (mut checked, mut collisions, mut containments) = (0, 0, 0);
    for _ in 0..1_500 {
        let a = random_subject(&mut rng, false);
        let b = random_subject(&mut rng, false);
        let (ab, bb) = (a.as_bytes(), b.as_bytes());
        if !is_valid(ab) || !is_valid(bb) {
            assert!(!collide(ab, bb) && !filter_contains(ab, bb));
            continue;
        }
        let both = literals
            .iter()
            .any(|s| matches(ab, s.as_bytes()) && matches(bb, s.as_bytes()));
        assert_eq!(collide(ab, bb), both, "collide {a:?} {b:?}");
        let covered = literals
            .iter()
            .all(|s| !matches(bb, s.as_bytes()) || matches(ab, s.as_bytes()));
        assert_eq!(filter_contains(ab, bb), covered, "{a:?} contains {b:?}");
        checked += 1;
        collisions += usize::from(both);
        containments += usize::from(covered);
    }
    assert!(
        checked > 300 && collisions > 50 && containments > 20,
        "{checked} {collisions} {containments}"
    );
}
