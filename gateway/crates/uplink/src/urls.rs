//! The URLs of one remote and their rotation, without sockets: the configured ones plus those
//! the hub advertised.
use twig_config::LeafUrl;

/// The URLs of one remote: the configured ones plus those the hub advertised
/// (`leafnode_urls`), tried in turn, as nats-server's `pickNextURL` does.
#[derive(Debug, Clone)]
pub struct Urls {
    configured: Vec<LeafUrl>,
    list: Vec<LeafUrl>,
    next: usize,
}

impl Urls {
    /// The configured URLs (at least one; parsed by the config check already).
    pub fn new(configured: Vec<LeafUrl>) -> Urls {
        Urls {
            list: configured.clone(),
            configured,
            next: 0,
        }
    }

    /// The URL to try now; the following call returns the next one in the rotation.
    pub fn next_url(&mut self) -> Option<LeafUrl> {
        if self.list.is_empty() {
            return None;
        }
        let i = self.next % self.list.len();
        self.next = i.wrapping_add(1);
        self.list.get(i).cloned()
    }

    /// Replaces the discovered part with the hub's `leafnode_urls` (bare `host:port`), keeping
    /// the configured URLs (with their credentials and TLS scheme) and not duplicating them.
    /// Discovered URLs inherit TLS and credentials from the first configured URL. The rotation
    /// continues after the URL in use.
    pub fn update_discovered(&mut self, current: &LeafUrl, advertised: &[String]) {
        let template = self.configured.first().cloned();
        let mut list = Vec::with_capacity(self.configured.len() + advertised.len());
        for a in advertised {
            let Ok(mut u) = LeafUrl::parse(a) else {
                continue;
            };
            let known = self
                .configured
                .iter()
                .chain(list.iter())
                .any(|c: &LeafUrl| c.host == u.host && c.port == u.port);
            if known {
                continue;
            }
            if let Some(t) = &template {
                u.tls = t.tls;
                u.user.clone_from(&t.user);
                u.password.clone_from(&t.password);
            }
            list.push(u);
        }
        list.extend(self.configured.iter().cloned());
        let pos = list
            .iter()
            .position(|u| u.host == current.host && u.port == current.port);
        self.next = pos.map_or(0, |p| p.wrapping_add(1));
        self.list = list;
    }

    /// Every URL in the rotation.
    pub fn all(&self) -> &[LeafUrl] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> LeafUrl {
        LeafUrl::parse(s).unwrap()
    }

    #[test]
    fn rotation_covers_discovered_urls_and_keeps_configured_ones() {
        let mut u = Urls::new(vec![url("tls://u:p@a:1")]);
        let cur = u.next_url().unwrap();
        assert_eq!(cur.host, "a");
        u.update_discovered(&cur, &["a:1".into(), "b:2".into(), "c:3".into()]);
        let order: Vec<String> = (0..4).map(|_| u.next_url().unwrap().host_port()).collect();
        assert_eq!(order, ["b:2", "c:3", "a:1", "b:2"]);
        let b = u.all().iter().find(|x| x.host == "b").unwrap();
        assert!(b.tls);
        assert_eq!(b.user.as_deref(), Some("u"));
        // The hub's list shrinks: the gone server drops out, the configured one stays.
        let cur = url("b:2");
        u.update_discovered(&cur, &["c:3".into()]);
        let hosts: Vec<&str> = u.all().iter().map(|x| x.host.as_str()).collect();
        assert_eq!(hosts, ["c", "a"]);
    }
}
