//! `[[sync]]`: durable pull consumers on hub JetStream streams whose messages twig delivers to
//! local subscribers (see the `sync` component).
//!
//! ```toml
//! [[sync]]
//! stream = "COMMANDS"                  # the hub stream
//! durable = "edge-17"                  # the durable pull consumer on it
//! filter_subject = "cmd.edge-17.>"     # only when twig creates the consumer
//! api_prefix = "$JS.hub.API"           # hub with `jetstream { domain: hub }`
//! ```
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid, values};

/// One `[[sync]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The hub stream's name.
    pub stream: String,
    /// The durable consumer's name.
    pub durable: String,
    /// Subject filter of the consumer twig creates (absent: the whole stream).
    #[serde(default)]
    pub filter_subject: Option<String>,
    /// The hub's JetStream API prefix: `$JS.API` (default) or `$JS.<domain>.API` for a hub
    /// with a JetStream domain (unambiguous when several JetStream servers are reachable).
    #[serde(default = "default_api_prefix")]
    pub api_prefix: String,
    /// Messages asked for per pull request (default 100).
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// How long the hub keeps a pull request open (default 30s).
    #[serde(default = "default_expires", deserialize_with = "values::de_duration")]
    pub expires: Duration,
    /// Which `[[leafnodes.remotes]]` entry (by position, default 0) must be up to pull.
    #[serde(default)]
    pub remote: usize,
    /// Create the consumer when it is missing (default true). An existing consumer is used
    /// as it is, whatever its configuration.
    #[serde(default = "default_true")]
    pub create: bool,
    /// Where a created consumer starts: `all` (default) or `new`.
    #[serde(default)]
    pub deliver_policy: DeliverPolicyConfig,
    /// `ack_wait` of a created consumer (default 30s): how long before the hub redelivers a
    /// message whose ack it has not seen (e.g. lost with the link).
    #[serde(default = "default_ack_wait", deserialize_with = "values::de_duration")]
    pub ack_wait: Duration,
    /// `max_ack_pending` of a created consumer (default 1000).
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: u32,
    /// Time the hub has to answer the create request (default 5s).
    #[serde(default = "default_timeout", deserialize_with = "values::de_duration")]
    pub request_timeout: Duration,
    /// Wait after a failed create or a refused pull before trying again (default 2s).
    #[serde(default = "default_retry", deserialize_with = "values::de_duration")]
    pub retry_delay: Duration,
    /// A message no local subscriber takes (no client, no MQTT mapping interested at that
    /// moment) is given back to the hub (`-NAK` with `retry_delay`) instead of being acked, so
    /// commands wait in the hub stream until their subscriber is there (default true). With
    /// false, such messages are acked and gone, as core NATS would drop them.
    #[serde(default = "default_true")]
    pub require_subscriber: bool,
    /// The file remembering which stream sequences were delivered (default
    /// `<store_dir>/sync-<stream>-<durable>.state`).
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// Most delivered sequences remembered while their acks are unconfirmed (default 10000);
    /// beyond it the lowest are forgotten.
    #[serde(default = "default_remembered")]
    pub max_remembered: usize,
    /// Bytes the messages pulled from the hub may hold while they wait for local delivery
    /// (default 16 MiB); beyond it a message is dropped and the hub redelivers it after
    /// `ack_wait`.
    #[serde(default = "default_queue_bytes", deserialize_with = "values::de_size")]
    pub queue_bytes: usize,
}

fn default_queue_bytes() -> usize {
    16 * 1024 * 1024
}

/// `deliver_policy` of a consumer twig creates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicyConfig {
    /// Every message the stream holds.
    #[default]
    All,
    /// Only messages stored after the consumer was created.
    New,
}

fn default_api_prefix() -> String {
    "$JS.API".into()
}
fn default_batch() -> u32 {
    100
}
fn default_expires() -> Duration {
    Duration::from_secs(30)
}
fn default_true() -> bool {
    true
}
fn default_ack_wait() -> Duration {
    Duration::from_secs(30)
}
fn default_max_ack_pending() -> u32 {
    1000
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_retry() -> Duration {
    Duration::from_secs(2)
}
fn default_remembered() -> usize {
    10_000
}

impl SyncConfig {
    /// The state file in force.
    pub fn path(&self, store_dir: &Path) -> PathBuf {
        self.state_file.clone().unwrap_or_else(|| {
            store_dir.join(format!("sync-{}-{}.state", self.stream, self.durable))
        })
    }
}

/// A JetStream stream or consumer name: no blanks, `.`, `*`, `>`, or path separators.
fn bad_name(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

/// Checks each entry against the remotes configured (when there are any).
pub fn validate(sync: &[SyncConfig], remotes: usize) -> Result<(), ConfigError> {
    for (i, s) in sync.iter().enumerate() {
        let opt = |f: &str| format!("sync[{i}].{f}");
        if bad_name(&s.stream) {
            return Err(invalid(
                opt("stream"),
                format!("{:?} is not a stream name", s.stream),
            ));
        }
        if bad_name(&s.durable) {
            return Err(invalid(
                opt("durable"),
                format!("{:?} is not a consumer name", s.durable),
            ));
        }
        if sync[..i]
            .iter()
            .any(|o| o.stream == s.stream && o.durable == s.durable)
        {
            return Err(invalid(opt("durable"), "the same consumer is listed twice"));
        }
        if let Some(f) = &s.filter_subject
            && twig_core::subject::validate(f.as_bytes()).is_err()
        {
            return Err(invalid(
                opt("filter_subject"),
                format!("{f:?} is not a subject"),
            ));
        }
        let prefix_ok = s.api_prefix.starts_with("$JS.")
            && s.api_prefix.ends_with(".API")
            && twig_core::subject::validate(s.api_prefix.as_bytes()).is_ok()
            && !s.api_prefix.contains(['*', '>']);
        if !prefix_ok {
            return Err(invalid(
                opt("api_prefix"),
                format!("{:?} is not `$JS.API` or `$JS.<domain>.API`", s.api_prefix),
            ));
        }
        if s.batch == 0 || s.batch > 10_000 {
            return Err(invalid(opt("batch"), "must be from 1 to 10000"));
        }
        if s.expires < Duration::from_millis(100) {
            return Err(invalid(opt("expires"), "must be at least 100ms"));
        }
        // No remotes at all may still get one from `--leaf` (flags apply after loading);
        // The `sync` component refuses to start without it.
        if remotes > 0 && s.remote >= remotes {
            return Err(invalid(
                opt("remote"),
                format!(
                    "there is no [[leafnodes.remotes]] entry number {}",
                    s.remote
                ),
            ));
        }
        for (name, d) in [
            ("ack_wait", s.ack_wait),
            ("request_timeout", s.request_timeout),
            ("retry_delay", s.retry_delay),
        ] {
            if d.is_zero() {
                return Err(invalid(opt(name), "must be longer than zero"));
            }
        }
        if s.max_ack_pending == 0 {
            return Err(invalid(opt("max_ack_pending"), "must be at least 1"));
        }
        if s.max_remembered < s.batch as usize {
            return Err(invalid(
                opt("max_remembered"),
                "must be at least `batch`, or a batch could not be remembered",
            ));
        }
    }
    Ok(())
}

/// Subjects remote `remote` must not send twig as plain messages: each `[[sync]]` filter on
/// it. Without this, a subscriber on twig would get a command twice while the link is up: the
/// hub forwards the publish itself (core NATS interest over the leaf) and the consumer
/// delivers the stored copy. nats-server checked on the wire: the deny stops the plain
/// publish, not the consumer's delivery (it travels on the pull request's inbox).
pub fn deny_imports(config: &super::Config, remote: usize) -> Vec<String> {
    config
        .sync
        .iter()
        .filter(|s| s.remote == remote)
        .filter_map(|s| s.filter_subject.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::{Config, DeliverPolicyConfig};

    const REMOTE: &str = "[[leafnodes.remotes]]\nurls = [\"nats-leaf://hub:7422\"]\n";

    fn parse(sync: &str) -> Result<Config, String> {
        Config::from_toml(&format!("{REMOTE}[[sync]]\n{sync}")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_a_full_entry() {
        let c = parse("stream = \"CMD\"\ndurable = \"gw\"\n").unwrap();
        let s = &c.sync[0];
        assert_eq!(s.api_prefix, "$JS.API");
        assert_eq!((s.batch, s.remote, s.create), (100, 0, true));
        assert_eq!(s.deliver_policy, DeliverPolicyConfig::All);
        assert!(s.require_subscriber);
        assert_eq!(
            s.path(std::path::Path::new("/var/twig")),
            std::path::Path::new("/var/twig/sync-CMD-gw.state")
        );
        let c = parse(
            "stream = \"CMD\"\ndurable = \"gw\"\nfilter_subject = \"cmd.gw.>\"\n\
             api_prefix = \"$JS.hub.API\"\ndeliver_policy = \"new\"\nbatch = 5\nexpires = \"1s\"\n\
             state_file = \"/tmp/x.state\"\n",
        )
        .unwrap();
        assert_eq!(c.sync[0].deliver_policy, DeliverPolicyConfig::New);
        assert_eq!(crate::sync::deny_imports(&c, 0), ["cmd.gw.>"]);
        assert!(crate::sync::deny_imports(&c, 1).is_empty());
    }

    #[test]
    fn mistakes_name_the_option() {
        for (entry, option) in [
            ("stream = \"a.b\"\ndurable = \"gw\"\n", "sync[0].stream"),
            ("stream = \"S\"\ndurable = \"\"\n", "sync[0].durable"),
            (
                "stream = \"S\"\ndurable = \"d\"\napi_prefix = \"JS.API\"\n",
                "api_prefix",
            ),
            (
                "stream = \"S\"\ndurable = \"d\"\napi_prefix = \"$JS.*.API\"\n",
                "api_prefix",
            ),
            (
                "stream = \"S\"\ndurable = \"d\"\nfilter_subject = \"a..b\"\n",
                "filter_subject",
            ),
            (
                "stream = \"S\"\ndurable = \"d\"\nremote = 1\n",
                "sync[0].remote",
            ),
            ("stream = \"S\"\ndurable = \"d\"\nbatch = 0\n", "batch"),
            (
                "stream = \"S\"\ndurable = \"d\"\nexpires = \"10ms\"\n",
                "expires",
            ),
            (
                "stream = \"S\"\ndurable = \"d\"\nretry_delay = \"0s\"\n",
                "retry_delay",
            ),
            (
                "stream = \"S\"\ndurable = \"d\"\nbatch = 50\nmax_remembered = 10\n",
                "max_remembered",
            ),
            (
                "stream = \"S\"\ndurable = \"d\"\ncolour = 1\n",
                "unknown field",
            ),
        ] {
            let e = parse(entry).unwrap_err();
            assert!(e.contains(option), "{entry}: {e}");
        }
        let twice = "stream = \"S\"\ndurable = \"d\"\n[[sync]]\nstream = \"S\"\ndurable = \"d\"\n";
        assert!(parse(twice).unwrap_err().contains("twice"));
        // Without any remote the file loads (`--leaf` may add one); starting refuses.
        assert!(Config::from_toml("[[sync]]\nstream = \"S\"\ndurable = \"d\"\n").is_ok());
    }
}
