//! A raw NATS client socket for tests that must see the exact bytes: blocking, every read
//! bounded by a deadline, everything received kept in one transcript.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How a bounded read ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The condition became true.
    Matched,
    /// The server closed the connection (EOF or reset) first.
    Closed,
    /// The deadline passed first.
    TimedOut,
}

/// One raw client connection.
pub struct RawConn {
    stream: TcpStream,
    received: Vec<u8>,
    closed: bool,
}

impl RawConn {
    /// Connect to `addr` (`127.0.0.1:PORT`).
    pub fn connect(addr: &str) -> RawConn {
        let stream =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("raw connect to {addr}: {e}"));
        let _ = stream.set_nodelay(true);
        RawConn {
            stream,
            received: Vec::new(),
            closed: false,
        }
    }

    /// Send bytes; false if the connection is already gone (the server may close first).
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Send bytes, panicking if the connection is gone.
    pub fn send(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes) {
            panic!(
                "raw send failed: {e}; received so far: {:?}",
                String::from_utf8_lossy(&self.received)
            );
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> &[u8] {
        &self.received
    }

    /// Everything received so far, as text (lossy), for assertions and messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The underlying socket (e.g. to shut down writes).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Read until `done(everything received)` holds, the server closes, or `timeout` passes.
    pub fn read_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[u8]) -> bool,
    ) -> ReadEnd {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if done(&self.received) {
                return ReadEnd::Matched;
            }
            if self.closed {
                return ReadEnd::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return ReadEnd::TimedOut;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self
                    .received
                    .extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A reset after the server closed with our unread bytes counts as closed.
                Err(_) => self.closed = true,
            }
        }
    }

    /// Read until `needle` appears in what was received.
    pub fn read_until_contains(&mut self, needle: &[u8], timeout: Duration) -> ReadEnd {
        self.read_until(timeout, |r| contains(r, needle))
    }

    /// Read until `needle` appears, panicking with the transcript otherwise.
    pub fn expect(&mut self, needle: &str, timeout: Duration) {
        let end = self.read_until_contains(needle.as_bytes(), timeout);
        assert_eq!(
            end,
            ReadEnd::Matched,
            "waited for {needle:?}; received: {:?}",
            self.text()
        );
    }

    /// Read until the server closes; true if it did within `timeout`.
    pub fn read_until_closed(&mut self, timeout: Duration) -> bool {
        self.read_until(timeout, |_| false) == ReadEnd::Closed
    }

    /// Send PING and read until the PONG answering it (counted), or close/timeout.
    /// Everything the server wrote before that PONG has then been received.
    pub fn ping_pong(&mut self, timeout: Duration) -> ReadEnd {
        let before = count(&self.received, b"PONG\r\n");
        if !self.try_send(b"PING\r\n") {
            return self.read_until(timeout, |_| false);
        }
        self.read_until(timeout, |r| count(r, b"PONG\r\n") > before)
    }

    /// Read the server's first line, which must be `INFO {json} `, and return the JSON.
    pub fn read_info(&mut self, timeout: Duration) -> serde_json::Value {
        let end = self.read_until_contains(b"\r\n", timeout);
        assert_eq!(end, ReadEnd::Matched, "no INFO line: {:?}", self.text());
        let text = self.text();
        let line = text.split("\r\n").next().unwrap_or_default();
        let json = line
            .strip_prefix("INFO ")
            .unwrap_or_else(|| panic!("first line is not INFO: {line:?}"));
        serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("INFO JSON {json:?}: {e}"))
    }
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Non-overlapping occurrences of `needle` in `hay`.
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    let mut n = 0;
    let mut i = 0;
    while let Some(rest) = hay.get(i..) {
        match rest.windows(needle.len()).position(|w| w == needle) {
            Some(p) => {
                n += 1;
                i += p + needle.len();
            }
            None => break,
        }
    }
    n
}
