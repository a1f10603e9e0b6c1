//! Smoke test of the cross-compiled `twig` for ARM boards, run under qemu-user on the host:
//! the shipped Raspberry Pi config loads, host clients publish, subscribe and request through
//! it, monitoring answers, and SIGTERM shuts it down cleanly (what systemd sends on stop).
//!
//! One test per target, each `#[ignore]`d in a plain `cargo test` because it needs the ARM
//! binary that `cross/build` makes; `cross/smoke TARGET` builds it and runs the test (and
//! `tests/run` runs that). The binary comes from `TWIG_BIN_AARCH64`, `TWIG_BIN_ARMV7`,
//! `TWIG_BIN_AARCH64_MUSL` or `TWIG_BIN_ARMV7_MUSL`, else `target/<triple>/release/twig`;
//! a missing binary or qemu is a failure, never a skip.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use async_nats::{ConnectOptions, HeaderMap};
use futures::StreamExt;
use twig_tests::harness::{parse_listening_port, workspace_root};

/// Emulated start-up is slower than native: give it more than the harness's 10 s.
const START_DEADLINE: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_secs(10);
const MONITOR: &str = "Starting http monitor on ";

/// An ARM build of twig and how to run it on this host.
struct Arm {
    triple: &'static str,
    env: &'static str,
    /// qemu-user and its arguments (`-L` = the target's glibc for dynamic builds).
    qemu: &'static [&'static str],
    /// ELF class (1 = 32-bit, 2 = 64-bit) and `e_machine` (40 = ARM, 183 = AArch64).
    elf: (u8, u16),
}

const AARCH64: Arm = Arm {
    triple: "aarch64-unknown-linux-gnu",
    env: "TWIG_BIN_AARCH64",
    qemu: &["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
    elf: (2, 183),
};
const ARMV7: Arm = Arm {
    triple: "armv7-unknown-linux-gnueabihf",
    env: "TWIG_BIN_ARMV7",
    qemu: &["qemu-arm", "-L", "/usr/arm-linux-gnueabihf"],
    elf: (1, 40),
};
const AARCH64_MUSL: Arm = Arm {
    triple: "aarch64-unknown-linux-musl",
    env: "TWIG_BIN_AARCH64_MUSL",
    qemu: &["qemu-aarch64"],
    elf: (2, 183),
};
const ARMV7_MUSL: Arm = Arm {
    triple: "armv7-unknown-linux-musleabihf",
    env: "TWIG_BIN_ARMV7_MUSL",
    qemu: &["qemu-arm"],
    elf: (1, 40),
};

#[test]
#[ignore = "needs the ARM build: run `cross/smoke aarch64`"]
fn aarch64_gnu_serves_host_clients_under_qemu() {
    smoke(&AARCH64);
}

#[test]
#[ignore = "needs the ARM build: run `cross/smoke armv7`"]
fn armv7_gnueabihf_serves_host_clients_under_qemu() {
    smoke(&ARMV7);
}

#[test]
#[ignore = "needs the ARM build: run `cross/smoke aarch64-musl`"]
fn aarch64_musl_serves_host_clients_under_qemu() {
    smoke(&AARCH64_MUSL);
}

#[test]
#[ignore = "needs the ARM build: run `cross/smoke armv7-musl`"]
fn armv7_musl_serves_host_clients_under_qemu() {
    smoke(&ARMV7_MUSL);
}

fn binary(arm: &Arm) -> PathBuf {
    let path = std::env::var_os(arm.env)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root()
                .join("target")
                .join(arm.triple)
                .join("release/twig")
        });
    assert!(
        path.is_file(),
        "{} not found: set {} or run `cross/build {}`",
        path.display(),
        arm.env,
        arm.triple
    );
    // Make sure this really is the ARM build, not a host binary qemu would refuse anyway.
    let mut head = [0u8; 20];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut head))
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        &head[..4],
        b"\x7fELF",
        "{} is not an ELF file",
        path.display()
    );
    let class_machine = (head[4], u16::from_le_bytes([head[18], head[19]]));
    assert_eq!(
        class_machine,
        arm.elf,
        "{} is not a {} binary (ELF class, machine)",
        path.display(),
        arm.triple
    );
    path
}

/// The emulated server; killed on drop if the test did not stop it.
struct Emulated {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
    /// The config copy and the store.
    _dir: tempfile::TempDir,
}

impl Emulated {
    fn start(arm: &Arm) -> Emulated {
        let bin = binary(arm);
        // The shipped Pi config, with flags that keep the test on loopback and free ports;
        // its MQTT listener's fixed 1883 becomes a random port (no flag sets it), and its
        // store lands in a temp dir (store_dir's default is relative to the working dir).
        let shipped = workspace_root().join("configs/raspberry-pi.toml");
        let text = std::fs::read_to_string(&shipped).expect("read the Pi config");
        assert!(
            text.contains("\nport = 1883\n"),
            "the Pi config's MQTT port moved"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("raspberry-pi.toml");
        std::fs::write(
            &config,
            text.replacen("\nport = 1883\n", "\nport = -1\n", 1),
        )
        .expect("write the test's copy");
        let (qemu, qemu_args) = arm.qemu.split_first().expect("qemu command");
        let mut child = Command::new(qemu)
            .args(qemu_args)
            .arg(&bin)
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-p", "-1", "-m", "-1"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {qemu} (apt-get install qemu-user): {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Emulated {
            child,
            lines,
            log: Vec::new(),
            _dir: dir,
        }
    }

    /// Waits for the client port, the monitoring port and `Server is ready`.
    fn ports(&mut self) -> (u16, u16) {
        let deadline = Instant::now() + START_DEADLINE;
        let (mut client, mut http) = (None, None);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    client = client.or_else(|| parse_listening_port(&line));
                    if let Some((_, addr)) = line.split_once(MONITOR) {
                        http = addr
                            .trim()
                            .rsplit_once(':')
                            .and_then(|(_, p)| p.parse().ok());
                    }
                    let ready = line.contains("Server is ready");
                    self.log.push(line);
                    if ready {
                        let ports = client.zip(http);
                        return ports.unwrap_or_else(|| {
                            panic!("ready without both ports; log:\n{}", self.log.join("\n"))
                        });
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "not ready within {START_DEADLINE:?}; log:\n{}",
                        self.log.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("twig exited while starting; log:\n{}", self.log.join("\n"))
                }
            }
        }
    }

    /// SIGTERM, then the exit status within a deadline (qemu-user delivers it to twig).
    fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for twig") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "twig still running {STEP:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A round trip through the server: once it returns, the server has processed everything
/// `client` sent before (async-nats' `flush` only flushes the socket).
async fn sync(client: &async_nats::Client) {
    let inbox = client.new_inbox();
    let mut s = client
        .subscribe(inbox.clone())
        .await
        .expect("subscribe inbox");
    client
        .publish(inbox, "".into())
        .await
        .expect("publish to inbox");
    tokio::time::timeout(STEP, s.next())
        .await
        .expect("no round trip within deadline")
        .expect("inbox subscription ended");
}

/// A plain HTTP/1.0 GET on loopback: (status, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to monitoring");
    s.set_read_timeout(Some(STEP)).expect("read timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send GET");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read HTTP reply");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP reply: {reply:?}"));
    (status, body.to_string())
}

fn smoke(arm: &Arm) {
    let mut twig = Emulated::start(arm);
    let (port, http_port) = twig.ports();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let url = format!("nats://127.0.0.1:{port}");
        let connect = || async {
            ConnectOptions::new()
                .connection_timeout(STEP)
                .connect(url.as_str())
                .await
                .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
        };
        let device = connect().await;
        let app = connect().await;

        // A device listens for commands and answers them.
        let mut commands = device.subscribe("cmd.pi.led").await.expect("subscribe");
        sync(&device).await;
        let responder = device.clone();
        let answered = tokio::spawn(async move {
            let m = tokio::time::timeout(STEP, commands.next())
                .await
                .expect("no command within deadline")
                .expect("command subscription ended");
            let reply = m.reply.expect("request has a reply subject");
            let answer = format!("ok:{}", String::from_utf8_lossy(&m.payload));
            responder
                .publish(reply, answer.into())
                .await
                .expect("reply");
            responder.flush().await.expect("flush reply");
        });

        // The app watches every sensor; the device publishes readings, the last one with headers.
        let mut readings = app.subscribe("sensors.>").await.expect("subscribe");
        sync(&app).await;
        let reply = tokio::time::timeout(STEP, app.request("cmd.pi.led", "on".into()))
            .await
            .expect("no reply within deadline")
            .expect("request");
        assert_eq!(&reply.payload[..], b"ok:on");
        answered.await.expect("responder task");

        const N: usize = 50;
        for i in 0..N {
            device
                .publish(format!("sensors.pi.t{}", i % 5), format!("{i}").into())
                .await
                .expect("publish");
        }
        let mut headers = HeaderMap::new();
        headers.insert("Unit", "celsius");
        device
            .publish_with_headers("sensors.pi.temp", headers, "21.5".into())
            .await
            .expect("publish with headers");
        device.flush().await.expect("flush");
        for i in 0..N {
            let m = tokio::time::timeout(STEP, readings.next())
                .await
                .unwrap_or_else(|_| panic!("reading {i} not delivered within deadline"))
                .expect("subscription ended");
            assert_eq!(m.subject.as_str(), format!("sensors.pi.t{}", i % 5));
            assert_eq!(m.payload, format!("{i}").as_bytes());
        }
        let m = tokio::time::timeout(STEP, readings.next())
            .await
            .expect("reading with headers not delivered within deadline")
            .expect("subscription ended");
        assert_eq!(&m.payload[..], b"21.5");
        let unit = m.headers.as_ref().and_then(|h| h.get("Unit"));
        assert_eq!(unit.map(|v| v.as_str()), Some("celsius"));
    });

    // Monitoring answers with the Pi config's name and the traffic just sent.
    assert_eq!(
        http_get(http_port, "/healthz"),
        (200, "{\"status\":\"ok\"}".to_string())
    );
    let (status, body) = http_get(http_port, "/varz");
    assert_eq!(status, 200, "{body}");
    let varz: serde_json::Value = serde_json::from_str(&body).expect("varz is JSON");
    assert_eq!(varz["server_name"], "raspberry-pi", "{body}");
    assert!(varz["in_msgs"].as_u64().is_some_and(|n| n >= 52), "{body}");
    // Both clients were dropped with the async block above.
    assert_eq!(varz["total_connections"], 2, "{body}");
    drop(rt);

    let status = twig.terminate();
    assert!(
        status.success(),
        "twig exited with {status} after SIGTERM; log:\n{}",
        twig.log.join("\n")
    );
}
