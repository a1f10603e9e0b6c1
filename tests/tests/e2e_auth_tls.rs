//! async-nats against the server under test: who gets in (user/password, token, nkey) and TLS.

use async_nats::{Client, ConnectErrorKind, ConnectOptions};
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;
use twig_tests::harness::{NkeyUser, ServerOptions, ServerUnderTest, TestCerts};

const STEP: Duration = Duration::from_secs(5);

/// Proves a connection really works: a message to itself and back.
async fn round_trip(client: &Client) {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "ping".into()).await.unwrap();
    let m = tokio::time::timeout(STEP, sub.next())
        .await
        .expect("round trip within deadline")
        .expect("subscription open");
    assert_eq!(m.payload, Bytes::from("ping"));
}

async fn connect_err(opts: ConnectOptions, server: &ServerUnderTest) -> ConnectErrorKind {
    let res = tokio::time::timeout(STEP, opts.connection_timeout(STEP).connect(server.url()))
        .await
        .expect("connect attempt ends within deadline");
    match res {
        Ok(_) => panic!("connection was accepted but must be refused"),
        Err(e) => e.kind(),
    }
}

fn user_pass() -> ServerOptions {
    ServerOptions {
        user: Some("derek".into()),
        pass: Some("s3cr3t".into()),
        ..ServerOptions::default()
    }
}

#[tokio::test]
async fn user_and_password_accepted() {
    let server = ServerUnderTest::start(&user_pass());
    let client = ConnectOptions::with_user_and_password("derek".into(), "s3cr3t".into())
        .connect(server.url())
        .await
        .expect("valid credentials accepted");
    assert!(client.server_info().auth_required);
    round_trip(&client).await;
}

#[tokio::test]
async fn wrong_password_or_no_credentials_refused() {
    let server = ServerUnderTest::start(&user_pass());
    let bad = ConnectOptions::with_user_and_password("derek".into(), "wrong".into());
    assert_eq!(
        connect_err(bad, &server).await,
        ConnectErrorKind::AuthorizationViolation
    );
    let none = ConnectOptions::new();
    assert_eq!(
        connect_err(none, &server).await,
        ConnectErrorKind::AuthorizationViolation
    );
}

#[tokio::test]
async fn token_accepted_and_wrong_token_refused() {
    let opts = ServerOptions {
        token: Some("t0ken-xyz".into()),
        ..ServerOptions::default()
    };
    let server = ServerUnderTest::start(&opts);
    let client = ConnectOptions::with_token("t0ken-xyz".into())
        .connect(server.url())
        .await
        .expect("valid token accepted");
    round_trip(&client).await;
    let bad = ConnectOptions::with_token("other".into());
    assert_eq!(
        connect_err(bad, &server).await,
        ConnectErrorKind::AuthorizationViolation
    );
}

#[tokio::test]
async fn nkey_signature_accepted_and_unknown_key_refused() {
    let user = NkeyUser::generate();
    let opts = ServerOptions {
        nkeys: vec![user.public.clone()],
        ..ServerOptions::default()
    };
    let server = ServerUnderTest::start(&opts);
    let client = ConnectOptions::with_nkey(user.seed.clone())
        .connect(server.url())
        .await
        .expect("listed nkey accepted");
    let info = client.server_info();
    assert!(info.auth_required);
    assert!(!info.nonce.is_empty(), "nkey auth needs a nonce in INFO");
    round_trip(&client).await;

    let stranger = NkeyUser::generate();
    assert_eq!(
        connect_err(ConnectOptions::with_nkey(stranger.seed), &server).await,
        ConnectErrorKind::AuthorizationViolation
    );
}

fn tls_server() -> (ServerUnderTest, TestCerts, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let opts = ServerOptions {
        tls: Some(certs.clone()),
        ..ServerOptions::default()
    };
    (ServerUnderTest::start(&opts), certs, dir)
}

#[tokio::test]
async fn tls_client_trusting_the_ca_connects() {
    let (server, certs, _dir) = tls_server();
    let client = ConnectOptions::new()
        .add_root_certificates(certs.ca_file.clone())
        .require_tls(true)
        .connect(server.url())
        .await
        .expect("TLS connection with the test CA");
    assert!(client.server_info().tls_required);
    round_trip(&client).await;

    // A second client sees messages from the first over TLS too.
    let other = ConnectOptions::new()
        .add_root_certificates(certs.ca_file.clone())
        .connect(format!("tls://127.0.0.1:{}", server.port()))
        .await
        .expect("tls:// URL");
    let mut sub = other.subscribe("secure.data").await.unwrap();
    round_trip(&other).await;
    client
        .publish("secure.data", "encrypted".into())
        .await
        .unwrap();
    let m = tokio::time::timeout(STEP, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.payload, Bytes::from("encrypted"));
}

#[tokio::test]
async fn tls_client_not_trusting_the_ca_is_refused() {
    let (server, _certs, _dir) = tls_server();
    let kind = connect_err(ConnectOptions::new().require_tls(true), &server).await;
    assert!(
        matches!(kind, ConnectErrorKind::Tls | ConnectErrorKind::Io),
        "expected a TLS failure, got {kind:?}"
    );
}
