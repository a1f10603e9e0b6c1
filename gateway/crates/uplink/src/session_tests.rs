//! The handshake as a conversation with the INFO lines real hubs send (reference §2.3).
use super::*;
use twig_core::s2::mode::Mode as CMode;
use twig_core::wire::{Limits, Mode, Parser};

const INFO_215: &[u8] = br#"INFO {"server_id":"NCHUB","server_name":"hub1","version":"2.15.1","proto":3,"git_commit":"b2fd3ef","go":"go1.27.2","host":"127.0.0.1","port":27422,"headers":true,"auth_required":true,"max_payload":1048576,"jetstream":true,"ip":"127.0.0.1:27422","client_id":11,"nonce":"CtkhDUIjNwErRl4","domain":"hub","compression":"s2_auto","api_lvl":5,"info_on_connect":true,"leafnode_urls":["127.0.0.1:27422"]} "#;
const INFO_29: &[u8] = br#"INFO {"server_id":"NAHUB","server_name":"hub29","version":"2.9.10","proto":1,"go":"go1.19","host":"127.0.0.1","port":27422,"headers":true,"auth_required":true,"max_payload":1048576,"client_id":4,"nonce":"abcdefghijklmno","info_on_connect":true,"leafnode_urls":["127.0.0.1:27422"]} "#;
const CONNECT_INFO: &[u8] = br#"INFO {"server_id":"NCHUB","server_name":"hub1","version":"2.15.1","proto":3,"headers":true,"max_payload":1048576,"client_id":11,"connect_info":true,"remote_account":"$G","import":{"allow":["edge.>"]},"leafnode_urls":["127.0.0.1:27422","127.0.0.1:27423"]} "#;

fn cfg() -> SessionConfig {
    SessionConfig {
        version: "2.12.0".into(),
        twig_version: "0.1.0".into(),
        server_id: "NTWIG".into(),
        name: "edge1".into(),
        first_info_timeout: Duration::from_secs(1),
        ping_interval: Duration::from_secs(30),
        ping_max: 2,
        lds: "$LDS.abc".into(),
        deny_imports: Vec::new(),
        compression: Compression::mode(CMode::Off),
    }
}

/// Parses one line as the uplink's parser does and hands it to the session.
fn feed(s: &mut Session, now: Instant, line: &[u8]) -> Result<String, SessionError> {
    let mut buf = line.to_vec();
    buf.extend_from_slice(b"\r\n");
    let mut parser = Parser::new(Mode::Leaf, Limits::default().for_server_link());
    let (op, _) = parser.parse(&buf).unwrap().unwrap();
    Ok(match s.handle(now, op)? {
        Step::Nothing => "nothing".into(),
        Step::StartCompression { info, level } => {
            format!("compress {level:?} {}", String::from_utf8(info).unwrap())
        }
        Step::Send(b) | Step::SendAndConnected(b) => String::from_utf8(b).unwrap(),
        Step::SendStatic(b) => String::from_utf8_lossy(b).into_owned(),
        Step::Connected => "connected".into(),
        Step::Urls(u) => format!("urls {u:?}"),
        Step::Data(op) => format!("data {op:?}"),
    })
}

fn connect_json(line: &str) -> serde_json::Value {
    let json = line
        .strip_prefix("CONNECT ")
        .and_then(|l| l.strip_suffix("\r\n"))
        .unwrap();
    serde_json::from_str(json).unwrap()
}

#[test]
fn handshake_with_a_2_15_hub_declines_compression_and_waits_for_connect_info() {
    let t0 = Instant::now();
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let creds = Credentials::Nkey(nkeys::KeyPair::from_seed(&seed).unwrap());
    let mut s = Session::new(cfg(), creds, t0);
    assert_eq!(s.poll_at(), t0 + Duration::from_secs(1));
    let line = feed(&mut s, t0, INFO_215).unwrap();
    let c = connect_json(&line);
    assert_eq!(c["compress_mode"], "off");
    assert_eq!(c["headers"], true);
    assert_eq!(c["name"], "edge1");
    assert_eq!(c["cluster"], "edge1");
    assert_eq!(c["remote_account"], "$G");
    assert_eq!(c["version"], "2.12.0");
    assert_eq!(c["twig_version"], "0.1.0");
    assert!(c.get("lang").is_none() && c.get("is_hub").is_none());
    assert!(c.get("hub").is_none() && c.get("compression").is_none());
    // The nonce is signed with the nkey.
    assert_eq!(c["nkey"], user.public_key());
    let sig = data_encoding::BASE64URL_NOPAD
        .decode(c["sig"].as_str().unwrap().as_bytes())
        .unwrap();
    user.verify(b"CtkhDUIjNwErRl4", &sig).unwrap();
    assert_eq!(s.phase(), Phase::AwaitConnectInfo);
    // A PING before the confirmation is answered; data is not allowed yet.
    assert_eq!(feed(&mut s, t0, b"PING").unwrap(), "PONG\r\n");
    assert!(feed(&mut s, t0, b"LS+ foo").is_err());
}

#[test]
fn connect_info_brings_the_account_permissions_and_urls() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), Credentials::None, t0);
    feed(&mut s, t0, INFO_215).unwrap();
    assert_eq!(feed(&mut s, t0, CONNECT_INFO).unwrap(), "connected");
    assert_eq!(s.phase(), Phase::Connected);
    let hub = s.hub();
    assert_eq!(hub.account.as_deref(), Some("$G"));
    assert_eq!(
        hub.import.as_ref().unwrap().allow.as_deref(),
        Some(&["edge.>".to_string()][..])
    );
    assert_eq!(hub.info.leafnode_urls.as_ref().unwrap().len(), 2);
    assert_eq!(hub.info.server_name, "hub1");
    let buf = b"LS+ orders.new workers 2\r\n".to_vec();
    let mut parser = Parser::new(Mode::Leaf, Limits::default());
    let (op, _) = parser.parse(&buf).unwrap().unwrap();
    match s.handle(t0, op).unwrap() {
        Step::Data(Op::LsPlus { subject, queue }) => {
            assert_eq!(subject, b"orders.new");
            assert_eq!(queue, Some((&b"workers"[..], 2)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_2_9_hub_without_compression_gets_not_supported() {
    let t0 = Instant::now();
    let mut s = Session::new(
        cfg(),
        Credentials::UserPass {
            user: "leaf".into(),
            pass: Some("secret".into()),
        },
        t0,
    );
    let c = connect_json(&feed(&mut s, t0, INFO_29).unwrap());
    assert_eq!(c["compress_mode"], "not supported");
    assert_eq!(
        (c["user"].as_str(), c["pass"].as_str()),
        (Some("leaf"), Some("secret"))
    );
}

#[test]
fn a_client_port_is_the_wrong_port() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), Credentials::None, t0);
    let client_info = br#"INFO {"server_id":"N","version":"2.15.1","proto":1,"host":"h","port":4222,"headers":true,"max_payload":1048576,"client_id":5}"#;
    assert_eq!(feed(&mut s, t0, client_info), Err(SessionError::WrongPort));
    // A route port's INFO has leafnode_urls but no client_id.
    let mut s = Session::new(cfg(), Credentials::None, t0);
    let route_info = br#"INFO {"server_id":"N","leafnode_urls":["h:1"]}"#;
    assert_eq!(feed(&mut s, t0, route_info), Err(SessionError::WrongPort));
}

#[test]
fn the_hubs_err_text_is_the_error() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), Credentials::None, t0);
    feed(&mut s, t0, INFO_215).unwrap();
    let e = feed(&mut s, t0, b"-ERR 'Authorization Violation'").unwrap_err();
    assert_eq!(e, SessionError::Hub("Authorization Violation".into()));
    assert_eq!(e.to_string(), "hub said -ERR 'Authorization Violation'");
}

#[test]
fn timeouts_for_info_and_for_the_confirmation() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), Credentials::None, t0);
    assert!(matches!(
        s.poll(t0 + Duration::from_millis(999)),
        Ok(Step::Nothing)
    ));
    assert_eq!(
        s.poll(t0 + Duration::from_secs(1)).unwrap_err(),
        SessionError::InfoTimeout(Duration::from_secs(1))
    );
    let mut s = Session::new(cfg(), Credentials::None, t0);
    feed(&mut s, t0, INFO_215).unwrap();
    assert_eq!(s.poll_at(), t0 + CONNECT_INFO_TIMEOUT);
    assert!(matches!(
        s.poll(t0 + CONNECT_INFO_TIMEOUT),
        Err(SessionError::ConnectTimeout(_))
    ));
}

#[test]
fn keepalive_pings_and_goes_stale_only_when_nothing_is_heard() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), Credentials::None, t0);
    feed(&mut s, t0, INFO_215).unwrap();
    feed(&mut s, t0, CONNECT_INFO).unwrap();
    // First PING after a second (RTT), then every ping_interval.
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(s.poll_at(), t1);
    assert!(matches!(s.poll(t1), Ok(Step::SendStatic(b"PING\r\n"))));
    let t2 = t1 + Duration::from_secs(30);
    assert!(matches!(s.poll(t2), Ok(Step::SendStatic(b"PING\r\n"))));
    // A message from the hub (a PONG stuck behind it does not matter) keeps the link alive.
    feed(&mut s, t2, b"LMSG foo 2\r\nhi").unwrap();
    let t3 = t2 + Duration::from_secs(30);
    assert!(matches!(s.poll(t3), Ok(Step::SendStatic(_))));
    let t4 = t3 + Duration::from_secs(30);
    assert!(matches!(s.poll(t4), Ok(Step::SendStatic(_))));
    // Two PINGs out and silence: stale.
    let t5 = t4 + Duration::from_secs(30);
    assert_eq!(s.poll(t5).unwrap_err(), SessionError::Stale);
    // The PONG measures RTT.
    let mut s = Session::new(cfg(), Credentials::None, t0);
    feed(&mut s, t0, INFO_215).unwrap();
    feed(&mut s, t0, CONNECT_INFO).unwrap();
    s.poll(t1).unwrap();
    feed(&mut s, t1 + Duration::from_millis(7), b"PONG").unwrap();
    assert_eq!(s.rtt(), Some(Duration::from_millis(7)));
}

#[test]
fn own_lds_subject_coming_back_is_a_loop() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(), Credentials::None, t0);
    feed(&mut s, t0, INFO_215).unwrap();
    feed(&mut s, t0, CONNECT_INFO).unwrap();
    assert!(feed(&mut s, t0, b"LS+ $LDS.other").is_ok());
    assert_eq!(feed(&mut s, t0, b"LS+ $LDS.abc"), Err(SessionError::Loop));
}

fn with_compression(mode: CMode) -> SessionConfig {
    SessionConfig {
        compression: Compression::mode(mode),
        ..cfg()
    }
}

fn info_json(step: &str) -> serde_json::Value {
    let json = step
        .split_once("INFO ")
        .and_then(|(_, j)| j.strip_suffix("\r\n"))
        .unwrap();
    serde_json::from_str(json).unwrap()
}

#[test]
fn s2_auto_starts_at_the_level_of_the_time_to_the_hubs_info() {
    for (ms, level, mode) in [
        (3, "Uncompressed", "s2_uncompressed"),
        (30, "Fast", "s2_fast"),
        (80, "Better", "s2_better"),
        (300, "Best", "s2_best"),
    ] {
        let t0 = Instant::now();
        let user = nkeys::KeyPair::new_user();
        let creds = Credentials::Nkey(nkeys::KeyPair::from_seed(&user.seed().unwrap()).unwrap());
        let mut s = Session::new(with_compression(CMode::Auto), creds, t0);
        let t1 = t0 + Duration::from_millis(ms);
        let step = feed(&mut s, t1, INFO_215).unwrap();
        assert!(
            step.starts_with(&format!("compress {level} INFO ")),
            "{step}"
        );
        // twig's INFO: what a nats-server leaf without a leafnode listener sends.
        let i = info_json(&step);
        assert_eq!(i["compression"], "s2_auto");
        assert_eq!(i["client_id"], 1);
        assert_eq!(i["name"], "edge1");
        assert_eq!(s.phase(), Phase::AwaitCompressedInfo);
        assert_eq!(s.level().map(|l| format!("{l:?}")).as_deref(), Some(level));
        // Data before the compressed INFO is a violation; the INFO brings CONNECT.
        let c = connect_json(&feed(&mut s, t1, INFO_215).unwrap());
        assert_eq!(c["compress_mode"], mode);
        assert_eq!(s.hub().compression.as_str(), mode);
        let sig = data_encoding::BASE64URL_NOPAD
            .decode(c["sig"].as_str().unwrap().as_bytes())
            .unwrap();
        user.verify(b"CtkhDUIjNwErRl4", &sig).unwrap();
        assert_eq!(s.phase(), Phase::AwaitConnectInfo);
    }
}

#[test]
fn a_fixed_mode_is_announced_as_itself_and_keeps_its_level() {
    let t0 = Instant::now();
    let mut s = Session::new(with_compression(CMode::Best), Credentials::None, t0);
    let step = feed(&mut s, t0, INFO_215).unwrap();
    assert!(step.starts_with("compress Best INFO "), "{step}");
    assert_eq!(info_json(&step)["compression"], "s2_best");
    let c = connect_json(&feed(&mut s, t0, INFO_215).unwrap());
    assert_eq!(c["compress_mode"], "s2_best");
    feed(&mut s, t0, CONNECT_INFO).unwrap();
    let t1 = t0 + Duration::from_secs(1);
    s.poll(t1).unwrap();
    feed(&mut s, t1 + Duration::from_millis(1), b"PONG").unwrap();
    assert_eq!(s.level(), Some(Level::Best));
}

#[test]
fn s2_auto_follows_the_rtt_of_each_pong() {
    let t0 = Instant::now();
    let mut s = Session::new(with_compression(CMode::Auto), Credentials::None, t0);
    feed(&mut s, t0, INFO_215).unwrap();
    feed(&mut s, t0, INFO_215).unwrap();
    feed(&mut s, t0, CONNECT_INFO).unwrap();
    assert_eq!(s.level(), Some(Level::Uncompressed));
    let mut t = t0 + Duration::from_secs(1);
    for (rtt, level) in [
        (200, Level::Best),
        (40, Level::Fast),
        (60, Level::Better),
        (2, Level::Uncompressed),
    ] {
        assert!(matches!(s.poll(t), Ok(Step::SendStatic(b"PING\r\n"))));
        feed(&mut s, t + Duration::from_millis(rtt), b"PONG").unwrap();
        assert_eq!(s.level(), Some(level), "rtt {rtt} ms");
        t += Duration::from_secs(30);
    }
}

#[test]
fn no_compression_when_either_side_does_not_want_it() {
    let t0 = Instant::now();
    // A 2.9 hub offers nothing: plain CONNECT, "not supported", as before 2.10.
    let mut s = Session::new(with_compression(CMode::Auto), Credentials::None, t0);
    let c = connect_json(&feed(&mut s, t0, INFO_29).unwrap());
    assert_eq!(c["compress_mode"], "not supported");
    assert_eq!(s.level(), None);
    // A hub configured off.
    let off = String::from_utf8(INFO_215.to_vec())
        .unwrap()
        .replace("\"s2_auto\"", "\"off\"");
    let mut s = Session::new(with_compression(CMode::Best), Credentials::None, t0);
    let c = connect_json(&feed(&mut s, t0, off.as_bytes()).unwrap());
    assert_eq!(c["compress_mode"], "off");
    // Both accept: off.
    let accept = off.replace("\"off\"", "\"accept\"");
    let mut s = Session::new(with_compression(CMode::Accept), Credentials::None, t0);
    let c = connect_json(&feed(&mut s, t0, accept.as_bytes()).unwrap());
    assert_eq!(c["compress_mode"], "off");
    // A mode nobody knows.
    let odd = off.replace("\"off\"", "\"zstd\"");
    let mut s = Session::new(with_compression(CMode::Auto), Credentials::None, t0);
    let e = feed(&mut s, t0, odd.as_bytes()).unwrap_err();
    assert_eq!(e, SessionError::UnknownCompression("zstd".into()));
}

#[test]
fn the_compressed_info_has_a_deadline() {
    let t0 = Instant::now();
    let mut s = Session::new(with_compression(CMode::Fast), Credentials::None, t0);
    feed(&mut s, t0, INFO_215).unwrap();
    assert_eq!(s.poll_at(), t0 + CONNECT_INFO_TIMEOUT);
    assert_eq!(
        s.poll(t0 + CONNECT_INFO_TIMEOUT).unwrap_err(),
        SessionError::CompressedInfoTimeout(CONNECT_INFO_TIMEOUT)
    );
    let mut s = Session::new(with_compression(CMode::Fast), Credentials::None, t0);
    feed(&mut s, t0, INFO_215).unwrap();
    assert!(feed(&mut s, t0, b"PING").is_err());
}
