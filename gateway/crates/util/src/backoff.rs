//! Reconnect timing, without clocks or sockets: the caller passes random numbers in (e.g.
//! [`crate::id::random_u64`]) and sleeps for what comes out. Used by the uplink and the
//! MQTT bridge, and
//! (without jitter) the stream forwarder and the sync consumer.
//!
//! Back-off: attempt `n` (0-based, counted since the last good connection) waits a random time
//! in `[d/2, d]` with `d = min(min_delay * 2^n, max_delay)` ("equal jitter"): never less than
//! half the nominal delay, so a hub that is down is not hammered, and never more, so the first
//! retry after a loss comes within `min_delay` (at most 100 ms, checked by the config).
//! [`Backoff::next_nominal`] is the same doubling without jitter, for the retries inside the
//! forwarder and the sync consumer.
use std::time::Duration;

/// The back-off state of one connection (a remote, a broker).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays from `min` doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The wait before the next attempt; `rand` is any random number (spreads the delay).
    pub fn next_delay(&mut self, rand: u64) -> Duration {
        let shift = self.attempt.min(30);
        let nominal = self
            .min
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = nominal / 2;
        let span = u64::try_from((nominal - half).as_nanos()).unwrap_or(u64::MAX);
        let extra = if span == 0 { 0 } else { rand % (span + 1) };
        half + Duration::from_nanos(extra)
    }

    /// The wait before the next attempt without jitter: `min * 2^n` up to `max`. For retries
    /// inside sans-IO state machines (the forwarder's error PubAcks, the sync consumer's
    /// missing interest), where one peer is retried and exact times keep the tests scripts.
    pub fn next_nominal(&mut self) -> Duration {
        let shift = self.attempt.min(30);
        self.attempt = self.attempt.saturating_add(1);
        self.min
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// A connection was established and worked: the next loss starts from `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_doubles_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let got: Vec<_> = (0..5).map(|_| b.next_nominal()).collect();
        assert_eq!(got, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        b.reset();
        assert_eq!(b.next_nominal(), ms(100));
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_retry_is_quick_then_doubles_to_the_cap_with_jitter() {
        let mut b = Backoff::new(50 * MS, 400 * MS);
        let lows: Vec<Duration> = (0..6).map(|_| b.next_delay(0)).collect();
        assert_eq!(
            lows,
            [25 * MS, 50 * MS, 100 * MS, 200 * MS, 200 * MS, 200 * MS]
        );
        let mut b = Backoff::new(50 * MS, 400 * MS);
        let highs: Vec<Duration> = (0..5).map(|_| b.next_delay(u64::MAX - 1)).collect();
        for (h, want_max) in highs.iter().zip([50, 100, 200, 400, 400]) {
            assert!(*h <= want_max * MS && *h >= want_max * MS / 2, "{h:?}");
        }
        b.reset();
        assert!(b.next_delay(7) <= 50 * MS);
        // Huge attempt counts neither overflow nor exceed the cap.
        let mut b = Backoff::new(MS, 2000 * MS);
        for _ in 0..100 {
            assert!(b.next_delay(12345) <= 2000 * MS);
        }
    }
}
