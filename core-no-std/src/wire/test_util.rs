//! Test helpers: a caller that feeds a parser in chunks the way a connection's reader does
//! (append, parse until it needs more, drop what was consumed), and a seeded RNG.

extern crate std;

use std::format;
use std::string::String;
use std::vec::Vec;

use super::{Limits, Mode, Op, ParseError, Parser};

/// What a run produced: each op (as its `Debug` text, which shows every field) with the
/// exact bytes it was parsed from, then the error that stopped the run, if any, and the
/// bytes left unconsumed (0 after an error: how much had arrived when the error was seen
/// depends on the reads, which is the point of finding errors early).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) ops: Vec<(String, Vec<u8>)>,
    pub(crate) error: Option<ParseError>,
    pub(crate) leftover: usize,
}

/// Feeds `chunks` one after another into a fresh parser, as a reader would.
pub(crate) fn run<'c>(
    mode: Mode,
    limits: Limits,
    chunks: impl IntoIterator<Item = &'c [u8]>,
) -> Run {
    let mut parser = Parser::new(mode, limits);
    let mut buf: Vec<u8> = Vec::new();
    let mut ops = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&buf) {
                Ok(Some((op, n))) => {
                    ops.push((format!("{op:?}"), buf[..n].to_vec()));
                    buf.drain(..n);
                }
                Ok(None) => break,
                Err(e) => {
                    return Run {
                        ops,
                        error: Some(e),
                        leftover: 0,
                    };
                }
            }
        }
    }
    Run {
        ops,
        error: None,
        leftover: buf.len(),
    }
}

/// The stream whole, in one read.
pub(crate) fn run_whole(mode: Mode, limits: Limits, stream: &[u8]) -> Run {
    run(mode, limits, [stream])
}

/// Checks that splitting `stream` into two reads at every byte, and feeding it one byte at
/// a time, gives exactly the run of the whole stream; returns that run.
pub(crate) fn assert_split_invariant(mode: Mode, limits: Limits, stream: &[u8]) -> Run {
    let whole = run_whole(mode, limits, stream);
    for at in 0..=stream.len() {
        let (a, b) = stream.split_at(at);
        let split = run(mode, limits, [a, b]);
        assert_eq!(split, whole, "split at byte {at} changed the result");
    }
    let bytewise = run(mode, limits, stream.chunks(1));
    assert_eq!(
        bytewise, whole,
        "feeding one byte at a time changed the result"
    );
    whole
}

/// Parses `bytes`, which must be exactly one op.
pub(crate) fn one(mode: Mode, bytes: &[u8]) -> Result<Op<'_>, ParseError> {
    let mut p = Parser::new(mode, Limits::default());
    match p.parse(bytes)? {
        Some((op, n)) => {
            assert_eq!(n, bytes.len(), "the op should take all of {bytes:?}");
            Ok(op)
        }
        None => panic!("incomplete: {:?}", String::from_utf8_lossy(bytes)),
    }
}

/// Encodes `op` into a fresh vector, checking `encoded_len` agrees.
pub(crate) fn encode(op: &Op<'_>) -> Vec<u8> {
    let mut out = std::vec![0u8; op.encoded_len()];
    let n = op.encode(&mut out).expect("encodes");
    assert_eq!(n, out.len(), "encoded_len agrees with encode");
    out
}

pub(crate) use crate::testing::Rng;
