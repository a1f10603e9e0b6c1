//! A NOR flash over a pre-allocated file, for twig-core's [`Log`](twig_core::log::Log).
//!
//! The file is created or extended to its configured size when opened (new space is erased,
//! i.e. 0xFF) and never changes size afterwards, so a full disk shows at start, not at the
//! first message. Erase writes 0xFF over the sector; a write overwrites the bytes (the log only
//! ever writes erased words, so the NOR rule "bits only go 1 -> 0" holds without reading back);
//! [`Flush::flush`] is `fdatasync`: the file's size never changes after open, so the data and
//! nothing else is what needs to reach the disk.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use twig_core::log::Flush;

/// Sector size of a file-backed stream (`config::STREAM_SECTOR`: the config checks sizes
/// against it): the unit the log erases, reclaims and drops, and the largest record it can
/// hold (a message plus its subject, headers and 14 bytes of framing).
pub use twig_config::STREAM_SECTOR as SECTOR;

/// A flash error: an out-of-range or misaligned access (a bug in the caller) or an I/O error.
#[derive(Debug)]
pub enum FileFlashError {
    /// Outside the file.
    OutOfBounds,
    /// Not aligned to the write or erase size.
    NotAligned,
    /// The OS refused (the error is logged where it happens; its kind is kept here).
    Io(io::ErrorKind),
}

impl NorFlashError for FileFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FileFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FileFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FileFlashError::Io(_) => NorFlashErrorKind::Other,
        }
    }
}

fn io_err(e: io::Error) -> FileFlashError {
    tracing::error!("stream file I/O error: {e}");
    FileFlashError::Io(e.kind())
}

/// A pre-allocated file seen as NOR flash with [`SECTOR`]-sized sectors.
#[derive(Debug)]
pub struct FileFlash {
    file: File,
    len: u32,
}

impl FileFlash {
    /// Opens (creating if needed) `path` and makes it exactly `size` bytes, a multiple of
    /// [`SECTOR`] below 4 GiB; space added at the end reads as erased. A file larger than
    /// `size` is refused rather than truncated: shrinking would silently drop records.
    pub fn open(path: &Path, size: u64) -> io::Result<FileFlash> {
        if size == 0
            || !size.is_multiple_of(SECTOR as u64)
            || size > u64::from(u32::MAX) + 1 - SECTOR as u64
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("size {size} is not a non-zero multiple of {SECTOR} below 4 GiB"),
            ));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let old = file.metadata()?.len();
        if old > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is {old} bytes, more than the configured {size}; refusing to truncate it",
                    path.display()
                ),
            ));
        }
        // Fill the new tail with 0xFF (erased), a sector at a time; the trailing partial
        // sector of an interrupted extension is rewritten whole.
        let ff = vec![0xFF_u8; SECTOR];
        let mut off = old - old % SECTOR as u64;
        while off < size {
            file.write_all_at(&ff, off)?;
            off += SECTOR as u64;
        }
        if old != size {
            file.sync_all()?;
        }
        Ok(FileFlash {
            file,
            len: size as u32,
        })
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<(), FileFlashError> {
        let end = u64::from(offset) + len as u64;
        if end > u64::from(self.len) {
            return Err(FileFlashError::OutOfBounds);
        }
        if !(offset as usize).is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(FileFlashError::NotAligned);
        }
        Ok(())
    }
}

impl ErrorType for FileFlash {
    type Error = FileFlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.check(offset, bytes.len(), 1)?;
        self.file
            .read_exact_at(bytes, u64::from(offset))
            .map_err(io_err)
    }

    fn capacity(&self) -> usize {
        self.len as usize
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if to < from {
            return Err(FileFlashError::OutOfBounds);
        }
        self.check(from, (to - from) as usize, SECTOR)?;
        let ff = vec![0xFF_u8; SECTOR];
        let mut off = from;
        while off < to {
            self.file
                .write_all_at(&ff, u64::from(off))
                .map_err(io_err)?;
            off += SECTOR as u32;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.check(offset, bytes.len(), Self::WRITE_SIZE)?;
        self.file
            .write_all_at(bytes, u64::from(offset))
            .map_err(io_err)
    }
}

impl Flush for FileFlash {
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.file.sync_data().map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twig_core::log::{Config, Log, WhenFull};

    #[test]
    fn nor_semantics() {
        let dir = tempdir();
        let path = dir.join("s.flash");
        let mut f = FileFlash::open(&path, 2 * SECTOR as u64).unwrap();
        assert_eq!(f.capacity(), 2 * SECTOR);
        let mut buf = [0u8; 8];
        f.read(100, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 8], "a new file reads erased");
        f.write(100, &[1, 2, 3, 4]).unwrap();
        f.read(100, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            f.write(101, &[0; 4]),
            Err(FileFlashError::NotAligned)
        ));
        assert!(matches!(
            f.write(100, &[0; 3]),
            Err(FileFlashError::NotAligned)
        ));
        let end = 2 * SECTOR as u32;
        assert!(matches!(
            f.write(end, &[0; 4]),
            Err(FileFlashError::OutOfBounds)
        ));
        assert!(matches!(
            f.read(end - 2, &mut buf),
            Err(FileFlashError::OutOfBounds)
        ));
        assert!(matches!(
            f.erase(1, SECTOR as u32),
            Err(FileFlashError::NotAligned)
        ));
        f.erase(0, SECTOR as u32).unwrap();
        f.read(100, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 8], "erase sets every bit");
        f.flush().unwrap();
        // Extending keeps what is there; shrinking is refused.
        f.write(SECTOR as u32 + 8, &[9; 4]).unwrap();
        drop(f);
        let mut f = FileFlash::open(&path, 3 * SECTOR as u64).unwrap();
        f.read(SECTOR as u32 + 8, &mut buf[..4]).unwrap();
        assert_eq!(&buf[..4], &[9; 4]);
        f.read(2 * SECTOR as u32, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 8]);
        drop(f);
        assert!(FileFlash::open(&path, SECTOR as u64).is_err());
        assert!(FileFlash::open(&path, 1000).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn log_survives_reopen() {
        let dir = tempdir();
        let path = dir.join("s.flash");
        let size = 4 * SECTOR as u64;
        let cfg = Config::new(0, size as u32).when_full(WhenFull::DropOldest);
        let mut log = Log::format(FileFlash::open(&path, size).unwrap(), cfg).unwrap();
        for i in 0..1000u32 {
            log.append(&i.to_le_bytes()).unwrap();
        }
        log.ack(10).unwrap();
        log.sync().unwrap();
        drop(log);
        let mut log = Log::open(FileFlash::open(&path, size).unwrap(), cfg).unwrap();
        let s = log.stats();
        assert_eq!((s.last, s.acked), (1000, 10));
        let mut buf = [0u8; 4];
        assert_eq!(log.read(500, &mut buf).unwrap(), 4);
        assert_eq!(u32::from_le_bytes(buf), 499);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "twig-flash-{}-{}",
            std::process::id(),
            super::super::unique()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
