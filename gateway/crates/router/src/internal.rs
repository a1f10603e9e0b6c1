//! Subscriptions and publishes of twig itself rather than of a client connection: the stream
//! forwarder's PubAck inbox, the cloud consumer, the MQTT bridge's NATS -> MQTT mappings.
//!
//! An [`InternalSub`] sits in the router's sublist like a client's subscription (so local
//! interest reaches the interest observers, and the hub as `LS+`, the same way) but delivery copies the message into a
//! bounded channel instead of encoding `MSG` into an outbound buffer. When the channel is
//! full the message is dropped and counted, as nats-server cuts off a slow consumer rather
//! than letting one subscriber stall every publisher: the owners size their channels for
//! what they keep in flight, and retry what they need (the forwarder re-sends unacknowledged
//! messages).
//!
//! A [`Publisher`] is what a component uses to publish into the router: its own match cache
//! and batch, the same delivery as a client's PUB, and the end-of-batch wake-ups.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::store::Durable;
use super::{Batch, MatchCache, Message, Origin, Router, Stalled, deliver};

/// A message as an internal subscriber receives it (owned: it outlives the publisher's read
/// buffer). Equality ignores [`Owned::charge`].
#[derive(Debug, Clone)]
pub struct Owned {
    /// The subject it was published to.
    pub subject: Box<[u8]>,
    /// Its reply subject.
    pub reply: Option<Box<[u8]>>,
    /// Its header block (`NATS/1.0...`), if any.
    pub headers: Option<Box<[u8]>>,
    /// Its body.
    pub payload: Box<[u8]>,
    /// The bytes it holds of its subscription's budget (given back when the last clone of
    /// it goes); `None` for a message made elsewhere.
    pub charge: Option<Arc<Charge>>,
}

impl PartialEq for Owned {
    fn eq(&self, o: &Owned) -> bool {
        (&self.subject, &self.reply, &self.headers, &self.payload)
            == (&o.subject, &o.reply, &o.headers, &o.payload)
    }
}

impl Eq for Owned {}

/// Bytes of an [`InternalSub`]'s budget held by one delivered message, from the delivery
/// until its owner drops it: queued messages and those the owner still works on both count.
#[derive(Debug)]
pub struct Charge {
    bytes: usize,
    held: Arc<AtomicUsize>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The bytes one message costs a subscription's budget: what its copy holds.
fn cost(msg: &Message<'_>) -> usize {
    msg.subject.len()
        + msg.reply.map_or(0, <[u8]>::len)
        + msg.headers.map_or(0, <[u8]>::len)
        + msg.payload.len()
        + std::mem::size_of::<Owned>()
}

impl Owned {
    /// Copies a routed message.
    pub fn from_msg(msg: &Message<'_>) -> Owned {
        Owned {
            subject: msg.subject.into(),
            reply: msg.reply.map(Box::from),
            headers: msg.headers.map(Box::from),
            payload: msg.payload.into(),
            charge: None,
        }
    }

    /// Borrows it back as a routable message.
    pub fn as_msg(&self) -> Message<'_> {
        Message {
            subject: &self.subject,
            reply: self.reply.as_deref(),
            headers: self.headers.as_deref(),
            payload: &self.payload,
        }
    }
}

/// Which component owns an internal subscription or publishes internally: a component never
/// receives its own publishes (the MQTT bridge would otherwise loop a device's message back to
/// the device through its own NATS -> MQTT mapping).
pub type Owner = usize;

/// A fresh owner id.
pub fn new_owner() -> Owner {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Where an internal subscription's messages go instead of a channel of its own: a component's
/// queue shared by several subscriptions (the MQTT listener's per-session mailbox, bounded in
/// bytes), told which subscription matched and who published.
pub trait Sink: Send + Sync {
    /// Takes `msg` for the subscription tagged `tag`; `from` is the publishing component, if
    /// any (a sink decides itself whether its owner gets its own messages: MQTT delivers them
    /// unless the subscription says No Local). Returns whether it was taken. Never waits.
    fn offer(&self, tag: u64, msg: &Message<'_>, from: Option<Owner>) -> bool;
}

/// Where an [`InternalSub`] delivers.
enum Target {
    /// A channel of at most so many messages, holding at most `max_bytes` (see [`Charge`]).
    Channel {
        tx: async_channel::Sender<Owned>,
        held: Arc<AtomicUsize>,
        max_bytes: usize,
    },
    Sink(Arc<dyn Sink>, u64),
}

/// A subscription held by twig itself.
pub struct InternalSub {
    /// The subject filter (validated by the caller).
    pub subject: Box<[u8]>,
    /// The queue group, if any.
    pub queue: Option<Box<[u8]>>,
    /// The component holding it.
    pub owner: Owner,
    target: Target,
    /// Messages handed to the channel.
    pub delivered: AtomicU64,
    /// Messages dropped because the channel was full.
    pub dropped: AtomicU64,
    /// Set when removed, so a delivery racing the removal is skipped.
    pub closed: AtomicBool,
}

impl InternalSub {
    /// A subscription whose messages arrive on the returned receiver: at most `capacity`
    /// waiting, and at most `max_bytes` held by delivered messages not yet dropped by the
    /// owner (one message is taken whatever its size when nothing is held). Beyond either the
    /// message is dropped and counted. Insert it with
    /// [`Router::insert_internal`](super::Router::insert_internal).
    pub fn new(
        owner: Owner,
        subject: &[u8],
        queue: Option<&[u8]>,
        capacity: usize,
        max_bytes: usize,
    ) -> (Arc<InternalSub>, async_channel::Receiver<Owned>) {
        let (tx, rx) = async_channel::bounded(capacity.max(1));
        let sub = Arc::new(InternalSub {
            subject: subject.into(),
            queue: queue.map(Box::from),
            owner,
            target: Target::Channel {
                tx,
                held: Arc::new(AtomicUsize::new(0)),
                max_bytes,
            },
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        (sub, rx)
    }

    /// A subscription whose messages go to `sink`, tagged `tag` (see [`Sink`]). Insert it with
    /// [`Router::insert_internal`](super::Router::insert_internal).
    pub fn with_sink(
        owner: Owner,
        subject: &[u8],
        queue: Option<&[u8]>,
        sink: Arc<dyn Sink>,
        tag: u64,
    ) -> Arc<InternalSub> {
        Arc::new(InternalSub {
            subject: subject.into(),
            queue: queue.map(Box::from),
            owner,
            target: Target::Sink(sink, tag),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// Hands `msg` to the owner unless it published it (a channel) or the sink refuses it.
    /// Returns whether it was taken.
    pub(super) fn offer(&self, msg: &Message<'_>, from: Option<Owner>) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let (tx, held, max_bytes) = match &self.target {
            Target::Channel { .. } if from == Some(self.owner) => return false,
            Target::Channel {
                tx,
                held,
                max_bytes,
            } => (tx, held, *max_bytes),
            Target::Sink(sink, tag) => {
                let taken = sink.offer(*tag, msg, from);
                let counter = if taken {
                    &self.delivered
                } else {
                    &self.dropped
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return taken;
            }
        };
        let bytes = cost(msg);
        let before = held.fetch_add(bytes, Ordering::Relaxed);
        if before > 0 && before.saturating_add(bytes) > max_bytes {
            held.fetch_sub(bytes, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let mut owned = Owned::from_msg(msg);
        owned.charge = Some(Arc::new(Charge {
            bytes,
            held: held.clone(),
        }));
        // A refused message gives its bytes back as it is dropped.
        match tx.try_send(owned) {
            Ok(()) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(async_channel::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(async_channel::TrySendError::Closed(_)) => false,
        }
    }
}

/// What [`Publisher::publish`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Subscriptions (and remotes) it was delivered to.
    pub delivered: usize,
}

/// Publishing into the router on behalf of a component (core NATS semantics: delivered to
/// whoever is interested now, locally and to remotes).
pub struct Publisher {
    router: Arc<Router>,
    owner: Owner,
    cache: MatchCache,
    batch: Batch,
    /// What the last flush left past its stall mark (see [`Publisher::pace`]).
    stalled: Stalled,
}

impl Publisher {
    /// A publisher for the component `owner`.
    pub fn new(router: Arc<Router>, owner: Owner) -> Publisher {
        Publisher {
            router,
            owner,
            cache: MatchCache::default(),
            batch: Batch::default(),
            stalled: Stalled::default(),
        }
    }

    /// The router it publishes into.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// Delivers `msg` like a client's PUB (but never to the owner's own subscriptions).
    /// Call [`flush`](Self::flush) after a batch of publishes.
    pub fn publish(&mut self, msg: &Message<'_>) -> Published {
        let result = self.router.lookup(&mut self.cache, msg.subject);
        let delivered = deliver(msg, Origin::component(self.owner), result, &mut self.batch);
        Published { delivered }
    }

    /// Delivers `msg` to local subscribers only (never to a remote, never to the owner's own
    /// subscriptions): for what a component received from a remote.
    pub fn publish_local(&mut self, msg: &Message<'_>) -> Published {
        let result = self.router.lookup(&mut self.cache, msg.subject);
        let from = Origin::component(self.owner).local_only();
        let delivered = deliver(msg, from, result, &mut self.batch);
        Published { delivered }
    }

    /// Delivers `msg` as [`Publisher::publish`] does, for a subject `store` keeps (see
    /// [`Router::publish`]); the caller submits it to the store.
    pub fn publish_stored(&mut self, msg: &Message<'_>, store: Option<&dyn Durable>) -> Published {
        let from = Origin::component(self.owner);
        let delivered = self
            .router
            .publish(&mut self.cache, &mut self.batch, msg, from, store);
        Published { delivered }
    }

    /// Ends a batch ([`Router::finish`]). Never waits for a socket (a subscriber or remote
    /// past its stall mark is left to drain on its own; see [`Publisher::pace`]).
    pub fn flush(&mut self) {
        self.stalled = self.router.finish(&mut self.batch);
    }

    /// After a [`flush`](Self::flush): waits a little (at most `max` per subscriber or
    /// remote; client publishers get [`STALL_MAX`](twig_util::stall::STALL_MAX)) if the
    /// batch left a local subscriber or a remote past its stall mark, the same flow control a
    /// client publisher gets, so a component that can slow its own source (the MQTT bridge
    /// stops reading the broker) does not get a subscriber cut off instead.
    pub async fn pace(&mut self, max: std::time::Duration) {
        if let Some(r) = self.stalled.remote.take() {
            twig_util::stall::wait_until_drained(r.drained(), max, || r.stalled()).await;
        }
        if let Some(client) = self.stalled.client.take() {
            client.out.wait_drained(max).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Router;

    fn msg(subject: &str) -> Message<'_> {
        Message {
            subject: subject.as_bytes(),
            reply: Some(b"r.1"),
            headers: None,
            payload: b"hi",
        }
    }

    fn route(router: &Router, m: &Message<'_>, from: Origin<'_>) -> usize {
        let mut cache = MatchCache::default();
        let mut batch = Batch::default();
        let result = router.lookup(&mut cache, m.subject);
        deliver(m, from, result, &mut batch)
    }

    #[test]
    fn an_internal_sub_gets_matching_messages_but_not_its_owners_own() {
        let router = Router::new(16);
        let (owner, other) = (new_owner(), new_owner());
        let (sub, rx) = InternalSub::new(owner, b"a.>", None, 4, 1 << 20);
        router.insert_internal(&sub).unwrap();

        assert_eq!(route(&router, &msg("a.b"), Origin::internal()), 1);
        let got = rx.try_recv().unwrap();
        assert_eq!(got.as_msg().subject, b"a.b");
        assert_eq!(got.reply.as_deref(), Some(&b"r.1"[..]));

        assert_eq!(route(&router, &msg("a.b"), Origin::component(other)), 1);
        assert_eq!(route(&router, &msg("a.b"), Origin::component(owner)), 0);
        assert_eq!(route(&router, &msg("b.a"), Origin::internal()), 0);
        assert_eq!(rx.len(), 1);
    }

    #[test]
    fn an_internal_sub_holds_at_most_its_bytes_until_the_owner_lets_go() {
        let router = Router::new(16);
        let big = [b'x'; 400];
        let m = Message {
            subject: b"a",
            reply: None,
            headers: None,
            payload: &big,
        };
        let one = cost(&m);
        let (sub, rx) = InternalSub::new(new_owner(), b"a", None, 100, 2 * one + one / 2);
        router.insert_internal(&sub).unwrap();
        let deliver = || route(&router, &m, Origin::internal());
        assert_eq!(
            (deliver(), deliver(), deliver()),
            (1, 1, 0),
            "two fit, the third not"
        );
        assert_eq!(sub.dropped.load(Ordering::Relaxed), 1);
        // Taken off the channel but still held by the owner: still counted.
        let first = rx.try_recv().unwrap();
        assert_eq!(deliver(), 0);
        // Let go (and its clones): room again.
        let copy = first.clone();
        drop(first);
        assert_eq!(deliver(), 0, "a clone still holds it");
        drop(copy);
        assert_eq!(deliver(), 1);
        // A message larger than the whole budget still goes when nothing is held.
        let (small, rx2) = InternalSub::new(new_owner(), b"a", None, 100, 10);
        router.insert_internal(&small).unwrap();
        drop(rx.try_recv());
        route(&router, &m, Origin::internal());
        assert_eq!(rx2.len(), 1);
    }

    #[test]
    fn a_sink_gets_the_tag_and_the_publisher_and_decides_itself() {
        struct Keep(std::sync::Mutex<Vec<(u64, Option<Owner>)>>);
        impl Sink for Keep {
            fn offer(&self, tag: u64, _: &Message<'_>, from: Option<Owner>) -> bool {
                self.0.lock().unwrap().push((tag, from));
                tag != 9
            }
        }
        let router = Router::new(16);
        let owner = new_owner();
        let keep = Arc::new(Keep(Default::default()));
        let a = InternalSub::with_sink(owner, b"a.*", None, keep.clone(), 7);
        let b = InternalSub::with_sink(owner, b"a.b", None, keep.clone(), 9);
        router.insert_internal(&a).unwrap();
        router.insert_internal(&b).unwrap();
        // Its own owner's message too: a sink decides (MQTT's No Local is per subscription).
        assert_eq!(route(&router, &msg("a.b"), Origin::component(owner)), 1);
        let mut got = keep.0.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, [(7, Some(owner)), (9, Some(owner))]);
        assert_eq!(b.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(a.delivered.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_full_channel_drops_and_counts_and_removal_stops_delivery() {
        let router = Router::new(16);
        let (sub, rx) = InternalSub::new(new_owner(), b"x", Some(b"q"), 2, 1 << 20);
        router.insert_internal(&sub).unwrap();
        for _ in 0..3 {
            route(&router, &msg("x"), Origin::internal());
        }
        assert_eq!(rx.len(), 2);
        assert_eq!(sub.dropped.load(Ordering::Relaxed), 1);

        assert!(router.remove_internal(&sub));
        assert_eq!(route(&router, &msg("x"), Origin::internal()), 0);
        assert_eq!(router.count(), 0);
    }
}
