//! Subjects: validation, tokens and wildcard matching, exactly as nats-server does them.
//!
//! A subject is a sequence of tokens separated by `.`, carried as bytes on the wire. Two tokens
//! are wildcards, and only when they are a *whole* token: `*` matches exactly one token and `>`
//! matches one or more trailing tokens (so it must be last). `foo*`, `*foo` and `foo>` are
//! ordinary literal tokens; nats-server 2.15.1 delivers a publish on `foo*` to a subscription on
//! `foo*`, `*` and `>`, never to `foo.*`.
//!
//! Validation follows `server/sublist.go`:
//! - [`validate`] is `IsValidSubject` (what a SUB may use): not empty, no empty token (no
//!   leading, trailing or double dot), no token after `>`, no space, tab, CR, LF or FF anywhere.
//! - [`validate_publish`] is `IsValidPublishSubject`: the same, and no wildcard token.
//!
//! Bytes other than `.`, the wildcards and that whitespace are opaque (nats-server accepts NUL and
//! invalid UTF-8 in subjects). One known difference: nats-server's SUB path only checks empty
//! tokens and `>` placement, so it accepts a form feed inside a subscribed subject (its parser
//! already split on space, tab, CR and LF); [`validate`] rejects it, as `IsValidSubject` does.
//!
//! Matching ([`matches`], [`filter_contains`], [`collide`]) never allocates and never recurses:
//! `*` consumes one token and `>` the rest, so one left-to-right walk decides.

use core::fmt;

/// The token separator.
pub const SEPARATOR: u8 = b'.';
/// The single-token wildcard (only as a whole token).
pub const SINGLE_WILDCARD: u8 = b'*';
/// The trailing wildcard, one or more tokens (only as a whole, last token).
pub const FULL_WILDCARD: u8 = b'>';
/// The queue group name nats-server reserves for itself: a client SUB using it is refused with
/// `Permissions Violation for Subscription to "<subject>" using queue "_sys_"`.
pub const SYSTEM_QUEUE: &[u8] = b"_sys_";

/// What is wrong with a subject (or queue group name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubjectError {
    /// The subject (or queue name) is empty.
    Empty,
    /// A token is empty: a leading, trailing or doubled `.`.
    EmptyToken,
    /// A space, tab, CR, LF or FF appears.
    Whitespace,
    /// A token follows the `>` wildcard, which must be last.
    TokenAfterFullWildcard,
    /// A publish subject contains a wildcard token (`*` or `>`).
    Wildcard,
}

impl SubjectError {
    /// A short English description, for logs and `-ERR` texts built at the edge.
    pub const fn as_str(self) -> &'static str {
        match self {
            SubjectError::Empty => "empty subject",
            SubjectError::EmptyToken => "empty token",
            SubjectError::Whitespace => "whitespace in subject",
            SubjectError::TokenAfterFullWildcard => "token after '>'",
            SubjectError::Wildcard => "wildcard in publish subject",
        }
    }
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whitespace nats-server refuses inside a subject (`"\t\n\f\r "`; not vertical tab).
const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// True if `token` is the whole-token wildcard `*`.
pub fn is_single_wildcard(token: &[u8]) -> bool {
    token == [SINGLE_WILDCARD]
}

/// True if `token` is the whole-token wildcard `>`.
pub fn is_full_wildcard(token: &[u8]) -> bool {
    token == [FULL_WILDCARD]
}

/// True if `token` is a wildcard (`*` or `>`, as a whole token).
pub fn is_wildcard(token: &[u8]) -> bool {
    is_single_wildcard(token) || is_full_wildcard(token)
}

/// Checks a subject under the subscribe rules (nats-server `IsValidSubject`): wildcards are
/// allowed, `>` only as the last token.
pub fn validate(subject: &[u8]) -> Result<(), SubjectError> {
    check(subject).map(|_| ())
}

/// Checks a subject under the publish rules (nats-server `IsValidPublishSubject`): valid as for
/// [`validate`], and literal. A malformed subject reports its malformation before any wildcard.
pub fn validate_publish(subject: &[u8]) -> Result<(), SubjectError> {
    match check(subject)? {
        true => Err(SubjectError::Wildcard),
        false => Ok(()),
    }
}

/// [`validate`] as a `bool`.
pub fn is_valid(subject: &[u8]) -> bool {
    check(subject).is_ok()
}

/// [`validate_publish`] as a `bool`.
pub fn is_valid_publish(subject: &[u8]) -> bool {
    matches!(check(subject), Ok(false))
}

/// Checks a queue group name. nats-server has no rule beyond what its parser imposes (one
/// non-empty argument, so no space, tab, CR or LF); twig also refuses FF so that a queue name
/// can always be written back on the wire. Dots and wildcards are ordinary bytes here.
/// [`SYSTEM_QUEUE`] passes: refusing it is a permission decision for the caller.
pub fn validate_queue(queue: &[u8]) -> Result<(), SubjectError> {
    if queue.is_empty() {
        return Err(SubjectError::Empty);
    }
    if queue.iter().any(|&b| is_space(b)) {
        return Err(SubjectError::Whitespace);
    }
    Ok(())
}

/// One pass over a subject: the first malformation, or whether it holds a wildcard token.
fn check(subject: &[u8]) -> Result<bool, SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::Empty);
    }
    let mut wildcard = false;
    let mut after_full = false;
    for token in tokens(subject) {
        if token.is_empty() {
            return Err(SubjectError::EmptyToken);
        }
        if after_full {
            return Err(SubjectError::TokenAfterFullWildcard);
        }
        if token.iter().any(|&b| is_space(b)) {
            return Err(SubjectError::Whitespace);
        }
        if is_full_wildcard(token) {
            after_full = true;
            wildcard = true;
        } else if is_single_wildcard(token) {
            wildcard = true;
        }
    }
    Ok(wildcard)
}

/// True if no token is a wildcard (nats-server `subjectIsLiteral`). Does not validate: use it on
/// subjects already checked, or where "not a wildcard" is all that matters.
pub fn is_literal(subject: &[u8]) -> bool {
    !tokens(subject).any(is_wildcard)
}

/// Number of tokens; 0 for the empty subject (nats-server `numTokens`).
pub fn num_tokens(subject: &[u8]) -> usize {
    if subject.is_empty() {
        return 0;
    }
    subject
        .iter()
        .filter(|&&b| b == SEPARATOR)
        .count()
        .saturating_add(1)
}

/// The tokens of a subject, split on `.`, without allocating.
///
/// Like `str::split`: `a..b` yields `a`, ``, `b`, and the empty subject yields one empty token.
pub fn tokens(subject: &[u8]) -> Tokens<'_> {
    Tokens {
        rest: Some(subject),
    }
}

/// Iterator over the tokens of a subject; see [`tokens`].
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    /// What has not been yielded yet (after the last separator consumed), if anything.
    pub fn remainder(&self) -> Option<&'a [u8]> {
        self.rest
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match rest.iter().position(|&b| b == SEPARATOR) {
            Some(dot) => {
                let (token, tail) = rest.split_at_checked(dot)?;
                self.rest = tail.get(1..);
                Some(token)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

impl core::iter::FusedIterator for Tokens<'_> {}

/// True if a subscription on `filter` receives a message published on `subject`.
///
/// This is the answer the sublist gives: `filter` must be valid under [`validate`] (otherwise
/// false, since it could never have been subscribed); `subject` must be non-empty with no empty
/// token (nats-server delivers nothing for `foo..bar`). Tokens of `subject` are compared as plain
/// bytes, so a publish on `foo.*` (accepted by a non-pedantic server) is received by `foo.*`,
/// `foo.>` and `>`, and not by `foo.bar`.
pub fn matches(filter: &[u8], subject: &[u8]) -> bool {
    is_valid(filter) && matches_valid_filter(filter, subject)
}

/// [`matches`] for a filter already known to be valid (the sublist's cache upkeep, which checks
/// one filter against many subjects).
pub(crate) fn matches_valid_filter(filter: &[u8], subject: &[u8]) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut subject_tokens = tokens(subject);
    for f in tokens(filter) {
        let Some(s) = subject_tokens.next() else {
            return false;
        };
        if s.is_empty() {
            return false;
        }
        if is_full_wildcard(f) {
            // `>` takes `s` and everything after it; those must still be well-formed tokens.
            return subject_tokens.all(|t| !t.is_empty());
        }
        if !is_single_wildcard(f) && f != s {
            return false;
        }
    }
    subject_tokens.next().is_none()
}

/// True if every subject `narrower` matches is also matched by `wider` (a subset test, as
/// nats-server `isSubsetMatch`). Both may hold wildcards; a literal is a one-subject filter.
/// False if either is invalid under [`validate`].
pub fn filter_contains(wider: &[u8], narrower: &[u8]) -> bool {
    if !is_valid(wider) || !is_valid(narrower) {
        return false;
    }
    let mut n_tokens = tokens(narrower);
    for w in tokens(wider) {
        let Some(n) = n_tokens.next() else {
            return false;
        };
        if is_full_wildcard(w) {
            return true;
        }
        // Only `>` covers `>`, and only `*` or `>` cover `*`.
        if is_full_wildcard(n) {
            return false;
        }
        if is_single_wildcard(n) {
            if !is_single_wildcard(w) {
                return false;
            }
        } else if !is_single_wildcard(w) && w != n {
            return false;
        }
    }
    n_tokens.next().is_none()
}

/// True if some literal subject is matched by both `a` and `b` (nats-server `SubjectsCollide`).
/// False if either is invalid under [`validate`].
///
/// Unlike nats-server, a token such as `*x` is treated as the literal it is: nats-server's
/// `tokensCanMatch` looks only at a token's first byte, so it reports `*x.*` and `y.*` as
/// colliding; twig says they do not.
pub fn collide(a: &[u8], b: &[u8]) -> bool {
    if !is_valid(a) || !is_valid(b) {
        return false;
    }
    let mut a_tokens = tokens(a);
    let mut b_tokens = tokens(b);
    loop {
        match (a_tokens.next(), b_tokens.next()) {
            (None, None) => return true,
            // One ran out while the other still needs a token (a `>` needs at least one).
            (None, Some(_)) | (Some(_), None) => return false,
            (Some(x), Some(y)) => {
                if is_full_wildcard(x) || is_full_wildcard(y) {
                    return true;
                }
                if !is_single_wildcard(x) && !is_single_wildcard(y) && x != y {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
