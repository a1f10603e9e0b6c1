//! The sans-IO client: whatever the server sends, whenever, and whatever the caller does in
//! between, nothing panics, every call returns, and the bytes the client sends always parse as
//! whole client ops. The input is a script: each byte picks an action, some take data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twig_core::client::{Client, Options, Sid};
use twig_core::wire::{Limits, Mode, Parser};

fuzz_target!(|script: &[u8]| {
    let mut client = Client::<'static, 3, 256, 48>::new(Options::new().max_incoming_payload(128));
    let mut sent = Parser::new(Mode::FromClient, Limits::default());
    let mut out: Vec<u8> = Vec::new();
    let mut rx: Vec<u8> = Vec::new();
    let mut now = 0u64;
    let mut rest = script;
    while let Some((&action, tail)) = rest.split_first() {
        rest = tail;
        let len = usize::from(action >> 3).min(rest.len());
        let (data, tail) = rest.split_at(len);
        match action & 7 {
            0 => client.connect(now),
            1 => client.disconnected(),
            2 => {
                // Bytes from the server, handled until the client has nothing more to say.
                rx.extend_from_slice(data);
                for _ in 0..10_000 {
                    let (n, event) = client.handle(now, &rx);
                    let quiet = n == 0 && event.is_none();
                    assert!(n <= rx.len());
                    rx.drain(..n);
                    if quiet {
                        break;
                    }
                }
                rest = tail;
            }
            3 => now = now.saturating_add(u64::from(action) * 997),
            4 => {
                let _ = client.subscribe(data, data.first().map(|_| &data[..1]));
                rest = tail;
            }
            5 => {
                let _ = client.unsubscribe(Sid(u32::from(action % 4)));
                let _ = client.unsubscribe_after(Sid(u32::from(action % 5)), u64::from(action % 3));
            }
            6 => {
                let _ = client.publish(b"a.b", None, None, data);
                let _ = client.ping();
                rest = tail;
            }
            _ => {
                // The transport sends part of what is pending.
                let pending = client.transmit();
                let n = len.min(pending.len());
                out.extend_from_slice(&pending[..n]);
                client.transmitted(n);
            }
        }
        if matches!(action & 7, 0 | 1) {
            // A new connection: what was sent so far must have been whole client ops.
            check_ops(&mut sent, &mut out);
            rx.clear();
        }
    }
});

/// Every complete op in `out` parses; only the tail of an op may be left.
fn check_ops(parser: &mut Parser, out: &mut Vec<u8>) {
    let mut at = 0;
    while let Some((_, n)) = parser.parse(&out[at..]).expect("the client sent a malformed op") {
        at += n;
    }
    out.clear();
    parser.reset();
}
