//! The server's answers to `/varz`, `/connz` and `/healthz`: snapshots of [`Shared`].

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use async_io::Async;

use super::state::Shared;
use crate::monitor::leafz::go_duration;
use crate::monitor::{
    ConnInfo, Connz, ConnzQuery, Healthz, Jsz, LeafInfo, Leafz, MonitorSource, RemoteInfo,
    SubDetail, Varz,
};
use crate::router::client::ClientShared;
use crate::util::lock::lock;

/// Binds the monitoring port if one is configured; returns the server future to spawn.
pub fn bind(
    shared: &Arc<Shared>,
) -> Result<Option<impl std::future::Future<Output = ()> + Send + use<>>, String> {
    let Some(port) = shared.config.http_port else {
        return Ok(None);
    };
    let addr = format!(
        "{}:{}",
        shared.config.effective_http_host(),
        port.bind_port()
    );
    let listener = TcpListener::bind(&addr)
        .and_then(Async::new)
        .map_err(|e| format!("cannot listen for monitoring on {addr}: {e}"))?;
    let bound = listener.get_ref().local_addr().map_err(|e| e.to_string())?;
    tracing::info!("Starting http monitor on {bound}");
    shared.http_port.store(u64::from(bound.port()), Relaxed);
    let source: Arc<dyn MonitorSource> = shared.clone();
    Ok(Some(crate::monitor::serve(listener, source)))
}

impl MonitorSource for Shared {
    fn varz(&self) -> Varz {
        let mut v = Varz::new(
            &self.config,
            &self.server_id,
            self.port,
            self.http_port.load(Relaxed) as u16,
            self.start,
        )
        .with_stats(&self.router.stats);
        v.server_name = self.server_name.clone();
        v.connections = lock(&self.clients).len();
        v.subscriptions = self.router.count() as u64;
        v.leafnodes = self.links.iter().filter(|l| l.is_connected()).count();
        v
    }

    fn connz(&self, query: &ConnzQuery) -> Connz {
        let clients: Vec<Arc<ClientShared>> = lock(&self.clients).values().cloned().collect();
        let conns = clients.iter().map(|c| conn_info(c)).collect();
        Connz::build(&self.server_id, SystemTime::now(), conns, query)
    }

    fn healthz(&self) -> Healthz {
        Healthz::ok()
    }

    fn healthz_leafnodes(&self) -> Healthz {
        for l in &self.links {
            if !l.is_connected() {
                let st = lock(&l.status);
                let why = st.last_error.as_deref().unwrap_or("connecting");
                return Healthz::unavailable(format!(
                    "leafnode remote {} ({}) is not connected: {why}",
                    l.index, st.url
                ));
            }
        }
        Healthz::ok()
    }

    fn leafz(&self, subs: bool) -> Leafz {
        let mut leafs = Vec::new();
        let mut remotes = Vec::new();
        for l in &self.links {
            let st = lock(&l.status).clone();
            let connected = l.is_connected();
            let (in_msgs, out_msgs) = (l.in_msgs.load(Relaxed), l.out_msgs.load(Relaxed));
            let (in_bytes, out_bytes) = (l.in_bytes.load(Relaxed), l.out_bytes.load(Relaxed));
            if connected {
                let hub_subs = lock(&l.hub_subs);
                let list = subs.then(|| {
                    let mut v: Vec<String> = hub_subs
                        .keys()
                        .map(|(s, q)| match q {
                            Some(q) => format!(
                                "{} {}",
                                String::from_utf8_lossy(s),
                                String::from_utf8_lossy(q)
                            ),
                            None => String::from_utf8_lossy(s).into_owned(),
                        })
                        .collect();
                    v.sort();
                    v
                });
                let (ip, port) = match st.url.rsplit_once(':') {
                    Some((h, p)) => (
                        h.trim_matches(['[', ']']).to_string(),
                        p.parse().unwrap_or(0),
                    ),
                    None => (st.url.clone(), 0),
                };
                leafs.push(LeafInfo {
                    name: st.hub_name.clone(),
                    is_spoke: true,
                    account: st.account.clone(),
                    ip,
                    port,
                    rtt: go_duration(st.rtt.unwrap_or_default()),
                    in_msgs,
                    out_msgs,
                    in_bytes,
                    out_bytes,
                    subscriptions: hub_subs.len(),
                    subscriptions_list: list,
                    compression: st.compression.clone(),
                });
            }
            remotes.push(RemoteInfo {
                url: st.url.clone(),
                connected,
                last_error: if connected {
                    None
                } else {
                    st.last_error.clone()
                },
                connects: st.connects,
                attempts: st.attempts,
                local_interest: l.local_interest_count(),
                pending_bytes: l.out.pending(),
                dropped_msgs: l.dropped.load(Relaxed),
            });
        }
        Leafz {
            server_id: self.server_id.clone(),
            now: SystemTime::now(),
            leafnodes: leafs.len(),
            leafs,
            remotes,
        }
    }

    fn jsz(&self) -> Jsz {
        Jsz {
            server_id: self.server_id.clone(),
            streams: self.streams.get().map(|s| s.states()).unwrap_or_default(),
            consumers: self
                .sync
                .get()
                .map_or_else(Vec::new, |v| v.iter().map(|s| s.snapshot()).collect()),
        }
    }

    fn mqttz(&self) -> crate::mqtt::stats::Mqttz {
        self.mqtt.get().map(|b| b.mqttz()).unwrap_or_default()
    }
}

fn conn_info(c: &ClientShared) -> ConnInfo {
    let mut i = ConnInfo::new(c.cid, c.addr, c.start);
    i.last_activity = SystemTime::UNIX_EPOCH + Duration::from_nanos(c.last_activity.load(Relaxed));
    i.pending_bytes = c.out.pending() as u64;
    i.in_msgs = c.in_msgs.load(Relaxed);
    i.in_bytes = c.in_bytes.load(Relaxed);
    i.out_msgs = c.out_msgs.load(Relaxed);
    i.out_bytes = c.out_bytes.load(Relaxed);
    {
        let info = lock(&c.info);
        i.name = info.name.clone();
        i.lang = info.lang.clone();
        i.version = info.version.clone();
    }
    let subs = lock(&c.subs);
    i.subscriptions = subs.len() as u32;
    // Connz::build drops the lists the query did not ask for.
    for s in subs.values() {
        let subject = String::from_utf8_lossy(&s.subject).into_owned();
        i.subscriptions_list.push(subject.clone());
        i.subscriptions_list_detail.push(SubDetail {
            subject,
            qgroup: s
                .queue
                .as_ref()
                .map(|q| String::from_utf8_lossy(q).into_owned()),
            sid: String::from_utf8_lossy(&s.sid).into_owned(),
            msgs: s.delivered.load(Relaxed),
            cid: c.cid,
        });
    }
    i
}
