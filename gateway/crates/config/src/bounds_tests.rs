//! Each maximum is accepted and one step past it refused, naming the option, in both formats;
//! values that used to panic the server later are refused at load.
use std::time::Duration;

use crate::Config;
use crate::natsconf::from_nats_conf;

/// Sections that need other keys to be valid, and the keys each bound lives in.
const STREAM: &str = "[[streams]]\nname = \"S\"\nsubjects = [\"s\"]\n";
const REMOTE: &str = "[[leafnodes.remotes]]\nurls = [\"nats://h:1\"]\n";
const SYNC: &str = "[[sync]]\nstream = \"S\"\ndurable = \"d\"\n";
const MQTT: &str = "[mqtt]\nurls = [\"mqtt://h\"]\nimport = [{ topic = \"a\" }]\n";
const EXPORT: &str = "[mqtt]\nurls = [\"mqtt://h\"]\n[[mqtt.export]]\nsubject = \"a\"\n";

/// (section, key, largest value, one past it, option named in the error).
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    ("", "max_payload", "\"64MB\"", "67108865", "max_payload"),
    (
        "",
        "max_control_line",
        "\"1MB\"",
        "1048577",
        "max_control_line",
    ),
    ("", "max_pending", "\"1GB\"", "1073741825", "max_pending"),
    (
        "",
        "max_connections",
        "1048576",
        "1048577",
        "max_connections",
    ),
    (
        "",
        "max_subscriptions",
        "1048576",
        "1048577",
        "max_subscriptions",
    ),
    (
        "",
        "ping_interval",
        "\"24h\"",
        "\"24h0m1s\"",
        "ping_interval",
    ),
    (
        "",
        "ping_interval",
        "86400",
        "9223372036854775807",
        "ping_interval",
    ),
    ("", "ping_max", "1000", "1001", "ping_max"),
    ("", "auth_timeout", "\"24h\"", "86401", "auth_timeout"),
    ("", "write_deadline", "\"24h\"", "1e300", "write_deadline"),
    ("", "threads", "1024", "1025", "threads"),
    (
        "",
        "lame_duck_duration",
        "\"24h\"",
        "\"25h\"",
        "lame_duck_duration",
    ),
    (
        "[authorization.login_throttle]\n",
        "forget_after",
        "\"720h\"",
        "\"721h\"",
        "authorization.login_throttle.forget_after",
    ),
    (
        "[authorization.login_throttle]\n",
        "max_delay",
        "\"24h\"",
        "\"25h\"",
        "authorization.login_throttle.max_delay",
    ),
    (
        "[authorization.login_throttle]\n",
        "max_addresses",
        "1048576",
        "1048577",
        "authorization.login_throttle.max_addresses",
    ),
    (
        "[authorization.login_throttle]\n",
        "free_failures",
        "1000",
        "1001",
        "authorization.login_throttle.free_failures",
    ),
    (
        "[tls]\ncert_file = \"c\"\nkey_file = \"k\"\n",
        "timeout",
        "\"24h\"",
        "\"25h\"",
        "tls.timeout",
    ),
    (
        "[leafnodes]\n",
        "reconnect_delay_max",
        "\"24h\"",
        "\"25h\"",
        "leafnodes.reconnect_delay_max",
    ),
    (
        "[leafnodes]\n",
        "ping_interval",
        "\"24h\"",
        "\"25h\"",
        "leafnodes.ping_interval",
    ),
    (
        "[leafnodes]\n",
        "ping_max",
        "1000",
        "1001",
        "leafnodes.ping_max",
    ),
    (
        "[leafnodes]\n",
        "write_deadline",
        "\"24h\"",
        "\"25h\"",
        "leafnodes.write_deadline",
    ),
    (
        "[leafnodes]\n",
        "max_pending",
        "\"1GB\"",
        "\"2GB\"",
        "leafnodes.max_pending",
    ),
    (
        "[leafnodes]\n",
        "unsent_limit",
        "\"1GB\"",
        "\"2GB\"",
        "leafnodes.unsent_limit",
    ),
    (
        "[leafnodes]\n",
        "dial_timeout",
        "\"24h\"",
        "\"25h\"",
        "leafnodes.dial_timeout",
    ),
    (
        REMOTE,
        "first_info_timeout",
        "\"24h\"",
        "\"25h\"",
        "leafnodes.remotes[0].first_info_timeout",
    ),
    (
        REMOTE,
        "dial_timeout",
        "\"24h\"",
        "\"25h\"",
        "leafnodes.remotes[0].dial_timeout",
    ),
    (
        STREAM,
        "max_msgs",
        "281474976710656",
        "281474976710657",
        "streams[0].max_msgs",
    ),
    (STREAM, "max_age", "\"87600h\"", "\"87601h\"", "max_age"),
    (STREAM, "sync", "\"24h\"", "\"25h\"", "streams[0].sync"),
    (
        STREAM,
        "duplicate_window",
        "\"720h\"",
        "\"721h\"",
        "streams[0].duplicate_window",
    ),
    (
        STREAM,
        "max_duplicate_ids",
        "4194304",
        "4194305",
        "streams[0].max_duplicate_ids",
    ),
    (
        STREAM,
        "queue_bytes",
        "\"1GB\"",
        "1073741825",
        "streams[0].queue_bytes",
    ),
    (
        STREAM,
        "forward_ack_timeout",
        "\"24h\"",
        "\"25h\"",
        "streams[0].forward_ack_timeout",
    ),
    (SYNC, "expires", "\"24h\"", "\"25h\"", "sync[0].expires"),
    (SYNC, "ack_wait", "\"24h\"", "\"25h\"", "sync[0].ack_wait"),
    (
        SYNC,
        "max_ack_pending",
        "1048576",
        "1048577",
        "sync[0].max_ack_pending",
    ),
    (
        SYNC,
        "request_timeout",
        "\"24h\"",
        "\"25h\"",
        "sync[0].request_timeout",
    ),
    (
        SYNC,
        "retry_delay",
        "\"24h\"",
        "\"25h\"",
        "sync[0].retry_delay",
    ),
    (
        SYNC,
        "max_remembered",
        "4194304",
        "4194305",
        "sync[0].max_remembered",
    ),
    (
        MQTT,
        "connect_timeout",
        "\"24h\"",
        "\"25h\"",
        "mqtt.connect_timeout",
    ),
    (
        MQTT,
        "reconnect_delay_max",
        "\"24h\"",
        "\"25h\"",
        "mqtt.reconnect_delay_max",
    ),
    (MQTT, "queue", "1048576", "1048577", "mqtt.queue"),
    (
        EXPORT,
        "queue",
        "1048576",
        "1048577",
        "mqtt.export[0].queue",
    ),
];

fn toml(section: &str, key: &str, value: &str) -> String {
    format!("{section}{key} = {value}\n")
}

#[test]
fn every_maximum_is_accepted_and_one_past_it_refused() {
    for (section, key, max, over, option) in CASES {
        let ok = toml(section, key, max);
        if let Err(e) = Config::from_toml(&ok) {
            panic!("the maximum was refused: {e}\n{ok}");
        }
        let bad = toml(section, key, over);
        match Config::from_toml(&bad) {
            Ok(_) => panic!("accepted past the maximum:\n{bad}"),
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains(option), "{e:?} does not name {option}:\n{bad}");
                assert!(
                    e.contains("too l") || e.contains("between"),
                    "{e:?} does not say why:\n{bad}"
                );
            }
        }
    }
}

#[test]
fn a_config_built_in_code_is_checked_too() {
    // Flags and reloads end in `validate`, not in the parser.
    let c = Config {
        ping_interval: Duration::MAX,
        ..Config::default()
    };
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("ping_interval") && e.contains("too long"), "{e}");
    let c = Config {
        max_pending: usize::MAX,
        ..Config::default()
    };
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("max_pending")
    );
}

#[test]
fn durations_past_ten_years_are_refused_by_the_parser() {
    assert!(crate::parse_duration("87600h").is_ok());
    let e = crate::parse_duration("87601h").unwrap_err();
    assert!(e.contains("too long"), "{e}");
    assert!(crate::parse_duration("18446744073709551615").is_err());
    assert!(crate::parse_duration("5124095h").is_err());
}

fn nats_refused(text: &str) -> String {
    match from_nats_conf(text, None) {
        Ok(c) => panic!("accepted {text:?}: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn nats_server_format_is_bounded_with_the_line() {
    for (text, option, line) in [
        ("port: 4222\nping_interval: \"25h\"\n", "ping_interval", 2),
        ("max_connections: 2000000\n", "max_connections", 1),
        ("\nmax_subs: 2000000\n", "max_subscriptions", 2),
        ("write_deadline: \"99999999h\"\n", "write_deadline", 1),
        ("max_pending: 4GB\n", "max_pending", 1),
        (
            "authorization {\n  timeout: 99999999999.5\n}\n",
            "timeout",
            2,
        ),
        (
            "leafnodes {\n  remotes: [\n    { url: \"nats://h:1\", first_info_timeout: \"48h\" }\n  ]\n}\n",
            "first_info_timeout",
            3,
        ),
    ] {
        let e = nats_refused(text);
        assert!(e.contains(option), "{e:?} does not name {option}:\n{text}");
        assert!(
            e.contains(&format!("line {line}")),
            "{e:?} not at line {line}:\n{text}"
        );
    }
    // The maxima themselves load.
    from_nats_conf("ping_interval: \"24h\"\nmax_subs: 1048576\n", None).unwrap();
}
