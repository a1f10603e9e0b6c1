//! Secure defaults and login hygiene, end to end with the twig binary:
//! - twig refuses to serve the network without authorization (unless `allow_anonymous`);
//! - failed logins are counted in `/varz` and `/metrics`, and logged with the address;
//! - an address that keeps failing waits before its next login is read;
//! - no secret (password, token, leaf remote credentials) ever shows in the log (with debug
//!   and protocol traces on), `/varz`, `/connz`, `/leafz` or `-ERR` texts.

#[path = "common/uplink.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Twig;
use twig_tests::harness::Target;

const PASSWORD: &str = "hunter2-PASS-x1";
const LEAF_SECRET: &str = "leafSECRET-y2";

/// A monitoring GET's body.
fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("monitoring port");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// One login over raw TCP: what the server answered to CONNECT + PING (`PONG` or the -ERR).
fn login(addr: &str, user: &str, pass: &str) -> String {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut info = String::new();
    r.read_line(&mut info).unwrap();
    assert!(info.starts_with("INFO "), "{info}");
    write!(
        w,
        "CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{pass}\",\"protocol\":1}}\r\nPING\r\n"
    )
    .unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

#[test]
fn the_network_is_refused_without_authorization() {
    let out = Command::new(Target::Twig.binary())
        .args(["-a", "0.0.0.0", "-p", "-1"])
        .stdin(Stdio::null())
        .output()
        .expect("run twig");
    assert!(
        !out.status.success(),
        "twig started on 0.0.0.0 without authorization"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no [authorization]") && err.contains("allow_anonymous"),
        "{err}"
    );
}

#[test]
fn failed_logins_are_counted_logged_slowed_and_secrets_stay_hidden() {
    let dir = tempfile::tempdir().unwrap();
    // The leaf remote points at a closed port: twig keeps retrying it (and logging that).
    let closed = twig_tests::harness::free_port();
    let toml = format!(
        r#"
debug = true
trace = true

[authorization]
users = [{{ user = "app", password = "{PASSWORD}" }}]
login_throttle = {{ free_failures = 2, first_delay = "400ms", max_delay = "2s" }}

[[leafnodes.remotes]]
urls = ["nats://edge:{LEAF_SECRET}@127.0.0.1:{closed}"]
"#
    );
    let twig = Twig::with_config(dir.path(), &toml);
    let addr = twig.sut.addr();

    // A good login, traced: the password must not appear in the trace of its CONNECT.
    assert_eq!(login(&addr, "app", PASSWORD), "PONG");

    // Two free failures, answered at once; the third waits its turn.
    for _ in 0..2 {
        assert_eq!(
            login(&addr, "app", "wrong"),
            "-ERR 'Authorization Violation'"
        );
    }
    let t0 = Instant::now();
    assert_eq!(
        login(&addr, "app", "wrong"),
        "-ERR 'Authorization Violation'"
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "answered after {waited:?}"
    );
    twig.wait_log("before its login is read (earlier failures)", 1);
    // Unknown users count too.
    assert_eq!(
        login(&addr, "nobody", "x"),
        "-ERR 'Authorization Violation'"
    );

    let varz: serde_json::Value = serde_json::from_str(&get(twig.http_port, "/varz")).unwrap();
    assert_eq!(varz["auth_failures"], 4, "{varz}");
    let metrics = get(twig.http_port, "/metrics");
    assert!(metrics.contains("twig_auth_failures_total 4"), "{metrics}");

    // Each failure logged with the client's address and who it claimed to be.
    twig.wait_log("authentication error - User \"app\"", 3);
    twig.wait_log("authentication error - User \"nobody\"", 1);
    let log = twig.log();
    let failure = log
        .lines()
        .find(|l| l.contains("authentication error"))
        .unwrap();
    assert!(failure.contains("127.0.0.1:"), "{failure}");
    assert!(log.contains("failure 3 from this address"), "{log}");
    // The log did mention the remote (whose URL carries a password) and tried to reach it.
    assert!(log.contains(&format!("127.0.0.1:{closed}")), "{log}");

    // Secrets: nowhere.
    twig.wait_log("127.0.0.1", 1);
    let mut seen = vec![("log", log)];
    for path in [
        "/varz",
        "/connz?auth=true&subs=1",
        "/leafz",
        "/metrics",
        "/healthz",
    ] {
        seen.push((path, get(twig.http_port, path)));
    }
    for (where_, text) in &seen {
        for secret in [PASSWORD, LEAF_SECRET] {
            assert!(!text.contains(secret), "{secret} in {where_}:\n{text}");
        }
    }
}
