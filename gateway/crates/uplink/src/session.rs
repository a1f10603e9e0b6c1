//! The leafnode handshake and keepalive of one uplink connection, as a state machine: ops in
//! (parsed by twig-core's wire parser), steps out, time passed in (`handle(now, op)`,
//! `poll(now)`, `poll_at()`). No socket, clock or file here; the shell in `mod.rs` does I/O.
//!
//! The sequence (reference §2.2-2.4), as a nats-server leaf soliciting a hub:
//! 1. wait for the hub's INFO (within `first_info_timeout`); refuse it as "wrong port" when
//!    `client_id` is 0 or `leafnode_urls` is missing, as nats-server does;
//! 2. compression (nats-server 2.10+, `negotiateLeafCompression`): when the remote's mode wants
//!    it and the hub offers it, send an INFO of twig's own with the chosen `compression`
//!    ([`Step::StartCompression`]); the shell flushes it plain and from then on both
//!    directions are S2 streams; the hub answers with its INFO again, compressed, and that INFO
//!    is the one CONNECT answers. `s2_auto` picks its first level from the time between the
//!    connection and the hub's INFO (about one round trip, as nats-server measures it), then
//!    follows the RTT of every PONG ([`Session::level`]);
//! 3. send CONNECT (twig-core's `LeafConnect`: no `lang`, `is_hub` false so omitted,
//!    `compress_mode` the negotiated mode: "off" to a hub that offered compression twig does
//!    not want, "not supported" to a hub before 2.10);
//! 4. if the INFO said `info_on_connect`, wait (2 s, as nats-server) for the INFO with
//!    `connect_info`, which names the account and carries the permissions;
//! 5. connected: the shell sends the interest dump. Then PING every `ping_interval`; the link is
//!    stale after `ping_max` PINGs with no answer *and no other data* from the hub: a PONG stuck
//!    behind bulk data on a slow link does not kill a link that is plainly delivering.
use std::time::{Duration, Instant};

use twig_config::Compression;
use twig_core::s2::Level;
use twig_core::s2::mode::{LeafPlan, Mode, leaf_plan};
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
    /// The remote's compression mode and `s2_auto` thresholds.
    pub compression: Compression,
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
    /// No compressed INFO after twig's INFO that started compression.
    #[error("no compressed INFO from the hub within {0:?} after negotiating compression")]
    CompressedInfoTimeout(Duration),
    /// The hub offered a compression mode nats-server would not know either.
    #[error("unsupported compression mode {0:?} offered by the hub")]
    UnknownCompression(String),
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
    /// twig's INFO sent, both directions S2 now; waiting for the hub's INFO again.
    AwaitCompressedInfo,
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
    /// Write this INFO plain and flush it, then switch both directions to S2, writing at
    /// `level` (the hub's next bytes are compressed).
    StartCompression {
        /// twig's INFO line.
        info: Vec<u8>,
        /// The encoder's first level.
        level: Level,
    },
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
#[derive(Debug, Clone)]
pub struct HubInfo {
    /// The first INFO.
    pub info: ServerInfo,
    /// The account the credentials bound to (`remote_account` of the `connect_info` INFO).
    pub account: Option<String>,
    /// What twig may subscribe to (LS+), from the `connect_info` INFO.
    pub import: Option<SubjectPermission>,
    /// What twig may publish to the hub (LMSG), from the `connect_info` INFO.
    pub export: Option<SubjectPermission>,
    /// The compression mode negotiated (CONNECT `compress_mode`; for `s2_auto` the level it
    /// started at).
    pub compression: Mode,
}

impl Default for HubInfo {
    fn default() -> HubInfo {
        HubInfo {
            info: ServerInfo::default(),
            account: None,
            import: None,
            export: None,
            compression: Mode::NotSupported,
        }
    }
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
    /// When the connection opened: `s2_auto`'s first RTT is the time to the hub's INFO.
    opened: Instant,
    /// The level twig compresses at, while compressing.
    level: Option<Level>,
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
            opened: now,
            level: None,
        }
    }

    /// The level twig's writer compresses at (`None` = no compression). With `s2_auto` it
    /// follows the RTT of the last PONG, as nats-server's `updateS2AutoCompressionLevel`.
    pub fn level(&self) -> Option<Level> {
        self.level
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
            Phase::AwaitCompressedInfo => match op {
                Op::Info(json) => {
                    let info = ServerInfo::parse(json).map_err(|_| SessionError::BadInfo)?;
                    self.connect(now, info)
                }
                _ => Err(SessionError::Protocol(
                    "expected the hub's compressed INFO after negotiating compression",
                )),
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
                            let rtt = now.saturating_duration_since(sent);
                            self.rtt = Some(rtt);
                            let c = &self.cfg.compression;
                            if self.level.is_some() && c.mode == Mode::Auto {
                                self.level = Some(c.thresholds.level_for(rtt));
                            }
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
            Phase::AwaitInfo | Phase::AwaitCompressedInfo | Phase::AwaitConnectInfo => {
                if self.deadline.is_some_and(|d| now >= d) {
                    return Err(match self.phase {
                        Phase::AwaitInfo => SessionError::InfoTimeout(self.cfg.first_info_timeout),
                        Phase::AwaitCompressedInfo => {
                            SessionError::CompressedInfoTimeout(self.compressed_info_timeout())
                        }
                        _ => SessionError::ConnectTimeout(CONNECT_INFO_TIMEOUT),
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
        let c = &self.cfg.compression;
        let offered = info.compression.as_deref();
        let plan = leaf_plan(
            c.mode,
            &c.thresholds,
            offered,
            now.saturating_duration_since(self.opened),
        )
        .map_err(|_| SessionError::UnknownCompression(offered.unwrap_or_default().into()))?;
        match plan {
            LeafPlan::Plain { connect } => {
                self.hub.compression = connect;
                self.connect(now, info)
            }
            LeafPlan::Compress {
                info: mode,
                level,
                connect,
            } => {
                // What a nats-server leaf without a leafnode listener sends: its ids, a
                // non-zero client id and the mode.
                let ours = serde_json::json!({
                    "server_id": self.cfg.server_id,
                    "name": self.cfg.name,
                    "version": self.cfg.version,
                    "proto": 1,
                    "headers": info.headers,
                    "client_id": 1,
                    "compression": mode.as_str(),
                });
                let mut line = b"INFO ".to_vec();
                line.extend_from_slice(ours.to_string().as_bytes());
                line.extend_from_slice(b"\r\n");
                self.hub = HubInfo {
                    info,
                    compression: connect,
                    ..HubInfo::default()
                };
                self.level = Some(level);
                self.phase = Phase::AwaitCompressedInfo;
                self.deadline = Some(now + self.compressed_info_timeout());
                Ok(Step::StartCompression { info: line, level })
            }
        }
    }

    /// The hub's compressed INFO comes one round trip after twig's INFO.
    fn compressed_info_timeout(&self) -> Duration {
        self.cfg.first_info_timeout.max(CONNECT_INFO_TIMEOUT)
    }

    /// CONNECT in answer to `info` (the first INFO, or the compressed one).
    fn connect<'a>(&mut self, now: Instant, info: ServerInfo) -> Result<Step<'a>, SessionError> {
        let mut connect = LeafConnect {
            version: Some(self.cfg.version.clone()),
            server_id: Some(self.cfg.server_id.clone()),
            name: Some(self.cfg.name.clone()),
            cluster: Some(self.cfg.name.clone()),
            headers: info.headers,
            compress_mode: Some(self.hub.compression.as_str().to_string()),
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
        self.hub.info = info;
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
