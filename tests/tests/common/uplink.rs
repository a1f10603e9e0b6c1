//! Helpers for the uplink tests: twig joined to real hubs, async-nats clients on both sides,
//! and waits that rely on protocol order rather than sleeps.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Message, Subscriber};
use futures::StreamExt;
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target, free_port};
use twig_tests::hub::Hub;

/// Deadline for one step of a test.
pub const STEP: Duration = Duration::from_secs(10);

/// A twig process with monitoring on.
pub struct Twig {
    pub sut: ServerUnderTest,
    pub http_port: u16,
    /// The config file of [`Twig::with_config`] (a test rewrites it, then reloads).
    pub config: Option<std::path::PathBuf>,
}

impl Twig {
    /// twig with these extra arguments (e.g. `--leaf URL`, `-c FILE`).
    pub fn start(args: &[String]) -> Twig {
        let options = ServerOptions {
            http_port: Some(0),
            extra_args: args.to_vec(),
            ..ServerOptions::default()
        };
        let sut = ServerUnderTest::start_target(Target::Twig, &options);
        let http_port = sut.http_port().expect("twig logged its monitoring port");
        Twig {
            sut,
            http_port,
            config: None,
        }
    }

    /// twig joined to `hub` by `--leaf`.
    pub fn leaf_of(hub: &Hub) -> Twig {
        Twig::start(&["--leaf".into(), hub.leaf_url()])
    }

    /// twig with this TOML config (written next to the hub's files in `dir`).
    pub fn with_config(dir: &std::path::Path, toml: &str) -> Twig {
        let path = dir.join(format!("twig-{}.toml", free_port()));
        std::fs::write(&path, toml).expect("write twig config");
        let mut twig = Twig::start(&["-c".into(), path.display().to_string()]);
        twig.config = Some(path);
        twig
    }

    pub fn url(&self) -> String {
        self.sut.url()
    }

    pub fn log(&self) -> String {
        self.sut.log()
    }

    /// Waits until twig logged `needle` at least `n` times.
    pub fn wait_log(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + STEP;
        while self.log().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "twig did not log {needle:?} {n} time(s) within {STEP:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until twig's MQTT listener on `mqtt_port` is up, as often as twig started (the
    /// log is kept across restarts: the line is there once per start).
    pub fn wait_mqtt_listening(&self, mqtt_port: u16) {
        let starts = self.log().matches("Starting twig").count();
        self.wait_log(
            &format!("Listening for MQTT clients on mqtt://127.0.0.1:{mqtt_port}"),
            starts,
        );
    }

    /// Kills twig (-9), starts it again on the same ports and files, and waits for its MQTT
    /// listener on `mqtt_port`.
    pub fn kill_and_restart_mqtt(&mut self, mqtt_port: u16) {
        self.sut.restart();
        self.wait_mqtt_listening(mqtt_port);
    }

    /// Waits until the `n`-th leafnode connection is up.
    pub fn wait_up(&self, n: usize) {
        self.wait_log("Leafnode connection created", n);
    }

    /// GET a monitoring path as JSON.
    pub fn monitor(&self, path: &str) -> serde_json::Value {
        http_json(self.http_port, path)
    }
}

/// GET `path` from a monitoring port on 127.0.0.1 and parse the JSON.
pub fn http_json(port: u16, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("monitoring port");
    s.set_read_timeout(Some(STEP)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (_, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    // Go's server may answer with chunked encoding; its JSON is in one chunk.
    let body = if raw.contains("Transfer-Encoding: chunked") {
        body.split_once("\r\n").map_or(body, |(_, rest)| rest)
    } else {
        body
    };
    let end = body.rfind('}').map_or(body.len(), |i| i + 1);
    serde_json::from_str(&body[..end]).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Polls `cond` until true, within [`STEP`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {STEP:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn connect(url: &str) -> Client {
    ConnectOptions::new()
        .connection_timeout(STEP)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

pub async fn next(sub: &mut Subscriber) -> Message {
    tokio::time::timeout(STEP, sub.next())
        .await
        .expect("no message within deadline")
        .expect("subscription ended")
}

/// The stream yields nothing more for a short while.
pub async fn assert_quiet(sub: &mut Subscriber) {
    if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        panic!("unexpected extra message on {}: {:?}", m.subject, m.payload);
    }
}

/// A round trip to `client`'s server.
pub async fn sync(client: &Client) {
    let inbox = client.new_inbox();
    let mut s = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "".into()).await.unwrap();
    next(&mut s).await;
}

/// Returns once every subscription `sub_side` made before this call is known where
/// `pub_side` publishes: `sub_side` subscribes a probe subject and `pub_side` publishes to it
/// until one arrives. Interest travels in order over each link, so the probe's arrival
/// proves the earlier subscriptions arrived too.
pub async fn interest_ready(sub_side: &Client, pub_side: &Client) {
    let probe = format!("probe.{}", sub_side.new_inbox().replace('.', "_"));
    let mut s = sub_side.subscribe(probe.clone()).await.unwrap();
    sub_side.flush().await.unwrap();
    let deadline = Instant::now() + STEP;
    loop {
        pub_side.publish(probe.clone(), "p".into()).await.unwrap();
        pub_side.flush().await.unwrap();
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), s.next()).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "interest did not propagate within {STEP:?}"
        );
    }
    s.unsubscribe().await.unwrap();
}

/// The `n`-th number in `retrying in …` log lines, as milliseconds.
pub fn retry_delays_ms(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| l.split("retrying in ").nth(1))
        .filter_map(|d| {
            let d = d.trim();
            if let Some(ms) = d.strip_suffix("ms") {
                ms.parse().ok()
            } else if let Some(us) = d.strip_suffix("µs") {
                us.parse::<f64>().ok().map(|u| u / 1000.0)
            } else {
                d.strip_suffix('s')
                    .and_then(|s| s.parse::<f64>().ok())
                    .map(|s| s * 1000.0)
            }
        })
        .collect()
}

/// Runs an async test body once per hub version, as two `#[tokio::test]`s.
#[macro_export]
macro_rules! per_version {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn hub_2_15() {
                super::$name(twig_tests::hub::HubVersion::V2_15).await
            }
            #[tokio::test]
            async fn hub_2_9() {
                super::$name(twig_tests::hub::HubVersion::V2_9).await
            }
        }
    };
}
