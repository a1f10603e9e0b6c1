//! The bridge's counters (atomics, added by whichever side sees the event) and the `/mqttz`
//! snapshot built from them.
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Counters shared by the MQTT thread, the ingest task and monitoring.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connected to a broker now (CONNACK received, not lost since).
    pub connected: AtomicBool,
    /// Successful connections (the first included).
    pub connects: AtomicU64,
    /// Connections lost or refused.
    pub disconnects: AtomicU64,
    /// MQTT PUBLISHes received and published into NATS.
    pub in_msgs: AtomicU64,
    /// Their payload bytes.
    pub in_bytes: AtomicU64,
    /// Received with the DUP flag: the broker redelivered them (after a reconnect).
    pub redelivered: AtomicU64,
    /// PUBACKs sent to the broker.
    pub acked: AtomicU64,
    /// QoS 1 messages waiting for their PUBACK now.
    pub pending_acks: AtomicU64,
    /// Messages handed to a stream (QoS 1 ones are acknowledged after it stored them).
    pub stored: AtomicU64,
    /// Times a stream refused a message (full with `when_full = "refuse"`, or its thread
    /// stopped). A QoS 1 one is offered again every 500 ms with its PUBACK held, so the broker
    /// keeps it and everything after it: nothing is acknowledged that twig did not store.
    pub store_failed: AtomicU64,
    /// PUBLISHes on topics no import maps (not valid as subjects, or from a subscription the
    /// persistent session kept from an older configuration).
    pub unmapped: AtomicU64,
    /// NATS messages published to the broker.
    pub out_msgs: AtomicU64,
    /// Their payload bytes.
    pub out_bytes: AtomicU64,
    /// NATS messages whose subject maps to no valid MQTT topic.
    pub out_unmapped: AtomicU64,
    /// The broker URL in use (or last tried).
    pub url: Mutex<String>,
    /// The last connection error, as text.
    pub last_error: Mutex<Option<String>>,
}

impl Stats {
    /// Records a connection failure.
    pub fn failed(&self, error: String) {
        self.connected.store(false, Relaxed);
        self.disconnects.fetch_add(1, Relaxed);
        *twig_util::lock::lock(&self.last_error) = Some(error);
    }
}

/// One export in `/mqttz`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ExportInfo {
    /// The NATS subject filter.
    pub subject: String,
    /// Messages taken from NATS.
    pub delivered: u64,
    /// Messages dropped because the MQTT side was behind by more than the export's queue.
    pub dropped: u64,
}

/// `/mqttz`: the MQTT bridge.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Mqttz {
    /// Whether `[mqtt]` is configured.
    pub enabled: bool,
    /// Connected to the broker now.
    pub connected: bool,
    /// The broker URL in use or last tried.
    pub url: String,
    /// The MQTT client id.
    pub client_id: String,
    /// Successful connections.
    pub connects: u64,
    /// Reconnects: successful connections after the first.
    pub reconnects: u64,
    /// Connections lost or refused.
    pub disconnects: u64,
    /// MQTT messages into NATS.
    pub in_msgs: u64,
    /// Their payload bytes.
    pub in_bytes: u64,
    /// Of those, redeliveries (DUP flag).
    pub redelivered: u64,
    /// PUBACKs sent.
    pub acked: u64,
    /// QoS 1 messages waiting for their PUBACK (durability or order).
    pub pending_acks: u64,
    /// Messages handed to streams.
    pub stored: u64,
    /// Messages streams refused.
    pub store_failed: u64,
    /// Topics that map to no subject.
    pub unmapped: u64,
    /// NATS messages out to the broker.
    pub out_msgs: u64,
    /// Their payload bytes.
    pub out_bytes: u64,
    /// Subjects that map to no topic.
    pub out_unmapped: u64,
    /// The last connection error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The import topic filters.
    pub imports: Vec<String>,
    /// The exports.
    pub exports: Vec<ExportInfo>,
}

impl Stats {
    /// The counters as `/mqttz` shows them (the caller fills the rest).
    pub fn snapshot(&self) -> Mqttz {
        let connects = self.connects.load(Relaxed);
        Mqttz {
            enabled: true,
            connected: self.connected.load(Relaxed),
            url: twig_util::lock::lock(&self.url).clone(),
            connects,
            reconnects: connects.saturating_sub(1),
            disconnects: self.disconnects.load(Relaxed),
            in_msgs: self.in_msgs.load(Relaxed),
            in_bytes: self.in_bytes.load(Relaxed),
            redelivered: self.redelivered.load(Relaxed),
            acked: self.acked.load(Relaxed),
            stored: self.stored.load(Relaxed),
            store_failed: self.store_failed.load(Relaxed),
            unmapped: self.unmapped.load(Relaxed),
            out_msgs: self.out_msgs.load(Relaxed),
            out_bytes: self.out_bytes.load(Relaxed),
            out_unmapped: self.out_unmapped.load(Relaxed),
            last_error: twig_util::lock::lock(&self.last_error).clone(),
            ..Mqttz::default()
        }
    }
}
