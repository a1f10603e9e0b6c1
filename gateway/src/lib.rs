//! Layer 4, twig-gateway: the `twig` binary's library (the app: it wires every component): a
//! NATS leaf node for local clients on smol.
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
pub mod control;
pub mod logging;
pub mod reload;

// The layers below, under the names the app and the tests use.
pub use twig_clients as server;
pub use twig_config as config;
pub use twig_monitor as monitor;
pub use twig_mqtt as mqtt;
pub use twig_perms as perms;
pub use twig_router as router;
pub use twig_stream as stream;
pub use twig_sync as sync;
pub use twig_uplink as uplink;
pub use twig_util as util;

/// The MQTT listener's session (`twig_mqtt::server`), for the fuzz targets that drive it.
pub use twig_mqtt::server as mqtt_server;

/// Credentials checks live with the client connections (`twig_clients::auth`); this path
/// stays for the tests that use it.
pub use twig_clients::auth;

/// twig's own version (INFO and `/varz` report it as `twig_version`; see [`util::version`]).
pub const VERSION: &str = util::version::TWIG;
