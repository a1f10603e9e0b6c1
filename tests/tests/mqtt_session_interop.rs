//! twig's sans-IO MQTT server session (`twig_gateway::mqtt_server`) against a real MQTT
//! client, rumqttc, in both protocol versions: proof that the codec and the session speak
//! what a widely used client speaks, before the listener exists.
//!
//! The shell here is a test fixture, not the listener: one thread, non-blocking loopback
//! sockets, every CONNECT accepted, a publish routed at once to the sessions whose NATS
//! subscriptions match (twig-core's subject matching) and confirmed. What is checked is the
//! MQTT conversation: QoS 0/1/2 both ways, the subscription's QoS, wildcards and `a/#`'s parent
//! level, MQTT 5 user properties, content type, response topic and correlation data carried
//! through NATS headers and reply subjects, topic aliases from the client.
//!
//! Run: `cargo test -p twig-tests --test mqtt_session_interop`.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use twig_gateway::mqtt_server::{
    Accept, AllowAll, Config, Delivery, Event, Input, Outcome, Publish, Session,
};

/// One client connection of the fixture.
struct Conn {
    sock: TcpStream,
    session: Session,
    /// (subscription id, NATS subject)
    subs: Vec<(u32, String)>,
    open: bool,
}

/// Runs the fixture until `stop`; returns its port.
fn start_fixture(stop: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = Arc::new(Config {
        topic_alias_maximum: 4,
        ..Config::default()
    });
    thread::spawn(move || {
        let mut conns: Vec<Conn> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if let Ok((sock, _)) = listener.accept() {
                sock.set_nonblocking(true).unwrap();
                sock.set_nodelay(true).unwrap();
                let session = Session::new(cfg.clone(), now);
                conns.push(Conn {
                    sock,
                    session,
                    subs: Vec::new(),
                    open: true,
                });
            }
            let mut idle = true;
            for c in conns.iter_mut().filter(|c| c.open) {
                match c.sock.read(&mut buf) {
                    Ok(0) => c.session.handle(now, Input::Closed),
                    Ok(n) => {
                        idle = false;
                        c.session.handle(now, Input::Bytes(&buf[..n]));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => c.session.handle(now, Input::Closed),
                }
                if c.session.poll_at().is_some_and(|t| now >= t) {
                    c.session.handle(now, Input::Tick);
                }
            }
            // Events: publishes are routed after every session has been read.
            let mut routed: Vec<(usize, Publish)> = Vec::new();
            for (i, c) in conns.iter_mut().enumerate() {
                while let Some(e) = c.session.poll_event() {
                    match e {
                        Event::Connect(_) => c.session.handle(
                            now,
                            Input::Accept(Accept {
                                permissions: Box::new(AllowAll),
                                previous: None,
                            }),
                        ),
                        Event::Subscribe { id, subject, .. } => c.subs.push((id, subject)),
                        Event::Unsubscribe { id, subject } => {
                            c.subs.retain(|s| *s != (id, subject.clone()))
                        }
                        Event::Publish(p) => routed.push((i, p)),
                        Event::Close => c.open = false,
                        _ => {}
                    }
                }
            }
            for (from, p) in routed {
                for (j, c) in conns.iter_mut().enumerate() {
                    let matching: Vec<u32> = c
                        .subs
                        .iter()
                        .filter(|(_, s)| {
                            twig_core::subject::matches(s.as_bytes(), p.subject.as_bytes())
                        })
                        .map(|(id, _)| *id)
                        .collect();
                    for sub in matching {
                        let d = Delivery {
                            sub,
                            subject: &p.subject,
                            reply: p.reply.as_deref(),
                            headers: Some(&p.headers),
                            payload: &p.payload,
                            retained: false,
                            own: j == from,
                        };
                        c.session.handle(now, Input::Deliver(d));
                    }
                }
                if let Some(t) = p.ticket {
                    conns[from].session.handle(now, Input::Done(t, Outcome::Ok));
                }
            }
            for c in conns.iter_mut() {
                let out = c.session.take_transmit();
                if !out.is_empty() {
                    idle = false;
                    // Loopback with small messages: a blocking write finishes at once.
                    c.sock.set_nonblocking(false).unwrap();
                    let _ = c.sock.write_all(&out);
                    c.sock.set_nonblocking(true).unwrap();
                }
            }
            conns.retain(|c| c.open || !c.session.is_offline());
            if idle {
                thread::sleep(Duration::from_millis(1)); // poll interval, not a wait
            }
        }
    });
    port
}

const DEADLINE: Duration = Duration::from_secs(10);

mod v4 {
    use super::*;
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    async fn client(
        port: u16,
        id: &str,
    ) -> (
        AsyncClient,
        tokio::sync::mpsc::UnboundedReceiver<rumqttc::Publish>,
    ) {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut el) = AsyncClient::new(o, 100);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ctx, crx) = tokio::sync::oneshot::channel();
        let mut ctx = Some(ctx);
        tokio::spawn(async move {
            while let Ok(ev) = el.poll().await {
                match ev {
                    Event::Incoming(Packet::Publish(p)) => {
                        let _ = tx.send(p);
                    }
                    Event::Incoming(Packet::SubAck(_)) | Event::Incoming(Packet::ConnAck(_)) => {
                        if let Some(c) = ctx.take() {
                            let _ = c.send(());
                        }
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(DEADLINE, crx)
            .await
            .expect("CONNACK")
            .unwrap();
        (client, rx)
    }

    #[tokio::test]
    async fn rumqttc_v4_qos_0_1_2_through_the_session() {
        let stop = Arc::new(AtomicBool::new(false));
        let port = start_fixture(stop.clone());
        let (sub, mut rx) = client(port, "v4-sub").await;
        sub.subscribe("sensors/#", QoS::ExactlyOnce).await.unwrap();
        sub.subscribe("low/+", QoS::AtMostOnce).await.unwrap();
        let (publ, _rx2) = client(port, "v4-pub").await;
        // Subscriptions are in place once a probe comes back.
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < DEADLINE, "no probe came back");
            publ.publish("sensors", QoS::AtMostOnce, false, "probe")
                .await
                .unwrap();
            match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                Ok(Some(p)) if p.topic == "sensors" => break,
                Ok(_) | Err(_) => {}
            }
        }
        for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            publ.publish(format!("sensors/room{i}/temp"), qos, false, format!("m{i}"))
                .await
                .unwrap();
        }
        publ.publish("low/x", QoS::ExactlyOnce, false, "capped")
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 4 {
            let p = tokio::time::timeout(DEADLINE, rx.recv())
                .await
                .expect("delivery")
                .unwrap();
            got.push((
                p.topic.clone(),
                p.qos,
                String::from_utf8_lossy(&p.payload).to_string(),
            ));
        }
        assert_eq!(
            got,
            [
                ("sensors/room0/temp".into(), QoS::AtMostOnce, "m0".into()),
                ("sensors/room1/temp".into(), QoS::AtLeastOnce, "m1".into()),
                ("sensors/room2/temp".into(), QoS::ExactlyOnce, "m2".into()),
                // Delivered at the subscription's QoS 0.
                ("low/x".into(), QoS::AtMostOnce, "capped".into()),
            ]
        );
        stop.store(true, Ordering::Relaxed);
    }
}

mod v5 {
    use super::*;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};

    async fn client(
        port: u16,
        id: &str,
    ) -> (
        AsyncClient,
        tokio::sync::mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Publish>,
    ) {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_topic_alias_max(Some(4));
        let (client, mut el) = AsyncClient::new(o, 100);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ctx, crx) = tokio::sync::oneshot::channel();
        let mut ctx = Some(ctx);
        tokio::spawn(async move {
            while let Ok(ev) = el.poll().await {
                match ev {
                    Event::Incoming(Packet::Publish(p)) => {
                        let _ = tx.send(p);
                    }
                    Event::Incoming(Packet::ConnAck(_)) => {
                        if let Some(c) = ctx.take() {
                            let _ = c.send(());
                        }
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(DEADLINE, crx)
            .await
            .expect("CONNACK")
            .unwrap();
        (client, rx)
    }

    #[tokio::test]
    async fn rumqttc_v5_properties_survive_the_trip_through_nats_headers() {
        let stop = Arc::new(AtomicBool::new(false));
        let port = start_fixture(stop.clone());
        let (sub, mut rx) = client(port, "v5-sub").await;
        sub.subscribe("dev/+/data", QoS::AtLeastOnce).await.unwrap();
        let (publ, _rx2) = client(port, "v5-pub").await;
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < DEADLINE, "no probe came back");
            publ.publish("dev/probe/data", QoS::AtMostOnce, false, "probe")
                .await
                .unwrap();
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                break;
            }
        }
        let props = PublishProperties {
            user_properties: vec![("unit".into(), "C".into())],
            content_type: Some("text/plain".into()),
            response_topic: Some("dev/1/reply".into()),
            correlation_data: Some(vec![0xCA, 0xFE].into()),
            ..PublishProperties::default()
        };
        for i in 0..3 {
            let payload = format!("r{i}");
            publ.publish_with_properties(
                "dev/1/data",
                QoS::ExactlyOnce,
                false,
                payload,
                props.clone(),
            )
            .await
            .unwrap();
        }
        for i in 0..3 {
            let p = tokio::time::timeout(DEADLINE, rx.recv())
                .await
                .expect("delivery")
                .unwrap();
            assert_eq!(&p.payload[..], format!("r{i}").as_bytes());
            assert_eq!(p.qos, QoS::AtLeastOnce, "the subscription's QoS");
            let got = p.properties.expect("properties");
            assert_eq!(got.user_properties, props.user_properties);
            assert_eq!(got.content_type, props.content_type);
            assert_eq!(got.response_topic, props.response_topic);
            assert_eq!(got.correlation_data, props.correlation_data);
            // The client takes 4 topic aliases (alias 1 went to the probe's topic): the
            // first message names the topic and sets alias 2, the next ones carry the alias
            // alone.
            assert_eq!(got.topic_alias, Some(2));
            let want: &[u8] = if i == 0 { b"dev/1/data" } else { b"" };
            assert_eq!(&p.topic[..], want);
        }
        stop.store(true, Ordering::Relaxed);
    }
}
