//! The stream sequences twig delivered locally whose ack the hub has not confirmed yet, kept
//! in a small file so a restart between delivering a message and the hub taking its ack does
//! not deliver it twice.
//!
//! Why a set and not just the highest sequence delivered: after a link loss the hub
//! redelivers the messages that were in flight only when their `ack_wait` ends, after newer
//! ones were already delivered on the new connection. "Skip everything at or below the
//! highest" would then drop those never-received messages. A message is skipped only when its
//! own sequence is in the set. An entry leaves the set when the hub confirms the ack (it will
//! not be redelivered after that); removals are written with the next save, as a stale entry
//! only matters if the hub sends an acknowledged message again.
//!
//! File: `TWIGSYN1`, count (u32 LE), that many sequences (u64 LE), the highest sequence ever
//! delivered (u64 LE, for monitoring), CRC-32 of everything before (u32 LE). Written to
//! `<file>.tmp`, fsynced, renamed over the file, and the directory fsynced: a crash leaves the
//! old or the new set, never a mix.
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use twig_core::log::Crc32;

const MAGIC: &[u8; 8] = b"TWIGSYN1";

/// The remembered set and its file.
#[derive(Debug)]
pub struct Seen {
    path: PathBuf,
    set: BTreeSet<u64>,
    max: usize,
    last: u64,
    dirty: bool,
}

impl Seen {
    /// Reads `path` (absent = nothing delivered yet). A damaged file is reported in the
    /// second value and treated as empty (at least once: a message may be delivered again).
    pub fn open(path: &Path, max: usize) -> std::io::Result<(Seen, Option<String>)> {
        let mut seen = Seen {
            path: path.to_path_buf(),
            set: BTreeSet::new(),
            max: max.max(1),
            last: 0,
            dirty: false,
        };
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((seen, None)),
            Err(e) => return Err(e),
        };
        match decode(&bytes) {
            Some((set, last)) => {
                seen.set = set;
                seen.last = last;
                Ok((seen, None))
            }
            None => Ok((
                seen,
                Some(format!(
                    "{} is damaged; starting with nothing remembered",
                    path.display()
                )),
            )),
        }
    }

    /// Whether `seq` was delivered and its ack is not known to be taken.
    pub fn contains(&self, seq: u64) -> bool {
        self.set.contains(&seq)
    }

    /// Remembers `seq` as delivered (forgetting the lowest beyond the limit).
    pub fn insert(&mut self, seq: u64) {
        self.set.insert(seq);
        self.last = self.last.max(seq);
        while self.set.len() > self.max {
            self.set.pop_first();
        }
        self.dirty = true;
    }

    /// The hub confirmed the ack of `seq`.
    pub fn confirm(&mut self, seq: u64) {
        if self.set.remove(&seq) {
            self.dirty = true;
        }
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The highest stream sequence ever delivered.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Writes the set if it changed since the last save: write, fsync, rename, fsync the
    /// directory.
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = encode(&self.set, self.last);
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        self.dirty = false;
        Ok(())
    }
}

fn encode(set: &BTreeSet<u64>, last: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(24 + set.len() * 8);
    b.extend_from_slice(MAGIC);
    // The set is bounded by `max_remembered`, validated far below u32::MAX.
    b.extend_from_slice(&u32::try_from(set.len()).unwrap_or(u32::MAX).to_le_bytes());
    for s in set {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b.extend_from_slice(&last.to_le_bytes());
    let crc = Crc32::new().update(&b).finish();
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Option<(BTreeSet<u64>, u64)> {
    let (body, crc) = b.split_at_checked(b.len().checked_sub(4)?)?;
    if Crc32::new().update(body).finish() != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let rest = body.strip_prefix(MAGIC)?;
    let (count, rest) = rest.split_at_checked(4)?;
    let count = u32::from_le_bytes(count.try_into().ok()?) as usize;
    if rest.len() != count.checked_mul(8)?.checked_add(8)? {
        return None;
    }
    let (seqs, last) = rest.split_at(count * 8);
    let set = seqs
        .chunks_exact(8)
        .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
        .collect();
    Some((set, u64::from_le_bytes(last.try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_sets_come_back_and_damage_is_reported() {
        let dir = std::env::temp_dir().join(format!("twig-seen-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.state");
        let (mut s, warn) = Seen::open(&path, 3).unwrap();
        assert!(warn.is_none() && s.is_empty());
        for seq in [4, 9, 7] {
            s.insert(seq);
        }
        s.confirm(9);
        s.save().unwrap();
        let (mut back, warn) = Seen::open(&path, 3).unwrap();
        assert!(warn.is_none());
        assert!(back.contains(4) && back.contains(7) && !back.contains(9));
        assert_eq!(back.last(), 9);
        // Beyond the limit the lowest go.
        for seq in [10, 11] {
            back.insert(seq);
        }
        assert_eq!(back.len(), 3);
        assert!(!back.contains(4) && back.contains(7));

        let mut bytes = fs::read(&path).unwrap();
        bytes[12] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let (s, warn) = Seen::open(&path, 3).unwrap();
        assert!(warn.unwrap().contains("damaged") && s.is_empty());
        fs::write(&path, b"").unwrap();
        assert!(Seen::open(&path, 3).unwrap().1.is_some());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_truncation_of_a_file_is_refused() {
        let set: BTreeSet<u64> = [1, 2, 300].into_iter().collect();
        let bytes = encode(&set, 300);
        assert_eq!(decode(&bytes), Some((set, 300)));
        for n in 0..bytes.len() {
            assert_eq!(decode(&bytes[..n]), None, "cut at {n}");
        }
    }
}
