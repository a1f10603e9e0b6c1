//! `[leafnodes]`: the uplink to a cloud NATS cluster, as nats-server's `leafnodes.remotes`.
//!
//! ```toml
//! [leafnodes]
//! reconnect_delay_min = "50ms"   # first retry after a loss (jittered), doubled per failure
//! reconnect_delay_max = "2s"     # cap of the back-off
//!
//! [[leafnodes.remotes]]
//! urls = ["nats-leaf://hub-a:7422", "nats-leaf://hub-b:7422"]
//! credentials = "/etc/twig/edge.creds"   # or nkey / user + password / token
//! first_info_timeout = "1s"
//! compression = "s2_auto"               # default; see `compression.rs`
//! [leafnodes.remotes.tls]
//! ca_file = "/etc/twig/hub-ca.pem"
//! ```
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::compression::Compression;
use super::{ConfigError, invalid, values};

/// nats-server's leafnode port.
pub const DEFAULT_LEAF_PORT: u16 = 7422;

/// `[leafnodes]`: settings shared by every remote, and the remotes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeafConfig {
    /// The hubs to connect to; each remote is one leafnode connection (to one of its URLs).
    pub remotes: Vec<RemoteConfig>,
    /// Wait before the first reconnect attempt after a loss (default 50ms, jittered; at most
    /// 100 ms so an edge link comes back quickly after a blip).
    #[serde(deserialize_with = "values::de_duration")]
    pub reconnect_delay_min: Duration,
    /// The back-off doubles per failed attempt up to this (default 2s). Jitter spreads a fleet
    /// of gateways so they do not all hit a restarted hub at the same instant.
    #[serde(deserialize_with = "values::de_duration")]
    pub reconnect_delay_max: Duration,
    /// How often twig PINGs the hub (default 30s; nats-server uses 2m). Any data from the hub
    /// also counts as a sign of life.
    #[serde(deserialize_with = "values::de_duration")]
    pub ping_interval: Duration,
    /// PINGs without an answer (and without any other data from the hub) before the link is
    /// closed as stale and re-dialled (default 2).
    pub ping_max: u32,
    /// A write to the hub that blocks longer than this drops the link (default 10s). Bulk data
    /// is written in chunks, so this bounds one chunk, not a whole backlog.
    #[serde(deserialize_with = "values::de_duration")]
    pub write_deadline: Duration,
    /// Messages queued for the hub before new ones are dropped (counted in `/leafz`), default
    /// 64 MiB. Interest updates are never dropped.
    #[serde(deserialize_with = "values::de_size")]
    pub max_pending: usize,
    /// Bytes the kernel may hold unsent on the uplink socket (`TCP_NOTSENT_LOWAT`, Linux),
    /// default 128 KiB; 0 leaves the kernel's default. twig keeps the rest of a backlog itself,
    /// where keepalive lines can go ahead of it; without a limit a slow link can hold megabytes
    /// in the socket, in front of any PONG.
    #[serde(deserialize_with = "values::de_size")]
    pub unsent_limit: usize,
    /// Time allowed for the TCP connect to a hub, for remotes that do not set their own
    /// (default 5s; nats-server's 1s fails every dial over a link of more than 1 s round
    /// trip, nats-server PR #8427).
    #[serde(deserialize_with = "values::de_duration")]
    pub dial_timeout: Duration,
}

impl Default for LeafConfig {
    fn default() -> Self {
        LeafConfig {
            remotes: Vec::new(),
            reconnect_delay_min: Duration::from_millis(50),
            reconnect_delay_max: Duration::from_secs(2),
            ping_interval: Duration::from_secs(30),
            ping_max: 2,
            write_deadline: Duration::from_secs(10),
            max_pending: 64 * 1024 * 1024,
            unsent_limit: 128 * 1024,
            dial_timeout: default_dial_timeout(),
        }
    }
}

/// One `[[leafnodes.remotes]]` entry.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Hub URLs: `nats-leaf://host[:port]`, `nats://…`, or `tls://…` (TLS required);
    /// `user:password@` in a URL is used as credentials. Port defaults to 7422. The hub's
    /// `leafnode_urls` are added to the rotation once learnt. Or all websocket:
    /// `ws://host[:port][/path]`, `wss://…` (TLS, needs `tls`), ports 80/443 by default, to a
    /// hub's `websocket { }` listener (path + `/leafnode`).
    pub urls: Vec<String>,
    /// A `.creds` file: user JWT and nkey seed (operator mode hubs). Re-read per connect.
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// An nkey seed (`SU…`) whose public key the hub knows.
    #[serde(default)]
    pub nkey: Option<String>,
    /// User name (with `password`).
    #[serde(default)]
    pub user: Option<String>,
    /// Password.
    #[serde(default, alias = "pass")]
    pub password: Option<String>,
    /// Token.
    #[serde(default)]
    pub token: Option<String>,
    /// TLS towards the hub (also used for `tls://` URLs, with the system defaults absent:
    /// a CA must then be given).
    #[serde(default)]
    pub tls: Option<RemoteTlsConfig>,
    /// Time the hub has to send its first INFO after the TCP (and TLS) connect (default 1s,
    /// as nats-server; raise it on satellite or congested cellular links).
    #[serde(
        default = "default_first_info_timeout",
        deserialize_with = "values::de_duration"
    )]
    pub first_info_timeout: Duration,
    /// Time allowed for the TCP connect (default: `leafnodes.dial_timeout`); see
    /// [`RemoteConfig::dial_timeout`].
    #[serde(
        default,
        rename = "dial_timeout",
        deserialize_with = "values::de_opt_duration"
    )]
    pub dial_timeout_override: Option<Duration>,
    /// Do not add the hub's advertised `leafnode_urls` to the rotation (default false).
    #[serde(default)]
    pub ignore_discovered_servers: bool,
    /// Subjects the hub must not send down this link (nats-server's `deny_imports`): twig
    /// asks the hub not to (CONNECT `deny_pub`) and sends no interest in them.
    #[serde(default)]
    pub deny_imports: Vec<String>,
    /// Subjects twig must not send up this link (nats-server's `deny_exports`), whatever
    /// interest the hub shows.
    #[serde(default)]
    pub deny_exports: Vec<String>,
    /// S2 compression of the link (default `s2_auto`, as nats-server): negotiated with the
    /// hub after its first INFO; a hub before 2.10 gets the plain protocol.
    #[serde(default, deserialize_with = "super::compression::de_compression")]
    pub compression: Compression,
    /// An HTTP CONNECT proxy every connection of this remote goes through (nats-server's
    /// remote `proxy`, for sites that allow only outbound HTTP(S) through a proxy).
    #[serde(default)]
    pub proxy: Option<ProxyConfig>,
    /// Ask a websocket hub for unmasked frames (`Nats-No-Masking`; nats-server's
    /// `ws_no_masking`): saves masking every byte where nothing in between needs it.
    #[serde(default)]
    pub ws_no_masking: bool,
}

/// `proxy = { url, username, password, timeout }` of a remote.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// `http://host[:port]` (port 80 by default).
    pub url: String,
    /// Basic credentials for the proxy (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// The password.
    #[serde(default)]
    pub password: Option<String>,
    /// Time for the connect to the proxy and its answer (default: the dial timeout).
    #[serde(default, deserialize_with = "values::de_opt_duration")]
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RemoteConfig")
            .field("urls", &urls)
            .field("credentials", &self.credentials)
            .field("nkey", &self.nkey.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("first_info_timeout", &self.first_info_timeout)
            .field("deny_imports", &self.deny_imports)
            .field("deny_exports", &self.deny_exports)
            .field("compression", &self.compression)
            .field("proxy", &self.proxy)
            .field("ws_no_masking", &self.ws_no_masking)
            .finish()
    }
}

/// `[leafnodes.remotes.tls]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteTlsConfig {
    /// PEM CA certificates the hub's certificate must chain to.
    pub ca_file: PathBuf,
    /// Client certificate chain (PEM), for hubs that verify leafs.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Name to verify the hub's certificate against (default: the URL's host).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Time allowed for the TLS handshake (default 2s).
    #[serde(
        default = "super::default_tls_timeout",
        deserialize_with = "values::de_duration"
    )]
    pub timeout: Duration,
}

fn default_first_info_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_dial_timeout() -> Duration {
    Duration::from_secs(5)
}

impl RemoteConfig {
    /// The TCP connect timeout: the remote's own, else `leafnodes.dial_timeout`.
    pub fn dial_timeout(&self, leaf: &LeafConfig) -> Duration {
        self.dial_timeout_override.unwrap_or(leaf.dial_timeout)
    }

    /// A remote with these URLs and every other option at its default.
    pub fn with_urls(urls: Vec<String>) -> RemoteConfig {
        RemoteConfig {
            urls,
            credentials: None,
            nkey: None,
            user: None,
            password: None,
            token: None,
            tls: None,
            first_info_timeout: default_first_info_timeout(),
            dial_timeout_override: None,
            ignore_discovered_servers: false,
            deny_imports: Vec::new(),
            deny_exports: Vec::new(),
            compression: Compression::default(),
            proxy: None,
            ws_no_masking: false,
        }
    }
}

/// A parsed remote URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (7422 when not given).
    pub port: u16,
    /// `tls://`: TLS is required.
    pub tls: bool,
    /// `user[:password]@` from the URL.
    pub user: Option<String>,
    /// The password from the URL.
    pub password: Option<String>,
    /// A websocket URL (`ws://`, `wss://`: `tls` says which) with its path.
    pub ws: Option<twig_wsproto::RemoteUrl>,
}

impl LeafUrl {
    /// Parses `scheme://[user[:pass]@]host[:port]` (`nats-leaf`, `nats`, `leafnode`, `tls`)
    /// or a bare `host:port` as the hub sends in `leafnode_urls`.
    pub fn parse(url: &str) -> Result<LeafUrl, String> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("nats-leaf".to_string(), url),
        };
        let tls = match scheme.as_str() {
            "nats-leaf" | "nats" | "leafnode" => false,
            "tls" => true,
            "ws" | "wss" => {
                let ws = twig_wsproto::RemoteUrl::parse(url).map_err(|e| e.to_string())?;
                let (user, password) = match &ws.user {
                    Some((u, p)) => (Some(u.clone()), (!p.is_empty()).then(|| p.clone())),
                    None => (None, None),
                };
                return Ok(LeafUrl {
                    host: ws.host.clone(),
                    port: ws.port,
                    tls: ws.tls,
                    user,
                    password,
                    ws: Some(ws),
                });
            }
            other => return Err(format!("unknown scheme {other:?}")),
        };
        let rest = rest.trim_end_matches('/');
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (user, password) = match auth {
            Some(a) => match a.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
                None => (Some(a.to_string()), None),
            },
            None => (None, None),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("unclosed [ in host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
                None if after.is_empty() => DEFAULT_LEAF_PORT,
                None => return Err(format!("unexpected {after:?} after host")),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("bad port {p:?}"))?,
                ),
                None => (hostport.to_string(), DEFAULT_LEAF_PORT),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err("missing host".into());
        }
        if port == 0 {
            return Err("port 0".into());
        }
        Ok(LeafUrl {
            host,
            port,
            tls,
            user,
            password,
            ws: None,
        })
    }

    /// `host:port` for dialing and logs (brackets around IPv6).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `url` with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://<redacted>@{host}"),
        _ => url.to_string(),
    }
}

impl LeafConfig {
    /// Checks the remotes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.reconnect_delay_min.is_zero()
            || self.reconnect_delay_min > Duration::from_millis(100)
        {
            return Err(invalid(
                "leafnodes.reconnect_delay_min",
                "must be between 1ms and 100ms (a lost link is retried at once, then backed off)",
            ));
        }
        if self.reconnect_delay_max < self.reconnect_delay_min {
            return Err(invalid(
                "leafnodes.reconnect_delay_max",
                "must be at least reconnect_delay_min",
            ));
        }
        for (name, d) in [
            ("leafnodes.ping_interval", self.ping_interval),
            ("leafnodes.write_deadline", self.write_deadline),
        ] {
            if d.is_zero() {
                return Err(invalid(name, "must be longer than zero"));
            }
        }
        if self.ping_max == 0 {
            return Err(invalid("leafnodes.ping_max", "must be at least 1"));
        }
        if self.max_pending == 0 {
            return Err(invalid("leafnodes.max_pending", "must be at least 1"));
        }
        for (i, r) in self.remotes.iter().enumerate() {
            let at = |f: &str| format!("leafnodes.remotes[{i}]{f}");
            if r.urls.is_empty() {
                return Err(invalid(at(".urls"), "give at least one hub URL"));
            }
            let mut websocket = Vec::new();
            for u in &r.urls {
                let parsed = LeafUrl::parse(u)
                    .map_err(|e| invalid(at(".urls"), format!("{}: {e}", redact_url(u))))?;
                if parsed.ws.as_ref().is_some_and(|w| w.tls) && r.tls.is_none() {
                    return Err(invalid(
                        at(".tls"),
                        format!(
                            "{} needs tls (at least ca_file) to verify the hub",
                            redact_url(u)
                        ),
                    ));
                }
                websocket.push(parsed.ws.is_some());
            }
            // nats-server's rule: a remote is websocket or not, all its URLs alike.
            if websocket.iter().any(|&w| w) && !websocket.iter().all(|&w| w) {
                return Err(invalid(
                    at(".urls"),
                    "mixes websocket (ws://, wss://) and other URLs; use one kind per remote",
                ));
            }
            if let Some(p) = &r.proxy {
                twig_wsproto::ProxyUrl::parse(&p.url)
                    .map_err(|e| invalid(at(".proxy.url"), e.to_string()))?;
                if p.username.is_some() != p.password.is_some() {
                    return Err(invalid(at(".proxy"), "username and password go together"));
                }
                if p.timeout.is_some_and(|t| t.is_zero()) {
                    return Err(invalid(at(".proxy.timeout"), "must be longer than zero"));
                }
            }
            let kinds = [
                r.credentials.is_some(),
                r.nkey.is_some(),
                r.user.is_some() || r.password.is_some(),
                r.token.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() > 1 {
                return Err(invalid(
                    at(""),
                    "use one of credentials, nkey, user + password, or token",
                ));
            }
            if r.password.is_some() && r.user.is_none() {
                return Err(invalid(at(".password"), "needs user"));
            }
            if let Some(seed) = &r.nkey
                && nkeys::KeyPair::from_seed(seed).is_err()
            {
                return Err(invalid(at(".nkey"), "is not a valid nkey seed (SU…)"));
            }
            if r.first_info_timeout.is_zero() || r.dial_timeout(self).is_zero() {
                return Err(invalid(at(""), "timeouts must be longer than zero"));
            }
            for (field, list) in [
                (".deny_imports", &r.deny_imports),
                (".deny_exports", &r.deny_exports),
            ] {
                for subj in list {
                    if !twig_core::subject::is_valid(subj.as_bytes()) {
                        return Err(invalid(
                            at(field),
                            format!("{subj:?} is not a valid subject"),
                        ));
                    }
                }
            }
            if let Some(t) = &r.tls
                && t.cert_file.is_some() != t.key_file.is_some()
            {
                return Err(invalid(at(".tls"), "cert_file and key_file go together"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_as_nats_server_takes_them() {
        let u = LeafUrl::parse("nats-leaf://127.0.0.1:7422").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 7422, false));
        let u = LeafUrl::parse("tls://a:b@hub.example").unwrap();
        assert_eq!(u.port, DEFAULT_LEAF_PORT);
        assert!(u.tls);
        assert_eq!(u.user.as_deref(), Some("a"));
        assert_eq!(u.password.as_deref(), Some("b"));
        let u = LeafUrl::parse("[::1]:17422").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 17422));
        assert_eq!(u.host_port(), "[::1]:17422");
        let u = LeafUrl::parse("wss://bob:pw@hub.example/nats").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("hub.example", 443, true));
        assert_eq!(u.ws.as_ref().map(|w| w.path.as_str()), Some("/nats"));
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref()),
            (Some("bob"), Some("pw"))
        );
        let u = LeafUrl::parse("ws://hub").unwrap();
        assert_eq!((u.port, u.tls, u.password), (80, false, None));
        assert!(LeafUrl::parse("ws://hub:0").is_err());
        assert!(LeafUrl::parse("nats://hub:x").is_err());
        assert!(LeafUrl::parse("nats://:7422").is_err());
        assert_eq!(redact_url("nats://u:p@h:1"), "nats://<redacted>@h:1");
    }

    #[test]
    fn one_kind_of_credentials_per_remote() {
        let mut c = LeafConfig::default();
        c.remotes
            .push(RemoteConfig::with_urls(vec!["nats://h:1".into()]));
        assert!(c.validate().is_ok());
        c.remotes[0].token = Some("t".into());
        c.remotes[0].user = Some("u".into());
        assert!(c.validate().is_err());
        c.remotes[0].token = None;
        c.remotes[0].nkey = Some("SUNOTASEED".into());
        assert!(c.validate().is_err());
        c.remotes[0].nkey = None;
        assert!(c.validate().is_ok());
        c.reconnect_delay_min = Duration::from_millis(500);
        assert!(c.validate().is_err());
    }

    #[test]
    fn websocket_remotes_and_proxies_are_checked() {
        let check = |urls: &[&str], tls: bool, proxy: Option<(&str, Option<&str>)>| {
            let mut c = LeafConfig::default();
            let mut r = RemoteConfig::with_urls(urls.iter().map(|u| u.to_string()).collect());
            if tls {
                r.tls = Some(RemoteTlsConfig {
                    ca_file: "ca.pem".into(),
                    cert_file: None,
                    key_file: None,
                    server_name: None,
                    timeout: Duration::from_secs(2),
                });
            }
            r.proxy = proxy.map(|(url, user)| ProxyConfig {
                url: url.into(),
                username: user.map(Into::into),
                password: user.map(|_| "pw".into()),
                timeout: None,
            });
            c.remotes.push(r);
            c.validate().map_err(|e| e.to_string())
        };
        assert!(check(&["ws://h:8080", "ws://g:8080/x"], false, None).is_ok());
        assert!(check(&["wss://h"], true, Some(("http://proxy:3128", Some("u")))).is_ok());
        let e = check(&["wss://h"], false, None).unwrap_err();
        assert!(e.contains("needs tls"), "{e}");
        let e = check(&["ws://h:1", "nats://h:2"], false, None).unwrap_err();
        assert!(e.contains("mixes websocket"), "{e}");
        let e = check(&["ws://h:1"], false, Some(("https://proxy", None))).unwrap_err();
        assert!(e.contains("proxy"), "{e}");
        // nats-server (2.14+) takes the proxy for plain remotes too.
        assert!(check(&["nats://h:1"], false, Some(("http://proxy", None))).is_ok());
    }
}
