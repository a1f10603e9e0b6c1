//! A bare MQTT 3.1.1 client over TCP for what rumqttc will not send.
//!
//! rumqttc checks filters on the client side (`a+`, `#/a` and the empty filter never leave it),
//! but the mapping tests need the *server's* answer to exactly those. This speaks just enough
//! of the protocol: CONNECT, SUBSCRIBE and reading PUBLISH/SUBACK, byte for byte.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

const CONNECT: u8 = 0x10;
const CONNACK: u8 = 0x20;
const PUBLISH: u8 = 0x30;
const SUBSCRIBE: u8 = 0x82; // type 8, reserved flags 0b0010 (MQTT-3.8.1-1)
const SUBACK: u8 = 0x90;

/// The server's answer to a SUBSCRIBE with one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubAck {
    /// Return code 0, 1 or 2: the granted QoS.
    Granted(u8),
    /// Return code 0x80.
    Failure,
    /// The server closed the connection instead of answering.
    Closed,
}

/// A PUBLISH the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The topic name, as raw bytes (the server may send what MQTT forbids).
    pub topic: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// One raw MQTT connection.
pub struct RawMqtt {
    stream: TcpStream,
}

impl RawMqtt {
    /// Connects with a clean session and waits for a successful CONNACK.
    pub async fn connect(port: u16, client_id: &str, deadline: Instant) -> RawMqtt {
        let stream = timeout_at(deadline, TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("MQTT TCP connect timed out")
            .expect("MQTT TCP connect");
        let mut conn = RawMqtt { stream };
        let mut body = Vec::new();
        put_str(&mut body, b"MQTT");
        body.extend_from_slice(&[4, 0b0000_0010, 0, 60]); // level 4, clean session, keepalive 60 s
        put_str(&mut body, client_id.as_bytes());
        conn.send(CONNECT, &body).await;
        match conn.read_packet(deadline).await {
            Some((CONNACK, body)) if body.get(1) == Some(&0) => conn,
            other => panic!("expected CONNACK accepted, got {other:?}"),
        }
    }

    /// Sends SUBSCRIBE for one filter and returns the server's answer.
    pub async fn subscribe(&mut self, filter: &[u8], qos: u8, deadline: Instant) -> SubAck {
        let mut body = vec![0, 1]; // packet id 1
        put_str(&mut body, filter);
        body.push(qos);
        self.send(SUBSCRIBE, &body).await;
        loop {
            match self.read_packet(deadline).await {
                None => return SubAck::Closed,
                Some((SUBACK, body)) => {
                    return match body.get(2) {
                        Some(&code) if code <= 2 => SubAck::Granted(code),
                        Some(0x80) => SubAck::Failure,
                        other => panic!("SUBACK with return code {other:?}"),
                    };
                }
                // Retained messages may not come first on a fresh subscription; skip others.
                Some(_) => {}
            }
        }
    }

    /// The next PUBLISH, or `None` once the server closes the connection. Panics at `deadline`.
    pub async fn next_publish(&mut self, deadline: Instant) -> Option<Publish> {
        loop {
            let (header, body) = self.read_packet(deadline).await?;
            if header & 0xf0 != PUBLISH {
                continue;
            }
            let qos = (header >> 1) & 0b11;
            let (topic, rest) = take_str(&body).expect("PUBLISH topic");
            // QoS 1/2 carry a packet id after the topic; these tests subscribe at QoS 0.
            let payload = if qos > 0 {
                rest.get(2..).unwrap_or_default()
            } else {
                rest
            };
            return Some(Publish {
                topic: topic.to_vec(),
                payload: payload.to_vec(),
            });
        }
    }

    async fn send(&mut self, header: u8, body: &[u8]) {
        let mut packet = vec![header];
        put_len(&mut packet, body.len());
        packet.extend_from_slice(body);
        self.stream.write_all(&packet).await.expect("MQTT write");
    }

    /// One packet as (fixed header byte, body); `None` on EOF or reset.
    async fn read_packet(&mut self, deadline: Instant) -> Option<(u8, Vec<u8>)> {
        let read = async {
            let header = self.stream.read_u8().await.ok()?;
            let mut len = 0usize;
            for shift in [0, 7, 14, 21] {
                let b = self.stream.read_u8().await.ok()?;
                len |= usize::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let mut body = vec![0; len];
            self.stream.read_exact(&mut body).await.ok()?;
            Some((header, body))
        };
        timeout_at(deadline, read)
            .await
            .expect("timed out waiting for an MQTT packet")
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let len = u16::try_from(s.len()).expect("MQTT string longer than 65535");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s);
}

fn take_str(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = b.split_at_checked(2)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    rest.split_at_checked(len)
}

fn put_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            return;
        }
    }
}
