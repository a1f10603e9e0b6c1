//! Model-based test: random permission sets and random conversations, each decision compared
//! with a plain transliteration of nats-server's Go code (`client.go` `pubAllowedFullCheck`,
//! `responseAllowed`, `canSubscribeInternal`, `loadMsgDenyFilterIfNeeded`, `checkDenySub`,
//! `deliverMsg`'s reply tracking; `sublist.go` `matchLevel`, `isSubsetMatchTokenized`,
//! `SubjectsCollide`) that scans lists linearly, loads its deny filter lazily as nats-server
//! does, caches nothing and never prunes. The engine runs with caches from tiny (thrashing)
//! to default.
//!
//! The model keeps the Go code's shape (nested ifs, repeated branches) so it can be read side
//! by side with nats-server; clippy's style advice would hide that.
#![allow(clippy::collapsible_if, clippy::if_same_then_else)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use twig_core::testing::Rng;

use super::*;

// --- the model: nats-server's logic, written out plainly -------------------------------

fn toks(s: &str) -> Vec<&str> {
    s.split('.').collect()
}

/// `Sublist.Match` for one entry: the subject's tokens are literal; `*` takes one token, `>`
/// one or more. An empty subject or token matches nothing.
fn nats_match(pattern: &str, subject: &str) -> bool {
    fn walk(p: &[&str], s: &[&str]) -> bool {
        match (p.split_first(), s.split_first()) {
            (None, None) => true,
            (Some((&">", _)), Some(_)) => true,
            (Some((&"*", pr)), Some((_, sr))) => walk(pr, sr),
            (Some((lit, pr)), Some((tok, sr))) => lit == tok && walk(pr, sr),
            _ => false,
        }
    }
    let s = toks(subject);
    !subject.is_empty() && s.iter().all(|t| !t.is_empty()) && walk(&toks(pattern), &s)
}

fn subject_has_wildcard(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| {
        (b[i] == b'*' || b[i] == b'>')
            && (i == 0 || b[i - 1] == b'.')
            && (i + 1 == b.len() || b[i + 1] == b'.')
    })
}

fn is_subset_match_tokenized(tokens: &[&str], test: &[&str]) -> bool {
    for (i, t2) in test.iter().enumerate() {
        if i >= tokens.len() {
            return false;
        }
        if t2.is_empty() {
            return false;
        }
        if t2.as_bytes()[0] == b'>' && t2.len() == 1 {
            return true;
        }
        let t1 = tokens[i];
        if t1.is_empty() || (t1.as_bytes()[0] == b'>' && t1.len() == 1) {
            return false;
        }
        if t1.as_bytes()[0] == b'*' && t1.len() == 1 {
            if !(t2.as_bytes()[0] == b'*' && t2.len() == 1) {
                return false;
            }
            continue;
        }
        if t2.as_bytes()[0] != b'*' && t1 != *t2 {
            return false;
        }
    }
    tokens.len() == test.len()
}

fn queue_matches(queue: &str, qnames: &[&str]) -> bool {
    if qnames.is_empty() {
        return true;
    }
    qnames.iter().any(|q| {
        queue == *q
            || (subject_has_wildcard(q) && is_subset_match_tokenized(&toks(queue), &toks(q)))
    })
}

fn tokens_can_match(t1: &str, t2: &str) -> bool {
    if t1.is_empty() || t2.is_empty() {
        return t1 == t2;
    }
    let (a, b) = (t1.as_bytes()[0], t2.as_bytes()[0]);
    a == b'*' || b == b'*' || a == b'>' || b == b'>' || t1 == t2
}

fn subjects_collide(s1: &str, s2: &str) -> bool {
    if s1 == s2 {
        return true;
    }
    let (t1, t2) = (toks(s1), toks(s2));
    let analyze = |t: &[&str]| (t.contains(&"*"), t.contains(&">"));
    let ((p1, f1), (p2, f2)) = (analyze(&t1), analyze(&t2));
    let (l1, l2) = (!(p1 || f1), !(p2 || f2));
    if l1 && l2 {
        return s1 == s2;
    }
    if l1 && !l2 {
        return is_subset_match_tokenized(&t1, &t2);
    } else if l2 && !l1 {
        return is_subset_match_tokenized(&t2, &t1);
    }
    if !f1 && !f2 && t1.len() != t2.len() {
        return false;
    }
    if t1.len() != t2.len() && ((t1.len() < t2.len() && !f1) || (t2.len() < t1.len() && !f2)) {
        return false;
    }
    t1.iter().zip(&t2).all(|(a, b)| tokens_can_match(a, b))
}

/// One list as nats-server's sublist holds it: `(subject, queue)` entries.
type List_ = Vec<(String, Option<String>)>;

fn split(entry: &str) -> (String, Option<String>) {
    let mut f = entry.split_whitespace();
    (f.next().unwrap().to_string(), f.next().map(str::to_string))
}

#[derive(Default)]
struct Model {
    pub_allow: Option<List_>,
    pub_deny: Option<List_>,
    sub_allow: Option<List_>,
    sub_deny: Option<List_>,
    resp: Option<ResponsePermission>,
    replies: HashMap<String, (Instant, u64)>,
    mperms: bool,
}

impl Model {
    /// `setPermissions`, after `validateResponsePermissions`.
    fn new(p: &Permissions) -> Model {
        let mut m = Model {
            resp: p.allow_responses,
            ..Model::default()
        };
        let mut publish = p.publish.clone();
        if p.allow_responses.is_some() {
            let pb = publish.get_or_insert_with(SubjectPermission::default);
            if pb.allow.is_none() {
                pb.allow = Some(Vec::new());
            }
        }
        if let Some(pb) = &publish {
            if let Some(a) = &pb.allow {
                m.pub_allow = Some(a.iter().map(|s| (s.clone(), None)).collect());
            }
            if !pb.deny.is_empty() {
                m.pub_deny = Some(pb.deny.iter().map(|s| (s.clone(), None)).collect());
            }
        }
        if let Some(sb) = &p.subscribe {
            if let Some(a) = sb.allow.as_ref().filter(|a| !a.is_empty()) {
                m.sub_allow = Some(a.iter().map(|s| split(s)).collect());
            }
            if !sb.deny.is_empty() {
                m.sub_deny = Some(sb.deny.iter().map(|s| split(s)).collect());
            }
        }
        m
    }

    /// `Match(subject)` on a list: (psubs matched?, queue names of matched qsubs).
    fn lookup<'a>(list: &'a List_, subject: &str) -> (bool, Vec<&'a str>) {
        let mut plain = false;
        let mut queues = Vec::new();
        for (s, q) in list {
            if nats_match(s, subject) {
                match q {
                    None => plain = true,
                    Some(q) => queues.push(q.as_str()),
                }
            }
        }
        (plain, queues)
    }

    fn pub_allowed_full_check(&mut self, now: Instant, subject: &str) -> bool {
        if self.pub_allow.is_none() && self.pub_deny.is_none() {
            return true;
        }
        let mut allowed = true;
        if let Some(a) = &self.pub_allow {
            allowed = Self::lookup(a, subject).0;
        }
        if allowed {
            if let Some(d) = &self.pub_deny {
                allowed = !Self::lookup(d, subject).0;
            }
        }
        if !allowed && self.resp.is_some() {
            allowed = self.response_allowed(now, subject);
        }
        allowed
    }

    fn response_allowed(&mut self, now: Instant, subject: &str) -> bool {
        let rp = self.resp.unwrap();
        if let Some(r) = self.replies.get_mut(subject) {
            r.1 += 1;
            if rp.max.is_some_and(|m| r.1 > m) {
                self.replies.remove(subject);
            } else if rp.expires.is_some_and(|e| now.duration_since(r.0) > e) {
                self.replies.remove(subject);
            } else {
                return true;
            }
        }
        false
    }

    fn can_subscribe(&mut self, subject: &str, queue: Option<&str>) -> bool {
        let queue = queue.unwrap_or("");
        let mut allowed = true;
        if let Some(a) = &self.sub_allow {
            let (p, qs) = Self::lookup(a, subject);
            allowed = p;
            if !queue.is_empty() && !qs.is_empty() {
                allowed = queue_matches(queue, &qs);
            }
        }
        if allowed {
            if let Some(d) = &self.sub_deny {
                let (p, qs) = Self::lookup(d, subject);
                allowed = !p;
                if allowed && !queue.is_empty() && !qs.is_empty() {
                    allowed = !queue_matches(queue, &qs);
                }
            }
        }
        if allowed && !self.mperms && (!queue.is_empty() || subject_has_wildcard(subject)) {
            if let Some(d) = &self.sub_deny {
                if d.iter().any(|(s, _)| subjects_collide(s, subject)) {
                    self.mperms = true;
                }
            }
        }
        allowed
    }

    /// `deliverMsg`: false if the deny filter drops it; tracks the reply.
    fn deliver(
        &mut self,
        now: Instant,
        subject: &str,
        queue: Option<&str>,
        reply: Option<&str>,
    ) -> bool {
        if self.mperms {
            let (p, qs) = Self::lookup(self.sub_deny.as_ref().unwrap(), subject);
            let queue = queue.unwrap_or("");
            let denied = p || (!queue.is_empty() && !qs.is_empty() && queue_matches(queue, &qs));
            if denied {
                return false;
            }
        }
        if let Some(reply) = reply {
            if self.resp.is_some() && !self.pub_allowed_full_check(now, reply) {
                self.replies.insert(reply.to_string(), (now, 0));
            }
        }
        true
    }
}

// --- random inputs ---------------------------------------------------------------------

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len())]
}

fn random_pattern(rng: &mut Rng) -> String {
    let n = 1 + rng.below(3);
    let mut t: Vec<&str> = (0..n)
        .map(|_| pick(rng, &["a", "b", "c", "*", "*x"]))
        .collect();
    if rng.below(4) == 0 {
        t.push(">");
    }
    t.join(".")
}

fn random_queue_pattern(rng: &mut Rng) -> &'static str {
    pick(rng, &["q", "r", "q.*", "*", "q.>", ">", "*x.*", "*x"])
}

fn random_list(rng: &mut Rng, queues: bool, max: usize) -> Vec<String> {
    (0..rng.below(max + 1))
        .map(|_| {
            let p = random_pattern(rng);
            if queues && rng.below(3) == 0 {
                format!("{p} {}", random_queue_pattern(rng))
            } else {
                p
            }
        })
        .collect()
}

fn random_side(rng: &mut Rng, queues: bool) -> Option<SubjectPermission> {
    match rng.below(4) {
        0 => None,
        _ => Some(SubjectPermission {
            allow: match rng.below(3) {
                0 => None,
                _ => Some(random_list(rng, queues, 3)),
            },
            deny: random_list(rng, queues, 2),
        }),
    }
}

fn random_perms(rng: &mut Rng) -> Permissions {
    Permissions {
        publish: random_side(rng, false),
        subscribe: random_side(rng, true),
        allow_responses: match rng.below(3) {
            0 => None,
            _ => Some(ResponsePermission {
                max: [None, Some(1), Some(2)][rng.below(3)],
                expires: [
                    None,
                    Some(Duration::from_secs(1)),
                    Some(Duration::from_secs(2)),
                ][rng.below(3)],
            }),
        },
    }
}

fn random_published(rng: &mut Rng) -> String {
    let n = 1 + rng.below(4);
    (0..n)
        .map(|_| pick(rng, &["a", "b", "c", "d", "*x", "*", ">"]))
        .collect::<Vec<_>>()
        .join(".")
}

fn random_sub_queue(rng: &mut Rng) -> Option<&'static str> {
    match rng.below(3) {
        0 => Some(pick(
            rng,
            &["q", "r", "q.a", "q.b.c", "*", "x", "q.*", "*x"],
        )),
        _ => None,
    }
}

// --- the comparison --------------------------------------------------------------------

struct Sub {
    subject: String,
    queue: Option<&'static str>,
    filtered: bool,
}

fn run(seed: u64, budgets: Budgets, ops: usize) {
    let mut rng = Rng::new(seed);
    let p = random_perms(&mut rng);
    assert_eq!(p.validate(), Ok(()), "{p:?}");
    let rules = Arc::new(Rules::compile(&p).unwrap());
    let mut engine = Checker::new(rules, budgets);
    let mut model = Model::new(&p);
    let mut subs: Vec<Sub> = Vec::new();
    let mut now = Instant::now();
    let mut replies: Vec<String> = Vec::new();
    for step in 0..ops {
        let ctx = || format!("seed {seed} step {step} perms {p:?}");
        match rng.below(10) {
            0..=2 => {
                // Publish: a fresh subject, or a reply subject seen in a delivery.
                let s = match (rng.below(2), replies.is_empty()) {
                    (0, false) => replies[rng.below(replies.len())].clone(),
                    _ => random_published(&mut rng),
                };
                let want = model.pub_allowed_full_check(now, &s);
                assert_eq!(
                    engine.publish(now, s.as_bytes()),
                    want,
                    "PUB {s}: {}",
                    ctx()
                );
            }
            3..=4 => {
                let subject = random_pattern(&mut rng);
                let queue = random_sub_queue(&mut rng);
                let want = model.can_subscribe(&subject, queue);
                let got = engine.subscribe(subject.as_bytes(), queue.map(str::as_bytes));
                assert_eq!(got.allowed(), want, "SUB {subject} {queue:?}: {}", ctx());
                if got.allowed() {
                    subs.push(Sub {
                        subject,
                        queue,
                        filtered: got.filtered(),
                    });
                }
            }
            5..=8 => {
                let subject = random_published(&mut rng);
                let reply = (rng.below(2) == 0).then(|| format!("r.{}", rng.below(6)));
                if let Some(r) = &reply {
                    replies.push(r.clone());
                }
                for sub in subs.iter().filter(|s| nats_match(&s.subject, &subject)) {
                    let want = model.deliver(now, &subject, sub.queue, reply.as_deref());
                    let got = engine.deliver(
                        now,
                        subject.as_bytes(),
                        sub.queue.map(str::as_bytes),
                        reply.as_deref().map(str::as_bytes),
                        sub.filtered,
                    );
                    assert_eq!(
                        got,
                        want,
                        "MSG {subject} to {} {:?}: {}",
                        sub.subject,
                        sub.queue,
                        ctx()
                    );
                }
            }
            _ => now += Duration::from_millis(rng.below(1500) as u64),
        }
    }
}

#[test]
fn engine_agrees_with_nats_servers_logic() {
    let tiny = Budgets {
        publish_cache: 120,
        delivery_cache: 120,
        replies: 1 << 30,
    };
    let roomy = Budgets {
        replies: 1 << 30,
        ..Budgets::default()
    };
    for seed in 1..=1500u64 {
        run(seed, if seed % 2 == 0 { tiny } else { roomy }, 200);
    }
}

#[test]
fn the_model_matches_like_the_sublist() {
    // The model's matcher against twig-core's (which the engine uses), on many pairs.
    let mut rng = Rng::new(99);
    for _ in 0..20_000 {
        let p = random_pattern(&mut rng);
        let s = random_published(&mut rng);
        assert_eq!(
            nats_match(&p, &s),
            twig_core::subject::matches(p.as_bytes(), s.as_bytes()),
            "{p} vs {s}"
        );
    }
}
