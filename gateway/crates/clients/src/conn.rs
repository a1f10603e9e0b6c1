//! One client connection's I/O: send INFO, upgrade to TLS if configured, then a reader loop
//! (this task) feeding parsed ops to the [`Session`], a writer task draining the outbound
//! buffer, and a timer task for the auth timeout and keepalive PINGs.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncWriteExt, FutureExt};
use twig_core::wire::{Limits, Mode, Parser};

use super::session::{Flow, Session};
use super::state::Shared;
use crate::auth::CertIdentity;
use crate::tls::ClientTls;
use twig_router::client::ClientShared;
use twig_router::outbound::CloseReason;
use twig_util::dial::{self, ArcIo};
use twig_util::lock::lock;
use twig_util::readbuf::ReadBuf;
use twig_util::stall::{STALL_MAX, wait_until_drained};

type Reader = dial::Reader;
type Writer = dial::Writer;

/// The read buffer starts here and grows (up to one whole op) only for large messages. It is
/// allocated only while the connection has bytes to read (see `read_loop`).
const READ_BUF: usize = 32 * 1024;

/// Serves one accepted TCP connection until it closes.
pub async fn serve(
    shared: Arc<Shared>,
    ex: Arc<async_executor::Executor<'static>>,
    stream: Async<TcpStream>,
    addr: SocketAddr,
) {
    let cid = shared.next_cid();
    shared
        .router
        .stats
        .total_connections
        .fetch_add(1, Ordering::Relaxed);
    let client = Arc::new(ClientShared::new(cid, addr, shared.config.max_pending));
    // The authenticator in force when INFO goes out decides what INFO says; the CONNECT is
    // checked against the one in force when it arrives (a reload may come in between).
    let auth = shared.auth();
    let auth_required = auth.auth_required();
    let nonce = if auth.needs_nonce() {
        match crate::auth::Authenticator::new_nonce() {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::error!("cid:{cid} - cannot make a nonce: {e}");
                return;
            }
        }
    } else {
        None
    };
    // Likewise the TLS in force now: INFO announces it and this connection keeps it, whatever
    // a reload puts in force meanwhile.
    let tls = shared.tls();
    let stream = Arc::new(stream);

    // INFO always goes out in the clear; a TLS client upgrades after reading it. Dropped
    // once written: a local of this future would be kept for the connection's whole life.
    let info = shared.info_line(&client, nonce.as_deref(), tls.as_ref());
    let sent = (&*stream).write_all(info.as_bytes()).await;
    drop(info);
    if sent.is_err() {
        return;
    }
    let too_many = {
        let mut clients = lock(&shared.clients);
        let full = clients.len() >= shared.config.max_connections;
        if !full {
            clients.insert(cid, client.clone());
        }
        full
    };
    if too_many {
        shared
            .router
            .stats
            .refused_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = (&*stream)
            .write_all(b"-ERR 'maximum connections exceeded'\r\n")
            .await;
        return;
    }
    // An address that keeps failing to log in waits for its turn before its CONNECT is read
    // (counted among the connections meanwhile, so waiting costs it a connection slot).
    if auth_required {
        let wait = lock(&shared.login_throttle).reserve(std::time::Instant::now(), addr.ip());
        if !wait.is_zero() {
            tracing::debug!(
                "{}:{} - cid:{} - {} ms before its login is read (earlier failures)",
                addr.ip(),
                addr.port(),
                cid,
                wait.as_millis()
            );
            Timer::after(wait).await;
        }
    }
    tracing::debug!(
        "{}:{} - cid:{} - Client connection created",
        addr.ip(),
        addr.port(),
        cid
    );

    let plain = tls.is_none();
    // Boxed here and below: an await's future is part of this connection's future for its
    // whole life (the largest one sets its size), so rare, large waits (the TLS handshake, a
    // bcrypt login, a stall) are allocated only while they run.
    let (reader, writer, cert) = match Box::pin(split(tls, stream.clone())).await {
        Ok(halves) => halves,
        Err(e) => {
            tracing::error!(
                "{}:{} - cid:{} - TLS handshake error: {e}",
                addr.ip(),
                addr.port(),
                cid
            );
            lock(&shared.clients).remove(&cid);
            return;
        }
    };

    if plain {
        // Plain TCP: other readers may write this client's bytes inline.
        let _ = client.direct.set(stream.clone());
    }
    let mut session = Session::new(shared.clone(), client.clone(), nonce, auth_required, cert);
    let writer_task = ex.spawn(write_loop(
        shared.clone(),
        client.clone(),
        writer,
        stream.clone(),
    ));
    let timer_task = ex.spawn(timers(
        shared.clone(),
        client.clone(),
        session.authed.clone(),
        session.pings_out.clone(),
        auth_required,
    ));

    let idle_wait = plain.then(|| stream.clone());
    let reason = read_loop(&shared, &client, &mut session, reader, idle_wait).await;
    client.out.close(reason);
    timer_task.cancel().await;
    writer_task.await;
    let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);

    // Drop the connection's interest and its registration.
    let subs: Vec<_> = lock(&client.subs).drain().map(|(_, s)| s).collect();
    for s in &subs {
        shared.router.remove(s);
    }
    lock(&shared.clients).remove(&cid);
    shared.forget_login(cid);
    let reason = client.out.closed().unwrap_or(reason);
    tracing::debug!(
        "{}:{} - cid:{} - Client connection closed: {}",
        addr.ip(),
        addr.port(),
        cid,
        reason.as_str()
    );
}

/// Splits the connection into read and write halves, through TLS when configured; with
/// `verify_and_map`, also what the client's (verified) certificate can name it by.
async fn split(
    tls: Option<ClientTls>,
    stream: Arc<Async<TcpStream>>,
) -> std::io::Result<(Reader, Writer, Option<CertIdentity>)> {
    match tls {
        None => {
            let (r, w) = dial::plain(stream);
            Ok((r, w, None))
        }
        Some(ClientTls {
            acceptor,
            map: maps,
            ..
        }) => {
            let tls = acceptor.accept(ArcIo(stream)).await?;
            // A leaf that does not parse names nobody: the login then fails as without one.
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .filter(|_| maps)
                .and_then(|leaf| CertIdentity::from_der(leaf.as_ref()).ok());
            let (r, w) = futures_lite::io::split(tls);
            Ok((Box::pin(r), Box::pin(w), cert))
        }
    }
}

/// Reads, parses and handles ops until the connection ends; returns why. With `idle_wait`
/// (plain TCP) the read buffer is freed whenever everything read was handled and the socket
/// has nothing more: an idle connection then holds no read buffer (32 KiB each was most of
/// an idle connection's memory), and a busy one keeps it from read to read.
async fn read_loop(
    shared: &Shared,
    client: &ClientShared,
    session: &mut Session,
    mut reader: Reader,
    idle_wait: Option<Arc<Async<TcpStream>>>,
) -> CloseReason {
    let limits = Limits {
        max_control_line: shared.config.max_control_line,
        max_payload: shared.config.max_payload,
    };
    let mut parser = Parser::new(Mode::FromClient, limits);
    // Grows only when one op needs more room, up to the largest op the limits allow.
    let mut buf = ReadBuf::new(READ_BUF, limits.max_op_len().max(READ_BUF));
    loop {
        if let Some(reason) = client.out.closed() {
            return reason;
        }
        if buf.make_room().is_err() {
            return CloseReason::ProtocolViolation;
        }
        let mut read = None;
        if let Some(stream) = &idle_wait
            && buf.unparsed() == 0
        {
            // Try once; if the socket has nothing, wait for it without a buffer.
            read = futures_lite::future::poll_once(buf.read_from(&mut reader)).await;
            if read.is_none() && buf.release() {
                if stream.readable().await.is_err() {
                    return CloseReason::ReadError;
                }
                if buf.make_room().is_err() {
                    return CloseReason::ProtocolViolation;
                }
            }
        }
        let read = match read {
            Some(r) => r,
            None => buf.read_from(&mut reader).await,
        };
        match read {
            Ok(0) => return CloseReason::ClientClosed,
            Ok(_) => {}
            Err(_) => return CloseReason::ReadError,
        }
        let flow = loop {
            let mut flow = Flow::Continue;
            while flow == Flow::Continue {
                match buf.next(|b| parser.parse(b)) {
                    Ok(Some(op)) => flow = session.handle(op),
                    Ok(None) => break,
                    Err(e) => {
                        if let Some(text) = e.server_err() {
                            let line = format!("-ERR '{text}'\r\n");
                            client.out.push_bytes(line.as_bytes());
                        }
                        tracing::debug!("cid:{} - protocol error: {e}", client.cid);
                        flow = Flow::Close(match e {
                            twig_core::wire::ParseError::MaxPayload => {
                                CloseReason::MaxPayloadExceeded
                            }
                            _ => CloseReason::ProtocolViolation,
                        });
                    }
                }
            }
            if flow == Flow::Login {
                // A bcrypt login: the check runs on a blocking thread while this reader waits
                // (the executor thread serves others meanwhile); the ops after the CONNECT in
                // the buffer are handled only once it is accepted.
                match Box::pin(session.finish_login()).await {
                    Flow::Continue => continue,
                    other => break other,
                }
            }
            if flow != Flow::Wait {
                break flow;
            }
            // A stream's queue is full: deliver what this batch routed, then wait for room
            // (this publisher only; the executor thread serves others meanwhile) and go on
            // with the ops already in the buffer.
            let _ = session.end_batch();
            if let Some(full) = session.take_full_stream()
                && !full.wait().await
            {
                tracing::error!("a stream's thread has stopped; message not stored");
            }
        };
        let stalled = session.end_batch();
        if let Some(remote) = stalled.remote {
            // A remote is behind: slow this publisher down a little instead of dropping.
            Box::pin(wait_until_drained(remote.drained(), STALL_MAX, || {
                remote.stalled()
            }))
            .await;
        }
        if let Some(slow) = stalled.client {
            // A local subscriber is behind: the same pause, so it is not cut off for being
            // merely slower than its publisher.
            Box::pin(slow.out.wait_drained(STALL_MAX)).await;
        }
        if let Flow::Close(reason) = flow {
            return reason;
        }
    }
}

/// Drains the outbound buffer to the socket until the connection closes, then shuts the
/// socket down so the reader (possibly blocked on a silent peer) ends too.
async fn write_loop(
    shared: Arc<Shared>,
    client: Arc<ClientShared>,
    mut writer: Writer,
    stream: Arc<Async<TcpStream>>,
) {
    let deadline = shared.config.write_deadline;
    let mut spare = Vec::new();
    while client.out.take(&mut spare).await.is_ok() {
        let write = async {
            writer.write_all(&spare).await?;
            writer.flush().await
        };
        let timed_out = async {
            Timer::after(deadline).await;
            Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
        };
        let result = write.or(timed_out).await;
        client.out.written();
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                shared
                    .router
                    .stats
                    .slow_consumers
                    .fetch_add(1, Ordering::Relaxed);
                client.out.close(CloseReason::SlowConsumerWriteDeadline);
                break;
            }
            Err(_) => {
                client.out.close(CloseReason::ReadError);
                break;
            }
        }
        spare.clear();
        // Keep one batch buffer per connection small when idle.
        if spare.capacity() > 256 * 1024 {
            spare = Vec::new();
        }
    }
    // A TLS close_notify could wait on a peer that stopped reading: bound it.
    let _ = async { writer.close().await.is_ok() }
        .or(async {
            Timer::after(Duration::from_secs(1)).await;
            false
        })
        .await;
    let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
}

/// The auth timeout (until CONNECT is accepted, when auth is required) and keepalive PINGs:
/// a client that leaves `ping_max` PINGs unanswered is closed as stale.
async fn timers(
    shared: Arc<Shared>,
    client: Arc<ClientShared>,
    authed: Arc<std::sync::atomic::AtomicBool>,
    pings_out: Arc<std::sync::atomic::AtomicU64>,
    auth_required: bool,
) {
    if auth_required {
        Timer::after(shared.config.effective_auth_timeout()).await;
        if !authed.load(Ordering::Acquire) {
            client.out.push_bytes(b"-ERR 'Authentication Timeout'\r\n");
            client.out.close(CloseReason::AuthenticationTimeout);
            return;
        }
    }
    let interval = shared.config.ping_interval.max(Duration::from_millis(10));
    loop {
        Timer::after(interval).await;
        if pings_out.load(Ordering::Relaxed) >= u64::from(shared.config.ping_max) {
            shared
                .router
                .stats
                .stale_connections
                .fetch_add(1, Ordering::Relaxed);
            client.out.push_bytes(b"-ERR 'Stale Connection'\r\n");
            client.out.close(CloseReason::StaleConnection);
            return;
        }
        pings_out.fetch_add(1, Ordering::Relaxed);
        client.out.push_bytes(b"PING\r\n");
        client.out.wake();
    }
}
