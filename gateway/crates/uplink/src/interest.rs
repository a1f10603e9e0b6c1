//! Local interest as the hub sees it: reference counts per subject and queue group, turned
//! into `LS+`/`LS-` lines (twig-core's encoder), filtered by the hub's permissions.
//!
//! Rules (reference §2.5, nats-server `updateSmap`): a plain subject is advertised when its
//! count goes 0 -> 1 and withdrawn at 1 -> 0; a queue group is re-advertised with its new
//! weight (members behind it) on every change and withdrawn (`LS- subject queue`) at 0.
use std::collections::HashMap;

use twig_core::subject;
use twig_core::wire::Op;
use twig_core::wire::json::full::SubjectPermission;

/// A subject and optional queue group.
pub type Key = (Box<[u8]>, Option<Box<[u8]>>);

/// Reference counts of local subscriptions, by subject and queue.
#[derive(Debug, Default)]
pub struct Interest {
    counts: HashMap<Key, u32>,
}

/// A change the hub must hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// `LS+ subject` or `LS+ subject queue weight`.
    Plus(&'a [u8], Option<(&'a [u8], u32)>),
    /// `LS- subject` or `LS- subject queue`.
    Minus(&'a [u8], Option<&'a [u8]>),
}

impl Change<'_> {
    /// The subject concerned.
    pub fn subject(&self) -> &[u8] {
        match self {
            Change::Plus(s, _) | Change::Minus(s, _) => s,
        }
    }

    /// Appends the protocol line to `out` (nothing if a field cannot be encoded).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let op = match *self {
            Change::Plus(subject, queue) => Op::LsPlus { subject, queue },
            Change::Minus(subject, queue) => Op::LsMinus { subject, queue },
        };
        // Subjects were validated when subscribed; a failure writes nothing.
        let _ = op.encode_into(out);
    }
}

impl Interest {
    /// Counts one more local subscription; returns the line to send, if any.
    pub fn add<'a>(&mut self, subject: &'a [u8], queue: Option<&'a [u8]>) -> Option<Change<'a>> {
        let n = self
            .counts
            .entry((subject.into(), queue.map(Into::into)))
            .or_insert(0);
        *n = n.saturating_add(1);
        match queue {
            None => (*n == 1).then_some(Change::Plus(subject, None)),
            Some(q) => Some(Change::Plus(subject, Some((q, *n)))),
        }
    }

    /// Counts one subscription less; returns the line to send, if any.
    pub fn remove<'a>(&mut self, subject: &'a [u8], queue: Option<&'a [u8]>) -> Option<Change<'a>> {
        let key: Key = (subject.into(), queue.map(Into::into));
        let n = self.counts.get_mut(&key)?;
        *n = n.saturating_sub(1);
        let left = *n;
        if left == 0 {
            self.counts.remove(&key);
            return Some(Change::Minus(subject, queue));
        }
        queue.map(|q| Change::Plus(subject, Some((q, left))))
    }

    /// Every current interest as the `LS+` that announces it (the dump after connecting).
    pub fn dump(&self) -> impl Iterator<Item = Change<'_>> {
        self.counts.iter().map(|((s, q), n)| match q {
            None => Change::Plus(s, None),
            Some(q) => Change::Plus(s, Some((q, *n))),
        })
    }

    /// Distinct subjects and queue groups of interest.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when there is no local interest.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Appends to `out` the lines that bring a hub which knows `known` to this interest (the
    /// subjects `allow` lets through), and makes `known` match. What a link sends instead of
    /// every single change once too many wait unsent (a client looping SUB/UNSUB on a slow
    /// link): the lines then cost at most one per distinct subject and queue group.
    pub fn resync(&self, known: &mut Known, allow: impl Fn(&[u8]) -> bool, out: &mut Vec<u8>) {
        known.retain(|k, _| {
            let keep = self.counts.contains_key(k) && allow(&k.0);
            if !keep {
                Change::Minus(&k.0, k.1.as_deref()).encode_into(out);
            }
            keep
        });
        for (k, &n) in &self.counts {
            if !allow(&k.0) {
                continue;
            }
            let want = if k.1.is_some() { n } else { 1 };
            if known.get(k) != Some(&want) {
                let q = k.1.as_deref().map(|q| (q, n));
                Change::Plus(&k.0, q).encode_into(out);
                known.insert(k.clone(), want);
            }
        }
    }
}

/// What the hub has been told (or will have been, once the queued lines are written): the
/// weight per subject (1) and queue group.
pub type Known = HashMap<Key, u32>;

/// Records in `known` that `change` was queued for the hub.
pub fn note(known: &mut Known, change: &Change<'_>) {
    match *change {
        Change::Plus(s, None) => {
            known.insert((s.into(), None), 1);
        }
        Change::Plus(s, Some((q, n))) => {
            known.insert((s.into(), Some(q.into())), n);
        }
        Change::Minus(s, q) => {
            known.remove(&(s.into(), q.map(Into::into)));
        }
    }
}

/// The hub's permissions for this link (the `connect_info` INFO): `import` limits what twig
/// may subscribe to (its `LS+`), `export` what it may publish (its `LMSG`). Sending past
/// either makes the hub close the link and delay the reconnect by 30 s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    import: Rules,
    export: Rules,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rules {
    allow: Option<Vec<Box<[u8]>>>,
    deny: Vec<Box<[u8]>>,
}

impl Rules {
    fn from(p: Option<&SubjectPermission>) -> Rules {
        let list = |l: &Option<Vec<String>>| {
            l.as_ref()
                .map(|v| v.iter().map(|s| s.as_bytes().into()).collect::<Vec<_>>())
        };
        Rules {
            allow: p.and_then(|p| list(&p.allow)),
            deny: p.and_then(|p| list(&p.deny)).unwrap_or_default(),
        }
    }

    fn is_open(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }

    /// A subscription filter is allowed when an allow rule covers it and no deny rule does.
    fn allows_filter(&self, filter: &[u8]) -> bool {
        let allowed = self
            .allow
            .as_ref()
            .is_none_or(|a| a.iter().any(|rule| subject::filter_contains(rule, filter)));
        allowed
            && !self
                .deny
                .iter()
                .any(|rule| subject::filter_contains(rule, filter))
    }

    /// A published subject is allowed when an allow rule matches it and no deny rule does.
    fn allows_subject(&self, subj: &[u8]) -> bool {
        let allowed = self
            .allow
            .as_ref()
            .is_none_or(|a| a.iter().any(|rule| subject::matches(rule, subj)));
        allowed && !self.deny.iter().any(|rule| subject::matches(rule, subj))
    }
}

impl Permissions {
    /// From the hub's `import`/`export`.
    pub fn new(import: Option<&SubjectPermission>, export: Option<&SubjectPermission>) -> Self {
        Permissions {
            import: Rules::from(import),
            export: Rules::from(export),
        }
    }

    /// Adds the remote's own `deny_imports` (no interest sent for them) and `deny_exports`
    /// (never forwarded) to the hub's rules.
    pub fn with_denies(mut self, deny_imports: &[String], deny_exports: &[String]) -> Self {
        self.import
            .deny
            .extend(deny_imports.iter().map(|s| Box::<[u8]>::from(s.as_bytes())));
        self.export
            .deny
            .extend(deny_exports.iter().map(|s| Box::<[u8]>::from(s.as_bytes())));
        self
    }

    /// No restrictions at all (the common case; lets the hot path skip checks).
    pub fn is_open(&self) -> bool {
        self.import.is_open() && self.export.is_open()
    }

    /// May twig advertise interest in `filter`?
    pub fn can_subscribe(&self, filter: &[u8]) -> bool {
        self.import.allows_filter(filter)
    }

    /// May twig forward a message on `subj` to the hub?
    pub fn can_publish(&self, subj: &[u8]) -> bool {
        self.export.allows_subject(subj)
    }

    /// Whether export is restricted at all.
    pub fn export_restricted(&self) -> bool {
        !self.export.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(c: Option<Change<'_>>) -> String {
        let mut out = Vec::new();
        if let Some(c) = c {
            c.encode_into(&mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn resync_sends_the_difference_with_what_the_hub_knows() {
        let mut i = Interest::default();
        let mut known = Known::new();
        for c in [i.add(b"a", None), i.add(b"w.>", Some(b"g"))]
            .into_iter()
            .flatten()
        {
            note(&mut known, &c);
        }
        // Held back: a new subject, a second queue member, one gone, one denied.
        i.add(b"b", None);
        i.add(b"w.>", Some(b"g"));
        i.remove(b"a", None);
        i.add(b"secret", None);
        let mut out = Vec::new();
        i.resync(&mut known, |s| s != b"secret", &mut out);
        let text = String::from_utf8(out).unwrap();
        let mut lines: Vec<&str> = text.split_terminator("\r\n").collect();
        lines.sort();
        assert_eq!(lines, ["LS+ b", "LS+ w.> g 2", "LS- a"]);
        // In step now: nothing more to send.
        let mut out = Vec::new();
        i.resync(&mut known, |s| s != b"secret", &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn plain_interest_is_announced_once_and_withdrawn_last() {
        let mut i = Interest::default();
        assert_eq!(line(i.add(b"foo.*", None)), "LS+ foo.*\r\n");
        assert_eq!(line(i.add(b"foo.*", None)), "");
        assert_eq!(line(i.remove(b"foo.*", None)), "");
        assert_eq!(line(i.remove(b"foo.*", None)), "LS- foo.*\r\n");
        // Removing what is not there says nothing.
        assert_eq!(line(i.remove(b"foo.*", None)), "");
        assert!(i.is_empty());
    }

    #[test]
    fn queue_weights_follow_every_change() {
        let mut i = Interest::default();
        assert_eq!(line(i.add(b"orders", Some(b"w"))), "LS+ orders w 1\r\n");
        assert_eq!(line(i.add(b"orders", Some(b"w"))), "LS+ orders w 2\r\n");
        assert_eq!(line(i.add(b"orders", None)), "LS+ orders\r\n");
        assert_eq!(line(i.remove(b"orders", Some(b"w"))), "LS+ orders w 1\r\n");
        assert_eq!(line(i.remove(b"orders", Some(b"w"))), "LS- orders w\r\n");
        let mut dump: Vec<String> = i.dump().map(|c| line(Some(c))).collect();
        dump.sort();
        assert_eq!(dump, ["LS+ orders\r\n"]);
    }

    #[test]
    fn permissions_filter_interest_and_messages() {
        let import = SubjectPermission {
            allow: Some(vec!["edge.>".into(), "_INBOX.>".into()]),
            deny: Some(vec!["edge.secret.>".into()]),
        };
        let export = SubjectPermission {
            allow: None,
            deny: Some(vec!["local.*".into()]),
        };
        let p = Permissions::new(Some(&import), Some(&export));
        assert!(!p.is_open());
        assert!(p.can_subscribe(b"edge.a.b"));
        assert!(p.can_subscribe(b"edge.*"));
        assert!(!p.can_subscribe(b">"));
        assert!(!p.can_subscribe(b"edge.secret.x"));
        assert!(!p.can_subscribe(b"cloud.x"));
        assert!(p.can_publish(b"cloud.x"));
        assert!(!p.can_publish(b"local.x"));
        assert!(Permissions::default().is_open());
        assert!(Permissions::default().can_publish(b"anything"));
    }

    #[test]
    fn the_remotes_own_denies_join_the_hubs_rules() {
        let p = Permissions::default().with_denies(&["site.>".into()], &["local.>".into()]);
        assert!(!p.is_open());
        assert!(!p.can_subscribe(b"site.a"));
        assert!(p.can_subscribe(b"cloud.a"));
        assert!(!p.can_publish(b"local.x"));
        assert!(p.can_publish(b"cloud.x"));
    }
}
