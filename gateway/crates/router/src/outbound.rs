//! A connection's outbound buffer: many producers (any reader that routes a message here, the
//! connection's own protocol replies), one consumer (the connection's writer task).
//!
//! Producers append encoded bytes under a short mutex and never wait on the socket. The buffer
//! is bounded by `max_pending`: a producer that would push it past the limit marks the
//! connection a slow consumer instead, so memory stays bounded whatever a peer does. The
//! writer swaps the whole buffer out and writes it in one go, which batches every message
//! that arrived while the previous write was on the wire.
//!
//! Lock order: the outbound mutex is a leaf; nothing else is taken while it is held.

use std::sync::Mutex;

use event_listener::Event;
#[cfg(test)]
use event_listener::Listener;

/// Why a connection was closed, as nats-server names it in `/connz?state=closed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the connection.
    ClientClosed,
    /// The outbound buffer passed `max_pending`.
    SlowConsumerPendingBytes,
    /// A write did not finish within `write_deadline`.
    SlowConsumerWriteDeadline,
    /// The client missed `ping_max` PONGs.
    StaleConnection,
    /// The client broke the protocol (parse error or a fatal `-ERR`).
    ProtocolViolation,
    /// Credentials were missing or wrong.
    AuthenticationViolation,
    /// No CONNECT arrived within the auth timeout.
    AuthenticationTimeout,
    /// A payload larger than `max_payload`.
    MaxPayloadExceeded,
    /// The server's connection limit was reached.
    MaxConnectionsExceeded,
    /// A read or write failed.
    ReadError,
    /// The server is shutting down.
    ServerShutdown,
}

impl CloseReason {
    /// The text nats-server shows for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::MaxPayloadExceeded => "Maximum Payload Exceeded",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::ReadError => "Read Error",
            CloseReason::ServerShutdown => "Server Shutdown",
        }
    }
}

struct State {
    buf: Vec<u8>,
    /// Set once; after it the buffer only drains what was queued before (for a final -ERR).
    closed: Option<CloseReason>,
    /// Someone (the writer task, or a reader flushing inline) owns the socket's write side.
    /// Only one writes at a time, so bytes never interleave.
    writing: bool,
}

/// Buffers larger than this are not kept for reuse after an inline flush.
const RECYCLE_LIMIT: usize = 64 * 1024;

/// The bounded outbound buffer of one connection.
pub struct Outbound {
    state: Mutex<State>,
    ready: Event,
    /// Notified whenever the writer (or an inline flush) took the queued bytes, for
    /// publishers stalled on this buffer.
    drained: Event,
    max_pending: usize,
}

/// What [`Outbound::push`] did with the bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// Queued; the writer must be woken (once per batch is enough, see [`Outbound::wake`]).
    Queued,
    /// The connection is closed (or was just closed as a slow consumer by this push).
    Closed,
    /// This push made the connection a slow consumer; the caller counts and logs it.
    SlowConsumer,
    /// The bytes could not be encoded (e.g. a subject with a blank); nothing was queued.
    Refused,
}

impl Outbound {
    /// An empty buffer that accepts at most `max_pending` unwritten bytes.
    pub fn new(max_pending: usize) -> Self {
        Outbound {
            state: Mutex::new(State {
                buf: Vec::new(),
                closed: None,
                writing: false,
            }),
            ready: Event::new(),
            drained: Event::new(),
            max_pending,
        }
    }

    /// Appends what `fill` writes, unless that would exceed `max_pending`. `len` is the exact
    /// number of bytes `fill` writes, so the limit is checked before anything is copied. If
    /// `fill` fails, whatever it wrote is taken back, so the stream never holds half an op.
    pub fn push(&self, len: usize, fill: impl FnOnce(&mut Vec<u8>) -> Result<(), ()>) -> Push {
        let mut st = self.lock();
        if st.closed.is_some() {
            return Push::Closed;
        }
        if st.buf.len().saturating_add(len) > self.max_pending {
            st.closed = Some(CloseReason::SlowConsumerPendingBytes);
            // Drop what is queued: the connection is cut, nothing more goes out.
            st.buf = Vec::new();
            drop(st);
            self.ready.notify(usize::MAX);
            return Push::SlowConsumer;
        }
        st.buf.reserve(len);
        let before = st.buf.len();
        if fill(&mut st.buf).is_err() {
            st.buf.truncate(before);
            return Push::Refused;
        }
        Push::Queued
    }

    /// Appends a ready-made protocol line (`+OK`, `PONG`, `-ERR ...`).
    pub fn push_bytes(&self, bytes: &[u8]) -> Push {
        self.push(bytes.len(), |b| {
            b.extend_from_slice(bytes);
            Ok(())
        })
    }

    /// Wakes the writer. Producers call it once after a batch of pushes, not per message.
    pub fn wake(&self) {
        self.ready.notify(1);
    }

    /// Closes the buffer: the writer writes what is queued (e.g. a final `-ERR`) and stops.
    /// The first reason wins.
    pub fn close(&self, reason: CloseReason) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some(reason);
        }
        drop(st);
        self.ready.notify(usize::MAX);
    }

    /// The close reason, if closed.
    pub fn closed(&self) -> Option<CloseReason> {
        self.lock().closed
    }

    /// The limit on unwritten bytes.
    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn pending(&self) -> usize {
        self.lock().buf.len()
    }

    /// The writer's side: waits until there are bytes (and no reader is flushing inline) or
    /// the buffer is closed, then swaps the queued bytes into `spare` (which must be empty)
    /// and owns the socket until [`Outbound::written`]. Returns `Err(reason)` once closed and
    /// drained.
    pub async fn take(&self, spare: &mut Vec<u8>) -> Result<(), CloseReason> {
        loop {
            // Register interest before looking, so a push between the look and the wait
            // cannot be missed.
            let listener = self.ready.listen();
            {
                let mut st = self.lock();
                if !st.writing {
                    if !st.buf.is_empty() {
                        std::mem::swap(&mut st.buf, spare);
                        st.writing = true;
                        drop(st);
                        self.drained.notify(usize::MAX);
                        return Ok(());
                    }
                    if let Some(reason) = st.closed {
                        return Err(reason);
                    }
                }
            }
            listener.await;
        }
    }

    /// Whether publishers feeding this client should wait a little: its unwritten bytes are
    /// past 3/4 of `max_pending` (nats-server's stall mark), so without a pause it would soon
    /// be cut off as a slow consumer while it is merely slower than its publisher.
    pub fn stalled(&self) -> bool {
        let st = self.lock();
        st.closed.is_none() && st.buf.len() > self.max_pending / 4 * 3
    }

    /// Waits until the buffer is below the stall mark, or `max` passed.
    pub async fn wait_drained(&self, max: std::time::Duration) {
        twig_util::stall::wait_until_drained(&self.drained, max, || self.stalled()).await;
    }

    /// The writer finished writing what [`Outbound::take`] gave it.
    pub fn written(&self) {
        self.lock().writing = false;
    }

    /// Writes the queued bytes straight to `sock` from the caller's thread, without blocking,
    /// if nobody else is writing: a reader that just routed a message saves the hand-off to
    /// the writer task (nats-server flushes inline the same way). What the socket does not
    /// take goes back in front of anything queued meanwhile, and the writer is woken for it.
    pub fn flush_inline(&self, mut sock: &std::net::TcpStream) {
        let mut bytes = {
            let mut st = self.lock();
            if st.writing || st.buf.is_empty() || st.closed.is_some() {
                drop(st);
                self.wake();
                return;
            }
            st.writing = true;
            std::mem::take(&mut st.buf)
        };
        // The socket is non-blocking (async-io), so this returns at once either way.
        let sent = match std::io::Write::write(&mut sock, &bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            // A broken socket: leave the bytes to the writer, which will fail and close.
            Err(_) => 0,
        };
        self.drained.notify(usize::MAX);
        let mut st = self.lock();
        st.writing = false;
        if sent == bytes.len() {
            if st.buf.is_empty() {
                // Keep the allocation for the next batch.
                if bytes.capacity() <= RECYCLE_LIMIT {
                    bytes.clear();
                    st.buf = bytes;
                }
                return;
            }
            // Others queued bytes while we wrote, and their wake found us writing: the
            // writer must take them now or nobody would.
            drop(st);
            self.wake();
            return;
        }
        bytes.drain(..sent);
        bytes.extend_from_slice(&st.buf);
        st.buf = bytes;
        drop(st);
        self.wake();
    }

    /// Blocks the calling thread like [`Outbound::take`]; for tests.
    #[cfg(test)]
    fn take_blocking(&self, spare: &mut Vec<u8>) -> Result<(), CloseReason> {
        loop {
            let listener = self.ready.listen();
            {
                let mut st = self.lock();
                if !st.buf.is_empty() {
                    std::mem::swap(&mut st.buf, spare);
                    st.writing = true;
                    return Ok(());
                }
                if let Some(reason) = st.closed {
                    return Err(reason);
                }
            }
            listener.wait();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the buffer half-written in a way
        // that matters (bytes are appended whole), so a poisoned lock is still usable.
        twig_util::lock::lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_bytes_come_out_in_order_and_close_drains_first() {
        let out = Outbound::new(100);
        assert_eq!(out.push_bytes(b"PONG\r\n"), Push::Queued);
        assert_eq!(out.push_bytes(b"+OK\r\n"), Push::Queued);
        out.close(CloseReason::ClientClosed);
        let mut spare = Vec::new();
        assert_eq!(out.take_blocking(&mut spare), Ok(()));
        assert_eq!(spare, b"PONG\r\n+OK\r\n");
        spare.clear();
        assert_eq!(
            out.take_blocking(&mut spare),
            Err(CloseReason::ClientClosed)
        );
    }

    #[test]
    fn pushing_past_max_pending_makes_a_slow_consumer_and_frees_the_buffer() {
        let out = Outbound::new(10);
        assert_eq!(out.push_bytes(b"12345678"), Push::Queued);
        assert_eq!(out.push_bytes(b"abc"), Push::SlowConsumer);
        assert_eq!(out.pending(), 0);
        assert_eq!(out.push_bytes(b"x"), Push::Closed);
        assert_eq!(out.closed(), Some(CloseReason::SlowConsumerPendingBytes));
    }
}
