//! The uplink: twig as a leafnode of a cloud NATS cluster (one connection per
//! `[[leafnodes.remotes]]` entry), as a nats-server leaf solicits its hub.
//!
//! Layers, pure first:
//! - [`session`]: handshake and keepalive as a sans-IO state machine (ops and time in, steps
//!   out); [`interest`]: local interest counts into `LS+`/`LS-`, hub permissions;
//!   [`backoff`]: reconnect delays and URL rotation; [`creds`]: what goes into CONNECT.
//! - [`outbound`]: the two-lane buffer (keepalive ahead of bulk data); [`link`]: what the
//!   router and monitoring share with the link's task.
//! - [`dial`]: TCP and TLS; `task`: the task per remote that dials, reads, and reconnects;
//!   `writer`: the task that drains the outbound while connected.
//!
//! Per remote there is one task (dial, read the hub, apply what the session says, deliver hub
//! messages to local subscribers) and, while connected, one writer task draining the link's
//! outbound. Local publishes reach the outbound from client readers through the router.
pub mod backoff;
pub mod creds;
pub mod dial;
pub mod interest;
pub mod link;
pub mod outbound;
pub mod session;

mod task;
mod writer;

use std::sync::Arc;

use crate::config::LeafConfig;
use crate::server::state::Shared;
use link::Link;

/// nats-server waits this long after a loop or a "same cluster name" rejection.
pub const LOOP_DELAY: std::time::Duration = std::time::Duration::from_secs(30);

/// One [`Link`] per configured remote (down until its task connects).
pub fn links(config: &LeafConfig) -> Vec<Arc<Link>> {
    (0..config.remotes.len())
        .map(|i| Arc::new(Link::new(i, config.max_pending)))
        .collect()
}

/// Starts the task of every remote on `ex`; they run until the executor stops.
pub fn spawn(shared: &Arc<Shared>, ex: &Arc<async_executor::Executor<'static>>) {
    let lds = format!("$LDS.{}", random_token());
    for link in shared.router.uplinks() {
        let Some(remote) = shared.config.leafnodes.remotes.get(link.index).cloned() else {
            continue;
        };
        let ctx = task::Ctx {
            shared: shared.clone(),
            ex: ex.clone(),
            link: link.clone(),
            remote,
            lds: lds.clone(),
        };
        ex.spawn(task::run(ctx)).detach();
    }
}

/// 22 random base62 characters (like a nuid): the loop-detection subject, inboxes.
pub fn random_token() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut raw = [0u8; 22];
    if getrandom::fill(&mut raw).is_err() {
        // Without OS randomness, the clock still makes the subject unique per process.
        let t = crate::server::client::now_nanos().to_le_bytes();
        for (i, b) in raw.iter_mut().enumerate() {
            *b = t[i % 8].wrapping_add(i as u8);
        }
    }
    raw.iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A random number for back-off jitter.
fn jitter() -> u64 {
    let mut b = [0u8; 8];
    // Without randomness the back-off is merely not spread.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}
