//! Just enough HTTP/1.1 for monitoring: one GET per connection, answered and closed.
//!
//! Everything here is a pure function from request bytes to response bytes, so routing and
//! error answers are tested without sockets; [`super::serve`] does the IO.
use serde::Serialize;

use super::{ConnzQuery, MonitorSource, metrics};

/// A response, before serialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
/// The Prometheus text exposition format.
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into();
        body.push('\n');
        Response {
            status,
            content_type: TEXT,
            body: body.into_bytes(),
        }
    }

    /// Pretty JSON, as nats-server indents its monitoring output.
    pub fn json<T: Serialize>(value: &T) -> Response {
        match serde_json::to_vec_pretty(value) {
            Ok(body) => Response {
                status: 200,
                content_type: JSON,
                body,
            },
            Err(e) => Response::text(500, format!("cannot encode response: {e}")),
        }
    }

    /// The bytes on the wire: status line, headers, body. `Connection: close` because each
    /// connection carries one request.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Access-Control-Allow-Origin: *\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            head.push_str("Allow: GET\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// The answer to a request whose head exceeded the size limit.
pub fn too_large() -> Response {
    Response::text(431, "request too large")
}

/// The answer to a connection over the limit of connections served at once.
pub fn busy() -> Response {
    Response::text(503, "too many monitoring connections")
}

/// Position just past the blank line ending the request head, if it has arrived.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .and_then(|i| i.checked_add(4))
        .or_else(|| {
            // Bare-LF clients (hand-typed requests) are tolerated, as Go's server does.
            buf.windows(2)
                .position(|w| w == b"\n\n")
                .and_then(|i| i.checked_add(2))
        })
}

/// Answers one request head (request line plus headers; headers are not needed).
pub fn respond(source: &dyn MonitorSource, head: &[u8]) -> Response {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Response::text(400, "bad request line");
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::text(400, "bad request line");
    };
    if !version.starts_with("HTTP/1.") {
        return Response::text(400, "unsupported HTTP version");
    }
    if method != "GET" {
        return Response::text(405, "method not allowed");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // `/varz/` is `/varz`; `/` stays the index.
    let path = match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    };
    match path {
        "/" => Response::text(
            200,
            "twig monitoring: /varz /connz /leafz /healthz /jsz /mqttz /metrics",
        ),
        "/varz" => Response::json(&source.varz()),
        "/jsz" => source.jsz(),
        "/mqttz" => source.mqttz(),
        "/connz" => match ConnzQuery::parse(query) {
            Ok(q) => Response::json(&source.connz(&q)),
            Err(message) => Response::text(400, message),
        },
        "/leafz" => {
            let subs = query_pairs(query).any(|(k, v)| k == "subs" && (v == "1" || v == "true"));
            Response::json(&source.leafz(subs))
        }
        "/healthz" => {
            let leaf =
                query_pairs(query).any(|(k, v)| k == "leafnodes" && (v == "1" || v == "true"));
            let health = if leaf {
                source.healthz_leafnodes()
            } else {
                source.healthz()
            };
            // nats-server writes this one compact.
            match serde_json::to_vec(&health) {
                Ok(body) => Response {
                    status: if health.is_ok() { 200 } else { 503 },
                    content_type: JSON,
                    body,
                },
                Err(e) => Response::text(500, format!("cannot encode response: {e}")),
            }
        }
        "/metrics" => Response {
            status: 200,
            content_type: PROMETHEUS,
            body: {
                let mut text = metrics::render(&source.varz());
                if let Some(m) = source.mqtt_listener() {
                    metrics::render_mqtt(&mut text, &m);
                }
                text.into_bytes()
            },
        },
        _ => Response::text(404, "404 page not found"),
    }
}

/// Splits `a=1&b=x%20y` into decoded pairs; a key without `=` gets an empty value.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (space); malformed escapes are kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i.saturating_add(1)..i.saturating_add(3)))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, b) {
            (Some(decoded), _) => {
                out.push(decoded);
                i = i.saturating_add(3);
            }
            (None, b'+') => {
                out.push(b' ');
                i = i.saturating_add(1);
            }
            (None, other) => {
                out.push(other);
                i = i.saturating_add(1);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let pairs: Vec<_> = query_pairs("a=1&b=x%20y+z&flag&&c=%zz&d=%4").collect();
        let want = [
            ("a", "1"),
            ("b", "x y z"),
            ("flag", ""),
            ("c", "%zz"),
            ("d", "%4"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, want);
    }

    #[test]
    fn head_end_finds_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn response_bytes() {
        let r = Response::text(405, "method not allowed");
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: GET\r\n"));
        assert!(text.contains("\r\nContent-Length: 19\r\n"));
        assert!(text.ends_with("\r\n\r\nmethod not allowed\n"));
    }
}
