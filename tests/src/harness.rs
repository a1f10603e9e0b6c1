//! Start the server under test — twig or a real nats-server — the same way for every test.
//!
//! Which server runs is chosen per test run by `TWIG_TEST_TARGET=twig|nats-server` (default
//! `twig`), so every end-to-end test can first be validated against nats-server and then be
//! pointed at twig unchanged. Binaries:
//! - twig: `TWIG_BIN`, else `<workspace>/target/release/twig`, else `target/debug/twig`;
//! - nats-server: `TWIG_NATS_SERVER`, else `nats-server` on `PATH`.
//!
//! A missing binary is a panic with a clear message, never a skipped test.
//!
//! Both servers get the same command line (`-a 127.0.0.1 -p -1`, plus `-m`, `--user`, `--pass`,
//! `--auth` when set) and, for options that have no flag, a config file rendered from one
//! [`ServerOptions`] (nats-server's conf format or twig's TOML, see [`options`]). The port is read
//! from the `Listening for client connections on HOST:PORT` log line and the server counts as
//! started once it logged `Server is ready`, both within [`START_DEADLINE`].

pub mod conversation;
pub mod options;
pub mod raw;

pub use options::{NkeyUser, ServerOptions, TestCerts};
pub use raw::RawConn;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to log its port and `Server is ready`.
pub const START_DEADLINE: Duration = Duration::from_secs(10);

/// Log line prefix that carries the client port (same text in nats-server and twig).
const LISTENING: &str = "Listening for client connections on ";
/// Log line that says the server accepts clients.
const READY: &str = "Server is ready";
/// Cap on kept log lines, so a chatty server (`-V`) cannot grow the test's memory forever.
const MAX_LOG_LINES: usize = 20_000;

/// Which server implementation a test talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The `twig` binary from this workspace.
    Twig,
    /// A real nats-server (the reference).
    NatsServer,
}

impl Target {
    /// The target of this test run: `TWIG_TEST_TARGET` (`twig` or `nats-server`), default twig.
    pub fn from_env() -> Target {
        match std::env::var("TWIG_TEST_TARGET").as_deref() {
            Err(_) | Ok("") | Ok("twig") => Target::Twig,
            Ok("nats-server") => Target::NatsServer,
            Ok(other) => {
                panic!("TWIG_TEST_TARGET={other:?}: expected `twig` or `nats-server`")
            }
        }
    }

    /// Short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Target::Twig => "twig",
            Target::NatsServer => "nats-server",
        }
    }

    /// Path of this target's binary; panics with a clear message when it cannot be found.
    pub fn binary(self) -> PathBuf {
        match self {
            Target::Twig => twig_binary(),
            Target::NatsServer => nats_server_binary(),
        }
    }
}

/// The workspace root (parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

fn twig_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TWIG_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "TWIG_BIN={} does not exist", p.display());
        return p;
    }
    let root = workspace_root();
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("twig");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "twig binary not found: set TWIG_BIN, or build it (`cargo build --release -p twig-gateway` \
         -> {}/target/release/twig); or run against nats-server with TWIG_TEST_TARGET=nats-server",
        root.display()
    )
}

/// `TWIG_NATS_SERVER`, else `nats-server` on `PATH`; panics with what to do if missing (these
/// tests run against a real server and never skip).
pub fn nats_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TWIG_NATS_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "TWIG_NATS_SERVER={} does not exist",
            p.display()
        );
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join("nats-server");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "nats-server not found: set TWIG_NATS_SERVER or put nats-server on PATH (tests/run installs it)"
    )
}

/// A free TCP port on loopback, for ports a server cannot pick itself.
///
/// Chosen below the kernel's ephemeral range (32768-60999 by default), checked free on both
/// loopbacks and never handed out twice by this process. A port taken from `bind(:0)` and
/// released is an ephemeral one: any outgoing connection may get it as its local port before
/// the server binds it, which a loaded CI run hit ("Address already in use" on a monitor port).
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, Ordering};
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    static STATE: AtomicU64 = AtomicU64::new(0);
    const LOW: u64 = 10_000;
    const HIGH: u64 = 32_000;
    if STATE.load(Ordering::Relaxed) == 0 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let seed = (nanos ^ (u64::from(std::process::id()) << 32)) | 1;
        let _ = STATE.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..1000 {
        // xorshift64: processes started at once still differ by pid in the seed.
        let mut x = STATE.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        STATE.store(x, Ordering::Relaxed);
        let port = (LOW + x % (HIGH - LOW)) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        let given = given.get_or_insert_with(HashSet::new);
        if given.contains(&port) {
            continue;
        }
        let v4 = TcpListener::bind(("127.0.0.1", port)).is_ok();
        // No IPv6 on the machine counts as free; a v6 listener on the port does not.
        let v6 = match TcpListener::bind(("::1", port)) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::AddrInUse,
        };
        if v4 && v6 {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port in {LOW}..{HIGH} after 1000 tries")
}

/// A running server process; killed when dropped.
pub struct ServerUnderTest {
    target: Target,
    binary: PathBuf,
    options: ServerOptions,
    /// Keeps the config file (and TLS files the options point to) alive.
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    http_port: Option<u16>,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerUnderTest {
    /// Start the target chosen by `TWIG_TEST_TARGET` with these options.
    pub fn start(options: &ServerOptions) -> ServerUnderTest {
        ServerUnderTest::start_target(Target::from_env(), options)
    }

    /// Start a given target with these options.
    pub fn start_target(target: Target, options: &ServerOptions) -> ServerUnderTest {
        let binary = target.binary();
        let dir = tempfile::Builder::new()
            .prefix("twig-test-")
            .tempdir()
            .expect("create temp dir");
        // Ports from `free_port` (below the kernel's ephemeral range) rather than `-1`: a
        // restart binds the same ports again, and an ephemeral port could meanwhile be the
        // local port of some outgoing connection ("address already in use").
        let mut options = options.clone();
        if options.http_port == Some(0) {
            options.http_port = Some(free_port());
        }
        let first_port = options.port.unwrap_or_else(free_port);
        let mut s = ServerUnderTest {
            target,
            binary,
            options,
            dir,
            child: None,
            port: 0,
            http_port: None,
            log: Arc::new(Mutex::new(Vec::new())),
        };
        s.spawn(Some(first_port));
        s
    }

    /// The monitoring port, once bound (see [`ServerOptions::http_port`]).
    pub fn http_port(&self) -> Option<u16> {
        self.http_port
    }

    /// Which implementation this is.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, for raw sockets.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `nats://[::1]:PORT` (with [`ServerOptions::ipv6_loopback`]).
    pub fn url_v6(&self) -> String {
        format!("nats://[::1]:{}", self.port)
    }

    /// Sends `command` (`ldm`, `reload`, `reopen`, `quit`, ...) the way an operator does:
    /// `<the server's own binary> --signal command=PID`, which twig and nats-server share.
    pub fn signal(&self, command: &str) {
        let out = Command::new(&self.binary)
            .arg("--signal")
            .arg(format!("{command}={}", self.pid()))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} --signal: {e}", self.binary.display()));
        assert!(
            out.status.success(),
            "{} --signal {command} failed: {}{}",
            self.target.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits up to `timeout` for the process to exit; its exit code, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the log holds `needle` (within [`START_DEADLINE`]).
    pub fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + START_DEADLINE;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{} did not log {needle:?}:\n{}",
                self.target.name(),
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The options it was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// A temp directory that lives as long as the server (for test files such as certs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("server is not running")
    }

    /// Everything the server logged so far (stderr, then stdout lines marked `[stdout]`).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Waits (at most `within`) until the server logged its `n`-th reload outcome, done or
    /// refused (nats-server and twig use these words); returns the log then.
    pub fn wait_reloads(&self, n: usize, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            let done = log.matches("Reloaded server configuration").count()
                + log.matches("Failed to reload server configuration").count();
            if done >= n {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log reload {n}:\n{log}",
                self.target.name()
            );
            // Polling the captured log; the deadline bounds the loop.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident set size of the server process in bytes (`VmRSS` of /proc/PID/status).
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid()).expect("read VmRSS of the server")
    }

    /// Kill the server and start it again on the same port (client reconnect tests).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(Some(self.port));
    }

    /// Kill the server now (also done on drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn spawn(&mut self, port: Option<u16>) {
        let mut cmd = Command::new(&self.binary);
        match (self.options.ipv6_loopback, self.target) {
            // twig's default listens on both loopbacks: pass no address at all.
            (true, Target::Twig) => {}
            (true, Target::NatsServer) => {
                cmd.arg("-a").arg("::1");
            }
            (false, _) => {
                cmd.arg("-a").arg("127.0.0.1");
            }
        }
        cmd.arg("-p")
            .arg(port.map_or("-1".to_string(), |p| p.to_string()));
        let mut options = self.options.clone();
        if options.http_port == Some(0) && self.http_port.is_some() {
            // A restart keeps the monitoring port the first run picked.
            options.http_port = self.http_port;
        }
        for a in options.command_line_args() {
            cmd.arg(a);
        }
        if let Some(conf) = self.options.render_config(self.target) {
            let name = match self.target {
                Target::Twig => "twig.toml",
                Target::NatsServer => "nats-server.conf",
            };
            let path = self.dir.path().join(name);
            std::fs::write(&path, conf).expect("write server config");
            cmd.arg("-c").arg(path);
        }
        cmd.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        let (tx, rx) = channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        pump_lines(stderr, None, Some(tx), Arc::clone(&self.log));
        pump_lines(stdout, Some("[stdout] "), None, Arc::clone(&self.log));
        self.child = Some(child);
        match wait_until_ready(&rx) {
            Ok((p, http)) => {
                self.port = p;
                if http.is_some() {
                    self.http_port = http;
                }
            }
            Err(why) => {
                let running = self.is_running();
                self.stop();
                panic!(
                    "{} ({}) did not start: {why} (process {}); log:\n{}",
                    self.target.name(),
                    self.binary.display(),
                    if running {
                        "still running, killed"
                    } else {
                        "exited"
                    },
                    self.log()
                );
            }
        }
    }
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copy a pipe's lines into the shared log, also sending stderr lines to the start waiter.
/// A server must never block on a full pipe, so this keeps reading until the pipe closes.
fn pump_lines(
    pipe: impl Read + Send + 'static,
    mark: Option<&'static str>,
    tx: Option<Sender<String>>,
    log: Arc<Mutex<Vec<String>>>,
) {
    thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            if let Some(tx) = &tx {
                let _ = tx.send(line.clone());
            }
            if let Ok(mut l) = log.lock()
                && l.len() < MAX_LOG_LINES
            {
                l.push(format!("{}{line}", mark.unwrap_or("")));
            }
        }
    });
}

/// Read stderr lines until the port and `Server is ready` were seen, within [`START_DEADLINE`].
/// Also returns the monitoring port if one was logged.
fn wait_until_ready(rx: &Receiver<String>) -> Result<(u16, Option<u16>), String> {
    let deadline = Instant::now() + START_DEADLINE;
    let mut port = None;
    let mut http = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "no `{LISTENING}HOST:PORT` and `{READY}` on stderr within {START_DEADLINE:?} (port seen: {port:?})"
                ));
            }
            Err(RecvTimeoutError::Disconnected) => return Err("stderr closed".into()),
        };
        if let Some(p) = parse_listening_port(&line) {
            port = Some(p);
        }
        if let Some(p) = parse_port_after(&line, HTTP_MONITOR) {
            http = Some(p);
        }
        if line.contains(READY) {
            return port
                .map(|p| (p, http))
                .ok_or_else(|| format!("`{READY}` logged before `{LISTENING}`"));
        }
    }
}

/// The port of a `Listening for client connections on HOST:PORT` log line.
pub fn parse_listening_port(line: &str) -> Option<u16> {
    parse_port_after(line, LISTENING)
}

/// What both servers log when the monitoring port is bound.
const HTTP_MONITOR: &str = "Starting http monitor on ";

fn parse_port_after(line: &str, what: &str) -> Option<u16> {
    let (_, rest) = line.split_once(what)?;
    let addr = rest.split_whitespace().next()?;
    addr.rsplit_once(':')?.1.parse().ok()
}

/// Resident set size of a process in bytes, from `VmRSS` in /proc/PID/status.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_is_read_from_nats_server_and_twig_style_lines() {
        let nats = "[123] 2026/11/22 05:23:42.123456 [INF] Listening for client connections on 127.0.0.1:40123";
        assert_eq!(parse_listening_port(nats), Some(40123));
        let v6 = "Listening for client connections on [::1]:4222";
        assert_eq!(parse_listening_port(v6), Some(4222));
        assert_eq!(parse_listening_port("Server is ready"), None);
    }

    #[test]
    fn rss_of_this_process_is_known() {
        let rss = rss_bytes(std::process::id()).unwrap();
        assert!(rss > 0);
    }
}
