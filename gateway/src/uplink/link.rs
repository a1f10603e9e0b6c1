//! The part of one uplink that the rest of the server touches: the outbound lanes, the local
//! interest tracker (fed by the router on every local subscribe/unsubscribe), the hub's
//! interest as router entries ([`HubInterest`]), status and counters for monitoring, and the
//! per-message picks that turn router matches into one `LMSG`/`HMSG` per link.
//!
//! Lock order: `Link::state` may be held while pushing to the outbound (a leaf lock); it is
//! never held while taking `Router::subs`. `Link::hub_subs` and `Link::status` are taken alone.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use twig_core::wire::{CRLF, Op, Queues, encode_lmsg_head};

use super::interest::{Interest, Key, Permissions};
use super::outbound::{LinkOutbound, Pushed};
use crate::server::router::Message;
use crate::util::lock::lock;

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
    /// Compression mode asked for ("off" / "not supported").
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
    connected: bool,
    perms: Arc<Permissions>,
}

/// One uplink, shared by its task, the router and monitoring.
pub struct Link {
    /// Position in `[[leafnodes.remotes]]`.
    pub index: usize,
    /// The outbound lanes.
    pub out: LinkOutbound,
    state: Mutex<State>,
    headers: AtomicBool,
    /// The hub's `max_payload`: a bigger message would make it close the link.
    max_payload: AtomicUsize,
    /// The hub's interest, by subject and queue (written by the link's task only).
    pub hub_subs: Mutex<HashMap<Key, Arc<HubInterest>>>,
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
                connected: false,
                perms: Arc::new(Permissions::default()),
            }),
            headers: AtomicBool::new(true),
            max_payload: AtomicUsize::new(usize::MAX),
            hub_subs: Mutex::new(HashMap::new()),
            status: Mutex::new(LinkStatus::default()),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
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
        let mut line = Vec::with_capacity(subject.len() + 32);
        change.encode_into(&mut line);
        if self.out.push_proto(&line) == Pushed::Queued {
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
        st.perms = Arc::new(perms);
        st.connected = true;
        self.out.open_bulk();
        let mut lines = Vec::with_capacity(64 + st.interest.len() * 32);
        let _ = (Op::LsPlus {
            subject: lds.as_bytes(),
            queue: None,
        })
        .encode_into(&mut lines);
        for change in st.interest.dump() {
            if st.perms.can_subscribe(change.subject()) {
                change.encode_into(&mut lines);
            }
        }
        self.out.push_proto(&lines);
        self.out.wake();
        drop(st);
        self.notify_change();
    }

    /// The connection ended: stop queueing, drop what is queued.
    pub fn go_down(&self) {
        let mut st = lock(&self.state);
        st.connected = false;
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

    /// Whether the hub negotiated headers (`HMSG`).
    pub fn headers(&self) -> bool {
        self.headers.load(Relaxed)
    }

    /// The hub's `max_payload` (headers and body), `usize::MAX` when it did not say.
    pub fn max_payload(&self) -> usize {
        self.max_payload.load(Relaxed)
    }
}

/// One `LS+` from the hub, as a router entry: local publishes matching it go up the link.
pub struct HubInterest {
    /// The link it came over.
    pub link: Arc<Link>,
    /// The subject (possibly with wildcards).
    pub subject: Box<[u8]>,
    /// The queue group, for queue interest.
    pub queue: Option<Box<[u8]>>,
    /// Members behind a queue interest (the `LS+` weight).
    pub weight: AtomicU32,
    /// Set when withdrawn, so a delivery racing the removal is skipped.
    pub closed: AtomicBool,
    /// The link's permissions when the interest arrived.
    pub perms: Arc<Permissions>,
}

/// Per-message bookkeeping of a reader: which links a message goes to, with which queue
/// groups, so each link gets one `LMSG` however many of its entries matched.
#[derive(Default)]
pub struct Picks {
    items: Vec<Pick>,
    any: bool,
    /// Links that got bytes in this batch (woken once when it ends).
    pub touched: Vec<Arc<Link>>,
}

struct Pick {
    link: Arc<Link>,
    perms: Arc<Permissions>,
    used: bool,
    plain: bool,
    /// Queue names separated by blanks, as twig-core's `Queues::from_raw` reads them.
    queues: Vec<u8>,
}

impl Picks {
    /// `h` matched as plain interest.
    pub fn plain(&mut self, h: &Arc<HubInterest>) {
        self.slot(h).plain = true;
    }

    /// `h` was picked for its queue group.
    pub fn queue(&mut self, h: &Arc<HubInterest>) {
        let Some(q) = h.queue.as_deref() else {
            return;
        };
        let p = self.slot(h);
        if !p.queues.is_empty() {
            p.queues.push(b' ');
        }
        p.queues.extend_from_slice(q);
    }

    fn slot(&mut self, h: &Arc<HubInterest>) -> &mut Pick {
        self.any = true;
        let i = match self
            .items
            .iter()
            .position(|p| Arc::ptr_eq(&p.link, &h.link))
        {
            Some(i) => i,
            None => {
                self.items.push(Pick {
                    link: h.link.clone(),
                    perms: h.perms.clone(),
                    used: false,
                    plain: false,
                    queues: Vec::new(),
                });
                self.items.len() - 1
            }
        };
        // `i` is in range: found or just pushed.
        let p = &mut self.items[i];
        if !p.used {
            p.used = true;
            // The link's permissions change only on reconnect; clone only then.
            if !Arc::ptr_eq(&p.perms, &h.perms) {
                p.perms = h.perms.clone();
            }
        }
        p
    }

    /// Sends `msg` to every link picked for it and resets for the next message. Returns
    /// the number of links it was queued for.
    pub fn send(&mut self, msg: &Message<'_>) -> usize {
        if !self.any {
            return 0;
        }
        self.any = false;
        let mut n = 0;
        for p in &mut self.items {
            if !p.used {
                continue;
            }
            if send_one(p, msg) {
                n += 1;
                if !self.touched.iter().any(|l| Arc::ptr_eq(l, &p.link)) {
                    self.touched.push(p.link.clone());
                }
            }
            p.used = false;
            p.plain = false;
            p.queues.clear();
        }
        n
    }

    /// Wakes every link that got bytes; returns one whose backlog is past its stall mark,
    /// for the publisher to wait on (see `outbound`).
    pub fn flush(&mut self) -> Option<Arc<Link>> {
        let mut stalled = None;
        for l in self.touched.drain(..) {
            l.out.wake();
            if stalled.is_none() && l.out.stalled() {
                stalled = Some(l);
            }
        }
        stalled
    }
}

fn send_one(p: &Pick, msg: &Message<'_>) -> bool {
    if p.perms.export_restricted() && !p.perms.can_publish(msg.subject) {
        return false;
    }
    // A hub that did not negotiate headers gets the body alone, as nats-server strips them.
    let headers = if p.link.headers() { msg.headers } else { None };
    // The control line goes through a stack buffer, the body is copied once, as the client
    // delivery path does.
    let total = headers.map_or(0, <[u8]>::len) + msg.payload.len();
    if total > p.link.max_payload.load(Relaxed) {
        // The hub would close the link over it ("Maximum Payload Violation"): drop it here.
        p.link.dropped.fetch_add(1, Relaxed);
        return false;
    }
    let mut head = [0u8; 512];
    let queues = Queues::from_raw(&p.queues);
    let head_len = match encode_lmsg_head(
        msg.subject,
        msg.reply,
        queues,
        headers.map(<[u8]>::len),
        total,
        &mut head,
    ) {
        Ok(n) => n,
        Err(_) => return send_long(p, msg, headers),
    };
    let head = head.get(..head_len).unwrap_or_default();
    let pushed = p.link.out.push_msg(head_len + total + 2, |b| {
        b.extend_from_slice(head);
        if let Some(h) = headers {
            b.extend_from_slice(h);
        }
        b.extend_from_slice(msg.payload);
        b.extend_from_slice(CRLF);
        Ok(())
    });
    counted(p, msg, headers, pushed)
}

/// A message whose control line is too long for the stack buffer (long subjects, many queue
/// names): encoded as a whole op.
fn send_long(p: &Pick, msg: &Message<'_>, headers: Option<&[u8]>) -> bool {
    let op = Op::Lmsg {
        subject: msg.subject,
        reply: msg.reply,
        queues: Queues::from_raw(&p.queues),
        headers,
        payload: msg.payload,
    };
    let pushed = p.link.out.push_msg(op.encoded_len(), |b| {
        op.encode_into(b).map(|_| ()).map_err(|_| ())
    });
    counted(p, msg, headers, pushed)
}

fn counted(p: &Pick, msg: &Message<'_>, headers: Option<&[u8]>, pushed: Pushed) -> bool {
    match pushed {
        Pushed::Queued => {
            p.link.out_msgs.fetch_add(1, Relaxed);
            let size = msg.payload.len() + headers.map_or(0, <[u8]>::len);
            p.link.out_bytes.fetch_add(size as u64, Relaxed);
            true
        }
        Pushed::Dropped => {
            if p.link.out.bulk_open() {
                p.link.dropped.fetch_add(1, Relaxed);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uplink::outbound::Taken;

    fn drain(link: &Link) -> String {
        let mut t = Taken::default();
        link.out.try_take(true, &mut t);
        let mut all = t.urgent;
        all.extend_from_slice(&t.bulk);
        String::from_utf8(all).unwrap()
    }

    fn interest(link: &Arc<Link>, subject: &str, queue: Option<&str>) -> Arc<HubInterest> {
        Arc::new(HubInterest {
            link: link.clone(),
            subject: subject.as_bytes().into(),
            queue: queue.map(|q| q.as_bytes().into()),
            weight: AtomicU32::new(1),
            closed: AtomicBool::new(false),
            perms: link.perms(),
        })
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
}
