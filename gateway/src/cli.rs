//! The command line: nats-server's common flags, so tools that launch nats-server can launch
//! twig with the same arguments.
//!
//! Parsing follows Go's `flag` package, which nats-server uses: `-flag` and `--flag` are the
//! same, values come as `-flag value` or `-flag=value` (a value may start with `-`, as in
//! `-p -1`), booleans take an optional `=true`/`=false`. Hand-rolled because an argument
//! parser crate would cost more binary than this whole file.
use std::ffi::OsString;
use std::path::PathBuf;

use crate::config::{AuthConfig, Config, Port, TlsConfig, default_tls_timeout};

/// What the command line asked for. Unset options leave the config file's values alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cli {
    /// `-c/--config FILE`.
    pub config: Option<PathBuf>,
    /// `-a/--addr/--net HOST`.
    pub host: Option<String>,
    /// `-p/--port PORT` (`-1` = random).
    pub port: Option<Port>,
    /// `-m/--http_port PORT`: `Some(None)` for `-m 0` (monitoring off).
    pub http_port: Option<Option<Port>>,
    /// `-n/--name/--server_name NAME`.
    pub server_name: Option<String>,
    /// `--user USER`.
    pub user: Option<String>,
    /// `--pass PASSWORD`.
    pub pass: Option<String>,
    /// `--auth TOKEN`.
    pub auth_token: Option<String>,
    /// `--tls`: TLS on the client port, with `--tlscert`/`--tlskey`.
    pub tls: bool,
    /// `--tlscert FILE`.
    pub tls_cert: Option<PathBuf>,
    /// `--tlskey FILE`.
    pub tls_key: Option<PathBuf>,
    /// `--tlsverify`: TLS, and verify client certificates.
    pub tls_verify: bool,
    /// `--tlscacert FILE`: CA for client certificates.
    pub tls_ca: Option<PathBuf>,
    /// `--leaf URL[,URL…]` (repeatable): each adds one leafnode remote with these URLs.
    pub leaf: Vec<Vec<String>>,
    /// `-l/--log FILE`: log to this file (nats-server's `log_file`).
    pub log_file: Option<PathBuf>,
    /// `-P/--pid FILE`: write the process id here (nats-server's `pid_file`).
    pub pid_file: Option<PathBuf>,
    /// `-sl/--signal CMD[=PID|PIDFILE]`: signal a running twig and exit.
    pub signal: Option<crate::control::SignalRequest>,
    /// `-D/--debug` (or `-DV`).
    pub debug: bool,
    /// `-V/--trace` (or `-DV`).
    pub trace: bool,
    /// `-t`: check the configuration and exit.
    pub test_config: bool,
    /// `-h/--help`: print [`HELP`] and exit.
    pub help: bool,
    /// `-v/--version`: print [`version_line`] and exit.
    pub version: bool,
}

/// Why the command line was refused. Each renders as one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A flag twig does not know.
    #[error("unknown flag {0} (see twig --help)")]
    UnknownFlag(String),
    /// A flag that takes a value came last.
    #[error("flag {0} needs a value (see twig --help)")]
    MissingValue(String),
    /// A value that does not parse.
    #[error("invalid value {value:?} for flag {flag}: {reason}")]
    InvalidValue {
        /// The flag as written.
        flag: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A word that is not a flag.
    #[error("unexpected argument {0:?} (see twig --help)")]
    UnexpectedArgument(String),
    /// An argument that is not UTF-8.
    #[error("argument {0:?} is not valid UTF-8")]
    NotUtf8(OsString),
}

/// The text printed by `--help`.
pub const HELP: &str = "\
Usage: twig [options]

twig serves NATS clients as nats-server does; flags override the config file.

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 127.0.0.1 and ::1;
                                     0.0.0.0 or :: = every interface, both families)
    -p, --port <port>                Use port for clients (default: 4222, -1 = random)
    -n, --name,
        --server_name <server_name>  Server name (default: the server id)
    -m, --http_port <port>           Use port for http monitoring (-1 = random, 0 = off)
    -P, --pid <file>                 File to store PID
    -c, --config <file>              Configuration file (TOML, or nats-server's format)
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to twig process (ldm, stop, quit, term,
                                     reopen, reload); <pid> can be a PID or a PID file
                                     (default: --pid, or the config's pid_file)

Logging Options:
    -l, --log <file>                 File to redirect log output
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -DV                              Debug and trace

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

Leafnode Options:
        --leaf <url>[,<url>...]      Connect to a hub as a leafnode (nats-leaf://host:7422);
                                     comma-separated URLs are one remote, repeat for more

TLS Options:
        --tls                        Enable TLS, do not verify clients
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
";

/// The line printed by `--version` (nats-server prints `nats-server: v2.15.1`).
pub fn version_line() -> String {
    crate::util::version::version_line()
}

#[derive(Clone, Copy)]
enum Flag {
    Config,
    Host,
    Port,
    HttpPort,
    Name,
    User,
    Pass,
    Auth,
    Tls,
    TlsCert,
    TlsKey,
    TlsVerify,
    TlsCa,
    Leaf,
    LogFile,
    PidFile,
    Signal,
    Debug,
    Trace,
    DebugTrace,
    TestConfig,
    Help,
    Version,
}

fn lookup(name: &str) -> Option<Flag> {
    Some(match name {
        "c" | "config" => Flag::Config,
        "a" | "addr" | "net" => Flag::Host,
        "p" | "port" => Flag::Port,
        "m" | "http_port" => Flag::HttpPort,
        "n" | "name" | "server_name" => Flag::Name,
        "user" => Flag::User,
        "pass" => Flag::Pass,
        "auth" => Flag::Auth,
        "tls" => Flag::Tls,
        "tlscert" => Flag::TlsCert,
        "tlskey" => Flag::TlsKey,
        "tlsverify" => Flag::TlsVerify,
        "tlscacert" => Flag::TlsCa,
        "leaf" => Flag::Leaf,
        "l" | "log" => Flag::LogFile,
        "P" | "pid" => Flag::PidFile,
        "sl" | "signal" => Flag::Signal,
        "D" | "debug" => Flag::Debug,
        // nats-server's -VV also traces the system account; twig has none, so it is -V.
        "V" | "trace" | "VV" => Flag::Trace,
        "DV" | "VD" | "DVV" => Flag::DebugTrace,
        "t" => Flag::TestConfig,
        "h" | "help" => Flag::Help,
        "v" | "version" => Flag::Version,
        _ => return None,
    })
}

impl Flag {
    fn takes_value(self) -> bool {
        !matches!(
            self,
            Flag::Tls
                | Flag::TlsVerify
                | Flag::Debug
                | Flag::Trace
                | Flag::DebugTrace
                | Flag::TestConfig
                | Flag::Help
                | Flag::Version
        )
    }
}

impl Cli {
    /// Parses the arguments after the program name: `Cli::parse(std::env::args_os().skip(1))`.
    pub fn parse<I, S>(args: I) -> Result<Cli, CliError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut args = args
            .into_iter()
            .map(|a| a.into().into_string().map_err(CliError::NotUtf8));
        let mut cli = Cli::default();
        while let Some(arg) = args.next() {
            let arg = arg?;
            if arg == "--" {
                return match args.next() {
                    Some(next) => Err(CliError::UnexpectedArgument(next?)),
                    None => Ok(cli),
                };
            }
            let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(CliError::UnexpectedArgument(arg));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(flag) = lookup(name).filter(|_| !name.is_empty()) else {
                return Err(CliError::UnknownFlag(arg));
            };
            // Errors quote the flag as typed, without its `=value`.
            let flag_text = arg
                .split_once('=')
                .map_or(arg.as_str(), |(f, _)| f)
                .to_string();
            if flag.takes_value() {
                let value = match inline {
                    Some(v) => v,
                    None => args
                        .next()
                        .ok_or(CliError::MissingValue(flag_text.clone()))??,
                };
                cli.set_value(flag, &flag_text, value)?;
            } else {
                let on = match inline.as_deref() {
                    None | Some("true" | "1" | "t" | "TRUE" | "True") => true,
                    Some("false" | "0" | "f" | "FALSE" | "False") => false,
                    Some(other) => {
                        return Err(CliError::InvalidValue {
                            flag: flag_text,
                            value: other.into(),
                            reason: "expected true or false".into(),
                        });
                    }
                };
                cli.set_switch(flag, on);
            }
        }
        Ok(cli)
    }

    fn set_value(&mut self, flag: Flag, flag_text: &str, value: String) -> Result<(), CliError> {
        let invalid = |reason: String, value: &str| CliError::InvalidValue {
            flag: flag_text.into(),
            value: value.into(),
            reason,
        };
        let non_empty = |v: String| {
            if v.is_empty() {
                Err(invalid("must not be empty".into(), &v))
            } else {
                Ok(v)
            }
        };
        match flag {
            Flag::Config => self.config = Some(non_empty(value)?.into()),
            Flag::Host => self.host = Some(non_empty(value)?),
            Flag::Port => self.port = Some(Port::parse(&value).map_err(|r| invalid(r, &value))?),
            Flag::HttpPort => {
                self.http_port = Some(Port::parse_http(&value).map_err(|r| invalid(r, &value))?);
            }
            Flag::Name => self.server_name = Some(non_empty(value)?),
            Flag::User => self.user = Some(non_empty(value)?),
            Flag::Pass => self.pass = Some(non_empty(value)?),
            Flag::Auth => self.auth_token = Some(non_empty(value)?),
            Flag::TlsCert => self.tls_cert = Some(non_empty(value)?.into()),
            Flag::TlsKey => self.tls_key = Some(non_empty(value)?.into()),
            Flag::TlsCa => self.tls_ca = Some(non_empty(value)?.into()),
            Flag::LogFile => self.log_file = Some(non_empty(value)?.into()),
            Flag::PidFile => self.pid_file = Some(non_empty(value)?.into()),
            Flag::Signal => {
                self.signal = Some(
                    crate::control::SignalRequest::parse(&value).map_err(|r| invalid(r, &value))?,
                );
            }
            Flag::Leaf => {
                let urls: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(String::from)
                    .collect();
                if urls.is_empty() {
                    return Err(invalid("must name at least one URL".into(), &value));
                }
                for u in &urls {
                    crate::config::LeafUrl::parse(u).map_err(|r| invalid(r, u))?;
                }
                self.leaf.push(urls);
            }
            // Switches never get here (see `takes_value`).
            _ => self.set_switch(flag, true),
        }
        Ok(())
    }

    fn set_switch(&mut self, flag: Flag, on: bool) {
        match flag {
            Flag::Tls => self.tls = on,
            Flag::TlsVerify => self.tls_verify = on,
            Flag::Debug => self.debug = on,
            Flag::Trace => self.trace = on,
            Flag::DebugTrace => {
                self.debug = on;
                self.trace = on;
            }
            Flag::TestConfig => self.test_config = on,
            Flag::Help => self.help = on,
            Flag::Version => self.version = on,
            _ => {}
        }
    }

    /// Applies the flags over `config` (flags win). Any auth flag replaces the file's whole
    /// `[authorization]`; TLS flags fill in or override `[tls]`. Call
    /// [`Config::validate`] afterwards: `--user` without `--pass` is caught there.
    pub fn apply(&self, config: &mut Config) {
        if let Some(h) = &self.host {
            config.host = Some(h.clone());
        }
        if let Some(p) = self.port {
            config.port = p;
        }
        if let Some(p) = self.http_port {
            config.http_port = p;
        }
        if let Some(n) = &self.server_name {
            config.server_name = Some(n.clone());
        }
        config.debug |= self.debug;
        config.trace |= self.trace;
        if let Some(f) = &self.log_file {
            config.log_file = Some(f.clone());
        }
        if let Some(f) = &self.pid_file {
            config.pid_file = Some(f.clone());
        }
        for urls in &self.leaf {
            config
                .leafnodes
                .remotes
                .push(crate::config::RemoteConfig::with_urls(urls.clone()));
        }
        if self.user.is_some() || self.pass.is_some() || self.auth_token.is_some() {
            config.authorization = AuthConfig {
                token: self.auth_token.clone(),
                user: self.user.clone(),
                password: self.pass.clone(),
                ..AuthConfig::default()
            };
        }
        let any_tls = self.tls
            || self.tls_verify
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.tls_ca.is_some();
        if any_tls {
            let tls = config.tls.get_or_insert_with(|| TlsConfig {
                cert_file: PathBuf::new(),
                key_file: PathBuf::new(),
                ca_file: None,
                verify: false,
                verify_and_map: false,
                timeout: default_tls_timeout(),
            });
            if let Some(c) = &self.tls_cert {
                tls.cert_file.clone_from(c);
            }
            if let Some(k) = &self.tls_key {
                tls.key_file.clone_from(k);
            }
            if let Some(ca) = &self.tls_ca {
                tls.ca_file = Some(ca.clone());
            }
            tls.verify |= self.tls_verify;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, CliError> {
        Cli::parse(args.iter().copied())
    }

    #[test]
    fn what_test_harnesses_pass() {
        let cli = parse(&["-a", "127.0.0.1", "-p", "-1", "-m", "-1", "-D", "-V"]).unwrap();
        assert_eq!(cli.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(cli.port, Some(Port::Random));
        assert_eq!(cli.http_port, Some(Some(Port::Random)));
        assert!(cli.debug && cli.trace);
    }

    #[test]
    fn long_and_short_spellings_and_equals_forms() {
        let a = parse(&[
            "--addr=0.0.0.0",
            "--port",
            "4333",
            "--http_port=8222",
            "-c",
            "x.toml",
        ]);
        let b = parse(&[
            "-net",
            "0.0.0.0",
            "-port=4333",
            "-m",
            "8222",
            "--config=x.toml",
        ]);
        assert_eq!(a, b);
        let a = a.unwrap();
        assert_eq!(a.port, Some(Port::Fixed(4333)));
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
        for name in ["-n", "--name", "--server_name", "-server_name"] {
            assert_eq!(
                parse(&[name, "hub"]).unwrap().server_name.as_deref(),
                Some("hub")
            );
        }
        assert_eq!(parse(&["-m", "0"]).unwrap().http_port, Some(None));
    }

    #[test]
    fn combined_log_switches() {
        for f in ["-DV", "-VD", "--DV", "-DVV"] {
            let cli = parse(&[f]).unwrap();
            assert!(cli.debug && cli.trace, "{f}");
        }
        let cli = parse(&["--debug=true", "--trace=false"]).unwrap();
        assert!(cli.debug && !cli.trace);
        assert!(parse(&["-D=maybe"]).is_err());
    }

    #[test]
    fn help_and_version() {
        assert!(parse(&["-h"]).unwrap().help);
        assert!(parse(&["--help"]).unwrap().help);
        assert!(parse(&["-v"]).unwrap().version);
        assert!(parse(&["--version"]).unwrap().version);
        assert!(version_line().starts_with("twig: v"));
        // Every flag the parser knows is in the help text.
        for flag in [
            "--addr",
            "--net",
            "--port",
            "--name",
            "--server_name",
            "--http_port",
            "--config",
            "-t ",
            "--debug",
            "--trace",
            "-DV",
            "--user",
            "--pass",
            "--auth",
            "--tls ",
            "--tlscert",
            "--tlskey",
            "--tlsverify",
            "--tlscacert",
            "--leaf",
            "--log",
            "--pid",
            "--signal",
            "-sl",
            "--help",
            "--version",
        ] {
            assert!(HELP.contains(flag), "{flag} missing from help");
        }
    }

    #[test]
    fn errors_are_clear() {
        let e = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(e(&["--bogus"]), "unknown flag --bogus (see twig --help)");
        assert_eq!(e(&["-"]), "unknown flag - (see twig --help)");
        assert_eq!(e(&["-p"]), "flag -p needs a value (see twig --help)");
        assert_eq!(
            e(&["-p", "http"]),
            "invalid value \"http\" for flag -p: \"http\" is not a number"
        );
        assert!(e(&["--port=99999"]).contains("out of range"));
        assert_eq!(
            e(&["serve"]),
            "unexpected argument \"serve\" (see twig --help)"
        );
        assert!(e(&["--", "x"]).starts_with("unexpected argument"));
        assert!(e(&["--user="]).contains("must not be empty"));
    }

    #[test]
    fn flags_override_the_file() {
        let mut config =
            Config::from_toml("port = 5000\ndebug = false\n[authorization]\ntoken = \"file\"")
                .unwrap();
        let cli = parse(&[
            "-p", "6000", "--user", "u", "--pass", "p", "-D", "-n", "edge",
        ])
        .unwrap();
        cli.apply(&mut config);
        assert_eq!(config.port, Port::Fixed(6000));
        assert!(config.debug && !config.trace);
        assert_eq!(config.server_name.as_deref(), Some("edge"));
        assert_eq!(config.authorization.token, None);
        assert_eq!(config.authorization.user.as_deref(), Some("u"));
        config.validate().unwrap();
    }

    #[test]
    fn leaf_flags_add_remotes() {
        let mut config = Config::default();
        let cli = parse(&[
            "--leaf",
            "nats-leaf://127.0.0.1:7422,nats-leaf://127.0.0.1:7423",
            "--leaf=tls://hub:7422",
        ])
        .unwrap();
        cli.apply(&mut config);
        let remotes = &config.leafnodes.remotes;
        assert_eq!(remotes.len(), 2);
        assert_eq!(remotes[0].urls.len(), 2);
        assert_eq!(remotes[1].urls, vec!["tls://hub:7422".to_string()]);
        // websocket remotes are URLs too (issue 15); other schemes are not.
        assert!(parse(&["--leaf", "ws://hub/leafnode"]).is_ok());
        assert!(parse(&["--leaf", "http://x"]).is_err());
        assert!(parse(&["--leaf", ","]).is_err());
    }

    #[test]
    fn no_flags_change_nothing() {
        let mut config = Config::default();
        parse(&[]).unwrap().apply(&mut config);
        assert_eq!(config, Config::default());
    }

    #[test]
    fn user_without_pass_is_caught_by_validate() {
        let mut config = Config::default();
        parse(&["--user", "u"]).unwrap().apply(&mut config);
        let e = config.validate().unwrap_err().to_string();
        assert!(
            e.contains("user and password must be given together"),
            "{e}"
        );
    }

    #[test]
    fn tls_flags_build_a_tls_section() {
        let mut config = Config::default();
        let cli = parse(&["--tlsverify", "--tlscert", "c.pem", "--tlskey", "k.pem"]).unwrap();
        cli.apply(&mut config);
        // verify needs a CA: refused with one sentence.
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("tls.ca_file")
        );
        parse(&["--tlscacert=ca.pem"]).unwrap().apply(&mut config);
        config.validate().unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(tls.cert_file, PathBuf::from("c.pem"));
        assert!(tls.verify);
        let mut config = Config::default();
        parse(&["--tls"]).unwrap().apply(&mut config);
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("cert_file")
        );
    }

    #[test]
    fn non_utf8_arguments_are_errors() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'-', 0xff]);
        assert!(matches!(Cli::parse([bad]), Err(CliError::NotUtf8(_))));
    }
}
