//! `compression` of a leafnode remote, as nats-server's remote `compression` option: a mode,
//! and for `s2_auto` the RTT thresholds at which the level steps up.
//!
//! ```toml
//! [[leafnodes.remotes]]
//! urls = ["nats-leaf://hub:7422"]
//! compression = "s2_auto"          # default; or off, accept, s2_fast, s2_better, s2_best, ...
//! # compression = true             # = s2_auto; false = off
//! # compression = { mode = "s2_auto", rtt_thresholds = ["10ms", "50ms", "100ms"] }
//! ```
//!
//! Names and aliases are nats-server's (`on`/`enabled` = `s2_auto`, `disabled` = `off`,
//! `fast` = `s2_fast`, ...; thresholds also as `thresholds`, `rtts`, `rtt`), and so are the
//! errors for thresholds out of order or too many.
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use twig_core::s2::mode::{Mode, Thresholds};

use super::values::parse_duration;

/// A remote's compression setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// The configured mode (what twig asks the hub for).
    pub mode: Mode,
    /// `s2_auto`'s RTT thresholds (the default 10ms, 50ms, 100ms unless configured).
    pub thresholds: Thresholds,
}

impl Default for Compression {
    /// nats-server's default for a remote: `s2_auto` with the default thresholds.
    fn default() -> Compression {
        Compression {
            mode: Mode::Auto,
            thresholds: Thresholds::default(),
        }
    }
}

impl Compression {
    /// A mode with the default thresholds.
    pub fn mode(mode: Mode) -> Compression {
        Compression {
            mode,
            ..Compression::default()
        }
    }
}

fn mode_of<E: de::Error>(s: &str) -> Result<Mode, E> {
    Mode::parse_config(s).ok_or_else(|| {
        E::custom(format!(
            "unsupported compression mode {s:?} (use off, accept, s2_auto, s2_uncompressed, \
             s2_fast, s2_better or s2_best)"
        ))
    })
}

struct CompressionVisitor;

impl<'de> Visitor<'de> for CompressionVisitor {
    type Value = Compression;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a compression mode, true/false, or { mode, rtt_thresholds }")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Compression, E> {
        Ok(Compression::mode(if v { Mode::Auto } else { Mode::Off }))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Compression, E> {
        Ok(Compression::mode(mode_of(v)?))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Compression, A::Error> {
        let mut mode = None;
        let mut rtts: Vec<Duration> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.to_ascii_lowercase().as_str() {
                "mode" => mode = Some(mode_of(&map.next_value::<String>()?)?),
                "rtt_thresholds" | "thresholds" | "rtts" | "rtt" => {
                    for s in map.next_value::<Vec<String>>()? {
                        rtts.push(parse_duration(&s).map_err(de::Error::custom)?);
                    }
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown field {other:?} in compression (use mode and rtt_thresholds)"
                    )));
                }
            }
        }
        // nats-server: a block without a mode is s2_auto (its default for remotes).
        let mode = mode.unwrap_or(Mode::Auto);
        // Thresholds only mean something for s2_auto; nats-server ignores them otherwise.
        let thresholds = if mode == Mode::Auto {
            Thresholds::new(&rtts).map_err(de::Error::custom)?
        } else {
            Thresholds::default()
        };
        Ok(Compression { mode, thresholds })
    }
}

/// serde adapter for [`Compression`].
pub fn de_compression<'de, D: Deserializer<'de>>(d: D) -> Result<Compression, D::Error> {
    d.deserialize_any(CompressionVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "de_compression")]
        compression: Compression,
    }

    fn parse(v: &str) -> Result<Compression, String> {
        toml::from_str::<T>(&format!("compression = {v}"))
            .map(|t| t.compression)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn modes_as_nats_server_names_them() {
        assert_eq!(parse("\"s2_best\"").unwrap().mode, Mode::Best);
        assert_eq!(parse("\"Fast\"").unwrap().mode, Mode::Fast);
        assert_eq!(parse("\"on\"").unwrap().mode, Mode::Auto);
        assert_eq!(parse("true").unwrap().mode, Mode::Auto);
        assert_eq!(parse("false").unwrap().mode, Mode::Off);
        assert_eq!(parse("\"accept\"").unwrap().mode, Mode::Accept);
        let e = parse("\"zstd\"").unwrap_err();
        assert!(e.contains("unsupported compression mode \"zstd\""), "{e}");
    }

    #[test]
    fn thresholds_are_checked_as_nats_server_does() {
        let c = parse("{ mode = \"s2_auto\", rtt_thresholds = [\"5ms\", \"20ms\"] }").unwrap();
        assert_eq!(
            c.thresholds.as_slice(),
            [Duration::from_millis(5), Duration::from_millis(20)]
        );
        let c = parse("{ rtts = [\"0\", \"0\", \"30ms\"] }").unwrap();
        assert_eq!(c.mode, Mode::Auto);
        assert_eq!(c.thresholds.as_slice().len(), 3);
        let e = parse("{ mode = \"auto\", rtt_thresholds = [\"50ms\", \"10ms\"] }").unwrap_err();
        assert!(e.contains("ascending"), "{e}");
        let e = parse("{ mode = \"auto\", rtt_thresholds = [\"0s\"] }").unwrap_err();
        assert!(e.contains("at least one RTT threshold"), "{e}");
        let e = parse("{ mode = \"auto\", colour = 1 }").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        // Not s2_auto: the thresholds are not used.
        let c = parse("{ mode = \"s2_fast\", rtt = [\"9ms\"] }").unwrap();
        assert_eq!(c.thresholds, Thresholds::default());
    }
}
