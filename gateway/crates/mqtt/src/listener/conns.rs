//! The listener's open connections, for `/connz`: one [`ConnView`] per connection with a
//! logged-in session, updated by its task with relaxed atomics (monitoring reads a snapshot;
//! exact agreement between counters is not needed), listed by [`Conns::snapshot`].
//!
//! One leaf mutex over the map; never held across an await or while another lock is taken.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use twig_util::lock::lock;

/// What `/connz` shows of one MQTT connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConn {
    /// Connection id (shared with the NATS clients' numbering).
    pub cid: u64,
    /// The device's address.
    pub addr: SocketAddr,
    /// When it connected.
    pub start: SystemTime,
    /// Its last packet in or delivery out.
    pub last_activity: SystemTime,
    /// Its client id (nats-server's `mqtt_client`).
    pub client_id: String,
    /// The user it logged in as.
    pub user: Option<String>,
    /// PUBLISH packets from it, and their payload bytes.
    pub in_msgs: u64,
    pub in_bytes: u64,
    /// Messages handed to its session for delivery, and their payload bytes.
    pub out_msgs: u64,
    pub out_bytes: u64,
    /// Its MQTT subscriptions (filters).
    pub subscriptions: u32,
}

/// One connection's live numbers (its task writes, monitoring reads).
pub(super) struct ConnView {
    cid: u64,
    addr: SocketAddr,
    start: SystemTime,
    client_id: String,
    user: Option<String>,
    /// Nanoseconds since the Unix epoch.
    last_activity: AtomicU64,
    in_msgs: AtomicU64,
    in_bytes: AtomicU64,
    out_msgs: AtomicU64,
    out_bytes: AtomicU64,
    subscriptions: AtomicU32,
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl ConnView {
    pub fn new(cid: u64, addr: SocketAddr, client_id: &str, user: Option<String>) -> ConnView {
        let start = twig_util::clock::now();
        ConnView {
            cid,
            addr,
            start,
            client_id: client_id.to_string(),
            user,
            last_activity: AtomicU64::new(nanos(start)),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            subscriptions: AtomicU32::new(0),
        }
    }

    fn touch(&self) {
        self.last_activity
            .store(nanos(twig_util::clock::now()), Relaxed);
    }

    /// A PUBLISH from the device.
    pub fn received(&self, bytes: usize) {
        self.in_msgs.fetch_add(1, Relaxed);
        self.in_bytes.fetch_add(bytes as u64, Relaxed);
        self.touch();
    }

    /// A message handed to the session for the device.
    pub fn delivered(&self, bytes: usize) {
        self.out_msgs.fetch_add(1, Relaxed);
        self.out_bytes.fetch_add(bytes as u64, Relaxed);
        self.touch();
    }

    /// The session's subscriptions now.
    pub fn set_subscriptions(&self, n: usize) {
        self.subscriptions
            .store(u32::try_from(n).unwrap_or(u32::MAX), Relaxed);
    }

    fn snapshot(&self) -> MqttConn {
        MqttConn {
            cid: self.cid,
            addr: self.addr,
            start: self.start,
            last_activity: SystemTime::UNIX_EPOCH
                + Duration::from_nanos(self.last_activity.load(Relaxed)),
            client_id: self.client_id.clone(),
            user: self.user.clone(),
            in_msgs: self.in_msgs.load(Relaxed),
            in_bytes: self.in_bytes.load(Relaxed),
            out_msgs: self.out_msgs.load(Relaxed),
            out_bytes: self.out_bytes.load(Relaxed),
            subscriptions: self.subscriptions.load(Relaxed),
        }
    }
}

/// The open connections by connection id.
#[derive(Default)]
pub(super) struct Conns {
    map: Mutex<HashMap<u64, Arc<ConnView>>>,
}

impl Conns {
    pub fn add(&self, v: Arc<ConnView>) {
        lock(&self.map).insert(v.cid, v);
    }

    pub fn remove(&self, cid: u64) {
        lock(&self.map).remove(&cid);
    }

    /// Every open connection, by connection id.
    pub fn snapshot(&self) -> Vec<MqttConn> {
        let views: Vec<Arc<ConnView>> = lock(&self.map).values().cloned().collect();
        let mut out: Vec<MqttConn> = views.iter().map(|v| v.snapshot()).collect();
        out.sort_by_key(|c| c.cid);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_lists_by_cid() {
        let conns = Conns::default();
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let a = Arc::new(ConnView::new(7, addr, "dev-7", Some("u".into())));
        let b = Arc::new(ConnView::new(3, addr, "dev-3", None));
        conns.add(a.clone());
        conns.add(b);
        a.received(10);
        a.received(5);
        a.delivered(4);
        a.set_subscriptions(2);
        let s = conns.snapshot();
        assert_eq!(s.iter().map(|c| c.cid).collect::<Vec<_>>(), [3, 7]);
        let c = &s[1];
        assert_eq!(
            (c.in_msgs, c.in_bytes, c.out_msgs, c.out_bytes),
            (2, 15, 1, 4)
        );
        assert_eq!((c.client_id.as_str(), c.subscriptions), ("dev-7", 2));
        conns.remove(7);
        assert_eq!(conns.snapshot().len(), 1);
    }
}
