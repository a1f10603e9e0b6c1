//! Borrowed JSON strings and string lists, decoded on demand.

use core::fmt;

use super::JsonError;
use super::read::Reader;

/// A string borrowed from a JSON body, or plain text to be written into one.
///
/// Read from JSON it holds the text between the quotes as it was on the wire, escapes and all
/// (already checked, so decoding cannot fail). Built with [`JsonStr::new`] / `From<&str>` it holds
/// literal text that the writer escapes. Equality compares the decoded text, so
/// `"p\u0026ss"` read from the wire equals `JsonStr::new("p&ss")`.
#[derive(Clone, Copy, Default)]
pub struct JsonStr<'a> {
    text: &'a str,
    // true: `text` is JSON string content with at least one backslash escape in it.
    escaped: bool,
}

impl<'a> JsonStr<'a> {
    /// Literal text (not JSON-escaped); the writer escapes it as needed.
    pub const fn new(text: &'a str) -> Self {
        JsonStr {
            text,
            escaped: false,
        }
    }

    /// Wraps string content checked by the reader. `escaped` says whether it has a backslash.
    pub(crate) const fn from_json(text: &'a str, escaped: bool) -> Self {
        JsonStr { text, escaped }
    }

    /// The text itself when it needed no decoding (the common case), `None` if it has escapes.
    pub fn as_str(&self) -> Option<&'a str> {
        if self.escaped { None } else { Some(self.text) }
    }

    /// True if the text came from JSON with backslash escapes (so [`as_str`](Self::as_str) is
    /// `None` and the text must be decoded with [`chars`](Self::chars) or
    /// [`unescape_into`](Self::unescape_into)).
    pub fn has_escapes(&self) -> bool {
        self.escaped
    }

    /// The text as it appears between the quotes in JSON when [`has_escapes`](Self::has_escapes),
    /// else the literal text.
    pub fn raw(&self) -> &'a str {
        self.text
    }

    /// True if the decoded text is empty (an escape always decodes to at least one character).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The decoded characters.
    pub fn chars(&self) -> Chars<'a> {
        Chars {
            rest: self.text,
            escaped: self.escaped,
        }
    }

    /// Length in bytes of the decoded text as UTF-8.
    pub fn unescaped_len(&self) -> usize {
        if self.escaped {
            self.chars().map(char::len_utf8).sum()
        } else {
            self.text.len()
        }
    }

    /// Decodes the text into `buf` and returns it; [`JsonError::BufferTooSmall`] if it does not
    /// fit. `buf` never needs more than `self.raw().len()` bytes (escapes only shrink).
    pub fn unescape_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, JsonError> {
        let mut len = 0usize;
        for c in self.chars() {
            let end = len
                .checked_add(c.len_utf8())
                .ok_or(JsonError::BufferTooSmall)?;
            let slot = buf.get_mut(len..end).ok_or(JsonError::BufferTooSmall)?;
            c.encode_utf8(slot);
            len = end;
        }
        let filled = buf.get(..len).ok_or(JsonError::BufferTooSmall)?;
        // Whole chars were encoded, so this cannot fail; map it anyway rather than unwrap.
        core::str::from_utf8(filled).map_err(|_| JsonError::InvalidString)
    }

    /// Compares the decoded text with `other`.
    pub fn eq_str(&self, other: &str) -> bool {
        if self.escaped {
            self.chars().eq(other.chars())
        } else {
            self.text == other
        }
    }
}

impl<'a> From<&'a str> for JsonStr<'a> {
    fn from(text: &'a str) -> Self {
        JsonStr::new(text)
    }
}

impl PartialEq for JsonStr<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.escaped, other.escaped) {
            (false, false) => self.text == other.text,
            _ => self.chars().eq(other.chars()),
        }
    }
}

impl Eq for JsonStr<'_> {}

impl PartialEq<str> for JsonStr<'_> {
    fn eq(&self, other: &str) -> bool {
        self.eq_str(other)
    }
}

impl PartialEq<&str> for JsonStr<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.eq_str(other)
    }
}

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.escaped {
            return f.write_str(self.text);
        }
        self.chars().try_for_each(|c| fmt::Write::write_char(f, c))
    }
}

impl fmt::Debug for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.chars() {
            for e in c.escape_debug() {
                fmt::Write::write_char(f, e)?;
            }
        }
        f.write_str("\"")
    }
}

/// Iterator over the decoded characters of a [`JsonStr`].
#[derive(Clone, Debug)]
pub struct Chars<'a> {
    rest: &'a str,
    escaped: bool,
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let mut it = self.rest.chars();
        let c = it.next()?;
        if c != '\\' || !self.escaped {
            self.rest = it.as_str();
            return Some(c);
        }
        let (decoded, rest) = decode_escape(it.as_str());
        self.rest = rest;
        Some(decoded)
    }
}

/// Decodes one escape; `s` starts just after the backslash. Returns the char and what follows.
/// The reader has checked the escape, but a bad one still decodes (to U+FFFD) rather than panic.
fn decode_escape(s: &str) -> (char, &str) {
    let mut it = s.chars();
    let c = match it.next() {
        Some('b') => '\u{8}',
        Some('f') => '\u{c}',
        Some('n') => '\n',
        Some('r') => '\r',
        Some('t') => '\t',
        Some('u') => return decode_unicode_escape(it.as_str()),
        Some(other) => other, // `"`, `\`, `/` stand for themselves
        None => char::REPLACEMENT_CHARACTER,
    };
    (c, it.as_str())
}

/// `s` starts after `\u`. Joins a surrogate pair written as two escapes; a lone surrogate
/// becomes U+FFFD and the escape after it is decoded on its own, as Go's decoder does.
fn decode_unicode_escape(s: &str) -> (char, &str) {
    let Some((unit, rest)) = hex4(s) else {
        return (char::REPLACEMENT_CHARACTER, s);
    };
    if (0xD800..0xDC00).contains(&unit)
        && let Some((low, after)) = rest.strip_prefix("\\u").and_then(hex4)
        && (0xDC00..0xE000).contains(&low)
    {
        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        return (c, after);
    }
    (
        char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
        rest,
    )
}

/// Four hex digits at the start of `s`, and the rest.
fn hex4(s: &str) -> Option<(u32, &str)> {
    let digits = s.get(..4)?;
    let mut value = 0u32;
    for b in digits.bytes() {
        value = value << 4 | char::from(b).to_digit(16)?;
    }
    Some((value, s.get(4..)?))
}

/// A list of strings: a JSON array of strings as read (decoded lazily), or a slice to write.
///
/// Needs no capacity: a parsed list keeps the checked bytes of the array and walks them on each
/// [`iter`](Self::iter), so any number of `connect_urls` fits in an MCU's INFO.
#[derive(Clone, Copy)]
pub struct StrList<'a>(ListRepr<'a>);

#[derive(Clone, Copy)]
enum ListRepr<'a> {
    // The bytes of a JSON array, from `[` to `]`, already checked to hold only strings.
    Json(&'a [u8]),
    Plain(&'a [&'a str]),
}

impl<'a> StrList<'a> {
    /// A list of literal strings, for writing.
    pub const fn new(items: &'a [&'a str]) -> Self {
        StrList(ListRepr::Plain(items))
    }

    /// Wraps array bytes the reader has checked.
    pub(crate) const fn from_json(array: &'a [u8]) -> Self {
        StrList(ListRepr::Json(array))
    }

    /// The strings, decoded lazily.
    pub fn iter(&self) -> StrListIter<'a> {
        match self.0 {
            ListRepr::Json(bytes) => {
                let mut reader = Reader::new(bytes);
                // Step over `[`; the bytes were checked, and a failure just ends the iteration.
                let ok = reader.expect(b'[').is_ok();
                StrListIter(IterRepr::Json { reader, ok })
            }
            ListRepr::Plain(items) => StrListIter(IterRepr::Plain(items.iter())),
        }
    }

    /// Number of strings (walks a parsed list).
    pub fn len(&self) -> usize {
        match self.0 {
            ListRepr::Json(_) => self.iter().count(),
            ListRepr::Plain(items) => items.len(),
        }
    }

    /// True if the list has no strings.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl<'a> IntoIterator for &StrList<'a> {
    type Item = JsonStr<'a>;
    type IntoIter = StrListIter<'a>;

    fn into_iter(self) -> StrListIter<'a> {
        self.iter()
    }
}

impl PartialEq for StrList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for StrList<'_> {}

impl fmt::Debug for StrList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over the strings of a [`StrList`].
#[derive(Clone)]
pub struct StrListIter<'a>(IterRepr<'a>);

#[derive(Clone)]
enum IterRepr<'a> {
    Json { reader: Reader<'a>, ok: bool },
    Plain(core::slice::Iter<'a, &'a str>),
}

impl<'a> Iterator for StrListIter<'a> {
    type Item = JsonStr<'a>;

    fn next(&mut self) -> Option<JsonStr<'a>> {
        match &mut self.0 {
            IterRepr::Plain(items) => items.next().map(|s| JsonStr::new(s)),
            IterRepr::Json { reader, ok } => {
                if !*ok {
                    return None;
                }
                let item = reader.next_list_item();
                if !matches!(item, Ok(Some(_))) {
                    *ok = false;
                }
                item.ok().flatten()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str) -> JsonStr<'_> {
        let mut r = Reader::new(json.as_bytes());
        r.string().expect("valid string")
    }

    #[test]
    fn plain_text_borrows_without_decoding() {
        let s = parsed(r#""hub1""#);
        assert_eq!(s.as_str(), Some("hub1"));
        assert!(!s.has_escapes());
        assert_eq!(s, "hub1");
    }

    #[test]
    fn escapes_decode_like_go() {
        let s = parsed(r#""p\u0026ss \"q\" \\ \/ \b\f\n\r\t""#);
        assert_eq!(s.as_str(), None);
        assert_eq!(s, "p&ss \"q\" \\ / \u{8}\u{c}\n\r\t");
        let mut buf = [0u8; 64];
        assert_eq!(
            s.unescape_into(&mut buf),
            Ok("p&ss \"q\" \\ / \u{8}\u{c}\n\r\t")
        );
        assert_eq!(s.unescaped_len(), "p&ss \"q\" \\ / \u{8}\u{c}\n\r\t".len());
    }

    #[test]
    fn surrogate_pairs_join_and_lone_halves_become_replacement() {
        assert_eq!(parsed(r#""\ud83d\ude00""#), "\u{1F600}");
        assert_eq!(parsed(r#""\ud83dx""#), "\u{FFFD}x");
        assert_eq!(parsed(r#""\ude00""#), "\u{FFFD}");
        assert_eq!(parsed(r#""\ud83d\u0041""#), "\u{FFFD}A");
    }

    #[test]
    fn unescape_into_a_small_buffer_is_an_error() {
        let s = parsed(r#""x.\u003e""#);
        let mut buf = [0u8; 2];
        assert_eq!(s.unescape_into(&mut buf), Err(JsonError::BufferTooSmall));
        let mut buf = [0u8; 3];
        assert_eq!(s.unescape_into(&mut buf), Ok("x.>"));
    }

    #[test]
    fn equality_and_display_use_the_decoded_text() {
        let wire = parsed(r#""x.\u003e""#);
        assert_eq!(wire, JsonStr::new("x.>"));
        assert_ne!(wire, JsonStr::new("x.<"));
        extern crate alloc;
        use alloc::format;
        assert_eq!(format!("{wire}"), "x.>");
        assert_eq!(format!("{wire:?}"), "\"x.>\"");
    }

    #[test]
    fn lists_compare_by_content() {
        let mut r = Reader::new(br#"["a", "b\u0021"]"#);
        let list = r.str_list().expect("valid").expect("not null");
        assert_eq!(list.len(), 2);
        assert_eq!(list, StrList::new(&["a", "b!"]));
        assert_ne!(list, StrList::new(&["a"]));
        assert!(StrList::new(&[]).is_empty());
    }
}
