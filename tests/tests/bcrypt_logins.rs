//! bcrypt password and token hashes, end to end against twig and nats-server 2.15.1 with the
//! same config files (nats-server's format, hashes made here with the `bcrypt` crate):
//! - raw conversations, byte for byte (ids masked): the right password or token logs in and
//!   can publish and subscribe, a wrong one gets `-ERR 'Authorization Violation'` and is
//!   closed, and nothing sent after a refused CONNECT is acted on;
//! - async-nats logs in with a bcrypt user and with a bcrypt token, and is refused with a
//!   wrong password;
//! - a reload (SIGHUP) to bcrypt users keeps the connections whose password still matches and
//!   refuses the one whose password changed;
//! - bcrypt checks do not hold up the event loop: while 20 logins with a cost-12 hash are
//!   being checked, a client already connected gets its PONG before most of them are done.

use std::sync::mpsc;
use std::time::Duration;

use twig_tests::harness::conversation::{self, Transcript};
use twig_tests::harness::raw::{RawConn, ReadEnd};
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target};

/// Cost of the hashes of the conformance cases: fast (about a millisecond).
const COST: u32 = 4;
const DEADLINE: Duration = Duration::from_secs(10);

fn write_conf(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `app` has a bcrypt password, `ops` a plain one.
fn users_conf(app_pass: &str, cost: u32) -> String {
    let hash = bcrypt::hash(app_pass, cost).unwrap();
    format!(
        "authorization {{\n  timeout: 30\n  users: [\n    {{ user: app, password: \"{hash}\" }}\n    {{ user: ops, password: \"ops-plain\" }}\n  ]\n}}\n"
    )
}

fn token_conf(token: &str) -> String {
    let hash = bcrypt::hash(token, COST).unwrap();
    format!("authorization {{\n  token: \"{hash}\"\n}}\n")
}

fn options(conf: &str) -> ServerOptions {
    ServerOptions {
        extra_args: vec!["-c".into(), conf.to_string()],
        ..ServerOptions::default()
    }
}

const USER_CASES: &str = r#"
case bcrypt-user-logs-in-and-pubsubs
  open 0
  send 0 CONNECT {"verbose":false,"pedantic":false,"user":"app","pass":"app-pass"}\r\nSUB x 1\r\nPUB x 2\r\nhi\r\n
  sync 0
  expect 0 MSG x 1 2
  expect-open 0
end

case bcrypt-user-verbose-gets-ok
  open 0
  send 0 CONNECT {"verbose":true,"pedantic":false,"user":"app","pass":"app-pass"}\r\nSUB x 1\r\n
  sync 0
  expect 0 +OK
end

case bcrypt-wrong-password-is-refused-and-what-follows-is-not-acted-on
  open 0
  send 0 CONNECT {"verbose":false,"pedantic":false,"user":"app","pass":"app-pass"}\r\nSUB x 1\r\n
  sync 0
  open 1
  send 1 CONNECT {"verbose":false,"pedantic":false,"user":"app","pass":"app-pasS"}\r\nSUB x 2\r\nPUB x 3\r\nbad\r\nPING\r\n
  close 1
  sync 0
  expect 1 -ERR 'Authorization Violation'
  expect-closed 1
  expect-open 0
end

case bcrypt-the-hash-is-not-the-password
  open 0
  send 0 CONNECT {"verbose":false,"pedantic":false,"user":"app","pass":"{HASH}"}\r\nPING\r\n
  close 0
  expect 0 -ERR 'Authorization Violation'
  expect-closed 0
end

case bcrypt-no-password-is-refused
  open 0
  send 0 CONNECT {"verbose":false,"pedantic":false,"user":"app"}\r\nPING\r\n
  close 0
  expect 0 -ERR 'Authorization Violation'
end

case plain-user-beside-bcrypt-one
  open 0
  send 0 CONNECT {"verbose":false,"pedantic":false,"user":"ops","pass":"ops-plain"}\r\nSUB y 1\r\nPUB y 1\r\na\r\n
  sync 0
  expect 0 MSG y 1 1
end
"#;

const TOKEN_CASES: &str = r#"
case bcrypt-token-logs-in-and-pubsubs
  open 0
  send 0 CONNECT {"verbose":false,"pedantic":false,"auth_token":"tok3n-x"}\r\nSUB x 1\r\nPUB x 1\r\na\r\n
  sync 0
  expect 0 MSG x 1 1
end

case bcrypt-wrong-token-is-refused
  open 0
  send 0 CONNECT {"verbose":false,"pedantic":false,"auth_token":"tok3n-y"}\r\nSUB x 1\r\nPING\r\n
  close 0
  expect 0 -ERR 'Authorization Violation'
  expect-closed 0
end
"#;

fn render(t: &[Transcript]) -> String {
    let mut s = String::new();
    for (i, lines) in t.iter().enumerate() {
        for l in lines {
            s.push_str(&format!("    {i}| {l}\n"));
        }
    }
    s
}

fn conform(cases_text: &str, conf: &str) {
    let target = Target::from_env();
    let mut cases = conversation::parse(cases_text).unwrap();
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in &mut cases {
        case.options = options(conf);
        let (reference, under_test) = std::thread::scope(|s| {
            let r = s.spawn(|| conversation::run(case, Target::NatsServer));
            let t = s.spawn(|| conversation::run(case, target));
            (r.join().unwrap(), t.join().unwrap())
        });
        let mut problems = conversation::check_expectations(case, &reference);
        if reference != under_test {
            problems.push(format!(
                "replies differ\n  nats-server:\n{}  {}:\n{}",
                render(&reference),
                target.name(),
                render(&under_test)
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("case {}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn bcrypt_users_match_nats_server_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let conf = users_conf("app-pass", COST);
    // The hash as a password: the conf's own hash.
    let hash = conf
        .split('"')
        .find(|s| s.starts_with("$2"))
        .unwrap()
        .to_string();
    let conf = write_conf(&dir, "users.conf", &conf);
    conform(&USER_CASES.replace("{HASH}", &hash), &conf);
}

#[test]
fn bcrypt_token_matches_nats_server_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(&dir, "token.conf", &token_conf("tok3n-x"));
    conform(TOKEN_CASES, &conf);
}

#[tokio::test]
async fn async_nats_logs_in_with_bcrypt_user_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let users = write_conf(&dir, "users.conf", &users_conf("app-pass", COST));
    let token = write_conf(&dir, "token.conf", &token_conf("tok3n-x"));
    for target in [Target::from_env(), Target::NatsServer] {
        let server = ServerUnderTest::start_target(target, &options(&users));
        let nc =
            async_nats::ConnectOptions::with_user_and_password("app".into(), "app-pass".into())
                .connect(server.url())
                .await
                .unwrap_or_else(|e| panic!("{}: right password refused: {e}", target.name()));
        pub_sub(&nc, target).await;
        let wrong =
            async_nats::ConnectOptions::with_user_and_password("app".into(), "wrong".into())
                .connect(server.url());
        let wrong = tokio::time::timeout(DEADLINE, wrong).await;
        assert!(
            !matches!(wrong, Ok(Ok(_))),
            "{}: a wrong password connected",
            target.name()
        );
        let server = ServerUnderTest::start_target(target, &options(&token));
        let nc = async_nats::ConnectOptions::with_token("tok3n-x".into())
            .connect(server.url())
            .await
            .unwrap_or_else(|e| panic!("{}: right token refused: {e}", target.name()));
        pub_sub(&nc, target).await;
    }
}

async fn pub_sub(nc: &async_nats::Client, target: Target) {
    use futures::StreamExt;
    let mut sub = nc.subscribe("bcrypt.test").await.unwrap();
    nc.flush().await.unwrap();
    nc.publish("bcrypt.test", "hello".into()).await.unwrap();
    let msg = tokio::time::timeout(DEADLINE, sub.next())
        .await
        .unwrap_or_else(|_| panic!("{}: no message", target.name()))
        .unwrap();
    assert_eq!(&msg.payload[..], b"hello");
}

/// One raw login: INFO, CONNECT (verbose off) and PING; the connection and whether the reply
/// was the PONG.
fn raw_login(addr: &str, user: &str, pass: &str) -> (RawConn, bool) {
    let mut c = RawConn::connect(addr);
    c.read_info(DEADLINE);
    c.send(
        format!("CONNECT {{\"verbose\":false,\"pedantic\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\nPING\r\n")
            .as_bytes(),
    );
    let end = c.read_until(DEADLINE, |r| {
        twig_tests::harness::raw::contains(r, b"PONG\r\n")
            || twig_tests::harness::raw::contains(r, b"-ERR")
    });
    let ok = end == ReadEnd::Matched && c.text().contains("PONG\r\n");
    (c, ok)
}

/// Waits until the server logged its `n`-th reload (both servers use these words).
fn wait_reloaded(server: &ServerUnderTest, n: usize) {
    let log = server.wait_reloads(n, DEADLINE);
    assert!(
        !log.contains("Failed to reload"),
        "{}: reload refused:\n{log}",
        server.target().name()
    );
}

#[test]
fn reload_to_bcrypt_users_keeps_matching_logins_and_refuses_changed_ones() {
    for target in [Target::from_env(), Target::NatsServer] {
        let dir = tempfile::tempdir().unwrap();
        let plain = "authorization {\n  users: [\n    { user: app, password: \"app-pass\" }\n    { user: ops, password: \"ops-plain\" }\n  ]\n}\n";
        let conf = write_conf(&dir, "server.conf", plain);
        let server = ServerUnderTest::start_target(target, &options(&conf));
        let (mut app, ok) = raw_login(&server.addr(), "app", "app-pass");
        assert!(ok, "{}: {}", target.name(), app.text());
        let (mut ops, ok) = raw_login(&server.addr(), "ops", "ops-plain");
        assert!(ok, "{}: {}", target.name(), ops.text());
        // app's password becomes a hash of the same password; ops's a hash of another one.
        let next = format!(
            "authorization {{\n  users: [\n    {{ user: app, password: \"{}\" }}\n    {{ user: ops, password: \"{}\" }}\n  ]\n}}\n",
            bcrypt::hash("app-pass", COST).unwrap(),
            bcrypt::hash("ops-new", COST).unwrap()
        );
        std::fs::write(&conf, next).unwrap();
        server.signal("reload");
        wait_reloaded(&server, 1);
        assert!(
            ops.read_until_closed(DEADLINE),
            "{}: ops stayed",
            target.name()
        );
        assert!(
            ops.text().contains("-ERR 'Authorization Violation'\r\n"),
            "{}: {}",
            target.name(),
            ops.text()
        );
        assert_eq!(
            app.ping_pong(DEADLINE),
            ReadEnd::Matched,
            "{}",
            target.name()
        );
        let (_, ok) = raw_login(&server.addr(), "ops", "ops-new");
        assert!(ok, "{}: the new bcrypt password was refused", target.name());
        let (again, ok) = raw_login(&server.addr(), "app", "app-pass");
        assert!(ok, "{}: {}", target.name(), again.text());
    }
}

/// Slow logins checked at once in the test of the event loop.
const SLOW_LOGINS: usize = 20;

#[test]
fn bcrypt_checks_do_not_hold_up_other_connections() {
    // twig only: its verdicts come `max_bcrypt_checks` (2) at a time, so most are still
    // pending after the first. nats-server checks all 20 at once, in goroutines that all
    // finish at about the same moment, which this ordering cannot tell from blocking.
    let target = Target::Twig;
    let dir = tempfile::tempdir().unwrap();
    // A cost-12 hash: a few hundred milliseconds per check on this kind of machine. twig runs
    // one executor thread by default: if a check ran on it, nothing else would be served.
    let conf = write_conf(&dir, "users.conf", &users_conf("slow-pass", 12));
    let server = ServerUnderTest::start_target(target, &options(&conf));
    let (mut fast, ok) = raw_login(&server.addr(), "ops", "ops-plain");
    assert!(ok, "{}", fast.text());

    let (tx, rx) = mpsc::channel();
    let slow: Vec<_> = (0..SLOW_LOGINS)
        .map(|i| {
            let (addr, tx) = (server.addr(), tx.clone());
            std::thread::spawn(move || {
                let mut c = RawConn::connect(&addr);
                c.read_info(DEADLINE);
                c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"app\",\"pass\":\"slow-pass\"}\r\nPING\r\n");
                let end = c.read_until(Duration::from_secs(60), |r| {
                    twig_tests::harness::raw::contains(r, b"PONG\r\n")
                        || twig_tests::harness::raw::contains(r, b"-ERR")
                });
                let ok = end == ReadEnd::Matched && c.text().contains("PONG\r\n");
                let _ = tx.send((i, ok));
                (ok, c.text())
            })
        })
        .collect();
    drop(tx);
    // Once the first slow login has its verdict, every slow CONNECT has long been read and the
    // others are being checked or wait their turn.
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no slow login finished");
    assert!(first.1, "a slow login was refused");
    assert_eq!(
        fast.ping_pong(DEADLINE),
        ReadEnd::Matched,
        "{}",
        fast.text()
    );
    // Verdicts in by the time the PONG came (the first one included).
    let done_by_pong = 1 + rx.try_iter().count();
    for t in slow {
        let (ok, text) = t.join().unwrap();
        assert!(ok, "a slow login failed: {text}");
    }
    assert!(
        done_by_pong <= SLOW_LOGINS / 2,
        "{}: the PING of a connected client was answered only after {done_by_pong} of \
         {SLOW_LOGINS} bcrypt logins were decided",
        target.name()
    );
}
