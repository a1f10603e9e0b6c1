//! Server-wide counters, shared lock-free by connections, the router and monitoring.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters nats-server reports in `/varz` (the ones that apply to twig).
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages received from clients.
    pub in_msgs: AtomicU64,
    /// Payload bytes received from clients.
    pub in_bytes: AtomicU64,
    /// Messages delivered to clients.
    pub out_msgs: AtomicU64,
    /// Payload bytes delivered to clients.
    pub out_bytes: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections cut off because their outbound buffer passed `max_pending`.
    pub slow_consumers: AtomicU64,
    /// Connections closed because they missed `ping_max` PONGs.
    pub stale_connections: AtomicU64,
}

impl Stats {
    /// Counts one message of `bytes` bytes received from a client.
    pub fn count_in(&self, bytes: usize) {
        self.in_msgs.fetch_add(1, Relaxed);
        self.in_bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// Counts one message of `bytes` bytes delivered `n` times.
    pub fn count_out_n(&self, n: usize, bytes: usize) {
        if n > 0 {
            self.out_msgs.fetch_add(n as u64, Relaxed);
            self.out_bytes.fetch_add((n * bytes) as u64, Relaxed);
        }
    }
}
