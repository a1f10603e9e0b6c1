//! Sessions by client id: which task holds each session (connected, or kept offline), so a
//! new connection with the same client id takes it over (MQTT-3.1.4-2: the server closes the
//! existing connection). A session is known by its task's [`Inbox`]: the registry maps a
//! client id to it, and a task removes its entry only while the entry is still its own.
//!
//! One leaf mutex; never held across an await or while another lock is taken.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::inbox::Inbox;
use twig_util::lock::lock;

/// Sessions by client id.
#[derive(Default)]
pub(super) struct Registry {
    sessions: Mutex<HashMap<String, Arc<Inbox>>>,
}

/// What [`Registry::claim`] found.
pub(super) enum Claim {
    /// No session had the id: `mine` holds it now.
    New,
    /// Another task held it: `mine` holds it now; ask the other to hand it over.
    Taken(Arc<Inbox>),
    /// The id is new and the registry is full.
    Full,
}

impl Registry {
    /// Makes `mine` the holder of `client_id`. A new id counts against `max` sessions.
    pub fn claim(&self, client_id: &str, mine: &Arc<Inbox>, max: usize) -> Claim {
        let mut map = lock(&self.sessions);
        let full = map.len() >= max;
        match map.get_mut(client_id) {
            Some(old) if Arc::ptr_eq(old, mine) => Claim::New,
            Some(old) => Claim::Taken(std::mem::replace(old, mine.clone())),
            None if full => Claim::Full,
            None => {
                map.insert(client_id.to_string(), mine.clone());
                Claim::New
            }
        }
    }

    /// Replaces `from` by `to` as the holder of `client_id`, if `from` still holds it (a task
    /// that adopted the inbox of the session it took over).
    pub fn switch(&self, client_id: &str, from: &Arc<Inbox>, to: &Arc<Inbox>) -> bool {
        let mut map = lock(&self.sessions);
        match map.get_mut(client_id) {
            Some(cur) if Arc::ptr_eq(cur, from) => {
                *cur = to.clone();
                true
            }
            _ => false,
        }
    }

    /// Forgets `client_id` if `mine` still holds it.
    pub fn release(&self, client_id: &str, mine: &Arc<Inbox>) {
        let mut map = lock(&self.sessions);
        if map.get(client_id).is_some_and(|cur| Arc::ptr_eq(cur, mine)) {
            map.remove(client_id);
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Every holder (for shutdown).
    pub fn all(&self) -> Vec<Arc<Inbox>> {
        lock(&self.sessions).values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twig_router::internal::new_owner;

    fn inbox() -> Arc<Inbox> {
        Arc::new(Inbox::new(new_owner(), 1024))
    }

    #[test]
    fn a_second_claim_takes_over_and_only_the_holder_releases() {
        let r = Registry::default();
        let (a, b) = (inbox(), inbox());
        assert!(matches!(r.claim("dev", &a, 10), Claim::New));
        assert!(
            matches!(r.claim("dev", &a, 10), Claim::New),
            "again: still mine"
        );
        match r.claim("dev", &b, 10) {
            Claim::Taken(old) => assert!(Arc::ptr_eq(&old, &a)),
            _ => panic!("b takes over"),
        }
        r.release("dev", &a);
        assert_eq!(r.len(), 1, "a no longer holds it");
        let c = inbox();
        assert!(r.switch("dev", &b, &c));
        assert!(!r.switch("dev", &b, &c));
        r.release("dev", &c);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn new_ids_past_the_limit_are_refused() {
        let r = Registry::default();
        let (a, b) = (inbox(), inbox());
        assert!(matches!(r.claim("one", &a, 1), Claim::New));
        assert!(matches!(r.claim("two", &b, 1), Claim::Full));
        // Taking over an existing id is not a new session.
        assert!(matches!(r.claim("one", &b, 1), Claim::Taken(_)));
    }
}
