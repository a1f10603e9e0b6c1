//! The wall clock, read in one place: Unix time in nanoseconds (stream records, activity
//! times) and UTC calendar times (log lines, the monitor's RFC 3339 timestamps).
//!
//! Sans-IO state machines never read it: their shells pass `Instant`s or these values in.
use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock now: every wall-clock read of the gateway goes through here (start times,
/// monitoring, log lines), so one place says where time comes from.
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_nanos() -> u64 {
    nanos_since_epoch(now())
}

/// A wall-clock time as nanoseconds since the Unix epoch (0 before it).
pub fn nanos_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A UTC calendar time, for log lines and the monitor's RFC 3339 timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Year (1970 or later).
    pub year: u64,
    /// Month, 1..=12.
    pub month: u64,
    /// Day of month, 1..=31.
    pub day: u64,
    /// Hour, 0..=23.
    pub hour: u64,
    /// Minute, 0..=59.
    pub minute: u64,
    /// Second, 0..=59.
    pub second: u64,
    /// Nanoseconds, 0..=999_999_999.
    pub nanos: u32,
}

impl UtcTime {
    /// Converts a system time; times before 1970 clamp to the epoch.
    pub fn from_system_time(t: SystemTime) -> UtcTime {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (year, month, day) = civil_from_days(secs / 86_400);
        let rem = secs % 86_400;
        UtcTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: (rem / 60) % 60,
            second: rem % 60,
            nanos: since.subsec_nanos(),
        }
    }
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`, on
/// unsigned numbers since nothing here predates the epoch. No step can overflow: `days` is at
/// most `u64::MAX / 86400`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn calendar_dates() {
        let at = |secs: u64, nanos: u32| {
            UtcTime::from_system_time(UNIX_EPOCH + Duration::new(secs, nanos))
        };
        let t = at(0, 0);
        assert_eq!((t.year, t.month, t.day, t.hour), (1970, 1, 1, 0));
        // 2000-02-29 12:34:56.789 (a leap day in a year divisible by 400).
        let t = at(951_827_696, 789_000_000);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second, t.nanos),
            (2000, 2, 29, 12, 34, 56, 789_000_000)
        );
        // 2026-11-22 05:19:00, the day of nats-server's sample log lines.
        let t = at(1_795_324_740, 0);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute),
            (2026, 11, 22, 5, 19)
        );
        // 2100-03-01: 2100 is not a leap year.
        let t = at(4_107_542_400, 0);
        assert_eq!((t.year, t.month, t.day), (2100, 3, 1));
        let before_epoch = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(UtcTime::from_system_time(before_epoch), at(0, 0));
    }
}
