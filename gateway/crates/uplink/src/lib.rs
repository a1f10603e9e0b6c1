//! Layer 3, component `twig-uplink`: the leafnode connections to the hub. It uses `router`, `config`,
//! `util` and twig-core, never another component: each [`link::Link`] plugs into the router
//! as a `Remote` (local messages go up) and an `InterestObserver` (local interest is
//! advertised); the forwarders and sync consumers reach it only through the router.
//!
//! The uplink: twig as a leafnode of a cloud NATS cluster (one connection per
//! `[[leafnodes.remotes]]` entry), as a nats-server leaf solicits its hub.
//!
//! Layers, pure first:
//! - [`session`]: handshake and keepalive as a sans-IO state machine (ops and time in, steps
//!   out); [`interest`]: local interest counts into `LS+`/`LS-`, hub permissions;
//!   [`urls`]: URL rotation (the delays are `util::backoff`'s); [`creds`]: what goes into
//!   CONNECT; [`transport`]: the S2 and websocket layers between socket and parser, bytes in
//!   and out.
//! - [`outbound`]: the two-lane buffer (keepalive ahead of bulk data); [`link`]: what the
//!   router and monitoring share with the link's task.
//! - [`uplinks`]: every remote's link and task, and what a reload changes (remotes added,
//!   removed, changed; refused when a stream's or sync consumer's position would move).
//! - `open`: TCP (direct or through an HTTP CONNECT proxy), and for websocket remotes TLS and
//!   the upgrade; `task`: the task per remote that dials, reads, and reconnects;
//!   `writer`: the task that drains the outbound while connected.
//!
//! Per remote there is one task (dial, read the hub, apply what the session says, deliver hub
//! messages to local subscribers) and, while connected, one writer task draining the link's
//! outbound. Local publishes reach the outbound from client readers through the router.
pub mod creds;
pub mod interest;
pub mod link;
pub mod outbound;
pub mod session;
pub mod transport;
pub mod uplinks;
pub mod urls;

mod open;
mod task;
mod writer;

use std::sync::Arc;

use link::Link;
use twig_config::LeafConfig;

/// nats-server waits this long after a loop or a "same cluster name" rejection.
pub const LOOP_DELAY: std::time::Duration = std::time::Duration::from_secs(30);

/// One [`Link`] per configured remote (down until its task connects).
pub fn links(config: &LeafConfig) -> Vec<Arc<Link>> {
    (0..config.remotes.len())
        .map(|i| Arc::new(Link::new(i, config.max_pending)))
        .collect()
}
