//! Unit tests: every rule of nats-server's permission semantics, one at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

fn perms(toml_text: &str) -> Permissions {
    #[derive(serde::Deserialize)]
    struct Wrap {
        permissions: Permissions,
    }
    toml::from_str::<Wrap>(&format!("[permissions]\n{toml_text}"))
        .unwrap_or_else(|e| panic!("{toml_text}: {e}"))
        .permissions
}

fn perms_err(toml_text: &str) -> String {
    #[derive(serde::Deserialize, Debug)]
    struct Wrap {
        #[allow(dead_code)]
        permissions: Permissions,
    }
    toml::from_str::<Wrap>(&format!("[permissions]\n{toml_text}"))
        .unwrap_err()
        .to_string()
}

fn rules(toml_text: &str) -> Rules {
    Rules::compile(&perms(toml_text)).unwrap()
}

fn checker(toml_text: &str) -> Checker {
    Checker::new(Arc::new(rules(toml_text)), Budgets::default())
}

fn list(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

// --- reading configs -------------------------------------------------------------------

#[test]
fn every_shape_nats_server_reads() {
    // A list is the allow list; a lone string too.
    let p = perms("publish = [\"a\", \"b.*\"]\nsubscribe = \"c.>\"");
    assert_eq!(p.publish.as_ref().unwrap().allow, list(&["a", "b.*"]));
    assert_eq!(p.subscribe.as_ref().unwrap().allow, list(&["c.>"]));
    assert!(p.allow_responses.is_none());
    // { allow, deny }, each a string or a list.
    let p = perms("publish = { allow = \"a\", deny = [\"a.secret\", \"b\"] }");
    let publish = p.publish.unwrap();
    assert_eq!(publish.allow, list(&["a"]));
    assert_eq!(publish.deny, ["a.secret", "b"]);
    // Only deny: no allow list.
    let p = perms("subscribe = { deny = \">\" }");
    assert_eq!(p.subscribe.unwrap().allow, None);
    // Aliases and any case, as nats-server.
    let p = perms("PUB = \"x\"\nExport = { ALLOW = \"y\" }\npublish_allow_responses = true");
    assert_eq!(p.publish.unwrap().allow, list(&["x"]));
    assert_eq!(p.subscribe.unwrap().allow, list(&["y"]));
    assert!(p.allow_responses.is_some());
    let p = perms("import = \"x\"\nsub = \"y\"");
    assert!(p.publish.is_some() && p.subscribe.is_some());
}

#[test]
fn empty_forms_mean_what_they_mean_in_nats_server() {
    // `{}` is no rule at all.
    assert_eq!(perms("publish = {}").publish, None);
    // `[]` and `{ allow = [] }` are a rule without an allow list: everything passes.
    let p = perms("publish = []");
    assert_eq!(p.publish, Some(SubjectPermission::default()));
    assert_eq!(p.warnings().len(), 1);
    assert!(p.warnings()[0].contains("everything is allowed"));
    assert!(
        Checker::new(Arc::new(Rules::compile(&p).unwrap()), Budgets::default())
            .publish(Instant::now(), b"anything")
    );
    assert_eq!(
        perms("publish = { allow = [] }").publish.unwrap().allow,
        None
    );
    assert!(perms("publish = [\"a\"]").warnings().is_empty());
}

#[test]
fn allow_responses_forms() {
    let default = ResponsePermission {
        max: Some(1),
        expires: Some(Duration::from_secs(120)),
    };
    assert_eq!(
        perms("allow_responses = true").allow_responses,
        Some(default)
    );
    assert_eq!(perms("allow_responses = false").allow_responses, None);
    let p = perms("allow_responses = { max = 5, expires = \"1m30s\" }");
    assert_eq!(
        p.allow_responses,
        Some(ResponsePermission {
            max: Some(5),
            expires: Some(Duration::from_secs(90)),
        })
    );
    // 0 means the default, negative means unlimited.
    let p = perms("allow_responses = { max = 0, expires = \"0\" }");
    assert_eq!(p.allow_responses, Some(default));
    let p = perms("allow_responses = { MAX_MSGS = -1, TTL = \"-1s\" }");
    assert_eq!(
        p.allow_responses,
        Some(ResponsePermission {
            max: None,
            expires: None,
        })
    );
    let p = perms("allow_responses = { max_responses = 2 }");
    assert_eq!(p.allow_responses.unwrap().expires, default.expires);
    let p = perms("allow_responses = { expiration = \"250ms\", max_messages = 3 }");
    assert_eq!(p.allow_responses.unwrap().max, Some(3));
}

#[test]
fn bad_shapes_are_refused_with_nats_servers_words() {
    assert!(perms_err("publsh = \"a\"").contains("unknown field \"publsh\" parsing permissions"));
    assert!(perms_err("publish = { allw = \"a\" }").contains("only 'allow' or 'deny'"));
    assert!(perms_err("publish = [1]").contains("cannot be cast to string"));
    assert!(perms_err("publish = 7").contains("a subject, a list of subjects"));
    assert!(perms_err("allow_responses = \"yes\"").contains("a boolean or a map"));
    assert!(perms_err("allow_responses = { expires = 60 }").contains("not a duration string"));
    assert!(perms_err("allow_responses = { expires = \"1x\" }").contains("error parsing expires"));
    assert!(perms_err("allow_responses = { max = \"1\" }").contains("invalid type"));
    assert!(perms_err("allow_responses = { maxx = 1 }").contains("unknown field"));
}

#[test]
fn go_durations() {
    let ms = 1_000_000i128;
    assert_eq!(parse_go_duration("0"), Ok(0));
    assert_eq!(parse_go_duration("-0"), Ok(0));
    assert_eq!(parse_go_duration("1h2m3s4ms5us6ns"), Ok(3_723_004_005_006));
    assert_eq!(parse_go_duration("1.5s"), Ok(1500 * ms));
    assert_eq!(parse_go_duration(".5m"), Ok(30_000 * ms));
    assert_eq!(parse_go_duration("+2µs"), Ok(2000));
    assert_eq!(parse_go_duration("-250ms"), Ok(-250 * ms));
    for bad in ["", "1", "s", "1x", ".s", "-", "1.2.3s", "9999999999999h"] {
        assert!(parse_go_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn validation_follows_check_perm_subject_array() {
    let ok =
        perms("publish = [\"a.*\", \"b.>\", \">\"]\nsubscribe = [\"a\", \"a.* q\", \"b  q.*\"]");
    assert_eq!(ok.validate(), Ok(()));
    let cases = [
        (
            "publish = [\"a..b\"]",
            "publish allow: subject \"a..b\" is not a valid subject",
        ),
        (
            "publish = { deny = \"a.>.b\" }",
            "publish deny: subject \"a.>.b\"",
        ),
        // Queue forms only on subscribe.
        ("publish = [\"a q\"]", "publish allow: subject \"a q\""),
        (
            "subscribe = [\"a q r\"]",
            "subscribe allow: subject \"a q r\"",
        ),
        (
            "subscribe = { deny = \"a. q\" }",
            "subscribe deny: subject \"a.\"",
        ),
        (
            "subscribe = [\"a q..\"]",
            "subscribe allow: queue \"q..\" is not a valid queue",
        ),
        ("subscribe = [\"\"]", "subscribe allow: subject \"\""),
    ];
    for (text, want) in cases {
        let e = perms(text).validate().unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
        assert!(Rules::compile(&perms(text)).is_err(), "{text}");
    }
}

// --- publish ---------------------------------------------------------------------------

#[test]
fn publish_allow_and_deny() {
    let r =
        rules("publish = { allow = [\"sensors.>\", \"cmd.*.ack\"], deny = \"sensors.secret.*\" }");
    assert!(r.checks_publish());
    assert!(r.may_publish(b"sensors.t1"));
    assert!(r.may_publish(b"sensors.a.b.c"));
    assert!(r.may_publish(b"cmd.7.ack"));
    assert!(!r.may_publish(b"sensors"));
    assert!(!r.may_publish(b"cmd.7.ack.x"));
    assert!(!r.may_publish(b"sensors.secret.x"));
    assert!(r.may_publish(b"sensors.secret"));
    assert!(!r.may_publish(b"other"));
    // Deny alone: everything else passes.
    let r = rules("publish = { deny = [\"$SYS.>\", \"cmd.>\"] }");
    assert!(r.may_publish(b"sensors.t1"));
    assert!(!r.may_publish(b"$SYS.REQ.x"));
    assert!(!r.may_publish(b"cmd.7"));
    // No publish rule: nothing is checked.
    let r = rules("subscribe = \"x\"");
    assert!(!r.checks_publish());
    assert!(r.may_publish(b"anything"));
}

#[test]
fn published_wildcards_are_plain_tokens() {
    // A non-pedantic client may publish to `foo.*`: only wildcard entries cover it.
    let r = rules("publish = [\"foo.bar\", \"x.*\"]");
    assert!(!r.may_publish(b"foo.*"));
    assert!(r.may_publish(b"x.*"));
    assert!(r.may_publish(b"x.>"));
    // Malformed subjects match nothing, so an allow list refuses them.
    assert!(!r.may_publish(b"x..y"));
    assert!(!r.may_publish(b""));
}

#[test]
fn allow_responses_turns_off_the_blanket_allow() {
    // Responses without a publish allow list: only responses may be published.
    let r = rules("allow_responses = true");
    assert!(r.checks_publish());
    assert!(!r.may_publish(b"anything"));
    // Even with a deny-only publish rule (nats-server: allow becomes an empty list).
    let r = rules("allow_responses = true\npublish = { deny = \"x\" }");
    assert!(!r.may_publish(b"y"));
    let r = rules("allow_responses = true\npublish = \"y\"");
    assert!(r.may_publish(b"y"));
}

// --- subscribe -------------------------------------------------------------------------

#[test]
fn subscribe_allow_and_deny() {
    let r =
        rules("subscribe = { allow = [\"sensors.>\", \"cmd.7.*\"], deny = \"sensors.secret\" }");
    assert!(r.may_subscribe(b"sensors.t1", None));
    assert!(r.may_subscribe(b"sensors.>", None));
    assert!(r.may_subscribe(b"sensors.*", None));
    assert!(r.may_subscribe(b"cmd.7.reboot", None));
    assert!(r.may_subscribe(b"cmd.7.*", None));
    // nats-server's sublist: a `*` entry covers a `>` token in the subscribed subject.
    assert!(r.may_subscribe(b"cmd.7.>", None));
    assert!(!r.may_subscribe(b"cmd.*.reboot", None));
    assert!(!r.may_subscribe(b">", None));
    assert!(!r.may_subscribe(b"sensors.secret", None));
    // A wider wildcard is not stopped by a deny entry (its deliveries are filtered instead).
    assert!(r.may_subscribe(b"sensors.*", None));
    // The subject's own wildcards are tokens only a wildcard entry covers.
    let r = rules("subscribe = [\"foo.*\"]");
    assert!(
        r.may_subscribe(b"foo.>", None),
        "nats-server's sublist: * covers a > token"
    );
    assert!(r.may_subscribe(b"foo.*", None));
    let r = rules("subscribe = [\"foo.bar\"]");
    assert!(!r.may_subscribe(b"foo.*", None));
    // A deny entry with a wildcard stops subscriptions it covers.
    let r = rules("subscribe = { deny = \"foo.*\" }");
    assert!(!r.may_subscribe(b"foo.bar", None));
    assert!(!r.may_subscribe(b"foo.*", None));
    assert!(
        !r.may_subscribe(b"foo.>", None),
        "the sublist's `*` covers a > token"
    );
    assert!(r.may_subscribe(b"foo.a.b", None));
    assert!(r.may_subscribe(b"foo", None));
}

#[test]
fn queue_group_entries_as_nats_server_documents_them() {
    // allow = ["foo"]: plain and any queue.
    let r = rules("subscribe = [\"foo\"]");
    assert!(r.may_subscribe(b"foo", None));
    assert!(r.may_subscribe(b"foo", Some(b"any")));
    // allow = ["foo v1"]: only queue subscriptions in v1.
    let r = rules("subscribe = [\"foo v1\"]");
    assert!(!r.may_subscribe(b"foo", None));
    assert!(r.may_subscribe(b"foo", Some(b"v1")));
    assert!(!r.may_subscribe(b"foo", Some(b"v2")));
    // allow = ["foo", "foo v1"]: plain foo, but in a queue only v1.
    let r = rules("subscribe = [\"foo\", \"foo v1\"]");
    assert!(r.may_subscribe(b"foo", None));
    assert!(r.may_subscribe(b"foo", Some(b"v1")));
    assert!(!r.may_subscribe(b"foo", Some(b"v2")));
    // An empty queue name is no queue.
    assert!(r.may_subscribe(b"foo", Some(b"")));
}

#[test]
fn queue_names_with_wildcards() {
    let r = rules("subscribe = [\"jobs.> workers.*\"]");
    assert!(r.may_subscribe(b"jobs.a", Some(b"workers.eu")));
    assert!(!r.may_subscribe(b"jobs.a", Some(b"workers.eu.x")));
    assert!(!r.may_subscribe(b"jobs.a", Some(b"workers")));
    // A literal `*` queue is the same name (checked before the wildcard reading).
    assert!(r.may_subscribe(b"jobs.a", Some(b"workers.*")));
    // `*` in the queue only matches `*` or `>` in the pattern.
    let r = rules("subscribe = [\"jobs workers.>\"]");
    assert!(r.may_subscribe(b"jobs", Some(b"workers.a.b")));
    assert!(r.may_subscribe(b"jobs", Some(b"workers.*")));
    // The same name is always allowed, wildcard or not.
    assert!(r.may_subscribe(b"jobs", Some(b"workers.>")));
    let r = rules("subscribe = [\"jobs workers.*\"]");
    assert!(
        !r.may_subscribe(b"jobs", Some(b"workers.>")),
        "isSubsetMatch: > is not covered"
    );
    // nats-server's quirk: a pattern token that merely starts with `*` acts as a wildcard.
    let r = rules("subscribe = [\"jobs *x.*\"]");
    assert!(r.may_subscribe(b"jobs", Some(b"abc.d")));
    // Without a whole-token wildcard the name must be equal.
    let r = rules("subscribe = [\"jobs *x\"]");
    assert!(!r.may_subscribe(b"jobs", Some(b"abc")));
    assert!(r.may_subscribe(b"jobs", Some(b"*x")));
}

#[test]
fn queue_deny_entries() {
    let r = rules("subscribe = { deny = [\"foo v1\", \"bar\"] }");
    assert!(
        r.may_subscribe(b"foo", None),
        "a queue deny does not touch plain subs"
    );
    assert!(!r.may_subscribe(b"foo", Some(b"v1")));
    assert!(r.may_subscribe(b"foo", Some(b"v2")));
    assert!(!r.may_subscribe(b"bar", None));
    assert!(
        !r.may_subscribe(b"bar", Some(b"any")),
        "a plain deny stops every queue"
    );
    let r = rules("subscribe = { allow = \">\", deny = \"foo v.*\" }");
    assert!(!r.may_subscribe(b"foo", Some(b"v.1")));
    assert!(r.may_subscribe(b"foo", Some(b"w.1")));
}

#[test]
fn delivery_filter_for_wide_subscriptions() {
    let r = rules("subscribe = { allow = \">\", deny = [\"sensors.secret\", \"jobs v1\"] }");
    // Literal plain subscriptions were checked whole at SUB time.
    assert!(!r.filters_delivery(b"sensors.t1", None));
    // Wildcards that overlap a deny entry, and queue subscriptions that do, are filtered.
    assert!(r.filters_delivery(b"sensors.*", None));
    assert!(r.filters_delivery(b">", None));
    assert!(!r.filters_delivery(b"other.*", None));
    assert!(r.filters_delivery(b"jobs", Some(b"v2")));
    assert!(!r.filters_delivery(b"x", Some(b"v2")));
    assert!(!r.may_deliver(b"sensors.secret", None));
    assert!(r.may_deliver(b"sensors.t1", None));
    assert!(!r.may_deliver(b"jobs", Some(b"v1")));
    assert!(r.may_deliver(b"jobs", Some(b"v2")));
    assert!(r.may_deliver(b"jobs", None));
    let none = rules("subscribe = \">\"");
    assert!(!none.has_subscribe_denies());
    assert!(!none.filters_delivery(b">", None));
    assert!(none.may_deliver(b"anything", None));
}

#[test]
fn checker_subscribe_and_deliver() {
    let mut c = checker("subscribe = { allow = \"sensors.>\", deny = \"sensors.secret\" }");
    let now = Instant::now();
    assert_eq!(c.subscribe(b"other", None), Subscribe::Denied);
    assert_eq!(
        c.subscribe(b"sensors.t1", None),
        Subscribe::Allowed { filtered: false }
    );
    let wide = c.subscribe(b"sensors.>", None);
    assert!(wide.allowed() && wide.filtered());
    assert!(!c.deliver(now, b"sensors.secret", None, None, true));
    assert!(c.deliver(now, b"sensors.t1", None, None, true));
    // Cached answers stay right.
    assert!(!c.deliver(now, b"sensors.secret", None, None, true));
    assert!(c.deliver(now, b"sensors.t1", None, None, true));
}

// --- allow_responses -------------------------------------------------------------------

#[test]
fn a_response_is_allowed_once_then_not() {
    let mut c = checker("allow_responses = true\nsubscribe = \"svc\"");
    let t0 = Instant::now();
    assert!(!c.publish(t0, b"_INBOX.a"), "no request seen yet");
    assert!(c.deliver(t0, b"svc", None, Some(b"_INBOX.a"), false));
    assert_eq!(c.pending_replies(), 1);
    assert!(c.publish(t0, b"_INBOX.a"));
    assert!(!c.publish(t0, b"_INBOX.a"), "max 1");
    assert_eq!(c.pending_replies(), 0);
    assert!(!c.publish(t0, b"_INBOX.b"));
}

#[test]
fn responses_expire() {
    let mut c = checker("allow_responses = { max = 10, expires = \"1s\" }");
    let t0 = Instant::now();
    c.deliver(t0, b"svc", None, Some(b"r1"), false);
    assert!(c.publish(t0 + Duration::from_millis(999), b"r1"));
    assert!(
        c.publish(t0 + Duration::from_secs(1), b"r1"),
        "strictly after expires"
    );
    assert!(!c.publish(t0 + Duration::from_millis(1001), b"r1"));
    assert!(!c.publish(t0, b"r1"), "an expired entry is gone");
}

#[test]
fn unlimited_responses() {
    let mut c = checker("allow_responses = { max = -1, expires = \"-1s\" }");
    let t0 = Instant::now();
    c.deliver(t0, b"svc", None, Some(b"r"), false);
    for i in 0..100 {
        assert!(c.publish(t0 + Duration::from_secs(3600 * i), b"r"));
    }
}

#[test]
fn a_reply_delivered_twice_counts_as_used_once() {
    // nats-server checks the reply with the publish check, which counts a use.
    let mut c = checker("allow_responses = true");
    let t0 = Instant::now();
    c.deliver(t0, b"svc", None, Some(b"r"), false);
    c.deliver(t0, b"svc", None, Some(b"r"), false);
    assert!(
        !c.publish(t0, b"r"),
        "the second delivery used the only response"
    );
    // A third delivery finds it gone and grants it afresh.
    c.deliver(t0, b"svc", None, Some(b"r"), false);
    assert!(c.publish(t0, b"r"));
}

#[test]
fn replies_already_allowed_are_not_tracked() {
    let mut c = checker("allow_responses = true\npublish = \"_INBOX.>\"");
    let t0 = Instant::now();
    c.deliver(t0, b"svc", None, Some(b"_INBOX.x"), false);
    assert_eq!(c.pending_replies(), 0);
    c.deliver(t0, b"svc", None, Some(b"other"), false);
    assert_eq!(c.pending_replies(), 1);
    // Responses respect the publish deny list? No: nats-server checks responses only after
    // the static lists said no, and a deny is a "no" like any other.
    let mut c = checker("allow_responses = true\npublish = { allow = \">\", deny = \"cmd.>\" }");
    c.deliver(t0, b"svc", None, Some(b"cmd.x"), false);
    assert!(c.publish(t0, b"cmd.x"));
    assert!(!c.publish(t0, b"cmd.x"));
}

#[test]
fn reply_table_is_pruned_and_bounded() {
    let rules = Arc::new(rules("allow_responses = { max = 1, expires = \"1s\" }"));
    let budgets = Budgets {
        replies: 64 * 1024,
        ..Budgets::default()
    };
    let mut c = Checker::new(rules, budgets);
    let t0 = Instant::now();
    for i in 0..100_000u32 {
        let reply = format!("_INBOX.{i:08}");
        c.deliver(t0, b"svc", None, Some(reply.as_bytes()), false);
        assert!(
            c.bytes() <= 64 * 1024 + 128,
            "{} bytes after {i}",
            c.bytes()
        );
    }
    // The newest survive eviction.
    assert!(c.publish(t0, b"_INBOX.00099999"));
    assert!(!c.publish(t0, b"_INBOX.00000000"));
    // Expired entries are pruned on the next addition a second later.
    let later = t0 + Duration::from_secs(2);
    c.deliver(later, b"svc", None, Some(b"fresh"), false);
    assert_eq!(c.pending_replies(), 1);
}

#[test]
fn set_rules_starts_afresh() {
    let mut c = checker("allow_responses = true\npublish = \"a\"");
    let t0 = Instant::now();
    c.deliver(t0, b"svc", None, Some(b"r"), false);
    assert!(c.publish(t0, b"a"));
    c.set_rules(Arc::new(rules("publish = \"b\"\nallow_responses = true")));
    assert!(!c.publish(t0, b"a"));
    assert!(c.publish(t0, b"b"));
    assert!(
        !c.publish(t0, b"r"),
        "earned responses are dropped, as nats-server does"
    );
}

// --- the cache -------------------------------------------------------------------------

#[test]
fn cache_stays_within_its_budget_and_keeps_what_is_used() {
    let mut cache = BoundedCache::new(4096);
    cache.put(b"hot", true);
    for i in 0..10_000u32 {
        let key = format!("cold.{i}");
        cache.put(key.as_bytes(), false);
        assert!(cache.bytes() <= 4096);
        if i % 10 == 0 {
            assert_eq!(cache.get(b"hot"), Some(true), "after {i}");
        }
    }
    assert!(cache.len() > 10);
    assert_eq!(cache.get(b"cold.9999"), Some(false));
    assert_eq!(cache.get(b"cold.0"), None);
    cache.clear();
    assert!(cache.is_empty() && cache.bytes() == 0);
    // A key too large for the budget is never kept; a zero budget keeps nothing.
    cache.put(&[b'x'; 5000], true);
    assert!(cache.is_empty());
    let mut none = BoundedCache::new(0);
    none.put(b"a", true);
    assert_eq!(none.get(b"a"), None);
}

#[test]
fn publish_cache_is_bounded_under_a_flood_of_subjects() {
    let mut c = checker("publish = { allow = \">\", deny = \"x.>\" }");
    let t0 = Instant::now();
    for i in 0..50_000u32 {
        let s = format!("sensors.{i}");
        assert!(c.publish(t0, s.as_bytes()));
        assert!(!c.publish(t0, format!("x.{i}").as_bytes()));
    }
    assert!(c.bytes() <= Budgets::default().publish_cache);
}

// --- templates -------------------------------------------------------------------------

fn facts<'a>(name: &'a str, tags: &'a [String]) -> Facts<'a> {
    Facts {
        name: Some(name),
        subject: Some("UABC"),
        tags,
    }
}

#[test]
fn templates_fill_from_the_identity() {
    let p = perms(
        "publish = [\"sensors.{{name()}}.>\", \"keys.{{ Subject() }}\"]\n\
         subscribe = { allow = [\"cmd.{{name()}}.>\", \"jobs.{{name()}} {{name()}}\"], \
         deny = \"cmd.{{name()}}.secret\" }",
    );
    assert!(p.has_templates());
    assert_eq!(p.validate(), Ok(()));
    assert_eq!(Rules::compile(&p).err(), Some(PermsError::UnfilledTemplate));
    let filled = template::fill(&p, &facts("dev-7", &[])).unwrap();
    assert!(!filled.has_templates());
    let publish = filled.publish.as_ref().unwrap();
    assert_eq!(publish.allow, list(&["sensors.dev-7.>", "keys.UABC"]));
    let subscribe = filled.subscribe.as_ref().unwrap();
    assert_eq!(subscribe.allow, list(&["cmd.dev-7.>", "jobs.dev-7 dev-7"]));
    assert_eq!(subscribe.deny, ["cmd.dev-7.secret"]);
    let r = Rules::compile(&filled).unwrap();
    assert!(r.may_publish(b"sensors.dev-7.t"));
    assert!(!r.may_publish(b"sensors.dev-8.t"));
    assert!(r.may_subscribe(b"jobs.dev-7", Some(b"dev-7")));
}

#[test]
fn tags_expand_to_every_value() {
    let tags = vec![
        "site:berlin".to_string(),
        "Site:paris".to_string(),
        "role:x".to_string(),
    ];
    let p = perms("publish = [\"{{tag(site)}}.{{tag(ROLE)}}.>\"]");
    let filled = template::fill(&p, &facts("d", &tags)).unwrap();
    assert_eq!(
        filled.publish.unwrap().allow,
        list(&["berlin.x.>", "paris.x.>"])
    );
}

#[test]
fn template_failures_follow_nats_server() {
    let none: [String; 0] = [];
    // An allow entry without its tag is dropped; if the list empties, everything is denied.
    let p = perms("publish = [\"a.{{tag(site)}}\"]");
    let filled = template::fill(&p, &facts("d", &none)).unwrap();
    let publish = filled.publish.unwrap();
    assert_eq!(publish.allow, Some(vec![]));
    assert_eq!(publish.deny, [">"]);
    let p = perms("subscribe = [\"a.{{tag(site)}}\", \"b\"]");
    let filled = template::fill(&p, &facts("d", &none)).unwrap();
    assert_eq!(filled.subscribe.unwrap().allow, list(&["b"]));
    // A deny entry without its tag refuses the login.
    let p = perms("publish = { deny = \"a.{{tag(site)}}\" }");
    assert_eq!(
        template::fill(&p, &facts("d", &none))
            .unwrap_err()
            .to_string(),
        "generated invalid subject \"a.{{tag(site)}}\": \"site\" is not defined"
    );
    // Names that would widen or break a rule make the entry invalid.
    let p = perms("publish = [\"s.{{name()}}\", \"t\"]\nsubscribe = { deny = \"c.{{name()}}\" }");
    for bad in ["*", ">", "a.>", "a b", "", "a..b"] {
        assert!(template::fill(&p, &facts(bad, &none)).is_err(), "{bad:?}");
    }
    let p = perms("publish = [\"s.{{name()}}\", \"t\"]");
    let filled = template::fill(&p, &facts("*", &none)).unwrap();
    assert_eq!(filled.publish.unwrap().allow, list(&["t"]));
    // A name with dots is fine (several tokens, all literal).
    let filled = template::fill(&p, &facts("eu.dev7", &none)).unwrap();
    assert_eq!(filled.publish.unwrap().allow, list(&["s.eu.dev7", "t"]));
    // No name at all (an nkey without one): entries using it are invalid.
    let unnamed = Facts {
        name: None,
        subject: Some("UABC"),
        tags: &none,
    };
    let filled = template::fill(&p, &unnamed).unwrap();
    assert_eq!(filled.publish.unwrap().allow, list(&["t"]));
}

#[test]
fn template_errors_at_config_time() {
    let e = perms("publish = [\"a.{{account-name()}}\"]")
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "template operation in \"a.{{account-name()}}\": \"account-name()\" is not defined"
    );
    assert!(perms("publish = [\"a.{{nme()}}\"]").validate().is_err());
    let e = perms("publish = [\"a..{{name()}}\"]")
        .validate()
        .unwrap_err();
    assert!(
        e.to_string().contains("not a valid subject template"),
        "{e}"
    );
    let e = perms("publish = [\"a.{{name()}} q\"]")
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("publish allow"), "{e}");
    // Text that only looks like a template is a literal subject.
    let p = perms("publish = [\"a.{{}}\", \"b.{x}}\", \"c.{{x\"]");
    assert!(!p.has_templates());
    assert_eq!(p.validate(), Ok(()));
}

#[test]
fn template_expansion_is_limited() {
    let tags: Vec<String> = (0..100).map(|i| format!("a:v{i}")).collect();
    let p = perms("publish = [\"{{tag(a)}}.{{tag(a)}}\"]");
    assert_eq!(
        template::fill(&p, &facts("d", &tags)).unwrap_err(),
        PermsError::TooManyExpansions
    );
    let p = perms("publish = [\"{{tag(a)}}.x\"]");
    assert_eq!(
        template::fill(&p, &facts("d", &tags))
            .unwrap()
            .publish
            .unwrap()
            .allow
            .unwrap()
            .len(),
        100
    );
}

// --- -ERR texts ------------------------------------------------------------------------

#[test]
fn violation_texts_are_nats_servers() {
    assert_eq!(
        violation::publish(b"cmd.7"),
        "Permissions Violation for Publish to \"cmd.7\""
    );
    assert_eq!(
        violation::subscription(b"a.>", None),
        "Permissions Violation for Subscription to \"a.>\""
    );
    assert_eq!(
        violation::subscription(b"a", Some(b"q")),
        "Permissions Violation for Subscription to \"a\" using queue \"q\""
    );
    assert_eq!(
        violation::reply(b"_R_.x"),
        "Permissions Violation for Publish with Reply of \"_R_.x\""
    );
}

#[test]
fn go_quoting() {
    use violation::go_quote;
    assert_eq!(go_quote(b"plain"), "\"plain\"");
    assert_eq!(go_quote(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(
        go_quote(b"\x00\x07\x08\x0b\x1f\x7f"),
        "\"\\x00\\a\\b\\v\\x1f\\x7f\""
    );
    assert_eq!(
        go_quote("caf\u{e9}.\u{1F600}".as_bytes()),
        "\"caf\u{e9}.\u{1F600}\""
    );
    assert_eq!(go_quote(b"\xff\xfe.x"), "\"\\xff\\xfe.x\"");
    assert_eq!(go_quote("\u{200b}\u{85}".as_bytes()), "\"\\u200b\\u0085\"");
}
