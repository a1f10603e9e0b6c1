//! Reloading the client port's TLS (SIGHUP, `twig --signal reload`), as nats-server does: a
//! changed `[tls]` applies to new connections, the open ones keep their session.
//!
//! - A client logged in by its certificate (`verify_and_map`) under CA A stays connected
//!   through a reload to a server certificate and client CA from CA B (no reconnect: it
//!   trusts only A, so a reconnect would fail); a new client of B connects and is mapped to
//!   its user; a client trusting only A, or presenting a certificate from A, is refused.
//! - A reload whose `[tls]` does not load (a missing key file, a file that holds no key) is
//!   refused whole with the reason in the log, and the certificate in force still serves.
//! - TLS turned on by a reload: plain clients already connected stay, new ones must use TLS.

#[path = "common/uplink.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use async_nats::{Client, ConnectOptions};
use bytes::Bytes;
use common::*;
use futures::StreamExt;

/// One CA's files: `[ca, server cert, server key, client cert, client key]`.
struct Pki([PathBuf; 5]);

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        Pki(twig_tests::pki::write(
            &sub,
            &format!("twig reload CA {name}"),
            &format!("client-{name}"),
        ))
    }

    fn ca(&self) -> PathBuf {
        self.0[0].clone()
    }

    /// `[tls]` with this CA's server certificate, verifying and mapping client certificates.
    fn tls_toml(&self) -> String {
        format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\nca_file = {:?}\nverify_and_map = true\n",
            self.0[1], self.0[2], self.0[0]
        )
    }

    /// A client trusting `trust`'s CA, presenting this CA's client certificate.
    fn client(&self, trust: &Pki) -> ConnectOptions {
        ConnectOptions::new()
            .add_root_certificates(trust.ca())
            .add_client_certificate(self.0[3].clone(), self.0[4].clone())
            .require_tls(true)
            .connection_timeout(STEP)
    }
}

/// Users named by the client certificates' DNS names (`client-a`, `client-b`).
const USERS: &str = "[authorization]\nusers = [{ user = \"client-a\" }, { user = \"client-b\" }]\n";

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write the twig config");
}

/// Sends the reload signal and waits until twig logged its `n`-th reload outcome.
fn reload(twig: &Twig, n: usize) {
    twig.sut.signal("reload");
    twig.sut.wait_reloads(n, STEP);
}

/// A message to itself and back.
async fn round_trip(client: &Client) {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "ping".into()).await.unwrap();
    client.flush().await.unwrap();
    let m = tokio::time::timeout(STEP, sub.next())
        .await
        .expect("round trip within deadline")
        .expect("subscription open");
    assert_eq!(m.payload, Bytes::from("ping"));
}

async fn refused(opts: ConnectOptions, url: &str, what: &str) {
    let res = tokio::time::timeout(STEP, opts.connect(url))
        .await
        .expect("connect attempt ends within deadline");
    assert!(res.is_err(), "{what}: connected but must be refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_and_ca_serve_new_clients_and_open_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    let path = dir.path().join("twig.toml");
    write(&path, &format!("{}{USERS}", a.tls_toml()));
    let twig = Twig::start(&["-c".into(), path.display().to_string()]);
    let url = twig.url();

    let old = a.client(&a).connect(&url).await.expect("client of CA A");
    round_trip(&old).await;
    let mut old_sub = old.subscribe("news").await.unwrap();
    old.flush().await.unwrap();
    // CA B is not trusted yet, either way round.
    refused(b.client(&b), &url, "client of CA B before the reload").await;

    write(&path, &format!("{}{USERS}", b.tls_toml()));
    reload(&twig, 1);
    let log = twig.log();
    assert!(log.contains("Reloaded: tls = enabled"), "{log}");

    // The open connection keeps its session (it could not reconnect: it trusts only A).
    round_trip(&old).await;
    assert_eq!(old.statistics().connects.load(Ordering::Relaxed), 1);

    // A client of B connects with no credentials but its certificate (so it was mapped to
    // its user: `verify_and_map` refuses a certificate that names none) and reaches the old
    // one.
    let new = b.client(&b).connect(&url).await.expect("client of CA B");
    round_trip(&new).await;
    new.publish("news", "from b".into()).await.unwrap();
    new.flush().await.unwrap();
    let m = tokio::time::timeout(STEP, old_sub.next())
        .await
        .expect("delivery within deadline")
        .unwrap();
    assert_eq!(m.payload, Bytes::from("from b"));

    // The old server certificate and the old client CA are gone.
    refused(a.client(&a), &url, "a client trusting only CA A").await;
    refused(a.client(&b), &url, "a client certificate from CA A").await;
    assert_eq!(
        twig.monitor("/varz")["tls_required"],
        serde_json::Value::Bool(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_block_that_does_not_load_refuses_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    let path = dir.path().join("twig.toml");
    let good = format!("{}{USERS}", a.tls_toml());
    write(&path, &good);
    let twig = Twig::start(&["-c".into(), path.display().to_string()]);
    let url = twig.url();
    let old = a.client(&a).connect(&url).await.expect("client of CA A");

    let missing = dir.path().join("missing-key.pem");
    let not_a_key = dir.path().join("not-a-key.pem");
    std::fs::copy(&b.0[0], &not_a_key).unwrap();
    let b_tls = b.tls_toml();
    let bad = [
        // With a debug change that must not go in force either.
        format!(
            "debug = true\n{}{USERS}",
            b_tls.replace(&format!("{:?}", b.0[2]), &format!("{missing:?}"))
        ),
        format!(
            "{}{USERS}",
            b_tls.replace(&format!("{:?}", b.0[2]), &format!("{not_a_key:?}"))
        ),
    ];
    for (n, text) in bad.iter().enumerate() {
        write(&path, text);
        reload(&twig, n + 1);
        let log = twig.log();
        let line = log
            .lines()
            .filter(|l| l.contains("Failed to reload server configuration"))
            .nth(n)
            .unwrap_or_else(|| panic!("reload {n} was not refused:\n{log}"));
        assert!(line.contains("tls"), "{line}");
    }
    let log = twig.log();
    assert!(!log.contains("Reloaded: tls"), "{log}");
    assert!(!log.contains("[DBG]"), "debug went in force:\n{log}");

    // CA A still serves, new and open connections alike; B is still refused.
    round_trip(&old).await;
    let again = a.client(&a).connect(&url).await.expect("client of CA A");
    round_trip(&again).await;
    refused(b.client(&b), &url, "client of CA B after a refused reload").await;
    assert_eq!(old.statistics().connects.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_turned_on_by_a_reload_applies_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let a = Pki::new(dir.path(), "a");
    let path = dir.path().join("twig.toml");
    write(&path, "debug = false\n");
    let twig = Twig::start(&["-c".into(), path.display().to_string()]);
    let url = twig.url();
    let plain = ConnectOptions::new()
        .connect(&url)
        .await
        .expect("plain client");
    assert!(!plain.server_info().tls_required);
    round_trip(&plain).await;

    // Server certificate only: no client certificates asked for.
    let tls = format!("[tls]\ncert_file = {:?}\nkey_file = {:?}\n", a.0[1], a.0[2]);
    write(&path, &tls);
    reload(&twig, 1);
    assert!(twig.log().contains("Reloaded: tls = enabled"));

    round_trip(&plain).await;
    assert_eq!(plain.statistics().connects.load(Ordering::Relaxed), 1);
    let secure = ConnectOptions::new()
        .add_root_certificates(a.ca())
        .require_tls(true)
        .connect(&url)
        .await
        .expect("TLS client after the reload");
    assert!(secure.server_info().tls_required);
    round_trip(&secure).await;
    assert_eq!(
        twig.monitor("/varz")["tls_required"],
        serde_json::Value::Bool(true)
    );
    refused(
        ConnectOptions::new().connection_timeout(STEP),
        &url,
        "a plain client once TLS is on",
    )
    .await;
}
