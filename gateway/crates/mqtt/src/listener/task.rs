//! One session's task: the loop around the sans-IO [`Session`].
//!
//! Each turn: take what arrived (the inbox: deliveries, streams' notices, store answers) into
//! the session, act on the session's events ([`super::task_events`]: login, publish,
//! subscribe, persist...), move its output into the write buffer, then wait for whichever
//! comes first: bytes from the socket, room to write, the inbox, or the session's timer. Reading and writing
//! happen in the same wait and never block each other; reading pauses while the session does
//! not want input (3.1.1 flow control), while the write buffer is past its bound (a client
//! that does not read is not fed more answers), or while too many store requests wait.
//!
//! The socket is read into one buffer per executor thread (the bytes go to the session within
//! the same poll), so an idle session holds no read buffer. Its write buffer is freed once
//! written, the session's empty queues are freed before each wait ([`Session::trim`]), the
//! publisher and the streams' notice target are made on the first publish, and the rare
//! futures (TLS handshake, login and takeover, store waits) are boxed: an idle session costs
//! about 5 KiB (`tests/tests/mqtt_idle_sessions.rs`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncRead, AsyncWrite};
use twig_router::Router;
use twig_router::internal::{InternalSub, Publisher, new_owner};
use twig_router::store::Stored;

use super::Shared;
use super::ackwait::Waiter;
use super::conns::ConnView;
use super::inbox::{Control, Inbox, Item, Notices};
use crate::server::{Delivery, Input, Outcome, Session, SessionState, Ticket};

/// Bytes read per socket read at most (one buffer per executor thread).
const READ_BUF: usize = 64 * 1024;
/// Inbox messages handed to the session per turn (the rest wait for the next turn, so a
/// flood of deliveries does not keep the socket unread).
const DRAIN_MAX: usize = 512;
/// Store requests a session may have waiting before its socket is no longer read.
const MAX_STORE_WAITING: usize = 256;
/// How long a taken-over connection gets to write its DISCONNECT.
const HANDOVER_FLUSH: Duration = Duration::from_secs(1);

thread_local! {
    static READ: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

/// The connection's byte stream, plain or TLS.
pub(super) enum Io {
    Plain(Async<TcpStream>),
    Tls(Box<futures_rustls::server::TlsStream<Async<TcpStream>>>),
}

impl Io {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        match self {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s.get_ref(),
            Io::Tls(s) => s.get_ref().0.get_ref(),
        }
    }
}

/// The NATS subscriptions of a session. Dropping it removes them from the router, so a
/// session handed over to a task that then fails never leaves subscriptions behind.
pub(super) struct Subs {
    router: Arc<Router>,
    list: Vec<(u32, Arc<InternalSub>)>,
}

impl Subs {
    fn new(router: Arc<Router>) -> Subs {
        Subs {
            router,
            list: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, id: u32, sub: Arc<InternalSub>) -> bool {
        if self.router.insert_internal(&sub).is_err() {
            return false;
        }
        self.list.push((id, sub));
        // Most sessions hold one or two subscriptions: no spare slots for ever.
        self.list.shrink_to_fit();
        true
    }

    pub(super) fn remove(&mut self, id: u32, subject: &str) {
        if let Some(i) = self
            .list
            .iter()
            .position(|(i, s)| *i == id && &*s.subject == subject.as_bytes())
        {
            let (_, s) = self.list.swap_remove(i);
            self.router.remove_internal(&s);
        }
    }
}

impl Drop for Subs {
    fn drop(&mut self) {
        for (_, s) in self.list.drain(..) {
            self.router.remove_internal(&s);
        }
    }
}

/// A session handed from the task that held it to the one that takes it over.
pub(super) struct Handover {
    pub state: SessionState,
    pub subs: Subs,
}

/// What woke the task.
enum Wake {
    Read(usize),
    Eof,
    IoError,
    Wrote,
    Inbox,
    Timer,
}

/// One session's task state.
pub(super) struct Task {
    pub(super) sh: Arc<Shared>,
    pub(super) session: Session,
    pub(super) cid: u64,
    /// A number no other task has: store answers carry it, so answers meant for the task that
    /// held an adopted inbox before are recognised and dropped.
    pub(super) epoch: u64,
    io: Option<Io>,
    pub(super) addr: Option<SocketAddr>,
    pub(super) cert: Option<Vec<u8>>,
    out: Vec<u8>,
    out_pos: usize,
    flushing: bool,
    /// When the write buffer last made progress (write deadline).
    progress_at: Instant,
    /// The session closed its connection: write what is left, then drop the socket.
    pub(super) closing: bool,
    /// When `closing` started.
    closing_since: Option<Instant>,
    /// The session is over: the task ends once its output is written.
    pub(super) ended: bool,
    /// Hand the session over (after the session closed the connection).
    pub(super) handover: Option<async_channel::Sender<Handover>>,
    pub(super) inbox: Arc<Inbox>,
    /// Where the streams answer this task's QoS 1/2 publishes (its inbox), made on the first
    /// one: a session that only subscribes holds none.
    pub(super) notices: Option<Arc<Notices>>,
    pub(super) subs: Subs,
    /// Made on the first publish (its match cache and batch are a few hundred bytes that a
    /// session that only subscribes never needs).
    pub(super) publisher: Option<Box<Publisher>>,
    /// The client id this task holds in the registry.
    pub(super) registered: Option<String>,
    /// Tickets that wait for two completions (a retained message stored and routed).
    pub(super) joins: HashMap<u64, (u8, Outcome)>,
    /// Store requests waiting for their answer.
    pub(super) store_waiting: usize,
    /// Publishers waiting for the copies this turn delivered (see [`super::ackwait`]).
    pub(super) acks: Vec<Arc<Waiter>>,
    /// A `Retain` event waiting for the `Publish` that follows it.
    pub(super) retain_ahead: Option<crate::server::Retain>,
    /// Accepted past `max_connections`: refused at CONNECT.
    pub(super) over_limit: bool,
    /// What `/connz` shows of this connection, once its CONNECT was accepted.
    pub(super) view: Option<Arc<ConnView>>,
    timer: Timer,
}

impl Task {
    fn new(sh: &Arc<Shared>, session: Session, io: Option<Io>, addr: Option<SocketAddr>) -> Task {
        let inbox = Arc::new(Inbox::new(new_owner(), sh.lcfg.max_queued_bytes));
        let cid = (sh.next_cid)();
        Task {
            publisher: None,
            subs: Subs::new(sh.router.clone()),
            sh: sh.clone(),
            session,
            cid,
            epoch: next_epoch(),
            io,
            addr,
            cert: None,
            out: Vec::new(),
            out_pos: 0,
            flushing: false,
            progress_at: Instant::now(),
            closing: false,
            closing_since: None,
            ended: false,
            handover: None,
            inbox,
            notices: None,
            registered: None,
            joins: HashMap::new(),
            store_waiting: 0,
            acks: Vec::new(),
            retain_ahead: None,
            over_limit: false,
            view: None,
            timer: Timer::never(),
        }
    }

    /// A connection just accepted: TLS handshake if configured, then a new session.
    pub(super) async fn accepted(
        sh: &Arc<Shared>,
        stream: Async<TcpStream>,
        peer: SocketAddr,
    ) -> Option<Task> {
        let peer = unmapped(peer);
        sh.stats.total_connections.fetch_add(1, Relaxed);
        let (io, cert) = match &sh.tls {
            None => (Io::Plain(stream), None),
            Some(acceptor) => {
                let timeout = sh
                    .lcfg
                    .tls
                    .as_ref()
                    .map_or(Duration::from_secs(2), |t| t.timeout);
                let handshake = async { acceptor.accept(stream).await.ok() };
                let timed_out = async {
                    Timer::after(timeout).await;
                    None
                };
                match futures_lite::future::or(handshake, timed_out).await {
                    Some(tls) => {
                        let cert = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.as_ref().to_vec());
                        (Io::Tls(Box::new(tls)), cert)
                    }
                    None => {
                        tracing::debug!("{peer} - MQTT TLS handshake failed or timed out");
                        return None;
                    }
                }
            }
        };
        let now = Instant::now();
        let session = Session::new(sh.cfg.clone(), now);
        let mut t = Task::new(sh, session, Some(io), Some(peer));
        t.cert = cert;
        let open = sh.stats.connections.fetch_add(1, Relaxed) + 1;
        t.over_limit = open > sh.lcfg.max_connections;
        tracing::debug!("{peer} - mid:{} - MQTT client connection created", t.cid);
        Some(t)
    }

    /// A lasting session read from the store at start: registered under its client id and
    /// subscribed again, without a connection until its client comes back.
    pub(super) fn restored(sh: &Arc<Shared>, state: SessionState, now: Instant) -> Option<Task> {
        let id = state.client_id.clone();
        let session = Session::restore(sh.cfg.clone(), state, now);
        let mut t = Task::new(sh, session, None, None);
        let subs: Vec<(u32, String, Option<String>)> = t
            .session
            .subscriptions()
            .iter()
            .flat_map(|s| {
                s.subjects
                    .iter()
                    .map(|subj| (s.id, subj.clone(), s.share.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (sid, subject, queue) in subs {
            t.subscribe(sid, &subject, queue.as_deref());
        }
        match sh.registry.claim(&id, &t.inbox, usize::MAX) {
            super::registry::Claim::New => {
                t.registered = Some(id);
                Some(t)
            }
            _ => None,
        }
    }

    /// Runs the session until it is over (or handed over). Boxed: an async fn keeps its
    /// by-value arguments apart from its locals, so a `Task` passed by value would be in the
    /// future twice (a KiB more per session).
    pub(super) async fn run(mut self: Box<Self>) {
        loop {
            let now = Instant::now();
            self.take_inputs(now);
            if self.session.has_events() || !self.acks.is_empty() {
                // Boxed: logins, takeovers and store waits are rare, and their futures are
                // large; inline they would be part of every idle session's task.
                Box::pin(self.events(now)).await;
            }
            if let Some(v) = &self.view {
                v.set_subscriptions(self.session.subscriptions().len());
            }
            if let Some(p) = &mut self.publisher {
                p.flush();
            }
            self.inbox.lasting.store(self.session.is_lasting(), Relaxed);
            self.output(now);
            if self.handover.is_some() {
                self.hand_over().await;
                return;
            }
            if self.closing && self.io.is_some() {
                let written = self.out_pos >= self.out.len() && !self.flushing;
                let since = *self.closing_since.get_or_insert(now);
                if written || now - since >= self.sh.lcfg.write_deadline {
                    self.drop_io();
                }
            }
            if self.ended && self.io.is_none() {
                break;
            }
            if let Some(p) = &mut self.publisher {
                p.pace(twig_util::stall::STALL_MAX).await;
            }
            match self.wait(now).await {
                Wake::Read(n) => {
                    // Same poll as the read: the thread's buffer still holds the bytes.
                    let now = Instant::now();
                    READ.with_borrow(|b| self.session.handle(now, Input::Bytes(&b[..n])));
                }
                Wake::Eof | Wake::IoError => {
                    self.drop_io();
                    self.session.handle(Instant::now(), Input::Closed);
                }
                Wake::Timer => self.session.handle(Instant::now(), Input::Tick),
                Wake::Wrote | Wake::Inbox => {}
            }
        }
        self.finish();
    }

    /// Everything that arrived: control, the store's answers, deliveries, streams' notices.
    fn take_inputs(&mut self, now: Instant) {
        let d = self.inbox.drain(DRAIN_MAX);
        for c in d.control {
            match c {
                Control::TakeOver(reply) => {
                    self.session.handle(now, Input::TakenOver);
                    self.handover = Some(reply);
                }
                Control::Shutdown => self.session.handle(now, Input::Shutdown),
                Control::Recheck => self.session.handle(now, Input::Recheck),
            }
        }
        for (epoch, t, o) in d.done {
            if epoch != self.epoch {
                continue;
            }
            self.store_waiting = self.store_waiting.saturating_sub(1);
            self.done(now, t, o);
        }
        for mut item in d.msgs {
            self.deliver(now, &item);
            if let Some(a) = item.ack.take() {
                self.acks.push(a);
            }
        }
        for (epoch, s) in d.stored {
            if epoch == self.epoch {
                self.stored(now, s);
            }
        }
    }

    fn deliver(&mut self, now: Instant, item: &Item) {
        let Some(subject) = item.subject() else {
            return;
        };
        let d = Delivery {
            sub: item.sub,
            subject,
            reply: item.reply(),
            headers: item.headers(),
            payload: item.payload(),
            retained: item.retained,
            own: item.own,
        };
        let before = self.session.dropped;
        self.session.handle(now, Input::Deliver(d));
        let lost = self.session.dropped - before;
        if lost > 0 {
            self.sh.stats.dropped.fetch_add(lost, Relaxed);
        } else if let Some(v) = &self.view {
            v.delivered(item.payload().len());
        }
    }

    /// A stream's answer for a QoS 1/2 publish.
    fn stored(&mut self, now: Instant, s: Stored) {
        let outcome = if s.ok {
            Outcome::Ok
        } else {
            // The stream is full (`when_full = "refuse"`): MQTT 5 says so; 3.1.1 closes and
            // the client sends it again after reconnecting.
            Outcome::Refused(twig_core::mqtt::packet::reason::QUOTA_EXCEEDED)
        };
        self.done(now, Ticket(s.token), outcome);
    }

    /// An operation the session asked for finished (through a join when it needs two).
    pub(super) fn done(&mut self, now: Instant, t: Ticket, o: Outcome) {
        if let Some(j) = self.joins.get_mut(&t.0) {
            j.0 = j.0.saturating_sub(1);
            if o != Outcome::Ok {
                j.1 = o;
            }
            if j.0 > 0 {
                return;
            }
            let o = j.1;
            self.joins.remove(&t.0);
            if self.joins.is_empty() {
                self.joins = HashMap::new();
            }
            return self.session.handle(now, Input::Done(t, o));
        }
        self.session.handle(now, Input::Done(t, o));
    }

    /// Moves the session's output into the write buffer (while the buffer is under its
    /// bound), letting queued messages follow.
    fn output(&mut self, now: Instant) {
        if self.io.is_none() {
            // Nobody to write to (offline): what the session wrote is for a closed socket.
            let _ = self.session.take_transmit();
            return;
        }
        let limit = self.sh.cfg.max_write_buffer;
        for _ in 0..4 {
            if self.out.len() - self.out_pos >= limit || self.session.transmit().is_empty() {
                break;
            }
            if self.out_pos >= self.out.len() {
                self.out = self.session.take_transmit();
                self.out_pos = 0;
                self.progress_at = now;
            } else {
                let more = self.session.take_transmit();
                self.out.extend_from_slice(&more);
            }
            // Room in the session's own buffer again: queued deliveries may follow.
            self.session.handle(now, Input::Tick);
        }
    }

    fn want_read(&self) -> bool {
        self.io.is_some()
            && !self.closing
            && self.session.wants_input()
            && self.out.len() - self.out_pos < self.sh.cfg.max_write_buffer
            && self.store_waiting < MAX_STORE_WAITING
    }

    fn deadline(&self) -> Option<Instant> {
        let pending = self.out_pos < self.out.len() || self.flushing;
        let write =
            (self.io.is_some() && pending).then(|| self.progress_at + self.sh.lcfg.write_deadline);
        let closing = self
            .closing_since
            .filter(|_| self.io.is_some())
            .map(|t| t + self.sh.lcfg.write_deadline);
        [self.session.poll_at(), write, closing]
            .into_iter()
            .flatten()
            .min()
    }

    async fn wait(&mut self, now: Instant) -> Wake {
        // Listen before checking, so a push between the check and the wait is not lost.
        let mut listener = self.inbox.listen();
        if !self.inbox.is_empty() {
            return Wake::Inbox;
        }
        let deadline = self.deadline();
        if let Some(d) = deadline {
            if d <= now {
                return self.timeout(now);
            }
            self.timer.set_at(d);
        }
        let want_read = self.want_read();
        self.session.trim();
        let wake = futures_lite::future::poll_fn(|cx| {
            if let Some(io) = self.io.as_mut() {
                let mut wrote = false;
                while self.out_pos < self.out.len() {
                    match io.poll_write(cx, &self.out[self.out_pos..]) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                            return Poll::Ready(Wake::IoError);
                        }
                        Poll::Ready(Ok(n)) => {
                            self.out_pos += n;
                            wrote = true;
                            self.flushing = true;
                        }
                        Poll::Pending => break,
                    }
                }
                if self.out_pos >= self.out.len() && !self.out.is_empty() {
                    // Written: freed (the next output takes the session's buffer anyway), so
                    // an idle session holds no write buffer.
                    self.out = Vec::new();
                    self.out_pos = 0;
                }
                if self.flushing && self.out.is_empty() {
                    match io.poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.flushing = false,
                        Poll::Ready(Err(_)) => return Poll::Ready(Wake::IoError),
                        Poll::Pending => {}
                    }
                }
                if wrote {
                    return Poll::Ready(Wake::Wrote);
                }
                if want_read {
                    let r = READ.with_borrow_mut(|b| io.poll_read(cx, b));
                    match r {
                        Poll::Ready(Ok(0)) => return Poll::Ready(Wake::Eof),
                        Poll::Ready(Ok(n)) => return Poll::Ready(Wake::Read(n)),
                        Poll::Ready(Err(_)) => return Poll::Ready(Wake::IoError),
                        Poll::Pending => {}
                    }
                }
            }
            if Pin::new(&mut listener).poll(cx).is_ready() {
                return Poll::Ready(Wake::Inbox);
            }
            if deadline.is_some() && Pin::new(&mut self.timer).poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
        .await;
        match wake {
            Wake::Wrote => {
                self.progress_at = Instant::now();
                Wake::Wrote
            }
            Wake::Timer => self.timeout(Instant::now()),
            w => w,
        }
    }

    /// A deadline passed: the write deadline closes the connection; anything else is the
    /// session's timer.
    fn timeout(&mut self, now: Instant) -> Wake {
        let pending = self.out_pos < self.out.len() || self.flushing;
        if self.io.is_some() && pending && now >= self.progress_at + self.sh.lcfg.write_deadline {
            tracing::debug!(
                "mid:{} - MQTT client not reading: write deadline passed, closing",
                self.cid
            );
            return Wake::IoError;
        }
        Wake::Timer
    }

    fn drop_io(&mut self) {
        if let Some(v) = self.view.take() {
            self.sh.conns.remove(self.cid);
            drop(v);
        }
        if let Some(io) = self.io.take() {
            let _ = io.tcp().shutdown(std::net::Shutdown::Both);
            self.sh.stats.connections.fetch_sub(1, Relaxed);
            self.out = Vec::new();
            self.out_pos = 0;
            self.flushing = false;
            if let Some(a) = self.addr {
                tracing::debug!(
                    "{a} - mid:{} - \"{}\" - MQTT client connection closed",
                    self.cid,
                    self.session.client_id()
                );
            }
        }
    }

    /// Another connection takes the session: write the DISCONNECT (briefly), close, hand the
    /// state and the subscriptions over. The registry entry is already the new task's.
    async fn hand_over(&mut self) {
        self.flush_out(Instant::now() + HANDOVER_FLUSH).await;
        self.drop_io();
        let state = self.session.take_state();
        let subs = std::mem::replace(&mut self.subs, Subs::new(self.sh.router.clone()));
        self.registered = None;
        if let Some(reply) = self.handover.take() {
            // If the new connection is gone already, dropping the handover unsubscribes.
            let _ = reply.try_send(Handover { state, subs });
        }
        self.finish();
    }

    /// Writes the buffer out, until `deadline` at most.
    async fn flush_out(&mut self, deadline: Instant) {
        let Some(io) = self.io.as_mut() else {
            return;
        };
        self.timer.set_at(deadline);
        let (out, pos, timer) = (&self.out, &mut self.out_pos, &mut self.timer);
        futures_lite::future::poll_fn(|cx| {
            while *pos < out.len() {
                match io.poll_write(cx, &out[*pos..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Ready(Ok(n)) => *pos += n,
                    Poll::Pending => break,
                }
            }
            if *pos >= out.len() && io.poll_flush(cx).is_ready() {
                return Poll::Ready(());
            }
            if Pin::new(&mut *timer).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
    }

    fn finish(&mut self) {
        self.drop_io();
        if let Some(id) = self.registered.take() {
            self.sh.registry.release(&id, &self.inbox);
        }
        self.subs = Subs::new(self.sh.router.clone());
    }

    /// The publisher, made on first use.
    pub(super) fn publisher(&mut self) -> &mut Publisher {
        let (router, owner) = (&self.sh.router, self.inbox.owner);
        self.publisher
            .get_or_insert_with(|| Box::new(Publisher::new(router.clone(), owner)))
    }

    /// Where the streams answer this task, made on first use.
    pub(super) fn notices(&mut self) -> Arc<Notices> {
        let (epoch, inbox) = (self.epoch, &self.inbox);
        self.notices
            .get_or_insert_with(|| {
                Arc::new(Notices {
                    epoch,
                    inbox: inbox.clone(),
                })
            })
            .clone()
    }

    /// Subscribes subscription `id` to `subject` (in queue group `queue`).
    pub(super) fn subscribe(&mut self, id: u32, subject: &str, queue: Option<&str>) {
        if queue.is_some_and(|q| twig_core::subject::validate_queue(q.as_bytes()).is_err()) {
            tracing::debug!(
                "mid:{} - MQTT shared subscription group {queue:?} refused",
                self.cid
            );
            return;
        }
        let sink: Arc<dyn twig_router::internal::Sink> = self.inbox.clone();
        let sub = InternalSub::with_sink(
            self.inbox.owner,
            subject.as_bytes(),
            queue.map(str::as_bytes),
            sink,
            u64::from(id),
        );
        if !self.subs.add(id, sub) {
            tracing::warn!(
                "mid:{} - MQTT subscription to {subject:?} refused by the router",
                self.cid
            );
        }
    }
}

/// An IPv4 client on a dual-stack socket arrives as `::ffff:a.b.c.d`: shown as `a.b.c.d`.
fn unmapped(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => peer,
        },
        v4 => v4,
    }
}

fn next_epoch() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle session's task is its boxed `Task` and this future: kept small (the state of
    /// the waits only), not a second copy of the task.
    #[test]
    fn the_run_future_does_not_hold_the_task() {
        let lcfg = twig_config::MqttListenerConfig::default();
        let stats = Arc::new(super::super::Stats::default());
        let sh = Arc::new(Shared {
            cfg: Arc::new(super::super::session_config(&lcfg)),
            lcfg,
            router: Arc::new(Router::new(16)),
            login: Arc::new(super::super::login::Anonymous),
            registry: Default::default(),
            conns: Default::default(),
            store: super::super::persist::test_tx(stats.clone()),
            stats,
            tls: None,
            next_cid: Arc::new(|| 1),
        });
        let t = Task::new(
            &sh,
            Session::new(sh.cfg.clone(), Instant::now()),
            None,
            None,
        );
        let task = std::mem::size_of_val(&t);
        let run = std::mem::size_of_val(&Box::new(t).run());
        assert!(
            run < 1024 && run < task,
            "run future {run} B, task {task} B"
        );
    }
}
