//! Small byte helpers shared by the parser and the encoders: blanks, numbers, token scans.

use core::fmt;

/// Argument separator on a control line (nats-server splits on space and tab).
pub(crate) const fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Separator between arguments: a blank, or a CR that does not end the line. nats-server's
/// `splitArg` splits on CR too, so a stray CR never ends up inside a subject or sid.
pub(crate) const fn is_arg_sep(b: u8) -> bool {
    is_blank(b) || b == b'\r'
}

/// `s` without leading and trailing blanks.
pub(crate) fn trim_blanks(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_blank(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| !is_blank(b))
        .map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

/// A payload size as nats-server's `parseSize` reads it: 1 to 9 ASCII digits (leading
/// zeros allowed). Anything else is `None`.
pub(crate) fn parse_size(d: &[u8]) -> Option<usize> {
    if d.is_empty() || d.len() > 9 {
        return None;
    }
    let mut n: usize = 0;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        // Nine digits fit in a 32-bit usize, so this never overflows; checked anyway.
        n = n.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
    }
    Some(n)
}

/// A decimal number (digits only, at least one) that fits in a `u64`.
pub(crate) fn parse_u64(d: &[u8]) -> Option<u64> {
    if d.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Decimal digits of `n`, written into `buf`; returns the used tail of `buf`.
pub(crate) fn fmt_u64(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    match u32::try_from(n) {
        Ok(small) => fmt_u32(small, buf),
        Err(_) => fmt_u64_by_subtraction(n, buf),
    }
}

/// Sizes, sids and weights nearly always fit 32 bits: divide those natively.
fn fmt_u32(mut n: u32, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        // `n % 10 < 10` so the cast is exact; `i` stays in 0..20 since u32 has <= 10 digits.
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or_default()
}

/// Values above `u32::MAX`: digits peeled off by subtracting powers of ten, so 64-bit
/// division (about 0.9 KiB of compiler-builtins code on a Cortex-M) is never linked.
fn fmt_u64_by_subtraction(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut len = 0;
    for &power in POWERS_OF_TEN.iter().rev() {
        let mut digit = 0u8;
        while n >= power {
            n -= power;
            digit += 1;
        }
        if digit > 0 || len > 0 || power == 1 {
            if let Some(slot) = buf.get_mut(len) {
                *slot = b'0' + digit;
            }
            len += 1;
        }
    }
    buf.get(..len).unwrap_or_default()
}

/// 10^0 ..= 10^19.
const POWERS_OF_TEN: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// One pass over the tokens of a control line's arguments, remembering the byte ranges of
/// the first four and the last three tokens and the count. That is all any op needs: the
/// leafnode forms with a queue list address queues as the span between a leading and a
/// trailing token, so no token array of unbounded length is needed.
pub(crate) struct Scan<'a> {
    line: &'a [u8],
    /// Number of tokens.
    pub(crate) count: usize,
    first: [(usize, usize); 4],
    /// Ring of the last three token ranges, indexed by token number modulo 3.
    last: [(usize, usize); 3],
}

impl<'a> Scan<'a> {
    pub(crate) fn new(line: &'a [u8]) -> Self {
        let mut scan = Scan {
            line,
            count: 0,
            first: [(0, 0); 4],
            last: [(0, 0); 3],
        };
        let mut start: Option<usize> = None;
        for (i, &b) in line.iter().enumerate() {
            match (is_arg_sep(b), start) {
                (true, Some(s)) => {
                    scan.push(s, i);
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        if let Some(s) = start {
            scan.push(s, line.len());
        }
        scan
    }

    fn push(&mut self, start: usize, end: usize) {
        if let Some(slot) = self.first.get_mut(self.count) {
            *slot = (start, end);
        }
        if let Some(slot) = self.last.get_mut(self.count % 3) {
            *slot = (start, end);
        }
        self.count += 1;
    }

    fn range(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.count {
            return None;
        }
        if let Some(&r) = self.first.get(i) {
            return Some(r);
        }
        // Only the last three are remembered beyond the first four.
        if self.count - i <= 3 {
            return self.last.get(i % 3).copied();
        }
        None
    }

    /// Token number `i` (0-based), if remembered (one of the first four or last three).
    pub(crate) fn tok(&self, i: usize) -> &'a [u8] {
        self.range(i)
            .and_then(|(s, e)| self.line.get(s..e))
            .unwrap_or_default()
    }

    /// Token `k` from the end (0 = last), if remembered.
    pub(crate) fn tok_back(&self, k: usize) -> &'a [u8] {
        match self.count.checked_sub(k + 1) {
            Some(i) => self.tok(i),
            None => b"",
        }
    }

    /// The bytes from the start of token `first` through the end of token `last`
    /// (inclusive), or empty when `last < first`. Both must be remembered tokens.
    pub(crate) fn span(&self, first: usize, last: usize) -> &'a [u8] {
        if last < first {
            return b"";
        }
        match (self.range(first), self.range(last)) {
            (Some((s, _)), Some((_, e))) => self.line.get(s..e).unwrap_or_default(),
            _ => b"",
        }
    }
}

/// Debug view of bytes as a lossy string, so test failures and logs read as text.
pub(crate) struct Lossy<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                fmt::Display::fmt(&c.escape_debug(), f)?;
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn sizes_follow_nats_server_parse_size() {
        assert_eq!(parse_size(b"0"), Some(0));
        assert_eq!(parse_size(b"007"), Some(7));
        assert_eq!(parse_size(b"999999999"), Some(999_999_999));
        assert_eq!(parse_size(b"1000000000"), None, "ten digits are refused");
        assert_eq!(parse_size(b""), None);
        assert_eq!(parse_size(b"-1"), None);
        assert_eq!(parse_size(b"1a"), None);
    }

    #[test]
    fn u64_numbers_refuse_overflow() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"+1"), None);
    }

    #[test]
    fn numbers_format_back() {
        let mut buf = [0; 20];
        assert_eq!(fmt_u64(0, &mut buf), b"0");
        assert_eq!(fmt_u64(1234, &mut buf), b"1234");
        assert_eq!(fmt_u64(u64::MAX, &mut buf), b"18446744073709551615");
    }

    #[test]
    fn scan_remembers_first_and_last_tokens() {
        let line = b"s + r q1 q2\tq3  q4 5";
        let scan = Scan::new(line);
        assert_eq!(scan.count, 8);
        assert_eq!(scan.tok(0), b"s");
        assert_eq!(scan.tok(1), b"+");
        assert_eq!(scan.tok(2), b"r");
        assert_eq!(scan.tok_back(0), b"5");
        assert_eq!(scan.tok_back(1), b"q4");
        assert_eq!(scan.span(3, scan.count - 2), b"q1 q2\tq3  q4");
        assert_eq!(scan.tok(4), b"", "middle tokens are not remembered");
        assert_eq!(scan.span(3, 2), b"");
    }

    #[test]
    fn trims_blanks() {
        assert_eq!(trim_blanks(b" \t{} \t"), b"{}");
        assert_eq!(trim_blanks(b"  "), b"");
        let mut buf = [0u8; 20];
        for n in [
            0,
            7,
            10,
            4_294_967_295,
            4_294_967_296,
            10_000_000_000_000_000_000,
            u64::MAX,
        ] {
            assert_eq!(fmt_u64(n, &mut buf), std::format!("{n}").as_bytes());
        }
    }
}
