//! The MQTT 3.1.1 / 5.0 server session for twig's device listener: sans-IO, time passed in.
//!
//! One [`Session`] per client connection, and after it, while the client's session lives on
//! (persistent sessions, will delay). The shell (the listener, written against this API) owns
//! the socket, the clock, the router and the stores; the session owns the protocol:
//!
//! ```text
//!  socket bytes ─────► Input::Bytes ──┐            ┌── transmit() ─────► socket
//!  NATS message ─────► Input::Deliver ─┤  Session   ├── Event::Publish ──► router / stream
//!  routed / durable ─► Input::Done ────┤ handle(now,├── Event::Subscribe ► router (queue G)
//!  auth decision ────► Input::Accept ──┤   input)   ├── Event::Persist ──► session store
//!  timer ────────────► Input::Tick ────┘ poll_at()  └── Event::Retain ───► retained store
//! ```
//!
//! - CONNECT is read and checked here (protocol level, client id rules, will, keep-alive,
//!   properties); the shell authenticates ([`Event::Connect`]), takes over a live session with
//!   the same client id ([`Input::TakenOver`], [`Session::take_state`]) or loads a stored one,
//!   and answers [`Input::Accept`] (with the client's [`Permissions`]) or [`Input::Reject`].
//! - A QoS 1/2 PUBLISH becomes [`Event::Publish`] with a [`Ticket`]; its PUBACK/PUBREC goes
//!   only when the shell answers [`Input::Done`] (routed, or durable in its stream), in the
//!   order the publishes came.
//! - Deliveries are queued in bytes ([`Config::max_queued_bytes`]) and sent within the
//!   client's Receive Maximum, with topic aliases and subscription identifiers; unacknowledged
//!   ones are sent again with DUP when the session resumes.
//! - [`Event::Persist`] carries every change of a lasting session ([`Change`]) for the
//!   session store; where the spec needs it durable first (QoS 2 exactly once, SUBACK), the
//!   session waits for the ticket.
//!
//! [`store`] keeps retained messages and lasting sessions on flash (twig-core's `kv` table).
//!
//! Nothing here reads a clock, touches a socket or imports the rest of the gateway.

mod api;
pub mod headers;
mod inbound;
mod outbound;
mod session;
mod state;
pub mod store;
mod subs;
#[cfg(test)]
mod tests;

pub use api::*;
pub use session::Session;
pub use state::{Change, Inflight, OutMsg, Qos2In, SessionState, Stage, Subscription};
