//! The remotes as a whole, and how a reload changes them (nats-server 2.10+ reloads
//! `leafnodes.remotes` the same way: added remotes start soliciting, removed ones are closed,
//! changed ones reconnect with their new settings).
//!
//! A remote is its position in `[[leafnodes.remotes]]`: streams (`forward_remote`) and sync
//! consumers (`remote`) name it by position, and so do the router and `/leafz`. Each position
//! has one [`Link`] (in the router for as long as twig runs) and one task, which reads its
//! settings from the position's [`Control`]:
//! - a remote added at the end gets a new link, plugged into the router with every local
//!   interest ([`Router::add_remote`]), and a task that dials at once;
//! - a remote whose settings changed (URLs, credentials, TLS, anything of its entry) has its
//!   connection closed and dials again with the new settings at once;
//! - a removed remote has its connection closed; its link stays down (the router routes
//!   nothing to it, `/leafz` no longer lists it) until a reload configures that position again.
//!
//! [`plan`] refuses, before anything changes, a reload that would remove a position a running
//! stream or sync consumer uses, or move another remote into it (a reorder): their data would
//! go to another hub. Those need a restart.
//!
//! Lock order: `Uplinks::slots` and `Control::state` are leaves (the router is called with
//! neither held).
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use event_listener::Event;
use twig_config::{Config, ForwardMode, RemoteConfig};
use twig_router::Router;
use twig_util::id::Identity;
use twig_util::lock::lock;

use super::link::Link;
use super::task;

/// The settings one remote's task dials with, swapped by a reload.
pub struct Control {
    /// The generation (bumped by each change) and the settings; `None` while removed.
    state: Mutex<(u64, Option<RemoteConfig>)>,
    generation: AtomicU64,
    changed: Event,
}

impl Control {
    fn new(remote: RemoteConfig) -> Control {
        Control {
            state: Mutex::new((0, Some(remote))),
            generation: AtomicU64::new(0),
            changed: Event::new(),
        }
    }

    /// The generation in force and its settings (`None`: removed).
    pub fn current(&self) -> (u64, Option<RemoteConfig>) {
        lock(&self.state).clone()
    }

    /// Whether `remote` differs from the settings in force.
    fn differs(&self, remote: Option<&RemoteConfig>) -> bool {
        lock(&self.state).1.as_ref() != remote
    }

    /// Puts `remote` in force (`None`: removes it) and wakes the task.
    fn set(&self, remote: Option<RemoteConfig>) {
        {
            let mut st = lock(&self.state);
            st.0 += 1;
            st.1 = remote;
            self.generation.store(st.0, Relaxed);
        }
        self.changed.notify(usize::MAX);
    }

    /// Whether the remote is configured (not removed by a reload).
    pub fn configured(&self) -> bool {
        lock(&self.state).1.is_some()
    }

    /// Returns once the generation is no longer `generation`.
    pub async fn changed_since(&self, generation: u64) {
        loop {
            let listener = self.changed.listen();
            if self.generation.load(Relaxed) != generation {
                return;
            }
            listener.await;
        }
    }
}

#[derive(Clone)]
struct Slot {
    link: Arc<Link>,
    control: Arc<Control>,
}

/// What a reload did to the remotes, by position.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Positions that started soliciting (new, or configured again).
    pub added: Vec<usize>,
    /// Positions whose connection was closed for good.
    pub removed: Vec<usize>,
    /// Positions that reconnect with new settings.
    pub changed: Vec<usize>,
}

/// Every remote's link and task; the one place a reload changes them.
pub struct Uplinks {
    router: Arc<Router>,
    config: Arc<Config>,
    identity: Identity,
    ex: Arc<async_executor::Executor<'static>>,
    lds: String,
    slots: Mutex<Vec<Slot>>,
}

impl Uplinks {
    /// The remotes of `config`, whose `links` (from [`super::links`]) are in `router`; nothing
    /// runs until [`Uplinks::start`].
    pub fn new(
        router: &Arc<Router>,
        config: &Arc<Config>,
        identity: &Identity,
        links: &[Arc<Link>],
        ex: &Arc<async_executor::Executor<'static>>,
    ) -> Arc<Uplinks> {
        let slots = links
            .iter()
            .zip(&config.leafnodes.remotes)
            .map(|(link, remote)| Slot {
                link: link.clone(),
                control: Arc::new(Control::new(remote.clone())),
            })
            .collect();
        Arc::new(Uplinks {
            router: router.clone(),
            config: config.clone(),
            identity: identity.clone(),
            ex: ex.clone(),
            lds: format!("$LDS.{}", twig_util::id::token()),
            slots: Mutex::new(slots),
        })
    }

    /// Starts the task of every remote on the executor; they run until it stops.
    pub fn start(&self) {
        let slots = lock(&self.slots).clone();
        for slot in slots {
            self.spawn(&slot);
        }
    }

    fn spawn(&self, slot: &Slot) {
        let t = task::Task {
            router: self.router.clone(),
            config: self.config.clone(),
            identity: self.identity.clone(),
            ex: self.ex.clone(),
            link: slot.link.clone(),
            control: slot.control.clone(),
            lds: self.lds.clone(),
        };
        self.ex.spawn(task::run(t)).detach();
    }

    /// The links of the configured remotes, in position order (removed ones left out).
    pub fn links(&self) -> Vec<Arc<Link>> {
        lock(&self.slots)
            .iter()
            .filter(|s| s.control.configured())
            .map(|s| s.link.clone())
            .collect()
    }

    /// The settings in force, by position (`None`: removed).
    fn running(&self) -> Vec<Option<RemoteConfig>> {
        lock(&self.slots)
            .iter()
            .map(|s| s.control.current().1)
            .collect()
    }

    /// Whether `next` can be put in force: see [`plan`]. Changes nothing.
    pub fn check(&self, next: &[RemoteConfig]) -> Result<(), String> {
        plan(&self.running(), next, &in_use(&self.config))
    }

    /// Puts `next` in force (call [`Uplinks::check`] first): positions are compared one by
    /// one; changed and removed ones drop their connection, added ones start.
    pub fn reload(&self, next: &[RemoteConfig]) -> Outcome {
        let mut out = Outcome::default();
        let slots = lock(&self.slots).clone();
        for (i, slot) in slots.iter().enumerate() {
            let remote = next.get(i);
            if !slot.control.differs(remote) {
                continue;
            }
            match (slot.control.configured(), remote) {
                (true, Some(_)) => out.changed.push(i),
                (true, None) => out.removed.push(i),
                (false, Some(_)) => out.added.push(i),
                (false, None) => continue,
            }
            slot.control.set(remote.cloned());
        }
        for (i, remote) in next.iter().enumerate().skip(slots.len()) {
            let link = Arc::new(Link::new(i, self.config.leafnodes.max_pending));
            let at = self.router.add_remote(link.clone());
            debug_assert_eq!(at, i, "the router's remotes are the uplink's positions");
            let slot = Slot {
                link,
                control: Arc::new(Control::new(remote.clone())),
            };
            lock(&self.slots).push(slot.clone());
            self.spawn(&slot);
            out.added.push(i);
        }
        for &i in &out.removed {
            tracing::info!("Leafnode remote {i} removed by a reload: its connection is closed");
        }
        for &i in &out.changed {
            tracing::info!(
                "Leafnode remote {i} changed by a reload: reconnecting with its new settings"
            );
        }
        for &i in &out.added {
            tracing::info!("Leafnode remote {i} added by a reload: connecting");
        }
        out
    }
}

/// Positions a running stream forwards through or a sync consumer pulls through, with who.
fn in_use(config: &Config) -> Vec<(usize, String)> {
    let remotes = config.leafnodes.remotes.len();
    let streams = config
        .streams
        .iter()
        .filter(|s| s.forward_mode(remotes) != ForwardMode::Off)
        .map(|s| (s.forward_remote, format!("stream {:?}", s.name)));
    let sync = config
        .sync
        .iter()
        .map(|s| (s.remote, format!("sync consumer {:?}", s.durable)));
    streams.chain(sync).collect()
}

/// Whether `running` (by position, `None` = removed) may become `next` while the users in
/// `in_use` keep their positions: refused when a used position would be removed, or would get
/// a remote that was at another position (same URLs), or its remote would move elsewhere.
/// Changing a used remote's URLs or credentials in place is allowed.
pub fn plan(
    running: &[Option<RemoteConfig>],
    next: &[RemoteConfig],
    in_use: &[(usize, String)],
) -> Result<(), String> {
    let urls = |r: &RemoteConfig| {
        let mut u = r.urls.clone();
        u.sort();
        u
    };
    for (i, who) in in_use {
        let i = *i;
        let Some(Some(old)) = running.get(i) else {
            continue;
        };
        let Some(new) = next.get(i) else {
            return Err(format!(
                "leafnodes.remotes: remote {i} is used by {who}; removing it needs a restart"
            ));
        };
        if urls(old) == urls(new) {
            continue;
        }
        let came_from = running
            .iter()
            .enumerate()
            .any(|(j, r)| j != i && r.as_ref().is_some_and(|r| urls(r) == urls(new)));
        let went_to = next
            .iter()
            .enumerate()
            .any(|(j, r)| j != i && urls(r) == urls(old));
        if came_from || went_to {
            return Err(format!(
                "leafnodes.remotes: the remotes were reordered, and remote {i} is used by {who}; \
                 moving remotes needs a restart"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(url: &str, user: &str) -> RemoteConfig {
        let mut r: RemoteConfig =
            serde_json::from_str(&format!("{{\"urls\": [{url:?}]}}")).unwrap();
        r.user = Some(user.into());
        r
    }

    fn used(i: usize) -> Vec<(usize, String)> {
        vec![(i, "stream \"s\"".into())]
    }

    #[test]
    fn adding_at_the_end_and_changing_in_place_are_allowed() {
        let a = remote("nats://a:7422", "u");
        let b = remote("nats://b:7422", "u");
        let running = vec![Some(a.clone())];
        assert_eq!(plan(&running, &[a.clone(), b.clone()], &used(0)), Ok(()));
        // New credentials, new URLs: the stream keeps its position.
        let a2 = remote("nats://a2:7422", "v");
        assert_eq!(plan(&running, &[a2], &used(0)), Ok(()));
        // Removing an unused position is allowed.
        let running = vec![Some(a.clone()), Some(b)];
        assert_eq!(plan(&running, &[a], &used(0)), Ok(()));
    }

    #[test]
    fn removing_or_moving_a_used_position_is_refused() {
        let a = remote("nats://a:7422", "u");
        let b = remote("nats://b:7422", "u");
        let running = vec![Some(a.clone()), Some(b.clone())];
        let e = plan(&running, std::slice::from_ref(&a), &used(1)).unwrap_err();
        assert!(
            e.contains("remote 1 is used by stream \"s\"") && e.contains("restart"),
            "{e}"
        );
        let e = plan(&running, &[b.clone(), a.clone()], &used(0)).unwrap_err();
        assert!(e.contains("reordered"), "{e}");
        // Removing the first shifts the second into a used position.
        let e = plan(&running, &[b], &used(0)).unwrap_err();
        assert!(e.contains("reordered"), "{e}");
        // Nobody uses either: anything goes.
        assert_eq!(plan(&running, &[], &[]), Ok(()));
    }
}
