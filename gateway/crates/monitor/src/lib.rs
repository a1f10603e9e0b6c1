//! Layer 3, component `twig-monitor`: monitoring over HTTP, shaped like nats-server's so its tooling
//! reads twig too: `/varz`, `/connz`, `/leafz`, `/healthz`, `/jsz`, `/mqttz` (the MQTT
//! bridge), and `/metrics` in the Prometheus text format. It uses `router` (the counters),
//! `config` and `util`, never another component: the app answers [`MonitorSource`] from the
//! snapshots the components expose.
//!
//! - [`varz`], [`connz`]: the bodies (serde, nats-server's field names and value formats).
//! - [`metrics`]: Prometheus text rendered from [`Varz`].
//! - [`http`]: request head in, response out, as pure functions.
//! - [`serve`]: the accept loop on async-io. One request per connection, then close. The
//!   loop bounds everything a client could grow: request size, time per connection, and how
//!   many connections are served at once (one more is answered `503` and closed at once, so
//!   a flood of idle connections neither grows memory nor stalls in the listen backlog).
//!
//! The server's state is reached only through [`MonitorSource`], which the app implements.
use std::future::Future;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

pub mod connz;
pub mod http;
pub mod leafz;
pub mod metrics;
pub mod varz;

pub use connz::{ConnInfo, ConnState, Connz, ConnzQuery, SortBy, SubDetail, SubsDetail};
pub use leafz::{LeafInfo, Leafz, RemoteInfo};
pub use varz::{Healthz, PROTO, Varz, format_rfc3339, format_uptime, resident_memory};

/// What the monitor asks the server. Called on the monitor's task: keep each call short
/// (snapshot and return) and never block on the network.
pub trait MonitorSource: Send + Sync {
    /// The `/varz` snapshot.
    fn varz(&self) -> Varz;
    /// The `/connz` page for `query` (see [`Connz::build`] for the paging part).
    fn connz(&self, query: &ConnzQuery) -> Connz;
    /// The `/healthz` answer.
    fn healthz(&self) -> Healthz;
    /// The `/leafz` answer; `subs` lists the hub's interest per connection.
    fn leafz(&self, subs: bool) -> Leafz;
    /// `/healthz?leafnodes=true`: unhealthy while a configured uplink is down.
    fn healthz_leafnodes(&self) -> Healthz {
        self.healthz()
    }
    /// The `/jsz` answer (twig's streams and sync consumers; the app composes it from their
    /// snapshots). An empty object by default.
    fn jsz(&self) -> http::Response {
        http::Response::json(&serde_json::Map::new())
    }
    /// The `/mqttz` answer (the MQTT bridge's snapshot). An empty object by default.
    fn mqttz(&self) -> http::Response {
        http::Response::json(&serde_json::Map::new())
    }
    /// The MQTT listener's counters for `/metrics` (none without a listener).
    fn mqtt_listener(&self) -> Option<metrics::MqttListener> {
        None
    }
}

/// Limits of the monitoring server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// Largest request head accepted; bigger ones get 431 (default 8 KiB).
    pub max_request_bytes: usize,
    /// Connections served at once (default 256); more are answered 503 and closed.
    pub max_connections: usize,
    /// Time allowed per connection, from accept to close (default 5 s).
    pub timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_request_bytes: 8 * 1024,
            max_connections: 256,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Serves monitoring requests on `listener` forever, with [`ServeOptions::default`].
pub fn serve(
    listener: Async<TcpListener>,
    source: Arc<dyn MonitorSource>,
) -> impl Future<Output = ()> + Send {
    serve_with(listener, source, ServeOptions::default())
}

type ConnFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serves monitoring requests on `listener` forever, within `options`.
///
/// Connections are driven inside this one future rather than spawned, so it runs on any
/// executor and needs none passed in.
pub fn serve_with(
    listener: Async<TcpListener>,
    source: Arc<dyn MonitorSource>,
    options: ServeOptions,
) -> impl Future<Output = ()> + Send {
    let mut conns: Vec<ConnFuture> = Vec::new();
    let mut busy: Vec<ConnFuture> = Vec::new();
    // After an accept error (say, out of file descriptors) wait before trying again rather
    // than spin on a listener that stays readable.
    let mut backoff: Option<Timer> = None;
    future::poll_fn(move |cx| {
        conns.retain_mut(|c| c.as_mut().poll(cx).is_pending());
        busy.retain_mut(|c| c.as_mut().poll(cx).is_pending());
        if let Some(timer) = backoff.as_mut() {
            if Pin::new(timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            backoff = None;
        }
        loop {
            if listener.poll_readable(cx).is_pending() {
                break;
            }
            match listener.get_ref().accept() {
                Ok((stream, _)) if conns.len() >= options.max_connections.max(1) => {
                    // Answered 503 by a small future of its own (no request buffer), at most
                    // as many as are served; past that the connection is just closed.
                    if busy.len() >= options.max_connections.max(1) {
                        continue;
                    }
                    let Ok(stream) = Async::new(stream) else {
                        continue;
                    };
                    let mut conn: ConnFuture = Box::pin(refuse(stream, options.timeout));
                    if conn.as_mut().poll(cx).is_pending() {
                        busy.push(conn);
                    }
                }
                Ok((stream, _)) => {
                    let Ok(stream) = Async::new(stream) else {
                        continue;
                    };
                    let mut conn: ConnFuture =
                        Box::pin(serve_conn(stream, source.clone(), options));
                    if conn.as_mut().poll(cx).is_pending() {
                        conns.push(conn);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!("monitoring: accept failed: {e}");
                    let mut timer = Timer::after(Duration::from_millis(100));
                    // Registers the waker, so the loop resumes when the timer fires.
                    if Pin::new(&mut timer).poll(cx).is_pending() {
                        backoff = Some(timer);
                        break;
                    }
                }
            }
        }
        Poll::Pending
    })
}

/// One connection: read a request head, answer, close; all within `options.timeout`.
async fn serve_conn(
    mut stream: Async<TcpStream>,
    source: Arc<dyn MonitorSource>,
    options: ServeOptions,
) {
    let work = async {
        let response = match read_head(&mut stream, options.max_request_bytes).await {
            Ok(Some(head)) => http::respond(&*source, &head),
            Ok(None) => http::too_large(),
            Err(_) => return,
        };
        answer(&mut stream, &response).await;
    };
    future::or(work, async {
        Timer::after(options.timeout).await;
    })
    .await;
}

/// A connection over the limit: `503` at once, without reading the request.
async fn refuse(mut stream: Async<TcpStream>, timeout: Duration) {
    future::or(answer(&mut stream, &http::busy()), async {
        Timer::after(timeout).await;
    })
    .await;
}

/// Writes `response` and closes the connection.
async fn answer(stream: &mut Async<TcpStream>, response: &http::Response) {
    if stream.write_all(&response.to_bytes()).await.is_err() {
        return;
    }
    let _ = stream.flush().await;
    let _ = stream.get_ref().shutdown(Shutdown::Write);
    // Closing with unread input would reset the connection and could cut the response
    // short at the client; read until the client hangs up (or the timeout ends it).
    let mut sink = [0u8; 512];
    while matches!(stream.read(&mut sink).await, Ok(1..)) {}
}

/// Reads until the blank line ending the request head. `Ok(None)` when it does not come
/// within `max` bytes.
async fn read_head(stream: &mut Async<TcpStream>, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        match http::head_end(&buf) {
            Some(end) if end <= max => {
                buf.truncate(end);
                return Ok(Some(buf));
            }
            Some(_) => return Ok(None),
            None if buf.len() > max => return Ok(None),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests;
