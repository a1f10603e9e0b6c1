//! The stream sequences twig delivered locally (the last `max_remembered` of them), kept in
//! a small append-only file so a hub redelivering one (its ack was lost with the link, the hub
//! forgot it in a crash, twig died between delivering and acking) is recognised and only acked.
//!
//! Why a set and not just the highest sequence delivered: after a link loss the hub
//! redelivers the messages that were in flight only when their `ack_wait` ends, after newer
//! ones were already delivered on the new connection. "Skip everything at or below the
//! highest" would then drop those never-received messages. A message is skipped only when its
//! own sequence is remembered, so nothing twig never delivered is ever skipped. Entries stay
//! after the hub confirms the ack: a hub killed right after confirming may not have written
//! the ack yet and send the message again.
//!
//! File: `TWIGSYN2`, then one record per delivered sequence: the sequence (u64 LE) and the
//! CRC-32 of those 8 bytes (u32 LE). Appended and fdatasynced once per batch; a torn last
//! record (a crash during the append) fails its CRC and is cut off at the next open. When the
//! file holds twice `max_remembered` records it is rewritten with the remembered set
//! (`<file>.tmp`, fsync, rename, fsync of the directory): a crash leaves the old or the new.
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use twig_core::log::Crc32;

const MAGIC: &[u8; 8] = b"TWIGSYN2";
const RECORD: usize = 12;

/// The remembered set and its file.
#[derive(Debug)]
pub struct Seen {
    path: PathBuf,
    file: File,
    set: BTreeSet<u64>,
    max: usize,
    last: u64,
    /// Records in the file.
    records: usize,
    /// Inserted since the last save.
    unsaved: Vec<u64>,
}

impl Seen {
    /// Opens (or creates) the file at `path`. Damage (other than a torn last record) is
    /// reported in the second value and the file started afresh (at least once: a message
    /// may then be delivered again).
    pub fn open(path: &Path, max: usize) -> std::io::Result<(Seen, Option<String>)> {
        let max = max.max(1);
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut warning = None;
        let (seqs, valid) = if bytes.is_empty() {
            (Vec::new(), 0)
        } else if let Some(body) = bytes.strip_prefix(MAGIC) {
            let seqs = decode(body);
            let valid = MAGIC.len() + seqs.len() * RECORD;
            (seqs, valid)
        } else {
            warning = Some(format!(
                "{} is not a sync state file; starting with nothing remembered",
                path.display()
            ));
            (Vec::new(), 0)
        };
        let mut set = BTreeSet::new();
        let mut last = 0;
        for s in &seqs {
            set.insert(*s);
            last = last.max(*s);
        }
        while set.len() > max {
            set.pop_first();
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        // Append mode: every write lands at the end, after a cut too.
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        if valid == 0 {
            file.set_len(0)?;
            (&file).write_all(MAGIC)?;
            file.sync_all()?;
            sync_dir(path)?;
        } else if valid < bytes.len() {
            // A torn last record: cut it so appends continue on a record boundary.
            file.set_len(valid as u64)?;
            file.sync_all()?;
        }
        let seen = Seen {
            path: path.to_path_buf(),
            file,
            set,
            max,
            last,
            records: seqs.len(),
            unsaved: Vec::new(),
        };
        Ok((seen, warning))
    }

    /// Whether `seq` was delivered (among the last `max_remembered`).
    pub fn contains(&self, seq: u64) -> bool {
        self.set.contains(&seq)
    }

    /// Remembers `seq` as delivered (forgetting the lowest beyond the limit). Durable after
    /// [`save`](Self::save).
    pub fn insert(&mut self, seq: u64) {
        if self.set.insert(seq) {
            self.unsaved.push(seq);
        }
        self.last = self.last.max(seq);
        while self.set.len() > self.max {
            self.set.pop_first();
        }
    }

    /// Sequences remembered.
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

    /// Makes every insert so far durable: one append and fdatasync, or a rewrite when the
    /// file has grown to twice the limit.
    pub fn save(&mut self) -> std::io::Result<()> {
        if self.unsaved.is_empty() {
            return Ok(());
        }
        if self.records + self.unsaved.len() > 2 * self.max {
            return self.rewrite();
        }
        let mut buf = Vec::with_capacity(self.unsaved.len() * RECORD);
        for s in &self.unsaved {
            encode(&mut buf, *s);
        }
        (&self.file).write_all(&buf)?;
        self.file.sync_data()?;
        self.records += self.unsaved.len();
        self.unsaved.clear();
        Ok(())
    }

    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(MAGIC.len() + self.set.len() * RECORD);
        buf.extend_from_slice(MAGIC);
        for s in &self.set {
            encode(&mut buf, *s);
        }
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        sync_dir(&self.path)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.records = self.set.len();
        self.unsaved.clear();
        Ok(())
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn encode(buf: &mut Vec<u8>, seq: u64) {
    let b = seq.to_le_bytes();
    buf.extend_from_slice(&b);
    buf.extend_from_slice(&Crc32::new().update(&b).finish().to_le_bytes());
}

/// The records up to the first short or damaged one.
fn decode(body: &[u8]) -> Vec<u64> {
    let mut out = Vec::with_capacity(body.len() / RECORD);
    for r in body.chunks(RECORD) {
        let (Some(seq), Some(crc)) = (r.get(..8), r.get(8..RECORD)) else {
            break;
        };
        let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if Crc32::new().update(seq).finish() != crc {
            break;
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(seq);
        out.push(u64::from_le_bytes(s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("twig-seen-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn saved_sequences_come_back_and_the_lowest_are_forgotten() {
        let d = dir("back");
        let path = d.join("s.state");
        let (mut s, warn) = Seen::open(&path, 3).unwrap();
        assert!(warn.is_none() && s.is_empty());
        for seq in [4, 9, 7] {
            s.insert(seq);
        }
        s.save().unwrap();
        // Not saved: gone after a crash.
        s.insert(20);
        drop(s);
        let (mut back, warn) = Seen::open(&path, 3).unwrap();
        assert!(warn.is_none());
        assert!(back.contains(4) && back.contains(7) && back.contains(9) && !back.contains(20));
        assert_eq!(back.last(), 9);
        for seq in [10, 11] {
            back.insert(seq);
        }
        assert_eq!(back.len(), 3);
        assert!(!back.contains(7) && back.contains(9) && back.contains(11));
        // Past twice the limit the file is rewritten with what is remembered.
        back.save().unwrap();
        back.insert(12);
        back.insert(13);
        back.save().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), (8 + 3 * RECORD) as u64);
        let (again, _) = Seen::open(&path, 3).unwrap();
        assert!(again.contains(11) && again.contains(12) && again.contains(13));
        assert_eq!(again.last(), 13);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_append_is_cut_and_damage_is_reported() {
        let d = dir("torn");
        let path = d.join("s.state");
        let (mut s, _) = Seen::open(&path, 10).unwrap();
        for seq in 1..=3 {
            s.insert(seq);
        }
        s.save().unwrap();
        drop(s);
        let full = fs::read(&path).unwrap();
        for cut in 0..RECORD {
            fs::write(&path, &full[..full.len() - cut]).unwrap();
            let (mut s, warn) = Seen::open(&path, 10).unwrap();
            assert!(warn.is_none());
            let want = if cut == 0 { 3 } else { 2 };
            assert_eq!(s.len(), want, "cut {cut}");
            // Appends continue on a record boundary.
            s.insert(50);
            s.save().unwrap();
            drop(s);
            let (s, _) = Seen::open(&path, 10).unwrap();
            assert!(s.contains(50) && s.len() == want + 1, "cut {cut}");
            fs::write(&path, &full).unwrap();
        }
        fs::write(&path, b"garbage!garbage").unwrap();
        let (s, warn) = Seen::open(&path, 10).unwrap();
        assert!(warn.unwrap().contains("not a sync state file") && s.is_empty());
        let (s, warn) = Seen::open(&path, 10).unwrap();
        assert!(warn.is_none() && s.is_empty());
        let _ = fs::remove_dir_all(&d);
    }
}
