//! The session: the connection's life (CONNECT, keep-alive, DISCONNECT, close), the will and
//! the session's expiry. Publishing, delivery and subscriptions are in their own files.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use twig_core::mqtt::packet::{
    self, Ack, ConnAck, Connect, Packet, PropWriter, Props, Reason, Value, Version, props::id,
    reason,
};

use super::api::*;
use super::headers;
use super::state::{Change, SessionState};

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for CONNECT.
    New,
    /// CONNECT read; waiting for [`Input::Accept`] / [`Input::Reject`].
    Authenticating,
    /// CONNACK sent.
    Connected,
    /// The connection is closed (or closing); the session may live on.
    Offline,
    /// Nothing left.
    Ended,
}

/// The will of the connection, owned.
#[derive(Debug, Clone)]
pub(super) struct WillMsg {
    pub publish: Publish,
    pub delay: u32,
}

/// An acknowledgement waiting for its turn (MQTT 3.1.1 §4.6: in the order the packets came).
#[derive(Debug)]
pub(super) struct Pending {
    pub ticket: Option<Ticket>,
    pub done: Option<Outcome>,
    pub what: Owed,
}

/// What a [`Pending`] sends once done.
#[derive(Debug)]
pub(super) enum Owed {
    PubAck(u16),
    PubRec(u16),
    PubComp(u16),
    SubAck(u16, Vec<u8>),
    UnsubAck(u16, Vec<u8>),
    /// A QoS 2 message being persisted before it is published.
    Qos2Stored(u16, Box<Publish>),
    /// A persistent session's QoS 2 message was published; its PUBREC waits until that is
    /// on flash too ([`Change::Qos2Published`]), so a repeat after a restart is answered
    /// without publishing it again.
    Qos2Recording(u16),
}

/// One MQTT connection and the session it carries: sans-IO (bytes in, bytes and events out,
/// time passed in). See the module docs.
pub struct Session {
    pub(super) cfg: Arc<Config>,
    pub(super) phase: Phase,
    pub(super) version: Version,
    pub(super) inbuf: Vec<u8>,
    /// Inside `parse_held` (acknowledgements sent meanwhile do not parse again).
    parsing: bool,
    pub(super) out: Vec<u8>,
    pub(super) events: VecDeque<Event>,
    pub(super) last_rx: Instant,
    pub(super) started: Instant,
    /// Effective keep-alive in seconds (0: none).
    pub(super) keep_alive: u16,
    pub(super) perms: Option<Box<dyn Permissions>>,
    pub(super) st: SessionState,
    /// When the first queued message may expire (a lower bound; None: none of them has an
    /// MQTT 5 expiry), so timers and input do not scan a long queue.
    pub(super) queue_expiry: Option<Instant>,
    pub(super) will: Option<Box<WillMsg>>,
    pub(super) will_at: Option<Instant>,
    pub(super) expires_at: Option<Instant>,
    /// The client's limits (MQTT 5), for what twig sends.
    pub(super) client_max_packet: usize,
    pub(super) client_receive_max: u16,
    pub(super) client_alias_max: u16,
    pub(super) aliases_in: Vec<Option<Box<str>>>,
    pub(super) aliases_out: Vec<Box<str>>,
    pub(super) pending: VecDeque<Pending>,
    /// QoS 1/2 publishes from the client not yet completed.
    pub(super) in_flight_in: u16,
    pub(super) next_ticket: u64,
    /// The CONNECT's will, kept until the connection is accepted.
    pub(super) connect_will: Option<Box<WillMsg>>,
    pub(super) connect_expiry: u32,
    pub(super) assigned_id: bool,
    pub(super) server_keep_alive: Option<u16>,
    /// Deliveries dropped (queue or buffer full, too large for the client, expired).
    pub dropped: u64,
}

impl Session {
    /// A new connection, waiting for its CONNECT.
    pub fn new(cfg: Arc<Config>, now: Instant) -> Session {
        Session {
            cfg,
            phase: Phase::New,
            version: Version::V4,
            inbuf: Vec::new(),
            parsing: false,
            out: Vec::new(),
            events: VecDeque::new(),
            last_rx: now,
            started: now,
            keep_alive: 0,
            perms: None,
            st: SessionState::default(),
            queue_expiry: None,
            will: None,
            will_at: None,
            expires_at: None,
            client_max_packet: usize::MAX,
            client_receive_max: u16::MAX,
            client_alias_max: 0,
            aliases_in: Vec::new(),
            aliases_out: Vec::new(),
            pending: VecDeque::new(),
            in_flight_in: 0,
            next_ticket: 1,
            connect_will: None,
            connect_expiry: 0,
            assigned_id: false,
            server_keep_alive: None,
            dropped: 0,
        }
    }

    /// A lasting session read from the store at start: offline until its client connects
    /// again, expiring as configured from `now`. Its NATS subscriptions (`state.subs`) are the
    /// shell's to restore.
    pub fn restore(cfg: Arc<Config>, state: SessionState, now: Instant) -> Session {
        let mut s = Session::new(cfg, now);
        s.phase = Phase::Offline;
        s.expires_at = match state.expiry {
            u32::MAX => None,
            e => Some(now + Duration::from_secs(u64::from(e))),
        };
        s.st = state;
        s.queue_expiry = super::outbound::first_expiry(&s.st.queue);
        s
    }

    /// The session's subscriptions.
    pub fn subscriptions(&self) -> &[super::Subscription] {
        &self.st.subs
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Bytes(b) => self.on_bytes(now, b),
            Input::Accept(a) => self.on_accept(now, a),
            Input::Reject(code) => self.on_reject(code),
            Input::Deliver(d) => self.deliver(now, d),
            Input::Done(t, o) => self.on_done(now, t, o),
            Input::Closed => self.go_offline(now, true),
            Input::TakenOver => self.close(now, reason::SESSION_TAKEN_OVER, true),
            Input::Shutdown => self.close(now, reason::SERVER_SHUTTING_DOWN, true),
            Input::Recheck => self.recheck(now),
            Input::Tick => {}
        }
        self.on_time(now);
        if self.phase == Phase::Connected {
            self.pump(now);
        }
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether an event waits for the shell.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Frees what the session holds empty (the shell calls it before it sleeps): an idle
    /// session keeps only its state, not the capacity its last burst left behind. Cheap when
    /// there is nothing to free; the subscription list is cut to its length once.
    pub fn trim(&mut self) {
        fn free<T>(v: &mut VecDeque<T>) {
            if v.is_empty() && v.capacity() > 0 {
                *v = VecDeque::new();
            }
        }
        free(&mut self.events);
        free(&mut self.pending);
        free(&mut self.st.inflight);
        free(&mut self.st.queue);
        if self.out.is_empty() && self.out.capacity() > 0 {
            self.out = Vec::new();
        }
        if self.inbuf.is_empty() && self.inbuf.capacity() > 0 {
            self.inbuf = Vec::new();
        }
        if self.st.qos2_in.is_empty() && self.st.qos2_in.capacity() > 0 {
            self.st.qos2_in = Vec::new();
        }
        if self.st.subs.capacity() > self.st.subs.len() {
            self.st.subs.shrink_to_fit();
        }
    }

    /// Bytes to write to the socket.
    pub fn transmit(&self) -> &[u8] {
        &self.out
    }

    /// Takes the bytes to write (the shell then calls [`Session::handle`] with
    /// [`Input::Tick`] to let queued messages follow).
    pub fn take_transmit(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// When the shell must call [`Session::handle`] (with [`Input::Tick`]) at the latest.
    pub fn poll_at(&self) -> Option<Instant> {
        let ka = self.poll_at_connection();
        [ka, self.will_at, self.expires_at, self.queue_expiry]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the shell should read the socket: false while the client has as many QoS 1/2
    /// publishes unacknowledged as twig accepts (3.1.1 flow control), or when closed.
    pub fn wants_input(&self) -> bool {
        matches!(self.phase, Phase::New | Phase::Connected)
            && self.in_flight_in < self.cfg.receive_maximum
    }

    /// A connected 3.1.1 client with as many QoS 1/2 publishes unacknowledged as twig takes.
    fn v4_window_full(&self) -> bool {
        self.phase == Phase::Connected
            && self.version == Version::V4
            && self.in_flight_in >= self.cfg.receive_maximum
    }

    /// Whether the connection is closed (the session may still live on offline).
    pub fn is_offline(&self) -> bool {
        matches!(self.phase, Phase::Offline | Phase::Ended)
    }

    /// Whether the session outlives its connection (its queued QoS 1/2 messages are stored).
    pub fn is_lasting(&self) -> bool {
        self.persistent()
    }

    /// The client id (empty before CONNECT).
    pub fn client_id(&self) -> &str {
        &self.st.client_id
    }

    /// The protocol level (4 or 5), once connected.
    pub fn version(&self) -> u8 {
        match self.version {
            Version::V4 => 4,
            Version::V5 => 5,
        }
    }

    /// Takes the session's state (for a takeover by a new connection with the same client id,
    /// after [`Input::TakenOver`]). The session is over afterwards.
    pub fn take_state(&mut self) -> SessionState {
        self.phase = Phase::Ended;
        self.will = None;
        self.will_at = None;
        self.expires_at = None;
        std::mem::take(&mut self.st)
    }

    /// Approximate heap bytes held (for the per-session memory budget).
    pub fn heap_bytes(&self) -> usize {
        self.inbuf.capacity() + self.out.capacity() + self.st.queued_bytes
    }

    pub(super) fn ticket(&mut self) -> Ticket {
        let t = Ticket(self.next_ticket);
        self.next_ticket += 1;
        t
    }

    pub(super) fn persistent(&self) -> bool {
        self.st.expiry > 0
    }

    pub(super) fn persist(&mut self, change: Change, ticket: Option<Ticket>) {
        self.events.push_back(Event::Persist(change, ticket));
    }

    pub(super) fn persist_session(&mut self) {
        if self.persistent() {
            let change = Change::Session {
                client_id: self.st.client_id.clone(),
                expiry: self.st.expiry,
                subs: self.st.subs.clone(),
            };
            self.persist(change, None);
        }
    }

    /// Encodes a packet into the output.
    pub(super) fn send(&mut self, p: &Packet<'_>) {
        // Only twig's own packets go through here; they always encode.
        let _ = p.encode(self.version, &mut self.out);
    }

    fn on_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if !matches!(
            self.phase,
            Phase::New | Phase::Connected | Phase::Authenticating
        ) {
            return;
        }
        self.last_rx = now;
        let mut held = std::mem::take(&mut self.inbuf);
        held.extend_from_slice(bytes);
        self.parse_held(now, held);
    }

    /// Reads every whole packet in `held` (parsing stops while authentication is under way:
    /// a client may send packets right after CONNECT, MQTT 3.1.1 §3.1.4) and keeps the rest.
    /// A 3.1.1 client has no Receive Maximum to keep to: parsing also stops while it has
    /// `receive_maximum` QoS 1/2 publishes unacknowledged, and goes on as they are answered
    /// (one read can hold hundreds of publishes; more than the window would overrun the
    /// shell's bounded channel of stream notices, and their PUBACKs would never come).
    fn parse_held(&mut self, now: Instant, held: Vec<u8>) {
        let mut used = 0;
        self.parsing = true;
        while matches!(self.phase, Phase::New | Phase::Connected) && !self.v4_window_full() {
            let buf = held.get(used..).unwrap_or(&[]);
            let max = self.cfg.max_packet_size as usize;
            match packet::decode(buf, self.version, max) {
                Ok(Some((p, n))) => {
                    used += n;
                    self.on_packet(now, p);
                }
                Ok(None) => break,
                Err(e) => {
                    self.on_bad_packet(now, e);
                    break;
                }
            }
        }
        self.parsing = false;
        if self.is_offline() {
            return;
        }
        let rest = held.get(used..).unwrap_or(&[]);
        if !rest.is_empty() {
            // Keep the partial packet; an idle session keeps no buffer at all (memory budget).
            self.inbuf = rest.to_vec();
        }
    }

    fn on_bad_packet(&mut self, now: Instant, e: packet::Error) {
        tracing::debug!(client = %self.st.client_id, "MQTT packet refused: {e}");
        match (self.phase, e.kind) {
            (Phase::New, packet::ErrorKind::UnsupportedVersion(_)) => {
                // 3.1.1 §3.1.2.2: CONNACK 0x01 then close (a level-5 client never gets here).
                self.out.extend_from_slice(&[
                    0x20,
                    2,
                    0,
                    reason::v4::UNACCEPTABLE_PROTOCOL_VERSION,
                ]);
                self.end_connection(now, false);
            }
            (Phase::New, _) => self.end_connection(now, false),
            _ => self.close(now, e.reason(), true),
        }
    }

    fn on_packet(&mut self, now: Instant, packet: Packet<'_>) {
        match (self.phase, packet) {
            (Phase::New, Packet::Connect(c)) => self.on_connect(now, &c),
            // MQTT-3.1.0-1: the first packet must be CONNECT.
            (Phase::New, _) => self.end_connection(now, false),
            (Phase::Connected, Packet::Connect(_)) => {
                // MQTT-3.1.0-2: a second CONNECT is a protocol violation.
                self.close(now, reason::PROTOCOL_ERROR, true)
            }
            (Phase::Connected, Packet::Publish(pb)) => self.on_publish(now, &pb),
            (Phase::Connected, Packet::PubAck(a)) => self.on_puback(now, a.pkid),
            (Phase::Connected, Packet::PubRec(a)) => self.on_pubrec(now, &a),
            (Phase::Connected, Packet::PubRel(a)) => self.on_pubrel(now, a.pkid),
            (Phase::Connected, Packet::PubComp(a)) => self.on_pubcomp(now, a.pkid),
            (Phase::Connected, Packet::Subscribe(s)) => self.on_subscribe(now, &s),
            (Phase::Connected, Packet::Unsubscribe(u)) => self.on_unsubscribe(&u),
            (Phase::Connected, Packet::PingReq) => self.pong(),
            (Phase::Connected, Packet::Disconnect(d)) => self.on_disconnect(now, &d),
            (Phase::Connected, Packet::Auth(_)) => {
                // No enhanced authentication: an AUTH without an auth method in CONNECT is a
                // protocol error (MQTT 5 §4.12).
                self.close(now, reason::PROTOCOL_ERROR, true)
            }
            (Phase::Connected, _) => self.close(now, reason::PROTOCOL_ERROR, true),
            _ => {}
        }
    }

    fn on_connect(&mut self, now: Instant, c: &Connect<'_>) {
        self.version = c.version;
        let v5 = c.version == Version::V5;
        let refuse = |s: &mut Session, v5code: u8, v4code: u8| {
            s.connack_refused(if v5 { v5code } else { v4code });
            s.end_connection(now, false);
        };
        if v5 && c.props.str(id::AUTH_METHOD).is_some() {
            // Enhanced authentication is not offered (MQTT 5 §4.12: 0x8C).
            return refuse(self, reason::BAD_AUTH_METHOD, 0);
        }
        let mut client_id = c.client_id.to_string();
        let bad_id = client_id.len() > self.cfg.max_client_id_len
            || client_id.chars().any(|ch| ch.is_control());
        if bad_id {
            return refuse(
                self,
                reason::CLIENT_ID_NOT_VALID,
                reason::v4::IDENTIFIER_REJECTED,
            );
        }
        if client_id.is_empty() {
            if !v5 && !c.clean_start {
                // MQTT-3.1.3-8: an empty id needs Clean Session.
                return refuse(self, 0, reason::v4::IDENTIFIER_REJECTED);
            }
            client_id = assigned_id();
            self.assigned_id = true;
        }
        if let Some(w) = &c.will {
            if let Some(code) = self.check_will(w) {
                return refuse(self, code, 0);
            }
            if v5
                && w.props
                    .str(id::RESPONSE_TOPIC)
                    .is_some_and(|t| headers::topic_subject(t).is_none())
            {
                return refuse(self, reason::TOPIC_NAME_INVALID, 0);
            }
        }
        // Keep-alive: the client's, unless the listener caps it (MQTT 5 Server Keep Alive).
        let max = self.cfg.max_keep_alive;
        self.keep_alive = c.keep_alive;
        if max > 0 && (c.keep_alive == 0 || c.keep_alive > max) {
            self.keep_alive = max;
            if v5 {
                self.server_keep_alive = Some(max);
            }
        }
        let requested = if v5 {
            c.props.u32(id::SESSION_EXPIRY).unwrap_or(0)
        } else if c.clean_start {
            0
        } else {
            u32::MAX
        };
        self.connect_expiry = requested.min(self.cfg.max_session_expiry);
        if v5 {
            self.client_max_packet = c
                .props
                .u32(id::MAXIMUM_PACKET_SIZE)
                .map_or(usize::MAX, |m| m as usize);
            self.client_receive_max = c.props.u16(id::RECEIVE_MAXIMUM).unwrap_or(u16::MAX);
            self.client_alias_max = c.props.u16(id::TOPIC_ALIAS_MAXIMUM).unwrap_or(0);
        }
        self.connect_will = c.will.as_ref().and_then(|w| self.will_of(w));
        self.st.client_id = client_id.clone();
        self.phase = Phase::Authenticating;
        self.events.push_back(Event::Connect(ConnectInfo {
            version: if v5 { 5 } else { 4 },
            client_id,
            assigned: self.assigned_id,
            clean_start: c.clean_start,
            username: c.username.map(str::to_string),
            password: c.password.map(<[u8]>::to_vec),
        }));
    }

    /// The MQTT 5 reason code a will is refused with, if it is (3.1.1 has none: the
    /// connection just closes).
    fn check_will(&self, w: &packet::Will<'_>) -> Option<u8> {
        if w.qos > self.cfg.max_qos {
            return Some(reason::QOS_NOT_SUPPORTED);
        }
        if w.retain && !self.cfg.retain_available {
            return Some(reason::RETAIN_NOT_SUPPORTED);
        }
        if headers::topic_subject(w.topic).is_none() {
            return Some(reason::TOPIC_NAME_INVALID);
        }
        None
    }

    fn will_of(&self, w: &packet::Will<'_>) -> Option<Box<WillMsg>> {
        let subject = headers::topic_subject(w.topic)?;
        let reply = match w.props.str(id::RESPONSE_TOPIC) {
            Some(rt) => headers::encode_reply(rt, w.props.bin(id::CORRELATION_DATA)),
            None => None,
        };
        let block = headers::Inbound {
            qos: w.qos,
            retain: w.retain,
            msg_id: None,
            props: w.props,
        }
        .block();
        Some(Box::new(WillMsg {
            publish: Publish {
                subject,
                topic: w.topic.to_string(),
                reply,
                headers: block,
                payload: w.payload.to_vec(),
                qos: w.qos,
                retain: w.retain,
                ticket: None,
            },
            delay: w.props.u32(id::WILL_DELAY).unwrap_or(0),
        }))
    }

    fn connack_refused(&mut self, code: u8) {
        // 3.1.1 has return codes 1-5 only; 0 in the v4 slot means "just close".
        if self.version == Version::V4 && code == 0 {
            return;
        }
        let ack = ConnAck {
            session_present: false,
            code,
            props: Props::EMPTY,
        };
        self.send(&Packet::ConnAck(ack));
    }

    fn on_reject(&mut self, v5code: u8) {
        if self.phase != Phase::Authenticating {
            return;
        }
        let code = match self.version {
            Version::V5 => v5code,
            Version::V4 => match v5code {
                reason::BAD_USER_NAME_OR_PASSWORD => reason::v4::BAD_USER_NAME_OR_PASSWORD,
                reason::SERVER_UNAVAILABLE | reason::SERVER_BUSY => reason::v4::SERVER_UNAVAILABLE,
                reason::CLIENT_ID_NOT_VALID => reason::v4::IDENTIFIER_REJECTED,
                _ => reason::v4::NOT_AUTHORIZED,
            },
        };
        self.connack_refused(code);
        self.connect_will = None;
        self.pending.clear();
        self.phase = Phase::Ended;
        self.events.push_back(Event::Close);
        self.events.push_back(Event::Expired);
    }

    fn on_accept(&mut self, now: Instant, a: Accept) {
        if self.phase != Phase::Authenticating {
            return;
        }
        self.perms = Some(a.permissions);
        let mut session_present = false;
        if let Some(prev) = a.previous {
            session_present = true;
            let id = std::mem::take(&mut self.st.client_id);
            self.st = prev;
            self.st.client_id = id;
            self.queue_expiry = super::outbound::first_expiry(&self.st.queue);
            // Before the expiry changes: the Done records go where the queue was stored.
            self.drop_undeliverable();
        }
        self.st.expiry = self.connect_expiry;
        self.will = self.connect_will.take();
        self.phase = Phase::Connected;
        self.last_rx = now;
        let mut props = Vec::new();
        if self.version == Version::V5 {
            let c = &self.cfg;
            let mut w = PropWriter::new(&mut props);
            let _ = w.put(id::RECEIVE_MAXIMUM, Value::U16(c.receive_maximum.max(1)));
            let _ = w.put(id::MAXIMUM_PACKET_SIZE, Value::U32(c.max_packet_size));
            let _ = w.put(id::TOPIC_ALIAS_MAXIMUM, Value::U16(c.topic_alias_maximum));
            if c.max_qos < packet::QoS::ExactlyOnce {
                let _ = w.put(id::MAXIMUM_QOS, Value::Byte(c.max_qos as u8));
            }
            if !c.retain_available {
                let _ = w.put(id::RETAIN_AVAILABLE, Value::Byte(0));
            }
            if self.st.expiry != self.requested_expiry() {
                let _ = w.put(id::SESSION_EXPIRY, Value::U32(self.st.expiry));
            }
            if let Some(ka) = self.server_keep_alive {
                let _ = w.put(id::SERVER_KEEP_ALIVE, Value::U16(ka));
            }
            if self.assigned_id {
                let _ = w.put(id::ASSIGNED_CLIENT_ID, Value::Str(&self.st.client_id));
            }
        }
        let props = Props::new(&props, packet::Ctx::ConnAck).unwrap_or_default();
        let ack = ConnAck {
            session_present,
            code: 0,
            props,
        };
        let mut buf = Vec::new();
        let _ = Packet::ConnAck(ack).encode(self.version, &mut buf);
        self.out.extend_from_slice(&buf);
        if !session_present {
            // A clean start forgets any stored session (MQTT-3.1.2-4).
            let id = self.st.client_id.clone();
            self.persist(Change::Deleted { client_id: id }, None);
        }
        self.persist_session();
        self.resume(now);
        let held = std::mem::take(&mut self.inbuf);
        if !held.is_empty() {
            self.parse_held(now, held);
        }
    }

    fn requested_expiry(&self) -> u32 {
        // What CONNECT asked for is not kept separately: the cap is the only change twig
        // makes, so the two differ exactly when the cap applied.
        if self.connect_expiry == self.cfg.max_session_expiry {
            u32::MAX
        } else {
            self.connect_expiry
        }
    }

    fn on_disconnect(&mut self, now: Instant, d: &Reason<'_>) {
        if let Some(exp) = d.props.u32(id::SESSION_EXPIRY) {
            if self.st.expiry == 0 && exp != 0 {
                // MQTT-3.14.2-2: a session that ended with the connection cannot be revived.
                return self.close(now, reason::PROTOCOL_ERROR, true);
            }
            self.st.expiry = exp.min(self.cfg.max_session_expiry);
            self.persist_session();
        }
        if d.reason != reason::DISCONNECT_WITH_WILL {
            // A normal DISCONNECT discards the will (MQTT-3.1.2-10).
            self.will = None;
        }
        self.go_offline(now, d.reason == reason::DISCONNECT_WITH_WILL);
    }

    /// Closes the connection with a reason (MQTT 5 DISCONNECT when connected).
    pub(super) fn close(&mut self, now: Instant, code: u8, abnormal: bool) {
        if self.is_offline() {
            return;
        }
        if self.phase == Phase::Connected && self.version == Version::V5 {
            let d = Reason {
                reason: code,
                props: Props::EMPTY,
            };
            self.send(&Packet::Disconnect(d));
        }
        self.go_offline(now, abnormal);
    }

    /// The connection is over before a session existed.
    fn end_connection(&mut self, _now: Instant, _abnormal: bool) {
        self.phase = Phase::Ended;
        self.events.push_back(Event::Close);
        self.events.push_back(Event::Expired);
    }

    /// The connection is over: the will (after its delay), and the session lives on offline
    /// until it expires, or ends now.
    fn go_offline(&mut self, now: Instant, publish_will: bool) {
        match self.phase {
            Phase::Offline | Phase::Ended => return,
            Phase::New | Phase::Authenticating => return self.end_connection(now, false),
            Phase::Connected => {}
        }
        self.phase = Phase::Offline;
        self.events.push_back(Event::Close);
        self.pending.clear();
        self.in_flight_in = 0;
        self.aliases_in = Vec::new();
        self.aliases_out = Vec::new();
        self.inbuf = Vec::new();
        if !publish_will {
            self.will = None;
        }
        // QoS 0 messages that waited for a slow reader are not kept for an offline client.
        let mut gone_bytes = 0;
        self.st.queue.retain(|m| {
            let keep = m.qos != QoS::AtMostOnce;
            if !keep {
                gone_bytes += m.cost();
                self.dropped += 1;
            }
            keep
        });
        self.st.queued_bytes = self.st.queued_bytes.saturating_sub(gone_bytes);
        let expiry = self.st.expiry;
        self.expires_at = match expiry {
            u32::MAX => None,
            s => Some(now + Duration::from_secs(u64::from(s))),
        };
        if let Some(w) = &self.will {
            // MQTT 5 §3.1.3.2.2: after the will delay, or when the session ends if sooner.
            let delay = Duration::from_secs(u64::from(w.delay.min(expiry)));
            self.will_at = Some(now + delay);
        }
        self.on_time(now);
    }

    /// Timers: connect and keep-alive deadlines, the will delay, session expiry, message
    /// expiry of queued messages.
    fn on_time(&mut self, now: Instant) {
        if self.poll_at_connection().is_some_and(|at| now >= at) {
            match self.phase {
                Phase::Connected => self.close(now, reason::KEEP_ALIVE_TIMEOUT, true),
                _ => self.end_connection(now, false),
            }
        }
        if self.will_at.is_some_and(|t| now >= t) {
            self.will_at = None;
            if let Some(w) = self.will.take() {
                self.publish_will(w.publish);
            }
        }
        if self.expires_at.is_some_and(|t| now >= t) && self.phase == Phase::Offline {
            self.expires_at = None;
            self.phase = Phase::Ended;
            if let Some(w) = self.will.take() {
                self.publish_will(w.publish);
            }
            let id = self.st.client_id.clone();
            if self.st.expiry > 0 {
                self.persist(Change::Deleted { client_id: id }, None);
            }
            self.events.push_back(Event::Expired);
        }
        self.expire_queued(now);
    }

    fn poll_at_connection(&self) -> Option<Instant> {
        match self.phase {
            Phase::New | Phase::Authenticating => Some(self.started + self.cfg.connect_timeout),
            Phase::Connected if self.keep_alive > 0 => {
                Some(self.last_rx + Duration::from_millis(u64::from(self.keep_alive) * 1500))
            }
            _ => None,
        }
    }

    fn publish_will(&mut self, p: Publish) {
        if p.retain {
            self.events.push_back(Event::Retain(retain_of(&p)));
        }
        self.events.push_back(Event::Publish(p));
    }

    fn on_done(&mut self, now: Instant, t: Ticket, o: Outcome) {
        let Some(i) = self.pending.iter().position(|p| p.ticket == Some(t)) else {
            return;
        };
        let owed = &mut self.pending[i];
        if let (Owed::Qos2Stored(pkid, publish), Outcome::Ok) = (&mut owed.what, o) {
            // Persisted: now publish it, under the ticket the PUBREC waits for.
            let pkid = *pkid;
            let mut p = std::mem::replace(publish, Box::new(empty_publish()));
            let t2 = Ticket(self.next_ticket);
            self.next_ticket += 1;
            p.ticket = Some(t2);
            let owed = &mut self.pending[i];
            owed.ticket = Some(t2);
            owed.what = Owed::PubRec(pkid);
            if p.retain {
                self.events.push_back(Event::Retain(retain_of(&p)));
            }
            self.events.push_back(Event::Publish(*p));
            return;
        }
        if let (Owed::PubRec(pkid), Outcome::Ok) = (&owed.what, o) {
            let pkid = *pkid;
            let n = self.st.qos2_in.iter().find(|q| q.pkid == pkid).map(|q| q.n);
            if let (true, Some(n)) = (self.persistent(), n) {
                // Routed. Kill -9 after a PUBREC must not publish it twice: a core NATS
                // subscriber has no Nats-Msg-Id dedup, so the fact goes to flash first.
                let t3 = self.ticket();
                let owed = &mut self.pending[i];
                owed.ticket = Some(t3);
                owed.what = Owed::Qos2Recording(pkid);
                let change = Change::Qos2Published {
                    client_id: self.st.client_id.clone(),
                    pkid,
                    n,
                };
                self.persist(change, Some(t3));
                return;
            }
        }
        let owed = &mut self.pending[i];
        if matches!(owed.what, Owed::Qos2Recording(_)) {
            // The message is out already: a failed record costs at most a repeat after a
            // crash, while refusing now would make the client send it again at once.
            owed.done = Some(Outcome::Ok);
        } else {
            owed.done = Some(o);
        }
        self.flush_pending(now);
    }

    /// Sends the acknowledgements that are done, in order.
    pub(super) fn flush_pending(&mut self, now: Instant) {
        while self.pending.front().is_some_and(|p| p.done.is_some()) {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            let outcome = p.done.unwrap_or(Outcome::Ok);
            let code = match outcome {
                Outcome::Ok => 0,
                Outcome::Refused(_) if self.version == Version::V4 => {
                    // 3.1.1 cannot say no: close without the acknowledgement, so the client
                    // sends the message again after reconnecting.
                    return self.close(now, reason::UNSPECIFIED_ERROR, true);
                }
                Outcome::Refused(c) => c,
            };
            let ack = |pkid| Ack {
                pkid,
                reason: code,
                props: Props::EMPTY,
            };
            match p.what {
                Owed::PubAck(pkid) => {
                    self.in_flight_in = self.in_flight_in.saturating_sub(1);
                    self.send(&Packet::PubAck(ack(pkid)));
                }
                Owed::PubRec(pkid) | Owed::Qos2Recording(pkid) => {
                    if code >= 0x80 {
                        // The exchange ends here (MQTT 5 §4.3.3): forget the packet id.
                        self.st.qos2_in.retain(|q| q.pkid != pkid);
                        self.in_flight_in = self.in_flight_in.saturating_sub(1);
                    } else if let Some(q) = self.st.qos2_in.iter_mut().find(|q| q.pkid == pkid) {
                        q.recorded = true;
                    }
                    self.send(&Packet::PubRec(ack(pkid)));
                }
                Owed::PubComp(pkid) => {
                    self.in_flight_in = self.in_flight_in.saturating_sub(1);
                    self.send(&Packet::PubComp(ack(pkid)));
                }
                Owed::SubAck(pkid, codes) => {
                    let s = packet::SubAck {
                        pkid,
                        props: Props::EMPTY,
                        codes: &codes,
                    };
                    self.send(&Packet::SubAck(s));
                }
                Owed::UnsubAck(pkid, codes) => {
                    let s = packet::SubAck {
                        pkid,
                        props: Props::EMPTY,
                        codes: &codes,
                    };
                    self.send(&Packet::UnsubAck(s));
                }
                Owed::Qos2Stored(pkid, _) => {
                    // Persisting failed: nothing was published; the client may send it again.
                    self.st.qos2_in.retain(|q| q.pkid != pkid);
                    self.in_flight_in = self.in_flight_in.saturating_sub(1);
                    if self.version == Version::V5 {
                        self.send(&Packet::PubRec(ack(pkid)));
                    }
                }
            }
        }
        // Room in a 3.1.1 client's window again: the packets held back go on.
        if !self.parsing && !self.inbuf.is_empty() && !self.v4_window_full() {
            let held = std::mem::take(&mut self.inbuf);
            self.parse_held(now, held);
        }
    }
}

pub(super) fn retain_of(p: &Publish) -> Retain {
    if p.payload.is_empty() {
        Retain::Clear {
            topic: p.topic.clone(),
        }
    } else {
        Retain::Set {
            topic: p.topic.clone(),
            subject: p.subject.clone(),
            headers: p.headers.clone(),
            payload: p.payload.clone(),
        }
    }
}

fn empty_publish() -> Publish {
    Publish {
        subject: String::new(),
        topic: String::new(),
        reply: None,
        headers: Vec::new(),
        payload: Vec::new(),
        qos: packet::QoS::AtMostOnce,
        retain: false,
        ticket: None,
    }
}

/// A client id for a client that sent none: 18 random base62 characters after `twig-` (23
/// characters, the most MQTT 3.1.1 promises a server accepts). Random, not time-based: the
/// session reads no clock.
fn assigned_id() -> String {
    let mut id = String::from("twig-");
    id.push_str(&twig_util::id::token()[..18]);
    id
}
