//! Code-size probe: what a sensor firmware links from twig-core: the parser (server ops as a
//! client sees them), encoders (CONNECT, SUB, PUB, HPUB, PING/PONG), subject matching, and
//! heap-free INFO parsing and CONNECT writing. `tests/code-size` reports `.text`.
//!
//! Inputs come through `black_box` from RAM so nothing is folded away at compile time.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use panic_halt as _;
use twig_core::subject;
use twig_core::wire::json::{ClientConnect, ServerInfo};
use twig_core::wire::{Limits, Mode, Op, Parser};


/// A user seed from RAM (through black_box), as firmware would read one from its config.
#[cfg(feature = "nkey")]
const SEED: &str = "SUAMTPZAC73CNEHO3HN2CQUMWVUGNUDDWYK52ZR5RQCDTOOL3QA3LCYHWQ";

#[entry]
fn main() -> ! {
    // Stands in for a receive buffer; black_box hides its contents from the optimizer.
    let mut rx = [0u8; 512];
    black_box(&mut rx);
    let mut tx = [0u8; 512];
    let mut parser = Parser::new(Mode::FromServer, Limits::default());
    let mut seen = 0usize;
    loop {
        let input = black_box(&rx[..]);
        if let Ok(Some((op, used))) = parser.parse(input) {
            seen = seen.wrapping_add(used);
            match op {
                Op::Info(json) => {
                    if let Ok(info) = ServerInfo::parse(json) {
                        let mut c = ClientConnect::new();
                        c.headers = info.headers;
                        c.name = Some("sensor".into());
                        #[cfg(feature = "nkey")]
                        let mut sig = [0u8; twig_core::nkey::SIGNATURE_LEN];
                        #[cfg(feature = "nkey")]
                        if let (Ok(signer), Some(nonce)) = (
                            twig_core::nkey::Signer::from_seed(black_box(SEED)),
                            info.nonce,
                        ) {
                            let s = signer.sign_nonce(nonce.raw().as_bytes(), &mut sig);
                            c.sig = Some(twig_core::wire::json::JsonStr::new(s));
                            seen = seen.wrapping_add(signer.public_key().len());
                        }
                        if let Ok(n) = c.write(&mut tx) {
                            seen = seen.wrapping_add(n);
                        }
                    }
                }
                Op::Msg { subject: s, .. } | Op::Hmsg { subject: s, .. } => {
                    if subject::matches(black_box(b"cmd.*.reboot"), s) {
                        seen = seen.wrapping_add(1);
                    }
                }
                Op::Ping => seen = seen.wrapping_add(Op::Pong.encode(&mut tx).unwrap_or(0)),
                _ => {}
            }
        }
        let sub = Op::Sub {
            subject: black_box(b"cmd.>"),
            queue: None,
            sid: b"1",
        };
        seen = seen.wrapping_add(sub.encode(&mut tx).unwrap_or(0));
        // A sensor's headers are usually constant; building them is HeaderWriter's job.
        let publish = Op::Hpub {
            subject: black_box(b"sensors.t1"),
            reply: None,
            headers: black_box(b"NATS/1.0\r\nUnit: C\r\n\r\n"),
            payload: black_box(b"21.5"),
        };
        seen = seen.wrapping_add(publish.encode(&mut tx).unwrap_or(0));
        let plain = Op::Pub {
            subject: black_box(b"sensors.t1"),
            reply: None,
            payload: black_box(b"21.5"),
        };
        seen = seen.wrapping_add(plain.encode(&mut tx).unwrap_or(0));
        black_box((seen, &tx));
    }
}
