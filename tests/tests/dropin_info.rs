//! twig's INFO next to nats-server 2.15.1's: both servers started with the same settings, the
//! first INFO and the `connect_info` INFO (after the first PING) read from each over a raw
//! socket, and their key sets and value types compared.
//!
//! Differences allowed, each on purpose (the reasons are in `gateway/crates/clients/src/state.rs`):
//! nats-server's `api_lvl` and `xkey` (twig has no JetStream API and no auth callout), and
//! twig's `twig_version`. Anything else missing, extra or of another type fails the test.
//! `cargo test -p twig-tests --test dropin_info -- --nocapture` prints the comparison.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use twig_tests::harness::{NkeyUser, RawConn, ServerOptions, ServerUnderTest, Target, TestCerts};

const STEP: Duration = Duration::from_secs(5);

/// Keys nats-server sends that twig leaves out, with why.
const ONLY_NATS_SERVER: &[(&str, &str)] = &[
    ("api_lvl", "twig has no JetStream API"),
    ("xkey", "twig has no auth callout"),
];
/// Keys twig adds.
const ONLY_TWIG: &[&str] = &["twig_version"];

/// How a client logs in for the `connect_info` INFO.
#[derive(Clone)]
enum Login {
    None,
    UserPass(&'static str, &'static str),
    Token(&'static str),
    Nkey(String),
}

/// The first INFO line's JSON.
fn first_info(conn: &mut RawConn) -> Value {
    conn.expect(" \r\n", STEP);
    parse_info(&conn.text(), 0)
}

/// The JSON of the `n`th INFO line in `text`.
fn parse_info(text: &str, n: usize) -> Value {
    let line = text
        .split("\r\n")
        .filter(|l| l.starts_with("INFO "))
        .nth(n)
        .unwrap_or_else(|| panic!("no INFO #{n} in {text:?}"));
    serde_json::from_str(line.trim_start_matches("INFO ").trim_end())
        .unwrap_or_else(|e| panic!("INFO is not JSON ({e}): {line}"))
}

/// The first INFO and, after CONNECT (protocol 1) and PING, the `connect_info` INFO.
fn infos(server: &ServerUnderTest, login: &Login) -> (Value, Value) {
    let mut c = RawConn::connect(&server.addr());
    let info = first_info(&mut c);
    let mut connect = serde_json::json!({
        "verbose": false, "pedantic": false, "protocol": 1, "headers": true,
        "no_responders": true, "lang": "rust", "version": "test",
    });
    match login {
        Login::None => {}
        Login::UserPass(u, p) => {
            connect["user"] = (*u).into();
            connect["pass"] = (*p).into();
        }
        Login::Token(t) => connect["auth_token"] = (*t).into(),
        Login::Nkey(seed) => {
            let kp = nkeys::KeyPair::from_seed(seed).unwrap();
            let nonce = info["nonce"].as_str().expect("a nonce for nkey users");
            let sig = kp.sign(nonce.as_bytes()).unwrap();
            connect["nkey"] = kp.public_key().into();
            connect["sig"] = data_encoding::BASE64URL_NOPAD.encode(&sig).into();
        }
    }
    c.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes());
    c.read_until(STEP, |r| {
        String::from_utf8_lossy(r).matches("INFO ").count().eq(&2) && r.ends_with(b"\r\n")
    });
    let text = c.text();
    assert!(text.contains("PONG\r\n"), "no PONG: {text:?}");
    (info, parse_info(&text, 1))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn keys(v: &Value) -> BTreeMap<String, &'static str> {
    v.as_object()
        .expect("INFO is an object")
        .iter()
        .map(|(k, v)| (k.clone(), kind(v)))
        .collect()
}

/// Compares one pair of INFOs; returns a printable report, panics on a difference.
fn compare(what: &str, nats: &Value, twig: &Value) -> String {
    let (n, t) = (keys(nats), keys(twig));
    let mut report = format!("{what}:\n");
    let mut problems = Vec::new();
    for (k, ty) in &n {
        match t.get(k) {
            Some(tt) if tt == ty => report.push_str(&format!("  {k:<16} {ty:<7} both\n")),
            Some(tt) => problems.push(format!("{k}: nats-server {ty}, twig {tt}")),
            None => match ONLY_NATS_SERVER.iter().find(|(o, _)| o == k) {
                Some((_, why)) => {
                    report.push_str(&format!("  {k:<16} {ty:<7} nats-server only: {why}\n"));
                }
                None => problems.push(format!("{k}: missing in twig ({})", nats[k])),
            },
        }
    }
    for (k, ty) in &t {
        if !n.contains_key(k) {
            if ONLY_TWIG.contains(&k.as_str()) {
                report.push_str(&format!("  {k:<16} {ty:<7} twig only\n"));
            } else {
                problems.push(format!("{k}: only in twig ({})", twig[k]));
            }
        }
    }
    // Values that follow from the settings must agree too.
    for k in [
        "proto",
        "host",
        "headers",
        "max_payload",
        "auth_required",
        "tls_required",
        "tls_verify",
        "connect_info",
        "remote_account",
    ] {
        if nats.get(k) != twig.get(k) {
            problems.push(format!(
                "{k}: nats-server {:?}, twig {:?}",
                nats.get(k),
                twig.get(k)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: INFO differs:\n  {}\nnats-server: {nats}\ntwig: {twig}",
        problems.join("\n  ")
    );
    report
}

/// Starts both servers with `opts`, compares both INFOs, prints the report.
fn compare_with(what: &str, opts: &ServerOptions, login: Login, connect_info: bool) {
    let nats = ServerUnderTest::start_target(Target::NatsServer, opts);
    let twig = ServerUnderTest::start_target(Target::Twig, opts);
    let (report, twig_info) = if connect_info {
        let (n1, n2) = infos(&nats, &login);
        let (t1, t2) = infos(&twig, &login);
        let mut r = compare(&format!("{what}, first INFO"), &n1, &t1);
        r.push_str(&compare(
            &format!("{what}, INFO after the first PONG"),
            &n2,
            &t2,
        ));
        (r, t1)
    } else {
        let n1 = first_info(&mut RawConn::connect(&nats.addr()));
        let t1 = first_info(&mut RawConn::connect(&twig.addr()));
        (compare(&format!("{what}, first INFO"), &n1, &t1), t1)
    };
    // What clients rely on in the values themselves.
    let version = twig_info["version"].as_str().unwrap();
    assert!(version.starts_with("2."), "version {version}");
    assert_eq!(twig_info["twig_version"], env!("CARGO_PKG_VERSION"));
    assert!(twig_info["go"].as_str().unwrap().starts_with("rustc "));
    eprintln!("{report}");
}

#[test]
fn info_matches_nats_server_without_auth() {
    compare_with("no auth", &ServerOptions::new(), Login::None, true);
}

#[test]
fn info_matches_nats_server_with_user_and_password() {
    let opts = ServerOptions {
        user: Some("alice".into()),
        pass: Some("s3cret".into()),
        ..ServerOptions::default()
    };
    compare_with(
        "user/password",
        &opts,
        Login::UserPass("alice", "s3cret"),
        true,
    );
}

#[test]
fn info_matches_nats_server_with_a_token() {
    let opts = ServerOptions {
        token: Some("t0ken".into()),
        ..ServerOptions::default()
    };
    compare_with("token", &opts, Login::Token("t0ken"), true);
}

#[test]
fn info_matches_nats_server_with_nkey_users() {
    let user = NkeyUser::generate();
    let opts = ServerOptions {
        nkeys: vec![user.public.clone()],
        max_payload: Some(4096),
        ..ServerOptions::default()
    };
    compare_with("nkey users (nonce)", &opts, Login::Nkey(user.seed), true);
}

#[test]
fn info_matches_nats_server_with_tls_and_tls_verify() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let mut opts = ServerOptions {
        tls: Some(certs),
        ..ServerOptions::default()
    };
    // The INFO goes out before the TLS handshake, so a raw socket reads it.
    compare_with("tls", &opts, Login::None, false);
    opts.tls_verify = true;
    compare_with("tls with verify (config)", &opts, Login::None, false);
    // The same from nats-server's flags alone.
    let certs = opts.tls.take().unwrap();
    opts.tls_verify = false;
    opts.extra_args = ["--tlsverify", "--tlscert", "--tlskey", "--tlscacert"]
        .iter()
        .zip([
            None,
            Some(&certs.cert_file),
            Some(&certs.key_file),
            Some(&certs.ca_file),
        ])
        .flat_map(|(flag, file)| {
            std::iter::once(flag.to_string()).chain(file.map(|f| f.display().to_string()))
        })
        .collect();
    compare_with("tls with --tlsverify", &opts, Login::None, false);
}

/// `-a localhost` as nats-server takes it: INFO and the log say `localhost`, and the port is
/// reached on 127.0.0.1 (Go listens on a name's first IPv4 address).
#[test]
fn info_host_follows_a_name_as_nats_server_does() {
    let opts = ServerOptions {
        extra_args: vec!["-a".into(), "localhost".into()],
        ..ServerOptions::default()
    };
    compare_with("-a localhost", &opts, Login::None, true);
    for target in [Target::NatsServer, Target::Twig] {
        let s = ServerUnderTest::start_target(target, &opts);
        let info = first_info(&mut RawConn::connect(&s.addr()));
        assert_eq!(info["host"], "localhost", "{}", target.name());
        assert!(
            s.log().contains(&format!(
                "Listening for client connections on localhost:{}",
                s.port()
            )),
            "{}",
            s.log()
        );
    }
}
