//! Header blocks of `HPUB`/`HMSG`: `NATS/1.0[ status[ description]]\r\n`, then
//! `Key: Value\r\n` lines, then an empty line. Parsed as a zero-copy view ([`Headers`]) and
//! built into a caller's buffer ([`HeaderWriter`]).
//!
//! Keys are matched exactly, case-sensitively, as nats-server's own lookups do
//! (`Nats-Msg-Id` is not `nats-msg-id`); values are returned with surrounding blanks
//! trimmed, as Go's `textproto` (used by nats-server and nats.go) returns them.

use super::args::{is_blank, trim_blanks};
use super::error::HeaderError;

const VERSION: &[u8] = b"NATS/1.0";

/// A checked view of a header block. After [`Headers::parse`] succeeded, every accessor is
/// infallible and allocation-free.
///
/// ```
/// use twig_core::wire::Headers;
///
/// let h = Headers::parse(b"NATS/1.0 503\r\nNats-Subject: nobody.home\r\n\r\n").unwrap();
/// assert_eq!(h.status(), Some(503));
/// assert_eq!(h.get(b"Nats-Subject"), Some(&b"nobody.home"[..]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers<'a> {
    block: &'a [u8],
    status: Option<u16>,
    description: &'a [u8],
    /// The field lines, each with its CRLF, without the final empty line.
    fields: &'a [u8],
}

impl<'a> Headers<'a> {
    /// Checks `block`, which must be exactly one header block (as split off by the parser:
    /// the header size covers the final empty line).
    pub fn parse(block: &'a [u8]) -> Result<Self, HeaderError> {
        let after_version = block.strip_prefix(VERSION).ok_or(HeaderError::BadVersion)?;
        let (first, mut rest) = split_line(after_version).ok_or(HeaderError::Malformed)?;
        let (status, description) = parse_status(first)?;
        let fields_at = block.len().saturating_sub(rest.len());
        loop {
            let (line, next) = split_line(rest).ok_or(HeaderError::Malformed)?;
            if line.is_empty() {
                // The empty line ends the block, and must be its very end.
                if !next.is_empty() {
                    return Err(HeaderError::Malformed);
                }
                break;
            }
            split_field(line).ok_or(HeaderError::Malformed)?;
            rest = next;
        }
        let fields_end = block.len().saturating_sub(2);
        Ok(Headers {
            block,
            status,
            description,
            fields: block.get(fields_at..fields_end).unwrap_or_default(),
        })
    }

    /// The whole block, as parsed.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.block
    }

    /// The status code after `NATS/1.0`, if any (e.g. 503 no responders, 408 timeouts).
    pub const fn status(&self) -> Option<u16> {
        self.status
    }

    /// The status description (e.g. `No Messages`), if any.
    pub fn description(&self) -> Option<&'a [u8]> {
        (!self.description.is_empty()).then_some(self.description)
    }

    /// The fields `(key, value)` in order, duplicates included.
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter { rest: self.fields }
    }

    /// The value of the first field whose key is exactly `key`.
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.iter().find(|&(k, _)| k == key).map(|(_, v)| v)
    }

    /// The values of every field whose key is exactly `key`, in order.
    pub fn get_all<'k>(&self, key: &'k [u8]) -> impl Iterator<Item = &'a [u8]> + 'k
    where
        'a: 'k,
    {
        self.iter().filter(move |&(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = HeaderIter<'a>;
    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// Iterator over the `(key, value)` fields of [`Headers`].
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let (line, next) = split_line(self.rest)?;
        self.rest = next;
        // Lines were checked by `Headers::parse`.
        split_field(line)
    }
}

/// The line before the first CRLF, and what follows it. A lone CR or LF is not allowed.
fn split_line(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let (line, rest) = s.split_at_checked(i)?;
    Some((line, rest.strip_prefix(b"\r\n")?))
}

/// `Key: Value` into the key and the trimmed value; `None` without a colon or with an
/// empty key or a blank in the key.
fn split_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (key, value) = line.split_at_checked(colon)?;
    if key.is_empty() || key.iter().any(|&b| is_blank(b)) {
        return None;
    }
    Some((key, trim_blanks(value.get(1..).unwrap_or_default())))
}

/// What follows `NATS/1.0` on the first line: nothing, or a 3-digit status and an
/// optional description.
fn parse_status(s: &[u8]) -> Result<(Option<u16>, &[u8]), HeaderError> {
    if s.is_empty() {
        return Ok((None, b""));
    }
    if !s.first().is_some_and(|&b| is_blank(b)) {
        // E.g. `NATS/1.01`: another version.
        return Err(HeaderError::BadVersion);
    }
    let s = trim_blanks(s);
    if s.is_empty() {
        return Ok((None, b""));
    }
    let (code, rest) = s.split_at_checked(3).ok_or(HeaderError::BadStatus)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.first().is_some_and(|&b| !is_blank(b)) {
        return Err(HeaderError::BadStatus);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    Ok((Some(status), trim_blanks(rest)))
}

/// Builds a header block in a caller's buffer. Room for the final empty line is kept from
/// the start, so [`HeaderWriter::finish`] cannot fail; a field that does not fit is
/// refused whole and leaves the block as it was.
///
/// ```
/// use twig_core::wire::{HeaderWriter, Headers};
///
/// let mut buf = [0u8; 64];
/// let mut w = HeaderWriter::new(&mut buf).unwrap();
/// w.push(b"Nats-Msg-Id", b"m1").unwrap();
/// let n = w.finish();
/// assert_eq!(&buf[..n], b"NATS/1.0\r\nNats-Msg-Id: m1\r\n\r\n");
/// assert_eq!(Headers::parse(&buf[..n]).unwrap().get(b"Nats-Msg-Id"), Some(&b"m1"[..]));
/// ```
#[derive(Debug)]
pub struct HeaderWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> HeaderWriter<'b> {
    /// Starts a block without status: `NATS/1.0\r\n`.
    pub fn new(buf: &'b mut [u8]) -> Result<Self, HeaderError> {
        let mut w = HeaderWriter { buf, len: 0 };
        w.append(&[VERSION, b"\r\n"])?;
        Ok(w)
    }

    /// Starts a block with a status (100..=999) and an optional description (empty for
    /// none): `NATS/1.0 503\r\n`, `NATS/1.0 408 Request Timeout\r\n`.
    pub fn with_status(
        buf: &'b mut [u8],
        status: u16,
        description: &[u8],
    ) -> Result<Self, HeaderError> {
        if !(100..=999).contains(&status) {
            return Err(HeaderError::BadStatus);
        }
        if description.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(HeaderError::InvalidField);
        }
        // Three digits, each < 10 so the casts are exact.
        let code = [
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        let sep: &[u8] = if description.is_empty() { b"" } else { b" " };
        let mut w = HeaderWriter { buf, len: 0 };
        w.append(&[VERSION, b" ", &code, sep, description, b"\r\n"])?;
        Ok(w)
    }

    /// Adds `key: value`. Keys are visible ASCII without `:`; values may not hold CR or LF.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), HeaderError> {
        let key_ok =
            !key.is_empty() && key.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b':');
        if !key_ok || value.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(HeaderError::InvalidField);
        }
        self.append(&[key, b": ", value, b"\r\n"])
    }

    /// Length of the block if finished now.
    pub const fn len(&self) -> usize {
        self.len.saturating_add(2)
    }

    /// Never true: a block always holds at least its version line. (For clippy's sake.)
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Writes the final empty line; returns the block's length.
    pub fn finish(mut self) -> usize {
        // `append` always left two bytes free for this.
        let end = self.len.saturating_add(2);
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(b"\r\n");
        }
        self.len = end;
        end
    }

    /// Appends `parts` whole, keeping two bytes free for the final CRLF, or nothing.
    fn append(&mut self, parts: &[&[u8]]) -> Result<(), HeaderError> {
        let size = parts.iter().map(|p| p.len()).sum::<usize>();
        let end = self.len.checked_add(size).ok_or(HeaderError::BufferFull)?;
        if end.checked_add(2).is_none_or(|n| n > self.buf.len()) {
            return Err(HeaderError::BufferFull);
        }
        for p in parts {
            let to = self.len.saturating_add(p.len());
            if let Some(dst) = self.buf.get_mut(self.len..to) {
                dst.copy_from_slice(p);
            }
            self.len = to;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_status_and_fields() {
        let h = Headers::parse(b"NATS/1.0\r\n\r\n").unwrap();
        assert_eq!(
            (h.status(), h.description(), h.iter().count()),
            (None, None, 0)
        );

        let h = Headers::parse(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n")
            .unwrap();
        assert_eq!(h.status(), Some(408));
        assert_eq!(h.description(), Some(&b"Request Timeout"[..]));
        assert_eq!(h.get(b"Nats-Pending-Messages"), Some(&b"1"[..]));

        let h = Headers::parse(b"NATS/1.0\r\nA: 1\r\nB:2\r\nA:  3 \r\n\r\n").unwrap();
        let fields: [(&[u8], &[u8]); 3] = [(b"A", b"1"), (b"B", b"2"), (b"A", b"3")];
        assert!(h.iter().eq(fields));
        assert!(h.get_all(b"A").eq([&b"1"[..], b"3"]));
        assert_eq!(
            h.get(b"a"),
            None,
            "keys match case-sensitively, like nats-server"
        );
    }

    #[test]
    fn refuses_malformed_blocks() {
        assert_eq!(
            Headers::parse(b"HTTP/1.1\r\n\r\n"),
            Err(HeaderError::BadVersion)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.01\r\n\r\n"),
            Err(HeaderError::BadVersion)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0 50\r\n\r\n"),
            Err(HeaderError::BadStatus)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0 5034\r\n\r\n"),
            Err(HeaderError::BadStatus)
        );
        assert_eq!(Headers::parse(b"NATS/1.0\r\n"), Err(HeaderError::Malformed));
        assert_eq!(
            Headers::parse(b"NATS/1.0\r\nA: 1\r\n"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0\r\nno colon\r\n\r\n"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0\r\n: v\r\n\r\n"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0\r\nA B: v\r\n\r\n"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0\r\nA: 1\n\r\n"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            Headers::parse(b"NATS/1.0\r\n\r\nextra"),
            Err(HeaderError::Malformed)
        );
    }

    #[test]
    fn writer_builds_what_the_parser_reads() {
        let mut buf = [0u8; 80];
        let mut w = HeaderWriter::with_status(&mut buf, 503, b"").unwrap();
        w.push(b"Nats-Subject", b"nobody.home").unwrap();
        let n = w.finish();
        assert_eq!(
            &buf[..n],
            b"NATS/1.0 503\r\nNats-Subject: nobody.home\r\n\r\n"
        );

        let mut w = HeaderWriter::with_status(&mut buf, 100, b"Idle Heartbeat").unwrap();
        assert_eq!(w.len(), 31);
        w.push(b"Nats-Last-Consumer", b"7").unwrap();
        let n = w.finish();
        let h = Headers::parse(&buf[..n]).unwrap();
        assert_eq!(
            (h.status(), h.description()),
            (Some(100), Some(&b"Idle Heartbeat"[..]))
        );
        assert_eq!(h.get(b"Nats-Last-Consumer"), Some(&b"7"[..]));
    }

    #[test]
    fn writer_refuses_bad_fields_and_overflow_without_damage() {
        let mut buf = [0u8; 17];
        assert_eq!(
            HeaderWriter::with_status(&mut buf, 99, b"").err(),
            Some(HeaderError::BadStatus)
        );
        assert_eq!(
            HeaderWriter::with_status(&mut buf, 200, b"a\rb").err(),
            Some(HeaderError::InvalidField)
        );
        let mut w = HeaderWriter::new(&mut buf).unwrap();
        assert_eq!(w.push(b"A:B", b"v"), Err(HeaderError::InvalidField));
        assert_eq!(w.push(b"A", b"v\n"), Err(HeaderError::InvalidField));
        assert_eq!(w.push(b"", b"v"), Err(HeaderError::InvalidField));
        assert_eq!(w.push(b"Long", b"value"), Err(HeaderError::BufferFull));
        assert_eq!(
            w.push(b"K", b""),
            Ok(()),
            "5 bytes fit, leaving the final CRLF room"
        );
        let n = w.finish();
        assert_eq!(&buf[..n], b"NATS/1.0\r\nK: \r\n\r\n");
        assert_eq!(
            HeaderWriter::new(&mut [0u8; 11]).err(),
            Some(HeaderError::BufferFull)
        );
    }
}
