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
    /// CONNECTs refused with `Authorization Violation` (twig's own; nats-server has none).
    pub auth_failures: AtomicU64,
    /// Connections refused with `maximum connections exceeded` (twig's own; nats-server
    /// counts none).
    pub refused_connections: AtomicU64,
}

impl Stats {
    /// Counts messages and bytes received from clients (once per read batch).
    pub fn count_in(&self, msgs: u64, bytes: u64) {
        self.in_msgs.fetch_add(msgs, Relaxed);
        self.in_bytes.fetch_add(bytes, Relaxed);
    }

    /// Counts deliveries and their bytes (once per read batch).
    pub fn count_out(&self, msgs: u64, bytes: u64) {
        self.out_msgs.fetch_add(msgs, Relaxed);
        self.out_bytes.fetch_add(bytes, Relaxed);
    }
}
