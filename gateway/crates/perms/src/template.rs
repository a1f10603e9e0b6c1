//! Templates in permission subjects, in the style of NATS JWT scoped-signer templates
//! (nats-server `auth.go processUserPermissionsTemplate`): one rule for a whole fleet.
//!
//! `sensors.{{name()}}.>` becomes `sensors.dev-7.>` for the identity named `dev-7`. The
//! operations (case-insensitive, spaces inside the braces ignored):
//!
//! - `{{name()}}`: the identity's name: the user name; the `name` configured for an nkey user;
//!   the user a TLS certificate mapped to;
//! - `{{subject()}}`: the identity's subject: the nkey (`U...`) of an nkey user, the
//!   certificate's subject DN for a certificate user, else the user name;
//! - `{{tag(key)}}`: every value of the identity's `key:value` tags (one entry per value, up
//!   to 4096 entries per list, as nats-server).
//!
//! As in nats-server, an allow entry that comes out invalid is dropped, a deny entry that does
//! refuses the login, and an allow list that was not empty but is after filling becomes
//! "deny everything" (`>` is added to the deny list). nats-server's `account-*` operations
//! name accounts, which twig does not have: they are configuration errors here.
//!
//! Where twig is stricter than nats-server: a filled entry is checked as a config entry is
//! (so `"subject queue"` works in subscribe lists), and a value that is empty, holds
//! whitespace, or has a wildcard token (`*`, `>`) makes its entry invalid, so that a name can
//! never widen a rule.

use twig_core::subject;

use super::PermsError;
use super::spec::{List, Permissions, SubjectPermission, check_entry};

/// nats-server's `maxPermTemplateSubjectExpansions`: entries one list may grow to.
pub const MAX_EXPANSIONS: usize = 4096;

/// What templates are filled from: the authenticated identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Facts<'a> {
    /// `{{name()}}` (`None` when the identity has no name: entries using it are invalid).
    pub name: Option<&'a str>,
    /// `{{subject()}}`.
    pub subject: Option<&'a str>,
    /// `key:value` tags for `{{tag(key)}}`, keys compared case-insensitively.
    pub tags: &'a [String],
}

/// One template operation.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Name,
    Subject,
    Tag(String),
}

/// True if `entry` holds a `{{...}}` template.
pub fn has_template(entry: &str) -> bool {
    spans(entry).next().is_some()
}

/// The `{{...}}` spans of `entry`, left to right, as nats-server's `{{2}([^}]+)}{2}` finds them.
fn spans(entry: &str) -> impl Iterator<Item = &str> {
    let bytes = entry.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at + 1 < bytes.len() {
            let start = at;
            at += 1;
            if bytes.get(start..start + 2) != Some(b"{{") {
                continue;
            }
            let inner = start + 2;
            let close = bytes
                .get(inner..)?
                .iter()
                .position(|&b| b == b'}')
                .map_or(bytes.len(), |p| inner + p);
            if close > inner && bytes.get(close..close + 2) == Some(b"}}") {
                at = close + 2;
                return entry.get(start..close + 2);
            }
        }
        None
    })
}

/// The operation a span names.
fn op(span: &str, entry: &str) -> Result<Op, PermsError> {
    let inner = span
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .unwrap_or(span)
        .trim();
    let lower = inner.to_ascii_lowercase();
    if lower == "name()" {
        return Ok(Op::Name);
    }
    if lower == "subject()" {
        return Ok(Op::Subject);
    }
    if let Some(key) = lower.strip_prefix("tag(").and_then(|s| s.strip_suffix(')')) {
        return Ok(Op::Tag(key.to_string()));
    }
    Err(PermsError::UnknownTemplate {
        entry: entry.to_string(),
        op: inner.to_string(),
    })
}

/// Config-time check of a template entry: known operations, and valid with a plain token in
/// place of each template.
pub(crate) fn check_template_entry(entry: &str, list: List) -> Result<(), PermsError> {
    let mut probe = entry.to_string();
    for span in spans(entry) {
        op(span, entry)?;
        probe = probe.replace(span, "x");
    }
    check_entry(&probe, list).map_err(|_| PermsError::InvalidTemplate {
        list,
        entry: entry.to_string(),
    })
}

/// A value may stand in for a template only if it cannot change the entry's shape.
fn usable(value: &str) -> bool {
    !value.is_empty()
        && !value.chars().any(char::is_whitespace)
        && !subject::tokens(value.as_bytes()).any(subject::is_wildcard)
}

/// Fills every template in `p` from `facts` (see the module docs for the rules).
pub fn fill(p: &Permissions, facts: &Facts<'_>) -> Result<Permissions, PermsError> {
    let side = |s: &Option<SubjectPermission>, allow: List, deny: List| {
        s.as_ref()
            .map(|s| -> Result<SubjectPermission, PermsError> {
                let was_allowing = s.allow.as_ref().is_some_and(|a| !a.is_empty());
                let filled_allow = s
                    .allow
                    .as_ref()
                    .map(|a| fill_list(a, allow, facts))
                    .transpose()?;
                let mut filled_deny = fill_list(&s.deny, deny, facts)?;
                if was_allowing && filled_allow.as_ref().is_some_and(Vec::is_empty) {
                    filled_deny.push(">".to_string());
                }
                Ok(SubjectPermission {
                    allow: filled_allow,
                    deny: filled_deny,
                })
            })
            .transpose()
    };
    Ok(Permissions {
        publish: side(&p.publish, List::PublishAllow, List::PublishDeny)?,
        subscribe: side(&p.subscribe, List::SubscribeAllow, List::SubscribeDeny)?,
        allow_responses: p.allow_responses,
    })
}

fn fill_list(entries: &[String], list: List, facts: &Facts<'_>) -> Result<Vec<String>, PermsError> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        if !has_template(entry) {
            out.push(entry.clone());
            continue;
        }
        // Each template's values; several only for tags.
        let mut slots: Vec<(&str, Vec<Option<&str>>)> = Vec::new();
        for span in spans(entry) {
            let values = match op(span, entry)? {
                Op::Name => vec![facts.name],
                Op::Subject => vec![facts.subject],
                Op::Tag(key) => {
                    let values: Vec<Option<&str>> =
                        tag_values(facts.tags, &key).map(Some).collect();
                    if values.is_empty() {
                        if !list.is_allow() {
                            return Err(PermsError::MissingTag {
                                entry: entry.clone(),
                                tag: key,
                            });
                        }
                        // An allow entry without its tag grants nothing.
                        vec![None]
                    } else {
                        values
                    }
                }
            };
            slots.push((span, values));
        }
        let combos = slots.iter().try_fold(1usize, |n, (_, v)| {
            n.checked_mul(v.len()).filter(|&n| n <= MAX_EXPANSIONS)
        });
        match combos {
            Some(n) if out.len() + n <= MAX_EXPANSIONS => {}
            _ => return Err(PermsError::TooManyExpansions),
        }
        // Walk the cartesian product like an odometer.
        let mut pick = vec![0usize; slots.len()];
        'product: loop {
            let mut filled = Some(entry.clone());
            for ((span, values), &i) in slots.iter().zip(&pick) {
                filled = match (filled, values.get(i).copied().flatten()) {
                    (Some(f), Some(v)) if usable(v) => Some(f.replace(span, v)),
                    _ => None,
                };
            }
            match filled {
                Some(f) if check_entry(&f, list).is_ok() && !has_template(&f) => out.push(f),
                _ if list.is_allow() => {}
                _ => {
                    return Err(PermsError::InvalidFilled {
                        list,
                        entry: entry.clone(),
                    });
                }
            }
            let mut k = pick.len();
            while k > 0 {
                k -= 1;
                pick[k] += 1;
                if pick[k] < slots[k].1.len() {
                    continue 'product;
                }
                pick[k] = 0;
            }
            break;
        }
    }
    Ok(out)
}

/// The values of `key:value` tags for `key` (case-insensitive key).
fn tag_values<'a>(tags: &'a [String], key: &str) -> impl Iterator<Item = &'a str> {
    let key = key.to_ascii_lowercase();
    tags.iter().filter_map(move |t| {
        let (k, v) = t.split_once(':')?;
        k.eq_ignore_ascii_case(&key).then_some(v)
    })
}
