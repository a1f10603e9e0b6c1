//! Seeds, public keys and signatures checked against the nkeys library (the Rust port that
//! nats-server's own format is defined by), and the encodings against known values.

extern crate std;

use super::*;
// Only the signing tests (feature `nkey`) build strings and buffers.
#[cfg(feature = "nkey")]
use std::string::String;
#[cfg(feature = "nkey")]
use std::vec::Vec;

#[test]
fn crc16_is_xmodem() {
    // The standard check value of CRC-16/XMODEM.
    assert_eq!(crc16(b"123456789"), 0x31c3);
    assert_eq!(crc16(b""), 0);
}

#[test]
fn base32_and_base64url_round_trip_known_values() {
    let mut out = [0u8; 16];
    let n = base32_encode(b"foobar", &mut out).unwrap();
    assert_eq!(&out[..n], b"MZXW6YTBOI");
    let mut back = [0u8; 8];
    let m = base32_decode(&out[..n], &mut back).unwrap();
    assert_eq!(&back[..m], b"foobar");
    assert_eq!(
        base32_decode(b"MZXW6YTBO1", &mut back),
        None,
        "1 is not base32"
    );
    assert_eq!(
        base32_decode(b"MZXW6YTBOJ", &mut back),
        None,
        "leftover bits must be zero"
    );
    assert_eq!(base32_encode(b"foobar", &mut [0u8; 9]), None);
    let n = base64url_encode(b"\xfb\xff\xbf?", &mut out).unwrap();
    assert_eq!(&out[..n], b"-_-_Pw");
    assert_eq!(base64url_encode(b"abc", &mut out), Some(4));
}

#[test]
fn seeds_from_the_nkeys_library() {
    for _ in 0..50 {
        let kp = nkeys::KeyPair::new_user();
        let seed = kp.seed().unwrap();
        let (kind, secret) = decode_seed(seed.as_bytes()).unwrap();
        assert_eq!(kind, PREFIX_USER);
        assert_eq!(nkeys::decode_seed(&seed).unwrap(), (kind, secret));
        let public = nkeys::KeyPair::from_seed(&seed).unwrap().public_key();
        // The public key text from the nkeys library's own encoding of the same key.
        let raw_public = nkeys::from_public_key(&public).unwrap().1;
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw_public);
        assert_eq!(&encode_public(PREFIX_USER, &key)[..], public.as_bytes());
        assert_eq!(secret.len(), 32);
    }
}

#[test]
fn bad_seeds() {
    let seed = nkeys::KeyPair::new_user().seed().unwrap();
    assert_eq!(
        decode_seed(&seed.as_bytes()[..57]),
        Err(NkeyError::Encoding)
    );
    let mut typo = seed.clone().into_bytes();
    typo[20] = if typo[20] == b'A' { b'B' } else { b'A' };
    assert_eq!(decode_seed(&typo), Err(NkeyError::Checksum));
    let lower = seed.to_ascii_lowercase();
    assert_eq!(decode_seed(lower.as_bytes()), Err(NkeyError::Encoding));
    // A public key is not a seed (and is shorter).
    let public = nkeys::KeyPair::new_user().public_key();
    assert!(decode_seed(public.as_bytes()).is_err());
    let account = nkeys::KeyPair::new_account().seed().unwrap();
    assert_eq!(decode_seed(account.as_bytes()).map(|k| k.0), Ok(0));
}

#[cfg(feature = "nkey")]
#[test]
fn signatures_verify_with_the_nkeys_library() {
    for i in 0..20 {
        let kp = nkeys::KeyPair::new_user();
        let seed = kp.seed().unwrap();
        let signer = Signer::from_seed(&seed).unwrap();
        assert_eq!(signer.public_key(), kp.public_key());
        let nonce: String = std::format!("nonce-{i}-abcdefgh");
        let mut buf = [0u8; SIGNATURE_LEN];
        let sig = signer.sign_nonce(nonce.as_bytes(), &mut buf);
        assert_eq!(sig.len(), SIGNATURE_LEN);
        let raw: Vec<u8> = data_encoding_free_decode(sig);
        let verifier = nkeys::KeyPair::from_public_key(&kp.public_key()).unwrap();
        verifier.verify(nonce.as_bytes(), &raw).unwrap();
        // Ed25519 is deterministic: the nkeys library signs the same bytes.
        assert_eq!(raw, kp.sign(nonce.as_bytes()).unwrap());
        assert!(!std::format!("{signer:?}").contains(&seed));
    }
    let account = nkeys::KeyPair::new_account().seed().unwrap();
    assert_eq!(Signer::from_seed(&account).err(), Some(NkeyError::NotAUser));
}

/// Base64url without padding back to bytes (test-only; the client never decodes).
#[cfg(feature = "nkey")]
fn data_encoding_free_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {c}"),
        }
    };
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for &c in text.as_bytes() {
        acc = (acc << 6) | value(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    out
}
