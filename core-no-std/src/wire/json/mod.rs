//! INFO and CONNECT JSON bodies, with and without a heap.
//!
//! Heap-free (always available), borrowing from the caller's bytes:
//! - [`ServerInfo`]: the INFO a server sends, on the client port (§1.2 of the reference) and on
//!   the leafnode port (§2.3). `ServerInfo::parse(&[u8])` and `ServerInfo::write(&mut [u8])`.
//! - [`ClientConnect`]: a client's CONNECT (§1.3). `write` for an MCU client, `parse` for the
//!   gateway reading its clients.
//! - [`LeafConnect`]: a leaf's CONNECT (§2.4), both directions. It has no `lang` key: a hub
//!   takes `lang` as the mark of a *client* on the leafnode port and closes the connection.
//!
//! With `alloc`, `full` has the same three messages as owned serde structs (serde_json), for the
//! gateway that builds and keeps them.
//!
//! ```
//! use twig_core::wire::json::{ClientConnect, ServerInfo};
//!
//! let info = ServerInfo::parse(br#"{"server_id":"NC","proto":1,"headers":true,"max_payload":1048576,"nonce":"x\u0026y"} "#)?;
//! assert_eq!(info.max_payload, 1_048_576);
//! assert_eq!(info.nonce.unwrap_or_default(), "x&y"); // compared decoded
//!
//! let connect = ClientConnect { name: Some("sensor-7".into()), ..ClientConnect::new() };
//! let mut out = [0u8; 256];
//! let n = connect.write(&mut out)?;
//! assert_eq!(&out[..n], br#"{"verbose":false,"pedantic":false,"name":"sensor-7","protocol":1,"headers":true,"no_responders":true}"#);
//! # Ok::<(), twig_core::wire::json::JsonError>(())
//! ```
//!
//! # Why a hand-written reader instead of serde-json-core
//! Real peers escape: nats-server and Go clients write `>` as `\u003e` and `&` as `\u0026`
//! (`"deny_pub":["x.\u003e"]`, `"pass":"p\u0026ss"` seen on the wire), and async-nats writes
//! `"jwt":null`. A borrowed `&str` cannot hold an unescaped value, so strings come back as
//! [`JsonStr`] (the raw text, decoded on demand: compare, iterate, or unescape into a buffer).
//! The reader also skips unknown values without recursion (nesting is capped at [`MAX_DEPTH`],
//! so a hostile `[[[[…` cannot blow an MCU's stack), and it compiles to less code than the
//! serde derive for structs of this size.
//!
//! # Behaviour shared with nats-server's Go decoder
//! - Unknown keys are skipped; `null` leaves a field at its default; the last duplicate wins.
//! - Keys match ASCII-case-insensitively (Go's `encoding/json` folds case; `"Verbose"` works).
//! - A known key holding the wrong JSON type (`"proto":"1"`, `"port":1.5`) is an error, as in Go.
//! - Lone UTF-16 surrogates in `\u` escapes decode to U+FFFD, as in Go. Raw invalid UTF-8 inside
//!   a string is rejected ([`JsonError::InvalidString`]); Go would replace it.
//!
//! # Writing
//! Fields are written in the order nats-server 2.15.1 writes them, and a field at its "absent"
//! value (`None`, `false`, `0`) is left out, like Go's `omitempty`; fields Go always writes
//! (`server_id`, `proto`, `headers`, `max_payload`, …) are always written. Strings are escaped
//! only where JSON requires it (`"`, `\`, control characters); Go's extra `<`, `>`, `&` escapes
//! are not copied, so `x.>` stays 3 bytes. A string that was read with escapes is written back
//! byte for byte. The output is the JSON body only: the `INFO `/`CONNECT ` prefix and the line
//! end belong to the wire encoder.

mod connect;
#[cfg(feature = "alloc")]
pub mod full;
mod info;
mod read;
mod text;
mod write;

#[cfg(test)]
mod tests;

pub use connect::{ClientConnect, LeafConnect};
pub use info::{ServerInfo, SubjectPermission};
pub use text::{Chars, JsonStr, StrList, StrListIter};

use core::fmt;

/// How deep arrays and objects may nest inside a skipped (unknown) value.
///
/// Real INFO/CONNECT bodies nest at most 3 levels (`import` → `allow` → string); the cap keeps
/// the skip loop's state in one `u64` and refuses inputs built to exhaust a stack.
pub const MAX_DEPTH: u32 = 64;

/// What went wrong reading or writing a JSON body. Small and `Copy`, like every core error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// The input ended in the middle of a value.
    UnexpectedEnd,
    /// A byte JSON does not allow at this point (e.g. a missing `:` or `,`).
    Syntax,
    /// The body is not a JSON object.
    ExpectedObject,
    /// A string holds a raw control character, a malformed escape, or invalid UTF-8.
    InvalidString,
    /// A malformed number (`01`, `1.`, `-`, `1e`).
    InvalidNumber,
    /// A known key holds the wrong JSON type (`"proto":"1"`, a fraction for an integer field).
    WrongType,
    /// An integer does not fit the field's type (`"proto":99999999999`, `"client_id":-1`).
    NumberOutOfRange,
    /// Arrays/objects nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Something other than whitespace follows the top-level object.
    TrailingCharacters,
    /// The output buffer is too small for the JSON (or for an unescaped string).
    BufferTooSmall,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonError::UnexpectedEnd => "JSON ended early",
            JsonError::Syntax => "JSON syntax error",
            JsonError::ExpectedObject => "JSON body is not an object",
            JsonError::InvalidString => "invalid JSON string",
            JsonError::InvalidNumber => "invalid JSON number",
            JsonError::WrongType => "JSON value has the wrong type for its key",
            JsonError::NumberOutOfRange => "JSON number out of range for its key",
            JsonError::TooDeep => "JSON nested too deeply",
            JsonError::TrailingCharacters => "characters after the JSON object",
            JsonError::BufferTooSmall => "output buffer too small",
        })
    }
}

impl core::error::Error for JsonError {}
