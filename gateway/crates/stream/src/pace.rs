//! What the forwarder knows about its link, sans IO: the round trip (RFC 6298's smoothed RTT
//! and variance, and the minimum), the delivery rate (a windowed maximum over the last round
//! trips, as BBR keeps it), and from them the retransmission timeout and the window.
//!
//! Samples come from PubAcks: a message's round trip runs from when its bytes were written to
//! the socket to its PubAck; a delivery-rate sample is the bytes acknowledged between the last
//! PubAck before the message was written and its own PubAck, over that time (BBR's estimator:
//! it spans at least one round trip, so a burst of PubAcks after a stall does not read as a
//! fast link).
use std::time::Duration;

/// Lowest retransmission timeout (Linux's; RFC 6298 says 1 s, for links far lossier than a
/// TCP connection that only ever "loses" what the hub drops).
pub const MIN_RTO: Duration = Duration::from_millis(200);
/// Highest retransmission timeout, backed-off ones included.
pub const MAX_RTO: Duration = Duration::from_secs(60);
/// RFC 6298's clock granularity term: the variance part never counts less than this.
const G: Duration = Duration::from_millis(10);
/// Round trips the delivery-rate maximum looks back over.
pub const BW_ROUNDS: u64 = 10;
/// The window holds this many bandwidth-delay products: one in flight, one queued at the
/// bottleneck so the link never idles while PubAcks come back (BBR's `cwnd_gain`).
pub const GAIN: f64 = 2.0;
/// The round trip the window assumes at least: on a LAN or loopback the hub's own work (its
/// JetStream store) is the bottleneck, and it gets through more in bigger batches.
pub const RTT_FLOOR: Duration = Duration::from_millis(10);
/// The window before anything is measured (about TCP's initial ten segments).
pub const INITIAL_WINDOW: u64 = 16 * 1024;
/// The smallest window.
pub const MIN_WINDOW: u64 = 4 * 1024;

/// Round-trip estimates (RFC 6298 section 2).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
    min: Option<Duration>,
}

impl Rtt {
    /// A measured round trip (of a message sent once: Karn's rule is the caller's).
    pub fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                let err = s.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((s * 7 + r) / 8);
            }
        }
        self.min = Some(self.min.map_or(r, |m| m.min(r)));
    }

    /// Smoothed round trip, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// Shortest round trip seen (since [`Rtt::forget_min`]).
    pub fn min(&self) -> Option<Duration> {
        self.min
    }

    /// A new connection may take another path: the minimum is measured again.
    pub fn forget_min(&mut self) {
        self.min = None;
    }

    /// The retransmission timeout: `initial` until a round trip was measured, then SRTT plus
    /// four deviations, within [`MIN_RTO`]..[`MAX_RTO`].
    pub fn rto(&self, initial: Duration) -> Duration {
        match self.srtt {
            None => initial,
            Some(s) => (s + (self.rttvar * 4).max(G)).clamp(MIN_RTO, MAX_RTO),
        }
    }
}

/// The highest delivery rate (bytes per second) of the last [`BW_ROUNDS`] round trips.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bandwidth {
    /// Highest sample per round, indexed by round modulo the window.
    rounds: [(u64, f64); BW_ROUNDS as usize],
    any: bool,
}

impl Bandwidth {
    /// A sample taken in round `round`. An app-limited sample (taken while the forwarder had
    /// nothing more to send) only counts when it is higher than the current estimate: a quiet
    /// stream says nothing about the link.
    pub fn sample(&mut self, round: u64, rate: f64, app_limited: bool) {
        if !rate.is_finite() || rate <= 0.0 || (app_limited && rate <= self.get(round)) {
            return;
        }
        let slot = &mut self.rounds[(round % BW_ROUNDS) as usize];
        if slot.0 != round || !self.any {
            *slot = (round, rate);
        } else {
            slot.1 = slot.1.max(rate);
        }
        self.any = true;
    }

    /// The estimate at round `round` (0 before any sample).
    pub fn get(&self, round: u64) -> f64 {
        if !self.any {
            return 0.0;
        }
        self.rounds
            .iter()
            .filter(|(r, _)| *r + BW_ROUNDS > round && *r <= round)
            .map(|(_, b)| *b)
            .fold(0.0, f64::max)
    }
}

/// The window in bytes for a delivery rate (bytes per second) and minimum round trip.
pub fn window(rate: f64, min_rtt: Option<Duration>) -> u64 {
    match min_rtt {
        Some(rtt) if rate > 0.0 => {
            let bdp = rate * rtt.max(RTT_FLOOR).as_secs_f64();
            ((GAIN * bdp) as u64).max(MIN_WINDOW)
        }
        _ => INITIAL_WINDOW,
    }
}

/// Time `bytes` take at `rate` bytes per second (zero when the rate is not known yet).
pub fn transfer(bytes: u64, rate: f64) -> Duration {
    if rate > 0.0 {
        Duration::from_secs_f64((bytes as f64 / rate).min(MAX_RTO.as_secs_f64()))
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_rto_follows_rfc_6298() {
        let mut r = Rtt::default();
        assert_eq!(r.rto(5000 * MS), 5000 * MS, "nothing measured yet");
        r.sample(600 * MS);
        // SRTT = R, RTTVAR = R/2: RTO = R + 4 * R/2 = 3R.
        assert_eq!(r.rto(5000 * MS), 1800 * MS);
        for _ in 0..50 {
            r.sample(600 * MS);
        }
        // A steady round trip: the variance decays, the RTO comes down towards SRTT.
        let rto = r.rto(5000 * MS);
        assert!(rto > 600 * MS && rto < 700 * MS, "{rto:?}");
        r.sample(1200 * MS);
        assert!(r.rto(5000 * MS) > 1000 * MS, "a late sample widens it");
        assert_eq!(r.min(), Some(600 * MS));
        let mut lan = Rtt::default();
        for _ in 0..50 {
            lan.sample(MS);
        }
        assert_eq!(lan.rto(5000 * MS), MIN_RTO);
    }

    #[test]
    fn the_rate_is_the_maximum_of_the_last_rounds() {
        let mut b = Bandwidth::default();
        assert_eq!(b.get(0), 0.0);
        b.sample(1, 100.0, false);
        b.sample(1, 80.0, false);
        b.sample(2, 50.0, false);
        assert_eq!(b.get(2), 100.0);
        // Ten rounds later the 100 has aged out.
        b.sample(11, 60.0, false);
        assert_eq!(b.get(11), 60.0);
        // App-limited samples only count upwards.
        b.sample(12, 10.0, true);
        assert_eq!(b.get(12), 60.0);
        b.sample(12, 90.0, true);
        assert_eq!(b.get(12), 90.0);
        b.sample(13, f64::NAN, false);
        assert_eq!(b.get(13), 90.0);
    }

    #[test]
    fn the_window_is_twice_the_bandwidth_delay_product() {
        assert_eq!(window(0.0, None), INITIAL_WINDOW);
        // 20 KB/s, 600 ms: BDP 12 KB.
        assert_eq!(window(20_000.0, Some(600 * MS)), 24_000);
        // Loopback: the floor round trip.
        assert_eq!(window(10_000_000.0, Some(MS / 2)), 200_000);
        assert_eq!(window(1_000.0, Some(100 * MS)), MIN_WINDOW);
        assert_eq!(transfer(20_000, 20_000.0), 1000 * MS);
        assert_eq!(transfer(20_000, 0.0), Duration::ZERO);
    }
}
