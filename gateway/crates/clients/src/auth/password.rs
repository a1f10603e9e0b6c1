//! Password and token comparison as nats-server does it (`auth.go comparePasswords`): a
//! configured secret that looks like a bcrypt hash (`$2a$`, `$2b$`, `$2x$`, `$2y$` and a
//! two-digit cost) is checked with bcrypt, anything else is compared in constant time.
//!
//! bcrypt is slow on purpose (cost 11: some 0.1 s on a desktop, several times that on a
//! Raspberry Pi): run [`compare`] off the event loop when [`is_bcrypt`] says so.

/// nats-server's `isBcrypt`: `^\$2[abxy]\$\d{2}\$.*`.
pub fn is_bcrypt(secret: &str) -> bool {
    let b = secret.as_bytes();
    b.len() >= 7
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// Whether `hash` is a bcrypt hash bcrypt can check (cost 4 to 31, 22 salt and 31 hash
/// characters), for config validation: nats-server only finds out at the first login.
pub fn is_valid_bcrypt(hash: &str) -> bool {
    is_bcrypt(hash) && hash.parse::<bcrypt::HashParts>().is_ok()
}

/// Does `given` (from CONNECT) match the configured `secret`?
pub fn compare(secret: &str, given: &str) -> bool {
    if is_bcrypt(secret) {
        // A malformed hash matches nothing (nats-server: CompareHashAndPassword fails).
        return bcrypt::verify(given, secret).unwrap_or(false);
    }
    constant_time_eq(secret.as_bytes(), given.as_bytes())
}

/// Compares two secrets without stopping at the first differing byte. Only the length
/// leaks, as with Go's `subtle.ConstantTimeCompare` that nats-server uses.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimizer from turning the fold back into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A published `$2a$` vector (openwall's crypt_blowfish tests): a hash no Rust code made.
    const VECTOR: (&str, &str) = (
        "U*U",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
    );

    #[test]
    fn recognises_hashes_as_nats_server() {
        assert!(is_bcrypt("$2a$11$abc"));
        assert!(is_bcrypt("$2y$04$"));
        assert!(is_bcrypt("$2x$10$whatever"));
        assert!(!is_bcrypt("$2c$11$abc"));
        assert!(!is_bcrypt("$2a$1$abc"));
        assert!(!is_bcrypt("$2a11$abc"));
        assert!(!is_bcrypt("2a$11$abc"));
        assert!(!is_bcrypt("plain"));
        assert!(!is_valid_bcrypt("$2a$11$abc"));
    }

    #[test]
    fn bcrypt_hashes_check_the_password() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        assert!(is_valid_bcrypt(&hash));
        assert!(compare(&hash, "s3cret"));
        assert!(!compare(&hash, "s3cret "));
        assert!(!compare(&hash, ""));
        // Every version letter nats-server accepts is the same algorithm.
        for v in ["$2a$", "$2b$", "$2x$", "$2y$"] {
            let h = format!("{v}{}", &hash[4..]);
            assert!(compare(&h, "s3cret"), "{h}");
        }
        // A malformed hash never matches, not even itself.
        assert!(!compare("$2a$11$short", "$2a$11$short"));
    }

    #[test]
    fn a_2a_hash_from_elsewhere() {
        assert!(is_valid_bcrypt(VECTOR.1));
        assert!(compare(VECTOR.1, VECTOR.0));
        assert!(!compare(VECTOR.1, "U*V"));
    }

    #[test]
    fn plain_secrets_compare_whole() {
        assert!(compare("abc", "abc"));
        assert!(!compare("abc", "abd"));
        assert!(!compare("abc", "ab"));
        assert!(compare("", ""));
    }
}
