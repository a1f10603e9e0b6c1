//! What the monitor reads, wired by the app: `/varz`, `/connz`, `/leafz`, `/healthz`, `/jsz`
//! and `/mqttz` built from the snapshots each component exposes (the client connections, the
//! uplink's links, the streams, the sync consumers, the MQTT bridge). The monitor component
//! itself knows none of them: it serves what [`MonitorSource`] answers.

use std::net::TcpListener;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_io::Async;

use crate::config::Config;
use crate::monitor::http::Response;
use crate::monitor::leafz::go_duration;
use crate::monitor::{
    ConnInfo, Connz, ConnzQuery, Healthz, LeafInfo, Leafz, MonitorSource, RemoteInfo, SubDetail,
    Varz,
};
use crate::router::Router;
use crate::router::client::ClientShared;
use crate::server::state::Shared;
use crate::uplink::uplinks::Uplinks;
use crate::util::lock::lock;

/// Every component's view, for the monitor.
pub struct Sources {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// The router (counters, subscription count).
    pub router: Arc<Router>,
    /// The client connections' state.
    pub clients: Arc<Shared>,
    /// The uplink's remotes (their links change with a reload).
    pub uplinks: Arc<Uplinks>,
    /// The monitoring port actually bound (0 = none).
    pub http_port: AtomicU64,
    /// The streams, when configured.
    pub streams: Option<Arc<crate::stream::Streams>>,
    /// The `[[sync]]` consumers' counters, once their tasks run.
    pub sync: OnceLock<Vec<Arc<crate::sync::Stats>>>,
    /// The MQTT bridge, once it runs.
    pub mqtt: OnceLock<Arc<crate::mqtt::Bridge>>,
    /// The MQTT listener, once it runs.
    pub mqtt_listener: OnceLock<Arc<crate::mqtt::listener::Listener>>,
}

/// `/mqttz`: the bridge's snapshot (its fields at the top, as before) and the listener's
/// counters under `listener`.
#[derive(serde::Serialize)]
struct Mqttz {
    #[serde(flatten)]
    bridge: crate::mqtt::stats::Mqttz,
    #[serde(skip_serializing_if = "Option::is_none")]
    listener: Option<crate::mqtt::listener::ListenerSnapshot>,
}

/// `/jsz`: twig's flash-backed streams. Not nats-server's `/jsz` shape (twig has no JetStream
/// accounts or consumers); one entry per stream with its log's and its forwarder's counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Jsz {
    /// The server's id.
    pub server_id: String,
    /// Every configured stream.
    pub streams: Vec<crate::stream::StreamState>,
    /// The `[[sync]]` pull consumers on hub streams.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<crate::sync::SyncState>,
}

/// Binds the monitoring port if one is configured; returns the server future to spawn.
pub fn bind(
    sources: &Arc<Sources>,
) -> Result<Option<impl std::future::Future<Output = ()> + Send + use<>>, String> {
    let config = &sources.config;
    let Some(port) = config.http_port else {
        return Ok(None);
    };
    let addr = format!("{}:{}", config.effective_http_host(), port.bind_port());
    let listener = TcpListener::bind(&addr)
        .and_then(Async::new)
        .map_err(|e| format!("cannot listen for monitoring on {addr}: {e}"))?;
    let bound = listener.get_ref().local_addr().map_err(|e| e.to_string())?;
    tracing::info!("Starting http monitor on {bound}");
    sources.http_port.store(u64::from(bound.port()), Relaxed);
    let source: Arc<dyn MonitorSource> = sources.clone();
    let options = crate::monitor::ServeOptions {
        max_request_bytes: config.http_max_request,
        max_connections: config.http_max_connections,
        timeout: config.http_timeout,
    };
    Ok(Some(crate::monitor::serve_with(listener, source, options)))
}

impl MonitorSource for Sources {
    fn varz(&self) -> Varz {
        let c = &self.clients;
        let mut v = Varz::new(
            &self.config,
            &c.server_id,
            c.port,
            self.http_port.load(Relaxed) as u16,
            c.start,
        )
        .with_stats(&self.router.stats);
        v.server_name = c.server_name.clone();
        // The TLS in force (a reload may have changed it since start).
        let tls = c.tls();
        v.tls_required = tls.is_some();
        v.tls_verify = tls.as_ref().is_some_and(|t| t.verify);
        v.connections = c.connections().len();
        v.subscriptions = self.router.count() as u64;
        v.leafnodes = self
            .uplinks
            .links()
            .iter()
            .filter(|l| l.is_connected())
            .count();
        v
    }

    fn connz(&self, query: &ConnzQuery) -> Connz {
        let mut conns: Vec<ConnInfo> = self
            .clients
            .connections()
            .iter()
            .map(|c| conn_info(c))
            .collect();
        // MQTT devices are clients too, as in nats-server's /connz (`type` mqtt).
        if let Some(l) = self.mqtt_listener.get() {
            conns.extend(l.connections().iter().map(mqtt_conn_info));
        }
        Connz::build(
            &self.clients.server_id,
            twig_util::clock::now(),
            conns,
            query,
        )
    }

    fn healthz(&self) -> Healthz {
        Healthz::ok()
    }

    fn healthz_leafnodes(&self) -> Healthz {
        for l in self.uplinks.links().iter().map(|l| l.snapshot(false)) {
            if !l.connected {
                let why = l.status.last_error.as_deref().unwrap_or("connecting");
                return Healthz::unavailable(format!(
                    "leafnode remote {} ({}) is not connected: {why}",
                    l.index, l.status.url
                ));
            }
        }
        Healthz::ok()
    }

    fn leafz(&self, subs: bool) -> Leafz {
        let mut leafs = Vec::new();
        let mut remotes = Vec::new();
        for l in self.uplinks.links().iter().map(|l| l.snapshot(subs)) {
            let st = &l.status;
            if l.connected {
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
                    in_msgs: l.in_msgs,
                    out_msgs: l.out_msgs,
                    in_bytes: l.in_bytes,
                    out_bytes: l.out_bytes,
                    subscriptions: l.hub_interest,
                    subscriptions_list: l.hub_subs.clone(),
                    compression: st.compression.clone(),
                });
            }
            remotes.push(RemoteInfo {
                url: st.url.clone(),
                connected: l.connected,
                last_error: if l.connected {
                    None
                } else {
                    st.last_error.clone()
                },
                connects: st.connects,
                attempts: st.attempts,
                local_interest: l.local_interest,
                pending_bytes: l.pending_bytes,
                dropped_msgs: l.dropped,
            });
        }
        Leafz {
            server_id: self.clients.server_id.clone(),
            now: twig_util::clock::now(),
            leafnodes: leafs.len(),
            leafs,
            remotes,
        }
    }

    fn jsz(&self) -> Response {
        Response::json(&Jsz {
            server_id: self.clients.server_id.clone(),
            streams: self
                .streams
                .as_ref()
                .map(|s| s.states())
                .unwrap_or_default(),
            consumers: self
                .sync
                .get()
                .map_or_else(Vec::new, |v| v.iter().map(|s| s.snapshot()).collect()),
        })
    }

    fn mqttz(&self) -> Response {
        Response::json(&Mqttz {
            bridge: self.mqtt.get().map(|b| b.mqttz()).unwrap_or_default(),
            listener: self.mqtt_listener.get().map(|l| l.snapshot()),
        })
    }

    fn mqtt_listener(&self) -> Option<crate::monitor::metrics::MqttListener> {
        let s = self.mqtt_listener.get()?.snapshot();
        Some(crate::monitor::metrics::MqttListener {
            connections: s.connections,
            total_connections: s.total_connections,
            sessions: s.sessions,
            stored_sessions: s.stored_sessions,
            stored_queued: s.stored_queued,
            retained: s.retained,
            retained_refused: s.retained_refused,
            in_msgs: s.in_msgs,
            in_bytes: s.in_bytes,
            auth_failures: s.auth_failures,
            dropped: s.dropped,
            store_waits: s.store_waits,
        })
    }
}

fn mqtt_conn_info(c: &crate::mqtt::listener::MqttConn) -> ConnInfo {
    let mut i = ConnInfo::new(c.cid, c.addr, c.start);
    i.conn_type = "mqtt";
    i.last_activity = c.last_activity;
    i.in_msgs = c.in_msgs;
    i.in_bytes = c.in_bytes;
    i.out_msgs = c.out_msgs;
    i.out_bytes = c.out_bytes;
    i.subscriptions = c.subscriptions;
    i.mqtt_client = Some(c.client_id.clone());
    i.authorized_user = c.user.clone();
    i
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
        i.authorized_user = info.authorized_user.clone();
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
