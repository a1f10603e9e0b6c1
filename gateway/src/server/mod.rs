//! The NATS server for local clients: bind, accept, one task set per connection.
//!
//! Threads: an `async_executor::Executor` run by one thread per core (plus the caller's);
//! every connection is three tasks on it (reader, writer, timers). Nothing blocks a thread
//! but the short locks documented beside each type.

pub mod client;
pub mod conn;
pub mod internal;
pub mod monitoring;
pub mod outbound;
pub mod router;
pub mod session;
pub mod state;
pub mod tls;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use async_io::Async;

use crate::auth::Authenticator;
use crate::config::Config;
use state::Shared;

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
    /// A stream could not be opened.
    #[error(transparent)]
    Stream(#[from] crate::stream::StreamError),
}

/// A bound server, not yet accepting.
pub struct Server {
    listener: Async<TcpListener>,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the client port (port -1 picks a free one) and prepares the shared state.
    pub fn bind(config: Config) -> Result<Server, StartError> {
        let port = config.port.bind_port();
        let addr = format!("{}:{}", config.host, port);
        let bind_err = |source| StartError::Bind {
            addr: addr.clone(),
            source,
        };
        let std_listener = TcpListener::bind(&addr).map_err(bind_err)?;
        let listener = Async::new(std_listener).map_err(bind_err)?;
        let port = listener.get_ref().local_addr().map_err(bind_err)?.port();
        let tls = match &config.tls {
            Some(t) => Some(futures_rustls::TlsAcceptor::from(
                tls::server_config(t).map_err(|e| StartError::Tls(e.to_string()))?,
            )),
            None => None,
        };
        if let Some(missing) = crate::auth::not_wired_yet(&config) {
            return Err(StartError::Auth(missing));
        }
        let auth = Authenticator::from_config(&config.authorization)
            .map_err(|e| StartError::Auth(e.to_string()))?;
        let shared = Arc::new(Shared::new(config, port, auth, tls));
        if !shared.config.streams.is_empty() {
            let streams = crate::stream::Streams::start(&shared)?;
            // Set before the first accept: no session can have looked yet.
            let _ = shared.streams.set(streams);
        }
        Ok(Server { listener, shared })
    }

    /// The shared state (for monitoring).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .get_ref()
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], self.shared.port)))
    }

    /// Accepts connections on `ex` until `shutdown` completes, then closes every client.
    pub async fn run(
        self,
        ex: Arc<async_executor::Executor<'static>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let addr = self.local_addr();
        tracing::info!("Listening for client connections on {addr}");
        tracing::info!("Server is ready");
        let accept = async {
            loop {
                match self.listener.accept().await {
                    Ok((stream, peer)) => self.spawn_client(&ex, stream, peer),
                    Err(e) => {
                        // Out of file descriptors and the like: log, back off, go on.
                        tracing::error!("Error accepting client connection: {e}");
                        async_io::Timer::after(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        };
        futures_lite::future::or(accept, shutdown).await;
        tracing::info!("Initiating Shutdown...");
        let clients: Vec<_> = crate::util::lock::lock(&self.shared.clients)
            .values()
            .cloned()
            .collect();
        for c in clients {
            c.out.close(outbound::CloseReason::ServerShutdown);
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
