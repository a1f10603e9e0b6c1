//! A sans-IO NATS client session for microcontrollers: bytes in, bytes and events out, time
//! passed in. No clock, socket or allocator inside; the caller owns the loop (as with
//! smoltcp's `Interface::poll` and embassy-net's `Runner`).
//!
//! The caller's loop, with any transport (smoltcp/embassy-net TCP, `std::net::TcpStream`, a
//! test script):
//!
//! 1. Open the transport, then [`Client::connect`]`(now)`.
//! 2. Append received bytes to a buffer (e.g. [`RxBuffer`]) and call [`Client::handle`]
//!    `(now, &buf)` until it returns `(0, None)`, dropping the bytes each call consumed.
//!    Events ([`Event`]) borrow from that buffer: act on them before dropping the bytes.
//! 3. Send what [`Client::transmit`] holds and report it with [`Client::transmitted`] (or
//!    use [`Client::poll_transmit`], which copies).
//! 4. Wake up no later than [`Client::poll_at`] and call `handle(now, &[])`: keepalive PINGs
//!    and stale/timeout detection run there.
//! 5. On [`Event::Closed`] or when the transport fails: close it, call
//!    [`Client::disconnected`], and start again at 1 (with a back-off of the caller's choice).
//!    Subscriptions are kept and sent again on the next connection.
//!
//! The handshake follows nats.go: wait for INFO, send CONNECT (built from [`Options`] with
//! [`ClientConnect::write`](crate::wire::json::ClientConnect::write)), every subscription, and
//! a PING; the server's PONG means the credentials were accepted and the subscriptions are in
//! place ([`Event::Connected`]). Every byte is parsed and encoded by [`crate::wire`].
//!
//! ```
//! use twig_core::client::{Client, Event, Options};
//!
//! let mut client = Client::<4, 512>::new(Options::new().name("sensor-7"));
//! client.connect(0);
//! let info = b"INFO {\"server_id\":\"S\",\"version\":\"2.15.1\",\"proto\":1,\"headers\":true,\"max_payload\":1048576} \r\n";
//! let (n, event) = client.handle(1, info);
//! assert_eq!((n, event), (info.len(), Some(Event::Info(&info[5..info.len() - 3]))));
//! assert!(client.transmit().starts_with(b"CONNECT {\"verbose\":false"));
//! let sent = client.transmit().len(); // e.g. `socket.write(client.transmit())`
//! client.transmitted(sent);
//! assert_eq!(client.handle(2, b"PONG\r\n"), (6, Some(Event::Connected)));
//! client.publish(b"sensors.7.temp", None, None, b"21.5").unwrap();
//! assert_eq!(client.transmit(), b"PUB sensors.7.temp 4\r\n21.5\r\n");
//! ```
//!
//! Authentication: user and password, token, or (feature `nkey`) an nkey that signs the INFO
//! nonce ([`Options::nkey`]). Not supported: TLS (a transport that provides it may run
//! underneath, but the server's `tls_required` INFO ends the session with
//! [`Close::TlsRequired`]) and JWT credentials.

mod event;
mod options;
mod rx;
mod send;
mod subs;
mod tx;

#[cfg(test)]
mod tests;

pub use event::{ClientError, Close, Event, Message, Sid};
pub use options::Options;
pub use rx::RxBuffer;

use crate::subject::{self, SubjectError};
use crate::wire::args::parse_u64;
use crate::wire::json::ServerInfo;
use crate::wire::{EncodeError, Headers, Limits, Mode, Op, Parser};
use event::err_keeps_connection;
use subs::Subs;
use tx::TxBuf;

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No transport: before [`Client::connect`] or after [`Client::disconnected`].
    Idle,
    /// Transport open, waiting for the server's INFO.
    AwaitingInfo,
    /// CONNECT sent, waiting for the PONG that confirms it.
    Connecting,
    /// Handshake done: publish, subscribe, receive.
    Connected,
    /// The session ended ([`Event::Closed`]); call [`Client::disconnected`].
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    AwaitingInfo { deadline: u64 },
    Connecting { deadline: u64 },
    Connected,
    Closed,
}

/// Control ops owed to the server, written into the transmit buffer as room allows.
#[derive(Clone, Copy, Debug, Default)]
struct Due {
    connect: bool,
    handshake_ping: bool,
    /// The handshake PING is in the transmit buffer (or sent): its PONG completes the handshake.
    handshake_ping_sent: bool,
    pongs: u16,
    pings: u16,
}

/// A NATS client session. `SUBS` subscriptions at most, a transmit buffer of `TX` bytes, and
/// `NAMES` bytes for the subscriptions' subjects and queue names (kept to subscribe again after
/// a reconnect). Everything lives inline: a `static` or a task's stack can hold it.
///
/// Time is milliseconds on any monotonic clock the caller has (`now` never goes back).
#[derive(Debug)]
pub struct Client<'o, const SUBS: usize, const TX: usize, const NAMES: usize = 256> {
    options: Options<'o>,
    parser: Parser,
    state: State,
    tx: TxBuf<TX>,
    subs: Subs<SUBS, NAMES>,
    due: Due,
    /// The server's `max_payload` and `headers` from its INFO.
    max_payload: usize,
    headers: bool,
    pings_out: u32,
    next_ping: u64,
    /// This connection's signature of the server's nonce (feature `nkey`), made on INFO.
    #[cfg(feature = "nkey")]
    sig: Option<[u8; crate::nkey::SIGNATURE_LEN]>,
}

impl<'o, const SUBS: usize, const TX: usize, const NAMES: usize> Client<'o, SUBS, TX, NAMES> {
    /// A client with no connection yet.
    pub const fn new(options: Options<'o>) -> Self {
        Client {
            parser: Parser::new(Mode::FromServer, options.limits),
            options,
            state: State::Idle,
            tx: TxBuf::new(),
            subs: Subs::new(),
            due: Due {
                connect: false,
                handshake_ping: false,
                handshake_ping_sent: false,
                pongs: 0,
                pings: 0,
            },
            max_payload: Limits::DEFAULT_MAX_PAYLOAD,
            headers: false,
            pings_out: 0,
            next_ping: u64::MAX,
            #[cfg(feature = "nkey")]
            sig: None,
        }
    }

    /// The transport is open: expect the server's INFO, within the connect timeout from `now`.
    /// (Anything left of an earlier session is forgotten, as by [`Client::disconnected`].)
    pub fn connect(&mut self, now: u64) {
        self.disconnected();
        self.state = State::AwaitingInfo {
            deadline: now.saturating_add(self.options.connect_timeout_ms),
        };
    }

    /// The transport is gone (or was closed after [`Event::Closed`]). Unsent bytes are
    /// dropped; subscriptions are kept and will be sent again after the next
    /// [`Client::connect`]. Publishing fails with [`ClientError::NotConnected`] until then.
    pub fn disconnected(&mut self) {
        self.state = State::Idle;
        self.parser.reset();
        self.tx.clear();
        self.subs.forget_connection();
        self.due = Due::default();
        self.pings_out = 0;
        self.next_ping = u64::MAX;
        #[cfg(feature = "nkey")]
        {
            self.sig = None;
        }
    }

    /// Where the session stands.
    pub fn status(&self) -> Status {
        match self.state {
            State::Idle => Status::Idle,
            State::AwaitingInfo { .. } => Status::AwaitingInfo,
            State::Connecting { .. } => Status::Connecting,
            State::Connected => Status::Connected,
            State::Closed => Status::Closed,
        }
    }

    /// Handles the next op at the start of `input` (the received bytes not consumed yet),
    /// after running the timers for `now`.
    ///
    /// Returns how many bytes of `input` were consumed and what happened. Call it again with
    /// the rest until it returns `(0, None)`: then `input` holds no complete op (or no
    /// connection is open). An op larger than `input` can ever grow must be refused by
    /// [`Options::limits`], or the session stalls.
    pub fn handle<'a>(&mut self, now: u64, input: &'a [u8]) -> (usize, Option<Event<'a>>) {
        if let Some(close) = self.run_timers(now) {
            return (0, Some(self.close(close)));
        }
        if !matches!(
            self.state,
            State::AwaitingInfo { .. } | State::Connecting { .. } | State::Connected
        ) {
            return (0, None);
        }
        let (op, n) = match self.parser.parse(input) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return (0, None),
            Err(e) => return (0, Some(self.close(Close::Protocol(e)))),
        };
        let event = self.on_op(now, op);
        self.fill();
        (n, event)
    }

    /// When [`Client::handle`] must next be called even if nothing arrives: the connect
    /// deadline or the next keepalive PING. `None` when no timer runs.
    pub fn poll_at(&self) -> Option<u64> {
        match self.state {
            State::AwaitingInfo { deadline } | State::Connecting { deadline } => Some(deadline),
            State::Connected if self.next_ping != u64::MAX => Some(self.next_ping),
            _ => None,
        }
    }

    /// The bytes to send now (whole ops; empty when there is nothing to send).
    pub fn transmit(&mut self) -> &[u8] {
        self.fill();
        self.tx.pending()
    }

    /// `n` bytes of [`Client::transmit`] were sent.
    pub fn transmitted(&mut self, n: usize) {
        self.tx.consume(n);
        self.fill();
    }

    /// Copies as many bytes to send as fit into `out`, counts them as sent, and returns how
    /// many. For transports that want a buffer of their own.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> usize {
        let pending = self.transmit();
        let n = pending.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), pending.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.transmitted(n);
        n
    }

    /// Subscribes to `subject` (wildcards allowed), in a queue group if `queue` is given.
    /// Works in any state: the SUB is sent now if connected, else with the next handshake.
    pub fn subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>) -> Result<Sid, ClientError> {
        subject::validate(subject).map_err(ClientError::InvalidSubject)?;
        if let Some(q) = queue {
            subject::validate_queue(q).map_err(ClientError::InvalidQueue)?;
        }
        let sid = self.subs.insert(subject, queue)?;
        self.fill();
        Ok(sid)
    }

    /// Ends the subscription `sid`; no message for it is reported from now on.
    pub fn unsubscribe(&mut self, sid: Sid) -> Result<(), ClientError> {
        let on_wire = self.on_wire();
        let entry = self.subs.get_mut(sid).ok_or(ClientError::UnknownSid)?;
        if entry.sent && on_wire {
            entry.unsub_due = true;
            self.fill();
        } else {
            self.subs.remove(sid);
        }
        Ok(())
    }

    /// Ends the subscription `sid` after `max` messages in total (counted across
    /// reconnects; at once if that many were already delivered), as `UNSUB <sid> <max>`.
    pub fn unsubscribe_after(&mut self, sid: Sid, max: u64) -> Result<(), ClientError> {
        let entry = self.subs.get_mut(sid).ok_or(ClientError::UnknownSid)?;
        if entry.delivered >= max {
            return self.unsubscribe(sid);
        }
        entry.max = Some(max);
        entry.max_due = entry.sent;
        self.fill();
        Ok(())
    }

    /// Publishes `payload` to `subject`, with a reply subject and a header block (built with
    /// [`HeaderWriter`](crate::wire::HeaderWriter)) if given. Needs [`Status::Connected`].
    ///
    /// [`ClientError::BufferFull`] means: send what [`Client::transmit`] holds, then retry.
    pub fn publish(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        if self.state != State::Connected {
            return Err(ClientError::NotConnected);
        }
        subject::validate_publish(subject).map_err(ClientError::InvalidSubject)?;
        if let Some(r) = reply {
            subject::validate_publish(r).map_err(ClientError::InvalidSubject)?;
        }
        if let Some(h) = headers {
            if !self.headers {
                return Err(ClientError::HeadersUnsupported);
            }
            Headers::parse(h).map_err(ClientError::BadHeaders)?;
        }
        let size = headers.map_or(0, <[u8]>::len).saturating_add(payload.len());
        if size > self.max_payload {
            return Err(ClientError::MaxPayload);
        }
        // Owed SUBs and UNSUBs go first, so a request's reply subscription precedes it.
        if !self.fill() {
            return Err(ClientError::BufferFull);
        }
        let op = match headers {
            None => Op::Pub {
                subject,
                reply,
                payload,
            },
            Some(headers) => Op::Hpub {
                subject,
                reply,
                headers,
                payload,
            },
        };
        self.tx
            .write_with(|out| op.encode(out))
            .map_err(|e| match e {
                EncodeError::BufferTooSmall { needed } if needed > TX => ClientError::TooLarge,
                EncodeError::BufferTooSmall { .. } => ClientError::BufferFull,
                EncodeError::InvalidArgument => {
                    ClientError::InvalidSubject(SubjectError::Whitespace)
                }
            })
    }

    /// Sends a PING; its PONG comes back as [`Event::Pong`] once the server has processed
    /// everything sent before it (a flush).
    pub fn ping(&mut self) -> Result<(), ClientError> {
        if self.state != State::Connected {
            return Err(ClientError::NotConnected);
        }
        self.due.pings = self.due.pings.saturating_add(1);
        self.fill();
        Ok(())
    }

    /// The server's `max_payload` (from its latest INFO).
    pub fn server_max_payload(&self) -> usize {
        self.max_payload
    }

    /// Whether the server supports headers (from its latest INFO).
    pub fn server_headers(&self) -> bool {
        self.headers
    }

    /// Number of active subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Ends the session with `why`: nothing more is sent or handled.
    fn close<'a>(&mut self, why: Close<'a>) -> Event<'a> {
        self.state = State::Closed;
        self.tx.clear();
        Event::Closed(why)
    }

    /// Whether ops may be written for the server (CONNECT due or sent).
    fn on_wire(&self) -> bool {
        matches!(self.state, State::Connecting { .. } | State::Connected)
    }

    fn run_timers(&mut self, now: u64) -> Option<Close<'static>> {
        match self.state {
            State::AwaitingInfo { deadline } | State::Connecting { deadline }
                if now >= deadline =>
            {
                Some(Close::ConnectTimeout)
            }
            State::Connected if now >= self.next_ping => {
                if self.pings_out >= self.options.max_pings_out {
                    return Some(Close::Stale);
                }
                self.pings_out = self.pings_out.saturating_add(1);
                self.due.pings = self.due.pings.saturating_add(1);
                self.next_ping = self.keepalive_after(now);
                self.fill();
                None
            }
            _ => None,
        }
    }

    fn keepalive_after(&self, now: u64) -> u64 {
        match self.options.ping_interval_ms {
            0 => u64::MAX,
            ms => now.saturating_add(ms),
        }
    }

    fn on_op<'a>(&mut self, now: u64, op: Op<'a>) -> Option<Event<'a>> {
        match op {
            Op::Info(json) => self.on_info(json),
            Op::Ping => {
                self.due.pongs = self.due.pongs.saturating_add(1);
                None
            }
            Op::Pong => self.on_pong(now),
            Op::Ok => None,
            Op::Err(text) if err_keeps_connection(text) => Some(Event::ServerError(text)),
            Op::Err(text) => Some(self.close(Close::ServerError(text))),
            Op::Msg {
                subject,
                sid,
                reply,
                payload,
            } => self.on_msg(subject, sid, reply, None, payload),
            Op::Hmsg {
                subject,
                sid,
                reply,
                headers,
                payload,
            } => self.on_msg(subject, sid, reply, Some(headers), payload),
            Op::Connect(_)
            | Op::Pub { .. }
            | Op::Hpub { .. }
            | Op::Sub { .. }
            | Op::Unsub { .. }
            | Op::LsPlus { .. }
            | Op::LsMinus { .. }
            | Op::Lmsg { .. } => Some(self.close(Close::UnexpectedOp)),
        }
    }

    fn on_info<'a>(&mut self, json: &'a [u8]) -> Option<Event<'a>> {
        let parsed = ServerInfo::parse(json);
        match self.state {
            State::AwaitingInfo { deadline } => {
                let info = match parsed {
                    Ok(info) => info,
                    Err(e) => return Some(self.close(Close::BadInfo(e))),
                };
                if info.tls_required {
                    return Some(self.close(Close::TlsRequired));
                }
                self.learn(&info);
                #[cfg(feature = "nkey")]
                self.sign_nonce(&info);
                self.state = State::Connecting { deadline };
                self.due.connect = true;
                self.due.handshake_ping = true;
                self.fill();
                if self.due.connect {
                    // The buffer was empty and still could not take the CONNECT.
                    return Some(self.close(Close::TransmitBufferTooSmall));
                }
                Some(Event::Info(json))
            }
            State::Connecting { .. } | State::Connected => {
                // An update (cluster URLs, lame duck); a malformed one changes nothing.
                if let Ok(info) = parsed {
                    self.learn(&info);
                }
                Some(Event::Info(json))
            }
            State::Idle | State::Closed => None,
        }
    }

    /// Signs the INFO nonce with the configured nkey (none: no nonce, no nkey login).
    #[cfg(feature = "nkey")]
    fn sign_nonce(&mut self, info: &ServerInfo<'_>) {
        self.sig = match (self.options.nkey, info.nonce) {
            (Some(signer), Some(nonce)) => {
                let mut sig = [0u8; crate::nkey::SIGNATURE_LEN];
                signer.sign_nonce(nonce.raw().as_bytes(), &mut sig);
                Some(sig)
            }
            _ => None,
        };
    }

    fn learn(&mut self, info: &ServerInfo<'_>) {
        self.max_payload = usize::try_from(info.max_payload)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(Limits::DEFAULT_MAX_PAYLOAD);
        self.headers = info.headers;
    }

    fn on_pong<'a>(&mut self, now: u64) -> Option<Event<'a>> {
        match self.state {
            State::Connecting { .. } if self.due.handshake_ping_sent => {
                self.state = State::Connected;
                self.pings_out = 0;
                self.next_ping = self.keepalive_after(now);
                Some(Event::Connected)
            }
            State::Connected => {
                self.pings_out = 0;
                Some(Event::Pong)
            }
            _ => None,
        }
    }

    fn on_msg<'a>(
        &mut self,
        subject: &'a [u8],
        sid: &'a [u8],
        reply: Option<&'a [u8]>,
        header_block: Option<&'a [u8]>,
        payload: &'a [u8],
    ) -> Option<Event<'a>> {
        if !self.on_wire() {
            return None;
        }
        // A sid this client never gave out, or one it let go of: dropped, as nats.go does.
        let sid = Sid(u32::try_from(parse_u64(sid)?).ok()?);
        let entry = self.subs.get_mut(sid).filter(|e| !e.unsub_due)?;
        entry.delivered = entry.delivered.saturating_add(1);
        entry.delivered_here = entry.delivered_here.saturating_add(1);
        if entry.remaining() == Some(0) {
            // The server dropped it too (it counted the same `UNSUB <sid> <max>`).
            self.subs.remove(sid);
        }
        Some(Event::Message(Message {
            sid,
            subject,
            reply,
            header_block,
            payload,
        }))
    }
}
