//! NATS nkeys for a microcontroller: reading a seed (`SU...`), writing the public key
//! (`U...`), and (feature `nkey`) signing the server's INFO nonce for `CONNECT`'s `sig`.
//!
//! The formats are the nkeys library's: a seed is base32 (RFC 4648, no padding) of
//! `[0x90 | type >> 5, (type & 31) << 3, 32 seed bytes, CRC-16 little-endian]`, a public key of
//! `[type, 32 key bytes, CRC-16]`, with the CRC-16/XMODEM (polynomial 0x1021, initial 0) of
//! the bytes before it. The seed is an Ed25519 secret seed; signatures are Ed25519 (RFC 8032),
//! sent base64url without padding, as nats-server expects.
//!
//! No heap: [`Signer`] holds the expanded key and the public key text inline (about 190
//! bytes); [`Signer::sign_nonce`] writes into a caller's 86-byte buffer. Ed25519 comes from
//! `salty`, which is written for Cortex-M4 (assembly field arithmetic on thumbv7em, portable
//! Rust elsewhere): about 9 KiB of code there, against 22 KiB for `ed25519-compact` with
//! `opt_size` and 27 KiB for `ed25519-dalek` (measured with the same probe, opt-level z).

use core::fmt;

/// Length of an encoded seed (`SU` + 56 characters).
pub const SEED_LEN: usize = 58;
/// Length of an encoded public key (`U` + 55 characters).
pub const PUBLIC_KEY_LEN: usize = 56;
/// Length of a signature in base64url without padding.
pub const SIGNATURE_LEN: usize = 86;

/// The first byte of every decoded seed, before the type bits (`S` in base32).
const PREFIX_SEED: u8 = 18 << 3;
/// The key type of a user (`U` in base32); the only one a client signs with.
pub const PREFIX_USER: u8 = 20 << 3;

/// Why a seed could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NkeyError {
    /// Not 58 characters of base32.
    Encoding,
    /// The checksum does not match: a typo or a truncated seed.
    Checksum,
    /// Not a seed (it does not start with `S`).
    NotASeed,
    /// A seed, but not of a user (`SU...`): operators, accounts and servers do not sign
    /// client CONNECTs.
    NotAUser,
}

impl NkeyError {
    /// A short English description.
    pub const fn as_str(self) -> &'static str {
        match self {
            NkeyError::Encoding => "not a base32 nkey",
            NkeyError::Checksum => "nkey checksum mismatch",
            NkeyError::NotASeed => "not an nkey seed",
            NkeyError::NotAUser => "not a user nkey seed",
        }
    }
}

impl fmt::Display for NkeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CRC-16/XMODEM, as the nkeys library computes it.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 (RFC 4648 alphabet, no padding) of `input` into `out`; returns the length written,
/// or `None` if `out` is too small.
pub fn base32_encode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let needed = (input.len() * 8).div_ceil(5);
    let out = out.get_mut(..needed)?;
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &b in input {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            *out.get_mut(n)? = BASE32[((acc >> bits) & 31) as usize];
            n += 1;
        }
    }
    if bits > 0 {
        *out.get_mut(n)? = BASE32[((acc << (5 - bits)) & 31) as usize];
        n += 1;
    }
    Some(n)
}

/// Decodes base32 without padding into `out`; returns the bytes written. Leftover bits must
/// be zero, as Go's decoder (which the nkeys library uses) demands of canonical input.
pub fn base32_decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
        acc &= (1 << bits) - 1;
    }
    (bits < 5 && acc == 0).then_some(n)
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding of `input` into `out`; returns the length written, or `None` if
/// `out` is too small.
pub fn base64url_encode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let needed = (input.len() * 8).div_ceil(6);
    let out = out.get_mut(..needed)?;
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &b in input {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            *out.get_mut(n)? = BASE64URL[((acc >> bits) & 63) as usize];
            n += 1;
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        *out.get_mut(n)? = BASE64URL[((acc << (6 - bits)) & 63) as usize];
        n += 1;
    }
    Some(n)
}

/// Reads a seed: its key type (e.g. [`PREFIX_USER`]) and the 32-byte Ed25519 seed.
pub fn decode_seed(seed: &[u8]) -> Result<(u8, [u8; 32]), NkeyError> {
    if seed.len() != SEED_LEN {
        return Err(NkeyError::Encoding);
    }
    let mut raw = [0u8; 36];
    if base32_decode(seed, &mut raw) != Some(raw.len()) {
        return Err(NkeyError::Encoding);
    }
    let (body, sum) = raw.split_at(34);
    if crc16(body) != u16::from_le_bytes([sum[0], sum[1]]) {
        return Err(NkeyError::Checksum);
    }
    if raw[0] & 0xf8 != PREFIX_SEED {
        return Err(NkeyError::NotASeed);
    }
    let kind = ((raw[0] & 7) << 5) | ((raw[1] & 0xf8) >> 3);
    let mut key = [0u8; 32];
    key.copy_from_slice(&raw[2..34]);
    Ok((kind, key))
}

/// Writes the public key text of key type `kind` (e.g. `U...` for [`PREFIX_USER`]).
pub fn encode_public(kind: u8, key: &[u8; 32]) -> [u8; PUBLIC_KEY_LEN] {
    let mut raw = [0u8; 35];
    raw[0] = kind;
    raw[1..33].copy_from_slice(key);
    let sum = crc16(&raw[..33]).to_le_bytes();
    raw[33..].copy_from_slice(&sum);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    // 35 bytes are exactly 56 base32 characters.
    let _ = base32_encode(&raw, &mut out);
    out
}

/// A user nkey ready to sign nonces (feature `nkey`).
#[cfg(feature = "nkey")]
pub struct Signer {
    keypair: salty::Keypair,
    public: [u8; PUBLIC_KEY_LEN],
}

#[cfg(feature = "nkey")]
impl Signer {
    /// From a user seed (`SU...`, as `nsc` or `nk -gen user` print it). Expanding the key
    /// takes one SHA-512 and a scalar multiplication: do it once, at start-up.
    pub fn from_seed(seed: &str) -> Result<Signer, NkeyError> {
        let (kind, secret) = decode_seed(seed.as_bytes())?;
        if kind != PREFIX_USER {
            return Err(NkeyError::NotAUser);
        }
        let keypair = salty::Keypair::from(&secret);
        let public = encode_public(PREFIX_USER, keypair.public.as_bytes());
        Ok(Signer { keypair, public })
    }

    /// The public key (`U...`), what the server's config lists and `CONNECT` sends as `nkey`.
    pub fn public_key(&self) -> &str {
        // Base32 output is ASCII.
        core::str::from_utf8(&self.public).unwrap_or("")
    }

    /// Signs `nonce` (the INFO `nonce` text as sent) and writes the signature base64url
    /// without padding into `out`, returning it as text.
    pub fn sign_nonce<'b>(&self, nonce: &[u8], out: &'b mut [u8; SIGNATURE_LEN]) -> &'b str {
        let sig = self.keypair.sign(nonce).to_bytes();
        let _ = base64url_encode(&sig, out);
        core::str::from_utf8(out).unwrap_or("")
    }
}

// The secret stays out of logs.
#[cfg(feature = "nkey")]
impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
