//! The store thread: the one owner of the listener's [`Store`] (retained messages, lasting
//! sessions), an OS thread because the table's API blocks on the disk (`fdatasync`), as a
//! stream's thread owns its log.
//!
//! Sessions send it requests over a bounded channel (a full channel makes the sender wait:
//! back-pressure to the sessions that write). It takes everything waiting, applies it in
//! order, syncs once (group commit) and only then answers the tickets, so a SUBACK, a QoS 2
//! PUBREC or a retained message's PUBACK leaves only once its change is on disk; so does the
//! PUBACK of a publish queued in a lasting session (a [`Req::Fence`], see [`super::ackwait`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use twig_core::log::Flush;
use twig_router::Message;

use super::Stats;
use super::ackwait::Waiter;
use super::inbox::{Inbox, Item};
use crate::server::store::{RetainedMsg, Store, StoreError};
use crate::server::{Change, Outcome, Retain, Ticket};
use twig_core::mqtt::packet::reason;

/// Requests waiting at most (each a session's change; senders wait past it).
pub(super) const QUEUE: usize = 4096;

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

/// Starts the thread; it stops when every sender is gone.
pub(super) fn spawn<F: Flush + Send + 'static>(
    mut store: Store<F>,
    stats: Arc<Stats>,
) -> std::io::Result<async_channel::Sender<Req>> {
    let (tx, rx) = async_channel::bounded::<Req>(QUEUE);
    count(&store, &stats);
    std::thread::Builder::new()
        .name("twig-mqtt-store".into())
        .spawn(move || {
            while let Ok(first) = rx.recv_blocking() {
                let mut batch = vec![first];
                while batch.len() < BATCH
                    && let Ok(r) = rx.try_recv()
                {
                    batch.push(r);
                }
                run_batch(&mut store, &stats, batch);
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
