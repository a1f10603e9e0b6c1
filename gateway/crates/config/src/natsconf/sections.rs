//! nats-server's options, section by section (names and aliases from nats-server's
//! `opts.go`), and what each becomes in twig's config.
use twig_natsconf::{Entry, Kind, Map};

use super::{
    Action, Conv, Origins, any, as_map, at, convert, host_port, join, merge_table, seconds,
    section, wrong,
};
use crate::ConfigError;

type Out = toml::Table;

const NO_JETSTREAM: &str = "twig has no JetStream server; its durable streams are `[[streams]]` \
                            in twig's TOML, and it forwards them to a hub's JetStream";
const NO_CLUSTER: &str = "twig is a leaf node and never part of a cluster or supercluster";
const NO_ACCOUNTS: &str = "twig serves one account (nats-server's $G); give users in \
                           `authorization` instead";
const NO_OPERATOR: &str = "twig has no operator/JWT mode for its own clients (as a leaf it \
                           does log in to operator-mode hubs with `credentials`)";
const NO_LISTENER: &str = "twig does not accept leafnode connections; it connects out to hubs \
                           (`remotes`)";
const NO_WEBSOCKET: &str = "twig has no websocket listener";
const MQTT_STATE: &str = "twig keeps MQTT sessions and retained messages in its own store file \
                          (`store_file`), not in JetStream";
const NO_HTTPS: &str = "twig's monitoring port speaks plain HTTP; put it behind a TLS proxy";
const LOGROTATE: &str = "twig does not rotate its log itself; rotate `log_file` with logrotate \
                         and `twig --signal reopen`";
const TLS_TUNING: &str = "twig's TLS (rustls) uses its own safe defaults and does not take this";

/// The top level.
pub(super) fn top(tree: &Map, out: &mut Out, origins: &mut Origins) -> Result<(), ConfigError> {
    section(tree, "", out, origins, top_option, "the top level")
}

fn top_option(key: &str) -> Option<Action> {
    use Action::{Custom, To, Unsupported};
    use Conv::{Bool, Duration, Int, Size, Str};
    Some(match key {
        "listen" => Custom(listen),
        "host" | "net" => To("host", Str),
        "port" => To("port", Int),
        "server_name" => To("server_name", Str),
        "http" => Custom(http),
        "http_port" | "monitor_port" => To("http_port", Int),
        "max_payload" => To("max_payload", Size),
        "max_control_line" => To("max_control_line", Size),
        "max_pending" => To("max_pending", Size),
        "max_connections" | "max_conn" => To("max_connections", Int),
        "max_subscriptions" | "max_subs" => To("max_subscriptions", Int),
        "ping_interval" => To("ping_interval", Duration),
        "ping_max" => To("ping_max", Int),
        "write_deadline" => To("write_deadline", Duration),
        "no_header_support" => To("no_header_support", Bool),
        "lame_duck_duration" => To("lame_duck_duration", Duration),
        "lame_duck_grace_period" => To("lame_duck_grace_period", Duration),
        "authorization" => Custom(authorization),
        "no_auth_user" => Custom(no_auth_user),
        // twig's own (mosquitto 2's name): nats-server listens on every interface with no
        // authorization; twig refuses to unless told.
        "allow_anonymous" => To("allow_anonymous", Bool),
        "tls" => Custom(tls),
        "leaf" | "leafnodes" => Custom(leafnodes),
        "debug" => To("debug", Bool),
        "trace" | "trace_verbose" => To("trace", Bool),
        "logtime" => Custom(logtime),
        "logtime_utc" => Custom(logtime_utc),
        "logfile" | "log_file" => To("log_file", Str),
        "logfile_size_limit" | "log_size_limit" | "logfile_max_num" | "log_max_num" => {
            Custom(log_rotation)
        }
        "syslog" => Custom(syslog),
        "pidfile" | "pid_file" => To("pid_file", Str),
        "store_dir" | "storedir" => To("store_dir", Str),
        "jetstream" | "default_js_domain" => Unsupported(NO_JETSTREAM),
        "cluster" | "gateway" | "client_advertise" => Unsupported(NO_CLUSTER),
        "accounts" | "system_account" | "system" | "no_system_account" | "no_system"
        | "no_sys_acc" | "mappings" | "maps" => Unsupported(NO_ACCOUNTS),
        "operator"
        | "operators"
        | "roots"
        | "root"
        | "root_operators"
        | "root_operator"
        | "resolver"
        | "account_resolver"
        | "accounts_resolver"
        | "resolver_tls"
        | "resolver_preload"
        | "resolver_pinned_accounts"
        | "trusted"
        | "trusted_keys"
        | "default_sentinel" => Unsupported(NO_OPERATOR),
        "websocket" | "ws" => Unsupported(NO_WEBSOCKET),
        "mqtt" => Custom(mqtt),
        "https" | "https_port" | "http_base_path" => Unsupported(NO_HTTPS),
        "remote_syslog" => Unsupported("twig logs to stderr or `log_file`, not to syslog"),
        "ocsp" | "ocsp_cache" | "allow_non_tls" => Unsupported(TLS_TUNING),
        "max_sub_tokens" | "max_subscription_tokens" => {
            Unsupported("twig limits subjects by `max_control_line` only")
        }
        "write_timeout" => Unsupported("twig closes a client that passes `write_deadline`"),
        "trace_headers" | "max_traced_msg_len" => {
            Unsupported("twig's -V traces each protocol line whole")
        }
        "ports_file_dir" => {
            Unsupported("twig logs its ports (`Listening for client connections on`)")
        }
        "prof_port" | "prof_block_rate" => Unsupported("twig has no Go profiler"),
        "proxy_protocol" | "proxies" => Unsupported("twig does not take PROXY protocol headers"),
        "server_tags"
        | "server_metadata"
        | "feature_flags"
        | "connect_error_reports"
        | "reconnect_error_reports"
        | "disable_sublist_cache"
        | "no_sublist_cache"
        | "no_fast_producer_stall"
        | "max_closed_clients" => Unsupported("twig has no such setting"),
        _ => return None,
    })
}

/// `listen: host:port` (or a port).
fn listen(
    e: &Entry,
    out: &mut Out,
    origins: &mut Origins,
    prefix: &str,
) -> Result<(), ConfigError> {
    let (host, port) = host_port(e)?;
    if let Some(h) = host {
        origins.note(&join(prefix, "host"), e);
        out.insert("host".into(), toml::Value::String(h));
    }
    if let Some(p) = port {
        origins.note(&join(prefix, "port"), e);
        out.insert("port".into(), toml::Value::Integer(p));
    }
    Ok(())
}

/// `http: host:port`: monitoring.
fn http(e: &Entry, out: &mut Out, origins: &mut Origins, _: &str) -> Result<(), ConfigError> {
    let (host, port) = host_port(e)?;
    if let Some(h) = host {
        origins.note("http_host", e);
        out.insert("http_host".into(), toml::Value::String(h));
    }
    if let Some(p) = port {
        origins.note("http_port", e);
        out.insert("http_port".into(), toml::Value::Integer(p));
    }
    Ok(())
}

/// An option twig honours only at the value that matches what it always does.
fn only(e: &Entry, ok: bool, why: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(at(
            &e.key_pos,
            format!(
                "option `{}` with this value is not supported by twig: {why}",
                e.key
            ),
        ))
    }
}

fn logtime(e: &Entry, _: &mut Out, _: &mut Origins, _: &str) -> Result<(), ConfigError> {
    only(
        e,
        e.value.kind == Kind::Bool(true),
        "twig always timestamps its log lines",
    )
}

fn logtime_utc(e: &Entry, _: &mut Out, _: &mut Origins, _: &str) -> Result<(), ConfigError> {
    only(
        e,
        e.value.kind == Kind::Bool(true),
        "twig's log times are always UTC",
    )
}

fn syslog(e: &Entry, _: &mut Out, _: &mut Origins, _: &str) -> Result<(), ConfigError> {
    only(
        e,
        e.value.kind == Kind::Bool(false),
        "twig logs to stderr or `log_file`",
    )
}

fn log_rotation(e: &Entry, _: &mut Out, _: &mut Origins, _: &str) -> Result<(), ConfigError> {
    only(e, e.value.kind == Kind::Integer(0), LOGROTATE)
}

/// `authorization { ... }`; its `timeout` is twig's top-level `auth_timeout`.
fn authorization(
    e: &Entry,
    out: &mut Out,
    origins: &mut Origins,
    _: &str,
) -> Result<(), ConfigError> {
    let mut t = Out::new();
    section(
        as_map(e)?,
        "authorization",
        &mut t,
        origins,
        auth_option,
        "authorization",
    )?;
    if let Some(v) = t.remove("auth_timeout") {
        out.insert("auth_timeout".into(), v);
    }
    merge_table(out, "authorization", t);
    Ok(())
}

fn auth_option(key: &str) -> Option<Action> {
    use Action::{Custom, To, Unsupported};
    use Conv::{Any, Str};
    Some(match key {
        "user" | "username" => To("user", Str),
        "pass" | "password" => To("password", Str),
        "token" => To("token", Str),
        "timeout" => Custom(auth_timeout),
        "users" => Custom(users),
        "default_permission" | "default_permissions" | "permissions" => {
            To("default_permissions", Any)
        }
        // twig's own: slowing down addresses that keep failing to log in.
        "login_throttle" => To("login_throttle", Any),
        "auth_callout" | "auth_hook" => Unsupported("twig has no auth callout"),
        "proxy_required" => Unsupported("twig does not take PROXY protocol headers"),
        _ => return None,
    })
}

fn auth_timeout(
    e: &Entry,
    out: &mut Out,
    origins: &mut Origins,
    _: &str,
) -> Result<(), ConfigError> {
    origins.note("auth_timeout", e);
    out.insert("auth_timeout".into(), seconds(e)?);
    Ok(())
}

fn no_auth_user(
    e: &Entry,
    out: &mut Out,
    origins: &mut Origins,
    _: &str,
) -> Result<(), ConfigError> {
    let v = convert(e, Conv::Str)?;
    origins.note("authorization.no_auth_user", e);
    let mut t = Out::new();
    t.insert("no_auth_user".into(), v);
    merge_table(out, "authorization", t);
    Ok(())
}

/// `users: [ { user, password, permissions } | { nkey } ]`.
fn users(e: &Entry, out: &mut Out, origins: &mut Origins, _: &str) -> Result<(), ConfigError> {
    let Kind::Array(items) = &e.value.kind else {
        return Err(wrong(e, "a list of users"));
    };
    origins.note("authorization.users", e);
    let mut list = Vec::new();
    for item in items {
        let Kind::Map(m) = &item.kind else {
            return Err(super::at(
                &item.pos,
                "each user must be a block { ... }".into(),
            ));
        };
        let mut u = Out::new();
        section(
            m,
            "authorization.users",
            &mut u,
            origins,
            user_option,
            "a user",
        )?;
        list.push(toml::Value::Table(u));
    }
    out.insert("users".into(), toml::Value::Array(list));
    Ok(())
}

fn user_option(key: &str) -> Option<Action> {
    use Action::{To, Unsupported};
    use Conv::{Any, Str};
    Some(match key {
        "user" | "username" => To("user", Str),
        "pass" | "password" => To("password", Str),
        "nkey" => To("nkey", Str),
        "permission" | "permissions" | "authorization" => To("permissions", Any),
        "allowed_connection_types" | "connection_types" | "clients" => {
            Unsupported("twig has only one kind of client connection")
        }
        "proxy_required" => Unsupported("twig does not take PROXY protocol headers"),
        _ => return None,
    })
}

/// `tls { ... }` on the client port.
fn tls(e: &Entry, out: &mut Out, origins: &mut Origins, _: &str) -> Result<(), ConfigError> {
    let mut t = Out::new();
    section(as_map(e)?, "tls", &mut t, origins, tls_option, "tls")?;
    merge_table(out, "tls", t);
    Ok(())
}

fn tls_option(key: &str) -> Option<Action> {
    use Action::{Custom, To, Unsupported};
    use Conv::{Bool, Str};
    Some(match key {
        "cert_file" => To("cert_file", Str),
        "key_file" => To("key_file", Str),
        "ca_file" => To("ca_file", Str),
        "verify" => To("verify", Bool),
        "verify_and_map" => To("verify_and_map", Bool),
        "timeout" => Custom(tls_timeout),
        _ => return tls_unsupported(key).map(Unsupported),
    })
}

fn tls_unsupported(key: &str) -> Option<&'static str> {
    Some(match key {
        "insecure"
        | "cipher_suites"
        | "curve_preferences"
        | "allow_insecure_cipher_suites"
        | "min_version"
        | "pinned_certs"
        | "connection_rate_limit" => TLS_TUNING,
        "handshake_first" | "first" | "immediate" => {
            "twig sends INFO before the TLS handshake, as nats-server does by default"
        }
        "cert_store"
        | "cert_match_by"
        | "cert_match"
        | "ca_certs_match"
        | "cert_match_skip_invalid" => "twig reads certificates from PEM files only",
        "verify_cert_and_check_known_urls" | "ocsp_peer" | "certs" | "certificates" => TLS_TUNING,
        _ => return None,
    })
}

fn tls_timeout(
    e: &Entry,
    out: &mut Out,
    origins: &mut Origins,
    prefix: &str,
) -> Result<(), ConfigError> {
    origins.note(&join(prefix, "timeout"), e);
    out.insert("timeout".into(), seconds(e)?);
    Ok(())
}

/// `mqtt { ... }`: twig's `[mqtt_listener]`.
fn mqtt(e: &Entry, out: &mut Out, origins: &mut Origins, _: &str) -> Result<(), ConfigError> {
    let mut t = Out::new();
    let prefix = "mqtt_listener";
    origins.note(prefix, e);
    section(as_map(e)?, prefix, &mut t, origins, mqtt_option, "mqtt")?;
    merge_table(out, prefix, t);
    Ok(())
}

fn mqtt_option(key: &str) -> Option<Action> {
    use Action::{Custom, To, Unsupported};
    use Conv::{Bool, Duration, Int, Size, Str};
    Some(match key {
        "listen" => Custom(listen),
        "host" | "net" => To("host", Str),
        "port" => To("port", Int),
        "tls" => Custom(mqtt_tls),
        "no_auth_user" => To("no_auth_user", Str),
        // nats-server: QoS 1 messages pending acknowledgement per subscription; twig: per
        // session, the same bound on what a device has in flight.
        "max_ack_pending" | "max_pending" | "max_inflight" => To("max_inflight", Int),
        "reject_qos2_publish" | "downgrade_qos2_subscribe" => Custom(mqtt_no_qos2),
        "ack_wait" | "ackwait" => Unsupported(
            "twig sends unacknowledged messages again when the session resumes, as MQTT \
             says, not on a timer",
        ),
        "authorization" | "authentication" => Unsupported(
            "MQTT clients log in with the server's `authorization` users (give \
             `mqtt.no_auth_user` for clients without credentials)",
        ),
        "js_domain"
        | "stream_replicas"
        | "consumer_replicas"
        | "consumer_memory_storage"
        | "consumer_inactive_threshold"
        | "js_api_timeout"
        | "api_timeout" => Unsupported(MQTT_STATE),
        // twig's own limits, under the names of its TOML.
        "max_connections" => To("max_connections", Int),
        "max_sessions" => To("max_sessions", Int),
        "max_packet_size" => To("max_packet_size", Size),
        "receive_maximum" => To("receive_maximum", Int),
        "max_queued_bytes" => To("max_queued_bytes", Size),
        "max_queued_messages" => To("max_queued_messages", Int),
        "max_subscriptions" => To("max_subscriptions", Int),
        "topic_alias_maximum" => To("topic_alias_maximum", Int),
        "max_client_id_len" => To("max_client_id_len", Int),
        "max_keep_alive" => To("max_keep_alive", Duration),
        "max_session_expiry" => To("max_session_expiry", Duration),
        "connect_timeout" => To("connect_timeout", Duration),
        "write_deadline" => To("write_deadline", Duration),
        "max_qos" => To("max_qos", Int),
        "retain_available" => To("retain_available", Bool),
        "max_retained" => To("max_retained", Int),
        "max_retained_bytes" => To("max_retained_bytes", Size),
        "store_file" => To("store_file", Str),
        "store_size" => To("store_size", Size),
        "max_store_queue_bytes" => To("max_store_queue_bytes", Size),
        _ => return None,
    })
}

fn mqtt_tls(e: &Entry, out: &mut Out, origins: &mut Origins, _: &str) -> Result<(), ConfigError> {
    let mut t = Out::new();
    let prefix = "mqtt_listener.tls";
    section(as_map(e)?, prefix, &mut t, origins, tls_option, "mqtt.tls")?;
    merge_table(out, "tls", t);
    Ok(())
}

/// nats-server's two QoS 2 switches: twig has one cap for both directions (`max_qos`), so
/// either one set caps QoS at 1 (a QoS 2 publish is then refused, a QoS 2 subscription granted
/// QoS 1).
fn mqtt_no_qos2(
    e: &Entry,
    out: &mut Out,
    origins: &mut Origins,
    prefix: &str,
) -> Result<(), ConfigError> {
    match e.value.kind {
        Kind::Bool(true) => {
            origins.note(&join(prefix, "max_qos"), e);
            out.insert("max_qos".into(), toml::Value::Integer(1));
            Ok(())
        }
        Kind::Bool(false) => Ok(()),
        _ => Err(wrong(e, "true or false")),
    }
}

/// `leafnodes { remotes: [...], reconnect, dial_timeout, write_deadline }`.
fn leafnodes(e: &Entry, out: &mut Out, origins: &mut Origins, _: &str) -> Result<(), ConfigError> {
    let m = as_map(e)?;
    let mut t = Out::new();
    let mut remotes = None;
    let mut dial_timeout = None;
    for entry in m.entries() {
        match entry.key.as_str() {
            "remotes" => remotes = Some(entry),
            // nats-server waits this long between attempts; twig backs off up to it.
            "reconnect" | "reconnect_delay" | "reconnect_interval" => {
                origins.note("leafnodes.reconnect_delay_max", entry);
                t.insert(
                    "reconnect_delay_max".into(),
                    convert(entry, Conv::Duration)?,
                );
            }
            "dial_timeout" => dial_timeout = Some(convert(entry, Conv::Duration)?),
            "write_deadline" => {
                origins.note("leafnodes.write_deadline", entry);
                t.insert("write_deadline".into(), convert(entry, Conv::Duration)?);
            }
            "listen"
            | "port"
            | "host"
            | "net"
            | "authorization"
            | "tls"
            | "advertise"
            | "leafnode_advertise"
            | "no_advertise"
            | "min_version"
            | "minimum_version"
            | "compression"
            | "isolate_leafnode_interest"
            | "isolate" => {
                return Err(at(
                    &entry.key_pos,
                    format!(
                        "option `leafnodes.{}` is not supported by twig: {NO_LISTENER}",
                        entry.key
                    ),
                ));
            }
            "write_timeout" => {
                return Err(at(
                    &entry.key_pos,
                    "option `leafnodes.write_timeout` is not supported by twig: twig drops a \
                     link that passes `write_deadline`"
                        .into(),
                ));
            }
            _ if entry.used_as_variable => {}
            other => {
                return Err(at(
                    &entry.key_pos,
                    format!("unknown option `{other}` in leafnodes"),
                ));
            }
        }
    }
    if let Some(r) = remotes {
        remote_list(r, &mut t, origins, dial_timeout)?;
    }
    merge_table(out, "leafnodes", t);
    Ok(())
}

fn remote_list(
    e: &Entry,
    out: &mut Out,
    origins: &mut Origins,
    dial_timeout: Option<toml::Value>,
) -> Result<(), ConfigError> {
    let Kind::Array(items) = &e.value.kind else {
        return Err(wrong(e, "a list of remotes"));
    };
    origins.note("leafnodes.remotes", e);
    let mut list = Vec::new();
    for item in items {
        let Kind::Map(m) = &item.kind else {
            return Err(at(&item.pos, "each remote must be a block { ... }".into()));
        };
        let mut r = Out::new();
        section(
            m,
            "leafnodes.remotes",
            &mut r,
            origins,
            remote_option,
            "a leafnode remote",
        )?;
        if let Some(d) = &dial_timeout {
            r.entry("dial_timeout").or_insert_with(|| d.clone());
        }
        list.push(toml::Value::Table(r));
    }
    out.insert("remotes".into(), toml::Value::Array(list));
    Ok(())
}

fn remote_option(key: &str) -> Option<Action> {
    use Action::{Custom, To, Unsupported};
    use Conv::{Bool, Duration, List, Str};
    Some(match key {
        "url" | "urls" => To("urls", List),
        "creds" | "credentials" => To("credentials", Str),
        "nkey" | "seed" => To("nkey", Str),
        "tls" => Custom(remote_tls),
        "deny_imports" | "deny_import" => To("deny_imports", List),
        "deny_exports" | "deny_export" => To("deny_exports", List),
        "first_info_timeout" => To("first_info_timeout", Duration),
        "dial_timeout" => To("dial_timeout", Duration),
        "ignore_discovered_servers" => To("ignore_discovered_servers", Bool),
        "account" | "local" => Custom(local_account),
        "hub" => Custom(not_hub),
        "disabled" => Custom(not_disabled),
        "compression" => Custom(compression),
        "no_randomize" | "dont_randomize" => {
            Unsupported("twig tries a remote's URLs in order, then the hub's leafnode_urls")
        }
        "ws_no_masking" | "websocket_no_masking" => To("ws_no_masking", Bool),
        "proxy" => Custom(proxy),
        "ws_compress" | "ws_compression" | "websocket_compress" | "websocket_compression" => {
            Unsupported(
                "twig does not deflate websocket frames; S2 `compression` is negotiated on \
                 websocket remotes too (nats-server uses one or the other)",
            )
        }
        "jetstream_cluster_migrate" | "js_cluster_migrate" => Unsupported(NO_JETSTREAM),
        "isolate_leafnode_interest" | "isolate" | "request_isolation" => {
            Unsupported("twig only sends its own clients' interest anyway")
        }
        _ => return None,
    })
}

fn remote_tls(
    e: &Entry,
    out: &mut Out,
    origins: &mut Origins,
    prefix: &str,
) -> Result<(), ConfigError> {
    let mut t = Out::new();
    let prefix = join(prefix, "tls");
    section(
        as_map(e)?,
        &prefix,
        &mut t,
        origins,
        remote_tls_option,
        "a remote's tls",
    )?;
    merge_table(out, "tls", t);
    Ok(())
}

fn remote_tls_option(key: &str) -> Option<Action> {
    use Action::{Custom, To, Unsupported};
    use Conv::Str;
    Some(match key {
        "ca_file" => To("ca_file", Str),
        "cert_file" => To("cert_file", Str),
        "key_file" => To("key_file", Str),
        "timeout" => Custom(tls_timeout),
        _ => return tls_unsupported(key).map(Unsupported),
    })
}

/// twig has the one account nats-server calls `$G`.
fn local_account(e: &Entry, _: &mut Out, _: &mut Origins, _: &str) -> Result<(), ConfigError> {
    only(e, e.value.kind == Kind::String("$G".into()), NO_ACCOUNTS)
}

fn not_hub(e: &Entry, _: &mut Out, _: &mut Origins, _: &str) -> Result<(), ConfigError> {
    only(
        e,
        e.value.kind == Kind::Bool(false),
        "twig is always the leaf (spoke) of its hubs",
    )
}

fn not_disabled(e: &Entry, _: &mut Out, _: &mut Origins, _: &str) -> Result<(), ConfigError> {
    only(
        e,
        e.value.kind == Kind::Bool(false),
        "remove the remote instead",
    )
}

/// A remote's `compression` in nats-server's shapes (a mode, a bool, `{ mode, rtt_thresholds }`),
/// checked here so an error points at the option's line.
fn compression(
    e: &Entry,
    out: &mut Out,
    origins: &mut Origins,
    prefix: &str,
) -> Result<(), ConfigError> {
    let v = any(&e.value);
    crate::compression::de_compression(v.clone()).map_err(|err: toml::de::Error| {
        at(&e.value.pos, format!("`{}`: {}", e.key, err.message()))
    })?;
    origins.note(&join(prefix, "compression"), e);
    out.insert("compression".into(), v);
    Ok(())
}

/// A remote's `proxy { url, username, password, timeout }`.
fn proxy(e: &Entry, out: &mut Out, origins: &mut Origins, prefix: &str) -> Result<(), ConfigError> {
    let mut t = Out::new();
    let prefix = join(prefix, "proxy");
    section(
        as_map(e)?,
        &prefix,
        &mut t,
        origins,
        proxy_option,
        "a remote's proxy",
    )?;
    origins.note(&prefix, e);
    merge_table(out, "proxy", t);
    Ok(())
}

fn proxy_option(key: &str) -> Option<Action> {
    use Action::To;
    use Conv::{Duration, Str};
    Some(match key {
        "url" => To("url", Str),
        "username" => To("username", Str),
        "password" => To("password", Str),
        "timeout" => To("timeout", Duration),
        _ => return None,
    })
}
