//! twig-core's MQTT <-> NATS mapping, checked row by row against a real nats-server.
//!
//! The tables are twig-core's own (`twig_core::mqtt::testdata`), the ones its unit tests use.
//! For each row the server's behaviour is observed over the wire and compared with both the
//! table and twig-core's functions:
//!
//! - publish topics: an MQTT client publishes, a NATS subscriber on `>` sees the subject;
//!   refused topics make the server close the MQTT connection and deliver nothing;
//! - filters: an MQTT client subscribes, NATS publishes hits and misses, the MQTT client sees
//!   which arrive and under which topic (including `$`-subjects and `a/#` matching `a`);
//! - subjects: NATS publishes, an MQTT subscriber sees the topic.
//!
//! Waits are deadlines on expected events; "must not arrive" is proven by a marker sent after.
//!
//! Run: `TWIG_NATS_SERVER=/path/to/nats-server cargo test -p twig-tests --test mqtt_mapping`.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use twig_core::mqtt::testdata::{FILTERS, PUBLISH, SUBJECTS, ServerFilter};
use twig_core::mqtt::{
    MqttError, filter_to_subjects, max_subject_len, max_topic_len, publish_topic_to_subject,
    subject_to_topic,
};
use twig_tests::mqtt_raw::{RawMqtt, SubAck};
use twig_tests::nats_raw::RawNats;
use twig_tests::nats_server::{NatsServer, Options};

/// How long any one expected event may take.
const STEP: Duration = Duration::from_secs(10);

fn deadline() -> Instant {
    Instant::now() + STEP
}

/// An rumqttc client whose event loop runs in a task and reports every event.
struct Mqtt {
    client: AsyncClient,
    // Connection errors as text: rumqttc's error type is large and only ever printed.
    events: UnboundedReceiver<Result<Event, String>>,
    task: JoinHandle<()>,
}

impl Mqtt {
    async fn connect(port: u16, id: &str) -> Mqtt {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_clean_session(true);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut event_loop) = AsyncClient::new(options, 64);
        let (tx, events) = unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let event = event_loop.poll().await.map_err(|e| e.to_string());
                // Stop at the first error: polling again would reconnect.
                let stop = event.is_err();
                if tx.send(event).is_err() || stop {
                    return;
                }
            }
        });
        let mut mqtt = Mqtt {
            client,
            events,
            task,
        };
        mqtt.wait_for("CONNACK", |p| matches!(p, Packet::ConnAck(_)).then_some(()))
            .await;
        mqtt
    }

    /// The first incoming packet `pick` accepts; panics on a connection error or at the deadline.
    async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(Packet) -> Option<T>) -> T {
        let deadline = deadline();
        loop {
            let event = timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|| panic!("MQTT event loop ended waiting for {what}"));
            match event {
                Ok(Event::Incoming(packet)) => {
                    if let Some(found) = pick(packet) {
                        return found;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => panic!("MQTT connection failed waiting for {what}: {e}"),
            }
        }
    }

    /// Waits until the server closes the connection.
    async fn wait_closed(&mut self, why: &str) {
        let deadline = deadline();
        loop {
            let event = timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("server kept the connection open after {why}"));
            match event {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    }
}

impl Drop for Mqtt {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A NATS connection subscribed to `>` that finds messages by payload.
struct Tap {
    nats: RawNats,
    seen: Vec<twig_tests::nats_raw::Msg>,
}

impl Tap {
    async fn new(port: u16) -> Tap {
        let mut nats = RawNats::connect(port, deadline()).await;
        nats.subscribe(">", 1).await;
        nats.flush(deadline()).await;
        Tap {
            nats,
            seen: Vec::new(),
        }
    }

    async fn wait_payload(&mut self, payload: &[u8]) -> twig_tests::nats_raw::Msg {
        let deadline = deadline();
        loop {
            if let Some(msg) = self.seen.iter().find(|m| m.payload == payload) {
                return msg.clone();
            }
            let msg = self.nats.next_msg(deadline).await;
            self.seen.push(msg);
        }
    }

    fn saw_payload(&self, payload: &[u8]) -> bool {
        self.seen.iter().any(|m| m.payload == payload)
    }

    /// Publishes a marker and waits for it: whatever was to arrive before it, has.
    async fn marker(&mut self, tag: &str) {
        let payload = format!("marker-{tag}");
        self.nats.publish(b"twig.marker", payload.as_bytes()).await;
        self.wait_payload(payload.as_bytes()).await;
    }
}

fn twig_subject(topic: &str) -> Result<String, MqttError> {
    let mut buf = vec![0; max_subject_len(topic.len())];
    let n = publish_topic_to_subject(topic.as_bytes(), &mut buf)?;
    Ok(String::from_utf8(buf[..n].to_vec()).expect("subjects of UTF-8 topics are UTF-8"))
}

/// The topic twig-core says nats-server delivers `subject` with (`""` where it refuses).
fn twig_topic(subject: &str) -> String {
    let mut buf = vec![0; max_topic_len(subject.len())];
    match subject_to_topic(subject.as_bytes(), &mut buf) {
        Ok(n) => String::from_utf8(buf[..n].to_vec()).expect("topic of a UTF-8 subject"),
        // nats-server sends the empty topic that MQTT forbids.
        Err(MqttError::EmptyTopic) => String::new(),
        Err(e) => panic!("subject {subject:?}: {e}"),
    }
}

#[tokio::test]
async fn publish_topics_arrive_on_the_subjects_twig_core_computes() {
    let server = NatsServer::start(&Options::mqtt());
    let port = server.mqtt_port();
    let mut tap = Tap::new(server.client_port).await;
    let mut publisher = Mqtt::connect(port, "twig-publisher").await;
    let mut checked = 0;

    for (i, case) in PUBLISH.iter().enumerate() {
        let payload = format!("publish-{i}");
        assert_eq!(
            twig_subject(case.topic).as_deref().map_err(|e| *e),
            case.subject,
            "twig-core, topic {:?}",
            case.topic
        );
        match case.subject {
            Ok(subject) => {
                // Every third row at QoS 1: it takes nats-server's JetStream-backed path.
                let qos = if i % 3 == 0 {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                };
                let body = Bytes::from(payload.clone());
                publisher
                    .client
                    .publish_bytes(case.topic, qos, false, body)
                    .await
                    .unwrap();
                if qos == QoS::AtLeastOnce {
                    publisher
                        .wait_for("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
                        .await;
                }
                let msg = tap.wait_payload(payload.as_bytes()).await;
                let got = String::from_utf8_lossy(&msg.subject);
                assert_eq!(
                    got, subject,
                    "nats-server subject for MQTT topic {:?}",
                    case.topic
                );
                let want_qos = if qos == QoS::AtLeastOnce { "1" } else { "0" };
                assert_eq!(
                    msg.header("Nmqtt-Pub").as_deref(),
                    Some(want_qos),
                    "{:?}",
                    case.topic
                );
            }
            Err(error) => {
                // rumqttc's publish_bytes skips its own topic check, so the server decides.
                let mut bad = Mqtt::connect(port, &format!("twig-bad-publisher-{i}")).await;
                let body = Bytes::from(payload.clone());
                bad.client
                    .publish_bytes(case.topic, QoS::AtMostOnce, false, body)
                    .await
                    .unwrap();
                bad.wait_closed(&format!("publishing to {:?} ({error})", case.topic))
                    .await;
                tap.marker(&payload).await;
                assert!(
                    !tap.saw_payload(payload.as_bytes()),
                    "delivered bad topic {:?}",
                    case.topic
                );
            }
        }
        checked += 1;
    }
    println!("checked {checked} MQTT publish topics against nats-server");
    assert_eq!(checked, PUBLISH.len());
}

/// What an MQTT subscriber received before the marker: (topic, payload).
type Deliveries = Vec<(String, String)>;

async fn collect_rumqttc(mqtt: &mut Mqtt, marker: &str) -> Deliveries {
    let mut got = Vec::new();
    loop {
        let p = mqtt.wait_for("PUBLISH", |p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        });
        let p = p.await;
        let payload = String::from_utf8_lossy(&p.payload).into_owned();
        if payload == marker {
            return got;
        }
        got.push((p.topic, payload));
    }
}

async fn collect_raw(mqtt: &mut RawMqtt, marker: &str) -> Deliveries {
    let mut got = Vec::new();
    let deadline = deadline();
    loop {
        let p = mqtt
            .next_publish(deadline)
            .await
            .expect("server closed the MQTT subscriber");
        let payload = String::from_utf8_lossy(&p.payload).into_owned();
        if payload == marker {
            return got;
        }
        got.push((String::from_utf8_lossy(&p.topic).into_owned(), payload));
    }
}

/// Publishes a filter case's hits and misses on NATS, then its marker (on the first hit).
async fn publish_hits_and_misses(
    nats: &mut RawNats,
    i: usize,
    hits: &[&str],
    misses: &[&str],
) -> String {
    for (j, hit) in hits.iter().enumerate() {
        nats.publish(hit.as_bytes(), format!("filter-{i}-hit-{j}").as_bytes())
            .await;
    }
    for (j, miss) in misses.iter().enumerate() {
        nats.publish(miss.as_bytes(), format!("filter-{i}-miss-{j}").as_bytes())
            .await;
    }
    let marker = format!("filter-{i}-marker");
    nats.publish(hits[0].as_bytes(), marker.as_bytes()).await;
    nats.flush(deadline()).await;
    marker
}

/// Each hit arrived once with twig-core's topic for its subject; no miss arrived.
fn check_deliveries(
    filter: &str,
    i: usize,
    hits: &[&str],
    misses: &[&str],
    got: &Deliveries,
) -> usize {
    for (j, hit) in hits.iter().enumerate() {
        let payload = format!("filter-{i}-hit-{j}");
        let topics: Vec<&str> = got
            .iter()
            .filter(|d| d.1 == payload)
            .map(|d| d.0.as_str())
            .collect();
        assert_eq!(
            topics,
            [twig_topic(hit)],
            "filter {filter:?}, NATS subject {hit:?}"
        );
    }
    for (j, miss) in misses.iter().enumerate() {
        let payload = format!("filter-{i}-miss-{j}");
        assert!(
            !got.iter().any(|d| d.1 == payload),
            "filter {filter:?} got NATS subject {miss:?}"
        );
    }
    hits.len() + misses.len()
}

#[tokio::test]
async fn filters_receive_what_twig_core_says_they_match() {
    let server = NatsServer::start(&Options::mqtt());
    let port = server.mqtt_port();
    let mut nats = RawNats::connect(server.client_port, deadline()).await;
    let (mut rows, mut deliveries) = (0, 0);

    for (i, case) in FILTERS.iter().enumerate() {
        let mut buf = vec![0; max_subject_len(case.filter.len())];
        let ours = filter_to_subjects(case.filter.as_bytes(), &mut buf).map(|f| {
            let text = |s: &[u8]| String::from_utf8(s.to_vec()).expect("UTF-8 subject");
            (text(f.subject), f.parent.map(text), f.reserved)
        });
        let want = case
            .mapping
            .map(|m| (m.subject.into(), m.parent.map(String::from), m.reserved));
        assert_eq!(ours, want, "twig-core, filter {:?}", case.filter);
        let id = format!("twig-filter-{i}");
        match (case.mapping, case.server) {
            (Ok(_), _) => {
                // Every other filter at QoS 1: nats-server then adds JetStream consumers.
                let qos = if i % 2 == 1 {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                };
                let mut sub = Mqtt::connect(port, &id).await;
                sub.client.subscribe(case.filter, qos).await.unwrap();
                let codes = sub.wait_for("SUBACK", |p| match p {
                    Packet::SubAck(ack) => Some(ack.return_codes),
                    _ => None,
                });
                assert_eq!(
                    codes.await,
                    [SubscribeReasonCode::Success(qos)],
                    "filter {:?}",
                    case.filter
                );
                let marker = publish_hits_and_misses(&mut nats, i, case.hits, case.misses).await;
                let got = collect_rumqttc(&mut sub, &marker).await;
                deliveries += check_deliveries(case.filter, i, case.hits, case.misses, &got);
            }
            (Err(error), ServerFilter::Same) => {
                let mut raw = RawMqtt::connect(port, &id, deadline()).await;
                let ack = raw.subscribe(case.filter.as_bytes(), 0, deadline()).await;
                assert_eq!(ack, SubAck::Failure, "filter {:?} ({error})", case.filter);
            }
            (Err(error), ServerFilter::Disconnects) => {
                let mut raw = RawMqtt::connect(port, &id, deadline()).await;
                let ack = raw.subscribe(case.filter.as_bytes(), 0, deadline()).await;
                assert_eq!(ack, SubAck::Closed, "filter {:?} ({error})", case.filter);
            }
            (Err(_), ServerFilter::Accepts(_)) => {
                // twig-core is stricter here; record what nats-server really does.
                let mut raw = RawMqtt::connect(port, &id, deadline()).await;
                let ack = raw.subscribe(case.filter.as_bytes(), 0, deadline()).await;
                assert_eq!(
                    ack,
                    SubAck::Granted(0),
                    "nats-server accepts filter {:?}",
                    case.filter
                );
                let marker = publish_hits_and_misses(&mut nats, i, case.hits, case.misses).await;
                let got = collect_raw(&mut raw, &marker).await;
                deliveries += check_deliveries(case.filter, i, case.hits, case.misses, &got);
            }
        }
        rows += 1;
    }
    println!(
        "checked {rows} MQTT filters ({deliveries} NATS subjects delivered or not) against nats-server"
    );
    assert_eq!(rows, FILTERS.len());
}

#[tokio::test]
async fn nats_subjects_reach_mqtt_with_the_topics_twig_core_computes() {
    let server = NatsServer::start(&Options::mqtt());
    let mut nats = RawNats::connect(server.client_port, deadline()).await;
    // `#` never delivers `$`-subjects, so `$foo/#` catches the `$foo.bar` row.
    let mut raw = RawMqtt::connect(server.mqtt_port(), "twig-subjects", deadline()).await;
    assert_eq!(raw.subscribe(b"#", 0, deadline()).await, SubAck::Granted(0));
    assert_eq!(
        raw.subscribe(b"$foo/#", 0, deadline()).await,
        SubAck::Granted(0)
    );

    for (i, case) in SUBJECTS.iter().enumerate() {
        nats.publish(case.subject.as_bytes(), format!("subject-{i}").as_bytes())
            .await;
    }
    nats.publish(b"twig.marker", b"subjects-marker").await;
    nats.flush(deadline()).await;
    // Raw, because rumqttc would refuse the empty topic nats-server sends for `/`.
    let got = collect_raw(&mut raw, "subjects-marker").await;

    for (i, case) in SUBJECTS.iter().enumerate() {
        let payload = format!("subject-{i}");
        let topics: Vec<&str> = got
            .iter()
            .filter(|d| d.1 == payload)
            .map(|d| d.0.as_str())
            .collect();
        let want = case.topic.unwrap_or("");
        assert_eq!(
            topics,
            [want],
            "MQTT topic for NATS subject {:?}",
            case.subject
        );
        assert_eq!(
            twig_topic(case.subject),
            want,
            "twig-core, subject {:?}",
            case.subject
        );
    }
    println!(
        "checked {} NATS subjects delivered to MQTT against nats-server",
        SUBJECTS.len()
    );
}

/// Deterministic xorshift64*: the same random cases on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }

    fn string(&mut self, alphabet: &[char], max_len: usize) -> String {
        let len = 1 + self.below(max_len);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

#[tokio::test]
async fn seeded_random_topics_and_subjects_map_as_nats_server() {
    const TOPICS: usize = 300;
    const SUBJECTS: usize = 300;
    let server = NatsServer::start(&Options::mqtt());
    let mut tap = Tap::new(server.client_port).await;
    let publisher = Mqtt::connect(server.mqtt_port(), "twig-random-publisher").await;
    let mut raw = RawMqtt::connect(server.mqtt_port(), "twig-random-subscriber", deadline()).await;
    assert_eq!(raw.subscribe(b"#", 0, deadline()).await, SubAck::Granted(0));
    let mut rng = Rng(0x7477_6967_5241_4e44);

    // Topics heavy in the bytes the mapping rewrites; none of these characters is refused.
    let alphabet = ['/', '/', '.', '.', 'a', 'b', '$', '*', '>', 'é'];
    for i in 0..TOPICS {
        let topic = rng.string(&alphabet, 10);
        let payload = format!("random-topic-{i}");
        let body = Bytes::from(payload.clone());
        publisher
            .client
            .publish_bytes(topic.as_str(), QoS::AtMostOnce, false, body)
            .await
            .unwrap();
        let msg = tap.wait_payload(payload.as_bytes()).await;
        let got = String::from_utf8_lossy(&msg.subject);
        assert_eq!(
            Ok(got.into_owned()),
            twig_subject(&topic),
            "MQTT topic {topic:?}"
        );
    }

    // Valid NATS subjects (non-empty tokens) built from `a`, `b` and `/`; `#` gets them all.
    let mut subjects = Vec::new();
    for i in 0..SUBJECTS {
        let tokens: Vec<String> = (0..1 + rng.below(4))
            .map(|_| rng.string(&['a', 'b', '/'], 3))
            .collect();
        let subject = tokens.join(".");
        tap.nats
            .publish(subject.as_bytes(), format!("random-subject-{i}").as_bytes())
            .await;
        subjects.push(subject);
    }
    tap.nats.publish(b"twig.marker", b"random-marker").await;
    tap.nats.flush(deadline()).await;
    let got = collect_raw(&mut raw, "random-marker").await;
    for (i, subject) in subjects.iter().enumerate() {
        let payload = format!("random-subject-{i}");
        let topics: Vec<&str> = got
            .iter()
            .filter(|d| d.1 == payload)
            .map(|d| d.0.as_str())
            .collect();
        assert_eq!(
            topics,
            [twig_topic(subject)],
            "MQTT topic for NATS subject {subject:?}"
        );
    }
    println!(
        "checked {TOPICS} random MQTT topics and {SUBJECTS} random NATS subjects against nats-server"
    );
}
