//! Subject rules and wildcard matching, as nats-server applies them, on the MCU.

use twig_core::subject::{self, SubjectError};

use crate::check::{Checks, Outcome, Show};
use crate::ensure;

/// (filter, subject, delivered?)
const MATCHES: &[(&[u8], &[u8], bool)] = &[
    (b"sensors.7.temp", b"sensors.7.temp", true),
    (b"sensors.*.temp", b"sensors.7.temp", true),
    (b"sensors.*.temp", b"sensors.7.hum", false),
    (b"sensors.*", b"sensors.7.temp", false),
    (b"sensors.>", b"sensors.7.temp", true),
    (b"sensors.>", b"sensors", false),
    (b">", b"anything.at.all", true),
    (b"*.*", b"a.b", true),
    (b"*.*", b"a", false),
    (b"cmd.sensor-7", b"cmd.sensor-8", false),
    // Wildcards count only as whole tokens.
    (b"foo*", b"foo*", true),
    (b"foo*", b"foobar", false),
    (b"foo.>", b"foo>", false),
];

/// (subject, subscribe rule, publish rule)
type Validity = (
    &'static [u8],
    Result<(), SubjectError>,
    Result<(), SubjectError>,
);

const VALIDITY: &[Validity] = &[
    (b"sensors.7.temp", Ok(()), Ok(())),
    (b"sensors.*", Ok(()), Err(SubjectError::Wildcard)),
    (b"sensors.>", Ok(()), Err(SubjectError::Wildcard)),
    (
        b"a.>.b",
        Err(SubjectError::TokenAfterFullWildcard),
        Err(SubjectError::TokenAfterFullWildcard),
    ),
    (
        b"a..b",
        Err(SubjectError::EmptyToken),
        Err(SubjectError::EmptyToken),
    ),
    (
        b".a",
        Err(SubjectError::EmptyToken),
        Err(SubjectError::EmptyToken),
    ),
    (
        b"a b",
        Err(SubjectError::Whitespace),
        Err(SubjectError::Whitespace),
    ),
    (b"", Err(SubjectError::Empty), Err(SubjectError::Empty)),
];

pub fn run() -> Outcome {
    let mut c = Checks::default();
    for &(filter, subject, want) in MATCHES {
        let got = subject::matches(filter, subject);
        ensure!(
            c,
            got == want,
            "matches({}, {}) = {}",
            Show(filter),
            Show(subject),
            got
        );
    }
    for &(s, sub, publish) in VALIDITY {
        ensure!(c, subject::validate(s) == sub, "validate({})", Show(s));
        ensure!(
            c,
            subject::validate_publish(s) == publish,
            "validate_publish({})",
            Show(s)
        );
    }
    ensure!(c, subject::num_tokens(b"a.b.c") == 3, "num_tokens");
    ensure!(
        c,
        subject::tokens(b"a.b.c").eq([&b"a"[..], b"b", b"c"]),
        "tokens"
    );
    Ok(c.count)
}
