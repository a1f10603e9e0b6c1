//! Subject validation and matching: never panic, and `matches` agrees with a plain model
//! (token by token, `*` one token, `>` one or more trailing tokens).
#![no_main]

use libfuzzer_sys::fuzz_target;
use twig_core::subject;

fn model(filter: &[u8], subject: &[u8]) -> bool {
    let f: Vec<&[u8]> = filter.split(|&b| b == b'.').collect();
    let s: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
    for (i, ft) in f.iter().enumerate() {
        if *ft == b">" {
            return i == f.len() - 1 && s.len() > i;
        }
        match s.get(i) {
            Some(st) if *ft == b"*" || ft == st => {}
            _ => return false,
        }
    }
    f.len() == s.len()
}

fuzz_target!(|data: &[u8]| {
    // One byte picks the split between filter and subject.
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = usize::from(cut).min(rest.len());
    let (filter, subj) = rest.split_at(cut);
    let filter_ok = subject::validate(filter).is_ok();
    let subj_ok = subject::validate_publish(subj).is_ok();
    let _ = subject::validate_queue(filter);
    let _ = subject::tokens(filter).count();
    let _ = subject::collide(filter, subj);
    if filter_ok && subj_ok {
        assert_eq!(subject::matches(filter, subj), model(filter, subj), "{filter:?} {subj:?}");
        // A literal subject is its own filter.
        assert!(subject::matches(subj, subj));
        if subject::filter_contains(filter, subj) {
            assert!(subject::matches(filter, subj));
        }
    } else {
        let _ = subject::matches(filter, subj);
        let _ = subject::filter_contains(filter, subj);
    }
    // Publish-valid implies subscribe-valid.
    if subj_ok {
        assert!(subject::validate(subj).is_ok());
    }
});
