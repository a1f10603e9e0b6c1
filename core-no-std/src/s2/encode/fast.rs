//! `s2_fast`: greedy matching with one hash table of 6-byte sequences and S2 repeats.
//!
//! At each position the previous match's offset is tried first (a hit costs a 2-5 byte
//! repeat), then the table. Misses move forward faster the longer nothing matched, so
//! incompressible input costs little time (it is then stored as an uncompressed chunk).

use super::emit::Out;
use super::{Table, load32, load64, match_len};

/// Encodes `src` (at least [`super::MIN_COMPRESS`] bytes) into `out` after its varint.
pub(crate) fn encode(src: &[u8], out: &mut Out<'_>, table: &mut Table<'_>) -> Option<()> {
    let n = src.len();
    // Positions where an 8-byte load stays inside the block.
    let limit = n - 8;
    let mut next_emit = 0;
    let mut repeat = 0;
    let mut s = 1;
    table.insert(hash6(load64(src, 0), table.bits), 0);
    while s <= limit {
        let x = load64(src, s);
        let mut cand = None;
        if repeat > 0 && s >= repeat && load32(src, s - repeat) == x as u32 {
            cand = Some(s - repeat);
        } else {
            let h = hash6(x, table.bits);
            let c = table.get(h, s);
            table.insert(h, s);
            if let Some(c) = c
                && load32(src, c) == x as u32
            {
                cand = Some(c);
            }
        }
        let Some(mut c) = cand else {
            s += 1 + ((s - next_emit) >> 5);
            continue;
        };
        // Grow the match backwards into the pending literals, then forwards.
        while s > next_emit && c > 0 && src[s - 1] == src[c - 1] {
            s -= 1;
            c -= 1;
        }
        let len = 4 + match_len(src, c + 4, s + 4);
        out.literal(&src[next_emit..s])?;
        let offset = s - c;
        if offset == repeat {
            out.repeat(len)?;
        } else {
            out.copy(offset, len)?;
        }
        repeat = offset;
        s += len;
        next_emit = s;
        // Index the match's last positions: the next message often starts where it ends.
        if s <= limit {
            for p in [s - 2, s - 1] {
                table.insert(hash6(load64(src, p), table.bits), p);
            }
        }
    }
    out.literal(&src[next_emit..])
}

/// A hash of the low 6 bytes of `x` into `bits` bits.
pub(crate) fn hash6(x: u64, bits: u32) -> usize {
    super::hash(x << 16, bits)
}
