//! The MQTT server session driven by arbitrary input: the first bytes pick limits, then each
//! step is a chunk of client bytes or a shell input (accept, reject, delivery, a ticket's
//! answer, time passing, close, takeover). No panic, and what twig writes is whole packets.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use twig_core::mqtt::packet::{decode, Version};
use twig_gateway::mqtt_server::*;

fuzz_target!(|data: &[u8]| {
    let Some((&limits, mut data)) = data.split_first() else { return };
    let cfg = Config {
        receive_maximum: 1 + u16::from(limits & 3),
        max_inflight: 1 + u16::from((limits >> 2) & 3),
        topic_alias_maximum: u16::from((limits >> 4) & 3),
        max_keep_alive: if limits & 0x40 != 0 { 10 } else { 0 },
        max_packet_size: 512,
        max_queued_messages: 8,
        ..Config::default()
    };
    let mut now = Instant::now();
    let mut s = Session::new(Arc::new(cfg), now);
    let mut tickets = Vec::new();
    let mut wire = Vec::new();
    // Start connected (the fuzzer rarely builds a CONNECT): 5 or 3.1.1, clean or lasting.
    let v5 = limits & 0x80 != 0;
    let flags = if limits & 0x40 != 0 { 0x00 } else { 0x02 };
    let connect: &[u8] = if v5 {
        &[0x10, 19, 0, 4, b'M', b'Q', b'T', b'T', 5, flags, 0, 5, 5, 0x11, 0, 0, 0, 30, 0, 1, b'c']
    } else {
        &[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 5, 0, 1, b'c']
    };
    s.handle(now, Input::Bytes(connect));
    s.handle(now, Input::Accept(Accept { permissions: Box::new(AllowAll), previous: None }));
    let mut version = v5.then_some(Version::V5);
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        match op % 8 {
            0..=2 => {
                let n = usize::from(op >> 3).min(data.len());
                let (chunk, rest) = data.split_at(n);
                data = rest;
                s.handle(now, Input::Bytes(chunk));
            }
            3 => s.handle(now, Input::Accept(Accept { permissions: Box::new(AllowAll), previous: None })),
            4 => {
                let payload = [op; 3];
                let d = Delivery {
                    sub: u32::from(op >> 6),
                    subject: "a.b",
                    reply: (op & 8 != 0).then_some("_INBOX.x"),
                    headers: (op & 16 != 0).then_some(&b"NATS/1.0\r\nNmqtt-Pub: 2\r\nk: v\r\n\r\n"[..]),
                    payload: &payload,
                    retained: op & 32 != 0,
                    own: false,
                };
                s.handle(now, Input::Deliver(d));
            }
            5 => {
                if let Some(t) = tickets.pop() {
                    let o = if op & 8 != 0 { Outcome::Refused(0x97) } else { Outcome::Ok };
                    s.handle(now, Input::Done(t, o));
                }
            }
            6 => {
                now += Duration::from_millis(u64::from(op) * 100);
                s.handle(now, Input::Tick);
            }
            _ => s.handle(now, match op >> 3 {
                0 => Input::Closed,
                1 => Input::TakenOver,
                2 => Input::Reject(0x86),
                _ => Input::Shutdown,
            }),
        }
        while let Some(e) = s.poll_event() {
            match e {
                Event::Publish(Publish { ticket: Some(t), .. }) | Event::Persist(_, Some(t)) => tickets.push(t),
                _ => {}
            }
        }
        if version.is_none() && s.version() == 5 {
            version = Some(Version::V5);
        }
        wire.extend(s.take_transmit());
        let v = version.unwrap_or(Version::V4);
        while !wire.is_empty() {
            match decode(&wire, v, usize::MAX) {
                Ok(Some((_, n))) => {
                    wire.drain(..n);
                }
                // A v5 CONNACK can be written before `version()` says 5: read it as v5.
                _ if v == Version::V4 => match decode(&wire, Version::V5, usize::MAX) {
                    Ok(Some((_, n))) => {
                        wire.drain(..n);
                    }
                    other => panic!("twig wrote {wire:02x?}: {other:?}"),
                },
                other => panic!("twig wrote {wire:02x?}: {other:?}"),
            }
        }
    }
});
