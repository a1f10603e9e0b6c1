//! Reaching a server: TCP with a timeout (every resolved address in turn), TLS (rustls, ring)
//! on an open stream (the uplink starts it after the hub's first INFO, which nats-server sends
//! in the clear on its leafnode port), and `'static` read and write halves of either.
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncRead, AsyncWrite, FutureExt};
use futures_rustls::TlsConnector;
use futures_rustls::pki_types::ServerName;
use futures_rustls::rustls::ClientConfig;

/// The read half of a connection.
pub type Reader = Pin<Box<dyn AsyncRead + Send>>;
/// The write half of a connection.
pub type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// Opens a TCP connection to `host:port` within `timeout` (every resolved address in turn),
/// with at most `unsent_limit` bytes left unsent in the kernel (0 = the kernel's default).
pub async fn tcp(
    host: &str,
    port: u16,
    timeout: Duration,
    unsent_limit: usize,
) -> io::Result<Arc<Async<TcpStream>>> {
    let target = (host.to_owned(), port);
    // Name resolution blocks; keep it off the executor threads.
    let addrs: Vec<SocketAddr> =
        smol::unblock(move || target.to_socket_addrs().map(|a| a.collect::<Vec<_>>())).await?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host has no address");
    for addr in addrs {
        let connect = Async::<TcpStream>::connect(addr);
        let timed_out = async {
            Timer::after(timeout).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect timed out after {timeout:?}"),
            ))
        };
        match connect.or(timed_out).await {
            Ok(s) => {
                // Small messages and PONGs must not wait for Nagle.
                let _ = s.get_ref().set_nodelay(true);
                limit_unsent(s.get_ref(), unsent_limit);
                return Ok(Arc::new(s));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Caps the bytes the kernel keeps unsent (`TCP_NOTSENT_LOWAT`): past it, writes wait and the
/// backlog stays in twig's outbound, where urgent lines can overtake it. Best effort: where the
/// option does not exist the kernel's buffer is what it is.
pub fn limit_unsent(stream: &TcpStream, limit: usize) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if limit > 0 {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        if let Err(e) = socket2::SockRef::from(stream).set_tcp_notsent_lowat(limit) {
            tracing::debug!("cannot set TCP_NOTSENT_LOWAT: {e}");
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (stream, limit);
}

/// Runs the TLS handshake over `stream` within `timeout`, verifying the server as
/// `server_name`.
pub async fn tls(
    stream: Arc<Async<TcpStream>>,
    config: Arc<ClientConfig>,
    server_name: &str,
    timeout: Duration,
) -> io::Result<(Reader, Writer)> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let handshake = TlsConnector::from(config).connect(name, ArcIo(stream));
    let timed_out = async {
        Timer::after(timeout).await;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("TLS handshake timed out after {timeout:?}"),
        ))
    };
    let tls = handshake.or(timed_out).await?;
    let (r, w) = futures_lite::io::split(tls);
    Ok((Box::pin(r), Box::pin(w)))
}

/// Plain halves of a TCP stream.
pub fn plain(stream: Arc<Async<TcpStream>>) -> (Reader, Writer) {
    (Box::pin(ArcIo(stream.clone())), Box::pin(ArcIo(stream)))
}

/// `&Async<TcpStream>` reads and writes; this owns the `Arc` so halves can be `'static`.
pub struct ArcIo(pub Arc<Async<TcpStream>>);

impl AsyncRead for ArcIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ArcIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub whose listen queue is full answers no SYN: the connect times out at the
    /// configured time, with a message that says so.
    #[test]
    fn a_connect_that_gets_no_answer_times_out_as_configured() {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        sock.listen(0).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        // Fill the queue (never accepted): later SYNs are dropped.
        let mut held = Vec::new();
        for _ in 0..4 {
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                held.push(s);
            }
        }
        let t = std::time::Instant::now();
        let r = smol::block_on(tcp("127.0.0.1", addr.port(), Duration::from_millis(300), 0));
        let e = r.expect_err("no connection through a full listen queue");
        assert!(
            e.to_string().contains("connect timed out after 300ms"),
            "{e}"
        );
        assert!(t.elapsed() >= Duration::from_millis(300));
        drop(held);
    }
}
