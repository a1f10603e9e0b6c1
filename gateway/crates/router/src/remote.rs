//! How remote servers plug into the router without the router knowing what they are.
//!
//! A remote (today: the uplink's connection to its hub, one per `[[leafnodes.remotes]]`)
//! implements [`Remote`] and is registered when the router is built. It then:
//! - gets local publishes matching the interest it advertised, as [`RemoteInterest`] entries
//!   in the sublist: per message, [`Picks`] gathers every entry of one remote that matched
//!   (plain, and the queue groups it was picked for) and calls [`Remote::queue`] once;
//! - hears of local interest changes through [`InterestObserver`] (turned into `LS+`/`LS-`);
//! - is reached by components that send upstream themselves (a stream's forwarder, a sync
//!   consumer) through [`Router::remote`](super::Router::remote): link state, permissions,
//!   barriers and progress, all through the trait.
//!
//! What is sent, in which encoding, what the remote allows and what is counted is the
//! remote's business; the router only decides *whether* a message goes there.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32};

use event_listener::{Event, EventListener};

use twig_core::sublist::MatchResult;

use super::deliver::{Message, SubRef};

/// A connection to a remote server, as the router and components see it (see the module
/// docs). Every method is short and never waits.
pub trait Remote: Send + Sync {
    /// Queues `msg` for the remote as one message naming `queues` (queue groups it was
    /// picked for, blank-separated; empty for plain interest). The remote applies its own
    /// rules (permissions, size limit, headers), counts, and drops what does not fit. Returns
    /// whether it was queued.
    fn queue(&self, msg: &Message<'_>, queues: &[u8]) -> bool;

    /// Like [`Remote::queue`], for a component that checked permissions and size itself and
    /// retries what does not fit (a stream's forwarder): a refused push is not counted as lost.
    /// Returns where the message ends in this connection's bytes (it is written to the socket
    /// once [`Counters::bulk_out`] reaches that), `None` when refused.
    fn forward(&self, msg: &Message<'_>, queues: &[u8]) -> Option<u64>;

    /// Wakes the remote's writer (once per batch, not per message).
    fn wake(&self);

    /// Whether publishers feeding the remote should pause: its backlog is past its stall mark.
    fn stalled(&self) -> bool;

    /// Notified when the backlog drops below the stall mark (see [`Remote::stalled`]).
    fn drained(&self) -> &Event;

    /// Its position among the configured remotes.
    fn index(&self) -> usize;

    /// Whether it is up (the handshake is done).
    fn is_up(&self) -> bool;

    /// Whether it takes header blocks.
    fn headers(&self) -> bool;

    /// The largest message (headers and body) it takes.
    fn max_payload(&self) -> usize;

    /// Whether interest in `filter` may be advertised there (its import permissions).
    fn may_subscribe(&self, filter: &[u8]) -> bool;

    /// Whether a message on `subject` may be sent there (its export permissions).
    fn may_publish(&self, subject: &[u8]) -> bool;

    /// Queues a barrier on its urgent lane (a `PING`) and returns its number on this
    /// connection; the barrier is answered when [`Counters::pongs`] reaches it. `None` when down.
    fn ping(&self) -> Option<u64>;

    /// Per-connection counters (see [`Counters`]).
    fn counters(&self) -> Counters;

    /// When the write that took [`Counters::bulk_out`] to `end` (a [`Remote::forward`]
    /// answer) ended, if known: where a forwarded message's round trip starts.
    fn written_at(&self, end: u64) -> Option<std::time::Instant>;

    /// A listener notified when it goes up or down or its interest changes (create it before
    /// checking, then wait).
    fn listen_change(&self) -> EventListener;

    /// A listener notified when its writer makes progress, a barrier is answered, or the
    /// connection resets or closes.
    fn listen_progress(&self) -> EventListener;
}

/// Told of every change to local interest (a subscription added or removed), after the
/// sublist changed. The uplink registers each link as one, to advertise interest upstream.
pub trait InterestObserver: Send + Sync {
    /// `add`: one more subscription on `subject`/`queue`; else one less.
    fn interest(&self, subject: &[u8], queue: Option<&[u8]>, add: bool);
}

/// The per-connection counters of a remote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connection number (bumped on every new connection).
    pub epoch: u64,
    /// Bytes queued on this connection.
    pub bulk_in: u64,
    /// Bytes written to the socket on this connection.
    pub bulk_out: u64,
    /// Barriers queued on this connection.
    pub pings: u64,
    /// Barriers answered on this connection.
    pub pongs: u64,
}

/// Interest a remote advertised, as a sublist entry: local publishes matching it go there.
pub struct RemoteInterest {
    /// The remote it came from.
    pub remote: Arc<dyn Remote>,
    /// The subject (possibly with wildcards).
    pub subject: Box<[u8]>,
    /// The queue group, for queue interest.
    pub queue: Option<Box<[u8]>>,
    /// Members behind a queue interest (the `LS+` weight).
    pub weight: AtomicU32,
    /// Set when withdrawn, so a delivery racing the removal is skipped.
    pub closed: AtomicBool,
}

impl RemoteInterest {
    /// An entry for `remote`'s interest in `subject` (and `queue`, with `weight` members).
    pub fn new(
        remote: Arc<dyn Remote>,
        subject: &[u8],
        queue: Option<&[u8]>,
        weight: u32,
    ) -> Arc<RemoteInterest> {
        Arc::new(RemoteInterest {
            remote,
            subject: subject.into(),
            queue: queue.map(Box::from),
            weight: AtomicU32::new(weight),
            closed: AtomicBool::new(false),
        })
    }

    /// Whether this entry is `remote`'s.
    pub fn is_of(&self, remote: &Arc<dyn Remote>) -> bool {
        same(&self.remote, remote)
    }
}

/// Whether two handles are the same remote (by address: vtables may differ per crate).
pub fn same(a: &Arc<dyn Remote>, b: &Arc<dyn Remote>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// Per-message bookkeeping of a publisher: which remotes a message goes to, with which queue
/// groups, so each remote gets one message however many of its entries matched.
#[derive(Default)]
pub struct Picks {
    items: Vec<Pick>,
    any: bool,
    /// Remotes that got bytes in this batch (woken once when it ends).
    pub touched: Vec<Arc<dyn Remote>>,
}

struct Pick {
    remote: Arc<dyn Remote>,
    used: bool,
    /// Queue names separated by blanks, as twig-core's `Queues::from_raw` reads them.
    queues: Vec<u8>,
}

impl Picks {
    /// `h` matched as plain interest.
    pub fn plain(&mut self, h: &Arc<RemoteInterest>) {
        self.slot(h);
    }

    /// `h` was picked for its queue group.
    pub fn queue(&mut self, h: &Arc<RemoteInterest>) {
        let Some(q) = h.queue.as_deref() else {
            return;
        };
        let p = self.slot(h);
        if !p.queues.is_empty() {
            p.queues.push(b' ');
        }
        p.queues.extend_from_slice(q);
    }

    fn slot(&mut self, h: &Arc<RemoteInterest>) -> &mut Pick {
        self.any = true;
        let i = match self.items.iter().position(|p| same(&p.remote, &h.remote)) {
            Some(i) => i,
            None => {
                self.items.push(Pick {
                    remote: h.remote.clone(),
                    used: false,
                    queues: Vec::new(),
                });
                self.items.len() - 1
            }
        };
        // `i` is in range: found or just pushed.
        let p = &mut self.items[i];
        p.used = true;
        p
    }

    /// Sends `msg` to every remote picked for it and resets for the next message. Returns
    /// the number of remotes it was queued for.
    pub fn send(&mut self, msg: &Message<'_>) -> usize {
        if !self.any {
            return 0;
        }
        self.any = false;
        let mut n = 0;
        for p in &mut self.items {
            if !p.used {
                continue;
            }
            if p.remote.queue(msg, &p.queues) {
                n += 1;
                if !self.touched.iter().any(|r| same(r, &p.remote)) {
                    self.touched.push(p.remote.clone());
                }
            }
            p.used = false;
            p.queues.clear();
        }
        n
    }

    /// Wakes every remote that got bytes; returns one whose backlog is past its stall mark,
    /// for the publisher to wait on.
    pub fn flush(&mut self) -> Option<Arc<dyn Remote>> {
        let mut stalled = None;
        for r in self.touched.drain(..) {
            r.wake();
            if stalled.is_none() && r.stalled() {
                stalled = Some(r);
            }
        }
        stalled
    }
}

/// Whether `link` has interest in a subject, given its lookup result; the names of the queue
/// groups it has members in are written to `queues` (blank-separated, for [`Remote::forward`]).
pub fn remote_interest(
    result: &MatchResult<SubRef>,
    link: &Arc<dyn Remote>,
    queues: &mut Vec<u8>,
) -> bool {
    let ours = |s: &SubRef| match s {
        SubRef::Remote(h) => h.is_of(link) && !h.closed.load(std::sync::atomic::Ordering::Acquire),
        _ => false,
    };
    let mut any = result.plain().iter().any(ours);
    for g in result.groups() {
        if g.members().iter().any(ours) {
            if !queues.is_empty() {
                queues.push(b' ');
            }
            queues.extend_from_slice(g.name());
            any = true;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MatchCache, Router};

    /// A remote that is down: takes nothing, for tests of the router's side only.
    struct Down(usize);

    impl Remote for Down {
        fn queue(&self, _: &Message<'_>, _: &[u8]) -> bool {
            false
        }
        fn forward(&self, _: &Message<'_>, _: &[u8]) -> Option<u64> {
            None
        }
        fn wake(&self) {}
        fn stalled(&self) -> bool {
            false
        }
        fn drained(&self) -> &Event {
            static NEVER: Event = Event::new();
            &NEVER
        }
        fn index(&self) -> usize {
            self.0
        }
        fn is_up(&self) -> bool {
            false
        }
        fn headers(&self) -> bool {
            true
        }
        fn max_payload(&self) -> usize {
            usize::MAX
        }
        fn may_subscribe(&self, _: &[u8]) -> bool {
            true
        }
        fn may_publish(&self, _: &[u8]) -> bool {
            true
        }
        fn ping(&self) -> Option<u64> {
            None
        }
        fn counters(&self) -> Counters {
            Counters::default()
        }
        fn written_at(&self, _: u64) -> Option<std::time::Instant> {
            None
        }
        fn listen_change(&self) -> EventListener {
            self.drained().listen()
        }
        fn listen_progress(&self) -> EventListener {
            self.drained().listen()
        }
    }

    #[test]
    fn hub_interest_is_that_of_the_link_plain_or_queue() {
        let (ours, other): (Arc<dyn Remote>, Arc<dyn Remote>) =
            (Arc::new(Down(0)), Arc::new(Down(1)));
        let router = Router::with_remotes(16, vec![ours.clone(), other.clone()], Vec::new());
        let entry = |link: &Arc<dyn Remote>, subject: &str, queue: Option<&str>| {
            let h = RemoteInterest::new(
                link.clone(),
                subject.as_bytes(),
                queue.map(str::as_bytes),
                1,
            );
            router.insert_remote(&h).unwrap();
            h
        };
        entry(&other, "a.>", None);
        entry(&ours, "q.*", Some("workers"));
        let plain = entry(&ours, "p.>", None);
        let mut cache = MatchCache::default();
        let mut queues = Vec::new();
        let mut check = |subject: &str, queues: &mut Vec<u8>| {
            queues.clear();
            remote_interest(router.lookup(&mut cache, subject.as_bytes()), &ours, queues)
        };
        assert!(
            !check("a.b", &mut queues),
            "another link's interest is not ours"
        );
        assert!(check("q.x", &mut queues));
        assert_eq!(queues, b"workers");
        assert!(check("p.x", &mut queues));
        assert!(queues.is_empty());
        plain
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        assert!(!check("p.x", &mut queues), "withdrawn");
    }
}
