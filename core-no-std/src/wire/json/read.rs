//! A pull reader over JSON bytes: no heap, no recursion, no panics on any input.
//!
//! Only what INFO/CONNECT need: one object of known keys whose values are strings, booleans,
//! integers, string arrays or small permission objects; anything else is checked and skipped.

use super::text::{JsonStr, StrList};
use super::{JsonError, MAX_DEPTH};

/// The longest key we look up (`ws_connect_urls`, `info_on_connect`, `cluster_dynamic`: 15).
const KEY_CAP: usize = 16;

/// A cursor over JSON bytes.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.bump();
        }
    }

    /// The next non-whitespace byte, not consumed.
    fn peek_ws(&mut self) -> Result<u8, JsonError> {
        self.skip_ws();
        self.peek().ok_or(JsonError::UnexpectedEnd)
    }

    /// Consumes `byte` (after whitespace) or fails.
    pub(crate) fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.peek_ws()? == byte {
            self.bump();
            Ok(())
        } else {
            Err(JsonError::Syntax)
        }
    }

    /// Consumes `byte` (after whitespace) if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// After the top-level value: only whitespace may remain.
    pub(crate) fn finish(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(JsonError::TrailingCharacters),
        }
    }

    fn slice(&self, start: usize, end: usize) -> Result<&'a [u8], JsonError> {
        self.bytes.get(start..end).ok_or(JsonError::UnexpectedEnd)
    }

    /// A string value (`"` next, after whitespace): checked, not decoded.
    pub(crate) fn string(&mut self) -> Result<JsonStr<'a>, JsonError> {
        if self.peek_ws()? != b'"' {
            return Err(JsonError::WrongType);
        }
        self.bump();
        let start = self.pos;
        let mut escaped = false;
        loop {
            let b = self.peek().ok_or(JsonError::UnexpectedEnd)?;
            self.bump();
            match b {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0x00..=0x1f => return Err(JsonError::InvalidString),
                _ => {}
            }
        }
        let content = self.slice(start, self.pos.saturating_sub(1))?;
        let text = core::str::from_utf8(content).map_err(|_| JsonError::InvalidString)?;
        Ok(JsonStr::from_json(text, escaped))
    }

    /// Checks one escape; the backslash is consumed.
    fn escape(&mut self) -> Result<(), JsonError> {
        let b = self.peek().ok_or(JsonError::UnexpectedEnd)?;
        self.bump();
        match b {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => {
                for _ in 0..4 {
                    let h = self.peek().ok_or(JsonError::UnexpectedEnd)?;
                    if !h.is_ascii_hexdigit() {
                        return Err(JsonError::InvalidString);
                    }
                    self.bump();
                }
                Ok(())
            }
            _ => Err(JsonError::InvalidString),
        }
    }

    /// Consumes `word` (`true`, `false`, `null`), whose first byte is next.
    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        let end = self.pos.checked_add(word.len()).ok_or(JsonError::Syntax)?;
        match self.bytes.get(self.pos..end) {
            Some(found) if found == word => {
                self.pos = end;
                Ok(())
            }
            // A prefix of the word at the end of input is a truncation, not a typo.
            _ if self
                .bytes
                .get(self.pos..)
                .is_some_and(|rest| word.starts_with(rest)) =>
            {
                Err(JsonError::UnexpectedEnd)
            }
            _ => Err(JsonError::Syntax),
        }
    }

    /// `null` next (consumed)? Any other value is left in place.
    pub(crate) fn null(&mut self) -> Result<bool, JsonError> {
        if self.peek_ws()? == b'n' {
            self.literal(b"null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// A number token, checked against JSON's grammar.
    fn number(&mut self) -> Result<&'a [u8], JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => self.bump(),
            Some(b'1'..=b'9') => self.digits(),
            Some(_) => return Err(JsonError::InvalidNumber),
            None => return Err(JsonError::UnexpectedEnd),
        }
        if self.peek() == Some(b'.') {
            self.bump();
            self.required_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.bump();
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            self.required_digits()?;
        }
        self.slice(start, self.pos)
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.bump();
        }
    }

    fn required_digits(&mut self) -> Result<(), JsonError> {
        match self.peek() {
            Some(b) if b.is_ascii_digit() => {
                self.digits();
                Ok(())
            }
            Some(_) => Err(JsonError::InvalidNumber),
            None => Err(JsonError::UnexpectedEnd),
        }
    }

    /// An integer as (negative, magnitude); `None` for `null`.
    fn integer(&mut self) -> Result<Option<(bool, u64)>, JsonError> {
        if self.null()? {
            return Ok(None);
        }
        match self.peek_ws()? {
            b'-' | b'0'..=b'9' => {}
            _ => return Err(JsonError::WrongType),
        }
        let token = self.number()?;
        let (negative, digits) = match token.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, token),
        };
        let mut value = 0u64;
        for &d in digits {
            if !d.is_ascii_digit() {
                // A fraction or exponent: Go refuses these for integer fields too.
                return Err(JsonError::WrongType);
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
                .ok_or(JsonError::NumberOutOfRange)?;
        }
        Ok(Some((negative, value)))
    }

    /// An `i32` field (`proto`, `port`, `max_payload`, `api_lvl`, `protocol`); `null` gives 0.
    pub(crate) fn i32(&mut self) -> Result<i32, JsonError> {
        let Some((negative, magnitude)) = self.integer()? else {
            return Ok(0);
        };
        let magnitude = i64::try_from(magnitude).map_err(|_| JsonError::NumberOutOfRange)?;
        let value = if negative { -magnitude } else { magnitude };
        i32::try_from(value).map_err(|_| JsonError::NumberOutOfRange)
    }

    /// A `u64` field (`client_id`); `null` gives 0.
    pub(crate) fn u64(&mut self) -> Result<u64, JsonError> {
        match self.integer()? {
            None => Ok(0),
            Some((_, 0)) => Ok(0), // `-0`
            Some((true, _)) => Err(JsonError::NumberOutOfRange),
            Some((false, value)) => Ok(value),
        }
    }

    /// A boolean, `None` for `null`.
    pub(crate) fn opt_bool(&mut self) -> Result<Option<bool>, JsonError> {
        match self.peek_ws()? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            b'n' => self.literal(b"null").map(|()| None),
            _ => Err(JsonError::WrongType),
        }
    }

    /// A boolean field where `null` means false.
    pub(crate) fn bool(&mut self) -> Result<bool, JsonError> {
        Ok(self.opt_bool()?.unwrap_or(false))
    }

    /// A string, `None` for `null`.
    pub(crate) fn opt_string(&mut self) -> Result<Option<JsonStr<'a>>, JsonError> {
        if self.null()? {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// A string field where `null` means empty.
    pub(crate) fn string_or_empty(&mut self) -> Result<JsonStr<'a>, JsonError> {
        Ok(self.opt_string()?.unwrap_or_default())
    }

    /// An array of strings, `None` for `null`.
    pub(crate) fn str_list(&mut self) -> Result<Option<StrList<'a>>, JsonError> {
        if self.null()? {
            return Ok(None);
        }
        if self.peek_ws()? != b'[' {
            return Err(JsonError::WrongType);
        }
        let start = self.pos;
        self.bump();
        if !self.eat(b']') {
            loop {
                self.string()?;
                if self.eat(b']') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        Ok(Some(StrList::from_json(self.slice(start, self.pos)?)))
    }

    /// The next string of a checked array whose `[` was consumed; `None` at `]`.
    pub(crate) fn next_list_item(&mut self) -> Result<Option<JsonStr<'a>>, JsonError> {
        if self.eat(b']') {
            return Ok(None);
        }
        self.eat(b',');
        self.string().map(Some)
    }

    /// Reads an object, calling `field` with each key (ASCII-lowercased; empty if it cannot be
    /// one of ours) and the reader positioned at its value. `field` must consume the value,
    /// e.g. with [`skip_value`](Self::skip_value) for keys it does not know.
    pub(crate) fn object<F>(&mut self, mut field: F) -> Result<(), JsonError>
    where
        F: FnMut(&[u8], &mut Self) -> Result<(), JsonError>,
    {
        match self.peek_ws()? {
            b'{' => self.bump(),
            _ => return Err(JsonError::ExpectedObject),
        }
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            if self.peek_ws()? != b'"' {
                return Err(JsonError::Syntax);
            }
            let key = self.string()?;
            let mut buf = [0u8; KEY_CAP];
            let len = fold_key(key, &mut buf);
            self.expect(b':')?;
            field(buf.get(..len).unwrap_or_default(), self)?;
            if self.eat(b'}') {
                return Ok(());
            }
            self.expect(b',')?;
        }
    }

    /// Checks and skips one value of any type, iteratively (nesting capped at [`MAX_DEPTH`]).
    pub(crate) fn skip_value(&mut self) -> Result<(), JsonError> {
        // Bit i of `stack` is 1 when the container at depth i+1 is an object.
        let mut stack = 0u64;
        let mut depth = 0u32;
        loop {
            // Expecting a value.
            let opened = match self.peek_ws()? {
                open @ (b'{' | b'[') => {
                    if depth >= MAX_DEPTH {
                        return Err(JsonError::TooDeep);
                    }
                    self.bump();
                    let is_object = open == b'{';
                    stack = stack << 1 | u64::from(is_object);
                    depth += 1;
                    if self.eat(if is_object { b'}' } else { b']' }) {
                        stack >>= 1;
                        depth -= 1;
                        false
                    } else {
                        if is_object {
                            self.member_key()?;
                        }
                        true
                    }
                }
                b'"' => self.string().map(|_| false)?,
                b't' => self.literal(b"true").map(|()| false)?,
                b'f' => self.literal(b"false").map(|()| false)?,
                b'n' => self.literal(b"null").map(|()| false)?,
                b'-' | b'0'..=b'9' => self.number().map(|_| false)?,
                _ => return Err(JsonError::Syntax),
            };
            if opened {
                continue; // its first value is next
            }
            // A value is complete: close containers until one continues with a comma.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = stack & 1 == 1;
                let b = self.peek_ws()?;
                self.bump();
                match b {
                    b',' => {
                        if in_object {
                            self.member_key()?;
                        }
                        break;
                    }
                    b'}' if in_object => {}
                    b']' if !in_object => {}
                    _ => return Err(JsonError::Syntax),
                }
                stack >>= 1;
                depth -= 1;
            }
        }
    }

    /// `"key":` inside a skipped object.
    fn member_key(&mut self) -> Result<(), JsonError> {
        if self.peek_ws()? != b'"' {
            return Err(JsonError::Syntax);
        }
        self.string()?;
        self.expect(b':')
    }
}

/// Dispatches one object member to the statement for its key (a lowercased key from
/// [`Reader::object`]), skipping unknown keys.
///
/// Expands to a key table searched once plus a run of index tests, rather than a `match` on
/// byte strings: on thumbv7em that halves the code of a 35-key INFO reader.
macro_rules! read_fields {
    ($key:expr, $r:ident, { $($name:literal => $read:expr,)* }) => {{
        const KEYS: &[&[u8]] = &[$($name),*];
        let found = KEYS.iter().position(|k| *k == $key);
        let mut _index = 0usize;
        $(
            if found == Some(_index) {
                $read;
                return Ok(());
            }
            _index += 1;
        )*
        $r.skip_value()
    }};
}
pub(crate) use read_fields;

/// ASCII-lowercases `key` into `buf`; returns its length, or 0 for a key that cannot match any
/// field (too long, not ASCII, or written with escapes), which then falls through to
/// "unknown". No NATS peer escapes a key; not decoding them keeps the MCU build small.
fn fold_key(key: JsonStr<'_>, buf: &mut [u8; KEY_CAP]) -> usize {
    if key.has_escapes() {
        return 0;
    }
    let raw = key.raw().as_bytes();
    match buf.get_mut(..raw.len()) {
        Some(dst) if raw.is_ascii() => {
            for (d, s) in dst.iter_mut().zip(raw) {
                *d = s.to_ascii_lowercase();
            }
            raw.len()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn skip(json: &str) -> Result<(), JsonError> {
        let mut r = Reader::new(json.as_bytes());
        r.skip_value()?;
        r.finish()
    }

    #[test]
    fn skips_every_kind_of_value() {
        for ok in [
            "1",
            "-0.5e+10",
            "\"s\\u0041\"",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            "[1, [2, {\"a\": [null]}], {}]",
            "{\"a\": {\"b\": {\"c\": []}}, \"d\": 1}",
        ] {
            assert_eq!(skip(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_broken_values() {
        for (bad, err) in [
            ("[1,]", JsonError::Syntax),
            ("[1 2]", JsonError::Syntax),
            ("{\"a\" 1}", JsonError::Syntax),
            ("{\"a\":1,}", JsonError::Syntax),
            ("{1:2}", JsonError::Syntax),
            ("[}", JsonError::Syntax),
            ("01", JsonError::TrailingCharacters),
            ("1.", JsonError::UnexpectedEnd),
            ("1.x", JsonError::InvalidNumber),
            ("-", JsonError::UnexpectedEnd),
            ("tru", JsonError::UnexpectedEnd),
            ("trux", JsonError::Syntax),
            ("\"\\x\"", JsonError::InvalidString),
            ("\"\\u12g4\"", JsonError::InvalidString),
            ("\"a\nb\"", JsonError::InvalidString),
            ("[[[", JsonError::UnexpectedEnd),
        ] {
            assert_eq!(skip(bad), Err(err), "{bad}");
        }
    }

    #[test]
    fn nesting_is_capped_without_recursion() {
        let deep = "[".repeat(MAX_DEPTH as usize + 1);
        assert_eq!(skip(&deep), Err(JsonError::TooDeep));
        let ok = "[".repeat(MAX_DEPTH as usize) + &"]".repeat(MAX_DEPTH as usize);
        assert_eq!(skip(&ok), Ok(()));
    }

    #[test]
    fn integers_fit_their_fields_or_fail() {
        let int = |s: &str| Reader::new(s.as_bytes()).i32();
        assert_eq!(int("1048576"), Ok(1_048_576));
        assert_eq!(int("-1"), Ok(-1));
        assert_eq!(int("null"), Ok(0));
        assert_eq!(int("2147483648"), Err(JsonError::NumberOutOfRange));
        assert_eq!(
            int("99999999999999999999999"),
            Err(JsonError::NumberOutOfRange)
        );
        assert_eq!(int("1.5"), Err(JsonError::WrongType));
        assert_eq!(int("1e3"), Err(JsonError::WrongType));
        assert_eq!(int("\"1\""), Err(JsonError::WrongType));
        let uint = |s: &str| Reader::new(s.as_bytes()).u64();
        assert_eq!(uint("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(uint("-1"), Err(JsonError::NumberOutOfRange));
        assert_eq!(uint("-0"), Ok(0));
    }

    #[test]
    fn keys_fold_ascii_case_and_escaped_keys_are_unknown() {
        let mut seen = std::vec::Vec::new();
        let mut r = Reader::new(br#"{"VerBose": true, "Ver\u0062ose": false}"#);
        r.object(|key, r| {
            seen.push(std::vec::Vec::from(key));
            r.skip_value()
        })
        .expect("valid");
        // An escaped key never matches a field (no NATS peer writes one).
        assert_eq!(seen, [&b"verbose"[..], b""]);
    }
}
