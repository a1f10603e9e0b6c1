//! The part of a client connection other tasks see: its outbound buffer, the options it
//! negotiated in CONNECT (read by publishers on other threads), its subscriptions and counters.
//!
//! Lock order: every lock here (`subs`, `info`, `perms`, the outbound buffer) is taken alone. To
//! drop a subscription the owner removes it from `subs`, releases that lock, and only then
//! removes it from the router (`Router::subs`), so no path holds two of them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use twig_perms::Checker;

use super::deliver::Subscription;
use super::outbound::Outbound;
use twig_util::clock::unix_nanos;
use twig_util::lock::lock;

/// Options from the client's CONNECT (nats-server's defaults until one arrives).
#[derive(Clone, Debug, Default)]
pub struct ConnectInfo {
    /// Client name.
    pub name: String,
    /// Client library language.
    pub lang: String,
    /// Client library version.
    pub version: String,
    /// The user or nkey it logged in as (`/connz?auth=1` `authorized_user`).
    pub authorized_user: Option<String>,
}

/// A client connection as seen from outside its own task.
pub struct ClientShared {
    /// Connection id (`client_id` in INFO, `cid` in `/connz`).
    pub cid: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// When it connected.
    pub start: SystemTime,
    /// Bytes waiting for the writer.
    pub out: Outbound,
    /// The plain TCP socket, for inline flushes by other readers (unset for TLS, whose
    /// stream only the writer task may touch).
    pub direct: std::sync::OnceLock<Arc<async_io::Async<std::net::TcpStream>>>,
    headers: AtomicBool,
    echo: AtomicBool,
    /// CONNECT said `protocol` 1 and the first PONG went out: async INFO may be sent.
    async_info: AtomicBool,
    /// The client's subscriptions by sid (the reader adds and removes; monitoring reads).
    pub subs: Mutex<HashMap<Box<[u8]>, Arc<Subscription>>>,
    /// CONNECT details for `/connz`.
    pub info: Mutex<ConnectInfo>,
    /// The connection's permission state (`None`: everything is allowed). Its reader checks
    /// publishes and subscriptions; whoever delivers to it checks the subscribe deny filter
    /// (subscriptions marked `filtered`) and records reply subjects (`allow_responses`). A
    /// leaf lock, held for one decision.
    /// Boxed: most connections have no rules, and every open one carries this field.
    perms: Mutex<Option<Box<Checker>>>,
    /// `allow_responses` is on: deliveries with a reply subject go through `perms`.
    replies: AtomicBool,
    /// The rules check publishes: the reader asks `perms` on each PUB.
    checks_publish: AtomicBool,
    /// The rules have a subscribe deny list.
    sub_denies: AtomicBool,
    /// Bumped each time `perms` is replaced (a reload), after the new checker is in.
    perms_generation: AtomicU64,
    /// Messages received from the client.
    pub in_msgs: AtomicU64,
    /// Payload bytes received from the client.
    pub in_bytes: AtomicU64,
    /// Messages delivered to the client.
    pub out_msgs: AtomicU64,
    /// Payload bytes delivered to the client.
    pub out_bytes: AtomicU64,
    /// Unix time in nanoseconds of the last op received.
    pub last_activity: AtomicU64,
}

impl ClientShared {
    /// A fresh connection with an outbound buffer bounded by `max_pending`.
    pub fn new(cid: u64, addr: SocketAddr, max_pending: usize) -> Self {
        ClientShared {
            cid,
            addr,
            start: twig_util::clock::now(),
            out: Outbound::new(max_pending),
            direct: std::sync::OnceLock::new(),
            // nats-server: echo defaults to true; headers to false until CONNECT says so.
            headers: AtomicBool::new(false),
            echo: AtomicBool::new(true),
            async_info: AtomicBool::new(false),
            subs: Mutex::new(HashMap::new()),
            info: Mutex::new(ConnectInfo::default()),
            perms: Mutex::new(None),
            replies: AtomicBool::new(false),
            checks_publish: AtomicBool::new(false),
            sub_denies: AtomicBool::new(false),
            perms_generation: AtomicU64::new(0),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            last_activity: AtomicU64::new(unix_nanos()),
        }
    }

    /// Sends queued bytes: inline from the caller's thread when the socket allows it,
    /// else by waking the writer task.
    pub fn flush(&self) {
        match self.direct.get() {
            Some(sock) => self.out.flush_inline(sock.get_ref()),
            None => self.out.wake(),
        }
    }

    /// Whether the client negotiated headers (gets `HMSG`).
    pub fn headers(&self) -> bool {
        self.headers.load(Relaxed)
    }

    /// Whether the client receives its own publishes.
    pub fn echo(&self) -> bool {
        self.echo.load(Relaxed)
    }

    /// Records the CONNECT options publishers need.
    pub fn set_options(&self, headers: bool, echo: bool) {
        self.headers.store(headers, Relaxed);
        self.echo.store(echo, Relaxed);
    }

    /// Whether the client takes async INFO (lame duck mode notices): nats-server sends them
    /// only after CONNECT with `protocol` 1 and the first PONG.
    pub fn takes_async_info(&self) -> bool {
        self.async_info.load(Relaxed)
    }

    /// Records that the client now takes async INFO.
    pub fn set_takes_async_info(&self) {
        self.async_info.store(true, Relaxed);
    }

    /// Puts `checker` in force (at login, and on a reload that changed the rules).
    pub fn set_perms(&self, checker: Option<Checker>) {
        let replies = checker.as_ref().is_some_and(Checker::tracks_replies);
        let publish = checker.as_ref().is_some_and(|c| c.rules().checks_publish());
        let denies = checker
            .as_ref()
            .is_some_and(|c| c.rules().has_subscribe_denies());
        *lock(&self.perms) = checker.map(Box::new);
        self.replies.store(replies, Relaxed);
        self.checks_publish.store(publish, Relaxed);
        self.sub_denies.store(denies, Relaxed);
        self.perms_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many times the permission state was replaced: a reader that checked a SUB under
    /// one generation and sees another after registering it checks it again.
    pub fn perms_generation(&self) -> u64 {
        self.perms_generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the client's rules deny some subscriptions (so a message shown under another
    /// subject than it was routed by must pass [`ClientShared::may_deliver`]).
    pub fn has_subscribe_denies(&self) -> bool {
        self.sub_denies.load(Relaxed)
    }

    /// May this client publish to `subject` now? (Its reader asks, for every PUB.)
    pub fn may_publish(&self, subject: &[u8]) -> bool {
        if !self.checks_publish.load(Relaxed) {
            return true;
        }
        self.with_perms(|c| c.publish_at(subject, Instant::now))
            .unwrap_or(true)
    }

    /// Runs `f` on the permission state, if the connection has any (`None` otherwise).
    pub fn with_perms<R>(&self, f: impl FnOnce(&mut Checker) -> R) -> Option<R> {
        lock(&self.perms).as_deref_mut().map(f)
    }

    /// Whether a message on `subject` may reach this client's subscription in `queue` under
    /// its subscribe deny list (asked only for subscriptions marked `filtered`).
    pub fn may_deliver(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.with_perms(|c| c.deliverable(subject, queue))
            .unwrap_or(true)
    }

    /// A message with `reply` was queued for this client: with `allow_responses` it may now
    /// publish to `reply` (within the configured count and time).
    pub fn delivered_reply(&self, reply: &[u8]) {
        if self.replies.load(Relaxed) {
            let now = Instant::now();
            self.with_perms(|c| c.delivered_reply(now, reply));
        }
    }

    /// Counts delivered messages (once per batch).
    pub fn count_out(&self, msgs: u64, bytes: u64) {
        self.out_msgs.fetch_add(msgs, Relaxed);
        self.out_bytes.fetch_add(bytes, Relaxed);
    }

    /// Counts received messages (once per batch).
    pub fn count_in(&self, msgs: u64, bytes: u64) {
        self.in_msgs.fetch_add(msgs, Relaxed);
        self.in_bytes.fetch_add(bytes, Relaxed);
    }

    /// Number of live subscriptions.
    pub fn sub_count(&self) -> usize {
        lock(&self.subs).len()
    }
}
