//! twig-gateway: the `twig` binary's library: a NATS server for local clients on smol.
//!
//! Layers, from the edges in:
//! - [`cli`], [`config`], [`logging`]: one TOML file plus nats-server-compatible flags; tracing
//!   output in nats-server's style.
//! - [`server`]: the accept loop and, per connection, a reader (parse, authorize, route) and a
//!   writer flushing a bounded outbound buffer. [`server::router`] owns the sublist.
//! - [`auth`], [`tls`]: credentials checks (token, user/password, nkey) and rustls setup.
//! - [`monitor`]: nats-server-shaped `/varz`, `/connz`, `/healthz` and Prometheus `/metrics`.
//! - [`stats`]: counters shared by all of the above (atomics, no locks).

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod logging;
pub mod monitor;
pub mod server;
pub mod stats;
pub mod stream;
pub mod tls;

/// twig's version, reported in INFO and `/varz`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
