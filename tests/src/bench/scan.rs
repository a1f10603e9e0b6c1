//! A minimal scanner for what a NATS server sends a client: just enough to count `MSG`/`HMSG`
//! payloads, find reply subjects and see `PING`/`PONG`/`+OK`/`-ERR`/`INFO`.
//!
//! It is stateless on purpose: [`scan`] looks at the front of a buffer and either returns one
//! whole frame (with the number of bytes it used) or says how many bytes it needs. The caller
//! re-scans after reading more, so splitting the input anywhere cannot change the result (the
//! tests check every split point). twig-core's parser replaces this once it lands; the bench
//! keeps its own so that it does not depend on the code it measures.

use std::ops::Range;

/// Longest control line accepted (nats-server's `max_control_line` default is 4 KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// One frame, with byte ranges into the scanned buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `MSG` or `HMSG`; `payload` covers headers and payload (the whole message body).
    Msg {
        /// The subject the message was published to.
        subject: Range<usize>,
        /// The reply subject, when the publisher gave one.
        reply: Option<Range<usize>>,
        /// The message body, without the trailing CRLF.
        payload: Range<usize>,
    },
    /// `PING`: the server wants a `PONG`.
    Ping,
    /// `PONG`: the answer to our `PING`.
    Pong,
    /// `+OK` (only with `verbose`).
    Ok,
    /// `-ERR '<text>'`: the range covers the text after `-ERR `.
    Err(Range<usize>),
    /// `INFO {...}`: ignored by the bench.
    Info,
}

/// What [`scan`] found at the front of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scan {
    /// A whole frame that used this many bytes.
    Frame(Frame, usize),
    /// Not enough bytes yet; the frame needs at least this many in total (0 when unknown).
    Need(usize),
    /// Bytes no server sends; the string says which rule they broke.
    Bad(&'static str),
}

/// Scans one frame from the front of `buf`.
pub fn scan(buf: &[u8]) -> Scan {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_LINE {
            Scan::Bad("control line too long")
        } else {
            Scan::Need(0)
        };
    };
    let line_end = nl + 1;
    // The line without CR/LF; servers always send CRLF but a bare LF costs nothing to accept.
    let line = buf.get(..nl).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let op = line.get(..4).unwrap_or(line);
    if op.eq_ignore_ascii_case(b"MSG ")
        || line
            .get(..5)
            .is_some_and(|o| o.eq_ignore_ascii_case(b"HMSG "))
    {
        return scan_msg(buf, line, line_end);
    }
    let frame = if line.eq_ignore_ascii_case(b"PING") {
        Frame::Ping
    } else if line.eq_ignore_ascii_case(b"PONG") {
        Frame::Pong
    } else if line.eq_ignore_ascii_case(b"+OK") {
        Frame::Ok
    } else if op.eq_ignore_ascii_case(b"-ERR") {
        Frame::Err(line.len().min(5)..line.len())
    } else if op.eq_ignore_ascii_case(b"INFO") {
        Frame::Info
    } else {
        return Scan::Bad("unknown operation");
    };
    Scan::Frame(frame, line_end)
}

/// `MSG <subject> <sid> [reply] <size>` or `HMSG <subject> <sid> [reply] <hdr> <total>`.
fn scan_msg(buf: &[u8], line: &[u8], line_end: usize) -> Scan {
    let mut toks = [0..0, 0..0, 0..0, 0..0, 0..0, 0..0];
    let mut n = 0;
    for tok in tokens(line) {
        let Some(slot) = toks.get_mut(n) else {
            return Scan::Bad("too many MSG arguments");
        };
        *slot = tok;
        n += 1;
    }
    let headers = line.first().is_some_and(|b| b.eq_ignore_ascii_case(&b'H'));
    // op, subject, sid, [reply], [hdr], size
    let fixed = if headers { 5 } else { 4 };
    let reply = match n.checked_sub(fixed) {
        Some(0) => None,
        Some(1) => toks.get(3).cloned(),
        _ => return Scan::Bad("wrong number of MSG arguments"),
    };
    let Some(size) = toks
        .get(n - 1)
        .and_then(|r| line.get(r.clone()))
        .and_then(parse_size)
    else {
        return Scan::Bad("bad MSG size");
    };
    let Some(end) = line_end.checked_add(size).and_then(|e| e.checked_add(2)) else {
        return Scan::Bad("MSG size overflows");
    };
    if buf.len() < end {
        return Scan::Need(end);
    }
    if buf.get(end - 2..end) != Some(b"\r\n".as_slice()) {
        return Scan::Bad("payload not followed by CRLF");
    }
    let subject = toks.get(1).cloned().unwrap_or_default();
    Scan::Frame(
        Frame::Msg {
            subject,
            reply,
            payload: line_end..end - 2,
        },
        end,
    )
}

/// Ranges of the space/tab separated tokens of `line`.
fn tokens(line: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let is_sep = |b: &u8| *b == b' ' || *b == b'\t';
        let rest = line.get(i..)?;
        let start = i + rest.iter().position(|b| !is_sep(b))?;
        let len = line
            .get(start..)?
            .iter()
            .position(is_sep)
            .unwrap_or(line.len() - start);
        i = start + len;
        Some(start..i)
    })
}

/// A decimal size of at most 12 digits (no sign, no overflow).
fn parse_size(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &d| {
        let digit = usize::from(d.checked_sub(b'0').filter(|v| *v <= 9)?);
        acc.checked_mul(10)?.checked_add(digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"INFO {\"server_id\":\"x\"} \r\n+OK\r\nPONG\r\nMSG a.b 1 5\r\nhello\r\n\
        MSG a.b 1 _INBOX.x.1 0\r\n\r\nHMSG c 2 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n\
        -ERR 'Slow Consumer'\r\n";

    /// Scans a whole buffer, returning frames with their ranges resolved to text.
    fn scan_all(buf: &[u8]) -> (Vec<String>, usize) {
        let text = |r: Range<usize>, base: usize| {
            String::from_utf8_lossy(&buf[base + r.start..base + r.end]).into_owned()
        };
        let (mut out, mut at) = (Vec::new(), 0);
        while let Scan::Frame(f, used) = scan(&buf[at..]) {
            out.push(match f {
                Frame::Msg {
                    subject,
                    reply,
                    payload,
                } => format!(
                    "MSG {} {:?} {}",
                    text(subject, at),
                    reply.map(|r| text(r, at)),
                    text(payload, at)
                ),
                Frame::Err(r) => format!("ERR {}", text(r, at)),
                other => format!("{other:?}"),
            });
            at += used;
        }
        (out, at)
    }

    #[test]
    fn a_server_conversation_scans_frame_by_frame() {
        let (frames, used) = scan_all(STREAM);
        assert_eq!(
            frames,
            [
                "Info",
                "Ok",
                "Pong",
                "MSG a.b None hello",
                "MSG a.b Some(\"_INBOX.x.1\") ",
                "MSG c Some(\"r\") NATS/1.0\r\n\r\nhi",
                "Ping",
                "ERR 'Slow Consumer'",
            ]
        );
        assert_eq!(used, STREAM.len());
    }

    #[test]
    fn every_prefix_is_whole_frames_then_a_need() {
        let (all, _) = scan_all(STREAM);
        for cut in 0..STREAM.len() {
            let (frames, used) = scan_all(&STREAM[..cut]);
            assert_eq!(frames[..], all[..frames.len()], "cut at {cut}");
            assert!(
                matches!(scan(&STREAM[used..cut]), Scan::Need(_)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_partial_message_says_how_many_bytes_it_needs() {
        assert_eq!(scan(b"MSG s 1 10\r\nabc"), Scan::Need(12 + 10 + 2));
        assert_eq!(scan(b"MSG s 1"), Scan::Need(0));
    }

    #[test]
    fn broken_frames_are_bad_not_panics() {
        for bad in [
            &b"MSG s 1 x\r\n"[..],
            b"MSG s\r\n",
            b"MSG s 1 a b c d\r\n",
            b"MSG s 1 999999999999999\r\n",
            b"MSG s 1 2\r\nabXY",
            b"HMSG s 1 5\r\n",
            b"WHAT\r\n",
        ] {
            assert!(
                matches!(scan(bad), Scan::Bad(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(scan(&[b'x'; MAX_LINE + 1]), Scan::Bad(_)));
    }
}
