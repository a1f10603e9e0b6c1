//! The result cache: literal subject -> shared result, bounded, kept exact under changes.
//!
//! Upkeep follows nats-server: an insert patches the cached results its subject matches (copy
//! on write, so results already handed out never change), a remove evicts them. A literal
//! subscription touches one entry by hash; a wildcard one scans the cache (bounded by its
//! capacity). So request/reply inbox churn (`SUB _INBOX.x`, reply, `UNSUB`) costs O(1) per
//! change instead of wiping a hot cache. When full, about half the entries, picked at random,
//! are dropped at once (nats-server sweeps 1024 down to 512), which keeps a miss-heavy workload
//! at amortised O(1) per miss.

use alloc::boxed::Box;
use alloc::sync::Arc;

use hashbrown::HashMap;

use super::result::MatchResult;
use crate::subject::matches_valid_filter;

/// The default number of cached results (nats-server's `slCacheMax`).
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

#[derive(Debug)]
pub(super) struct Cache<T> {
    map: HashMap<Box<[u8]>, Arc<MatchResult<T>>>,
    capacity: usize,
    /// xorshift state for picking evictions; fixed seed, since the map's hasher is already
    /// randomly seeded and the choice only needs to be unbiased, not secret.
    rng: u64,
}

impl<T> Cache<T> {
    pub(super) fn new(capacity: usize) -> Self {
        Cache {
            map: HashMap::new(),
            capacity,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    pub(super) fn get(&self, subject: &[u8]) -> Option<&Arc<MatchResult<T>>> {
        self.map.get(subject)
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<MatchResult<T>>> {
        self.map.values()
    }

    pub(super) fn clear(&mut self) {
        self.map.clear();
    }

    pub(super) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict_to(capacity);
    }

    /// Caches a result (a no-op at capacity 0), evicting first if full.
    pub(super) fn put(&mut self, subject: &[u8], result: Arc<MatchResult<T>>) {
        if self.capacity == 0 {
            return;
        }
        if self.map.len() >= self.capacity {
            self.evict_to(self.capacity / 2);
        }
        self.map.insert(subject.into(), result);
    }

    /// Drops random entries until at most `target` remain.
    fn evict_to(&mut self, target: usize) {
        let Cache { map, rng, .. } = self;
        while map.len() > target {
            let mut excess = map.len().saturating_sub(target);
            map.retain(|_, _| {
                if excess == 0 {
                    return true;
                }
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                if *rng & 1 == 0 {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    /// A remove of a subscription on `filter` (valid): evicts the results it was part of.
    pub(super) fn on_remove(&mut self, filter: &[u8], literal: bool) {
        if literal {
            self.map.remove(filter);
        } else {
            self.map.retain(|key, _| !matches_valid_filter(filter, key));
        }
    }
}

impl<T: Clone> Cache<T> {
    /// An insert of a subscription on `filter` (valid): patches the results it now belongs to.
    pub(super) fn on_insert(
        &mut self,
        filter: &[u8],
        literal: bool,
        sub: &T,
        group: Option<&Arc<[u8]>>,
    ) {
        if literal {
            if let Some(result) = self.map.get_mut(filter) {
                Arc::make_mut(result).push(sub, group);
            }
            return;
        }
        for (key, result) in self.map.iter_mut() {
            if matches_valid_filter(filter, key) {
                Arc::make_mut(result).push(sub, group);
            }
        }
    }
}
