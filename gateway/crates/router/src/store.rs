//! How durable stores plug into the router: a publish on a subject a store keeps is delivered
//! like any other and handed to the store, which acknowledges it once durable.
//!
//! The streams component registers one [`Store`] ([`Router::set_store`](super::Router::set_store))
//! before the first publish. Publishers (a client's session, the MQTT bridge) ask the router
//! for the [`Durable`] that keeps a subject ([`Router::store`](super::Router::store)), publish
//! with it ([`Router::publish`](super::Router::publish): the one place that decides where the
//! live copy may go) and submit the message to it. A full queue comes back as [`Full`], which
//! the publisher awaits before reading more: back-pressure to that publisher only.
use std::future::Future;
use std::pin::Pin;

use super::deliver::Message;

/// Every durable store, by subject.
pub trait Store: Send + Sync {
    /// The store keeping `subject`, if any (asked once per publish while a store is set).
    fn find(&self, subject: &[u8]) -> Option<&dyn Durable>;
}

/// One durable store (a stream).
pub trait Durable: Send + Sync {
    /// Its name, for logs.
    fn name(&self) -> &str;

    /// Whether it sends what it stores upstream itself (a stream's forwarder): then it is the
    /// only way its subjects go to remotes, and the live copy stays local (see
    /// [`Router::publish`](super::Router::publish)).
    fn forwards(&self) -> bool;

    /// Hands `msg` (published at `time_ns`, Unix nanoseconds) to the store without waiting.
    /// Its reply subject gets the acknowledgement; `notify` too, when given. A `Nats-Msg-Id`
    /// header de-duplicates.
    fn submit(&self, msg: &Message<'_>, time_ns: u64, notify: Option<Notify>) -> Submit;
}

/// What [`Durable::submit`] did.
pub enum Submit {
    /// The store has it.
    Queued,
    /// The store's queue is full: await [`Full::wait`] before submitting more.
    Full(Full),
    /// The store has stopped (its failure was logged).
    Gone,
    /// The message cannot be stored (it does not fit the store's record format).
    Invalid,
}

/// A message waiting for room in a store's queue (see [`Submit::Full`]).
pub struct Full(Pin<Box<dyn Future<Output = bool> + Send>>);

impl Full {
    /// Wraps the store's wait; the future resolves to false if the store is gone.
    pub fn new(wait: impl Future<Output = bool> + Send + 'static) -> Full {
        Full(Box::pin(wait))
    }

    /// Waits until the store takes the message; false if it is gone.
    pub async fn wait(self) -> bool {
        self.0.await
    }
}

/// Where a store reports that a message is durable (or was refused).
///
/// The store never waits on it: it uses `try_send`, so the owner must size the channel for
/// everything it keeps in flight (an owner that submits at most N unanswered messages needs a
/// capacity of N). A notice that does not fit is dropped and counted as lost by the owner's
/// timeout, never blocks the store.
#[derive(Clone)]
pub struct Notify {
    /// The owner's channel.
    pub tx: NoticeTx,
    /// The owner's own tag for this message (e.g. an MQTT packet id).
    pub token: u64,
}

/// Where a [`Notify`] goes: a channel, or an owner's own mailbox (the MQTT listener's
/// session inbox, so an idle session holds no channel of its own).
#[derive(Clone)]
pub enum NoticeTx {
    /// A channel sized by its owner (see [`Notify`]).
    Channel(async_channel::Sender<Stored>),
    /// A mailbox that takes every notice (bounded by what its owner keeps in flight).
    Sink(std::sync::Arc<dyn NoticeSink>),
}

/// An owner's mailbox for [`Stored`] notices. Never waits.
pub trait NoticeSink: Send + Sync {
    /// Takes the notice; false if the owner is gone.
    fn stored(&self, s: Stored) -> bool;
}

impl NoticeTx {
    /// Hands `s` over without waiting; false if it was not taken (full or gone).
    pub fn send(&self, s: Stored) -> bool {
        match self {
            NoticeTx::Channel(tx) => tx.try_send(s).is_ok(),
            NoticeTx::Sink(sink) => sink.stored(s),
        }
    }
}

impl From<async_channel::Sender<Stored>> for NoticeTx {
    fn from(tx: async_channel::Sender<Stored>) -> NoticeTx {
        NoticeTx::Channel(tx)
    }
}

/// The outcome of a submit with a [`Notify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The owner's tag.
    pub token: u64,
    /// The store's sequence number, or 0 when the message was refused.
    pub seq: u64,
    /// Whether it is stored (durable per the store's policy); a duplicate counts as stored.
    pub ok: bool,
}
