//! twig-core's sans-IO client driven over a real `TcpStream`, against a real nats-server and
//! against twig: the same session must work with both. The shell below is what an MCU's
//! network task does with smoltcp or embassy-net, with std's socket and clock instead.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use twig_core::client::{Client, ClientError, Close, Event, Options, RxBuffer, Sid, Status};
use twig_core::wire::HeaderWriter;
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target};

/// Every wait in these tests ends by this deadline.
const STEP: Duration = Duration::from_secs(5);
const TARGETS: [Target; 2] = [Target::NatsServer, Target::Twig];

/// An event copied out of the receive buffer, so the test can keep it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Info,
    Connected,
    Msg {
        sid: Sid,
        subject: String,
        reply: Option<String>,
        headers: Vec<(String, String)>,
        status: Option<u16>,
        payload: Vec<u8>,
    },
    Pong,
    ServerError(String),
    Closed(String),
    /// The server closed the TCP connection.
    Eof,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Seen {
    fn of(e: &Event<'_>) -> Seen {
        match *e {
            Event::Info(_) => Seen::Info,
            Event::Connected => Seen::Connected,
            Event::Message(m) => {
                let headers = m.headers().expect("well-formed header block");
                Seen::Msg {
                    sid: m.sid,
                    subject: text(m.subject),
                    reply: m.reply.map(text),
                    headers: headers
                        .iter()
                        .flat_map(|h| h.iter())
                        .map(|(k, v)| (text(k), text(v)))
                        .collect(),
                    status: m.status(),
                    payload: m.payload.to_vec(),
                }
            }
            Event::Pong => Seen::Pong,
            Event::ServerError(t) => Seen::ServerError(text(t)),
            Event::Closed(Close::ServerError(t)) => Seen::Closed(text(t)),
            Event::Closed(why) => Seen::Closed(format!("{why:?}")),
        }
    }
}

/// The I/O shell: a socket, a clock, a receive buffer, and the client.
struct Shell {
    client: Client<'static, 8, 4096, 512>,
    sock: Option<TcpStream>,
    rx: RxBuffer<8192>,
    epoch: Instant,
    addr: String,
}

impl Shell {
    /// Opens a TCP connection to `addr` and starts a session on it.
    fn open(addr: &str, options: Options<'static>) -> Shell {
        let mut shell = Shell {
            client: Client::new(options),
            sock: None,
            rx: RxBuffer::new(),
            epoch: Instant::now(),
            addr: addr.to_string(),
        };
        shell.reconnect();
        shell
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap()
    }

    /// Dials again (until `STEP` runs out) and starts a new session.
    fn reconnect(&mut self) {
        let deadline = Instant::now() + STEP;
        let sock = loop {
            match TcpStream::connect(&self.addr) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20)); // back-off between dials
                }
                Err(e) => panic!("cannot connect to {}: {e}", self.addr),
            }
        };
        sock.set_nodelay(true).unwrap();
        self.sock = Some(sock);
        self.rx.clear();
        let now = self.now();
        self.client.connect(now);
    }

    /// The transport is gone: tell the client.
    fn drop_transport(&mut self) {
        self.sock = None;
        self.client.disconnected();
    }

    /// Sends everything the client has to send.
    fn flush(&mut self) {
        let sock = self.sock.as_mut().expect("connected");
        loop {
            let out = self.client.transmit();
            if out.is_empty() {
                return;
            }
            let n = sock.write(out).expect("write to server");
            self.client.transmitted(n);
        }
    }

    /// Runs the session until `done` is true of an event (returned with everything seen
    /// before it), or panics after `STEP`.
    fn until(&mut self, what: &str, mut done: impl FnMut(&Seen) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + STEP;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            self.flush();
            // Every complete op in the buffer.
            loop {
                let now = self.now();
                let (n, event) = self.client.handle(now, self.rx.data());
                let event = event.as_ref().map(Seen::of);
                self.rx.consume(n);
                match event {
                    Some(e) => {
                        let stop = done(&e);
                        seen.push(e);
                        if stop {
                            self.flush();
                            return seen;
                        }
                    }
                    None if n == 0 => break,
                    None => {}
                }
            }
            self.flush();
            // Sleep in the socket until bytes arrive or the client's next timer.
            let now = self.now();
            let wait = self
                .client
                .poll_at()
                .map_or(50, |at| at.saturating_sub(now).clamp(1, 50));
            let sock = self.sock.as_mut().expect("connected");
            sock.set_read_timeout(Some(Duration::from_millis(wait)))
                .unwrap();
            match sock.read(self.rx.space()) {
                Ok(0) => {
                    seen.push(Seen::Eof);
                    if done(&Seen::Eof) {
                        return seen;
                    }
                    panic!("server closed the connection while waiting for {what}: {seen:?}");
                }
                Ok(n) => self.rx.filled(n),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if done(&Seen::Eof) => {
                    let _ = e;
                    seen.push(Seen::Eof);
                    return seen;
                }
                Err(e) => panic!("read: {e} while waiting for {what}: {seen:?}"),
            }
        }
        panic!("no {what} within {STEP:?}; seen: {seen:?}")
    }

    fn until_connected(&mut self) {
        self.until("Connected", |e| *e == Seen::Connected);
    }

    /// A PING/PONG round trip: the server processed everything sent before.
    fn flush_round_trip(&mut self) -> Vec<Seen> {
        self.client.ping().unwrap();
        self.until("PONG", |e| *e == Seen::Pong)
    }

    /// The next message (skipping PONGs and INFOs).
    fn next_msg(&mut self) -> Seen {
        let seen = self.until("a message", |e| matches!(e, Seen::Msg { .. }));
        seen.last().unwrap().clone()
    }
}

fn msg(sid: Sid, subject: &str, payload: &[u8]) -> Seen {
    Seen::Msg {
        sid,
        subject: subject.into(),
        reply: None,
        headers: vec![],
        status: None,
        payload: payload.to_vec(),
    }
}

#[test]
fn connect_subscribe_publish_receive_with_headers_and_pings() {
    for target in TARGETS {
        let server = ServerUnderTest::start_target(target, &ServerOptions::default());
        let mut a = Shell::open(&server.addr(), Options::new().name("sensor-a"));
        let sid = a.client.subscribe(b"sensors.>", None).unwrap();
        a.until_connected();
        assert_eq!(a.client.status(), Status::Connected);
        assert!(a.client.server_headers());

        // Own publish, echoed back (the server's default).
        a.client
            .publish(b"sensors.7.temp", None, None, b"21.5")
            .unwrap();
        assert_eq!(
            a.next_msg(),
            msg(sid, "sensors.7.temp", b"21.5"),
            "{target:?}"
        );

        // A second client publishes with headers and a reply subject.
        let mut b = Shell::open(&server.addr(), Options::new().name("sensor-b"));
        b.until_connected();
        let mut block = [0u8; 64];
        let mut w = HeaderWriter::new(&mut block).unwrap();
        w.push(b"Nats-Msg-Id", b"b-1").unwrap();
        w.push(b"Unit", b"celsius").unwrap();
        let n = w.finish();
        b.client
            .publish(
                b"sensors.8.temp",
                Some(b"_INBOX.b"),
                Some(&block[..n]),
                b"19.0",
            )
            .unwrap();
        b.flush_round_trip();
        assert_eq!(
            a.next_msg(),
            Seen::Msg {
                sid,
                subject: "sensors.8.temp".into(),
                reply: Some("_INBOX.b".into()),
                headers: vec![
                    ("Nats-Msg-Id".into(), "b-1".into()),
                    ("Unit".into(), "celsius".into())
                ],
                status: None,
                payload: b"19.0".to_vec(),
            },
            "{target:?}"
        );

        // Request/reply through a queue group, and no responders.
        let svc = b.client.subscribe(b"svc.echo", Some(b"workers")).unwrap();
        b.flush_round_trip();
        let inbox = a.client.subscribe(b"_INBOX.a.*", None).unwrap();
        a.client
            .publish(b"svc.echo", Some(b"_INBOX.a.1"), None, b"ping?")
            .unwrap();
        a.flush();
        let req = b.next_msg();
        let Seen::Msg {
            sid: got, reply, ..
        } = &req
        else {
            unreachable!()
        };
        assert_eq!(*got, svc);
        b.client
            .publish(reply.as_ref().unwrap().as_bytes(), None, None, b"pong!")
            .unwrap();
        b.flush();
        assert_eq!(
            a.next_msg(),
            msg(inbox, "_INBOX.a.1", b"pong!"),
            "{target:?}"
        );
        a.client
            .publish(b"svc.nobody", Some(b"_INBOX.a.2"), None, b"?")
            .unwrap();
        let Seen::Msg {
            sid: got, status, ..
        } = a.next_msg()
        else {
            unreachable!()
        };
        assert_eq!(
            (got, status),
            (inbox, Some(503)),
            "no responders, {target:?}"
        );

        // Unsubscribe: nothing more arrives on that sid.
        a.client.unsubscribe(sid).unwrap();
        a.flush_round_trip();
        b.client.publish(b"sensors.9", None, None, b"x").unwrap();
        b.flush_round_trip();
        let seen = a.flush_round_trip();
        assert_eq!(seen, [Seen::Pong], "{target:?}");
    }
}

#[test]
fn keepalive_both_ways_keeps_the_session_alive() {
    for target in TARGETS {
        // The server PINGs every second and gives up after one unanswered PING.
        let opts = ServerOptions {
            ping_interval: Some(Duration::from_secs(1)),
            ping_max: Some(1),
            ..ServerOptions::default()
        };
        let server = ServerUnderTest::start_target(target, &opts);
        let mut c = Shell::open(&server.addr(), Options::new().ping_interval_ms(300));
        c.until_connected();
        // Our keepalive PINGs come back as PONGs; the server's PINGs are answered inside.
        let start = Instant::now();
        let mut pongs = 0;
        while start.elapsed() < Duration::from_millis(3500) {
            c.until("keepalive PONG", |e| *e == Seen::Pong);
            pongs += 1;
        }
        assert!(pongs >= 5, "{pongs} keepalive PONGs in 3.5 s, {target:?}");
        assert_eq!(c.client.status(), Status::Connected, "{target:?}");
    }
}

#[test]
fn credentials_are_checked_and_errors_surface() {
    for target in TARGETS {
        let opts = ServerOptions {
            user: Some("sensor".into()),
            pass: Some("s3cret".into()),
            max_payload: Some(1024),
            ..ServerOptions::default()
        };
        let server = ServerUnderTest::start_target(target, &opts);
        let mut good = Shell::open(
            &server.addr(),
            Options::new().user_password("sensor", "s3cret"),
        );
        good.until_connected();
        assert_eq!(good.client.server_max_payload(), 1024, "{target:?}");
        assert_eq!(
            good.client.publish(b"big", None, None, &[0; 1025]),
            Err(ClientError::MaxPayload)
        );

        let mut bad = Shell::open(
            &server.addr(),
            Options::new().user_password("sensor", "wrong"),
        );
        let seen = bad.until("the refusal", |e| matches!(e, Seen::Closed(_)));
        assert_eq!(
            seen.last(),
            Some(&Seen::Closed("Authorization Violation".into())),
            "{target:?}"
        );
        assert_eq!(bad.client.status(), Status::Closed);
    }
}

/// A device with its own nkey: the client signs each connection's nonce, against a server
/// whose config lists the device's public key (nats-server's nkey users; twig's the same).
#[test]
fn a_device_logs_in_with_its_nkey() {
    use twig_core::nkey::Signer;
    // Keys made by the nkeys library, as `nk -gen user` or nsc make them.
    let device = nkeys::KeyPair::new_user();
    let stranger = nkeys::KeyPair::new_user();
    let leak = |kp: &nkeys::KeyPair| -> &'static Signer {
        Box::leak(Box::new(Signer::from_seed(&kp.seed().unwrap()).unwrap()))
    };
    let (device_key, stranger_key) = (leak(&device), leak(&stranger));
    for target in TARGETS {
        let opts = ServerOptions {
            nkeys: vec![device.public_key()],
            ..ServerOptions::default()
        };
        let mut server = ServerUnderTest::start_target(target, &opts);
        let mut dev = Shell::open(
            &server.addr(),
            Options::new().name("dev-7").nkey(device_key),
        );
        let sid = dev.client.subscribe(b"cmd.dev-7", None).unwrap();
        dev.until_connected();
        dev.client.publish(b"cmd.dev-7", None, None, b"on").unwrap();
        assert_eq!(dev.next_msg(), msg(sid, "cmd.dev-7", b"on"), "{target:?}");

        // Someone else's key, correctly signed, is refused.
        let mut other = Shell::open(&server.addr(), Options::new().nkey(stranger_key));
        let seen = other.until("the refusal", |e| matches!(e, Seen::Closed(_)));
        assert_eq!(
            seen.last(),
            Some(&Seen::Closed("Authorization Violation".into())),
            "{target:?}"
        );

        // A restarted server sends a new nonce; the next connection signs that one.
        server.restart();
        dev.until("EOF", |e| *e == Seen::Eof);
        dev.drop_transport();
        dev.reconnect();
        dev.until_connected();
        dev.client
            .publish(b"cmd.dev-7", None, None, b"off")
            .unwrap();
        assert_eq!(dev.next_msg(), msg(sid, "cmd.dev-7", b"off"), "{target:?}");
    }
}

/// The firmware's case: each device logs in with its own nkey and gets its own rights. One
/// config in nats-server's format for both servers: a device may publish only its readings
/// and subscribe only to its commands; an operator reads every reading and commands any
/// device. The MCU client sees the servers' permission errors and stays connected.
#[test]
fn each_device_nkey_gets_its_own_permissions() {
    use twig_core::nkey::Signer;
    let keys = [nkeys::KeyPair::new_user(), nkeys::KeyPair::new_user()];
    let signers: Vec<&'static Signer> = keys
        .iter()
        .map(|kp| &*Box::leak(Box::new(Signer::from_seed(&kp.seed().unwrap()).unwrap())))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("devices.conf");
    let device = |i: usize, kp: &nkeys::KeyPair| {
        let n = i + 7;
        format!(
            "    {{ nkey: {}, permissions: {{ publish: [\"sensors.dev-{n}.>\"], \
             subscribe: {{ allow: [\"cmd.dev-{n}.>\"] }} }} }}\n",
            kp.public_key()
        )
    };
    let text = format!(
        "authorization {{\n  users: [\n{}{}    {{ user: ops, password: ops-pass, permissions: \
         {{ publish: [\"cmd.>\"], subscribe: [\"sensors.>\"] }} }}\n  ]\n}}\n",
        device(0, &keys[0]),
        device(1, &keys[1])
    );
    std::fs::write(&conf, text).unwrap();
    for target in TARGETS {
        let opts = ServerOptions {
            extra_args: vec!["-c".into(), conf.display().to_string()],
            ..ServerOptions::default()
        };
        let server = ServerUnderTest::start_target(target, &opts);
        let mut ops = Shell::open(
            &server.addr(),
            Options::new().user_password("ops", "ops-pass"),
        );
        let readings = ops.client.subscribe(b"sensors.>", None).unwrap();
        ops.until_connected();
        ops.flush_round_trip();

        let mut d7 = Shell::open(
            &server.addr(),
            Options::new().name("dev-7").nkey(signers[0]),
        );
        let mine = d7.client.subscribe(b"cmd.dev-7.>", None).unwrap();
        d7.client.subscribe(b"cmd.dev-8.>", None).unwrap();
        let mut seen = d7.until("Connected", |e| *e == Seen::Connected);
        seen.extend(d7.flush_round_trip());
        let refused =
            Seen::ServerError("Permissions Violation for Subscription to \"cmd.dev-8.>\"".into());
        assert!(seen.contains(&refused), "{target:?}: {seen:?}");
        let mut d8 = Shell::open(
            &server.addr(),
            Options::new().name("dev-8").nkey(signers[1]),
        );
        let d8_cmds = d8.client.subscribe(b"cmd.dev-8.>", None).unwrap();
        d8.until_connected();
        d8.flush_round_trip();

        // A reading of its own goes through; one under another device's name is refused and
        // never delivered; the connection stays up.
        d7.client
            .publish(b"sensors.dev-8.temp", None, None, b"forged")
            .unwrap();
        d7.client
            .publish(b"sensors.dev-7.temp", None, None, b"21.5")
            .unwrap();
        let seen = d7.flush_round_trip();
        let refused =
            Seen::ServerError("Permissions Violation for Publish to \"sensors.dev-8.temp\"".into());
        assert!(seen.contains(&refused), "{target:?}: {seen:?}");
        assert_eq!(d7.client.status(), Status::Connected, "{target:?}");
        assert_eq!(
            ops.next_msg(),
            msg(readings, "sensors.dev-7.temp", b"21.5"),
            "{target:?}"
        );

        // Commands reach only the device they name: dev-7's refused subscription gets none.
        ops.client
            .publish(b"cmd.dev-8.led", None, None, b"off")
            .unwrap();
        ops.client
            .publish(b"cmd.dev-7.led", None, None, b"on")
            .unwrap();
        ops.flush_round_trip();
        assert_eq!(
            d7.next_msg(),
            msg(mine, "cmd.dev-7.led", b"on"),
            "{target:?}"
        );
        assert_eq!(
            d8.next_msg(),
            msg(d8_cmds, "cmd.dev-8.led", b"off"),
            "{target:?}"
        );
        let after = d7.flush_round_trip();
        assert!(
            !after.iter().any(|e| matches!(e, Seen::Msg { .. })),
            "{target:?}: dev-7 got another device's command: {after:?}"
        );
    }
}

#[test]
fn a_restarted_server_gets_the_subscriptions_again() {
    for target in TARGETS {
        let mut server = ServerUnderTest::start_target(target, &ServerOptions::default());
        let mut c = Shell::open(&server.addr(), Options::new());
        let sid = c.client.subscribe(b"cmd.7", None).unwrap();
        c.until_connected();

        server.restart();
        c.until("EOF", |e| *e == Seen::Eof);
        c.drop_transport();
        assert_eq!(
            c.client.publish(b"x", None, None, b""),
            Err(ClientError::NotConnected)
        );
        c.reconnect();
        c.until_connected();

        let mut p = Shell::open(&server.addr(), Options::new());
        p.until_connected();
        p.client.publish(b"cmd.7", None, None, b"on").unwrap();
        p.flush_round_trip();
        assert_eq!(c.next_msg(), msg(sid, "cmd.7", b"on"), "{target:?}");
    }
}
