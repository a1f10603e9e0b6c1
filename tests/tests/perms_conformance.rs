//! Permissions, byte for byte against nats-server 2.15.1: one config in nats-server's format
//! (`tests/natsconf/perms.conf`: per-user permissions, deny rules, queue-group entries,
//! `allow_responses`, `default_permissions`, `no_auth_user`) given unchanged to nats-server
//! and to twig, and the raw conversations of `tests/conformance/perms.conv` replayed to both
//! (ids masked, see `harness::conversation`). The reference's replies must also hold each
//! case's `expect` lines, so a case cannot silently stop testing what it claims.
//!
//! `TWIG_CONFORMANCE_CASE=substring` runs only matching cases; `TWIG_CONFORMANCE_SHOW=1`
//! prints every transcript.

use std::sync::Mutex;

use twig_tests::harness::conversation::{self, Case, Transcript};
use twig_tests::harness::{ServerOptions, Target, workspace_root};

/// Cases run this many at a time (each starts two servers; the machine is small).
const WORKERS: usize = 3;

fn cases(conv: &str, conf: &str) -> Vec<Case> {
    let root = workspace_root();
    let path = root.join("tests/conformance").join(conv);
    let text = std::fs::read_to_string(&path).unwrap();
    let filter = std::env::var("TWIG_CONFORMANCE_CASE").unwrap_or_default();
    let conf = root.join("tests/natsconf").join(conf).display().to_string();
    let mut cases = conversation::parse(&text).unwrap_or_else(|e| panic!("{conv}: {e}"));
    assert!(!cases.is_empty(), "{conv} has no cases");
    cases.retain(|c| c.name.contains(filter.as_str()));
    for c in &mut cases {
        c.options = ServerOptions {
            extra_args: vec!["-c".into(), conf.clone()],
            ..ServerOptions::default()
        };
    }
    cases
}

fn render(t: &[Transcript]) -> String {
    let mut s = String::new();
    for (i, lines) in t.iter().enumerate() {
        for l in lines {
            s.push_str(&format!("    {i}| {l}\n"));
        }
    }
    s
}

fn check(case: &Case, target: Target) -> Result<(), String> {
    let (reference, under_test) = std::thread::scope(|s| {
        let r = s.spawn(|| conversation::run(case, Target::NatsServer));
        let t = s.spawn(|| conversation::run(case, target));
        (r.join().unwrap(), t.join().unwrap())
    });
    if std::env::var_os("TWIG_CONFORMANCE_SHOW").is_some() {
        eprintln!("== {} (nats-server)\n{}", case.name, render(&reference));
    }
    let mut problems = conversation::check_expectations(case, &reference);
    if reference != under_test {
        problems.push(format!(
            "replies differ\n  nats-server:\n{}  {}:\n{}",
            render(&reference),
            target.name(),
            render(&under_test)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("case {}: {}", case.name, problems.join("; ")))
    }
}

fn run_all(cases: &[Case]) {
    let target = Target::from_env();
    let next = Mutex::new(cases.iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                while let Some(case) = { next.lock().unwrap().next() } {
                    if let Err(e) = check(case, target) {
                        failures.lock().unwrap().push(e);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} permission conversations differ from nats-server:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn permissions_match_nats_server() {
    run_all(&cases("perms.conv", "perms.conf"));
}
