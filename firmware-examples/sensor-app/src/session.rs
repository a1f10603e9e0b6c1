//! The I/O shell around twig-core's sans-IO client: TCP over embassy-net, embassy-time's clock,
//! readings on a timer, the backlog drained in acknowledged batches.

use core::fmt::Write as _;

use embassy_futures::select::{Either, select};
use embassy_net::Stack;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Instant, Timer, with_timeout};
use heapless::String;
use twig_core::client::{Event, Message, Options, RxBuffer, Status};
use twig_core::nkey::Signer;
use twig_core::wire::HeaderWriter;

use crate::{AppConfig, Backlog, Client, Sensor};

/// Largest backlog record: a 4-byte sequence number and the JSON reading.
pub const RECORD: usize = 64;
/// Backlog records published per PING/PONG round trip; removed from the backlog only when the
/// PONG shows the gateway processed them.
const BATCH: usize = 8;
/// How long one TCP connect may take before the attempt is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Waits between connection attempts: doubling from the first to the last.
const BACKOFF_MS: (u64, u64) = (500, 16_000);

fn now_ms() -> u64 {
    Instant::now().as_millis()
}

/// Readings: when the next is due, its sequence number, and how many were lost.
struct Readings {
    period_ms: u64,
    next_at: u64,
    seq: u32,
    dropped: u32,
}

impl Readings {
    /// Takes a reading if one is due: the backlog record (sequence number, then JSON).
    fn take(&mut self, sensor: &mut impl Sensor) -> Option<heapless::Vec<u8, RECORD>> {
        let now = now_ms();
        if now < self.next_at {
            return None;
        }
        self.next_at = now.saturating_add(self.period_ms);
        self.seq = self.seq.wrapping_add(1);
        let c = sensor.read_centi_celsius();
        let sign = if c < 0 { "-" } else { "" };
        let (whole, frac) = (c.unsigned_abs() / 100, c.unsigned_abs() % 100);
        let mut json: String<48> = String::new();
        let _ = write!(
            json,
            "{{\"seq\":{},\"temp_c\":{sign}{whole}.{frac:02}}}",
            self.seq
        );
        let mut record = heapless::Vec::new();
        let _ = record.extend_from_slice(&self.seq.to_le_bytes());
        let _ = record.extend_from_slice(json.as_bytes());
        Some(record)
    }
}

/// Runs the sensor forever: connect, publish, answer commands, back off, buffer, drain.
pub async fn run(
    stack: Stack<'_>,
    cfg: &AppConfig<'_>,
    sensor: &mut impl Sensor,
    backlog: &mut impl Backlog,
) -> ! {
    let mut temp_subject: String<48> = String::new();
    let mut cmd_subject: String<48> = String::new();
    let _ = write!(temp_subject, "sensors.{}.temp", cfg.device);
    let _ = write!(cmd_subject, "cmd.{}", cfg.device);
    let mut options = Options::new()
        .name(cfg.device)
        .ping_interval_ms(15_000)
        .max_incoming_payload(512);
    if let Some((user, pass)) = cfg.credentials {
        options = options.user_password(user, pass);
    }
    // The key is expanded once (a SHA-512 and a scalar multiplication); each connection then
    // signs its server's nonce.
    let signer = cfg.nkey_seed.map(|seed| {
        Signer::from_seed(seed).expect("the device's nkey seed is a user seed (SU...)")
    });
    if let Some(signer) = &signer {
        options = options.nkey(signer);
    }
    let mut client = Client::new(options);
    // Kept by the client across reconnects; fails only for a device name over ~40 bytes.
    client
        .subscribe(cmd_subject.as_bytes(), None)
        .expect("command subscription fits the client");
    let mut readings = Readings {
        period_ms: cfg.period_ms,
        next_at: now_ms(),
        seq: 0,
        dropped: 0,
    };
    let mut sock_rx = [0u8; 1024];
    let mut sock_tx = [0u8; 1024];
    let mut rx = RxBuffer::<1024>::new();
    let mut backoff = BACKOFF_MS.0;
    loop {
        // Offline: readings go to the backlog while the link is down.
        buffer_due(&mut readings, sensor, backlog);
        stack.wait_config_up().await;
        let mut socket = TcpSocket::new(stack, &mut sock_rx, &mut sock_tx);
        socket.set_timeout(Some(Duration::from_secs(30)));
        let connected = with_timeout(CONNECT_TIMEOUT, socket.connect(cfg.gateway)).await;
        if !matches!(connected, Ok(Ok(()))) {
            socket.abort();
            drop(socket);
            let wake = readings.next_at.min(now_ms().saturating_add(backoff));
            Timer::at(Instant::from_millis(wake)).await;
            backoff = backoff.saturating_mul(2).min(BACKOFF_MS.1);
            continue;
        }
        backoff = BACKOFF_MS.0;
        rx.clear();
        client.connect(now_ms());
        let mut shell = Shell {
            client: &mut client,
            temp_subject: temp_subject.as_bytes(),
            device: cfg.device,
            in_flight: 0,
        };
        shell
            .session(&mut socket, &mut rx, &mut readings, sensor, backlog)
            .await;
        socket.abort();
        let _ = socket.flush().await;
        client.disconnected();
    }
}

/// Takes a due reading and appends it to the backlog.
fn buffer_due(readings: &mut Readings, sensor: &mut impl Sensor, backlog: &mut impl Backlog) {
    if let Some(record) = readings.take(sensor)
        && !backlog.push(&record)
    {
        readings.dropped = readings.dropped.wrapping_add(1);
    }
}

/// One connection's state.
struct Shell<'c, 'o> {
    client: &'c mut Client<'o>,
    temp_subject: &'c [u8],
    device: &'c str,
    /// Backlog records published and not yet confirmed by a PONG.
    in_flight: usize,
}

impl Shell<'_, '_> {
    /// Runs one connection until it fails.
    async fn session(
        &mut self,
        socket: &mut TcpSocket<'_>,
        rx: &mut RxBuffer<1024>,
        readings: &mut Readings,
        sensor: &mut impl Sensor,
        backlog: &mut impl Backlog,
    ) {
        loop {
            while !self.client.transmit().is_empty() {
                match socket.write(self.client.transmit()).await {
                    Ok(n) if n > 0 => self.client.transmitted(n),
                    _ => return,
                }
            }
            let wake = self
                .client
                .poll_at()
                .unwrap_or(u64::MAX)
                .min(readings.next_at);
            match select(
                socket.read(rx.space()),
                Timer::at(Instant::from_millis(wake)),
            )
            .await
            {
                Either::First(Ok(0)) | Either::First(Err(_)) => return,
                Either::First(Ok(n)) => rx.filled(n),
                Either::Second(()) => {}
            }
            if !self.handle_input(rx, readings, backlog) {
                return;
            }
            self.drain(backlog);
            if let Some(record) = readings.take(sensor) {
                self.publish_live(&record, readings, backlog);
            }
        }
    }

    /// Hands every complete op to the client; `false` when the session is over.
    fn handle_input(
        &mut self,
        rx: &mut RxBuffer<1024>,
        readings: &mut Readings,
        backlog: &mut impl Backlog,
    ) -> bool {
        loop {
            let (n, event) = self.client.handle(now_ms(), rx.data());
            let quiet = n == 0 && event.is_none();
            match event {
                Some(Event::Closed(_)) => return false,
                Some(Event::Pong) if self.in_flight > 0 => {
                    // Everything published before the PING was processed by the gateway.
                    backlog.remove_front(self.in_flight);
                    self.in_flight = 0;
                }
                Some(Event::Message(m)) => self.command(&m, readings),
                _ => {}
            }
            rx.consume(n);
            if quiet {
                return true;
            }
        }
    }

    /// `interval <ms>` changes the period; `read` takes a reading now. Answered on the reply
    /// subject with `ok` or `error`.
    fn command(&mut self, m: &Message<'_>, readings: &mut Readings) {
        let text = core::str::from_utf8(m.payload).unwrap_or("");
        let ok = match text.split_once(' ') {
            Some(("interval", ms)) => match ms.trim().parse::<u64>() {
                Ok(ms) if ms >= 100 => {
                    readings.period_ms = ms;
                    readings.next_at = now_ms().saturating_add(ms);
                    true
                }
                _ => false,
            },
            _ if text == "read" => {
                readings.next_at = now_ms();
                true
            }
            _ => false,
        };
        if let Some(reply) = m.reply {
            let answer: &[u8] = if ok { b"ok" } else { b"error" };
            let _ = self.client.publish(reply, None, None, answer);
        }
    }

    /// A fresh reading: published at once when nothing older waits, else queued behind the
    /// backlog so readings stay in order.
    fn publish_live(&mut self, record: &[u8], readings: &mut Readings, backlog: &mut impl Backlog) {
        let direct = self.client.status() == Status::Connected
            && backlog.is_empty()
            && self.in_flight == 0
            && self.publish_record(record);
        if !direct && !backlog.push(record) {
            readings.dropped = readings.dropped.wrapping_add(1);
        }
    }

    /// Publishes the next batch of the backlog, followed by a PING whose PONG confirms it.
    fn drain(&mut self, backlog: &mut impl Backlog) {
        if self.client.status() != Status::Connected || self.in_flight > 0 {
            return;
        }
        let mut buf = [0u8; RECORD];
        let mut sent = 0;
        while sent < BATCH {
            let Some(n) = backlog.get(sent, &mut buf) else {
                break;
            };
            if !self.publish_record(&buf[..n]) {
                break;
            }
            sent += 1;
        }
        if sent > 0 && self.client.ping().is_ok() {
            self.in_flight = sent;
        }
    }

    /// Publishes one record with its `Nats-Msg-Id` (`<device>-<seq>`, the same on every
    /// retry, so a JetStream stream keeps one copy).
    fn publish_record(&mut self, record: &[u8]) -> bool {
        let Some((seq, json)) = record.split_first_chunk::<4>() else {
            return false;
        };
        let mut id: String<48> = String::new();
        let _ = write!(id, "{}-{}", self.device, u32::from_le_bytes(*seq));
        let mut block = [0u8; 80];
        let Ok(mut headers) = HeaderWriter::new(&mut block) else {
            return false;
        };
        if headers.push(b"Nats-Msg-Id", id.as_bytes()).is_err() {
            return false;
        }
        let len = headers.finish();
        self.client
            .publish(self.temp_subject, None, block.get(..len), json)
            .is_ok()
    }
}
