//! nats-server's format onto twig's config: the same settings written both ways give the same
//! `Config`; what twig lacks is refused with its name and line.
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::{Format, Port};

fn conf(text: &str) -> Config {
    from_nats_conf(text, None).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn refused(text: &str) -> String {
    match from_nats_conf(text, None) {
        Ok(c) => panic!("accepted {text:?}: {c:?}"),
        Err(e) => e.to_string(),
    }
}

const NKEY: &str = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";

#[test]
fn every_option_twig_has_means_the_same_in_both_formats() {
    let nats = format!(
        r#"
server_name: edge-1
listen: 0.0.0.0:4333
http: 127.0.0.1:8333
max_payload: 512KB
max_control_line: 8KB
max_pending: 32MB
max_connections: 100
max_subs: 50
ping_interval: "30s"
ping_max: 3
write_deadline: "5s"
no_header_support: false
lame_duck_duration: "45s"
lame_duck_grace_period: "5s"
debug: true
trace: false
logtime: true
log_file: "/var/log/twig.log"
pid_file: "/run/twig.pid"
authorization {{
  timeout: 3
  users: [
    {{ user: sensor, password: "s3cr3t", permissions: {{ publish: "sensors.>", subscribe: ["cmd.>"] }} }}
    {{ nkey: {NKEY} }}
  ]
  default_permissions: {{ subscribe: {{ deny: "secret.>" }} }}
}}
tls {{
  cert_file: "/etc/twig/cert.pem"
  key_file: "/etc/twig/key.pem"
  ca_file: "/etc/twig/ca.pem"
  verify: true
  timeout: 3
}}
leafnodes {{
  reconnect: "1s"
  write_deadline: "4s"
  remotes: [
    {{
      urls: ["tls://hub-a.example:7422", "tls://hub-b.example:7422"]
      credentials: "/etc/twig/edge.creds"
      deny_imports: ["site.>"]
      deny_exports: "local.>"
      first_info_timeout: "3s"
      tls {{ ca_file: "/etc/twig/hub-ca.pem", cert_file: "/etc/twig/c.pem", key_file: "/etc/twig/k.pem", timeout: 4 }}
    }}
    {{ url: "nats-leaf://10.0.0.1:7422", nkey: SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4 }}
  ]
}}
"#
    );
    let toml = format!(
        r#"
server_name = "edge-1"
host = "0.0.0.0"
port = 4333
http_host = "127.0.0.1"
http_port = 8333
max_payload = "512KB"
max_control_line = "8KB"
max_pending = "32MB"
max_connections = 100
max_subscriptions = 50
ping_interval = "30s"
ping_max = 3
write_deadline = "5s"
lame_duck_duration = "45s"
lame_duck_grace_period = "5s"
debug = true
log_file = "/var/log/twig.log"
pid_file = "/run/twig.pid"
auth_timeout = 3

[authorization]
users = [
  {{ user = "sensor", password = "s3cr3t", permissions = {{ publish = "sensors.>", subscribe = ["cmd.>"] }} }},
  {{ nkey = "{NKEY}" }},
]
default_permissions = {{ subscribe = {{ deny = "secret.>" }} }}

[tls]
cert_file = "/etc/twig/cert.pem"
key_file = "/etc/twig/key.pem"
ca_file = "/etc/twig/ca.pem"
verify = true
timeout = 3

[leafnodes]
reconnect_delay_max = "1s"
write_deadline = "4s"

[[leafnodes.remotes]]
urls = ["tls://hub-a.example:7422", "tls://hub-b.example:7422"]
credentials = "/etc/twig/edge.creds"
deny_imports = ["site.>"]
deny_exports = ["local.>"]
first_info_timeout = "3s"
tls = {{ ca_file = "/etc/twig/hub-ca.pem", cert_file = "/etc/twig/c.pem", key_file = "/etc/twig/k.pem", timeout = 4 }}

[[leafnodes.remotes]]
urls = ["nats-leaf://10.0.0.1:7422"]
nkey = "SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4"
"#
    );
    let from_nats = conf(&nats);
    let from_toml = Config::from_toml(&toml).unwrap();
    assert_eq!(from_nats, from_toml);
    // And a few values, so the test cannot pass on two equal mistakes.
    assert_eq!(from_nats.port, Port::Fixed(4333));
    assert_eq!(from_nats.max_payload, 512 * 1024);
    assert_eq!(from_nats.auth_timeout, Some(Duration::from_secs(3)));
    assert_eq!(from_nats.leafnodes.remotes[0].deny_exports, ["local.>"]);
    assert_eq!(
        from_nats.leafnodes.remotes[1].urls,
        ["nats-leaf://10.0.0.1:7422"]
    );
}

#[test]
fn simple_forms_token_user_and_flags_of_style() {
    let c = conf("port: 4222\nauthorization { token: t0ken }\n");
    assert_eq!(c.authorization.token.as_deref(), Some("t0ken"));
    let c = conf("authorization { user: a, password: b }\nhttp_port: 8222\n");
    assert_eq!(c.authorization.user.as_deref(), Some("a"));
    assert_eq!(c.http_port, Some(Port::Fixed(8222)));
    // `listen: :4222` is every interface, as nats-server reads it; with no authorization
    // twig wants to be told that is meant (nats-server would just serve the network).
    let e = refused("listen: \":4222\"");
    assert!(e.contains("allow_anonymous"), "{e}");
    let open = conf("listen: \":4222\"\nallow_anonymous: true");
    assert_eq!(open.host.as_deref(), Some("0.0.0.0"));
    assert_eq!(conf("listen: 4333").port, Port::Fixed(4333));
    assert_eq!(conf("listen: \"[::1]:4333\"").host.as_deref(), Some("::1"));
    // nats-server's default account is the one twig has.
    conf("leafnodes { remotes: [ { url: \"nats://h:7422\", account: \"$G\" } ] }");
    conf("leafnodes { remotes: [ { url: \"nats://h:7422\", compression: off } ] }");
}

#[test]
fn remote_compression_takes_nats_server_shapes() {
    use std::time::Duration;
    use twig_core::s2::mode::Mode;
    let remote = |text: &str| {
        conf(&format!(
            "leafnodes {{ remotes: [ {{ url: \"nats://h:7422\", {text} }} ] }}"
        ))
        .leafnodes
        .remotes[0]
            .compression
    };
    assert_eq!(remote("first_info_timeout: \"2s\"").mode, Mode::Auto);
    assert_eq!(remote("compression: s2_best").mode, Mode::Best);
    assert_eq!(remote("compression: false").mode, Mode::Off);
    assert_eq!(remote("compression: on").mode, Mode::Auto);
    let c = remote("compression: { mode: s2_auto, rtt_thresholds: [\"5ms\", \"15ms\"] }");
    assert_eq!(
        c.thresholds.as_slice(),
        [Duration::from_millis(5), Duration::from_millis(15)]
    );
    let r = &conf(
        "leafnodes { remotes: [ { url: \"ws://h:8080/edge\", ws_no_masking: true, \
         proxy: { url: \"http://proxy:3128\", username: u, password: p, timeout: \"3s\" } } ] }",
    )
    .leafnodes
    .remotes[0];
    assert!(r.ws_no_masking);
    let p = r.proxy.as_ref().unwrap();
    assert_eq!(
        (p.url.as_str(), p.username.as_deref(), p.timeout),
        ("http://proxy:3128", Some("u"), Some(Duration::from_secs(3)))
    );
    let e =
        refused("leafnodes { remotes: [ { url: \"ws://h\", proxy: { url: \"socks5://p\" } } ] }");
    assert!(e.contains("proxy") && e.contains("line 1"), "{e}");
    let e = refused("leafnodes {\n remotes: [ { url: \"nats://h\", compression: lz4 } ]\n}");
    assert!(
        e.contains("line 2") && e.contains("unsupported compression mode"),
        "{e}"
    );
}

#[test]
fn keys_used_as_variables_are_not_options() {
    let c = conf("TOKEN: s3cret\nPORT: 4444\nport: $PORT\nauthorization { token: $TOKEN }\n");
    assert_eq!(c.port, Port::Fixed(4444));
    assert_eq!(c.authorization.token.as_deref(), Some("s3cret"));
    // A key nobody used is an unknown option.
    let e = refused("TOKEN: s3cret\nport: 4444\n");
    assert!(
        e.contains("line 1") && e.contains("unknown option `TOKEN`"),
        "{e}"
    );
}

#[test]
fn what_twig_lacks_is_refused_with_its_name_and_line() {
    for (text, name, line) in [
        (
            "port: 1\njetstream { store_dir: /tmp/js }\n",
            "jetstream",
            2,
        ),
        ("cluster { name: c }", "cluster", 1),
        ("\n\naccounts { A: {} }", "accounts", 3),
        ("websocket { port: 8080 }", "websocket", 1),
        ("mqtt { port: 1883, js_domain: hub }", "js_domain", 1),
        (
            "mqtt {\n  port: 1883\n  ack_wait: \"30s\"\n}",
            "ack_wait",
            3,
        ),
        ("https: 127.0.0.1:8443", "https", 1),
        ("gateway { name: g }", "gateway", 1),
        ("leafnodes {\n  port: 7422\n}", "leafnodes.port", 2),
        (
            "leafnodes { remotes: [ { url: \"ws://h\", ws_compression: true } ] }",
            "ws_compression",
            1,
        ),
        (
            "tls { cert_file: a, key_file: b, cipher_suites: [x ] }",
            "cipher_suites",
            1,
        ),
        (
            "authorization { auth_callout { issuer: x } }",
            "auth_callout",
            1,
        ),
        (
            "leafnodes { remotes: [ { url: \"nats://h\", account: OTHER } ] }",
            "account",
            1,
        ),
        (
            "leafnodes { remotes: [ { url: \"nats://h\", hub: true } ] }",
            "hub",
            1,
        ),
        ("syslog: true", "syslog", 1),
        ("logtime: false", "logtime", 1),
        ("log_size_limit: 1GB", "log_size_limit", 1),
    ] {
        let e = refused(text);
        assert!(e.contains(&format!("`{name}`")), "{text}: {e}");
        assert!(e.contains(&format!("line {line},")), "{text}: {e}");
        assert!(e.contains("not supported by twig"), "{text}: {e}");
    }
    let e = refused("port: 1\nprot: 2\n");
    assert!(
        e.contains("line 2") && e.contains("unknown option `prot`"),
        "{e}"
    );
    let e = refused("leafnodes { remotes: [ { url: \"nats://h\", frobnicate: 1 } ] }");
    assert!(
        e.contains("unknown option `frobnicate` in a leafnode remote"),
        "{e}"
    );
}

#[test]
fn wrong_values_name_the_option_and_line() {
    // A number where nats-server wants a duration string: the 2m pitfall, explained.
    let e = refused("port: 1\nping_interval: 2m\n");
    assert!(e.contains("line 2") && e.contains("2000000"), "{e}");
    let e = refused("max_connections: many\n");
    assert!(e.contains("`max_connections` must be an integer"), "{e}");
    // Caught by twig's validation, still at the option's line.
    let e = refused("\nmax_payload: 100MB\n");
    assert!(e.contains("line 2") && e.contains("max_payload"), "{e}");
    let e = refused("leafnodes {\n remotes: [\n  { url: \"wss://h:1\" }\n ]\n}\n");
    assert!(e.contains("needs tls") && e.contains("line"), "{e}");
    let e = refused("lame_duck_duration: \"10s\"\n");
    assert!(e.contains("30s"), "{e}");
    let e = refused("authorization { users: [ { user: a } ] }");
    assert!(e.contains("authorization"), "{e}");
    // Errors of the syntax itself keep their position.
    let e = refused("port: [1, 2\n");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn the_format_is_chosen_by_extension_or_content() {
    let p = Path::new;
    assert_eq!(Format::of(p("x.toml"), "port: 1"), Format::Toml);
    assert_eq!(Format::of(p("x.conf"), "port = 1"), Format::NatsServer);
    assert_eq!(Format::of(p("twig"), "port = 1\n[tls]\n"), Format::Toml);
    assert_eq!(Format::of(p("twig"), "port: 1\n"), Format::NatsServer);
    assert_eq!(
        Format::of(p("twig"), "leafnodes {\n}\n"),
        Format::NatsServer
    );
}

#[test]
fn load_reads_both_formats_and_includes() {
    let dir = std::env::temp_dir().join(format!("twig-natsconf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("auth.conf"),
        "authorization { token: from-include }\n",
    )
    .unwrap();
    let main = dir.join("leaf.conf");
    std::fs::write(&main, "port: 4555\ninclude ./auth.conf\n").unwrap();
    let (c, f) = Config::load_with_format(Some(&main)).unwrap();
    assert_eq!(f, Format::NatsServer);
    assert_eq!(c.port, Port::Fixed(4555));
    assert_eq!(c.authorization.token.as_deref(), Some("from-include"));
    std::fs::write(dir.join("auth.conf"), "authorization { jetstream: on }\n").unwrap();
    let e = Config::load(Some(&main)).unwrap_err().to_string();
    assert!(e.contains("auth.conf") && e.contains("jetstream"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_mqtt_block_is_the_mqtt_listener() {
    let nats = conf(
        r#"
mqtt {
  listen: 127.0.0.1:1999
  max_ack_pending: 20
  reject_qos2_publish: true
  tls { cert_file: "/c.pem", key_file: "/k.pem", ca_file: "/ca.pem", verify: true, timeout: 3 }
  store_size: 1MB
}
"#,
    );
    let toml = Config::from_toml(
        r#"
[mqtt_listener]
host = "127.0.0.1"
port = 1999
max_inflight = 20
max_qos = 1
store_size = "1MB"
[mqtt_listener.tls]
cert_file = "/c.pem"
key_file = "/k.pem"
ca_file = "/ca.pem"
verify = true
timeout = "3s"
"#,
    )
    .unwrap();
    assert_eq!(nats, toml);
    let m = nats.mqtt_listener.unwrap();
    assert_eq!(m.port, Port::Fixed(1999));
    assert_eq!(m.tls.unwrap().timeout, Duration::from_secs(3));
    assert_eq!(
        conf("mqtt { port: -1 }").mqtt_listener.unwrap().port,
        Port::Random
    );
    // A limit that does not validate names the nats-server key's line.
    let e = refused("port: 4222\nmqtt {\n  max_ack_pending: 0\n}\n");
    assert!(e.contains("line 3") && e.contains("max_inflight"), "{e}");
}
