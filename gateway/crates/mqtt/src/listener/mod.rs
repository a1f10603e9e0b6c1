//! The MQTT listener: devices connect to twig directly (`[mqtt_listener]`), MQTT 3.1.1 and 5.0
//! over TCP or TLS. The protocol is the sans-IO [`Session`](crate::server::Session); this is its
//! shell.
//!
//! One task per session on the gateway's executor ([`task`]): it owns the session, the
//! socket (read and written by the same task, never blocking on either), a timer at the
//! session's `poll_at`, and the session's NATS subscriptions. What reaches it from elsewhere
//! comes through its [`inbox`] (deliveries from the router, the store thread's and the
//! streams' answers, takeover and shutdown). A session that outlives its
//! connection (persistent, or waiting out a will delay) keeps its task without a socket.
//!
//! - Publishes go into the router like a NATS client's PUB, as component `owner` of the
//!   session; on a stream subject they are handed to the stream with a `Notify`, and the
//!   PUBACK/PUBREC waits for it (durable per the stream's `sync`). Elsewhere they are
//!   acknowledged once routed.
//! - Subscriptions are internal subscriptions of the router whose sink is the session's inbox.
//! - Sessions by client id are in the [`registry`]: a second connection with the same id
//!   takes the first one's session over (its task closes the connection and hands the state,
//!   the inbox and the subscriptions to the new task, so no message falls in between).
//! - Retained messages and lasting sessions are on flash, kept by the store thread
//!   ([`persist`]).
//! - Who may connect is asked through [`login::Login`], which the app answers from the
//!   server's `[authorization]`.
//!
//! The app binds the sockets (the client port's rules for `host`), builds the TLS acceptor,
//! opens the store file and wires the login; this module only takes them ([`Setup`]).

mod ackwait;
mod conns;
mod events;
pub mod inbox;
pub mod login;
mod persist;
mod registry;
mod replies;
mod task;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use async_io::Async;
use futures_rustls::TlsAcceptor;
use twig_config::MqttListenerConfig;
use twig_core::log::Flush;
use twig_core::mqtt::packet::QoS;
use twig_router::Router;

use crate::server::store::Store;
use crate::server::{Config as SessionConfig, SessionState};
use login::Login;
use registry::Registry;

pub use conns::MqttConn;

/// What the app hands the listener.
pub struct Setup<F: Flush> {
    /// `[mqtt_listener]`.
    pub config: MqttListenerConfig,
    /// The bound sockets (one, or both loopbacks for the default host).
    pub listeners: Vec<TcpListener>,
    /// TLS, when `[mqtt_listener.tls]` is set.
    pub tls: Option<Arc<futures_rustls::rustls::ServerConfig>>,
    /// Decides CONNECTs.
    pub login: Arc<dyn Login>,
    /// The store (retained messages, lasting sessions), opened over its file.
    pub store: Store<F>,
    /// The router.
    pub router: Arc<Router>,
    /// Numbers connections (shared with the client port, so `/connz` ids are unique).
    pub next_cid: Arc<dyn Fn() -> u64 + Send + Sync>,
}

/// Counters (atomics; `/varz` and `/metrics`).
#[derive(Default)]
pub struct Stats {
    /// Connections open now.
    pub connections: AtomicUsize,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// PUBLISH packets from devices.
    pub in_msgs: AtomicU64,
    /// Their payload bytes.
    pub in_bytes: AtomicU64,
    /// Refused logins.
    pub auth_failures: AtomicU64,
    /// Retained messages on file.
    pub retained: AtomicU64,
    /// Retained messages refused (limits).
    pub retained_refused: AtomicU64,
    /// Sessions on file (persistent ones).
    pub stored_sessions: AtomicU64,
    /// Messages queued in the sessions on file, as of the last sync.
    pub stored_queued: AtomicU64,
    /// Deliveries dropped (an inbox or a session queue was full, or expired).
    pub dropped: AtomicU64,
    /// Times a session waited for room in the store thread's queue (`max_store_queue_bytes`).
    pub store_waits: AtomicU64,
}

/// The listener's counters as `/mqttz` shows them (under `listener`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ListenerSnapshot {
    /// Connections open now.
    pub connections: u64,
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Sessions held now (connected or offline).
    pub sessions: u64,
    /// Persistent sessions on file.
    pub stored_sessions: u64,
    /// Messages queued in the sessions on file (synced).
    pub stored_queued: u64,
    /// Retained messages on file.
    pub retained: u64,
    /// Retained messages refused (limits).
    pub retained_refused: u64,
    /// PUBLISH packets from devices.
    pub in_msgs: u64,
    /// Their payload bytes.
    pub in_bytes: u64,
    /// Refused logins.
    pub auth_failures: u64,
    /// Deliveries dropped (a full inbox or session queue, or expired).
    pub dropped: u64,
    /// Times a session waited for room in the store thread's queue (its device not read
    /// meanwhile): `max_store_queue_bytes` reached.
    pub store_waits: u64,
}

/// What every session task shares.
struct Shared {
    cfg: Arc<SessionConfig>,
    lcfg: MqttListenerConfig,
    router: Arc<Router>,
    login: Arc<dyn Login>,
    registry: Registry,
    /// The open connections, for `/connz`.
    conns: conns::Conns,
    store: persist::StoreTx,
    stats: Arc<Stats>,
    tls: Option<TlsAcceptor>,
    next_cid: Arc<dyn Fn() -> u64 + Send + Sync>,
}

/// The running listener, for the app (monitoring, shutdown).
pub struct Listener {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// A socket could not be used.
    #[error("MQTT listener: {0}")]
    Io(#[from] std::io::Error),
    /// The store could not be read.
    #[error("MQTT listener: cannot load session {0:?} from the store: {1}")]
    Load(String, String),
}

/// The session limits of a `[mqtt_listener]`.
pub fn session_config(c: &MqttListenerConfig) -> SessionConfig {
    SessionConfig {
        max_packet_size: u32::try_from(c.max_packet_size).unwrap_or(u32::MAX),
        receive_maximum: c.receive_maximum,
        max_inflight: c.max_inflight,
        max_queued_bytes: c.max_queued_bytes,
        max_queued_messages: c.max_queued_messages,
        // What the session writes before the socket takes it: enough for a burst of
        // deliveries, small against the per-session budget.
        max_write_buffer: (c.max_queued_bytes / 4).clamp(16 * 1024, 256 * 1024),
        topic_alias_maximum: c.topic_alias_maximum,
        max_client_id_len: c.max_client_id_len,
        max_keep_alive: u16::try_from(c.max_keep_alive.as_secs()).unwrap_or(u16::MAX),
        max_session_expiry: u32::try_from(c.max_session_expiry.as_secs()).unwrap_or(u32::MAX - 1),
        max_subscriptions: c.max_subscriptions,
        retain_available: c.retain_available,
        max_qos: QoS::from_bits(c.max_qos).unwrap_or(QoS::ExactlyOnce),
        connect_timeout: c.connect_timeout,
    }
}

/// Starts the listener: the store thread, every stored session (offline, subscribed again),
/// and the accept loop on `ex`. Logs `Listening for MQTT clients on mqtt://HOST:PORT` per
/// socket, as nats-server does (`tls://` with TLS).
pub fn start<F: Flush + Send + 'static>(
    setup: Setup<F>,
    ex: &Arc<async_executor::Executor<'static>>,
) -> Result<Arc<Listener>, ListenerError> {
    let Setup {
        config,
        listeners,
        tls,
        login,
        mut store,
        router,
        next_cid,
    } = setup;
    let now = Instant::now();
    let mut restored: Vec<SessionState> = Vec::new();
    for id in store.sessions() {
        match store.load_session(&id, now) {
            Ok(Some(st)) => restored.push(st),
            Ok(None) => {}
            Err(e) => return Err(ListenerError::Load(id, format!("{e:?}"))),
        }
    }
    let stats = Arc::new(Stats::default());
    let store_tx = persist::spawn(store, stats.clone(), config.max_store_queue_bytes)?;
    let shared = Arc::new(Shared {
        cfg: Arc::new(session_config(&config)),
        lcfg: config,
        router,
        login,
        registry: Registry::default(),
        conns: conns::Conns::default(),
        store: store_tx,
        stats,
        tls: tls.map(TlsAcceptor::from),
        next_cid,
    });
    if !restored.is_empty() {
        tracing::info!("MQTT: {} stored sessions restored", restored.len());
    }
    for st in restored {
        if let Some(t) = task::Task::restored(&shared, st, now) {
            ex.spawn(Box::new(t).run()).detach();
        }
    }
    let mut addrs = Vec::new();
    let mut sockets = Vec::new();
    for l in listeners {
        addrs.push(l.local_addr()?);
        sockets.push(Async::new(l)?);
    }
    let scheme = if shared.tls.is_some() { "tls" } else { "mqtt" };
    for a in &addrs {
        let shown = match &shared.lcfg.host {
            Some(h) if h.contains(':') && !h.starts_with('[') => format!("[{h}]:{}", a.port()),
            Some(h) => format!("{h}:{}", a.port()),
            None => a.to_string(),
        };
        tracing::info!("Listening for MQTT clients on {scheme}://{shown}");
    }
    let listener = Arc::new(Listener {
        shared: shared.clone(),
        addrs,
    });
    if replies::start(&shared.router, ex, shared.lcfg.max_queued_bytes).is_none() {
        tracing::warn!("MQTT: cannot subscribe $MQTT.rsp.>: MQTT 5 requests get no answers");
    }
    ex.spawn(accept_loop(shared, sockets, ex.clone())).detach();
    Ok(listener)
}

impl Listener {
    /// The bound addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Sessions held now (connected or offline).
    pub fn sessions(&self) -> usize {
        self.shared.registry.len()
    }

    /// The counters, for monitoring.
    pub fn snapshot(&self) -> ListenerSnapshot {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.shared.stats;
        ListenerSnapshot {
            connections: s.connections.load(Relaxed) as u64,
            total_connections: s.total_connections.load(Relaxed),
            sessions: self.sessions() as u64,
            stored_sessions: s.stored_sessions.load(Relaxed),
            stored_queued: s.stored_queued.load(Relaxed),
            retained: s.retained.load(Relaxed),
            retained_refused: s.retained_refused.load(Relaxed),
            in_msgs: s.in_msgs.load(Relaxed),
            in_bytes: s.in_bytes.load(Relaxed),
            auth_failures: s.auth_failures.load(Relaxed),
            dropped: s.dropped.load(Relaxed),
            store_waits: s.store_waits.load(Relaxed),
        }
    }

    /// The open connections with a logged-in session (`/connz`).
    pub fn connections(&self) -> Vec<MqttConn> {
        self.shared.conns.snapshot()
    }

    /// Tells every session (connected or kept offline) that users or permissions changed:
    /// each asks its [`login::LoggedIn::permissions`] again (see [`Input::Recheck`]).
    ///
    /// [`Input::Recheck`]: crate::server::Input::Recheck
    pub fn recheck(&self) {
        for inbox in self.shared.registry.all() {
            inbox.push_control(inbox::Control::Recheck);
        }
    }

    /// Tells every session the server is stopping (MQTT 5 clients get DISCONNECT 0x8B).
    pub fn shutdown(&self) {
        for inbox in self.shared.registry.all() {
            inbox.push_control(inbox::Control::Shutdown);
        }
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    sockets: Vec<Async<TcpListener>>,
    ex: Arc<async_executor::Executor<'static>>,
) {
    loop {
        match accept_any(&sockets).await {
            Ok((stream, peer)) => {
                let _ = stream.get_ref().set_nodelay(true);
                let sh = shared.clone();
                ex.spawn(async move {
                    // Boxed: the TLS handshake's future is large and over once the session
                    // runs; inline it would stay part of every session's task.
                    // The task goes to the heap at once (no `Task` by value held across the
                    // await below).
                    let accepted = Box::pin(task::Task::accepted(&sh, stream, peer)).await;
                    let Some(run) = accepted.map(|t| Box::new(t).run()) else {
                        return;
                    };
                    run.await;
                })
                .detach();
            }
            Err(e) => {
                tracing::error!("Error accepting MQTT connection: {e}");
                async_io::Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The next connection on any of the sockets.
async fn accept_any(
    listeners: &[Async<TcpListener>],
) -> std::io::Result<(Async<TcpStream>, SocketAddr)> {
    // Accepting is cancel-safe (a readiness wait, then a non-blocking accept).
    let mut accepts: Vec<_> = listeners.iter().map(|l| Box::pin(l.accept())).collect();
    futures_lite::future::poll_fn(|cx| {
        for a in &mut accepts {
            if let std::task::Poll::Ready(r) = a.as_mut().poll(cx) {
                return std::task::Poll::Ready(r);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
