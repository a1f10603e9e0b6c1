//! The thread owning one stream's log: appends, group commit, PubAcks, de-duplication and the
//! `max_msgs`/`max_age` limits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TryRecvError};
use futures_lite::FutureExt;

use twig_core::log::{self, Log, WhenFull};

use super::drain::Drain;
use super::flash::{FileFlash, SECTOR};
use super::reload::Limits;
use super::{Notify, Queue, Request, Stored, StreamError, StreamState, record};
use twig_config::Config;
use twig_config::{StreamConfig, SyncPolicy, WhenFullConfig};
use twig_router::internal::Owned;
use twig_router::{Batch, MatchCache, Message, Origin, Router, deliver};
use twig_util::clock::unix_nanos;

/// Most messages taken from the queue before one fsync: bounds the latency of the first
/// message of a large burst.
const MAX_BATCH: usize = 1024;
/// How often the thread wakes without messages (for `max_age` and interval syncs).
const TICK: Duration = Duration::from_millis(100);
/// Most records `max_age` expires per tick (each is a read).
const EXPIRE_PER_TICK: usize = 4096;
/// The forwarder's acknowledged cursor is made durable at most this late (one fsync each):
/// after a crash the drain resumes from the last durable cursor and the hub's
/// de-duplication drops what is sent twice.
const ACK_SYNC: Duration = Duration::from_millis(50);
/// Fallback wake-up while waiting for the link's writer (it also notifies).
const PROGRESS_POLL: Duration = Duration::from_millis(20);

/// New limits waiting for the stream's thread (a reload sends one; the sender waits for room).
const LIMITS_QUEUE: usize = 4;

/// What [`spawn`] hands back: the request queue, the `/jsz` snapshot, the limits channel.
pub type Handles = (Sender<Request>, Arc<Mutex<StreamState>>, Sender<Limits>);

/// Opens the stream's log and starts its thread.
pub fn spawn(
    router: &Arc<Router>,
    config: &Config,
    cfg: &StreamConfig,
    queue: Arc<Queue>,
    gateway: &str,
    board: Arc<super::priority::Board>,
) -> Result<Handles, StreamError> {
    let path = cfg.path(&config.store_dir);
    let shown = path.display().to_string();
    let flash =
        FileFlash::open(&path, cfg.max_bytes as u64).map_err(|source| StreamError::File {
            name: cfg.name.clone(),
            path: shown.clone(),
            source,
        })?;
    let when_full = when_full(cfg.when_full);
    let end = u32::try_from(cfg.max_bytes).unwrap_or(u32::MAX);
    let log = Log::open(flash, log::Config::new(0, end).when_full(when_full)).map_err(|e| {
        StreamError::Log {
            name: cfg.name.clone(),
            path: shown.clone(),
            reason: format!("{e:?}"),
        }
    })?;
    let (tx, rx) = async_channel::unbounded();
    let (limits_tx, limits) = async_channel::bounded(LIMITS_QUEUE);
    let mode = cfg.forward_mode(config.leafnodes.remotes.len());
    let state = Arc::new(Mutex::new(StreamState {
        name: cfg.name.clone(),
        file: shown,
        max_bytes: cfg.max_bytes as u64,
        forward: format!("{mode:?}").to_lowercase(),
        ..StreamState::default()
    }));
    let drain = Drain::start(router, config, cfg, gateway, log.stats().acked, board);
    let mut w = Worker {
        log,
        rx,
        queue,
        limits,
        router: router.clone(),
        cfg: cfg.clone(),
        state: state.clone(),
        counters: StreamState::default(),
        dedup: Dedup::default(),
        acks: Vec::new(),
        notices: Vec::new(),
        cache: MatchCache::default(),
        batch: Batch::default(),
        buf: vec![0; SECTOR],
        last_sync: Instant::now(),
        last_expire: Instant::now(),
        drain,
        pending: None,
    };
    w.rebuild_dedup();
    w.publish_state();
    let s = w.log.stats();
    tracing::info!(
        "Stream {} on {}: messages {}..={}, acknowledged up to {}",
        cfg.name,
        path.display(),
        s.first,
        s.last,
        s.acked
    );
    std::thread::Builder::new()
        .name(format!("stream-{}", cfg.name))
        .spawn(move || w.run())
        .map_err(|source| StreamError::Thread {
            name: cfg.name.clone(),
            source,
        })?;
    Ok((tx, state, limits_tx))
}

/// Remembered `Nats-Msg-Id`s: id -> (seq, when), and their arrival order for expiry.
#[derive(Default)]
struct Dedup {
    ids: HashMap<Box<[u8]>, u64>,
    order: VecDeque<(Instant, Box<[u8]>, u64)>,
}

impl Dedup {
    fn expire(&mut self, now: Instant, window: Duration, max: usize) {
        while let Some((t, id, seq)) = self.order.front() {
            if now.duration_since(*t) < window && self.order.len() <= max {
                break;
            }
            // The id may have been stored again later under another seq; only forget ours.
            if self.ids.get(id) == Some(seq) {
                self.ids.remove(id);
            }
            self.order.pop_front();
        }
    }
}

struct Worker {
    log: Log<FileFlash>,
    rx: Receiver<Request>,
    /// The bytes in `rx` (released as each request is taken).
    queue: Arc<Queue>,
    /// New limits from a reload.
    limits: Receiver<Limits>,
    router: Arc<Router>,
    cfg: StreamConfig,
    state: Arc<Mutex<StreamState>>,
    /// Counters the log does not keep (refused, duplicates, expired).
    counters: StreamState,
    dedup: Dedup,
    /// PubAcks to send after the next sync: (reply subject, JSON).
    acks: Vec<(Box<[u8]>, Vec<u8>)>,
    /// Outcomes to report after the next sync.
    notices: Vec<(Notify, Stored)>,
    cache: MatchCache,
    batch: Batch,
    buf: Vec<u8>,
    last_sync: Instant,
    last_expire: Instant,
    /// The forwarder, for a stream that forwards.
    drain: Option<Drain>,
    /// A request taken while waiting, handled first in the next round.
    pending: Option<Request>,
}

/// What ended a wait of the stream's thread.
enum Event {
    Request(Option<Request>),
    PubAck(Option<Owned>),
    Limits(Limits),
    Wake,
}

impl Worker {
    fn run(mut self) {
        async_io::block_on(self.run_loop());
    }

    /// Each round: take what publishers sent (up to [`MAX_BATCH`]), sync per the policy,
    /// send PubAcks, let the forwarder follow the link and send, then wait for the next
    /// request, PubAck, link change or timer. The log's calls block this thread (never the
    /// executor).
    async fn run_loop(&mut self) {
        loop {
            // Listeners before the step, so a change during it ends the wait below.
            let listeners = self.drain.as_ref().map(|d| {
                (
                    d.link.listen_change(),
                    d.link.listen_progress(),
                    d.listen_board(),
                )
            });
            while let Ok(l) = self.limits.try_recv() {
                self.set_limits(l);
            }
            let mut took = 0;
            if let Some(req) = self.pending.take() {
                self.take(req);
                took += 1;
            }
            while took < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(req) => {
                        self.take(req);
                        took += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => {
                        if took == 0 {
                            self.sync();
                            return;
                        }
                        break;
                    }
                }
            }
            if took > 0 {
                // Before the sync: paused publishers refill the queue while it runs.
                self.queue.wake();
            }
            let due = match self.cfg.sync {
                SyncPolicy::Always => self.log.stats().synced < self.log.stats().last,
                SyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
            };
            if due {
                self.sync();
            }
            if took > 0 {
                // Before the PubAcks: a publisher that got one and asks /jsz sees its message.
                self.publish_state();
            }
            self.send_acks();
            let now = Instant::now();
            let wake = match &mut self.drain {
                Some(d) => {
                    let w = d.step(&mut self.log, now);
                    let target = d.fwd.acked();
                    if target > self.log.stats().acked {
                        // Only a sequence number the log has: cannot fail.
                        let _ = self.log.ack(target);
                    }
                    Some(w)
                }
                None => None,
            };
            let s = self.log.stats();
            let ack_pending = s.durable_acked < s.acked;
            if ack_pending && self.last_sync.elapsed() >= ACK_SYNC {
                self.sync();
            }
            if self.last_expire.elapsed() >= Duration::from_secs(1) {
                self.last_expire = Instant::now();
                self.expire_age();
                self.dedup.expire(
                    Instant::now(),
                    self.cfg.duplicate_window,
                    self.cfg.max_duplicate_ids,
                );
            }
            self.publish_state();
            if took == MAX_BATCH || wake.is_some_and(|w| w.again) {
                continue;
            }
            let mut at = now + TICK;
            if ack_pending {
                at = at.min(self.last_sync + ACK_SYNC);
            }
            if let SyncPolicy::Interval(d) = self.cfg.sync
                && s.synced < s.last
            {
                at = at.min(self.last_sync + d);
            }
            if let Some(t) = wake.and_then(|w| w.at) {
                at = at.min(t);
            }
            let progress = wake.is_some_and(|w| w.progress);
            if progress {
                at = at.min(now + PROGRESS_POLL);
            }
            let event = self.wait(at, listeners, progress).await;
            match event {
                Event::Request(r) => self.pending = r,
                Event::PubAck(m) => {
                    if let Some(d) = &mut self.drain {
                        d.pending = m;
                    }
                }
                Event::Limits(l) => self.set_limits(l),
                Event::Wake => {}
            }
        }
    }

    /// Waits for a request, a PubAck, a link change, a higher-priority stream letting go (or
    /// the writer's progress when `progress`), or `at`.
    async fn wait(
        &self,
        at: Instant,
        listeners: Option<(
            event_listener::EventListener,
            event_listener::EventListener,
            event_listener::EventListener,
        )>,
        progress: bool,
    ) -> Event {
        let req = async { Event::Request(self.rx.recv().await.ok()) };
        // A closed limits channel (the streams are gone) waits for the other events.
        let limits = async {
            match self.limits.recv().await {
                Ok(l) => Event::Limits(l),
                Err(_) => futures_lite::future::pending().await,
            }
        };
        let req = req.or(limits);
        let timer = async {
            async_io::Timer::at(at).await;
            Event::Wake
        };
        match (&self.drain, listeners) {
            (Some(d), Some((change, prog, board))) => {
                let acks = async { Event::PubAck(d.acks().recv().await.ok()) };
                let change = async {
                    change.or(board).await;
                    Event::Wake
                };
                let prog = async {
                    if progress {
                        prog.await;
                    } else {
                        futures_lite::future::pending::<()>().await;
                    }
                    Event::Wake
                };
                req.or(acks).or(change).or(prog).or(timer).await
            }
            _ => req.or(timer).await,
        }
    }

    fn sync(&mut self) {
        let s = self.log.stats();
        if s.synced == s.last && s.durable_acked == s.acked {
            return;
        }
        if let Err(e) = self.log.sync() {
            // PubAcks are only sent for synced messages under `always`: drop them, the
            // publishers time out and retry.
            tracing::error!("stream {}: sync failed: {e:?}", self.cfg.name);
            if self.cfg.sync == SyncPolicy::Always {
                self.acks.clear();
                self.notices.clear();
            }
        }
        self.last_sync = Instant::now();
    }

    fn take(&mut self, req: Request) {
        self.queue.release(req.cost());
        let now = Instant::now();
        if let Some(id) = &req.msg_id
            && let Some(&seq) = self.dedup.ids.get(id)
        {
            self.counters.duplicates += 1;
            if let Some(n) = req.notify {
                let token = n.token;
                self.notices.push((
                    n,
                    Stored {
                        token,
                        seq,
                        ok: true,
                    },
                ));
            }
            if let Some(reply) = req.reply {
                let json = format!(
                    r#"{{"stream":{},"seq":{seq},"duplicate": true}}"#,
                    json_str(&self.cfg.name)
                );
                self.acks.push((reply, json.into_bytes()));
            }
            return;
        }
        let appended = if req.too_large {
            Err(log::Error::TooLarge)
        } else {
            self.log.append(&req.record)
        };
        if let Some(n) = req.notify {
            let (seq, ok) = appended.as_ref().map_or((0, false), |a| (a.seq, true));
            let token = n.token;
            self.notices.push((n, Stored { token, seq, ok }));
        }
        let json = match appended {
            Ok(a) => {
                self.counters.dropped += a.dropped;
                if let Some(id) = req.msg_id {
                    self.dedup.ids.insert(id.clone(), a.seq);
                    self.dedup.order.push_back((now, id, a.seq));
                    self.dedup
                        .expire(now, self.cfg.duplicate_window, self.cfg.max_duplicate_ids);
                }
                self.limit_msgs(a.seq);
                format!(
                    r#"{{"stream":{},"seq":{}}}"#,
                    json_str(&self.cfg.name),
                    a.seq
                )
            }
            Err(e) => {
                self.counters.refused += 1;
                let (code, text) = match e {
                    log::Error::Full => (503, "maximum bytes exceeded".to_owned()),
                    log::Error::TooLarge => (
                        400,
                        "message size exceeds maximum allowed (one 64 KiB sector)".to_owned(),
                    ),
                    other => {
                        tracing::error!("stream {}: append failed: {other:?}", self.cfg.name);
                        (503, format!("stream store failed: {other:?}"))
                    }
                };
                format!(
                    r#"{{"error":{{"code":{code},"err_code":10077,"description":{}}},"stream":{},"seq":0}}"#,
                    json_str(&text),
                    json_str(&self.cfg.name)
                )
            }
        };
        if let Some(reply) = req.reply {
            self.acks.push((reply, json.into_bytes()));
        }
    }

    /// Re-learns the `Nats-Msg-Id`s stored within the duplicate window before a restart, so a
    /// publisher retrying after a crash gets `duplicate` instead of a second copy. Finds the
    /// window's start by binary search on the stored times (a few reads), then reads forward
    /// (at most `max_duplicate_ids` records).
    fn rebuild_dedup(&mut self) {
        let s = self.log.stats();
        if s.last < s.first {
            return;
        }
        let now_ns = unix_nanos();
        let since = now_ns.saturating_sub(self.cfg.duplicate_window.as_nanos() as u64);
        let (mut lo, mut hi) = (s.first, s.last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.time_of(mid) {
                Some(t) if t >= since => hi = mid,
                _ => lo = mid + 1,
            }
        }
        let start = lo.max((s.last + 1).saturating_sub(self.cfg.max_duplicate_ids as u64));
        let Ok(mut cur) = self.log.cursor(start) else {
            return;
        };
        let now = Instant::now();
        while let Ok(Some(r)) = self.log.read_next(&mut cur, &mut self.buf) {
            let Some(m) = self.buf.get(..r.len).and_then(record::decode) else {
                continue;
            };
            let id = m
                .headers
                .and_then(|h| twig_core::wire::Headers::parse(h).ok())
                .and_then(|h| h.get(b"Nats-Msg-Id"));
            if let Some(id) = id {
                let age = Duration::from_nanos(now_ns.saturating_sub(m.time_ns));
                let at = now.checked_sub(age).unwrap_or(now);
                self.dedup.ids.insert(id.into(), r.seq);
                self.dedup.order.push_back((at, id.into(), r.seq));
            }
        }
        self.dedup
            .expire(now, self.cfg.duplicate_window, self.cfg.max_duplicate_ids);
    }

    fn time_of(&mut self, seq: u64) -> Option<u64> {
        let len = self.log.read(seq, &mut self.buf).ok()?;
        self.buf
            .get(..len)
            .and_then(record::decode)
            .map(|m| m.time_ns)
    }

    /// A reload's limits: in force from now on, and enforced at once as after a publish (a
    /// lower `max_msgs` or `max_age` marks the oldest messages done, a shorter duplicate
    /// window forgets ids); `/jsz` shows them.
    fn set_limits(&mut self, l: Limits) {
        l.set_in(&mut self.cfg);
        self.log.set_when_full(when_full(l.when_full));
        self.limit_msgs(self.log.stats().last);
        self.expire_age();
        self.last_expire = Instant::now();
        self.dedup.expire(
            Instant::now(),
            self.cfg.duplicate_window,
            self.cfg.max_duplicate_ids,
        );
        let sync = match l.sync {
            SyncPolicy::Always => "always".to_owned(),
            SyncPolicy::Interval(d) => format!("{d:?}"),
        };
        tracing::info!(
            "Stream {}: limits reloaded (max_msgs {}, max_age {}, when_full {}, sync {sync})",
            self.cfg.name,
            l.max_msgs,
            l.max_age
                .map_or_else(|| "none".to_owned(), |d| format!("{d:?}")),
            when_full_name(l.when_full),
        );
        self.publish_state();
    }

    /// `max_msgs`: everything older than the newest `max_msgs` is done.
    fn limit_msgs(&mut self, last: u64) {
        if self.cfg.max_msgs == 0 || last <= self.cfg.max_msgs {
            return;
        }
        let target = last - self.cfg.max_msgs;
        let acked = self.log.stats().acked;
        if target > acked && self.log.ack(target).is_ok() {
            self.counters.expired += target - acked;
        }
    }

    /// `max_age`: marks done the oldest records older than it (a bounded number per tick).
    fn expire_age(&mut self) {
        let Some(max_age) = self.cfg.max_age else {
            return;
        };
        let limit = unix_nanos().saturating_sub(max_age.as_nanos() as u64);
        let s = self.log.stats();
        let Ok(mut cur) = self.log.cursor(s.acked + 1) else {
            return;
        };
        let mut upto = s.acked;
        for _ in 0..EXPIRE_PER_TICK {
            match self.log.read_next(&mut cur, &mut self.buf) {
                Ok(Some(r)) => {
                    let old = self
                        .buf
                        .get(..r.len)
                        .and_then(record::decode)
                        .is_some_and(|m| m.time_ns < limit);
                    if !old {
                        break;
                    }
                    upto = r.seq;
                }
                _ => break,
            }
        }
        if upto > s.acked && self.log.ack(upto).is_ok() {
            self.counters.expired += upto - s.acked;
        }
    }

    /// Routes the PubAcks to their reply subjects, like any published reply, and reports
    /// outcomes to the components waiting on them.
    fn send_acks(&mut self) {
        for (n, stored) in self.notices.drain(..) {
            // Never blocks the stream (see `Notify`): a full channel loses the notice.
            let _ = n.tx.send(stored);
        }
        if self.acks.is_empty() {
            return;
        }
        for (reply, json) in std::mem::take(&mut self.acks) {
            let msg = Message {
                subject: &reply,
                reply: None,
                headers: None,
                payload: &json,
            };
            let result = self.router.lookup(&mut self.cache, &reply);
            deliver(&msg, Origin::internal(), result, &mut self.batch);
        }
        // PubAcks are replies: a remote they reach cannot be flooded by them, and the stream
        // thread never waits for a subscriber.
        let _ = self.router.finish(&mut self.batch);
    }

    fn publish_state(&mut self) {
        let s = self.log.stats();
        let mut st = twig_util::lock::lock(&self.state);
        st.messages = (s.last + 1).saturating_sub(s.first);
        st.bytes = u64::from(s.sectors_used) * SECTOR as u64;
        st.first_seq = s.first;
        st.last_seq = s.last;
        st.acked_seq = s.acked;
        st.backlog = s.last.saturating_sub(s.acked);
        st.synced_seq = s.synced;
        st.dropped = self.counters.dropped;
        st.refused = self.counters.refused;
        st.duplicates = self.counters.duplicates;
        st.expired = self.counters.expired;
        st.max_msgs = self.cfg.max_msgs;
        st.max_age = self.cfg.max_age.map_or(0, |d| d.as_nanos() as u64);
        when_full_name(self.cfg.when_full).clone_into(&mut st.when_full);
        if let Some(d) = &self.drain {
            let c = d.fwd.counts;
            st.forwarded = c.forwarded.saturating_sub(d.skipped);
            st.forward_sent = c.sent;
            st.forward_timeouts = c.timeouts;
            st.forward_lost = c.lost;
            st.forward_priority = self.cfg.forward_priority;
            let e = d.fwd.estimates();
            let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            st.forward_rtt_ms = ms(e.srtt);
            st.forward_min_rtt_ms = ms(e.min_rtt);
            st.forward_rto_ms = ms(Some(e.rto));
            st.forward_rate = e.rate as u64;
            st.forward_window_bytes = e.window;
            st.forward_inflight_bytes = e.inflight;
            st.forward_errors = c.errors;
            st.forward_skipped = d.skipped;
            st.in_flight = d.fwd.in_flight() as u64;
            st.forward_state = d.state(Instant::now(), s.last > s.acked).to_owned();
            st.last_forward_error.clone_from(&d.last_error);
        } else {
            "off".clone_into(&mut st.forward_state);
        }
    }
}

fn when_full(c: WhenFullConfig) -> WhenFull {
    match c {
        WhenFullConfig::DropOldest => WhenFull::DropOldest,
        WhenFullConfig::Refuse => WhenFull::RefuseNew,
    }
}

/// `when_full` as the config writes it.
fn when_full_name(c: WhenFullConfig) -> &'static str {
    match c {
        WhenFullConfig::DropOldest => "drop_oldest",
        WhenFullConfig::Refuse => "refuse",
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}
