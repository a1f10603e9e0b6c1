//! The order of PUBACKs, without sockets or clocks.
//!
//! MQTT 3.1.1 (§4.6) requires a receiver to send PUBACKs in the order the QoS 1 PUBLISHes
//! arrived. A message on a stream subject is acknowledged only once its stream reports it
//! durable, and streams answer in their own time (one thread each, group commit), while a
//! message on any other subject may be acknowledged as soon as the router has it. The queue
//! holds every unacknowledged QoS 1 message in arrival order and lets an acknowledgement out
//! only when everything before it is done too.
//!
//! Each entry gets a token (the [`Notify`](twig_router::store::Notify) tag): a strictly increasing
//! number, so the entry is found by subtraction. A reconnect [`clear`](AckQueue::clear)s the
//! queue: the broker redelivers what was not acknowledged on the old connection, and a late
//! notice for a cleared entry is ignored.
use std::collections::VecDeque;

/// One unacknowledged QoS 1 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    pkid: u16,
    done: bool,
}

/// QoS 1 messages from the broker in arrival order, each waiting to be acknowledged.
#[derive(Debug)]
pub struct AckQueue {
    entries: VecDeque<Entry>,
    /// Token of `entries[0]`.
    base: u64,
    limit: usize,
}

/// The queue holds `limit` messages already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl AckQueue {
    /// A queue of at most `limit` messages.
    pub fn new(limit: usize) -> AckQueue {
        AckQueue {
            entries: VecDeque::new(),
            base: 1,
            limit: limit.max(1),
        }
    }

    /// Adds a message that arrived with packet id `pkid`; `done` when it needs nothing more
    /// (handed to the router). Returns its token.
    pub fn push(&mut self, pkid: u16, done: bool) -> Result<u64, Full> {
        if self.entries.len() >= self.limit {
            return Err(Full);
        }
        let token = self.base + self.entries.len() as u64;
        self.entries.push_back(Entry { pkid, done });
        Ok(token)
    }

    /// The message with `token` is done (durable). Returns false for an unknown token (from
    /// before a [`clear`](Self::clear), or already acknowledged).
    pub fn done(&mut self, token: u64) -> bool {
        let Some(i) = token.checked_sub(self.base) else {
            return false;
        };
        match usize::try_from(i)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
        {
            Some(e) if !e.done => {
                e.done = true;
                true
            }
            _ => false,
        }
    }

    /// The next packet id that may be acknowledged now, in order.
    pub fn pop_ready(&mut self) -> Option<u16> {
        match self.entries.front() {
            Some(e) if e.done => {
                let pkid = e.pkid;
                self.entries.pop_front();
                self.base += 1;
                Some(pkid)
            }
            _ => None,
        }
    }

    /// Forgets every entry (the connection they came on is gone).
    pub fn clear(&mut self) {
        self.base += self.entries.len() as u64;
        self.entries.clear();
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut AckQueue) -> Vec<u16> {
        std::iter::from_fn(|| q.pop_ready()).collect()
    }

    #[test]
    fn acks_leave_in_arrival_order_whatever_order_they_complete_in() {
        let mut q = AckQueue::new(8);
        let t1 = q.push(11, false).unwrap();
        let _t2 = q.push(12, true).unwrap();
        let t3 = q.push(13, false).unwrap();
        assert_eq!(drain(&mut q), Vec::<u16>::new(), "11 is not durable yet");
        assert!(q.done(t3));
        assert_eq!(drain(&mut q), Vec::<u16>::new());
        assert!(q.done(t1));
        assert_eq!(drain(&mut q), vec![11, 12, 13]);
        assert!(q.is_empty());
        assert!(!q.done(t1), "already acknowledged");
    }

    #[test]
    fn a_full_queue_refuses_and_a_clear_forgets_old_tokens() {
        let mut q = AckQueue::new(2);
        let old = q.push(1, false).unwrap();
        q.push(2, false).unwrap();
        assert_eq!(q.push(3, true), Err(Full));
        q.clear();
        assert_eq!(q.len(), 0);
        let new = q.push(1, false).unwrap();
        assert!(new > old);
        assert!(
            !q.done(old),
            "a notice from before the reconnect is ignored"
        );
        assert_eq!(drain(&mut q), Vec::<u16>::new());
        assert!(q.done(new));
        assert_eq!(drain(&mut q), vec![1]);
    }

    #[test]
    fn tokens_below_the_base_or_far_ahead_are_unknown() {
        let mut q = AckQueue::new(4);
        assert!(!q.done(0));
        assert!(!q.done(u64::MAX));
        let t = q.push(7, true).unwrap();
        assert_eq!(drain(&mut q), vec![7]);
        assert!(!q.done(t));
    }
}
