//! Layer 2, `twig-router`: the subscription index and message delivery at the center of the
//! gateway. It uses `util` and twig-core (and may use `perms`), and names no component: local client
//! connections are its delivery targets ([`client`], [`outbound`]); everything else plugs in
//! through small interfaces the components implement or hold:
//!
//! - [`remote::Remote`]: a remote server the router delivers to (the uplink's links), with
//!   [`remote::RemoteInterest`] entries in the sublist; [`remote::InterestObserver`]: told of
//!   every local interest change (the uplink turns them into `LS+`/`LS-`);
//! - [`internal::InternalSub`]: a component's own subscription (a bounded channel), and
//!   [`internal::Publisher`]: a component's way to publish;
//! - [`store::Store`]: durable stores by subject (the streams), acknowledged once durable.
//!
//! Where a message may go is data ([`deliver::Origin`]); the one policy that depends on a
//! store (a store that forwards upstream itself is its subjects' only way there) is applied in
//! [`Router::publish`], nowhere else. A batch of deliveries ends in [`Router::finish`].
//!
//! Lock order: `Router::subs` is taken alone (never while an outbound or a client's subs map
//! is held), except that `Router::plugins` (a leaf: the lists of remotes and observers) is
//! read under it. Readers avoid it on the hot path with a per-reader [`MatchCache`] that is
//! invalidated by the router's generation, bumped on every subscription change. The interest
//! observers are called after `Router::subs` is released, with the list read under it, except
//! in [`Router::add_remote`]: a remote plugged in at run time (a leafnode remote added by a
//! reload, not yet started) is told of every local interest under `Router::subs`, so no
//! change is missed or counted twice.

pub mod client;
pub mod deliver;
#[cfg(test)]
mod deliver_tests;
#[cfg(test)]
mod interest_tests;
pub mod internal;
pub mod outbound;
pub mod remote;
pub mod stats;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use twig_core::sublist::{MatchResult, Sublist, SublistError};

use client::ClientShared;
pub use deliver::{Batch, Message, Origin, SubRef, Subscription, deliver, deliver_to_sub};
use internal::InternalSub;
use remote::{InterestObserver, Remote, RemoteInterest};
use stats::Stats;
use store::{Durable, Store};

/// The subscription index, its change counter, the remotes and observers plugged in, the
/// durable store, and the server-wide counters.
pub struct Router {
    subs: Mutex<Sublist<SubRef>>,
    generation: AtomicU64,
    plugins: Mutex<Plugins>,
    store: OnceLock<Arc<dyn Store>>,
    /// Server-wide counters (`/varz`).
    pub stats: Stats,
}

/// The remotes and interest observers plugged in; replaced whole when one is added, so a
/// reader takes a copy of the handle and calls them with no lock held.
#[derive(Clone, Default)]
struct Plugins {
    remotes: Arc<[Arc<dyn Remote>]>,
    observers: Arc<[Arc<dyn InterestObserver>]>,
}

/// What a batch left behind for its publisher to wait on (see [`Router::finish`]).
#[derive(Default)]
pub struct Stalled {
    /// A remote whose backlog is past its stall mark.
    pub remote: Option<Arc<dyn Remote>>,
    /// A local subscriber whose outbound buffer is past its stall mark.
    pub client: Option<Arc<ClientShared>>,
}

impl Router {
    /// An empty router whose sublist caches up to `cache_size` match results.
    pub fn new(cache_size: usize) -> Self {
        Self::with_remotes(cache_size, Vec::new(), Vec::new())
    }

    /// An empty router delivering to `remotes` and telling `observers` of local interest.
    pub fn with_remotes(
        cache_size: usize,
        remotes: Vec<Arc<dyn Remote>>,
        observers: Vec<Arc<dyn InterestObserver>>,
    ) -> Self {
        Router {
            subs: Mutex::new(Sublist::with_cache_capacity(cache_size)),
            generation: AtomicU64::new(1),
            plugins: Mutex::new(Plugins {
                remotes: remotes.into(),
                observers: observers.into(),
            }),
            store: OnceLock::new(),
            stats: Stats::default(),
        }
    }

    /// An empty router with `links` as remotes and as interest observers both (how the
    /// uplink's links plug in).
    pub fn with_links<L: Remote + InterestObserver + 'static>(
        cache_size: usize,
        links: Vec<Arc<L>>,
    ) -> Self {
        let remotes = links.iter().map(|l| l.clone() as Arc<dyn Remote>).collect();
        let observers = links
            .into_iter()
            .map(|l| l as Arc<dyn InterestObserver>)
            .collect();
        Self::with_remotes(cache_size, remotes, observers)
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

    /// Removes a subscription from its client and from the router.
    pub fn remove_sub(&self, sub: &Arc<Subscription>) {
        {
            let mut subs = twig_util::lock::lock(&sub.client.subs);
            if subs.get(&sub.sid).is_some_and(|s| Arc::ptr_eq(s, sub)) {
                subs.remove(&sub.sid);
            }
        }
        self.remove(sub);
    }

    /// Adds a subscription of twig itself; its interest reaches the observers like a client's.
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
        // Observers are told under the sublist lock, so they see every insert and remove in
        // the sublist's own order. Told after it, an auto-unsubscribe by another thread's
        // delivery could reach them before the insert it undoes, and the hub would keep the
        // interest for good (lock order: Router::subs, then Link::state).
        let mut sl = self.lock();
        let res = sl.insert(subject, queue, r);
        if res.is_ok() {
            for o in self.observers().iter() {
                o.interest(subject, queue, true);
            }
        }
        drop(sl);
        self.generation.fetch_add(1, Ordering::Release);
        res.map(|_| ())
    }

    fn remove_local(&self, subject: &[u8], queue: Option<&[u8]>, r: &SubRef) -> bool {
        // Under the sublist lock, as in `insert_local`.
        let mut sl = self.lock();
        let removed = sl.remove(subject, queue, r).is_ok();
        if removed {
            for o in self.observers().iter() {
                o.interest(subject, queue, false);
            }
        }
        drop(sl);
        self.generation.fetch_add(1, Ordering::Release);
        removed
    }

    /// Adds interest a remote advertised (validated here: the remote is not trusted).
    pub fn insert_remote(&self, h: &Arc<RemoteInterest>) -> Result<(), SublistError> {
        let r = self
            .lock()
            .insert(&h.subject, h.queue.as_deref(), SubRef::Remote(h.clone()));
        self.generation.fetch_add(1, Ordering::Release);
        r.map(|_| ())
    }

    /// Removes remote interest (withdrawn, or the remote went down).
    pub fn remove_remote(&self, entries: &[Arc<RemoteInterest>]) {
        {
            let mut sl = self.lock();
            for h in entries {
                h.closed.store(true, Ordering::Release);
                let _ = sl.remove(&h.subject, h.queue.as_deref(), &SubRef::Remote(h.clone()));
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The remotes, in configuration order.
    pub fn remotes(&self) -> Arc<[Arc<dyn Remote>]> {
        twig_util::lock::lock(&self.plugins).remotes.clone()
    }

    /// Remote number `index`, if configured.
    pub fn remote(&self, index: usize) -> Option<Arc<dyn Remote>> {
        twig_util::lock::lock(&self.plugins)
            .remotes
            .get(index)
            .cloned()
    }

    fn observers(&self) -> Arc<[Arc<dyn InterestObserver>]> {
        twig_util::lock::lock(&self.plugins).observers.clone()
    }

    /// Plugs in one more remote at run time (the next position) that is also an interest
    /// observer, and tells it of every local subscription there is, under `Router::subs` so
    /// that every later change reaches it after that and none before. The remote must not be
    /// started yet: its [`InterestObserver::interest`] is called with the sublist locked.
    /// Returns its position.
    pub fn add_remote<L: Remote + InterestObserver + 'static>(&self, link: Arc<L>) -> usize {
        let sl = self.lock();
        for sub in sl.iter() {
            if matches!(sub.subscriber, SubRef::Remote(_)) {
                continue;
            }
            for _ in 0..sub.refs {
                link.interest(sub.subject, sub.queue, true);
            }
        }
        let mut plugins = twig_util::lock::lock(&self.plugins);
        let mut remotes = plugins.remotes.to_vec();
        remotes.push(link.clone());
        let mut observers = plugins.observers.to_vec();
        observers.push(link);
        plugins.remotes = remotes.into();
        plugins.observers = observers.into();
        plugins.remotes.len() - 1
    }

    /// The number of subscriptions.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Plugs in the durable store; once, before the first publish (later calls are ignored).
    pub fn set_store(&self, store: Arc<dyn Store>) {
        let _ = self.store.set(store);
    }

    /// The durable store keeping `subject`, if any. A wildcard token in a published subject
    /// is matched as a literal token, as nats-server does.
    pub fn store(&self, subject: &[u8]) -> Option<&dyn Durable> {
        self.store.get().and_then(|s| s.find(subject))
    }

    /// Delivers a publish from `from` to everyone interested. `store` is the durable store
    /// keeping its subject ([`Router::store`]), which the caller submits it to: a store that
    /// forwards upstream itself is the one way its subjects go to remotes, so the live copy
    /// stays local (sent live as well, the remote's stream would store it twice). This is the
    /// only place that rule lives. Returns how many subscriptions (and remotes) got it.
    pub fn publish(
        &self,
        cache: &mut MatchCache,
        batch: &mut Batch,
        msg: &Message<'_>,
        from: Origin<'_>,
        store: Option<&dyn Durable>,
    ) -> usize {
        let from = match store {
            Some(s) if s.forwards() => from.local_only(),
            _ => from,
        };
        deliver(msg, from, self.lookup(cache, msg.subject), batch)
    }

    /// Ends a batch of deliveries (one socket read, one group of PubAcks, ...): adds its
    /// counters to [`Router::stats`], wakes every client and remote that got bytes, removes
    /// subscriptions that reached their auto-unsubscribe limit, and reports the slow
    /// consumers cut off on the way. Never waits: returns what the publisher may wait on (a
    /// remote or local subscriber past its stall mark), flow control as nats-server stalls a
    /// fast producer.
    pub fn finish(&self, b: &mut Batch) -> Stalled {
        if b.in_msgs > 0 {
            self.stats.count_in(b.in_msgs, b.in_bytes);
        }
        if b.out_msgs > 0 {
            self.stats.count_out(b.out_msgs, b.out_bytes);
        }
        (b.in_msgs, b.in_bytes, b.out_msgs, b.out_bytes) = (0, 0, 0, 0);
        b.stalled_client = None;
        let remote = b.flush();
        for sub in std::mem::take(&mut b.expired) {
            self.remove_sub(&sub);
        }
        for slow in std::mem::take(&mut b.slow) {
            self.slow_consumer(&slow);
        }
        Stalled {
            remote,
            client: b.stalled_client.take(),
        }
    }

    /// Counts and logs a client cut off because its outbound buffer overflowed (already
    /// closed by the push).
    pub fn slow_consumer(&self, client: &ClientShared) {
        self.stats
            .slow_consumers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            "{}:{} - cid:{} - Slow Consumer Detected: MaxPending of {} Exceeded",
            client.addr.ip(),
            client.addr.port(),
            client.cid,
            client.out.max_pending()
        );
    }

    /// The subscriptions matching `subject`, through the caller's cache. The result is
    /// borrowed from the cache: no reference count is touched on a hit, so readers on
    /// different threads publishing to one subject do not fight over a cache line.
    pub fn lookup<'c>(&self, cache: &'c mut MatchCache, subject: &[u8]) -> &'c MatchResult<SubRef> {
        let generation = self.generation.load(Ordering::Acquire);
        if cache.generation != generation {
            cache.entries.clear();
            cache.bytes = 0;
            cache.generation = generation;
        }
        if !cache.entries.contains_key(subject) {
            let r = self.lock().lookup(subject);
            let cost = subject.len() + MatchCache::ENTRY_OVERHEAD;
            if cache.bytes + cost > MatchCache::MAX_BYTES {
                // Cheap and good enough: a reader that sees this many subjects is a fan-in
                // point whose working set the shared sublist cache already holds. The table
                // is dropped, not cleared, so its memory goes too.
                cache.entries = hashbrown::HashMap::default();
                cache.bytes = 0;
            }
            cache.entries.insert(subject.into(), r);
            cache.bytes += cost;
        }
        cache.entries.get(subject).map_or(&EMPTY, |r| &**r)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sublist<SubRef>> {
        twig_util::lock::lock(&self.subs)
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
    /// Key bytes plus [`MatchCache::ENTRY_OVERHEAD`] per entry.
    bytes: usize,
}

impl MatchCache {
    /// The most bytes one reader's cache holds (a connection that never publishes holds
    /// none: the table is allocated on the first lookup). Subjects may be 4 KiB long, so a
    /// count of entries would not bound it.
    const MAX_BYTES: usize = 64 * 1024;
    /// Counted per entry beside its key: the boxed key, the `Arc`, the table's slot and slack.
    const ENTRY_OVERHEAD: usize = 48;
}
