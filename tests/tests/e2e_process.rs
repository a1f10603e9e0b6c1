//! twig as a process, the way an operator meets it: monitoring endpoints shaped like
//! nats-server's, a graceful shutdown on SIGTERM, and one clear line for a bad config or a
//! taken port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use twig_tests::harness::{ServerOptions, ServerUnderTest, Target, free_port};

/// A GET with a deadline; returns (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to monitor");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    // nats-server answers HTTP/1.1 with chunked encoding only for streaming; /varz is plain.
    (status, body)
}

/// A raw client that connected, subscribed and published one message, kept open.
fn busy_client(port: u16) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(
        b"CONNECT {\"verbose\":false,\"name\":\"probe\"}\r\nSUB a 1\r\nPUB a 2\r\nhi\r\nPING\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    while !line.starts_with("PONG") {
        line.clear();
        r.read_line(&mut line).expect("read until PONG");
    }
    c
}

/// Fields of nats-server's /varz that apply to twig; checked on nats-server too, so the list
/// itself stays true.
const VARZ_FIELDS: &[&str] = &[
    "server_id",
    "server_name",
    "version",
    "proto",
    "git_commit",
    "go",
    "host",
    "port",
    "max_connections",
    "ping_interval",
    "ping_max",
    "http_host",
    "http_port",
    "auth_timeout",
    "max_control_line",
    "max_payload",
    "max_pending",
    "start",
    "now",
    "uptime",
    "mem",
    "cores",
    "connections",
    "total_connections",
    "in_msgs",
    "in_bytes",
    "out_msgs",
    "out_bytes",
    "slow_consumers",
    "subscriptions",
];

#[test]
fn monitoring_endpoints_are_shaped_like_nats_servers() {
    for target in [Target::NatsServer, Target::Twig] {
        let http = free_port();
        let opts = ServerOptions {
            http_port: Some(http),
            ..ServerOptions::new()
        };
        let server = ServerUnderTest::start_target(target, &opts);
        let _client = busy_client(server.port());

        let (status, body) = get(http, "/varz");
        assert_eq!(status, 200, "{target:?} /varz");
        let varz: serde_json::Value = serde_json::from_str(&body).expect("varz is JSON");
        for f in VARZ_FIELDS {
            assert!(varz.get(f).is_some(), "{target:?} /varz lacks {f}: {body}");
        }
        assert!(varz["in_msgs"].as_u64().unwrap() >= 1, "{target:?}: {body}");
        assert_eq!(varz["port"].as_u64(), Some(u64::from(server.port())));
        assert!(
            varz["version"].as_str().unwrap().starts_with("2."),
            "{body}"
        );
        if target == Target::Twig {
            assert_eq!(varz["twig_version"], env!("CARGO_PKG_VERSION"), "{body}");
        }

        let (status, body) = get(http, "/connz?subs=1");
        assert_eq!(status, 200, "{target:?} /connz");
        let connz: serde_json::Value = serde_json::from_str(&body).expect("connz is JSON");
        assert_eq!(
            connz["num_connections"].as_u64(),
            Some(1),
            "{target:?}: {body}"
        );
        let conn = &connz["connections"][0];
        assert_eq!(conn["name"].as_str(), Some("probe"), "{target:?}: {body}");
        assert_eq!(
            conn["subscriptions_list"][0].as_str(),
            Some("a"),
            "{target:?}: {body}"
        );
        assert!(conn["in_msgs"].as_u64().unwrap() >= 1);

        let (status, body) = get(http, "/healthz");
        assert_eq!(status, 200);
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["status"].as_str(), Some("ok"), "{target:?}: {body}");

        assert_eq!(get(http, "/nope").0, 404, "{target:?}");
    }
}

#[test]
fn metrics_are_prometheus_text() {
    let http = free_port();
    let server = ServerUnderTest::start_target(
        Target::Twig,
        &ServerOptions {
            http_port: Some(http),
            ..ServerOptions::new()
        },
    );
    let _client = busy_client(server.port());
    let (status, body) = get(http, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE twig_connections gauge"), "{body}");
    let line = body
        .lines()
        .find(|l| l.starts_with("twig_connections "))
        .expect("twig_connections sample");
    assert_eq!(line, "twig_connections 1");
}

fn twig() -> Command {
    let mut c = Command::new(Target::Twig.binary());
    c.stdin(Stdio::null());
    c
}

#[test]
fn sigterm_closes_clients_and_exits_cleanly() {
    let mut server = ServerUnderTest::start_target(Target::Twig, &ServerOptions::new());
    let mut client = busy_client(server.port());
    let ok = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success());
    // The client sees its connection closed (EOF), not a hang.
    let mut rest = Vec::new();
    let n = client
        .read_to_end(&mut rest)
        .expect("connection closed by the server");
    let _ = n;
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.is_running() {
        assert!(Instant::now() < deadline, "twig did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = server.log();
    assert!(log.contains("Server Exiting"), "{log}");
}

/// Runs twig to completion (it must fail fast) and returns (exit code, stderr lines).
fn run_failing(cmd: &mut Command) -> (i32, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn twig");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let lines = err.lines().map(str::to_owned).collect();
            return (status.code().unwrap_or(-1), lines);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("twig kept running when it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bad_config_is_one_clear_line_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "port = 4222\nmax_payloadd = 5\n").unwrap();
    let (code, lines) = run_failing(twig().arg("-c").arg(&path));
    assert_ne!(code, 0);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("bad.toml") && lines[0].contains("max_payloadd"),
        "{lines:?}"
    );
}

#[test]
fn a_taken_port_is_one_clear_line_and_a_failure() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, lines) = run_failing(twig().args(["-a", "127.0.0.1", "-p", &port.to_string()]));
    assert_ne!(code, 0);
    // Startup lines come first (logging is on by then); the error is the last line, alone.
    let last = lines.last().expect("an error line");
    assert!(
        last.starts_with("twig: ") && last.contains(&port.to_string()),
        "{lines:?}"
    );
    assert!(
        lines.iter().filter(|l| l.starts_with("twig: ")).count() == 1,
        "{lines:?}"
    );
}
