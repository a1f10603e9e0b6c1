//! Which sockets the client port listens on, as nats-server (Go's `net.Listen`) picks them:
//!
//! | host | listens on | INFO `host`, log |
//! |---|---|---|
//! | none (twig's default) | `127.0.0.1` and `[::1]`, same port | `127.0.0.1` |
//! | `0.0.0.0` or `::` | `[::]` dual-stack (IPv4 too), else `0.0.0.0` without IPv6 | as written |
//! | an address | that address | as written |
//! | a name (`localhost`) | its first IPv4 address, else its first address | as written |
//!
//! The default stays loopback-only (safe), but on both families, so `nats://[::1]:4222` and
//! `nats://localhost:4222` work whichever family a client's resolver prefers. nats-server's
//! own default, `0.0.0.0`, opens every interface; twig never does that unless asked.
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Socket, Type};

/// What INFO and the log call the listen host when none is configured.
pub use twig_config::DEFAULT_HOST;

/// How many times a random port is tried when the second loopback family has it taken.
const RANDOM_PORT_TRIES: usize = 8;

/// Bound client listeners: one, or two for the default (both loopback families).
#[derive(Debug)]
pub struct Bound {
    /// The listeners, IPv4 loopback first for the default.
    pub listeners: Vec<TcpListener>,
    /// The port they share.
    pub port: u16,
}

/// Binds the client port for `host` (`None` = both loopbacks) and `port` (0 = random), each
/// listener queueing up to `backlog` connections not yet accepted.
pub fn bind(host: Option<&str>, port: u16, backlog: u32) -> io::Result<Bound> {
    let Some(host) = host else {
        return bind_loopbacks(port, backlog);
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => resolve(host, port)?,
    };
    let listener = if ip.is_unspecified() {
        // Go listens on `[::]` with IPV6_V6ONLY off for either wildcard: IPv4 clients
        // arrive as mapped addresses. Without IPv6 in the kernel, `0.0.0.0` still works.
        match listen(
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            false,
            backlog,
        ) {
            Ok(l) => l,
            Err(e) if ip.is_ipv4() && no_ipv6(&e) => listen(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                true,
                backlog,
            )?,
            Err(e) => return Err(e),
        }
    } else {
        listen(SocketAddr::new(ip, port), true, backlog)?
    };
    let port = listener.local_addr()?.port();
    Ok(Bound {
        listeners: vec![listener],
        port,
    })
}

/// `127.0.0.1:port` and `[::1]:port`; a random port is one both families have free.
fn bind_loopbacks(port: u16, backlog: u32) -> io::Result<Bound> {
    let mut tries = 0;
    loop {
        tries += 1;
        let v4 = listen(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            true,
            backlog,
        )?;
        let chosen = v4.local_addr()?.port();
        match listen(
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), chosen),
            true,
            backlog,
        ) {
            Ok(v6) => {
                return Ok(Bound {
                    listeners: vec![v4, v6],
                    port: chosen,
                });
            }
            Err(e) if no_ipv6(&e) => {
                tracing::warn!("IPv6 loopback unavailable ({e}): listening on 127.0.0.1 only");
                return Ok(Bound {
                    listeners: vec![v4],
                    port: chosen,
                });
            }
            // The OS gave IPv4 a port something holds on [::1]: pick another.
            Err(e)
                if port == 0
                    && e.kind() == io::ErrorKind::AddrInUse
                    && tries < RANDOM_PORT_TRIES => {}
            Err(e) => return Err(e),
        }
    }
}

/// The address Go's `net.Listen` would take for a name: the first IPv4 one, else the first.
fn resolve(host: &str, port: u16) -> io::Result<IpAddr> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .map(SocketAddr::ip)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for this name"))
}

/// A listening socket with `SO_REUSEADDR` (as Go and the standard library set it);
/// `v6_only` keeps an IPv6 socket off IPv4. The kernel caps `backlog` at somaxconn.
fn listen(addr: SocketAddr, v6_only: bool, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6_only)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    // Go's backlog on Linux is the kernel's somaxconn (4096 by default since 5.4); the
    // standard library's 128 lost SYNs in a connect storm (clients retried after 1 s).
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Whether `e` says this machine has no IPv6 (module off, or no `::1` configured).
fn no_ipv6(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable
        || e.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family_count(b: &Bound) -> (usize, usize) {
        let v4 = b
            .listeners
            .iter()
            .filter(|l| l.local_addr().unwrap().is_ipv4())
            .count();
        (v4, b.listeners.len() - v4)
    }

    #[test]
    fn the_default_is_both_loopbacks_on_one_port() {
        let b = bind(None, 0, 4096).unwrap();
        assert_ne!(b.port, 0);
        for l in &b.listeners {
            assert_eq!(l.local_addr().unwrap().port(), b.port);
            assert!(l.local_addr().unwrap().ip().is_loopback());
        }
        // IPv6 may be missing on a build machine; IPv4 never is.
        assert_eq!(family_count(&b).0, 1);
        if b.listeners.len() == 2 {
            std::net::TcpStream::connect(("::1", b.port)).unwrap();
        }
        std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    }

    #[test]
    fn wildcards_take_both_families_as_go_does() {
        for host in ["0.0.0.0", "::", "[::]"] {
            let b = bind(Some(host), 0, 4096).unwrap();
            assert_eq!(b.listeners.len(), 1);
            std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
            if b.listeners[0].local_addr().unwrap().is_ipv6() {
                std::net::TcpStream::connect(("::1", b.port)).unwrap();
            }
        }
    }

    #[test]
    fn a_name_takes_its_first_ipv4_address() {
        let b = bind(Some("localhost"), 0, 4096).unwrap();
        assert_eq!(family_count(&b), (1, 0));
        let b = bind(Some("127.0.0.1"), 0, 4096).unwrap();
        assert_eq!(family_count(&b), (1, 0));
        assert!(bind(Some("no-such-host.invalid"), 0, 4096).is_err());
    }

    /// Connections to `port` that finish their handshake within `wait`, out of `tries`
    /// (nobody accepts them: only the kernel's queue holds them).
    fn handshakes(port: u16, tries: usize, wait: std::time::Duration) -> usize {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let held: Vec<_> = (0..tries)
            .filter_map(|_| std::net::TcpStream::connect_timeout(&addr, wait).ok())
            .collect();
        held.len()
    }

    #[test]
    fn the_backlog_is_the_queue_the_kernel_keeps() {
        // A full accept queue drops SYNs; the client would retry only after a second, so a
        // shorter wait counts the queue's depth (Linux holds backlog + 1).
        let wait = std::time::Duration::from_millis(250);
        let shallow = bind(Some("127.0.0.1"), 0, 2).unwrap();
        let got = handshakes(shallow.port, 8, wait);
        assert!(got <= 4, "backlog 2 held {got} connections");
        let deep = bind(Some("127.0.0.1"), 0, 64).unwrap();
        assert_eq!(handshakes(deep.port, 8, wait), 8);
    }
}
