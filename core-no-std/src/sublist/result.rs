//! What a lookup returns, what an insert or remove reports, errors and monitoring counts.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::subject::SubjectError;

/// The subscribers a published subject reaches: plain subscribers, each of which gets the
/// message, and queue groups, of which the caller delivers to one member each.
///
/// A subscriber appears once per matching subscription: a `T` subscribed to both `foo.*` and
/// `foo.bar` is listed twice for `foo.bar`, as nats-server delivers once per subscription.
/// Groups are merged by name across subjects (a group `q` on `foo.*` and on `foo.bar` is one
/// group for `foo.bar`), as nats-server does. Order is unspecified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchResult<T> {
    pub(super) plain: Vec<T>,
    pub(super) groups: Vec<QueueGroup<T>>,
}

/// One queue group in a [`MatchResult`]: its name and every member whose subscription matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueGroup<T> {
    pub(super) name: Arc<[u8]>,
    pub(super) members: Vec<T>,
}

impl<T> MatchResult<T> {
    /// A result that reaches nobody.
    pub const fn new() -> Self {
        MatchResult {
            plain: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Plain (non-queue) subscribers; each gets the message.
    pub fn plain(&self) -> &[T] {
        &self.plain
    }

    /// Queue groups; deliver to one member of each.
    pub fn groups(&self) -> &[QueueGroup<T>] {
        &self.groups
    }

    /// True if nobody is reached.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.groups.is_empty()
    }

    /// Deliveries one message makes: plain subscribers plus one per group (nats-server's fanout).
    pub fn fanout(&self) -> usize {
        self.plain.len().saturating_add(self.groups.len())
    }
}

impl<T: Clone> MatchResult<T> {
    /// Adds one subscription's subscriber, to the group called `group` if it is a queue
    /// subscription.
    pub(super) fn push(&mut self, sub: &T, group: Option<&Arc<[u8]>>) {
        self.extend(group, core::iter::once(sub));
    }

    /// Adds subscribers, plain or all of one queue group. Groups are found by a linear scan,
    /// like nats-server's `findQSlot`: a result rarely holds more than a few groups, and a scan
    /// beats hashing for those.
    pub(super) fn extend<'a, I>(&mut self, group: Option<&Arc<[u8]>>, subs: I)
    where
        I: IntoIterator<Item = &'a T>,
        T: 'a,
    {
        let Some(name) = group else {
            self.plain.extend(subs.into_iter().cloned());
            return;
        };
        let existing = self
            .groups
            .iter_mut()
            .find(|g| Arc::ptr_eq(&g.name, name) || g.name == *name);
        if let Some(g) = existing {
            g.members.extend(subs.into_iter().cloned());
        } else {
            let members: Vec<T> = subs.into_iter().cloned().collect();
            if !members.is_empty() {
                self.groups.push(QueueGroup {
                    name: name.clone(),
                    members,
                });
            }
        }
    }
}

impl<T> Default for MatchResult<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> QueueGroup<T> {
    /// The queue group name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The group's members whose subscriptions matched (never empty).
    pub fn members(&self) -> &[T] {
        &self.members
    }
}

/// What an insert or remove did to one `(subject, queue, subscriber)` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Update {
    /// How many times the entry is now held: inserts of an existing entry are counted, and the
    /// entry leaves the index (and the match results) when this reaches 0.
    pub refs: u32,
    /// Distinct subscribers now on exactly this subject (plain) or this subject and queue
    /// (queue group). 1 after an insert: interest appeared; 0 after a remove: it is gone. For a
    /// queue group this is the weight a leafnode `LS+ <subject> <queue> <weight>` advertises.
    pub interest: usize,
}

/// Why an insert or remove was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SublistError {
    /// The subject is not valid under the subscribe rules.
    InvalidSubject(SubjectError),
    /// The queue group name is not valid.
    InvalidQueue(SubjectError),
    /// No such `(subject, queue, subscriber)` entry.
    NotFound,
    /// The entry is already held `u32::MAX` times.
    Overflow,
}

impl fmt::Display for SublistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SublistError::InvalidSubject(e) => write!(f, "invalid subject: {e}"),
            SublistError::InvalidQueue(e) => write!(f, "invalid queue group: {e}"),
            SublistError::NotFound => f.write_str("subscription not found"),
            SublistError::Overflow => f.write_str("subscription reference count overflow"),
        }
    }
}

/// Counts for `/subsz`-style monitoring (nats-server `SublistStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SublistStats {
    /// Distinct `(subject, queue, subscriber)` entries held.
    pub subscriptions: usize,
    /// Results in the cache.
    pub cache_entries: usize,
    /// Successful inserts, including those that only raised a reference count.
    pub inserts: u64,
    /// Successful removes, including those that only lowered a reference count.
    pub removes: u64,
    /// Lookups.
    pub matches: u64,
    /// Lookups answered from the cache.
    pub cache_hits: u64,
    /// The largest fanout among cached results.
    pub max_fanout: usize,
    /// The sum of the fanouts of cached results.
    pub total_fanout: usize,
}

impl SublistStats {
    /// Lookups that walked the index.
    pub fn cache_misses(&self) -> u64 {
        self.matches.saturating_sub(self.cache_hits)
    }

    /// Hits over lookups, 0 when there were none (nats-server `cache_hit_rate`).
    pub fn cache_hit_rate(&self) -> f64 {
        if self.matches == 0 {
            return 0.0;
        }
        self.cache_hits as f64 / self.matches as f64
    }

    /// Mean fanout of cached results, 0 when the cache is empty (nats-server `avg_fanout`).
    pub fn avg_fanout(&self) -> f64 {
        if self.cache_entries == 0 {
            return 0.0;
        }
        self.total_fanout as f64 / self.cache_entries as f64
    }
}

/// A lookup counter that `&self` lookups can bump: atomic where the target has 64-bit atomics
/// (every gateway target), a `Cell` elsewhere (which makes the sublist `!Sync` there).
#[cfg(target_has_atomic = "64")]
#[derive(Debug, Default)]
pub(super) struct Counter(core::sync::atomic::AtomicU64);

#[cfg(target_has_atomic = "64")]
impl Counter {
    pub(super) fn bump(&self) {
        self.0.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn get(&self) -> u64 {
        self.0.load(core::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(not(target_has_atomic = "64"))]
#[derive(Debug, Default)]
pub(super) struct Counter(core::cell::Cell<u64>);

#[cfg(not(target_has_atomic = "64"))]
impl Counter {
    pub(super) fn bump(&self) {
        self.0.set(self.0.get().wrapping_add(1));
    }

    pub(super) fn get(&self) -> u64 {
        self.0.get()
    }
}
