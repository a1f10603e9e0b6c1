//! One set of test options, rendered as nats-server's flags and conf file or as twig's TOML.
//!
//! Flags shared by both servers carry what they can (`-m`, `--user`, `--pass`, `--auth`); the
//! rest goes to a config file. twig's TOML mirrors nats-server's option names:
//!
//! ```toml
//! max_payload = 1024          # bytes
//! max_pending = 1048576       # bytes, per-connection outbound buffer
//! max_connections = 1
//! ping_interval = 1           # whole seconds
//! ping_max = 2
//!
//! [authorization]
//! timeout = 1                 # whole seconds
//! users = [ { nkey = "U..." } ]
//!
//! [tls]
//! cert_file = "/path/server-cert.pem"
//! key_file = "/path/server-key.pem"
//! ```
//!
//! If twig's config ends up spelled differently, [`ServerOptions::render_twig_toml`] is the one
//! place to change.

use super::Target;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a test needs from the server; `None`/empty means the server's default.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Client port; `None` lets the server pick (`-p -1`).
    pub port: Option<u16>,
    /// `--user`.
    pub user: Option<String>,
    /// `--pass`.
    pub pass: Option<String>,
    /// `--auth` (token).
    pub token: Option<String>,
    /// Public keys of nkey users (`U…`).
    pub nkeys: Vec<String>,
    /// TLS on the client port.
    pub tls: Option<TestCerts>,
    /// With `tls`: require and verify client certificates against the test CA
    /// (`--tlsverify`; INFO then says `tls_verify`).
    pub tls_verify: bool,
    /// Largest PUB payload accepted.
    pub max_payload: Option<u32>,
    /// Per-connection pending outbound bytes before the client is cut off as a slow consumer.
    pub max_pending: Option<u64>,
    /// Most client connections at once.
    pub max_connections: Option<u32>,
    /// Most subscriptions per connection.
    pub max_subscriptions: Option<u32>,
    /// Server PING interval (whole seconds).
    pub ping_interval: Option<Duration>,
    /// Outstanding PINGs before `Stale Connection`.
    pub ping_max: Option<u32>,
    /// Time a client has to send CONNECT when auth is required (whole seconds).
    pub auth_timeout: Option<Duration>,
    /// Monitoring port (`-m`); `Some(0)`: the harness picks one with
    /// [`free_port`](crate::harness::free_port) (below the ephemeral range, so a restart can
    /// bind it again), read back with
    /// [`ServerUnderTest::http_port`](crate::harness::ServerUnderTest::http_port).
    pub http_port: Option<u16>,
    /// More command-line arguments, passed as they are.
    pub extra_args: Vec<String>,
    /// Listen where `nats://[::1]:PORT` reaches: twig on its default (no `-a`: both
    /// loopbacks), nats-server on `-a ::1` (its default would be every interface).
    pub ipv6_loopback: bool,
    /// Environment variables for the server process (configs with `$VARIABLES`).
    pub env: Vec<(String, String)>,
    /// `lame_duck_duration` and `lame_duck_grace_period` (nats-server wants the duration at
    /// least 30 s; with one client the close comes right after the grace period).
    pub lame_duck: Option<(Duration, Duration)>,
}

impl ServerOptions {
    /// Options with every value at the server's default.
    pub fn new() -> ServerOptions {
        ServerOptions::default()
    }

    /// Command-line arguments both servers share (beyond `-a`/`-p`/`-c`).
    pub fn command_line_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        match self.http_port {
            Some(0) => a.extend(["-m".to_string(), "-1".to_string()]),
            Some(p) => a.extend(["-m".to_string(), p.to_string()]),
            None => {}
        }
        if let Some(u) = &self.user {
            a.extend(["--user".to_string(), u.clone()]);
        }
        if let Some(p) = &self.pass {
            a.extend(["--pass".to_string(), p.clone()]);
        }
        if let Some(t) = &self.token {
            a.extend(["--auth".to_string(), t.clone()]);
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }

    /// The config file for `target`, or `None` when every option fits on the command line.
    pub fn render_config(&self, target: Target) -> Option<String> {
        let needed = self.max_payload.is_some()
            || self.max_pending.is_some()
            || self.max_connections.is_some()
            || self.max_subscriptions.is_some()
            || self.ping_interval.is_some()
            || self.ping_max.is_some()
            || self.auth_timeout.is_some()
            || !self.nkeys.is_empty()
            || self.tls.is_some()
            || self.lame_duck.is_some();
        if !needed {
            return None;
        }
        Some(match target {
            Target::Twig => self.render_twig_toml(),
            Target::NatsServer => self.render_nats_conf(),
        })
    }

    /// nats-server's conf format.
    pub fn render_nats_conf(&self) -> String {
        let mut s = String::from("# rendered by twig-tests harness\n");
        if let Some(v) = self.max_payload {
            let _ = writeln!(s, "max_payload: {v}");
        }
        if let Some(v) = self.max_pending {
            let _ = writeln!(s, "max_pending: {v}");
        }
        if let Some(v) = self.max_connections {
            let _ = writeln!(s, "max_connections: {v}");
        }
        if let Some(v) = self.max_subscriptions {
            let _ = writeln!(s, "max_subscriptions: {v}");
        }
        if let Some(v) = self.ping_interval {
            let _ = writeln!(s, "ping_interval: \"{}s\"", whole_secs(v));
        }
        if let Some(v) = self.ping_max {
            let _ = writeln!(s, "ping_max: {v}");
        }
        if let Some((d, g)) = self.lame_duck {
            let _ = writeln!(s, "lame_duck_duration: \"{}ms\"", d.as_millis());
            let _ = writeln!(s, "lame_duck_grace_period: \"{}ms\"", g.as_millis());
        }
        if self.auth_timeout.is_some() || !self.nkeys.is_empty() {
            s.push_str("authorization {\n");
            if let Some(v) = self.auth_timeout {
                let _ = writeln!(s, "  timeout: {}", whole_secs(v));
            }
            if !self.nkeys.is_empty() {
                s.push_str("  users: [\n");
                for k in &self.nkeys {
                    let _ = writeln!(s, "    {{ nkey: {k} }}");
                }
                s.push_str("  ]\n");
            }
            s.push_str("}\n");
        }
        if let Some(t) = &self.tls {
            s.push_str("tls {\n");
            let _ = writeln!(s, "  cert_file: {}", quoted(&t.cert_file));
            let _ = writeln!(s, "  key_file: {}", quoted(&t.key_file));
            if self.tls_verify {
                let _ = writeln!(s, "  ca_file: {}", quoted(&t.ca_file));
                s.push_str("  verify: true\n");
            }
            s.push_str("}\n");
        }
        s
    }

    /// twig's TOML (schema in the module docs).
    pub fn render_twig_toml(&self) -> String {
        let mut s = String::from("# rendered by twig-tests harness\n");
        if let Some(v) = self.max_payload {
            let _ = writeln!(s, "max_payload = {v}");
        }
        if let Some(v) = self.max_pending {
            let _ = writeln!(s, "max_pending = {v}");
        }
        if let Some(v) = self.max_connections {
            let _ = writeln!(s, "max_connections = {v}");
        }
        if let Some(v) = self.max_subscriptions {
            let _ = writeln!(s, "max_subscriptions = {v}");
        }
        if let Some(v) = self.ping_interval {
            let _ = writeln!(s, "ping_interval = {}", whole_secs(v));
        }
        if let Some(v) = self.ping_max {
            let _ = writeln!(s, "ping_max = {v}");
        }
        if let Some((d, g)) = self.lame_duck {
            let _ = writeln!(s, "lame_duck_duration = \"{}ms\"", d.as_millis());
            let _ = writeln!(s, "lame_duck_grace_period = \"{}ms\"", g.as_millis());
        }
        // twig keeps the auth timeout at the top level (nats-server: authorization.timeout).
        if let Some(v) = self.auth_timeout {
            let _ = writeln!(s, "auth_timeout = {}", whole_secs(v));
        }
        if !self.nkeys.is_empty() {
            s.push_str("\n[authorization]\n");
            {
                s.push_str("users = [\n");
                for k in &self.nkeys {
                    let _ = writeln!(s, "  {{ nkey = \"{k}\" }},");
                }
                s.push_str("]\n");
            }
        }
        if let Some(t) = &self.tls {
            s.push_str("\n[tls]\n");
            let _ = writeln!(s, "cert_file = {}", quoted(&t.cert_file));
            let _ = writeln!(s, "key_file = {}", quoted(&t.key_file));
            if self.tls_verify {
                let _ = writeln!(s, "ca_file = {}", quoted(&t.ca_file));
                s.push_str("verify = true\n");
            }
        }
        s
    }
}

/// Durations in the configs are whole seconds (both formats agree on that spelling).
fn whole_secs(d: Duration) -> u64 {
    assert!(
        d.subsec_nanos() == 0 && d.as_secs() > 0,
        "test durations must be whole seconds, got {d:?}"
    );
    d.as_secs()
}

/// A double-quoted path (valid in both formats for the temp paths the tests use).
fn quoted(p: &Path) -> String {
    let s = p.display().to_string();
    assert!(!s.contains('"') && !s.contains('\\'), "unexpected path {s}");
    format!("\"{s}\"")
}

/// An nkey user: the seed for the client, the public key for the server.
#[derive(Clone, Debug)]
pub struct NkeyUser {
    /// `SU…` seed (what a client signs the nonce with).
    pub seed: String,
    /// `U…` public key (what the server lists).
    pub public: String,
}

impl NkeyUser {
    /// A fresh random user key.
    pub fn generate() -> NkeyUser {
        let kp = nkeys::KeyPair::new_user();
        NkeyUser {
            seed: kp.seed().expect("user seed"),
            public: kp.public_key(),
        }
    }
}

/// A test CA, a server certificate for `localhost` and `127.0.0.1`, and a client certificate
/// (for `tls_verify`), as PEM files ([`crate::pki::write`]).
#[derive(Clone, Debug)]
pub struct TestCerts {
    /// CA certificate (what clients trust, and what client certificates chain to).
    pub ca_file: PathBuf,
    /// Server certificate, signed by the CA.
    pub cert_file: PathBuf,
    /// Server private key (PKCS#8).
    pub key_file: PathBuf,
    /// A client certificate signed by the CA.
    pub client_cert_file: PathBuf,
    /// Its private key.
    pub client_key_file: PathBuf,
}

impl TestCerts {
    /// Generate a CA, a server and a client certificate into `dir`.
    pub fn generate(dir: &Path) -> TestCerts {
        let [
            ca_file,
            cert_file,
            key_file,
            client_cert_file,
            client_key_file,
        ] = crate::pki::write(dir, "twig test CA", "twig-test-client");
        TestCerts {
            ca_file,
            cert_file,
            key_file,
            client_cert_file,
            client_key_file,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ServerOptions {
        ServerOptions {
            max_payload: Some(1024),
            ping_interval: Some(Duration::from_secs(1)),
            auth_timeout: Some(Duration::from_secs(2)),
            nkeys: vec!["UABC".into()],
            ..ServerOptions::default()
        }
    }

    #[test]
    fn nats_conf_uses_nats_server_syntax() {
        let c = sample().render_nats_conf();
        assert!(c.contains("max_payload: 1024\n"));
        assert!(c.contains("ping_interval: \"1s\"\n"));
        assert!(
            c.contains("authorization {\n  timeout: 2\n  users: [\n    { nkey: UABC }\n  ]\n}\n")
        );
    }

    #[test]
    fn twig_toml_is_valid_toml_shape() {
        let c = sample().render_twig_toml();
        assert!(c.contains("max_payload = 1024\n"));
        assert!(c.contains("ping_interval = 1\n"));
        assert!(c.contains("auth_timeout = 2\n"));
        assert!(c.contains("[authorization]\nusers = [\n  { nkey = \"UABC\" },\n]\n"));
    }

    #[test]
    fn twig_accepts_the_rendered_toml() {
        let mut o = sample();
        // twig validates nkeys, so use a real one here.
        o.nkeys = vec![nkeys::KeyPair::new_user().public_key()];
        let c = o.render_twig_toml();
        if let Err(e) = twig_gateway::config::Config::from_toml(&c) {
            panic!("twig rejects the harness config: {e}\n{c}");
        }
    }

    #[test]
    fn flags_only_options_need_no_file() {
        let o = ServerOptions {
            user: Some("u".into()),
            pass: Some("p".into()),
            ..ServerOptions::default()
        };
        assert!(o.render_config(Target::Twig).is_none());
        assert_eq!(o.command_line_args(), ["--user", "u", "--pass", "p"]);
    }
}
