//! The store thread: the one owner of the listener's [`Store`] (retained messages, lasting
//! sessions), an OS thread because the table's API blocks on the disk (`fdatasync`), as a
//! stream's thread owns its log.
//!
//! Sessions send it requests over a queue bounded in bytes ([`StoreTx`]; `[mqtt_listener]
//! max_store_queue_bytes`). The room is taken before a request is queued; a session whose
//! request does not fit waits for it (counted in `store_waits`), and meanwhile its task reads
//! nothing from its device: back-pressure to the devices that write, nothing acknowledged is
//! dropped. The thread takes everything waiting, applies it in order, syncs once (group
//! commit) and only then answers the tickets, so a SUBACK, a QoS 2 PUBREC or a retained
//! message's PUBACK leaves only once its change is on disk; so does the PUBACK of a publish
//! queued in a lasting session (a [`Req::Fence`], see [`super::ackwait`]). Then it gives the
//! room back.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use event_listener::Event;

use twig_core::log::Flush;
use twig_router::Message;

use super::Stats;
use super::ackwait::Waiter;
use super::inbox::{Inbox, Item};
use crate::server::store::{RetainedMsg, Store, StoreError};
use crate::server::{Change, Outcome, Retain, Ticket};
use twig_core::mqtt::packet::reason;

/// Most requests applied before one sync.
const BATCH: usize = 1024;

/// Where to say that a request is durable.
pub(super) struct Reply {
    /// The asking task's epoch.
    pub epoch: u64,
    pub ticket: Ticket,
    pub inbox: Arc<Inbox>,
}

/// What a session asks of the store.
pub(super) enum Req {
    /// A lasting session changed.
    Change(Change, Option<Reply>),
    /// A retained message is set or cleared.
    Retain(Retain, Option<Reply>),
    /// Publishers waiting for the changes sent before it (their copies queued in a lasting
    /// session): released after the sync that covers them.
    Fence(Vec<Arc<Waiter>>),
    /// Deliver the retained messages matching `subject` to subscription `sub`.
    SendRetained {
        sub: u32,
        subject: String,
        inbox: Arc<Inbox>,
    },
}

impl Req {
    /// Bytes it holds while it waits (against `max_store_queue_bytes`).
    pub(super) fn cost(&self) -> usize {
        let heap = match self {
            Req::Change(c, _) => change_bytes(c),
            Req::Retain(
                Retain::Set {
                    topic,
                    subject,
                    headers,
                    payload,
                },
                _,
            ) => topic.len() + subject.len() + headers.len() + payload.len(),
            Req::Retain(Retain::Clear { topic }, _) => topic.len(),
            Req::SendRetained { subject, .. } => subject.len(),
            Req::Fence(waiters) => waiters.len() * (8 + std::mem::size_of::<Waiter>()),
        };
        std::mem::size_of::<Req>() + heap
    }
}

fn change_bytes(c: &Change) -> usize {
    match c {
        Change::Session {
            client_id, subs, ..
        } => {
            let sub = |s: &crate::server::Subscription| {
                let subjects: usize = s.subjects.iter().map(|x| 24 + x.len()).sum();
                std::mem::size_of_val(s) + s.filter.len() + subjects
            };
            client_id.len() + subs.iter().map(sub).sum::<usize>()
        }
        Change::Queued { client_id, msg } => client_id.len() + msg.cost(),
        Change::Sent { client_id, .. }
        | Change::Done { client_id, .. }
        | Change::Qos2Received { client_id, .. }
        | Change::Qos2Published { client_id, .. }
        | Change::Qos2Released { client_id, .. }
        | Change::Deleted { client_id } => client_id.len(),
    }
}

/// The room in the queue, shared by the senders and the thread.
struct Room {
    /// Bytes of the requests queued or being applied.
    used: AtomicUsize,
    max: usize,
    /// Notified when the thread gives room back.
    freed: Event,
    stats: Arc<Stats>,
}

impl Room {
    /// Takes `cost` bytes if they fit (a request larger than the whole bound still goes
    /// through an empty queue, alone).
    fn try_take(&self, cost: usize) -> bool {
        self.used
            .fetch_update(AcqRel, Acquire, |u| {
                (u == 0 || u.saturating_add(cost) <= self.max).then(|| u.saturating_add(cost))
            })
            .is_ok()
    }

    fn give_back(&self, cost: usize) {
        self.used.fetch_sub(cost, AcqRel);
        self.freed.notify(usize::MAX);
    }
}

/// The sessions' end of the store thread's queue.
#[derive(Clone)]
pub(super) struct StoreTx {
    tx: async_channel::Sender<(Req, usize)>,
    room: Arc<Room>,
}

/// The thread's end.
struct StoreRx {
    rx: async_channel::Receiver<(Req, usize)>,
    room: Arc<Room>,
}

/// A queue holding at most `max_bytes` of requests.
fn queue(max_bytes: usize, stats: Arc<Stats>) -> (StoreTx, StoreRx) {
    // Unbounded in count: the bound is the bytes, taken before a request is queued.
    let (tx, rx) = async_channel::unbounded();
    let room = Arc::new(Room {
        used: AtomicUsize::new(0),
        max: max_bytes,
        freed: Event::new(),
        stats,
    });
    (
        StoreTx {
            tx,
            room: room.clone(),
        },
        StoreRx { rx, room },
    )
}

impl StoreTx {
    /// Queues `req` once there is room for it (waiting meanwhile, counted once per request in
    /// `store_waits`). Gives it back if the thread is gone.
    pub async fn send(&self, req: Req) -> Result<(), Req> {
        let cost = req.cost();
        let mut waited = false;
        loop {
            if self.room.try_take(cost) {
                break;
            }
            // Listen before checking again, so room given back in between is not missed.
            let freed = self.room.freed.listen();
            if self.room.try_take(cost) {
                break;
            }
            if self.tx.is_closed() {
                return Err(req);
            }
            if !waited {
                waited = true;
                self.room.stats.store_waits.fetch_add(1, Relaxed);
            }
            freed.await;
        }
        self.tx.try_send((req, cost)).map_err(|e| {
            self.room.give_back(cost);
            e.into_inner().0
        })
    }
}

/// Starts the thread; it stops when every sender is gone.
pub(super) fn spawn<F: Flush + Send + 'static>(
    mut store: Store<F>,
    stats: Arc<Stats>,
    max_bytes: usize,
) -> std::io::Result<StoreTx> {
    let (tx, StoreRx { rx, room }) = queue(max_bytes, stats.clone());
    count(&store, &stats);
    std::thread::Builder::new()
        .name("twig-mqtt-store".into())
        .spawn(move || {
            while let Ok((first, cost)) = rx.recv_blocking() {
                let mut batch = vec![first];
                let mut bytes = cost;
                while batch.len() < BATCH
                    && let Ok((r, c)) = rx.try_recv()
                {
                    batch.push(r);
                    bytes += c;
                }
                run_batch(&mut store, &stats, batch);
                // Applied, synced and answered: the requests are freed, so is their room.
                room.give_back(bytes);
            }
        })?;
    Ok(tx)
}

fn run_batch<F: Flush>(store: &mut Store<F>, stats: &Stats, batch: Vec<Req>) {
    let mut replies: Vec<(Reply, bool)> = Vec::new();
    let mut fences: Vec<Arc<Waiter>> = Vec::new();
    // A change that failed fails every fence behind it in this batch (earlier batches were
    // answered already).
    let mut failed = false;
    let mut written = false;
    let mut sessions_changed = false;
    for req in batch {
        match req {
            Req::Change(change, reply) => {
                // Every clean start forgets a stored session: usually there is none, and then
                // there is nothing to write or sync.
                let noop = matches!(&change, Change::Deleted { client_id } if !store.has_session(client_id));
                sessions_changed |=
                    matches!(change, Change::Session { .. } | Change::Deleted { .. });
                let ok = noop || report(store.apply(&change), "session change");
                written |= ok && !noop;
                failed |= !ok;
                if let Some(r) = reply {
                    replies.push((r, ok));
                }
            }
            Req::Retain(retain, reply) => {
                let result = match &retain {
                    Retain::Set {
                        topic,
                        subject,
                        headers,
                        payload,
                    } => store.set_retained(&RetainedMsg {
                        topic: topic.clone(),
                        subject: subject.clone(),
                        headers: headers.clone(),
                        payload: payload.clone(),
                    }),
                    Retain::Clear { topic } => store.clear_retained(topic),
                };
                let ok = match result {
                    Err(StoreError::RetainedFull) => {
                        stats.retained_refused.fetch_add(1, Relaxed);
                        tracing::warn!(
                            "MQTT: retained message not kept: max_retained or \
                             max_retained_bytes reached"
                        );
                        false
                    }
                    r => report(r, "retained message"),
                };
                written |= ok;
                if let Some(r) = reply {
                    replies.push((r, ok));
                }
            }
            Req::Fence(waiters) => fences.extend(waiters),
            Req::SendRetained {
                sub,
                subject,
                inbox,
            } => match store.retained_matching(&subject) {
                Ok(list) => {
                    for m in list {
                        let msg = Message {
                            subject: m.subject.as_bytes(),
                            reply: None,
                            headers: (!m.headers.is_empty()).then_some(&m.headers[..]),
                            payload: &m.payload,
                        };
                        if let Some(item) = Item::new(sub, false, true, &msg) {
                            inbox.push_msg(item);
                        }
                    }
                }
                Err(e) => tracing::error!("MQTT store: cannot read retained messages: {e:?}"),
            },
        }
    }
    if written && !report(store.sync(), "sync") {
        failed = true;
        for r in &mut replies {
            r.1 = false;
        }
    }
    for (r, ok) in replies {
        let outcome = if ok {
            Outcome::Ok
        } else {
            Outcome::Refused(reason::UNSPECIFIED_ERROR)
        };
        r.inbox.push_done(r.epoch, r.ticket, outcome);
    }
    stats.retained.store(store.retained_count() as u64, Relaxed);
    // After the sync: what monitoring shows as queued is on disk.
    stats.stored_queued.store(store.queued_count(), Relaxed);
    if sessions_changed {
        count(store, stats);
    }
    // Last, so monitoring shows the copies stored when their publishers get the PUBACK.
    for w in fences {
        if failed {
            w.fail();
        }
        // The last clone of a publish answers its publisher.
        drop(w);
    }
}

fn count<F: Flush>(store: &Store<F>, stats: &Stats) {
    stats.retained.store(store.retained_count() as u64, Relaxed);
    stats.stored_queued.store(store.queued_count(), Relaxed);
    stats
        .stored_sessions
        .store(store.sessions().len() as u64, Relaxed);
}

fn report<E: std::fmt::Debug>(r: Result<(), StoreError<E>>, what: &str) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            tracing::error!("MQTT store: {what} failed: {e:?}");
            false
        }
    }
}

/// A sender whose thread never runs (the other end is kept open for good), for tests.
#[cfg(test)]
pub(super) fn test_tx(stats: Arc<Stats>) -> StoreTx {
    let (tx, rx) = queue(1 << 20, stats);
    std::mem::forget(rx);
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    fn req(bytes: usize) -> Req {
        Req::Change(
            Change::Deleted {
                client_id: "x".repeat(bytes),
            },
            None,
        )
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_and_a_sender_waits_for_room() {
        let stats = Arc::new(Stats::default());
        let one = req(1000).cost();
        let (tx, rx) = queue(3 * one, stats.clone());
        block_on(async {
            for _ in 0..3 {
                tx.send(req(1000)).await.ok().unwrap();
            }
            // The fourth does not fit: it waits, is not queued, and the wait is counted.
            let mut fourth = Box::pin(tx.send(req(1000)));
            assert!(poll_once(&mut fourth).await.is_none());
            assert_eq!(rx.rx.len(), 3);
            assert_eq!(stats.store_waits.load(Relaxed), 1);
            assert!(poll_once(&mut fourth).await.is_none(), "still no room");
            assert_eq!(stats.store_waits.load(Relaxed), 1, "counted once");
            // The thread applies one: room for exactly one more.
            let (_, cost) = rx.rx.try_recv().unwrap();
            rx.room.give_back(cost);
            assert!(poll_once(&mut fourth).await.unwrap().is_ok());
            assert_eq!(rx.rx.len(), 3);
            assert_eq!(rx.room.used.load(Acquire), 3 * one);
        });
    }

    #[test]
    fn a_request_larger_than_the_bound_goes_through_an_empty_queue_alone() {
        let stats = Arc::new(Stats::default());
        let (tx, rx) = queue(64, stats.clone());
        block_on(async {
            tx.send(req(500)).await.ok().unwrap();
            let mut next = Box::pin(tx.send(req(1)));
            assert!(poll_once(&mut next).await.is_none());
            let (_, cost) = rx.rx.try_recv().unwrap();
            rx.room.give_back(cost);
            assert!(poll_once(&mut next).await.unwrap().is_ok());
        });
        // The thread gone: what waits is given back.
        drop(rx);
        assert!(block_on(tx.send(req(1))).is_err());
    }
}
