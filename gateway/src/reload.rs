//! SIGHUP (`twig --signal reload`): read the config file again, apply the command line on top
//! as at start, and apply what can change in a running twig. The log says plainly what was
//! reloaded and what needs a restart; a file that does not load changes nothing.
//!
//! What reloads today:
//!
//! - `debug`, `trace`;
//! - `authorization` (users, passwords, tokens, nkeys, permissions, `no_auth_user`: applied
//!   to the open connections too, see `twig_clients::reauth`);
//! - `leafnodes.remotes` (each `[[leafnodes.remotes]]` entry by position: one added at the
//!   end starts connecting, a removed one's connection is closed, a changed one (URLs,
//!   credentials, TLS, denies, ...) reconnects with its new settings; client connections and
//!   the other remotes are not touched; see `twig_uplink::uplinks`). The settings shared by
//!   every remote (`leafnodes.ping_interval`, `reconnect_delay_*`, `max_pending`, ...) are
//!   reported as `leafnodes`, which needs a restart;
//! - `tls` of the client port (certificate, key, CA, `verify`, `verify_and_map`, on or off),
//!   as nats-server: new connections are upgraded with the new one, open ones keep their
//!   session (`twig_clients::tls::ClientTls`, swapped in `Shared::reload_tls`). A change of
//!   `verify_and_map` also reloads the authorization (the authenticator maps certificates),
//!   so open logins are checked again under the new rule;
//! - `streams` limits (`max_msgs`, `max_age`, `when_full`, `sync`, `duplicate_window`,
//!   `max_duplicate_ids`), sent to each stream's thread, which enforces them at once (see
//!   `twig_stream::reload`); a stream added or removed, or a changed `subjects`, `file`,
//!   `max_bytes` or `forward*` option, is named in the log as needing a restart while the
//!   rest reloads.
//!
//! Everything else is listed as not reloaded. The whole reload is refused, with the reason in
//! the log, by a new `tls` that does not load, an `authorization` that cannot be put in
//! force, or remotes that would remove or move a position a running stream forwards through
//! (or a sync consumer pulls through): all are checked or built before anything changes. To
//! make an option reloadable, give it an arm in [`Reloader::apply`] and move it from the
//! "restart" list to the "reloaded" one there; [`changed`] names every option (it fails to
//! build when `Config` gains a field it does not compare).
use std::path::PathBuf;
use std::sync::Arc;

use crate::app::mqtt::MqttReload;
use crate::cli::Cli;
use crate::config::Config;
use crate::logging::Logger;
use crate::server::state::Shared;
use crate::uplink::uplinks::Uplinks;

/// What one reload did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Options that changed and are in force now.
    pub reloaded: Vec<&'static str>,
    /// Options that changed but keep their old value until twig restarts.
    pub not_reloaded: Vec<&'static str>,
}

/// Holds what a reload compares against: the file, the flags, the config in force.
pub struct Reloader {
    path: Option<PathBuf>,
    cli: Cli,
    current: Config,
    /// The client connections, whose authorization reloads.
    clients: Option<Arc<Shared>>,
    /// The running streams, whose limits reload.
    streams: Option<Arc<crate::stream::Streams>>,
    /// The leafnode remotes, which reload.
    uplinks: Option<Arc<Uplinks>>,
    /// The MQTT listener's logins, whose authorization reloads with the clients'.
    mqtt: Option<MqttReload>,
}

impl Reloader {
    /// A reloader for a twig started from `cli` with `config`.
    pub fn new(cli: Cli, config: Config) -> Reloader {
        Reloader {
            path: cli.config.clone(),
            cli,
            current: config,
            clients: None,
            streams: None,
            uplinks: None,
            mqtt: None,
        }
    }

    /// Lets a reload apply `authorization` to these client connections.
    pub fn with_clients(mut self, clients: Arc<Shared>) -> Reloader {
        self.clients = Some(clients);
        self
    }

    /// Lets a reload apply stream limits to these running streams.
    pub fn with_streams(mut self, streams: Arc<crate::stream::Streams>) -> Reloader {
        self.streams = Some(streams);
        self
    }

    /// Lets a reload add, remove and change these leafnode remotes.
    pub fn with_uplinks(mut self, uplinks: Arc<Uplinks>) -> Reloader {
        self.uplinks = Some(uplinks);
        self
    }

    /// Lets a reload apply `authorization` to the MQTT listener's devices.
    pub fn with_mqtt(mut self, mqtt: MqttReload) -> Reloader {
        self.mqtt = Some(mqtt);
        self
    }

    /// Loads the file again and applies what it can; logs the outcome.
    pub fn reload(&mut self, logger: Option<&Logger>) {
        match self.try_reload(logger) {
            Ok(report) => log(&report),
            Err(e) => tracing::error!("Failed to reload server configuration: {e}"),
        }
    }

    fn try_reload(&mut self, logger: Option<&Logger>) -> Result<Report, String> {
        let mut next = Config::load(self.path.as_deref()).map_err(|e| e.to_string())?;
        self.cli.apply(&mut next);
        next.validate().map_err(|e| e.to_string())?;
        let mut report = Report::default();
        let changes = changed(&self.current, &next);
        // The options that can still be refused are checked or built first, so a refusal
        // leaves everything as it was: the remotes are checked (nothing changes), the client
        // port's TLS is built (certificate, key, CA read from their files), then the
        // authorization is put in force; the TLS and the remotes, checked already, are put in
        // force after it (neither can fail).
        let remotes = changes.contains(&"leafnodes.remotes");
        if remotes && let Some(uplinks) = &self.uplinks {
            uplinks.check(&next.leafnodes.remotes)?;
        }
        let new_tls = match &self.clients {
            Some(_) if changes.contains(&"tls") => Some(
                next.tls
                    .as_ref()
                    .map(crate::server::tls::ClientTls::from_config)
                    .transpose()
                    .map_err(|e| format!("tls: {e}"))?,
            ),
            _ => None,
        };
        // The authenticator maps certificates to users when `tls.verify_and_map` is on.
        let maps = |c: &Config| c.tls.as_ref().is_some_and(|t| t.verify_and_map);
        let auth_changed = changes.contains(&"authorization") || maps(&self.current) != maps(&next);
        if auth_changed && let Some(clients) = &self.clients {
            // The MQTT logins' rules are built first: a refusal there changes nothing either.
            let mqtt = match &self.mqtt {
                Some(m) => Some(m.prepare(&next)?),
                None => None,
            };
            let outcome = clients.reload_authorization(&next)?;
            if let (Some(m), Some(prepared)) = (&self.mqtt, mqtt) {
                let r = m.apply(prepared);
                tracing::info!(
                    "Authorization reloaded on MQTT sessions ({} checked, {} closed for a removed \
                     user or a changed password)",
                    r.checked,
                    r.revoked
                );
            }
            self.current.authorization = next.authorization.clone();
            tracing::info!(
                "Authorization reloaded on open connections ({} checked, {} closed for a removed user, \
                 {} refused, {} subscriptions removed)",
                outcome.checked,
                outcome.removed,
                outcome.refused,
                outcome.subs_removed
            );
            if changes.contains(&"authorization") {
                report.reloaded.push("authorization");
            }
        }
        if let (Some(tls), Some(clients)) = (new_tls, &self.clients) {
            tracing::info!(
                "Reloaded: tls = {} (new client connections use it; open ones keep their session)",
                if tls.is_some() { "enabled" } else { "disabled" }
            );
            clients.reload_tls(tls);
            self.current.tls = next.tls.clone();
            report.reloaded.push("tls");
        }
        if changes.contains(&"streams")
            && let Some(streams) = &self.streams
        {
            let plan = streams.reload(&self.current.streams, &next.streams);
            for (i, limits) in &plan.limits {
                if let Some(c) = self.current.streams.get_mut(*i) {
                    limits.set_in(c);
                }
            }
            if !plan.limits.is_empty() || plan.restart.is_empty() {
                report.reloaded.push("streams");
            }
            if !plan.restart.is_empty() {
                tracing::warn!(
                    "Streams: not reloaded (twig keeps the running values until it restarts): {}",
                    plan.restart.join(", ")
                );
                report.not_reloaded.push("streams");
            }
        }
        if remotes && let Some(uplinks) = &self.uplinks {
            let outcome = uplinks.reload(&next.leafnodes.remotes);
            self.current.leafnodes.remotes = next.leafnodes.remotes.clone();
            tracing::info!(
                "Leafnode remotes reloaded ({} added, {} removed, {} changed)",
                outcome.added.len(),
                outcome.removed.len(),
                outcome.changed.len()
            );
            report.reloaded.push("leafnodes.remotes");
        }
        for option in changes {
            if report.reloaded.contains(&option) || report.not_reloaded.contains(&option) {
                continue;
            }
            if self.apply(option, &next, logger) {
                report.reloaded.push(option);
            } else {
                report.not_reloaded.push(option);
            }
        }
        Ok(report)
    }

    /// Puts `option` from `next` in force; false when only a restart can.
    fn apply(&mut self, option: &'static str, next: &Config, logger: Option<&Logger>) -> bool {
        match option {
            "debug" | "trace" => {
                self.current.debug = next.debug;
                self.current.trace = next.trace;
                if let Some(l) = logger {
                    l.set_levels(next.debug, next.trace);
                }
                true
            }
            _ => false,
        }
    }
}

fn log(report: &Report) {
    if !report.reloaded.is_empty() {
        tracing::info!("Reloaded: {}", report.reloaded.join(", "));
    }
    if !report.not_reloaded.is_empty() {
        tracing::warn!(
            "Not reloaded (twig keeps the running values until it restarts): {}",
            report.not_reloaded.join(", ")
        );
    }
    if report.reloaded.is_empty() && report.not_reloaded.is_empty() {
        tracing::info!("Reloaded server configuration (nothing changed)");
    } else {
        tracing::info!("Reloaded server configuration");
    }
}

/// The options whose values differ, by their config names.
pub fn changed(old: &Config, new: &Config) -> Vec<&'static str> {
    // Destructured without `..`: a new field must be added here to build.
    let Config {
        host,
        port,
        server_name,
        http_host,
        http_port,
        http_max_connections,
        http_max_request,
        http_timeout,
        max_payload,
        max_control_line,
        max_pending,
        max_connections,
        listen_backlog,
        max_subscriptions,
        ping_interval,
        ping_max,
        auth_timeout,
        write_deadline,
        threads,
        no_header_support,
        authorization,
        allow_anonymous,
        tls,
        log_file,
        pid_file,
        lame_duck_duration,
        lame_duck_grace_period,
        debug,
        trace,
        leafnodes,
        store_dir,
        streams,
        sync,
        mqtt,
        mqtt_listener,
    } = old;
    let mut out = Vec::new();
    macro_rules! cmp {
        ($($field:ident),* $(,)?) => {
            $(if *$field != new.$field { out.push(stringify!($field)); })*
        };
    }
    // The remotes reload; the settings they share do not: named apart.
    let remotes = leafnodes.remotes != new.leafnodes.remotes;
    let shared = {
        let mut l = leafnodes.clone();
        l.remotes.clone_from(&new.leafnodes.remotes);
        l != new.leafnodes
    };
    cmp!(
        host,
        port,
        server_name,
        http_host,
        http_port,
        http_max_connections,
        http_max_request,
        http_timeout,
        max_payload,
        max_control_line,
        max_pending,
        max_connections,
        listen_backlog,
        max_subscriptions,
        ping_interval,
        ping_max,
        auth_timeout,
        write_deadline,
        threads,
        no_header_support,
        authorization,
        allow_anonymous,
        tls,
        log_file,
        pid_file,
        lame_duck_duration,
        lame_duck_grace_period,
        debug,
        trace,
    );
    if shared {
        out.push("leafnodes");
    }
    if remotes {
        out.push("leafnodes.remotes");
    }
    cmp!(store_dir, streams, sync, mqtt, mqtt_listener);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_options_are_named() {
        let old = Config::default();
        let mut new = old.clone();
        assert!(changed(&old, &new).is_empty());
        new.debug = true;
        new.max_payload = 4096;
        new.authorization.token = Some("t".into());
        assert_eq!(
            changed(&old, &new),
            ["max_payload", "authorization", "debug"]
        );
    }

    #[test]
    fn remotes_are_named_apart_from_the_settings_they_share() {
        let old = Config::default();
        let mut new = old.clone();
        let with_remote = "[[leafnodes.remotes]]\nurls = [\"nats://hub:7422\"]\n";
        new.leafnodes.remotes = Config::from_toml(with_remote).unwrap().leafnodes.remotes;
        assert_eq!(changed(&old, &new), ["leafnodes.remotes"]);
        new.leafnodes.ping_max = 9;
        assert_eq!(changed(&old, &new), ["leafnodes", "leafnodes.remotes"]);
    }

    #[test]
    fn debug_reloads_and_the_rest_waits_for_a_restart() {
        let dir = std::env::temp_dir().join(format!("twig-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("twig.toml");
        std::fs::write(&path, "max_payload = 2048\n").unwrap();
        let cli = Cli::parse(["-c", path.to_str().unwrap()]).unwrap();
        let start = Config::load(Some(&path)).unwrap();
        let mut r = Reloader::new(cli, start);
        std::fs::write(&path, "max_payload = 4096\ndebug = true\n").unwrap();
        let report = r.try_reload(None).unwrap();
        assert_eq!(report.reloaded, ["debug"]);
        assert_eq!(report.not_reloaded, ["max_payload"]);
        // The running value stays what it was, so the next reload reports it again.
        assert_eq!(r.current.max_payload, 2048);
        assert!(r.current.debug);
        // A broken file changes nothing.
        std::fs::write(&path, "max_payload = \"huge\"\n").unwrap();
        assert!(r.try_reload(None).is_err());
        assert!(r.current.debug);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
