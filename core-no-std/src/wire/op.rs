//! The semantic values of the wire: [`Op`], its leafnode queue list [`Queues`], which peer's
//! bytes are parsed ([`Mode`]) and the size [`Limits`] the parser enforces.

use core::fmt;

/// Which peer's bytes a [`Parser`](super::Parser) reads.
///
/// Every op is recognised in every mode (the caller decides what a peer may send); the mode
/// only picks the argument form of `MSG` and `HMSG`, whose forms differ between a server
/// talking to a client (`MSG <subject> <sid> …`) and two servers on a leafnode link
/// (`MSG`/`LMSG`/`HMSG <subject> [+ reply queues… | | queues…] …`, see [`Op::Lmsg`]).
/// `FromClient` and `FromServer` therefore parse alike today; naming the peer keeps call
/// sites honest and leaves room for role-specific rules.
///
/// Unlike nats-server, `SUB`/`UNSUB` stay [`Op::Sub`]/[`Op::Unsub`] in [`Mode::Leaf`] (the
/// server would treat them as `LS+`/`LS-` there); a leaf peer never sends them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bytes a client sends to a server (twig serving local clients).
    FromClient,
    /// Bytes a server sends to a client (twig's MCU client); `MSG`/`HMSG` carry a sid.
    FromServer,
    /// Bytes on a leafnode link, either direction; `MSG`/`HMSG` use the leaf forms.
    Leaf,
}

/// Limits the parser enforces, with nats-server's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest control line accepted, counting its arguments from the first non-blank after
    /// the op name to the CRLF, as nats-server does (`max_control_line`, default 4096).
    /// The blanks between op name and arguments are bounded by the same number.
    ///
    /// nats-server applies 16 times its configured value to leaf, route and gateway
    /// connections since 2.14 (64 KiB by default) because their lines carry queue lists;
    /// a leaf link should use [`Limits::for_server_link`] to do the same. A client reading a
    /// big cluster's INFO (long `connect_urls`) may also want more than 4096.
    pub max_control_line: usize,
    /// Largest payload (header block plus body) accepted (nats-server `max_payload`,
    /// default 1 MiB). Usually lowered to the peer's INFO `max_payload` on a client.
    pub max_payload: usize,
}

impl Limits {
    /// nats-server's default control line limit.
    pub const DEFAULT_MAX_CONTROL_LINE: usize = 4096;
    /// nats-server's default payload limit.
    pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

    /// The limits nats-server applies to a server-to-server link (leaf, route, gateway)
    /// since 2.14: the control line limit times 16; the payload limit unchanged.
    pub const fn for_server_link(self) -> Self {
        Limits {
            max_control_line: self.max_control_line.saturating_mul(16),
            max_payload: self.max_payload,
        }
    }

    /// An upper bound on the bytes one op can occupy under these limits: the longest op
    /// name, its separator and blanks, a full control line, CRLF, a full payload and its
    /// CRLF. A caller with a fixed buffer of at least this size can always hold a whole op
    /// (canonical ops need at most `max_control_line` less: they have one blank).
    pub const fn max_op_len(&self) -> usize {
        // "CONNECT" (7) + separator (1) + blanks + arguments + CRLF + payload + CRLF.
        self.max_control_line
            .saturating_mul(2)
            .saturating_add(self.max_payload)
            .saturating_add(7 + 1 + 2 + 2)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_control_line: Self::DEFAULT_MAX_CONTROL_LINE,
            max_payload: Self::DEFAULT_MAX_PAYLOAD,
        }
    }
}

/// One NATS protocol operation, borrowing every field from the buffer it was parsed from
/// (or from the caller, when built to be encoded).
///
/// Subjects, sids, queue names and JSON bodies are raw bytes: the wire never promises
/// UTF-8 and checking it would cost every message a pass. Validation of subjects is the
/// job of [`crate::subject`], done by whoever acts on the op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// `INFO <json>`: server information. Holds the JSON with surrounding blanks trimmed.
    Info(&'a [u8]),
    /// `CONNECT <json>`: client (or leaf) options. Holds the JSON, blanks trimmed.
    Connect(&'a [u8]),
    /// `PUB <subject> [reply] <#bytes>` and the payload.
    Pub {
        /// Subject published to.
        subject: &'a [u8],
        /// Reply subject, if any.
        reply: Option<&'a [u8]>,
        /// Message body.
        payload: &'a [u8],
    },
    /// `HPUB <subject> [reply] <#header bytes> <#total bytes>`, header block and payload.
    Hpub {
        /// Subject published to.
        subject: &'a [u8],
        /// Reply subject, if any.
        reply: Option<&'a [u8]>,
        /// The header block (`NATS/1.0…\r\n\r\n`), see [`Headers`](super::Headers).
        headers: &'a [u8],
        /// Message body after the header block.
        payload: &'a [u8],
    },
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        /// Subject (possibly with wildcards).
        subject: &'a [u8],
        /// Queue group, if any.
        queue: Option<&'a [u8]>,
        /// Client-chosen subscription id.
        sid: &'a [u8],
    },
    /// `UNSUB <sid> [max_msgs]`.
    Unsub {
        /// Subscription id.
        sid: &'a [u8],
        /// Total deliveries after which the subscription ends, if given.
        max: Option<u64>,
    },
    /// `MSG <subject> <sid> [reply] <#bytes>` (server to client) and the payload.
    Msg {
        /// Subject the message was published to.
        subject: &'a [u8],
        /// The subscription id it is delivered for.
        sid: &'a [u8],
        /// Reply subject, if any.
        reply: Option<&'a [u8]>,
        /// Message body.
        payload: &'a [u8],
    },
    /// `HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>` (server to client).
    Hmsg {
        /// Subject the message was published to.
        subject: &'a [u8],
        /// The subscription id it is delivered for.
        sid: &'a [u8],
        /// Reply subject, if any.
        reply: Option<&'a [u8]>,
        /// The header block.
        headers: &'a [u8],
        /// Message body after the header block.
        payload: &'a [u8],
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR '<text>'`. Holds the text inside the quotes (the whole argument if unquoted).
    Err(&'a [u8]),
    /// `LS+ <subject>` or `LS+ <subject> <queue> <weight>`: leafnode interest.
    LsPlus {
        /// Subject of interest.
        subject: &'a [u8],
        /// Queue group and its weight (members behind it), for queue interest.
        queue: Option<(&'a [u8], u32)>,
    },
    /// `LS- <subject> [queue]`: leafnode interest removed.
    LsMinus {
        /// Subject of interest.
        subject: &'a [u8],
        /// Queue group, for queue interest.
        queue: Option<&'a [u8]>,
    },
    /// A leafnode message: `LMSG` without headers, `HMSG` with headers, in any of the forms
    /// `<subject> [reply]`, `<subject> + <reply> <queues…>`, `<subject> | <queues…>` followed
    /// by the size(s). In [`Mode::Leaf`] a plain `MSG` parses to this too, as nats-server does.
    Lmsg {
        /// Subject the message was published to.
        subject: &'a [u8],
        /// Reply subject, if any.
        reply: Option<&'a [u8]>,
        /// Queue groups the sender picked this link for (empty for plain interest).
        queues: Queues<'a>,
        /// The header block (the op was `HMSG`), or `None` (`LMSG`).
        headers: Option<&'a [u8]>,
        /// Message body after any header block.
        payload: &'a [u8],
    },
}

/// The queue group names of an [`Op::Lmsg`]: either the raw blank-separated span of a
/// parsed control line, or a caller's list of names to encode. Equality compares names.
#[derive(Clone, Copy)]
pub struct Queues<'a>(QueuesRepr<'a>);

#[derive(Clone, Copy)]
enum QueuesRepr<'a> {
    Raw(&'a [u8]),
    List(&'a [&'a [u8]]),
}

impl<'a> Queues<'a> {
    /// No queue groups.
    pub const EMPTY: Queues<'static> = Queues(QueuesRepr::Raw(b""));

    /// Names separated by runs of spaces or tabs, as they appear on a control line.
    pub const fn from_raw(span: &'a [u8]) -> Self {
        Queues(QueuesRepr::Raw(span))
    }

    /// A list of names (each must be non-empty and blank-free to encode).
    pub const fn from_list(names: &'a [&'a [u8]]) -> Self {
        Queues(QueuesRepr::List(names))
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The names, in order.
    pub fn iter(&self) -> QueuesIter<'a> {
        match self.0 {
            QueuesRepr::Raw(span) => QueuesIter(QueuesIterRepr::Raw(Tokens::new(span))),
            QueuesRepr::List(names) => QueuesIter(QueuesIterRepr::List(names.iter())),
        }
    }
}

impl<'a> IntoIterator for Queues<'a> {
    type Item = &'a [u8];
    type IntoIter = QueuesIter<'a>;
    fn into_iter(self) -> QueuesIter<'a> {
        self.iter()
    }
}

impl PartialEq for Queues<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Queues<'_> {}

impl fmt::Debug for Queues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(super::args::Lossy))
            .finish()
    }
}

/// Iterator over the names of a [`Queues`].
#[derive(Clone, Debug)]
pub struct QueuesIter<'a>(QueuesIterRepr<'a>);

#[derive(Clone, Debug)]
enum QueuesIterRepr<'a> {
    Raw(Tokens<'a>),
    List(core::slice::Iter<'a, &'a [u8]>),
}

impl<'a> Iterator for QueuesIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            QueuesIterRepr::Raw(t) => t.next(),
            QueuesIterRepr::List(l) => l.next().copied(),
        }
    }
}

/// Iterator over the blank-separated (space or tab runs) tokens of a byte string.
#[derive(Clone, Debug)]
pub(crate) struct Tokens<'a> {
    rest: &'a [u8],
}

impl<'a> Tokens<'a> {
    /// Tokens of `s`.
    pub(crate) const fn new(s: &'a [u8]) -> Self {
        Tokens { rest: s }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self
            .rest
            .iter()
            .position(|&b| !super::args::is_arg_sep(b))?;
        let tail = self.rest.get(start..).unwrap_or_default();
        let len = tail
            .iter()
            .position(|&b| super::args::is_arg_sep(b))
            .unwrap_or(tail.len());
        let (tok, rest) = tail.split_at_checked(len).unwrap_or((tail, b""));
        self.rest = rest;
        Some(tok)
    }
}
