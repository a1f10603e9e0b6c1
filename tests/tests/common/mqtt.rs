//! Helpers for the MQTT listener tests: twig with `[mqtt_listener]`, or a real mosquitto, as the
//! broker under test; rumqttc devices (3.1.1 and 5) that record every packet they receive.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use twig_tests::harness::free_port;
use twig_tests::mosquitto::Mosquitto;

use crate::common::{STEP, Twig};

/// twig with a random client port, monitoring, and an MQTT listener on a fixed free port
/// (kept across restarts), its store in `dir`; `extra` is appended to the TOML (a line of
/// its own top-level options first, then sections).
pub fn twig_mqtt(dir: &Path, mqtt_port: u16, top: &str, extra: &str) -> Twig {
    let toml = format!(
        "port = -1\nstore_dir = \"{}\"\n{top}\n[mqtt_listener]\nport = {mqtt_port}\n{extra}\n",
        dir.display()
    );
    let twig = Twig::with_config(dir, &toml);
    twig.wait_log(
        &format!("Listening for MQTT clients on mqtt://127.0.0.1:{mqtt_port}"),
        1,
    );
    twig
}

/// The broker under test for MQTT-only behaviour.
pub enum Broker {
    Twig(Box<Twig>, tempfile::TempDir),
    Mosquitto(Mosquitto),
}

impl Broker {
    pub fn twig() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let twig = twig_mqtt(dir.path(), port, "", "");
        Broker::Twig(Box::new(twig), dir)
    }

    pub fn mosquitto() -> Broker {
        Broker::Mosquitto(Mosquitto::start())
    }

    pub fn port(&self) -> u16 {
        match self {
            Broker::Twig(t, _) => mqtt_port_of(t),
            Broker::Mosquitto(m) => m.port,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Broker::Twig(..) => "twig",
            Broker::Mosquitto(_) => "mosquitto",
        }
    }
}

/// The MQTT port twig logged.
pub fn mqtt_port_of(t: &Twig) -> u16 {
    let log = t.log();
    let needle = "Listening for MQTT clients on mqtt://127.0.0.1:";
    let at = log.find(needle).expect("MQTT listening line") + needle.len();
    let digits: String = log[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// MQTT 3.1.1 devices (rumqttc's v4 client).
pub mod v4 {
    use super::*;
    pub use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};

    /// A device and every packet it receives.
    pub struct Dev {
        pub client: AsyncClient,
        pub rx: UnboundedReceiver<Packet>,
        /// The event loop ended with an error (connection closed or refused).
        pub closed: UnboundedReceiver<String>,
    }

    pub fn options(port: u16, id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(10));
        o.set_inflight(100);
        o
    }

    /// Connects with `o`; returns once the CONNACK came (whatever its code).
    pub async fn connect(o: MqttOptions) -> Dev {
        let (client, mut el) = AsyncClient::new(o, 1000);
        let (tx, mut rx) = unbounded_channel();
        let (ctx, closed) = unbounded_channel();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = ctx.send(e.to_string());
                        return;
                    }
                }
            }
        });
        let first = tokio::time::timeout(STEP, rx.recv())
            .await
            .expect("CONNACK in time");
        assert!(
            matches!(first, Some(Packet::ConnAck(_)) | None),
            "first packet {first:?}"
        );
        Dev { client, rx, closed }
    }

    pub async fn dev(port: u16, id: &str) -> Dev {
        connect(options(port, id)).await
    }

    impl Dev {
        /// The next PUBLISH (other packets are skipped).
        pub async fn publish(&mut self) -> Publish {
            let deadline = Instant::now() + STEP;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, self.rx.recv()).await {
                    Ok(Some(Packet::Publish(p))) => return p,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("device loop ended"),
                    Err(_) => panic!("no PUBLISH within {STEP:?}"),
                }
            }
        }

        /// No PUBLISH arrives for a short while.
        pub async fn quiet(&mut self) {
            let until = Instant::now() + Duration::from_millis(300);
            while let Ok(Some(p)) = tokio::time::timeout(
                until.saturating_duration_since(Instant::now()),
                self.rx.recv(),
            )
            .await
            {
                assert!(!matches!(p, Packet::Publish(_)), "unexpected {p:?}");
            }
        }

        /// Subscribes and waits for the SUBACK.
        pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
            self.client.subscribe(filter, qos).await.unwrap();
            self.wait(|p| matches!(p, Packet::SubAck(_))).await;
        }

        /// Waits for a packet `f` accepts (others are skipped).
        pub async fn wait(&mut self, f: impl Fn(&Packet) -> bool) -> Packet {
            let deadline = Instant::now() + STEP;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, self.rx.recv()).await {
                    Ok(Some(p)) if f(&p) => return p,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("device loop ended"),
                    Err(_) => panic!("packet not received within {STEP:?}"),
                }
            }
        }
    }
}

/// MQTT 5 devices (rumqttc's v5 client).
pub mod v5 {
    use super::*;
    pub use rumqttc::v5::mqttbytes::QoS;
    pub use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
    pub use rumqttc::v5::{AsyncClient, Event, MqttOptions};

    pub struct Dev {
        pub client: AsyncClient,
        pub rx: UnboundedReceiver<Packet>,
        pub closed: UnboundedReceiver<String>,
    }

    pub fn options(port: u16, id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(10));
        o
    }

    pub async fn connect(o: MqttOptions) -> Dev {
        let (client, mut el) = AsyncClient::new(o, 1000);
        let (tx, mut rx) = unbounded_channel();
        let (ctx, closed) = unbounded_channel();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = ctx.send(e.to_string());
                        return;
                    }
                }
            }
        });
        let first = tokio::time::timeout(STEP, rx.recv())
            .await
            .expect("CONNACK in time");
        assert!(
            matches!(first, Some(Packet::ConnAck(_)) | None),
            "first packet {first:?}"
        );
        Dev { client, rx, closed }
    }

    pub async fn dev(port: u16, id: &str) -> Dev {
        connect(options(port, id)).await
    }

    impl Dev {
        pub async fn publish(&mut self) -> Publish {
            match self.wait(|p| matches!(p, Packet::Publish(_))).await {
                Packet::Publish(p) => p,
                _ => unreachable!(),
            }
        }

        pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
            self.client.subscribe(filter, qos).await.unwrap();
            self.wait(|p| matches!(p, Packet::SubAck(_))).await;
        }

        pub async fn wait(&mut self, f: impl Fn(&Packet) -> bool) -> Packet {
            let deadline = Instant::now() + STEP;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, self.rx.recv()).await {
                    Ok(Some(p)) if f(&p) => return p,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("device loop ended"),
                    Err(_) => panic!("packet not received within {STEP:?}"),
                }
            }
        }
    }
}

/// Runs `mosquitto_pub`/`mosquitto_sub` (Debian's mosquitto-clients): panics if missing.
pub fn mosquitto_client(name: &str) -> std::process::Command {
    let path = ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: `apt-get install mosquitto-clients` (tests/run installs it)")
        });
    std::process::Command::new(path)
}
