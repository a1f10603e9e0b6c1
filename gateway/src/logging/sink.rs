//! Where log lines go: stderr, or `log_file` (appended), reopened on SIGUSR1 so logrotate can
//! move the file away and twig carries on in a fresh one at the same path.
//!
//! One lock, taken alone for the write of one line (the formatter hands each event over as
//! one buffer), and by `reopen`.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing_subscriber::fmt::MakeWriter;

/// The log's destination; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Sink(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    path: Option<PathBuf>,
    file: Mutex<Option<File>>,
}

impl Sink {
    /// Lines go to stderr.
    pub fn stderr() -> Sink {
        Sink(Arc::new(Inner {
            path: None,
            file: Mutex::new(None),
        }))
    }

    /// Lines are appended to `path` (created if missing).
    pub fn file(path: &Path) -> io::Result<Sink> {
        let file = open(path)?;
        Ok(Sink(Arc::new(Inner {
            path: Some(path.to_path_buf()),
            file: Mutex::new(Some(file)),
        })))
    }

    /// The log file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.0.path.as_deref()
    }

    /// Opens the file again at its path (after logrotate renamed it). `Ok(false)` when the
    /// log goes to stderr and there is nothing to reopen. On error the old file stays in use.
    pub fn reopen(&self) -> io::Result<bool> {
        let Some(path) = &self.0.path else {
            return Ok(false);
        };
        let fresh = open(path)?;
        *self.lock() = Some(fresh);
        Ok(true)
    }

    fn lock(&self) -> MutexGuard<'_, Option<File>> {
        // A panic while writing a line leaves the file usable.
        twig_util::lock::lock(&self.0.file)
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// One line's writer: stderr, or the locked file.
pub enum LineWriter<'a> {
    /// No log file.
    Stderr(io::Stderr),
    /// The log file, locked for this line.
    File(MutexGuard<'a, Option<File>>),
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LineWriter::Stderr(e) => e.write(buf),
            LineWriter::File(f) => match f.as_mut() {
                Some(f) => f.write(buf),
                None => Ok(buf.len()),
            },
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LineWriter::Stderr(e) => e.flush(),
            LineWriter::File(f) => f.as_mut().map_or(Ok(()), Write::flush),
        }
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        match self.0.path {
            None => LineWriter::Stderr(io::stderr()),
            Some(_) => LineWriter::File(self.lock()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_file_is_reopened_at_its_path() {
        let dir = tempfile_dir();
        let path = dir.join("twig.log");
        let sink = Sink::file(&path).unwrap();
        sink.make_writer().write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.join("twig.log.1")).unwrap();
        // Until reopened, lines follow the renamed file, as with any open file.
        sink.make_writer().write_all(b"two\n").unwrap();
        assert!(sink.reopen().unwrap());
        sink.make_writer().write_all(b"three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("twig.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        assert!(!Sink::stderr().reopen().unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("twig-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
