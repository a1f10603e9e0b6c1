//! Answers to MQTT 5 requests: a device's response topic and correlation data travel as the
//! NATS reply subject `$MQTT.rsp.<correlation>.<subject>` (`server::headers`); whoever answers
//! publishes there. One internal subscription on `$MQTT.rsp.>` takes those answers and
//! publishes each to the response topic's subject with the correlation data in a header, which
//! the device's session turns back into the Correlation Data property.

use std::sync::Arc;

use twig_router::internal::{InternalSub, Publisher, new_owner};
use twig_router::{Message, Router};

use crate::server::headers;

/// Answers waiting at most; more are dropped and counted by the subscription (as a slow
/// consumer's), the requester times out.
const QUEUE: usize = 1024;

/// Subscribes `$MQTT.rsp.>` and republishes answers until the router drops the subscription;
/// the answers waiting hold at most `max_bytes` (the listener's `max_queued_bytes`).
pub(super) fn start(
    router: &Arc<Router>,
    ex: &Arc<async_executor::Executor<'static>>,
    max_bytes: usize,
) -> Option<Arc<InternalSub>> {
    let owner = new_owner();
    let subject = format!("{}>", headers::REPLY_PREFIX);
    let (sub, rx) = InternalSub::new(owner, subject.as_bytes(), None, QUEUE, max_bytes);
    router.insert_internal(&sub).ok()?;
    let mut publisher = Publisher::new(router.clone(), owner);
    ex.spawn(async move {
        while let Ok(m) = rx.recv().await {
            let Ok(subject) = std::str::from_utf8(&m.subject) else {
                continue;
            };
            let Some((target, block)) = headers::answer(subject, m.headers.as_deref()) else {
                continue;
            };
            let msg = Message {
                subject: target.as_bytes(),
                reply: m.reply.as_deref(),
                headers: (!block.is_empty()).then_some(&block[..]),
                payload: &m.payload,
            };
            publisher.publish(&msg);
            if rx.is_empty() {
                publisher.flush();
            }
        }
    })
    .detach();
    Some(sub)
}
