//! What a reload (SIGHUP) of `[[streams]]` may change in running streams, decided without
//! IO: [`plan`] compares the running entries with the new ones by name.
//!
//! - Reloaded, sent to the stream's thread ([`Limits`]): `max_msgs`, `max_age`, `when_full`,
//!   `sync`, `duplicate_window`, `max_duplicate_ids`. The thread enforces them at once, as
//!   after a publish: a lower `max_msgs` or `max_age` marks the oldest messages done
//!   (counted in `/jsz` `expired`), and `/jsz` shows the new values.
//! - Named as needing a restart: a stream added or removed, and a changed `subjects`, `file`,
//!   `max_bytes` (the file's size: the log's ring is laid out over it), `queue_bytes` (the
//!   queue is sized at start), `forward`,
//!   `forward_window`, `forward_ack_timeout`, `forward_remote`, `forward_priority` (the
//!   forwarder's state machine and priority board are built with them).
//!
//! A value that cannot be used at all (a `max_bytes` the file format does not allow) fails
//! the config's validation, which refuses the whole reload before this runs.

use std::time::Duration;

use twig_config::{StreamConfig, SyncPolicy, WhenFullConfig};

/// The limits of one stream that a reload puts in force on its thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// `max_msgs` (0 = no limit).
    pub max_msgs: u64,
    /// `max_age`.
    pub max_age: Option<Duration>,
    /// `when_full`.
    pub when_full: WhenFullConfig,
    /// `sync`.
    pub sync: SyncPolicy,
    /// `duplicate_window`.
    pub duplicate_window: Duration,
    /// `max_duplicate_ids`.
    pub max_duplicate_ids: usize,
}

impl Limits {
    /// The reloadable limits of `cfg`.
    pub fn of(cfg: &StreamConfig) -> Limits {
        Limits {
            max_msgs: cfg.max_msgs,
            max_age: cfg.max_age,
            when_full: cfg.when_full,
            sync: cfg.sync,
            duplicate_window: cfg.duplicate_window,
            max_duplicate_ids: cfg.max_duplicate_ids,
        }
    }

    /// Writes these limits into `cfg` (the rest of it stays).
    pub fn set_in(&self, cfg: &mut StreamConfig) {
        cfg.max_msgs = self.max_msgs;
        cfg.max_age = self.max_age;
        cfg.when_full = self.when_full;
        cfg.sync = self.sync;
        cfg.duplicate_window = self.duplicate_window;
        cfg.max_duplicate_ids = self.max_duplicate_ids;
    }
}

/// What a reload does to the running streams.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// New limits, by the running stream's position.
    pub limits: Vec<(usize, Limits)>,
    /// What keeps its running value until twig restarts, by name:
    /// `streams[NAME].max_bytes`, `streams[NAME] (added)`, `streams[NAME] (removed)`.
    pub restart: Vec<String>,
}

/// Compares the `running` streams with the `next` config's, by name.
pub fn plan(running: &[StreamConfig], next: &[StreamConfig]) -> Plan {
    let mut out = Plan::default();
    for (i, old) in running.iter().enumerate() {
        let Some(new) = next.iter().find(|n| n.name == old.name) else {
            out.restart.push(format!("streams[{}] (removed)", old.name));
            continue;
        };
        // Destructured without `..`: a new field must be sorted here to build.
        let StreamConfig {
            name: _,
            subjects,
            file,
            max_bytes,
            max_msgs: _,
            max_age: _,
            when_full: _,
            sync: _,
            duplicate_window: _,
            max_duplicate_ids: _,
            queue_bytes,
            forward,
            forward_window,
            forward_ack_timeout,
            forward_remote,
            forward_priority,
        } = old;
        macro_rules! restart {
            ($($field:ident),*) => {
                $(if *$field != new.$field {
                    out.restart.push(format!("streams[{}].{}", old.name, stringify!($field)));
                })*
            };
        }
        restart!(
            subjects,
            file,
            max_bytes,
            queue_bytes,
            forward,
            forward_window,
            forward_ack_timeout,
            forward_remote,
            forward_priority
        );
        let limits = Limits::of(new);
        if limits != Limits::of(old) {
            out.limits.push((i, limits));
        }
    }
    for new in next {
        if !running.iter().any(|o| o.name == new.name) {
            out.restart.push(format!("streams[{}] (added)", new.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str) -> StreamConfig {
        let text = format!("name = \"{name}\"\nsubjects = [\"{name}.>\"]\n");
        toml_stream(&text)
    }

    fn toml_stream(text: &str) -> StreamConfig {
        let c: twig_config::Config =
            twig_config::Config::from_toml(&format!("[[streams]]\n{text}")).unwrap();
        c.streams[0].clone()
    }

    #[test]
    fn limits_reload_and_the_layout_waits_for_a_restart() {
        let running = vec![stream("A"), stream("B")];
        let mut next = running.clone();
        next[0].max_msgs = 10;
        next[0].when_full = WhenFullConfig::Refuse;
        next[1].max_bytes *= 2;
        next[1].subjects.push("more".into());
        let p = plan(&running, &next);
        let mut want = Limits::of(&running[0]);
        want.max_msgs = 10;
        want.when_full = WhenFullConfig::Refuse;
        assert_eq!(p.limits, [(0, want)]);
        assert_eq!(p.restart, ["streams[B].subjects", "streams[B].max_bytes"]);
    }

    #[test]
    fn added_and_removed_streams_are_named() {
        let running = vec![stream("A"), stream("B")];
        let next = vec![stream("B"), stream("C")];
        let p = plan(&running, &next);
        assert!(p.limits.is_empty());
        assert_eq!(p.restart, ["streams[A] (removed)", "streams[C] (added)"]);
        assert_eq!(plan(&running, &running), Plan::default());
    }

    #[test]
    fn set_in_writes_only_the_limits() {
        let mut cfg = stream("A");
        let mut other = stream("Z");
        other.max_age = Some(Duration::from_secs(5));
        other.sync = SyncPolicy::Interval(Duration::from_millis(100));
        Limits::of(&other).set_in(&mut cfg);
        assert_eq!(cfg.name, "A");
        assert_eq!(Limits::of(&cfg), Limits::of(&other));
    }
}
