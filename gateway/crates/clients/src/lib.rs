//! Layer 3, component `twig-clients`: the local client connections (accept loop, per-connection
//! reader, writer and timers, the protocol session, auth, TLS on the client port, lame duck
//! mode). It uses `router`, `config`, `perms`, `util` and twig-core, never another component:
//! messages go to the router, which delivers them wherever they may go.
//!
//! The NATS server for local clients: bind, accept, one task set per connection.
//!
//! Threads: an `async_executor::Executor` run by one thread per core (plus the caller's);
//! every connection is three tasks on it (reader, writer, timers). Nothing blocks a thread
//! but the short locks documented beside each type: a bcrypt login check runs on a blocking
//! thread (`blocking::unblock`, at most `authorization.max_bcrypt_checks` at once) while its
//! connection's reader waits for the verdict.

pub mod auth;
pub mod conn;
pub mod lame_duck;
pub mod listen;
pub mod reauth;
pub mod session;
pub mod state;
pub mod tls;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use async_io::Async;

use crate::auth::Authenticator;
use state::Shared;
use twig_config::Config;
use twig_router::Router;
use twig_util::id::Identity;

/// Why the server could not start: one clear sentence each.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The client port could not be bound.
    #[error("cannot listen for client connections on {addr}: {source}")]
    Bind {
        /// What was asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The authorization configuration is unusable.
    #[error("authorization configuration: {0}")]
    Auth(String),
    /// The TLS configuration is unusable.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// A bound server, not yet accepting.
pub struct Server {
    /// One listener, or two for the default host (both loopback families).
    listeners: Vec<Async<TcpListener>>,
    shared: Arc<Shared>,
}

/// What the app asks of a running server (from signals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Close every client now and return (SIGINT; SIGTERM unless in lame duck mode).
    Stop,
    /// Lame duck mode (SIGUSR2): stop accepting, tell clients, close them over
    /// `lame_duck_duration`, then return ([`lame_duck`]).
    LameDuck,
}

impl Server {
    /// Binds the client port (port -1 picks a free one) and prepares the shared state; the
    /// connections publish and subscribe through `router`.
    pub fn bind(
        config: Arc<Config>,
        router: Arc<Router>,
        identity: Identity,
    ) -> Result<Server, StartError> {
        let port = config.port.bind_port();
        let addr = display_addr(config.listen_host(), port);
        let bind_err = |source| StartError::Bind {
            addr: addr.clone(),
            source,
        };
        let bound =
            listen::bind(config.host.as_deref(), port, config.listen_backlog).map_err(bind_err)?;
        let port = bound.port;
        let listeners = bound
            .listeners
            .into_iter()
            .map(Async::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bind_err)?;
        let tls = match &config.tls {
            Some(t) => {
                Some(tls::ClientTls::from_config(t).map_err(|e| StartError::Tls(e.to_string()))?)
            }
            None => None,
        };
        let auth =
            Authenticator::for_config(&config).map_err(|e| StartError::Auth(e.to_string()))?;
        let shared = Arc::new(Shared::new(config, identity, router, port, auth, tls));
        Ok(Server { listeners, shared })
    }

    /// The shared state (for monitoring: the app reads its connections).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The address clients connect to (the first listener's).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners
            .first()
            .and_then(|l| l.get_ref().local_addr().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], self.shared.port)))
    }

    /// Accepts connections on `ex` until `control` says to stop (or, in lame duck mode,
    /// until the last client is closed), then closes every client.
    pub async fn run(
        self,
        ex: Arc<async_executor::Executor<'static>>,
        control: async_channel::Receiver<Control>,
    ) {
        // As nats-server: the configured host as written; the default names both loopbacks.
        for l in &self.listeners {
            let shown = match &self.shared.config.host {
                Some(h) => display_addr(h, self.shared.port),
                None => l.get_ref().local_addr().map_or_else(
                    |_| display_addr(listen::DEFAULT_HOST, self.shared.port),
                    |a| a.to_string(),
                ),
            };
            tracing::info!("Listening for client connections on {shown}");
        }
        tracing::info!("Server is ready");
        let accept = async {
            loop {
                match accept_any(&self.listeners).await {
                    Ok((stream, peer)) => self.spawn_client(&ex, stream, unmapped(peer)),
                    Err(e) => {
                        // Out of file descriptors and the like: log, back off, go on.
                        tracing::error!("Error accepting client connection: {e}");
                        async_io::Timer::after(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        };
        let asked = futures_lite::future::or(accept, async { control.recv().await.ok() }).await;
        let Server { listeners, shared } = self;
        if asked == Some(Control::LameDuck) {
            // Stop accepting first: no client may arrive after the others were told.
            drop(listeners);
            lame_duck::run(&shared, &control).await;
        }
        tracing::info!("Initiating Shutdown...");
        let clients: Vec<_> = twig_util::lock::lock(&shared.clients)
            .values()
            .cloned()
            .collect();
        for c in clients {
            c.out
                .close(twig_router::outbound::CloseReason::ServerShutdown);
        }
        tracing::info!("Server Exiting..");
    }

    fn spawn_client(
        &self,
        ex: &Arc<async_executor::Executor<'static>>,
        stream: Async<TcpStream>,
        peer: SocketAddr,
    ) {
        // Small messages must not wait for Nagle.
        let _ = stream.get_ref().set_nodelay(true);
        ex.spawn(conn::serve(self.shared.clone(), ex.clone(), stream, peer))
            .detach();
    }
}

/// `host:port` as nats-server writes it (`net.JoinHostPort`: brackets around IPv6).
fn display_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An IPv4 client on a dual-stack listener arrives as `::ffff:a.b.c.d`; INFO `client_ip` and
/// `/connz` show `a.b.c.d`, as nats-server does.
fn unmapped(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => peer,
        },
        v4 => v4,
    }
}

/// The next connection on any of the listeners.
async fn accept_any(
    listeners: &[Async<TcpListener>],
) -> std::io::Result<(Async<TcpStream>, SocketAddr)> {
    // Accepting is cancel-safe (a readiness wait, then a non-blocking accept), so the
    // futures that lose the race are simply dropped.
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
