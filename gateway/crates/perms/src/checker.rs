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
        self.publish_at(subject, || now)
    }

    /// [`Checker::publish`] reading the time from `clock` only when an earned response
    /// permission must be checked (the hot path, a cached decision, never needs it).
    pub fn publish_at(&mut self, subject: &[u8], clock: impl FnOnce() -> Instant) -> bool {
        if !self.rules.checks_publish() {
            return true;
        }
        if let Some(allowed) = self.publish.get(subject) {
            return allowed;
        }
        let allowed = self.rules.may_publish(subject);
        match (&mut self.replies, allowed) {
            (Some(replies), false) => replies.allow(clock(), subject),
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
    /// may go, a reply subject is remembered for `allow_responses`. The two halves, for a
    /// caller that queues the message in between (as nats-server does): [`Checker::deliverable`]
    /// and [`Checker::delivered_reply`].
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
        if let Some(reply) = reply {
            self.delivered_reply(now, reply);
        }
        true
    }

    /// Whether [`Checker::delivered_reply`] does anything: `allow_responses` is set.
    pub fn tracks_replies(&self) -> bool {
        self.replies.is_some()
    }

    /// A message with `reply` was delivered to this connection at `now`: unless the user may
    /// publish there anyway, the reply subject may now be answered (nats-server `deliverMsg`
    /// after queueing; its check counts as a use of an earlier, unused permission).
    pub fn delivered_reply(&mut self, now: Instant, reply: &[u8]) {
        if !reply.is_empty()
            && self.replies.is_some()
            && !self.publish(now, reply)
            && let Some(replies) = &mut self.replies
        {
            replies.record(now, reply);
        }
    }

    /// The delivery-time deny filter (nats-server `checkDenySub`), cached per subject and
    /// queue group: false if the subscribe deny list forbids a message on `subject` to a
    /// subscription in `queue`.
    pub fn deliverable(&mut self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if !self.rules.has_subscribe_denies() {
            return true;
        }
        // A plain subscription's key is the subject itself (no allocation on the hot path); a
        // queue subscription's is `subject queue`: a space never occurs in either, so keys
        // never collide.
        let queued;
        let key = match queue {
            None => subject,
            Some(q) => {
                let mut k = Vec::with_capacity(subject.len() + 1 + q.len());
                k.extend_from_slice(subject);
                k.push(b' ');
                k.extend_from_slice(q);
                queued = k;
                &queued
            }
        };
        if let Some(v) = self.delivery.get(key) {
            return v;
        }
        let v = self.rules.may_deliver(subject, queue);
        self.delivery.put(key, v);
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
