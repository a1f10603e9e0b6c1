//! Shared by the S2 tests: messages of every kind, published and received by async-nats,
//! and what a recorded leaf connection decodes to.
#![allow(dead_code)]

use async_nats::HeaderMap;
use bytes::Bytes;
use twig_core::s2::{Decoder, MAX_BLOCK_SIZE};
use twig_core::testing::{Rng, sensor_backlog};
use twig_core::wire::{Limits, Mode as WireMode, Op, Parser};
use twig_tests::recorder::Direction;

use super::common::next;

/// A message as published and as it must come out of the decoded stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub subject: String,
    pub headers: Option<Vec<(String, String)>>,
    pub payload: Vec<u8>,
}

/// Small, empty, JSON-ish, random, large compressible and large random messages, one of
/// almost max_payload, some with headers, on `prefix.<n>`.
pub fn messages(prefix: &str, seed: u64) -> Vec<Sent> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut push = |payload: Vec<u8>, headers: Option<Vec<(String, String)>>| {
        let n = out.len();
        out.push(Sent {
            subject: format!("{prefix}.{n}"),
            headers,
            payload,
        });
    };
    push(b"hi".to_vec(), None);
    push(Vec::new(), None);
    for i in 0..40 {
        let json = format!(
            "{{\"sensor\":\"temp-{:02}\",\"ts\":{},\"value\":{}.{},\"status\":\"ok\"}}",
            i % 7,
            1_764_620_000_000u64 + i * 250,
            20 + rng.below(5),
            rng.below(100)
        );
        let headers = (i % 3 == 0).then(|| vec![("Nats-Msg-Id".to_string(), format!("gw.{i}"))]);
        push(json.into_bytes(), headers);
    }
    push((0..10_000).map(|_| rng.next_u64() as u8).collect(), None);
    push(
        sensor_backlog(&mut rng, 1, 2500),
        Some(vec![("Kind".into(), "backlog".into())]),
    );
    push((0..200_000).map(|_| rng.next_u64() as u8).collect(), None);
    // Just under the hub's max_payload (1 MiB with the header block): more than one block
    // of any writer, ours (64 KiB) and nats-server's (1 MiB).
    let mut big = sensor_backlog(&mut rng, 10_000, 4500);
    big.truncate(1_048_000);
    push(big, Some(vec![("Size".into(), "max".into())]));
    push(b"last".to_vec(), None);
    out
}

pub async fn publish_all(client: &async_nats::Client, msgs: &[Sent]) {
    for m in msgs {
        let payload = Bytes::from(m.payload.clone());
        match &m.headers {
            None => client.publish(m.subject.clone(), payload).await.unwrap(),
            Some(h) => {
                let mut map = HeaderMap::new();
                for (k, v) in h {
                    map.insert(k.as_str(), v.as_str());
                }
                client
                    .publish_with_headers(m.subject.clone(), map, payload)
                    .await
                    .unwrap()
            }
        }
    }
    client.flush().await.unwrap();
}

pub async fn receive_all(sub: &mut async_nats::Subscriber, msgs: &[Sent]) {
    for m in msgs {
        let got = next(sub).await;
        assert_eq!(got.subject.as_str(), m.subject);
        assert!(got.payload == m.payload, "payload of {}", m.subject);
    }
}

/// Header pairs of a `NATS/1.0` block.
pub fn header_pairs(block: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(block)
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// What a server wrote on a compressed leaf link, decoded: the plain INFO line it starts
/// with, then the S2 stream fed to the decoder in the given pieces. Returns the plain text
/// after the INFO line.
pub fn decode_direction(dir: &Direction, pieces: Option<usize>) -> (String, Vec<u8>) {
    let all = dir.bytes();
    let eol = all
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a first line");
    let info = String::from_utf8_lossy(&all[..eol]).into_owned();
    assert!(info.starts_with("INFO "), "starts with {info:?}");
    let stream = &all[eol + 2..];
    // The proxy's own read boundaries, shifted past the INFO line; or fixed-size pieces.
    let mut cuts = Vec::new();
    match pieces {
        Some(n) => cuts.extend((n..stream.len()).step_by(n)),
        None => {
            let mut at = 0;
            for r in &dir.reads {
                at += r.len();
                if at > eol + 2 && at - (eol + 2) < stream.len() {
                    cuts.push(at - (eol + 2));
                }
            }
        }
    }
    cuts.push(stream.len());
    let mut d = Decoder::new(vec![0u8; MAX_BLOCK_SIZE]);
    let mut plain = Vec::new();
    let mut from = 0;
    for to in cuts {
        let mut input = &stream[from..to];
        loop {
            let f = d
                .feed(input)
                .unwrap_or_else(|e| panic!("nats-server's stream: {e}"));
            plain.extend_from_slice(f.plain);
            input = &input[f.consumed..];
            if f.consumed == 0 && f.plain.is_empty() {
                break;
            }
        }
        from = to;
    }
    assert!(d.is_idle(), "the capture ends inside a chunk");
    (info, plain)
}

/// The messages on `prefix.` in a decoded leaf protocol text, and the op names seen.
pub fn messages_in(plain: &[u8], prefix: &str) -> (Vec<Sent>, Vec<String>) {
    let mut p = Parser::new(WireMode::Leaf, Limits::default().for_server_link());
    let mut ops = p.ops(plain);
    let mut msgs = Vec::new();
    let mut names = Vec::new();
    for op in &mut ops {
        let op = op.unwrap_or_else(|e| panic!("decoded text does not parse: {e:?}"));
        let name = format!("{op:?}");
        names.push(name.split([' ', '(', '{']).next().unwrap_or("").to_string());
        if let Op::Lmsg {
            subject,
            headers,
            payload,
            ..
        } = op
        {
            let subject = String::from_utf8_lossy(subject).into_owned();
            if subject.starts_with(&format!("{prefix}.")) {
                msgs.push(Sent {
                    subject,
                    headers: headers.map(header_pairs),
                    payload: payload.to_vec(),
                });
            }
        }
    }
    assert_eq!(
        ops.consumed(),
        plain.len(),
        "decoded text ends inside an op"
    );
    (msgs, names)
}
