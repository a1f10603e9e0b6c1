//! A real mosquitto (Debian's package) for the MQTT bridge tests and benchmark: started with
//! `configs/mosquitto.conf` plus a listener on a free port and a private persistence folder,
//! restartable on the same port (gracefully, so it saves its database, or by `kill -9`), killed
//! on drop. Never the system service.
//!
//! Binary: `TWIG_MOSQUITTO`, else `mosquitto` in `/usr/sbin`, `/usr/bin` or on PATH
//! (`apt-get install mosquitto`; tests/run installs it). Missing is a panic, never a skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{free_port, workspace_root};

/// How long mosquitto may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The mosquitto binary; panics with install instructions when missing.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TWIG_MOSQUITTO").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("mosquitto not found: `apt-get install mosquitto` or set TWIG_MOSQUITTO (tests/run installs it)")
        })
}

/// A running mosquitto.
pub struct Mosquitto {
    dir: tempfile::TempDir,
    /// The MQTT port on 127.0.0.1.
    pub port: u16,
    config: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Mosquitto {
    /// Starts mosquitto with the shipped config on a free port.
    pub fn start() -> Mosquitto {
        Mosquitto::start_with("")
    }

    /// Starts it with `extra` config lines after the shipped ones.
    pub fn start_with(extra: &str) -> Mosquitto {
        let dir = tempfile::Builder::new()
            .prefix("twig-mosquitto-")
            .tempdir()
            .expect("temp dir for mosquitto");
        let port = free_port();
        let shipped = workspace_root().join("configs/mosquitto.conf");
        let base = fs::read_to_string(&shipped)
            .unwrap_or_else(|e| panic!("read {}: {e}", shipped.display()));
        let store = dir.path().join("store");
        fs::create_dir_all(&store).expect("persistence dir");
        // Started as root, mosquitto drops to its own user (`user mosquitto`): that user must
        // reach and write the store.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755));
            let _ = fs::set_permissions(&store, fs::Permissions::from_mode(0o777));
        }
        let text = format!(
            "{base}\n# Added by the test harness:\nlistener {port} 127.0.0.1\npersistence_location {}/\n{extra}\n",
            store.display()
        );
        let config = dir.path().join("mosquitto.conf");
        fs::write(&config, text).expect("write mosquitto config");
        let mut m = Mosquitto {
            dir,
            port,
            config,
            child: None,
            starts: 0,
        };
        m.spawn();
        m
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// A folder that lives as long as the broker.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops it the way a service manager does (SIGTERM): it saves its database first.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + READY_TIMEOUT;
            while !matches!(c.try_wait(), Ok(Some(_))) {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            let _ = c.wait();
            let log = self.log();
            assert!(
                !log.contains("Error saving"),
                "mosquitto could not save its database:\n{log}"
            );
        }
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it gracefully and starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Everything the current run logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("mosquitto-{}.log", self.starts))
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = fs::File::create(self.log_path()).expect("mosquitto log file");
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mosquitto: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            // The log line comes after the listener is open.
            let log = self.log();
            if log.contains(" running") {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("mosquitto exited ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto not ready within {READY_TIMEOUT:?}:\n{log}"
            );
            // Polling the log file; the deadline bounds the loop.
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}
