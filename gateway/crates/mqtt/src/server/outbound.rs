//! Messages to the client: NATS deliveries become PUBLISHes at the subscription's QoS, queued
//! in bytes, sent within the in-flight window (the client's Receive Maximum), acknowledged,
//! redelivered with DUP after a reconnect.

use std::time::{Duration, Instant};

use twig_core::mqtt::packet::{
    self, Ack, Packet, PropWriter, Props, QoS, Value, Version, props::id, reason,
};
use twig_core::mqtt::{is_reserved_filter_subject, is_reserved_topic};

use super::api::*;
use super::headers;
use super::session::{Phase, Session};
use super::state::{Change, Inflight, OutMsg, Stage};

impl Session {
    pub(super) fn deliver(&mut self, now: Instant, d: Delivery<'_>) {
        if !matches!(self.phase, Phase::Connected | Phase::Offline) {
            return;
        }
        let Some(sub) = self.st.subs.iter().find(|s| s.id == d.sub) else {
            return;
        };
        if d.own && sub.options.no_local {
            return;
        }
        // A session restored from the store has no login until its device is back: it
        // queues as it did before the restart.
        if self
            .perms
            .as_deref()
            .is_some_and(|p| !p.deliver(d.subject, sub.share.as_deref()))
        {
            return;
        }
        // MQTT-4.7.2-1: `#`, `+/...` never match topics starting with `$`.
        let top_wild = sub
            .subjects
            .iter()
            .all(|s| is_reserved_filter_subject(s.as_bytes()));
        if top_wild && is_reserved_topic(d.subject.as_bytes()) {
            return;
        }
        let Some(topic) = headers::subject_topic(d.subject) else {
            return;
        };
        let h = headers::outbound(d.headers, d.reply);
        let sub_qos = sub.options.qos.min(self.cfg.max_qos);
        let qos = h.qos.map_or(sub_qos, |q| q.min(sub_qos));
        // Live messages carry RETAIN only with Retain As Published (MQTT 5 §3.3.1.3).
        let retain = d.retained
            || (self.version == Version::V5 && sub.options.retain_as_published && h.retain);
        let msg = OutMsg {
            serial: self.st.next_serial,
            topic,
            qos,
            retain,
            props: if self.version == Version::V5 {
                h.props
            } else {
                Vec::new()
            },
            sub_id: sub.sub_id,
            payload: d.payload.to_vec(),
            expiry: h.expiry.map(|s| (now, s)),
        };
        self.st.next_serial += 1;
        if qos == QoS::AtMostOnce {
            if self.phase != Phase::Connected {
                // QoS 0 is not kept for an offline client (mosquitto's default too).
                self.dropped += 1;
                return;
            }
            if self.out.len() < self.cfg.max_write_buffer {
                self.send_publish(now, &msg, 0, false);
                return;
            }
            // A client reading slower than messages come: QoS 0 waits in the session's
            // queue with the rest (in memory only, bounded by max_queued_bytes), instead of
            // being dropped at the first full write buffer.
        }
        let cost = msg.cost();
        let full = self.st.queued_bytes + cost > self.cfg.max_queued_bytes
            || self.st.queue.len() + self.st.inflight.len() >= self.cfg.max_queued_messages;
        if full {
            self.dropped += 1;
            return;
        }
        self.st.queued_bytes += cost;
        if self.persistent() && qos != QoS::AtMostOnce {
            let change = Change::Queued {
                client_id: self.st.client_id.clone(),
                msg: msg.clone(),
            };
            self.persist(change, None);
        }
        if let Some(at) = expires_at(&msg) {
            self.queue_expiry = Some(self.queue_expiry.map_or(at, |q| q.min(at)));
        }
        self.st.queue.push_back(msg);
        if self.phase == Phase::Connected {
            self.pump(now);
        }
    }

    /// Sends queued messages while the window and the write buffer have room.
    pub(super) fn pump(&mut self, now: Instant) {
        let window = usize::from(self.cfg.max_inflight.min(self.client_receive_max).max(1));
        while self.st.inflight.len() < window && self.out.len() < self.cfg.max_write_buffer {
            let Some(msg) = self.st.queue.pop_front() else {
                break;
            };
            if expired(&msg, now) {
                self.finish(&msg);
                continue;
            }
            if msg.qos == QoS::AtMostOnce {
                self.send_publish(now, &msg, 0, false);
                self.finish(&msg);
                continue;
            }
            let pkid = self.next_pkid();
            if !self.send_publish(now, &msg, pkid, false) {
                // Larger than the client's Maximum Packet Size: discarded (MQTT-3.1.2-25).
                self.finish(&msg);
                continue;
            }
            let stage = match msg.qos {
                QoS::ExactlyOnce => Stage::WaitRec,
                _ => Stage::WaitAck,
            };
            if stage == Stage::WaitRec && self.persistent() {
                let change = Change::Sent {
                    client_id: self.st.client_id.clone(),
                    serial: msg.serial,
                    pkid,
                    released: false,
                };
                self.persist(change, None);
            }
            self.st.inflight.push_back(Inflight { pkid, stage, msg });
        }
    }

    /// After CONNACK on a resumed session: everything unacknowledged again, with DUP
    /// (MQTT-4.4.0-1), then the queue.
    pub(super) fn resume(&mut self, now: Instant) {
        let inflight: Vec<(u16, Stage, usize)> = self
            .st
            .inflight
            .iter()
            .enumerate()
            .map(|(i, f)| (f.pkid, f.stage, i))
            .collect();
        for (pkid, stage, i) in inflight {
            match stage {
                Stage::WaitComp => self.send_pubrel(pkid, 0),
                _ => {
                    let msg = self.st.inflight[i].msg.clone();
                    self.send_publish(now, &msg, pkid, true);
                }
            }
        }
        self.pump(now);
    }

    pub(super) fn on_puback(&mut self, now: Instant, pkid: u16) {
        self.ack_inflight(pkid, Stage::WaitAck);
        self.pump(now);
    }

    pub(super) fn on_pubrec(&mut self, now: Instant, a: &Ack<'_>) {
        let Some(f) = self
            .st
            .inflight
            .iter_mut()
            .find(|f| f.pkid == a.pkid && f.stage != Stage::WaitAck)
        else {
            let code = if self.version == Version::V5 {
                reason::PACKET_ID_NOT_FOUND
            } else {
                0
            };
            return self.send_pubrel(a.pkid, code);
        };
        if a.reason >= 0x80 {
            // The client refused it: the exchange is over (MQTT 5 §4.3.3).
            self.ack_inflight(a.pkid, Stage::WaitRec);
            return self.pump(now);
        }
        f.stage = Stage::WaitComp;
        let serial = f.msg.serial;
        if self.persistent() {
            let change = Change::Sent {
                client_id: self.st.client_id.clone(),
                serial,
                pkid: a.pkid,
                released: true,
            };
            self.persist(change, None);
        }
        self.send_pubrel(a.pkid, 0);
    }

    pub(super) fn on_pubcomp(&mut self, now: Instant, pkid: u16) {
        self.ack_inflight(pkid, Stage::WaitComp);
        self.pump(now);
    }

    fn ack_inflight(&mut self, pkid: u16, stage: Stage) {
        let Some(i) = self
            .st
            .inflight
            .iter()
            .position(|f| f.pkid == pkid && f.stage == stage)
        else {
            return;
        };
        if let Some(f) = self.st.inflight.remove(i) {
            self.finish(&f.msg);
        }
    }

    /// A queued message is gone: its bytes are free and the store forgets it.
    fn finish(&mut self, msg: &OutMsg) {
        self.st.queued_bytes = self.st.queued_bytes.saturating_sub(msg.cost());
        // QoS 0 messages are never on flash (see `deliver`).
        if self.persistent() && msg.qos != QoS::AtMostOnce {
            let change = Change::Done {
                client_id: self.st.client_id.clone(),
                serial: msg.serial,
            };
            self.persist(change, None);
        }
    }

    /// Drops the queued (not yet sent) messages this login may not receive. A queue kept
    /// while the device was away was filled without its rights: a session restored from the
    /// store after a restart has no login until its device is back, and a takeover may come
    /// from another user. Each message is checked as a delivery would be, against every
    /// share group the session subscribes in (a queued message does not say which
    /// subscription it came for). A topic that maps to no subject is kept.
    pub(super) fn drop_undeliverable(&mut self) {
        let Some(p) = self.perms.as_deref() else {
            return;
        };
        let mut groups: Vec<Option<&str>> = vec![None];
        for sub in &self.st.subs {
            if let Some(g) = sub.share.as_deref()
                && !groups.contains(&Some(g))
            {
                groups.push(Some(g));
            }
        }
        let allowed = |m: &OutMsg| {
            headers::topic_subject(&m.topic)
                .is_none_or(|subject| groups.iter().any(|g| p.deliver(&subject, *g)))
        };
        if self.st.queue.iter().all(allowed) {
            return;
        }
        let (kept, gone): (Vec<OutMsg>, Vec<OutMsg>) = std::mem::take(&mut self.st.queue)
            .into_iter()
            .partition(allowed);
        self.st.queue = kept.into();
        self.queue_expiry = first_expiry(&self.st.queue);
        for m in &gone {
            self.dropped += 1;
            self.finish(m);
        }
    }

    /// Drops queued (not yet sent) messages whose MQTT 5 expiry passed (MQTT-3.3.2-5).
    /// Scans the queue only once the earliest expiry may have come.
    pub(super) fn expire_queued(&mut self, now: Instant) {
        if self.queue_expiry.is_none_or(|at| now < at) {
            return;
        }
        let (gone, kept): (Vec<OutMsg>, Vec<OutMsg>) = std::mem::take(&mut self.st.queue)
            .into_iter()
            .partition(|m| expired(m, now));
        self.st.queue = kept.into();
        self.queue_expiry = first_expiry(&self.st.queue);
        for m in &gone {
            self.dropped += 1;
            self.finish(m);
        }
    }

    fn next_pkid(&mut self) -> u16 {
        loop {
            self.st.last_pkid = self.st.last_pkid.wrapping_add(1).max(1);
            let id = self.st.last_pkid;
            if !self.st.inflight.iter().any(|f| f.pkid == id) {
                return id;
            }
        }
    }

    fn send_pubrel(&mut self, pkid: u16, code: u8) {
        let a = Ack {
            pkid,
            reason: code,
            props: Props::EMPTY,
        };
        self.send(&Packet::PubRel(a));
    }

    /// Writes a PUBLISH; false if it is larger than the client accepts.
    fn send_publish(&mut self, now: Instant, msg: &OutMsg, pkid: u16, dup: bool) -> bool {
        let v5 = self.version == Version::V5;
        let mut props = msg.props.clone();
        let mut topic: &str = &msg.topic;
        if v5 {
            let mut w = PropWriter::new(&mut props);
            if let Some((at, secs)) = msg.expiry {
                let left = Duration::from_secs(u64::from(secs)).saturating_sub(now - at);
                let _ = w.put(id::MESSAGE_EXPIRY, Value::U32(left.as_secs() as u32));
            }
            if let Some(sid) = msg.sub_id {
                let _ = w.put(id::SUBSCRIPTION_ID, Value::Varint(sid));
            }
            if let Some(alias) = self.alias_for(&msg.topic) {
                let (a, known) = alias;
                let _ = w.put(id::TOPIC_ALIAS, Value::U16(a));
                if known {
                    topic = "";
                }
            }
        }
        let Ok(props) = Props::new(&props, packet::Ctx::Publish) else {
            return false;
        };
        let p = Packet::Publish(packet::Publish {
            dup: dup && msg.qos != QoS::AtMostOnce,
            qos: msg.qos,
            retain: msg.retain,
            topic,
            pkid,
            props,
            payload: &msg.payload,
        });
        let fits = p
            .encoded_len(self.version)
            .is_ok_and(|n| n <= self.client_max_packet);
        if !fits {
            self.dropped += 1;
            return false;
        }
        self.send(&p);
        true
    }

    /// The topic alias to send `topic` with (MQTT 5 §3.3.2.3.4): `(alias, already known to
    /// the client)`. Aliases are handed out first come, first served, up to the client's
    /// Topic Alias Maximum, and kept for the connection.
    fn alias_for(&mut self, topic: &str) -> Option<(u16, bool)> {
        if let Some(i) = self.aliases_out.iter().position(|t| &**t == topic) {
            return Some((i as u16 + 1, true));
        }
        if self.aliases_out.len() < usize::from(self.client_alias_max) {
            self.aliases_out.push(topic.into());
            return Some((self.aliases_out.len() as u16, false));
        }
        None
    }
}

/// When a queued message expires (MQTT 5 Message Expiry Interval), if it does.
fn expires_at(m: &OutMsg) -> Option<Instant> {
    m.expiry
        .and_then(|(at, s)| at.checked_add(Duration::from_secs(u64::from(s))))
}

/// The earliest expiry in a queue (one scan: on restore, takeover and after expiring).
pub(super) fn first_expiry<'a>(q: impl IntoIterator<Item = &'a OutMsg>) -> Option<Instant> {
    q.into_iter().filter_map(expires_at).min()
}

fn expired(m: &OutMsg, now: Instant) -> bool {
    m.expiry.is_some_and(|(at, s)| {
        now.saturating_duration_since(at) >= Duration::from_secs(u64::from(s))
    })
}
