//! Reconnect timing and URL rotation, without clocks or sockets: the caller passes random
//! numbers in and sleeps for what comes out.
//!
//! Back-off: attempt `n` (0-based, counted since the last good connection) waits a random time
//! in `[d/2, d]` with `d = min(min_delay * 2^n, max_delay)` ("equal jitter"): never less than
//! half the nominal delay, so a hub that is down is not hammered, and never more, so the first
//! retry after a loss comes within `min_delay` (at most 100 ms, checked by the config).
use std::time::Duration;

use crate::config::LeafUrl;

/// The back-off state of one remote.
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

    /// A connection was established and worked: the next loss starts from `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// The URLs of one remote: the configured ones plus those the hub advertised
/// (`leafnode_urls`), tried in turn, as nats-server's `pickNextURL` does.
#[derive(Debug, Clone)]
pub struct Urls {
    configured: Vec<LeafUrl>,
    list: Vec<LeafUrl>,
    next: usize,
}

impl Urls {
    /// The configured URLs (at least one; parsed by the config check already).
    pub fn new(configured: Vec<LeafUrl>) -> Urls {
        Urls {
            list: configured.clone(),
            configured,
            next: 0,
        }
    }

    /// The URL to try now; the following call returns the next one in the rotation.
    pub fn next_url(&mut self) -> Option<LeafUrl> {
        if self.list.is_empty() {
            return None;
        }
        let i = self.next % self.list.len();
        self.next = i.wrapping_add(1);
        self.list.get(i).cloned()
    }

    /// Replaces the discovered part with the hub's `leafnode_urls` (bare `host:port`), keeping
    /// the configured URLs (with their credentials and TLS scheme) and not duplicating them.
    /// Discovered URLs inherit TLS and credentials from the first configured URL. The rotation
    /// continues after the URL in use.
    pub fn update_discovered(&mut self, current: &LeafUrl, advertised: &[String]) {
        let template = self.configured.first().cloned();
        let mut list = Vec::with_capacity(self.configured.len() + advertised.len());
        for a in advertised {
            let Ok(mut u) = LeafUrl::parse(a) else {
                continue;
            };
            let known = self
                .configured
                .iter()
                .chain(list.iter())
                .any(|c: &LeafUrl| c.host == u.host && c.port == u.port);
            if known {
                continue;
            }
            if let Some(t) = &template {
                u.tls = t.tls;
                u.user.clone_from(&t.user);
                u.password.clone_from(&t.password);
            }
            list.push(u);
        }
        list.extend(self.configured.iter().cloned());
        let pos = list
            .iter()
            .position(|u| u.host == current.host && u.port == current.port);
        self.next = pos.map_or(0, |p| p.wrapping_add(1));
        self.list = list;
    }

    /// Every URL in the rotation.
    pub fn all(&self) -> &[LeafUrl] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn url(s: &str) -> LeafUrl {
        LeafUrl::parse(s).unwrap()
    }

    #[test]
    fn rotation_covers_discovered_urls_and_keeps_configured_ones() {
        let mut u = Urls::new(vec![url("tls://u:p@a:1")]);
        let cur = u.next_url().unwrap();
        assert_eq!(cur.host, "a");
        u.update_discovered(&cur, &["a:1".into(), "b:2".into(), "c:3".into()]);
        let order: Vec<String> = (0..4).map(|_| u.next_url().unwrap().host_port()).collect();
        assert_eq!(order, ["b:2", "c:3", "a:1", "b:2"]);
        let b = u.all().iter().find(|x| x.host == "b").unwrap();
        assert!(b.tls);
        assert_eq!(b.user.as_deref(), Some("u"));
        // The hub's list shrinks: the gone server drops out, the configured one stays.
        let cur = url("b:2");
        u.update_discovered(&cur, &["c:3".into()]);
        let hosts: Vec<&str> = u.all().iter().map(|x| x.host.as_str()).collect();
        assert_eq!(hosts, ["c", "a"]);
    }
}
