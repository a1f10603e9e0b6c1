//! The MQTT thread: the only place tokio runs in twig.
//!
//! One OS thread with a current-thread tokio runtime drives rumqttc's `EventLoop` (connect,
//! read, keepalive, write the requests queued by [`AsyncClient`]) and nothing else. What it
//! receives goes to the gateway's executor in batches over a bounded `async-channel`
//! ([`Event`]); what the gateway sends (PUBACKs, exports) goes through rumqttc's own bounded
//! request channel. Both channel types work on any executor, so no tokio type crosses over.
//!
//! The loop never cancels `EventLoop::poll` (a request popped from the channel and not yet
//! written would be lost); it awaits one poll at a time and hands over what arrived whenever
//! rumqttc has no more buffered events. When the gateway side is behind, the send waits and
//! the socket is not read: back-pressure to the broker, which keeps the messages (QoS 1 in
//! its session, QoS 0 in its queue).
//!
//! On a lost or refused connection it waits (jittered exponential back-off from
//! `reconnect_delay_min` to `reconnect_delay_max`) and tries the next URL.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, EventLoop, MqttOptions, NetworkOptions, Packet, Publish, QoS,
    SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport,
};

use super::MqttError;
use super::stats::Stats;
use crate::config::mqtt::{MqttConfig, MqttUrl};
use crate::uplink::backoff::Backoff;

/// Most events in one batch to the gateway side.
const BATCH: usize = 256;

/// What the MQTT thread tells the gateway side, in the order it happened.
#[derive(Debug)]
pub enum Event {
    /// A CONNACK: a new connection. Acknowledgements owed on the old one are void (the broker
    /// redelivers those messages, with DUP set).
    Connected {
        /// The broker still had twig's session.
        session_present: bool,
    },
    /// A PUBLISH from the broker.
    Publish(Publish),
}

/// The running MQTT thread.
pub struct MqttThread {
    /// Queues requests (PUBACKs, publishes) for the broker.
    pub client: AsyncClient,
    /// Batches of events, in order.
    pub events: async_channel::Receiver<Vec<Event>>,
}

/// Starts the thread for `cfg`; it subscribes `filters` on every connection that has no
/// session (and on the first one of this process, since the configuration may have changed).
pub fn start(
    cfg: &MqttConfig,
    filters: Vec<(String, u8)>,
    stats: Arc<Stats>,
) -> Result<MqttThread, MqttError> {
    let urls = cfg
        .urls
        .iter()
        .map(|u| MqttUrl::parse(u).map_err(MqttError::Config))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = match &cfg.tls {
        Some(t) => Some(crate::uplink::dial::client_config(
            &crate::config::RemoteTlsConfig {
                ca_file: t.ca_file.clone(),
                cert_file: t.cert_file.clone(),
                key_file: t.key_file.clone(),
                server_name: None,
                timeout: cfg.connect_timeout,
            },
        )?),
        None => None,
    };
    let first = urls
        .first()
        .ok_or(MqttError::Config("no broker URL".into()))?;
    let (client, mut eventloop) =
        AsyncClient::new(options(cfg, first, tls.as_ref()), cfg.queue.max(1));
    let mut net = NetworkOptions::new();
    net.set_connection_timeout(cfg.connect_timeout.as_secs().max(1));
    // PUBACKs are small and the broker's window waits for them.
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let (tx, events) = async_channel::bounded(cfg.queue.clamp(1, 64));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(MqttError::Thread)?;
    let run = Run {
        cfg: cfg.clone(),
        urls,
        tls,
        filters,
        stats,
        client: client.clone(),
        tx,
    };
    std::thread::Builder::new()
        .name("twig-mqtt".into())
        .spawn(move || runtime.block_on(run.run(eventloop)))
        .map_err(MqttError::Thread)?;
    Ok(MqttThread { client, events })
}

/// rumqttc's options for one URL.
fn options(
    cfg: &MqttConfig,
    url: &MqttUrl,
    tls: Option<&Arc<futures_rustls::rustls::ClientConfig>>,
) -> MqttOptions {
    let mut o = MqttOptions::new(cfg.client_id.clone(), url.host.clone(), url.port);
    // Checked by the config: whole seconds >= 1, a client id is set.
    o.set_keep_alive(cfg.keepalive);
    o.set_clean_session(cfg.clean_session);
    o.set_manual_acks(true);
    o.set_inflight(cfg.max_inflight.max(1));
    o.set_max_packet_size(cfg.max_packet_size, cfg.max_packet_size);
    if let Some(user) = &cfg.username {
        o.set_credentials(user.clone(), cfg.password.clone().unwrap_or_default());
    }
    if let (true, Some(tls)) = (url.tls, tls) {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    o
}

struct Run {
    cfg: MqttConfig,
    urls: Vec<MqttUrl>,
    tls: Option<Arc<futures_rustls::rustls::ClientConfig>>,
    filters: Vec<(String, u8)>,
    stats: Arc<Stats>,
    client: AsyncClient,
    tx: async_channel::Sender<Vec<Event>>,
}

impl Run {
    async fn run(self, mut eventloop: EventLoop) {
        let mut backoff = Backoff::new(self.cfg.reconnect_delay_min, self.cfg.reconnect_delay_max);
        let mut url = 0usize;
        let mut subscribed_once = false;
        let mut batch = Vec::new();
        self.set_url(url);
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff.reset();
                    self.stats.connected.store(true, Relaxed);
                    self.stats.connects.fetch_add(1, Relaxed);
                    tracing::info!(
                        "MQTT bridge connected to {} (session present: {})",
                        self.url_text(url),
                        ack.session_present
                    );
                    if (!ack.session_present || !subscribed_once) && !self.filters.is_empty() {
                        subscribed_once = true;
                        let filters = self
                            .filters
                            .iter()
                            .map(|(t, q)| SubscribeFilter::new(t.clone(), qos(*q)));
                        // The request channel was emptied by the reconnect; if it is full
                        // anyway, the next connection tries again.
                        if let Err(e) = self.client.try_subscribe_many(filters) {
                            subscribed_once = false;
                            tracing::warn!("MQTT bridge: cannot queue SUBSCRIBE: {e}");
                        }
                    }
                    batch.push(Event::Connected {
                        session_present: ack.session_present,
                    });
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => batch.push(Event::Publish(p)),
                Ok(rumqttc::Event::Incoming(Packet::SubAck(s))) => {
                    for (code, (filter, _)) in s.return_codes.iter().zip(&self.filters) {
                        if matches!(code, SubscribeReasonCode::Failure) {
                            let e = format!("broker refused the subscription {filter:?}");
                            tracing::error!("MQTT bridge: {e}");
                            *self
                                .stats
                                .last_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner()) = Some(e);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if !self.hand_over(&mut batch).await {
                        return;
                    }
                    if matches!(e, ConnectionError::RequestsDone) {
                        return;
                    }
                    let text = e.to_string();
                    tracing::warn!("MQTT bridge: {}: {text}", self.url_text(url));
                    self.stats.failed(text);
                    let delay = backoff.next_delay(random());
                    tokio::time::sleep(delay.max(Duration::from_millis(1))).await;
                    url = (url + 1) % self.urls.len().max(1);
                    if let Some(u) = self.urls.get(url) {
                        eventloop.mqtt_options = options(&self.cfg, u, self.tls.as_ref());
                    }
                    self.set_url(url);
                    continue;
                }
            }
            if !batch.is_empty()
                && (eventloop.state.events.is_empty() || batch.len() >= BATCH)
                && !self.hand_over(&mut batch).await
            {
                return;
            }
        }
    }

    /// Sends the batch to the gateway side; false once that side is gone (shutdown).
    async fn hand_over(&self, batch: &mut Vec<Event>) -> bool {
        if batch.is_empty() {
            return true;
        }
        self.tx.send(std::mem::take(batch)).await.is_ok()
    }

    fn url_text(&self, i: usize) -> String {
        self.urls.get(i).map_or_else(String::new, |u| {
            format!(
                "{}://{}:{}",
                if u.tls { "mqtts" } else { "mqtt" },
                u.host,
                u.port
            )
        })
    }

    fn set_url(&self, i: usize) {
        *self.stats.url.lock().unwrap_or_else(|e| e.into_inner()) = self.url_text(i);
    }
}

/// rumqttc's QoS for a configured 0 or 1.
pub fn qos(q: u8) -> QoS {
    if q == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

fn random() -> u64 {
    let mut b = [0u8; 8];
    // Without OS randomness the back-off is merely not spread.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}
