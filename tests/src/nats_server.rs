//! A real nats-server for a test: found, configured on free ports, waited for, killed on drop.
//!
//! The binary comes from `TWIG_NATS_SERVER`, else `nats-server` on `PATH`; if neither exists
//! the test panics with a message saying so. Tests never skip silently.

use std::ffi::OsString;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to open its ports (JetStream and MQTT start last).
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// What to switch on in the server's config file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `jetstream { store_dir }` in the server's temp dir.
    pub jetstream: bool,
    /// An `mqtt` listener on a free port (needs `jetstream`).
    pub mqtt: bool,
    /// Raw config text appended as is (e.g. a `leafnodes` block).
    pub extra: String,
}

impl Options {
    /// JetStream plus an MQTT listener, as nats-server's MQTT support requires.
    pub fn mqtt() -> Self {
        Options {
            jetstream: true,
            mqtt: true,
            extra: String::new(),
        }
    }
}

/// A running nats-server on 127.0.0.1; killed and its store removed on drop.
pub struct NatsServer {
    child: Child,
    /// The NATS client port.
    pub client_port: u16,
    /// The MQTT port, if [`Options::mqtt`] was set.
    pub mqtt_port: Option<u16>,
    log: PathBuf,
    // Dropped after the child is killed (field order), so the store goes last.
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server with `options` and returns once every port it opens accepts connections.
    pub fn start(options: &Options) -> NatsServer {
        let binary = crate::harness::nats_server_binary();
        let dir = tempfile::Builder::new()
            .prefix("twig-nats-")
            .tempdir()
            .expect("create a temp dir for nats-server");
        let client_port = crate::harness::free_port();
        let mqtt_port = options.mqtt.then(crate::harness::free_port);
        let log = dir.path().join("nats-server.log");
        let config = dir.path().join("nats-server.conf");
        fs::write(
            &config,
            config_text(options, dir.path(), client_port, mqtt_port),
        )
        .expect("write nats-server config");
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nats-server at {}: {e}", binary.display()));
        let mut server = NatsServer {
            child,
            client_port,
            mqtt_port,
            log,
            _dir: dir,
        };
        server.wait_ready(client_port);
        if let Some(port) = mqtt_port {
            server.wait_ready(port);
        }
        server
    }

    /// `nats://127.0.0.1:<client port>`.
    pub fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// The MQTT listener's port; panics if the server has none.
    pub fn mqtt_port(&self) -> u16 {
        self.mqtt_port
            .expect("server was started without an MQTT listener")
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `port` until it accepts a connection; panics with the log if the server exits or
    /// the deadline passes.
    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "nats-server exited ({status}) before port {port} opened:\n{}",
                    self.log()
                );
            }
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(_) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!(
                        "nats-server port {port} not ready in {READY_TIMEOUT:?} ({e}):\n{}",
                        self.log()
                    )
                }
                // Not listening yet: poll again shortly; the deadline bounds the loop.
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(options: &Options, dir: &Path, client_port: u16, mqtt_port: Option<u16>) -> String {
    let mut text =
        format!("server_name: twig_test_{client_port}\nlisten: \"127.0.0.1:{client_port}\"\n");
    if options.jetstream {
        let store: OsString = dir.join("jetstream").into_os_string();
        text += &format!(
            "jetstream {{\n  store_dir: {:?}\n}}\n",
            store.to_string_lossy()
        );
    }
    if let Some(port) = mqtt_port {
        text += &format!("mqtt {{\n  listen: \"127.0.0.1:{port}\"\n}}\n");
    }
    text += &options.extra;
    text
}
