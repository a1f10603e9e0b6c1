//! Where included files and environment variables come from. The parser does no I/O of its
//! own: [`System`] reads the real filesystem and environment; tests and the fuzzer pass their
//! own [`Source`].
use std::io;
use std::path::Path;

/// Files for `include` and variables for `$NAME`.
pub trait Source {
    /// The text of an included file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// An environment variable.
    fn env(&self, name: &str) -> Option<String>;
}

/// The process's filesystem and environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Source for System {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}
