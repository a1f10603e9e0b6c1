//! twig's uplink over WebSocket (`ws://`, `wss://`, with a path) to a real nats-server 2.15
//! hub's `websocket { }` listener, directly and through an HTTP CONNECT proxy started by the
//! test (`tests/src/connect_proxy.rs`) with Basic credentials. Messages of every size go both
//! ways; S2 is negotiated inside the websocket stream as with a nats-server leaf.

#[path = "common/uplink.rs"]
mod common;
#[path = "common/s2.rs"]
mod s2common;

use common::*;
use s2common::*;
use twig_tests::connect_proxy::ConnectProxy;
use twig_tests::harness::TestCerts;
use twig_tests::hub::{Hub, HubOptions, HubVersion};

/// A 2.15 hub with a websocket listener (`tls` is the websocket block's TLS text, `scheme`
/// what the hub logs for it), with `compression` on its leafnodes; returns it and the port.
fn ws_hub(tls: &str, scheme: &str, compression: &str) -> (Hub, u16) {
    let hub = Hub::start_with(
        HubVersion::V2_15,
        &HubOptions {
            leafnodes: format!("compression: {compression}"),
            extra: format!("websocket {{\n  listen: \"127.0.0.1:-1\"\n  {tls}\n}}\n"),
            ..HubOptions::default()
        },
    );
    let needle = format!("Listening for websocket clients on {scheme}://");
    let log = hub.log();
    let port = log
        .lines()
        .find_map(|l| l.split_once(needle.as_str()))
        .and_then(|(_, a)| a.trim().rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("the hub did not log its websocket port:\n{log}"));
    (hub, port)
}

/// twig joined by `url` with `extra` TOML in the remote; messages of every kind both ways.
async fn flows(hub: &Hub, url: &str, extra: &str, tag: &str) -> Twig {
    let twig = Twig::with_config(
        hub.dir(),
        &format!(
            "server_name = \"edge_{}\"\n[[leafnodes.remotes]]\nurls = [\"{url}\"]\n{extra}\n",
            twig_tests::harness::free_port()
        ),
    );
    twig.wait_up(1);
    let hub_client = connect(&hub.client_url()).await;
    let twig_client = connect(&twig.url()).await;
    let mut at_hub = hub_client.subscribe("up.>").await.unwrap();
    interest_ready(&hub_client, &twig_client).await;
    let mut at_twig = twig_client.subscribe("down.>").await.unwrap();
    interest_ready(&twig_client, &hub_client).await;
    let up = messages("up", 31);
    let down = messages("down", 32);
    publish_all(&twig_client, &up).await;
    receive_all(&mut at_hub, &up).await;
    publish_all(&hub_client, &down).await;
    receive_all(&mut at_twig, &down).await;
    let leafz = http_json(hub.http_port, "/leafz");
    assert_eq!(leafz["leafnodes"], 1, "{tag}: {leafz}");
    twig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_remote_with_a_path_and_s2() {
    let (hub, port) = ws_hub("no_tls: true", "ws", "s2_best");
    let twig = flows(
        &hub,
        &format!("ws://127.0.0.1:{port}/edge/gateways"),
        "compression = \"s2_best\"",
        "ws s2_best",
    )
    .await;
    let leafz = twig.monitor("/leafz");
    assert_eq!(leafz["leafs"][0]["compression"], "s2_best", "{leafz}");
    assert_eq!(
        http_json(hub.http_port, "/leafz")["leafs"][0]["compression"],
        "s2_best"
    );
}

/// Unmasked frames when asked (`ws_no_masking`) and agreed, no compression.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_remote_unmasked_and_uncompressed() {
    let (hub, port) = ws_hub("no_tls: true", "ws", "s2_auto");
    let twig = flows(
        &hub,
        &format!("ws://127.0.0.1:{port}"),
        "compression = \"off\"\nws_no_masking = true",
        "ws off",
    )
    .await;
    assert_eq!(twig.monitor("/leafz")["leafs"][0]["compression"], "off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_remote_verifies_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let tls = format!(
        "tls {{ cert_file: {:?}, key_file: {:?} }}",
        certs.cert_file.display().to_string(),
        certs.key_file.display().to_string()
    );
    let (hub, port) = ws_hub(&tls, "wss", "s2_fast");
    flows(
        &hub,
        &format!("wss://localhost:{port}"),
        &format!(
            "compression = \"s2_better\"\ntls = {{ ca_file = {:?} }}",
            certs.ca_file.display().to_string()
        ),
        "wss",
    )
    .await;
}

/// Through an HTTP CONNECT proxy with Basic credentials: the tunnel goes to the hub's
/// websocket port, everything else as direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_remote_through_a_connect_proxy() {
    let (hub, port) = ws_hub("no_tls: true", "ws", "s2_auto");
    let proxy = ConnectProxy::start(Some(("edge", "s3cret:pw")));
    flows(
        &hub,
        &format!("ws://127.0.0.1:{port}"),
        &format!(
            "compression = \"s2_fast\"\nproxy = {{ url = \"{}\", username = \"edge\", password = \"s3cret:pw\" }}",
            proxy.url()
        ),
        "ws via proxy",
    )
    .await;
    let heads = proxy.heads();
    let target = format!("127.0.0.1:{port}");
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with(&format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n")),
        "{}",
        heads[0]
    );
    assert!(heads[0].contains("Proxy-Authorization: Basic ZWRnZTpzM2NyZXQ6cHc=\r\n"));
}

/// A proxy that refuses (wrong password) and a plain leafnode port behind a ws:// URL are
/// reported in words, attempt after attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_reported_clearly() {
    let (hub, port) = ws_hub("no_tls: true", "ws", "s2_auto");
    let proxy = ConnectProxy::start(Some(("edge", "right")));
    let twig = Twig::with_config(
        hub.dir(),
        &format!(
            "[[leafnodes.remotes]]\nurls = [\"ws://127.0.0.1:{port}\"]\n\
             proxy = {{ url = \"{}\", username = \"edge\", password = \"wrong\" }}\n",
            proxy.url()
        ),
    );
    twig.wait_log("proxy CONNECT failed: 407", 2);
    let twig = Twig::with_config(
        hub.dir(),
        &format!(
            "[[leafnodes.remotes]]\nurls = [\"ws://127.0.0.1:{}\"]\n",
            hub.leaf_port
        ),
    );
    twig.wait_log("not an HTTP answer to the websocket upgrade", 2);
}

/// nats-server (2.14+) dials every URL of a remote through its proxy, plain ones too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_remote_through_the_proxy() {
    let hub = Hub::start(HubVersion::V2_15);
    let proxy = ConnectProxy::start(None);
    flows(
        &hub,
        &format!("nats-leaf://127.0.0.1:{}", hub.leaf_port),
        &format!("proxy = {{ url = \"{}\" }}", proxy.url()),
        "plain via proxy",
    )
    .await;
    assert_eq!(proxy.heads().len(), 1);
}
