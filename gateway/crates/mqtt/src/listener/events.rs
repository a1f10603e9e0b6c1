//! What a session task does with its session's events: log the client in and take over its
//! previous session, publish into the router and the streams, subscribe, keep retained
//! messages and lasting sessions in the store.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use twig_core::mqtt::packet::reason;
use twig_router::Message;
use twig_router::store::{NoticeTx, Notify, Submit};
use twig_util::clock::unix_nanos;

use super::ackwait::{Scope, Waiter};
use super::conns::ConnView;
use super::inbox::{Control, Inbox};
use super::login::LoginRequest;
use super::persist::{Reply, Req};
use super::registry::Claim;
use super::task::{Handover, Task};
use crate::server::{Accept, ConnectInfo, Event, Outcome, Publish, Ticket};

/// How long a new connection waits for the task holding its client id to hand the session
/// over before it goes on without it.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

impl Task {
    /// Acts on every event the session has, until it has none.
    pub(super) async fn events(&mut self, now: Instant) {
        let mut persisted = false;
        while let Some(ev) = self.session.poll_event() {
            if !matches!(ev, Event::Publish(_))
                && let Some(r) = self.retain_ahead.take()
            {
                self.store(Req::Retain(r, None)).await;
            }
            match ev {
                Event::Connect(info) => self.connect(now, info).await,
                Event::Publish(p) => self.publish(now, p).await,
                Event::Retain(r) => self.retain_ahead = Some(r),
                Event::Subscribe { id, subject, queue } => {
                    self.subscribe(id, &subject, queue.as_deref())
                }
                Event::Unsubscribe { id, subject } => self.subs.remove(id, &subject),
                Event::SendRetained { id, subject } => {
                    let req = Req::SendRetained {
                        sub: id,
                        subject,
                        inbox: self.inbox.clone(),
                    };
                    self.store(req).await;
                }
                Event::Persist(change, ticket) => {
                    persisted = true;
                    let reply = ticket.map(|t| self.reply(t));
                    self.store(Req::Change(change, reply)).await;
                }
                Event::Close => self.closing = true,
                Event::Expired => self.ended = true,
            }
        }
        if let Some(r) = self.retain_ahead.take() {
            self.store(Req::Retain(r, None)).await;
        }
        // Publishers whose messages this turn delivered: if the session stored them, they
        // wait for that store commit; if not, they wait for nothing.
        if !self.acks.is_empty() {
            let acks = std::mem::take(&mut self.acks);
            if persisted {
                self.store(Req::Fence(acks)).await;
            }
        }
    }

    fn reply(&mut self, ticket: Ticket) -> Reply {
        self.store_waiting += 1;
        Reply {
            epoch: self.epoch,
            ticket,
            inbox: self.inbox.clone(),
        }
    }

    /// Hands a request to the store thread (waiting for room). If the thread is gone, what
    /// waits for it is refused.
    async fn store(&mut self, req: Req) {
        if let Err(req) = self.sh.store.send(req).await {
            tracing::error!("MQTT: the store thread has stopped");
            let reply = match req {
                Req::Change(_, r) | Req::Retain(_, r) => r,
                Req::Fence(waiters) => {
                    waiters.iter().for_each(|w| w.fail());
                    None
                }
                Req::SendRetained { .. } => None,
            };
            if let Some(r) = reply {
                self.store_waiting = self.store_waiting.saturating_sub(1);
                let now = Instant::now();
                self.done(now, r.ticket, Outcome::Refused(reason::UNSPECIFIED_ERROR));
            }
        }
    }

    /// A device's PUBLISH (or will) into NATS: routed as a client's PUB is; on a stream
    /// subject handed to the stream, whose notice answers the ticket once durable.
    async fn publish(&mut self, now: Instant, p: Publish) {
        let st = &self.sh.stats;
        st.in_msgs.fetch_add(1, Relaxed);
        st.in_bytes.fetch_add(p.payload.len() as u64, Relaxed);
        if let Some(v) = &self.view {
            v.received(p.payload.len());
        }
        let retain = self.retain_ahead.take();
        if let (Some(r), Some(t)) = (&retain, p.ticket) {
            // The acknowledgement waits for the retained copy on disk too.
            self.joins.insert(t.0, (2, Outcome::Ok));
            let reply = self.reply(t);
            self.store(Req::Retain(r.clone(), Some(reply))).await;
        } else if let Some(r) = retain {
            self.store(Req::Retain(r, None)).await;
        }
        let msg = Message {
            subject: p.subject.as_bytes(),
            reply: p.reply.as_deref().map(str::as_bytes),
            headers: (!p.headers.is_empty()).then_some(&p.headers[..]),
            payload: &p.payload,
        };
        let router = self.sh.router.clone();
        let store = router.store(msg.subject);
        let waiter = p.ticket.map(|t| Waiter::new(self.reply(t)));
        {
            let _scope = Scope::enter(waiter.as_ref());
            self.publisher().publish_stored(&msg, store);
        }
        if let (Some(w), Some(t)) = (waiter, p.ticket) {
            match Waiter::settle(w) {
                // No lasting session took a copy.
                Some(_) => self.store_waiting = self.store_waiting.saturating_sub(1),
                // One did: the ticket also waits for the store commit of that copy.
                None => self.joins.entry(t.0).or_insert((1, Outcome::Ok)).0 += 1,
            }
        }
        let Some(store) = store else {
            if let Some(t) = p.ticket {
                self.done(now, t, Outcome::Ok);
            }
            return;
        };
        let notify = p.ticket.map(|t| Notify {
            tx: NoticeTx::Sink(self.notices()),
            token: t.0,
        });
        let refused = match store.submit(&msg, unix_nanos(), notify) {
            Submit::Queued => None,
            Submit::Full(full) => {
                // The stream's queue is full: deliver what this turn routed, then wait for
                // room (this session only; the executor serves the others meanwhile).
                self.publisher().flush();
                (!full.wait().await).then_some(reason::UNSPECIFIED_ERROR)
            }
            Submit::Gone => Some(reason::UNSPECIFIED_ERROR),
            Submit::Invalid => Some(reason::IMPLEMENTATION_SPECIFIC_ERROR),
        };
        if let Some(code) = refused {
            tracing::error!(
                "mid:{} - MQTT publish to {:?} not stored in stream {}",
                self.cid,
                p.subject,
                store.name()
            );
            if let Some(t) = p.ticket {
                self.done(now, t, Outcome::Refused(code));
            }
        }
    }

    /// CONNECT: the listener's limits, the login, then the client id's previous session.
    async fn connect(&mut self, now: Instant, info: ConnectInfo) {
        let sh = self.sh.clone();
        if self.over_limit {
            tracing::warn!(
                "mid:{} - MQTT connection refused: max_connections ({}) reached",
                self.cid,
                sh.lcfg.max_connections
            );
            return self.session.handle(
                now,
                crate::server::Input::Reject(reason::SERVER_UNAVAILABLE),
            );
        }
        let req = LoginRequest {
            client_id: &info.client_id,
            username: info.username.as_deref(),
            password: info.password.as_deref(),
            addr: self.addr.unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
            certificate: self.cert.as_deref(),
        };
        let login = match sh.login.login(&req).await {
            Ok(l) => l,
            Err(r) => {
                sh.stats.auth_failures.fetch_add(1, Relaxed);
                let who = info
                    .username
                    .as_deref()
                    .map(|u| format!(" - User {u:?}"))
                    .unwrap_or_default();
                tracing::error!(
                    "{} - mid:{} - \"{}\" - authentication error{who} ({})",
                    req.addr,
                    self.cid,
                    info.client_id,
                    r.why
                );
                return self
                    .session
                    .handle(now, crate::server::Input::Reject(r.code));
            }
        };
        let mine = self.inbox.clone();
        let previous = match sh
            .registry
            .claim(&info.client_id, &mine, sh.lcfg.max_sessions)
        {
            Claim::Full => {
                tracing::warn!(
                    "mid:{} - MQTT client {:?} refused: max_sessions ({}) reached",
                    self.cid,
                    info.client_id,
                    sh.lcfg.max_sessions
                );
                return self
                    .session
                    .handle(now, crate::server::Input::Reject(reason::SERVER_BUSY));
            }
            Claim::New => None,
            Claim::Taken(old) => self.take_over(&info, old).await,
        };
        self.registered = Some(info.client_id.clone());
        if let Some(u) = &login.user {
            tracing::debug!(
                "mid:{} - MQTT client {:?} logged in as {u:?}",
                self.cid,
                info.client_id
            );
        }
        if let Some(addr) = self.addr {
            let view = Arc::new(ConnView::new(
                self.cid,
                addr,
                &info.client_id,
                login.user.clone(),
            ));
            sh.conns.add(view.clone());
            self.view = Some(view);
        }
        let accept = Accept {
            permissions: login.permissions,
            previous,
        };
        self.session
            .handle(Instant::now(), crate::server::Input::Accept(accept));
    }

    /// Asks the task holding `info.client_id` to close its connection and hand the session
    /// over; keeps it unless the client asked for a clean start.
    async fn take_over(
        &mut self,
        info: &ConnectInfo,
        old: Arc<Inbox>,
    ) -> Option<crate::server::SessionState> {
        let (tx, rx) = async_channel::bounded::<Handover>(1);
        old.push_control(Control::TakeOver(tx));
        let handover = futures_lite::future::or(async { rx.recv().await.ok() }, async {
            async_io::Timer::after(TAKEOVER_WAIT).await;
            None
        })
        .await;
        let Some(h) = handover else {
            tracing::warn!(
                "mid:{} - MQTT client {:?}: the previous connection did not hand its session over",
                self.cid,
                info.client_id
            );
            return None;
        };
        tracing::debug!(
            "mid:{} - MQTT client {:?} took its session over",
            self.cid,
            info.client_id
        );
        if info.clean_start {
            // Dropping the handover removes the old subscriptions.
            return None;
        }
        // Adopt the old inbox (deliveries already in it, and the subscriptions whose sink it
        // is), so no message falls between the two connections.
        let Handover { state, subs } = h;
        let fresh = std::mem::replace(&mut self.inbox, old);
        sh_switch(self, &info.client_id, &fresh);
        self.subs = subs;
        self.publisher = None;
        self.notices = None;
        for c in fresh.drain(usize::MAX).control {
            self.inbox.push_control(c);
        }
        Some(state)
    }
}

fn sh_switch(t: &Task, client_id: &str, fresh: &Arc<Inbox>) {
    t.sh.registry.switch(client_id, fresh, &t.inbox);
}
