//! Slowing down an address that keeps failing to log in (beyond nats-server, which answers
//! every guess at once). Sans-IO: time is passed in.
//!
//! Each address has a failure count. Up to `free_failures` failures cost nothing (typos
//! happen); once there are that many, the address's next login attempt must wait
//! `first_delay`, doubling with each further failure up to `max_delay`. Waits are handed out as *slots*: a second connection
//! from the same address while one waits gets the slot after it, so opening many connections
//! at once does not buy more guesses per second. An address is forgotten `forget_after` after
//! its last failure; a successful login does not clear it (one valid account must not reset
//! the count for guessing another's password).
//!
//! Memory is bounded: at most `max_addresses` entries; when full, the address whose last
//! failure is oldest goes (found by a scan that then frees a quarter of the table, so the cost
//! stays amortised O(1) per failure).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use twig_config::LoginThrottleConfig;

/// Bytes counted per remembered address (the key, the entry and the table's slack).
pub const ENTRY_BYTES: usize = 48;

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    /// No attempt from this address is answered before this.
    next_slot: Instant,
}

/// Failure counts per address.
#[derive(Debug)]
pub struct LoginThrottle {
    config: LoginThrottleConfig,
    table: HashMap<IpAddr, Entry>,
}

impl LoginThrottle {
    /// An empty table under `config`.
    pub fn new(config: LoginThrottleConfig) -> Self {
        LoginThrottle {
            config,
            table: HashMap::new(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> LoginThrottleConfig {
        self.config
    }

    /// A login attempt from `ip` is about to be checked: how long it must wait first (zero
    /// for an address in good standing). Reserves the slot, so call it once per attempt.
    pub fn reserve(&mut self, now: Instant, ip: IpAddr) -> Duration {
        let Some(e) = self.table.get_mut(&ip) else {
            return Duration::ZERO;
        };
        if now.saturating_duration_since(e.last_failure) > self.config.forget_after {
            self.table.remove(&ip);
            return Duration::ZERO;
        }
        let delay = delay_after(&self.config, e.failures);
        if delay.is_zero() {
            return Duration::ZERO;
        }
        let slot = e.next_slot.max(now);
        e.next_slot = slot + delay;
        slot - now
    }

    /// A login from `ip` failed at `now`; returns its failure count.
    pub fn failed(&mut self, now: Instant, ip: IpAddr) -> u32 {
        if !self.table.contains_key(&ip) && self.table.len() >= self.config.max_addresses {
            self.evict_oldest(now);
        }
        let e = self.table.entry(ip).or_insert(Entry {
            failures: 0,
            last_failure: now,
            next_slot: now,
        });
        if now.saturating_duration_since(e.last_failure) > self.config.forget_after {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        e.next_slot = e.next_slot.max(now + delay_after(&self.config, e.failures));
        e.failures
    }

    /// Forgets addresses past `forget_after`, then, if the table is still full, the oldest
    /// quarter (at least one).
    fn evict_oldest(&mut self, now: Instant) {
        let forget = self.config.forget_after;
        self.table
            .retain(|_, e| now.saturating_duration_since(e.last_failure) <= forget);
        if self.table.len() < self.config.max_addresses {
            return;
        }
        let mut ages: Vec<Instant> = self.table.values().map(|e| e.last_failure).collect();
        ages.sort_unstable();
        let n = (self.config.max_addresses / 4).max(1);
        let cutoff = ages[n.min(ages.len()) - 1];
        let mut left = n;
        self.table.retain(|_, e| {
            if left > 0 && e.last_failure <= cutoff {
                left -= 1;
                false
            } else {
                true
            }
        });
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// The wait that `failures` failures earn.
fn delay_after(c: &LoginThrottleConfig, failures: u32) -> Duration {
    let Some(over) = failures.checked_sub(c.free_failures.max(1)) else {
        return Duration::ZERO;
    };
    let doublings = over.min(30);
    c.first_delay
        .saturating_mul(1u32 << doublings)
        .min(c.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(LoginThrottleConfig::default())
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_first_failures_are_free_then_waits_double() {
        let mut t = throttle();
        let t0 = Instant::now();
        for i in 1..=3 {
            assert_eq!(
                t.reserve(t0, A),
                Duration::ZERO,
                "attempt {i} is answered at once"
            );
            assert_eq!(t.failed(t0, A), i);
        }
        // 3 failures: the next attempt waits 1 s; then 2, 4, 8, 16, 30 (the cap), 30.
        let mut now = t0;
        for want in [1, 2, 4, 8, 16, 30, 30] {
            let wait = t.reserve(now, A);
            assert_eq!(wait, s(want), "after {} failures", t.table[&A].failures);
            now += wait;
            t.failed(now, A);
        }
        // Another address is not affected.
        assert_eq!(t.reserve(now, B), Duration::ZERO);
    }

    #[test]
    fn parallel_attempts_queue_behind_each_other() {
        let mut t = throttle();
        let t0 = Instant::now();
        for _ in 0..4 {
            t.failed(t0, A);
        }
        // 4 failures: 2 s per attempt. Five connections at once wait 2, 4, 6, 8, 10 s.
        let waits: Vec<u64> = (0..5).map(|_| t.reserve(t0, A).as_secs()).collect();
        assert_eq!(waits, [2, 4, 6, 8, 10]);
        // Time passing counts: 10 s later the next slot is 2 s away again.
        assert_eq!(t.reserve(t0 + s(10), A), s(2));
    }

    #[test]
    fn addresses_are_forgotten() {
        let mut t = throttle();
        let t0 = Instant::now();
        for _ in 0..10 {
            t.failed(t0, A);
        }
        assert!(t.reserve(t0, A) > Duration::ZERO);
        let later = t0 + s(601);
        assert_eq!(t.reserve(later, A), Duration::ZERO);
        assert!(t.is_empty());
        // A failure after the forget time starts counting afresh.
        for _ in 0..10 {
            t.failed(t0, B);
        }
        assert_eq!(t.failed(later, B), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = LoginThrottle::new(LoginThrottleConfig {
            max_addresses: 100,
            ..LoginThrottleConfig::default()
        });
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.failed(t0 + Duration::from_millis(u64::from(i)), ip);
            assert!(t.len() <= 100);
        }
        // The most recent addresses are the ones kept.
        let last = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + 9_999));
        assert!(t.table.contains_key(&last));
        assert!(!t.table.contains_key(&A));
    }

    #[test]
    fn a_zero_first_delay_turns_it_off() {
        let mut t = LoginThrottle::new(LoginThrottleConfig {
            first_delay: Duration::ZERO,
            ..LoginThrottleConfig::default()
        });
        let t0 = Instant::now();
        for _ in 0..50 {
            t.failed(t0, A);
        }
        assert_eq!(t.reserve(t0, A), Duration::ZERO);
    }
}
