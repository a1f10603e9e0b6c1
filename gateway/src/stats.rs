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
    /// Adds one message of `bytes` payload bytes to an in/out pair of counters.
    pub fn count(msgs: &AtomicU64, bytes_ctr: &AtomicU64, bytes: usize) {
        msgs.fetch_add(1, Relaxed);
        bytes_ctr.fetch_add(bytes as u64, Relaxed);
    }
}
