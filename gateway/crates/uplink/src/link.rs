//! The part of one uplink that the rest of the server touches, through the router's
//! interfaces: as a [`Remote`] it takes local messages (one `LMSG`/`HMSG` per message, with
//! the queue groups the router picked it for), answers for the link's state and permissions,
//! and carries the forwarders' barriers; as an [`InterestObserver`] it tracks local interest
//! (fed by the router on every local subscribe/unsubscribe) and advertises it. The hub's
//! interest is in the router as `RemoteInterest` entries; status and counters are here for
//! monitoring.
//!
//! Lock order: `Link::state` is taken before the outbound's lock, in [`Link::local_interest`],
//! [`Link::go_up`] and [`Link::go_down`] (and the outbound's lock is a leaf: nothing is taken while it is
//! held), so an interest change and the dump after connecting cannot interleave; it is never
//! held while taking `Router::subs`. `Link::hub_subs` and `Link::status` are taken alone.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use twig_core::wire::{CRLF, Op, Queues, encode_lmsg_head};

use super::interest::{Interest, Key, Known, Permissions, note};
use super::outbound::{LinkOutbound, Pushed};
use twig_router::Message;
use twig_router::remote::{Counters, InterestObserver, Remote, RemoteInterest};
use twig_util::lock::lock;

/// What `/leafz` shows about a link.
#[derive(Debug, Clone, Default)]
pub struct LinkStatus {
    /// The link is up (CONNECT confirmed).
    pub connected: bool,
    /// `host:port` of the hub in use (or last tried).
    pub url: String,
    /// Hub `server_id`.
    pub hub_id: String,
    /// Hub `server_name`.
    pub hub_name: String,
    /// Hub cluster name, if clustered.
    pub hub_cluster: Option<String>,
    /// The hub account the credentials bound to.
    pub account: String,
    /// Compression in use: the negotiated mode, or "not supported" for a hub without it.
    pub compression: String,
    /// When the link came up.
    pub since: Option<SystemTime>,
    /// Last measured PING round trip.
    pub rtt: Option<Duration>,
    /// Why the last attempt or connection ended.
    pub last_error: Option<String>,
    /// Connections established since start.
    pub connects: u64,
    /// Failed attempts since the link was last up.
    pub attempts: u64,
}

struct State {
    interest: Interest,
    /// What the hub knows of it once the queued lines are written (see [`Link::resync`]).
    known: Known,
    /// Changes are held back (the backlog was full): [`Link::resync`] sends the difference.
    behind: bool,
    connected: bool,
    perms: Arc<Permissions>,
}

/// What monitoring sees of a link at one moment (`/leafz`, `/healthz?leafnodes=true`, `/varz`).
#[derive(Debug, Clone, Default)]
pub struct LinkSnapshot {
    /// Position in `[[leafnodes.remotes]]`.
    pub index: usize,
    /// The link is up.
    pub connected: bool,
    /// Status: URL, hub, errors, attempts.
    pub status: LinkStatus,
    /// Messages received from the hub.
    pub in_msgs: u64,
    /// Payload bytes received from the hub.
    pub in_bytes: u64,
    /// Messages sent to the hub.
    pub out_msgs: u64,
    /// Payload bytes sent to the hub.
    pub out_bytes: u64,
    /// The hub's interest entries (while connected).
    pub hub_interest: usize,
    /// The hub's interest as `subject` or `subject queue`, sorted, when asked for.
    pub hub_subs: Option<Vec<String>>,
    /// Local subjects and queue groups advertised (or to be, once up).
    pub local_interest: usize,
    /// Bytes queued or being written.
    pub pending_bytes: usize,
    /// Messages dropped because the backlog was full (or too large for the hub).
    pub dropped: u64,
}

/// One uplink, shared by its task, the router and monitoring.
pub struct Link {
    /// Position in `[[leafnodes.remotes]]`.
    pub index: usize,
    /// The outbound lanes.
    pub out: LinkOutbound,
    state: Mutex<State>,
    headers: AtomicBool,
    /// The hub sets no export permissions: messages skip the permission check (and its lock).
    export_open: AtomicBool,
    /// The hub's `max_payload`: a bigger message would make it close the link.
    max_payload: AtomicUsize,
    /// The hub's interest, by subject and queue (written by the link's task only).
    pub hub_subs: Mutex<HashMap<Key, Arc<RemoteInterest>>>,
    /// Status for monitoring.
    pub status: Mutex<LinkStatus>,
    /// Messages received from the hub.
    pub in_msgs: AtomicU64,
    /// Payload bytes received from the hub.
    pub in_bytes: AtomicU64,
    /// Messages sent to the hub.
    pub out_msgs: AtomicU64,
    /// Payload bytes sent to the hub.
    pub out_bytes: AtomicU64,
    /// Messages dropped because the backlog to the hub was at `max_pending`.
    pub dropped: AtomicU64,
    /// `State::behind`, readable without the lock (the writer asks after every write).
    behind: AtomicBool,
    /// Notified when the link goes up or down and when the hub's interest changes: stream
    /// forwarders wait on it instead of polling.
    changed: event_listener::Event,
}

impl Link {
    /// A link that is down, with an outbound backlog of at most `max_pending` message bytes.
    pub fn new(index: usize, max_pending: usize) -> Link {
        Link {
            index,
            out: LinkOutbound::new(max_pending),
            state: Mutex::new(State {
                interest: Interest::default(),
                known: Known::new(),
                behind: false,
                connected: false,
                perms: Arc::new(Permissions::default()),
            }),
            headers: AtomicBool::new(true),
            export_open: AtomicBool::new(true),
            max_payload: AtomicUsize::new(usize::MAX),
            hub_subs: Mutex::new(HashMap::new()),
            status: Mutex::new(LinkStatus::default()),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            behind: AtomicBool::new(false),
            changed: event_listener::Event::new(),
        }
    }

    /// A listener for [`Link::notify_change`] (create it before checking, then wait).
    pub fn listen_change(&self) -> event_listener::EventListener {
        self.changed.listen()
    }

    /// Wakes the stream forwarders: the link went up or down, or the hub's interest changed.
    pub fn notify_change(&self) {
        self.changed.notify(usize::MAX);
    }

    /// A local subscription appeared (`add`) or went (`!add`): tell the hub when that changes
    /// what it must know. Called by the router after the sublist changed.
    pub fn local_interest(&self, subject: &[u8], queue: Option<&[u8]>, add: bool) {
        let mut st = lock(&self.state);
        let change = if add {
            st.interest.add(subject, queue)
        } else {
            st.interest.remove(subject, queue)
        };
        let Some(change) = change else { return };
        if !st.connected || !st.perms.can_subscribe(change.subject()) {
            return;
        }
        if st.behind || self.out.full() {
            // Every line would wait behind a full backlog, and a client looping SUB/UNSUB
            // would grow it without bound: hold the changes back, and let the writer send
            // the difference once there is room (at most a line per subject).
            if !st.behind {
                st.behind = true;
                self.behind.store(true, Relaxed);
            }
            return;
        }
        let mut line = Vec::with_capacity(subject.len() + 32);
        change.encode_into(&mut line);
        if self.out.push_proto(&line) == Pushed::Queued {
            note(&mut st.known, &change);
            self.out.wake();
        }
    }

    /// Whether interest changes are held back for [`Link::resync`].
    pub fn interest_behind(&self) -> bool {
        self.behind.load(Relaxed)
    }

    /// Sends what the hub is missing of the local interest, if the changes were held back
    /// and the backlog has room again (the writer calls it after each write).
    pub fn resync(&self) {
        if !self.interest_behind() || self.out.above_half() {
            return;
        }
        let mut st = lock(&self.state);
        if !st.behind || !st.connected {
            return;
        }
        let mut lines = Vec::new();
        let State {
            interest,
            known,
            perms,
            ..
        } = &mut *st;
        interest.resync(known, |s| perms.can_subscribe(s), &mut lines);
        st.behind = false;
        self.behind.store(false, Relaxed);
        if !lines.is_empty() && self.out.push_proto(&lines) == Pushed::Queued {
            self.out.wake();
        }
    }

    /// The hub confirmed CONNECT: open the bulk lane and send every local interest (plus the
    /// loop-detection subject), under the same lock as [`Link::local_interest`] so nothing is
    /// missed or sent twice.
    pub fn go_up(&self, perms: Permissions, headers: bool, max_payload: usize, lds: &str) {
        self.headers.store(headers, Relaxed);
        // 0 = the hub did not say: no limit of ours.
        let max = if max_payload == 0 {
            usize::MAX
        } else {
            max_payload
        };
        self.max_payload.store(max, Relaxed);
        let mut st = lock(&self.state);
        self.export_open.store(!perms.export_restricted(), Relaxed);
        st.perms = Arc::new(perms);
        st.connected = true;
        self.out.open_bulk();
        let mut lines = Vec::with_capacity(64 + st.interest.len() * 32);
        let _ = (Op::LsPlus {
            subject: lds.as_bytes(),
            queue: None,
        })
        .encode_into(&mut lines);
        let State {
            interest,
            known,
            perms,
            behind,
            ..
        } = &mut *st;
        known.clear();
        for change in interest.dump() {
            if perms.can_subscribe(change.subject()) {
                change.encode_into(&mut lines);
                note(known, &change);
            }
        }
        *behind = false;
        self.behind.store(false, Relaxed);
        self.out.push_proto(&lines);
        self.out.wake();
        drop(st);
        self.notify_change();
    }

    /// The connection ended: stop queueing, drop what is queued.
    pub fn go_down(&self) {
        let mut st = lock(&self.state);
        st.connected = false;
        st.known.clear();
        st.behind = false;
        self.behind.store(false, Relaxed);
        self.out.close();
        drop(st);
        self.notify_change();
    }

    /// The permissions in force (checked when the hub's interest becomes router entries).
    pub fn perms(&self) -> Arc<Permissions> {
        lock(&self.state).perms.clone()
    }

    /// Local subjects and queue groups advertised (or to be, once up).
    pub fn local_interest_count(&self) -> usize {
        lock(&self.state).interest.len()
    }

    /// Whether the link is up.
    pub fn is_connected(&self) -> bool {
        lock(&self.state).connected
    }

    /// A snapshot for monitoring; `subs` lists the hub's interest.
    pub fn snapshot(&self, subs: bool) -> LinkSnapshot {
        let status = lock(&self.status).clone();
        let connected = self.is_connected();
        let (hub_interest, hub_subs) = {
            let hub = lock(&self.hub_subs);
            let list = (connected && subs).then(|| {
                let mut v: Vec<String> = hub
                    .keys()
                    .map(|(s, q)| match q {
                        Some(q) => format!(
                            "{} {}",
                            String::from_utf8_lossy(s),
                            String::from_utf8_lossy(q)
                        ),
                        None => String::from_utf8_lossy(s).into_owned(),
                    })
                    .collect();
                v.sort();
                v
            });
            (hub.len(), list)
        };
        LinkSnapshot {
            index: self.index,
            connected,
            status,
            in_msgs: self.in_msgs.load(Relaxed),
            in_bytes: self.in_bytes.load(Relaxed),
            out_msgs: self.out_msgs.load(Relaxed),
            out_bytes: self.out_bytes.load(Relaxed),
            hub_interest,
            hub_subs,
            local_interest: self.local_interest_count(),
            pending_bytes: self.out.pending(),
            dropped: self.dropped.load(Relaxed),
        }
    }

    /// Whether the hub negotiated headers (`HMSG`).
    pub fn headers(&self) -> bool {
        self.headers.load(Relaxed)
    }

    /// The hub's `max_payload` (headers and body), `usize::MAX` when it did not say.
    pub fn max_payload(&self) -> usize {
        self.max_payload.load(Relaxed)
    }
}

impl Link {
    /// Encodes `msg` as one `LMSG`/`HMSG` naming `queues` into the bulk lane, unless the
    /// hub's permissions or `max_payload` forbid it. `count_drops`: a message the backlog has
    /// no room for is counted as dropped (the router's deliveries; a forwarder retries).
    /// Queues `msg`; where it ends in the connection's bulk bytes, `None` when dropped.
    fn send(&self, msg: &Message<'_>, queues: &[u8], count_drops: bool) -> Option<u64> {
        if !self.export_open.load(Relaxed) && !self.perms().can_publish(msg.subject) {
            return None;
        }
        // A hub that did not negotiate headers gets the body alone, as nats-server strips them.
        let headers = if self.headers() { msg.headers } else { None };
        // The control line goes through a stack buffer, the body is copied once, as the client
        // delivery path does.
        let total = headers.map_or(0, <[u8]>::len) + msg.payload.len();
        if total > self.max_payload.load(Relaxed) {
            // The hub would close the link over it ("Maximum Payload Violation"): drop it here.
            self.dropped.fetch_add(1, Relaxed);
            return None;
        }
        let mut head = [0u8; 512];
        let head_len = match encode_lmsg_head(
            msg.subject,
            msg.reply,
            Queues::from_raw(queues),
            headers.map(<[u8]>::len),
            total,
            &mut head,
        ) {
            Ok(n) => n,
            Err(_) => return self.send_long(msg, queues, headers, count_drops),
        };
        let head = head.get(..head_len).unwrap_or_default();
        let pushed = self.out.push_msg_at(head_len + total + 2, |b| {
            b.extend_from_slice(head);
            if let Some(h) = headers {
                b.extend_from_slice(h);
            }
            b.extend_from_slice(msg.payload);
            b.extend_from_slice(CRLF);
            Ok(())
        });
        self.counted(msg, headers, pushed, count_drops)
    }

    /// A message whose control line is too long for the stack buffer (long subjects, many
    /// queue names): encoded as a whole op.
    fn send_long(
        &self,
        msg: &Message<'_>,
        queues: &[u8],
        headers: Option<&[u8]>,
        count_drops: bool,
    ) -> Option<u64> {
        let op = Op::Lmsg {
            subject: msg.subject,
            reply: msg.reply,
            queues: Queues::from_raw(queues),
            headers,
            payload: msg.payload,
        };
        let pushed = self.out.push_msg_at(op.encoded_len(), |b| {
            op.encode_into(b).map(|_| ()).map_err(|_| ())
        });
        self.counted(msg, headers, pushed, count_drops)
    }

    fn counted(
        &self,
        msg: &Message<'_>,
        headers: Option<&[u8]>,
        pushed: Option<u64>,
        count_drops: bool,
    ) -> Option<u64> {
        match pushed {
            Some(end) => {
                self.out_msgs.fetch_add(1, Relaxed);
                let size = msg.payload.len() + headers.map_or(0, <[u8]>::len);
                self.out_bytes.fetch_add(size as u64, Relaxed);
                Some(end)
            }
            None => {
                if count_drops && self.out.bulk_open() {
                    self.dropped.fetch_add(1, Relaxed);
                }
                None
            }
        }
    }
}

impl Remote for Link {
    fn queue(&self, msg: &Message<'_>, queues: &[u8]) -> bool {
        self.send(msg, queues, true).is_some()
    }

    fn forward(&self, msg: &Message<'_>, queues: &[u8]) -> Option<u64> {
        self.send(msg, queues, false)
    }

    fn wake(&self) {
        self.out.wake();
    }

    fn stalled(&self) -> bool {
        self.out.stalled()
    }

    fn drained(&self) -> &event_listener::Event {
        self.out.drained()
    }

    fn index(&self) -> usize {
        self.index
    }

    fn is_up(&self) -> bool {
        self.is_connected()
    }

    fn headers(&self) -> bool {
        Link::headers(self)
    }

    fn max_payload(&self) -> usize {
        Link::max_payload(self)
    }

    fn may_subscribe(&self, filter: &[u8]) -> bool {
        self.perms().can_subscribe(filter)
    }

    fn may_publish(&self, subject: &[u8]) -> bool {
        self.export_open.load(Relaxed) || self.perms().can_publish(subject)
    }

    fn ping(&self) -> Option<u64> {
        self.out.push_ping()
    }

    fn counters(&self) -> Counters {
        self.out.counters()
    }

    fn written_at(&self, end: u64) -> Option<std::time::Instant> {
        self.out.written_at(end)
    }

    fn listen_change(&self) -> event_listener::EventListener {
        Link::listen_change(self)
    }

    fn listen_progress(&self) -> event_listener::EventListener {
        self.out.listen_progress()
    }
}

impl InterestObserver for Link {
    fn interest(&self, subject: &[u8], queue: Option<&[u8]>, add: bool) {
        self.local_interest(subject, queue, add);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::Taken;
    use twig_router::remote::Picks;
    use twig_router::{Batch, MatchCache, Origin, Router, deliver};

    fn drain(link: &Link) -> String {
        let mut t = Taken::default();
        link.out.try_take(true, &mut t);
        let mut all = t.urgent;
        all.extend_from_slice(&t.bulk);
        String::from_utf8(all).unwrap()
    }

    fn interest(link: &Arc<Link>, subject: &str, queue: Option<&str>) -> Arc<RemoteInterest> {
        RemoteInterest::new(
            link.clone(),
            subject.as_bytes(),
            queue.map(str::as_bytes),
            1,
        )
    }

    fn msg(subject: &str) -> Message<'_> {
        Message {
            subject: subject.as_bytes(),
            reply: Some(b"r.1"),
            headers: None,
            payload: b"hi",
        }
    }

    fn route(router: &Router, m: &Message<'_>, from: Origin<'_>) -> usize {
        let mut cache = MatchCache::default();
        let mut batch = Batch::default();
        let result = router.lookup(&mut cache, m.subject);
        deliver(m, from, result, &mut batch)
    }

    #[test]
    fn interest_before_the_link_is_up_goes_out_in_the_dump() {
        let link = Link::new(0, 1 << 20);
        link.local_interest(b"a.b", None, true);
        link.local_interest(b"q.>", Some(b"w"), true);
        link.local_interest(b"q.>", Some(b"w"), true);
        link.out.reset();
        assert_eq!(drain(&link), "");
        link.go_up(Permissions::default(), true, 0, "$LDS.x");
        let dump = drain(&link);
        assert!(dump.starts_with("LS+ $LDS.x\r\n"), "{dump}");
        assert!(
            dump.contains("LS+ a.b\r\n") && dump.contains("LS+ q.> w 2\r\n"),
            "{dump}"
        );
        link.local_interest(b"a.b", None, false);
        assert_eq!(drain(&link), "LS- a.b\r\n");
        link.go_down();
        link.local_interest(b"c", None, true);
        assert_eq!(drain(&link), "");
        assert_eq!(link.local_interest_count(), 2);
    }

    /// Takes what is queued as the writer does, and marks it written.
    fn write_out(link: &Link) -> String {
        let text = drain(link);
        link.out.written(text.len(), std::time::Instant::now());
        text
    }

    /// The hub's view after these lines: `subject` or `subject queue weight`.
    fn replay(view: &mut std::collections::BTreeMap<String, String>, text: &str) {
        for l in text.split_terminator("\r\n") {
            let parts: Vec<&str> = l.split(' ').collect();
            match parts[..] {
                ["LS+", s] => view.insert(s.into(), s.into()),
                ["LS+", s, q, n] => view.insert(format!("{s} {q}"), format!("{s} {q} {n}")),
                ["LS-", s] => view.remove(s),
                ["LS-", s, q] => view.remove(&format!("{s} {q}")),
                _ => None,
            };
        }
    }

    #[test]
    fn sub_unsub_loops_behind_a_full_backlog_do_not_grow_it() {
        let link = Link::new(0, 4096);
        link.out.reset();
        link.go_up(Permissions::default(), true, 0, "$LDS.x");
        link.local_interest(b"told", None, true);
        link.local_interest(b"gone", None, true);
        let mut hub = std::collections::BTreeMap::new();
        replay(&mut hub, &write_out(&link));
        // A slow link: messages fill the backlog to max_pending.
        while link.out.push_msg(1000, |b| {
            b.extend_from_slice(&[b'x'; 998]);
            b.extend_from_slice(b"\r\n");
            Ok(())
        }) == Pushed::Queued
        {}
        for i in 0..10_000u32 {
            let s = format!("s.{}", i % 50);
            link.local_interest(s.as_bytes(), None, true);
            link.local_interest(s.as_bytes(), Some(b"q"), true);
            if i < 9_990 {
                link.local_interest(s.as_bytes(), None, false);
                link.local_interest(s.as_bytes(), Some(b"q"), false);
            }
            assert!(link.out.pending() <= 4096 + 16, "the backlog grew");
        }
        link.local_interest(b"gone", None, false);
        assert!(link.interest_behind());
        // Once written, the writer's resync sends the difference: the hub ends up with
        // exactly the local interest.
        replay(&mut hub, &write_out(&link));
        link.resync();
        let lines = write_out(&link);
        assert!(lines.len() < 400, "one line per subject at most: {lines}");
        replay(&mut hub, &lines);
        let mut want: Vec<String> = vec!["$LDS.x".into(), "told".into()];
        for i in 40..50 {
            want.push(format!("s.{i}"));
            want.push(format!("s.{i} q 1"));
        }
        want.sort();
        assert_eq!(hub.into_values().collect::<Vec<_>>(), want);
        assert!(!link.interest_behind());
        // Back to one line per change.
        link.local_interest(b"told", None, false);
        assert_eq!(write_out(&link), "LS- told\r\n");
    }

    #[test]
    fn one_lmsg_per_link_with_every_picked_queue() {
        let link = Arc::new(Link::new(0, 1 << 20));
        link.out.reset();
        link.go_up(Permissions::default(), true, 64, "$LDS.x");
        drain(&link);
        let (plain, plain2) = (
            interest(&link, "orders.*", None),
            interest(&link, ">", None),
        );
        let (q1, q2) = (
            interest(&link, "orders.new", Some("workers")),
            interest(&link, "orders.>", Some("audit")),
        );
        let msg = Message {
            subject: b"orders.new",
            reply: Some(b"_INBOX.1"),
            headers: None,
            payload: b"hello",
        };
        let mut picks = Picks::default();
        picks.plain(&plain);
        picks.plain(&plain2);
        picks.queue(&q1);
        picks.queue(&q2);
        assert_eq!(picks.send(&msg), 1);
        picks.flush();
        assert_eq!(
            drain(&link),
            "LMSG orders.new + _INBOX.1 workers audit 5\r\nhello\r\n"
        );
        // Plain interest only, with headers: HMSG without queue names.
        let msg = Message {
            subject: b"orders.new",
            reply: None,
            headers: Some(b"NATS/1.0\r\n\r\n"),
            payload: b"hi",
        };
        picks.plain(&plain);
        assert_eq!(picks.send(&msg), 1);
        assert_eq!(
            drain(&link),
            "HMSG orders.new 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
        );
        // Queue interest only, no reply: the `|` form.
        picks.queue(&q1);
        picks.send(&Message {
            subject: b"orders.new",
            reply: None,
            headers: None,
            payload: b"x",
        });
        assert_eq!(drain(&link), "LMSG orders.new | workers 1\r\nx\r\n");
        assert_eq!(link.out_msgs.load(Relaxed), 3);
        // Larger than the hub's max_payload (64 here): dropped, not sent.
        picks.plain(&plain);
        let big = [b'b'; 65];
        let msg = Message {
            subject: b"orders.new",
            reply: None,
            headers: None,
            payload: &big,
        };
        assert_eq!(picks.send(&msg), 0);
        assert_eq!(drain(&link), "");
        assert_eq!(link.dropped.load(Relaxed), 1);
    }

    #[test]
    fn local_origins_never_reach_the_hub() {
        let link = Arc::new(Link::new(0, 1 << 20));
        link.out.reset();
        link.go_up(Permissions::default(), true, 0, "$LDS.x");
        let router = Router::with_links(16, vec![link.clone()]);
        let hub = RemoteInterest::new(link.clone(), b"a.>", None, 1);
        router.insert_remote(&hub).unwrap();
        let before = link.out.counters().bulk_in;
        assert_eq!(
            route(&router, &msg("a.b"), Origin::component(1).local_only()),
            0
        );
        assert_eq!(
            link.out.counters().bulk_in,
            before,
            "nothing queued for the hub"
        );
        assert_eq!(route(&router, &msg("a.b"), Origin::component(1)), 1);
        assert!(link.out.counters().bulk_in > before);
    }

    #[test]
    fn a_link_added_at_run_time_learns_the_local_interest_there_is() {
        use twig_router::internal::{InternalSub, new_owner};
        let first = Arc::new(Link::new(0, 1 << 20));
        let router = Router::with_links(16, vec![first.clone()]);
        let (a, _rx_a) = InternalSub::new(new_owner(), b"a.b", None, 4, 1 << 20);
        let (q, _rx_q) = InternalSub::new(new_owner(), b"q.>", Some(b"w"), 4, 1 << 20);
        router.insert_internal(&a).unwrap();
        router.insert_internal(&q).unwrap();
        // The hub's interest of another link is not local interest.
        router
            .insert_remote(&interest(&first, "hub.>", None))
            .unwrap();
        let added = Arc::new(Link::new(1, 1 << 20));
        assert_eq!(router.add_remote(added.clone()), 1);
        assert_eq!(added.local_interest_count(), 2);
        assert_eq!(router.remotes().len(), 2);
        assert!(router.remote(1).is_some_and(|r| r.index() == 1));
        added.out.reset();
        added.go_up(Permissions::default(), true, 0, "$LDS.x");
        let dump = drain(&added);
        assert!(
            dump.contains("LS+ a.b\r\n") && dump.contains("LS+ q.> w 1\r\n"),
            "{dump}"
        );
        // Later changes reach it once, as they reach the first link.
        router.remove_internal(&a);
        assert_eq!(drain(&added), "LS- a.b\r\n");
        assert_eq!(added.local_interest_count(), 1);
        assert_eq!(first.local_interest_count(), 1);
    }
}
