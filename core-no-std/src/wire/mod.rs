//! The NATS wire protocol: one codec for every op, both directions, every role.
//!
//! - [`Parser`] (`parser`, `line`): incremental, zero-copy parsing of [`Op`]s out of a
//!   caller-owned buffer, surviving reads split at any byte, with nats-server's limits and
//!   errors ([`Limits`], [`ParseError::server_err`]).
//! - `encode`: [`Op::encode`] and the `encode_*_head` helpers write into a caller's
//!   buffer; they are exact inverses of the parser (see the module for "canonical").
//! - [`Headers`] / [`HeaderWriter`] (`headers`): `NATS/1.0[ status[ description]]` header
//!   blocks, parsed and built.
//! - [`split_deliver`] (`jsack`): the `@<subject>` nats-server appends to a JetStream ack
//!   reply when the message crosses a leafnode.
//! - `json`: INFO and CONNECT bodies without a heap (a hand-written JSON reader and
//!   writer); with `alloc`, the
//!   full field sets of nats-server's client and leafnode INFO/CONNECT.
//!
//! Nothing here allocates, and nothing panics on any input.

pub(crate) mod args;
mod encode;
mod error;
mod headers;
mod jsack;
pub mod json;
mod line;
mod op;
mod parser;

#[cfg(test)]
mod captures_tests;
#[cfg(test)]
mod parser_tests;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod test_util;

pub use encode::{
    CRLF, MsgHead, encode_connect_with, encode_lmsg_head, encode_msg_head, encode_pub_head,
};
pub use error::{EncodeError, HeaderError, ParseError};
pub use headers::{HeaderIter, HeaderWriter, Headers};
pub use jsack::split_deliver;
pub use op::{Limits, Mode, Op, Queues, QueuesIter};
pub use parser::{Ops, Parser};
