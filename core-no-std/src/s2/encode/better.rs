//! `s2_better`: two hash tables (8-byte sequences for long matches, 4-byte for short ones),
//! a one-step lazy look-ahead, and denser indexing of what was matched.
//!
//! Sensor backlogs are mostly short repeats (field names, subject tokens, header names) at
//! varying distances, with the occasional long one (a whole repeated line); the short table
//! finds the former, the long table keeps the latter from being cut short by a nearer, worse
//! candidate.

use super::emit::Out;
use super::{Table, hash, load32, load64, match_len};

fn hash8(x: u64, bits: u32) -> usize {
    hash(x, bits)
}

fn hash4(x: u64, bits: u32) -> usize {
    hash(x << 32, bits)
}

/// The longest match the tables offer at `s` (position, length), indexing `s` in both.
fn probe(
    src: &[u8],
    s: usize,
    short: &mut Table<'_>,
    long: &mut Table<'_>,
) -> Option<(usize, usize)> {
    let x = load64(src, s);
    let (hl, hs) = (hash8(x, long.bits), hash4(x, short.bits));
    let cl = long.get(hl, s);
    let cs = short.get(hs, s);
    long.insert(hl, s);
    short.insert(hs, s);
    let mut best: Option<(usize, usize)> = None;
    for c in [cl, cs].into_iter().flatten() {
        if load32(src, c) == x as u32 {
            let len = 4 + match_len(src, c + 4, s + 4);
            if best.is_none_or(|(_, l)| len > l) {
                best = Some((c, len));
            }
        }
    }
    best
}

/// Encodes `src` (at least [`super::MIN_COMPRESS`] bytes) into `out` after its varint.
pub(crate) fn encode(
    src: &[u8],
    out: &mut Out<'_>,
    short: &mut Table<'_>,
    long: &mut Table<'_>,
) -> Option<()> {
    let n = src.len();
    let limit = n - 8;
    let mut next_emit = 0;
    let mut repeat = 0;
    let mut s = 1;
    let x0 = load64(src, 0);
    long.insert(hash8(x0, long.bits), 0);
    short.insert(hash4(x0, short.bits), 0);
    while s <= limit {
        // The last offset first: when it matches, it is as cheap as a match gets.
        let mut found = None;
        if repeat > 0 && s >= repeat && load32(src, s - repeat) == load32(src, s) {
            let c = s - repeat;
            found = Some((c, 4 + match_len(src, c + 4, s + 4)));
        }
        if found.is_none() {
            found = probe(src, s, short, long);
            // Lazy: a clearly longer match one byte on is worth a literal byte.
            if let Some((_, len)) = found
                && s < limit
                && let Some((c1, len1)) = probe(src, s + 1, short, long)
                && len1 > len + 1
            {
                s += 1;
                found = Some((c1, len1));
            }
        }
        let Some((mut c, mut len)) = found else {
            s += 1 + ((s - next_emit) >> 6);
            continue;
        };
        while s > next_emit && c > 0 && src[s - 1] == src[c - 1] {
            s -= 1;
            c -= 1;
            len += 1;
        }
        out.literal(&src[next_emit..s])?;
        let offset = s - c;
        if offset == repeat {
            out.repeat(len)?;
        } else {
            out.copy(offset, len)?;
        }
        repeat = offset;
        let start = s;
        s += len;
        next_emit = s;
        // Index inside the match: its second byte and middle (long), and its end (both), so
        // the next copy of this text is found wherever it starts.
        let mid = start + len / 2;
        for p in [start + 1, mid, s.saturating_sub(2), s.saturating_sub(1)] {
            if p > start && p <= limit && p < s {
                let x = load64(src, p);
                long.insert(hash8(x, long.bits), p);
                short.insert(hash4(x, short.bits), p);
            }
        }
    }
    out.literal(&src[next_emit..])
}
