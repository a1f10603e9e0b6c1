use super::*;

const DEFAULT_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../configs/gateway.toml");
const CONFIGS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../configs");

fn err(text: &str) -> String {
    match Config::from_toml(text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn no_file_means_built_in_defaults() {
    let c = Config::load(None).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.host, None);
    assert_eq!(c.listen_host(), "127.0.0.1");
    assert_eq!(c.port, Port::Fixed(4222));
    assert_eq!(c.http_port, None);
    assert_eq!(c.max_payload, 1 << 20);
    assert_eq!(c.max_pending, 64 << 20);
    assert_eq!(c.max_control_line, 4096);
    assert_eq!(c.max_connections, 65536);
    assert_eq!(c.listen_backlog, 4096);
    assert_eq!(c.ping_interval, Duration::from_secs(120));
    assert_eq!(c.effective_auth_timeout(), Duration::from_secs(2));
    assert_eq!(c.write_deadline, Duration::from_secs(10));
    assert!(!c.authorization.is_enabled());
    c.validate().unwrap();
}

#[test]
fn the_documented_default_file_is_the_defaults() {
    let c = Config::load(Some(Path::new(DEFAULT_FILE))).unwrap();
    assert_eq!(c, Config::default());
}

/// The commented-out example sections of a shipped config: each block of `# ` lines that starts
/// with `# [section]`, un-commented.
fn commented_examples(text: &str) -> Vec<String> {
    let mut examples: Vec<String> = Vec::new();
    for line in text.lines() {
        let body = line.strip_prefix("# ").unwrap_or("");
        if body.starts_with('[') {
            examples.push(String::new());
        }
        if let Some(ex) = examples.last_mut() {
            if line.starts_with('#') && !line.trim_start_matches('#').trim().is_empty() {
                ex.push_str(body);
                ex.push('\n');
            } else {
                examples.push(String::new());
            }
        }
    }
    examples
        .into_iter()
        .filter(|e| e.starts_with('['))
        .collect()
}

#[test]
fn every_commented_example_in_the_default_file_parses() {
    let text = std::fs::read_to_string(DEFAULT_FILE).unwrap();
    let examples = commented_examples(&text);
    assert_eq!(examples.len(), 12, "{examples:#?}");
    for ex in examples {
        Config::from_toml(&ex).unwrap_or_else(|e| panic!("{ex}\n=> {e}"));
    }
}

/// Every file in `configs/` is one a user may copy as is (the Debian package installs
/// `raspberry-pi.toml` as `/etc/twig/twig.toml`): each must load, and so must each of its
/// commented-out example sections.
#[test]
fn every_shipped_config_and_its_examples_load() {
    let dir = Path::new(CONFIGS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "configs/ has only {files:?}");
    for path in &files {
        Config::load(Some(path)).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(path).unwrap();
        for ex in commented_examples(&text) {
            Config::from_toml(&ex)
                .unwrap_or_else(|e| panic!("{}: example\n{ex}=> {e}", path.display()));
        }
    }
}

#[test]
fn the_raspberry_pi_config_stays_on_loopback_until_told() {
    let path = Path::new(CONFIGS_DIR).join("raspberry-pi.toml");
    let c = Config::load(Some(&path)).unwrap();
    assert_eq!(c.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.port, Port::Fixed(4222));
    assert_eq!(c.http_host.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.http_port, Some(Port::Fixed(8222)));
    assert!(c.server_name.is_some());
    // Memory bound for a small board: max_connections x max_pending stays within 8 GiB even
    // when every client is stuck.
    assert!(c.max_connections.saturating_mul(c.max_pending) <= 8 << 30);
    assert!(!c.authorization.is_enabled());
    assert!(!c.allow_anonymous);
    // MQTT devices connect to twig itself (no mosquitto on the Pi), on loopback too.
    let m = c
        .mqtt_listener
        .as_ref()
        .expect("the Pi config has an MQTT listener");
    assert_eq!(m.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(m.port, Port::Fixed(1883));
    assert!(c.mqtt.is_none(), "the bridge stays off");
    // Opened to the LAN as its comments say: refused alone, accepted with its
    // [authorization] example.
    let text = std::fs::read_to_string(&path).unwrap();
    let lan = text.replacen("host = \"127.0.0.1\"", "host = \"0.0.0.0\"", 1);
    let e = Config::from_toml(&lan).unwrap_err().to_string();
    assert!(
        e.contains("no [authorization]") && e.contains("allow_anonymous"),
        "{e}"
    );
    let auth = commented_examples(&text)
        .into_iter()
        .find(|ex| ex.starts_with("[authorization]"))
        .expect("an [authorization] example");
    let c = Config::from_toml(&format!("{lan}\n{auth}")).unwrap();
    assert!(c.authorization.is_enabled());
}

#[test]
fn the_network_needs_authorization_or_allow_anonymous() {
    for host in ["0.0.0.0", "::", "192.168.1.5", "gateway.local", "[::]"] {
        let e = Config::from_toml(&format!("host = {host:?}")).unwrap_err();
        assert!(e.to_string().contains("allow_anonymous"), "{host}: {e}");
        let ok = format!("host = {host:?}\nallow_anonymous = true");
        Config::from_toml(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        let with_auth = format!("host = {host:?}\n[authorization]\ntoken = \"t\"");
        Config::from_toml(&with_auth).unwrap_or_else(|e| panic!("{with_auth}: {e}"));
    }
    for host in [
        "127.0.0.1",
        "127.3.2.1",
        "::1",
        "[::1]",
        "localhost",
        "LOCALHOST",
    ] {
        Config::from_toml(&format!("host = {host:?}")).unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    // The default host is loopback.
    assert!(Config::from_toml("").is_ok());
}

#[test]
fn a_small_file_overrides_some_options() {
    let c = Config::from_toml(
        r#"
        host = "0.0.0.0"
        port = -1
        server_name = "edge-1"
        http_port = 8222
        max_payload = "512KB"
        max_pending = 4194304
        ping_interval = "30s"
        auth_timeout = 0.5
        write_deadline = 3
        [authorization]
        token = "t0k"
        "#,
    )
    .unwrap();
    assert_eq!(c.host.as_deref(), Some("0.0.0.0"));
    assert_eq!(c.port, Port::Random);
    assert_eq!(c.server_name.as_deref(), Some("edge-1"));
    assert_eq!(c.http_port, Some(Port::Fixed(8222)));
    assert_eq!(c.effective_http_host(), "0.0.0.0");
    assert_eq!(c.max_payload, 512 * 1024);
    assert_eq!(c.max_pending, 4 << 20);
    assert_eq!(c.ping_interval, Duration::from_secs(30));
    assert_eq!(c.effective_auth_timeout(), Duration::from_millis(500));
    assert_eq!(c.write_deadline, Duration::from_secs(3));
    assert_eq!(c.authorization.token.as_deref(), Some("t0k"));
}

#[test]
fn tls_raises_the_default_auth_timeout() {
    let c = Config::from_toml(
        r#"
        [tls]
        cert_file = "c.pem"
        key_file = "k.pem"
        "#,
    )
    .unwrap();
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.timeout, Duration::from_secs(2));
    assert!(!tls.verify);
    assert_eq!(c.effective_auth_timeout(), Duration::from_secs(3));
}

#[test]
fn parse_errors_name_line_and_column() {
    let e = err("host = \"x\"\nprot = 4222\n");
    assert!(
        e.starts_with("line 2, column 1: unknown field `prot`"),
        "{e}"
    );
    let e = err("port = \"abc\"");
    assert!(e.starts_with("line 1, column 8: "), "{e}");
    let e = err("ping_interval = \"2 minutes\"");
    assert!(e.contains("is not a duration"), "{e}");
    let e = err("port = 70000");
    assert!(e.contains("out of range"), "{e}");
    let e = err("[bogus]\nx = []");
    assert!(e.contains("unknown field `bogus`"), "{e}");
    let e = err("[[leafnodes.remotes]]\nurls = [\"ftp://hub\"]");
    assert!(e.contains("leafnodes.remotes[0].urls"), "{e}");
}

#[test]
fn file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("twig-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "max_payload = \"100MB\"\n").unwrap();
    let e = Config::load(Some(&path)).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: invalid `max_payload`: 104857600 must be between 1 and 64 MiB",
            path.display()
        )
    );
    let missing = dir.join("missing.toml");
    let e = Config::load(Some(&missing)).unwrap_err().to_string();
    assert!(e.starts_with("cannot read config file "), "{e}");
    assert!(e.contains("missing.toml"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_combinations_are_one_sentence_each() {
    let cases = [
        ("max_pending = 1000", "invalid `max_pending`"),
        ("max_control_line = 0", "invalid `max_control_line`"),
        ("max_connections = 0", "invalid `max_connections`"),
        ("listen_backlog = 0", "invalid `listen_backlog`"),
        ("listen_backlog = 65536", "invalid `listen_backlog`"),
        ("http_max_connections = 0", "invalid `http_max_connections`"),
        (
            "http_max_connections = 65537",
            "invalid `http_max_connections`",
        ),
        ("http_max_request = 255", "invalid `http_max_request`"),
        ("http_max_request = \"2MB\"", "invalid `http_max_request`"),
        ("http_timeout = \"0s\"", "invalid `http_timeout`"),
        ("http_timeout = \"25h\"", "invalid `http_timeout`"),
        ("ping_max = 0", "invalid `ping_max`"),
        ("ping_interval = \"0s\"", "invalid `ping_interval`"),
        ("server_name = \"a b\"", "invalid `server_name`"),
        ("host = \"\"", "invalid `host`"),
        (
            "[authorization]\nuser = \"u\"",
            "user and password must be given together",
        ),
        (
            "[authorization]\ntoken = \"t\"\nuser = \"u\"\npassword = \"p\"",
            "not several",
        ),
        (
            "[authorization]\nuser = \"u\"\npassword = \"$2a$11$abc\"",
            "bcrypt",
        ),
        (
            "[authorization]\nusers = [{ user = \"u\" }]",
            "invalid `authorization.users[0]`",
        ),
        (
            "[authorization]\nusers = [{ user = \"u\", password = \"p\" }, { user = \"u\", password = \"q\" }]",
            "invalid `authorization.users[1]`: \"u\" is listed twice",
        ),
        (
            "[authorization]\nusers = [{ nkey = \"UBAD\" }]",
            "invalid `authorization.users[0].nkey`",
        ),
        (
            "[tls]\ncert_file = \"c\"\nkey_file = \"k\"\nverify = true",
            "needs tls.ca_file",
        ),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.contains(want), "{text:?} => {e}");
        assert!(!e.contains('\n'), "not one line: {e}");
    }
}

#[test]
fn nkey_users_must_be_user_keys() {
    let user = nkeys::KeyPair::new_user().public_key();
    let account = nkeys::KeyPair::new_account().public_key();
    let ok = format!(
        "[authorization]\nusers = [{{ nkey = \"{user}\" }}, {{ user = \"a\", pass = \"b\" }}]"
    );
    let c = Config::from_toml(&ok).unwrap();
    assert_eq!(c.authorization.users.len(), 2);
    let e = err(&format!(
        "[authorization]\nusers = [{{ nkey = \"{account}\" }}]"
    ));
    assert!(e.contains("is not a user nkey"), "{e}");
}

#[test]
fn debug_output_hides_secrets() {
    let c = Config::from_toml("[authorization]\nuser = \"app\"\npassword = \"hunter2\"").unwrap();
    let shown = format!("{c:?}");
    assert!(shown.contains("app"));
    assert!(!shown.contains("hunter2"));
}

#[test]
fn line_column_counts_characters() {
    assert_eq!(line_column("abc", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("é\né", 4), (2, 2));
    assert_eq!(line_column("x", 99), (1, 2));
}

#[test]
fn syntax_errors_are_one_line_too() {
    assert_eq!(err("host = "), "line 1, column 8: invalid TOML syntax");
    assert_eq!(
        err("a = [1,"),
        "line 1, column 8: invalid array; expected `]`"
    );
}

#[test]
fn streams_parse_with_defaults_and_checks() {
    let c = Config::from_toml(
        "store_dir = \"/tmp/s\"\n[[streams]]\nname = \"A\"\nsubjects = [\"a.>\"]\n\
         [[streams]]\nname = \"B\"\nsubjects = [\"b\"]\nfile = \"/x/b.f\"\nmax_bytes = \"1MiB\"\n\
         max_msgs = 5\nmax_age = \"1h\"\nwhen_full = \"refuse\"\nsync = \"100ms\"\n\
         duplicate_window = \"10s\"\n",
    )
    .unwrap();
    let (a, b) = (&c.streams[0], &c.streams[1]);
    assert_eq!(a.path(&c.store_dir), Path::new("/tmp/s/A.stream"));
    assert_eq!(a.max_bytes, 64 << 20);
    assert_eq!(a.sync, SyncPolicy::Always);
    assert_eq!(a.when_full, WhenFullConfig::DropOldest);
    assert_eq!(a.duplicate_window, Duration::from_secs(120));
    assert_eq!(b.path(&c.store_dir), Path::new("/x/b.f"));
    assert_eq!((b.max_bytes, b.max_msgs), (1 << 20, 5));
    assert_eq!(b.max_age, Some(Duration::from_secs(3600)));
    assert_eq!(b.when_full, WhenFullConfig::Refuse);
    assert_eq!(b.sync, SyncPolicy::Interval(Duration::from_millis(100)));

    let s = |body: &str| err(&format!("[[streams]]\n{body}\n"));
    assert!(s("name = \"a.b\"\nsubjects = [\"x\"]").contains("streams[0].name"));
    assert!(s("name = \"A\"\nsubjects = []").contains("streams[0].subjects"));
    assert!(s("name = \"A\"\nsubjects = [\"a..b\"]").contains("streams[0].subjects"));
    assert!(s("name = \"A\"\nsubjects = [\"x\"]\nmax_bytes = 100000").contains("max_bytes"));
    assert!(s("name = \"A\"\nsubjects = [\"x\"]\nsync = \"sometimes\"").contains("sync"));
    assert!(s("name = \"A\"\nsubjects = [\"x\"]\nwhen_full = \"panic\"").contains("drop_oldest"));
    assert!(s("name = \"A\"\nsubjects = [\"x\"]\nsize = 1").contains("size"));
    let twice = err(
        "[[streams]]\nname = \"A\"\nsubjects = [\"x\"]\n[[streams]]\nname = \"A\"\nsubjects = [\"y\"]\n",
    );
    assert!(twice.contains("declared twice"), "{twice}");
}

#[test]
fn stream_forwarding_defaults_follow_the_remotes() {
    use super::ForwardMode;
    let alone = Config::from_toml("[[streams]]\nname = \"A\"\nsubjects = [\"a\"]\n").unwrap();
    let a = &alone.streams[0];
    assert_eq!(a.forward_mode(0), ForwardMode::Off);
    assert_eq!(
        (
            a.forward_window,
            a.forward_ack_timeout,
            a.forward_remote,
            a.forward_priority
        ),
        (4096, Duration::from_secs(5), 0, 0)
    );
    let remote = "[[leafnodes.remotes]]\nurls = [\"nats-leaf://h:7422\"]\n";
    let c = Config::from_toml(&format!(
        "{remote}[[streams]]\nname = \"A\"\nsubjects = [\"a\"]\n\
         [[streams]]\nname = \"B\"\nsubjects = [\"b\"]\nforward = \"core\"\nforward_window = 8\n\
         forward_priority = 3\n\
         forward_ack_timeout = \"250ms\"\n[[streams]]\nname = \"C\"\nsubjects = [\"c\"]\nforward = \"off\"\n"
    ))
    .unwrap();
    let modes: Vec<_> = c.streams.iter().map(|s| s.forward_mode(1)).collect();
    assert_eq!(
        modes,
        [ForwardMode::Jetstream, ForwardMode::Core, ForwardMode::Off]
    );
    assert_eq!(c.streams[1].forward_window, 8);
    assert_eq!(c.streams[1].forward_priority, 3);
    assert_eq!(c.streams[1].forward_ack_timeout, Duration::from_millis(250));

    let s = |body: &str| {
        err(&format!(
            "[[streams]]\nname = \"A\"\nsubjects = [\"x\"]\n{body}\n"
        ))
    };
    assert!(s("forward = \"jetstream\"").contains("streams[0].forward"));
    assert!(s("forward = \"smoke\"").contains("jetstream"));
    assert!(s("forward = \"off\"\nforward_window = 0").contains("forward_window"));
    assert!(s("forward = \"off\"\nforward_ack_timeout = \"0s\"").contains("forward_ack_timeout"));
    let far = err(&format!(
        "{remote}[[streams]]\nname = \"A\"\nsubjects = [\"x\"]\nforward_remote = 1\n"
    ));
    assert!(far.contains("entry 1 (there are 1)"), "{far}");
}

#[test]
fn the_dial_timeout_is_set_for_all_remotes_or_per_remote() {
    let c = Config::from_toml(
        "[leafnodes]\ndial_timeout = \"3s\"\n\
         [[leafnodes.remotes]]\nurls = [\"nats-leaf://a:7422\"]\n\
         [[leafnodes.remotes]]\nurls = [\"nats-leaf://b:7422\"]\ndial_timeout = \"30s\"\n",
    )
    .unwrap();
    let l = &c.leafnodes;
    assert_eq!(l.remotes[0].dial_timeout(l), Duration::from_secs(3));
    assert_eq!(l.remotes[1].dial_timeout(l), Duration::from_secs(30));
    let d = Config::from_toml("[[leafnodes.remotes]]\nurls = [\"nats-leaf://a:7422\"]\n").unwrap();
    assert_eq!(
        d.leafnodes.remotes[0].dial_timeout(&d.leafnodes),
        Duration::from_secs(5)
    );
    let e = err(
        "[leafnodes]\ndial_timeout = \"0s\"\n[[leafnodes.remotes]]\nurls = [\"nats-leaf://a\"]",
    );
    assert!(e.contains("timeouts"), "{e}");
}

#[test]
fn the_mqtt_listener_defaults_and_limits() {
    let c = Config::from_toml("[mqtt_listener]\n").unwrap();
    let m = c.mqtt_listener.unwrap();
    assert_eq!(m, MqttListenerConfig::default());
    assert_eq!(m.port, Port::Fixed(1883));
    assert_eq!(
        m.store_path(Path::new("/var/lib/twig")),
        Path::new("/var/lib/twig/mqtt.store")
    );
    for (text, what) in [
        ("port = 70000", "port"),
        ("max_inflight = 0", "max_inflight"),
        ("max_qos = 3", "max_qos"),
        ("store_size = 1000", "store_size"),
        ("max_keep_alive = \"1.5s\"", "max_keep_alive"),
        ("max_packet_size = 2", "max_packet_size"),
        ("colour = 1", "colour"),
    ] {
        let e = err(&format!("[mqtt_listener]\n{text}\n"));
        assert!(e.contains(what), "{text}: {e}");
    }
    // The network needs authorization, as the client port does.
    let e = err("[mqtt_listener]\nhost = \"0.0.0.0\"\n");
    assert!(
        e.contains("mqtt_listener.host") && e.contains("authorization"),
        "{e}"
    );
    Config::from_toml("allow_anonymous = true\n[mqtt_listener]\nhost = \"0.0.0.0\"\n").unwrap();
    let e = err("[mqtt_listener]\nno_auth_user = \"ghost\"\n");
    assert!(e.contains("mqtt_listener.no_auth_user"), "{e}");
}
