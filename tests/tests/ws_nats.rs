//! Leafnode connections over WebSocket to a real nats-server 2.15 hub (`websocket { ... }`),
//! spoken by hand through twig-wsproto's codec (and twig-core's wire and S2 codecs), directly
//! and through an HTTP CONNECT proxy the test starts (`tests/src/connect_proxy.rs`) with
//! Basic credentials. A nats-server leaf through the same proxy shows the proxy behaves as
//! nats-server's own proxy client expects.

#[path = "common/uplink.rs"]
mod common;

use std::time::Duration;

use common::*;
use tokio::net::TcpStream;
use tokio::time::Instant;
use twig_core::s2::Level;
use twig_core::s2::mode::Mode;
use twig_core::testing::{Rng, sensor_backlog};
use twig_core::wire::{Op, Queues};
use twig_tests::connect_proxy::ConnectProxy;
use twig_tests::hub::{Hub, HubOptions, HubVersion};
use twig_tests::leaf_raw::{Got, RawLeaf, WsLink, dial_via_proxy, ws_upgrade};
use twig_tests::nats_server::{NatsServer, Options};
use twig_wsproto::{HandshakeError, ProxyError, RemoteUrl};

/// A 2.15 hub with a plain-text websocket listener; returns it and the websocket port.
fn ws_hub() -> (Hub, u16) {
    ws_hub_with("no_tls: true", "ws")
}

/// A hub whose websocket block has `tls` (config text) and logs `scheme://` for it.
fn ws_hub_with(tls: &str, scheme: &str) -> (Hub, u16) {
    let hub = Hub::start_with(
        HubVersion::V2_15,
        &HubOptions {
            extra: format!("websocket {{\n  listen: \"127.0.0.1:-1\"\n  {tls}\n}}\n"),
            ..HubOptions::default()
        },
    );
    let log = hub.log();
    let needle = format!("Listening for websocket clients on {scheme}://");
    let port = log
        .lines()
        .find_map(|l| l.split_once(needle.as_str()))
        .and_then(|(_, a)| a.trim().rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("the hub did not log its websocket port:\n{log}"));
    (hub, port)
}

fn lmsg(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Op::Lmsg {
        subject: subject.as_bytes(),
        reply: None,
        queues: Queues::EMPTY,
        headers: None,
        payload,
    }
    .encode_into(&mut out)
    .unwrap();
    out
}

/// Payloads both ways: small, JSON backlog, 200 KB random.
fn payloads() -> Vec<Vec<u8>> {
    let mut rng = Rng::new(21);
    vec![
        b"hello over websocket".to_vec(),
        Vec::new(),
        sensor_backlog(&mut rng, 1, 400),
        (0..200_000).map(|_| rng.next_u64() as u8).collect(),
        b"last".to_vec(),
    ]
}

/// Messages go both ways between `leaf` and the hub's clients.
async fn traffic(hub: &Hub, leaf: &mut RawLeaf, deadline: Instant) {
    let client = connect(&hub.client_url()).await;
    let mut at_hub = client.subscribe("up.>").await.unwrap();
    client.flush().await.unwrap();
    while leaf.next(deadline).await != Got::LsPlus("up.>".into()) {}
    let payloads = payloads();
    let ops: Vec<u8> = payloads
        .iter()
        .enumerate()
        .flat_map(|(i, p)| lmsg(&format!("up.{i}"), p))
        .collect();
    // Two flushes, the second cut mid-op.
    let cut = ops.len() / 3;
    leaf.send(&ops[..cut]).await;
    leaf.send(&ops[cut..]).await;
    for (i, p) in payloads.iter().enumerate() {
        let m = next(&mut at_hub).await;
        assert_eq!(m.subject.as_str(), format!("up.{i}"));
        assert!(m.payload == *p, "payload up.{i}");
    }
    leaf.send(b"LS+ down.>\r\nPING\r\n").await;
    while leaf.next(deadline).await != Got::Pong {}
    for (i, p) in payloads.iter().enumerate() {
        client
            .publish(format!("down.{i}"), p.clone().into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    for (i, p) in payloads.iter().enumerate() {
        let (subject, payload) = loop {
            if let Got::Msg {
                subject, payload, ..
            } = leaf.next(deadline).await
                && subject.starts_with("down.")
            {
                break (subject, payload);
            }
        };
        assert_eq!(subject, format!("down.{i}"));
        assert!(payload == *p, "payload down.{i}");
    }
}

async fn leaf_over(
    stream: TcpStream,
    ws: WsLink,
    mode: Mode,
    read_size: usize,
    deadline: Instant,
) -> RawLeaf {
    let name = format!("wsleaf_{}", twig_tests::harness::free_port());
    stream.set_nodelay(true).unwrap();
    RawLeaf::handshake(Box::new(stream), Some(ws), mode, &name, read_size, deadline).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_over_websocket_masked_with_s2() {
    let (hub, port) = ws_hub();
    let deadline = Instant::now() + STEP * 3;
    let url = RemoteUrl::parse(&format!("ws://127.0.0.1:{port}")).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let ws = ws_upgrade(&mut stream, &url, false, deadline)
        .await
        .unwrap();
    assert!(ws.masked);
    // The hub offers S2 over websocket (no websocket compression): fast, both ways.
    let mut leaf = leaf_over(stream, ws, Mode::Fast, 1000, deadline).await;
    assert_eq!(leaf.hub_info["compression"], "s2_auto");
    assert_eq!(leaf.level(), Some(Level::Fast));
    let leafz = http_json(hub.http_port, "/leafz");
    assert_eq!(leafz["leafnodes"], 1, "{leafz}");
    traffic(&hub, &mut leaf, deadline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_over_websocket_unmasked_when_agreed_and_split_reads() {
    let (hub, port) = ws_hub();
    let deadline = Instant::now() + STEP * 3;
    let url = RemoteUrl::parse(&format!("ws://127.0.0.1:{port}/some/path")).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let ws = ws_upgrade(&mut stream, &url, true, deadline).await.unwrap();
    assert!(!ws.masked, "nats-server agrees to Nats-No-Masking");
    let mut leaf = leaf_over(stream, ws, Mode::Off, 7, deadline).await;
    leaf.write_piece = 5;
    assert_eq!(leaf.level(), None);
    traffic(&hub, &mut leaf, deadline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_over_websocket_through_a_connect_proxy() {
    let (hub, port) = ws_hub();
    let proxy = ConnectProxy::start(Some(("edge", "s3cret:pw")));
    let deadline = Instant::now() + STEP * 3;
    let url = RemoteUrl::parse(&format!("ws://127.0.0.1:{port}")).unwrap();
    let target = url.host_port();
    let (mut stream, leftover) =
        dial_via_proxy(proxy.port, &target, Some(("edge", "s3cret:pw")), deadline)
            .await
            .unwrap();
    assert!(leftover.is_empty());
    let ws = ws_upgrade(&mut stream, &url, false, deadline)
        .await
        .unwrap();
    let mut leaf = leaf_over(stream, ws, Mode::Best, 4096, deadline).await;
    assert_eq!(leaf.level(), Some(Level::Best));
    traffic(&hub, &mut leaf, deadline).await;
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].starts_with(&format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n")));
    assert!(heads[0].contains("Proxy-Authorization: Basic ZWRnZTpzM2NyZXQ6cHc=\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_and_upgrade_refusals_are_clear() {
    let (hub, port) = ws_hub();
    let proxy = ConnectProxy::start(Some(("edge", "right")));
    let deadline = Instant::now() + STEP;
    let target = format!("127.0.0.1:{port}");
    let err = dial_via_proxy(proxy.port, &target, Some(("edge", "wrong")), deadline)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProxyError::Refused {
            status: 407,
            reason: "Proxy Authentication Required".into()
        }
    );
    let err = dial_via_proxy(proxy.port, &target, None, deadline)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("407"), "{err}");
    // An upgrade sent to the hub's plain leafnode port gets INFO, not HTTP.
    let url = RemoteUrl::parse(&format!("ws://127.0.0.1:{}", hub.leaf_port)).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", hub.leaf_port))
        .await
        .unwrap();
    let err = ws_upgrade(&mut stream, &url, false, deadline)
        .await
        .err()
        .expect("not a websocket port");
    assert!(matches!(err, HandshakeError::Malformed(_)), "{err}");
    assert!(err.to_string().contains("INFO"), "{err}");
}

/// nats-server's own leaf, `ws://` through the test's proxy with credentials: the proxy is
/// what nats-server's proxy client expects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_leaf_through_the_test_proxy() {
    let (hub, port) = ws_hub();
    let proxy = ConnectProxy::start(Some(("edge", "pw")));
    let leaf = NatsServer::start(&Options {
        extra: format!(
            "leafnodes {{\n  remotes: [{{\n    url: \"ws://127.0.0.1:{port}\"\n    \
             proxy: {{ url: \"{}\", username: edge, password: pw }}\n  }}]\n}}\n",
            proxy.url()
        ),
        ..Options::default()
    });
    let deadline = std::time::Instant::now() + STEP;
    while http_json(hub.http_port, "/leafz")["leafnodes"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "no leaf:\n{}",
            leaf.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let heads = proxy.heads();
    assert!(
        heads[0].starts_with(&format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n")),
        "{heads:?}"
    );
    let hub_client = connect(&hub.client_url()).await;
    let leaf_client = connect(&leaf.client_url()).await;
    let mut s = hub_client.subscribe("up.x").await.unwrap();
    interest_ready(&hub_client, &leaf_client).await;
    leaf_client
        .publish("up.x", "via proxy".into())
        .await
        .unwrap();
    assert_eq!(next(&mut s).await.payload, "via proxy");
}

/// `wss://`: TLS (the hub's certificate, signed by the test CA), then the same upgrade and
/// S2 inside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_over_secure_websocket() {
    use std::sync::Arc;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::{self, RootCertStore, pki_types::ServerName};

    let dir = tempfile::tempdir().unwrap();
    let certs = twig_tests::harness::TestCerts::generate(dir.path());
    let tls = format!(
        "tls {{ cert_file: {:?}, key_file: {:?} }}",
        certs.cert_file.display().to_string(),
        certs.key_file.display().to_string()
    );
    let (hub, port) = ws_hub_with(&tls, "wss");
    let mut roots = RootCertStore::empty();
    let pem = std::fs::read(&certs.ca_file).unwrap();
    for c in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let deadline = Instant::now() + STEP * 3;
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS to the hub's websocket port");
    let url = RemoteUrl::parse(&format!("wss://localhost:{port}")).unwrap();
    assert!(url.tls);
    let ws = ws_upgrade(&mut stream, &url, true, deadline).await.unwrap();
    let name = format!("wssleaf_{}", twig_tests::harness::free_port());
    let mut leaf = RawLeaf::handshake(
        Box::new(stream),
        Some(ws),
        Mode::Better,
        &name,
        999,
        deadline,
    )
    .await;
    assert_eq!(leaf.level(), Some(Level::Better));
    traffic(&hub, &mut leaf, deadline).await;
}
