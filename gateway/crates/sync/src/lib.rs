//! Layer 3, component `twig-sync`: durable pull consumers on hub streams. It uses `router`, `config`,
//! `util` and twig-core, never another component: it publishes and subscribes through the
//! router and watches its link through `Router::remote`.
//!
//! Sync from the cloud: for each `[[sync]]` entry, a durable pull consumer on a hub JetStream
//! stream (e.g. commands for this gateway) whose messages twig delivers to its local
//! subscribers (clients, the MQTT bridge) under their original subject and headers, each once,
//! after any disconnect.
//!
//! Layers, pure first:
//! - [`ack`]: the `$JS.ACK...` reply of a delivery and the `@<subject>` nats-server appends
//!   over leafnodes;
//! - [`machine`]: the pull protocol (create, `MSG.NEXT`, statuses, timeouts) as a sans-IO
//!   state machine with time passed in;
//! - [`seen`]: the delivered-but-unconfirmed stream sequences, in a small fsynced file;
//! - `task`: the shell, one task per entry on the executor: an internal subscription on its
//!   inbox (its interest reaches the hub as `LS+` like a client's), requests and acks through
//!   a [`Publisher`](twig_router::internal::Publisher), local delivery never back to a hub.
//!
//! Guarantee: at least once, and each once except across a crash of twig itself. Per batch
//! of messages received together the task delivers them locally, then appends their stream
//! sequences to the state file (fdatasync), then acks them. A redelivered message whose
//! sequence is remembered (the last `max_remembered` delivered) is acked and not delivered
//! again: an ack lost with the link, a hub that forgot an ack in a crash. Crash windows:
//! twig dying after delivering and before the append delivers that batch again after the
//! restart (at most one duplicate per message); dying after the append and before the acks
//! reach the hub is harmless. Appending before delivering would turn the first window into a
//! loss instead, so twig takes the duplicate side. Order: the hub's order, except after a
//! link loss, when messages that were in flight come back only when the consumer's `ack_wait`
//! ends, after newer ones. A consumer deleted and re-created on the hub starts over: messages
//! older than the remembered window are delivered again.
//!
//! "Delivered" means handed to the local subscribers (clients, MQTT bridge) present at that
//! moment, as core NATS delivers. With `require_subscriber` (the default) a message nobody
//! takes is given back (`-NAK` with `retry_delay`) and stays in the hub stream until someone
//! subscribes; it is neither remembered nor counted as delivered.
pub mod ack;
pub mod machine;
pub mod seen;

mod task;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use twig_config::Config;
use twig_config::SyncConfig;
use twig_router::Router;
use twig_util::lock::lock;

/// Why the sync consumers could not start.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The state file could not be read.
    #[error("sync consumer {stream}/{durable}: cannot read {path}: {source}")]
    State {
        /// Stream.
        stream: String,
        /// Durable.
        durable: String,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The remote it follows is not configured.
    #[error("sync consumer {0}: there is no [[leafnodes.remotes]] entry number {1} (or --leaf)")]
    NoRemote(String, usize),
    /// The inbox subscription was refused by the router.
    #[error("sync consumer {0}: cannot subscribe its inbox")]
    Subscribe(String),
}

/// Counters and state of one consumer, shared by its task and monitoring.
#[derive(Debug, Default)]
pub struct Stats {
    /// Hub stream.
    pub stream: String,
    /// Durable name.
    pub durable: String,
    /// Messages delivered locally.
    pub delivered: AtomicU64,
    /// Acks the hub confirmed (acks are sent with a reply subject; the answer is counted).
    pub acked: AtomicU64,
    /// Redeliveries recognised as already delivered (acked, not delivered again).
    pub skipped: AtomicU64,
    /// Messages the hub sent more than once (skipped or not).
    pub redelivered: AtomicU64,
    /// Messages given back because no local subscriber took them (`require_subscriber`).
    pub refused: AtomicU64,
    /// Pull requests sent.
    pub requests: AtomicU64,
    /// `pending` of the last message: what the consumer still holds for twig.
    pub pending: AtomicU64,
    /// Highest stream sequence delivered (from the state file at start).
    pub last_seq: AtomicU64,
    /// Sequences remembered in the state file.
    pub remembered: AtomicU64,
    /// Phase (`down`, `waiting`, `creating`, `pulling`) and the last error.
    pub status: Mutex<(&'static str, Option<String>)>,
}

/// What `/jsz` shows per consumer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncState {
    /// Hub stream.
    pub stream: String,
    /// Durable name.
    pub durable: String,
    /// Phase.
    pub state: String,
    /// Messages delivered locally.
    pub delivered: u64,
    /// Acks the hub confirmed.
    pub acked: u64,
    /// Redeliveries skipped as already delivered.
    pub skipped_duplicates: u64,
    /// Messages the hub sent more than once.
    pub redelivered: u64,
    /// Messages given back (`-NAK`) because no local subscriber took them.
    pub no_subscriber: u64,
    /// Pull requests sent.
    pub requests: u64,
    /// Messages the consumer still holds for twig (as of the last message).
    pub pending: u64,
    /// Highest stream sequence delivered.
    pub last_stream_seq: u64,
    /// Sequences remembered while their acks are unconfirmed.
    pub remembered: u64,
    /// The last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Stats {
    /// A snapshot for monitoring.
    pub fn snapshot(&self) -> SyncState {
        let (state, last_error) = lock(&self.status).clone();
        SyncState {
            stream: self.stream.clone(),
            durable: self.durable.clone(),
            state: state.into(),
            delivered: self.delivered.load(Relaxed),
            acked: self.acked.load(Relaxed),
            skipped_duplicates: self.skipped.load(Relaxed),
            redelivered: self.redelivered.load(Relaxed),
            no_subscriber: self.refused.load(Relaxed),
            requests: self.requests.load(Relaxed),
            pending: self.pending.load(Relaxed),
            last_stream_seq: self.last_seq.load(Relaxed),
            remembered: self.remembered.load(Relaxed),
            last_error,
        }
    }

    fn set_phase(&self, phase: machine::Phase) {
        lock(&self.status).0 = phase.name();
    }

    fn error(&self, e: String) {
        tracing::warn!("Sync consumer {}/{}: {e}", self.stream, self.durable);
        lock(&self.status).1 = Some(e);
    }
}

/// Opens every `[[sync]]` entry's state file and starts its task on `ex`, each on its
/// remote's link (through `router`). Returns the stats for monitoring.
pub fn spawn(
    router: &Arc<Router>,
    config: &Config,
    ex: &Arc<async_executor::Executor<'static>>,
) -> Result<Vec<Arc<Stats>>, SyncError> {
    let mut all = Vec::new();
    for cfg in &config.sync {
        let Some(link) = router.remote(cfg.remote) else {
            let name = format!("{}/{}", cfg.stream, cfg.durable);
            return Err(SyncError::NoRemote(name, cfg.remote));
        };
        let t = task::Task::new(router, &config.store_dir, cfg, link)?;
        all.push(t.stats());
        ex.spawn(t.run()).detach();
    }
    Ok(all)
}

/// The `deny_imports` of remote `remote` (see `config::deny_imports`).
pub use twig_config::deny_imports;

/// The create request's body (`"action":"create"`: made if missing, never changed).
pub fn create_body(cfg: &SyncConfig) -> Vec<u8> {
    let mut config = serde_json::json!({
        "durable_name": cfg.durable,
        "deliver_policy": match cfg.deliver_policy {
            twig_config::DeliverPolicyConfig::All => "all",
            twig_config::DeliverPolicyConfig::New => "new",
        },
        "ack_policy": "explicit",
        "ack_wait": u64::try_from(cfg.ack_wait.as_nanos()).unwrap_or(u64::MAX),
        "max_ack_pending": cfg.max_ack_pending,
    });
    if let (Some(f), Some(obj)) = (&cfg.filter_subject, config.as_object_mut()) {
        obj.insert("filter_subject".into(), f.clone().into());
    }
    serde_json::json!({
        "stream_name": cfg.stream,
        "config": config,
        "action": "create",
    })
    .to_string()
    .into_bytes()
}
