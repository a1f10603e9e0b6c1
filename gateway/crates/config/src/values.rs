//! Value syntaxes shared by the TOML file and the command line: ports, durations and sizes.
//!
//! Each syntax has a plain parser (`parse_*`, used by the CLI and by tests) and a serde
//! `deserialize_with` adapter (`de_*`) so the file accepts what nats-server's config accepts:
//! durations as Go-style strings (`"2m"`, `"1m30s"`, `"500ms"`) or integer seconds, sizes as
//! integers or strings with nats-server's suffixes (`"1MB"` = 1 MiB, `"1M"` = 1,000,000).
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

use crate::bounds::MAX_DURATION;

/// A listening port: a fixed number, or a free one chosen by the OS (`-1` in config and flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Let the OS pick a free port (bind to port 0); the bound port is logged.
    Random,
    /// This port number.
    Fixed(u16),
}

impl Port {
    /// The number to hand to `bind`: 0 for [`Port::Random`].
    pub fn bind_port(self) -> u16 {
        match self {
            Port::Random => 0,
            Port::Fixed(p) => p,
        }
    }

    /// The client port from a number: `-1` or `0` = random, `1..=65535` = that port.
    pub fn from_number(n: i64) -> Result<Port, String> {
        match n {
            -1 | 0 => Ok(Port::Random),
            1..=65535 => u16::try_from(n).map(Port::Fixed).map_err(|_| port_range(n)),
            _ => Err(port_range(n)),
        }
    }

    /// The monitoring port from a number: as [`Port::from_number`], except that `0` turns
    /// monitoring off (`None`), as nats-server's `-m 0` does.
    pub fn http_from_number(n: i64) -> Result<Option<Port>, String> {
        if n == 0 {
            Ok(None)
        } else {
            Port::from_number(n).map(Some)
        }
    }

    /// Parses a port given as text (command line).
    pub fn parse(s: &str) -> Result<Port, String> {
        Port::from_number(parse_int(s)?)
    }

    /// Parses a monitoring port given as text (command line); `0` = off.
    pub fn parse_http(s: &str) -> Result<Option<Port>, String> {
        Port::http_from_number(parse_int(s)?)
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Random => f.write_str("-1"),
            Port::Fixed(p) => write!(f, "{p}"),
        }
    }
}

fn port_range(n: i64) -> String {
    format!("port {n} is out of range (use 1..65535, or -1 for a random free port)")
}

fn parse_int(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("{s:?} is not a number"))
}

/// Parses a duration: Go syntax (`"2m"`, `"1h30m"`, `"1.5s"`, `"500ms"`, `"10us"`, `"5ns"`),
/// or a bare number of seconds (`"10"`). Negative values and values past
/// [`MAX_DURATION`](crate::bounds::MAX_DURATION) are errors.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_unbounded(s).and_then(|d| at_most_max(d, s))
}

/// A duration past [`MAX_DURATION`]: an error, whatever the option (each has a tighter bound
/// of its own, see `bounds`).
fn at_most_max(d: Duration, written: impl fmt::Display) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err(format!(
            "duration {written} is too long (at most {})",
            format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

fn parse_duration_unbounded(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration (write e.g. \"2m\", \"500ms\" or \"10s\")".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let bad = || format!("{s:?} is not a duration (write e.g. \"2m\", \"1m30s\", \"500ms\")");
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // One `<digits>[.<digits>]<unit>` component.
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at_checked(num_len).ok_or_else(bad)?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at_checked(unit_len).ok_or_else(bad)?;
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut nanos = int.checked_mul(unit_nanos).ok_or_else(bad)?;
        // Fractions past nanosecond precision cannot matter; 18 digits keep the math in u128.
        let frac_digits = frac_part.get(..frac_part.len().min(18)).unwrap_or("");
        if !frac_digits.is_empty() {
            let frac: u128 = frac_digits.parse().map_err(|_| bad())?;
            let scale = 10u128.pow(u32::try_from(frac_digits.len()).unwrap_or(18));
            nanos = nanos
                .checked_add(frac.saturating_mul(unit_nanos) / scale)
                .ok_or_else(bad)?;
        }
        total = total.checked_add(nanos).ok_or_else(bad)?;
        rest = next;
    }
    let nanos = u64::try_from(total).map_err(|_| format!("duration {s:?} is too long"))?;
    Ok(Duration::from_nanos(nanos))
}

/// Parses a byte size: a number, or a number with nats-server's suffixes (case-insensitive):
/// `k` = 1000, `kb`/`ki`/`kib` = 1024, `m` = 1000², `mb`/`mi`/`mib` = 1024², `g` = 1000³,
/// `gb`/`gi`/`gib` = 1024³.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let bad = || format!("{s:?} is not a size (write e.g. 1048576, \"1MB\" or \"512KB\")");
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, suffix) = text.split_at_checked(digits).ok_or_else(bad)?;
    let num: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" | "ki" | "kib" => 1024,
        "m" => 1000 * 1000,
        "mb" | "mi" | "mib" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" | "gi" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(bad()),
    };
    num.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Formats a duration the way it is written in config files (`"2m"`, `"500ms"`, `"1m30s"`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if !nanos.is_multiple_of(1_000_000_000) {
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// serde adapter: a client port (`-1`/`0` = random).
pub fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<Port, D::Error> {
    let n = d.deserialize_any(IntVisitor)?;
    Port::from_number(n).map_err(de::Error::custom)
}

/// serde adapter: a monitoring port (`0` = off, `-1` = random).
pub fn de_http_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Port>, D::Error> {
    let n = d.deserialize_any(IntVisitor)?;
    Port::http_from_number(n).map_err(de::Error::custom)
}

/// serde adapter: a duration (string, integer seconds or float seconds).
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// serde adapter: an optional duration (present in the file = `Some`).
pub fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor).map(Some)
}

/// serde adapter: a byte size (integer or suffixed string) that must fit a `usize`.
pub fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = d.deserialize_any(SizeVisitor)?;
    usize::try_from(n).map_err(|_| de::Error::custom(format!("size {n} is too large")))
}

struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"2m\", \"500ms\" or a number of seconds")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        let secs = u64::try_from(v).map_err(|_| E::custom(format!("duration {v} is negative")))?;
        self.visit_u64(secs)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        at_most_max(Duration::from_secs(v), format_args!("{v}s")).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        let d = Duration::try_from_secs_f64(v)
            .map_err(|_| E::custom(format!("duration {v} is negative or too large")))?;
        at_most_max(d, format_args!("{v}s")).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size in bytes such as 1048576 or \"1MB\"")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("size {v} is negative")))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_size(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_in_go_syntax() {
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration(" 30 "), Ok(Duration::from_secs(30)));
    }

    #[test]
    fn bad_durations_are_errors() {
        for bad in [
            "",
            "s",
            "10x",
            "-1s",
            "1.2.3s",
            "5 s",
            ".s",
            "9999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations_format_back() {
        for text in ["2m", "500ms", "10s", "1h2m3s", "7ns", "0s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }

    #[test]
    fn sizes_with_nats_server_suffixes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("1MB"), Ok(1 << 20));
        assert_eq!(parse_size("1mib"), Ok(1 << 20));
        assert_eq!(parse_size("1M"), Ok(1_000_000));
        assert_eq!(parse_size("64 MB"), Ok(64 << 20));
        assert_eq!(parse_size("8k"), Ok(8000));
        assert_eq!(parse_size("8KB"), Ok(8192));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert!(parse_size("1TB").is_err());
        assert!(parse_size("MB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999GB").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(Port::parse("4222"), Ok(Port::Fixed(4222)));
        assert_eq!(Port::parse("-1"), Ok(Port::Random));
        assert_eq!(Port::parse("0"), Ok(Port::Random));
        assert!(Port::parse("65536").is_err());
        assert!(Port::parse("-2").is_err());
        assert!(Port::parse("http").is_err());
        assert_eq!(Port::parse_http("0"), Ok(None));
        assert_eq!(Port::parse_http("-1"), Ok(Some(Port::Random)));
        assert_eq!(Port::parse_http("8222"), Ok(Some(Port::Fixed(8222))));
        assert_eq!(Port::Random.bind_port(), 0);
        assert_eq!(Port::Fixed(7).to_string(), "7");
    }
}
