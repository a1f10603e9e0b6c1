//! The I/O shell of one remote: dial, handshake, read and apply, write, reconnect.
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use async_io::Timer;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, FutureExt};
use twig_core::s2::mode::Mode as Compression;
use twig_core::s2::{Level, NATS_BLOCK_SIZE};
use twig_core::wire::{Limits, Mode, Op, ParseError, Parser, Queues};

use super::creds::Credentials;
use super::interest::{Key, Permissions};
use super::link::Link;
use super::open::{Opened, open};
use super::session::{Session, SessionConfig, Step};
use super::transport::{SharedLevel, WireReader};
use super::uplinks::Control;
use super::urls::Urls;
use twig_config::Config;
use twig_config::{LeafUrl, RemoteConfig};
use twig_router::Router;
use twig_router::remote::{Remote, RemoteInterest};
use twig_router::{Batch, MatchCache, Message, Origin, deliver};
use twig_util::backoff::Backoff;
use twig_util::dial;
use twig_util::id::Identity;
use twig_util::lock::lock;
use twig_util::readbuf::ReadBuf;

/// The read buffer starts here and grows (up to one whole op) only for large messages.
const READ_BUF: usize = 32 * 1024;

/// What a remote's task is started with; its settings come from `control`, one generation
/// at a time.
pub struct Task {
    pub router: Arc<Router>,
    pub config: Arc<Config>,
    pub identity: Identity,
    pub ex: Arc<async_executor::Executor<'static>>,
    pub link: Arc<Link>,
    pub control: Arc<Control>,
    pub lds: String,
}

/// What one generation of a remote's settings works with.
pub struct Ctx {
    pub router: Arc<Router>,
    pub config: Arc<Config>,
    pub identity: Identity,
    pub ex: Arc<async_executor::Executor<'static>>,
    pub link: Arc<Link>,
    pub remote: RemoteConfig,
    pub lds: String,
}

/// How one attempt ended.
enum Ended {
    /// Never got up.
    Failed(String),
    /// Was up, then lost.
    Lost(String),
    /// The hub sees a loop or the same cluster name: wait [`super::LOOP_DELAY`].
    Loop(String),
}

/// Runs the remote for as long as twig does: each generation of its settings until a reload
/// replaces it (the connection in use is dropped, which closes it, and the new settings dial
/// at once); while the remote is removed, waits to be configured again.
pub async fn run(task: Task) {
    loop {
        let (generation, remote) = task.control.current();
        if let Some(remote) = remote {
            let ctx = Ctx {
                router: task.router.clone(),
                config: task.config.clone(),
                identity: task.identity.clone(),
                ex: task.ex.clone(),
                link: task.link.clone(),
                remote,
                lds: task.lds.clone(),
            };
            run_settings(&ctx)
                .or(task.control.changed_since(generation))
                .await;
        } else {
            {
                let mut st = lock(&task.link.status);
                st.last_error = Some("removed by a reload".into());
                st.attempts = 0;
            }
            task.control.changed_since(generation).await;
        }
    }
}

/// Connects, reconnects with back-off, until the settings change (the caller drops it then).
/// Settings it cannot use (no URL, a TLS file that does not load) wait for the next reload.
async fn run_settings(ctx: &Ctx) {
    let leaf = &ctx.config.leafnodes;
    let parsed: Vec<LeafUrl> = ctx
        .remote
        .urls
        .iter()
        .filter_map(|u| LeafUrl::parse(u).ok())
        .collect();
    let mut urls = Urls::new(parsed);
    let mut backoff = Backoff::new(leaf.reconnect_delay_min, leaf.reconnect_delay_max);
    let tls = ctx.remote.tls.as_ref().map(|t| {
        twig_util::tls::client_config(&t.ca_file, t.cert_file.as_deref(), t.key_file.as_deref())
    });
    let tls = match tls.transpose() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("Leafnode remote {}: TLS configuration: {e}", ctx.link.index);
            return std::future::pending().await;
        }
    };
    let mut last_error = String::new();
    loop {
        let Some(url) = urls.next_url() else {
            return std::future::pending().await;
        };
        lock(&ctx.link.status).url = url.host_port();
        let ended = attempt(ctx, &url, &mut urls, tls.clone()).await;
        let (delay, reason) = match ended {
            Ended::Lost(reason) => {
                tracing::info!("{} - Leafnode connection closed: {reason}", url.host_port());
                backoff.reset();
                (backoff.next_delay(twig_util::id::random_u64()), reason)
            }
            Ended::Failed(reason) => {
                let delay = backoff.next_delay(twig_util::id::random_u64());
                let n = backoff.attempts();
                // Every failure is logged at first; a long outage then says so every 60th
                // attempt, or when the reason changes.
                if n <= 3 || n.is_multiple_of(60) || reason != last_error {
                    tracing::error!(
                        "Error trying to connect as leafnode to remote server \"{}\" (attempt {n}): {reason}; retrying in {delay:?}",
                        url.host_port()
                    );
                } else {
                    tracing::debug!(
                        "Error trying to connect as leafnode to remote server \"{}\" (attempt {n}): {reason}",
                        url.host_port()
                    );
                }
                (delay, reason)
            }
            Ended::Loop(reason) => {
                tracing::error!(
                    "{} - Leafnode connection closed: {reason}; reconnecting in {:?}",
                    url.host_port(),
                    super::LOOP_DELAY
                );
                (super::LOOP_DELAY, reason)
            }
        };
        {
            let mut st = lock(&ctx.link.status);
            st.last_error = Some(reason.clone());
            st.attempts += 1;
        }
        last_error = reason;
        Timer::after(delay).await;
    }
}

/// One connection, from dial to loss.
async fn attempt(
    ctx: &Ctx,
    url: &LeafUrl,
    urls: &mut Urls,
    tls: Option<Arc<futures_rustls::rustls::ClientConfig>>,
) -> Ended {
    let creds = match Credentials::load(&ctx.remote, url) {
        Ok(c) => c,
        Err(e) => return Ended::Failed(e.to_string()),
    };
    tracing::debug!(
        "Trying to connect as leafnode to remote server on {:?}",
        url.host_port()
    );
    let leaf = &ctx.config.leafnodes;
    // Websocket pings are answered by the writer (a pong is a frame of its own).
    let link = ctx.link.clone();
    let on_ping = Box::new(move |payload: &[u8]| link.out.push_ws_pong(payload));
    let opened = match open(&ctx.remote, leaf, url, tls.clone(), on_ping).await {
        Ok(o) => o,
        Err(e) => return Ended::Failed(e),
    };
    // Shut when the attempt ends, also when a reload drops it half-way.
    let _shut = Shut(opened.stream.clone());
    connected(ctx, url, urls, tls, creds, opened).await
}

/// Shuts the socket down both ways when dropped (the hub sees the close at once, whoever
/// still holds a handle).
struct Shut(Arc<async_io::Async<std::net::TcpStream>>);

impl Drop for Shut {
    fn drop(&mut self) {
        let _ = self.0.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

/// The hub's bytes: a parser over a growable buffer.
struct Inbound {
    parser: Parser,
    buf: ReadBuf,
}

impl Inbound {
    fn new(limits: Limits) -> Inbound {
        Inbound {
            parser: Parser::new(Mode::Leaf, limits),
            buf: ReadBuf::new(READ_BUF, limits.max_op_len().max(READ_BUF)),
        }
    }

    /// Reads more bytes (after moving the unparsed tail to the front); 0 = end of stream.
    async fn read(&mut self, r: &mut (impl AsyncRead + Unpin)) -> io::Result<usize> {
        self.buf
            .make_room()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "op too large"))?;
        self.buf.read_from(r).await
    }

    fn next_op(&mut self) -> Result<Option<Op<'_>>, ParseError> {
        let parser = &mut self.parser;
        self.buf.next(|b| parser.parse(b))
    }
}

/// What the reader keeps while connected.
struct Conn<'c> {
    ctx: &'c Ctx,
    url: &'c LeafUrl,
    urls: &'c mut Urls,
    session: Session,
    cache: MatchCache,
    batch: Batch,
    hub_subs: HashMap<Key, Arc<RemoteInterest>>,
    up: bool,
    /// The writer started: from here on the connection ends with [`Conn::go_down`].
    started: bool,
    /// The hub's interest changed in this batch (forwarders are told once it ends).
    interest_changed: bool,
    /// The writer's S2 level, while compressing (`s2_auto` moves it with the RTT).
    level: Option<Arc<SharedLevel>>,
}

/// What the handshake asks the shell to do before the writer starts.
enum First {
    /// CONNECT; true if the link is up at once (no `connect_info` to wait for).
    Connect(Vec<u8>, bool),
    /// twig's INFO, then S2 both ways at this level.
    Compress(Vec<u8>, Level),
}

async fn connected(
    ctx: &Ctx,
    url: &LeafUrl,
    urls: &mut Urls,
    tls: Option<Arc<futures_rustls::rustls::ClientConfig>>,
    creds: Credentials,
    opened: Opened,
) -> Ended {
    let Opened {
        stream,
        mut reader,
        writer,
        mut layers,
        tls_done,
    } = opened;
    let config = &ctx.config;
    let leaf = &config.leafnodes;
    let cfg = SessionConfig {
        version: twig_util::version::NATS_SERVER.to_string(),
        twig_version: twig_util::version::TWIG.to_string(),
        server_id: ctx.identity.server_id.clone(),
        name: ctx.identity.server_name.clone(),
        first_info_timeout: ctx.remote.first_info_timeout,
        ping_interval: leaf.ping_interval,
        ping_max: leaf.ping_max,
        lds: ctx.lds.clone(),
        compression: ctx.remote.compression,
        deny_imports: {
            // The remote's own `deny_imports`, then the `[[sync]]` filters (their messages
            // come through the consumer, never as plain publishes).
            let mut d = ctx.remote.deny_imports.clone();
            d.extend(twig_config::deny_imports(config, ctx.link.index));
            d
        },
    };
    let limits = Limits {
        max_control_line: config.max_control_line,
        max_payload: config.max_payload,
    }
    .for_server_link();
    let mut inbound = Inbound::new(limits);
    let mut conn = Conn {
        ctx,
        url,
        urls,
        session: Session::new(cfg, creds, Instant::now()),
        cache: MatchCache::default(),
        batch: Batch::default(),
        hub_subs: HashMap::new(),
        up: false,
        started: false,
        interest_changed: false,
        level: None,
    };

    // The hub's first INFO comes in the clear, before any TLS (over websocket: after it).
    let first = match handshake_step(&mut conn.session, &mut inbound, &mut reader).await {
        Ok(f) => f,
        Err(e) => return Ended::Failed(e),
    };
    let info = &conn.session.hub().info;
    let tls_after_info = url.tls || tls.is_some() || info.tls_required;
    let mut writer = if tls_done || url.ws.is_some() {
        writer
    } else if tls_after_info {
        let Some(config) = tls else {
            return Ended::Failed(
                "the hub requires TLS: give leafnodes.remotes.tls.ca_file".into(),
            );
        };
        let t = ctx.remote.tls.as_ref();
        let name = t
            .and_then(|t| t.server_name.clone())
            .unwrap_or_else(|| url.host.clone());
        let timeout = t.map_or(twig_config::default_tls_timeout(), |t| t.timeout);
        let (tls_reader, tls_writer) = match dial::tls(stream.clone(), config, &name, timeout).await
        {
            Ok(halves) => halves,
            Err(e) => return Ended::Failed(format!("TLS handshake error: {e}")),
        };
        if inbound.buf.unparsed() > 0 {
            return Ended::Failed("the hub sent data right after its INFO".into());
        }
        if let Err(e) = reader.set_inner(tls_reader) {
            return Ended::Failed(e.to_string());
        }
        tls_writer
    } else {
        writer
    };
    let first = match first {
        First::Connect(line, up) => (line, up),
        First::Compress(info, level) => {
            // twig's INFO goes out uncompressed (in a frame over websocket) and whole before
            // any compressed byte; the hub's answer is the first byte of its S2 stream.
            let info = match layers.encode(&[], &info, &[]) {
                Ok(b) => b.to_vec(),
                Err(e) => return Ended::Failed(e.to_string()),
            };
            if let Err(e) = write_within(&mut writer, &info, leaf.write_deadline).await {
                return Ended::Failed(e);
            }
            if inbound.buf.unparsed() > 0 || reader.layers.buffered() > 0 {
                return Ended::Failed("the hub sent data before compression started".into());
            }
            reader.layers.start_s2(NATS_BLOCK_SIZE);
            let shared = Arc::new(SharedLevel::new(level));
            layers.start_s2(shared.clone());
            conn.level = Some(shared);
            match handshake_step(&mut conn.session, &mut inbound, &mut reader).await {
                Ok(First::Connect(line, up)) => (line, up),
                Ok(First::Compress(..)) => {
                    return Ended::Failed("the hub asked for compression twice".into());
                }
                Err(e) => return Ended::Failed(e),
            }
        }
    };
    let link = &ctx.link;
    link.out.reset();
    conn.started = true;
    let writer_task = ctx.ex.spawn(super::writer::write_loop(
        link.clone(),
        writer,
        layers,
        leaf.write_deadline,
        stream.clone(),
    ));
    link.out.push_urgent(&first.0);
    if first.1 {
        conn.go_up();
    }
    let read = conn.read_loop(&mut inbound, &mut reader);
    let mut writer_task = writer_task;
    let ended = match read.or(async { Err((&mut writer_task).await) }).await {
        Ok(()) => "connection closed by the hub".to_string(),
        Err(e) => e,
    };
    // A writer that failed shuts the socket, so the reader ends too, often first: its end of
    // stream or read error must not hide the writer's reason (a write deadline is not the
    // hub closing the link). A writer still running is idle: the hub did close.
    let ended = if writer_task.is_finished() {
        let w = writer_task.await;
        if w.starts_with("write") { w } else { ended }
    } else {
        let late = async {
            async_io::Timer::after(std::time::Duration::from_millis(50)).await;
            None
        };
        match async { Some((&mut writer_task).await) }.or(late).await {
            Some(w) if w.starts_with("write") => w,
            _ => ended,
        }
    };
    let was_up = conn.up;
    drop(conn);
    classify(ended, was_up)
}

/// The mode name of a level, as nats-server reports an `s2_auto` link's current level.
fn level_mode(level: Level) -> Compression {
    match level {
        Level::Uncompressed => Compression::Uncompressed,
        Level::Fast => Compression::Fast,
        Level::Better => Compression::Better,
        Level::Best => Compression::Best,
    }
}

fn classify(reason: String, was_up: bool) -> Ended {
    if reason.contains("Loop detected") || reason.contains("same cluster name") {
        Ended::Loop(reason)
    } else if was_up {
        Ended::Lost(reason)
    } else {
        Ended::Failed(reason)
    }
}

/// Reads until the session answers the hub's INFO: with CONNECT, or with twig's INFO that
/// starts compression.
async fn handshake_step(
    session: &mut Session,
    inbound: &mut Inbound,
    reader: &mut WireReader,
) -> Result<First, String> {
    loop {
        match inbound.next_op() {
            Ok(Some(op)) => {
                return match session.handle(Instant::now(), op) {
                    Ok(Step::Send(line)) => Ok(First::Connect(line, false)),
                    Ok(Step::SendAndConnected(line)) => Ok(First::Connect(line, true)),
                    Ok(Step::StartCompression { info, level }) => Ok(First::Compress(info, level)),
                    Ok(_) => Err("unexpected first op from the hub".into()),
                    Err(e) => Err(e.to_string()),
                };
            }
            Ok(None) => {}
            Err(e) => return Err(format!("protocol error: {e}")),
        }
        match read_or_timer(session, inbound, reader).await {
            Ok(true) => {}
            Ok(false) => return Err("connection closed by the hub".into()),
            Err(e) => return Err(e),
        }
    }
}

/// Writes and flushes `bytes` before the writer task exists (twig's INFO), within `deadline`.
async fn write_within(
    writer: &mut (impl AsyncWrite + Unpin),
    bytes: &[u8],
    deadline: std::time::Duration,
) -> Result<(), String> {
    let write = async {
        let r = async {
            writer.write_all(bytes).await?;
            writer.flush().await
        }
        .await;
        Some(r)
    };
    let late = async {
        Timer::after(deadline).await;
        None
    };
    match write.or(late).await {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(format!("write error: {e}")),
        None => Err(format!(
            "{}: writing INFO took over {deadline:?}",
            super::writer::WRITE_DEADLINE
        )),
    }
}

/// Reads more bytes, or runs the session's timers when they are due first. `Ok(false)` at
/// end of stream; timer errors (no INFO in time, stale) come back as `Err`.
async fn read_or_timer(
    session: &mut Session,
    inbound: &mut Inbound,
    reader: &mut (impl AsyncRead + Unpin),
) -> Result<bool, String> {
    loop {
        let at = session.poll_at();
        let read = async { Some(inbound.read(reader).await) };
        let timer = async {
            Timer::at(at).await;
            None
        };
        match read.or(timer).await {
            Some(Ok(0)) => return Ok(false),
            Some(Ok(_)) => return Ok(true),
            Some(Err(e)) => return Err(format!("read error: {e}")),
            None => match session.poll(Instant::now()) {
                // Before the link is up the only timer is the INFO deadline.
                Ok(_) => continue,
                Err(e) => return Err(e.to_string()),
            },
        }
    }
}

/// However a started connection ends, even when a reload drops it mid-way: the link goes down
/// and the hub's interest leaves the router.
impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if self.started {
            self.go_down();
        }
    }
}

impl Conn<'_> {
    async fn read_loop(
        &mut self,
        inbound: &mut Inbound,
        reader: &mut WireReader,
    ) -> Result<(), String> {
        // Whatever arrived with the first INFO is handled before reading more.
        self.handle_ops(inbound)?;
        loop {
            let at = self.session.poll_at();
            let read = async { Some(inbound.read(reader).await) };
            let timer = async {
                Timer::at(at).await;
                None
            };
            match read.or(timer).await {
                None => match self.session.poll(Instant::now()) {
                    Ok(step) => self.apply(step)?,
                    Err(e) => return Err(e.to_string()),
                },
                Some(Ok(0)) => return Ok(()),
                Some(Err(e)) => return Err(format!("read error: {e}")),
                Some(Ok(_)) => self.handle_ops(inbound)?,
            }
        }
    }

    /// Handles every whole op in the buffer, then ends the batch (wakes who got messages).
    fn handle_ops(&mut self, inbound: &mut Inbound) -> Result<(), String> {
        let now = Instant::now();
        let r = loop {
            match inbound.next_op() {
                Ok(Some(op)) => match self.handle_op(now, op) {
                    Ok(step) => {
                        if let Err(e) = self.apply(step) {
                            break Err(e);
                        }
                    }
                    Err(e) => break Err(e.to_string()),
                },
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("protocol error: {e}")),
            }
        };
        self.end_batch();
        r
    }

    fn handle_op<'a>(
        &mut self,
        now: Instant,
        op: Op<'a>,
    ) -> Result<Step<'a>, super::session::SessionError> {
        // Counted in order for the stream forwarder's PING barriers (`core` mode).
        if matches!(op, Op::Pong) && self.up {
            self.ctx.link.out.pong();
        }
        self.session.handle(now, op)
    }

    fn apply(&mut self, step: Step<'_>) -> Result<(), String> {
        let out = &self.ctx.link.out;
        match step {
            Step::Nothing => {}
            Step::Send(b) => {
                out.push_urgent(&b);
            }
            // Counted, so the stream forwarder's PING barriers know which PONG is theirs.
            Step::SendStatic(b"PING\r\n") => {
                out.push_ping();
            }
            Step::SendStatic(b) => {
                out.push_urgent(b);
            }
            Step::SendAndConnected(b) => {
                out.push_urgent(&b);
                self.go_up();
            }
            Step::Connected => self.go_up(),
            // Only the first INFO can start compression (the handshake, before this loop).
            Step::StartCompression { .. } => {
                return Err("protocol violation by the hub: a second compression start".into());
            }
            Step::Urls(u) => {
                // The hub's leafnode_urls are its plain leafnode ports: of no use to a
                // websocket remote.
                if !self.ctx.remote.ignore_discovered_servers && self.url.ws.is_none() {
                    self.urls.update_discovered(self.url, &u);
                }
            }
            Step::Data(op) => self.data(op),
        }
        Ok(())
    }

    fn go_up(&mut self) {
        let hub = self.session.hub();
        // The hub's permissions with this remote's own denies merged in, as nats-server does.
        let perms = Permissions::new(hub.import.as_ref(), hub.export.as_ref())
            .with_denies(&self.ctx.remote.deny_imports, &self.ctx.remote.deny_exports);
        let max_payload = usize::try_from(hub.info.max_payload).unwrap_or(0);
        self.ctx
            .link
            .go_up(perms, hub.info.headers, max_payload, &self.ctx.lds);
        self.up = true;
        let account = hub.account.clone().unwrap_or_else(|| "$G".into());
        if !self.ctx.remote.ignore_discovered_servers
            && self.url.ws.is_none()
            && let Some(u) = &hub.info.leafnode_urls
        {
            self.urls.update_discovered(self.url, u);
        }
        {
            let mut st = lock(&self.ctx.link.status);
            st.connected = true;
            st.hub_id.clone_from(&hub.info.server_id);
            st.hub_name.clone_from(&hub.info.server_name);
            st.hub_cluster.clone_from(&hub.info.cluster);
            st.account.clone_from(&account);
            st.compression = hub.compression.as_str().to_string();
            st.since = Some(twig_util::clock::now());
            st.connects += 1;
            st.attempts = 0;
            st.last_error = None;
        }
        tracing::info!(
            "{} - Leafnode connection created for account: {account} (hub {})",
            self.url.host_port(),
            hub.info.server_name
        );
    }

    fn go_down(&mut self) {
        let link = &self.ctx.link;
        link.go_down();
        let hubs: Vec<Arc<RemoteInterest>> = self.hub_subs.drain().map(|(_, h)| h).collect();
        self.ctx.router.remove_remote(&hubs);
        lock(&link.hub_subs).clear();
        let mut st = lock(&link.status);
        st.connected = false;
        st.since = None;
        st.rtt = None;
    }

    fn data(&mut self, op: Op<'_>) {
        match op {
            Op::LsPlus { subject, queue } => self.hub_plus(subject, queue),
            Op::LsMinus { subject, queue } => self.hub_minus(subject, queue),
            Op::Lmsg {
                subject,
                reply,
                queues,
                headers,
                payload,
            } => self.hub_msg(subject, reply, queues, headers, payload),
            _ => {}
        }
    }

    fn hub_plus(&mut self, subject: &[u8], queue: Option<(&[u8], u32)>) {
        // Loop-detection subjects are interest only for loop checks, not for messages.
        if subject.starts_with(b"$LDS.") {
            return;
        }
        let key: Key = (subject.into(), queue.map(|(q, _)| q.into()));
        if let Some(h) = self.hub_subs.get(&key) {
            if let Some((_, w)) = queue {
                h.weight.store(w, Relaxed);
            }
            return;
        }
        let remote: Arc<dyn Remote> = self.ctx.link.clone();
        let h = RemoteInterest::new(
            remote,
            subject,
            queue.map(|(q, _)| q),
            queue.map_or(1, |(_, w)| w),
        );
        match self.ctx.router.insert_remote(&h) {
            Ok(()) => {
                lock(&self.ctx.link.hub_subs).insert(key.clone(), h.clone());
                self.hub_subs.insert(key, h);
                self.interest_changed = true;
            }
            Err(e) => tracing::debug!(
                "Leafnode: ignoring interest {:?} from the hub: {e}",
                String::from_utf8_lossy(subject)
            ),
        }
    }

    fn hub_minus(&mut self, subject: &[u8], queue: Option<&[u8]>) {
        let key: Key = (subject.into(), queue.map(Into::into));
        if let Some(h) = self.hub_subs.remove(&key) {
            lock(&self.ctx.link.hub_subs).remove(&key);
            self.ctx.router.remove_remote(&[h]);
            self.interest_changed = true;
        }
    }

    fn hub_msg(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        queues: Queues<'_>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        let size = (payload.len() + headers.map_or(0, <[u8]>::len)) as u64;
        let link = &self.ctx.link;
        link.in_msgs.fetch_add(1, Relaxed);
        link.in_bytes.fetch_add(size, Relaxed);
        self.batch.in_msgs += 1;
        self.batch.in_bytes += size;
        let msg = Message {
            subject,
            reply,
            headers,
            payload,
        };
        let mut from = Origin::remote(queues);
        // A JetStream message that crossed the leafnode carries `@<stored subject>` after its
        // `$JS.ACK...` reply. nats-server delivers it to a client under the stored subject with
        // the suffix cut off (client.go, `jsAckDeliverIdx`), so a client pulling from a hub
        // stream through twig sees what it sees connected to the hub, and its acks reach the
        // hub's `$JS.ACK` subscription. Internal subscribers (a sync consumer) get the wire
        // form: they route by inbox and split it themselves.
        if let Some(r) = reply
            && let (ack, Some(stored)) = twig_core::wire::split_deliver(r)
        {
            from = from.shown_as(stored, Some(ack));
        }
        let result = self.ctx.router.lookup(&mut self.cache, subject);
        deliver(&msg, from, result, &mut self.batch);
    }

    fn end_batch(&mut self) {
        // Hub messages never go back up, so no uplink can be stalled by them; a slow local
        // subscriber is not waited for either (the hub would see a stale leaf).
        let _ = self.ctx.router.finish(&mut self.batch);
        if let Some(rtt) = self.session.rtt() {
            lock(&self.ctx.link.status).rtt = Some(rtt);
        }
        // s2_auto: the writer's level follows the RTT; /leafz shows the level in use.
        if let (Some(shared), Some(level)) = (&self.level, self.session.level())
            && shared.set(level)
        {
            lock(&self.ctx.link.status).compression = level_mode(level).as_str().to_string();
        }
        if std::mem::take(&mut self.interest_changed) {
            self.ctx.link.notify_change();
        }
    }
}
