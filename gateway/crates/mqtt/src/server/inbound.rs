//! PUBLISH from the client: topic aliases, permissions, the mapping to a NATS publish, and
//! the QoS 1/2 acknowledgements that wait for "routed" or "durable".

use std::time::Instant;

use twig_core::mqtt::packet::{self, Packet, QoS, Version, props::id, reason};

use super::api::*;
use super::headers;
use super::session::{Owed, Pending, Session, retain_of};
use super::state::{Change, Qos2In};

impl Session {
    pub(super) fn on_publish(&mut self, now: Instant, p: &packet::Publish<'_>) {
        let v5 = self.version == Version::V5;
        if p.qos > self.cfg.max_qos {
            // MQTT 5 §3.3.1.2: above Maximum QoS is 0x9B; 3.1.1 has no way to say it.
            return self.close(now, reason::QOS_NOT_SUPPORTED, true);
        }
        if p.retain && !self.cfg.retain_available {
            return self.close(now, reason::RETAIN_NOT_SUPPORTED, true);
        }
        if p.qos != QoS::AtMostOnce && self.in_flight_in >= self.cfg.receive_maximum && v5 {
            // MQTT-3.3.4-9: more unacknowledged QoS 1/2 than our Receive Maximum.
            let dup_q2 = self.st.qos2_in.iter().any(|q| q.pkid == p.pkid);
            if !dup_q2 {
                return self.close(now, reason::RECEIVE_MAXIMUM_EXCEEDED, true);
            }
        }
        let Some(topic) = self.resolve_alias(now, p) else {
            return;
        };
        let Some(subject) = headers::topic_subject(&topic) else {
            return self.close(now, reason::TOPIC_NAME_INVALID, true);
        };
        let reply = match p.props.str(id::RESPONSE_TOPIC) {
            Some(rt) => match headers::encode_reply(rt, p.props.bin(id::CORRELATION_DATA)) {
                Some(r) => Some(r),
                // MQTT-3.3.2-14: a response topic is a topic name (no wildcards).
                None => return self.close(now, reason::TOPIC_NAME_INVALID, true),
            },
            None => None,
        };
        if p.props.byte(id::PAYLOAD_FORMAT) == Some(1) && std::str::from_utf8(p.payload).is_err() {
            // MQTT 5 §3.3.2.3.2: the server may check; a payload that says UTF-8 and is not.
            return self.reply_or_close(now, p, reason::PAYLOAD_FORMAT_INVALID);
        }
        let allowed = self
            .perms
            .as_ref()
            .is_some_and(|perms| perms.publish(&subject));
        if !allowed {
            tracing::debug!(client = %self.st.client_id, %subject, "MQTT publish denied");
            // MQTT 5: 0x87 in the acknowledgement. 3.1.1 cannot say no: like mosquitto, the
            // message is acknowledged and dropped.
            let code = if v5 { reason::NOT_AUTHORIZED } else { 0 };
            return self.ack_now(now, p, code);
        }
        match p.qos {
            QoS::AtMostOnce => {
                let publish = self.make_publish(p, topic, subject, reply, None, None);
                self.emit_publish(publish);
            }
            QoS::AtLeastOnce => {
                let msg_id = headers::qos1_msg_id(&self.st.client_id, p.pkid, &topic, p.payload);
                let t = self.ticket();
                let publish = self.make_publish(p, topic, subject, reply, Some(&msg_id), Some(t));
                self.in_flight_in += 1;
                self.pending.push_back(Pending {
                    ticket: Some(t),
                    done: None,
                    what: Owed::PubAck(p.pkid),
                });
                self.emit_publish(publish);
            }
            QoS::ExactlyOnce => self.on_publish_qos2(now, p, topic, subject, reply),
        }
    }

    fn on_publish_qos2(
        &mut self,
        now: Instant,
        p: &packet::Publish<'_>,
        topic: String,
        subject: String,
        reply: Option<String>,
    ) {
        if let Some(q) = self.st.qos2_in.iter().find(|q| q.pkid == p.pkid).copied() {
            // A repeat (DUP, or after a reconnect): never published twice. If its PUBREC
            // went, send it again; if the first is still on its way, that one will answer.
            let known = self.pending.iter().any(|x| match &x.what {
                Owed::PubRec(id) | Owed::Qos2Stored(id, _) | Owed::Qos2Recording(id) => {
                    *id == p.pkid
                }
                _ => false,
            });
            if q.recorded || !known {
                // Also after a restart (stored, not yet confirmed): publish again under the
                // same Nats-Msg-Id, which the stream drops if it has it.
                if !q.recorded {
                    let msg_id = format!("{}:q2:{}", self.st.client_id, q.n);
                    let t = self.ticket();
                    let publish =
                        self.make_publish(p, topic, subject, reply, Some(&msg_id), Some(t));
                    self.in_flight_in += 1;
                    self.pending.push_back(Pending {
                        ticket: Some(t),
                        done: None,
                        what: Owed::PubRec(p.pkid),
                    });
                    self.emit_publish(publish);
                } else {
                    // Its in-flight slot is still counted from the first time.
                    self.pending.push_back(Pending {
                        ticket: None,
                        done: Some(Outcome::Ok),
                        what: Owed::PubRec(p.pkid),
                    });
                    self.flush_pending(now);
                }
            }
            return;
        }
        let n = self.st.next_qos2;
        self.st.next_qos2 += 1;
        self.st.qos2_in.push(Qos2In {
            pkid: p.pkid,
            n,
            recorded: false,
        });
        self.in_flight_in += 1;
        let msg_id = format!("{}:q2:{n}", self.st.client_id);
        if self.persistent() {
            // Exactly once across a crash: the packet id and message number are on flash
            // before the message is published (see state::Change::Qos2Received).
            let t = self.ticket();
            let publish = self.make_publish(p, topic, subject, reply, Some(&msg_id), None);
            let change = Change::Qos2Received {
                client_id: self.st.client_id.clone(),
                pkid: p.pkid,
                n,
            };
            self.persist(change, Some(t));
            self.pending.push_back(Pending {
                ticket: Some(t),
                done: None,
                what: Owed::Qos2Stored(p.pkid, Box::new(publish)),
            });
        } else {
            let t = self.ticket();
            let publish = self.make_publish(p, topic, subject, reply, Some(&msg_id), Some(t));
            self.pending.push_back(Pending {
                ticket: Some(t),
                done: None,
                what: Owed::PubRec(p.pkid),
            });
            self.emit_publish(publish);
        }
    }

    pub(super) fn on_pubrel(&mut self, now: Instant, pkid: u16) {
        let known = self.st.qos2_in.iter().any(|q| q.pkid == pkid);
        if !known {
            // MQTT 5: 0x92 packet identifier not found; 3.1.1: PUBCOMP anyway.
            let code = if self.version == Version::V5 {
                reason::PACKET_ID_NOT_FOUND
            } else {
                0
            };
            return self.queue_ack(now, Owed::PubComp(pkid), code);
        }
        self.st.qos2_in.retain(|q| q.pkid != pkid);
        let ticket = if self.persistent() {
            let t = self.ticket();
            let change = Change::Qos2Released {
                client_id: self.st.client_id.clone(),
                pkid,
            };
            self.persist(change, Some(t));
            Some(t)
        } else {
            None
        };
        // The PUBREC's in-flight slot stays taken until this PUBCOMP goes.
        self.pending.push_back(Pending {
            ticket,
            done: if ticket.is_none() {
                Some(Outcome::Ok)
            } else {
                None
            },
            what: Owed::PubComp(pkid),
        });
        self.flush_pending(now);
    }

    /// The topic of a PUBLISH, through MQTT 5 topic aliases (MQTT 5 §3.3.2.3.4).
    fn resolve_alias(&mut self, now: Instant, p: &packet::Publish<'_>) -> Option<String> {
        let Some(alias) = p.props.u16(id::TOPIC_ALIAS) else {
            if p.topic.is_empty() {
                self.close(now, reason::PROTOCOL_ERROR, true);
                return None;
            }
            return Some(p.topic.to_string());
        };
        if alias > self.cfg.topic_alias_maximum {
            self.close(now, reason::TOPIC_ALIAS_INVALID, true);
            return None;
        }
        let slot = usize::from(alias - 1);
        if p.topic.is_empty() {
            let known = self.aliases_in.get(slot).and_then(|t| t.as_deref());
            match known {
                Some(t) => Some(t.to_string()),
                None => {
                    self.close(now, reason::PROTOCOL_ERROR, true);
                    None
                }
            }
        } else {
            if self.aliases_in.len() <= slot {
                self.aliases_in.resize(slot + 1, None);
            }
            self.aliases_in[slot] = Some(p.topic.into());
            Some(p.topic.to_string())
        }
    }

    fn make_publish(
        &self,
        p: &packet::Publish<'_>,
        topic: String,
        subject: String,
        reply: Option<String>,
        msg_id: Option<&str>,
        ticket: Option<Ticket>,
    ) -> Publish {
        let block = headers::Inbound {
            qos: p.qos,
            retain: p.retain,
            msg_id,
            props: p.props,
        }
        .block();
        Publish {
            subject,
            topic,
            reply,
            headers: block,
            payload: p.payload.to_vec(),
            qos: p.qos,
            retain: p.retain,
            ticket,
        }
    }

    fn emit_publish(&mut self, p: Publish) {
        if p.retain {
            self.events.push_back(Event::Retain(retain_of(&p)));
        }
        self.events.push_back(Event::Publish(p));
    }

    /// Acknowledges at once (a denied publish): `code` 0 or an MQTT 5 reason.
    fn ack_now(&mut self, now: Instant, p: &packet::Publish<'_>, code: u8) {
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.queue_ack(now, Owed::PubAck(p.pkid), code),
            QoS::ExactlyOnce if code >= 0x80 => self.queue_ack(now, Owed::PubRec(p.pkid), code),
            QoS::ExactlyOnce => {
                // 3.1.1: the PUBREL that follows gets its PUBCOMP.
                if !self.st.qos2_in.iter().any(|q| q.pkid == p.pkid) {
                    let n = self.st.next_qos2;
                    self.st.next_qos2 += 1;
                    self.st.qos2_in.push(Qos2In {
                        pkid: p.pkid,
                        n,
                        recorded: true,
                    });
                }
                self.queue_ack(now, Owed::PubRec(p.pkid), 0);
            }
        }
    }

    fn queue_ack(&mut self, now: Instant, what: Owed, code: u8) {
        self.in_flight_in += 1;
        let done = if code == 0 {
            Outcome::Ok
        } else {
            Outcome::Refused(code)
        };
        self.pending.push_back(Pending {
            ticket: None,
            done: Some(done),
            what,
        });
        self.flush_pending(now);
    }

    fn reply_or_close(&mut self, now: Instant, p: &packet::Publish<'_>, code: u8) {
        if p.qos == QoS::AtMostOnce || self.version == Version::V4 {
            return self.close(now, code, true);
        }
        self.ack_now(now, p, code);
    }

    /// Sends a ping response (kept here so all client-packet answers are in one place).
    pub(super) fn pong(&mut self) {
        self.send(&Packet::PingResp);
    }
}
