//! The permissions engine (`twig_gateway::perms`) against nats-server 2.15.1 itself: random
//! permission sets, written once as a nats-server config (the same JSON read by the engine's
//! serde input), then random SUBs, PUBs, deliveries and responses per user, over raw TCP.
//! Every decision nats-server makes (an `-ERR` or not, a `MSG` or not) must be the engine's.
//!
//! This pins the engine to the real server before it is wired into twig's connections; the
//! twig-vs-nats-server conformance of whole conversations comes with that wiring.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use twig_core::testing::Rng;
use twig_gateway::perms::{Budgets, Checker, Permissions, Rules};
use twig_tests::nats_server::{NatsServer, Options};

const STEP: Duration = Duration::from_secs(5);

// --- random permission sets, as JSON (nats-server's config format is a JSON superset) ---

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len())]
}

fn pattern(rng: &mut Rng) -> String {
    let n = 1 + rng.below(3);
    let mut t: Vec<&str> = (0..n).map(|_| pick(rng, &["a", "b", "c", "*"])).collect();
    if rng.below(4) == 0 {
        t.push(">");
    }
    t.join(".")
}

fn entries(rng: &mut Rng, queues: bool, max: usize) -> Vec<String> {
    (0..rng.below(max + 1))
        .map(|_| {
            let p = pattern(rng);
            if queues && rng.below(3) == 0 {
                format!("{p} {}", pick(rng, &["q", "r", "q.*", "*", "q.>"]))
            } else {
                p
            }
        })
        .collect()
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap()
}

fn side(rng: &mut Rng, queues: bool) -> Option<String> {
    match rng.below(4) {
        0 => None,
        1 => Some(json_list(&entries(rng, queues, 3))),
        _ => {
            let allow = entries(rng, queues, 3);
            let deny = entries(rng, queues, 2);
            let mut parts = Vec::new();
            if !allow.is_empty() || rng.below(2) == 0 {
                parts.push(format!("\"allow\": {}", json_list(&allow)));
            }
            parts.push(format!("\"deny\": {}", json_list(&deny)));
            Some(format!("{{{}}}", parts.join(", ")))
        }
    }
}

/// One user's `permissions` object.
fn permissions_json(rng: &mut Rng) -> String {
    let mut parts = Vec::new();
    if let Some(p) = side(rng, false) {
        parts.push(format!("\"publish\": {p}"));
    }
    if let Some(s) = side(rng, true) {
        parts.push(format!("\"subscribe\": {s}"));
    }
    match rng.below(4) {
        0 => parts.push("\"allow_responses\": true".into()),
        1 => parts.push("\"allow_responses\": {\"max\": 2, \"expires\": \"1h\"}".into()),
        2 => parts.push("\"allow_responses\": {\"max\": -1}".into()),
        _ => {}
    }
    format!("{{{}}}", parts.join(", "))
}

/// Hand-written sets for the documented cases and quirks.
const FIXED: &[&str] = &[
    r#"{"subscribe": ["foo", "foo v1"]}"#,
    r#"{"subscribe": ["foo v1"]}"#,
    r#"{"subscribe": {"allow": [">"], "deny": ["a.b", "c q", "a.* r.*"]}}"#,
    r#"{"subscribe": ["a.*"], "publish": {"deny": ["a.>"]}}"#,
    r#"{"publish": ["a.>", "b"], "allow_responses": true, "subscribe": ">"}"#,
    r#"{"publish": {"deny": "b.*"}, "allow_responses": {"max": 3}}"#,
    r#"{"allow_responses": true}"#,
    r#"{"publish": [], "subscribe": {"allow": "a.>", "deny": ["a.b.*", "a.c q.*"]}}"#,
    r#"{"sub": {"allow": ["a.* q.>", "b.> *"]}, "PUB": "c"}"#,
    r#"{"subscribe": {"deny": ["a.b", "b.*", "c.> q", "*.a r"]}}"#,
    r#"{"subscribe": {"deny": ["*.*", "a.> q.*"]}, "allow_responses": true}"#,
    r#"{"subscribe": {"deny": [">"]}}"#,
    r#"{"subscribe": {"allow": ["*.>", "a q"], "deny": ["a.a.>", "b.c", "a.* *"]}}"#,
];

// --- a raw client -----------------------------------------------------------------------

struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

/// What came back before the PONG that closes a request.
#[derive(Debug, Default)]
struct Seen {
    errs: Vec<String>,
    msgs: Vec<(u32, String)>,
}

impl Raw {
    fn connect(port: u16, user: &str) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        s.set_nodelay(true).unwrap();
        let mut raw = Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        let mut info = String::new();
        raw.r.read_line(&mut info).unwrap();
        assert!(info.starts_with("INFO "), "{info}");
        let connect = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"user\":\"{user}\",\"pass\":\"pw\",\"protocol\":1}}\r\n"
        );
        raw.send(&connect);
        let seen = raw.sync();
        assert!(
            seen.errs.is_empty(),
            "{user} could not log in: {:?}",
            seen.errs
        );
        raw
    }

    fn send(&mut self, text: &str) {
        self.w.write_all(text.as_bytes()).unwrap();
    }

    /// PING, then everything until its PONG.
    fn sync(&mut self) -> Seen {
        self.send("PING\r\n");
        let deadline = Instant::now() + STEP;
        let mut seen = Seen::default();
        loop {
            assert!(Instant::now() < deadline, "no PONG");
            let mut line = String::new();
            self.r.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line == "PONG" {
                return seen;
            } else if line == "PING" {
                self.send("PONG\r\n");
            } else if let Some(e) = line.strip_prefix("-ERR ") {
                seen.errs.push(e.trim_matches('\'').to_string());
            } else if let Some(args) = line.strip_prefix("MSG ") {
                let a: Vec<&str> = args.split(' ').collect();
                let len: usize = a.last().unwrap().parse().unwrap();
                let mut body = vec![0; len + 2];
                self.r.read_exact(&mut body).unwrap();
                seen.msgs.push((a[1].parse().unwrap(), a[0].to_string()));
            } else if line == "+OK" || line.starts_with("INFO ") {
            } else {
                panic!("unexpected line {line:?}");
            }
        }
    }
}

// --- the comparison ---------------------------------------------------------------------

struct Sub {
    sid: u32,
    subject: String,
    queue: Option<&'static str>,
    filtered: bool,
}

fn published(rng: &mut Rng) -> String {
    let n = 1 + rng.below(4);
    (0..n)
        .map(|_| pick(rng, &["a", "b", "c", "d", "*", ">"]))
        .collect::<Vec<_>>()
        .join(".")
}

/// How often each kind of decision went each way, so the test shows it tried both.
#[derive(Debug, Default)]
struct Tally {
    sub: [usize; 2],
    publish: [usize; 2],
    delivered: [usize; 2],
    response: [usize; 2],
}

fn check_user(port: u16, user: &str, perms_json: &str, seed: u64, tally: &mut Tally) {
    let ctx = format!("user {user} permissions {perms_json}");
    let perms: Permissions =
        serde_json::from_str(perms_json).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let rules = Rules::compile(&perms).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let mut engine = Checker::new(Arc::new(rules), Budgets::default());
    let now = Instant::now();
    let mut rng = Rng::new(seed);
    let mut conn = Raw::connect(port, user);
    let mut root = Raw::connect(port, "root");

    // Subscriptions, each in its own queue group if any (so every delivery is deterministic).
    let mut subs: Vec<Sub> = Vec::new();
    let mut groups = BTreeSet::new();
    for sid in 1..=24u32 {
        let subject = pattern(&mut rng);
        let queue = match rng.below(3) {
            0 => Some(pick(&mut rng, &["q", "r", "q.a", "q.b.c", "*", "x", "q.*"])),
            _ => None,
        };
        if queue.is_some_and(|q| !groups.insert(q)) {
            continue;
        }
        let q = queue.map(|q| format!(" {q}")).unwrap_or_default();
        conn.send(&format!("SUB {subject}{q} {sid}\r\n"));
        let nats_allowed = conn.sync().errs.is_empty();
        let ours = engine.subscribe(subject.as_bytes(), queue.map(str::as_bytes));
        assert_eq!(ours.allowed(), nats_allowed, "SUB {subject}{q}: {ctx}");
        tally.sub[usize::from(nats_allowed)] += 1;
        if ours.allowed() {
            subs.push(Sub {
                sid,
                subject,
                queue,
                filtered: ours.filtered(),
            });
        }
    }

    // Publishes.
    for _ in 0..24 {
        let s = published(&mut rng);
        conn.send(&format!("PUB {s} 1\r\nx\r\n"));
        let seen = conn.sync();
        let ok = seen.errs.is_empty();
        assert_eq!(engine.publish(now, s.as_bytes()), ok, "PUB {s}: {ctx}");
        tally.publish[usize::from(ok)] += 1;
        if let Some(e) = seen.errs.first() {
            assert_eq!(e, &format!("Permissions Violation for Publish to \"{s}\""));
        }
    }

    // Deliveries from an unrestricted publisher, some with reply subjects.
    let mut replies = Vec::new();
    for i in 0..20 {
        let s = published(&mut rng);
        let reply = (rng.below(2) == 0).then(|| format!("_R.{}", i % 7));
        match &reply {
            Some(r) => root.send(&format!("PUB {s} {r} 1\r\nx\r\n")),
            None => root.send(&format!("PUB {s} 1\r\nx\r\n")),
        }
        root.sync();
        let got: BTreeSet<(u32, String)> = conn.sync().msgs.into_iter().collect();
        let mut want = BTreeSet::new();
        for sub in subs
            .iter()
            .filter(|x| twig_core::subject::matches(x.subject.as_bytes(), s.as_bytes()))
        {
            let r = reply.as_deref().map(str::as_bytes);
            let queue = sub.queue.map(str::as_bytes);
            let ok = engine.deliver(now, s.as_bytes(), queue, r, sub.filtered);
            if ok {
                want.insert((sub.sid, s.clone()));
            }
            tally.delivered[usize::from(ok)] += 1;
        }
        assert_eq!(got, want, "deliveries of {s} (reply {reply:?}): {ctx}");
        replies.extend(reply);
    }

    // Responses: each reply subject answered twice.
    for r in replies.iter().chain(replies.iter()) {
        conn.send(&format!("PUB {r} 1\r\nx\r\n"));
        let ok = conn.sync().errs.is_empty();
        assert_eq!(
            engine.publish(now, r.as_bytes()),
            ok,
            "response to {r}: {ctx}"
        );
        tally.response[usize::from(ok)] += 1;
    }
}

#[test]
fn engine_decides_as_nats_server_does() {
    let mut rng = Rng::new(2151);
    let mut sets: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    while sets.len() < 300 {
        sets.push(permissions_json(&mut rng));
    }
    let users: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{{\"user\": \"u{i}\", \"password\": \"pw\", \"permissions\": {p}}}"))
        .collect();
    let extra = format!(
        "authorization {{\n  users: [\n    {},\n    {{\"user\": \"root\", \"password\": \"pw\"}}\n  ]\n}}\n",
        users.join(",\n    ")
    );
    let server = NatsServer::start(&Options {
        extra,
        ..Options::default()
    });
    let mut tally = Tally::default();
    for (i, p) in sets.iter().enumerate() {
        check_user(
            server.client_port,
            &format!("u{i}"),
            p,
            1000 + i as u64,
            &mut tally,
        );
    }
    eprintln!("decisions (refused, allowed): {tally:?}");
    for (what, [no, yes]) in [
        ("SUB", tally.sub),
        ("PUB", tally.publish),
        ("delivery", tally.delivered),
        ("response", tally.response),
    ] {
        assert!(
            no > 20 && yes > 20,
            "{what}: only {no} refused and {yes} allowed"
        );
    }
}
