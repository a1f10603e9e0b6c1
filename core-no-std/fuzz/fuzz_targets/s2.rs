//! The S2 codec. Decoding: never panics on any bytes, whatever the buffer size; the same
//! output and the same error whether the stream comes whole, split in two anywhere, or
//! through small `read` calls. Encoding: the input, cut into flushes anywhere and encoded at
//! any level with any table size and block size, decodes back to itself exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twig_core::s2::{DecodeError, Decoder, Encoder, Level, STREAM_IDENTIFIER, decode_block};

/// Everything `feed` hands out for `reads`, and the error that stopped it.
fn feed_all(max: usize, reads: &[&[u8]]) -> (Vec<u8>, Option<DecodeError>) {
    let mut d = Decoder::new(vec![0u8; max]);
    let mut out = Vec::new();
    for read in reads {
        let mut input = *read;
        loop {
            match d.feed(input) {
                Ok(f) => {
                    assert!(f.consumed <= input.len());
                    out.extend_from_slice(f.plain);
                    input = &input[f.consumed..];
                    if f.consumed == 0 && f.plain.is_empty() {
                        break;
                    }
                }
                Err(e) => {
                    // The error sticks.
                    assert_eq!(d.feed(b"x").err(), Some(e));
                    return (out, Some(e));
                }
            }
        }
        assert!(input.is_empty());
    }
    (out, None)
}

fn read_all(max: usize, stream: &[u8], out_len: usize) -> (Vec<u8>, Option<DecodeError>) {
    let mut d = Decoder::new(vec![0u8; max]);
    let mut out = Vec::new();
    let mut buf = vec![0u8; out_len.max(1)];
    let mut input = stream;
    loop {
        match d.read(input, &mut buf) {
            Ok((used, n)) => {
                out.extend_from_slice(&buf[..n]);
                input = &input[used..];
                if used == 0 && n == 0 {
                    return (out, None);
                }
            }
            Err(e) => return (out, Some(e)),
        }
    }
}

fn decode_checks(data: &[u8], cut: usize, max: usize, out_len: usize) {
    let mut stream = Vec::with_capacity(data.len() + 10);
    // Mostly give the decoder a proper start, so the fuzzer reaches the chunks.
    if data.first().is_some_and(|b| b & 1 == 0) {
        stream.extend_from_slice(STREAM_IDENTIFIER);
    }
    stream.extend_from_slice(data);
    let whole = feed_all(max, &[&stream]);
    let cut = cut % (stream.len() + 1);
    let split = feed_all(max, &[&stream[..cut], &stream[cut..]]);
    assert_eq!(whole, split, "split at {cut}");
    let read = read_all(max, &stream, out_len);
    assert_eq!(whole, read, "read() into {out_len} bytes");
    let mut block = vec![0u8; max];
    let _ = decode_block(data, &mut block);
}

fn round_trip(data: &[u8], sel: u64) {
    let level = [Level::Uncompressed, Level::Fast, Level::Better, Level::Best][(sel & 3) as usize];
    let slots = [0usize, 300, 4096, 1 << 15, 200_000][((sel >> 2) % 5) as usize];
    let block = [4096usize, 65_536, 1 << 20][((sel >> 5) % 3) as usize];
    let mut e = Encoder::new(level, vec![0u32; slots]).with_block_size(block);
    let mut stream = Vec::new();
    let mut rest = data;
    let mut s = sel >> 8;
    while !rest.is_empty() {
        let n = ((s % 997) as usize + 1).min(rest.len());
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 3;
        e.encode_to_vec(&rest[..n], &mut stream).expect("encode_to_vec sizes its output");
        rest = &rest[n..];
    }
    let (back, err) = feed_all(1 << 20, &[&stream]);
    assert_eq!(err, None);
    assert!(back == data, "round trip at {level:?}, {slots} slots, {block} B blocks");
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 9 {
        return;
    }
    let sel = u64::from_le_bytes(input[1..9].try_into().unwrap());
    let data = &input[9..];
    if input[0] & 1 == 0 {
        let max = [16usize, 300, 4096, 70_000][((sel >> 1) & 3) as usize];
        decode_checks(data, (sel >> 8) as usize, max, ((sel >> 40) % 700) as usize);
    } else {
        round_trip(data, sel);
    }
});
