//! Permissions end to end, as a fleet uses them:
//! - one rule for fifty devices: `default_permissions` with `{{name()}}` templates, filled
//!   from each identity (25 password users, 25 nkey users with a configured `name`), so every
//!   device reaches its own subjects and nobody else's;
//! - messages from the hub (twig as a leaf of a real nats-server) are filtered by the
//!   subscriber's subscribe deny list like local ones.

#[path = "common/uplink.rs"]
mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use twig_tests::harness::conversation::base64url;
use twig_tests::harness::raw::{RawConn, count};
use twig_tests::hub::{Hub, HubVersion};

const DEVICES: usize = 50;
const DEADLINE: Duration = Duration::from_secs(10);

fn device(i: usize) -> String {
    format!("dev-{i}")
}

#[test]
fn fifty_devices_under_one_rule_each_reach_only_their_own_subjects() {
    let dir = tempfile::tempdir().unwrap();
    // Devices 0..25 log in with a password, 25..50 with an nkey named in the config.
    let keys: Vec<nkeys::KeyPair> = (DEVICES / 2..DEVICES)
        .map(|_| nkeys::KeyPair::new_user())
        .collect();
    let mut users = vec![
        "  { user = \"admin\", password = \"admin-pass\", permissions = { publish = \">\", subscribe = \">\" } },".to_string(),
    ];
    for i in 0..DEVICES / 2 {
        users.push(format!(
            "  {{ user = \"{}\", password = \"pass-{i}\" }},",
            device(i)
        ));
    }
    for (k, i) in keys.iter().zip(DEVICES / 2..) {
        users.push(format!(
            "  {{ nkey = \"{}\", name = \"{}\" }},",
            k.public_key(),
            device(i)
        ));
    }
    let toml = format!(
        "[authorization]\n\
         default_permissions = {{ publish = [\"sensors.{{{{name()}}}}.>\"], subscribe = [\"cmd.{{{{name()}}}}.>\"] }}\n\
         users = [\n{}\n]\n",
        users.join("\n")
    );
    let twig = Twig::with_config(dir.path(), &toml);
    let addr = twig.sut.addr();

    let mut admin = RawConn::connect(&addr);
    admin.send(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"admin\",\"pass\":\"admin-pass\"}\r\nSUB sensors.> 1\r\n",
    );
    admin.ping_pong(DEADLINE);

    let mut devices = Vec::new();
    for i in 0..DEVICES {
        let mut c = RawConn::connect(&addr);
        let creds = if i < DEVICES / 2 {
            format!("\"user\":\"{}\",\"pass\":\"pass-{i}\"", device(i))
        } else {
            let kp = &keys[i - DEVICES / 2];
            let info = c.read_info(DEADLINE);
            let nonce = info["nonce"]
                .as_str()
                .expect("INFO has a nonce")
                .to_string();
            let sig = base64url(&kp.sign(nonce.as_bytes()).unwrap());
            format!("\"nkey\":\"{}\",\"sig\":\"{sig}\"", kp.public_key())
        };
        let (me, other) = (device(i), device((i + 1) % DEVICES));
        c.send(
            format!(
                "CONNECT {{\"verbose\":false,\"pedantic\":false,{creds}}}\r\n\
                 SUB cmd.{me}.> 1\r\nSUB cmd.{other}.> 2\r\nSUB cmd.> 3\r\n\
                 PUB sensors.{me}.t 2\r\nok\r\nPUB sensors.{other}.t 3\r\nbad\r\n"
            )
            .as_bytes(),
        );
        c.ping_pong(DEADLINE);
        let text = c.text();
        for refused in [
            format!("-ERR 'Permissions Violation for Subscription to \"cmd.{other}.>\"'"),
            "-ERR 'Permissions Violation for Subscription to \"cmd.>\"'".to_string(),
            format!("-ERR 'Permissions Violation for Publish to \"sensors.{other}.t\"'"),
        ] {
            assert!(text.contains(&refused), "{me}: no {refused}:\n{text}");
        }
        assert_eq!(count(c.received(), b"-ERR"), 3, "{me}:\n{text}");
        assert!(!c.is_closed(), "{me} was closed");
        devices.push(c);
    }

    // Each device's reading arrived, nobody's forged one did.
    admin.ping_pong(DEADLINE);
    let seen = admin.text();
    assert_eq!(count(admin.received(), b"MSG sensors."), DEVICES, "{seen}");
    for i in 0..DEVICES {
        let me = device(i);
        assert!(
            seen.contains(&format!("MSG sensors.{me}.t 1 2\r\nok")),
            "{seen}"
        );
    }
    assert!(!seen.contains("bad"), "{seen}");

    // A command to every device: each gets its own, on its own subscription.
    let mut cmds = String::new();
    for i in 0..DEVICES {
        cmds.push_str(&format!("PUB cmd.{}.go 2\r\ngo\r\n", device(i)));
    }
    admin.send(cmds.as_bytes());
    admin.ping_pong(DEADLINE);
    for (i, c) in devices.iter_mut().enumerate() {
        c.ping_pong(DEADLINE);
        let me = device(i);
        assert_eq!(count(c.received(), b"MSG cmd."), 1, "{me}:\n{}", c.text());
        assert!(
            c.text().contains(&format!("MSG cmd.{me}.go 1 2\r\ngo")),
            "{me}:\n{}",
            c.text()
        );
    }
}

/// A subscriber on twig with `fleet.>` allowed and `fleet.secret`, `fleet.admin.>` denied gets
/// the hub's messages on `fleet.>` except those.
async fn hub_messages_are_filtered_by_permission(v: HubVersion) {
    let hub = Hub::start(v);
    let toml = format!(
        "[[leafnodes.remotes]]\nurls = [\"{}\"]\n\n\
         [authorization]\n\
         users = [{{ user = \"sensor\", password = \"sensor-pass\", permissions = {{ \
           publish = [\"probe.>\", \"_INBOX.>\"], \
           subscribe = {{ allow = [\"fleet.>\", \"probe.>\", \"_INBOX.>\"], deny = [\"fleet.secret\", \"fleet.admin.>\"] }} }} }}]\n",
        hub.leaf_url()
    );
    let twig = Twig::with_config(hub.dir(), &toml);
    twig.wait_up(1);
    let sensor =
        async_nats::ConnectOptions::with_user_and_password("sensor".into(), "sensor-pass".into())
            .connection_timeout(STEP)
            .connect(twig.url())
            .await
            .unwrap();
    let hc = connect(&hub.client_url()).await;
    let mut fleet = sensor.subscribe("fleet.>").await.unwrap();
    interest_ready(&sensor, &hc).await;
    for subject in ["fleet.secret", "fleet.admin.reboot", "fleet.open"] {
        hc.publish(subject, subject.into()).await.unwrap();
    }
    hc.flush().await.unwrap();
    // One link keeps order: had a denied message been delivered, it would come first.
    let m = next(&mut fleet).await;
    assert_eq!(m.subject.as_str(), "fleet.open");
    assert_eq!(m.payload, Bytes::from("fleet.open"));
    hc.publish("fleet.secret", "again".into()).await.unwrap();
    hc.publish("fleet.open", "last".into()).await.unwrap();
    hc.flush().await.unwrap();
    assert_eq!(next(&mut fleet).await.payload, Bytes::from("last"));
    assert_quiet(&mut fleet).await;
}
per_version!(hub_messages_are_filtered_by_permission);

/// A reload whose `[authorization]` is invalid (a bad subject, a broken bcrypt hash) is
/// refused whole with its reason in the log; the running rules stay.
#[test]
fn a_refused_reload_says_why_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twig.toml");
    let good = "debug = false\n[authorization]\nusers = [{ user = \"a\", password = \"pa\", permissions = { publish = \"a.>\" } }]\n";
    std::fs::write(&path, good).unwrap();
    let twig = Twig::start(&["-c".into(), path.display().to_string()]);
    let mut c = RawConn::connect(&twig.sut.addr());
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"a\",\"pass\":\"pa\"}\r\nSUB a.> 1\r\n");
    c.ping_pong(DEADLINE);
    // bcrypt-shaped, but 20 characters short of a hash.
    let hash = "$2a$04$wTt3.d6JKNhB5l2ie6MRtOc8s0R6Z6";
    let bad = [
        // An invalid subject, with a debug change that must not go in force either.
        ("debug = true\n[authorization]\nusers = [{ user = \"a\", password = \"pa\", permissions = { publish = \"a..b\" } }]\n".to_string(), "a..b"),
        (format!("[authorization]\nusers = [{{ user = \"a\", password = \"{hash}\" }}]\n"), "bcrypt"),
    ];
    for (n, (text, why)) in bad.iter().enumerate() {
        std::fs::write(&path, text).unwrap();
        twig.sut.signal("reload");
        twig.wait_log("Failed to reload server configuration", n + 1);
        let log = twig.log();
        let line = log
            .lines()
            .filter(|l| l.contains("Failed to reload server configuration"))
            .nth(n)
            .unwrap();
        assert!(line.contains(why), "{line}");
    }
    // With debug in force, a new connection would be logged at [DBG].
    let mut probe = RawConn::connect(&twig.sut.addr());
    probe
        .send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"a\",\"pass\":\"pa\"}\r\n");
    probe.ping_pong(DEADLINE);
    let log = twig.log();
    assert!(!log.contains("[DBG]"), "debug went in force:\n{log}");
    assert!(!log.contains("Authorization reloaded"), "{log}");
    c.send(b"PUB a.x 1\r\n1\r\nPUB b.x 1\r\n2\r\n");
    c.ping_pong(DEADLINE);
    assert!(c.text().contains("MSG a.x 1 1\r\n1"), "{}", c.text());
    assert!(
        c.text()
            .contains("-ERR 'Permissions Violation for Publish to \"b.x\"'"),
        "{}",
        c.text()
    );
    // A good one goes in force on the open connection.
    std::fs::write(&path, good.replace("a.>", "b.>")).unwrap();
    twig.sut.signal("reload");
    twig.wait_log("Authorization reloaded on open connections", 1);
    c.send(b"PUB a.y 1\r\n3\r\nPUB b.y 1\r\n4\r\n");
    c.ping_pong(DEADLINE);
    assert!(
        c.text()
            .contains("-ERR 'Permissions Violation for Publish to \"a.y\"'"),
        "{}",
        c.text()
    );
    assert!(!c.is_closed());
}
