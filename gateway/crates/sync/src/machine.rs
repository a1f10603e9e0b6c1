//! The pull consumer's protocol as a state machine: link changes, hub messages and time in,
//! what to publish and what to deliver out. No clock, socket or file here (the shell in
//! `task.rs` does those).
//!
//! One conversation per link connection:
//! 1. (`create`) `<prefix>.CONSUMER.CREATE.<stream>.<durable>` with `"action":"create"`: the
//!    consumer is made if missing; "consumer already exists" (10148: same name, other config)
//!    means it is there and is used as it is.
//! 2. `<prefix>.CONSUMER.MSG.NEXT.<stream>.<durable>` with `{"batch":N,"expires":ns}` and a
//!    reply subject unique to the request (`<inbox>.p.<n>`). One request is open at a time; a
//!    new one goes out when the batch is full, or the hub ends it with a status: `408 Request
//!    Timeout` (expired), `404 No Messages`, `409` (`Exceeded MaxWaiting`, `Consumer Deleted`,
//!    `Leadership Change`, ...: retried after `retry_delay`, re-creating the consumer), `100`
//!    (heartbeat: ignored). Without any answer for `expires + request_timeout` (the request or
//!    its answer was lost) the request is sent again, after re-creating the consumer.
//! 3. Each data message (its reply is `$JS.ACK...`, see [`super::ack`]) becomes a
//!    [`Delivery`]; the shell delivers it (or skips it as already delivered), makes that
//!    durable, then publishes the ack [`Machine::ack`] builds: `+ACK` with a reply subject
//!    (`<inbox>.a.<stream seq>`) so the hub confirms it (nats-server `processAck` answers an
//!    ack that has a reply once it is applied).
//!
//! Messages of an older request (they may still arrive after a new request went out) are
//! delivered as well; only statuses must come from the open request to count.
use std::time::{Duration, Instant};

use twig_core::wire::Headers;

use super::ack;
use twig_router::internal::Owned;

/// Wait before re-sending a request that found no hub interest yet (the hub's `LS+` for the
/// API subjects arrive just after the link comes up); doubled per miss up to `retry_delay`.
pub const NO_INTEREST_RETRY: Duration = Duration::from_millis(50);

/// Misses in a row after which the lack of interest is reported (about 1.5 s with the
/// defaults): the hub has no JetStream for this account, or `api_prefix` names no domain.
const MISSES_REPORTED: u32 = 5;

/// What the machine needs to know.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `$JS.API` or `$JS.<domain>.API`.
    pub api_prefix: String,
    /// Stream name.
    pub stream: String,
    /// Durable name.
    pub durable: String,
    /// The inbox prefix (`_INBOX.<random>`); the shell subscribes `<inbox>.>`.
    pub inbox: String,
    /// Messages per request.
    pub batch: u32,
    /// Request lifetime at the hub.
    pub expires: Duration,
    /// The create request's body, when twig creates the consumer.
    pub create: Option<Vec<u8>>,
    /// Time the hub has to answer (create), and margin past `expires` (pull).
    pub request_timeout: Duration,
    /// Wait after an error.
    pub retry_delay: Duration,
}

/// Where the conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The link is down.
    Down,
    /// Waiting to send the next request (after an error, or for hub interest).
    Waiting,
    /// The create request is out.
    Creating,
    /// A pull request is open.
    Pulling,
}

impl Phase {
    /// The name shown in monitoring.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Down => "down",
            Phase::Waiting => "waiting",
            Phase::Creating => "creating",
            Phase::Pulling => "pulling",
        }
    }
}

/// A message to deliver locally, then acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its sequence in the hub stream.
    pub stream_seq: u64,
    /// Times the hub delivered it.
    pub delivered: u64,
    /// Messages left for the consumer after it.
    pub pending: u64,
    /// The subject it was stored under.
    pub subject: Box<[u8]>,
    /// Its headers.
    pub headers: Option<Box<[u8]>>,
    /// Its body.
    pub payload: Box<[u8]>,
    /// The ack subject.
    pub ack: Box<[u8]>,
}

/// A publish towards the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// Subject.
    pub subject: String,
    /// Reply subject.
    pub reply: Option<String>,
    /// Body.
    pub payload: Vec<u8>,
}

/// What the shell does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Publish this (and report [`Machine::unsent`] if nobody took it).
    Send(Send),
    /// Deliver locally unless already delivered, then ack.
    Deliver(Delivery),
    /// The hub confirmed the ack of this stream sequence.
    Confirmed(u64),
    /// Something went wrong (for the log and monitoring).
    Error(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Create,
    Pull,
}

/// The conversation.
pub struct Machine {
    plan: Plan,
    phase: Phase,
    next: Next,
    /// Number of the open request (create or pull).
    req: u64,
    /// Messages still expected on the open pull request.
    left: u32,
    deadline: Option<Instant>,
    /// Requests in a row that reached nobody: its attempts are the misses.
    misses: twig_util::backoff::Backoff,
    /// Pull requests sent (for monitoring).
    requests: u64,
}

/// Retries of a request that reached nobody: from [`NO_INTEREST_RETRY`], doubling, up to the
/// plan's `retry_delay`.
fn no_interest_backoff(plan: &Plan) -> twig_util::backoff::Backoff {
    twig_util::backoff::Backoff::new(NO_INTEREST_RETRY, plan.retry_delay.max(NO_INTEREST_RETRY))
}

impl Machine {
    /// A machine whose link is down.
    pub fn new(plan: Plan) -> Machine {
        let misses = no_interest_backoff(&plan);
        Machine {
            plan,
            phase: Phase::Down,
            next: Next::Create,
            req: 0,
            left: 0,
            deadline: None,
            misses,
            requests: 0,
        }
    }

    /// Pull requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Where it stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The link (re)connected: start over (create, then pull).
    pub fn up(&mut self, now: Instant) -> Vec<Out> {
        self.next = Next::Create;
        self.misses.reset();
        self.start(now)
    }

    /// The link is down: whatever was open is gone with it.
    pub fn down(&mut self) {
        self.phase = Phase::Down;
        self.deadline = None;
    }

    /// The last request reached nobody (no hub interest yet): try again shortly, then less
    /// and less often; reported once when it lasts.
    pub fn unsent(&mut self, now: Instant) -> Vec<Out> {
        if !matches!(self.phase, Phase::Creating | Phase::Pulling) {
            return Vec::new();
        }
        self.next = if self.phase == Phase::Creating {
            Next::Create
        } else {
            Next::Pull
        };
        let delay = self.misses.next_nominal();
        self.wait(now, delay);
        if self.misses.attempts() == MISSES_REPORTED {
            return vec![Out::Error(format!(
                "the hub shows no interest in {}.> (JetStream off for this account, or a \
                 wrong api_prefix?)",
                self.plan.api_prefix
            ))];
        }
        Vec::new()
    }

    /// When [`poll`](Self::poll) wants to run.
    pub fn poll_at(&self) -> Option<Instant> {
        self.deadline
    }

    /// Timers: retries and lost requests.
    pub fn poll(&mut self, now: Instant) -> Vec<Out> {
        let Some(d) = self.deadline else {
            return Vec::new();
        };
        if now < d {
            return Vec::new();
        }
        match self.phase {
            Phase::Down => Vec::new(),
            Phase::Waiting => self.start(now),
            Phase::Creating => {
                self.next = Next::Create;
                self.wait(now, self.plan.retry_delay);
                vec![Out::Error(format!(
                    "no answer to the consumer create request within {:?}",
                    self.plan.request_timeout
                ))]
            }
            Phase::Pulling => {
                // Lost request or answer: the consumer may be gone too, so create again.
                self.next = Next::Create;
                self.start(now)
            }
        }
    }

    /// A message on the inbox.
    pub fn on_msg(&mut self, now: Instant, msg: &Owned) -> Vec<Out> {
        let Some(rest) = msg
            .subject
            .strip_prefix(self.plan.inbox.as_bytes())
            .and_then(|r| r.strip_prefix(b"."))
        else {
            return Vec::new();
        };
        let (kind, n) = match rest.split_first() {
            Some((k, n)) => (*k, n.strip_prefix(b".").and_then(number)),
            None => return Vec::new(),
        };
        let Some(n) = n else { return Vec::new() };
        if n == self.req && matches!(kind, b'c' | b'p') {
            self.misses.reset();
        }
        match kind {
            b'c' => self.on_created(now, n, &msg.payload),
            b'p' => self.on_pulled(now, n, msg),
            b'a' => vec![Out::Confirmed(n)],
            _ => Vec::new(),
        }
    }

    /// The ack of `d`, to publish once `d` is delivered (or skipped) durably.
    pub fn ack(&self, d: &Delivery) -> Send {
        Send {
            subject: String::from_utf8_lossy(&d.ack).into_owned(),
            reply: Some(format!("{}.a.{}", self.plan.inbox, d.stream_seq)),
            payload: b"+ACK".to_vec(),
        }
    }

    /// The negative ack of `d` (nobody local took it): the hub sends it again after `delay`.
    pub fn nak(&self, d: &Delivery, delay: Duration) -> Send {
        Send {
            subject: String::from_utf8_lossy(&d.ack).into_owned(),
            reply: None,
            payload: format!("-NAK {{\"delay\":{}}}", delay.as_nanos()).into_bytes(),
        }
    }

    fn on_created(&mut self, now: Instant, n: u64, body: &[u8]) -> Vec<Out> {
        if self.phase != Phase::Creating || n != self.req {
            return Vec::new();
        }
        #[derive(serde::Deserialize)]
        struct ApiError {
            #[serde(default)]
            err_code: u32,
            #[serde(default)]
            description: String,
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            error: Option<ApiError>,
        }
        let mut outs = Vec::new();
        match serde_json::from_slice::<Answer>(body) {
            // 10148: a consumer of that name exists with another configuration: use it.
            Ok(Answer { error: None }) => {}
            Ok(Answer { error: Some(e) }) if e.err_code == 10148 => {}
            Ok(Answer { error: Some(e) }) => {
                self.next = Next::Create;
                self.wait(now, self.plan.retry_delay);
                return vec![Out::Error(format!(
                    "creating consumer {} on stream {}: {} (err_code {})",
                    self.plan.durable, self.plan.stream, e.description, e.err_code
                ))];
            }
            Err(_) => outs.push(Out::Error(
                "unreadable answer to the consumer create request".into(),
            )),
        }
        self.next = Next::Pull;
        outs.extend(self.start(now));
        outs
    }

    fn on_pulled(&mut self, now: Instant, n: u64, msg: &Owned) -> Vec<Out> {
        let current = self.phase == Phase::Pulling && n == self.req;
        let status = msg
            .headers
            .as_deref()
            .and_then(|h| Headers::parse(h).ok())
            .and_then(|h| h.status().map(|s| (s, h.description())));
        if let Some((code, description)) = status {
            if !current {
                return Vec::new();
            }
            let text = description
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .unwrap_or_default();
            return match code {
                100 => {
                    self.deadline = Some(now + self.plan.expires + self.plan.request_timeout);
                    Vec::new()
                }
                // The request ended without (more) messages: ask again.
                404 | 408 => {
                    self.next = Next::Pull;
                    self.start(now)
                }
                _ => {
                    // 409 and others: the consumer changed, or the hub refuses for now.
                    self.next = Next::Create;
                    self.wait(now, self.plan.retry_delay);
                    vec![Out::Error(format!("pull request ended: {code} {text}"))]
                }
            };
        }
        let Some(reply) = msg.reply.as_deref() else {
            return Vec::new();
        };
        let (ack_subject, original) = ack::split_deliver(reply);
        let Some(info) = ack::parse(ack_subject) else {
            return vec![Out::Error(
                "a message without a $JS.ACK reply on the inbox".into(),
            )];
        };
        let delivery = Delivery {
            stream_seq: info.stream_seq,
            delivered: info.delivered,
            pending: info.pending,
            // Without the `@` suffix (a hub older than 2.2) the stored subject is unknown;
            // the inbox subject would reach nobody, so it is reported instead.
            subject: match original {
                Some(s) => s.into(),
                None => {
                    return vec![Out::Error(
                        "the hub did not send the original subject (`@` in the ack reply)".into(),
                    )];
                }
            },
            headers: msg.headers.clone(),
            payload: msg.payload.clone(),
            ack: ack_subject.into(),
        };
        let mut outs = vec![Out::Deliver(delivery)];
        if current {
            self.left = self.left.saturating_sub(1);
            if self.left == 0 {
                self.next = Next::Pull;
                outs.extend(self.start(now));
            }
        }
        outs
    }

    fn wait(&mut self, now: Instant, delay: Duration) {
        self.phase = Phase::Waiting;
        self.deadline = Some(now + delay);
    }

    fn start(&mut self, now: Instant) -> Vec<Out> {
        self.req += 1;
        let p = &self.plan;
        if self.next == Next::Create
            && let Some(body) = &p.create
        {
            self.phase = Phase::Creating;
            self.deadline = Some(now + p.request_timeout);
            return vec![Out::Send(Send {
                subject: format!(
                    "{}.CONSUMER.CREATE.{}.{}",
                    p.api_prefix, p.stream, p.durable
                ),
                reply: Some(format!("{}.c.{}", p.inbox, self.req)),
                payload: body.clone(),
            })];
        }
        self.phase = Phase::Pulling;
        self.requests += 1;
        self.left = p.batch;
        self.deadline = Some(now + p.expires + p.request_timeout);
        let body = format!(
            "{{\"batch\":{},\"expires\":{}}}",
            p.batch,
            p.expires.as_nanos()
        );
        vec![Out::Send(Send {
            subject: format!(
                "{}.CONSUMER.MSG.NEXT.{}.{}",
                p.api_prefix, p.stream, p.durable
            ),
            reply: Some(format!("{}.p.{}", p.inbox, self.req)),
            payload: body.into_bytes(),
        })]
    }
}

fn number(s: &[u8]) -> Option<u64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
