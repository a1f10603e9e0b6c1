//! INFO/CONNECT bodies captured from real peers, read and written back.
//!
//! Captured on loopback through a logging proxy: nats-server 2.15.1 (`/tmp/nsb`) and 2.9.10
//! (Debian bookworm's package) as hub and as leaf (remote with a user `leafu`, password `p&ss`,
//! `deny_imports: ["x.>"]`, hub permissions publish `up.>` minus `up.secret`, subscribe `down.>`),
//! and nats-py 2.x as a client. Each body is as it followed `INFO `/`CONNECT ` on the wire,
//! including the space nats-server puts before CRLF.

use super::*;

const INFO_CLIENT_2_15: &str = r#"{"server_id":"NBDPKEH275RU44JY5KFUQDTRN6NBJVS6XZFX6QPREP3GHIVYKNXC3DQL","server_name":"hub1","version":"2.15.1","proto":1,"git_commit":"b2fd3ef","go":"go1.27.2","host":"127.0.0.1","port":42169,"headers":true,"max_payload":1048576,"jetstream":true,"client_id":6,"client_ip":"127.0.0.1","domain":"hub","api_lvl":5,"xkey":"XDL3X3TCITJIME4FGSWOW7EX2KIKA7YZIAR3H3IOJCSV7FKXHBLQPMKD"} "#;
/// The second INFO, after the first PING of a `protocol:1` client authenticated into account A.
const INFO_CLIENT_CONNECT_INFO_2_15: &str = r#"{"server_id":"NATMEW3YOPRIPT6YU2XZ2DNGQV2MACVCJ45VTQCDZ4STFIXWZYGAAOUI","server_name":"hub1","version":"2.15.1","proto":1,"git_commit":"b2fd3ef","go":"go1.27.2","host":"127.0.0.1","port":52479,"headers":true,"auth_required":true,"max_payload":1048576,"jetstream":true,"client_id":7,"client_ip":"127.0.0.1","domain":"hub","connect_info":true,"remote_account":"A","api_lvl":5,"xkey":"XAJBQ5MDJ632LMM2CFKKKWICPVNKSTW62KZ26FX2X3VVLMZIMUWBDCQG"} "#;
const INFO_LEAF_2_15: &str = r#"{"server_id":"NBDPKEH275RU44JY5KFUQDTRN6NBJVS6XZFX6QPREP3GHIVYKNXC3DQL","server_name":"hub1","version":"2.15.1","proto":3,"git_commit":"b2fd3ef","go":"go1.27.2","host":"127.0.0.1","port":36847,"headers":true,"auth_required":true,"max_payload":1048576,"jetstream":true,"ip":"127.0.0.1:36847","client_id":7,"nonce":"a6bSSvm_aWbHXlE","domain":"hub","compression":"s2_auto","api_lvl":5,"info_on_connect":true,"leafnode_urls":["127.0.0.1:36847"]} "#;
/// The hub's answer to a leaf CONNECT: permissions, with Go's `\u003e` for `>`.
const INFO_LEAF_CONNECT_INFO_2_15: &str = r#"{"server_id":"NATMEW3YOPRIPT6YU2XZ2DNGQV2MACVCJ45VTQCDZ4STFIXWZYGAAOUI","server_name":"hub1","version":"2.15.1","proto":3,"git_commit":"b2fd3ef","go":"go1.27.2","host":"127.0.0.1","port":40571,"headers":true,"auth_required":true,"max_payload":1048576,"jetstream":true,"ip":"127.0.0.1:40571","client_id":9,"domain":"hub","connect_info":true,"remote_account":"A","api_lvl":5,"import":{"allow":["down.\u003e"]},"export":{"allow":["up.\u003e"],"deny":["up.secret"]},"info_on_connect":true,"leafnode_urls":["127.0.0.1:40571"]} "#;
const INFO_CLIENT_2_9: &str = r#"{"server_id":"NBKCDQZ6V6TSSXS7WST6FYEEIEFI2FH2KJUZ6OWEPSTX6AQMYR7ZJUZI","server_name":"hub1","version":"2.9.10","proto":1,"go":"go1.19.8","host":"127.0.0.1","port":55169,"headers":true,"max_payload":1048576,"jetstream":true,"client_id":5,"client_ip":"127.0.0.1","domain":"hub"} "#;
const INFO_LEAF_2_9: &str = r#"{"server_id":"NBKCDQZ6V6TSSXS7WST6FYEEIEFI2FH2KJUZ6OWEPSTX6AQMYR7ZJUZI","server_name":"hub1","version":"2.9.10","proto":1,"go":"go1.19.8","host":"127.0.0.1","port":42937,"headers":true,"auth_required":true,"max_payload":1048576,"jetstream":true,"ip":"127.0.0.1:42937","client_id":6,"nonce":"Zlaq_BlrSDmpBKw","domain":"hub","info_on_connect":true,"leafnode_urls":["127.0.0.1:42937"]} "#;
/// 2.9 orders this INFO differently (`connect_info` after `info_on_connect`, `remote_account` last).
const INFO_LEAF_CONNECT_INFO_2_9: &str = r#"{"server_id":"NCRJ62CWWLTUC3WTBQXLKGOJKY7FNDA7N45O37HPYBDT5KXNUPYGECDY","server_name":"hub1","version":"2.9.10","proto":1,"go":"go1.19.8","host":"127.0.0.1","port":36455,"headers":true,"auth_required":true,"max_payload":1048576,"jetstream":true,"ip":"127.0.0.1:36455","client_id":8,"domain":"hub","import":{"allow":["down.\u003e"]},"export":{"allow":["up.\u003e"],"deny":["up.secret"]},"info_on_connect":true,"connect_info":true,"leafnode_urls":["127.0.0.1:36455"],"remote_account":"A"} "#;

const LEAF_CONNECT_2_15: &str = r#"{"version":"2.15.1","user":"leafu","pass":"p\u0026ss","server_id":"NAEPJFIOOUDX76EJRTVEJ2DTG5PIC4RQOGNO4I5CEHA3T77E3VJ473K2","domain":"leaf","name":"leaf1","cluster":"leaf1","headers":true,"jetstream":true,"deny_pub":["x.\u003e"],"compress_mode":"off","remote_account":"$G","protocol":3}"#;
/// From the reference (§2.4): a leaf without credentials that chose S2.
const LEAF_CONNECT_2_15_REFERENCE: &str = r#"{"version":"2.15.1","server_id":"NB","domain":"leaf","name":"leaf1","cluster":"leaf1","headers":true,"jetstream":true,"compress_mode":"s2_uncompressed","remote_account":"$G","protocol":3}"#;
const LEAF_CONNECT_2_9: &str = r#"{"version":"2.9.10","user":"leafu","pass":"p\u0026ss","tls_required":false,"server_id":"NCWMD2PY2KU4Q7DUHSX7TEQ6FQOCXNBILX5S22KOC2EVIXUM6JSTKLIQ","domain":"leaf","name":"leaf1","cluster":"leaf1","headers":true,"jetstream":true,"deny_pub":["x.\u003e"]}"#;

/// nats-py: `json.dumps(sort_keys=True)`, so spaces after `:` and `,` and keys sorted.
const CONNECT_NATS_PY: &str = r#"{"echo": true, "headers": true, "lang": "python3", "name": "cap", "no_responders": true, "pedantic": false, "protocol": 1, "verbose": false, "version": "2.16.0"}"#;
/// async-nats 0.51 `ConnectInfo` as serde writes it: unset options become `null`.
const CONNECT_ASYNC_NATS: &str = r#"{"verbose":false,"pedantic":false,"jwt":null,"nkey":null,"sig":null,"name":null,"echo":true,"lang":"rust","version":"0.51.0","protocol":1,"tls_required":false,"user":"alice","pass":null,"auth_token":null,"headers":true,"no_responders":true}"#;

const ALL_INFOS: [&str; 7] = [
    INFO_CLIENT_2_15,
    INFO_CLIENT_CONNECT_INFO_2_15,
    INFO_LEAF_2_15,
    INFO_LEAF_CONNECT_INFO_2_15,
    INFO_CLIENT_2_9,
    INFO_LEAF_2_9,
    INFO_LEAF_CONNECT_INFO_2_9,
];
const ALL_CONNECTS: [&str; 5] = [
    LEAF_CONNECT_2_15,
    LEAF_CONNECT_2_15_REFERENCE,
    LEAF_CONNECT_2_9,
    CONNECT_NATS_PY,
    CONNECT_ASYNC_NATS,
];

fn info(json: &str) -> ServerInfo<'_> {
    ServerInfo::parse(json.as_bytes()).expect("a real INFO parses")
}

/// Writes with `write` into a buffer and returns the text.
fn written(out: &mut [u8], write: impl FnOnce(&mut [u8]) -> Result<usize, JsonError>) -> &str {
    let n = write(out).expect("fits");
    core::str::from_utf8(&out[..n]).expect("utf8")
}

#[test]
fn an_mcu_reads_the_2_15_client_info() {
    let i = info(INFO_CLIENT_2_15);
    assert_eq!(
        i.server_id,
        "NBDPKEH275RU44JY5KFUQDTRN6NBJVS6XZFX6QPREP3GHIVYKNXC3DQL"
    );
    assert_eq!(i.server_name.as_str(), Some("hub1"));
    assert_eq!(i.version, "2.15.1");
    assert_eq!((i.proto, i.port, i.max_payload), (1, 42169, 1_048_576));
    assert!(i.headers && i.jetstream && !i.auth_required && !i.tls_required);
    assert_eq!(i.client_id, 6);
    assert_eq!(i.client_ip, Some("127.0.0.1".into()));
    assert_eq!(i.domain, Some("hub".into()));
    // The rest are leafnode fields (feature `leaf`), which an MCU build leaves out.
    #[cfg(feature = "leaf")]
    assert_eq!(i.api_lvl, 5);
    #[cfg(feature = "leaf")]
    assert_eq!(
        i.xkey,
        Some("XDL3X3TCITJIME4FGSWOW7EX2KIKA7YZIAR3H3IOJCSV7FKXHBLQPMKD".into())
    );
    assert_eq!(i.nonce, None);
    #[cfg(feature = "leaf")]
    assert!(!i.connect_info && i.leafnode_urls.is_none());
}

#[cfg(feature = "leaf")]
#[test]
fn the_second_client_info_names_the_account() {
    let i = info(INFO_CLIENT_CONNECT_INFO_2_15);
    assert!(i.connect_info && i.auth_required);
    assert_eq!(i.remote_account, Some("A".into()));
    assert!(!i.acc_is_sys);
}

#[cfg(feature = "leaf")]
#[test]
fn a_leaf_reads_the_hub_info_on_the_leafnode_port() {
    let i = info(INFO_LEAF_2_15);
    assert_eq!(i.proto, 3);
    assert!(i.auth_required && i.info_on_connect);
    assert_eq!(i.nonce, Some("a6bSSvm_aWbHXlE".into()));
    assert_eq!(i.ip, Some("127.0.0.1:36847".into()));
    assert_eq!(i.compression, Some("s2_auto".into()));
    let urls = i.leafnode_urls.expect("a hub INFO lists leafnode_urls");
    assert_eq!(urls, StrList::new(&["127.0.0.1:36847"]));

    let old = info(INFO_LEAF_2_9);
    assert_eq!((old.proto, old.compression, old.api_lvl), (1, None, 0));
    assert_eq!(old.git_commit, None);
    assert!(old.leafnode_urls.is_some());
}

#[cfg(feature = "leaf")]
#[test]
fn leaf_permissions_arrive_escaped_and_compare_decoded() {
    for json in [INFO_LEAF_CONNECT_INFO_2_15, INFO_LEAF_CONNECT_INFO_2_9] {
        let i = info(json);
        assert!(i.connect_info && i.info_on_connect);
        assert_eq!(i.remote_account, Some("A".into()));
        let import = i.import.expect("import");
        assert_eq!(import.allow, Some(StrList::new(&["down.>"])));
        assert_eq!(import.deny, None);
        let export = i.export.expect("export");
        assert_eq!(export.allow, Some(StrList::new(&["up.>"])));
        assert_eq!(export.deny, Some(StrList::new(&["up.secret"])));
        let first = export.allow.and_then(|l| l.iter().next()).expect("one");
        assert!(first.has_escapes());
        let mut buf = [0u8; 8];
        assert_eq!(first.unescape_into(&mut buf), Ok("up.>"));
    }
}

#[cfg(feature = "leaf")]
#[test]
fn a_2_15_info_is_written_back_byte_for_byte() {
    for json in [
        INFO_CLIENT_2_15,
        INFO_CLIENT_CONNECT_INFO_2_15,
        INFO_LEAF_2_15,
        INFO_LEAF_CONNECT_INFO_2_15,
        INFO_CLIENT_2_9,
        INFO_LEAF_2_9,
    ] {
        let mut out = [0u8; 1024];
        assert_eq!(written(&mut out, |o| info(json).write(o)), json.trim_end());
    }
}

#[cfg(feature = "leaf")]
#[test]
fn every_info_round_trips_as_a_struct() {
    for json in ALL_INFOS {
        let mut out = [0u8; 1024];
        let again = written(&mut out, |o| info(json).write(o));
        assert_eq!(info(again), info(json));
    }
}

#[test]
fn the_real_leaf_connects_read_and_write_back_byte_for_byte() {
    let c = LeafConnect::parse(LEAF_CONNECT_2_15.as_bytes()).expect("parses");
    assert_eq!(c.version, Some("2.15.1".into()));
    assert_eq!(c.user, Some("leafu".into()));
    assert_eq!(c.pass, Some("p&ss".into()));
    assert_eq!(c.deny_pub, Some(StrList::new(&["x.>"])));
    assert_eq!(c.compress_mode, Some("off".into()));
    assert_eq!(c.remote_account, Some("$G".into()));
    assert_eq!(
        (c.protocol, c.headers, c.jetstream, c.is_hub),
        (3, true, true, false)
    );
    assert_eq!(c.tls_required, None);

    let old = LeafConnect::parse(LEAF_CONNECT_2_9.as_bytes()).expect("parses");
    assert_eq!((old.tls_required, old.protocol), (Some(false), 0));

    for json in [
        LEAF_CONNECT_2_15,
        LEAF_CONNECT_2_15_REFERENCE,
        LEAF_CONNECT_2_9,
    ] {
        let mut out = [0u8; 512];
        let c = LeafConnect::parse(json.as_bytes()).expect("parses");
        assert_eq!(written(&mut out, |o| c.write(o)), json);
    }
}

#[test]
fn a_leaf_connect_has_every_key_of_the_code_and_never_lang() {
    let deny = ["x.>", "$SYS.>"];
    let c = LeafConnect {
        version: Some("2.15.1".into()),
        nkey: Some("UA".into()),
        jwt: Some("eyJ".into()),
        sig: Some("c2ln".into()),
        user: Some("u".into()),
        pass: Some("p".into()),
        auth_token: Some("t".into()),
        tls_required: None,
        server_id: Some("NB".into()),
        domain: Some("leaf".into()),
        name: Some("leaf1".into()),
        is_hub: true,
        cluster: Some("edge".into()),
        headers: true,
        jetstream: true,
        deny_pub: Some(StrList::new(&deny)),
        isolate: true,
        compress_mode: Some("not supported".into()),
        gateway: None,
        remote_account: Some("$G".into()),
        protocol: 3,
    };
    let mut out = [0u8; 512];
    let json = written(&mut out, |o| c.write(o));
    assert_eq!(
        json,
        r#"{"version":"2.15.1","nkey":"UA","jwt":"eyJ","sig":"c2ln","user":"u","pass":"p","auth_token":"t","server_id":"NB","domain":"leaf","name":"leaf1","is_hub":true,"cluster":"edge","headers":true,"jetstream":true,"deny_pub":["x.>","$SYS.>"],"isolate":true,"compress_mode":"not supported","remote_account":"$G","protocol":3}"#
    );
    assert!(!json.contains("lang"));
    assert_eq!(LeafConnect::parse(json.as_bytes()), Ok(c));
}

#[test]
fn a_hub_spots_a_client_on_the_leaf_port_by_lang() {
    let as_client = ClientConnect::parse(CONNECT_NATS_PY.as_bytes()).expect("parses");
    assert!(as_client.lang.is_some());
    let leaf = ClientConnect::parse(LEAF_CONNECT_2_15.as_bytes()).expect("parses");
    assert_eq!(leaf.lang, None);
    // The auth fields read the same through the client view.
    assert_eq!(leaf.pass, Some("p&ss".into()));
}

#[test]
fn the_gateway_reads_a_nats_py_connect() {
    let c = ClientConnect::parse(CONNECT_NATS_PY.as_bytes()).expect("parses");
    assert_eq!(
        (c.verbose, c.pedantic, c.echo),
        (Some(false), Some(false), Some(true))
    );
    assert!(c.headers && c.no_responders);
    assert_eq!(c.protocol, 1);
    assert_eq!(c.lang, Some("python3".into()));
    assert_eq!(c.name, Some("cap".into()));
    assert_eq!(c.version, Some("2.16.0".into()));
    assert_eq!(c.user, None);
}

#[test]
fn nulls_from_async_nats_read_as_absent() {
    let c = ClientConnect::parse(CONNECT_ASYNC_NATS.as_bytes()).expect("parses");
    assert_eq!(
        (c.jwt, c.nkey, c.sig, c.name, c.pass),
        (None, None, None, None, None)
    );
    assert_eq!(c.user, Some("alice".into()));
    assert_eq!(c.lang, Some("rust".into()));
    assert!(!c.tls_required && c.headers && c.no_responders);
}

#[test]
fn an_empty_connect_gets_the_server_defaults() {
    let c = ClientConnect::parse(b"{}").expect("parses");
    assert_eq!((c.verbose, c.pedantic, c.echo), (None, None, None));
    assert!(c.effective_verbose() && c.effective_pedantic() && c.effective_echo());
    assert_eq!(c.protocol, 0);
    let quiet = ClientConnect::parse(br#"{"verbose":false,"echo":false}"#).expect("parses");
    assert!(!quiet.effective_verbose() && !quiet.effective_echo() && quiet.effective_pedantic());
}

#[test]
fn an_mcu_writes_its_connect() {
    let c = ClientConnect {
        user: Some("sensor\"7".into()),
        pass: Some("s3cret".into()),
        name: Some("t-1".into()),
        lang: Some("rust".into()),
        version: Some("0.1.0".into()),
        ..ClientConnect::new()
    };
    let mut out = [0u8; 256];
    let json = written(&mut out, |o| c.write(o));
    assert_eq!(
        json,
        r#"{"verbose":false,"pedantic":false,"user":"sensor\"7","pass":"s3cret","name":"t-1","lang":"rust","version":"0.1.0","protocol":1,"headers":true,"no_responders":true}"#
    );
    let back = ClientConnect::parse(json.as_bytes()).expect("parses");
    assert_eq!(back, c);
    assert_eq!(back.user.and_then(|u| u.as_str()), None, "it was escaped");
}

#[cfg(feature = "leaf")]
#[test]
fn a_client_connect_with_every_field_round_trips() {
    let allow = ["a.>"];
    let c = ClientConnect {
        echo: Some(false),
        tls_required: true,
        nkey: Some("UA".into()),
        jwt: Some("eyJ".into()),
        sig: Some("c2ln".into()),
        auth_token: Some("tok".into()),
        account: Some("A".into()),
        new_account: true,
        import: Some(SubjectPermission {
            allow: Some(StrList::new(&allow)),
            deny: None,
        }),
        export: Some(SubjectPermission::default()),
        remote_account: Some("B".into()),
        proxy_sig: Some("px".into()),
        ..ClientConnect::new()
    };
    let mut out = [0u8; 512];
    let json = written(&mut out, |o| c.write(o));
    assert_eq!(
        json,
        r#"{"echo":false,"verbose":false,"pedantic":false,"tls_required":true,"nkey":"UA","jwt":"eyJ","sig":"c2ln","auth_token":"tok","protocol":1,"account":"A","new_account":true,"headers":true,"no_responders":true,"import":{"allow":["a.>"]},"export":{},"remote_account":"B","proxy_sig":"px"}"#
    );
    assert_eq!(ClientConnect::parse(json.as_bytes()), Ok(c));
}

#[test]
fn unknown_keys_of_any_shape_are_skipped() {
    let json = br#"{"future":{"a":[1,2.5e-3,{"b":null}],"c":"\u00e9"},"proto":1,"x":[],"y":-0.0,"z":true,"server_name":"n"}"#;
    let i = ServerInfo::parse(json).expect("parses");
    assert_eq!((i.proto, i.server_name.as_str()), (1, Some("n")));
    // Route/gateway keys of a full Info are unknown to us, and skipped too.
    let i = ServerInfo::parse(br#"{"lnoc":true,"route_pool_size":3,"gateway_urls":["g:1"]}"#);
    assert_eq!(i, Ok(ServerInfo::default()));
}

#[test]
fn keys_match_without_case_like_go() {
    let c = ClientConnect::parse(br#"{"Verbose":false,"USER":"u","Pass":"p"}"#).expect("parses");
    assert_eq!(
        (c.verbose, c.user, c.pass),
        (Some(false), Some("u".into()), Some("p".into()))
    );
}

#[test]
fn the_last_duplicate_wins() {
    let c = ClientConnect::parse(br#"{"user":"a","user":"b","verbose":true,"verbose":null}"#);
    let c = c.expect("parses");
    assert_eq!((c.user, c.verbose), (Some("b".into()), None));
}

#[test]
fn malformed_bodies_are_errors() {
    for (json, err) in [
        ("", JsonError::UnexpectedEnd),
        ("   ", JsonError::UnexpectedEnd),
        ("[]", JsonError::ExpectedObject),
        ("\"x\"", JsonError::ExpectedObject),
        ("{", JsonError::UnexpectedEnd),
        ("{\"proto\"", JsonError::UnexpectedEnd),
        ("{\"proto\":}", JsonError::WrongType),
        ("{\"proto\":\"1\"}", JsonError::WrongType),
        ("{\"proto\":1.0}", JsonError::WrongType),
        ("{\"proto\":4294967296}", JsonError::NumberOutOfRange),
        ("{\"client_id\":-5}", JsonError::NumberOutOfRange),
        ("{\"headers\":1}", JsonError::WrongType),
        ("{\"server_id\":5}", JsonError::WrongType),
        ("{\"connect_urls\":\"a\"}", JsonError::WrongType),
        ("{\"connect_urls\":[1]}", JsonError::WrongType),
        // `import` is a leafnode field (feature `leaf`); without it the key is unknown.
        #[cfg(feature = "leaf")]
        ("{\"import\":[]}", JsonError::WrongType),
        ("{\"server_id\":\"a\\qb\"}", JsonError::InvalidString),
        ("{\"server_id\":\"\u{1}\"}", JsonError::InvalidString),
        ("{\"a\":1,}", JsonError::Syntax),
        ("{\"a\" 1}", JsonError::Syntax),
        ("{a:1}", JsonError::Syntax),
        ("{} {}", JsonError::TrailingCharacters),
    ] {
        assert_eq!(ServerInfo::parse(json.as_bytes()), Err(err), "{json}");
    }
    assert_eq!(
        ServerInfo::parse(b"{\"server_id\":\"\xff\"}"),
        Err(JsonError::InvalidString)
    );

    // `{"x":[[[…1]]]…}` one level past the cap: refused, not recursed into.
    let depth = MAX_DEPTH as usize + 1;
    let mut deep = [0u8; 256];
    deep[..5].copy_from_slice(b"{\"x\":");
    deep[5..5 + depth].fill(b'[');
    deep[5 + depth] = b'1';
    deep[6 + depth..6 + 2 * depth].fill(b']');
    deep[6 + 2 * depth] = b'}';
    let deep = &deep[..7 + 2 * depth];
    assert_eq!(ServerInfo::parse(deep), Err(JsonError::TooDeep));
}

#[test]
fn every_truncation_of_a_real_body_is_an_error() {
    for json in ALL_INFOS.iter().chain(ALL_CONNECTS.iter()) {
        let body = json.trim_end().as_bytes();
        for cut in 0..body.len() {
            let prefix = &body[..cut];
            assert!(ServerInfo::parse(prefix).is_err(), "{cut}");
            assert!(ClientConnect::parse(prefix).is_err(), "{cut}");
            assert!(LeafConnect::parse(prefix).is_err(), "{cut}");
        }
    }
}

#[test]
fn a_too_small_buffer_is_an_error_at_every_size() {
    for json in ALL_INFOS {
        let i = info(json);
        let mut out = [0u8; 1024];
        let full = i.write(&mut out).expect("fits");
        for cap in 0..full {
            assert_eq!(
                i.write(&mut out[..cap]),
                Err(JsonError::BufferTooSmall),
                "{cap}"
            );
        }
    }
    let c = LeafConnect::parse(LEAF_CONNECT_2_15.as_bytes()).expect("parses");
    let mut out = [0u8; 512];
    let full = c.write(&mut out).expect("fits");
    for cap in 0..full {
        assert_eq!(
            c.write(&mut out[..cap]),
            Err(JsonError::BufferTooSmall),
            "{cap}"
        );
    }
    let c = ClientConnect::new();
    let full = c.write(&mut out).expect("fits");
    assert_eq!(
        c.write(&mut out[..full - 1]),
        Err(JsonError::BufferTooSmall)
    );
}

use crate::testing::Rng;

/// Parses `bytes` with all three readers; whatever parses must write and re-parse to itself.
/// Returns how many of the three accepted it.
fn parse_all_and_round_trip(bytes: &[u8]) -> usize {
    let mut out = [0u8; 4096];
    let mut accepted = 0;
    if let Ok(i) = ServerInfo::parse(bytes) {
        let n = i.write(&mut out).expect("fits");
        assert_eq!(ServerInfo::parse(&out[..n]), Ok(i));
        accepted += 1;
    }
    if let Ok(c) = ClientConnect::parse(bytes) {
        let n = c.write(&mut out).expect("fits");
        assert_eq!(ClientConnect::parse(&out[..n]), Ok(c));
        accepted += 1;
    }
    if let Ok(c) = LeafConnect::parse(bytes) {
        let n = c.write(&mut out).expect("fits");
        assert_eq!(LeafConnect::parse(&out[..n]), Ok(c));
        accepted += 1;
    }
    accepted
}

#[test]
fn random_bytes_and_mutated_bodies_never_panic() {
    const ALPHABET: &[u8] = b"{}[]:,\"\\u0123456789abcdefnulltrue -.eE\xc3\xa9\xff\x01 \t";
    let mut rng = Rng(0x7716_5eed_0000_0001);
    let seeds: [&str; 12] = [
        ALL_INFOS[0],
        ALL_INFOS[1],
        ALL_INFOS[2],
        ALL_INFOS[3],
        ALL_INFOS[4],
        ALL_INFOS[5],
        ALL_INFOS[6],
        ALL_CONNECTS[0],
        ALL_CONNECTS[1],
        ALL_CONNECTS[2],
        ALL_CONNECTS[3],
        ALL_CONNECTS[4],
    ];
    let mut buf = [0u8; 1024];
    let mut accepted = 0;
    for round in 0..20_000 {
        let len = if round % 2 == 0 {
            // Pure noise, mostly JSON punctuation so it gets past the first byte.
            let len = rng.below(64);
            for b in &mut buf[..len] {
                *b = ALPHABET[rng.below(ALPHABET.len())];
            }
            len
        } else {
            // A real body with a few bytes changed, inserted or removed.
            let seed = seeds[rng.below(seeds.len())].as_bytes();
            let mut len = seed.len();
            buf[..len].copy_from_slice(seed);
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(len);
                let b = ALPHABET[rng.below(ALPHABET.len())];
                match rng.below(3) {
                    0 => buf[at] = b,
                    1 if len < buf.len() => {
                        buf.copy_within(at..len, at + 1);
                        buf[at] = b;
                        len += 1;
                    }
                    _ => {
                        buf.copy_within(at + 1..len, at);
                        len -= 1;
                    }
                }
            }
            len
        };
        accepted += parse_all_and_round_trip(&buf[..len]);
    }
    // Enough mutants still parse for the round-trip half of the property to mean something.
    assert!(accepted > 3_000, "only {accepted} accepted");
}

#[cfg(feature = "alloc")]
mod owned;
