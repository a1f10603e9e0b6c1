//! Values that are not maps or arrays: quoted strings, and the unquoted words whose kind
//! depends on their text (numbers with size suffixes, floats, dates, addresses, booleans,
//! variables, plain strings), by nats-server's rules (`conf/lex.go`, `conf/parse.go`).
use crate::cursor::{Cursor, Mark};
use crate::value::{Error, Kind};

/// A scalar as read; a variable is resolved by the parser, which knows the scopes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// A finished value.
    Value(Kind),
    /// `$NAME` (the name, without `$`).
    Variable(String),
}

/// Ends a number: the characters after which digits and suffixes are an integer.
fn ends_number(c: Option<char>) -> bool {
    matches!(c, None | Some('\n' | '\r' | '}' | ';' | ',' | ' ' | '\t'))
}

/// Ends an unquoted word.
fn ends_word(c: Option<char>) -> bool {
    matches!(
        c,
        None | Some('\n' | '\r' | ';' | ',' | ']' | '}' | ' ' | '\t')
    )
}

fn is_suffix(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

/// A word starting with a digit (the cursor is on it).
pub(crate) fn number_or_word(cur: &mut Cursor<'_>) -> Result<Scalar, Error> {
    let start = cur.mark();
    while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
        cur.bump();
    }
    match cur.peek() {
        Some('-') => {
            if cur.since(start).len() != 4 {
                return Err(cur.error_at(
                    start,
                    "dates must be in full Zulu form (2006-01-02T15:04:05Z)",
                ));
            }
            cur.bump();
            date_after_year(cur, start)
        }
        Some('.') => {
            cur.bump();
            fraction(cur, start)
        }
        Some(c) if is_suffix(c) => {
            cur.bump();
            sized(cur, start)
        }
        c if ends_number(c) => integer(cur, start),
        _ => {
            // Not a number after all: the rest is an unquoted word, this character included.
            cur.bump();
            word_from(cur, start)
        }
    }
}

/// A word starting with `-` (the cursor is on it): a negative number.
pub(crate) fn negative(cur: &mut Cursor<'_>) -> Result<Scalar, Error> {
    let start = cur.mark();
    cur.bump();
    if !cur.peek().is_some_and(|c| c.is_ascii_digit()) {
        return Err(cur.error("expected a digit after '-'"));
    }
    while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
        cur.bump();
    }
    match cur.peek() {
        Some('.') => {
            cur.bump();
            fraction(cur, start)
        }
        Some(c) if is_suffix(c) => {
            cur.bump();
            sized(cur, start)
        }
        _ => integer(cur, start),
    }
}

/// After `<digits>.`: a float, or an address (`127.0.0.1:4222`) if another `.` follows.
fn fraction(cur: &mut Cursor<'_>, start: Mark) -> Result<Scalar, Error> {
    if !cur.peek().is_some_and(|c| c.is_ascii_digit()) {
        return Err(cur.error("a '.' in a number must be followed by a digit"));
    }
    while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
        cur.bump();
    }
    if cur.peek() == Some('.') {
        while cur
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
        {
            cur.bump();
        }
        return Ok(Scalar::Value(Kind::String(cur.since(start).to_owned())));
    }
    let text = cur.since(start);
    text.parse::<f64>()
        .map(|f| Scalar::Value(Kind::Float(f)))
        .map_err(|_| cur.error_at(start, format!("{text:?} is not a float")))
}

/// After a size suffix letter: `1k`, `1kb`, `1KiB`; else (`10ms`, `2min`) an unquoted word.
fn sized(cur: &mut Cursor<'_>, start: Mark) -> Result<Scalar, Error> {
    while matches!(cur.peek(), Some('b' | 'B' | 'i' | 'I')) {
        cur.bump();
    }
    let next = cur.peek();
    if ends_number(next) || next.is_some_and(|c| c.is_ascii_digit()) {
        integer(cur, start)
    } else {
        word_from(cur, start)
    }
}

/// `<digits>[suffix]` from `start` to the cursor, as an integer.
fn integer(cur: &Cursor<'_>, start: Mark) -> Result<Scalar, Error> {
    let text = cur.since(start);
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(text.len());
    let (num, suffix) = text.split_at(digits);
    let n: i64 = num
        .parse()
        .map_err(|_| cur.error_at(start, format!("integer {text:?} is out of range")))?;
    let k: i64 = 1000;
    let ki: i64 = 1024;
    let mult = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => k,
        "kb" | "ki" | "kib" => ki,
        "m" => k.pow(2),
        "mb" | "mi" | "mib" => ki.pow(2),
        "g" => k.pow(3),
        "gb" | "gi" | "gib" => ki.pow(3),
        "t" => k.pow(4),
        "tb" | "ti" | "tib" => ki.pow(4),
        "p" => k.pow(5),
        "pb" | "pi" | "pib" => ki.pow(5),
        "e" => k.pow(6),
        "eb" | "ei" | "eib" => ki.pow(6),
        other => {
            return Err(cur.error_at(start, format!("unknown size suffix {other:?} in {text:?}")));
        }
    };
    n.checked_mul(mult)
        .map(|v| Scalar::Value(Kind::Integer(v)))
        .ok_or_else(|| cur.error_at(start, format!("integer {text:?} is out of range")))
}

/// After `YYYY-`: the rest of `2006-01-02T15:04:05Z`.
fn date_after_year(cur: &mut Cursor<'_>, start: Mark) -> Result<Scalar, Error> {
    for want in "00-00T00:00:00Z".chars() {
        let got = cur.peek();
        let ok = match want {
            '0' => got.is_some_and(|c| c.is_ascii_digit()),
            w => got == Some(w),
        };
        if !ok {
            return Err(cur.error("dates must be in full Zulu form (2006-01-02T15:04:05Z)"));
        }
        cur.bump();
    }
    let text = cur.since(start);
    let field = |a: usize, b: usize| text.get(a..b).and_then(|s| s.parse::<u32>().ok());
    let valid = matches!(field(5, 7), Some(1..=12))
        && matches!(field(8, 10), Some(1..=31))
        && matches!(field(11, 13), Some(0..=23))
        && matches!(field(14, 16), Some(0..=59))
        && matches!(field(17, 19), Some(0..=59));
    if !valid {
        return Err(cur.error_at(start, format!("{text:?} is not a valid date and time")));
    }
    Ok(Scalar::Value(Kind::DateTime(text.to_owned())))
}

/// An unquoted word from the cursor: a boolean, a `$variable`, or a string.
pub(crate) fn word(cur: &mut Cursor<'_>) -> Result<Scalar, Error> {
    let start = cur.mark();
    word_from(cur, start)
}

/// An unquoted word that began at `start`; the text up to the cursor is already part of it.
fn word_from(cur: &mut Cursor<'_>, start: Mark) -> Result<Scalar, Error> {
    let mut text = String::from(cur.since(start));
    let mut escaped = false;
    loop {
        let c = cur.peek();
        if ends_word(c) {
            break;
        }
        match c {
            Some('\'') => {
                // nats-server ends a word at a quote and drops the quote.
                cur.bump();
                return Ok(Scalar::Value(Kind::String(text)));
            }
            Some('\\') => {
                cur.bump();
                escape(cur, &mut text)?;
                escaped = true;
            }
            Some(c) => {
                cur.bump();
                text.push(c);
            }
            None => break,
        }
    }
    if escaped {
        return Ok(Scalar::Value(Kind::String(text)));
    }
    let lower = text.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "true" | "yes" | "on" => Scalar::Value(Kind::Bool(true)),
        "false" | "no" | "off" => Scalar::Value(Kind::Bool(false)),
        _ => match text.strip_prefix('$') {
            Some(name) => Scalar::Variable(name.to_owned()),
            None => Scalar::Value(Kind::String(text)),
        },
    })
}

/// `'raw text'` (the cursor is past the opening quote); nothing inside is special.
pub(crate) fn raw_string(cur: &mut Cursor<'_>, open: Mark) -> Result<String, Error> {
    let start = cur.mark();
    loop {
        match cur.peek() {
            Some('\'') => {
                let s = cur.since(start).to_owned();
                cur.bump();
                return Ok(s);
            }
            Some(_) => {
                cur.bump();
            }
            None => return Err(cur.error_at(open, "unclosed ' string")),
        }
    }
}

/// `"text"` with escapes (the cursor is past the opening quote).
pub(crate) fn quoted_string(cur: &mut Cursor<'_>, open: Mark) -> Result<String, Error> {
    let mut text = String::new();
    loop {
        match cur.bump() {
            Some('"') => return Ok(text),
            Some('\\') => escape(cur, &mut text)?,
            Some(c) => text.push(c),
            None => return Err(cur.error_at(open, "unclosed \" string")),
        }
    }
}

/// One escape after `\`: `\t \n \r \" \\ \xHH`.
fn escape(cur: &mut Cursor<'_>, out: &mut String) -> Result<(), Error> {
    let at = cur.mark();
    match cur.bump() {
        Some('t') => out.push('\t'),
        Some('n') => out.push('\n'),
        Some('r') => out.push('\r'),
        Some('"') => out.push('"'),
        Some('\\') => out.push('\\'),
        Some('x') => {
            let hex: String = [cur.bump(), cur.bump()].into_iter().flatten().collect();
            let byte = u8::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 2)
                .ok_or_else(|| {
                    cur.error_at(
                        at,
                        format!("expected two hexadecimal digits after \\x, got {hex:?}"),
                    )
                })?;
            // A string is UTF-8: \x escapes may spell ASCII only.
            if !byte.is_ascii() {
                return Err(cur.error_at(at, format!("\\x{hex} is not ASCII")));
            }
            out.push(char::from(byte));
        }
        other => {
            let shown =
                other.map_or_else(|| "the end of the text".to_owned(), |c| format!("{c:?}"));
            return Err(cur.error_at(
                at,
                format!(r#"invalid escape {shown}: only \xXX, \t, \n, \r, \" and \\ are allowed"#),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<(Scalar, String), Error> {
        let mut cur = Cursor::new(text, None);
        let s = match cur.peek() {
            Some(c) if c.is_ascii_digit() => number_or_word(&mut cur)?,
            Some('-') => negative(&mut cur)?,
            _ => word(&mut cur)?,
        };
        let rest = text.get(cur.mark_offset()..).unwrap_or("").to_owned();
        Ok((s, rest))
    }

    fn kind(text: &str) -> Kind {
        match read(text).unwrap().0 {
            Scalar::Value(k) => k,
            v => panic!("{text}: {v:?}"),
        }
    }

    #[test]
    fn sizes_follow_nats_server_suffixes() {
        assert_eq!(kind("1MB"), Kind::Integer(1 << 20));
        assert_eq!(kind("1mb"), Kind::Integer(1 << 20));
        assert_eq!(kind("1M"), Kind::Integer(1_000_000));
        assert_eq!(kind("8KiB"), Kind::Integer(8192));
        assert_eq!(kind("2G"), Kind::Integer(2_000_000_000));
        assert_eq!(kind("1k"), Kind::Integer(1000));
        assert_eq!(kind("-5"), Kind::Integer(-5));
        assert_eq!(kind("-2k"), Kind::Integer(-2000));
        // The famous one: an unquoted 2m is two million, not two minutes.
        assert_eq!(kind("2m"), Kind::Integer(2_000_000));
        assert_eq!(kind("1e"), Kind::Integer(1_000_000_000_000_000_000));
        assert!(read("10e").is_err(), "overflow is an error, not a wrap");
        assert!(read("99999999999999999999").is_err());
    }

    #[test]
    fn durations_and_names_stay_strings() {
        assert_eq!(kind("10s"), Kind::String("10s".into()));
        assert_eq!(kind("1h"), Kind::String("1h".into()));
        assert_eq!(kind("10ms"), Kind::String("10ms".into()));
        assert_eq!(kind("2min"), Kind::String("2min".into()));
        assert_eq!(kind("4222abc"), Kind::String("4222abc".into()));
        assert_eq!(
            kind("localhost:4222"),
            Kind::String("localhost:4222".into())
        );
    }

    #[test]
    fn floats_addresses_and_dates() {
        assert_eq!(kind("1.5"), Kind::Float(1.5));
        assert_eq!(kind("-0.25"), Kind::Float(-0.25));
        assert_eq!(
            kind("127.0.0.1:4222"),
            Kind::String("127.0.0.1:4222".into())
        );
        assert_eq!(kind("0.0.0.0"), Kind::String("0.0.0.0".into()));
        assert_eq!(
            kind("2026-12-01T20:00:00Z"),
            Kind::DateTime("2026-12-01T20:00:00Z".into())
        );
        assert!(read("2026-13-01T20:00:00Z").is_err());
        assert!(read("12-01").is_err());
        assert!(read("1.x").is_err());
    }

    #[test]
    fn booleans_variables_and_escapes() {
        for (t, b) in [
            ("true", true),
            ("YES", true),
            ("on", true),
            ("False", false),
            ("no", false),
            ("OFF", false),
        ] {
            assert_eq!(kind(t), Kind::Bool(b), "{t}");
        }
        assert_eq!(read("$PORT").unwrap().0, Scalar::Variable("PORT".into()));
        assert_eq!(kind(r"a\tb"), Kind::String("a\tb".into()));
        assert_eq!(kind(r"\x41"), Kind::String("A".into()));
        // An escaped word is never a boolean or a variable.
        assert_eq!(kind(r"tru\x65"), Kind::String("true".into()));
        assert!(read(r"a\q").is_err());
        assert!(read(r"\xff").is_err());
        assert!(read(r"\x4").is_err());
    }

    #[test]
    fn words_end_where_nats_server_ends_them() {
        let (s, rest) = read("abc def").unwrap();
        assert_eq!(
            (s, rest.as_str()),
            (Scalar::Value(Kind::String("abc".into())), " def")
        );
        let (_, rest) = read("abc]").unwrap();
        assert_eq!(rest, "]");
        let (_, rest) = read("abc,x").unwrap();
        assert_eq!(rest, ",x");
        // A quote ends the word and is dropped.
        let (s, rest) = read("ab'c").unwrap();
        assert_eq!(
            (s, rest.as_str()),
            (Scalar::Value(Kind::String("ab".into())), "c")
        );
        // `#` inside a word is not a comment.
        assert_eq!(kind("a#b"), Kind::String("a#b".into()));
        // A digit-led word takes the character that made it a word, even a `]`.
        assert_eq!(kind("1]"), Kind::String("1]".into()));
    }
}
