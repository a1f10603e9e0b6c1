//! The result of one bench run: one JSON line for scripts, one sentence for people.

use std::fmt::Write as _;
use std::time::Duration;

/// A value in the JSON line.
#[derive(Clone, Debug)]
pub enum Value {
    /// A count.
    Int(u64),
    /// A rate, a time.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// A name.
    Str(String),
    /// A list of messages (errors).
    List(Vec<String>),
}

/// Ordered key/value pairs, printed as one JSON object.
#[derive(Clone, Debug, Default)]
pub struct Report {
    fields: Vec<(&'static str, Value)>,
}

impl Report {
    /// Adds a field (keys are fixed identifiers, so they need no escaping).
    pub fn set(&mut self, key: &'static str, value: Value) -> &mut Self {
        self.fields.push((key, value));
        self
    }

    /// The report as one line of JSON.
    pub fn json(&self) -> String {
        let mut out = String::from("{");
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{key}\":");
            match value {
                Value::Int(n) => {
                    let _ = write!(out, "{n}");
                }
                // JSON has no NaN/inf: a rate over zero time is reported as 0.
                Value::Float(x) if x.is_finite() => {
                    let _ = write!(out, "{x:.3}");
                }
                Value::Float(_) => out.push('0'),
                Value::Bool(b) => {
                    let _ = write!(out, "{b}");
                }
                Value::Str(s) => quote(&mut out, s),
                Value::List(items) => {
                    out.push('[');
                    for (j, item) in items.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        quote(&mut out, item);
                    }
                    out.push(']');
                }
            }
        }
        out.push('}');
        out
    }
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `n` events over `d`, per second (0 when no time passed).
pub fn rate(n: u64, d: Duration) -> f64 {
    let secs = d.as_secs_f64();
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// The `p`-th percentile (nearest rank) of sorted samples, in microseconds.
pub fn percentile_us(sorted_ns: &[u64], p: u32) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest sample with at least p% of samples at or below it.
    let rank = (sorted_ns.len() as u64 * u64::from(p)).div_ceil(100).max(1);
    let idx = usize::try_from(rank - 1).unwrap_or(usize::MAX);
    let ns = sorted_ns
        .get(idx)
        .or(sorted_ns.last())
        .copied()
        .unwrap_or(0);
    ns as f64 / 1000.0
}

/// A rate for people: `1.23M`, `45.6k`.
pub fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_one_json_line() {
        let mut r = Report::default();
        r.set("mode", Value::Str("pub".into()))
            .set("sent", Value::Int(10))
            .set("rate", Value::Float(1.5))
            .set("bad", Value::Float(f64::NAN))
            .set("complete", Value::Bool(true))
            .set("errors", Value::List(vec!["say \"hi\"\n".into()]));
        assert_eq!(
            r.json(),
            r#"{"mode":"pub","sent":10,"rate":1.500,"bad":0,"complete":true,"errors":["say \"hi\"\u000a"]}"#
        );
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let ns: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_us(&ns, 50), 50.0);
        assert_eq!(percentile_us(&ns, 99), 99.0);
        assert_eq!(percentile_us(&ns, 100), 100.0);
        assert_eq!(percentile_us(&[7000], 99), 7.0);
        assert_eq!(percentile_us(&[], 50), 0.0);
    }

    #[test]
    fn rates_read_well() {
        assert_eq!(human(1_234_567.0), "1.23M");
        assert_eq!(human(45_600.0), "45.6k");
        assert_eq!(rate(10, Duration::ZERO), 0.0);
    }
}
