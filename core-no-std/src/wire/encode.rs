//! Encoders: ops into a caller's buffer, byte for byte as nats-server and its clients
//! write them, so that `parse(encode(op)) == op` and, for canonical input,
//! `encode(parse(bytes)) == bytes`.
//!
//! Canonical means: upper-case op names, single spaces, `INFO <json> \r\n` (nats-server
//! puts a space before the CRLF), `-ERR '<text>'\r\n`, and the leafnode message forms of
//! nats-server's `msgHeaderForRouteOrLeaf`: no `+` without queues, `| q…` for queues
//! without a reply, `HMSG` rather than `LMSG` when there are headers.
//!
//! The `encode_*_head` functions write only a message's control line, so a hot path can
//! copy or vector the (already encoded) headers and payload separately, then [`CRLF`].

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use super::args::fmt_u64;
use super::error::EncodeError;
use super::op::{Op, Queues};

/// The line terminator, also due after every payload.
pub const CRLF: &[u8] = b"\r\n";

impl Op<'_> {
    /// Bytes [`Op::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let mut w = Writer::new(&mut []);
        emit(self, &mut w);
        w.pos
    }

    /// Writes the op into `out`, returning the bytes written.
    ///
    /// Fails with [`EncodeError::BufferTooSmall`] (nothing useful written) when `out` is
    /// short, and with [`EncodeError::InvalidArgument`] when a field would change the op's
    /// meaning on the wire (a blank in a subject, a CR in a JSON body, …).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        emit(self, &mut w);
        w.finish()
    }

    /// Appends the op to `out` (feature `alloc`), returning the bytes appended; on error
    /// `out` is left as it was.
    #[cfg(feature = "alloc")]
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        append(out, self.encoded_len(), |buf| self.encode(buf))
    }
}

/// The control line of a message delivered to a client: `MSG <subject> <sid> [reply]
/// <total>\r\n`, or `HMSG … <header_len> <total>\r\n` when `header_len` is set. The
/// delivery hot path writes this, then the header block and payload as they are, then
/// [`CRLF`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHead<'a> {
    /// Subject the message was published to.
    pub subject: &'a [u8],
    /// The receiving subscription's id.
    pub sid: &'a [u8],
    /// Reply subject, if any.
    pub reply: Option<&'a [u8]>,
    /// Size of the header block, for `HMSG`; `None` for `MSG`.
    pub header_len: Option<usize>,
    /// Header block plus payload size.
    pub total_len: usize,
}

impl MsgHead<'_> {
    /// Bytes [`MsgHead::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let mut w = Writer::new(&mut []);
        self.emit(&mut w);
        w.pos
    }

    /// Writes the control line into `out`, returning its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        self.emit(&mut w);
        w.finish()
    }

    /// Appends the control line to `out` (feature `alloc`), returning its length; on error
    /// `out` is left as it was.
    #[cfg(feature = "alloc")]
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        append(out, self.encoded_len(), |buf| self.encode(buf))
    }

    fn emit(&self, w: &mut Writer<'_>) {
        msg_head(
            w,
            self.subject,
            self.sid,
            self.reply,
            self.header_len,
            self.total_len,
        );
    }
}

/// Grows `out` by `len` bytes, lets `encode` fill them, and undoes the growth on error.
#[cfg(feature = "alloc")]
fn append(
    out: &mut Vec<u8>,
    len: usize,
    encode: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
) -> Result<usize, EncodeError> {
    let start = out.len();
    out.resize(start.saturating_add(len), 0);
    let result = encode(out.get_mut(start..).unwrap_or_default());
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Writes `CONNECT <json>\r\n` with the JSON written in place by `body`, which gets the room
/// between the prefix and the CRLF and returns the JSON's length, or `None` if it did not fit.
/// A client with no scratch buffer builds its CONNECT this way straight into its transmit
/// buffer (e.g. with [`ClientConnect::write`](super::json::ClientConnect::write)).
///
/// On [`EncodeError::BufferTooSmall`] from a `None`, `needed` is only a lower bound
/// (`out.len() + 1`): the body's length is unknown. A body holding LF is
/// [`EncodeError::InvalidArgument`], as for [`Op::Connect`].
pub fn encode_connect_with(
    out: &mut [u8],
    body: impl FnOnce(&mut [u8]) -> Option<usize>,
) -> Result<usize, EncodeError> {
    const PREFIX: &[u8] = b"CONNECT ";
    let too_small = EncodeError::BufferTooSmall {
        needed: out.len().saturating_add(1),
    };
    let room = out
        .len()
        .checked_sub(PREFIX.len() + CRLF.len())
        .ok_or(too_small)?;
    let (head, rest) = out.split_at_mut(PREFIX.len());
    head.copy_from_slice(PREFIX);
    let json_len = body(rest.get_mut(..room).unwrap_or_default())
        .filter(|&n| n <= room)
        .ok_or(too_small)?;
    let (json, tail) = rest.split_at_mut(json_len);
    if json.contains(&b'\n') {
        return Err(EncodeError::InvalidArgument);
    }
    tail.get_mut(..CRLF.len())
        .ok_or(too_small)?
        .copy_from_slice(CRLF);
    Ok(PREFIX.len() + json_len + CRLF.len())
}

/// Writes `PUB <subject> [reply] <total>\r\n`, or with `hdr_len`
/// `HPUB <subject> [reply] <hdr_len> <total>\r\n`. `total` includes the header block.
pub fn encode_pub_head(
    subject: &[u8],
    reply: Option<&[u8]>,
    hdr_len: Option<usize>,
    total: usize,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut w = Writer::new(out);
    pub_head(&mut w, subject, reply, hdr_len, total);
    w.finish()
}

/// Writes `MSG <subject> <sid> [reply] <total>\r\n`, or with `hdr_len`
/// `HMSG <subject> <sid> [reply] <hdr_len> <total>\r\n` (server to client).
pub fn encode_msg_head(
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    hdr_len: Option<usize>,
    total: usize,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    MsgHead {
        subject,
        sid,
        reply,
        header_len: hdr_len,
        total_len: total,
    }
    .encode(out)
}

/// Writes a leafnode message's control line: `LMSG …<total>\r\n`, or with `hdr_len`
/// `HMSG …<hdr_len> <total>\r\n`, in the reply/queue form nats-server uses.
pub fn encode_lmsg_head(
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: Queues<'_>,
    hdr_len: Option<usize>,
    total: usize,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut w = Writer::new(out);
    lmsg_head(&mut w, subject, reply, queues, hdr_len, total);
    w.finish()
}

fn emit(op: &Op<'_>, w: &mut Writer<'_>) {
    match *op {
        Op::Info(json) => {
            w.raw(b"INFO ");
            w.text(json);
            w.raw(b" \r\n");
        }
        Op::Connect(json) => {
            w.raw(b"CONNECT ");
            w.text(json);
            w.raw(CRLF);
        }
        Op::Pub {
            subject,
            reply,
            payload,
        } => {
            pub_head(w, subject, reply, None, payload.len());
            w.body(&[payload]);
        }
        Op::Hpub {
            subject,
            reply,
            headers,
            payload,
        } => {
            let total = w.sum(headers.len(), payload.len());
            pub_head(w, subject, reply, Some(headers.len()), total);
            w.body(&[headers, payload]);
        }
        Op::Sub {
            subject,
            queue,
            sid,
        } => {
            w.raw(b"SUB ");
            w.token(subject);
            if let Some(q) = queue {
                w.raw(b" ");
                w.token(q);
            }
            w.raw(b" ");
            w.token(sid);
            w.raw(CRLF);
        }
        Op::Unsub { sid, max } => {
            w.raw(b"UNSUB ");
            w.token(sid);
            if let Some(max) = max {
                w.raw(b" ");
                w.num(max);
            }
            w.raw(CRLF);
        }
        Op::Msg {
            subject,
            sid,
            reply,
            payload,
        } => {
            msg_head(w, subject, sid, reply, None, payload.len());
            w.body(&[payload]);
        }
        Op::Hmsg {
            subject,
            sid,
            reply,
            headers,
            payload,
        } => {
            let total = w.sum(headers.len(), payload.len());
            msg_head(w, subject, sid, reply, Some(headers.len()), total);
            w.body(&[headers, payload]);
        }
        Op::Ping => w.raw(b"PING\r\n"),
        Op::Pong => w.raw(b"PONG\r\n"),
        Op::Ok => w.raw(b"+OK\r\n"),
        Op::Err(text) => {
            w.raw(b"-ERR '");
            w.text(text);
            w.raw(b"'\r\n");
        }
        Op::LsPlus { subject, queue } => {
            w.raw(b"LS+ ");
            w.token(subject);
            if let Some((q, weight)) = queue {
                w.raw(b" ");
                w.token(q);
                w.raw(b" ");
                w.num(u64::from(weight));
            }
            w.raw(CRLF);
        }
        Op::LsMinus { subject, queue } => {
            w.raw(b"LS- ");
            w.token(subject);
            if let Some(q) = queue {
                w.raw(b" ");
                w.token(q);
            }
            w.raw(CRLF);
        }
        Op::Lmsg {
            subject,
            reply,
            queues,
            headers,
            payload,
        } => {
            let hdr_len = headers.map(<[u8]>::len);
            let total = w.sum(hdr_len.unwrap_or(0), payload.len());
            lmsg_head(w, subject, reply, queues, hdr_len, total);
            w.body(&[headers.unwrap_or_default(), payload]);
        }
    }
}

fn pub_head(
    w: &mut Writer<'_>,
    subject: &[u8],
    reply: Option<&[u8]>,
    hdr_len: Option<usize>,
    total: usize,
) {
    w.raw(if hdr_len.is_some() { b"HPUB " } else { b"PUB " });
    w.token(subject);
    if let Some(r) = reply {
        w.raw(b" ");
        w.token(r);
    }
    w.sizes(hdr_len, total);
}

fn msg_head(
    w: &mut Writer<'_>,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    hdr_len: Option<usize>,
    total: usize,
) {
    w.raw(if hdr_len.is_some() { b"HMSG " } else { b"MSG " });
    w.token(subject);
    w.raw(b" ");
    w.token(sid);
    if let Some(r) = reply {
        w.raw(b" ");
        w.token(r);
    }
    w.sizes(hdr_len, total);
}

fn lmsg_head(
    w: &mut Writer<'_>,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: Queues<'_>,
    hdr_len: Option<usize>,
    total: usize,
) {
    w.raw(if hdr_len.is_some() {
        b"HMSG "
    } else {
        b"LMSG "
    });
    w.token(subject);
    let has_queues = !queues.is_empty();
    match (reply, has_queues) {
        (Some(r), true) => {
            w.raw(b" + ");
            w.token(r);
        }
        (Some(r), false) => {
            w.raw(b" ");
            w.token(r);
        }
        (None, true) => w.raw(b" |"),
        (None, false) => {}
    }
    for q in queues.iter() {
        w.raw(b" ");
        w.token(q);
    }
    w.sizes(hdr_len, total);
}

/// Writes into a caller's buffer without ever failing midway: it keeps counting past the
/// end (so [`EncodeError::BufferTooSmall`] can say how much is needed, and an empty buffer
/// measures) and notes invalid arguments; [`Writer::finish`] reports.
struct Writer<'o> {
    out: &'o mut [u8],
    pos: usize,
    invalid: bool,
}

impl<'o> Writer<'o> {
    fn new(out: &'o mut [u8]) -> Self {
        Writer {
            out,
            pos: 0,
            invalid: false,
        }
    }

    fn raw(&mut self, b: &[u8]) {
        let end = self.pos.saturating_add(b.len());
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            dst.copy_from_slice(b);
        }
        self.pos = end;
    }

    /// A blank-free, non-empty argument.
    fn token(&mut self, t: &[u8]) {
        if t.is_empty() || t.iter().any(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
            self.invalid = true;
        }
        self.raw(t);
    }

    /// Free text on the control line (JSON, error text): anything but LF, which would end
    /// the line. A lone CR is harmless (the parser ends lines at LF) and parses back as is.
    fn text(&mut self, t: &[u8]) {
        if t.contains(&b'\n') {
            self.invalid = true;
        }
        self.raw(t);
    }

    fn num(&mut self, n: u64) {
        let mut buf = [0; 20];
        let d = fmt_u64(n, &mut buf);
        self.raw(d);
    }

    /// ` [hdr_len] total\r\n`; a header size above the total is refused.
    fn sizes(&mut self, hdr_len: Option<usize>, total: usize) {
        if let Some(h) = hdr_len {
            if h > total {
                self.invalid = true;
            }
            self.raw(b" ");
            self.num(u64::try_from(h).unwrap_or(u64::MAX));
        }
        self.raw(b" ");
        self.num(u64::try_from(total).unwrap_or(u64::MAX));
        self.raw(CRLF);
    }

    /// A payload in parts, then its CRLF.
    fn body(&mut self, parts: &[&[u8]]) {
        for p in parts {
            self.raw(p);
        }
        self.raw(CRLF);
    }

    fn sum(&mut self, a: usize, b: usize) -> usize {
        a.checked_add(b).unwrap_or_else(|| {
            self.invalid = true;
            usize::MAX
        })
    }

    fn finish(self) -> Result<usize, EncodeError> {
        if self.invalid {
            Err(EncodeError::InvalidArgument)
        } else if self.pos > self.out.len() {
            Err(EncodeError::BufferTooSmall { needed: self.pos })
        } else {
            Ok(self.pos)
        }
    }
}
