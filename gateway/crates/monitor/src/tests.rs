//! The monitoring server on a real loopback port, asked with raw HTTP by a plain TcpStream.
use super::*;
use std::net::SocketAddr;
use std::time::SystemTime;
use twig_config::Config;

/// A server with two clients, one of them subscribed to two subjects.
struct Fake;

impl MonitorSource for Fake {
    fn varz(&self) -> Varz {
        let mut v = Varz::new(&Config::default(), "NFAKE", 4222, 8222, SystemTime::now());
        v.connections = 2;
        v.in_msgs = 10;
        v
    }
    fn connz(&self, query: &ConnzQuery) -> Connz {
        let now = SystemTime::now();
        let addr: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let mut a = ConnInfo::new(1, addr, now);
        a.subscriptions = 2;
        a.subscriptions_list = vec!["foo".into(), "bar.>".into()];
        a.lang = "rust".into();
        let b = ConnInfo::new(2, addr, now);
        Connz::build("NFAKE", now, vec![a, b], query)
    }
    fn healthz(&self) -> Healthz {
        Healthz::ok()
    }
    fn leafz(&self, subs: bool) -> Leafz {
        let leaf = LeafInfo {
            name: "hub1".into(),
            is_spoke: true,
            account: "$G".into(),
            ip: "127.0.0.1".into(),
            port: 7422,
            rtt: "1ms".into(),
            in_msgs: 3,
            out_msgs: 4,
            in_bytes: 30,
            out_bytes: 40,
            subscriptions: 1,
            subscriptions_list: subs.then(|| vec!["cloud.>".into()]),
            compression: "off".into(),
        };
        Leafz {
            server_id: "NFAKE".into(),
            now: SystemTime::now(),
            leafnodes: 1,
            leafs: vec![leaf],
            remotes: Vec::new(),
        }
    }
    fn healthz_leafnodes(&self) -> Healthz {
        Healthz::unavailable("leafnode remote 1 (127.0.0.1:7423) is not connected")
    }
}

/// Runs the monitor with `options` while `client` talks to it.
fn with_monitor<T>(options: ServeOptions, client: impl FnOnce(SocketAddr) -> T) -> T {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let stopped = async {
            while stop_rx.try_recv().is_err() {
                Timer::after(Duration::from_millis(10)).await;
            }
        };
        smol::block_on(future::or(
            serve_with(listener, Arc::new(Fake), options),
            stopped,
        ));
    });
    let out = client(addr);
    stop_tx.send(()).unwrap();
    server.join().unwrap();
    out
}

/// Sends `request` as is and returns (status code, headers, body).
fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect(&raw);
    let status = head.get(9..12).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

#[test]
fn every_path_answers_like_nats_server() {
    with_monitor(ServeOptions::default(), |addr| {
        let (status, head, body) = get(addr, "/varz");
        assert_eq!(status, 200);
        assert!(head.contains("Content-Type: application/json"), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert!(body.starts_with("{\n  \"server_id\": \"NFAKE\""), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["connections"], 2);
        assert_eq!(v["max_payload"], 1_048_576);

        let (status, _, body) = get(addr, "/connz?subs=1");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["num_connections"], 2);
        assert_eq!(v["connections"][0]["subscriptions_list"][1], "bar.>");
        assert_eq!(v["connections"][0]["lang"], "rust");

        let (_, _, body) = get(addr, "/connz?limit=1&offset=1");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["total"].as_u64(), v["num_connections"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(v["connections"][0]["cid"], 2);
        assert!(v["connections"][0].get("subscriptions_list").is_none());

        assert_eq!(
            get(addr, "/healthz"),
            (200, get(addr, "/healthz").1, "{\"status\":\"ok\"}".into())
        );

        let (status, head, body) = get(addr, "/metrics");
        assert_eq!(status, 200);
        assert!(head.contains("text/plain; version=0.0.4"), "{head}");
        assert!(body.contains("\ntwig_in_msgs_total 10\n"), "{body}");
        assert!(
            body.contains("# TYPE twig_connections gauge\ntwig_connections 2\n"),
            "{body}"
        );

        let (status, _, body) = get(addr, "/leafz?subs=1");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["leafnodes"], 1);
        assert_eq!(v["leafs"][0]["subscriptions_list"][0], "cloud.>");
        assert_eq!(v["leafs"][0]["is_spoke"], true);
        let (_, _, body) = get(addr, "/leafz");
        assert!(!body.contains("subscriptions_list"), "{body}");
        let (status, _, body) = get(addr, "/healthz?leafnodes=true");
        assert_eq!(status, 503);
        assert!(body.contains("not connected"), "{body}");

        assert_eq!(get(addr, "/varz/").0, 200);
        assert_eq!(get(addr, "/").0, 200);
    });
}

#[test]
fn errors_are_plain_http() {
    with_monitor(ServeOptions::default(), |addr| {
        let (status, _, body) = get(addr, "/nope");
        assert_eq!((status, body.as_str()), (404, "404 page not found\n"));

        let (status, _, body) = get(addr, "/connz?sort=bogus");
        assert_eq!(
            (status, body.as_str()),
            (400, "invalid sorting option: bogus\n")
        );

        let (status, head, _) =
            exchange(addr, b"POST /varz HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!(status, 405);
        assert!(head.contains("Allow: GET"), "{head}");

        assert_eq!(exchange(addr, b"GARBAGE\r\n\r\n").0, 400);
        assert_eq!(exchange(addr, b"GET /varz SPDY/3\r\n\r\n").0, 400);

        // A head over 8 KiB is refused, whether or not it ever ends.
        let mut big = b"GET /varz HTTP/1.1\r\nX-Pad: ".to_vec();
        big.resize(9000, b'a');
        let mut ended = big.clone();
        ended.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exchange(addr, &ended).0, 431);
        assert_eq!(exchange(addr, &big).0, 431);
    });
}

#[test]
fn a_silent_client_is_dropped_and_one_too_many_gets_503() {
    let options = ServeOptions {
        max_connections: 1,
        timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    with_monitor(options, |addr| {
        use std::io::Read;
        // Takes the only slot and says nothing (accepted first: the backlog is FIFO).
        let mut silent = std::net::TcpStream::connect(addr).unwrap();
        // One more is told at once rather than left waiting.
        let (status, _, body) = get(addr, "/healthz");
        assert_eq!(
            (status, body.as_str()),
            (503, "too many monitoring connections\n")
        );
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        assert_eq!(
            silent.read_to_end(&mut rest).unwrap(),
            0,
            "closed without a word"
        );
        // The slot is free again.
        assert_eq!(get(addr, "/healthz").0, 200);
    });
}
