//! WebSocket remote URLs: `ws://[user[:password]@]host[:port][/path]` and `wss://...`.

use std::fmt;

/// A parsed `ws://` or `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// `wss://`: TLS before the upgrade.
    pub tls: bool,
    /// Host name or address, without brackets for IPv6.
    pub host: String,
    /// The port, 80 (`ws`) or 443 (`wss`) when the URL has none.
    pub port: u16,
    /// The URL had an explicit port (the `Host` header repeats the URL as written).
    pub explicit_port: bool,
    /// The URL's path ("" when it has none).
    pub path: String,
    /// User name and password from the URL, percent-decoded (leafnode credentials).
    pub user: Option<(String, String)>,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

impl RemoteUrl {
    /// Parses a URL; any scheme but `ws` and `wss` (case-insensitive) is an error.
    pub fn parse(url: &str) -> Result<RemoteUrl, UrlError> {
        let err = |why: &str| UrlError(format!("invalid websocket URL {url:?}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| err("no scheme"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(err("the scheme must be ws or wss")),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => {
                let (name, pass) = u.split_once(':').unwrap_or((u, ""));
                (
                    Some((percent_decode(name).ok_or_else(|| err("bad %-escape"))?, {
                        percent_decode(pass).ok_or_else(|| err("bad %-escape"))?
                    })),
                    h,
                )
            }
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| err("unclosed '['"))?;
            match after {
                "" => (h, None),
                p => (
                    h,
                    Some(p.strip_prefix(':').ok_or_else(|| err("junk after ']'"))?),
                ),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(err("no host"));
        }
        let explicit_port = port.is_some();
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| err("bad port"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(RemoteUrl {
            tls,
            host: host.to_string(),
            port,
            explicit_port,
            path: path.to_string(),
            user,
        })
    }

    /// `host:port` to dial or to ask a proxy for (IPv6 in brackets), the port always given.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Host` header: the URL's authority without credentials, as Go's client sends it.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.explicit_port {
            format!("{host}:{}", self.port)
        } else {
            host
        }
    }
}

/// The request path for a leafnode upgrade: the URL's path with `/leafnode` appended, which
/// is how a nats-server hub tells a leaf from a client on its websocket port
/// (`leafNodeSolicitWSConnection` joins the two the same way).
pub fn leafnode_path(url_path: &str) -> String {
    let segments: Vec<&str> = url_path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        "/leafnode".to_string()
    } else {
        format!("/{}/leafnode", segments.join("/"))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_nats_server_accepts() {
        let u = RemoteUrl::parse("ws://hub.example:8080").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "hub.example", 8080, "")
        );
        assert_eq!(u.host_header(), "hub.example:8080");
        let u = RemoteUrl::parse("WSS://bob:s%40cret@hub.example/nats?x=1").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/nats"));
        assert_eq!(u.user, Some(("bob".into(), "s@cret".into())));
        assert_eq!(u.host_header(), "hub.example");
        assert_eq!(u.host_port(), "hub.example:443");
        let u = RemoteUrl::parse("ws://[::1]:4223/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 4223));
        assert_eq!(u.host_port(), "[::1]:4223");
        for bad in [
            "nats://h:1",
            "ws://",
            "ws://h:0",
            "ws://h:99999",
            "ws://[::1",
            "hub:80",
        ] {
            assert!(RemoteUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn leafnode_path_follows_the_url_path() {
        assert_eq!(leafnode_path(""), "/leafnode");
        assert_eq!(leafnode_path("/"), "/leafnode");
        assert_eq!(leafnode_path("/ws"), "/ws/leafnode");
        assert_eq!(leafnode_path("/a//b/"), "/a/b/leafnode");
    }
}
