//! What the client reports: events borrowed from the received bytes, and its small errors.

use core::fmt;

use crate::subject::SubjectError;
use crate::wire::json::JsonError;
use crate::wire::{HeaderError, Headers, ParseError};

/// A subscription id, chosen by the client (1, 2, 3, … per client, never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sid(pub u32);

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Something the server said, borrowed from the bytes given to
/// [`Client::handle`](super::Client::handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// An INFO: the JSON body, for [`ServerInfo::parse`](crate::wire::json::ServerInfo::parse).
    /// The first one of a connection starts the handshake; later ones update the cluster
    /// view (`connect_urls`, lame-duck mode `ldm`).
    Info(&'a [u8]),
    /// The server answered the handshake: credentials were accepted and every subscription
    /// is registered again. Publishing is possible from now on.
    Connected,
    /// A message for one of this client's subscriptions.
    Message(Message<'a>),
    /// A PONG after the handshake (to a keepalive or to [`Client::ping`](super::Client::ping)).
    Pong,
    /// An `-ERR` after which the server keeps the connection (permissions, invalid subject).
    ServerError(&'a [u8]),
    /// The session is over: close the transport, then call
    /// [`Client::disconnected`](super::Client::disconnected) before connecting again.
    Closed(Close<'a>),
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close<'a> {
    /// An `-ERR` after which the server closes the connection (`Authorization Violation`,
    /// `Stale Connection`, `Maximum Payload Violation`, …); the text inside the quotes.
    ServerError(&'a [u8]),
    /// The server's bytes are not the NATS protocol (or exceed [`Options::limits`](super::Options)).
    Protocol(ParseError),
    /// The server sent an op only clients send (`PUB`, `SUB`, `CONNECT`, …).
    UnexpectedOp,
    /// The server's first INFO is not valid JSON of the expected shape.
    BadInfo(JsonError),
    /// The server requires TLS, which the caller's transport has to provide.
    TlsRequired,
    /// The handshake did not finish within [`Options::connect_timeout_ms`](super::Options).
    ConnectTimeout,
    /// [`Options::max_pings_out`](super::Options) keepalive PINGs went unanswered.
    Stale,
    /// The transmit buffer cannot hold the CONNECT (`TX` is too small for the options).
    TransmitBufferTooSmall,
}

/// A message delivered to a subscription (`MSG` or `HMSG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The subscription it was delivered for.
    pub sid: Sid,
    /// The subject it was published to.
    pub subject: &'a [u8],
    /// Where to send a reply, if the publisher asked for one.
    pub reply: Option<&'a [u8]>,
    /// The raw header block of an `HMSG`; see [`Message::headers`].
    pub header_block: Option<&'a [u8]>,
    /// The body.
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// The parsed header block: `Ok(None)` for a plain `MSG`, an error for a malformed block.
    pub fn headers(&self) -> Result<Option<Headers<'a>>, HeaderError> {
        self.header_block.map(Headers::parse).transpose()
    }

    /// The header status code (`503` no responders, …), if the block has one.
    pub fn status(&self) -> Option<u16> {
        self.headers().ok().flatten().and_then(|h| h.status())
    }

    /// A `503` status with an empty body: nobody was listening to a request this client sent.
    pub fn is_no_responders(&self) -> bool {
        self.status() == Some(503) && self.payload.is_empty()
    }
}

/// Why a call on the client was refused. Nothing was changed by a refused call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// Publishing needs a connection whose handshake finished ([`Event::Connected`]).
    NotConnected,
    /// The transmit buffer has no room now: send what [`Client::transmit`](super::Client::transmit)
    /// holds and try again.
    BufferFull,
    /// The op can never fit the transmit buffer (`TX` too small for it).
    TooLarge,
    /// The message is larger than the server's `max_payload`.
    MaxPayload,
    /// All `SUBS` subscription slots are taken.
    TooManySubscriptions,
    /// The subscription names would overflow the `NAMES` byte pool.
    NamesFull,
    /// No subscription with this sid.
    UnknownSid,
    /// The subject (or reply subject) is not valid for this use.
    InvalidSubject(SubjectError),
    /// The queue group name is not valid.
    InvalidQueue(SubjectError),
    /// The server does not support headers.
    HeadersUnsupported,
    /// The header block is malformed (build it with [`HeaderWriter`](crate::wire::HeaderWriter)).
    BadHeaders(HeaderError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotConnected => f.write_str("not connected"),
            ClientError::BufferFull => f.write_str("transmit buffer full"),
            ClientError::TooLarge => f.write_str("op larger than the transmit buffer"),
            ClientError::MaxPayload => f.write_str("message larger than the server's max_payload"),
            ClientError::TooManySubscriptions => f.write_str("no free subscription slot"),
            ClientError::NamesFull => f.write_str("subscription name pool full"),
            ClientError::UnknownSid => f.write_str("unknown subscription id"),
            ClientError::InvalidSubject(e) => write!(f, "invalid subject: {e}"),
            ClientError::InvalidQueue(e) => write!(f, "invalid queue group: {e}"),
            ClientError::HeadersUnsupported => f.write_str("the server does not support headers"),
            ClientError::BadHeaders(e) => write!(f, "bad header block: {e}"),
        }
    }
}

impl core::error::Error for ClientError {}

/// Whether nats-server keeps a connection after this `-ERR` text (reference §1.6): only for
/// permission violations, invalid subjects and the subscription limit. Compared
/// ASCII-case-insensitively, as clients do.
pub(super) fn err_keeps_connection(text: &[u8]) -> bool {
    const KEEPS: [&[u8]; 4] = [
        b"permissions violation",
        b"invalid subject",
        b"invalid publish subject",
        b"maximum subscriptions exceeded",
    ];
    KEEPS.iter().any(|k| {
        text.get(..k.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(k))
    })
}
