//! The client side of the WebSocket opening handshake (RFC 6455 section 4), as a
//! nats-server hub expects it from a leaf (`websocket.go wsUpgrade`, `leafnode.go
//! leafNodeSolicitWSConnection`).
//!
//! The hub needs `GET <path>/leafnode`, `Host`, `Upgrade: websocket`, `Connection: Upgrade`,
//! a 16-byte base64 `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`. It wants no
//! `Sec-WebSocket-Protocol` (it has none for leafs). Compression (`permessage-deflate`) is
//! never asked for: the leaf link compresses with S2 instead, which nats-server turns off
//! when websocket compression is on. `Nats-No-Masking: true` asks the hub to accept
//! unmasked frames (saves a pass over every byte sent); only a hub that echoes it gets them.
//! Nothing may be sent after the request until the `101` is read: the hub drops a client
//! that sends data before the handshake is complete.

use std::fmt;

use data_encoding::BASE64;

use crate::http::{self, HeadError};
use crate::url::{RemoteUrl, leafnode_path};

/// RFC 6455's GUID for the accept key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// nats-server's header to turn masking off (both directions agree or masks stay on).
pub const NO_MASKING_HEADER: &str = "Nats-No-Masking";

/// `base64(sha1(key + GUID))`, what the server must answer in `Sec-WebSocket-Accept`.
pub fn accept_key(key: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    BASE64.encode(&h.digest().bytes())
}

/// An upgrade in progress: what the answer must say.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    accept: String,
    asked_no_masking: bool,
}

/// A successful upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgraded {
    /// Whether our frames must be masked (yes unless the hub agreed to `Nats-No-Masking`).
    pub mask: bool,
    /// Bytes of the input that were the HTTP answer; frames start right after.
    pub head_len: usize,
}

/// Why the hub's answer was not a valid upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// A status other than 101, with the reason and the start of the body (nats-server puts
    /// its error text there, e.g. `invalid value for header 'Upgrade'`).
    Refused {
        /// HTTP status.
        status: u16,
        /// Reason phrase and body text.
        text: String,
    },
    /// A 101 that is not a proper WebSocket upgrade.
    Invalid(String),
    /// Not an HTTP/1.1 answer at all (a hub's plain leafnode port answers `INFO`).
    Malformed(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Refused { status, text } => {
                write!(f, "websocket upgrade refused: HTTP {status} {text}")
            }
            HandshakeError::Invalid(why) => write!(f, "invalid websocket upgrade: {why}"),
            HandshakeError::Malformed(why) => {
                write!(f, "not an HTTP answer to the websocket upgrade: {why}")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

impl ClientHandshake {
    /// The upgrade request for a leafnode connection to `url`, with `key` (16 random bytes
    /// from the caller) and whether to ask for unmasked frames. Returns the handshake state
    /// and the request bytes.
    pub fn leafnode(
        url: &RemoteUrl,
        key: [u8; 16],
        no_masking: bool,
    ) -> (ClientHandshake, Vec<u8>) {
        let key = BASE64.encode(&key);
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            leafnode_path(&url.path),
            url.host_header(),
        );
        if no_masking {
            req.push_str(NO_MASKING_HEADER);
            req.push_str(": true\r\n");
        }
        req.push_str("\r\n");
        (
            ClientHandshake {
                accept: accept_key(&key),
                asked_no_masking: no_masking,
            },
            req.into_bytes(),
        )
    }

    /// Checks the answer read so far: `Ok(None)` until its head is complete.
    pub fn read_response(&self, buf: &[u8]) -> Result<Option<Upgraded>, HandshakeError> {
        let head = match http::parse(buf) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(None),
            Err(HeadError::TooLong) => {
                return Err(HandshakeError::Malformed(
                    "answer head longer than 16 KiB".into(),
                ));
            }
            Err(HeadError::Malformed(e)) => {
                let start = String::from_utf8_lossy(&buf[..buf.len().min(40)]).into_owned();
                return Err(HandshakeError::Malformed(format!("{e} (starts {start:?})")));
            }
        };
        if head.status != 101 {
            let body = String::from_utf8_lossy(&buf[head.len..buf.len().min(head.len + 200)]);
            let body = body.trim();
            let text = if body.is_empty() {
                head.reason.clone()
            } else {
                format!("{}: {body}", head.reason)
            };
            return Err(HandshakeError::Refused {
                status: head.status,
                text,
            });
        }
        if !head.has_token("Upgrade", "websocket") {
            return Err(HandshakeError::Invalid("no 'Upgrade: websocket'".into()));
        }
        if !head.has_token("Connection", "upgrade") {
            return Err(HandshakeError::Invalid("no 'Connection: Upgrade'".into()));
        }
        match head.get("Sec-WebSocket-Accept") {
            Some(a) if a == self.accept => {}
            Some(a) => {
                return Err(HandshakeError::Invalid(format!(
                    "Sec-WebSocket-Accept is {a:?}, expected {:?}",
                    self.accept
                )));
            }
            None => return Err(HandshakeError::Invalid("no Sec-WebSocket-Accept".into())),
        }
        if let Some(ext) = head.get("Sec-WebSocket-Extensions") {
            return Err(HandshakeError::Invalid(format!(
                "the hub turned on an extension that was not asked for: {ext}"
            )));
        }
        let unmasked = self.asked_no_masking
            && head
                .get(NO_MASKING_HEADER)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Some(Upgraded {
            mask: !unmasked,
            head_len: head.len,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_example_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn upgrade(no_masking: bool) -> (ClientHandshake, String, String) {
        let url = RemoteUrl::parse("ws://127.0.0.1:8080/edge").unwrap();
        let (hs, req) = ClientHandshake::leafnode(&url, *b"the sample nonce", no_masking);
        let req = String::from_utf8(req).unwrap();
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            accept_key("dGhlIHNhbXBsZSBub25jZQ==")
        );
        (hs, req, ok)
    }

    #[test]
    fn request_and_answer() {
        let (hs, req, ok) = upgrade(false);
        assert_eq!(
            req,
            "GET /edge/leafnode HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        let answer = format!("{ok}\r\n\x02\x05hello");
        // Incomplete heads wait, at every length.
        for n in 0..ok.len() {
            assert_eq!(hs.read_response(&answer.as_bytes()[..n]), Ok(None));
        }
        let up = hs.read_response(answer.as_bytes()).unwrap().unwrap();
        assert_eq!(
            up,
            Upgraded {
                mask: true,
                head_len: ok.len() + 2
            }
        );
        assert_eq!(&answer.as_bytes()[up.head_len..], b"\x02\x05hello");
    }

    #[test]
    fn no_masking_only_when_both_agree() {
        let (hs, req, ok) = upgrade(true);
        assert!(req.contains("\r\nNats-No-Masking: true\r\n"));
        let echoed = format!("{ok}Nats-No-Masking: true\r\n\r\n");
        assert!(!hs.read_response(echoed.as_bytes()).unwrap().unwrap().mask);
        let silent = format!("{ok}\r\n");
        assert!(hs.read_response(silent.as_bytes()).unwrap().unwrap().mask);
        let (hs, _, _) = upgrade(false);
        assert!(hs.read_response(echoed.as_bytes()).unwrap().unwrap().mask);
    }

    #[test]
    fn bad_answers_say_why() {
        let (hs, _, ok) = upgrade(false);
        let refused = "HTTP/1.1 400 Bad Request\r\nContent-Length: 35\r\n\r\ninvalid value for header 'Upgrade'\n";
        let e = hs.read_response(refused.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "websocket upgrade refused: HTTP 400 Bad Request: invalid value for header 'Upgrade'"
        );
        let wrong = ok.replace("s3pP", "AAAA") + "\r\n";
        assert!(matches!(
            hs.read_response(wrong.as_bytes()),
            Err(HandshakeError::Invalid(_))
        ));
        let deflate = format!("{ok}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
        assert!(matches!(
            hs.read_response(deflate.as_bytes()),
            Err(HandshakeError::Invalid(_))
        ));
        let no_upgrade = ok.replace("Upgrade: websocket\r\n", "") + "\r\n";
        assert!(matches!(
            hs.read_response(no_upgrade.as_bytes()),
            Err(HandshakeError::Invalid(_))
        ));
        let info = b"INFO {\"server_id\":\"x\"}\r\n";
        assert!(matches!(
            hs.read_response(info),
            Err(HandshakeError::Malformed(_))
        ));
        let endless = format!("HTTP/1.1 101 OK\r\nX: {}", "y".repeat(20_000));
        assert!(matches!(
            hs.read_response(endless.as_bytes()),
            Err(HandshakeError::Malformed(_))
        ));
    }
}
