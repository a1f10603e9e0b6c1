//! Reading a twig stream file the way twig does after a restart (twig-core's log over the
//! gateway's file flash), to check what is on disk independently of the running process.

use std::path::Path;

use twig_core::log::{Config, Log, WhenFull};
use twig_gateway::stream::{flash::FileFlash, record};

/// Every record of the stream file at `path` (`size` bytes): (sequence, payload), oldest first.
pub fn records(path: &Path, size: u64) -> Vec<(u64, Vec<u8>)> {
    let flash = FileFlash::open(path, size).expect("open the stream file");
    let mut log = Log::open(
        flash,
        Config::new(0, size as u32).when_full(WhenFull::DropOldest),
    )
    .expect("log opens");
    let first = log.stats().first;
    let mut cur = log.cursor(first).expect("cursor at the first record");
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(r) = log
        .read_next_vec(&mut cur, &mut buf)
        .expect("read a record")
    {
        let m = record::decode(&buf[..r.len]).expect("record decodes");
        out.push((r.seq, m.payload.to_vec()));
    }
    out
}
