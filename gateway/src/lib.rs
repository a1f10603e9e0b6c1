//! twig-gateway: the `twig` binary's library: a NATS leaf node for local clients on smol.
//!
//! Layers, lowest first; each uses only the ones below it (gateway/ARCHITECTURE.md):
//! - [`util`]: one clock, one id generator, one back-off, one dial/TLS helper, one lock
//!   helper, one read buffer, the version facts. [`perms`]: the permissions engine.
//! - [`config`]: plain data and validation; names no component.
//! - [`router`]: the sublist, delivery, batches, publishers; names no component. Remotes,
//!   interest observers and durable stores plug in through its traits.
//! - Components, each using only the layers above, never each other: [`server`] (client
//!   connections: accept, session, auth, TLS), [`uplink`] (the leafnode connections),
//!   [`stream`] (flash-backed streams and their forwarder), [`sync`] (pull consumers on hub
//!   streams), [`mqtt`] (the MQTT bridge) and [`mqtt_server`] (the MQTT listener's session),
//!   [`monitor`] (nats-server-shaped monitoring).
//! - [`app`]: wires the components together; [`cli`], [`logging`], [`reload`], [`control`]:
//!   flags, log output, SIGHUP, `--signal`.

pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod logging;
pub mod monitor;
pub mod mqtt;
pub mod mqtt_server;
pub mod perms;
pub mod reload;
pub mod router;
pub mod server;
pub mod stream;
pub mod sync;
pub mod uplink;
pub mod util;

/// Credentials checks live with the client connections (`server::auth`); this path stays for
/// the tests that use it.
pub use server::auth;

/// twig's own version (INFO and `/varz` report it as `twig_version`; see [`util::version`]).
pub const VERSION: &str = util::version::TWIG;
