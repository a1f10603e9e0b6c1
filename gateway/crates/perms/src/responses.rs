//! `allow_responses`: reply subjects a connection may publish to because it received a
//! message carrying them (nats-server `client.go` `replies`, `responseAllowed`,
//! `pruneReplyPerms`).
//!
//! nats-server's rules, kept exactly: a delivered reply subject the user may not publish to
//! anyway is remembered with the delivery time and a count of 0; each publish to it counts one
//! and is allowed while the count stays within `max` and the time within `expires` (an entry
//! past either is dropped by the publish that finds it so). Delivering the same reply again
//! *before* it was used counts as a use (nats-server checks it with the publish check, which
//! counts). The table is pruned of used-up and expired entries after 4096 additions or when a
//! second has passed since the last pruning.
//!
//! Beyond nats-server, the table is bounded in bytes: when a prune leaves it over its budget,
//! the oldest entries go first, down to three quarters of it.

use std::time::{Duration, Instant};

use hashbrown::HashMap;

use super::spec::ResponsePermission;

/// nats-server's `replyPermLimit`: additions between prunes.
const PRUNE_EVERY: u32 = 4096;
/// nats-server's `replyPruneTime`.
const PRUNE_AFTER: Duration = Duration::from_secs(1);
/// Bytes counted per entry beside the reply subject.
const ENTRY_OVERHEAD: usize = 48;

#[derive(Clone, Copy, Debug)]
struct Entry {
    since: Instant,
    used: u64,
    /// Order of recording: the eviction order (instants can tie).
    seq: u64,
}

/// The reply subjects one connection may answer.
#[derive(Debug)]
pub struct Replies {
    rule: ResponsePermission,
    table: HashMap<Box<[u8]>, Entry>,
    bytes: usize,
    budget: usize,
    added_since_prune: u32,
    last_prune: Option<Instant>,
    seq: u64,
}

impl Replies {
    /// An empty table under `rule`, at most about `budget` bytes.
    pub fn new(rule: ResponsePermission, budget: usize) -> Self {
        Replies {
            rule,
            table: HashMap::new(),
            bytes: 0,
            budget,
            added_since_prune: 0,
            last_prune: None,
            seq: 0,
        }
    }

    /// A publish to `subject`: allowed if it answers a delivered request (and counted).
    pub fn allow(&mut self, now: Instant, subject: &[u8]) -> bool {
        let Some(e) = self.table.get_mut(subject) else {
            return false;
        };
        e.used = e.used.saturating_add(1);
        let used_up = self.rule.max.is_some_and(|max| e.used > max);
        let expired = self
            .rule
            .expires
            .is_some_and(|ttl| now.saturating_duration_since(e.since) > ttl);
        if used_up || expired {
            self.remove(subject);
            return false;
        }
        true
    }

    /// A message with reply subject `reply` was delivered (the caller checked that the
    /// connection may not publish to it otherwise).
    pub fn record(&mut self, now: Instant, reply: &[u8]) {
        self.seq += 1;
        let entry = Entry {
            since: now,
            used: 0,
            seq: self.seq,
        };
        match self.table.get_mut(reply) {
            Some(e) => *e = entry,
            None => {
                self.bytes += cost(reply);
                self.table.insert(reply.into(), entry);
            }
        }
        self.added_since_prune = self.added_since_prune.saturating_add(1);
        let stale = self
            .last_prune
            .is_none_or(|t| now.saturating_duration_since(t) > PRUNE_AFTER);
        if self.added_since_prune > PRUNE_EVERY || stale || self.bytes > self.budget {
            self.prune(now);
        }
    }

    /// Drops used-up and expired entries, then the oldest while over budget.
    fn prune(&mut self, now: Instant) {
        let rule = self.rule;
        let mut freed = 0;
        self.table.retain(|k, e| {
            let used_up = rule.max.is_some_and(|max| e.used >= max);
            let expired = rule
                .expires
                .is_some_and(|ttl| now.saturating_duration_since(e.since) > ttl);
            if used_up || expired {
                freed += cost(k);
            }
            !(used_up || expired)
        });
        self.bytes -= freed;
        if self.bytes > self.budget {
            self.evict_oldest(self.budget / 4 * 3);
        }
        self.added_since_prune = 0;
        self.last_prune = Some(now);
    }

    /// Removes the oldest entries until at most `target` bytes are held. O(n log n) but only
    /// when the budget is hit, which then frees a quarter of it: amortised per addition.
    fn evict_oldest(&mut self, target: usize) {
        let mut ages: Vec<(u64, usize)> =
            self.table.iter().map(|(k, e)| (e.seq, cost(k))).collect();
        ages.sort_unstable_by_key(|a| a.0);
        let mut bytes = self.bytes;
        let mut cutoff = None;
        for (seq, c) in ages {
            if bytes <= target {
                break;
            }
            bytes -= c;
            cutoff = Some(seq);
        }
        if let Some(cutoff) = cutoff {
            let mut freed = 0;
            self.table.retain(|k, e| {
                let keep = e.seq > cutoff;
                if !keep {
                    freed += cost(k);
                }
                keep
            });
            self.bytes -= freed;
        }
    }

    fn remove(&mut self, subject: &[u8]) {
        if self.table.remove(subject).is_some() {
            self.bytes -= cost(subject);
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Bytes held, as counted against the budget.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

fn cost(reply: &[u8]) -> usize {
    reply.len() + ENTRY_OVERHEAD
}
