//! Frames: server frames decoded split at every byte, every refusal, and our client frames
//! checked byte for byte against RFC 6455's layout.

use super::*;

/// A server frame (unmasked).
fn server_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | op];
    let n = payload.len();
    if n < 126 {
        f.push(n as u8);
    } else if n <= 0xFFFF {
        f.push(126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Data(Vec<u8>, bool),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

/// All events of `input` fed in `pieces`; adjacent data is merged (its split is arbitrary).
fn events(input: &[u8], piece: usize) -> Result<Vec<Owned>, FrameError> {
    let mut d = FrameDecoder::default();
    let mut out: Vec<Owned> = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let (n, ev) = d.decode(rest)?;
            match ev {
                Some(Event::Data { bytes, last }) => match out.last_mut() {
                    Some(Owned::Data(b, l)) if !*l => {
                        b.extend_from_slice(bytes);
                        *l = last;
                    }
                    _ => out.push(Owned::Data(bytes.to_vec(), last)),
                },
                Some(Event::Ping(p)) => out.push(Owned::Ping(p.to_vec())),
                Some(Event::Pong(p)) => out.push(Owned::Pong(p.to_vec())),
                Some(Event::Close { code, reason }) => out.push(Owned::Close(code, reason.into())),
                None => {}
            }
            rest = &rest[n..];
        }
    }
    Ok(out)
}

#[test]
fn server_frames_split_anywhere() {
    let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let mut s = server_frame(true, 2, b"INFO {}\r\n");
    s.extend(server_frame(false, 2, b"frag"));
    s.extend(server_frame(true, 9, b"ping!"));
    s.extend(server_frame(false, 0, b"men"));
    s.extend(server_frame(true, 0, b"ted"));
    s.extend(server_frame(true, 2, &big[..300]));
    s.extend(server_frame(true, 1, b"text is data too"));
    s.extend(server_frame(true, 2, &big));
    s.extend(server_frame(true, 10, b""));
    s.extend(server_frame(true, 2, b""));
    s.extend(server_frame(true, 8, b"\x03\xe8bye"));
    let want = vec![
        Owned::Data(b"INFO {}\r\n".to_vec(), true),
        Owned::Data(b"frag".to_vec(), false),
        Owned::Ping(b"ping!".to_vec()),
        Owned::Data(b"mented".to_vec(), true),
        Owned::Data(big[..300].to_vec(), true),
        Owned::Data(b"text is data too".to_vec(), true),
        Owned::Data(big.clone(), true),
        Owned::Pong(Vec::new()),
        Owned::Close(Some(1000), "bye".into()),
    ];
    for piece in [1, 2, 3, 7, 100, 4096, usize::MAX] {
        let mut got = events(&s, piece).unwrap();
        // "frag" then "mented" are one message around a ping: merge for comparison.
        assert_eq!(got.len(), want.len(), "piece {piece}");
        if let (Owned::Data(a, _), Owned::Data(b, _)) = (&got[1], &got[3]) {
            assert_eq!(a, b"frag");
            assert_eq!(b, b"mented");
        }
        got[3] = Owned::Data(b"mented".to_vec(), true);
        assert_eq!(got, want, "piece {piece}");
    }
}

#[test]
fn bad_frames_are_refused() {
    let cases: Vec<(Vec<u8>, FrameError)> = vec![
        (vec![0xC2, 0], FrameError::ReservedBits),
        (vec![0x83, 0], FrameError::UnknownOpcode(3)),
        (vec![0x82, 0x81, 1, 2, 3, 4, 0], FrameError::MaskedByServer),
        (vec![0x09, 0], FrameError::FragmentedControl),
        (
            [vec![0x89, 126, 0, 126], vec![0; 126]].concat(),
            FrameError::ControlTooLong(126),
        ),
        (vec![0x80, 1, b'x'], FrameError::UnexpectedContinuation),
        (
            [server_frame(false, 2, b"a"), server_frame(true, 2, b"b")].concat(),
            FrameError::MessageInterrupted,
        ),
        (
            vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1],
            FrameError::BadLength,
        ),
        (
            vec![0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0],
            FrameError::FrameTooLarge {
                len: 1 << 32,
                max: 64 << 20,
            },
        ),
        (vec![0x88, 1, 3], FrameError::BadClose),
        (vec![0x88, 2, 0x03, 0xED], FrameError::BadClose), // 1005 may not be sent
        (vec![0x88, 3, 0x03, 0xE8, 0xFF], FrameError::BadClose),
    ];
    for (bytes, err) in cases {
        for piece in [1, usize::MAX] {
            assert_eq!(
                events(&bytes, piece),
                Err(err),
                "{bytes:?} in pieces of {piece}"
            );
        }
        assert!(err.close_code().code() >= 1002);
    }
    // Errors stick.
    let mut d = FrameDecoder::default();
    assert!(d.decode(&[0xC2, 0]).is_err());
    assert!(d.decode(&server_frame(true, 2, b"ok")).is_err());
}

/// Reads one client frame: (fin, opcode, mask key, unmasked payload, frame length).
fn client_frame(f: &[u8]) -> (bool, u8, Option<[u8; 4]>, Vec<u8>, usize) {
    let (fin, op) = (f[0] & 0x80 != 0, f[0] & 0x0F);
    assert_eq!(f[0] & 0x70, 0);
    let masked = f[1] & 0x80 != 0;
    let (len, mut at) = match f[1] & 0x7F {
        126 => (usize::from(u16::from_be_bytes([f[2], f[3]])), 4),
        127 => (
            u64::from_be_bytes(f[2..10].try_into().unwrap()) as usize,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let key = masked.then(|| {
        let k = [f[at], f[at + 1], f[at + 2], f[at + 3]];
        at += 4;
        k
    });
    let mut payload = f[at..at + len].to_vec();
    if let Some(k) = key {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= k[i % 4];
        }
    }
    (fin, op, key, payload, at + len)
}

#[test]
fn client_frames_are_masked_and_sized_right() {
    let mut e = FrameEncoder::new(true, 42);
    for n in [0usize, 1, 125, 126, 65_535, 65_536, 100_000] {
        let payload: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
        let mut out = Vec::new();
        e.binary(&payload, &mut out);
        let (fin, op, key, back, len) = client_frame(&out);
        assert!(fin && op == 2 && key.is_some(), "{n}");
        assert_eq!(back, payload, "{n}");
        assert_eq!(len, out.len());
        assert!(out.len() <= n + e.overhead(n));
    }
    // Two frames never share a key (with this seed, for a run of 1000).
    let mut keys = std::collections::HashSet::new();
    for _ in 0..1000 {
        let mut out = Vec::new();
        e.ping(b"x", &mut out);
        keys.insert(client_frame(&out).2.unwrap());
    }
    assert_eq!(keys.len(), 1000);
    // Unmasked when agreed, split into continuation frames when asked.
    let mut e = FrameEncoder::new(false, 1).with_max_frame(4);
    let mut out = Vec::new();
    e.binary(b"0123456789", &mut out);
    let mut at = 0;
    let mut frames = Vec::new();
    while at < out.len() {
        let (fin, op, key, p, len) = client_frame(&out[at..]);
        assert!(key.is_none());
        frames.push((fin, op, p));
        at += len;
    }
    assert_eq!(
        frames,
        vec![
            (false, 2, b"0123".to_vec()),
            (false, 0, b"4567".to_vec()),
            (true, 0, b"89".to_vec())
        ]
    );
    let mut out = Vec::new();
    e.close(CloseCode::Normal, &"é".repeat(100), &mut out);
    let (_, op, _, p, _) = client_frame(&out);
    assert_eq!(op, 8);
    assert!(p.len() <= 125 && std::str::from_utf8(&p[2..]).is_ok());
    assert_eq!(&p[..2], &[0x03, 0xE8]);
}

#[test]
fn mask_is_its_own_inverse_at_every_length() {
    for n in 0..40 {
        let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
        let mut m = data.clone();
        apply_mask(&mut m, [1, 2, 3, 4]);
        for (i, (&a, &b)) in data.iter().zip(&m).enumerate() {
            assert_eq!(a ^ [1, 2, 3, 4][i % 4], b);
        }
        apply_mask(&mut m, [1, 2, 3, 4]);
        assert_eq!(m, data);
    }
}

/// Random bytes and mutated valid streams: never a panic, and the same events and error
/// whether fed whole or in pieces of any size (what the fuzz invariant would check).
#[test]
fn random_input_is_split_invariant() {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut valid = server_frame(true, 2, b"INFO {}\r\n");
    valid.extend(server_frame(false, 2, &[7u8; 300]));
    valid.extend(server_frame(true, 9, b"p"));
    valid.extend(server_frame(true, 0, b"end"));
    valid.extend(server_frame(true, 8, b"\x03\xe8"));
    for round in 0..5000 {
        let mut s = if round % 2 == 0 {
            valid.clone()
        } else {
            (0..rnd() % 64).map(|_| rnd() as u8).collect()
        };
        if !s.is_empty() {
            for _ in 0..rnd() % 4 {
                let i = (rnd() as usize) % s.len();
                s[i] = rnd() as u8;
            }
        }
        let whole = events(&s, usize::MAX);
        for piece in [1, 2, 5, 13] {
            assert_eq!(events(&s, piece), whole, "round {round} piece {piece}");
        }
    }
}
