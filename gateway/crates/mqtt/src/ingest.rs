//! MQTT -> NATS, on the gateway's executor: each PUBLISH from the broker is mapped to its
//! subject, published into the router (local subscribers, the hub) with nats-server's MQTT
//! headers, handed to its stream when one stores the subject, and acknowledged to the broker
//! in arrival order once done ([`AckQueue`]).
//!
//! The same path as a client's PUB: deliver through the router (`Router::publish`, which keeps
//! the live copy local when the stream forwards its subjects to the hub), then store, waiting
//! for room when the stream's queue is full; a stream subject is acknowledged by its stream's
//! thread (here: a [`Notify`] instead of a PubAck).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures_lite::future;
use rumqttc::{Publish, QoS};
use twig_core::wire::HeaderWriter;

use super::acks::AckQueue;
use super::client::{AckPath, Event, MqttThread};
use super::mapping::Import;
use super::stats::Stats;
use twig_router::internal::{Owner, Publisher};
use twig_router::store::{Full, Notify, Stored, Submit};
use twig_router::{Message, Router};
use twig_util::clock::unix_nanos;

/// Longest pause per batch while a NATS subscriber or the uplink catches up. The broker keeps
/// what twig does not read meanwhile, so waiting is better than cutting the subscriber off.
const PACE_MAX: Duration = Duration::from_millis(100);

/// How soon PUBACKs that did not fit in the MQTT thread's channel are tried again, and how
/// long queued PUBACKs may wait before the MQTT thread is woken for them (see `AckPath`).
const ACK_RETRY: Duration = Duration::from_millis(1);

/// How long a QoS 1 message its stream refused (full with `when_full = "refuse"`, or its thread
/// stopped) waits before it is offered again. Its PUBACK is held meanwhile, and with it every
/// later one (MQTT acknowledges in order): the broker keeps the rest, nothing is lost.
const STORE_RETRY: Duration = Duration::from_millis(500);

/// A QoS 1 message handed to a stream and not yet durable: kept to offer it again if the
/// stream refuses it (at most `max_unacked` of them).
struct Held {
    subject: Box<[u8]>,
    headers: Box<[u8]>,
    payload: Box<[u8]>,
    time_ns: u64,
}

/// What the ingest task needs besides the router.
pub struct Setup {
    /// The bridge's owner id.
    pub owner: Owner,
    /// The MQTT client id (part of `Nats-Msg-Id`).
    pub client_id: String,
    /// The imports, in configuration order.
    pub imports: Vec<Import>,
    /// Most QoS 1 messages held unacknowledged.
    pub max_unacked: usize,
    /// Counters.
    pub stats: Arc<Stats>,
}

/// A message waiting for room in its stream's queue.
struct Waiting {
    full: Full,
    token: Option<u64>,
}

enum Wake {
    Events(Vec<Event>),
    Stored(Stored),
    Retry,
    Closed,
}

/// Runs until the MQTT thread stops.
pub async fn run(router: Arc<Router>, setup: Setup, thread: MqttThread) {
    let MqttThread { events, acks, .. } = thread;
    // Sized for every message that can wait: a stream thread never blocks on it.
    let (stored_tx, stored_rx) = async_channel::bounded(setup.max_unacked.max(1));
    let mut ingest = Ingest {
        publisher: Publisher::new(router.clone(), setup.owner),
        router,
        acks: AckQueue::new(setup.max_unacked),
        owed: VecDeque::new(),
        epoch: 0,
        ack_path: acks,
        wake_due: false,
        stored_tx,
        subject: Vec::new(),
        headers: vec![0; 160 + setup.client_id.len()],
        held: HashMap::new(),
        retry: VecDeque::new(),
        setup,
    };
    // Kept across iterations: under load the loop turns far more often than it fires.
    let mut timer: Option<async_io::Timer> = None;
    loop {
        let take_events = ingest.acks.len() < ingest.setup.max_unacked;
        if timer.is_none() && (!ingest.owed.is_empty() || ingest.wake_due) {
            timer = Some(async_io::Timer::after(ACK_RETRY));
        } else if timer.is_none()
            && let Some((due, _)) = ingest.retry.front()
        {
            timer = Some(async_io::Timer::at(*due));
        }
        let stored = async { stored_rx.recv().await.map_or(Wake::Closed, Wake::Stored) };
        let more = async {
            if take_events {
                events.recv().await.map_or(Wake::Closed, Wake::Events)
            } else {
                future::pending().await
            }
        };
        let tick = async {
            match timer.as_mut() {
                Some(t) => {
                    t.await;
                    Wake::Retry
                }
                None => future::pending().await,
            }
        };
        match future::or(stored, future::or(more, tick)).await {
            Wake::Events(batch) => {
                ingest.batch(batch).await;
                // Everything else already waiting, while there is room to hold its acks.
                while ingest.acks.len() < ingest.setup.max_unacked
                    && let Ok(batch) = events.try_recv()
                {
                    ingest.batch(batch).await;
                }
                ingest.publisher.flush();
            }
            Wake::Stored(s) => ingest.stored(s),
            Wake::Retry => {
                timer = None;
                if std::mem::take(&mut ingest.wake_due) {
                    ingest.ack_path.wake();
                }
                ingest.offer_again().await;
            }
            Wake::Closed => {
                tracing::error!("MQTT bridge: the MQTT thread has stopped; no more MQTT traffic");
                ingest.setup.stats.connected.store(false, Relaxed);
                return;
            }
        }
        while let Ok(s) = stored_rx.try_recv() {
            ingest.stored(s);
        }
        ingest.send_acks();
        ingest.publisher.pace(PACE_MAX).await;
    }
}

struct Ingest {
    router: Arc<Router>,
    setup: Setup,
    publisher: Publisher,
    acks: AckQueue,
    /// PUBACKs due but not yet taken by the MQTT thread's channel (it was full), in order.
    owed: VecDeque<u16>,
    /// Connections seen (`Event::Connected`): the PUBACKs' connection.
    epoch: u64,
    ack_path: AckPath,
    /// PUBACKs were handed over: wake the MQTT thread at the next timer if still waiting.
    wake_due: bool,
    stored_tx: async_channel::Sender<Stored>,
    subject: Vec<u8>,
    headers: Vec<u8>,
    /// Stream messages not yet durable, by token.
    held: HashMap<u64, Held>,
    /// Refused ones waiting to be offered again: (when, token), in order.
    retry: VecDeque<(Instant, u64)>,
}

impl Ingest {
    fn event(&mut self, event: Event) -> Option<Waiting> {
        match event {
            Event::Connected { .. } => {
                // Whatever was owed on the old connection is void: the broker redelivers it.
                self.acks.clear();
                self.owed.clear();
                self.held.clear();
                self.retry.clear();
                self.epoch += 1;
                None
            }
            Event::Publish(p) => self.publish(&p),
        }
    }

    /// Handles a batch of events, waiting for room in a stream's queue where needed.
    async fn batch(&mut self, batch: Vec<Event>) {
        for event in batch {
            if let Some(w) = self.event(event)
                && !w.full.wait().await
            {
                self.gone(w.token);
            }
        }
    }

    fn publish(&mut self, p: &Publish) -> Option<Waiting> {
        let st = &self.setup.stats;
        st.in_msgs.fetch_add(1, Relaxed);
        st.in_bytes.fetch_add(p.payload.len() as u64, Relaxed);
        if p.dup {
            st.redelivered.fetch_add(1, Relaxed);
        }
        let qos1 = p.qos != QoS::AtMostOnce;
        let mapped = self
            .setup
            .imports
            .iter()
            .find(|i| i.covers(&p.topic))
            .is_some_and(|i| i.subject(&p.topic, &mut self.subject).is_ok());
        if !mapped {
            st.unmapped.fetch_add(1, Relaxed);
            tracing::debug!("MQTT bridge: topic {:?} maps to no import", p.topic);
            self.ack_now(qos1, p.pkid);
            return None;
        }
        let router = self.router.clone();
        let stream = router.store(&self.subject);
        let msg_id = (qos1 && stream.is_some()).then(|| msg_id(&self.setup.client_id, p));
        let Some(hlen) = headers(&mut self.headers, p, msg_id.as_deref()) else {
            st.unmapped.fetch_add(1, Relaxed);
            self.ack_now(qos1, p.pkid);
            return None;
        };
        let headers = &self.headers[..hlen];
        let msg = Message {
            subject: &self.subject,
            reply: None,
            headers: Some(headers),
            payload: &p.payload,
        };
        // As a client's PUB: a stream that forwards to the hub is the only way its subjects go
        // up, so the live copy stays local (the router decides).
        self.publisher.publish_stored(&msg, stream);
        let Some(stream) = stream else {
            self.ack_now(qos1, p.pkid);
            return None;
        };
        let token = if qos1 {
            // `None` is not reached: the loop stops taking events while the queue is full.
            self.acks.push(p.pkid, false).ok()
        } else {
            None
        };
        let time_ns = unix_nanos();
        let notify = token.map(|token| Notify {
            tx: self.stored_tx.clone().into(),
            token,
        });
        let submitted = stream.submit(&msg, time_ns, notify);
        if matches!(submitted, Submit::Invalid) {
            // Not storable (it does not fit a record): as before, counted and acknowledged.
            st.store_failed.fetch_add(1, Relaxed);
            if let Some(t) = token {
                self.acks.done(t);
            }
            self.count_pending();
            return None;
        }
        st.stored.fetch_add(1, Relaxed);
        if let Some(t) = token {
            self.held.insert(
                t,
                Held {
                    subject: self.subject.as_slice().into(),
                    headers: headers.into(),
                    payload: p.payload.as_ref().into(),
                    time_ns,
                },
            );
        }
        self.count_pending();
        match submitted {
            Submit::Queued | Submit::Invalid => None,
            // The caller waits for room before the next message: back-pressure to the broker.
            Submit::Full(full) => Some(Waiting { full, token }),
            Submit::Gone => {
                self.gone(token);
                None
            }
        }
    }

    /// A stream's thread is gone (its failure was logged): counted; a QoS 1 message is offered
    /// again later and its PUBACK held, so the broker keeps it (and what follows) until twig is
    /// restarted, rather than twig acknowledging what it did not store.
    fn gone(&mut self, token: Option<u64>) {
        tracing::error!("MQTT bridge: a stream's thread has stopped; message not stored");
        self.setup.stats.store_failed.fetch_add(1, Relaxed);
        if let Some(t) = token {
            self.retry.push_back((Instant::now() + STORE_RETRY, t));
        }
    }

    /// A stream's answer: durable, or refused (full with `when_full = "refuse"`). A refused
    /// message is counted and offered again after [`STORE_RETRY`]; its PUBACK waits (MQTT 3.1.1
    /// has no negative acknowledgement: holding it is how the broker is told to keep it).
    fn stored(&mut self, s: Stored) {
        if s.ok {
            self.held.remove(&s.token);
            self.acks.done(s.token);
        } else if self.held.contains_key(&s.token) {
            self.setup.stats.store_failed.fetch_add(1, Relaxed);
            tracing::warn!("MQTT bridge: a stream refused a QoS 1 message; holding its PUBACK");
            self.retry
                .push_back((Instant::now() + STORE_RETRY, s.token));
        }
    }

    /// Offers the refused messages whose wait is over to their streams again.
    async fn offer_again(&mut self) {
        let now = Instant::now();
        while let Some(&(due, token)) = self.retry.front() {
            if due > now {
                break;
            }
            self.retry.pop_front();
            let Some(h) = self.held.get(&token) else {
                continue;
            };
            let router = self.router.clone();
            let Some(stream) = router.store(&h.subject) else {
                continue;
            };
            let msg = Message {
                subject: &h.subject,
                reply: None,
                headers: Some(&h.headers),
                payload: &h.payload,
            };
            let notify = Some(Notify {
                tx: self.stored_tx.clone().into(),
                token,
            });
            let taken = match stream.submit(&msg, h.time_ns, notify) {
                Submit::Queued => true,
                Submit::Full(full) => full.wait().await,
                Submit::Gone | Submit::Invalid => false,
            };
            if !taken {
                self.retry.push_back((Instant::now() + STORE_RETRY, token));
            }
        }
    }

    /// A QoS 1 message that needs nothing more: in line for its PUBACK.
    fn ack_now(&mut self, qos1: bool, pkid: u16) {
        if qos1 {
            // Cannot fail: the loop stops taking events while the queue is full.
            let _ = self.acks.push(pkid, true);
        }
    }

    /// Hands every PUBACK that is due, in order, to the MQTT thread.
    fn send_acks(&mut self) {
        while let Some(pkid) = self.acks.pop_ready() {
            self.owed.push_back(pkid);
        }
        let mut sent = false;
        while let Some(&pkid) = self.owed.front() {
            if !self.ack_path.send(self.epoch, pkid) {
                break;
            }
            self.owed.pop_front();
            sent = true;
        }
        if sent {
            self.wake_due = true;
        }
        self.count_pending();
    }

    fn count_pending(&self) {
        let n = self.acks.len() + self.owed.len();
        self.setup.stats.pending_acks.store(n as u64, Relaxed);
    }
}

/// Writes the header block into `buf`: `Nmqtt-Pub`, the retain flag, the message id.
fn headers(buf: &mut [u8], p: &Publish, msg_id: Option<&str>) -> Option<usize> {
    let mut w = HeaderWriter::new(buf).ok()?;
    let qos: &[u8] = match p.qos {
        QoS::AtMostOnce => b"0",
        QoS::AtLeastOnce => b"1",
        QoS::ExactlyOnce => b"2",
    };
    w.push(b"Nmqtt-Pub", qos).ok()?;
    if p.retain {
        w.push(b"Twig-Mqtt-Retain", b"1").ok()?;
    }
    if let Some(id) = msg_id {
        w.push(b"Nats-Msg-Id", id.as_bytes()).ok()?;
    }
    Some(w.finish())
}

/// `Nats-Msg-Id` of a QoS 1 message: the same for every delivery of it (see the module docs of
/// `crate`).
pub fn msg_id(client_id: &str, p: &Publish) -> String {
    // FNV-1a: stable across builds and machines (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in p
        .topic
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(p.payload.iter())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let id: String = client_id
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!("{id}:{}:{h:016x}", p.pkid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, payload: &[u8], pkid: u16, dup: bool) -> Publish {
        let mut p = Publish::new(topic, QoS::AtLeastOnce, payload.to_vec());
        p.pkid = pkid;
        p.dup = dup;
        p
    }

    #[test]
    fn a_redelivery_gets_the_same_message_id_and_other_messages_do_not() {
        let first = msg_id("gw 1", &publish("a/b", b"21.5", 7, false));
        assert_eq!(first, msg_id("gw 1", &publish("a/b", b"21.5", 7, true)));
        assert!(first.starts_with("gw_1:7:"), "{first}");
        assert_ne!(first, msg_id("gw 1", &publish("a/b", b"21.6", 7, false)));
        assert_ne!(first, msg_id("gw 1", &publish("a/b", b"21.5", 8, false)));
        assert_ne!(first, msg_id("gw 1", &publish("a/c", b"21.5", 7, false)));
    }

    #[test]
    fn headers_are_nats_servers_plus_retain_and_id() {
        let mut buf = [0u8; 128];
        let mut p = publish("a", b"x", 1, false);
        let n = headers(&mut buf, &p, None).unwrap();
        assert_eq!(&buf[..n], b"NATS/1.0\r\nNmqtt-Pub: 1\r\n\r\n");
        p.retain = true;
        p.qos = QoS::AtMostOnce;
        let n = headers(&mut buf, &p, Some("id")).unwrap();
        let h = twig_core::wire::Headers::parse(&buf[..n]).unwrap();
        assert_eq!(h.get(b"Nmqtt-Pub"), Some(&b"0"[..]));
        assert_eq!(h.get(b"Twig-Mqtt-Retain"), Some(&b"1"[..]));
        assert_eq!(h.get(b"Nats-Msg-Id"), Some(&b"id"[..]));
    }
}
