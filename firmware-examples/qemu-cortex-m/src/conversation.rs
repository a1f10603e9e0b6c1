//! A sensor's whole session with a NATS server, the server's side scripted byte for byte:
//! what the server sends goes into the sans-IO client in 16-byte segments (as a TCP stack
//! would hand them over), and what the client must send back is compared exactly.

use twig_core::client::{Client, ClientError, Close, Event, Message, Options, RxBuffer, Sid};
use twig_core::nkey::Signer;
use twig_core::wire::{HeaderWriter, Headers};

use crate::check::{Checks, Outcome, Show};
use crate::ensure;

/// What a sensor needs: 4 subscriptions, 512 bytes to send, 128 bytes of subject names.
type Sensor<'o> = Client<'o, 4, 512, 128>;

/// RAM one such client session takes (it lives on the stack or in a `static`).
pub const CLIENT_BYTES: usize = core::mem::size_of::<Sensor<'static>>();

/// This device's nkey seed (a test key: a real device keeps its seed out of the source, e.g.
/// in a flash page written at provisioning) and its public key, as the server's config lists
/// it.
const SEED: &str = "SUAMTPZAC73CNEHO3HN2CQUMWVUGNUDDWYK52ZR5RQCDTOOL3QA3LCYHWQ";
const PUBLIC_KEY: &str = "UBI7OHFE3LF55YEZCXASWLPL5NMQPRK4LYYK7EBAOPJFCMGK4SURXXJ4";

/// nats-server 2.15.1's INFO for a server with nkey users, as seen on the wire.
const INFO: &[u8] = b"INFO {\"server_id\":\"NCXW2\",\"server_name\":\"hub\",\"version\":\"2.15.1\",\"proto\":1,\"go\":\"go1.27.2\",\"host\":\"0.0.0.0\",\"port\":4222,\"headers\":true,\"auth_required\":true,\"max_payload\":1048576,\"client_id\":5,\"client_ip\":\"10.0.2.15\",\"nonce\":\"LoL0y3wTX12DHbU\"} \r\n";
/// The CONNECT that signs that nonce with SEED (Ed25519 is deterministic: the nkeys library
/// makes the same signature).
const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"nkey\":\"UBI7OHFE3LF55YEZCXASWLPL5NMQPRK4LYYK7EBAOPJFCMGK4SURXXJ4\",\"sig\":\"kp620_HrJgV8i9vqCfgyMpVB_x1O4YnCp-9XrHbaMgy-xC-xBILBzfK9a8AP-PX2zovMm_LWmKIHiJjGlSBvCw\",\"name\":\"sensor-7\",\"lang\":\"rust\",\"version\":\"0.1.0\",\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\n";
const SUBS: &[u8] = b"SUB cmd.sensor-7 1\r\nSUB cfg.> sensors 2\r\n";
const SEGMENT: usize = 16;

struct Talk<'o> {
    client: Sensor<'o>,
    rx: RxBuffer<512>,
    now: u64,
    checks: Checks,
}

impl Talk<'_> {
    /// The server sends `bytes`; the events must be `expected`, in order.
    fn server(&mut self, bytes: &[u8], expected: &[Event<'_>]) -> Result<(), ()> {
        let mut seen = 0;
        self.drain(expected, &mut seen)?;
        for segment in bytes.chunks(SEGMENT) {
            let space = self.rx.space();
            ensure!(
                self.checks,
                space.len() >= segment.len(),
                "receive buffer full"
            );
            space[..segment.len()].copy_from_slice(segment);
            self.rx.filled(segment.len());
            self.drain(expected, &mut seen)?;
        }
        ensure!(
            self.checks,
            self.rx.data().is_empty(),
            "left over: {}",
            Show(self.rx.data())
        );
        ensure!(
            self.checks,
            seen == expected.len(),
            "{} events, want {}",
            seen,
            expected.len()
        );
        Ok(())
    }

    /// Hands the received bytes to the client until it has nothing more to say.
    fn drain(&mut self, expected: &[Event<'_>], seen: &mut usize) -> Result<(), ()> {
        for _ in 0..64 {
            let (n, event) = self.client.handle(self.now, self.rx.data());
            let Some(event) = event else {
                self.rx.consume(n);
                if n == 0 {
                    return Ok(());
                }
                continue;
            };
            let want = expected.get(*seen);
            ensure!(
                self.checks,
                want == Some(&event),
                "event {}: {:?}, want {:?}",
                *seen,
                event,
                want
            );
            *seen += 1;
            self.rx.consume(n);
        }
        ensure!(self.checks, false, "the client keeps reporting events");
        Ok(())
    }

    /// The client must send exactly `expected` now.
    fn sends(&mut self, expected: &[u8]) -> Result<(), ()> {
        let out = self.client.transmit();
        ensure!(
            self.checks,
            out == expected,
            "sent {}, want {}",
            Show(out),
            Show(expected)
        );
        let n = out.len();
        self.client.transmitted(n);
        Ok(())
    }

    /// The clock reaches `now`; the timers' events must be `expected`.
    fn at(&mut self, now: u64, expected: &[Event<'_>]) -> Result<(), ()> {
        self.now = now;
        self.server(b"", expected)
    }
}

pub fn run() -> Outcome {
    let mut checks = Checks::default();
    let signer = Signer::from_seed(SEED);
    ensure!(
        checks,
        signer.is_ok(),
        "the seed decodes: {:?}",
        signer.as_ref().err()
    );
    let Ok(signer) = signer else { return Err(()) };
    ensure!(
        checks,
        signer.public_key() == PUBLIC_KEY,
        "public key {}",
        signer.public_key()
    );
    let options = Options::new()
        .name("sensor-7")
        .nkey(&signer)
        .ping_interval_ms(30_000)
        .max_incoming_payload(256);
    let mut t = Talk {
        client: Sensor::new(options),
        rx: RxBuffer::new(),
        now: 0,
        checks,
    };
    session(&mut t)?;
    Ok(t.checks.count)
}

fn session(t: &mut Talk<'_>) -> Result<(), ()> {
    // Subscriptions made before there is a network are sent with the handshake.
    let cmd = t.client.subscribe(b"cmd.sensor-7", None);
    let cfg = t.client.subscribe(b"cfg.>", Some(b"sensors"));
    ensure!(
        t.checks,
        (cmd, cfg) == (Ok(Sid(1)), Ok(Sid(2))),
        "sids {:?} {:?}",
        cmd,
        cfg
    );

    // Handshake: INFO -> CONNECT, SUBs, PING -> PONG.
    t.client.connect(0);
    t.now = 12;
    t.server(INFO, &[Event::Info(&INFO[5..INFO.len() - 3])])?;
    t.sends(&[CONNECT, SUBS, b"PING\r\n"].concat_into::<512>())?;
    let early = t.client.publish(b"sensors.7.temp", None, None, b"21.5");
    ensure!(
        t.checks,
        early == Err(ClientError::NotConnected),
        "publish before PONG: {:?}",
        early
    );
    t.server(b"PONG\r\n", &[Event::Connected])?;

    // Readings, one with a message id header.
    t.client
        .publish(b"sensors.7.temp", None, None, b"21.5")
        .map_err(drop)?;
    let mut block = [0u8; 48];
    let mut w = HeaderWriter::new(&mut block).map_err(drop)?;
    w.push(b"Nats-Msg-Id", b"7-1042").map_err(drop)?;
    let n = w.finish();
    t.client
        .publish(b"sensors.7.hum", None, Some(&block[..n]), b"48")
        .map_err(drop)?;
    t.sends(b"PUB sensors.7.temp 4\r\n21.5\r\nHPUB sensors.7.hum 33 35\r\nNATS/1.0\r\nNats-Msg-Id: 7-1042\r\n\r\n48\r\n")?;

    // A command with a reply subject, answered; a config change with headers.
    let cmd_msg = b"MSG cmd.sensor-7 1 _INBOX.ops.1 6\r\nled:on\r\n";
    t.server(
        cmd_msg,
        &[Event::Message(Message {
            sid: Sid(1),
            subject: b"cmd.sensor-7",
            reply: Some(b"_INBOX.ops.1"),
            header_block: None,
            payload: b"led:on",
        })],
    )?;
    t.client
        .publish(b"_INBOX.ops.1", None, None, b"ok")
        .map_err(drop)?;
    t.sends(b"PUB _INBOX.ops.1 2\r\nok\r\n")?;
    let cfg_msg = b"HMSG cfg.interval 2 27 29\r\nNATS/1.0\r\nSet-By: ops-7\r\n\r\n60\r\n";
    let block = b"NATS/1.0\r\nSet-By: ops-7\r\n\r\n";
    t.server(
        cfg_msg,
        &[Event::Message(Message {
            sid: Sid(2),
            subject: b"cfg.interval",
            reply: None,
            header_block: Some(block),
            payload: b"60",
        })],
    )?;
    let by = Headers::parse(block).ok().and_then(|h| h.get(b"Set-By"));
    ensure!(
        t.checks,
        by == Some(&b"ops-7"[..]),
        "Set-By header: {:?}",
        by.map(Show)
    );

    // The server's PING is answered; ours go out on time and the PONG comes back.
    t.server(b"PING\r\n", &[])?;
    t.sends(b"PONG\r\n")?;
    ensure!(
        t.checks,
        t.client.poll_at() == Some(30_012),
        "next PING at {:?}",
        t.client.poll_at()
    );
    t.at(30_011, &[])?;
    t.sends(b"")?;
    t.at(30_012, &[])?;
    t.sends(b"PING\r\n")?;
    t.server(b"PONG\r\n", &[Event::Pong])?;

    // A permission error is reported and the session goes on.
    let err = b"-ERR 'Permissions Violation for Publish to \"cfg.interval\"'\r\n";
    t.server(
        err,
        &[Event::ServerError(
            b"Permissions Violation for Publish to \"cfg.interval\"",
        )],
    )?;

    // The link goes quiet: two PINGs unanswered, then the session is stale.
    t.at(60_012, &[])?;
    t.sends(b"PING\r\n")?;
    t.at(90_012, &[])?;
    t.sends(b"PING\r\n")?;
    t.at(120_012, &[Event::Closed(Close::Stale)])?;

    // Reconnect: the same subscriptions are sent again, then publishing resumes.
    t.client.disconnected();
    t.rx.clear();
    let offline = t.client.publish(b"sensors.7.temp", None, None, b"21.7");
    ensure!(
        t.checks,
        offline == Err(ClientError::NotConnected),
        "offline publish: {:?}",
        offline
    );
    t.client.connect(125_000);
    t.now = 125_020;
    t.server(INFO, &[Event::Info(&INFO[5..INFO.len() - 3])])?;
    t.sends(&[CONNECT, SUBS, b"PING\r\n"].concat_into::<512>())?;
    t.server(b"PONG\r\n", &[Event::Connected])?;
    t.client
        .publish(b"sensors.7.temp", None, None, b"21.7")
        .map_err(drop)?;
    t.sends(b"PUB sensors.7.temp 4\r\n21.7\r\n")?;

    // A wrong password on the next connection is the end of that session.
    t.client.connect(200_000);
    t.server(INFO, &[Event::Info(&INFO[5..INFO.len() - 3])])?;
    t.sends(&[CONNECT, SUBS, b"PING\r\n"].concat_into::<512>())?;
    let refused = b"-ERR 'Authorization Violation'\r\n";
    t.server(
        refused,
        &[Event::Closed(Close::ServerError(
            b"Authorization Violation",
        ))],
    )?;
    Ok(())
}

/// Concatenation into a fixed buffer (no heap on the MCU).
trait ConcatInto {
    fn concat_into<const N: usize>(&self) -> heapless::Vec<u8, N>;
}

impl ConcatInto for [&[u8]] {
    fn concat_into<const N: usize>(&self) -> heapless::Vec<u8, N> {
        let mut v = heapless::Vec::new();
        for part in self {
            // Overflow shows up as a mismatch in the comparison that follows.
            let _ = v.extend_from_slice(part);
        }
        v
    }
}
