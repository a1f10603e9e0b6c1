//! The incremental parser: ops out of a buffer the caller owns and refills.
//!
//! Contract (as smoltcp states its own): the caller keeps a buffer of received bytes and
//! passes the part not yet consumed, `&buf[start..end]`, to [`Parser::parse`]. Between two
//! calls it may only append bytes at the end. When an op comes back with its length `n`,
//! the next call starts `n` bytes further. Under that contract an op split across reads at
//! any byte parses exactly as it does whole, and no byte is scanned twice while waiting.
//! Whatever the caller passes, nothing panics; a broken contract only yields wrong ops.

use super::args::is_blank;
use super::error::ParseError;
use super::line::{Head, Start, classify, parse_args};
use super::op::{Limits, Mode, Op};

/// Incremental, zero-copy parser of NATS ops for one connection.
///
/// ```
/// use twig_core::wire::{Limits, Mode, Op, Parser};
///
/// let mut p = Parser::new(Mode::FromClient, Limits::default());
/// let mut buf = b"PUB greet 5\r\nhel".to_vec();
/// assert_eq!(p.parse(&buf), Ok(None)); // the payload is not all here
/// assert_eq!(p.needed(), Some(20)); // bytes the op takes, counted from `buf`'s start
/// buf.extend_from_slice(b"lo\r\nPING\r\n");
/// let (op, n) = p.parse(&buf).unwrap().unwrap();
/// assert_eq!(op, Op::Pub { subject: b"greet", reply: None, payload: b"hello" });
/// assert_eq!(p.parse(&buf[n..]), Ok(Some((Op::Ping, 6))));
/// ```
#[derive(Clone, Debug)]
pub struct Parser {
    mode: Mode,
    limits: Limits,
    /// Bytes of the pending line already searched for its LF without finding one.
    scanned: usize,
    /// How far the blanks after the pending line's op name have been skipped.
    blanks_end: usize,
    /// Length of the pending op's control line including its LF, once known.
    line_len: usize,
    /// Total length of the pending op (line, payload, CRLF) once its line is known; 0 before.
    need: usize,
}

impl Parser {
    /// A parser for bytes coming from the peer described by `mode`.
    pub const fn new(mode: Mode, limits: Limits) -> Self {
        Parser {
            mode,
            limits,
            scanned: 0,
            blanks_end: 0,
            line_len: 0,
            need: 0,
        }
    }

    /// Which peer's bytes this parser reads.
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// The limits in force.
    pub const fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the limits, e.g. to the `max_payload` a server announced in its INFO.
    /// Takes effect from the next control line.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Forgets any partly received op (e.g. after a reconnect).
    pub fn reset(&mut self) {
        self.scanned = 0;
        self.blanks_end = 0;
        self.line_len = 0;
        self.need = 0;
    }

    /// Bytes the pending op occupies in total, counted from the start of the buffer, once
    /// its control line is complete (`None` before that, or when nothing is pending).
    /// A caller with a fixed buffer smaller than this can never complete the op.
    pub const fn needed(&self) -> Option<usize> {
        if self.need == 0 {
            None
        } else {
            Some(self.need)
        }
    }

    /// Parses the next op at the start of `buf`.
    ///
    /// Returns the op and the number of bytes it took, `Ok(None)` when `buf` holds only part
    /// of an op (call again with more bytes appended), or the error that ends the
    /// connection. Errors come as early as the bytes allow: an unknown op name at its first
    /// wrong byte, an over-long control line before its end arrives, an over-large payload
    /// before the payload arrives.
    pub fn parse<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Op<'a>, usize)>, ParseError> {
        let result = self.step(buf);
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    /// Iterates over the complete ops in `buf`; [`Ops::consumed`] then tells how many bytes
    /// to drop. Stops at the first error (which it yields) or incomplete op.
    pub fn ops<'p, 'a>(&'p mut self, buf: &'a [u8]) -> Ops<'p, 'a> {
        Ops {
            parser: self,
            buf,
            consumed: 0,
            done: false,
        }
    }

    fn step<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Op<'a>, usize)>, ParseError> {
        if self.need != 0 {
            if buf.len() < self.need {
                self.check_payload_cr(buf)?;
                return Ok(None);
            }
            return self.complete(buf, self.line_len);
        }
        let from = self.scanned.min(buf.len());
        let tail = buf.get(from..).unwrap_or_default();
        match tail.iter().position(|&b| b == b'\n') {
            Some(i) => self.complete(buf, from + i + 1),
            None => {
                self.scanned = buf.len();
                self.check_partial_line(buf)?;
                Ok(None)
            }
        }
    }

    /// Refuses an unterminated line as soon as its start or length is wrong.
    fn check_partial_line(&mut self, buf: &[u8]) -> Result<(), ParseError> {
        let Start::Op(_, args_at) = classify(buf)? else {
            return Ok(());
        };
        // Continue skipping blanks where the last call stopped, so tiny reads cost O(1).
        let from = self.blanks_end.max(args_at).min(buf.len());
        let skipped = buf
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| is_blank(b))
            .count();
        self.blanks_end = from + skipped;
        // A trailing CR may be the start of the CRLF; it does not count.
        let end = match buf.last() {
            Some(b'\r') => buf.len() - 1,
            _ => buf.len(),
        };
        let blanks = self.blanks_end.saturating_sub(args_at);
        let args = end.saturating_sub(self.blanks_end);
        self.check_line_len(blanks, args)
    }

    /// nats-server measures a control line by its arguments, leading blanks skipped. It
    /// never buffers those blanks, but our caller does, so a run of them is bounded too.
    fn check_line_len(&self, blanks: usize, args: usize) -> Result<(), ParseError> {
        let max = self.limits.max_control_line;
        if blanks > max || args > max {
            return Err(ParseError::ControlLineTooLong);
        }
        Ok(())
    }

    /// With the payload not all here, refuses early if the byte due to be its CR is not.
    fn check_payload_cr(&self, buf: &[u8]) -> Result<(), ParseError> {
        match buf.get(self.need.wrapping_sub(2)) {
            Some(&b) if b != b'\r' => Err(ParseError::MissingPayloadCrlf),
            _ => Ok(()),
        }
    }

    /// Parses the op whose control line is `buf[..line_len]` (LF included).
    fn complete<'a>(
        &mut self,
        buf: &'a [u8],
        line_len: usize,
    ) -> Result<Option<(Op<'a>, usize)>, ParseError> {
        let line = buf.get(..line_len.saturating_sub(1)).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Start::Op(kind, args_at) = classify(line)? else {
            // The line ended inside an op name or before a required blank.
            return Err(ParseError::UnknownOp);
        };
        let rest = line.get(args_at..).unwrap_or_default();
        let blanks = rest.iter().take_while(|&&b| is_blank(b)).count();
        let args = rest.get(blanks..).unwrap_or_default();
        self.check_line_len(blanks, args.len())?;
        let head = match parse_args(kind, args, self.mode, &self.limits)? {
            Head::Done(op) => return Ok(Some((op, line_len))),
            Head::Payload(head) => head,
        };
        let need = line_len
            .checked_add(head.size)
            .and_then(|n| n.checked_add(2))
            .ok_or(ParseError::MaxPayload)?;
        let Some(rest) = buf.get(line_len..need) else {
            self.line_len = line_len;
            self.need = need;
            self.check_payload_cr(buf)?;
            return Ok(None);
        };
        let (payload, crlf) = rest
            .split_at_checked(head.size)
            .ok_or(ParseError::MissingPayloadCrlf)?;
        if crlf != b"\r\n" {
            return Err(ParseError::MissingPayloadCrlf);
        }
        Ok(Some((head.into_op(payload), need)))
    }
}

/// Iterator over the complete ops of one buffer, from [`Parser::ops`].
#[derive(Debug)]
pub struct Ops<'p, 'a> {
    parser: &'p mut Parser,
    buf: &'a [u8],
    consumed: usize,
    done: bool,
}

impl Ops<'_, '_> {
    /// Bytes taken by the ops returned so far: drop them from the buffer before the next read.
    pub const fn consumed(&self) -> usize {
        self.consumed
    }
}

impl<'a> Iterator for Ops<'_, 'a> {
    type Item = Result<Op<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.buf.get(self.consumed..).unwrap_or_default();
        match self.parser.parse(rest) {
            Ok(Some((op, n))) => {
                self.consumed = self.consumed.saturating_add(n);
                Some(Ok(op))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
