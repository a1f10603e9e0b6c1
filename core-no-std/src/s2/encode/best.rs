//! `s2_best`: hash chains over 4-byte sequences, every position indexed, candidates weighed by
//! the bytes they save (S2's cheap repeat included), and a lazy look-ahead of two positions.
//!
//! The chain is a ring of `1 << chain.bits` links, so a match reaches back that far (64 KiB
//! with the default tables; older candidates are simply not found). A search stops early at a
//! match of [`NICE`] bytes, which keeps long runs from turning quadratic.

use super::emit::{Out, copy_cost};
use super::{Table, hash, load64, match_len};

/// Candidates looked at per position.
const DEPTH: usize = 32;
/// A match this long is taken without looking further.
const NICE: usize = 258;

fn hash4(x: u64, bits: u32) -> usize {
    hash(x << 32, bits)
}

/// A candidate match: where it starts, how long, what it saves.
#[derive(Clone, Copy)]
struct Match {
    src: usize,
    len: usize,
    gain: isize,
}

struct Chains<'t, 'a, 'b> {
    head: &'t mut Table<'a>,
    chain: &'t mut Table<'b>,
    limit: usize,
    /// Positions below this are indexed (each exactly once, or its link would loop).
    next: usize,
}

impl Chains<'_, '_, '_> {
    fn insert(&mut self, src: &[u8], p: usize) {
        if p > self.limit || p < self.next {
            return;
        }
        self.next = p + 1;
        let h = hash4(load64(src, p), self.head.bits);
        let mask = (1usize << self.chain.bits) - 1;
        let prev = self.head.raw(h);
        self.chain.set_raw(p & mask, prev);
        self.head.insert(h, p);
    }

    /// The best match at `p` (before `p` is inserted), given the current repeat offset.
    fn find(&self, src: &[u8], p: usize, repeat: usize) -> Option<Match> {
        let n = src.len();
        let mut best: Option<Match> = None;
        let consider = |c: usize, best: &mut Option<Match>| {
            let bl = best.map_or(0, |m| m.len);
            // Cheap reject: a longer match must also differ nowhere at the current best end.
            if bl > 0 && (p + bl >= n || src[c + bl] != src[p + bl]) {
                return;
            }
            let len = match_len(src, c, p);
            if len < 4 {
                return;
            }
            let offset = p - c;
            let gain = len as isize - copy_cost(offset, len, offset == repeat) as isize;
            if best.is_none_or(|m| gain > m.gain) {
                *best = Some(Match { src: c, len, gain });
            }
        };
        if repeat > 0 && p >= repeat {
            consider(p - repeat, &mut best);
        }
        if p > self.limit {
            return best;
        }
        let mask = (1usize << self.chain.bits) - 1;
        let window = 1usize << self.chain.bits;
        let base = self.head.base();
        let mut v = self.head.raw(hash4(load64(src, p), self.head.bits));
        let mut last = p;
        for _ in 0..DEPTH {
            let Some(c) = v.checked_sub(base).map(|c| c as usize) else {
                break;
            };
            // Entries only ever point backwards; anything else is left over from a
            // position the ring has since reused.
            if c >= last || p - c >= window {
                break;
            }
            if p - c != repeat {
                consider(c, &mut best);
            }
            if best.is_some_and(|m| m.len >= NICE) {
                break;
            }
            last = c;
            v = self.chain.raw(c & mask);
        }
        best
    }
}

/// Encodes `src` (at least [`super::MIN_COMPRESS`] bytes) into `out` after its varint.
pub(crate) fn encode(
    src: &[u8],
    out: &mut Out<'_>,
    head: &mut Table<'_>,
    chain: &mut Table<'_>,
) -> Option<()> {
    let n = src.len();
    let mut ch = Chains {
        head,
        chain,
        limit: n - 8,
        next: 0,
    };
    let mut next_emit = 0;
    let mut repeat = 0;
    let mut s = 0;
    // A match must leave room for nothing in particular, but must save at least 2 bytes: a
    // 1-byte gain is eaten by the literal tag the split costs.
    while s + 4 <= n {
        let Some(mut m) = ch.find(src, s, repeat).filter(|m| m.gain > 1) else {
            ch.insert(src, s);
            s += 1;
            continue;
        };
        ch.insert(src, s);
        // Lazy: a later start that saves more than the literal bytes it leaves behind.
        for _ in 0..2 {
            if s + 1 + 4 > n {
                break;
            }
            match ch.find(src, s + 1, repeat) {
                Some(m1) if m1.gain > m.gain + 1 => {
                    s += 1;
                    ch.insert(src, s);
                    m = m1;
                }
                _ => break,
            }
        }
        let mut c = m.src;
        let mut len = m.len;
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
        let end = s + len;
        for p in s + 1..end {
            ch.insert(src, p);
        }
        s = end;
        next_emit = s;
    }
    out.literal(&src[next_emit..])
}
