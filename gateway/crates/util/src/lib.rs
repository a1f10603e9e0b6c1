//! Layer 0, `twig-util`: the helpers every other layer shares, one of each. It uses the
//! standard library and external crates only, never a crate of twig: config, router and
//! components all build on it.
//!
//! - [`clock`]: the wall clock (Unix nanoseconds) and UTC calendar times.
//! - [`id`]: randomness and the ids made from it (server id, tokens, jitter).
//! - [`lock`]: mutexes whose data stays usable after a holder panicked.
//! - [`backoff`]: reconnect delays, sans-IO (random numbers in, delays out).
//! - [`dial`]: TCP with a timeout, TLS on top, split halves.
//! - [`tls`]: rustls with the ring provider, PEM files, client configs.
//! - [`readbuf`]: a read buffer that grows to one whole op and shrinks back.
//! - [`stall`]: the bounded wait of a publisher on a consumer past its stall mark.
//! - [`version`]: what twig says it is (its version, the nats-server version it speaks, the
//!   build's git commit and compiler, from `build.rs`).

pub mod backoff;
pub mod clock;
pub mod dial;
pub mod id;
pub mod lock;
pub mod readbuf;
pub mod stall;
pub mod tls;
pub mod version;
