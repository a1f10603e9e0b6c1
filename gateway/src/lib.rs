//! twig-gateway: the `twig` binary's library: a NATS server for local clients on smol.
//!
//! Layers, from the edges in:
//! - [`cli`], [`config`], [`logging`]: one TOML file plus nats-server-compatible flags; tracing
//!   output in nats-server's style.
//! - [`server`]: the accept loop and, per connection, a reader (parse, authorize, route) and a
//!   writer flushing a bounded outbound buffer. [`server::router`] owns the sublist.
//! - [`auth`], [`tls`]: credentials checks (token, user/password, nkey) and rustls setup.
//! - [`uplink`]: twig as a leafnode of a cloud NATS cluster: handshake, interest both ways,
//!   `LMSG`/`HMSG`, keepalive ahead of bulk data, reconnect with back-off over several URLs.
//! - [`mqtt`]: the bridge to an MQTT broker (rumqttc on its own thread): topic filters in,
//!   subjects out and back, QoS 1 acknowledged once durable.
//! - [`mqtt_server`]: the sans-IO MQTT 3.1.1/5.0 server session for the device listener.
//! - [`monitor`]: nats-server-shaped `/varz`, `/connz`, `/leafz`, `/healthz` and Prometheus
//!   `/metrics`.
//! - [`sync`]: durable pull consumers on hub streams, delivered locally after reconnects.
//! - [`stats`]: counters shared by all of the above (atomics, no locks).

pub mod app;
pub mod auth;
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
pub mod version;

/// twig's own version (INFO and `/varz` report it as `twig_version`; see [`version`]).
pub const VERSION: &str = version::TWIG;
