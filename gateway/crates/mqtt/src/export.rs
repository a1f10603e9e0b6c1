//! NATS -> MQTT: one task per `[[mqtt.export]]`, taking messages from the export's internal
//! subscription and queueing them as MQTT publishes with the mapped topic, QoS and retain.
//!
//! While the broker is away rumqttc keeps what was queued (QoS 1 until acknowledged, across
//! reconnects of a persistent session); once its request channel is full this task waits and
//! the subscription's own queue absorbs the rest, beyond which messages are dropped and counted
//! (`/mqttz` exports[].dropped), as nats-server cuts off a slow consumer.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use rumqttc::AsyncClient;

use super::client::qos;
use super::mapping::Export;
use super::stats::Stats;
use twig_router::internal::Owned;

/// Runs until the subscription's channel closes.
pub async fn run(
    export: Export,
    rx: async_channel::Receiver<Owned>,
    client: AsyncClient,
    stats: Arc<Stats>,
) {
    while let Ok(m) = rx.recv().await {
        let Some(topic) = export.topic(&m.subject) else {
            stats.out_unmapped.fetch_add(1, Relaxed);
            continue;
        };
        let len = m.payload.len() as u64;
        // MQTT 3.1.1 has no headers: only the body crosses.
        match client
            .publish(topic, qos(export.qos), export.retain, m.payload.into_vec())
            .await
        {
            Ok(()) => {
                stats.out_msgs.fetch_add(1, Relaxed);
                stats.out_bytes.fetch_add(len, Relaxed);
            }
            // A topic rumqttc refuses, or the MQTT thread is gone (shutdown).
            Err(_) => {
                stats.out_unmapped.fetch_add(1, Relaxed);
            }
        }
    }
}
