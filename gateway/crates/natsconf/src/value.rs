//! The value tree and the error type.
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where something was written: the file (`None` for text given directly), 1-based line and
/// column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file, for text that came from one (an included file names itself).
    pub file: Option<Arc<Path>>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
        }
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The value.
    pub kind: Kind,
    /// Where it starts (for a variable: where the reference was written).
    pub pos: Pos,
}

/// The kinds of values nats-server's format has.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Quoted, unquoted or `( block )` text; also addresses like `127.0.0.1:4222`.
    String(String),
    /// An integer, size suffixes applied (`1MB` = 1048576).
    Integer(i64),
    /// A number with a fraction (`1.5`).
    Float(f64),
    /// `true`/`false`/`yes`/`no`/`on`/`off`, any case.
    Bool(bool),
    /// A Zulu date and time, `2006-01-02T15:04:05Z`, as written.
    DateTime(String),
    /// `[ ... ]`.
    Array(Vec<Value>),
    /// `{ ... }`.
    Map(Map),
}

impl Kind {
    /// A word for messages: "a string", "an integer", ...
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::String(_) => "a string",
            Kind::Integer(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::DateTime(_) => "a date",
            Kind::Array(_) => "an array",
            Kind::Map(_) => "a map",
        }
    }
}

/// One `key: value` of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written (quotes removed).
    pub key: String,
    /// Where the key was written.
    pub key_pos: Pos,
    /// Its value.
    pub value: Value,
    /// A later `$key` referred to this entry: it served as a variable. nats-server skips
    /// such keys instead of calling them unknown options.
    pub used_as_variable: bool,
}

/// A map: keys in the order first written; a key written again replaces the earlier value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    entries: Vec<Entry>,
}

impl Map {
    /// The entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry for `key` (exact spelling).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `key`, replacing an earlier value (which keeps its place in the order).
    pub fn insert(&mut self, entry: Entry) {
        match self.entries.iter_mut().find(|e| e.key == entry.key) {
            Some(old) => *old = entry,
            None => self.entries.push(entry),
        }
    }

    /// The entry for `key`, to mark it used as a variable.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }
}

/// Why a text could not be read. Renders as one sentence with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Where.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

impl std::error::Error for Error {}

/// The path of an included file: relative ones are taken from the including file's folder.
pub(crate) fn join(dir: Option<&Path>, path: &str) -> PathBuf {
    match dir {
        Some(d) => d.join(path),
        None => PathBuf::from(path),
    }
}
