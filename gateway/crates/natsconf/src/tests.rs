//! The format as nats-server reads it, in small conversations: text in, tree out.
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::*;

/// Files and environment variables of a test.
#[derive(Default)]
struct Fake {
    files: HashMap<PathBuf, String>,
    env: HashMap<String, String>,
}

impl Source for Fake {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
}

fn read(text: &str) -> Map {
    parse_with(text, None, &Fake::default()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn err(text: &str) -> Error {
    match parse_with(text, None, &Fake::default()) {
        Ok(m) => panic!("accepted {text:?}: {m:?}"),
        Err(e) => e,
    }
}

fn kind<'a>(m: &'a Map, key: &str) -> &'a Kind {
    &m.get(key)
        .unwrap_or_else(|| panic!("no {key} in {m:?}"))
        .value
        .kind
}

fn s(v: &str) -> Kind {
    Kind::String(v.into())
}

fn map<'a>(m: &'a Map, key: &str) -> &'a Map {
    match kind(m, key) {
        Kind::Map(m) => m,
        k => panic!("{key} is {k:?}"),
    }
}

#[test]
fn three_separators_and_two_comment_styles() {
    let m = read("a: 1\nb = 2\nc 3\n# comment\n// comment too\nd: 4 # trailing\ne=5; f=6, g=7\n");
    for (k, v) in [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 4),
        ("e", 5),
        ("f", 6),
        ("g", 7),
    ] {
        assert_eq!(kind(&m, k), &Kind::Integer(v), "{k}");
    }
    assert_eq!(m.len(), 7);
}

#[test]
fn strings_quoted_and_not() {
    let m = read(concat!(
        "a: \"x y\\tz\"\n",
        "b: 'raw \\t'\n",
        "c: nats-leaf://hub.example:7422\n",
        "d: 127.0.0.1:4222\n",
        "e: \"2m\"\n",
        "\"quoted key\": 1\n",
        "'single key' = 2\n",
    ));
    assert_eq!(kind(&m, "a"), &s("x y\tz"));
    assert_eq!(kind(&m, "b"), &s("raw \\t"));
    assert_eq!(kind(&m, "c"), &s("nats-leaf://hub.example:7422"));
    assert_eq!(kind(&m, "d"), &s("127.0.0.1:4222"));
    assert_eq!(kind(&m, "e"), &s("2m"));
    assert_eq!(kind(&m, "quoted key"), &Kind::Integer(1));
    assert_eq!(kind(&m, "single key"), &Kind::Integer(2));
}

#[test]
fn maps_arrays_and_nesting() {
    let m = read(concat!(
        "authorization {\n",
        "  users = [\n",
        "    { user: a, password: b }  # first\n",
        "    {user: c, password: d},\n",
        "  ]\n",
        "  timeout: 2\n",
        "}\n",
        "list: [1, 2\n 3 ]\n",
        "empty: {}\n",
        "none: []\n",
    ));
    let auth = map(&m, "authorization");
    match kind(auth, "users") {
        Kind::Array(users) => {
            assert_eq!(users.len(), 2);
            let Kind::Map(u) = &users[1].kind else {
                panic!()
            };
            assert_eq!(kind(u, "user"), &s("c"));
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(kind(auth, "timeout"), &Kind::Integer(2));
    let Kind::Array(list) = kind(&m, "list") else {
        panic!()
    };
    assert_eq!(
        list.iter().map(|v| v.kind.clone()).collect::<Vec<_>>(),
        [Kind::Integer(1), Kind::Integer(2), Kind::Integer(3)]
    );
    assert!(map(&m, "empty").is_empty());
    assert_eq!(kind(&m, "none"), &Kind::Array(Vec::new()));
}

#[test]
fn a_block_is_raw_text_up_to_a_lone_paren() {
    let m = read("text: (\nline one\n  (x) inside\n)\nnext: 1\n");
    assert_eq!(kind(&m, "text"), &s("\nline one\n  (x) inside\n"));
    assert_eq!(kind(&m, "next"), &Kind::Integer(1));
    assert!(err("text: (\nno end").message.contains("unclosed '('"));
}

#[test]
fn top_level_braces_like_json() {
    let m = read("{\n  \"port\": 4222,\n  \"debug\": true\n}\n");
    assert_eq!(kind(&m, "port"), &Kind::Integer(4222));
    assert_eq!(kind(&m, "debug"), &Kind::Bool(true));
}

#[test]
fn a_later_key_replaces_an_earlier_one() {
    let m = read("port: 1\nport: 2\n");
    assert_eq!(m.len(), 1);
    assert_eq!(kind(&m, "port"), &Kind::Integer(2));
    assert_eq!(m.get("port").unwrap().key_pos.line, 2);
}

#[test]
fn positions_are_lines_and_columns() {
    let m = read("\n\n  max_payload: 1MB\nleafnodes {\n  remotes: []\n}\n");
    let e = m.get("max_payload").unwrap();
    assert_eq!((e.key_pos.line, e.key_pos.column), (3, 3));
    assert_eq!((e.value.pos.line, e.value.pos.column), (3, 16));
    let r = map(&m, "leafnodes").get("remotes").unwrap();
    assert_eq!(r.key_pos.line, 5);
}

#[test]
fn errors_say_where() {
    let e = err("a: 1\nb: [1, 2\n");
    assert!(e.message.contains("unclosed '['"), "{e}");
    let e = err("a: 1\nb c d\n");
    assert_eq!(e.pos.line, 2, "{e}");
    assert!(e.to_string().starts_with("line 2, column"), "{e}");
    assert!(err("a: {\n b: 1\n").message.contains("unclosed '{'"));
    assert!(err("a =\n1").message.contains("new line"));
    assert!(err("key").message.contains("no value"));
    assert!(err("a: \"open").message.contains("unclosed"));
    assert!(err("a: [,1]").message.contains("','"));
    assert!(err("= 1").message.contains("separator"));
    assert!(err("a: .5").message.contains("digit"));
}

#[test]
fn variables_from_the_file_then_the_environment() {
    let mut fake = Fake::default();
    fake.env.insert("EDGE_PORT".into(), "4333".into());
    fake.env.insert("EDGE_TOKEN".into(), "s3cret".into());
    fake.env.insert("QUOTED".into(), "\"a b\"".into());
    let text = concat!(
        "NAME: edge-1\n",
        "server_name: $NAME\n",
        "port: $EDGE_PORT\n",
        "authorization { inner: x, token: $EDGE_TOKEN, again: $inner }\n",
        "spaced: $QUOTED\n",
        "hash: $2a$11$abcdefghij\n",
    );
    let m = parse_with(text, None, &fake).unwrap();
    assert_eq!(kind(&m, "server_name"), &s("edge-1"));
    assert!(m.get("NAME").unwrap().used_as_variable);
    assert!(!m.get("server_name").unwrap().used_as_variable);
    assert_eq!(
        kind(&m, "port"),
        &Kind::Integer(4333),
        "environment values read as values"
    );
    let auth = map(&m, "authorization");
    assert_eq!(kind(auth, "token"), &s("s3cret"));
    assert_eq!(kind(auth, "again"), &s("x"));
    assert!(auth.get("inner").unwrap().used_as_variable);
    assert_eq!(kind(&m, "spaced"), &s("a b"));
    assert_eq!(
        kind(&m, "hash"),
        &s("$2a$11$abcdefghij"),
        "bcrypt hashes are not variables"
    );
    // The reference's position, where the option is.
    assert_eq!(m.get("port").unwrap().value.pos.line, 3);
}

#[test]
fn variable_errors() {
    let mut fake = Fake::default();
    fake.env.insert("A".into(), "$B".into());
    fake.env.insert("B".into(), "$A".into());
    fake.env.insert("TWO".into(), "a b".into());
    let e = parse_with("x: $A", None, &fake).unwrap_err();
    assert!(e.message.contains("cycle"), "{e}");
    let e = parse_with("x: $MISSING", None, &fake).unwrap_err();
    assert!(e.message.contains("not defined"), "{e}");
    let e = parse_with("x: $TWO", None, &fake).unwrap_err();
    assert!(e.message.contains("TWO"), "{e}");
    // A variable defined below is not seen yet, as in nats-server.
    let e = parse_with("x: $Y\nY: 1", None, &fake).unwrap_err();
    assert!(e.message.contains("not defined"), "{e}");
}

#[test]
fn includes_are_relative_to_the_including_file() {
    let mut fake = Fake::default();
    fake.files.insert(
        "/etc/nats/auth/users.conf".into(),
        "authorization { token: t }\nPORT: 4333\n".into(),
    );
    fake.files.insert(
        "/etc/nats/tls.conf".into(),
        "include 'auth/users.conf'\n".into(),
    );
    let text = "include ./tls.conf\nport: $PORT\ninclude \"tls.conf\"; debug: true\n";
    let m = parse_with(text, Some(Path::new("/etc/nats/leaf.conf")), &fake).unwrap();
    assert_eq!(kind(map(&m, "authorization"), "token"), &s("t"));
    assert_eq!(kind(&m, "port"), &Kind::Integer(4333));
    assert_eq!(kind(&m, "debug"), &Kind::Bool(true));
    let token = map(&m, "authorization").get("token").unwrap();
    // Positions name the file the key was written in.
    let file = token.key_pos.file.as_deref().unwrap();
    assert!(file.ends_with("auth/users.conf"), "{}", file.display());
    // Inside a map too.
    let m = parse_with(
        "leafnodes { include ./tls.conf }",
        Some(Path::new("/etc/nats/x.conf")),
        &fake,
    )
    .unwrap();
    assert!(map(&m, "leafnodes").get("PORT").is_some());
}

#[test]
fn include_errors() {
    let mut fake = Fake::default();
    fake.files
        .insert("loop.conf".into(), "include loop.conf\n".into());
    fake.files.insert("bad.conf".into(), "a: [\n".into());
    let e = parse_with("include missing.conf", None, &fake).unwrap_err();
    assert!(
        e.message.contains("cannot read included file missing.conf"),
        "{e}"
    );
    let e = parse_with("include loop.conf", None, &fake).unwrap_err();
    assert!(e.message.contains("includes nested deeper"), "{e}");
    // A fan-out: each file includes the next twice, ten levels: 1024 reads, refused.
    for i in 0..10 {
        let next = format!("include f{}.conf\n", i + 1);
        fake.files
            .insert(format!("f{i}.conf").into(), format!("{next}{next}"));
    }
    fake.files.insert("f10.conf".into(), "x: 1\n".into());
    let e = parse_with("include f0.conf", None, &fake).unwrap_err();
    assert!(e.message.contains("included files"), "{e}");
    let e = parse_with("include bad.conf", None, &fake).unwrap_err();
    assert_eq!(e.pos.file.as_deref(), Some(Path::new("bad.conf")), "{e}");
    assert!(parse_with("include\n", None, &fake).is_err());
    assert!(parse_with("include [a]", None, &fake).is_err());
    // `include:` with a separator is an ordinary key.
    let m = parse_with("include: 5", None, &fake).unwrap();
    assert_eq!(kind(&m, "include"), &Kind::Integer(5));
}

/// nats-server's own quirk, kept: a number directly before `]` is read as a word (`2]`), so
/// `[1, 2]` does not parse there either (`nats-server -t` says so); `[1, 2 ]` does.
#[test]
fn a_number_against_a_bracket_is_a_word() {
    assert!(parse_with("x = [1, 2]\n", None, &Fake::default()).is_err());
    let m = read("x = [1, 2 ]\n");
    assert!(matches!(kind(&m, "x"), Kind::Array(a) if a.len() == 2));
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(err(&deep).message.contains("nested deeper"));
    let deep = format!("a: {}", "{b: ".repeat(10_000));
    assert!(err(&deep).message.contains("nested deeper"));
}

/// A leaf config as people write them, in every style at once.
#[test]
fn a_realistic_leaf_config() {
    let text = r#"
# Edge gateway, moved from nats-server
server_name: "edge-1"
listen: 0.0.0.0:4222
http: 127.0.0.1:8222
max_payload: 1MB
max_pending = 64MB
ping_interval: "30s"
write_deadline "5s"
lame_duck_duration: "30s"
lame_duck_grace_period: "5s"
authorization {
  users: [
    {user: sensor, password: "s3cr3t"}
    {nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4}
  ]
}
leafnodes {
  remotes = [
    {
      urls: ["tls://hub-a.example:7422", "tls://hub-b.example:7422"]
      credentials: "/etc/nats/edge.creds"
      deny_imports: ["local.>"]
      tls { ca_file: "/etc/nats/ca.pem" }
    }
  ]
}
"#;
    let m = read(text);
    assert_eq!(kind(&m, "listen"), &s("0.0.0.0:4222"));
    assert_eq!(kind(&m, "max_pending"), &Kind::Integer(64 << 20));
    assert_eq!(kind(&m, "write_deadline"), &s("5s"));
    let remotes = map(&m, "leafnodes").get("remotes").unwrap();
    let Kind::Array(r) = &remotes.value.kind else {
        panic!()
    };
    let Kind::Map(r0) = &r[0].kind else { panic!() };
    assert_eq!(map(r0, "tls").get("ca_file").unwrap().key_pos.line, 24);
}
