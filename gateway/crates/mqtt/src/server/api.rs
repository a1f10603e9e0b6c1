//! What the shell gives a [`Session`](super::Session) and what it gets back.

use std::time::Duration;

pub use twig_core::mqtt::packet::QoS;

/// Limits and features of the listener; one per listener, shared by its sessions.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest packet accepted from a client, fixed header included (advertised in MQTT 5
    /// CONNACK as Maximum Packet Size). A larger one closes the connection (0x95).
    pub max_packet_size: u32,
    /// QoS 1/2 publishes a client may have unacknowledged towards twig (MQTT 5 Receive
    /// Maximum; for 3.1.1 the session stops reading at this many instead).
    pub receive_maximum: u16,
    /// QoS 1/2 messages twig keeps in flight towards a client (the client's own Receive
    /// Maximum lowers it).
    pub max_inflight: u16,
    /// Bytes of messages queued for one session (in flight plus waiting), online or offline.
    /// Past it, QoS 0 deliveries are dropped and QoS 1/2 ones too (counted).
    pub max_queued_bytes: usize,
    /// Messages queued for one session, whatever their size.
    pub max_queued_messages: usize,
    /// Bytes the session may have written that the shell has not taken yet; past it, QoS 0
    /// deliveries are dropped and QoS 1/2 ones wait in the queue.
    pub max_write_buffer: usize,
    /// Topic aliases a client may set (MQTT 5 Topic Alias Maximum; 0: none).
    pub topic_alias_maximum: u16,
    /// Longest client identifier accepted, in bytes.
    pub max_client_id_len: usize,
    /// Largest keep-alive twig lets a client choose, in seconds; a client asking for more (or
    /// for 0) gets this one, told through MQTT 5's Server Keep Alive. 0: no limit.
    pub max_keep_alive: u16,
    /// Longest session expiry, in seconds (3.1.1 persistent sessions get this one).
    pub max_session_expiry: u32,
    /// Subscriptions (topic filters) per session.
    pub max_subscriptions: usize,
    /// Whether retained messages are kept (MQTT 5 Retain Available).
    pub retain_available: bool,
    /// Highest QoS accepted on PUBLISH and granted on SUBSCRIBE (MQTT 5 Maximum QoS).
    pub max_qos: QoS,
    /// How long an unanswered CONNECT/authentication may take before the connection closes.
    pub connect_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_packet_size: 1024 * 1024,
            receive_maximum: 64,
            max_inflight: 64,
            max_queued_bytes: 1024 * 1024,
            max_queued_messages: 1000,
            max_write_buffer: 256 * 1024,
            topic_alias_maximum: 16,
            max_client_id_len: 128,
            max_keep_alive: 0,
            max_session_expiry: 7 * 24 * 3600,
            max_subscriptions: 100,
            retain_available: true,
            max_qos: QoS::ExactlyOnce,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The shell's answers about what an authenticated client may do (the identity layer fills
/// it; subjects are NATS subjects, after the topic mapping).
pub trait Permissions: Send + Sync {
    /// May the client publish on `subject`?
    fn publish(&self, subject: &str) -> bool;
    /// May the client subscribe to `subject` (in queue group `queue`, for `$share/`)?
    fn subscribe(&self, subject: &str, queue: Option<&str>) -> bool;
    /// May a message on `subject` reach a subscription of the client (in `queue`)? A
    /// wildcard subscription that a deny rule overlaps is allowed, and the messages the rule
    /// denies are filtered here, one by one, as nats-server filters its deliveries.
    fn deliver(&self, _subject: &str, _queue: Option<&str>) -> bool {
        true
    }
    /// The login no longer holds: a reload removed its user or changed its password. The
    /// session closes at the next [`Input::Recheck`].
    fn revoked(&self) -> bool {
        false
    }
}

/// Everything allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Permissions for AllowAll {
    fn publish(&self, _: &str) -> bool {
        true
    }
    fn subscribe(&self, _: &str, _: Option<&str>) -> bool {
        true
    }
}

/// A number the shell hands back with [`Input::Done`] to say an operation finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// How an operation the session asked for ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done: routed, or durable in its stream, or persisted.
    Ok,
    /// Refused, with the MQTT 5 reason code to give (e.g. 0x97 quota exceeded when a stream
    /// is full). A 3.1.1 client cannot be told: its connection is closed without the
    /// acknowledgement, so it sends the message again after reconnecting.
    Refused(u8),
}

/// The CONNECT, for the shell to authenticate and to find the client's previous session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectInfo {
    /// 4 or 5.
    pub version: u8,
    /// The client id (the assigned one if the client sent none).
    pub client_id: String,
    /// Whether twig assigned the client id.
    pub assigned: bool,
    /// Clean Session / Clean Start.
    pub clean_start: bool,
    /// User name, if given.
    pub username: Option<String>,
    /// Password, if given.
    pub password: Option<Vec<u8>>,
}

/// The shell's answer to [`Event::Connect`].
pub struct Accept {
    /// What the client may do.
    pub permissions: Box<dyn Permissions>,
    /// The client's previous session (taken over from a live connection or read from the
    /// session store), if it asked to keep it (`clean_start` false) and there is one.
    pub previous: Option<super::SessionState>,
}

/// A NATS message for one of this session's subscriptions.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The subscription's id, from [`Event::Subscribe`].
    pub sub: u32,
    /// The NATS subject.
    pub subject: &'a str,
    /// The NATS reply subject.
    pub reply: Option<&'a str>,
    /// The NATS header block (`NATS/1.0\r\n...`), if any.
    pub headers: Option<&'a [u8]>,
    /// The payload.
    pub payload: &'a [u8],
    /// A retained message sent because of a new subscription ([`Event::SendRetained`]).
    pub retained: bool,
    /// Published by this same session (for MQTT 5 No Local).
    pub own: bool,
}

/// What the shell feeds a session.
pub enum Input<'a> {
    /// Bytes read from the socket.
    Bytes(&'a [u8]),
    /// The CONNECT is accepted.
    Accept(Accept),
    /// The CONNECT is refused with this MQTT 5 reason code (0x86 bad user name or password,
    /// 0x87 not authorized, 0x88 server unavailable...); 3.1.1 gets the matching return code.
    Reject(u8),
    /// A message for a subscription.
    Deliver(Delivery<'a>),
    /// An operation the session asked for finished.
    Done(Ticket, Outcome),
    /// The socket closed or failed.
    Closed,
    /// Another connection with the same client id took the session over.
    TakenOver,
    /// The server is shutting down.
    Shutdown,
    /// The permissions may have changed (a reload): a revoked login is closed (MQTT 5
    /// DISCONNECT 0x87), subscriptions no longer allowed are removed, as nats-server does.
    Recheck,
    /// Nothing new; time passed (the shell calls this at [`Session::poll_at`](super::Session::poll_at)).
    Tick,
}

/// A message to publish into NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The NATS subject (the mapped topic).
    pub subject: String,
    /// The MQTT topic.
    pub topic: String,
    /// The reply subject (MQTT 5 response topic and correlation data, see `headers.rs`).
    pub reply: Option<String>,
    /// The header block: `Nmqtt-Pub`, the MQTT 5 properties.
    pub headers: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
    /// The QoS it was published with.
    pub qos: QoS,
    /// The RETAIN flag.
    pub retain: bool,
    /// `Some`: answer with [`Input::Done`] once routed, or durable when a stream stores the
    /// subject; the PUBACK/PUBREC waits for it.
    pub ticket: Option<Ticket>,
}

/// What to do with the retained message of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retain {
    /// Keep this one (replacing any other for the topic).
    Set {
        /// The topic.
        topic: String,
        /// The NATS subject of the topic.
        subject: String,
        /// Its header block (delivered with it).
        headers: Vec<u8>,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// Forget the topic's retained message (an empty retained publish).
    Clear {
        /// The topic.
        topic: String,
    },
}

/// What a session asks of the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Authenticate, look up and take over the client's previous session, then answer with
    /// [`Input::Accept`] or [`Input::Reject`].
    Connect(ConnectInfo),
    /// Publish into NATS.
    Publish(Publish),
    /// Change a retained message.
    Retain(Retain),
    /// Subscribe to a NATS subject for subscription `id` (queue group for `$share/G/...`).
    Subscribe {
        /// The subscription's id (deliveries carry it).
        id: u32,
        /// The NATS subject.
        subject: String,
        /// The queue group.
        queue: Option<String>,
    },
    /// Remove a NATS subscription.
    Unsubscribe {
        /// The subscription's id.
        id: u32,
        /// The NATS subject.
        subject: String,
    },
    /// Deliver the retained messages matching `subject` to subscription `id` (as
    /// [`Delivery`] with `retained`).
    SendRetained {
        /// The subscription's id.
        id: u32,
        /// The NATS subject of the filter.
        subject: String,
    },
    /// The session's durable state changed: persist it (sessions that outlive their
    /// connection only). `Some` ticket: the session waits for it before acknowledging.
    Persist(super::Change, Option<Ticket>),
    /// Write what [`Session::transmit`](super::Session::transmit) holds, then close the socket.
    Close,
    /// The session is over (ended with its connection, or expired offline): forget it and
    /// its stored state.
    Expired,
}
