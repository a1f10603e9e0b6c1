//! The S2 codec: round trips at every level, reads split at every byte, hand-made streams
//! that use each element form, and every kind of bad input getting its error.

extern crate std;

use std::vec;
use std::vec::Vec;

use super::encode::emit::Out;
use super::mode::{LeafPlan, Mode, Thresholds, leaf_plan, select};
use super::*;
use crate::testing::{Rng, sensor_backlog};

const LEVELS: [Level; 4] = [Level::Uncompressed, Level::Fast, Level::Better, Level::Best];

fn encoder(level: Level) -> Encoder<Vec<u32>> {
    Encoder::new(level, vec![0u32; tables_len(Level::Best)])
}

fn compress(level: Level, plain: &[u8]) -> Vec<u8> {
    let mut e = encoder(level);
    let mut out = Vec::new();
    e.encode_to_vec(plain, &mut out).unwrap();
    out
}

/// Decodes a whole stream through `feed`, in pieces of the given sizes (cycled).
fn decode_in_pieces(stream: &[u8], pieces: &[usize], max: usize) -> Result<Vec<u8>, DecodeError> {
    let mut d = Decoder::new(vec![0u8; max]);
    let mut plain = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < stream.len() {
        let end = (pos + pieces[k % pieces.len()].max(1)).min(stream.len());
        k += 1;
        let mut input = &stream[pos..end];
        loop {
            let f = d.feed(input)?;
            plain.extend_from_slice(f.plain);
            input = &input[f.consumed..];
            if f.consumed == 0 && f.plain.is_empty() {
                break;
            }
        }
        pos = end;
    }
    if !d.is_idle() {
        return Err(DecodeError::Corrupt(
            "(test) the stream ended inside a chunk",
        ));
    }
    Ok(plain)
}

fn decode(stream: &[u8]) -> Result<Vec<u8>, DecodeError> {
    decode_in_pieces(stream, &[usize::MAX], MAX_BLOCK_SIZE)
}

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = Rng::new(7);
    let random: Vec<u8> = (0..70_000).map(|_| rng.next_u64() as u8).collect();
    let mut text = Vec::new();
    while text.len() < 200_000 {
        text.extend_from_slice(
            b"PUB sensors.a 5\r\nhello\r\nPING\r\nLMSG x.y.z _INBOX.1 2\r\nok\r\n",
        );
        text.extend_from_slice(std::format!("{}", rng.next_u64() % 1000).as_bytes());
    }
    vec![
        ("empty", Vec::new()),
        ("one byte", b"x".to_vec()),
        ("ping", b"PING\r\n".to_vec()),
        ("17 bytes", b"abcdefghabcdefgha".to_vec()),
        ("zeros", vec![0u8; 300_000]),
        ("period 3", b"abc".repeat(40_000)),
        ("random", random),
        ("protocol text", text),
        ("sensor backlog", sensor_backlog(&mut rng, 1, 2000)),
    ]
}

#[test]
fn every_level_round_trips() {
    for (name, plain) in samples() {
        for level in LEVELS {
            let stream = compress(level, &plain);
            assert_eq!(&stream[..10], STREAM_IDENTIFIER);
            let back = decode(&stream).unwrap_or_else(|e| panic!("{name} {level:?}: {e}"));
            assert!(back == plain, "{name} at {level:?} did not round-trip");
        }
    }
}

#[test]
fn compressed_sizes_are_sane() {
    let mut rng = Rng::new(1);
    let backlog = sensor_backlog(&mut rng, 1, 3000);
    let mut last = usize::MAX / 2;
    for level in [Level::Fast, Level::Better, Level::Best] {
        let n = compress(level, &backlog).len();
        // Each level at least as good as the one before (within 1%), all well below plain.
        assert!(n < backlog.len() / 2, "{level:?}: {n} of {}", backlog.len());
        assert!(n <= last + last / 100, "{level:?}: {n} worse than {last}");
        last = n;
    }
    // Incompressible input costs only the framing.
    let random: Vec<u8> = (0..100_000).map(|_| rng.next_u64() as u8).collect();
    for level in LEVELS {
        let n = compress(level, &random).len();
        assert!(n <= random.len() + 10 + 2 * 8, "{level:?}: {n}");
    }
}

#[test]
fn split_at_every_byte_gives_the_same_output() {
    let mut rng = Rng::new(3);
    let plain = sensor_backlog(&mut rng, 10, 12);
    for level in LEVELS {
        let stream = compress(level, &plain);
        for cut in 0..=stream.len() {
            let mut d = Decoder::new(vec![0u8; 4096]);
            let mut out = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                let mut input = part;
                loop {
                    let f = d.feed(input).unwrap();
                    out.extend_from_slice(f.plain);
                    input = &input[f.consumed..];
                    if f.consumed == 0 && f.plain.is_empty() {
                        break;
                    }
                }
            }
            assert!(out == plain, "{level:?} split at {cut}");
        }
        // Byte by byte.
        assert!(decode_in_pieces(&stream, &[1], 4096).unwrap() == plain);
    }
}

#[test]
fn random_splits_and_small_reads_of_large_streams() {
    let mut rng = Rng::new(11);
    for (name, plain) in samples() {
        let stream = compress(Level::Better, &plain);
        let pieces: Vec<usize> = (0..64).map(|_| 1 + rng.below(3000)).collect();
        let back = decode_in_pieces(&stream, &pieces, 1 << 17).unwrap();
        assert!(back == plain, "{name}");
        // Through `read` with a small output buffer.
        let mut d = Decoder::new(vec![0u8; 1 << 17]);
        let mut out = Vec::new();
        let mut buf = [0u8; 333];
        let mut input = &stream[..];
        loop {
            let (used, n) = d.read(input, &mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
            input = &input[used..];
            if used == 0 && n == 0 {
                break;
            }
        }
        assert!(out == plain, "{name} through read()");
    }
}

#[test]
fn many_flushes_make_one_stream() {
    // One `encode` per flush, as the uplink writer does; the identifier comes only once.
    let mut rng = Rng::new(5);
    let mut e = encoder(Level::Best);
    let mut stream = Vec::new();
    let mut plain = Vec::new();
    for i in 0..300 {
        let count = 1 + rng.below(4);
        let msg = sensor_backlog(&mut rng, i, count);
        e.encode_to_vec(&msg, &mut stream).unwrap();
        plain.extend_from_slice(&msg);
        if i == 150 {
            e.set_level(Level::Fast);
        }
    }
    assert_eq!(
        stream
            .windows(10)
            .filter(|w| w == STREAM_IDENTIFIER)
            .count(),
        1
    );
    assert!(decode(&stream).unwrap() == plain);
    assert_eq!(e.totals(), (plain.len() as u64, stream.len() as u64));
    // nats-server's writer starts a new stream per flush: repeated identifiers are fine.
    let mut twice = compress(Level::Fast, b"first flush, long enough to compress first");
    twice.extend(compress(Level::Fast, b"second"));
    assert_eq!(
        decode(&twice).unwrap(),
        b"first flush, long enough to compress firstsecond"
    );
}

#[test]
fn table_base_wraps_without_stale_matches() {
    let mut e = Encoder::new(Level::Fast, vec![0u32; tables_len(Level::Fast)]);
    let mut stream = Vec::new();
    let a = vec![b'a'; 100];
    e.encode_to_vec(&a, &mut stream).unwrap();
    // Push the base near the top, so the next block wraps it and clears the tables.
    e.base = u32::MAX - 50;
    let b = b"different text that must not match old positions".repeat(3);
    e.encode_to_vec(&b, &mut stream).unwrap();
    let mut want = a.clone();
    want.extend_from_slice(&b);
    assert!(decode(&stream).unwrap() == want);
}

/// A hand-built block that uses every element form, checked against what it must decode to.
#[test]
fn every_element_form_decodes() {
    let mut buf = vec![0u8; 200_000];
    let mut out = Out::new(&mut buf);
    let mut want = Vec::new();
    out.varint(0).unwrap(); // patched below
    let lit: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    // Literals of every length class.
    for n in [1usize, 60, 61, 256, 257, 65_536, 65_537] {
        out.literal(&lit[..n]).unwrap();
        want.extend_from_slice(&lit[..n]);
    }
    // Copies of every form, then repeats of every length class.
    for (offset, len) in [
        (1usize, 4usize),
        (7, 11),
        (2047, 11),
        (100, 12),
        (100, 64),
        (100, 65),
        (2048, 64),
        (3000, 65),
        (3000, 67),
        (3000, 100),
        (65_535, 64),
        (65_536, 4),
        (70_000, 64),
        (70_000, 1000),
    ] {
        out.copy(offset, len).unwrap();
        for _ in 0..len {
            want.push(want[want.len() - offset]);
        }
        for r in [4usize, 8, 9, 263, 264, 1000] {
            out.repeat(r).unwrap();
            for _ in 0..r {
                want.push(want[want.len() - offset]);
            }
        }
    }
    out.copy(1, 70_000).unwrap();
    for _ in 0..70_000 {
        want.push(want[want.len() - 1]);
    }
    let n = out.pos;
    // Rebuild with the right varint in front.
    let mut block = Vec::new();
    let mut v = [0u8; 5];
    let mut o = Out::new(&mut v);
    o.varint(want.len() as u32).unwrap();
    let hdr = o.pos;
    block.extend_from_slice(&v[..hdr]);
    block.extend_from_slice(&buf[1..n]);
    let mut plain = vec![0u8; want.len()];
    assert_eq!(decode_block(&block, &mut plain).unwrap(), want.len());
    assert!(plain == want);
    // The same block in a stream, decoded byte by byte.
    let mut stream = STREAM_IDENTIFIER.to_vec();
    push_chunk(&mut stream, 0x00, masked_crc(&want), &block);
    assert!(decode_in_pieces(&stream, &[1, 2, 3, 5, 7], 1 << 20).unwrap() == want);
}

/// Repeat lengths around every boundary of the encoding.
#[test]
fn repeat_lengths_round_trip() {
    for len in (4..600).chain([65_795, 65_796, 65_800, 200_000]) {
        let mut buf = vec![0u8; 64];
        let mut o = Out::new(&mut buf);
        o.varint((len + 1 + 4) as u32).unwrap();
        o.literal(b"x").unwrap();
        o.copy(1, 4).unwrap();
        o.repeat(len).unwrap();
        let n = o.pos;
        let mut plain = vec![0u8; len + 5];
        assert_eq!(
            decode_block(&buf[..n], &mut plain),
            Ok(len + 5),
            "len {len}"
        );
        assert!(plain.iter().all(|&b| b == b'x'));
    }
}

fn push_chunk(stream: &mut Vec<u8>, kind: u8, crc: u32, body: &[u8]) {
    let len = (body.len() + 4) as u32;
    stream.push(kind);
    stream.extend_from_slice(&len.to_le_bytes()[..3]);
    stream.extend_from_slice(&crc.to_le_bytes());
    stream.extend_from_slice(body);
}

#[test]
fn skippable_padding_and_snappy_streams() {
    let mut s = STREAM_IDENTIFIER.to_vec();
    s.extend_from_slice(&[0xfe, 3, 0, 0, 0, 0, 0]); // padding
    s.extend_from_slice(&[0x99, 0, 0, 0]); // empty S2 index chunk
    s.extend_from_slice(&[0x80, 2, 0, 0, 1, 2]);
    push_chunk(&mut s, 0x01, masked_crc(b"plain"), b"plain");
    // A Snappy stream identifier, then a Snappy block.
    s.extend_from_slice(b"\xff\x06\x00\x00sNaPpY");
    let block = [5u8, 4 << 2, b'h', b'e', b'l', b'l', b'o'];
    push_chunk(&mut s, 0x00, masked_crc(b"hello"), &block);
    assert_eq!(decode_in_pieces(&s, &[1], 1024).unwrap(), b"plainhello");
}

#[test]
fn bad_input_gets_its_error() {
    let good = compress(
        Level::Fast,
        &b"some text some text some text some text".repeat(4),
    );
    let at = |s: &[u8]| decode_in_pieces(s, &[3], 1 << 16).unwrap_err();

    assert_eq!(
        at(b"\x00\x05\x00\x00abcde"),
        DecodeError::NoStreamIdentifier
    );
    assert_eq!(
        at(b"\xff\x06\x00\x00S2sTwX"),
        DecodeError::BadStreamIdentifier
    );
    assert_eq!(
        at(b"\xff\x05\x00\x00S2sTw"),
        DecodeError::BadStreamIdentifier
    );
    let mut s = STREAM_IDENTIFIER.to_vec();
    s.extend_from_slice(&[0x42, 0, 0, 0]);
    assert_eq!(at(&s), DecodeError::UnsupportedChunk(0x42));

    // A flipped bit in the data: a CRC error or a corrupt block, never wrong output.
    for i in 18..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        match decode_in_pieces(&bad, &[7], 1 << 16) {
            Err(DecodeError::Crc { .. } | DecodeError::Corrupt(_)) => {}
            other => panic!("flip at {i}: {other:?}"),
        }
    }
    // A flipped checksum bit is exactly a CRC error.
    let mut bad = good.clone();
    bad[14] ^= 1;
    assert!(matches!(at(&bad), DecodeError::Crc { .. }));
    let mut bad = STREAM_IDENTIFIER.to_vec();
    push_chunk(&mut bad, 0x01, masked_crc(b"abc") ^ 1, b"abc");
    let e = at(&bad);
    assert!(matches!(e, DecodeError::Crc { .. }));
    assert!(std::format!("{e}").contains("crc mismatch"));

    // Bigger than the buffer: refused before anything is decoded.
    let big = compress(Level::Fast, &vec![7u8; 5000]);
    let e = decode_in_pieces(&big, &[100], 4096).unwrap_err();
    assert_eq!(
        e,
        DecodeError::BlockTooLarge {
            len: 5000,
            max: 4096
        }
    );
    let mut raw = STREAM_IDENTIFIER.to_vec();
    push_chunk(&mut raw, 0x01, 0, &[0u8; 5000]);
    assert!(matches!(
        decode_in_pieces(&raw, &[100], 4096),
        Err(DecodeError::BlockTooLarge { .. })
    ));
    // A data chunk too short for its checksum.
    let mut s = STREAM_IDENTIFIER.to_vec();
    s.extend_from_slice(&[0x00, 3, 0, 0, 1, 2, 3]);
    assert!(matches!(at(&s), DecodeError::Corrupt(_)));
    // Corrupt blocks: a copy before any output, a repeat with no offset, a short block.
    for block in [&[4u8, 1, 1][..], &[4, 1, 0], &[9, 4, b'a', b'b']] {
        let mut s = STREAM_IDENTIFIER.to_vec();
        push_chunk(&mut s, 0x00, 0, block);
        assert!(matches!(at(&s), DecodeError::Corrupt(_)), "{block:?}");
    }
    // The error sticks.
    let mut d = Decoder::new(vec![0u8; 64]);
    assert!(d.feed(b"\x00\x05\x00\x00").is_err());
    assert!(d.feed(STREAM_IDENTIFIER).is_err());
}

#[test]
fn random_garbage_and_mutations_never_panic() {
    let mut rng = Rng::new(99);
    let good = compress(Level::Best, &sensor_backlog(&mut rng, 1, 40));
    for round in 0..3000 {
        let mut s = if round % 3 == 0 {
            let mut s = STREAM_IDENTIFIER.to_vec();
            s.extend((0..rng.below(300)).map(|_| rng.next_u64() as u8));
            s
        } else {
            good.clone()
        };
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(s.len());
            s[i] = rng.next_u64() as u8;
        }
        let pieces = [1 + rng.below(50), 1 + rng.below(5)];
        let _ = decode_in_pieces(&s, &pieces, 1 << 12);
        let mut out = vec![0u8; 1 << 12];
        let _ = decode_block(&s[10..], &mut out);
    }
}

#[test]
fn small_tables_still_work() {
    let mut rng = Rng::new(4);
    let plain = sensor_backlog(&mut rng, 1, 500);
    for level in LEVELS {
        for slots in [0usize, 100, 256, 1000, 5000] {
            let mut e = Encoder::new(level, vec![0u32; slots]);
            let mut out = Vec::new();
            e.encode_to_vec(&plain, &mut out).unwrap();
            assert!(
                decode(&out).unwrap() == plain,
                "{level:?} with {slots} slots"
            );
        }
    }
    // And on the stack, as on an MCU.
    let mut tables = [0u32; 1024];
    let mut e = Encoder::new(Level::Fast, &mut tables[..]);
    let mut out = [0u8; 2048];
    let msg = &plain[..1500];
    let n = e.encode(msg, &mut out).unwrap();
    assert!(n < msg.len());
    assert_eq!(
        e.encode(msg, &mut out[..100]),
        Err(EncodeError::OutputTooSmall { needed: 1508 })
    );
    let mut d = Decoder::new([0u8; 2048]);
    let f = d.feed(&out[..n]).unwrap();
    assert_eq!(f.plain, msg);
}

#[test]
fn modes_parse_and_negotiate_as_nats_server() {
    assert_eq!(Mode::parse_config("ON"), Some(Mode::Auto));
    assert_eq!(Mode::parse_config("s2_Best"), Some(Mode::Best));
    assert_eq!(Mode::parse_config("disabled"), Some(Mode::Off));
    assert_eq!(
        Mode::parse_config("not_supported"),
        Some(Mode::NotSupported)
    );
    assert_eq!(Mode::parse_config("zstd"), None);
    assert_eq!(Mode::from_wire("s2_auto"), Some(Mode::Auto));
    assert_eq!(Mode::from_wire("S2_AUTO"), None);

    assert_eq!(select(Mode::Auto, None), Ok(Mode::NotSupported));
    assert_eq!(select(Mode::Auto, Some("off")), Ok(Mode::Off));
    assert_eq!(select(Mode::Accept, Some("accept")), Ok(Mode::Off));
    assert_eq!(select(Mode::Best, Some("accept")), Ok(Mode::Best));
    assert_eq!(select(Mode::Accept, Some("s2_auto")), Ok(Mode::Fast));
    assert_eq!(select(Mode::Accept, Some("s2_better")), Ok(Mode::Better));
    assert_eq!(select(Mode::Fast, Some("s2_best")), Ok(Mode::Fast));
    assert!(select(Mode::Fast, Some("lz4")).is_err());

    let t = Thresholds::default();
    let ms = core::time::Duration::from_millis;
    assert_eq!(t.level_for(ms(0)), Level::Uncompressed);
    assert_eq!(t.level_for(ms(10)), Level::Uncompressed);
    assert_eq!(t.level_for(ms(11)), Level::Fast);
    assert_eq!(t.level_for(ms(100)), Level::Better);
    assert_eq!(t.level_for(ms(600)), Level::Best);
    let custom = Thresholds::new(&[ms(0), ms(0), ms(20)]).unwrap();
    assert_eq!(custom.level_for(ms(5)), Level::Better);
    assert_eq!(custom.level_for(ms(25)), Level::Best);
    assert_eq!(
        Thresholds::new(&[ms(5)]).unwrap().level_for(ms(50)),
        Level::Uncompressed
    );
    assert!(Thresholds::new(&[ms(20), ms(10)]).is_err());
    assert!(Thresholds::new(&[ms(0), ms(0)]).is_err());
    assert!(Thresholds::new(&[ms(1), ms(2), ms(3), ms(4), ms(5)]).is_err());

    // The leaf's side, as observed with a scripted hub (reference 2.11).
    let plan = |ours, hub| leaf_plan(ours, &t, hub, ms(200)).unwrap();
    assert_eq!(
        plan(Mode::Auto, None),
        LeafPlan::Plain {
            connect: Mode::NotSupported
        }
    );
    assert_eq!(
        plan(Mode::Off, Some("s2_auto")),
        LeafPlan::Plain { connect: Mode::Off }
    );
    assert_eq!(
        plan(Mode::Auto, Some("off")),
        LeafPlan::Plain { connect: Mode::Off }
    );
    assert_eq!(
        plan(Mode::Auto, Some("s2_auto")),
        LeafPlan::Compress {
            info: Mode::Auto,
            level: Level::Best,
            connect: Mode::Best
        }
    );
    assert_eq!(
        leaf_plan(Mode::Auto, &t, Some("s2_auto"), ms(1)).unwrap(),
        LeafPlan::Compress {
            info: Mode::Auto,
            level: Level::Uncompressed,
            connect: Mode::Uncompressed
        }
    );
    assert_eq!(
        plan(Mode::Fast, Some("s2_auto")),
        LeafPlan::Compress {
            info: Mode::Fast,
            level: Level::Fast,
            connect: Mode::Fast
        }
    );
}

/// Streams nats-server 2.15.1 wrote (`testdata/s2/`, see its README): decoded length and
/// CRC-32C of the plain text, and how it starts.
type Capture = (&'static str, &'static [u8], usize, u32, &'static [u8]);
const CAPTURES: [Capture; 6] = [
    (
        "s2_auto-up",
        include_bytes!("../../testdata/s2/s2_auto-up.s2"),
        14418,
        0x0E3E_8E08,
        b"CONNECT {",
    ),
    (
        "s2_best-down",
        include_bytes!("../../testdata/s2/s2_best-down.s2"),
        1130,
        0x64BA_7509,
        b"INFO {",
    ),
    (
        "s2_best-up",
        include_bytes!("../../testdata/s2/s2_best-up.s2"),
        593_751,
        0x2AF8_BDE2,
        b"CONNECT {",
    ),
    (
        "s2_better-up",
        include_bytes!("../../testdata/s2/s2_better-up.s2"),
        593_753,
        0x2E36_ADDD,
        b"CONNECT {",
    ),
    (
        "s2_fast-down",
        include_bytes!("../../testdata/s2/s2_fast-down.s2"),
        594_391,
        0xECAD_8179,
        b"INFO {",
    ),
    (
        "s2_fast-up",
        include_bytes!("../../testdata/s2/s2_fast-up.s2"),
        14410,
        0x009E_EB72,
        b"CONNECT {",
    ),
];

#[test]
fn nats_server_streams_decode() {
    use crate::wire::{Limits, Mode as WireMode, Parser};
    let mut rng = Rng::new(8);
    for (name, stream, len, crc, start) in CAPTURES {
        let plain = decode(stream).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((plain.len(), crc32c(&plain)), (len, crc), "{name}");
        assert!(plain.starts_with(start), "{name}");
        let mut p = Parser::new(WireMode::Leaf, Limits::default().for_server_link());
        let mut ops = p.ops(&plain);
        let mut n = 0;
        for op in &mut ops {
            op.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            n += 1;
        }
        assert_eq!(ops.consumed(), plain.len(), "{name}: ends inside an op");
        assert!(n > 10, "{name}: {n} ops");
        // Split anywhere: byte by byte for the first 3000 bytes, random pieces for all.
        let head = &stream[..stream.len().min(3000)];
        let mut d = Decoder::new(vec![0u8; 1 << 20]);
        let mut out = Vec::new();
        for b in head {
            let f = d.feed(core::slice::from_ref(b)).unwrap();
            assert!(f.consumed == 1);
            out.extend_from_slice(f.plain);
        }
        assert!(plain.starts_with(&out), "{name}: byte by byte");
        let pieces: Vec<usize> = (0..50).map(|_| 1 + rng.below(5000)).collect();
        assert!(
            decode_in_pieces(stream, &pieces, 1 << 20).unwrap() == plain,
            "{name}"
        );
        // Our encoder on the same text decodes to it too, at every level.
        for level in LEVELS {
            assert!(
                decode(&compress(level, &plain)).unwrap() == plain,
                "{name} {level:?}"
            );
        }
    }
}
