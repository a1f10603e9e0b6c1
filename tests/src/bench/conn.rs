//! One blocking client connection: handshake, bounded writes, and frames read until a deadline.
//!
//! Every wait is bounded: reads and writes time out every [`TICK`] so that a deadline (or a stop
//! flag set by another thread) is noticed even when the server goes quiet.

use super::scan::{Frame, Scan, scan};
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a blocked read or write wakes up to look at the deadline and the stop flag.
pub const TICK: Duration = Duration::from_millis(100);
/// Initial read buffer; large so that one `read` drains many small messages.
const READ_BUF: usize = 256 * 1024;
/// The buffer grows for a bigger message, up to this (above nats-server's 64 MiB max_payload).
const MAX_BUF: usize = 65 * 1024 * 1024;

/// Why a bench connection failed.
#[derive(Debug)]
pub enum BenchError {
    /// A socket call failed; the string says which step.
    Io(&'static str, io::Error),
    /// The server sent `-ERR`.
    Server(String),
    /// The server sent bytes the scanner does not accept.
    Protocol(&'static str),
    /// The server closed the connection.
    Closed,
    /// The deadline passed during a step that must finish (handshake, barrier).
    Timeout(&'static str),
    /// A helper thread (subscriber, responder) could not get ready; the string says why.
    Setup(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Io(step, e) => write!(f, "{step}: {e}"),
            BenchError::Server(text) => write!(f, "server said -ERR {text}"),
            BenchError::Protocol(why) => write!(f, "protocol error: {why}"),
            BenchError::Closed => write!(f, "server closed the connection"),
            BenchError::Timeout(step) => write!(f, "timed out during {step}"),
            BenchError::Setup(why) => f.write_str(why),
        }
    }
}

/// What [`Conn::next`] returns; `PING` is answered inside and never returned.
#[derive(Debug)]
pub enum Event<'a> {
    /// A delivered message.
    Msg {
        /// Its subject.
        subject: &'a [u8],
        /// Its reply subject, if any.
        reply: Option<&'a [u8]>,
        /// Its body (headers included for `HMSG`).
        payload: &'a [u8],
    },
    /// The answer to a `PING` we sent.
    Pong,
    /// `+OK` or `INFO`: nothing the bench acts on.
    Other,
}

/// A connected, handshaken client.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    stop: Option<Arc<AtomicBool>>,
}

impl Conn {
    /// Connects to `addr`, reads INFO, sends CONNECT (non-verbose, no echo) and waits for the
    /// PONG of a first PING, so the server has fully accepted the client.
    pub fn connect(addr: &str, name: &str, deadline: Instant) -> Result<Conn, BenchError> {
        let sock = addr
            .to_socket_addrs()
            .map_err(|e| BenchError::Io("resolve", e))?
            .next()
            .ok_or(BenchError::Timeout("resolve (no address)"))?;
        let wait = deadline.saturating_duration_since(Instant::now()).max(TICK);
        let stream =
            TcpStream::connect_timeout(&sock, wait).map_err(|e| BenchError::Io("connect", e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::Io("nodelay", e))?;
        stream
            .set_read_timeout(Some(TICK))
            .map_err(|e| BenchError::Io("read timeout", e))?;
        stream
            .set_write_timeout(Some(TICK))
            .map_err(|e| BenchError::Io("write timeout", e))?;
        let mut conn = Conn {
            stream,
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
            stop: None,
        };
        let connect = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"echo\":false,\"protocol\":1,\
             \"lang\":\"rust\",\"version\":\"0.1.0\",\"name\":\"{name}\"}}\r\n"
        );
        conn.send(connect.as_bytes(), deadline)?;
        conn.barrier(deadline)?;
        Ok(conn)
    }

    /// The socket alone (a client that is only held open: its read buffer goes).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Makes reads give up (as if the deadline passed) once `stop` is set.
    pub fn stop_on(&mut self, stop: Arc<AtomicBool>) {
        self.stop = Some(stop);
    }

    /// Sends PING and waits for its PONG: afterwards the server has processed everything this
    /// connection sent before (e.g. a SUB is registered). Messages arriving meanwhile are dropped.
    pub fn barrier(&mut self, deadline: Instant) -> Result<(), BenchError> {
        self.send(b"PING\r\n", deadline)?;
        loop {
            match self.next(deadline)? {
                Some(Event::Pong) => return Ok(()),
                Some(_) => {}
                None => return Err(BenchError::Timeout("PING/PONG barrier")),
            }
        }
    }

    /// Writes all of `bytes`, giving up at the deadline. Returns whether everything was written.
    pub fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), BenchError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            match (&self.stream).write(rest) {
                Ok(0) => return Err(BenchError::Closed),
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if retry(&e) => {
                    if Instant::now() >= deadline {
                        return Err(BenchError::Timeout("write"));
                    }
                }
                Err(e) => return Err(BenchError::Io("write", e)),
            }
        }
        Ok(())
    }

    /// The next frame, or `None` once the deadline passes (or the stop flag is set) first.
    pub fn next(&mut self, deadline: Instant) -> Result<Option<Event<'_>>, BenchError> {
        loop {
            let avail = self.buf.get(self.start..self.end).unwrap_or_default();
            match scan(avail) {
                Scan::Frame(frame, used) => {
                    let base = self.start;
                    self.start += used;
                    return Ok(Some(match frame {
                        Frame::Msg {
                            subject,
                            reply,
                            payload,
                        } => Event::Msg {
                            subject: self.slice(base, subject),
                            reply: reply.map(|r| self.slice(base, r)),
                            payload: self.slice(base, payload),
                        },
                        Frame::Ping => {
                            self.send(b"PONG\r\n", deadline)?;
                            continue;
                        }
                        Frame::Pong => Event::Pong,
                        Frame::Ok | Frame::Info => Event::Other,
                        Frame::Err(text) => {
                            let text = String::from_utf8_lossy(self.slice(base, text)).into_owned();
                            return Err(BenchError::Server(text));
                        }
                    }));
                }
                Scan::Need(total) => {
                    if !self.fill(total, deadline)? {
                        return Ok(None);
                    }
                }
                Scan::Bad(why) => return Err(BenchError::Protocol(why)),
            }
        }
    }

    fn slice(&self, base: usize, r: std::ops::Range<usize>) -> &[u8] {
        self.buf
            .get(base + r.start..base + r.end)
            .unwrap_or_default()
    }

    /// Reads more bytes, making room for a frame of `need` bytes. `false` at the deadline.
    fn fill(&mut self, need: usize, deadline: Instant) -> Result<bool, BenchError> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if self.start > 0 && (self.end == self.buf.len() || need > self.buf.len() - self.start) {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() || need > self.buf.len() {
            let want = need.max(self.buf.len() * 2);
            if want > MAX_BUF {
                return Err(BenchError::Protocol(
                    "message larger than the read buffer limit",
                ));
            }
            self.buf.resize(want, 0);
        }
        loop {
            let room = self.buf.get_mut(self.end..).unwrap_or_default();
            match self.stream.read(room) {
                Ok(0) => return Err(BenchError::Closed),
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if retry(&e) => {
                    let stopped = self
                        .stop
                        .as_ref()
                        .is_some_and(|s| s.load(Ordering::Relaxed));
                    if stopped || Instant::now() >= deadline {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(BenchError::Io("read", e)),
            }
        }
    }
}

/// Timeouts and interrupts just mean "look at the clock and try again".
fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}
