//! The uplink's connection against real hubs: restarts, cluster failover, authentication
//! (user/password, token, nkey, creds file in operator mode), TLS with the hub's own CA, and
//! the errors a user sees when something is wrong.

#[path = "common/uplink.rs"]
mod common;

use bytes::Bytes;
use common::*;
use twig_tests::harness::TestCerts;
use twig_tests::hub::{Hub, HubOptions, HubVersion};

/// Messages flow both ways between `hub_client` and `twig_client` (fresh subjects each call).
async fn flows(hub_client: &async_nats::Client, twig_client: &async_nats::Client, tag: &str) {
    let mut at_hub = hub_client.subscribe(format!("up.{tag}")).await.unwrap();
    interest_ready(hub_client, twig_client).await;
    let mut at_twig = twig_client.subscribe(format!("down.{tag}")).await.unwrap();
    interest_ready(twig_client, hub_client).await;
    twig_client
        .publish(format!("up.{tag}"), "u".into())
        .await
        .unwrap();
    hub_client
        .publish(format!("down.{tag}"), "d".into())
        .await
        .unwrap();
    assert_eq!(next(&mut at_hub).await.payload, Bytes::from("u"));
    assert_eq!(next(&mut at_twig).await.payload, Bytes::from("d"));
}

async fn hub_restart_reconnects_and_resends_interest(v: HubVersion) {
    let mut hub = Hub::start(v);
    let twig = Twig::leaf_of(&hub);
    twig.wait_up(1);
    let tc = connect(&twig.url()).await;
    // Interest made before the restart must be sent again afterwards.
    let mut kept = tc.subscribe("kept.>").await.unwrap();
    {
        let hc = connect(&hub.client_url()).await;
        flows(&hc, &tc, "before").await;
        interest_ready(&tc, &hc).await;
    }
    hub.restart();
    twig.wait_up(2);
    let hc = connect(&hub.client_url()).await;
    flows(&hc, &tc, "after").await;
    hc.publish("kept.x", "still here".into()).await.unwrap();
    assert_eq!(next(&mut kept).await.payload, Bytes::from("still here"));
    // The first retry came quickly (<= 100 ms after the loss, reconnect_delay_min 50ms).
    let log = twig.log();
    assert!(log.contains("Leafnode connection closed"), "{log}");
}
per_version!(hub_restart_reconnects_and_resends_interest);

async fn cluster_failover_moves_to_another_hub(v: HubVersion) {
    let mut hubs = Hub::cluster(v, 3);
    // Only the first hub is configured: the others come from its `leafnode_urls`.
    let twig = Twig::leaf_of(&hubs[0]);
    twig.wait_up(1);
    let tc = connect(&twig.url()).await;
    let mut down = tc.subscribe("fleet.cmd").await.unwrap();
    // The cluster gossips its leafnode URLs once routes are up; wait until twig knows 3.
    let hub0 = hubs[0].http_port;
    eventually("the cluster's routes are up", || {
        http_json(hub0, "/routez")["num_routes"].as_u64() >= Some(2)
    })
    .await;
    {
        let h1 = connect(&hubs[1].client_url()).await;
        flows(&h1, &tc, "before").await;
    }
    hubs[0].stop();
    twig.wait_up(2);
    let leafz = twig.monitor("/leafz");
    let url = leafz["remotes"][0]["url"].as_str().unwrap().to_string();
    assert_ne!(url, format!("127.0.0.1:{}", hubs[0].leaf_port), "{leafz}");
    for (i, h) in hubs.iter().enumerate().skip(1) {
        let hc = connect(&h.client_url()).await;
        flows(&hc, &tc, &format!("after{i}")).await;
        interest_ready(&tc, &hc).await;
        hc.publish("fleet.cmd", format!("via hub{i}").into())
            .await
            .unwrap();
        assert_eq!(
            next(&mut down).await.payload,
            Bytes::from(format!("via hub{i}"))
        );
    }
}
per_version!(cluster_failover_moves_to_another_hub);

fn auth_hub(v: HubVersion) -> Hub {
    let options = HubOptions {
        leafnodes: "  authorization { user: edge, password: \"s3cret\" }".into(),
        ..HubOptions::default()
    };
    Hub::start_with(v, &options)
}

fn remote_toml(hub: &Hub, auth: &str) -> String {
    format!(
        "[leafnodes]\nreconnect_delay_min = \"20ms\"\nreconnect_delay_max = \"400ms\"\n\n\
         [[leafnodes.remotes]]\nurls = [\"{}\"]\n{auth}\n",
        hub.leaf_url()
    )
}

async fn wrong_credentials_are_reported_and_retried_with_backoff(v: HubVersion) {
    let hub = auth_hub(v);
    let twig = Twig::with_config(
        hub.dir(),
        &remote_toml(&hub, "user = \"edge\"\npassword = \"wrong\""),
    );
    // The hub's own words, on a clear line, at each of the first attempts (later ones are
    // logged when the reason changes or every 60th time, so a long outage does not flood).
    twig.wait_log("hub said -ERR 'Authorization Violation'", 3);
    let delays = retry_delays_ms(&twig.log());
    assert!(delays.len() >= 3, "{delays:?}");
    let nominal = [20.0, 40.0, 80.0];
    for (d, n) in delays.iter().zip(nominal) {
        assert!(
            *d >= n / 2.0 && *d <= n,
            "back-off 20, 40, 80 ms nominal, jittered down to half: {delays:?}"
        );
    }
    // It keeps trying.
    eventually("more attempts", || {
        twig.monitor("/leafz")["remotes"][0]["attempts"].as_u64() >= Some(6)
    })
    .await;
    let status = twig.monitor("/healthz?leafnodes=true");
    assert_eq!(status["status"], "unavailable", "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("Authorization Violation"),
        "{status}"
    );
    assert_eq!(twig.monitor("/varz")["leafnodes"], 0);

    // The right password works.
    let good = Twig::with_config(
        hub.dir(),
        &remote_toml(&hub, "user = \"edge\"\npassword = \"s3cret\""),
    );
    good.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let tc = connect(&good.url()).await;
    flows(&hc, &tc, "auth").await;
}
per_version!(wrong_credentials_are_reported_and_retried_with_backoff);

async fn user_and_password_in_the_url(v: HubVersion) {
    let hub = auth_hub(v);
    let url = format!("nats-leaf://edge:s3cret@127.0.0.1:{}", hub.leaf_port);
    let twig = Twig::start(&["--leaf".into(), url]);
    twig.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let tc = connect(&twig.url()).await;
    flows(&hc, &tc, "urlauth").await;
}
per_version!(user_and_password_in_the_url);

#[tokio::test]
async fn token_and_nkey_auth_against_2_15() {
    // A token (the hub's leafnode block has no token option; its global one applies).
    let hub = Hub::start_with(
        HubVersion::V2_15,
        &HubOptions {
            extra: "authorization { token: \"t0k3n\" }".into(),
            ..HubOptions::default()
        },
    );
    let twig = Twig::with_config(hub.dir(), &remote_toml(&hub, "token = \"t0k3n\""));
    twig.wait_up(1);
    let hc = async_nats::ConnectOptions::with_token("t0k3n".into())
        .connect(hub.client_url())
        .await
        .unwrap();
    flows(&hc, &connect(&twig.url()).await, "token").await;

    // An nkey user: twig signs the hub's nonce. (Leafnode authorization takes no nkeys;
    // the global users do.)
    let leaf_user = nkeys::KeyPair::new_user();
    let app_user = nkeys::KeyPair::new_user();
    let hub = Hub::start_with(
        HubVersion::V2_15,
        &HubOptions {
            extra: format!(
                "authorization {{ users: [ {{ nkey: \"{}\" }}, {{ nkey: \"{}\" }} ] }}",
                leaf_user.public_key(),
                app_user.public_key()
            ),
            ..HubOptions::default()
        },
    );
    let seed = leaf_user.seed().unwrap();
    let twig = Twig::with_config(hub.dir(), &remote_toml(&hub, &format!("nkey = \"{seed}\"")));
    twig.wait_up(1);
    let hc = async_nats::ConnectOptions::with_nkey(app_user.seed().unwrap())
        .connect(hub.client_url())
        .await
        .unwrap();
    flows(&hc, &connect(&twig.url()).await, "nkey").await;
}

async fn creds_file_against_an_operator_mode_hub(v: HubVersion) {
    use twig_tests::jwt;
    let op = jwt::operator("twig-test-op");
    let acc = jwt::account(&op, "EDGE");
    let leaf_user = jwt::user(&acc, "gateway");
    let app_user = jwt::user(&acc, "cloud-app");
    let hub = Hub::start_with(
        v,
        &HubOptions {
            extra: jwt::hub_config(&op, &[&acc]),
            ..HubOptions::default()
        },
    );
    let creds = hub.dir().join("gateway.creds");
    std::fs::write(&creds, jwt::creds_file(&leaf_user)).unwrap();
    let twig = Twig::with_config(
        hub.dir(),
        &remote_toml(
            &hub,
            &format!("credentials = {:?}", creds.display().to_string()),
        ),
    );
    twig.wait_up(1);
    let leafz = twig.monitor("/leafz");
    assert_eq!(
        leafz["leafs"][0]["account"],
        acc.key.public_key(),
        "bound to the creds' account: {leafz}"
    );
    let hc = async_nats::ConnectOptions::with_credentials(&jwt::creds_file(&app_user))
        .unwrap()
        .connect(hub.client_url())
        .await
        .unwrap();
    flows(&hc, &connect(&twig.url()).await, "creds").await;
}
per_version!(creds_file_against_an_operator_mode_hub);

async fn tls_to_a_hub_with_its_own_ca(v: HubVersion) {
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(certs_dir.path());
    let hub = Hub::start_with(
        v,
        &HubOptions {
            leafnodes: format!(
                "  tls {{ cert_file: {:?}, key_file: {:?}, timeout: 2 }}",
                certs.cert_file.display().to_string(),
                certs.key_file.display().to_string()
            ),
            ..HubOptions::default()
        },
    );
    let tls = format!(
        "tls = {{ ca_file = {:?} }}",
        certs.ca_file.display().to_string()
    );
    let twig = Twig::with_config(hub.dir(), &remote_toml(&hub, &tls));
    twig.wait_up(1);
    flows(
        &connect(&hub.client_url()).await,
        &connect(&twig.url()).await,
        "tls",
    )
    .await;

    // Without a CA to check the hub against, twig says what is missing.
    let no_ca = Twig::with_config(hub.dir(), &remote_toml(&hub, ""));
    no_ca.wait_log(
        "the hub requires TLS: give leafnodes.remotes.tls.ca_file",
        1,
    );
    // With the wrong CA, the handshake fails and says so.
    let other = tempfile::tempdir().unwrap();
    let wrong = TestCerts::generate(other.path());
    let tls = format!(
        "tls = {{ ca_file = {:?} }}",
        wrong.ca_file.display().to_string()
    );
    let bad = Twig::with_config(hub.dir(), &remote_toml(&hub, &tls));
    bad.wait_log("TLS handshake error", 1);
}
per_version!(tls_to_a_hub_with_its_own_ca);

#[tokio::test]
async fn the_client_port_is_the_wrong_port() {
    let hub = Hub::start(HubVersion::V2_15);
    let twig = Twig::start(&["--leaf".into(), hub.client_url()]);
    twig.wait_log("attempted to connect to wrong port", 1);
}

async fn tls_with_a_client_certificate_and_server_name(v: HubVersion) {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key, client, client_key] =
        twig_tests::pki::write(dir.path(), "hub test CA", "edge-gateway");
    let q = |p: &std::path::PathBuf| format!("{:?}", p.display().to_string());
    let hub = Hub::start_with(
        v,
        &HubOptions {
            leafnodes: format!(
                "  tls {{ cert_file: {}, key_file: {}, ca_file: {}, verify: true, timeout: 2 }}",
                q(&cert),
                q(&key),
                q(&ca)
            ),
            ..HubOptions::default()
        },
    );
    let tls = format!(
        "tls = {{ ca_file = {}, cert_file = {}, key_file = {}, server_name = \"localhost\" }}",
        q(&ca),
        q(&client),
        q(&client_key)
    );
    let twig = Twig::with_config(hub.dir(), &remote_toml(&hub, &tls));
    twig.wait_up(1);
    flows(
        &connect(&hub.client_url()).await,
        &connect(&twig.url()).await,
        "mtls",
    )
    .await;
    // Without the client certificate the hub refuses the handshake.
    let tls = format!("tls = {{ ca_file = {} }}", q(&ca));
    let anonymous = Twig::with_config(hub.dir(), &remote_toml(&hub, &tls));
    anonymous.wait_log("Error trying to connect as leafnode", 1);
    assert_eq!(anonymous.monitor("/varz")["leafnodes"], 0);
}
per_version!(tls_with_a_client_certificate_and_server_name);

#[tokio::test]
async fn a_silent_peer_hits_the_first_info_timeout() {
    // Accepts and says nothing, as a hub behind a broken link might.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let twig = Twig::with_config(
        dir.path(),
        &format!(
            "[[leafnodes.remotes]]\nurls = [\"nats-leaf://127.0.0.1:{port}\"]\n\
             first_info_timeout = \"300ms\"\n"
        ),
    );
    twig.wait_log("no INFO from the hub within 300ms", 1);
    drop(silent);
}

async fn a_frozen_hub_is_detected_as_stale(v: HubVersion) {
    let hub = Hub::start(v);
    let twig = Twig::with_config(
        hub.dir(),
        &format!(
            "[leafnodes]\nping_interval = \"100ms\"\nping_max = 2\n\n\
             [[leafnodes.remotes]]\nurls = [\"{}\"]\n",
            hub.leaf_url()
        ),
    );
    twig.wait_up(1);
    let pid = hub.pid().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    // The hub stops answering (its socket stays open): PINGs go unanswered.
    signal("-STOP");
    twig.wait_log("Leafnode connection closed: Stale Connection", 1);
    signal("-CONT");
    twig.wait_up(2);
    flows(
        &connect(&hub.client_url()).await,
        &connect(&twig.url()).await,
        "thawed",
    )
    .await;
}
per_version!(a_frozen_hub_is_detected_as_stale);

#[tokio::test]
async fn a_loop_through_two_hubs_is_detected_by_the_lds_subject() {
    // hub1 is itself a leaf of hub2, and twig is a leaf of both: twig's $LDS interest goes up
    // to hub1, on to hub2, and comes back down to twig over its other link.
    let hub2 = Hub::start(HubVersion::V2_15);
    let hub1 = Hub::start_with(
        HubVersion::V2_15,
        &HubOptions {
            leafnodes: format!("  remotes = [ {{ url: \"{}\" }} ]", hub2.leaf_url()),
            ..HubOptions::default()
        },
    );
    let twig = Twig::with_config(
        hub1.dir(),
        &format!(
            "[[leafnodes.remotes]]\nurls = [\"{}\"]\n\n[[leafnodes.remotes]]\nurls = [\"{}\"]\n",
            hub1.leaf_url(),
            hub2.leaf_url()
        ),
    );
    twig.wait_log("Loop detected", 1);
    let log = twig.log();
    assert!(log.contains("reconnecting in 30s"), "{log}");
}

/// A hub's `leafnodes { min_version }` compares the leaf CONNECT's `version`: twig reports
/// the nats-server version it speaks (2.12.0), so a hub asking for up to that accepts it, and
/// one asking for more refuses it with nats-server's own words.
async fn a_hub_with_min_version_accepts_twig(v: HubVersion) {
    let with_min = |min: &str| HubOptions {
        leafnodes: format!("  min_version: \"{min}\""),
        ..HubOptions::default()
    };
    let hub = Hub::start_with(v, &with_min("2.12.0"));
    let twig = Twig::leaf_of(&hub);
    twig.wait_up(1);
    let hc = connect(&hub.client_url()).await;
    let tc = connect(&twig.url()).await;
    flows(&hc, &tc, "minversion").await;

    let picky = Hub::start_with(v, &with_min("2.13.0"));
    let refused = Twig::leaf_of(&picky);
    refused.wait_log("minimum version required is \"2.13.0\"", 1);
}
per_version!(a_hub_with_min_version_accepts_twig);
