//! Per-connection permission state: the publish cache, the delivery-filter cache and the
//! `allow_responses` table, in front of the shared [`Rules`].

use std::sync::Arc;
use std::time::Instant;

use super::cache::BoundedCache;
use super::responses::Replies;
use super::rules::Rules;

/// Byte budgets for one connection's permission state (every one is a bound, not a size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// Publish decisions cached per subject.
    pub publish_cache: usize,
    /// Delivery decisions cached per subject and queue group.
    pub delivery_cache: usize,
    /// Reply subjects remembered for `allow_responses`.
    pub replies: usize,
}

impl Default for Budgets {
    /// 16 KiB per cache (nats-server keeps 128 publish and 256 deny decisions), 256 KiB of
    /// reply subjects (some 2,600 outstanding requests with 50-byte inboxes).
    fn default() -> Self {
        Budgets {
            publish_cache: 16 * 1024,
            delivery_cache: 16 * 1024,
            replies: 256 * 1024,
        }
    }
}

/// One connection's checks. The owner's reader calls [`Checker::publish`] and
/// [`Checker::subscribe`]; whoever delivers to the connection calls [`Checker::deliver`]
/// (so the caller puts it behind the connection's lock if deliveries come from elsewhere).
///
/// Lock-free questions for the hot path live on [`Rules`] (`Checker::rules`): a delivery to a
/// subscription that [`Rules::filters_delivery`] cleared, to a connection without
/// `allow_responses`, needs no call at all.
#[derive(Debug)]
pub struct Checker {
    rules: Arc<Rules>,
    publish: BoundedCache<bool>,
    delivery: BoundedCache<bool>,
    replies: Option<Replies>,
    budgets: Budgets,
}

impl Checker {
    /// Fresh state for a connection under `rules`.
    pub fn new(rules: Arc<Rules>, budgets: Budgets) -> Self {
        let replies = rules.responses().map(|r| Replies::new(r, budgets.replies));
        Checker {
            rules,
            publish: BoundedCache::new(budgets.publish_cache),
            delivery: BoundedCache::new(budgets.delivery_cache),
            replies,
            budgets,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// New rules (a reload): caches and earned reply permissions start afresh, as
    /// nats-server's `setPermissions` makes a new `replies` map.
    pub fn set_rules(&mut self, rules: Arc<Rules>) {
        *self = Checker::new(rules, self.budgets);
    }

    /// May this connection publish to `subject` at `now`? nats-server `pubAllowed`: the
    /// static lists (cached), then, if they refuse, an earned response permission (counted,
    /// never cached).
    pub fn publish(&mut self, now: Instant, subject: &[u8]) -> bool {
        if !self.rules.checks_publish() {
            return true;
        }
        if let Some(allowed) = self.publish.get(subject) {
            return allowed;
        }
        let allowed = self.rules.may_publish(subject);
        match (&mut self.replies, allowed) {
            (Some(replies), false) => replies.allow(now, subject),
            _ => {
                self.publish.put(subject, allowed);
                allowed
            }
        }
    }

    /// May this connection subscribe to `subject` (in `queue`)? The answer's
    /// [`Subscribe::filtered`] says whether its deliveries must go through
    /// [`Checker::deliver`] with `check_deny` set.
    pub fn subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> Subscribe {
        if !self.rules.may_subscribe(subject, queue) {
            return Subscribe::Denied;
        }
        Subscribe::Allowed {
            filtered: self.rules.filters_delivery(subject, queue),
        }
    }

    /// A message on `subject` with `reply` is about to be delivered to a subscription of this
    /// connection in `queue`. Returns false if the subscribe deny list forbids it (only
    /// checked when `check_deny`, i.e. the subscription was [`Subscribe::filtered`]); when it
    /// may go, a reply subject is remembered for `allow_responses`.
    pub fn deliver(
        &mut self,
        now: Instant,
        subject: &[u8],
        queue: Option<&[u8]>,
        reply: Option<&[u8]>,
        check_deny: bool,
    ) -> bool {
        if check_deny && !self.deliverable(subject, queue) {
            return false;
        }
        if let Some(reply) = reply.filter(|r| !r.is_empty())
            && self.replies.is_some()
            && !self.publish(now, reply)
            && let Some(replies) = &mut self.replies
        {
            replies.record(now, reply);
        }
        true
    }

    /// The delivery-time deny filter, cached per subject and queue group.
    fn deliverable(&mut self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if !self.rules.has_subscribe_denies() {
            return true;
        }
        let mut key = Vec::with_capacity(subject.len() + 1 + queue.map_or(0, <[u8]>::len));
        key.extend_from_slice(subject);
        if let Some(q) = queue {
            // A space never occurs in a subject or a queue name: the key is unambiguous.
            key.push(b' ');
            key.extend_from_slice(q);
        }
        if let Some(v) = self.delivery.get(&key) {
            return v;
        }
        let v = self.rules.may_deliver(subject, queue);
        self.delivery.put(&key, v);
        v
    }

    /// Bytes held by this connection's caches and reply table, as counted against
    /// [`Budgets`].
    pub fn bytes(&self) -> usize {
        self.publish.bytes()
            + self.delivery.bytes()
            + self.replies.as_ref().map_or(0, Replies::bytes)
    }

    /// Reply subjects this connection may answer now (monitoring, tests).
    pub fn pending_replies(&self) -> usize {
        self.replies.as_ref().map_or(0, Replies::len)
    }
}

/// The answer to a SUB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subscribe {
    /// `-ERR 'Permissions Violation for Subscription to ...'`; the connection stays.
    Denied,
    /// Allowed; `filtered`: deliveries must be checked ([`Checker::deliver`], `check_deny`).
    Allowed {
        /// A subscribe deny entry overlaps this subscription.
        filtered: bool,
    },
}

impl Subscribe {
    /// Whether the SUB is allowed.
    pub fn allowed(self) -> bool {
        matches!(self, Subscribe::Allowed { .. })
    }

    /// Whether its deliveries need the deny filter.
    pub fn filtered(self) -> bool {
        matches!(self, Subscribe::Allowed { filtered: true })
    }
}
