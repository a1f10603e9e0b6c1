//! What twig reads from and tells the hub when forwarding: PubAcks and their refusals, and
//! the gateway's stable name in message ids and reply subjects.

use super::StreamError;
use twig_config::Config;
use twig_core::wire::Headers;
use twig_router::internal::Owned;

/// Why the hub did not store a message: its status or error code (0 when it sent none) and
/// description.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Status or error code (0: none).
    pub code: u16,
    /// What the hub said.
    pub text: String,
}

/// A refusal that a re-send would meet again: a 4xx error of the stream (e.g. a message
/// larger than the hub stream's `max_msg_size`), except timeouts (408) and overload (429).
/// 503 (e.g. a full `discard: new` stream) and unknown answers are retried.
pub fn permanent(code: u16) -> bool {
    (400..500).contains(&code) && code != 408 && code != 429
}

/// `Ok` for a PubAck that says stored (or duplicate), else why not.
pub fn parse_puback(m: &Owned) -> Result<(), Refusal> {
    if let Some(h) = m.headers.as_deref().and_then(|h| Headers::parse(h).ok())
        && let Some(status) = h.status()
        && status >= 300
    {
        return Err(Refusal {
            code: status,
            text: String::from_utf8_lossy(h.description().unwrap_or_default()).into_owned(),
        });
    }
    let not_puback = |what: String| Refusal {
        code: 0,
        text: format!("not a PubAck: {what}"),
    };
    let v: serde_json::Value = serde_json::from_slice(&m.payload)
        .map_err(|_| not_puback(String::from_utf8_lossy(&m.payload).into_owned()))?;
    if let Some(e) = v.get("error") {
        return Err(Refusal {
            code: e
                .get("code")
                .and_then(serde_json::Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0),
            text: e
                .get("description")
                .and_then(|d| d.as_str())
                .map_or_else(|| e.to_string(), str::to_owned),
        });
    }
    if v.get("seq").is_some() {
        Ok(())
    } else {
        Err(not_puback(v.to_string()))
    }
}

/// A sequence number as the last token of a reply subject: base 36, lower case (`1234567` is
/// `qglj`), 3 bytes shorter than decimal on each forwarded message and its PubAck.
pub fn seq_token(mut seq: u64, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 13];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(seq % 36) as usize];
        seq /= 36;
        if seq == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// The sequence number of a [`seq_token`]; `None` for anything else.
pub fn parse_seq_token(t: &[u8]) -> Option<u64> {
    if t.is_empty() || t.len() > 13 {
        return None;
    }
    t.iter().try_fold(0u64, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            _ => return None,
        };
        acc.checked_mul(36)?.checked_add(u64::from(d))
    })
}

/// A gateway name as one subject token.
pub fn subject_token(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The gateway's name in forwarded messages' ids: `server_name` when configured, else an id
/// made once and kept in `<store_dir>/twig.id` (a per-run id would defeat the hub's
/// de-duplication after a restart).
pub fn gateway_id(config: &Config) -> Result<String, StreamError> {
    if let Some(n) = config.server_name.as_ref().filter(|n| !n.is_empty()) {
        return Ok(n.clone());
    }
    let path = config.store_dir.join("twig.id");
    let fail = |source| StreamError::File {
        name: "(gateway id)".into(),
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    // 16 base-62 characters (95 bits): short, since it is in every forwarded message twice
    // (its Nats-Msg-Id and reply subject); an id kept from an older twig stays as it is.
    let mut raw = [0u8; 16];
    twig_util::id::fill(&mut raw).map_err(|e| fail(std::io::Error::other(e.to_string())))?;
    let id = twig_util::id::base62(&raw);
    std::fs::create_dir_all(&config.store_dir).map_err(fail)?;
    let tmp = path.with_extension("id.tmp");
    std::fs::write(&tmp, &id).map_err(fail)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_gateway_id_is_short_and_kept() {
        let dir = std::env::temp_dir().join(format!("twig-gwid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = Config {
            store_dir: dir.clone(),
            ..Config::default()
        };
        let id = gateway_id(&config).unwrap();
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
        assert_eq!(gateway_id(&config).unwrap(), id, "read back from twig.id");
        // An id written by an older twig is kept as it is.
        std::fs::write(dir.join("twig.id"), "twig-0123456789abcdef01234567\n").unwrap();
        assert_eq!(
            gateway_id(&config).unwrap(),
            "twig-0123456789abcdef01234567"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sequence_tokens_round_trip() {
        for seq in [0u64, 1, 35, 36, 1_234_567, u64::MAX] {
            let mut t = Vec::new();
            seq_token(seq, &mut t);
            assert_eq!(
                parse_seq_token(&t),
                Some(seq),
                "{}",
                String::from_utf8_lossy(&t)
            );
        }
        let mut t = Vec::new();
        seq_token(1_234_567, &mut t);
        assert_eq!(t, b"qglj");
        for bad in [&b""[..], b"Q", b"12-3", b"zzzzzzzzzzzzz", b"zzzzzzzzzzzzzz"] {
            assert_eq!(
                parse_seq_token(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn owned(subject: &str, headers: Option<&str>, payload: &str) -> Owned {
        Owned {
            subject: subject.as_bytes().into(),
            reply: None,
            headers: headers.map(|h| h.as_bytes().into()),
            payload: payload.as_bytes().into(),
            charge: None,
        }
    }

    #[test]
    fn pubacks_as_the_hub_sends_them() {
        let ok = |p: &str| parse_puback(&owned("x", None, p));
        assert_eq!(ok(r#"{"stream":"EDGE","seq":1}"#), Ok(()));
        assert_eq!(ok(r#"{"stream":"EDGE","domain":"hub","seq":2}"#), Ok(()));
        assert_eq!(ok(r#"{"stream":"EDGE","seq":2,"duplicate": true}"#), Ok(()));
        let full = ok(
            r#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"EDGE","seq":0}"#,
        )
        .unwrap_err();
        assert_eq!(
            (full.code, full.text.as_str()),
            (503, "maximum messages exceeded")
        );
        assert!(!permanent(full.code), "a full stream may take it later");
        let big = ok(r#"{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},"stream":"EDGE","seq":0}"#).unwrap_err();
        assert!(permanent(big.code));
        assert!(!permanent(0) && !permanent(429) && !permanent(408));
        assert_eq!(ok("garbage").unwrap_err().code, 0);
        let no_responders = parse_puback(&owned("x", Some("NATS/1.0 503\r\n\r\n"), ""));
        assert_eq!(no_responders.unwrap_err().code, 503);
    }

    #[test]
    fn gateway_names_become_one_token() {
        assert_eq!(subject_token("edge.7*>x y"), "edge_7__x_y");
        assert_eq!(subject_token("gw-1"), "gw-1");
    }
}
