//! The part of a session that outlives its connection, and the changes to it the shell
//! persists (the session store on flash).

use std::collections::VecDeque;
use std::time::Instant;

use twig_core::mqtt::packet::{QoS, SubOptions};

/// One topic filter a client subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Id of the NATS subscriptions behind it (deliveries carry it).
    pub id: u32,
    /// The filter as the client sent it (`$share/G/` included).
    pub filter: String,
    /// Its options.
    pub options: SubOptions,
    /// MQTT 5 Subscription Identifier.
    pub sub_id: Option<u32>,
    /// Queue group, for `$share/G/...`.
    pub share: Option<String>,
    /// The NATS subjects (one, or two for `a/#`: `a.>` and `a`).
    pub subjects: Vec<String>,
}

/// A message on its way to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMsg {
    /// Its number in this session (the store's key).
    pub serial: u64,
    /// MQTT topic.
    pub topic: String,
    /// QoS it is delivered at.
    pub qos: QoS,
    /// RETAIN flag as delivered.
    pub retain: bool,
    /// MQTT 5 property block, without topic alias and subscription identifier (and without
    /// message expiry, which is computed when sent).
    pub props: Vec<u8>,
    /// Subscription identifier to send with it.
    pub sub_id: Option<u32>,
    /// The payload.
    pub payload: Vec<u8>,
    /// MQTT 5 message expiry: when it arrived and its interval in seconds.
    pub expiry: Option<(Instant, u32)>,
}

impl OutMsg {
    /// Bytes it accounts for against the queue limit.
    pub fn cost(&self) -> usize {
        64 + self.topic.len() + self.props.len() + self.payload.len()
    }
}

/// Where an in-flight message to the client stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// QoS 1 sent, waiting for PUBACK.
    WaitAck,
    /// QoS 2 sent, waiting for PUBREC.
    WaitRec,
    /// PUBREL sent, waiting for PUBCOMP.
    WaitComp,
}

/// A message sent and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inflight {
    /// Packet id.
    pub pkid: u16,
    /// Stage.
    pub stage: Stage,
    /// The message (kept for redelivery).
    pub msg: OutMsg,
}

/// A QoS 2 message from the client, between PUBLISH and PUBREL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qos2In {
    /// Packet id.
    pub pkid: u16,
    /// The message's number (its `Nats-Msg-Id` is `<client id>:q2:<n>`).
    pub n: u64,
    /// PUBREC sent (a repeated PUBLISH gets it again; else it is still being stored).
    pub recorded: bool,
}

/// Everything a client's session keeps between connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    /// The client id.
    pub client_id: String,
    /// Session expiry in seconds (0: ends with the connection; `u32::MAX`: never).
    pub expiry: u32,
    /// Subscriptions.
    pub subs: Vec<Subscription>,
    /// Sent, not acknowledged.
    pub inflight: VecDeque<Inflight>,
    /// Waiting to be sent.
    pub queue: VecDeque<OutMsg>,
    /// Bytes of `inflight` and `queue` ([`OutMsg::cost`]).
    pub queued_bytes: usize,
    /// QoS 2 from the client awaiting PUBREL.
    pub qos2_in: Vec<Qos2In>,
    /// Last packet id used towards the client.
    pub last_pkid: u16,
    /// Next [`OutMsg::serial`].
    pub next_serial: u64,
    /// Next [`Qos2In::n`].
    pub next_qos2: u64,
    /// Next [`Subscription::id`].
    pub next_sub: u32,
}

/// A change to persist, in order. Only sessions that outlive their connection emit them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The session exists with these settings and subscriptions (written on connect and on
    /// every SUBSCRIBE/UNSUBSCRIBE; replaces the previous one).
    Session {
        /// The client id.
        client_id: String,
        /// Session expiry in seconds.
        expiry: u32,
        /// All subscriptions.
        subs: Vec<Subscription>,
    },
    /// A message was queued for the client.
    Queued {
        /// The client id.
        client_id: String,
        /// The message.
        msg: OutMsg,
    },
    /// A QoS 2 message was sent with this packet id (so a restart sends it again with the
    /// same one), or, with `released`, its PUBREC came and PUBREL went.
    Sent {
        /// The client id.
        client_id: String,
        /// [`OutMsg::serial`].
        serial: u64,
        /// Packet id.
        pkid: u16,
        /// PUBREL sent.
        released: bool,
    },
    /// A queued message is done (acknowledged, expired or dropped).
    Done {
        /// The client id.
        client_id: String,
        /// [`OutMsg::serial`].
        serial: u64,
    },
    /// A QoS 2 message from the client was received under `pkid` (before it is published:
    /// a restart then publishes it again under the same `Nats-Msg-Id`, never a new one).
    Qos2Received {
        /// The client id.
        client_id: String,
        /// Packet id.
        pkid: u16,
        /// [`Qos2In::n`].
        n: u64,
    },
    /// The QoS 2 message received under `pkid` was published (its PUBREC waits for this): a
    /// repeat after a restart gets its PUBREC without being published again.
    Qos2Published {
        /// The client id.
        client_id: String,
        /// Packet id.
        pkid: u16,
        /// [`Qos2In::n`].
        n: u64,
    },
    /// PUBREL came for `pkid`: forget it (before PUBCOMP, so a new message under the same
    /// packet id is never taken for the old one).
    Qos2Released {
        /// The client id.
        client_id: String,
        /// Packet id.
        pkid: u16,
    },
    /// The session is gone.
    Deleted {
        /// The client id.
        client_id: String,
    },
}
