//! The owned (alloc) structs against the same captures.

use super::*;

#[test]
fn owned_parse_agrees_with_the_borrowed_parse() {
    for json in ALL_INFOS {
        let owned = full::ServerInfo::parse(json.as_bytes()).expect("parses");
        assert_eq!(owned, full::ServerInfo::from(&info(json)), "{json}");
    }
    for json in ALL_CONNECTS {
        let owned = full::ClientConnect::parse(json.as_bytes()).expect("parses");
        let borrowed = ClientConnect::parse(json.as_bytes()).expect("parses");
        assert_eq!(owned, full::ClientConnect::from(&borrowed), "{json}");
        let owned = full::LeafConnect::parse(json.as_bytes()).expect("parses");
        let borrowed = LeafConnect::parse(json.as_bytes()).expect("parses");
        assert_eq!(owned, full::LeafConnect::from(&borrowed), "{json}");
    }
}

#[test]
fn owned_structs_write_what_nats_server_writes() {
    for json in [
        INFO_CLIENT_2_15,
        INFO_CLIENT_CONNECT_INFO_2_15,
        INFO_LEAF_2_15,
        INFO_CLIENT_2_9,
    ] {
        let i = full::ServerInfo::parse(json.as_bytes()).expect("parses");
        assert_eq!(i.to_json().expect("writes"), json.trim_end().as_bytes());
    }
    let c = full::LeafConnect::parse(LEAF_CONNECT_2_15_REFERENCE.as_bytes()).expect("parses");
    assert_eq!(
        c.to_json().expect("writes"),
        LEAF_CONNECT_2_15_REFERENCE.as_bytes()
    );
    // serde_json does not copy Go's `\u003e`; the heap-free reader still reads it back.
    let i = full::ServerInfo::parse(INFO_LEAF_CONNECT_INFO_2_15.as_bytes()).expect("parses");
    let json = i.to_json().expect("writes");
    assert!(json.windows(14).any(|w| w == br#""allow":["up.>"#));
    assert_eq!(
        full::ServerInfo::from(&info(core::str::from_utf8(&json).expect("utf8"))),
        i
    );
}

#[test]
fn owned_and_heap_free_writers_agree() {
    let c = ClientConnect {
        user: Some("a\"b\\c\n".into()),
        ..ClientConnect::new()
    };
    let mut out = [0u8; 256];
    let n = c.write(&mut out).expect("fits");
    assert_eq!(
        full::ClientConnect::from(&c).to_json().expect("writes"),
        &out[..n]
    );
}

#[test]
fn a_hub_may_send_an_empty_leafnode_urls_list() {
    let i = full::ServerInfo {
        client_id: 1,
        leafnode_urls: Some(alloc::vec![]),
        ..Default::default()
    };
    let json = i.to_json().expect("writes");
    assert!(json.ends_with(br#""client_id":1,"leafnode_urls":[]}"#));
    assert_eq!(full::ServerInfo::parse(&json), Ok(i));
}

#[test]
fn owned_errors_are_the_same_small_values() {
    assert_eq!(
        full::ServerInfo::parse(b"{\"proto\":"),
        Err(JsonError::UnexpectedEnd)
    );
    assert_eq!(
        full::ServerInfo::parse(b"{\"proto\":\"1\"}"),
        Err(JsonError::WrongType)
    );
    assert_eq!(full::ClientConnect::parse(b"{,}"), Err(JsonError::Syntax));
    assert_eq!(
        full::LeafConnect::parse(b"{\"user\":null}"),
        Ok(full::LeafConnect::default())
    );
}

#[test]
fn owned_parsers_survive_mutated_bodies() {
    let mut rng = Rng(0x0ed0_5eed);
    for round in 0..3_000 {
        let seed = if round % 2 == 0 {
            ALL_INFOS[rng.below(ALL_INFOS.len())]
        } else {
            ALL_CONNECTS[rng.below(ALL_CONNECTS.len())]
        };
        let mut body = seed.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(body.len());
            match rng.below(3) {
                0 => {
                    const NOISE: &[u8] = b"{}[]:,\"\\0-en\xff";
                    body[at] = NOISE[rng.below(NOISE.len())];
                }
                1 => body.insert(at, b'['),
                _ => {
                    body.remove(at);
                }
            }
        }
        // Whatever serde_json accepts must write back and read as itself.
        if let Ok(i) = full::ServerInfo::parse(&body) {
            assert_eq!(
                full::ServerInfo::parse(&i.to_json().expect("writes")),
                Ok(i)
            );
        }
        if let Ok(c) = full::ClientConnect::parse(&body) {
            assert_eq!(
                full::ClientConnect::parse(&c.to_json().expect("writes")),
                Ok(c)
            );
        }
        if let Ok(c) = full::LeafConnect::parse(&body) {
            assert_eq!(
                full::LeafConnect::parse(&c.to_json().expect("writes")),
                Ok(c)
            );
        }
    }
}
