//! Leafnode compression modes and their negotiation, as nats-server 2.10+ does it
//! (`server.go`: `validateAndNormalizeCompressionOption`, `selectCompressionMode`,
//! `selectS2AutoModeBasedOnRTT`; `leafnode.go`: `negotiateLeafCompression`).
//!
//! The soliciting side (twig's uplink) reads the hub's first INFO. If its own mode wants
//! compression and the hub offers it, it sends an INFO of its own carrying
//! [`LeafPlan::Compress::info`], flushes it uncompressed, and from then on reads and writes S2
//! streams; the hub answers with a compressed INFO and the CONNECT (with `compress_mode`) goes
//! out compressed. Otherwise it sends CONNECT at once with [`LeafPlan::Plain::connect`]. The
//! two directions may use different levels: each side compresses at its own.

use core::time::Duration;

use super::Level;

/// A compression mode (the values of `compression` in INFO and `compress_mode` in CONNECT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `not supported`: a peer older than 2.10 (no `compression` key at all).
    NotSupported,
    /// `off`.
    Off,
    /// `accept`: compress only if the peer wants to.
    Accept,
    /// `s2_auto`: the level follows the RTT ([`Thresholds`]). nats-server's default.
    Auto,
    /// `s2_uncompressed`.
    Uncompressed,
    /// `s2_fast`.
    Fast,
    /// `s2_better`.
    Better,
    /// `s2_best`.
    Best,
}

impl Mode {
    /// Parses a configured value as nats-server does: case-insensitive, with its aliases
    /// (`on`/`enabled`/`true` = `s2_auto`, `disabled`/`false` = `off`, `fast` = `s2_fast`, ...).
    pub fn parse_config(s: &str) -> Option<Mode> {
        const NAMES: [(&str, Mode); 18] = [
            ("on", Mode::Auto),
            ("enabled", Mode::Auto),
            ("true", Mode::Auto),
            ("auto", Mode::Auto),
            ("s2_auto", Mode::Auto),
            ("not supported", Mode::NotSupported),
            ("not_supported", Mode::NotSupported),
            ("disabled", Mode::Off),
            ("off", Mode::Off),
            ("false", Mode::Off),
            ("accept", Mode::Accept),
            ("fast", Mode::Fast),
            ("s2_fast", Mode::Fast),
            ("better", Mode::Better),
            ("s2_better", Mode::Better),
            ("best", Mode::Best),
            ("s2_best", Mode::Best),
            ("s2_uncompressed", Mode::Uncompressed),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|&(_, m)| m)
    }

    /// Parses a value received in INFO/CONNECT (exact wire names only).
    pub fn from_wire(s: &str) -> Option<Mode> {
        [
            Mode::NotSupported,
            Mode::Off,
            Mode::Accept,
            Mode::Auto,
            Mode::Uncompressed,
            Mode::Fast,
            Mode::Better,
            Mode::Best,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::NotSupported => "not supported",
            Mode::Off => "off",
            Mode::Accept => "accept",
            Mode::Auto => "s2_auto",
            Mode::Uncompressed => "s2_uncompressed",
            Mode::Fast => "s2_fast",
            Mode::Better => "s2_better",
            Mode::Best => "s2_best",
        }
    }

    /// Whether this side will try to negotiate compression (`needsCompression`).
    pub fn negotiates(self) -> bool {
        !matches!(self, Mode::Off | Mode::NotSupported)
    }

    /// The encoder level of a concrete mode (`None` for off, accept, auto, not supported).
    pub fn level(self) -> Option<Level> {
        match self {
            Mode::Uncompressed => Some(Level::Uncompressed),
            Mode::Fast => Some(Level::Fast),
            Mode::Better => Some(Level::Better),
            Mode::Best => Some(Level::Best),
            _ => None,
        }
    }
}

/// The peer sent a `compression` value nats-server would not know either; it closes the
/// connection with `-ERR 'unsupported route compression mode "<value>"'`... for leafs too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownMode;

/// `selectCompressionMode(ours, theirs)`: what this side uses given the peer's advertised
/// mode (`None` = the key is absent, an old server). `ours` must negotiate.
pub fn select(ours: Mode, theirs: Option<&str>) -> Result<Mode, UnknownMode> {
    let theirs = match theirs {
        None | Some("") => return Ok(Mode::NotSupported),
        Some(t) => Mode::from_wire(t).ok_or(UnknownMode)?,
    };
    Ok(match theirs {
        Mode::NotSupported => Mode::NotSupported,
        Mode::Off => Mode::Off,
        Mode::Accept if ours == Mode::Accept => Mode::Off,
        Mode::Accept => ours,
        // One side accepting takes the other's mode, except auto which becomes fast.
        Mode::Auto if ours == Mode::Accept => Mode::Fast,
        m if ours == Mode::Accept => m,
        _ => ours,
    })
}

/// `s2_auto`'s RTT thresholds: up to four ascending limits for uncompressed, fast, better,
/// best; a zero disables that level. Default 10 ms, 50 ms, 100 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    limits: [Duration; 4],
    len: usize,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            limits: [
                Duration::from_millis(10),
                Duration::from_millis(50),
                Duration::from_millis(100),
                Duration::ZERO,
            ],
            len: 3,
        }
    }
}

impl Thresholds {
    /// Validates configured thresholds as nats-server does: non-zero values ascending,
    /// trailing zeros dropped, one to four left. The error is nats-server's sentence.
    pub fn new(values: &[Duration]) -> Result<Thresholds, &'static str> {
        if values.is_empty() {
            return Ok(Thresholds::default());
        }
        if values.len() > 4 && values[4..].iter().any(|d| !d.is_zero()) {
            return Err("compression mode \"s2_auto\" should have no more than 4 RTT thresholds");
        }
        let mut limits = [Duration::ZERO; 4];
        for (i, &d) in values.iter().take(4).enumerate() {
            if !d.is_zero() && values[..i].iter().any(|&v| d < v) {
                return Err("RTT threshold values should be in ascending order");
            }
            limits[i] = d;
        }
        let len = values
            .iter()
            .take(4)
            .rposition(|d| !d.is_zero())
            .map_or(0, |i| i + 1);
        if len == 0 {
            return Err("compression mode \"s2_auto\" requires at least one RTT threshold");
        }
        Ok(Thresholds { limits, len })
    }

    /// The limits in force.
    pub fn as_slice(&self) -> &[Duration] {
        &self.limits[..self.len]
    }

    /// `selectS2AutoModeBasedOnRTT`: the level for a measured RTT.
    pub fn level_for(&self, rtt: Duration) -> Level {
        let t = self.as_slice();
        let idx =
            t.iter()
                .position(|&d| rtt <= d)
                .unwrap_or(if t.len() >= 3 { 3 } else { t.len() - 1 });
        match idx {
            0 => Level::Uncompressed,
            1 => Level::Fast,
            2 => Level::Better,
            _ => Level::Best,
        }
    }
}

/// What the soliciting side does after the hub's first INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafPlan {
    /// Send an INFO with `"compression": info` (and a non-zero `client_id`), flush it, switch
    /// both directions to S2 writing at `level`, wait for the hub's compressed INFO, then send
    /// CONNECT with `"compress_mode": connect`.
    Compress {
        /// The `compression` value of the INFO to send.
        info: Mode,
        /// Our encoder's level.
        level: Level,
        /// The `compress_mode` value of CONNECT.
        connect: Mode,
    },
    /// No compression: send CONNECT with `"compress_mode": connect` now.
    Plain {
        /// The `compress_mode` value of CONNECT.
        connect: Mode,
    },
}

/// The leaf side's decision, as `processLeafnodeInfo`/`negotiateLeafCompression` make it.
/// `rtt` is what `s2_auto` starts from: nats-server uses the time since the TCP connection
/// began (the RTT is re-measured on every PONG later; see [`Thresholds::level_for`]).
pub fn leaf_plan(
    ours: Mode,
    thresholds: &Thresholds,
    hub_compression: Option<&str>,
    rtt: Duration,
) -> Result<LeafPlan, UnknownMode> {
    if !ours.negotiates() {
        let connect = match hub_compression {
            None | Some("") => Mode::NotSupported,
            _ if ours == Mode::NotSupported => Mode::NotSupported,
            _ => Mode::Off,
        };
        return Ok(LeafPlan::Plain { connect });
    }
    let mut mode = select(ours, hub_compression)?;
    if mode == Mode::Auto {
        mode = match thresholds.level_for(rtt) {
            Level::Uncompressed => Mode::Uncompressed,
            Level::Fast => Mode::Fast,
            Level::Better => Mode::Better,
            Level::Best => Mode::Best,
        };
    }
    Ok(match mode.level() {
        Some(level) => LeafPlan::Compress {
            info: if ours == Mode::Auto { Mode::Auto } else { mode },
            level,
            connect: mode,
        },
        None => LeafPlan::Plain { connect: mode },
    })
}
