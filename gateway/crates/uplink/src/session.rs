//! The leafnode handshake and keepalive of one uplink connection, as a state machine: ops in
//! (parsed by twig-core's wire parser), steps out, time passed in (`handle(now, op)`,
//! `poll(now)`, `poll_at()`). No socket, clock or file here; the shell in `mod.rs` does I/O.
//!
//! The sequence (reference §2.2-2.4), as a nats-server leaf soliciting a hub:
//! 1. wait for the hub's INFO (within `first_info_timeout`); refuse it as "wrong port" when
//!    `client_id` is 0 or `leafnode_urls` is missing, as nats-server does;
//! 2. send CONNECT (twig-core's `LeafConnect`: no `lang`, `is_hub` false so omitted,
//!    `compress_mode` "off" when the hub offered compression, "not supported" otherwise, so S2
//!    is declined; twig never sends an INFO first, which is what would start S2);
//! 3. if the INFO said `info_on_connect`, wait (2 s, as nats-server) for the INFO with
//!    `connect_info`, which names the account and carries the permissions;
//! 4. connected: the shell sends the interest dump. Then PING every `ping_interval`; the link is
//!    stale after `ping_max` PINGs with no answer *and no other data* from the hub: a PONG stuck
//!    behind bulk data on a slow link does not kill a link that is plainly delivering.
use std::time::{Duration, Instant};

use twig_core::wire::Op;
use twig_core::wire::json::full::{LeafConnect, ServerInfo, SubjectPermission};

use super::creds::Credentials;

/// nats-server's `connectProcessTimeout`: time the hub has to answer CONNECT with its INFO.
pub const CONNECT_INFO_TIMEOUT: Duration = Duration::from_secs(2);

/// nats-server sends its first PING about a second after the connection is up (RTT).
const FIRST_PING: Duration = Duration::from_secs(1);

/// Fixed parts of twig's CONNECT and the timers.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The nats-server version twig speaks (`version`; hubs with `min_version` compare it;
    /// see [`twig_util::version::NATS_SERVER`]).
    pub version: String,
    /// twig's own version, sent next to it as `twig_version` (a hub ignores keys it does not
    /// know, and a capture of the link still says which twig this is).
    pub twig_version: String,
    /// Server id (`server_id`).
    pub server_id: String,
    /// Server name (`name`), also used as `cluster`: hubs never send a leaf's messages back
    /// to the cluster they came from, so every twig must have its own cluster name.
    pub name: String,
    /// Time the hub has to send its first INFO.
    pub first_info_timeout: Duration,
    /// PING interval.
    pub ping_interval: Duration,
    /// Unanswered PINGs (with no other data from the hub) before the link is stale.
    pub ping_max: u32,
    /// twig's loop-detection subject (`$LDS.<random>`); seeing it come back from the hub as
    /// interest means the hub reaches twig through another path.
    pub lds: String,
    /// Subjects the hub must not send as plain messages (CONNECT `deny_pub`, nats-server's
    /// `deny_imports`): the `[[sync]]` filters, whose messages come through the consumer.
    pub deny_imports: Vec<String>,
}

/// Why the session ended. Each renders as a sentence for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer is not a leafnode port (no `client_id` or no `leafnode_urls` in INFO).
    #[error("attempted to connect to wrong port (not the hub's leafnode port)")]
    WrongPort,
    /// The hub sent `-ERR`.
    #[error("hub said -ERR '{0}'")]
    Hub(String),
    /// No INFO within the timeout.
    #[error("no INFO from the hub within {0:?}")]
    InfoTimeout(Duration),
    /// No `connect_info` INFO after CONNECT.
    #[error("the hub did not confirm CONNECT within {0:?}")]
    ConnectTimeout(Duration),
    /// The hub sent an INFO that is not valid JSON.
    #[error("unreadable INFO from the hub")]
    BadInfo,
    /// The hub sent something a hub never sends, or in the wrong phase.
    #[error("protocol violation by the hub: {0}")]
    Protocol(&'static str),
    /// `ping_max` PINGs went unanswered with nothing else heard.
    #[error("Stale Connection")]
    Stale,
    /// The hub advertised twig's own loop-detection subject.
    #[error("Loop detected: the hub advertises this server's own $LDS subject")]
    Loop,
}

/// Where the handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the hub's INFO.
    AwaitInfo,
    /// CONNECT sent; waiting for the `connect_info` INFO.
    AwaitConnectInfo,
    /// Up: interest and messages flow.
    Connected,
}

/// What the shell does after an op or a timer.
#[derive(Debug)]
pub enum Step<'a> {
    /// Nothing.
    Nothing,
    /// Write these bytes ahead of anything queued (CONNECT, PING, PONG).
    Send(Vec<u8>),
    /// Write a fixed protocol line ahead of anything queued.
    SendStatic(&'static [u8]),
    /// CONNECT, then the link is up at once (the hub does not send `connect_info`).
    SendAndConnected(Vec<u8>),
    /// The hub confirmed: send the interest dump, start forwarding.
    Connected,
    /// The hub updated its leafnode URLs (async INFO).
    Urls(Vec<String>),
    /// Interest or a message from the hub, for the shell to apply.
    Data(Op<'a>),
}

/// What twig learnt about the hub.
#[derive(Debug, Clone, Default)]
pub struct HubInfo {
    /// The first INFO.
    pub info: ServerInfo,
    /// The account the credentials bound to (`remote_account` of the `connect_info` INFO).
    pub account: Option<String>,
    /// What twig may subscribe to (LS+), from the `connect_info` INFO.
    pub import: Option<SubjectPermission>,
    /// What twig may publish to the hub (LMSG), from the `connect_info` INFO.
    pub export: Option<SubjectPermission>,
    /// Compression mode twig asked for.
    pub compression: &'static str,
}

/// One uplink connection's protocol state.
pub struct Session {
    cfg: SessionConfig,
    creds: Credentials,
    phase: Phase,
    deadline: Option<Instant>,
    next_ping: Instant,
    pings_out: u32,
    ping_sent: Option<Instant>,
    rtt: Option<Duration>,
    hub: HubInfo,
}

impl Session {
    /// A session for a connection that just opened (TCP and TLS done) at `now`.
    pub fn new(cfg: SessionConfig, creds: Credentials, now: Instant) -> Session {
        let deadline = Some(now + cfg.first_info_timeout);
        Session {
            next_ping: now + cfg.ping_interval,
            cfg,
            creds,
            phase: Phase::AwaitInfo,
            deadline,
            pings_out: 0,
            ping_sent: None,
            rtt: None,
            hub: HubInfo::default(),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// What is known about the hub (complete once [`Phase::Connected`]).
    pub fn hub(&self) -> &HubInfo {
        &self.hub
    }

    /// Round-trip time of the last PING, if one was answered.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Handles one op from the hub.
    pub fn handle<'a>(&mut self, now: Instant, op: Op<'a>) -> Result<Step<'a>, SessionError> {
        if let Op::Err(text) = op {
            return Err(SessionError::Hub(
                String::from_utf8_lossy(text).into_owned(),
            ));
        }
        match self.phase {
            Phase::AwaitInfo => match op {
                Op::Info(json) => self.first_info(now, json),
                _ => Err(SessionError::Protocol("expected INFO first")),
            },
            Phase::AwaitConnectInfo => match op {
                Op::Info(json) => {
                    let info = ServerInfo::parse(json).map_err(|_| SessionError::BadInfo)?;
                    if info.connect_info {
                        self.confirm(now, info);
                        Ok(Step::Connected)
                    } else {
                        Ok(urls_step(info))
                    }
                }
                Op::Ping => Ok(Step::SendStatic(b"PONG\r\n")),
                Op::Pong | Op::Ok => Ok(Step::Nothing),
                _ => Err(SessionError::Protocol(
                    "data before the hub confirmed CONNECT",
                )),
            },
            Phase::Connected => {
                // Any data from the hub proves the link alive (see the module docs).
                self.pings_out = 0;
                match op {
                    Op::Ping => Ok(Step::SendStatic(b"PONG\r\n")),
                    Op::Pong => {
                        if let Some(sent) = self.ping_sent.take() {
                            self.rtt = Some(now.saturating_duration_since(sent));
                        }
                        Ok(Step::Nothing)
                    }
                    Op::Ok => Ok(Step::Nothing),
                    Op::Info(json) => {
                        let info = ServerInfo::parse(json).map_err(|_| SessionError::BadInfo)?;
                        Ok(urls_step(info))
                    }
                    Op::LsPlus { subject, .. } if subject == self.cfg.lds.as_bytes() => {
                        Err(SessionError::Loop)
                    }
                    Op::LsPlus { .. } | Op::LsMinus { .. } | Op::Lmsg { .. } => Ok(Step::Data(op)),
                    _ => Err(SessionError::Protocol("an op a hub never sends")),
                }
            }
        }
    }

    /// Checks the timers at `now`: handshake deadlines, PINGs, staleness.
    pub fn poll(&mut self, now: Instant) -> Result<Step<'static>, SessionError> {
        match self.phase {
            Phase::AwaitInfo | Phase::AwaitConnectInfo => {
                if self.deadline.is_some_and(|d| now >= d) {
                    return Err(if self.phase == Phase::AwaitInfo {
                        SessionError::InfoTimeout(self.cfg.first_info_timeout)
                    } else {
                        SessionError::ConnectTimeout(CONNECT_INFO_TIMEOUT)
                    });
                }
                Ok(Step::Nothing)
            }
            Phase::Connected => {
                if now < self.next_ping {
                    return Ok(Step::Nothing);
                }
                if self.pings_out >= self.cfg.ping_max {
                    return Err(SessionError::Stale);
                }
                self.pings_out += 1;
                self.next_ping = now + self.cfg.ping_interval;
                self.ping_sent.get_or_insert(now);
                Ok(Step::SendStatic(b"PING\r\n"))
            }
        }
    }

    /// When [`Session::poll`] has something to do next.
    pub fn poll_at(&self) -> Instant {
        match self.phase {
            Phase::Connected => self.next_ping,
            _ => self.deadline.unwrap_or(self.next_ping),
        }
    }

    fn first_info<'a>(&mut self, now: Instant, json: &[u8]) -> Result<Step<'a>, SessionError> {
        let info = ServerInfo::parse(json).map_err(|_| SessionError::BadInfo)?;
        if info.client_id == 0 || info.leafnode_urls.is_none() {
            return Err(SessionError::WrongPort);
        }
        // Declining compression: "off" is what a nats-server leaf configured without
        // compression answers a hub that offers it; a hub that does not know compression
        // gets "not supported" (a 2.9 hub ignores the key).
        let compression = if info.compression.is_some() {
            "off"
        } else {
            "not supported"
        };
        let mut connect = LeafConnect {
            version: Some(self.cfg.version.clone()),
            server_id: Some(self.cfg.server_id.clone()),
            name: Some(self.cfg.name.clone()),
            cluster: Some(self.cfg.name.clone()),
            headers: info.headers,
            compress_mode: Some(compression.to_string()),
            remote_account: Some("$G".to_string()),
            protocol: 1,
            deny_pub: (!self.cfg.deny_imports.is_empty()).then(|| self.cfg.deny_imports.clone()),
            ..LeafConnect::default()
        };
        self.creds.fill(info.nonce.as_deref(), &mut connect);
        let json = serde_json::to_vec(&ConnectWithTwigVersion {
            connect: &connect,
            twig_version: &self.cfg.twig_version,
        })
        .map_err(|_| SessionError::BadInfo)?;
        let mut line = Vec::with_capacity(json.len() + 10);
        line.extend_from_slice(b"CONNECT ");
        line.extend_from_slice(&json);
        line.extend_from_slice(b"\r\n");
        let on_connect = info.info_on_connect;
        self.hub = HubInfo {
            info,
            compression,
            ..HubInfo::default()
        };
        if on_connect {
            self.phase = Phase::AwaitConnectInfo;
            self.deadline = Some(now + CONNECT_INFO_TIMEOUT);
            Ok(Step::Send(line))
        } else {
            // Hubs before 2.2.2 never confirm; the link is up once CONNECT is out.
            self.up(now);
            Ok(Step::SendAndConnected(line))
        }
    }

    fn confirm(&mut self, now: Instant, info: ServerInfo) {
        self.hub.account = info.remote_account;
        self.hub.import = info.import;
        self.hub.export = info.export;
        if let Some(urls) = info.leafnode_urls {
            self.hub.info.leafnode_urls = Some(urls);
        }
        self.up(now);
    }

    fn up(&mut self, now: Instant) {
        self.phase = Phase::Connected;
        self.deadline = None;
        self.next_ping = now + FIRST_PING.min(self.cfg.ping_interval);
    }
}

/// twig-core's `LeafConnect` with `twig_version` after its fields.
#[derive(serde::Serialize)]
struct ConnectWithTwigVersion<'a> {
    #[serde(flatten)]
    connect: &'a LeafConnect,
    twig_version: &'a str,
}

fn urls_step(info: ServerInfo) -> Step<'static> {
    match info.leafnode_urls {
        Some(urls) if !urls.is_empty() => Step::Urls(urls),
        _ => Step::Nothing,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
