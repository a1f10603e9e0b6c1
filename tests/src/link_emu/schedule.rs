//! Seeded schedules: stalls and cuts on the emulator's timeline, and the random numbers for
//! jitter. Everything random comes from a [`Rng`] seeded by the [`super::LinkSpec`]'s `seed`,
//! so the same spec gives the same schedule and the same jitter draws in every run.
use std::time::Duration;

/// splitmix64: small, fast, and good enough for test schedules (not for anything secret).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; `stream` separates independent draws of one seed (e.g. the
    /// jitter of each connection and direction).
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (`lo` when `hi <= lo`).
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        if hi <= lo {
            return lo;
        }
        let span = u64::try_from((hi - lo).as_nanos()).unwrap_or(u64::MAX);
        lo + Duration::from_nanos(self.next_u64() % span.saturating_add(1))
    }
}

/// A span of the emulator's timeline, counted from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start, from the emulator's start.
    pub at: Duration,
    /// Length.
    pub len: Duration,
}

impl Span {
    /// The end, from the emulator's start.
    pub fn end(&self) -> Duration {
        self.at + self.len
    }

    /// Whether `t` (from the emulator's start) falls inside.
    pub fn contains(&self, t: Duration) -> bool {
        t >= self.at && t < self.end()
    }
}

/// How a cut ends the connections it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutKind {
    /// Both ends get a TCP reset at once; connections made while the link is down are reset
    /// as soon as they are accepted.
    Reset,
    /// Silence: nothing more is forwarded either way and no end is told; each socket stays
    /// open until its own end closes it (a dead NAT entry, a radio gone). Connections made
    /// while the link is down are accepted and never answered.
    Drop,
}

/// A cut: at `span.at` every open connection is cut (`kind`), and for `span.len` new ones
/// are too. After that new connections work again; connections cut stay dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// When, and how long the link stays down.
    pub span: Span,
    /// How.
    pub kind: CutKind,
}

/// Random events: the gap before each (from the end of the previous one) and its length
/// are drawn uniformly from these ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// Shortest and longest gap between events.
    pub gap: (Duration, Duration),
    /// Shortest and longest event.
    pub len: (Duration, Duration),
}

impl Pattern {
    /// The spans of this pattern for `seed` up to `horizon` (events starting after it are
    /// left out). `stream` keeps stalls and cuts of one seed independent.
    pub fn spans(&self, seed: u64, stream: u64, horizon: Duration) -> Vec<Span> {
        let mut rng = Rng::new(seed, stream);
        let mut out = Vec::new();
        let mut t = Duration::ZERO;
        // A pattern of zero-length gaps and events would never pass the horizon.
        let step = self.gap.1.max(self.len.1);
        if step.is_zero() {
            return out;
        }
        loop {
            let at = t + rng.duration(self.gap.0, self.gap.1);
            if at > horizon {
                return out;
            }
            let len = rng.duration(self.len.0, self.len.1);
            out.push(Span { at, len });
            t = at + len;
            if self.gap.0.is_zero() && len.is_zero() {
                // Both minimums zero: make sure time moves.
                t += Duration::from_millis(1);
            }
        }
    }
}

/// Cuts of a pattern, alternating or fixed in kind: `kinds` is cycled through in order.
pub fn cuts(pattern: &Pattern, kinds: &[CutKind], seed: u64, horizon: Duration) -> Vec<Cut> {
    let kinds = if kinds.is_empty() {
        &[CutKind::Reset][..]
    } else {
        kinds
    };
    pattern
        .spans(seed, 2, horizon)
        .into_iter()
        .zip(kinds.iter().cycle())
        .map(|(span, &kind)| Cut { span, kind })
        .collect()
}

/// Stalls of a pattern.
pub fn stalls(pattern: &Pattern, seed: u64, horizon: Duration) -> Vec<Span> {
    pattern.spans(seed, 1, horizon)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_seed_gives_the_same_schedule_and_another_seed_another() {
        let p = Pattern {
            gap: (100 * MS, 900 * MS),
            len: (10 * MS, 200 * MS),
        };
        let a = stalls(&p, 7, Duration::from_secs(60));
        assert_eq!(a, stalls(&p, 7, Duration::from_secs(60)));
        assert_ne!(a, stalls(&p, 8, Duration::from_secs(60)));
        assert!(a.len() > 50, "{}", a.len());
        let mut end = Duration::ZERO;
        for s in &a {
            assert!(s.at >= end + 100 * MS && s.at <= end + 900 * MS, "{s:?}");
            assert!(s.len >= 10 * MS && s.len <= 200 * MS, "{s:?}");
            end = s.end();
        }
        let c = cuts(
            &p,
            &[CutKind::Reset, CutKind::Drop],
            7,
            Duration::from_secs(5),
        );
        assert!(c.iter().step_by(2).all(|c| c.kind == CutKind::Reset));
        assert!(c.iter().skip(1).step_by(2).all(|c| c.kind == CutKind::Drop));
        assert_ne!(
            c.iter().map(|c| c.span).collect::<Vec<_>>(),
            a[..c.len()].to_vec(),
            "cuts and stalls of one seed are independent"
        );
    }

    #[test]
    fn durations_stay_in_range() {
        let mut r = Rng::new(1, 0);
        for _ in 0..10_000 {
            let d = r.duration(5 * MS, 7 * MS);
            assert!((5 * MS..=7 * MS).contains(&d));
        }
        assert_eq!(r.duration(5 * MS, 5 * MS), 5 * MS);
        assert_eq!(r.duration(5 * MS, MS), 5 * MS);
        let none = Pattern {
            gap: (Duration::ZERO, Duration::ZERO),
            len: (Duration::ZERO, Duration::ZERO),
        };
        assert!(none.spans(1, 1, Duration::from_secs(1)).is_empty());
    }
}
