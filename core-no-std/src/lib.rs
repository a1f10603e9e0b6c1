//! twig-core: the NATS protocol and subject core of twig, for microcontrollers and gateways.
//!
//! The crate is layered like smoltcp; each layer only uses the ones above it in this list:
//!
//! - [`subject`]: subject validation (publish vs. subscribe rules, as nats-server), tokens,
//!   wildcard matching (`*`, `>`).
//! - [`wire`]: the NATS wire protocol. One incremental, zero-copy parser for every op in both
//!   directions and every role (client, server, leafnode), encoders that write into a caller's
//!   buffer, header blocks (`NATS/1.0 ...`), and INFO/CONNECT JSON without a heap.
//! - [`mqtt`]: MQTT topic <-> NATS subject mapping, exactly as nats-server maps them, and
//!   the MQTT 3.1.1/5.0 packet codec ([`mqtt::packet`]) the gateway's MQTT listener speaks.
//! - [`log`]: an append-only, crash-safe record log over `embedded_storage`'s `NorFlash`: a
//!   ring of sectors, CRC per record, `u64` sequence numbers, cursors that read without
//!   removing, an acknowledged cursor that frees whole sectors, recovery by scan. The store
//!   behind streams on an MCU's flash and on the gateway. `log::testing` (feature
//!   `mock-flash`) is its fault injector: a NOR flash mock that cuts power anywhere.
//! - [`s2`]: S2 compression (block and stream formats, nats-server's compression modes), as
//!   leafnode connections use it; caller-provided buffers, CRC-checked, split reads anywhere.
//! - [`kv`] (feature `alloc`): a crash-safe key-value table on the log (log-structured, index
//!   in RAM, compaction): MQTT retained messages, persistent sessions, QoS 2 state.
//! - [`nkey`]: nkey seeds and public keys (base32, CRC-16) and, with feature `nkey`, Ed25519
//!   signatures of the server's nonce, for the client's `CONNECT`.
//! - [`client`]: a sans-IO NATS client session for microcontrollers: bytes in, bytes and
//!   events out, time passed in (`handle(now, input)`, `poll_at()`, `transmit()`).
//! - [`sublist`] (feature `alloc`): the subscription index the gateway routes with.
//!
//! Rules that hold everywhere: no panics on any input; capacity lives in types and overflow is
//! returned as a value; errors are small `Copy` enums; no clock, socket or allocator inside
//! (except the `alloc` parts, which allocate but never block).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod client;
#[cfg(feature = "alloc")]
pub mod kv;
pub mod log;
pub mod mqtt;
pub mod nkey;
pub mod s2;
pub mod subject;
#[cfg(feature = "alloc")]
pub mod sublist;
#[doc(hidden)]
pub mod testing;
pub mod wire;
