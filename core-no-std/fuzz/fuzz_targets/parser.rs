//! The wire parser: never panics; the same ops (and the same error) whether the bytes come in
//! one read or split in two anywhere; every parsed op re-encodes to bytes that parse back to
//! the same op.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twig_core::wire::{Limits, Mode, Op, ParseError, Parser};

/// Ops as re-encoded bytes (owned, so reads can be compared) and the final error, if any.
fn run(mode: Mode, limits: Limits, reads: &[&[u8]]) -> (Vec<Vec<u8>>, Option<ParseError>) {
    let mut parser = Parser::new(mode, limits);
    let mut buf: Vec<u8> = Vec::new();
    let mut ops = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        let mut start = 0;
        loop {
            match parser.parse(&buf[start..]) {
                Ok(Some((op, used))) => {
                    assert!(used > 0 && used <= buf.len() - start);
                    ops.push(encode(&op));
                    start += used;
                }
                Ok(None) => break,
                Err(e) => return (ops, Some(e)),
            }
        }
        buf.drain(..start);
    }
    (ops, None)
}

fn encode(op: &Op<'_>) -> Vec<u8> {
    let mut out = vec![0u8; op.encoded_len()];
    let n = op.encode(&mut out).expect("a parsed op encodes");
    assert_eq!(n, out.len(), "encoded_len is exact for {op:?}");
    out
}

fuzz_target!(|data: &[u8]| {
    let [m, l, cut, rest @ ..] = data else { return };
    let mode = [Mode::FromClient, Mode::FromServer, Mode::Leaf][usize::from(*m % 3)];
    // Small limits too, so the limit paths are reached with short inputs.
    let limits = Limits {
        max_control_line: 8 + usize::from(*l) * 4,
        max_payload: usize::from(*l) * 16,
    };
    let (whole_ops, whole_err) = run(mode, limits, &[rest]);
    let k = usize::from(*cut) * rest.len() / 255;
    let (a, b) = rest.split_at(k.min(rest.len()));
    let (split_ops, split_err) = run(mode, limits, &[a, b]);
    assert_eq!(whole_ops, split_ops, "split at {k} changed the ops");
    assert_eq!(whole_err, split_err, "split at {k} changed the error");

    // Canonical bytes parse back to the same op and encode to themselves.
    let wide = Limits {
        max_control_line: 1 << 20,
        max_payload: 1 << 20,
    };
    for bytes in &whole_ops {
        let mut p = Parser::new(mode, wide);
        let (op, used) = p.parse(bytes).expect("canonical bytes parse").expect("whole op");
        assert_eq!(used, bytes.len());
        assert_eq!(&encode(&op), bytes);
    }
});
