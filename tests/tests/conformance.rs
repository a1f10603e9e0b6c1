//! Protocol conformance: the raw conversations in `tests/conformance/*.conv` are replayed to a
//! real nats-server (the reference) and to the server under test (`TWIG_TEST_TARGET`, default
//! twig), each on fresh servers started with the same options, and the replies must match line
//! for line after masking (INFO reduced to its significant fields, server PINGs dropped unless a
//! case keeps them). The reference's replies must also contain each case's `expect` lines, so a
//! case cannot silently stop testing what it claims.
//!
//! `TWIG_TEST_TARGET=nats-server` runs nats-server against itself, which proves the harness and
//! the data. `TWIG_CONFORMANCE_CASE=substring` runs only matching cases;
//! `TWIG_CONFORMANCE_SHOW=1` prints every transcript.

use std::sync::Mutex;
use twig_tests::harness::Target;
use twig_tests::harness::conversation::{self, Case, Transcript};

/// Cases run this many at a time (each starts two servers; the machine is small).
const WORKERS: usize = 3;

fn load(file: &str) -> Vec<Case> {
    let path = twig_tests::harness::workspace_root()
        .join("tests/conformance")
        .join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let cases = conversation::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(!cases.is_empty(), "{file} has no cases");
    let filter = std::env::var("TWIG_CONFORMANCE_CASE").unwrap_or_default();
    cases
        .into_iter()
        .filter(|c| c.name.contains(filter.as_str()))
        .collect()
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

fn panicked(case: &Case, who: &str, payload: Box<dyn std::any::Any + Send>) -> String {
    let why = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    format!("case {}: the {who} run panicked: {why}", case.name)
}

/// Run one case on both servers; `Err` describes every difference.
fn check(case: &Case, target: Target) -> Result<(), String> {
    let (reference, under_test) = std::thread::scope(|s| {
        let r = s.spawn(|| conversation::run(case, Target::NatsServer));
        let t = s.spawn(|| conversation::run(case, target));
        (r.join(), t.join())
    });
    let reference = reference.map_err(|p| panicked(case, "nats-server", p))?;
    let under_test = under_test.map_err(|p| panicked(case, target.name(), p))?;
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

fn run_file(file: &str) {
    let target = Target::from_env();
    let cases = load(file);
    let next = Mutex::new(cases.iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let Some(case) = next.lock().unwrap().next() else {
                        break;
                    };
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
        "{} of {} conversations in {file} differ from nats-server:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "{file}: {} conversations match nats-server ({} vs nats-server)",
        cases.len(),
        target.name()
    );
}

#[test]
fn client_operations_match_nats_server() {
    run_file("ops.conv");
}

#[test]
fn errors_match_nats_server() {
    run_file("errors.conv");
}

#[test]
fn authentication_matches_nats_server() {
    run_file("auth.conv");
}
