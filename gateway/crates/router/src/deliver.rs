//! Delivery: a published message to every matching subscription (one member per queue
//! group), by encoding it into the subscriber's outbound buffer, handing it to an internal
//! subscriber's channel, or queueing it once per remote.
//!
//! The sublist holds three kinds of entries ([`SubRef`]): local clients' subscriptions,
//! internal subscriptions of twig's components, and interest remotes advertised
//! ([`RemoteInterest`]). Where a message may go is decided by its [`Origin`], plain data: who
//! published it (echo), which component (never to its own subscriptions), whether remotes may
//! get it, and which queue groups a remote named. A local publish that matches remote interest
//! goes to that remote once (naming the queue groups it was picked for); a message from a
//! remote goes to local subscribers and to one local member of each queue group it names,
//! never back to any remote.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use twig_core::sublist::MatchResult;
use twig_core::wire;

use super::client::ClientShared;
use super::internal::{InternalSub, Owner};
use super::outbound::Push;
use super::remote::{Picks, Remote, RemoteInterest};

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
    /// A subscribe deny rule of the client covers part of what this subscription matches
    /// (a wildcard or queue subscription): each delivery asks
    /// [`ClientShared::may_deliver`] first. Set by the owner at SUB and on a reload.
    pub filtered: AtomicBool,
}

/// An entry as the sublist stores it: equal and hashed by identity, so two subscriptions on
/// the same subject from the same client are still two entries.
#[derive(Clone)]
pub enum SubRef {
    /// A local client's subscription.
    Local(Arc<Subscription>),
    /// Interest a remote advertised.
    Remote(Arc<RemoteInterest>),
    /// A subscription of twig itself (see [`super::internal`]).
    Internal(Arc<InternalSub>),
}

impl SubRef {
    fn addr(&self) -> usize {
        match self {
            SubRef::Local(s) => Arc::as_ptr(s) as usize,
            SubRef::Remote(h) => Arc::as_ptr(h) as usize,
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

/// Where a message may go, as data: decided by who published it (see the constructors).
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    /// The local client that published it: it gets its own message only with `echo`.
    pub client: Option<&'a ClientShared>,
    /// The component that published it: never delivered to that component's own internal
    /// subscriptions (the MQTT bridge would loop a device's message back to the device).
    pub owner: Option<Owner>,
    /// Whether remotes may get it.
    pub remotes: bool,
    /// A remote named the queue groups it was picked for (an `LMSG`): local queue groups get
    /// it only if named (an `LMSG` without queue names reaches no queue subscriber,
    /// reference §2.6).
    pub named: Option<wire::Queues<'a>>,
    /// How local clients see it, when that differs from how it was routed: (subject, reply).
    /// Internal subscribers always get the routed form.
    pub shown_as: Option<(&'a [u8], Option<&'a [u8]>)>,
}

impl<'a> Origin<'a> {
    /// A local client: local subscribers and remotes.
    pub fn client(c: &'a ClientShared) -> Self {
        Origin {
            client: Some(c),
            ..Origin::internal()
        }
    }

    /// Twig itself (e.g. a stream's PubAck): wherever there is interest.
    pub fn internal() -> Self {
        Origin {
            client: None,
            owner: None,
            remotes: true,
            named: None,
            shown_as: None,
        }
    }

    /// A component of twig (the MQTT bridge, a sync consumer): wherever there is interest
    /// except the component's own internal subscriptions.
    pub fn component(owner: Owner) -> Self {
        Origin {
            owner: Some(owner),
            ..Origin::internal()
        }
    }

    /// A remote, with the queue groups it named: local subscribers only, never back to any
    /// remote.
    pub fn remote(named: wire::Queues<'a>) -> Self {
        Origin {
            remotes: false,
            named: Some(named),
            ..Origin::internal()
        }
    }

    /// The same, to local subscribers only (never to any remote).
    pub fn local_only(self) -> Self {
        Origin {
            remotes: false,
            ..self
        }
    }

    /// The same, shown to local clients under `subject` and `reply`.
    pub fn shown_as(self, subject: &'a [u8], reply: Option<&'a [u8]>) -> Self {
        Origin {
            shown_as: Some((subject, reply)),
            ..self
        }
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

/// Clients a batch looks up by a linear scan; past this many, by a hash index.
const SCAN_MAX: usize = 16;

/// Per-batch delivery bookkeeping of one reader: which clients to wake once the batch is
/// done (one wake per client per batch, not per message), which subscriptions reached their
/// auto-unsubscribe limit, and a small RNG for queue-group picks.
#[derive(Default)]
pub struct Batch {
    /// Clients that got bytes, with the messages and bytes delivered to each (counted into
    /// their atomics once per batch rather than once per message).
    touched: Vec<(Arc<ClientShared>, u64, u64)>,
    /// `touched` by client address, once it is longer than [`SCAN_MAX`]: a fan-out to N
    /// clients costs O(N), not the O(N²) of scanning for each delivery.
    index: std::collections::HashMap<usize, usize>,
    /// Messages on their way to remotes, and the remotes to wake.
    pub remotes: Picks,
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
    /// Wakes every client and remote that got bytes in this batch and adds up the clients'
    /// counters. Returns a remote whose backlog is past its stall mark: the publisher should
    /// wait for it to drain a little. ([`Router::finish`](super::Router::finish) does the
    /// rest of a batch's end.)
    pub(super) fn flush(&mut self) -> Option<Arc<dyn Remote>> {
        self.index.clear();
        for (c, msgs, bytes) in self.touched.drain(..) {
            if msgs > 0 {
                c.count_out(msgs, bytes);
            }
            c.flush();
            if self.stalled_client.is_none() && c.out.stalled() {
                self.stalled_client = Some(c);
            }
        }
        self.remotes.flush()
    }

    /// Marks `c` to be woken when the batch ends; returns its slot for counting.
    pub fn touch(&mut self, c: &Arc<ClientShared>) -> usize {
        let key = Arc::as_ptr(c) as usize;
        // The index is empty exactly while the batch has touched at most SCAN_MAX clients.
        if self.index.is_empty() {
            // Fan-out per batch is usually small and the last client touched is the likeliest
            // again; a backwards linear scan beats hashing here.
            if let Some(i) = self.touched.iter().rposition(|t| Arc::ptr_eq(&t.0, c)) {
                return i;
            }
        } else if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.touched.push((c.clone(), 0, 0));
        let i = self.touched.len() - 1;
        if !self.index.is_empty() {
            self.index.insert(key, i);
        } else if self.touched.len() > SCAN_MAX {
            for (j, t) in self.touched.iter().enumerate() {
                self.index.insert(Arc::as_ptr(&t.0) as usize, j);
            }
        }
        i
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
    twig_util::id::random_u64() | 1
}

/// Delivers `msg` to the matches in `result`, as `from` allows (see [`Origin`]).
/// Returns how many subscriptions (and remotes) it was delivered to.
pub fn deliver(
    msg: &Message<'_>,
    from: Origin<'_>,
    result: &MatchResult<SubRef>,
    batch: &mut Batch,
) -> usize {
    let Origin {
        client,
        owner,
        remotes: to_remotes,
        named,
        shown_as,
    } = from;
    let mut n = 0;
    for s in result.plain() {
        match s {
            SubRef::Local(sub) => {
                if deliver_one(msg, client, shown_as, sub, batch) {
                    n += 1;
                }
            }
            SubRef::Remote(h) => {
                if to_remotes && !h.closed.load(Ordering::Acquire) {
                    batch.remotes.plain(h);
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
        // or echo-suppressed member does not swallow the message for the whole group. Remote
        // interest is the fallback when no local member takes it, as nats-server prefers
        // local queue subscribers over leaf connections.
        let start = (batch.next_rand() % members.len() as u64) as usize;
        let mut remote: Option<&Arc<RemoteInterest>> = None;
        let mut done = false;
        for i in 0..members.len() {
            match &members[(start + i) % members.len()] {
                SubRef::Local(sub) => {
                    if deliver_one(msg, client, shown_as, sub, batch) {
                        n += 1;
                        done = true;
                        break;
                    }
                }
                SubRef::Remote(h) => {
                    if to_remotes && remote.is_none() && !h.closed.load(Ordering::Acquire) {
                        remote = Some(h);
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
        if let (false, Some(h)) = (done, remote) {
            batch.remotes.queue(h);
        }
    }
    if to_remotes {
        let up = batch.remotes.send(msg);
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
    deliver_one(msg, None, None, sub, batch)
}

fn deliver_one(
    msg: &Message<'_>,
    from: Option<&ClientShared>,
    shown_as: Option<(&[u8], Option<&[u8]>)>,
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
    // The publisher may have said how clients see it (e.g. a JetStream delivery from a hub,
    // under the subject it was stored with: see the uplink's inbound path); the client's
    // permissions apply to what it sees, as nats-server checks the delivered subject.
    let (subject, reply) = shown_as.unwrap_or((msg.subject, msg.reply));
    // Deny rules do not stop a wider subscription (`SUB a.>` with `a.secret` denied): its
    // deliveries are filtered instead, before they count toward an auto-unsubscribe. A
    // message shown under another subject than the one it matched (a hub stream's message on
    // a consumer's inbox) is checked whatever the subscription: stricter than nats-server,
    // which checks it only if some subscription of the client overlaps a deny rule.
    let check = sub.filtered.load(Ordering::Relaxed)
        || (shown_as.is_some() && client.has_subscribe_denies());
    if check && !client.may_deliver(subject, sub.queue.as_deref()) {
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
            if let Some(reply) = reply {
                client.delivered_reply(reply);
            }
            true
        }
        Push::SlowConsumer => {
            batch.slow.push(client.clone());
            false
        }
        Push::Closed | Push::Refused => false,
    }
}
