//! A small HTTP CONNECT proxy on 127.0.0.1 for the tests of leafnode remotes behind a proxy:
//! reads `CONNECT host:port HTTP/1.1` and its headers, optionally demands Basic credentials
//! (407 otherwise), tunnels to the target (loopback targets only) with `200 Connection
//! established`, and keeps every request head it saw for the test to look at.
//!
//! Bounded: request heads over 8 KiB are refused with 400; threads end with their sockets;
//! the accept thread ends when the proxy is dropped.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const MAX_HEAD: usize = 8 * 1024;

/// The proxy; stops accepting when dropped.
pub struct ConnectProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    /// Starts a proxy; with `credentials`, only `Proxy-Authorization: Basic` of exactly those
    /// gets a tunnel.
    pub fn start(credentials: Option<(&str, &str)>) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let expect = credentials.map(|(u, p)| {
            format!(
                "Basic {}",
                data_encoding::BASE64.encode(format!("{u}:{p}").as_bytes())
            )
        });
        let (h, s) = (heads.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(client) = client {
                    let (h, expect) = (h.clone(), expect.clone());
                    thread::spawn(move || serve(client, &h, expect.as_deref()));
                }
            }
        });
        ConnectProxy { port, heads, stop }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("proxy lock").clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut client: TcpStream, heads: &Mutex<Vec<String>>, expect: Option<&str>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte up to the blank line, so no tunnel byte is read here by mistake.
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_HEAD || !matches!(client.read(&mut byte), Ok(1)) {
            let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            return;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    heads.lock().expect("proxy lock").push(text.clone());
    let mut lines = text.split("\r\n");
    let target = match lines.next().map(|l| l.split(' ').collect::<Vec<_>>()) {
        Some(parts) if parts.len() == 3 && parts[0] == "CONNECT" => parts[1].to_string(),
        _ => {
            let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
            return;
        }
    };
    if let Some(expect) = expect {
        let auth = lines.find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("Proxy-Authorization")
                .then(|| v.trim().to_string())
        });
        if auth.as_deref() != Some(expect) {
            let _ = client.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"twig-tests\"\r\n\r\n",
            );
            return;
        }
    }
    let upstream = target
        .parse::<SocketAddr>()
        .ok()
        .filter(|a| matches!(a.ip(), IpAddr::V4(ip) if ip.is_loopback()))
        .and_then(|a| TcpStream::connect(a).ok());
    let Some(upstream) = upstream else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    let _ = client.set_read_timeout(None);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut c2, mut u2) = match (client.try_clone(), upstream.try_clone()) {
        (Ok(c), Ok(u)) => (c, u),
        _ => return,
    };
    let mut up = upstream;
    thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut up);
        let _ = up.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut u2, &mut client);
    let _ = client.shutdown(Shutdown::Write);
}
