//! Layer 0, `twig-perms`: the permissions engine. It uses twig-core only (its sublist), never
//! another crate of twig; config holds its plain data, the client connections (and, with
//! per-user rights, the router's delivery) apply it.
//!
//! Permissions: who may publish where, subscribe to what, and receive which messages, with
//! nats-server's semantics (`server/client.go`, `server/opts.go`, `server/auth.go`).
//!
//! A self-contained layer (it imports nothing else of the gateway), in the order data flows:
//!
//! - [`spec`]: the plain data a config holds ([`Permissions`]: `publish`, `subscribe`, each
//!   an allow list or `{ allow, deny }`, queue-group entries `"subject queue"`,
//!   `allow_responses`), its validation, and (`de`) serde input in all of nats-server's shapes;
//! - [`template`]: `{{name()}}`, `{{subject()}}`, `{{tag(key)}}` in subjects, filled from the
//!   authenticated identity ([`Facts`]) into plain [`Permissions`];
//! - [`rules`]: [`Rules`], compiled (one sublist per list), immutable, shared; uncached
//!   decisions;
//! - [`Checker`]: one connection's state in front of its rules: a publish cache and a delivery
//!   cache bounded in bytes (O(1) amortised), and the `allow_responses` table with time passed
//!   in (`now`), never read from a clock;
//! - [`violation`]: the `-ERR` texts.
//!
//! What the router does with it (nats-server's order): on PUB/HPUB [`Checker::publish`]
//! (refused: `-ERR` from [`violation::publish`], message dropped, connection kept); on SUB
//! [`Checker::subscribe`] (refused: [`violation::subscription`]); on each delivery to a
//! subscription marked [`Subscribe::filtered`], or to a connection with `allow_responses`,
//! [`Checker::deliver`] before queueing the message.

mod cache;
mod checker;
mod de;
mod responses;
pub mod rules;
pub mod spec;
pub mod template;
pub mod violation;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

pub use cache::BoundedCache;
pub use checker::{Budgets, Checker, Subscribe};
pub use de::parse_go_duration;
pub use rules::Rules;
pub use spec::{List, Permissions, ResponsePermission, SubjectPermission};
pub use template::Facts;

/// What is wrong with a permission set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PermsError {
    /// nats-server: `subject "x" is not a valid subject`.
    #[error("{}: subject {subject:?} is not a valid subject", list.as_str())]
    InvalidSubject {
        /// Where.
        list: List,
        /// The entry (or its subject part).
        subject: String,
    },
    /// nats-server: `queue "q" is not a valid queue`.
    #[error("{}: queue {queue:?} is not a valid queue", list.as_str())]
    InvalidQueue {
        /// Where.
        list: List,
        /// The queue part.
        queue: String,
    },
    /// A template entry that is not a valid entry whatever it is filled with.
    #[error("{}: {entry:?} is not a valid subject template", list.as_str())]
    InvalidTemplate {
        /// Where.
        list: List,
        /// The entry.
        entry: String,
    },
    /// nats-server: `template operation in "..": ".." is not defined`.
    #[error("template operation in {entry:?}: {op:?} is not defined")]
    UnknownTemplate {
        /// The entry.
        entry: String,
        /// The operation.
        op: String,
    },
    /// A deny entry's tag is missing from the identity (nats-server refuses the login).
    #[error("generated invalid subject {entry:?}: {tag:?} is not defined")]
    MissingTag {
        /// The entry.
        entry: String,
        /// The tag key.
        tag: String,
    },
    /// A deny entry filled into something invalid (nats-server refuses the login).
    #[error("{}: {entry:?} generated an invalid subject", list.as_str())]
    InvalidFilled {
        /// Where.
        list: List,
        /// The template entry.
        entry: String,
    },
    /// nats-server: `template expansion exceeds limit: 4096`.
    #[error("template expansion exceeds limit: {}", template::MAX_EXPANSIONS)]
    TooManyExpansions,
    /// [`Rules::compile`] was given templates: fill them first.
    #[error("permissions hold templates that were not filled")]
    UnfilledTemplate,
}
