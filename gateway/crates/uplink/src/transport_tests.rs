//! The layers with input split at every byte, and the writer's batches back through them.
use super::*;
use twig_core::s2::NATS_BLOCK_SIZE;

/// Feeds `wire` to `layers` in pieces of `piece` bytes, pulling into outputs of `out` bytes;
/// returns the NATS bytes and the pings seen.
fn drain(layers: &mut ReadLayers, wire: &[u8], piece: usize, out: usize) -> (Vec<u8>, usize) {
    let mut got = Vec::new();
    let mut pings = 0;
    let mut buf = vec![0u8; out];
    let mut rest = wire;
    loop {
        match layers.pull(&mut buf, &mut |_| pings += 1).unwrap() {
            Pulled::Data(n) => got.extend_from_slice(&buf[..n]),
            Pulled::NeedInput => {
                if rest.is_empty() {
                    break;
                }
                let space = layers.space();
                let n = piece.min(rest.len()).min(space.len());
                space[..n].copy_from_slice(&rest[..n]);
                layers.filled(n);
                rest = &rest[n..];
            }
        }
    }
    layers.at_eof().unwrap();
    (got, pings)
}

fn sample() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..300 {
        v.extend_from_slice(
            format!(
                "LMSG telemetry.site.{} 58\r\n{{\"sensor\":\"t{}\",\"value\":{}.5,\"unit\":\"C\",\"ok\":true}}\r\n",
                i % 5,
                i % 7,
                20 + i % 9
            )
            .as_bytes(),
        );
    }
    v.extend((0..3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    v
}

fn s2_stream(plain: &[u8], level: Level) -> Vec<u8> {
    let mut enc = Encoder::new(level, vec![0u32; tables_len(Level::Best)]);
    let mut out = Vec::new();
    // Three flushes, as three writer batches.
    let third = plain.len() / 3;
    for part in [
        &plain[..third],
        &plain[third..2 * third],
        &plain[2 * third..],
    ] {
        enc.encode_to_vec(part, &mut out).unwrap();
    }
    out
}

#[test]
fn plain_bytes_pass_through_whatever_the_split() {
    let plain = sample();
    for (piece, out) in [(1, 1), (7, 3), (1000, 64), (RAW_READ, RAW_READ)] {
        let mut l = ReadLayers::new();
        assert_eq!(drain(&mut l, &plain, piece, out).0, plain);
    }
}

#[test]
fn an_s2_stream_decodes_split_at_every_byte() {
    let plain = sample();
    for level in [Level::Uncompressed, Level::Fast, Level::Best] {
        let wire = s2_stream(&plain, level);
        for (piece, out) in [(1, 1), (1, 4096), (13, 5), (4096, 1)] {
            let mut l = ReadLayers::new();
            l.start_s2(NATS_BLOCK_SIZE);
            assert_eq!(
                drain(&mut l, &wire, piece, out).0,
                plain,
                "{level:?} {piece}"
            );
        }
    }
}

#[test]
fn s2_starts_where_the_plain_part_ends() {
    let info = b"INFO {\"server_id\":\"H\",\"compression\":\"s2_auto\"}\r\n";
    let plain = sample();
    let mut wire = info.to_vec();
    wire.extend_from_slice(&s2_stream(&plain, Level::Fast));
    // The INFO in small pulls; the switch comes exactly after it, with the compressed bytes
    // already read from the socket.
    let mut l = ReadLayers::new();
    let space = l.space();
    space[..wire.len().min(RAW_READ)].copy_from_slice(&wire[..wire.len().min(RAW_READ)]);
    l.filled(wire.len().min(RAW_READ));
    let mut got = vec![0u8; info.len()];
    assert_eq!(
        l.pull(&mut got, &mut |_| {}).unwrap(),
        Pulled::Data(info.len())
    );
    assert_eq!(&got[..], &info[..]);
    l.start_s2(NATS_BLOCK_SIZE);
    let rest = &wire[wire.len().min(RAW_READ)..];
    assert_eq!(drain(&mut l, rest, 100, 333).0, plain);
}

#[test]
fn websocket_frames_under_s2_come_apart_and_pings_are_handed_out() {
    let plain = sample();
    // What a hub writes: unmasked frames (a ping between them), then compressed.
    let mut frames = Vec::new();
    let mut ws = FrameEncoder::new(false, 1);
    let (a, b) = plain.split_at(plain.len() / 2);
    ws.binary(a, &mut frames);
    ws.ping(b"are you there", &mut frames);
    ws.binary(b, &mut frames);
    ws.binary(b"", &mut frames);
    for with_s2 in [false, true] {
        let wire = if with_s2 {
            s2_stream(&frames, Level::Better)
        } else {
            frames.clone()
        };
        for (piece, out) in [(1, 1), (5, 2), (4096, 4096)] {
            let mut l = ReadLayers::new();
            l.start_ws();
            if with_s2 {
                l.start_s2(NATS_BLOCK_SIZE);
            }
            let (got, pings) = drain(&mut l, &wire, piece, out);
            assert_eq!(got, plain, "s2 {with_s2}, pieces of {piece}");
            assert_eq!(pings, 1);
        }
    }
}

#[test]
fn a_stream_cut_inside_a_chunk_or_frame_is_an_error_and_close_ends_it() {
    let wire = s2_stream(&sample(), Level::Fast);
    let mut l = ReadLayers::new();
    l.start_s2(NATS_BLOCK_SIZE);
    let space = l.space();
    space[..20].copy_from_slice(&wire[..20]);
    l.filled(20);
    let mut out = [0u8; 64];
    assert_eq!(l.pull(&mut out, &mut |_| {}).unwrap(), Pulled::NeedInput);
    assert_eq!(l.at_eof(), Err(LayerError::Truncated("an S2 chunk")));
    // Corrupt bytes: the decoder's error, not a panic.
    let mut l = ReadLayers::new();
    l.start_s2(NATS_BLOCK_SIZE);
    l.space()[..4].copy_from_slice(b"LMSG");
    l.filled(4);
    assert!(matches!(
        l.pull(&mut out, &mut |_| {}),
        Err(LayerError::S2(_))
    ));
    // A close frame from the hub.
    let mut frames = Vec::new();
    FrameEncoder::new(false, 1).close(twig_wsproto::CloseCode::Normal, "bye", &mut frames);
    let mut l = ReadLayers::new();
    l.start_ws();
    l.space()[..frames.len()].copy_from_slice(&frames);
    l.filled(frames.len());
    let e = l.pull(&mut out, &mut |_| {}).unwrap_err();
    assert_eq!(e.to_string(), "websocket closed by the hub (1000: \"bye\")");
}

#[test]
fn a_batch_is_one_s2_block_and_comes_back_through_the_read_layers() {
    let bulk = sample();
    let level = Arc::new(SharedLevel::new(Level::Best));
    let mut w = WriteLayers::new();
    w.start_s2(level.clone());
    let wire = w.encode(&[], b"PONG\r\n", &bulk).unwrap().to_vec();
    // Stream identifier, then exactly one compressed chunk for the whole batch.
    assert_eq!(&wire[..10], twig_core::s2::STREAM_IDENTIFIER);
    let chunk = &wire[10..];
    assert_eq!(chunk[0], 0x00, "a compressed chunk");
    let len = u32::from_le_bytes([chunk[1], chunk[2], chunk[3], 0]) as usize;
    assert_eq!(4 + len, chunk.len(), "one chunk holds the whole batch");
    assert!(
        wire.len() * 2 < bulk.len(),
        "{} of {}",
        wire.len(),
        bulk.len()
    );
    // The level follows what the reader publishes; the stream goes on.
    assert!(level.set(Level::Uncompressed));
    let second = w.encode(&[], b"", b"PING\r\n").unwrap().to_vec();
    assert_eq!(second[0], 0x01, "stored as is at s2_uncompressed");
    let mut l = ReadLayers::new();
    l.start_s2(NATS_BLOCK_SIZE);
    let mut all = wire.clone();
    all.extend_from_slice(&second);
    let mut expect = b"PONG\r\n".to_vec();
    expect.extend_from_slice(&bulk);
    expect.extend_from_slice(b"PING\r\n");
    assert_eq!(drain(&mut l, &all, 999, 4096).0, expect);
}

#[test]
fn websocket_batches_frame_then_compress() {
    let bulk = sample();
    let mut w = WriteLayers::new();
    // Unmasked (a hub that agreed to Nats-No-Masking), so our own decoder can read it back.
    w.start_ws(FrameEncoder::new(false, 7));
    w.start_s2(Arc::new(SharedLevel::new(Level::Fast)));
    let wire = w
        .encode(&[b"ping-1".to_vec()], b"PONG\r\n", &bulk)
        .unwrap()
        .to_vec();
    let mut l = ReadLayers::new();
    l.start_ws();
    l.start_s2(NATS_BLOCK_SIZE);
    let mut expect = b"PONG\r\n".to_vec();
    expect.extend_from_slice(&bulk);
    // The pong is a control frame: not data, and not a ping.
    assert_eq!(drain(&mut l, &wire, 17, 100), (expect, 0));
    // Nothing to send: nothing on the wire.
    let mut p = WriteLayers::new();
    p.start_ws(FrameEncoder::new(true, 7));
    assert!(p.encode(&[], b"", b"").unwrap().is_empty());
}
