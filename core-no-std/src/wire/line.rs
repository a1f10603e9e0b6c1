//! Control lines: recognising op names and reading each op's arguments.
//!
//! Stateless; the incremental part lives in [`super::parser`]. Everything here works on
//! a complete line (without its CRLF) except [`classify`], which also answers for a
//! line's first bytes so garbage is refused before its line ends, as nats-server does.

use super::args::{Scan, is_blank, parse_size, parse_u64, trim_blanks};
use super::error::ParseError;
use super::op::{Limits, Mode, Op, Queues};

/// Which op a control line starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Pub,
    Hpub,
    Sub,
    Unsub,
    Msg,
    Hmsg,
    Lmsg,
    LsPlus,
    LsMinus,
    Ping,
    Pong,
    Ok,
    Err,
    Info,
    Connect,
}

impl Kind {
    /// Whether a blank must follow the name. nats-server requires it for ops with
    /// arguments and ignores whatever follows `PING`, `PONG`, `+OK` up to the LF;
    /// `INFO`/`CONNECT` take anything after optional blanks as their JSON.
    const fn needs_blank(self) -> bool {
        !matches!(
            self,
            Kind::Ping | Kind::Pong | Kind::Ok | Kind::Info | Kind::Connect
        )
    }
}

/// The candidates for each first byte; no name is a prefix of another.
fn candidates(first: u8) -> &'static [(&'static [u8], Kind)] {
    match first.to_ascii_uppercase() {
        b'P' => &[
            (b"PUB", Kind::Pub),
            (b"PING", Kind::Ping),
            (b"PONG", Kind::Pong),
        ],
        b'H' => &[(b"HPUB", Kind::Hpub), (b"HMSG", Kind::Hmsg)],
        b'S' => &[(b"SUB", Kind::Sub)],
        b'U' => &[(b"UNSUB", Kind::Unsub)],
        b'M' => &[(b"MSG", Kind::Msg)],
        b'L' => &[
            (b"LMSG", Kind::Lmsg),
            (b"LS+", Kind::LsPlus),
            (b"LS-", Kind::LsMinus),
        ],
        b'I' => &[(b"INFO", Kind::Info)],
        b'C' => &[(b"CONNECT", Kind::Connect)],
        b'+' => &[(b"+OK", Kind::Ok)],
        b'-' => &[(b"-ERR", Kind::Err)],
        _ => &[],
    }
}

/// What the first bytes of a line say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// Too few bytes to tell yet.
    Incomplete,
    /// The op, and where its arguments start (after the name and, when present, one blank).
    Op(Kind, usize),
}

/// Recognises the op at the start of `buf` (a line or its first bytes), case-insensitively.
pub(crate) fn classify(buf: &[u8]) -> Result<Start, ParseError> {
    let Some(&first) = buf.first() else {
        return Ok(Start::Incomplete);
    };
    let mut partial = false;
    for &(name, kind) in candidates(first) {
        let n = buf.len().min(name.len());
        let (Some(have), Some(want)) = (buf.get(..n), name.get(..n)) else {
            continue;
        };
        if !have.eq_ignore_ascii_case(want) {
            continue;
        }
        if buf.len() < name.len() {
            partial = true;
            continue;
        }
        let after = buf.get(name.len()).copied();
        return match after {
            None if kind.needs_blank() => Ok(Start::Incomplete),
            Some(b) if is_blank(b) => Ok(Start::Op(kind, name.len() + 1)),
            Some(_) if kind.needs_blank() => Err(ParseError::UnknownOp),
            _ => Ok(Start::Op(kind, name.len())),
        };
    }
    if partial {
        Ok(Start::Incomplete)
    } else {
        Err(ParseError::UnknownOp)
    }
}

/// A parsed control line: either a whole op, or the head of one whose payload follows.
pub(crate) enum Head<'a> {
    Done(Op<'a>),
    Payload(PayloadHead<'a>),
}

/// The control line of a payload-bearing op: what it says and how many bytes follow.
pub(crate) struct PayloadHead<'a> {
    form: Form<'a>,
    /// Header block size (0 for ops without headers).
    hdr: usize,
    /// Total payload size, header block included.
    pub(crate) size: usize,
}

enum Form<'a> {
    Pub(&'a [u8], Option<&'a [u8]>),
    Hpub(&'a [u8], Option<&'a [u8]>),
    Msg(&'a [u8], &'a [u8], Option<&'a [u8]>),
    Hmsg(&'a [u8], &'a [u8], Option<&'a [u8]>),
    Lmsg(&'a [u8], Option<&'a [u8]>, Queues<'a>, bool),
}

impl<'a> PayloadHead<'a> {
    /// The op, given exactly `size` payload bytes.
    pub(crate) fn into_op(self, payload: &'a [u8]) -> Op<'a> {
        let (headers, body) = payload.split_at_checked(self.hdr).unwrap_or((b"", payload));
        match self.form {
            Form::Pub(subject, reply) => Op::Pub {
                subject,
                reply,
                payload,
            },
            Form::Hpub(subject, reply) => Op::Hpub {
                subject,
                reply,
                headers,
                payload: body,
            },
            Form::Msg(subject, sid, reply) => Op::Msg {
                subject,
                sid,
                reply,
                payload,
            },
            Form::Hmsg(subject, sid, reply) => Op::Hmsg {
                subject,
                sid,
                reply,
                headers,
                payload: body,
            },
            Form::Lmsg(subject, reply, queues, with_headers) => Op::Lmsg {
                subject,
                reply,
                queues,
                headers: with_headers.then_some(headers),
                payload: if with_headers { body } else { payload },
            },
        }
    }
}

/// Reads the arguments `args` of a complete control line for op `kind`.
pub(crate) fn parse_args<'a>(
    kind: Kind,
    args: &'a [u8],
    mode: Mode,
    limits: &Limits,
) -> Result<Head<'a>, ParseError> {
    let done = |op| Ok(Head::Done(op));
    let s = Scan::new(args);
    let (form, hdr, size) = match kind {
        Kind::Ping => return done(Op::Ping),
        Kind::Pong => return done(Op::Pong),
        Kind::Ok => return done(Op::Ok),
        Kind::Info => return done(Op::Info(trim_blanks(args))),
        Kind::Connect => return done(Op::Connect(trim_blanks(args))),
        Kind::Err => return done(Op::Err(unquote(trim_blanks(args)))),
        Kind::Sub => {
            return match s.count {
                2 => done(Op::Sub {
                    subject: s.tok(0),
                    queue: None,
                    sid: s.tok(1),
                }),
                3 => done(Op::Sub {
                    subject: s.tok(0),
                    queue: Some(s.tok(1)),
                    sid: s.tok(2),
                }),
                _ => Err(ParseError::ArgCount),
            };
        }
        Kind::Unsub => {
            let max = match s.count {
                1 => None,
                // nats-server reads an unparsable max as -1, i.e. "unsubscribe now", and
                // keeps the connection: that is a max of 0 here.
                2 => Some(parse_u64(s.tok(1)).unwrap_or(0)),
                _ => return Err(ParseError::ArgCount),
            };
            return done(Op::Unsub { sid: s.tok(0), max });
        }
        Kind::LsPlus => {
            let queue = match s.count {
                1 => None,
                3 => {
                    let weight = parse_u64(s.tok(2))
                        .and_then(|w| u32::try_from(w).ok())
                        .ok_or(ParseError::BadNumber)?;
                    Some((s.tok(1), weight))
                }
                // `LS+ subj queue` without a weight included: nats-server closes.
                _ => return Err(ParseError::ArgCount),
            };
            return done(Op::LsPlus {
                subject: s.tok(0),
                queue,
            });
        }
        Kind::LsMinus => {
            let queue = match s.count {
                1 => None,
                2 => Some(s.tok(1)),
                _ => return Err(ParseError::ArgCount),
            };
            return done(Op::LsMinus {
                subject: s.tok(0),
                queue,
            });
        }
        Kind::Pub => {
            let reply = match s.count {
                2 => None,
                3 => Some(s.tok(1)),
                _ => return Err(ParseError::ArgCount),
            };
            (Form::Pub(s.tok(0), reply), 0, size(&s, 0)?)
        }
        Kind::Hpub => {
            let reply = match s.count {
                3 => None,
                4 => Some(s.tok(1)),
                _ => return Err(ParseError::ArgCount),
            };
            let (hdr, total) = sizes(&s)?;
            (Form::Hpub(s.tok(0), reply), hdr, total)
        }
        Kind::Msg | Kind::Lmsg if mode == Mode::Leaf || kind == Kind::Lmsg => leaf_msg(&s, false)?,
        Kind::Hmsg if mode == Mode::Leaf => leaf_msg(&s, true)?,
        Kind::Msg | Kind::Lmsg => {
            let reply = match s.count {
                3 => None,
                4 => Some(s.tok(2)),
                _ => return Err(ParseError::ArgCount),
            };
            (Form::Msg(s.tok(0), s.tok(1), reply), 0, size(&s, 0)?)
        }
        Kind::Hmsg => {
            let reply = match s.count {
                4 => None,
                5 => Some(s.tok(2)),
                _ => return Err(ParseError::ArgCount),
            };
            let (hdr, total) = sizes(&s)?;
            (Form::Hmsg(s.tok(0), s.tok(1), reply), hdr, total)
        }
    };
    if size > limits.max_payload {
        return Err(ParseError::MaxPayload);
    }
    Ok(Head::Payload(PayloadHead { form, hdr, size }))
}

/// The size `k` tokens from the end.
fn size(s: &Scan<'_>, k: usize) -> Result<usize, ParseError> {
    parse_size(s.tok_back(k)).ok_or(ParseError::BadSize)
}

/// The trailing `<#header bytes> <#total bytes>` pair, checked against each other.
fn sizes(s: &Scan<'_>) -> Result<(usize, usize), ParseError> {
    let hdr = size(s, 1)?;
    let total = size(s, 0)?;
    if hdr > total {
        return Err(ParseError::HeaderSizeExceedsTotal);
    }
    Ok((hdr, total))
}

/// The leafnode forms (nats-server `processLeafMsgArgs` / `processLeafHeaderMsgArgs`):
/// `subj [reply] sizes`, or with four or more arguments `subj + reply queues… sizes` and
/// `subj | queues… sizes`.
fn leaf_msg<'a>(s: &Scan<'a>, headers: bool) -> Result<(Form<'a>, usize, usize), ParseError> {
    let n_sizes = if headers { 2 } else { 1 };
    let plain = 1 + n_sizes;
    let (reply, queues) = if s.count < plain {
        return Err(ParseError::ArgCount);
    } else if s.count == plain {
        (None, Queues::EMPTY)
    } else if s.count == plain + 1 {
        (Some(s.tok(1)), Queues::EMPTY)
    } else {
        let last_queue = s.count - n_sizes - 1;
        match s.tok(1) {
            b"+" => (Some(s.tok(2)), Queues::from_raw(s.span(3, last_queue))),
            b"|" => (None, Queues::from_raw(s.span(2, last_queue))),
            _ => return Err(ParseError::BadReplyIndicator),
        }
    };
    let (hdr, total) = if headers { sizes(s)? } else { (0, size(s, 0)?) };
    Ok((Form::Lmsg(s.tok(0), reply, queues, headers), hdr, total))
}

/// The text of `'text'`; unquoted text as it is.
fn unquote(t: &[u8]) -> &[u8] {
    match t {
        [b'\'', inner @ .., b'\''] => inner,
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_recognised_case_insensitively_and_early() {
        assert_eq!(classify(b"pUb foo"), Ok(Start::Op(Kind::Pub, 4)));
        assert_eq!(classify(b"ls+\tx"), Ok(Start::Op(Kind::LsPlus, 4)));
        assert_eq!(classify(b"PI"), Ok(Start::Incomplete));
        assert_eq!(
            classify(b"PUB"),
            Ok(Start::Incomplete),
            "the blank is still due"
        );
        assert_eq!(classify(b"PUBX"), Err(ParseError::UnknownOp));
        assert_eq!(classify(b"PX"), Err(ParseError::UnknownOp));
        assert_eq!(classify(b"FOO"), Err(ParseError::UnknownOp));
        assert_eq!(classify(b" PING"), Err(ParseError::UnknownOp));
        assert_eq!(classify(b"PING"), Ok(Start::Op(Kind::Ping, 4)));
        assert_eq!(classify(b"PINGjunk"), Ok(Start::Op(Kind::Ping, 4)));
        assert_eq!(classify(b"CONNECT{}"), Ok(Start::Op(Kind::Connect, 7)));
        assert_eq!(classify(b"INFO {}"), Ok(Start::Op(Kind::Info, 5)));
    }

    #[test]
    fn err_text_is_unquoted() {
        assert_eq!(unquote(b"'Stale Connection'"), b"Stale Connection");
        assert_eq!(unquote(b"'"), b"'");
        assert_eq!(unquote(b"bare"), b"bare");
    }
}
