//! nats-server's config format, given unchanged to nats-server 2.15.1 and to twig:
//! - every sample in `tests/natsconf/` (and the README's `configs/nats-leaf.conf`) passes
//!   `-t` on both, and the one using JetStream is refused by twig with its name and line;
//! - the client config gives byte-for-byte the same conversations on both (auth, permissions,
//!   limits);
//! - the leaf configs join real hubs (operator mode with a `.creds` file; a bare nkey) and
//!   carry messages both ways, `deny_imports`/`deny_exports` and user permissions included,
//!   on a nats-server leaf and on twig alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Subscriber};
use futures::StreamExt;
use twig_tests::harness::conversation::{self, Transcript};
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target, workspace_root};
use twig_tests::hub::{Hub, HubOptions, HubVersion};
use twig_tests::jwt;

const STEP: Duration = Duration::from_secs(10);
const TARGETS: [Target; 2] = [Target::NatsServer, Target::Twig];

fn sample(name: &str) -> PathBuf {
    workspace_root().join("tests/natsconf").join(name)
}

fn readme_leaf_conf() -> PathBuf {
    workspace_root().join("configs/nats-leaf.conf")
}

/// Environment the samples read (`$VARIABLES`), with test certificates and a creds file.
fn sample_env(dir: &Path) -> Vec<(String, String)> {
    let [ca, cert, key, _, _] = twig_tests::pki::write(dir, "twig test CA", "client");
    let creds = dir.join("edge.creds");
    let op = jwt::operator("op");
    let acc = jwt::account(&op, "EDGE");
    std::fs::write(&creds, jwt::creds_file(&jwt::user(&acc, "edge"))).unwrap();
    let seed = nkeys::KeyPair::new_user().seed().unwrap();
    let path = |p: &Path| p.display().to_string();
    [
        ("APP_USER", "app".to_string()),
        ("APP_PASSWORD", "app-pass".into()),
        ("TLS_CERT", path(&cert)),
        ("TLS_KEY", path(&key)),
        ("TLS_CA", path(&ca)),
        ("HUB_URL", "nats-leaf://127.0.0.1:7422".into()),
        ("LEAF_SEED", seed),
        ("EDGE_CREDS", path(&creds)),
        ("SENSOR_PASSWORD", "sensor-pass".into()),
        ("OPS_PASSWORD", "ops-pass".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `BINARY -t -c FILE`: (exit code, stdout + stderr).
fn check_config(target: Target, file: &Path, env: &[(String, String)]) -> (i32, String) {
    let out = Command::new(target.binary())
        .arg("-t")
        .arg("-c")
        .arg(file)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn samples_pass_t_on_nats_server_and_on_twig() {
    let dir = tempfile::tempdir().unwrap();
    let env = sample_env(dir.path());
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("tests/natsconf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        // Included by clients.conf, not a config of its own.
        .filter(|p| !p.ends_with("clients-auth.conf"))
        .collect();
    files.push(readme_leaf_conf());
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for file in &files {
        let (code, text) = check_config(Target::NatsServer, file, &env);
        assert_eq!(code, 0, "nats-server -t {}: {text}", file.display());
        let (code, text) = check_config(Target::Twig, file, &env);
        if file.ends_with("nats-server-only.conf") {
            assert_eq!(code, 1, "twig accepted {}: {text}", file.display());
            assert!(
                text.contains("line 7,") && text.contains("`jetstream`"),
                "twig must name the option and its line: {text}"
            );
        } else {
            assert_eq!(code, 0, "twig -t {}: {text}", file.display());
            assert!(text.contains("(nats-server format)"), "{text}");
        }
    }
    // A variable nobody defines fails on both.
    let without: Vec<_> = env
        .iter()
        .filter(|(k, _)| k != "APP_USER")
        .cloned()
        .collect();
    for target in TARGETS {
        let (code, text) = check_config(target, &sample("clients.conf"), &without);
        assert_ne!(code, 0, "{target:?}: {text}");
        assert!(text.contains("APP_USER"), "{target:?}: {text}");
    }
}

#[test]
fn twig_t_validates_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let toml = workspace_root().join("configs/gateway.toml");
    let (code, text) = check_config(Target::Twig, &toml, &[]);
    assert_eq!((code, text.contains("(TOML)")), (0, true), "{text}");
    // No extension: the content decides.
    let plain = dir.path().join("twig-config");
    std::fs::write(&plain, "port = 4333\n[authorization]\ntoken = \"t\"\n").unwrap();
    let (code, text) = check_config(Target::Twig, &plain, &[]);
    assert_eq!((code, text.contains("(TOML)")), (0, true), "{text}");
    std::fs::write(&plain, "port: 4333\nauthorization { token: t }\n").unwrap();
    let (code, text) = check_config(Target::Twig, &plain, &[]);
    assert_eq!(
        (code, text.contains("(nats-server format)")),
        (0, true),
        "{text}"
    );
    // Broken files: exit 1 and where.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "port = \"x\"\n").unwrap();
    let (code, text) = check_config(Target::Twig, &bad, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("line 1"), "{text}");
    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        "port: 1\nleafnodes {\n  remotes: [ { url: nats://h:1 }\n",
    )
    .unwrap();
    let (code, text) = check_config(Target::Twig, &bad, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("bad.conf"), "{text}");
}

/// Out-of-range numbers (one used to panic at the first `Instant + d`): `-t` and a start both
/// exit 1 with the option named, never a panic, in both formats.
#[test]
fn out_of_range_values_are_refused_at_t_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, option) in [
        (
            "huge.toml",
            "ping_interval = 9223372036854775807\n",
            "ping_interval",
        ),
        (
            "big.toml",
            "[leafnodes]\nmax_pending = \"8GB\"\n",
            "leafnodes.max_pending",
        ),
        (
            "huge.conf",
            "port: 4222\nwrite_deadline: \"26h\"\n",
            "write_deadline",
        ),
        (
            "many.conf",
            "max_connections: 99999999\n",
            "max_connections",
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let (code, out) = check_config(Target::Twig, &file, &[]);
        assert_eq!(code, 1, "twig -t accepted {text:?}: {out}");
        assert!(out.contains(option), "-t must name {option}: {out}");
        assert!(!out.contains("panicked"), "{out}");
        // A start with the same file: refused before anything runs.
        let mut child = Command::new(Target::Twig.binary())
            .arg("-c")
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("twig started with {text:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status.code(), Some(1), "{text:?}: {err}");
        assert!(err.contains(option) && !err.contains("panicked"), "{err}");
    }
}

/// Conversations run against `clients.conf` on both servers.
const CLIENT_CONVERSATIONS: &str = r#"
case app-user-pub-sub-and-the-connect-info
open 0
send 0 CONNECT {"verbose":false,"pedantic":false,"user":"app","pass":"app-pass","protocol":1,"headers":true}\r\n
sync 0
send 0 SUB app.x 1\r\nPUB app.x 2\r\nhi\r\nHPUB app.x 12 14\r\nNATS/1.0\r\n\r\nyo\r\n
sync 0
end

case ops-user-verbose
open 0
send 0 CONNECT {"verbose":true,"pedantic":false,"user":"ops","pass":"ops-pass"}\r\n
send 0 SUB anything.> 1\r\nPUB anything.at.all 3\r\nyes\r\n
sync 0
end

case wrong-password
open 0
send 0 CONNECT {"verbose":false,"user":"app","pass":"nope"}\r\n
close 0
end

case no-credentials
open 0
send 0 CONNECT {"verbose":false}\r\n
close 0
end

case max-payload-of-64kb
open 0
send 0 CONNECT {"verbose":false,"user":"ops","pass":"ops-pass"}\r\n
sync 0
send 0 PUB big 65537\r\n
close 0
end

case max-control-line-of-2kb
open 0
send 0 CONNECT {"verbose":false,"user":"ops","pass":"ops-pass"}\r\n
sync 0
send 0 SUB {a*2100} 1\r\n
close 0
end
"#;

fn render(t: &[Transcript]) -> String {
    t.iter()
        .map(|c| format!("    {}\n", c.join(" | ")))
        .collect()
}

#[test]
fn one_client_config_gives_the_same_conversations_on_both() {
    let dir = tempfile::tempdir().unwrap();
    let env = sample_env(dir.path());
    let mut cases = conversation::parse(CLIENT_CONVERSATIONS).unwrap();
    assert_eq!(cases.len(), 6);
    for case in &mut cases {
        case.options = ServerOptions {
            extra_args: vec!["-c".into(), sample("clients.conf").display().to_string()],
            env: env.clone(),
            ..ServerOptions::default()
        };
    }
    let mut failures = Vec::new();
    for case in &cases {
        let reference = conversation::run(case, Target::NatsServer);
        let twig = conversation::run(case, Target::Twig);
        if reference != twig {
            failures.push(format!(
                "{}:\n  nats-server:\n{}  twig:\n{}",
                case.name,
                render(&reference),
                render(&twig)
            ));
        }
        // The reference really did refuse what the config forbids.
        let all = render(&reference);
        match case.name.as_str() {
            "app-user-pub-sub-and-the-connect-info" => {
                assert!(all.contains("MSG app.x 1 2"), "{all}");
            }
            "max-control-line-of-2kb" => {
                assert!(all.contains("maximum control line exceeded"), "{all}");
            }
            "wrong-password" => assert!(all.contains("Authorization Violation"), "{all}"),
            "max-payload-of-64kb" => assert!(all.contains("Maximum Payload Violation"), "{all}"),
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "replies differ:\n{}",
        failures.join("\n")
    );
}

/// Publishes `marker` on `subject` until `sub` sees it (interest crosses the link first);
/// other messages on `sub` are skipped.
async fn until_delivered(publisher: &Client, sub: &mut Subscriber, subject: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        publisher
            .publish(subject.to_string(), "marker".into())
            .await
            .unwrap();
        publisher.flush().await.unwrap();
        let round = Instant::now() + Duration::from_millis(200);
        while let Ok(Some(m)) = tokio::time::timeout_at(round.into(), sub.next()).await {
            if m.subject.as_str() == subject && m.payload == "marker" {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing crossed the link on {subject}"
        );
    }
}

/// `denied` then `allowed` from `publisher`: `sub` gets the allowed one and never the denied
/// one first (one link keeps order).
async fn blocked(publisher: &Client, sub: &mut Subscriber, denied: &str, allowed: &str) {
    until_delivered(publisher, sub, allowed).await;
    publisher
        .publish(denied.to_string(), "denied".into())
        .await
        .unwrap();
    publisher
        .publish(allowed.to_string(), "after".into())
        .await
        .unwrap();
    publisher.flush().await.unwrap();
    loop {
        let m = tokio::time::timeout(STEP, sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_ne!(
            m.subject.as_str(),
            denied,
            "a denied subject crossed the link"
        );
        if m.subject.as_str() == allowed && m.payload == "after" {
            return;
        }
    }
}

/// The README's leaf config, unchanged, as a nats-server leaf and as twig, each joined to an
/// operator-mode hub with the `.creds` file (only the ports are flags: `-p -1 -m -1`).
#[tokio::test]
async fn the_readme_leaf_config_runs_unchanged_on_both() {
    let op = jwt::operator("twig-test-op");
    let acc = jwt::account(&op, "EDGE");
    let edge = jwt::user(&acc, "edge-1");
    let cloud = jwt::user(&acc, "cloud-app");
    for target in TARGETS {
        let hub = Hub::start_with(
            HubVersion::V2_15,
            &HubOptions {
                extra: jwt::hub_config(&op, &[&acc]),
                ..HubOptions::default()
            },
        );
        let creds = hub.dir().join("edge.creds");
        std::fs::write(&creds, jwt::creds_file(&edge)).unwrap();
        let env = vec![
            ("HUB_URL".to_string(), hub.leaf_url()),
            ("EDGE_CREDS".into(), creds.display().to_string()),
            ("SENSOR_PASSWORD".into(), "sensor-pass".into()),
            ("OPS_PASSWORD".into(), "ops-pass".into()),
        ];
        let leaf = ServerUnderTest::start_target(
            target,
            &ServerOptions {
                http_port: Some(0),
                extra_args: vec!["-c".into(), readme_leaf_conf().display().to_string()],
                env,
                ..ServerOptions::default()
            },
        );
        let at_hub = ConnectOptions::with_credentials(&jwt::creds_file(&cloud))
            .unwrap()
            .no_echo()
            .connect(hub.client_url())
            .await
            .unwrap();
        let ops = ConnectOptions::with_user_and_password("ops".into(), "ops-pass".into())
            .no_echo()
            .connect(leaf.url())
            .await
            .unwrap_or_else(|e| panic!("{target:?}: ops login: {e}\n{}", leaf.log()));
        // Hub -> leaf and leaf -> hub.
        let mut down = ops.subscribe(">").await.unwrap();
        until_delivered(&at_hub, &mut down, "cmd.edge-1").await;
        let mut up = at_hub.subscribe(">").await.unwrap();
        at_hub.flush().await.unwrap();
        until_delivered(&ops, &mut up, "telemetry.up").await;
        // deny_imports / deny_exports keep edge.local.> on site, both ways.
        blocked(&at_hub, &mut down, "edge.local.cmd", "cmd.after").await;
        blocked(&ops, &mut up, "edge.local.reading", "telemetry.after").await;
        // The other user, and a wrong password.
        let sensor = ConnectOptions::with_user_and_password("sensor".into(), "sensor-pass".into())
            .connect(leaf.url())
            .await
            .unwrap();
        until_delivered(&sensor, &mut up, "telemetry.t1").await;
        let refused = ConnectOptions::with_user_and_password("sensor".into(), "nope".into())
            .connect(leaf.url())
            .await;
        assert!(refused.is_err(), "{target:?} took a wrong password");
        drop(leaf);
        drop(hub);
        eprintln!(
            "{}: the README leaf config carried messages both ways",
            target.name()
        );
    }
}

/// `leaf-nkey.conf`: a remote with a bare nkey seed, to a hub that lists its public key.
#[tokio::test]
async fn a_leaf_joined_by_a_bare_nkey_on_both() {
    let leaf_key = nkeys::KeyPair::new_user();
    let app_key = nkeys::KeyPair::new_user();
    for target in TARGETS {
        // Leafnode authorization takes no nkeys: the hub's users list both keys.
        let hub = Hub::start_with(
            HubVersion::V2_15,
            &HubOptions {
                extra: format!(
                    "authorization {{ users: [ {{ nkey: {} }}, {{ nkey: {} }} ] }}",
                    leaf_key.public_key(),
                    app_key.public_key()
                ),
                ..HubOptions::default()
            },
        );
        let leaf = ServerUnderTest::start_target(
            target,
            &ServerOptions {
                http_port: Some(0),
                extra_args: vec!["-c".into(), sample("leaf-nkey.conf").display().to_string()],
                env: vec![
                    ("HUB_URL".to_string(), hub.leaf_url()),
                    ("LEAF_SEED".into(), leaf_key.seed().unwrap()),
                ],
                ..ServerOptions::default()
            },
        );
        let at_hub = ConnectOptions::with_nkey(app_key.seed().unwrap())
            .connect(hub.client_url())
            .await
            .unwrap();
        let at_leaf = async_nats::connect(leaf.url()).await.unwrap();
        let mut down = at_leaf.subscribe("down.>").await.unwrap();
        until_delivered(&at_hub, &mut down, "down.x").await;
        let mut up = at_hub.subscribe("up.>").await.unwrap();
        at_hub.flush().await.unwrap();
        until_delivered(&at_leaf, &mut up, "up.x").await;
        eprintln!("{}: leaf-nkey.conf joined the hub", target.name());
    }
}

/// The README shows `configs/nats-leaf.conf` as it is, so what the test runs is what it says.
#[test]
fn the_readme_shows_the_leaf_config_verbatim() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let conf = std::fs::read_to_string(readme_leaf_conf()).unwrap();
    assert!(
        readme.contains(&format!("```text\n{conf}```")),
        "README.md must contain configs/nats-leaf.conf verbatim in a ```text block"
    );
}

/// Waits until `file` holds `needle`.
fn wait_file(file: &Path, needle: &str, who: Target) {
    let deadline = Instant::now() + STEP;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {} never held {needle:?}:\n{text}",
            who.name(),
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The operator's signals, sent by each server's own `--signal`/`-sl` to the PID file the
/// same nats-server-format config asked for: reopen the log after logrotate moved it, reload
/// the config, quit with exit code 0.
#[test]
fn log_reopen_reload_and_quit_by_signal_on_both() {
    for target in TARGETS {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let pid = dir.path().join("server.pid");
        let conf = dir.path().join("server.conf");
        let write = |debug: bool| {
            std::fs::write(
                &conf,
                format!(
                    "listen: 127.0.0.1:-1\nlog_file: {:?}\npid_file: {:?}\ndebug: {debug}\n",
                    log.display().to_string(),
                    pid.display().to_string()
                ),
            )
            .unwrap();
        };
        write(false);
        let mut child = Command::new(target.binary())
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_file(&log, "Server is ready", target);
        let signal = |flag: &str, cmd: &str| {
            let st = Command::new(target.binary())
                .arg(flag)
                .arg(format!("{cmd}={}", pid.display()))
                .status()
                .unwrap();
            assert!(st.success(), "{} {flag} {cmd}", target.name());
        };
        // logrotate: move the file away, then reopen.
        std::fs::rename(&log, dir.path().join("server.log.1")).unwrap();
        signal("--signal", "reopen");
        wait_file(&log, "File log re-opened", target);
        write(true);
        signal("-sl", "reload");
        wait_file(&log, "Reloaded server configuration", target);
        if target == Target::Twig {
            // twig says what it applied.
            wait_file(&log, "Reloaded: debug", target);
            // Without `=PID`: `--pid FILE`, or the config's `pid_file` (nats-server would ask
            // pgrep for the one process of its name).
            let st = Command::new(target.binary())
                .args(["--signal", "reload", "--pid"])
                .arg(&pid)
                .status()
                .unwrap();
            assert!(st.success(), "twig --signal reload --pid FILE");
            let st = Command::new(target.binary())
                .args(["--signal", "reopen", "-c"])
                .arg(&conf)
                .status()
                .unwrap();
            assert!(st.success(), "twig --signal reopen -c CONF (its pid_file)");
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(
                text.matches("Reloaded server configuration").count() >= 2,
                "the --pid reload did not reach twig:\n{text}"
            );
            // twig's own version is in the start-up log (moved away by the "logrotate" above),
            // next to the protocol version.
            let first = std::fs::read_to_string(dir.path().join("server.log.1")).unwrap();
            let out = Command::new(target.binary()).arg("-v").output().unwrap();
            let v = String::from_utf8_lossy(&out.stdout).to_string();
            // `twig: v0.1.0 (nats-server protocol v2.12.0, ...)`
            let own = v
                .strip_prefix("twig: v")
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("no version in `twig -v`: {v}"))
                .to_string();
            assert!(
                first.contains(&format!("Version:  {own} (speaks nats-server")),
                "twig {own} not in the log:\n{first}"
            );
        }
        signal("--signal", "quit");
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "{} did not quit", target.name());
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "{}", target.name());
    }
}
