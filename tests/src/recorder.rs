//! A recording TCP proxy on 127.0.0.1: forwards every connection to an upstream address and
//! keeps the bytes each side sent, read by read (so a test can replay them split exactly as
//! they arrived). Used to capture what real nats-servers say to each other.
//!
//! Bounded: at most [`MAX_RECORDED`] bytes are kept per connection and direction (more is
//! still forwarded, and the recording says it was cut). Threads end with their sockets; the
//! accept thread ends when the recorder is dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Bytes kept per connection and direction.
pub const MAX_RECORDED: usize = 64 << 20;

/// What one direction of one connection carried.
#[derive(Debug, Clone, Default)]
pub struct Direction {
    /// Each `read` the proxy did, in order.
    pub reads: Vec<Vec<u8>>,
    /// More than [`MAX_RECORDED`] bytes went through; the rest were not kept.
    pub cut: bool,
}

impl Direction {
    /// All bytes, joined.
    pub fn bytes(&self) -> Vec<u8> {
        self.reads.concat()
    }

    fn push(&mut self, chunk: &[u8]) {
        let have: usize = self.reads.iter().map(Vec::len).sum();
        if have + chunk.len() > MAX_RECORDED {
            self.cut = true;
        } else {
            self.reads.push(chunk.to_vec());
        }
    }
}

/// One proxied connection: `up` is what the connecting side sent, `down` what upstream sent.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Connecting side -> upstream.
    pub up: Direction,
    /// Upstream -> connecting side.
    pub down: Direction,
}

/// The proxy; stops accepting when dropped (open connections run until either side closes).
pub struct Recorder {
    /// The port to connect to instead of upstream.
    pub port: u16,
    conns: Arc<Mutex<Vec<Arc<Mutex<Recording>>>>>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        let port = listener.local_addr().expect("recorder address").port();
        let conns: Arc<Mutex<Vec<Arc<Mutex<Recording>>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (conns.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    // Upstream is down: the client sees a closed connection, as it would.
                    continue;
                };
                let rec = Arc::new(Mutex::new(Recording::default()));
                c.lock().expect("recorder lock").push(rec.clone());
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                pump(&client, &server, rec.clone(), true);
                pump(&server, &client, rec, false);
            }
        });
        Recorder { port, conns, stop }
    }

    /// The connections so far (a snapshot).
    pub fn connections(&self) -> Vec<Recording> {
        self.conns
            .lock()
            .expect("recorder lock")
            .iter()
            .map(|r| r.lock().expect("recording lock").clone())
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` -> `to` on a thread, recording into `rec` (`up` or `down`).
fn pump(from: &TcpStream, to: &TcpStream, rec: Arc<Mutex<Recording>>, up: bool) {
    let (mut from, mut to) = (
        from.try_clone().expect("clone socket"),
        to.try_clone().expect("clone socket"),
    );
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            {
                let mut r = rec.lock().expect("recording lock");
                let dir = if up { &mut r.up } else { &mut r.down };
                dir.push(&buf[..n]);
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}
