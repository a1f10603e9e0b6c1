//! An HTTP CONNECT tunnel (RFC 9110 9.3.6) for leafnode remotes behind a forward proxy, as
//! nats-server's remote `proxy { url, username, password, timeout }` does it
//! (`leafnode.go establishHTTPProxyTunnel`, nats-server issue #7204).
//!
//! `CONNECT host:port HTTP/1.1` with `Host: host:port` and, with credentials,
//! `Proxy-Authorization: Basic base64(user:password)`. Any status but 200 fails the dial
//! with the proxy's status line; after the 200's head the socket is the tunnel. A proxy may
//! send bytes of the tunnel right behind its head: [`read_connect_response`] says where the
//! head ends so the caller keeps them.

use std::fmt;

use data_encoding::BASE64;

use crate::http::{self, HeadError};

/// A proxy address from its URL (`http://host[:port]`; credentials come separately, as in
/// nats-server's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// Host.
    pub host: String,
    /// Port (80 if the URL has none).
    pub port: u16,
}

impl ProxyUrl {
    /// Parses `http://host[:port][/]`. nats-server also accepts `https://` but then still
    /// speaks plain TCP to the proxy; twig refuses it rather than pretend.
    pub fn parse(url: &str) -> Result<ProxyUrl, ProxyError> {
        let bad = |why: &str| ProxyError::BadUrl(format!("{url:?}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "http" => {}
            "https" => return Err(bad("TLS to the proxy (https) is not supported; use http")),
            _ => return Err(bad("the scheme must be http")),
        }
        let hostport = rest.trim_end_matches('/');
        if hostport.contains(['/', '@', '?']) {
            return Err(bad(
                "only scheme, host and port (credentials go in username/password)",
            ));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (h, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("bad port"))?,
        };
        Ok(ProxyUrl {
            host: host.to_string(),
            port,
        })
    }
}

/// Why the tunnel could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// The configured URL is unusable.
    BadUrl(String),
    /// The proxy answered with another status (407: credentials missing or wrong).
    Refused {
        /// HTTP status.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// Not an HTTP answer.
    Malformed(String),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::BadUrl(why) => write!(f, "invalid proxy URL {why}"),
            ProxyError::Refused { status, reason } => {
                write!(f, "proxy CONNECT failed: {status} {reason}")?;
                if *status == 407 {
                    f.write_str(" (check the proxy username and password)")?;
                }
                Ok(())
            }
            ProxyError::Malformed(why) => write!(f, "proxy answer is not HTTP: {why}"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// The CONNECT request for `target` (`host:port`, IPv6 in brackets), with Basic credentials
/// when both are given.
pub fn connect_request(target: &str, credentials: Option<(&str, &str)>) -> Vec<u8> {
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, pass)) = credentials {
        let token = BASE64.encode(format!("{user}:{pass}").as_bytes());
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// Checks the proxy's answer read so far: `Ok(None)` until its head is complete, then the
/// head's length (tunnel bytes may follow it in `buf`).
pub fn read_connect_response(buf: &[u8]) -> Result<Option<usize>, ProxyError> {
    match http::parse(buf) {
        Ok(None) => Ok(None),
        Ok(Some(h)) if h.status == 200 => Ok(Some(h.len)),
        Ok(Some(h)) => Err(ProxyError::Refused {
            status: h.status,
            reason: h.reason,
        }),
        Err(HeadError::TooLong) => Err(ProxyError::Malformed("head longer than 16 KiB".into())),
        Err(HeadError::Malformed(e)) => Err(ProxyError::Malformed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_with_and_without_credentials() {
        assert_eq!(
            connect_request("hub.example:443", None),
            b"CONNECT hub.example:443 HTTP/1.1\r\nHost: hub.example:443\r\n\r\n"
        );
        let req = String::from_utf8(connect_request(
            "[::1]:80",
            Some(("Aladdin", "open sesame")),
        ))
        .unwrap();
        assert_eq!(
            req,
            "CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }

    #[test]
    fn answers() {
        let ok = b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 101";
        for n in 0..39 {
            assert_eq!(read_connect_response(&ok[..n]), Ok(None), "{n}");
        }
        assert_eq!(read_connect_response(ok), Ok(Some(39)));
        let e = read_connect_response(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "proxy CONNECT failed: 407 Proxy Authentication Required (check the proxy username and password)"
        );
        assert!(matches!(
            read_connect_response(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(ProxyError::Malformed(_))
        ));
    }

    #[test]
    fn proxy_urls() {
        assert_eq!(
            ProxyUrl::parse("http://proxy.lan:3128").unwrap(),
            ProxyUrl {
                host: "proxy.lan".into(),
                port: 3128
            }
        );
        assert_eq!(ProxyUrl::parse("HTTP://proxy/").unwrap().port, 80);
        assert_eq!(ProxyUrl::parse("http://[::1]:8080").unwrap().host, "::1");
        for bad in [
            "https://p:1",
            "socks5://p:1",
            "http://",
            "http://u:p@h:1",
            "http://h:0",
        ] {
            assert!(ProxyUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
