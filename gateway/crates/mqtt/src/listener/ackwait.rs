//! A device's QoS 1/2 publish whose copy lands in a lasting session's queue: its PUBACK/PUBREC
//! waits until that copy is on flash (issue 16: what twig acknowledged survives kill -9).
//!
//! While the publishing task routes the message, a [`Scope`] makes its [`Waiter`] the
//! thread's current one; an inbox whose session is lasting takes a clone into the delivery
//! (the router calls [`Sink::offer`](twig_router::internal::Sink::offer) within the same
//! call, on the same thread). The subscriber's task hands the clones of what it persisted
//! this turn to the store thread behind those changes (a fence), which drops them after its
//! sync. The last clone to go answers the publisher's ticket: a group commit answers many
//! publishes with one `fdatasync`. A delivery dropped (full inbox or queue) or not persisted
//! (the session was not lasting after all) lets its clone go at once: nothing more to wait
//! for, as before.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::persist::Reply;
use crate::server::Outcome;
use twig_core::mqtt::packet::reason;

/// The publisher's ticket, answered when the last clone is dropped.
pub(super) struct Waiter {
    reply: Option<Reply>,
    failed: AtomicBool,
}

impl Waiter {
    pub fn new(reply: Reply) -> Arc<Waiter> {
        Arc::new(Waiter {
            reply: Some(reply),
            failed: AtomicBool::new(false),
        })
    }

    /// The copy could not be stored: the publisher is refused (MQTT 5 says so; 3.1.1
    /// closes, and the client sends the message again).
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// After routing: `Some(reply)` if no inbox took a clone (nothing to wait for; the
    /// caller answers itself), `None` if a clone will answer.
    pub fn settle(w: Arc<Waiter>) -> Option<Reply> {
        match Arc::try_unwrap(w) {
            Ok(mut w) => w.reply.take(),
            Err(_) => None,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(r) = self.reply.take() {
            let outcome = if self.failed.load(Ordering::Relaxed) {
                Outcome::Refused(reason::UNSPECIFIED_ERROR)
            } else {
                Outcome::Ok
            };
            r.inbox.push_done(r.epoch, r.ticket, outcome);
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Waiter>>> = const { RefCell::new(None) };
}

/// Makes `w` the thread's current waiter until dropped (routing never awaits, so no other
/// task runs on this thread meanwhile).
pub(super) struct Scope(());

impl Scope {
    pub fn enter(w: Option<&Arc<Waiter>>) -> Scope {
        CURRENT.with_borrow_mut(|c| *c = w.cloned());
        Scope(())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with_borrow_mut(|c| *c = None);
    }
}

/// A clone of the current waiter, for a delivery into a lasting session.
pub(super) fn current() -> Option<Arc<Waiter>> {
    CURRENT.with_borrow(|c| c.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::inbox::Inbox;
    use crate::server::Ticket;

    fn waiter(inbox: &Arc<Inbox>, t: u64) -> Arc<Waiter> {
        Waiter::new(Reply {
            epoch: 1,
            ticket: Ticket(t),
            inbox: inbox.clone(),
        })
    }

    #[test]
    fn the_last_copy_answers_and_a_failed_store_refuses() {
        let inbox = Arc::new(Inbox::new(twig_router::internal::new_owner(), 1024));
        // Nobody took a copy: the publisher answers itself, nothing is pushed.
        let w = waiter(&inbox, 1);
        {
            let _s = Scope::enter(Some(&w));
        }
        assert!(current().is_none(), "the scope ends with the routing");
        assert!(Waiter::settle(w).is_some());
        assert!(inbox.is_empty());
        // Two lasting sessions took one each: answered when the second goes.
        let w = waiter(&inbox, 2);
        let (a, b) = {
            let _s = Scope::enter(Some(&w));
            (current().unwrap(), current().unwrap())
        };
        assert!(Waiter::settle(w).is_none());
        drop(a);
        assert!(inbox.is_empty());
        b.fail();
        drop(b);
        let d = inbox.drain(0);
        assert_eq!(
            d.done,
            [(1, Ticket(2), Outcome::Refused(reason::UNSPECIFIED_ERROR))]
        );
    }
}
