//! The router: owns the sublist and delivers a published message to every matching
//! subscription (one member per queue group) by encoding it into the subscriber's outbound
//! buffer.
//!
//! Lock order: `Router::subs` is taken alone (never while an outbound or a client's subs map
//! is held). Readers avoid it on the hot path with a per-reader [`MatchCache`] that is
//! invalidated by [`Router::generation`], bumped on every subscription change.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use twig_core::sublist::{MatchResult, Sublist, SublistError};
use twig_core::wire;

use super::client::ClientShared;
use super::outbound::Push;

/// One subscription of a local client.
pub struct Subscription {
    /// The client that owns it.
    pub client: Arc<ClientShared>,
    /// The client's subscription id.
    pub sid: Box<[u8]>,
    /// The subject filter.
    pub subject: Box<[u8]>,
    /// The queue group, if any.
    pub queue: Option<Box<[u8]>>,
    /// Auto-unsubscribe limit (`UNSUB sid max`); 0 = none.
    pub max: AtomicU64,
    /// Messages delivered so far (counts toward `max`).
    pub delivered: AtomicU64,
    /// Set when removed, so a delivery racing the removal is skipped.
    pub closed: AtomicBool,
}

/// A subscription as the sublist stores it: equal and hashed by identity, so two
/// subscriptions on the same subject from the same client are still two entries.
#[derive(Clone)]
pub struct SubRef(pub Arc<Subscription>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for SubRef {}
impl Hash for SubRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

/// A message on its way through the router, borrowed from the publisher's read buffer.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    /// Subject published to (already validated as a publish subject by the caller).
    pub subject: &'a [u8],
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// Header block (`NATS/1.0...`), if the publisher sent one.
    pub headers: Option<&'a [u8]>,
    /// Body after the header block.
    pub payload: &'a [u8],
}

/// The subscription index and its change counter.
pub struct Router {
    subs: Mutex<Sublist<SubRef>>,
    generation: AtomicU64,
}

impl Router {
    /// An empty router whose sublist caches up to `cache_size` match results.
    pub fn new(cache_size: usize) -> Self {
        Router {
            subs: Mutex::new(Sublist::with_cache_capacity(cache_size)),
            generation: AtomicU64::new(1),
        }
    }

    /// Adds a subscription. The subject and queue were validated by the caller.
    pub fn insert(&self, sub: &Arc<Subscription>) -> Result<(), SublistError> {
        let r = self
            .lock()
            .insert(&sub.subject, sub.queue.as_deref(), SubRef(sub.clone()));
        self.generation.fetch_add(1, Ordering::Release);
        r.map(|_| ())
    }

    /// Removes a subscription; returns whether it was present.
    pub fn remove(&self, sub: &Arc<Subscription>) -> bool {
        sub.closed.store(true, Ordering::Release);
        let removed = self
            .lock()
            .remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()))
            .is_ok();
        self.generation.fetch_add(1, Ordering::Release);
        removed
    }

    /// The number of subscriptions.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// The subscriptions matching `subject`, through the caller's cache.
    pub fn lookup(&self, cache: &mut MatchCache, subject: &[u8]) -> Arc<MatchResult<SubRef>> {
        let generation = self.generation.load(Ordering::Acquire);
        if cache.generation != generation {
            cache.entries.clear();
            cache.generation = generation;
        }
        if let Some(r) = cache.entries.get(subject) {
            return r.clone();
        }
        let r = self.lock().lookup(subject);
        if cache.entries.len() >= MatchCache::MAX_ENTRIES {
            // Cheap and good enough: a reader that sees this many subjects is a fan-in
            // point whose working set the shared sublist cache already holds.
            cache.entries.clear();
        }
        cache.entries.insert(subject.into(), r.clone());
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sublist<SubRef>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A reader's private cache of match results, valid for one router generation.
#[derive(Default)]
pub struct MatchCache {
    generation: u64,
    entries: std::collections::HashMap<Box<[u8]>, Arc<MatchResult<SubRef>>>,
}

impl MatchCache {
    const MAX_ENTRIES: usize = 1024;
}

/// Per-batch delivery bookkeeping of one reader: which clients to wake once the batch is
/// done (one wake per client per batch, not per message), which subscriptions reached their
/// auto-unsubscribe limit, and a small RNG for queue-group picks.
#[derive(Default)]
pub struct Batch {
    touched: Vec<Arc<ClientShared>>,
    /// Subscriptions that reached their `max` and must be removed.
    pub expired: Vec<Arc<Subscription>>,
    /// Slow consumers cut off during this batch.
    pub slow: Vec<Arc<ClientShared>>,
    rng: u64,
}

impl Batch {
    /// Wakes every client that got bytes in this batch.
    pub fn flush(&mut self) {
        for c in self.touched.drain(..) {
            c.out.wake();
        }
    }

    /// Marks `c` to be woken when the batch ends.
    pub fn touch(&mut self, c: &Arc<ClientShared>) {
        // Fan-out per batch is usually small; a linear scan beats hashing here.
        if !self.touched.iter().any(|t| Arc::ptr_eq(t, c)) {
            self.touched.push(c.clone());
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: queue picks only need to be spread, not unpredictable.
        if self.rng == 0 {
            self.rng = seed();
        }
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    // Falls back to a fixed odd seed if the OS has no randomness: picks stay spread.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b) | 1
}

/// Delivers `msg` to the matches in `result`. `from` is the publisher (for `echo`).
/// Returns how many subscriptions it was delivered to.
pub fn deliver(
    msg: &Message<'_>,
    from: Option<&ClientShared>,
    result: &MatchResult<SubRef>,
    batch: &mut Batch,
) -> usize {
    let mut n = 0;
    for s in result.plain() {
        if deliver_one(msg, from, &s.0, batch) {
            n += 1;
        }
    }
    for group in result.groups() {
        let members = group.members();
        if members.is_empty() {
            continue;
        }
        // Start at a random member and take the first that accepts, so a closed or
        // echo-suppressed member does not swallow the message for the whole group.
        let start = (batch.next_rand() % members.len() as u64) as usize;
        for i in 0..members.len() {
            let m = &members[(start + i) % members.len()];
            if deliver_one(msg, from, &m.0, batch) {
                n += 1;
                break;
            }
        }
    }
    n
}

/// Delivers `msg` to one subscription regardless of echo (e.g. a 503 to its requester).
pub fn deliver_to_sub(msg: &Message<'_>, sub: &Arc<Subscription>, batch: &mut Batch) -> bool {
    deliver_one(msg, None, sub, batch)
}

fn deliver_one(
    msg: &Message<'_>,
    from: Option<&ClientShared>,
    sub: &Arc<Subscription>,
    batch: &mut Batch,
) -> bool {
    if sub.closed.load(Ordering::Acquire) {
        return false;
    }
    let client = &sub.client;
    if let Some(from) = from
        && std::ptr::eq(from, Arc::as_ptr(client))
        && !from.echo()
    {
        return false;
    }
    // Counted always: UNSUB with a max compares against what was already delivered.
    let d = sub.delivered.fetch_add(1, Ordering::AcqRel) + 1;
    let max = sub.max.load(Ordering::Relaxed);
    if max != 0 {
        if d > max {
            return false;
        }
        if d == max {
            batch.expired.push(sub.clone());
        }
    }
    // A client that did not negotiate headers gets the body alone, as nats-server does.
    let hdrs = if client.headers() { msg.headers } else { None };
    let head = wire::MsgHead {
        subject: msg.subject,
        sid: &sub.sid,
        reply: msg.reply,
        header_len: hdrs.map(<[u8]>::len),
        total_len: hdrs.map_or(0, <[u8]>::len) + msg.payload.len(),
    };
    let len = head.encoded_len() + head.total_len + 2;
    match client.out.push(len, |buf| {
        head.encode_into(buf).map_err(|_| ())?;
        if let Some(h) = hdrs {
            buf.extend_from_slice(h);
        }
        buf.extend_from_slice(msg.payload);
        buf.extend_from_slice(wire::CRLF);
        Ok(())
    }) {
        Push::Queued => {
            client.count_out(msg.payload.len() + hdrs.map_or(0, <[u8]>::len));
            batch.touch(client);
            true
        }
        Push::SlowConsumer => {
            batch.slow.push(client.clone());
            false
        }
        Push::Closed | Push::Refused => false,
    }
}
