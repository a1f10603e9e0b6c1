//! SIGHUP reloads `leafnodes.remotes` (as nats-server 2.10+ does): a remote added by a reload
//! starts connecting, a removed one's connection closes, one whose credentials changed
//! reconnects with them; client connections stay open throughout. A reload that would take
//! away the remote a running stream forwards through is refused whole, with the reason in the
//! log. Against real nats-server hubs.

#[path = "common/uplink.rs"]
mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::*;
use twig_tests::harness::raw::RawConn;
use twig_tests::hub::{Hub, HubOptions, HubVersion};

/// twig's config file: written, then rewritten before each reload.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(dir: &Path, text: &str) -> ConfigFile {
        let f = ConfigFile(dir.join("twig.toml"));
        f.write(text);
        f
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).expect("write twig config");
    }

    fn args(&self) -> Vec<String> {
        vec!["-c".into(), self.0.display().to_string()]
    }
}

/// Rewrites the config and reloads; waits until twig logged its `n`-th reload outcome.
fn reload(twig: &Twig, file: &ConfigFile, text: &str, n: usize) {
    file.write(text);
    twig.sut.signal("reload");
    twig.sut.wait_reloads(n, STEP);
}

fn remote(url: &str, creds: &str) -> String {
    format!("[[leafnodes.remotes]]\nurls = [{url:?}]\n{creds}\n")
}

/// A plain client of twig that must outlive every reload.
fn bystander(twig: &Twig) -> RawConn {
    let mut c = RawConn::connect(&twig.sut.addr());
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB keep 1\r\n");
    c.ping_pong(STEP);
    c
}

/// Still connected: answers a PING, and a message on its subscription reaches it.
fn still_there(c: &mut RawConn) {
    c.send(b"PUB keep 2\r\nok\r\n");
    c.ping_pong(STEP);
    assert!(!c.is_closed(), "the client was dropped: {}", c.text());
    assert!(c.text().contains("MSG keep 1 2\r\nok\r\n"), "{}", c.text());
}

/// Waits until the hub's `/leafz` counts `n` leafnode connections.
async fn hub_leafs(hub: &Hub, n: u64) {
    eventually(
        &format!("the hub counts {n} leafnode connection(s)"),
        || http_json(hub.http_port, "/leafz")["leafnodes"].as_u64() == Some(n),
    )
    .await;
}

/// twig's `/leafz` remotes, as their URLs.
fn twig_remotes(twig: &Twig) -> Vec<String> {
    let leafz = twig.monitor("/leafz");
    leafz["remotes"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|x| x["url"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_remote_added_by_reload_connects_and_clients_stay() {
    let hub = Hub::start(HubVersion::V2_15);
    let dir = tempfile::tempdir().unwrap();
    let file = ConfigFile::new(dir.path(), "debug = false\n");
    let twig = Twig::start(&file.args());
    let mut c = bystander(&twig);
    let tc = connect(&twig.url()).await;
    // Local interest made before the remote exists must reach the hub once it is added.
    let mut down = tc.subscribe("down.x").await.unwrap();
    tc.flush().await.unwrap();
    assert!(twig_remotes(&twig).is_empty());

    // The remote, and a shared leafnodes setting that needs a restart: named, the rest reloads.
    let text = format!(
        "[leafnodes]\nping_interval = \"20s\"\n{}",
        remote(&hub.leaf_url(), "")
    );
    reload(&twig, &file, &text, 1);
    twig.wait_up(1);
    let log = twig.log();
    assert!(log.contains("Reloaded: leafnodes.remotes"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("Not reloaded") && l.contains("leafnodes")),
        "{log}"
    );
    assert!(log.contains("Leafnode remote 0 added by a reload"), "{log}");
    hub_leafs(&hub, 1).await;
    assert_eq!(twig_remotes(&twig).len(), 1);

    let hc = connect(&hub.client_url()).await;
    let mut up = hc.subscribe("up.x").await.unwrap();
    interest_ready(&hc, &tc).await;
    tc.publish("up.x", "from twig".into()).await.unwrap();
    assert_eq!(next(&mut up).await.payload, Bytes::from("from twig"));
    interest_ready(&tc, &hc).await;
    hc.publish("down.x", "from the hub".into()).await.unwrap();
    assert_eq!(next(&mut down).await.payload, Bytes::from("from the hub"));
    still_there(&mut c);
}

#[tokio::test]
async fn changed_credentials_reconnect_with_the_new_ones() {
    // Two leafnode users bound to two accounts: which account twig's messages land in shows
    // which credentials the link used.
    let options = HubOptions {
        leafnodes: "  authorization { users: [ \
                    { user: edge_a, password: \"pa\", account: A }, \
                    { user: edge_b, password: \"pb\", account: B } ] }"
            .into(),
        extra: "accounts { \
                A: { users: [ { user: ca, password: ca } ] }, \
                B: { users: [ { user: cb, password: cb } ] } }"
            .into(),
        ..HubOptions::default()
    };
    let hub = Hub::start_with(HubVersion::V2_15, &options);
    let url = hub.leaf_url();
    let dir = tempfile::tempdir().unwrap();
    let as_a = remote(&url, "user = \"edge_a\"\npassword = \"pa\"");
    let file = ConfigFile::new(dir.path(), &as_a);
    let twig = Twig::start(&file.args());
    twig.wait_up(1);
    let mut c = bystander(&twig);
    let tc = connect(&twig.url()).await;
    let account = |user: &'static str| {
        async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
            .connect(hub.client_url())
    };
    let (in_a, in_b) = (
        account("ca").await.expect("a client in account A"),
        account("cb").await.expect("a client in account B"),
    );
    let mut at_a = in_a.subscribe("up.creds").await.unwrap();
    let mut at_b = in_b.subscribe("up.creds").await.unwrap();
    interest_ready(&in_a, &tc).await;
    tc.publish("up.creds", "1".into()).await.unwrap();
    assert_eq!(next(&mut at_a).await.payload, Bytes::from("1"));
    assert_eq!(twig.monitor("/leafz")["leafs"][0]["account"], "A");

    // A wrong password first: the link fails with the hub's reason, clients stay.
    let wrong = remote(&url, "user = \"edge_b\"\npassword = \"nope\"");
    reload(&twig, &file, &wrong, 1);
    twig.wait_log("Leafnode remote 0 changed by a reload", 1);
    twig.wait_log("Authorization Violation", 1);
    hub_leafs(&hub, 0).await;
    still_there(&mut c);

    let as_b = remote(&url, "user = \"edge_b\"\npassword = \"pb\"");
    reload(&twig, &file, &as_b, 2);
    twig.wait_up(2);
    hub_leafs(&hub, 1).await;
    assert_eq!(twig.monitor("/leafz")["leafs"][0]["account"], "B");
    interest_ready(&in_b, &tc).await;
    tc.publish("up.creds", "2".into()).await.unwrap();
    assert_eq!(next(&mut at_b).await.payload, Bytes::from("2"));
    assert_quiet(&mut at_a).await;
    still_there(&mut c);
}

#[tokio::test]
async fn a_removed_remote_is_closed_and_can_come_back() {
    let (hub_a, hub_b) = (Hub::start(HubVersion::V2_15), Hub::start(HubVersion::V2_15));
    let dir = tempfile::tempdir().unwrap();
    let both = format!(
        "{}{}",
        remote(&hub_a.leaf_url(), ""),
        remote(&hub_b.leaf_url(), "")
    );
    let file = ConfigFile::new(dir.path(), &both);
    let twig = Twig::start(&file.args());
    twig.wait_up(2);
    hub_leafs(&hub_a, 1).await;
    hub_leafs(&hub_b, 1).await;
    let mut c = bystander(&twig);

    // The second goes; the first is not touched.
    reload(&twig, &file, &remote(&hub_a.leaf_url(), ""), 1);
    twig.wait_log("Leafnode remote 1 removed by a reload", 1);
    hub_leafs(&hub_b, 0).await;
    hub_leafs(&hub_a, 1).await;
    assert_eq!(twig_remotes(&twig).len(), 1);
    assert_eq!(twig.log().matches("Leafnode connection created").count(), 2);
    let health = twig.monitor("/healthz?leafnodes=true");
    assert_eq!(health["status"], "ok", "{health}");
    still_there(&mut c);

    // Back at the same position: it connects again.
    reload(&twig, &file, &both, 2);
    twig.wait_up(3);
    hub_leafs(&hub_b, 1).await;
    assert_eq!(twig_remotes(&twig).len(), 2);

    // All of them go.
    reload(&twig, &file, "", 3);
    hub_leafs(&hub_a, 0).await;
    hub_leafs(&hub_b, 0).await;
    assert!(twig_remotes(&twig).is_empty());
    still_there(&mut c);
}

#[tokio::test]
async fn removing_the_remote_a_stream_forwards_through_is_refused() {
    let (hub, other) = (Hub::start(HubVersion::V2_15), Hub::start(HubVersion::V2_15));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let stream = format!(
        "store_dir = {:?}\n[[streams]]\nname = \"ORDERS\"\nsubjects = [\"orders.>\"]\n",
        store.display().to_string()
    );
    let start = format!("{stream}{}", remote(&hub.leaf_url(), ""));
    let file = ConfigFile::new(dir.path(), &start);
    let twig = Twig::start(&file.args());
    twig.wait_up(1);
    let mut c = bystander(&twig);

    // Removed, and reordered (the stream's position would get another hub): both refused,
    // with the debug change that came with them.
    let gone = format!("debug = true\n{stream}");
    let moved = format!(
        "debug = true\n{stream}{}{}",
        remote(&other.leaf_url(), ""),
        remote(&hub.leaf_url(), "")
    );
    for (n, (text, why)) in [
        (gone, "remote 0 is used by stream \"ORDERS\""),
        (moved, "reordered"),
    ]
    .iter()
    .enumerate()
    {
        reload(&twig, &file, text, n + 1);
        let log = twig.log();
        let line = log
            .lines()
            .filter(|l| l.contains("Failed to reload server configuration"))
            .nth(n)
            .unwrap_or_else(|| panic!("reload {} was not refused:\n{log}", n + 1));
        assert!(line.contains(why) && line.contains("restart"), "{line}");
    }
    let log = twig.log();
    assert!(!log.contains("by a reload"), "{log}");
    assert!(!log.contains("[DBG]"), "debug went in force:\n{log}");
    assert!(!log.contains("Reloaded:"), "{log}");
    assert_eq!(log.matches("Leafnode connection created").count(), 1);
    hub_leafs(&hub, 1).await;
    hub_leafs(&other, 0).await;
    still_there(&mut c);

    // Adding a remote after the stream's and changing nothing else is fine.
    let added = format!("{start}{}", remote(&other.leaf_url(), ""));
    reload(&twig, &file, &added, 3);
    twig.wait_up(2);
    hub_leafs(&other, 1).await;
    hub_leafs(&hub, 1).await;
    assert_eq!(twig.log().matches("Leafnode connection created").count(), 2);
}
