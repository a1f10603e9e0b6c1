//! The NATS wire protocol: one codec for every op, both directions, every role.
//!
//! - `parser`: incremental, zero-copy parsing of ops out of a caller-owned buffer.
//! - `encode`: encoders writing ops into a caller's buffer (exact inverses of the parser).
//! - `headers`: `NATS/1.0[ status[ description]]` header blocks, parsed and built.
//! - `json`: INFO and CONNECT bodies without a heap (a small hand-written JSON reader and
//!   writer); with `alloc`, the
//!   full field sets of nats-server's client and leafnode INFO/CONNECT.

pub mod json;
