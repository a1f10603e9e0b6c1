//! Layer 1, `twig-config`: the gateway's configuration as plain data plus validation. It uses
//! `natsconf` (nats-server's format), `perms` (permission lists are config data) and
//! twig-core, and names no component:
//! every component reads its own section from here.
//!
//! One TOML file (`configs/gateway.toml` documents every option), built-in defaults for
//! everything, command-line flags on top (the app's `cli`).
//!
//! Option names and defaults follow nats-server where it has the same option, so a reader of
//! nats-server's docs is not surprised. Unknown keys are errors (a typo must not silently fall
//! back to a default). Errors name the file, the line and column, and what is wrong.
//!
//! Order of use: [`Config::load`] (parses and validates), then the app's `Cli::apply`, then
//! [`Config::validate`] again because flags can create invalid combinations (`--user` alone).
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use twig_perms::Permissions;

pub mod bounds;
pub mod compression;
mod leaf;
pub mod mqtt;
pub mod mqtt_listener;
pub mod natsconf;
mod streams;
mod sync;
mod values;

pub use compression::Compression;
pub use leaf::{LeafConfig, LeafUrl, ProxyConfig, RemoteConfig, RemoteTlsConfig, redact_url};
pub use mqtt::MqttConfig;
pub use mqtt_listener::MqttListenerConfig;
pub use streams::SECTOR as STREAM_SECTOR;
pub use streams::{ForwardMode, StreamConfig, SyncPolicy, WhenFullConfig};
pub use sync::deny_imports;
pub use sync::{DeliverPolicyConfig, SyncConfig};

pub use values::{Port, format_duration, parse_duration, parse_size};

/// nats-server refuses a `max_payload` above 64 MiB (`MAX_PAYLOAD_MAX_SIZE`).
pub const MAX_PAYLOAD_LIMIT: usize = 64 * 1024 * 1024;
/// Upper bound for `max_control_line`: a control line is buffered whole before parsing.
pub const MAX_CONTROL_LINE_LIMIT: usize = 1024 * 1024;

/// The listen backlog of the client port by default: nats-server's (Go's somaxconn on Linux 5.4+).
pub const DEFAULT_LISTEN_BACKLOG: u32 = 4096;
/// The deepest listen backlog accepted (Linux caps `somaxconn` there on older kernels).
pub const MAX_LISTEN_BACKLOG: u32 = 65535;

/// Monitoring connections served at once by default.
pub const DEFAULT_HTTP_MAX_CONNECTIONS: usize = 256;
/// The largest monitoring request head by default (as Go's net/http would answer 431 far later,
/// at 1 MiB, this is tighter: monitoring requests are one line and a few headers).
pub const DEFAULT_HTTP_MAX_REQUEST: usize = 8 * 1024;
/// Bounds of `http_max_request`.
pub const HTTP_MAX_REQUEST_RANGE: std::ops::RangeInclusive<usize> = 256..=1024 * 1024;
/// The most monitoring connections at once that can be configured.
pub const MAX_HTTP_CONNECTIONS: usize = 65536;

/// The whole configuration. Every field has a default (see [`Config::default`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on for clients. Default (`None`): both loopbacks, `127.0.0.1` and
    /// `::1`; `0.0.0.0` or `::` for every interface of both families, as nats-server
    /// (see the client listener, `listen`).
    pub host: Option<String>,
    /// Client port (default 4222; `-1` or `0` = a random free port, logged once bound).
    #[serde(deserialize_with = "values::de_port")]
    pub port: Port,
    /// Server name in INFO and monitoring (default: the server id).
    pub server_name: Option<String>,
    /// Address for monitoring (default: same as `host`).
    pub http_host: Option<String>,
    /// Monitoring port (default: off; `-1` = random free port; `0` = off).
    #[serde(deserialize_with = "values::de_http_port")]
    pub http_port: Option<Port>,
    /// Monitoring connections served at once (default 256, 1 to 65536). Each costs at most
    /// `http_max_request` bytes plus a few KiB; one more is answered `503` and closed at once.
    /// nats-server's monitor (Go's net/http) has no such bound.
    pub http_max_connections: usize,
    /// Largest monitoring request head, request line and headers (default 8 KiB, 256 B to
    /// 1 MiB); bigger ones are answered `431`.
    #[serde(deserialize_with = "values::de_size")]
    pub http_max_request: usize,
    /// Time a monitoring connection may take from accept to close (default 5s): a client that
    /// sends its request slowly, or reads the answer slowly, is closed then.
    #[serde(deserialize_with = "values::de_duration")]
    pub http_timeout: Duration,
    /// Largest message payload a client may publish (default 1 MiB, at most 64 MiB).
    #[serde(deserialize_with = "values::de_size")]
    pub max_payload: usize,
    /// Longest control line (e.g. `PUB subject reply 123`, `CONNECT {...}`) (default 4096).
    #[serde(deserialize_with = "values::de_size")]
    pub max_control_line: usize,
    /// Bytes queued for one connection before it is cut off as a slow consumer (default
    /// 64 MiB, as nats-server). On a small gateway this is the knob that bounds memory: with
    /// N stuck subscribers the worst case is N × max_pending.
    #[serde(deserialize_with = "values::de_size")]
    pub max_pending: usize,
    /// Most client connections at once (default 65536); more get `maximum connections exceeded`.
    pub max_connections: usize,
    /// Connections the kernel queues on the client port before twig accepts them (default
    /// 4096, 1 to 65535; the kernel caps it at `net.core.somaxconn`). nats-server has no such
    /// option: Go listens with somaxconn, 4096 since Linux 5.4. Too shallow a queue drops the
    /// SYNs of a reconnect storm, and each dropped client retries only after 1 s, 3 s, 7 s...
    pub listen_backlog: u32,
    /// Most subscriptions per connection (default 0 = unlimited, as nats-server).
    pub max_subscriptions: usize,
    /// How often the server PINGs an idle client (default 2m).
    #[serde(deserialize_with = "values::de_duration")]
    pub ping_interval: Duration,
    /// Unanswered PINGs before a connection is closed as stale (default 2).
    pub ping_max: u32,
    /// Time a client has to send CONNECT (default 2s, or `tls.timeout` + 1s with TLS, as
    /// nats-server). Read it through [`Config::effective_auth_timeout`].
    #[serde(deserialize_with = "values::de_opt_duration")]
    pub auth_timeout: Option<Duration>,
    /// A write to a client that takes longer than this closes it as a slow consumer (default 10s).
    #[serde(deserialize_with = "values::de_duration")]
    pub write_deadline: Duration,
    /// Threads that run connections (default 1; 0 = one per core). One event loop, as in
    /// mosquitto: readers flush their subscribers inline and no wake-up crosses threads,
    /// which measured lower latency and less CPU per message than one thread per core on a
    /// 2-core machine. More threads help only with many busy connections on many cores.
    pub threads: usize,
    /// Do not offer message headers to clients (default false).
    pub no_header_support: bool,
    /// Client authentication (default: none).
    pub authorization: AuthConfig,
    /// Let clients connect without credentials on a `host` beyond loopback (default false).
    /// As mosquitto 2 does, twig refuses to start listening on the network with no
    /// `[authorization]` unless this says so; on loopback (the default host) it is not needed.
    pub allow_anonymous: bool,
    /// TLS on the client port (default: off).
    pub tls: Option<TlsConfig>,
    /// Write the log to this file instead of stderr (default: stderr). SIGUSR1 (`twig
    /// --signal reopen`) reopens it, for logrotate.
    pub log_file: Option<PathBuf>,
    /// Write twig's process id to this file at start (default: none); `twig --signal` reads it.
    pub pid_file: Option<PathBuf>,
    /// Lame duck mode (SIGUSR2) closes the clients spread over this (default 2m, at least
    /// 30s, as nats-server).
    #[serde(deserialize_with = "values::de_duration")]
    pub lame_duck_duration: Duration,
    /// Lame duck mode waits this long after telling clients before closing the first
    /// (default 10s; shorter than `lame_duck_duration`).
    #[serde(deserialize_with = "values::de_duration")]
    pub lame_duck_grace_period: Duration,
    /// Log debug lines (default false).
    pub debug: bool,
    /// Log protocol traces (default false).
    pub trace: bool,
    /// `[leafnodes]`: uplinks to cloud NATS hubs (default: none).
    pub leafnodes: LeafConfig,
    /// Directory for stream files that name none (default `./twig-store`).
    pub store_dir: PathBuf,
    /// Flash-backed streams (`[[streams]]`).
    pub streams: Vec<StreamConfig>,
    /// Durable pull consumers on hub streams delivered locally (`[[sync]]`).
    pub sync: Vec<SyncConfig>,
    /// `[mqtt]`: the bridge to an MQTT broker (default: none).
    pub mqtt: Option<MqttConfig>,
    /// `[mqtt_listener]`: MQTT devices connect to twig directly (default: none).
    pub mqtt_listener: Option<MqttListenerConfig>,
    // Room for the sections other parts add, each an `Option<...Config>` or a `Vec`.
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: None,
            port: Port::Fixed(4222),
            server_name: None,
            http_host: None,
            http_port: None,
            http_max_connections: DEFAULT_HTTP_MAX_CONNECTIONS,
            http_max_request: DEFAULT_HTTP_MAX_REQUEST,
            http_timeout: Duration::from_secs(5),
            max_payload: 1024 * 1024,
            max_control_line: 4096,
            max_pending: 64 * 1024 * 1024,
            max_connections: 64 * 1024,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            max_subscriptions: 0,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            auth_timeout: None,
            write_deadline: Duration::from_secs(10),
            threads: 1,
            no_header_support: false,
            authorization: AuthConfig::default(),
            allow_anonymous: false,
            tls: None,
            log_file: None,
            pid_file: None,
            lame_duck_duration: Duration::from_secs(120),
            lame_duck_grace_period: Duration::from_secs(10),
            debug: false,
            trace: false,
            leafnodes: LeafConfig::default(),
            store_dir: PathBuf::from("twig-store"),
            streams: Vec::new(),
            sync: Vec::new(),
            mqtt: None,
            mqtt_listener: None,
        }
    }
}

/// `[authorization]`: at most one of a token, one user/password, or a `users` list.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A shared token clients send as `auth_token`.
    pub token: Option<String>,
    /// A single user's name (needs `password`).
    pub user: Option<String>,
    /// That user's password (plain text, or a bcrypt hash `$2a$...` as nats-server takes).
    #[serde(alias = "pass")]
    pub password: Option<String>,
    /// Several users, each `{ user, password }`, `{ nkey }`, or (with `tls.verify_and_map`)
    /// `{ user }` named by a client certificate.
    pub users: Vec<UserConfig>,
    /// Permissions for every user in `users` that has none of its own (nats-server's
    /// `default_permissions`; `permissions` here means the same, as there).
    #[serde(alias = "default_permission", alias = "permissions")]
    pub default_permissions: Option<Permissions>,
    /// A user (name or nkey) that clients sending no credentials are logged in as (nats-server's
    /// `no_auth_user`).
    pub no_auth_user: Option<String>,
    /// How addresses that keep failing to log in are slowed down.
    pub login_throttle: LoginThrottleConfig,
    /// bcrypt checks of logins running at once, each on a thread of its own off the event
    /// loop (default 2); further logins with a bcrypt password or token wait their turn.
    /// Beyond nats-server (which checks each in its client's goroutine).
    pub max_bcrypt_checks: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token: None,
            user: None,
            password: None,
            users: Vec::new(),
            default_permissions: None,
            no_auth_user: None,
            login_throttle: LoginThrottleConfig::default(),
            max_bcrypt_checks: 2,
        }
    }
}

/// `[authorization.login_throttle]`: after `free_failures` failed logins from one address, its
/// next attempts wait `first_delay`, doubling per failure up to `max_delay`; an address is
/// forgotten `forget_after` after its last failure; at most `max_addresses` are remembered.
/// Beyond nats-server (which has no such limit).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginThrottleConfig {
    /// Failures that cost nothing (default 3): a typo is not an attack.
    pub free_failures: u32,
    /// The first wait (default 1s; 0 turns the throttle off).
    #[serde(deserialize_with = "values::de_duration")]
    pub first_delay: Duration,
    /// The longest wait (default 30s).
    #[serde(deserialize_with = "values::de_duration")]
    pub max_delay: Duration,
    /// How long an address is remembered after its last failure (default 10m).
    #[serde(deserialize_with = "values::de_duration")]
    pub forget_after: Duration,
    /// Addresses remembered at most (default 4096, some 200 KiB); the oldest go first.
    pub max_addresses: usize,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        LoginThrottleConfig {
            free_failures: 3,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            forget_after: Duration::from_secs(600),
            max_addresses: 4096,
        }
    }
}

impl AuthConfig {
    /// True when clients must authenticate.
    pub fn is_enabled(&self) -> bool {
        self.token.is_some() || self.user.is_some() || !self.users.is_empty()
    }
}

// Secrets stay out of debug logs.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("users", &self.users)
            .field("default_permissions", &self.default_permissions)
            .field("no_auth_user", &self.no_auth_user)
            .field("login_throttle", &self.login_throttle)
            .field("max_bcrypt_checks", &self.max_bcrypt_checks)
            .finish()
    }
}

/// One entry of `authorization.users`.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User name (with `password`).
    #[serde(default)]
    pub user: Option<String>,
    /// Password (with `user`).
    #[serde(default, alias = "pass")]
    pub password: Option<String>,
    /// A user public nkey (`U...`, 56 characters), checked by signing the INFO nonce.
    #[serde(default)]
    pub nkey: Option<String>,
    /// The name permission templates use (`{{name()}}`): defaults to `user`; an nkey user has
    /// none unless given here.
    #[serde(default)]
    pub name: Option<String>,
    /// `key:value` tags for `{{tag(key)}}` templates.
    #[serde(default)]
    pub tags: Vec<String>,
    /// This user's permissions (default: `authorization.default_permissions`).
    #[serde(default, alias = "permission")]
    pub permissions: Option<Permissions>,
}

impl fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("nkey", &self.nkey)
            .field("name", &self.name)
            .field("tags", &self.tags)
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// `[tls]`: TLS on the client port.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first (paths relative to the working directory).
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates must chain to (needed by `verify`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Require and verify client certificates (default false).
    #[serde(default)]
    pub verify: bool,
    /// Verify client certificates and log each client in as the user its certificate names
    /// (SAN email, DNS name or URI, or subject DN), as nats-server's `verify_and_map`;
    /// implies `verify` (default false).
    #[serde(default)]
    pub verify_and_map: bool,
    /// Time allowed for the TLS handshake (default 2s, as nats-server).
    #[serde(
        default = "default_tls_timeout",
        deserialize_with = "values::de_duration"
    )]
    pub timeout: Duration,
}

/// nats-server's `TLS_TIMEOUT`.
pub fn default_tls_timeout() -> Duration {
    Duration::from_secs(2)
}

/// The two config formats twig reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// twig's TOML (`configs/gateway.toml`).
    Toml,
    /// nats-server's format (`leaf.conf`), mapped by [`natsconf`].
    NatsServer,
}

impl Format {
    /// By extension (`.toml`; `.conf`, `.cfg`), else by content: text that is valid TOML is
    /// TOML (the formats share `key = value` lines, and those mean the same in both);
    /// anything else (`key: value`, `block { }`, `include`) is nats-server's.
    pub fn of(path: &Path, text: &str) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Format::Toml,
            Some("conf" | "cfg") => Format::NatsServer,
            _ if text.parse::<toml::Table>().is_ok() => Format::Toml,
            _ => Format::NatsServer,
        }
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Toml => "TOML",
            Format::NatsServer => "nats-server format",
        }
    }
}

/// Why a configuration could not be used. Each renders as one sentence.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type or an unknown key.
    #[error("{}line {line}, column {column}: {message}", origin(path.as_deref()))]
    Parse {
        /// The file (`None` for text given directly).
        path: Option<PathBuf>,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong, as the TOML parser put it.
        message: String,
    },
    /// The values parse but do not make sense together.
    #[error("{}invalid `{option}`: {reason}", origin(path.as_deref()))]
    Invalid {
        /// The file, when the value came from one.
        path: Option<PathBuf>,
        /// The option, as written in the file (`authorization.users[1].nkey`).
        option: String,
        /// What is wrong.
        reason: String,
    },
}

fn origin(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

fn invalid(option: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: None,
        option: option.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// Loads and validates the file at `path` (TOML or nats-server's format, see
    /// [`Format::of`]); with `None`, the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Ok(Config::load_with_format(path)?.0)
    }

    /// [`Config::load`], also saying which format the file was in.
    pub fn load_with_format(path: Option<&Path>) -> Result<(Config, Format), ConfigError> {
        let Some(path) = path else {
            return Ok((Config::default(), Format::Toml));
        };
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let format = Format::of(path, &text);
        let with_path = |e: ConfigError| match e {
            ConfigError::Parse {
                path: None,
                line,
                column,
                message,
            } => ConfigError::Parse {
                path: Some(path.to_path_buf()),
                line,
                column,
                message,
            },
            ConfigError::Invalid {
                path: None,
                option,
                reason,
            } => ConfigError::Invalid {
                path: Some(path.to_path_buf()),
                option,
                reason,
            },
            other => other,
        };
        let config = match format {
            Format::Toml => Config::from_toml(&text),
            Format::NatsServer => natsconf::from_nats_conf(&text, Some(path)),
        }
        .map_err(with_path)?;
        Ok((config, format))
    }

    /// Parses and validates TOML text (errors carry no path).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let span = e.span();
            let (line, column) = span.as_ref().map_or((1, 1), |s| line_column(text, s.start));
            let message = one_line(e.message());
            // A value's error says what is wrong with it, not whose it is: add the key. (A
            // syntax error's span is empty or is not the whole value.)
            let message = match span.and_then(|s| value_key(text, s)) {
                Some(key) if !message.contains(key) => format!("`{key}`: {message}"),
                _ => message,
            };
            ConfigError::Parse {
                path: None,
                line,
                column,
                message,
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values and combinations the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // First: no later check (or the server) ever sees a number past its maximum.
        bounds::check(self)?;
        if let Some(h) = &self.host {
            check_host("host", h)?;
            if !is_loopback(h) && !self.authorization.is_enabled() && !self.allow_anonymous {
                return Err(invalid(
                    "host",
                    format!(
                        "{h:?} reaches beyond this machine, and no [authorization] is \
                         configured: anyone on the network could publish and subscribe. Add \
                         users, nkeys or a token, or set allow_anonymous = true if that is \
                         what you want"
                    ),
                ));
            }
        }
        streams::validate(&self.streams, self.leafnodes.remotes.len())?;
        if let Some(m) = &self.mqtt {
            mqtt::validate(m)?;
        }
        if let Some(m) = &self.mqtt_listener {
            mqtt_listener::validate(m, self.authorization.is_enabled(), self.allow_anonymous)?;
        }
        if let Some(h) = &self.http_host {
            check_host("http_host", h)?;
        }
        if let Some(name) = &self.server_name
            && (name.is_empty() || name.chars().any(char::is_whitespace))
        {
            return Err(invalid(
                "server_name",
                format!("{name:?} must be non-empty and without spaces"),
            ));
        }
        if self.max_payload == 0 || self.max_payload > MAX_PAYLOAD_LIMIT {
            return Err(invalid(
                "max_payload",
                format!("{} must be between 1 and 64 MiB", self.max_payload),
            ));
        }
        if self.max_pending < self.max_payload {
            return Err(invalid(
                "max_pending",
                format!(
                    "{} must be at least max_payload ({}), or no message could be queued",
                    self.max_pending, self.max_payload
                ),
            ));
        }
        if self.max_control_line == 0 || self.max_control_line > MAX_CONTROL_LINE_LIMIT {
            return Err(invalid(
                "max_control_line",
                format!("{} must be between 1 and 1 MiB", self.max_control_line),
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        if !(1..=MAX_LISTEN_BACKLOG).contains(&self.listen_backlog) {
            return Err(invalid(
                "listen_backlog",
                format!("{} must be between 1 and 65535", self.listen_backlog),
            ));
        }
        if !(1..=MAX_HTTP_CONNECTIONS).contains(&self.http_max_connections) {
            return Err(invalid(
                "http_max_connections",
                format!(
                    "{} must be between 1 and {MAX_HTTP_CONNECTIONS}",
                    self.http_max_connections
                ),
            ));
        }
        if !HTTP_MAX_REQUEST_RANGE.contains(&self.http_max_request) {
            return Err(invalid(
                "http_max_request",
                format!("{} must be between 256 B and 1 MiB", self.http_max_request),
            ));
        }
        if self.http_timeout.is_zero() {
            return Err(invalid("http_timeout", "must be more than 0"));
        }
        if self.ping_max == 0 {
            return Err(invalid("ping_max", "must be at least 1"));
        }
        let durations = [
            ("ping_interval", Some(self.ping_interval)),
            ("auth_timeout", self.auth_timeout),
            ("write_deadline", Some(self.write_deadline)),
            ("tls.timeout", self.tls.as_ref().map(|t| t.timeout)),
        ];
        for (option, d) in durations {
            if d == Some(Duration::ZERO) {
                return Err(invalid(option, "must be longer than zero"));
            }
        }
        if self.lame_duck_duration < Duration::from_secs(30) {
            return Err(invalid(
                "lame_duck_duration",
                format!(
                    "{} is too short, the minimum is 30s (as nats-server)",
                    values::format_duration(self.lame_duck_duration)
                ),
            ));
        }
        if self.lame_duck_grace_period >= self.lame_duck_duration {
            return Err(invalid(
                "lame_duck_grace_period",
                "must be shorter than lame_duck_duration",
            ));
        }
        for (option, path) in [("log_file", &self.log_file), ("pid_file", &self.pid_file)] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(invalid(option, "must not be empty"));
            }
        }
        self.validate_auth()?;
        self.leafnodes.validate()?;
        sync::validate(&self.sync, self.leafnodes.remotes.len())?;
        if let Some(tls) = &self.tls {
            if tls.cert_file.as_os_str().is_empty() || tls.key_file.as_os_str().is_empty() {
                return Err(invalid("tls", "cert_file and key_file are both required"));
            }
            if tls.verify && tls.ca_file.is_none() {
                return Err(invalid(
                    "tls.verify",
                    "needs tls.ca_file to verify client certificates against",
                ));
            }
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let a = &self.authorization;
        let kinds = [a.token.is_some(), a.user.is_some(), !a.users.is_empty()];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(invalid(
                "authorization",
                "use one of token, user + password, or users, not several",
            ));
        }
        if a.user.is_some() != a.password.is_some() {
            return Err(invalid(
                "authorization",
                "user and password must be given together",
            ));
        }
        if let Some(t) = &a.token {
            check_secret("authorization.token", t)?;
        }
        if let (Some(u), Some(p)) = (&a.user, &a.password) {
            check_name("authorization.user", u)?;
            check_secret("authorization.password", p)?;
        }
        let tls_map = self.tls.as_ref().is_some_and(|t| t.verify_and_map);
        let mut seen: Vec<&str> = Vec::new();
        for (i, u) in a.users.iter().enumerate() {
            let at = |field: &str| format!("authorization.users[{i}]{field}");
            let id = match (&u.user, &u.password, &u.nkey) {
                (Some(name), Some(pass), None) => {
                    check_name(&at(".user"), name)?;
                    check_secret(&at(".password"), pass)?;
                    name.as_str()
                }
                // A user without a password is one a client certificate names.
                (Some(name), None, None) if tls_map => {
                    check_name(&at(".user"), name)?;
                    name.as_str()
                }
                (Some(_), None, None) => {
                    return Err(invalid(
                        at(""),
                        "a user without a password needs tls.verify_and_map (the client \
                         certificate names the user); else give a password",
                    ));
                }
                (None, None, Some(nkey)) => {
                    check_user_nkey(&at(".nkey"), nkey)?;
                    nkey.as_str()
                }
                _ => {
                    return Err(invalid(at(""), "give either user + password, or nkey"));
                }
            };
            if seen.contains(&id) {
                return Err(invalid(at(""), format!("{id:?} is listed twice")));
            }
            seen.push(id);
            if let Some(n) = &u.name {
                check_name(&at(".name"), n)?;
            }
            if let Some(p) = &u.permissions {
                check_permissions(&at(".permissions"), p)?;
            }
        }
        if let Some(p) = &a.default_permissions {
            check_permissions("authorization.default_permissions", p)?;
        }
        let t = &a.login_throttle;
        if t.max_delay < t.first_delay {
            return Err(invalid(
                "authorization.login_throttle.max_delay",
                "must be at least first_delay",
            ));
        }
        if t.max_addresses == 0 {
            return Err(invalid(
                "authorization.login_throttle.max_addresses",
                "must be at least 1",
            ));
        }
        if a.max_bcrypt_checks == 0 {
            return Err(invalid(
                "authorization.max_bcrypt_checks",
                "must be at least 1",
            ));
        }
        if let Some(n) = &a.no_auth_user {
            // nats-server's validateNoAuthUser.
            if a.users.is_empty() {
                return Err(invalid(
                    "authorization.no_auth_user",
                    format!("{n:?} present, but users/nkeys are not defined"),
                ));
            }
            if !seen.contains(&n.as_str()) {
                return Err(invalid(
                    "authorization.no_auth_user",
                    format!("{n:?} not present as user or nkey in authorization.users"),
                ));
            }
        }
        if let Some(n) = self
            .mqtt_listener
            .as_ref()
            .and_then(|m| m.no_auth_user.as_ref())
            && !seen.contains(&n.as_str())
        {
            return Err(invalid(
                "mqtt_listener.no_auth_user",
                format!("{n:?} not present as user in authorization.users"),
            ));
        }
        Ok(())
    }

    /// The auth timeout in force: the configured one, else 2s, or `tls.timeout` + 1s with TLS
    /// (nats-server gives TLS clients the handshake time on top).
    pub fn effective_auth_timeout(&self) -> Duration {
        match (self.auth_timeout, &self.tls) {
            (Some(t), _) => t,
            (None, Some(tls)) => tls.timeout.saturating_add(Duration::from_secs(1)),
            (None, None) => Duration::from_secs(2),
        }
    }

    /// The client listen host as INFO, `/varz` and the log name it (`127.0.0.1` for the
    /// default, which listens on both loopbacks).
    pub fn listen_host(&self) -> &str {
        self.host.as_deref().unwrap_or(DEFAULT_HOST)
    }

    /// The monitoring host in force (`http_host`, else `host`, else `127.0.0.1`).
    pub fn effective_http_host(&self) -> &str {
        self.http_host.as_deref().unwrap_or(self.listen_host())
    }
}

/// What INFO and the log call the client listen host when none is configured (twig then
/// listens on both loopbacks, see the client listener).
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// Whether `host` can only be reached from this machine: a loopback address or `localhost`.
/// Anything else, names included, counts as the network.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost") || bare.eq_ignore_ascii_case("localhost."),
    }
}

fn check_host(option: &str, host: &str) -> Result<(), ConfigError> {
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(invalid(
            option,
            format!("{host:?} is not a host name or address"),
        ));
    }
    Ok(())
}

fn check_name(option: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(invalid(option, "must not be empty"));
    }
    Ok(())
}

fn check_secret(option: &str, secret: &str) -> Result<(), ConfigError> {
    check_name(option, secret)?;
    // nats-server checks a secret shaped like a bcrypt hash (`$2a$11$...`) with bcrypt and
    // only finds a broken one when every login fails: say so up front. (The shape test is
    // nats-server's `isBcrypt`, as `auth::password::is_bcrypt`; config imports no component.)
    let b = secret.as_bytes();
    let bcrypt_shaped = b.len() >= 7
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$';
    if bcrypt_shaped && secret.parse::<bcrypt::HashParts>().is_err() {
        return Err(invalid(
            option,
            "looks like a bcrypt hash but is not a valid one (60 characters, cost 04 to 31)",
        ));
    }
    Ok(())
}

fn check_permissions(option: &str, p: &Permissions) -> Result<(), ConfigError> {
    p.validate().map_err(|e| invalid(option, e.to_string()))
}

fn check_user_nkey(option: &str, nkey: &str) -> Result<(), ConfigError> {
    match nkeys::KeyPair::from_public_key(nkey) {
        Ok(kp) if kp.key_pair_type() == nkeys::KeyPairType::User => Ok(()),
        Ok(_) => Err(invalid(
            option,
            format!("{nkey:?} is not a user nkey (it must start with U)"),
        )),
        Err(e) => Err(invalid(
            option,
            format!("{nkey:?} is not a valid public nkey: {e}"),
        )),
    }
}

/// The TOML parser's message on one line (it spreads syntax errors over several, or none).
fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if parts.is_empty() {
        "invalid TOML syntax".into()
    } else {
        parts.join("; ")
    }
}

/// The key of `key = value` when `span` is exactly that value (a bare or quoted key of the same
/// line, also inside an inline table), for the messages of value errors.
fn value_key(text: &str, span: std::ops::Range<usize>) -> Option<&str> {
    let value = text.get(span.clone())?;
    if value.trim().is_empty() || value.contains('\n') {
        return None;
    }
    let head = text.get(..span.start)?;
    let line = &head[head.rfind('\n').map_or(0, |i| i + 1)..];
    let key = line.trim_end().strip_suffix('=')?;
    let key = key.rsplit([',', '{']).next()?.trim().trim_matches('"');
    let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    (!key.is_empty() && key.chars().all(bare)).then_some(key)
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count().saturating_add(1);
    let line_start = before.rfind('\n').map_or(0, |i| i.saturating_add(1));
    let column = before
        .get(line_start..)
        .map_or(0, |s| s.chars().count())
        .saturating_add(1);
    (line, column)
}

#[cfg(test)]
mod tests;
