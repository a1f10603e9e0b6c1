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
    let mut raw = [0u8; 12];
    twig_util::id::fill(&mut raw).map_err(|e| fail(std::io::Error::other(e.to_string())))?;
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!("twig-{id}");
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

    fn owned(subject: &str, headers: Option<&str>, payload: &str) -> Owned {
        Owned {
            subject: subject.as_bytes().into(),
            reply: None,
            headers: headers.map(|h| h.as_bytes().into()),
            payload: payload.as_bytes().into(),
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
