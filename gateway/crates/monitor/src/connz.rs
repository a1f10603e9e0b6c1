//! `/connz`: the query (`?sort=&subs=&offset=&limit=&cid=&state=&auth=`) and the body, shaped
//! like nats-server's. [`Connz::build`] does the filtering, sorting and paging, so a
//! [`super::MonitorSource`] only lists its connections.
use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use super::varz::{format_uptime, rfc3339};

/// nats-server's default page size (`DefaultConnListSize`).
pub const DEFAULT_LIMIT: usize = 1024;

/// Which connections `/connz` lists (`state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnState {
    /// Open connections (default).
    #[default]
    Open,
    /// Recently closed connections (the server keeps a bounded number).
    Closed,
    /// Both.
    All,
}

/// Whether to list subscriptions (`subs=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubsDetail {
    /// No list (default).
    #[default]
    None,
    /// `subs=1`: `subscriptions_list` of subjects.
    List,
    /// `subs=detail`: `subscriptions_list_detail` with queue group, sid and message count.
    Detail,
}

/// Sort order (`sort=`): `cid` and `start` ascending, the rest largest first, as nats-server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Connection id (default).
    #[default]
    Cid,
    /// Start time.
    Start,
    /// Number of subscriptions.
    Subs,
    /// Pending bytes.
    Pending,
    /// Messages sent to the client.
    MsgsTo,
    /// Messages received from the client.
    MsgsFrom,
    /// Bytes sent to the client.
    BytesTo,
    /// Bytes received from the client.
    BytesFrom,
    /// Last activity, most recent first.
    Last,
    /// Idle time, longest first.
    Idle,
    /// Uptime, longest first.
    Uptime,
    /// Stop time (closed connections), most recent first.
    Stop,
    /// Close reason.
    Reason,
}

/// The parsed `/connz` query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnzQuery {
    /// `sort`.
    pub sort: SortBy,
    /// `subs`.
    pub subs: SubsDetail,
    /// `auth`: include `authorized_user`.
    pub auth: bool,
    /// `offset` into the sorted list.
    pub offset: usize,
    /// `limit`: page size (default 1024).
    pub limit: usize,
    /// `cid`: only this connection.
    pub cid: Option<u64>,
    /// `state`.
    pub state: ConnState,
}

impl Default for ConnzQuery {
    fn default() -> Self {
        ConnzQuery {
            sort: SortBy::Cid,
            subs: SubsDetail::None,
            auth: false,
            offset: 0,
            limit: DEFAULT_LIMIT,
            cid: None,
            state: ConnState::Open,
        }
    }
}

impl ConnzQuery {
    /// Parses a query string (the part after `?`, already split off). Unknown keys are
    /// ignored, as nats-server does; bad values are errors with nats-server-like wording.
    pub fn parse(query: &str) -> Result<ConnzQuery, String> {
        let mut q = ConnzQuery::default();
        for (key, value) in super::http::query_pairs(query) {
            match key.as_str() {
                "sort" => q.sort = parse_sort(&value)?,
                "subs" => {
                    q.subs = match value.as_str() {
                        "detail" => SubsDetail::Detail,
                        v if parse_bool("subs", v)? => SubsDetail::List,
                        _ => SubsDetail::None,
                    }
                }
                "auth" => q.auth = parse_bool("auth", &value)?,
                "offset" => q.offset = parse_int("offset", &value)?,
                "limit" => {
                    // nats-server: a limit of 0 means the default page size.
                    q.limit = match parse_int("limit", &value)? {
                        0 => DEFAULT_LIMIT,
                        n => n,
                    }
                }
                "cid" => q.cid = Some(parse_int("cid", &value)?),
                "state" => {
                    q.state = match value.as_str() {
                        "open" => ConnState::Open,
                        "closed" => ConnState::Closed,
                        "all" | "any" => ConnState::All,
                        other => return Err(format!("invalid state option: {other}")),
                    }
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

fn parse_sort(v: &str) -> Result<SortBy, String> {
    Ok(match v {
        "" | "cid" => SortBy::Cid,
        "start" => SortBy::Start,
        "subs" => SortBy::Subs,
        "pending" => SortBy::Pending,
        "msgs_to" => SortBy::MsgsTo,
        "msgs_from" => SortBy::MsgsFrom,
        "bytes_to" => SortBy::BytesTo,
        "bytes_from" => SortBy::BytesFrom,
        "last" => SortBy::Last,
        "idle" => SortBy::Idle,
        "uptime" => SortBy::Uptime,
        "stop" => SortBy::Stop,
        "reason" => SortBy::Reason,
        other => return Err(format!("invalid sorting option: {other}")),
    })
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        other => Err(format!("Error decoding boolean for '{key}': {other:?}")),
    }
}

fn parse_int<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("Error decoding int for '{key}': {v:?} is not a number"))
}

/// The `/connz` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connz {
    /// Server id.
    pub server_id: String,
    /// When the list was made.
    #[serde(serialize_with = "rfc3339")]
    pub now: SystemTime,
    /// Connections in this page.
    pub num_connections: usize,
    /// Connections that matched, over all pages.
    pub total: usize,
    /// The page's offset.
    pub offset: usize,
    /// The page size asked for.
    pub limit: usize,
    /// This page.
    pub connections: Vec<ConnInfo>,
}

/// One connection in `/connz`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnInfo {
    /// Connection id.
    pub cid: u64,
    /// Always `Client` here (leafnodes are in `/leafz`).
    pub kind: &'static str,
    /// `nats`, or `mqtt` for a device on the MQTT listener (nats-server also has `websocket`).
    #[serde(rename = "type")]
    pub conn_type: &'static str,
    /// Client IP.
    pub ip: String,
    /// Client port.
    pub port: u16,
    /// When it connected.
    #[serde(serialize_with = "rfc3339")]
    pub start: SystemTime,
    /// Last message in or out.
    #[serde(serialize_with = "rfc3339")]
    pub last_activity: SystemTime,
    /// When it closed (closed connections only).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_rfc3339"
    )]
    pub stop: Option<SystemTime>,
    /// Why it closed, in nats-server's words (`Client Closed`, `Slow Consumer (Pending Bytes)`,
    /// `Stale Connection`, `Authentication Timeout`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time connected; [`Connz::build`] fills it.
    pub uptime: String,
    /// Time since last activity; [`Connz::build`] fills it.
    pub idle: String,
    /// Bytes queued for the client.
    pub pending_bytes: u64,
    /// Messages from the client.
    pub in_msgs: u64,
    /// Messages to the client.
    pub out_msgs: u64,
    /// Payload bytes from the client.
    pub in_bytes: u64,
    /// Payload bytes to the client.
    pub out_bytes: u64,
    /// Number of subscriptions.
    pub subscriptions: u32,
    /// CONNECT `name` (omitted when empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// CONNECT `lang`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    /// CONNECT `version`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// An MQTT connection's client id (nats-server's `mqtt_client`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_client: Option<String>,
    /// The user or nkey it authenticated as (shown with `auth=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_user: Option<String>,
    /// Subscribed subjects (with `subs=1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
    /// Subscriptions in detail (with `subs=detail`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list_detail: Vec<SubDetail>,
}

/// One subscription in `subscriptions_list_detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubDetail {
    /// Subject.
    pub subject: String,
    /// Queue group (omitted when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qgroup: Option<String>,
    /// The client's sid.
    pub sid: String,
    /// Messages delivered to it.
    pub msgs: u64,
    /// Owning connection.
    pub cid: u64,
}

impl ConnInfo {
    /// A client connection from `addr` that started at `start`, all counters zero.
    pub fn new(cid: u64, addr: SocketAddr, start: SystemTime) -> ConnInfo {
        ConnInfo {
            cid,
            kind: "Client",
            conn_type: "nats",
            ip: addr.ip().to_string(),
            port: addr.port(),
            start,
            last_activity: start,
            stop: None,
            reason: None,
            uptime: String::new(),
            idle: String::new(),
            pending_bytes: 0,
            in_msgs: 0,
            out_msgs: 0,
            in_bytes: 0,
            out_bytes: 0,
            subscriptions: 0,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
            mqtt_client: None,
            authorized_user: None,
            subscriptions_list: Vec::new(),
            subscriptions_list_detail: Vec::new(),
        }
    }
}

impl Connz {
    /// Makes the page `query` asks for out of every connection in the asked-for state:
    /// filters by `cid`, sorts, pages, fills `uptime`/`idle` as of `now`, and drops what the
    /// query did not ask for (subscription lists, `authorized_user`).
    pub fn build(
        server_id: &str,
        now: SystemTime,
        mut conns: Vec<ConnInfo>,
        query: &ConnzQuery,
    ) -> Connz {
        if let Some(cid) = query.cid {
            conns.retain(|c| c.cid == cid);
        }
        sort(&mut conns, query.sort, now);
        let total = conns.len();
        let page: Vec<ConnInfo> = conns
            .into_iter()
            .skip(query.offset)
            .take(query.limit)
            .map(|mut c| {
                let end = c.stop.unwrap_or(now);
                c.uptime = format_uptime(end.duration_since(c.start).unwrap_or_default());
                c.idle = format_uptime(end.duration_since(c.last_activity).unwrap_or_default());
                if query.subs != SubsDetail::List {
                    c.subscriptions_list = Vec::new();
                }
                if query.subs != SubsDetail::Detail {
                    c.subscriptions_list_detail = Vec::new();
                }
                if !query.auth {
                    c.authorized_user = None;
                }
                c
            })
            .collect();
        Connz {
            server_id: server_id.to_string(),
            now,
            num_connections: page.len(),
            total,
            offset: query.offset,
            limit: query.limit,
            connections: page,
        }
    }
}

fn sort(conns: &mut [ConnInfo], by: SortBy, now: SystemTime) {
    let idle = |c: &ConnInfo| c.stop.unwrap_or(now).duration_since(c.last_activity).ok();
    let uptime = |c: &ConnInfo| c.stop.unwrap_or(now).duration_since(c.start).ok();
    // Ties fall back to cid order, so pages are stable between requests.
    match by {
        SortBy::Cid => conns.sort_by_key(|c| c.cid),
        SortBy::Start => conns.sort_by_key(|c| (c.start, c.cid)),
        SortBy::Subs => conns.sort_by_key(|c| (Reverse(c.subscriptions), c.cid)),
        SortBy::Pending => conns.sort_by_key(|c| (Reverse(c.pending_bytes), c.cid)),
        SortBy::MsgsTo => conns.sort_by_key(|c| (Reverse(c.out_msgs), c.cid)),
        SortBy::MsgsFrom => conns.sort_by_key(|c| (Reverse(c.in_msgs), c.cid)),
        SortBy::BytesTo => conns.sort_by_key(|c| (Reverse(c.out_bytes), c.cid)),
        SortBy::BytesFrom => conns.sort_by_key(|c| (Reverse(c.in_bytes), c.cid)),
        SortBy::Last => conns.sort_by_key(|c| (Reverse(c.last_activity), c.cid)),
        SortBy::Idle => conns.sort_by_key(|c| (Reverse(idle(c)), c.cid)),
        SortBy::Uptime => conns.sort_by_key(|c| (Reverse(uptime(c)), c.cid)),
        SortBy::Stop => conns.sort_by_key(|c| (Reverse(c.stop), c.cid)),
        SortBy::Reason => conns.sort_by(|a, b| (&a.reason, a.cid).cmp(&(&b.reason, b.cid))),
    }
}

fn opt_rfc3339<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_324_000 + secs)
    }

    fn conn(cid: u64, start: u64, subs: u32, out_msgs: u64) -> ConnInfo {
        let mut c = ConnInfo::new(cid, "127.0.0.1:50000".parse().unwrap(), at(start));
        c.subscriptions = subs;
        c.out_msgs = out_msgs;
        c.subscriptions_list = vec!["foo".into()];
        c.authorized_user = Some("app".into());
        c
    }

    fn cids(c: &Connz) -> Vec<u64> {
        c.connections.iter().map(|c| c.cid).collect()
    }

    fn query(text: &str) -> ConnzQuery {
        ConnzQuery::parse(text).unwrap()
    }

    #[test]
    fn query_parsing() {
        assert_eq!(query(""), ConnzQuery::default());
        let q = query("sort=msgs_to&subs=1&offset=2&limit=5&cid=7&state=closed&auth=true&x=y");
        assert_eq!(q.sort, SortBy::MsgsTo);
        assert_eq!(q.subs, SubsDetail::List);
        assert_eq!((q.offset, q.limit, q.cid), (2, 5, Some(7)));
        assert_eq!(q.state, ConnState::Closed);
        assert!(q.auth);
        assert_eq!(query("subs=detail").subs, SubsDetail::Detail);
        assert_eq!(query("subs=0").subs, SubsDetail::None);
        assert_eq!(query("limit=0").limit, DEFAULT_LIMIT);
        assert_eq!(
            ConnzQuery::parse("sort=foo"),
            Err("invalid sorting option: foo".into())
        );
        assert!(
            ConnzQuery::parse("limit=abc")
                .unwrap_err()
                .contains("'limit'")
        );
        assert!(ConnzQuery::parse("offset=-1").is_err());
        assert!(ConnzQuery::parse("state=maybe").is_err());
    }

    #[test]
    fn sorted_paged_and_trimmed() {
        let now = at(100);
        let all = vec![conn(3, 10, 1, 5), conn(1, 30, 4, 9), conn(2, 20, 4, 1)];
        let c = Connz::build("NID", now, all.clone(), &query(""));
        assert_eq!(cids(&c), [1, 2, 3]);
        assert_eq!((c.total, c.num_connections, c.limit), (3, 3, DEFAULT_LIMIT));
        assert_eq!(c.connections[0].uptime, "1m10s");
        assert!(c.connections[0].subscriptions_list.is_empty());
        assert_eq!(c.connections[0].authorized_user, None);

        let c = Connz::build("NID", now, all.clone(), &query("sort=subs"));
        assert_eq!(cids(&c), [1, 2, 3]);
        let c = Connz::build("NID", now, all.clone(), &query("sort=msgs_to&limit=2"));
        assert_eq!(cids(&c), [1, 3]);
        assert_eq!((c.total, c.num_connections), (3, 2));
        let c = Connz::build("NID", now, all.clone(), &query("sort=start&offset=1"));
        assert_eq!(cids(&c), [2, 1]);
        let c = Connz::build("NID", now, all.clone(), &query("sort=uptime"));
        assert_eq!(cids(&c), [3, 2, 1]);
        let c = Connz::build("NID", now, all.clone(), &query("offset=9"));
        assert_eq!((c.total, c.num_connections), (3, 0));

        let c = Connz::build("NID", now, all, &query("cid=2&subs=1&auth=1"));
        assert_eq!(cids(&c), [2]);
        assert_eq!(c.connections[0].subscriptions_list, ["foo"]);
        assert_eq!(c.connections[0].authorized_user.as_deref(), Some("app"));
    }

    #[test]
    fn json_shape_matches_nats_server() {
        let mut closed = conn(5, 0, 2, 1);
        closed.name = "probe".into();
        closed.stop = Some(at(3));
        closed.reason = Some("Client Closed".into());
        let c = Connz::build("NID", at(9), vec![closed], &query("state=closed&subs=1"));
        let text = serde_json::to_string(&c).unwrap();
        let top = [
            "server_id",
            "now",
            "num_connections",
            "total",
            "offset",
            "limit",
            "connections",
        ];
        let positions: Vec<usize> = top
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).expect(k))
            .collect();
        assert!(positions.is_sorted(), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let conn = &v["connections"][0];
        assert_eq!(conn["kind"], "Client");
        assert_eq!(conn["type"], "nats");
        assert_eq!(conn["start"], "2026-11-22T05:06:40Z");
        assert_eq!(conn["stop"], "2026-11-22T05:06:43Z");
        assert_eq!(conn["uptime"], "3s");
        assert_eq!(conn["reason"], "Client Closed");
        assert_eq!(conn["name"], "probe");
        assert!(conn.get("lang").is_none());
        assert_eq!(conn["subscriptions_list"][0], "foo");
        assert!(conn.get("subscriptions_list_detail").is_none());
    }
}
