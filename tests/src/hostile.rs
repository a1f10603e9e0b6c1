//! Helpers of the hostile-load suites (`tests/tests/hostile_*.rs`): counts overridable from
//! the environment (CI runs short forms, a long form is one variable away), peak memory, a
//! plain HTTP GET, a bare NATS client that checks a round trip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::raw::{RawConn, ReadEnd};

/// Deadline of one step (a connect, a reply, a round trip) on a machine shared by others.
pub const STEP: Duration = Duration::from_secs(20);

/// `name` from the environment, else `default` (the CI form).
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size (`VmHWM`) of a process, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in kB");
    kb * 1024
}

/// A plain HTTP/1.0 GET on loopback: (status, body), or `None` if the connection failed or
/// closed without a status line.
pub fn try_http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(STEP)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// [`try_http_get`] that must answer.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    try_http_get(port, path).unwrap_or_else(|| panic!("no HTTP answer to GET {path}"))
}

/// `/varz` as JSON.
pub fn varz(http_port: u16) -> serde_json::Value {
    let (status, body) = http_get(http_port, "/varz");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("varz JSON")
}

/// A connected client: INFO read, CONNECT sent, the PONG after it received.
pub fn client(addr: &str) -> RawConn {
    let mut c = RawConn::connect(addr);
    c.read_info(STEP);
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
    assert_eq!(c.ping_pong(STEP), ReadEnd::Matched, "{}", c.text());
    c
}

/// `publisher` sends `n` messages on `subject`; `subscriber` (subscribed to it) must receive
/// every one: counts `MSG subject ` lines until `before + n` are there.
pub fn round_trip(
    publisher: &mut RawConn,
    subscriber: &mut RawConn,
    subject: &str,
    n: usize,
) -> bool {
    let needle = format!("MSG {subject} ");
    let before = crate::harness::raw::count(subscriber.received(), needle.as_bytes());
    let mut batch = Vec::new();
    for i in 0..n {
        let payload = format!("m{i}");
        batch.extend_from_slice(
            format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()).as_bytes(),
        );
    }
    if !publisher.try_send(&batch) {
        return false;
    }
    subscriber.read_until(STEP, |r| {
        crate::harness::raw::count(r, needle.as_bytes()) >= before + n
    }) == ReadEnd::Matched
}
