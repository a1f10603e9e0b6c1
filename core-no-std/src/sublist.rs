//! The subscription index the gateway routes with (feature `alloc`).
//!
//! A [`Sublist`] maps subscriptions — `(subject, queue group, subscriber)` — to the published
//! subjects they receive, like nats-server's `Sublist`: literal, `*` and `>` subjects, queue
//! groups, and a bounded cache of results in front of a token trie.
//!
//! ```
//! use twig_core::sublist::Sublist;
//!
//! let mut sl: Sublist<u32> = Sublist::new();
//! sl.insert(b"orders.*", None, 1).unwrap();
//! sl.insert(b"orders.>", Some(b"workers"), 2).unwrap();
//! sl.insert(b"orders.new", Some(b"workers"), 3).unwrap();
//!
//! let r = sl.lookup(b"orders.new");
//! assert_eq!(r.plain(), &[1]);
//! assert_eq!(r.groups()[0].name(), b"workers"); // deliver to one of 2 and 3
//! assert_eq!(r.groups()[0].members().len(), 2);
//! ```
//!
//! Decisions, written down:
//! - **Duplicates are reference counted.** Inserting an existing `(subject, queue, T)` raises
//!   its count and changes no result; it leaves results after as many removes. [`Update`] says
//!   where the count stands and how much interest the subject (or group) now has, which is what
//!   leafnode interest propagation needs (`LS+` on 0 -> 1, `LS-` on 1 -> 0, queue weights).
//! - **The cache is patched, not wiped** (see the `cache` module): an insert adds itself to the
//!   cached results it matches, a remove evicts them, a literal subject touches one entry. Every
//!   change that alters a result bumps [`Sublist::generation`], so a connection can keep its own
//!   lock-free L1 cache and drop it when the generation moves, as nats-server clients do.
//! - **Locking is the caller's.** [`Sublist::lookup`] needs `&mut self` (it fills the cache);
//!   [`Sublist::lookup_cached`] and [`Sublist::lookup_uncached`] need only `&self`, so a gateway
//!   behind an `RwLock` serves hits under the read lock and takes the write lock on a miss.
//! - Published subjects are looked up as given: a subject with an empty token (`foo..bar`,
//!   `foo.`) or no token reaches nobody, as in nats-server; wildcard characters in a published
//!   subject are plain bytes (only `*` and `>` subscriptions take a `*` token).

mod cache;
mod result;
mod trie;

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use core::hash::Hash;

pub use cache::DEFAULT_CACHE_CAPACITY;
pub use result::{MatchResult, QueueGroup, SublistError, SublistStats, Update};

use crate::subject::{is_literal, tokens, validate, validate_queue};
use cache::Cache;
use result::Counter;
use trie::{Group, SubSet, Trie};

/// The subscription index. `T` is the subscriber handle (a small `Copy` id, or an `Arc`),
/// compared with `Eq` and cloned into results.
#[derive(Debug)]
pub struct Sublist<T> {
    trie: Trie<T>,
    cache: Cache<T>,
    /// The result for subjects nobody receives, shared so misses on them do not allocate.
    empty: Arc<MatchResult<T>>,
    count: usize,
    generation: u64,
    inserts: u64,
    removes: u64,
    hits: Counter,
    misses: Counter,
}

/// One subscription held by a [`Sublist`], as [`Sublist::iter`] yields it.
#[derive(Debug, PartialEq, Eq)]
pub struct Subscription<'a, T> {
    /// The subscribed subject.
    pub subject: &'a [u8],
    /// The queue group, if any.
    pub queue: Option<&'a [u8]>,
    /// The subscriber.
    pub subscriber: &'a T,
    /// How many times it was inserted (and not yet removed).
    pub refs: u32,
}

// By hand: a derive would demand `T: Copy`, but only references are copied.
impl<T> Clone for Subscription<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Subscription<'_, T> {}

impl<T: Clone + Eq + Hash> Default for Sublist<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Eq + Hash> Sublist<T> {
    /// An empty sublist caching up to [`DEFAULT_CACHE_CAPACITY`] results.
    pub fn new() -> Self {
        Self::with_cache_capacity(DEFAULT_CACHE_CAPACITY)
    }

    /// An empty sublist caching up to `capacity` results (0 disables the cache).
    pub fn with_cache_capacity(capacity: usize) -> Self {
        Sublist {
            trie: Trie::new(),
            cache: Cache::new(capacity),
            empty: Arc::new(MatchResult::new()),
            count: 0,
            generation: 0,
            inserts: 0,
            removes: 0,
            hits: Counter::default(),
            misses: Counter::default(),
        }
    }

    /// Adds a subscription (see the module docs for duplicates). The subject must pass
    /// [`crate::subject::validate`], the queue name [`crate::subject::validate_queue`].
    pub fn insert(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        subscriber: T,
    ) -> Result<Update, SublistError> {
        validate(subject).map_err(SublistError::InvalidSubject)?;
        if let Some(q) = queue {
            validate_queue(q).map_err(SublistError::InvalidQueue)?;
        }
        let id = self
            .trie
            .insert_path(subject)
            .ok_or(SublistError::NotFound)?;
        let node = self.trie.node_mut(id).ok_or(SublistError::NotFound)?;
        let (refs, interest, group) = match queue {
            None => {
                let refs = node.plain.add(&subscriber).ok_or(SublistError::Overflow)?;
                (refs, node.plain.len(), None)
            }
            Some(q) => {
                let existing = node.groups.iter_mut().find(|g| *g.name == *q);
                if let Some(g) = existing {
                    let refs = g.members.add(&subscriber).ok_or(SublistError::Overflow)?;
                    (refs, g.members.len(), Some(g.name.clone()))
                } else {
                    let mut members = SubSet::new();
                    let refs = members.add(&subscriber).ok_or(SublistError::Overflow)?;
                    let name: Arc<[u8]> = Arc::from(q);
                    node.groups.push(Group {
                        name: name.clone(),
                        members,
                    });
                    (refs, 1, Some(name))
                }
            }
        };
        if node.subject.is_none() {
            node.subject = Some(subject.into());
        }
        self.inserts = self.inserts.wrapping_add(1);
        if refs == 1 {
            self.count = self.count.saturating_add(1);
            self.generation = self.generation.wrapping_add(1);
            self.cache
                .on_insert(subject, is_literal(subject), &subscriber, group.as_ref());
        }
        Ok(Update { refs, interest })
    }

    /// Drops one reference to a subscription; it stops matching when its count reaches 0.
    pub fn remove(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        subscriber: &T,
    ) -> Result<Update, SublistError> {
        let (update, _) = self.remove_entry(subject, queue, subscriber, true)?;
        Ok(update)
    }

    /// Removes many subscriptions (one reference each), e.g. all of a closing connection's.
    /// Cache upkeep is done once at the end: literal subjects evict their entry, and if any
    /// wildcard subscription left, the whole cache is cleared (cheaper than one scan per
    /// wildcard). Every entry is attempted; returns how many were removed and the first error.
    pub fn remove_batch<'a, I>(&mut self, subs: I) -> (usize, Option<SublistError>)
    where
        I: IntoIterator<Item = (&'a [u8], Option<&'a [u8]>, &'a T)>,
        T: 'a,
    {
        let (mut removed, mut first_error, mut wildcard_left) = (0, None, false);
        for (subject, queue, subscriber) in subs {
            match self.remove_entry(subject, queue, subscriber, false) {
                Ok((_, left)) => {
                    removed += 1;
                    if left {
                        if is_literal(subject) {
                            self.cache.on_remove(subject, true);
                        } else {
                            wildcard_left = true;
                        }
                    }
                }
                Err(e) => {
                    first_error = first_error.or(Some(e));
                }
            }
        }
        if wildcard_left {
            self.cache.clear();
        }
        (removed, first_error)
    }

    /// The work of a remove; the bool says the entry left the index (its count reached 0).
    fn remove_entry(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        subscriber: &T,
        update_cache: bool,
    ) -> Result<(Update, bool), SublistError> {
        validate(subject).map_err(SublistError::InvalidSubject)?;
        if let Some(q) = queue {
            validate_queue(q).map_err(SublistError::InvalidQueue)?;
        }
        let path = self.trie.find_path(subject).ok_or(SublistError::NotFound)?;
        let id = path
            .last()
            .map(|s| s.node_id())
            .ok_or(SublistError::NotFound)?;
        let node = self.trie.node_mut(id).ok_or(SublistError::NotFound)?;
        let (refs, interest) = match queue {
            None => {
                let refs = node
                    .plain
                    .release(subscriber)
                    .ok_or(SublistError::NotFound)?;
                (refs, node.plain.len())
            }
            Some(q) => {
                let i = node
                    .groups
                    .iter()
                    .position(|g| *g.name == *q)
                    .ok_or(SublistError::NotFound)?;
                let group = node.groups.get_mut(i).ok_or(SublistError::NotFound)?;
                let refs = group
                    .members
                    .release(subscriber)
                    .ok_or(SublistError::NotFound)?;
                let interest = group.members.len();
                if group.members.is_empty() {
                    node.groups.swap_remove(i);
                }
                (refs, interest)
            }
        };
        self.removes = self.removes.wrapping_add(1);
        let left = refs == 0;
        if left {
            if !node.has_subscriptions() {
                node.subject = None;
            }
            self.count = self.count.saturating_sub(1);
            self.generation = self.generation.wrapping_add(1);
            if update_cache {
                self.cache.on_remove(subject, is_literal(subject));
            }
            self.trie.prune(&path);
        }
        Ok((Update { refs, interest }, left))
    }

    /// Who receives a message published on `subject`: from the cache, or by walking the index
    /// and caching the answer. Cheap to clone and share; never changes once returned.
    pub fn lookup(&mut self, subject: &[u8]) -> Arc<MatchResult<T>> {
        if let Some(hit) = self.cache.get(subject) {
            self.hits.bump();
            return hit.clone();
        }
        self.misses.bump();
        let Some(result) = self.walk(subject) else {
            // Malformed subjects reach nobody and are not cached (nats-server does the same).
            return self.empty.clone();
        };
        self.cache.put(subject, result.clone());
        result
    }

    /// The cached result for `subject`, if there is one; counts a hit when there is and
    /// nothing when not (follow a `None` with [`Sublist::lookup`] or
    /// [`Sublist::lookup_uncached`], which count the miss).
    pub fn lookup_cached(&self, subject: &[u8]) -> Option<Arc<MatchResult<T>>> {
        let hit = self.cache.get(subject)?.clone();
        self.hits.bump();
        Some(hit)
    }

    /// Who receives `subject`, by walking the index without reading or filling the cache.
    pub fn lookup_uncached(&self, subject: &[u8]) -> Arc<MatchResult<T>> {
        self.misses.bump();
        self.walk(subject).unwrap_or_else(|| self.empty.clone())
    }

    /// Walks the trie; `None` for a malformed published subject.
    fn walk(&self, subject: &[u8]) -> Option<Arc<MatchResult<T>>> {
        if subject.is_empty() || tokens(subject).any(<[u8]>::is_empty) {
            return None;
        }
        let mut result = MatchResult::new();
        self.trie.collect(subject, &mut result);
        if result.is_empty() {
            return Some(self.empty.clone());
        }
        Some(Arc::new(result))
    }

    /// Distinct subscriptions held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True if no subscription is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A number that changes whenever a change alters some lookup's answer; a caller caching
    /// results outside the sublist drops them when it moves.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Results cached now.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// The cache's capacity.
    pub fn cache_capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// Changes the cache's capacity (0 disables it), evicting at random down to it.
    pub fn set_cache_capacity(&mut self, capacity: usize) {
        self.cache.set_capacity(capacity);
    }

    /// Empties the cache.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Counts for monitoring. Walks the cache for fanout figures (as nats-server does), so it
    /// costs O(cache) and is meant for a monitoring request, not the message path.
    pub fn stats(&self) -> SublistStats {
        let hits = self.hits.get();
        let mut stats = SublistStats {
            subscriptions: self.count,
            cache_entries: self.cache.len(),
            inserts: self.inserts,
            removes: self.removes,
            matches: hits.saturating_add(self.misses.get()),
            cache_hits: hits,
            ..SublistStats::default()
        };
        for result in self.cache.values() {
            let fanout = result.fanout();
            stats.max_fanout = stats.max_fanout.max(fanout);
            stats.total_fanout = stats.total_fanout.saturating_add(fanout);
        }
        stats
    }

    /// Every subscription held, in no particular order (e.g. to send a new leafnode peer all
    /// local interest).
    pub fn iter(&self) -> impl Iterator<Item = Subscription<'_, T>> + '_ {
        self.trie.nodes.iter().flat_map(|node| {
            let subject: &[u8] = node.subject.as_deref().unwrap_or_default();
            let plain = node
                .plain
                .entries
                .iter()
                .map(move |(t, refs)| Subscription {
                    subject,
                    queue: None,
                    subscriber: t,
                    refs: *refs,
                });
            let queued = node.groups.iter().flat_map(move |g| {
                g.members.entries.iter().map(move |(t, refs)| Subscription {
                    subject,
                    queue: Some(&*g.name),
                    subscriber: t,
                    refs: *refs,
                })
            });
            plain.chain(queued)
        })
    }
}
