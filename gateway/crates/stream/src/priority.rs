//! Forwarding priorities among the streams that drain to one remote: a stream sends new
//! messages only while no stream of a higher `forward_priority` on the same remote has a
//! backlog waiting to go. So an alarm stream drains ahead of a telemetry backlog; what it
//! still waits behind is the lower streams' messages already in flight, which their windows
//! keep to about one round trip of the link.
//!
//! One board per remote, shared by its streams' threads; its mutex is a leaf lock.
use std::collections::BTreeMap;
use std::sync::Mutex;

use event_listener::{Event, EventListener};

/// Which priorities have a backlog waiting, on one remote.
#[derive(Debug, Default)]
pub struct Board {
    /// Priority -> streams of that priority with a backlog waiting.
    waiting: Mutex<BTreeMap<u8, usize>>,
    /// Notified when a stream leaves the board (lower ones may then send).
    left: Event,
}

impl Board {
    /// A stream of `priority` has a backlog waiting (`true`) or no longer (`false`); called
    /// on changes only. Leaving wakes the streams waiting on [`Board::listen`].
    pub fn set(&self, priority: u8, waiting: bool) {
        {
            let mut w = twig_util::lock::lock(&self.waiting);
            if waiting {
                *w.entry(priority).or_default() += 1;
                return;
            }
            if let Some(n) = w.get_mut(&priority) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    w.remove(&priority);
                }
            }
        }
        self.left.notify(usize::MAX);
    }

    /// A listener notified when a stream leaves the board.
    pub fn listen(&self) -> EventListener {
        self.left.listen()
    }

    /// Whether a stream of a higher priority than `priority` has a backlog waiting.
    pub fn higher_waiting(&self, priority: u8) -> bool {
        let w = twig_util::lock::lock(&self.waiting);
        w.range(priority.saturating_add(1)..).next().is_some() && priority < u8::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_listener::Listener;

    #[test]
    fn a_lower_stream_waits_while_a_higher_one_has_a_backlog() {
        let b = Board::default();
        assert!(!b.higher_waiting(0));
        b.set(5, true);
        b.set(5, true);
        assert!(b.higher_waiting(0) && b.higher_waiting(4));
        assert!(!b.higher_waiting(5), "equal priorities share the link");
        assert!(!b.higher_waiting(9));
        b.set(5, false);
        assert!(b.higher_waiting(0), "one of the two still waits");
        let l = b.listen();
        b.set(5, false);
        assert!(l.wait_timeout(std::time::Duration::ZERO).is_some(), "woken");
        assert!(!b.higher_waiting(0));
        b.set(255, true);
        assert!(!b.higher_waiting(255) && b.higher_waiting(254));
    }
}
