//! A JSON object writer into a caller's buffer; running out of room is an error value.

use super::JsonError;
#[cfg(feature = "leaf")]
use super::info::SubjectPermission;
use super::text::{JsonStr, StrList};

/// Writes one JSON object, member by member, into `out`.
pub(crate) struct Writer<'b> {
    out: &'b mut [u8],
    len: usize,
    // No member written yet in the innermost open object: the next one needs no comma.
    first: bool,
}

impl<'b> Writer<'b> {
    /// Starts an object (`{`).
    pub(crate) fn begin(out: &'b mut [u8]) -> Result<Self, JsonError> {
        let mut w = Writer {
            out,
            len: 0,
            first: true,
        };
        w.raw(b"{")?;
        Ok(w)
    }

    /// Closes the object and returns the number of bytes written.
    pub(crate) fn end(mut self) -> Result<usize, JsonError> {
        self.raw(b"}")?;
        Ok(self.len)
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), JsonError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(JsonError::BufferTooSmall)?;
        self.out
            .get_mut(self.len..end)
            .ok_or(JsonError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// `,"key":` (no comma before the first member). Keys are our own lowercase names.
    fn key(&mut self, key: &str) -> Result<(), JsonError> {
        if !self.first {
            self.raw(b",")?;
        }
        self.first = false;
        self.raw(b"\"")?;
        self.raw(key.as_bytes())?;
        self.raw(b"\":")
    }

    fn string(&mut self, s: &JsonStr<'_>) -> Result<(), JsonError> {
        self.raw(b"\"")?;
        if s.has_escapes() {
            // Read from JSON and checked: its escapes are valid as they stand.
            self.raw(s.raw().as_bytes())?;
        } else {
            self.escaped(s.raw().as_bytes())?;
        }
        self.raw(b"\"")
    }

    /// Literal text with `"`, `\` and control characters escaped; runs of plain bytes are
    /// copied whole (UTF-8 continuation bytes are all >= 0x80, so they pass through).
    fn escaped(&mut self, text: &[u8]) -> Result<(), JsonError> {
        let mut rest = text;
        while let Some(i) = rest
            .iter()
            .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        {
            let (plain, tail) = rest.split_at_checked(i).ok_or(JsonError::BufferTooSmall)?;
            self.raw(plain)?;
            let Some((&b, tail)) = tail.split_first() else {
                break;
            };
            match b {
                b'"' => self.raw(b"\\\"")?,
                b'\\' => self.raw(b"\\\\")?,
                b'\n' => self.raw(b"\\n")?,
                b'\r' => self.raw(b"\\r")?,
                b'\t' => self.raw(b"\\t")?,
                0x08 => self.raw(b"\\b")?,
                0x0c => self.raw(b"\\f")?,
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                    let lo = HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0');
                    self.raw(&[b'\\', b'u', b'0', b'0', hi, lo])?;
                }
            }
            rest = tail;
        }
        self.raw(rest)
    }

    /// A string member, always written.
    pub(crate) fn str(&mut self, key: &str, value: &JsonStr<'_>) -> Result<(), JsonError> {
        self.key(key)?;
        self.string(value)
    }

    /// A string member, written when `Some`.
    pub(crate) fn opt_str(
        &mut self,
        key: &str,
        value: &Option<JsonStr<'_>>,
    ) -> Result<(), JsonError> {
        match value {
            Some(v) => self.str(key, v),
            None => Ok(()),
        }
    }

    /// A boolean member, always written.
    pub(crate) fn bool(&mut self, key: &str, value: bool) -> Result<(), JsonError> {
        self.key(key)?;
        self.raw(if value { b"true" } else { b"false" })
    }

    /// A boolean member, written when `true` (Go's `omitempty`).
    pub(crate) fn true_bool(&mut self, key: &str, value: bool) -> Result<(), JsonError> {
        if value { self.bool(key, true) } else { Ok(()) }
    }

    /// A boolean member, written when `Some`.
    pub(crate) fn opt_bool(&mut self, key: &str, value: Option<bool>) -> Result<(), JsonError> {
        match value {
            Some(v) => self.bool(key, v),
            None => Ok(()),
        }
    }

    /// An integer member, always written.
    pub(crate) fn int(&mut self, key: &str, value: i64) -> Result<(), JsonError> {
        self.key(key)?;
        if value < 0 {
            self.raw(b"-")?;
        }
        self.digits(value.unsigned_abs())
    }

    /// An integer member, written when not zero.
    pub(crate) fn nonzero_int(&mut self, key: &str, value: i64) -> Result<(), JsonError> {
        if value != 0 {
            self.int(key, value)
        } else {
            Ok(())
        }
    }

    /// An unsigned member, written when not zero.
    pub(crate) fn nonzero_uint(&mut self, key: &str, value: u64) -> Result<(), JsonError> {
        if value == 0 {
            return Ok(());
        }
        self.key(key)?;
        self.digits(value)
    }

    fn digits(&mut self, value: u64) -> Result<(), JsonError> {
        // The wire's formatter: one copy, and no 64-bit division on small MCUs.
        let mut buf = [0u8; 20];
        self.raw(crate::wire::args::fmt_u64(value, &mut buf))
    }

    /// A string-array member, written when `Some` (an empty list is written as `[]`).
    pub(crate) fn opt_list(
        &mut self,
        key: &str,
        list: &Option<StrList<'_>>,
    ) -> Result<(), JsonError> {
        let Some(list) = list else {
            return Ok(());
        };
        self.key(key)?;
        self.list(list)
    }

    fn list(&mut self, list: &StrList<'_>) -> Result<(), JsonError> {
        self.raw(b"[")?;
        for (i, s) in list.iter().enumerate() {
            if i > 0 {
                self.raw(b",")?;
            }
            self.string(&s)?;
        }
        self.raw(b"]")
    }

    #[cfg(feature = "leaf")]
    /// A permission object member (`{"allow":[…],"deny":[…]}`), written when `Some`.
    pub(crate) fn opt_permission(
        &mut self,
        key: &str,
        perm: &Option<SubjectPermission<'_>>,
    ) -> Result<(), JsonError> {
        let Some(perm) = perm else {
            return Ok(());
        };
        self.key(key)?;
        self.raw(b"{")?;
        self.first = true;
        self.opt_list("allow", &perm.allow)?;
        self.opt_list("deny", &perm.deny)?;
        self.first = false; // back in the outer object, which has members
        self.raw(b"}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(
        f: impl FnOnce(&mut Writer<'_>) -> Result<(), JsonError>,
    ) -> Result<usize, JsonError> {
        let mut out = [0u8; 128];
        let mut w = Writer::begin(&mut out)?;
        f(&mut w)?;
        w.end()
    }

    fn text(f: impl FnOnce(&mut Writer<'_>) -> Result<(), JsonError>) -> heapless::String<128> {
        let mut out = [0u8; 128];
        let mut w = Writer::begin(&mut out).expect("room");
        f(&mut w).expect("room");
        let n = w.end().expect("room");
        let mut s = heapless::String::new();
        s.push_str(core::str::from_utf8(&out[..n]).expect("utf8"))
            .expect("room");
        s
    }

    #[test]
    fn writes_members_with_commas_between() {
        let s = text(|w| {
            w.str("a", &JsonStr::new("x"))?;
            w.int("n", -42)?;
            w.nonzero_int("z", 0)?;
            w.nonzero_uint("u", u64::MAX)?;
            w.true_bool("f", false)?;
            w.bool("t", true)
        });
        assert_eq!(s, r#"{"a":"x","n":-42,"u":18446744073709551615,"t":true}"#);
        assert_eq!(text(|_| Ok(())), "{}");
        assert_eq!(
            text(|w| w.int("i", i64::MIN)),
            r#"{"i":-9223372036854775808}"#
        );
    }

    #[test]
    fn escapes_what_json_requires_only() {
        let s = text(|w| w.str("s", &JsonStr::new("x.> \"q\" \\ \n\u{1}é")));
        assert_eq!(s, r#"{"s":"x.> \"q\" \\ \n\u0001é"}"#);
    }

    // `opt_permission` writes leafnode permissions (feature `leaf`).
    #[cfg(feature = "leaf")]
    #[test]
    fn nested_permissions_and_lists() {
        let perm = Some(SubjectPermission {
            allow: Some(StrList::new(&["a.>", "b"])),
            deny: Some(StrList::new(&[])),
        });
        let s = text(|w| {
            w.bool("x", true)?;
            w.opt_permission("import", &perm)?;
            w.bool("y", false)
        });
        assert_eq!(
            s,
            r#"{"x":true,"import":{"allow":["a.>","b"],"deny":[]},"y":false}"#
        );
    }

    #[test]
    fn running_out_of_room_is_an_error_at_every_length() {
        let full = written(|w| w.str("key", &JsonStr::new("a\"b"))).expect("fits");
        for cap in 0..full {
            let mut out = [0u8; 16];
            let result = Writer::begin(&mut out[..cap])
                .and_then(|mut w| w.str("key", &JsonStr::new("a\"b")).map(|()| w))
                .and_then(Writer::end);
            assert_eq!(result, Err(JsonError::BufferTooSmall), "cap {cap}");
        }
    }
}
