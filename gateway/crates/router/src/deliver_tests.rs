//! Delivery under a subscriber's permissions: the subscribe deny filter applies to messages
//! of every origin (a local client, a remote, twig itself, a component), to the subject the
//! client is shown, and before auto-unsubscribe counting; `allow_responses` is earned by a
//! delivery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use twig_core::wire::Queues;
use twig_perms::{Budgets, Checker, Permissions, ResponsePermission, Rules, SubjectPermission};

use super::*;
use crate::internal::new_owner;
use crate::{MatchCache, Router};

fn client(p: &Permissions) -> Arc<ClientShared> {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let c = Arc::new(ClientShared::new(1, addr, 1 << 20));
    let rules = Arc::new(Rules::compile(p).unwrap());
    c.set_perms(Some(Checker::new(rules, Budgets::default())));
    c
}

fn subscribe(router: &Router, c: &Arc<ClientShared>, subject: &str, queue: Option<&str>) {
    let filtered = c
        .with_perms(|ch| {
            ch.subscribe(subject.as_bytes(), queue.map(str::as_bytes))
                .filtered()
        })
        .unwrap_or(false);
    let sub = Arc::new(Subscription {
        client: c.clone(),
        sid: b"1"[..].into(),
        subject: subject.as_bytes().into(),
        queue: queue.map(|q| q.as_bytes().into()),
        max: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        closed: AtomicBool::new(false),
        filtered: AtomicBool::new(filtered),
    });
    c.subs.lock().unwrap().insert(sub.sid.clone(), sub.clone());
    router.insert(&sub).unwrap();
}

fn send(router: &Router, subject: &str, reply: Option<&str>, from: Origin<'_>) -> usize {
    let msg = Message {
        subject: subject.as_bytes(),
        reply: reply.map(str::as_bytes),
        headers: None,
        payload: b"x",
    };
    let mut cache = MatchCache::default();
    let mut batch = Batch::default();
    let n = deliver(
        &msg,
        from,
        router.lookup(&mut cache, msg.subject),
        &mut batch,
    );
    router.finish(&mut batch);
    n
}

fn deny(subjects: &[&str]) -> Permissions {
    Permissions {
        subscribe: Some(SubjectPermission {
            allow: None,
            deny: subjects.iter().map(|s| s.to_string()).collect(),
        }),
        ..Permissions::default()
    }
}

#[test]
fn the_deny_filter_applies_to_every_origin() {
    let router = Router::new(16);
    let c = client(&deny(&["a.secret", "q.x v2"]));
    subscribe(&router, &c, "a.>", None);
    subscribe(&router, &c, "q.*", Some("v2"));
    let publisher = ClientShared::new(2, "127.0.0.1:2".parse().unwrap(), 1 << 20);
    let origins = [
        Origin::client(&publisher),
        Origin::internal(),
        Origin::component(new_owner()),
        Origin::remote(Queues::from_raw(b"v2")),
    ];
    for from in origins {
        assert_eq!(send(&router, "a.secret", None, from), 0);
        assert_eq!(send(&router, "a.open", None, from), 1);
        assert_eq!(
            send(&router, "q.x", None, from),
            0,
            "queue v2 may not get q.x"
        );
        assert_eq!(send(&router, "q.y", None, from), 1);
    }
    assert_eq!(c.out_msgs.load(Ordering::Relaxed), 8);
}

#[test]
fn the_filter_checks_the_subject_the_client_is_shown() {
    let router = Router::new(16);
    let c = client(&deny(&["stored.secret"]));
    subscribe(&router, &c, "inbox.>", None);
    let hidden = Origin::internal().shown_as(b"stored.secret", None);
    assert_eq!(send(&router, "inbox.1", None, hidden), 0);
    let shown = Origin::internal().shown_as(b"stored.open", None);
    assert_eq!(send(&router, "inbox.1", None, shown), 1);
}

#[test]
fn a_filtered_message_does_not_count_toward_auto_unsubscribe() {
    let router = Router::new(16);
    let c = client(&deny(&["a.secret"]));
    subscribe(&router, &c, "a.*", None);
    let sub = c.subs.lock().unwrap().values().next().cloned().unwrap();
    sub.max.store(1, Ordering::Relaxed);
    assert_eq!(send(&router, "a.secret", None, Origin::internal()), 0);
    assert_eq!(send(&router, "a.open", None, Origin::internal()), 1);
    assert_eq!(router.count(), 0, "removed after its one message");
}

#[test]
fn a_literal_subscription_is_not_filtered() {
    let router = Router::new(16);
    let c = client(&deny(&["a.secret"]));
    subscribe(&router, &c, "a.open", None);
    let sub = c.subs.lock().unwrap().values().next().cloned().unwrap();
    assert!(!sub.filtered.load(Ordering::Relaxed));
}

#[test]
fn a_delivered_request_earns_one_response() {
    let router = Router::new(16);
    let c = client(&Permissions {
        allow_responses: Some(ResponsePermission::default()),
        ..Permissions::default()
    });
    subscribe(&router, &c, "svc", None);
    assert!(!c.may_publish(b"_INBOX.1"), "nothing but responses");
    assert_eq!(
        send(&router, "svc", Some("_INBOX.1"), Origin::internal()),
        1
    );
    assert!(c.may_publish(b"_INBOX.1"));
    assert!(!c.may_publish(b"_INBOX.1"), "once");
}

/// Past the scan length the batch finds clients by its index: every client keeps one slot,
/// however many it is touched and in whatever order.
#[test]
fn touch_gives_each_client_one_slot_at_any_fan_out() {
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let clients: Vec<Arc<ClientShared>> = (0..100)
        .map(|i| Arc::new(ClientShared::new(i, addr, 1 << 20)))
        .collect();
    let mut batch = Batch::default();
    let first: Vec<usize> = clients.iter().map(|c| batch.touch(c)).collect();
    assert_eq!(first, (0..100).collect::<Vec<_>>());
    for (i, c) in clients.iter().enumerate().rev() {
        assert_eq!(batch.touch(c), i);
    }
    let _ = batch.flush();
    assert_eq!(batch.touch(&clients[42]), 0, "a new batch starts empty");
    assert_eq!(batch.touch(&clients[7]), 1);
}
