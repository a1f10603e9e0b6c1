//! async-nats meets the server under test (`TWIG_TEST_TARGET=twig|nats-server`) the way it meets
//! a nats-server in production: over IPv6 loopback, across a server restart, through lame
//! duck mode onto a second server, and with client certificates (`tls_verify`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Event, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use twig_tests::harness::{ServerOptions, ServerUnderTest, TestCerts};

const STEP: Duration = Duration::from_secs(10);

/// Publishes on `subject` until `sub` gets one (interest may still be on its way after a
/// reconnect: each try is a full round trip, never a bare sleep).
async fn delivered(publisher: &Client, sub: &mut Subscriber, subject: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        publisher
            .publish(subject.to_string(), "ping".into())
            .await
            .unwrap();
        publisher.flush().await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            assert_eq!(m.payload, Bytes::from("ping"));
            return;
        }
        assert!(Instant::now() < deadline, "nothing delivered on {subject}");
    }
}

/// Events a client saw, shared with its callback.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    fn options(&self) -> ConnectOptions {
        let seen = self.clone();
        ConnectOptions::new()
            .connection_timeout(STEP)
            .event_callback(move |e| {
                let seen = seen.clone();
                async move { seen.0.lock().unwrap().push(e) }
            })
    }

    fn count(&self, wanted: fn(&Event) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| wanted(e)).count()
    }

    async fn wait(&self, what: &str, n: usize, wanted: fn(&Event) -> bool) {
        let deadline = Instant::now() + STEP;
        while self.count(wanted) < n {
            assert!(
                Instant::now() < deadline,
                "no {what} event; saw {:?}",
                self.0.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn connected(e: &Event) -> bool {
    matches!(e, Event::Connected)
}

#[tokio::test]
async fn ipv6_loopback_carries_messages() {
    let opts = ServerOptions {
        ipv6_loopback: true,
        ..ServerOptions::default()
    };
    let server = ServerUnderTest::start(&opts);
    let sub_client = async_nats::connect(server.url_v6()).await.unwrap();
    let pub_client = async_nats::connect(server.url_v6()).await.unwrap();
    let mut sub = sub_client.subscribe("v6.>").await.unwrap();
    sub_client.flush().await.unwrap();
    delivered(&pub_client, &mut sub, "v6.hello").await;
    assert_eq!(sub_client.server_info().client_ip, "::1");
    if server.target() == twig_tests::harness::Target::Twig {
        // twig's default listens on both loopbacks: IPv4 clients reach the same server.
        let v4 = async_nats::connect(server.url()).await.unwrap();
        delivered(&v4, &mut sub, "v6.from-v4").await;
    }
}

#[tokio::test]
async fn the_client_reconnects_after_a_server_restart() {
    let mut server = ServerUnderTest::start(&ServerOptions::default());
    let events = Events::default();
    let client = events
        .options()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(server.url())
        .await
        .unwrap();
    let mut sub = client.subscribe("restart.>").await.unwrap();
    delivered(&client, &mut sub, "restart.before").await;
    server.restart();
    events.wait("reconnect", 2, connected).await;
    // The client sent its subscription again; the new server delivers on it.
    delivered(&client, &mut sub, "restart.after").await;
}

#[tokio::test]
async fn lame_duck_mode_moves_the_client_to_a_second_server() {
    // nats-server's minimum duration; with one client, the close follows the grace period.
    let opts = ServerOptions {
        lame_duck: Some((Duration::from_secs(30), Duration::from_secs(1))),
        ..ServerOptions::default()
    };
    let mut first = ServerUnderTest::start(&opts);
    let second = ServerUnderTest::start(&opts);
    let events = Events::default();
    let client = events
        .options()
        .retain_servers_order()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(vec![first.url(), second.url()].as_slice())
        .await
        .unwrap();
    assert_eq!(client.server_info().port, first.port());
    let mut sub = client.subscribe("ldm.>").await.unwrap();
    delivered(&client, &mut sub, "ldm.before").await;

    let t0 = Instant::now();
    first.signal("ldm");
    events
        .wait("lame duck", 1, |e| matches!(e, Event::LameDuckMode))
        .await;
    events.wait("reconnect", 2, connected).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "closed before the grace period: {:?}",
        t0.elapsed()
    );
    assert_eq!(client.server_info().port, second.port());
    let other = async_nats::connect(second.url()).await.unwrap();
    delivered(&other, &mut sub, "ldm.after").await;
    // Lame duck mode ends with the server gone, exit code 0.
    assert_eq!(first.wait_exit(STEP), Some(0), "{}", first.log());
    assert!(
        first
            .log()
            .contains("Entering lame duck mode, stop accepting new clients"),
        "{}",
        first.log()
    );
}

#[tokio::test]
async fn tls_verify_takes_a_client_certificate_and_refuses_none() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let opts = ServerOptions {
        tls: Some(certs.clone()),
        tls_verify: true,
        ..ServerOptions::default()
    };
    let server = ServerUnderTest::start(&opts);
    let client = ConnectOptions::new()
        .connection_timeout(STEP)
        .add_root_certificates(certs.ca_file.clone())
        .add_client_certificate(
            certs.client_cert_file.clone(),
            certs.client_key_file.clone(),
        )
        .require_tls(true)
        .connect(server.url())
        .await
        .expect("TLS with a client certificate");
    let info = client.server_info();
    assert!(info.tls_required, "{info:?}");
    let mut sub = client.subscribe("mtls").await.unwrap();
    delivered(&client, &mut sub, "mtls").await;

    let without = ConnectOptions::new()
        .connection_timeout(STEP)
        .add_root_certificates(certs.ca_file.clone())
        .require_tls(true)
        .connect(server.url())
        .await;
    assert!(without.is_err(), "a client without a certificate got in");
}
