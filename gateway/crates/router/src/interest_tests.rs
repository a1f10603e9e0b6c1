//! Interest observers see local subscription changes in the sublist's order, whichever
//! threads make them: a subscription removed by another thread (an auto-unsubscribe reached by
//! someone else's delivery) never reaches an observer before its insert.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier};

use crate::Router;
use crate::internal::{InternalSub, new_owner};
use crate::remote::InterestObserver;

/// Counts the interest it is told of; a count below zero is a remove seen before its insert.
#[derive(Default)]
struct Counter {
    n: AtomicI64,
    went_negative: AtomicBool,
}

impl InterestObserver for Counter {
    fn interest(&self, _: &[u8], _: Option<&[u8]>, add: bool) {
        let d = if add { 1 } else { -1 };
        if self.n.fetch_add(d, Ordering::SeqCst) + d < 0 {
            self.went_negative.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_remove_by_another_thread_is_never_seen_before_its_insert() {
    let counter = Arc::new(Counter::default());
    let router = Arc::new(Router::with_remotes(
        64,
        Vec::new(),
        vec![counter.clone() as Arc<dyn InterestObserver>],
    ));
    let (sub, _rx) = InternalSub::new(new_owner(), b"a.b", None, 1, 1 << 20);
    const ROUNDS: usize = 200_000;
    let start = Arc::new(Barrier::new(2));
    let inserter = {
        let (router, sub, start) = (router.clone(), sub.clone(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            for _ in 0..ROUNDS {
                let _ = router.insert_internal(&sub);
            }
        })
    };
    // The other thread removes the subscription whenever the sublist has it.
    start.wait();
    let mut removed = 0;
    while !inserter.is_finished() || router.remove_internal(&sub) {
        if router.remove_internal(&sub) {
            removed += 1;
        }
    }
    inserter.join().unwrap();
    assert!(removed > 0, "the two threads never met");
    assert!(
        !counter.went_negative.load(Ordering::SeqCst),
        "an observer saw a remove before its insert"
    );
    assert_eq!(counter.n.load(Ordering::SeqCst), 0, "interest left behind");
}
