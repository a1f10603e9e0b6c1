//! Layer 3, component `twig-mqtt`: the MQTT bridge, and the MQTT listener's session ([`server`]). It
//! uses `router`, `config`, `util` and twig-core, never another component: messages go in
//! through a `Publisher`, out through internal subscriptions, into streams through the
//! router's store.
//!
//! The MQTT bridge: devices on an MQTT broker (mosquitto on most gateways) appear as NATS
//! subjects, locally and at the hub; NATS messages reach the devices.
//!
//! Layers, pure first:
//! - [`mapping`]: `[[mqtt.import]]` filters and `[[mqtt.export]]` subjects, over twig-core's
//!   `mqtt` mapping (exactly nats-server's); [`acks`]: the PUBACK order (sans-IO);
//!   [`stats`]: counters and `/mqttz`.
//! - [`client`]: the MQTT thread (rumqttc on a small tokio runtime).
//! - [`ingest`]: MQTT -> NATS on the gateway's executor: publish into the router, store in a
//!   stream, acknowledge to the broker once durable. [`export`]: NATS -> MQTT.
//!
//! ## Why a thread with its own tokio runtime
//! rumqttc is the MQTT client the field uses and the one the tests check twig against, and it
//! is written for tokio (its sockets, timers and TLS are tokio's). twig runs on smol. Rather
//! than a second MQTT codec, twig gives rumqttc one OS thread with a current-thread tokio
//! runtime (no worker pool, a few hundred KiB) and talks to it only over bounded channels that
//! work on any executor (`async-channel` for events, rumqttc's own flume channel for
//! requests). Nothing else in the gateway sees a tokio type, so the rest keeps one executor
//! and one I/O reactor, and the cost is one hand-off per batch of MQTT packets.
//!
//! ## Delivery guarantees
//! - QoS 1 from the broker is acknowledged (PUBACK, rumqttc manual acks) only once the message
//!   is in its stream and synced, when a `[[streams]]` entry stores the subject; otherwise once
//!   the router has it. PUBACKs leave in arrival order (MQTT 3.1.1 §4.6). Killing twig with
//!   messages in flight loses nothing: the persistent session (`clean_session = false`) makes
//!   the broker redeliver them, with DUP set.
//! - Redeliveries are de-duplicated by the stream: a QoS 1 message on a stream subject carries
//!   `Nats-Msg-Id: <client_id>:<packet id>:<hash of topic and payload>`, the same for every
//!   delivery of that message (the broker keeps the packet id). Two different messages get the
//!   same id only with the same packet id, topic and payload within the stream's
//!   `duplicate_window`: the broker reuses a packet id after 65535 further QoS 1 messages to
//!   twig, so keep the window shorter than that many messages at the peak rate.
//! - Headers as nats-server's MQTT listener sets them: `Nmqtt-Pub: <qos>` (the QoS twig
//!   received it with), plus `Twig-Mqtt-Retain: 1` on retained messages.
//! - The bridge publishes and subscribes as one component ([`Owner`]): its own imports are
//!   never delivered to its exports. MQTT 3.1.1 has no "no local" flag, so an export whose
//!   topics an import also matches comes back from the broker once (and stops there).

pub mod acks;
pub mod client;
pub mod export;
pub mod ingest;
pub mod listener;
pub mod server;
pub mod stats;

/// The mapping lives with the config section it checks (`config::mqtt::mapping`).
pub use twig_config::mqtt::mapping;

use std::sync::Arc;

use mapping::{Export, Import};
use stats::{ExportInfo, Mqttz, Stats};
use twig_config::Config;
use twig_router::Router;
use twig_router::internal::{InternalSub, Owner, new_owner};

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The section is inconsistent (normally caught by the config check).
    #[error("mqtt: {0}")]
    Config(String),
    /// The TLS files could not be used.
    #[error("mqtt.tls: {0}")]
    Tls(#[from] twig_util::tls::TlsError),
    /// The MQTT thread or its runtime could not be started.
    #[error("mqtt: cannot start the MQTT thread: {0}")]
    Thread(std::io::Error),
    /// An export's subject was refused by the router.
    #[error("mqtt.export {0:?}: cannot subscribe")]
    Subscribe(String),
}

/// The running bridge, as monitoring sees it.
pub struct Bridge {
    /// The owner id of every publish and subscription of the bridge.
    pub owner: Owner,
    /// Counters.
    pub stats: Arc<Stats>,
    client_id: String,
    imports: Vec<String>,
    exports: Vec<Arc<InternalSub>>,
}

impl Bridge {
    /// The `/mqttz` snapshot.
    pub fn mqttz(&self) -> Mqttz {
        let mut z = self.stats.snapshot();
        z.client_id = self.client_id.clone();
        z.pending_acks = self
            .stats
            .pending_acks
            .load(std::sync::atomic::Ordering::Relaxed);
        z.imports = self.imports.clone();
        z.exports = self
            .exports
            .iter()
            .map(|s| ExportInfo {
                subject: String::from_utf8_lossy(&s.subject).into_owned(),
                delivered: s.delivered.load(std::sync::atomic::Ordering::Relaxed),
                dropped: s.dropped.load(std::sync::atomic::Ordering::Relaxed),
            })
            .collect();
        z
    }
}

/// Starts the bridge when `[mqtt]` is configured: the MQTT thread, the ingest task and one
/// task per export on `ex`, publishing and subscribing through `router`. Returns the bridge
/// for monitoring.
pub fn spawn(
    router: &Arc<Router>,
    config: &Config,
    ex: &Arc<async_executor::Executor<'static>>,
) -> Result<Option<Arc<Bridge>>, MqttError> {
    let Some(cfg) = config.mqtt.clone() else {
        return Ok(None);
    };
    let imports = compile(&cfg.import, Import::new)?;
    let exports = compile(&cfg.export, Export::new)?;
    let owner = new_owner();
    let stats = Arc::new(Stats::default());
    let filters = imports.iter().map(|i| (i.filter.clone(), i.qos)).collect();
    let thread = client::start(&cfg, filters, stats.clone())?;

    let mut subs = Vec::new();
    for e in exports {
        let (sub, rx) = InternalSub::new(owner, e.subject.as_bytes(), None, e.queue, e.queue_bytes);
        router
            .insert_internal(&sub)
            .map_err(|_| MqttError::Subscribe(e.subject.clone()))?;
        subs.push(sub);
        ex.spawn(export::run(e, rx, thread.client.clone(), stats.clone()))
            .detach();
    }
    let bridge = Arc::new(Bridge {
        owner,
        stats: stats.clone(),
        client_id: cfg.client_id.clone(),
        imports: imports.iter().map(|i| i.filter.clone()).collect(),
        exports: subs,
    });
    ex.spawn(ingest::run(
        router.clone(),
        ingest::Setup {
            owner,
            client_id: cfg.client_id.clone(),
            imports,
            max_unacked: cfg.max_unacked,
            stats,
        },
        thread,
    ))
    .detach();
    tracing::info!(
        "MQTT bridge to {} ({} imports, {} exports)",
        cfg.urls.join(", "),
        cfg.import.len(),
        cfg.export.len()
    );
    Ok(Some(bridge))
}

fn compile<C, T>(list: &[C], f: impl Fn(&C) -> Result<T, String>) -> Result<Vec<T>, MqttError> {
    list.iter()
        .map(|c| f(c).map_err(MqttError::Config))
        .collect()
}
