//! Permissions compiled for checking (nats-server `client.go setPermissions`), and the
//! decisions, uncached: `pubAllowed`, `canSubscribe` and the delivery-time deny filter
//! (`checkDenySub`).
//!
//! Each list is a sublist (twig-core's, the same matcher the router uses), so a check walks
//! tokens, not entries. A subject being checked is matched as nats-server's `Sublist.Match`
//! does: its own `*` and `>` are plain tokens that only wildcard entries cover, so allowing
//! `foo.*` allows `SUB foo.*` and `SUB foo.>`, while allowing `foo.bar` allows neither.

use std::sync::Arc;

use twig_core::subject;
use twig_core::sublist::{MatchResult, Sublist};

use super::PermsError;
use super::spec::{List, Permissions, ResponsePermission, split_entry};

/// One list (allow or deny of one direction).
#[derive(Debug)]
struct Entries {
    list: Sublist<()>,
}

impl Entries {
    fn build(entries: &[String], list: List) -> Result<Entries, PermsError> {
        let mut sl = Sublist::with_cache_capacity(0);
        for entry in entries {
            let invalid = || PermsError::InvalidSubject {
                list,
                subject: entry.clone(),
            };
            let (subj, queue) = if list.takes_queue() {
                split_entry(entry).ok_or_else(invalid)?
            } else {
                (entry.as_str(), None)
            };
            sl.insert(subj.as_bytes(), queue.map(str::as_bytes), ())
                .map_err(|_| invalid())?;
        }
        Ok(Entries { list: sl })
    }

    fn lookup(&self, subject: &[u8]) -> Arc<MatchResult<()>> {
        self.list.lookup_uncached(subject)
    }
}

/// One direction: `allow` (absent: everything) and `deny` (absent: nothing).
#[derive(Debug, Default)]
struct Side {
    allow: Option<Entries>,
    deny: Option<Entries>,
}

/// A user's permissions, ready to check. Immutable and shared by every connection of the user
/// (or, with templates, of the identity); per-connection state lives in
/// [`Checker`](super::Checker).
#[derive(Debug)]
pub struct Rules {
    publish: Side,
    subscribe: Side,
    responses: Option<ResponsePermission>,
    /// Subscribe-deny entries' subjects, to tell which subscriptions need the delivery-time
    /// filter.
    sub_denies: Vec<Box<[u8]>>,
}

impl Rules {
    /// Compiles `p`, which must be free of templates (fill them first). The subjects are
    /// checked again here, so this never accepts what [`Permissions::validate`] refuses.
    pub fn compile(p: &Permissions) -> Result<Rules, PermsError> {
        if p.has_templates() {
            return Err(PermsError::UnfilledTemplate);
        }
        p.validate()?;
        let mut rules = Rules {
            publish: Side::default(),
            subscribe: Side::default(),
            responses: p.allow_responses,
            sub_denies: Vec::new(),
        };
        // nats-server (`validateResponsePermissions`): response permissions turn off the
        // blanket allow, so without a publish allow list only responses may be published.
        let default_allow = Vec::new();
        let pub_allow = match (&p.publish, p.allow_responses) {
            (Some(s), _) if s.allow.is_some() => s.allow.as_ref(),
            (_, Some(_)) => Some(&default_allow),
            _ => None,
        };
        if let Some(allow) = pub_allow {
            // Even an empty publish allow list is a list (nothing is allowed).
            rules.publish.allow = Some(Entries::build(allow, List::PublishAllow)?);
        }
        if let Some(s) = &p.publish
            && !s.deny.is_empty()
        {
            rules.publish.deny = Some(Entries::build(&s.deny, List::PublishDeny)?);
        }
        if let Some(s) = &p.subscribe {
            // On subscribe only a non-empty list counts (`len(...) > 0` in nats-server).
            if let Some(allow) = s.allow.as_ref().filter(|a| !a.is_empty()) {
                rules.subscribe.allow = Some(Entries::build(allow, List::SubscribeAllow)?);
            }
            if !s.deny.is_empty() {
                rules.subscribe.deny = Some(Entries::build(&s.deny, List::SubscribeDeny)?);
                for entry in &s.deny {
                    if let Some((subj, _)) = split_entry(entry) {
                        rules.sub_denies.push(subj.as_bytes().into());
                    }
                }
            }
        }
        Ok(rules)
    }

    /// Whether publishes are checked at all (nats-server skips the check, and its cache, when
    /// neither a publish allow nor deny list exists).
    pub fn checks_publish(&self) -> bool {
        self.publish.allow.is_some() || self.publish.deny.is_some()
    }

    /// The response permission, if any.
    pub fn responses(&self) -> Option<ResponsePermission> {
        self.responses
    }

    /// May a message be published to `subject`, by the static lists alone (without
    /// `allow_responses`)? nats-server `pubAllowedFullCheck` before its reply lookup.
    pub fn may_publish(&self, subject: &[u8]) -> bool {
        let mut allowed = true;
        if let Some(allow) = &self.publish.allow {
            allowed = !allow.lookup(subject).plain().is_empty();
        }
        if allowed && let Some(deny) = &self.publish.deny {
            allowed = deny.lookup(subject).plain().is_empty();
        }
        allowed
    }

    /// May the connection subscribe to `subject`, in queue group `queue` if given?
    /// nats-server `canSubscribe` (a refused queue subscription is not retried as plain).
    ///
    /// Queue-group entries: `allow = ["foo"]` allows `foo` in any queue; `["foo v1"]` allows
    /// only queue subscriptions in `v1` (queue names may use wildcards: `"foo v1.*"`);
    /// `["foo", "foo v1"]` allows plain `foo` but, in a queue, only `v1`.
    pub fn may_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let queue = queue.filter(|q| !q.is_empty());
        let mut allowed = true;
        if let Some(allow) = &self.subscribe.allow {
            let r = allow.lookup(subject);
            allowed = !r.plain().is_empty();
            if let Some(q) = queue
                && !r.groups().is_empty()
            {
                allowed = queue_matches(q, &r);
            }
        }
        if allowed && let Some(deny) = &self.subscribe.deny {
            let r = deny.lookup(subject);
            allowed = r.plain().is_empty();
            if allowed
                && let Some(q) = queue
                && !r.groups().is_empty()
            {
                allowed = !queue_matches(q, &r);
            }
        }
        allowed
    }

    /// Whether messages for an (allowed) subscription on `subject`/`queue` must pass
    /// [`Rules::may_deliver`]: a deny entry can cover part of what it receives. Deny entries do
    /// not stop a wider wildcard subscription (`SUB foo.>` with `foo.secret` denied), so its
    /// deliveries are filtered instead (nats-server `loadMsgDenyFilterIfNeeded`).
    pub fn filters_delivery(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let queued = queue.is_some_and(|q| !q.is_empty());
        (queued || !subject::is_literal(subject))
            && self
                .sub_denies
                .iter()
                .any(|deny| subject::collide(deny, subject))
    }

    /// May a message on `subject` reach a subscription in queue group `queue` (if any)?
    /// nats-server `checkDenySub`: only the subscribe deny list is consulted.
    pub fn may_deliver(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let Some(deny) = &self.subscribe.deny else {
            return true;
        };
        let r = deny.lookup(subject);
        if !r.plain().is_empty() {
            return false;
        }
        match queue.filter(|q| !q.is_empty()) {
            Some(q) if !r.groups().is_empty() => !queue_matches(q, &r),
            _ => true,
        }
    }

    /// Whether [`Rules::may_deliver`] can ever say no.
    pub fn has_subscribe_denies(&self) -> bool {
        self.subscribe.deny.is_some()
    }
}

/// nats-server `queueMatches`: `queue` is in one of the matched entries' queue groups, by name
/// or, for a group pattern with a wildcard token, by `subjectIsSubsetMatch`.
fn queue_matches(queue: &[u8], r: &MatchResult<()>) -> bool {
    r.groups().iter().any(|g| {
        let pattern = g.name();
        queue == pattern || (has_wildcard_token(pattern) && is_subset_match(queue, pattern))
    })
}

/// nats-server `subjectHasWildcard`: a `*` or `>` standing as a whole token.
fn has_wildcard_token(s: &[u8]) -> bool {
    subject::tokens(s).any(subject::is_wildcard)
}

/// nats-server `isSubsetMatchTokenized(tokens(subject), tokens(test))`, byte for byte,
/// including its quirk of treating any `test` token that *starts* with `*` as a wildcard.
fn is_subset_match(subject: &[u8], test: &[u8]) -> bool {
    let subject: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
    let test: Vec<&[u8]> = test.split(|&b| b == b'.').collect();
    for (i, t2) in test.iter().enumerate() {
        let Some(t1) = subject.get(i) else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if *t2 == b">" {
            return true;
        }
        if t1.is_empty() || *t1 == b">" {
            return false;
        }
        if *t1 == b"*" {
            if *t2 != b"*" {
                return false;
            }
            continue;
        }
        if t2.first() != Some(&b'*') && t1 != t2 {
            return false;
        }
    }
    subject.len() == test.len()
}
