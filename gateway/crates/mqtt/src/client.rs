//! The MQTT thread: the only place tokio runs in twig.
//!
//! One OS thread with a current-thread tokio runtime drives rumqttc's `EventLoop` (connect,
//! read, keepalive, write the requests queued by [`AsyncClient`]) and nothing else. What it
//! receives goes to the gateway's executor in batches over a bounded `async-channel`
//! ([`Event`]); PUBACKs come back over another ([`AckPath`]), exports go through rumqttc's own
//! bounded request channel. These channels work on any executor: no tokio type crosses over.
//!
//! The loop never cancels `EventLoop::poll` (a request popped from the channel and not yet
//! written would be lost); it awaits one poll at a time, and a second task hands over what
//! arrived in batches (see `Run::run`). When the gateway side is behind, the hand-off waits,
//! then the loop, and the socket is not read: back-pressure to the broker, which keeps the
//! messages (QoS 1 in its session, QoS 0 in its queue).
//!
//! On a lost or refused connection it waits (jittered exponential back-off from
//! `reconnect_delay_min` to `reconnect_delay_max`) and tries the next URL.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, EventLoop, MqttOptions, NetworkOptions, Packet, PubAck, Publish,
    QoS, SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport,
};

use super::MqttError;
use super::stats::Stats;
use twig_config::mqtt::{MqttConfig, MqttUrl};
use twig_util::backoff::Backoff;

/// Most events in one batch to the gateway side.
const BATCH: usize = 1024;

/// Batches waiting for the gateway side (at most `BATCHES * BATCH` messages in memory).
const BATCHES: usize = 4;

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
    /// Queues requests (publishes) for the broker.
    pub client: AsyncClient,
    /// Batches of events, in order.
    pub events: async_channel::Receiver<Vec<Event>>,
    /// Where PUBACKs go.
    pub acks: AckPath,
}

/// Topic of the UNSUBSCRIBE that wakes the MQTT thread for PUBACKs (see [`AckPath`]); nobody
/// subscribes to it, and the broker answers any UNSUBSCRIBE with an UNSUBACK.
const WAKE_TOPIC: &str = "$twig/bridge/wake";

/// PUBACKs from the gateway side to the MQTT thread, written in batches.
///
/// rumqttc's own `ack` writes and flushes each PUBACK on its own: one system call and one TCP
/// segment per message, which the broker then reads one by one. Instead, PUBACKs go through
/// this channel and the MQTT thread writes everything waiting with one flush, each time its
/// event loop returns, which under load is all the time. On a quiet connection the sender
/// makes it return: if PUBACKs are still waiting shortly after they were queued,
/// [`AckPath::wake`] queues one harmless request (an UNSUBSCRIBE of [`WAKE_TOPIC`]) unless one
/// is pending already. Each PUBACK carries the connection it belongs to ([`Event::Connected`]
/// count), and one for an older connection is dropped: the broker redelivers that message.
#[derive(Clone)]
pub struct AckPath {
    tx: async_channel::Sender<(u64, u16)>,
    /// PUBACKs were queued since the MQTT thread last took them.
    waiting: Arc<AtomicBool>,
    /// A wake-up request is queued and not yet followed by a take.
    woken: Arc<AtomicBool>,
    client: AsyncClient,
}

impl AckPath {
    /// Queues a PUBACK for `pkid`, received on connection `epoch`. False when the channel is
    /// full (the caller keeps it and tries again).
    pub fn send(&self, epoch: u64, pkid: u16) -> bool {
        let ok = self.tx.try_send((epoch, pkid)).is_ok();
        if ok {
            self.waiting.store(true, SeqCst);
        }
        ok
    }

    /// Makes sure the MQTT thread comes round to write what is waiting (call it a little
    /// after [`send`](Self::send): under load the thread has taken them by then).
    pub fn wake(&self) {
        if self.waiting.load(SeqCst)
            && !self.woken.swap(true, SeqCst)
            && self.client.try_unsubscribe(WAKE_TOPIC).is_err()
        {
            // The request channel is full, so the event loop is about to return anyway.
            self.woken.store(false, SeqCst);
        }
    }
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
        Some(t) => Some(twig_util::tls::client_config(
            &t.ca_file,
            t.cert_file.as_deref(),
            t.key_file.as_deref(),
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
    let (tx, events) = async_channel::bounded(BATCHES);
    // Room for every message the broker can have unacknowledged: sending never waits.
    let (ack_tx, ack_rx) = async_channel::bounded(twig_config::mqtt::MAX_UNACKED + 1);
    let acks = AckPath {
        tx: ack_tx,
        waiting: Arc::new(AtomicBool::new(false)),
        woken: Arc::new(AtomicBool::new(false)),
        client: client.clone(),
    };
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
        acks: ack_rx,
        waiting: acks.waiting.clone(),
        woken: acks.woken.clone(),
    };
    std::thread::Builder::new()
        .name("twig-mqtt".into())
        .spawn(move || runtime.block_on(run.run(eventloop)))
        .map_err(MqttError::Thread)?;
    Ok(MqttThread {
        client,
        events,
        acks,
    })
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
    acks: async_channel::Receiver<(u64, u16)>,
    waiting: Arc<AtomicBool>,
    woken: Arc<AtomicBool>,
}

impl Run {
    /// Two tasks on the thread's runtime: one drives the event loop and queues what arrives
    /// (a same-thread channel: no wake-up of another thread per packet); the other runs
    /// whenever the first waits for the socket and hands everything queued so far to the
    /// gateway side as one batch. Batches are as large as what arrived meanwhile (up to
    /// [`BATCH`]), so a busy broker costs one cross-thread hand-off per batch, not per packet.
    async fn run(self, eventloop: EventLoop) {
        let (queue, mut queued) = tokio::sync::mpsc::channel::<Event>(BATCH);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while queued.recv_many(&mut batch, BATCH).await > 0 {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).await.is_err() {
                    return;
                }
            }
        });
        self.drive(eventloop, queue).await;
    }

    async fn drive(self, mut eventloop: EventLoop, queue: tokio::sync::mpsc::Sender<Event>) {
        let mut backoff = Backoff::new(self.cfg.reconnect_delay_min, self.cfg.reconnect_delay_max);
        let mut url = 0usize;
        let mut subscribed_once = false;
        // Connections so far (the gateway side counts `Event::Connected` the same way).
        let mut epoch = 0u64;
        self.set_url(url);
        loop {
            let polled = eventloop.poll().await;
            if let Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) = &polled {
                epoch += 1;
            }
            if let Err(e) = self.write_acks(&mut eventloop, epoch).await {
                // The connection broke under the write; the next poll reconnects.
                self.stats.failed(e.to_string());
                eventloop.clean();
            }
            let event = match polled {
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
                    Event::Connected {
                        session_present: ack.session_present,
                    }
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => Event::Publish(p),
                Ok(rumqttc::Event::Incoming(Packet::SubAck(s))) => {
                    for (code, (filter, _)) in s.return_codes.iter().zip(&self.filters) {
                        if matches!(code, SubscribeReasonCode::Failure) {
                            let e = format!("broker refused the subscription {filter:?}");
                            tracing::error!("MQTT bridge: {e}");
                            *twig_util::lock::lock(&self.stats.last_error) = Some(e);
                        }
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(ConnectionError::RequestsDone) => return,
                Err(e) => {
                    let text = e.to_string();
                    tracing::warn!("MQTT bridge: {}: {text}", self.url_text(url));
                    self.stats.failed(text);
                    let delay = backoff.next_delay(twig_util::id::random_u64());
                    tokio::time::sleep(delay.max(Duration::from_millis(1))).await;
                    url = (url + 1) % self.urls.len().max(1);
                    if let Some(u) = self.urls.get(url) {
                        eventloop.mqtt_options = options(&self.cfg, u, self.tls.as_ref());
                    }
                    self.set_url(url);
                    continue;
                }
            };
            if queue.send(event).await.is_err() {
                // The gateway side is gone (shutdown).
                return;
            }
        }
    }

    /// Writes every queued PUBACK of connection `epoch` with one flush; drops older ones.
    async fn write_acks(
        &self,
        eventloop: &mut EventLoop,
        epoch: u64,
    ) -> Result<(), rumqttc::StateError> {
        // Cleared before draining: a PUBACK queued after the drain sets `waiting` again.
        self.woken.store(false, SeqCst);
        self.waiting.store(false, SeqCst);
        let mut written = 0u64;
        while let Ok((e, pkid)) = self.acks.try_recv() {
            let Some(net) = eventloop.network.as_mut() else {
                continue;
            };
            if e == epoch {
                net.write(Packet::PubAck(PubAck::new(pkid))).await?;
                written += 1;
            }
        }
        if written > 0
            && let Some(net) = eventloop.network.as_mut()
        {
            net.flush().await?;
            self.stats.acked.fetch_add(written, Relaxed);
        }
        Ok(())
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
        *twig_util::lock::lock(&self.stats.url) = self.url_text(i);
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
