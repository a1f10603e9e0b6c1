//! The router: owns the sublist and delivers a published message to every matching
//! subscription (one member per queue group) by encoding it into the subscriber's outbound
//! buffer.
//!
//! The sublist holds two kinds of entries ([`SubRef`]): local clients' subscriptions and the
//! hub's interest learnt over an uplink ([`HubInterest`]). A local publish that matches hub
//! interest goes up that link once (as one `LMSG` naming the queue groups it was picked for);
//! a message from the hub goes to local subscribers and to one local member of each queue
//! group it names, never back up. Local subscribe/unsubscribe also tells every uplink, which
//! turns it into `LS+`/`LS-`.
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
use super::internal::{InternalSub, Owner};
use super::outbound::Push;
use crate::uplink::link::{HubInterest, Link, Picks};

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

/// An entry as the sublist stores it: equal and hashed by identity, so two subscriptions on
/// the same subject from the same client are still two entries.
#[derive(Clone)]
pub enum SubRef {
    /// A local client's subscription.
    Local(Arc<Subscription>),
    /// Interest the hub advertised over an uplink.
    Hub(Arc<HubInterest>),
    /// A subscription of twig itself (see [`super::internal`]).
    Internal(Arc<InternalSub>),
}

impl SubRef {
    fn addr(&self) -> usize {
        match self {
            SubRef::Local(s) => Arc::as_ptr(s) as usize,
            SubRef::Hub(h) => Arc::as_ptr(h) as usize,
            SubRef::Internal(s) => Arc::as_ptr(s) as usize,
        }
    }
}

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        self.addr() == other.addr()
    }
}
impl Eq for SubRef {}
impl Hash for SubRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.addr().hash(state);
    }
}

/// Who published a message, which decides where it may go.
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    /// A local client (for `echo`): local subscribers and the hub.
    Client(&'a ClientShared),
    /// A local client's publish on the subject of a stream that forwards: local subscribers
    /// only. The stream's forwarder is its one way up (sent live as well, the hub's stream
    /// would store it twice).
    ClientLocal(&'a ClientShared),
    /// The hub, over an uplink: local subscribers, and of the queue groups only those named
    /// in the `LMSG` (an `LMSG` without queue names reaches no queue subscriber, reference
    /// §2.6). Never back to any hub.
    Hub(wire::Queues<'a>),
    /// The server itself (e.g. a stream's PubAck): wherever there is interest.
    Internal,
    /// A component of twig (the MQTT bridge, the cloud consumer): wherever there is interest
    /// except the component's own internal subscriptions.
    Component(Owner),
    /// A component handing on what it got from a hub (the cloud consumer): local subscribers
    /// and every local queue group, never any hub (the hub stream's own interest would loop
    /// it back into the stream), never the component's own subscriptions.
    LocalOnly(Owner),
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

/// The subscription index, its change counter, and the uplinks told of local interest.
pub struct Router {
    subs: Mutex<Sublist<SubRef>>,
    generation: AtomicU64,
    uplinks: Box<[Arc<Link>]>,
}

impl Router {
    /// An empty router whose sublist caches up to `cache_size` match results.
    pub fn new(cache_size: usize) -> Self {
        Self::with_uplinks(cache_size, Vec::new())
    }

    /// An empty router that reports local interest changes to `uplinks`.
    pub fn with_uplinks(cache_size: usize, uplinks: Vec<Arc<Link>>) -> Self {
        Router {
            subs: Mutex::new(Sublist::with_cache_capacity(cache_size)),
            generation: AtomicU64::new(1),
            uplinks: uplinks.into_boxed_slice(),
        }
    }

    /// Adds a subscription. The subject and queue were validated by the caller.
    pub fn insert(&self, sub: &Arc<Subscription>) -> Result<(), SublistError> {
        self.insert_local(
            &sub.subject,
            sub.queue.as_deref(),
            SubRef::Local(sub.clone()),
        )
    }

    /// Removes a subscription; returns whether it was present.
    pub fn remove(&self, sub: &Arc<Subscription>) -> bool {
        sub.closed.store(true, Ordering::Release);
        self.remove_local(
            &sub.subject,
            sub.queue.as_deref(),
            &SubRef::Local(sub.clone()),
        )
    }

    /// Adds a subscription of twig itself; its interest reaches the uplinks like a client's.
    pub fn insert_internal(&self, sub: &Arc<InternalSub>) -> Result<(), SublistError> {
        self.insert_local(
            &sub.subject,
            sub.queue.as_deref(),
            SubRef::Internal(sub.clone()),
        )
    }

    /// Removes a subscription of twig itself; returns whether it was present.
    pub fn remove_internal(&self, sub: &Arc<InternalSub>) -> bool {
        sub.closed.store(true, Ordering::Release);
        self.remove_local(
            &sub.subject,
            sub.queue.as_deref(),
            &SubRef::Internal(sub.clone()),
        )
    }

    fn insert_local(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        r: SubRef,
    ) -> Result<(), SublistError> {
        let res = self.lock().insert(subject, queue, r);
        self.generation.fetch_add(1, Ordering::Release);
        if res.is_ok() {
            for l in &self.uplinks {
                l.local_interest(subject, queue, true);
            }
        }
        res.map(|_| ())
    }

    fn remove_local(&self, subject: &[u8], queue: Option<&[u8]>, r: &SubRef) -> bool {
        let removed = self.lock().remove(subject, queue, r).is_ok();
        self.generation.fetch_add(1, Ordering::Release);
        if removed {
            for l in &self.uplinks {
                l.local_interest(subject, queue, false);
            }
        }
        removed
    }

    /// Adds interest the hub advertised (validated here: the hub is not trusted).
    pub fn insert_hub(&self, h: &Arc<HubInterest>) -> Result<(), SublistError> {
        let r = self
            .lock()
            .insert(&h.subject, h.queue.as_deref(), SubRef::Hub(h.clone()));
        self.generation.fetch_add(1, Ordering::Release);
        r.map(|_| ())
    }

    /// Removes hub interest (withdrawn, or the link went down).
    pub fn remove_hub(&self, hubs: &[Arc<HubInterest>]) {
        {
            let mut sl = self.lock();
            for h in hubs {
                h.closed.store(true, Ordering::Release);
                let _ = sl.remove(&h.subject, h.queue.as_deref(), &SubRef::Hub(h.clone()));
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The uplinks.
    pub fn uplinks(&self) -> &[Arc<Link>] {
        &self.uplinks
    }

    /// The number of subscriptions.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// The subscriptions matching `subject`, through the caller's cache. The result is
    /// borrowed from the cache: no reference count is touched on a hit, so readers on
    /// different threads publishing to one subject do not fight over a cache line.
    pub fn lookup<'c>(&self, cache: &'c mut MatchCache, subject: &[u8]) -> &'c MatchResult<SubRef> {
        let generation = self.generation.load(Ordering::Acquire);
        if cache.generation != generation {
            cache.entries.clear();
            cache.generation = generation;
        }
        if !cache.entries.contains_key(subject) {
            let r = self.lock().lookup(subject);
            if cache.entries.len() >= MatchCache::MAX_ENTRIES {
                // Cheap and good enough: a reader that sees this many subjects is a fan-in
                // point whose working set the shared sublist cache already holds.
                cache.entries.clear();
            }
            cache.entries.insert(subject.into(), r);
        }
        cache.entries.get(subject).map_or(&EMPTY, |r| &**r)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sublist<SubRef>> {
        crate::util::lock::lock(&self.subs)
    }
}

/// What a lookup that cannot happen (the entry was just inserted) answers.
static EMPTY: std::sync::LazyLock<MatchResult<SubRef>> =
    std::sync::LazyLock::new(MatchResult::default);

/// A reader's private cache of match results, valid for one router generation. Hashed with
/// foldhash: subjects are short and this runs once per message.
#[derive(Default)]
pub struct MatchCache {
    generation: u64,
    entries: hashbrown::HashMap<Box<[u8]>, Arc<MatchResult<SubRef>>>,
}

impl MatchCache {
    const MAX_ENTRIES: usize = 1024;
}

/// Per-batch delivery bookkeeping of one reader: which clients to wake once the batch is
/// done (one wake per client per batch, not per message), which subscriptions reached their
/// auto-unsubscribe limit, and a small RNG for queue-group picks.
#[derive(Default)]
pub struct Batch {
    /// Clients that got bytes, with the messages and bytes delivered to each (counted into
    /// their atomics once per batch rather than once per message).
    touched: Vec<(Arc<ClientShared>, u64, u64)>,
    /// Messages on their way to uplinks, and the links to wake.
    pub uplinks: Picks,
    /// Messages and bytes received in this batch (the reader's own counters).
    pub in_msgs: u64,
    /// Bytes received in this batch.
    pub in_bytes: u64,
    /// Deliveries made in this batch (server-wide counter).
    pub out_msgs: u64,
    /// Bytes delivered in this batch.
    pub out_bytes: u64,
    /// Subscriptions that reached their `max` and must be removed.
    pub expired: Vec<Arc<Subscription>>,
    /// A local client this batch filled past its stall mark: the publisher waits on it.
    pub stalled_client: Option<Arc<ClientShared>>,
    /// Slow consumers cut off during this batch.
    pub slow: Vec<Arc<ClientShared>>,
    rng: u64,
}

impl Batch {
    /// Wakes every client and uplink that got bytes in this batch and adds up the clients'
    /// counters. Returns an uplink whose backlog is past its stall mark: the publisher should
    /// wait for it to drain a little.
    pub fn flush(&mut self) -> Option<Arc<Link>> {
        for (c, msgs, bytes) in self.touched.drain(..) {
            if msgs > 0 {
                c.count_out(msgs, bytes);
            }
            c.flush();
            if self.stalled_client.is_none() && c.out.stalled() {
                self.stalled_client = Some(c);
            }
        }
        self.uplinks.flush()
    }

    /// Marks `c` to be woken when the batch ends; returns its slot for counting.
    pub fn touch(&mut self, c: &Arc<ClientShared>) -> usize {
        // Fan-out per batch is usually small and the last client touched is the likeliest
        // again; a backwards linear scan beats hashing here.
        if let Some(i) = self.touched.iter().rposition(|t| Arc::ptr_eq(&t.0, c)) {
            return i;
        }
        self.touched.push((c.clone(), 0, 0));
        self.touched.len() - 1
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
    // Falls back to a fixed odd seed if the OS has no randomness: picks stay spread.
    crate::util::id::random_u64() | 1
}

/// Delivers `msg` to the matches in `result`, as `from` allows (see [`Origin`]).
/// Returns how many subscriptions (and uplinks) it was delivered to.
pub fn deliver(
    msg: &Message<'_>,
    from: Origin<'_>,
    result: &MatchResult<SubRef>,
    batch: &mut Batch,
) -> usize {
    let (client, to_hub, named) = match from {
        Origin::Client(c) => (Some(c), true, None),
        Origin::ClientLocal(c) => (Some(c), false, None),
        Origin::Hub(queues) => (None, false, Some(queues)),
        Origin::Internal | Origin::Component(_) => (None, true, None),
        Origin::LocalOnly(_) => (None, false, None),
    };
    let owner = match from {
        Origin::Component(o) | Origin::LocalOnly(o) => Some(o),
        _ => None,
    };
    let mut n = 0;
    for s in result.plain() {
        match s {
            SubRef::Local(sub) => {
                if deliver_one(msg, client, sub, batch) {
                    n += 1;
                }
            }
            SubRef::Hub(h) => {
                if to_hub && !h.closed.load(Ordering::Acquire) {
                    batch.uplinks.plain(h);
                }
            }
            SubRef::Internal(sub) => {
                if sub.offer(msg, owner) {
                    n += 1;
                }
            }
        }
    }
    for group in result.groups() {
        let members = group.members();
        if members.is_empty() || named.is_some_and(|q| !q.iter().any(|q| q == group.name())) {
            continue;
        }
        // Start at a random member and take the first local one that accepts, so a closed
        // or echo-suppressed member does not swallow the message for the whole group. Hub
        // interest is the fallback when no local member takes it, as nats-server prefers
        // local queue subscribers over leaf connections.
        let start = (batch.next_rand() % members.len() as u64) as usize;
        let mut hub: Option<&Arc<HubInterest>> = None;
        let mut done = false;
        for i in 0..members.len() {
            match &members[(start + i) % members.len()] {
                SubRef::Local(sub) => {
                    if deliver_one(msg, client, sub, batch) {
                        n += 1;
                        done = true;
                        break;
                    }
                }
                SubRef::Hub(h) => {
                    if to_hub && hub.is_none() && !h.closed.load(Ordering::Acquire) {
                        hub = Some(h);
                    }
                }
                SubRef::Internal(sub) => {
                    if sub.offer(msg, owner) {
                        n += 1;
                        done = true;
                        break;
                    }
                }
            }
        }
        if let (false, Some(h)) = (done, hub) {
            batch.uplinks.queue(h);
        }
    }
    if to_hub {
        let up = batch.uplinks.send(msg);
        if up > 0 {
            let bytes = (msg.payload.len() + msg.headers.map_or(0, <[u8]>::len)) as u64;
            batch.out_msgs += up as u64;
            batch.out_bytes += up as u64 * bytes;
            n += up;
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
    // A JetStream message that crossed a leafnode carries `@<stored subject>` after its
    // `$JS.ACK...` reply. nats-server delivers it to a client under the stored subject with the
    // suffix cut off (client.go, `jsAckDeliverIdx`), so a client pulling from a hub stream
    // through twig sees what it sees connected to the hub, and its acks reach the hub's
    // `$JS.ACK` subscription. Internal subscribers get the wire form (they route by inbox).
    let (subject, reply) = match msg.reply {
        Some(r) if r.starts_with(b"$JS.ACK.") => match crate::sync::ack::split_deliver(r) {
            (ack, Some(stored)) => (stored, Some(ack)),
            _ => (msg.subject, msg.reply),
        },
        _ => (msg.subject, msg.reply),
    };
    let head = wire::MsgHead {
        subject,
        sid: &sub.sid,
        reply,
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
            let bytes = (msg.payload.len() + hdrs.map_or(0, <[u8]>::len)) as u64;
            let slot = batch.touch(client);
            if let Some(t) = batch.touched.get_mut(slot) {
                t.1 += 1;
                t.2 += bytes;
            }
            batch.out_msgs += 1;
            batch.out_bytes += bytes;
            true
        }
        Push::SlowConsumer => {
            batch.slow.push(client.clone());
            false
        }
        Push::Closed | Push::Refused => false,
    }
}
