//! The protocol state of one client connection: what each parsed op does. No sockets here:
//! the connection's reader (conn.rs) feeds ops in and acts on the returned [`Flow`]; replies
//! go to the client's outbound buffer, messages to the router.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use twig_core::subject;
use twig_core::wire::Op;
use twig_core::wire::json::ClientConnect;

use super::state::Shared;
use crate::auth::{AuthError, Authenticator, CertIdentity, Credentials, Identity, Login};
use crate::reauth::StoredLogin;
use twig_perms::violation::{self, go_quote};
use twig_perms::{Budgets, Checker, Subscribe};
use twig_router::client::ClientShared;
use twig_router::outbound::{CloseReason, Push};
use twig_router::store::{Durable, Full, Submit};
use twig_router::{Batch, MatchCache, Message, Origin, Stalled, Subscription};
use twig_util::clock::unix_nanos;
use twig_util::lock::lock;

/// nats-server's internal queue group, which no client may join (`sysGroup`).
const SYS_GROUP: &[u8] = b"_sys_";

/// What the reader does after an op.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Close the connection (anything queued, e.g. a final `-ERR`, is still written).
    Close(CloseReason),
    /// A store's queue is full: end the batch, wait for room
    /// ([`Session::take_full_stream`]), then go on with the ops already read.
    Wait,
    /// The CONNECT needs a bcrypt check: await [`Session::finish_login`] (its verdict is the
    /// next flow) before handling any op after it.
    Login,
}

/// A CONNECT whose login is being decided, with everything it set (owned: the check may run
/// on another thread, after the read buffer moved on).
pub(crate) struct PendingConnect {
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
    nkey: Option<String>,
    sig: Option<String>,
    verbose: bool,
    pedantic: bool,
    no_responders: bool,
    protocol: i64,
    headers: bool,
    echo: bool,
    name: String,
    lang: String,
    version: String,
}

/// The credentials of a [`PendingConnect`], to move to the thread that checks them.
pub(crate) struct OwnedCredentials {
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
    nkey: Option<String>,
    sig: Option<String>,
}

impl OwnedCredentials {
    pub(crate) fn borrowed(&self) -> Credentials<'_> {
        Credentials {
            user: self.user.as_deref(),
            pass: self.pass.as_deref(),
            auth_token: self.token.as_deref(),
            nkey: self.nkey.as_deref(),
            sig: self.sig.as_deref(),
        }
    }
}

impl PendingConnect {
    pub(crate) fn owned_credentials(&self) -> OwnedCredentials {
        OwnedCredentials {
            user: self.user.clone(),
            pass: self.pass.clone(),
            token: self.token.clone(),
            nkey: self.nkey.clone(),
            sig: self.sig.clone(),
        }
    }

    pub(crate) fn credentials(&self) -> Credentials<'_> {
        Credentials {
            user: self.user.as_deref(),
            pass: self.pass.as_deref(),
            auth_token: self.token.as_deref(),
            nkey: self.nkey.as_deref(),
            sig: self.sig.as_deref(),
        }
    }
}

/// nats-server's exact error texts (reference §1.6).
mod err {
    pub const AUTH_VIOLATION: &[u8] = b"-ERR 'Authorization Violation'\r\n";
    pub const UNKNOWN_OP: &[u8] = b"-ERR 'Unknown Protocol Operation'\r\n";
    pub const INVALID_SUBJECT: &[u8] = b"-ERR 'Invalid Subject'\r\n";
    pub const INVALID_PUB_SUBJECT: &[u8] = b"-ERR 'Invalid Publish Subject'\r\n";
    pub const INVALID_PROTOCOL: &[u8] = b"-ERR 'invalid client protocol'\r\n";
    pub const NO_RESPONDERS_HEADERS: &[u8] = b"-ERR 'no responders requires headers support'\r\n";
    pub const TOO_MANY_SUBS: &[u8] = b"-ERR 'maximum subscriptions exceeded'\r\n";
}

/// One client's protocol session.
pub struct Session {
    shared: Arc<Shared>,
    client: Arc<ClientShared>,
    /// The nonce sent in INFO, when the server's auth needs one.
    nonce: Option<String>,
    /// INFO said authentication is required (so nothing but CONNECT may come first).
    auth_required: bool,
    /// What the client's TLS certificate names it by (`verify_and_map`). This and `pending`
    /// are boxed: rare, and large beside an idle connection's few KiB.
    cert: Option<Box<CertIdentity>>,
    connected: bool,
    // nats-server pre-fills verbose and pedantic with true and overlays CONNECT's JSON, so a
    // client that never sends CONNECT (no auth configured) gets +OK to everything.
    verbose: bool,
    pedantic: bool,
    no_responders: bool,
    protocol: i64,
    sent_connect_info: bool,
    /// `maximum subscriptions exceeded` was logged for this connection.
    sub_limit_logged: bool,
    /// A store request that found its queue full (see [`Flow::Wait`]).
    full_stream: Option<Full>,
    /// A CONNECT waiting for its bcrypt check (see [`Flow::Login`]).
    pending: Option<Box<PendingConnect>>,
    cache: MatchCache,
    batch: Batch,
    /// PINGs sent by the server and not yet answered (shared with the ping timer).
    pub pings_out: Arc<AtomicU64>,
    /// Set once a CONNECT was accepted (the auth timer watches it).
    pub authed: Arc<AtomicBool>,
}

impl Session {
    /// A session for a client that was just sent INFO (with `nonce`, if any).
    pub fn new(
        shared: Arc<Shared>,
        client: Arc<ClientShared>,
        nonce: Option<String>,
        auth_required: bool,
        cert: Option<CertIdentity>,
    ) -> Self {
        Session {
            shared,
            client,
            nonce,
            auth_required,
            cert: cert.map(Box::new),
            connected: false,
            verbose: true,
            pedantic: true,
            no_responders: false,
            protocol: 0,
            sent_connect_info: false,
            sub_limit_logged: false,
            full_stream: None,
            pending: None,
            cache: MatchCache::default(),
            batch: Batch::default(),
            pings_out: Arc::new(AtomicU64::new(0)),
            authed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Handles one op from the client.
    pub fn handle(&mut self, op: Op<'_>) -> Flow {
        if !self.connected && self.auth_required && !matches!(op, Op::Connect(_)) {
            self.login_failed(None, "an operation before CONNECT");
            self.send(err::AUTH_VIOLATION);
            return Flow::Close(CloseReason::AuthenticationViolation);
        }
        match op {
            Op::Connect(json) => self.connect(json),
            Op::Pub {
                subject,
                reply,
                payload,
            } => self.publish(subject, reply, None, payload),
            Op::Hpub {
                subject,
                reply,
                headers,
                payload,
            } => self.publish(subject, reply, Some(headers), payload),
            Op::Sub {
                subject,
                queue,
                sid,
            } => self.subscribe(subject, queue, sid),
            Op::Unsub { sid, max } => self.unsubscribe(sid, max),
            Op::Ping => self.ping(),
            Op::Pong => {
                self.pings_out.store(0, Ordering::Relaxed);
                Flow::Continue
            }
            // Clients may send these harmlessly; nats-server ignores them from clients.
            Op::Info(_) | Op::Ok => Flow::Continue,
            Op::Err(_) => Flow::Close(CloseReason::ClientClosed),
            // Server-to-client and leafnode ops are not a client's to send.
            Op::Msg { .. }
            | Op::Hmsg { .. }
            | Op::LsPlus { .. }
            | Op::LsMinus { .. }
            | Op::Lmsg { .. } => {
                self.send(err::UNKNOWN_OP);
                Flow::Close(CloseReason::ProtocolViolation)
            }
        }
    }

    /// Ends a batch of ops (one socket read): counts what this client sent, then
    /// [`Router::finish`](twig_router::Router::finish) (wake-ups, auto-unsubscribes, slow
    /// consumers). Returns the remote or local subscriber this client is flooding, for the
    /// reader to wait on briefly (flow control, as nats-server stalls fast producers).
    pub fn end_batch(&mut self) -> Stalled {
        let b = &self.batch;
        if b.in_msgs > 0 {
            self.client.count_in(b.in_msgs, b.in_bytes);
        }
        self.client
            .last_activity
            .store(unix_nanos(), Ordering::Relaxed);
        self.shared.router.finish(&mut self.batch)
    }

    /// The store request to wait for after [`Flow::Wait`].
    pub fn take_full_stream(&mut self) -> Option<Full> {
        self.full_stream.take()
    }

    /// A refused login: counted (`/varz` `auth_failures`), remembered against the address
    /// (the next attempts from it wait, see `auth::throttle`), and logged as nats-server does
    /// (`authentication error - User "name"`) with the reason; never with a secret.
    fn login_failed(&self, creds: Option<&Credentials<'_>>, why: &str) {
        self.shared
            .router
            .stats
            .auth_failures
            .fetch_add(1, Ordering::Relaxed);
        let ip = self.client.addr.ip();
        let failures = lock(&self.shared.login_throttle).failed(std::time::Instant::now(), ip);
        let who = match creds {
            Some(Credentials { nkey: Some(k), .. }) if !k.is_empty() => format!(" - Nkey {k:?}"),
            Some(Credentials { user: Some(u), .. }) if !u.is_empty() => format!(" - User {u:?}"),
            _ => String::new(),
        };
        tracing::error!(
            "{}:{} - cid:{} - authentication error{who} ({why}; failure {failures} from this address)",
            ip,
            self.client.addr.port(),
            self.client.cid
        );
    }

    fn connect(&mut self, json: &[u8]) -> Flow {
        let Ok(c) = ClientConnect::parse(json) else {
            // nats-server closes on CONNECT JSON it cannot decode, without an -ERR.
            return Flow::Close(CloseReason::ProtocolViolation);
        };
        let protocol = i64::from(c.protocol);
        if !(0..=1).contains(&protocol) {
            self.send(err::INVALID_PROTOCOL);
            return Flow::Close(CloseReason::ProtocolViolation);
        }
        let headers = c.headers && self.shared.headers_supported();
        let no_responders = c.no_responders;
        if no_responders && !headers {
            self.send(err::NO_RESPONDERS_HEADERS);
            return Flow::Close(CloseReason::ProtocolViolation);
        }
        // Go clients escape '&', '<' and '>' in JSON strings: compare decoded text.
        let text = |s: Option<twig_core::wire::json::JsonStr<'_>>| s.map(|s| s.to_string());
        let p = PendingConnect {
            user: text(c.user),
            pass: text(c.pass),
            token: text(c.auth_token),
            nkey: text(c.nkey),
            sig: text(c.sig),
            verbose: c.effective_verbose(),
            pedantic: c.effective_pedantic(),
            no_responders,
            protocol,
            headers,
            echo: c.effective_echo(),
            name: text(c.name).unwrap_or_default(),
            lang: text(c.lang).unwrap_or_default(),
            version: text(c.version).unwrap_or_default(),
        };
        // Checked against the authenticator in force; if a reload swaps it before the login
        // is registered, checked again against the new one (see `reauth`).
        loop {
            let (auth, generation) = self.shared.auth_snapshot();
            if auth.auth_required() && auth.needs_blocking(&p.credentials()) {
                // bcrypt: the reader awaits `finish_login` before any further op is read.
                self.pending = Some(Box::new(p));
                return Flow::Login;
            }
            let result = self.login_here(&auth, &p);
            if let Some(flow) = self.conclude(&p, &auth, generation, result) {
                return flow;
            }
        }
    }

    /// After [`Flow::Login`]: checks the CONNECT's credentials with bcrypt on a blocking
    /// thread (at most `authorization.max_bcrypt_checks` at once, see
    /// [`Shared::login_off_loop`]) while this connection's reader waits and the executor
    /// serves everyone else; then accepts or refuses the CONNECT as [`Session::handle`] would
    /// have. No op after the CONNECT is handled before this returns.
    pub async fn finish_login(&mut self) -> Flow {
        let Some(p) = self.pending.take() else {
            return Flow::Continue;
        };
        loop {
            let (auth, generation) = self.shared.auth_snapshot();
            let result = if auth.auth_required() && auth.needs_blocking(&p.credentials()) {
                match self
                    .shared
                    .login_off_loop(
                        &self.client,
                        auth.clone(),
                        &p,
                        self.nonce.clone(),
                        self.cert.as_deref().cloned(),
                    )
                    .await
                {
                    Some(result) => result,
                    // Closed while it waited for its turn (auth timeout, shutdown).
                    None => {
                        return Flow::Close(
                            self.client
                                .out
                                .closed()
                                .unwrap_or(CloseReason::AuthenticationTimeout),
                        );
                    }
                }
            } else {
                self.login_here(&auth, &p)
            };
            if let Some(flow) = self.conclude(&p, &auth, generation, result) {
                return flow;
            }
        }
    }

    /// A login decided on the event loop (nothing slow: no bcrypt).
    fn login_here(
        &self,
        auth: &Authenticator,
        p: &PendingConnect,
    ) -> Result<Option<Login>, AuthError> {
        if !auth.auth_required() {
            return Ok(None);
        }
        auth.login(
            &p.credentials(),
            self.nonce.as_deref(),
            self.cert.as_deref(),
        )
        .map(Some)
    }

    /// Accepts or refuses the CONNECT `p` on the verdict `result` of `auth` (generation
    /// `generation`; `Ok(None)`: no authentication is configured). `None`: a reload came in
    /// between, check again.
    fn conclude(
        &mut self,
        p: &PendingConnect,
        auth: &Arc<Authenticator>,
        generation: u64,
        result: Result<Option<Login>, AuthError>,
    ) -> Option<Flow> {
        let creds = p.credentials();
        let (identity, rules) = match result {
            Ok(Some(login)) => (login.identity, login.rules),
            Ok(None) => (Identity::Anonymous, None),
            Err(why) => {
                self.login_failed(Some(&creds), &why.to_string());
                self.send(err::AUTH_VIOLATION);
                return Some(Flow::Close(CloseReason::AuthenticationViolation));
            }
        };
        // Before the CONNECT counts as accepted: nothing this client does goes unchecked.
        self.client
            .set_perms(rules.map(|r| Checker::new(r, Budgets::default())));
        let stored = StoredLogin::new(
            self.client.clone(),
            &creds,
            self.nonce.as_deref(),
            &identity,
            auth,
            self.cert.as_deref().cloned(),
        );
        if !self.shared.register_login(generation, stored) {
            return None;
        }
        self.verbose = p.verbose;
        self.pedantic = p.pedantic;
        self.no_responders = p.no_responders;
        self.protocol = p.protocol;
        self.client.set_options(p.headers, p.echo);
        {
            let mut info = lock(&self.client.info);
            info.name.clone_from(&p.name);
            info.lang.clone_from(&p.lang);
            info.version.clone_from(&p.version);
            info.authorized_user = identity.name().map(str::to_string);
        }
        self.connected = true;
        self.authed.store(true, Ordering::Release);
        self.ok();
        Some(Flow::Continue)
    }

    fn publish(
        &mut self,
        subj: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Flow {
        if headers.is_some() && !self.client.headers() {
            // nats-server closes a client that sends HPUB without negotiating headers.
            return Flow::Close(CloseReason::ProtocolViolation);
        }
        if self.pedantic && subject::validate_publish(subj).is_err() {
            // Pedantic clients are told, and the message still goes on (nats-server).
            self.send(err::INVALID_PUB_SUBJECT);
        }
        // Counted as received even when refused below, as nats-server counts it.
        let size = payload.len() + headers.map_or(0, <[u8]>::len);
        self.batch.in_msgs += 1;
        self.batch.in_bytes += size as u64;
        if !self.client.may_publish(subj) {
            // Dropped with an -ERR (no +OK); the connection stays (nats-server).
            self.violation(&violation::publish(subj));
            self.log_violation(format_args!(
                "Publish Violation - Subject {}",
                go_quote(subj)
            ));
            return Flow::Continue;
        }
        // nats-server acknowledges a verbose PUB before delivering it.
        self.ok();
        let msg = Message {
            subject: subj,
            reply,
            headers,
            payload,
        };
        // A wildcard token in a published subject is matched as a literal token, as
        // nats-server does (only wildcard subscriptions match it).
        let router = &self.shared.router;
        let store = router.store(subj);
        let origin = Origin::client(&self.client);
        let delivered = router.publish(&mut self.cache, &mut self.batch, &msg, origin, store);
        if let Some(store) = store {
            // Stored (and acknowledged by the store): never a no-responders case.
            if let Some(full) = submit(store, &msg) {
                self.full_stream = Some(full);
                return Flow::Wait;
            }
            return Flow::Continue;
        }
        if delivered == 0
            && self.no_responders
            && let Some(reply) = reply
        {
            self.no_responders_reply(subj, reply);
        }
        Flow::Continue
    }

    /// The 503 status message nats-server sends a requester when nobody got the request:
    /// to the requester's own subscription matching the reply subject.
    fn no_responders_reply(&mut self, subj: &[u8], reply: &[u8]) {
        let sub = {
            let subs = lock(&self.client.subs);
            subs.values()
                .find(|s| subject::matches(&s.subject, reply))
                .cloned()
        };
        let Some(sub) = sub else { return };
        let mut hdr = Vec::with_capacity(48 + subj.len());
        hdr.extend_from_slice(b"NATS/1.0 503\r\nNats-Subject: ");
        hdr.extend_from_slice(subj);
        hdr.extend_from_slice(b"\r\n\r\n");
        let msg = Message {
            subject: reply,
            reply: None,
            headers: Some(&hdr),
            payload: b"",
        };
        twig_router::deliver_to_sub(&msg, &sub, &mut self.batch);
    }

    fn subscribe(&mut self, subj: &[u8], queue: Option<&[u8]>, sid: &[u8]) -> Flow {
        // Permissions first, as nats-server (an invalid subject an allow list does not cover
        // is a violation, not `Invalid Subject`).
        let generation = self.client.perms_generation();
        let filtered = match self.may_subscribe(subj, queue) {
            Subscribe::Denied => {
                self.violation(&violation::subscription(subj, queue));
                let sid = String::from_utf8_lossy(sid);
                match queue {
                    Some(q) => self.log_violation(format_args!(
                        "Subscription Violation - Subject {}, Queue: {}, SID {sid}",
                        go_quote(subj),
                        go_quote(q)
                    )),
                    None => self.log_violation(format_args!(
                        "Subscription Violation - Subject {}, SID {sid}",
                        go_quote(subj)
                    )),
                }
                return Flow::Continue;
            }
            allowed => allowed.filtered(),
        };
        if subject::validate(subj).is_err()
            || queue.is_some_and(|q| subject::validate_queue(q).is_err())
        {
            self.send(err::INVALID_SUBJECT);
            return Flow::Continue;
        }
        let sub = Arc::new(Subscription {
            client: self.client.clone(),
            sid: sid.into(),
            subject: subj.into(),
            queue: queue.map(Into::into),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            filtered: AtomicBool::new(filtered),
        });
        {
            let mut subs = lock(&self.client.subs);
            // nats-server checks the limit before it looks at the sid, so a SUB that reuses a
            // live sid at the limit is refused too. The connection stays open (client.go's
            // maxSubsExceeded sends the -ERR and logs it, nothing more).
            if self.at_sub_limit(&subs) {
                drop(subs);
                // Logged once per connection: a client looping SUBs at its limit must not
                // flood the log (nats-server 2.11+ throttles this line too).
                if !self.sub_limit_logged {
                    self.sub_limit_logged = true;
                    self.log_violation(format_args!("maximum subscriptions exceeded"));
                }
                self.send(err::TOO_MANY_SUBS);
                return Flow::Continue;
            }
            // nats-server ignores a SUB that reuses a live sid.
            if subs
                .get(sid)
                .is_some_and(|s| !s.closed.load(Ordering::Acquire))
            {
                drop(subs);
                self.ok();
                return Flow::Continue;
            }
            subs.insert(sid.into(), sub.clone());
        }
        if self.shared.router.insert(&sub).is_err() {
            lock(&self.client.subs).remove(sid);
            self.send(err::INVALID_SUBJECT);
            return Flow::Continue;
        }
        // A reload changed the rules while this SUB was checked against the old ones: check
        // it again (the reload may not have seen it).
        if self.client.perms_generation() != generation {
            match self.may_subscribe(subj, queue) {
                Subscribe::Denied => {
                    self.shared.router.remove_sub(&sub);
                    self.violation(&violation::subscription(subj, queue));
                    return Flow::Continue;
                }
                allowed => sub.filtered.store(allowed.filtered(), Ordering::SeqCst),
            }
        }
        self.ok();
        Flow::Continue
    }

    /// `max_subscriptions` reached (0 = unlimited). An auto-unsubscribed entry may sit in the
    /// map until its batch ends; only live ones count, and only counted near the limit.
    fn at_sub_limit(&self, subs: &HashMap<Box<[u8]>, Arc<Subscription>>) -> bool {
        let max = self.shared.config.max_subscriptions;
        max != 0
            && subs.len() >= max
            && subs
                .values()
                .filter(|s| !s.closed.load(Ordering::Acquire))
                .count()
                >= max
    }

    /// The permission check of a SUB. nats-server also refuses the queue group `_sys_` to
    /// every client, with or without permissions (it is its own internal group).
    fn may_subscribe(&self, subj: &[u8], queue: Option<&[u8]>) -> Subscribe {
        if queue == Some(SYS_GROUP) {
            return Subscribe::Denied;
        }
        self.client
            .with_perms(|c| c.subscribe(subj, queue))
            .unwrap_or(Subscribe::Allowed { filtered: false })
    }

    /// A permission violation: `-ERR '<text>'`, the connection stays.
    fn violation(&mut self, text: &str) {
        let line = format!("-ERR '{text}'\r\n");
        self.send(line.as_bytes());
    }

    /// Logs a violation as nats-server does (an error, with the client's address).
    fn log_violation(&self, what: std::fmt::Arguments<'_>) {
        tracing::error!(
            "{}:{} - cid:{} - {what}",
            self.client.addr.ip(),
            self.client.addr.port(),
            self.client.cid
        );
    }

    fn unsubscribe(&mut self, sid: &[u8], max: Option<u64>) -> Flow {
        let sub = lock(&self.client.subs).get(sid).cloned();
        if let Some(sub) = sub {
            match max {
                Some(max) if max > sub.delivered.load(Ordering::Acquire) => {
                    sub.max.store(max, Ordering::Release);
                }
                _ => self.shared.router.remove_sub(&sub),
            }
        }
        self.ok();
        Flow::Continue
    }

    fn ping(&mut self) -> Flow {
        self.send(b"PONG\r\n");
        // nats-server (2.12+) follows the first PONG to a protocol-1 client with an INFO
        // that confirms the connection and names its account.
        if self.connected && self.protocol >= 1 && !self.sent_connect_info {
            self.sent_connect_info = true;
            let info = self.shared.connect_info_line(&self.client);
            self.send(info.as_bytes());
            self.client.set_takes_async_info();
        }
        Flow::Continue
    }

    fn ok(&mut self) {
        if self.verbose {
            self.send(b"+OK\r\n");
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        // A protocol reply is tiny; if it overflows max_pending the client is a slow
        // consumer like any other.
        match self.client.out.push_bytes(bytes) {
            Push::SlowConsumer => self.batch.slow.push(self.client.clone()),
            // Woken once when the batch ends, like routed messages.
            Push::Queued => {
                self.batch.touch(&self.client);
            }
            Push::Closed | Push::Refused => {}
        }
    }
}

/// Hands a message on a stored subject to its store; returns it when the store's queue is
/// full (the reader waits for room).
fn submit(store: &dyn Durable, msg: &Message<'_>) -> Option<Full> {
    match store.submit(msg, unix_nanos(), None) {
        Submit::Queued | Submit::Invalid => None,
        Submit::Full(full) => Some(full),
        Submit::Gone => {
            tracing::error!(
                "stream {}: its thread has stopped; message not stored",
                store.name()
            );
            None
        }
    }
}
