//! MQTT devices log in with bcrypt password hashes (`$2a$`/`$2b$`, as in `[authorization]` for
//! NATS clients), and those checks do not hold up the event loop: they run on blocking
//! threads, `authorization.max_bcrypt_checks` at once, shared with the NATS clients' logins.

#[path = "common/uplink.rs"]
mod common;
#[path = "common/mqtt.rs"]
mod mqtt;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use mqtt::*;
use twig_tests::harness::free_port;
use twig_tests::harness::raw::{RawConn, ReadEnd};

/// Slow logins started at once.
const SLOW_LOGINS: usize = 10;
const DEADLINE: Duration = Duration::from_secs(10);

/// An MQTT 3.1.1 CONNECT with a user name and password.
fn connect_packet(client_id: &str, user: &str, pass: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60];
    for s in [client_id, user, pass] {
        body.extend_from_slice(&u16::try_from(s.len()).unwrap().to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    let mut p = vec![0x10, u8::try_from(body.len()).unwrap()];
    p.extend(body);
    p
}

/// Connects and returns the CONNACK's return code.
fn mqtt_login(port: u16, client_id: &str, user: &str, pass: &str) -> u8 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&connect_packet(client_id, user, pass)).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack[..2], [0x20, 2], "a CONNACK");
    ack[3]
}

#[test]
fn bcrypt_logins_of_devices_do_not_hold_up_other_connections() {
    let dir = tempfile::tempdir().unwrap();
    // Cost 12: a few hundred milliseconds per check. One executor thread: a check run on it
    // would stop everything else.
    let hash = bcrypt::hash("slow-pass", 12).unwrap();
    let auth = format!(
        "threads = 1\n[authorization]\nusers = [ {{ user = \"app\", password = \"{hash}\" }}, \
         {{ user = \"ops\", password = \"ops-plain\" }} ]\n"
    );
    let twig = twig_mqtt(dir.path(), free_port(), &auth, "");
    let port = mqtt_port_of(&twig);
    // A wrong password against the hash is refused as a plain one is (3.1.1 code 4).
    assert_eq!(mqtt_login(port, "wrong", "app", "guess"), 4);

    let mut fast = RawConn::connect(&twig.sut.addr());
    fast.read_info(DEADLINE);
    fast.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"ops\",\"pass\":\"ops-plain\"}\r\n");
    assert_eq!(
        fast.ping_pong(DEADLINE),
        ReadEnd::Matched,
        "{}",
        fast.text()
    );

    let (tx, rx) = mpsc::channel();
    let slow: Vec<_> = (0..SLOW_LOGINS)
        .map(|i| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let code = mqtt_login(port, &format!("dev-{i}"), "app", "slow-pass");
                let _ = tx.send(code);
                code
            })
        })
        .collect();
    drop(tx);
    // Once the first slow login is decided, every CONNECT has long been read and the others
    // are being checked or wait their turn (2 at a time).
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no slow login finished");
    assert_eq!(first, 0, "a slow login was refused");
    assert_eq!(
        fast.ping_pong(DEADLINE),
        ReadEnd::Matched,
        "{}",
        fast.text()
    );
    let done_by_pong = 1 + rx.try_iter().count();
    for t in slow {
        assert_eq!(t.join().unwrap(), 0, "a slow login failed");
    }
    assert!(
        done_by_pong <= SLOW_LOGINS / 2,
        "the PING of a connected client was answered only after {done_by_pong} of \
         {SLOW_LOGINS} bcrypt logins of MQTT devices were decided"
    );
}
