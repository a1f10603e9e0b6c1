//! Layer 0, `twig-natsconf`: nats-server's configuration format, read into a value tree with
//! positions. It uses no crate of twig (config maps the tree onto its data).
//!
//! ```text
//! # leaf.conf
//! server_name: edge-1
//! listen = 127.0.0.1:4222
//! max_payload 1MB                       # key value, size suffix
//! leafnodes {
//!   remotes [ { urls: ["tls://hub:7422"], credentials: "./edge.creds" } ]
//! }
//! include './auth.conf'                 # its keys join this map
//! authorization { token: $EDGE_TOKEN }  # a key above, else the environment
//! ```
//!
//! Layers: `cursor` (characters, lines) -> `scalar` (unquoted words, strings) -> `parse`
//! (the grammar, includes, variables) -> `value` (the tree). Files and the environment come
//! through a [`Source`], so the parser itself does no I/O.
//!
//! Promise: no input makes it panic or recurse without bound (nesting stops at 64 levels,
//! includes at 16); every error carries the file, line and column (`fuzz/`).
#![forbid(unsafe_code)]

mod cursor;
mod parse;
mod scalar;
mod source;
mod value;

use std::path::Path;
use std::sync::Arc;

pub use source::{Source, System};
pub use value::{Entry, Error, Kind, Map, Pos, Value};

/// Reads `text` (includes relative to the working directory; the process's environment).
pub fn parse(text: &str) -> Result<Map, Error> {
    parse_with(text, None, &System)
}

/// Reads the file at `path` (includes relative to its folder; the process's environment).
pub fn parse_file(path: &Path) -> Result<Map, Error> {
    let text = System.read(path).map_err(|e| Error {
        pos: Pos {
            file: Some(Arc::from(path)),
            line: 1,
            column: 1,
        },
        message: format!("cannot read the file: {e}"),
    })?;
    parse_with(&text, Some(path), &System)
}

/// Reads `text` as if it were the file `file` (for includes and positions), taking included
/// files and environment variables from `source`.
pub fn parse_with(text: &str, file: Option<&Path>, source: &dyn Source) -> Result<Map, Error> {
    parse::document(
        text,
        file.map(Arc::from),
        source,
        &mut parse::Shared::default(),
    )
}

#[cfg(test)]
mod tests;
