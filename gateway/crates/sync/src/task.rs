//! The shell around [`Machine`]: one task per `[[sync]]` entry. It watches its uplink, feeds
//! inbox messages and time to the machine, publishes what the machine says, and for each
//! batch of deliveries: delivers locally (or skips what [`Seen`] remembers), saves the state
//! file, then acks.
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use super::machine::{Delivery, Machine, Out, Plan, Send};
use super::seen::Seen;
use super::{Stats, SyncError, create_body};
use twig_config::SyncConfig;
use twig_router::Message;
use twig_router::Router;
use twig_router::internal::{InternalSub, Owned, Publisher, new_owner};
use twig_router::remote::Remote;

/// How often the link's state is looked at (there is no event for it; the check is a lock
/// and two loads).
const LINK_CHECK: Duration = Duration::from_millis(50);

/// Inbox messages handled per turn (one state-file write covers them all).
const TURN: usize = 1024;

/// What became of one delivery.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Delivered now: remember, ack.
    Delivered,
    /// Delivered before: ack only.
    Skipped,
    /// Nobody took it: give it back.
    Refused,
}

pub(super) struct Task {
    machine: Machine,
    require_subscriber: bool,
    retry_delay: Duration,
    seen: Seen,
    publisher: Publisher,
    link: Arc<dyn Remote>,
    sub: Arc<InternalSub>,
    rx: async_channel::Receiver<Owned>,
    stats: Arc<Stats>,
    router: Arc<Router>,
}

impl Task {
    pub(super) fn new(
        router: &Arc<Router>,
        store_dir: &std::path::Path,
        cfg: &SyncConfig,
        link: Arc<dyn Remote>,
    ) -> Result<Task, SyncError> {
        let path = cfg.path(store_dir);
        let (seen, warning) =
            Seen::open(&path, cfg.max_remembered).map_err(|source| SyncError::State {
                stream: cfg.stream.clone(),
                durable: cfg.durable.clone(),
                path: path.display().to_string(),
                source,
            })?;
        let stats = Arc::new(Stats {
            stream: cfg.stream.clone(),
            durable: cfg.durable.clone(),
            ..Stats::default()
        });
        stats.last_seq.store(seen.last(), Relaxed);
        stats.remembered.store(seen.len() as u64, Relaxed);
        stats.set_phase(super::machine::Phase::Down);
        if let Some(w) = warning {
            stats.error(w);
        }
        let inbox = format!("_INBOX.{}", twig_util::id::token());
        let owner = new_owner();
        // Room for two whole batches (an old request's and the new one's) and their acks'
        // confirmations; a message dropped for lack of room is redelivered after `ack_wait`.
        let cap = (cfg.batch as usize).saturating_mul(4).saturating_add(64);
        let (sub, rx) = InternalSub::new(
            owner,
            format!("{inbox}.>").as_bytes(),
            None,
            cap,
            cfg.queue_bytes,
        );
        let name = format!("{}/{}", cfg.stream, cfg.durable);
        router
            .insert_internal(&sub)
            .map_err(|_| SyncError::Subscribe(name))?;
        let plan = Plan {
            api_prefix: cfg.api_prefix.clone(),
            stream: cfg.stream.clone(),
            durable: cfg.durable.clone(),
            inbox,
            batch: cfg.batch,
            expires: cfg.expires,
            create: cfg.create.then(|| create_body(cfg)),
            request_timeout: cfg.request_timeout,
            retry_delay: cfg.retry_delay,
        };
        Ok(Task {
            machine: Machine::new(plan),
            require_subscriber: cfg.require_subscriber,
            retry_delay: cfg.retry_delay,
            seen,
            publisher: Publisher::new(router.clone(), owner),
            link,
            sub,
            rx,
            stats,
            router: router.clone(),
        })
    }

    pub(super) fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    pub(super) async fn run(mut self) {
        let mut up = false;
        let mut connects = 0;
        loop {
            let now = Instant::now();
            // The connection number changes with every new connection (up or not).
            let (is_up, n) = (self.link.is_up(), self.link.counters().epoch);
            if is_up && (!up || n != connects) {
                // Up, or down and up again between two looks: a new connection either way.
                let outs = self.machine.up(now);
                self.apply(now, outs);
            } else if !is_up && up {
                self.machine.down();
            }
            (up, connects) = (is_up, n);
            let outs = self.machine.poll(now);
            self.apply(now, outs);
            self.stats.set_phase(self.machine.phase());

            let wake = self
                .machine
                .poll_at()
                .map_or(now + LINK_CHECK, |t| t.min(now + LINK_CHECK));
            let timer = async {
                async_io::Timer::at(wake).await;
                None
            };
            let recv = async { Some(self.rx.recv().await) };
            match recv.or(timer).await {
                Some(Ok(first)) => self.turn(first),
                Some(Err(_)) => break,
                None => {}
            }
        }
        self.router.remove_internal(&self.sub);
    }

    /// One inbox message and whatever else is waiting: deliver, save, ack.
    fn turn(&mut self, first: Owned) {
        let now = Instant::now();
        let mut deliveries = Vec::new();
        let mut msg = Some(first);
        let mut n = 0;
        while let Some(m) = msg.take() {
            let outs = self.machine.on_msg(now, &m);
            for o in outs {
                match o {
                    Out::Deliver(d) => deliveries.push(d),
                    other => self.apply(now, vec![other]),
                }
            }
            n += 1;
            if n < TURN {
                msg = self.rx.try_recv().ok();
            }
        }
        if deliveries.is_empty() {
            return;
        }
        let fates: Vec<Fate> = deliveries.iter().map(|d| self.deliver(d)).collect();
        self.publisher.flush();
        self.stats.remembered.store(self.seen.len() as u64, Relaxed);
        if let Err(e) = self.seen.save() {
            // Not acked: the hub redelivers them after `ack_wait`; the set in memory still
            // knows them (skipped), and the unsaved ones are written with the next save.
            self.stats
                .error(format!("cannot write the state file: {e}; not acking"));
            return;
        }
        for (d, fate) in deliveries.iter().zip(fates) {
            let answer = match fate {
                Fate::Refused => self.machine.nak(d, self.retry_delay),
                Fate::Delivered | Fate::Skipped => self.machine.ack(d),
            };
            self.send(&answer);
        }
        self.publisher.flush();
    }

    fn deliver(&mut self, d: &Delivery) -> Fate {
        if d.delivered > 1 {
            self.stats.redelivered.fetch_add(1, Relaxed);
        }
        self.stats.pending.store(d.pending, Relaxed);
        if self.seen.contains(d.stream_seq) {
            self.stats.skipped.fetch_add(1, Relaxed);
            return Fate::Skipped;
        }
        let p = self.publisher.publish_local(&Message {
            subject: &d.subject,
            reply: None,
            headers: d.headers.as_deref(),
            payload: &d.payload,
        });
        if p.delivered == 0 && self.require_subscriber {
            self.stats.refused.fetch_add(1, Relaxed);
            return Fate::Refused;
        }
        self.seen.insert(d.stream_seq);
        self.stats.delivered.fetch_add(1, Relaxed);
        self.stats.last_seq.fetch_max(d.stream_seq, Relaxed);
        Fate::Delivered
    }

    fn apply(&mut self, now: Instant, outs: Vec<Out>) {
        for o in outs {
            match o {
                Out::Send(s) => {
                    if !self.send(&s) {
                        for e in self.machine.unsent(now) {
                            if let Out::Error(e) = e {
                                self.stats.error(e);
                            }
                        }
                    }
                    self.publisher.flush();
                    self.stats.requests.store(self.machine.requests(), Relaxed);
                }
                // Still remembered: a hub killed right after confirming may not have written
                // the ack and can send the message again.
                Out::Confirmed(_) => {
                    self.stats.acked.fetch_add(1, Relaxed);
                }
                Out::Error(e) => self.stats.error(e),
                // Handled by `turn`; a delivery never comes out of `up` or `poll`.
                Out::Deliver(_) => {}
            }
        }
    }

    /// Publishes towards the hub; false when nobody took it.
    fn send(&mut self, s: &Send) -> bool {
        let p = self.publisher.publish(&Message {
            subject: s.subject.as_bytes(),
            reply: s.reply.as_deref().map(str::as_bytes),
            headers: None,
            payload: &s.payload,
        });
        p.delivered > 0
    }
}
