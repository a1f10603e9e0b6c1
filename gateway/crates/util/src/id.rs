//! Randomness, from the OS in one place, and the ids twig makes from it.
//!
//! Two kinds of callers: those that need secrets (nonces, ids that must not repeat across
//! restarts) get [`fill`] and its error; those that only need values to be spread or unique
//! within the process (a server id, an inbox token, back-off jitter, queue-group picks) get
//! the `*_or_clock` forms, which fall back to the clock when the OS has no randomness.
use crate::clock::unix_nanos;

/// Fills `buf` from the OS's random source.
pub fn fill(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::fill(buf)
}

/// Fills `buf` from the OS's random source, or (without one) from the clock: unique enough per
/// process, not unpredictable.
pub fn fill_or_clock(buf: &mut [u8]) {
    if fill(buf).is_err() {
        let t = unix_nanos().to_le_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = t[i % 8].wrapping_add(i as u8);
        }
    }
}

/// A random number (0 without OS randomness): back-off jitter, where an unspread delay is
/// still a delay.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = fill(&mut b);
    u64::from_le_bytes(b)
}

/// 22 random base62 characters (like a nuid): loop-detection subjects, inboxes.
pub fn token() -> String {
    let mut raw = [0u8; 22];
    fill_or_clock(&mut raw);
    base62(&raw)
}

/// Random bytes as base62 characters, one per byte (each byte's value modulo 62: the bias is
/// harmless for an identifier).
pub fn base62(raw: &[u8]) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    raw.iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A random id shaped like a nats-server server id: 'N' and 55 base32 characters.
pub fn server_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut raw = [0u8; 55];
    fill_or_clock(&mut raw);
    let mut id = String::with_capacity(56);
    id.push('N');
    id.extend(raw.iter().map(|b| ALPHABET[(b & 31) as usize] as char));
    id
}

/// Who this server is: what INFO, the uplink's CONNECT and monitoring call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `server_id`: an nkey-shaped random id, as nats-server's (new every start).
    pub server_id: String,
    /// `server_name`: the configured name, or the id.
    pub server_name: String,
}

impl Identity {
    /// A fresh id, named `name` when one is configured (and not empty).
    pub fn new(name: Option<&str>) -> Identity {
        let server_id = server_id();
        let server_name = name
            .filter(|n| !n.is_empty())
            .map_or_else(|| server_id.clone(), str::to_owned);
        Identity {
            server_id,
            server_name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shapes_and_differ() {
        let (a, b) = (server_id(), server_id());
        assert_eq!(a.len(), 56);
        assert!(
            a.starts_with('N')
                && a[1..]
                    .bytes()
                    .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c))
        );
        assert_ne!(a, b);
        let t = token();
        assert_eq!(t.len(), 22);
        assert!(t.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(t, token());
    }
}
