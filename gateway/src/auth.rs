//! Client authentication, as nats-server decides it for a CONNECT: a shared token, users with
//! passwords, or users identified by an nkey who sign the nonce sent in INFO.
//!
//! The connection code fills [`Credentials`] from the parsed CONNECT and calls
//! [`Authenticator::check`]. Every failure reads `Authorization Violation` on the wire; the
//! [`AuthError`] variants say why, for the log only. Secrets are compared in constant time so
//! response timing does not reveal how much of a guess was right.
use std::collections::HashMap;
use std::fmt;

use data_encoding::{BASE64, BASE64URL, BASE64URL_NOPAD};
use nkeys::KeyPair;

use crate::config::AuthConfig;

/// Raw nonce bytes before encoding (nats-server's `nonceRawLen`).
pub const NONCE_RAW_LEN: usize = 11;
/// Length of the encoded nonce in INFO (base64url, no padding).
pub const NONCE_LEN: usize = 15;

/// The credentials a client sent in CONNECT (borrowed from the parsed JSON).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// `user`.
    pub user: Option<&'a str>,
    /// `pass`.
    pub pass: Option<&'a str>,
    /// `auth_token`.
    pub auth_token: Option<&'a str>,
    /// `nkey`: the user's public nkey.
    pub nkey: Option<&'a str>,
    /// `sig`: base64url Ed25519 signature of the nonce.
    pub sig: Option<&'a str>,
}

// Secrets stay out of debug logs.
impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hide = |s: Option<&str>| s.map(|_| "<redacted>");
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pass", &hide(self.pass))
            .field("auth_token", &hide(self.auth_token))
            .field("nkey", &self.nkey)
            .field("sig", &self.sig.is_some())
            .finish()
    }
}

/// Who a connection authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No authentication is configured.
    Anonymous,
    /// The shared token.
    Token,
    /// A user name with its password.
    User(String),
    /// A user public nkey.
    Nkey(String),
}

impl Identity {
    /// The name for `/connz` `authorized_user` (nats-server shows the user or the nkey).
    pub fn name(&self) -> Option<&str> {
        match self {
            Identity::Anonymous | Identity::Token => None,
            Identity::User(n) | Identity::Nkey(n) => Some(n),
        }
    }
}

/// Why a client was refused (for the log; the client always sees `Authorization Violation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Authentication is required and CONNECT carried no usable credentials.
    #[error("no credentials")]
    MissingCredentials,
    /// The token did not match.
    #[error("bad token")]
    BadToken,
    /// No such user.
    #[error("unknown user")]
    UnknownUser,
    /// The user exists, the password did not match.
    #[error("bad password")]
    BadPassword,
    /// The nkey is not a configured user.
    #[error("unknown nkey")]
    UnknownNkey,
    /// An nkey without `sig`.
    #[error("nkey without signature")]
    MissingSignature,
    /// An nkey arrived but no nonce was sent (server-side misuse; configure nkeys first).
    #[error("no nonce was sent for the nkey to sign")]
    MissingNonce,
    /// `sig` is not base64.
    #[error("signature is not base64url")]
    BadSignatureEncoding,
    /// `sig` is not the nkey's signature of the nonce.
    #[error("signature does not verify")]
    BadSignature,
    /// A configured nkey is not a valid user public nkey (`Config::validate` rejects these).
    #[error("invalid user nkey in the configuration")]
    InvalidConfig,
    /// The OS random number generator failed while making a nonce.
    #[error("random number generator failed")]
    Random,
}

/// Checks CONNECT credentials against the `[authorization]` config. Cheap to share (`Arc`).
pub struct Authenticator {
    token: Option<String>,
    passwords: HashMap<String, String>,
    nkeys: HashMap<String, KeyPair>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("token", &self.token.is_some())
            .field("users", &self.passwords.keys().collect::<Vec<_>>())
            .field("nkeys", &self.nkeys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Authenticator {
    /// Builds the checker from a validated config.
    pub fn from_config(config: &AuthConfig) -> Result<Authenticator, AuthError> {
        let mut passwords = HashMap::new();
        let mut nkeys = HashMap::new();
        if let (Some(u), Some(p)) = (&config.user, &config.password) {
            passwords.insert(u.clone(), p.clone());
        }
        for user in &config.users {
            if let (Some(u), Some(p)) = (&user.user, &user.password) {
                passwords.insert(u.clone(), p.clone());
            }
            if let Some(nkey) = &user.nkey {
                let kp = KeyPair::from_public_key(nkey).map_err(|_| AuthError::InvalidConfig)?;
                if kp.key_pair_type() != nkeys::KeyPairType::User {
                    return Err(AuthError::InvalidConfig);
                }
                nkeys.insert(nkey.clone(), kp);
            }
        }
        Ok(Authenticator {
            token: config.token.clone(),
            passwords,
            nkeys,
        })
    }

    /// True when clients must authenticate (INFO `auth_required`).
    pub fn auth_required(&self) -> bool {
        self.token.is_some() || !self.passwords.is_empty() || !self.nkeys.is_empty()
    }

    /// True when INFO must carry a nonce: some user is identified by an nkey.
    pub fn needs_nonce(&self) -> bool {
        !self.nkeys.is_empty()
    }

    /// A fresh nonce for INFO: 11 random bytes, base64url without padding (15 characters).
    pub fn new_nonce() -> Result<String, AuthError> {
        let mut raw = [0u8; NONCE_RAW_LEN];
        crate::util::id::fill(&mut raw).map_err(|_| AuthError::Random)?;
        Ok(BASE64URL_NOPAD.encode(&raw))
    }

    /// Decides a CONNECT. `nonce` is the one sent in this connection's INFO, if any.
    pub fn check(
        &self,
        creds: &Credentials<'_>,
        nonce: Option<&str>,
    ) -> Result<Identity, AuthError> {
        if !self.auth_required() {
            return Ok(Identity::Anonymous);
        }
        // Order as nats-server: an nkey wins when nkey users exist, then token, then users.
        if let (false, Some(nkey)) = (self.nkeys.is_empty(), creds.nkey) {
            return self.check_nkey(nkey, creds.sig, nonce);
        }
        if let Some(token) = &self.token {
            let given = creds.auth_token.ok_or(AuthError::MissingCredentials)?;
            return if secrets_equal(token.as_bytes(), given.as_bytes()) {
                Ok(Identity::Token)
            } else {
                Err(AuthError::BadToken)
            };
        }
        let user = creds.user.ok_or(AuthError::MissingCredentials)?;
        let given = creds.pass.unwrap_or("");
        match self.passwords.get(user) {
            Some(password) if secrets_equal(password.as_bytes(), given.as_bytes()) => {
                Ok(Identity::User(user.to_string()))
            }
            Some(_) => Err(AuthError::BadPassword),
            None => {
                // Spend the same time as a real comparison before saying no.
                secrets_equal(given.as_bytes(), given.as_bytes());
                Err(AuthError::UnknownUser)
            }
        }
    }

    fn check_nkey(
        &self,
        nkey: &str,
        sig: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<Identity, AuthError> {
        let key = self.nkeys.get(nkey).ok_or(AuthError::UnknownNkey)?;
        let nonce = nonce.ok_or(AuthError::MissingNonce)?;
        let sig = sig.ok_or(AuthError::MissingSignature)?;
        let sig = decode_signature(sig)?;
        key.verify(nonce.as_bytes(), &sig)
            .map_err(|_| AuthError::BadSignature)?;
        Ok(Identity::Nkey(nkey.to_string()))
    }
}

/// Decodes `sig`: base64url without padding as clients send it; padded base64url and
/// standard base64 too, as nats-server falls back to them.
fn decode_signature(sig: &str) -> Result<Vec<u8>, AuthError> {
    let bytes = sig.as_bytes();
    BASE64URL_NOPAD
        .decode(bytes)
        .or_else(|_| BASE64URL.decode(bytes))
        .or_else(|_| BASE64.decode(bytes))
        .map_err(|_| AuthError::BadSignatureEncoding)
}

/// Compares two secrets without stopping at the first differing byte. Only the length
/// leaks, as with Go's `subtle.ConstantTimeCompare` that nats-server uses.
fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
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
    use crate::config::UserConfig;

    fn users(list: Vec<UserConfig>) -> Authenticator {
        Authenticator::from_config(&AuthConfig {
            users: list,
            ..AuthConfig::default()
        })
        .unwrap()
    }

    fn password_user(user: &str, password: &str) -> UserConfig {
        UserConfig {
            user: Some(user.into()),
            password: Some(password.into()),
            nkey: None,
        }
    }

    fn nkey_user(kp: &KeyPair) -> UserConfig {
        UserConfig {
            user: None,
            password: None,
            nkey: Some(kp.public_key()),
        }
    }

    #[test]
    fn without_auth_everyone_is_anonymous() {
        let auth = Authenticator::from_config(&AuthConfig::default()).unwrap();
        assert!(!auth.auth_required());
        assert!(!auth.needs_nonce());
        let creds = Credentials {
            user: Some("x"),
            pass: Some("y"),
            ..Credentials::default()
        };
        assert_eq!(auth.check(&creds, None), Ok(Identity::Anonymous));
    }

    #[test]
    fn token() {
        let auth = Authenticator::from_config(&AuthConfig {
            token: Some("s3cr3t".into()),
            ..AuthConfig::default()
        })
        .unwrap();
        assert!(auth.auth_required() && !auth.needs_nonce());
        let with = |t| Credentials {
            auth_token: Some(t),
            ..Credentials::default()
        };
        assert_eq!(auth.check(&with("s3cr3t"), None), Ok(Identity::Token));
        assert_eq!(auth.check(&with("s3cr3"), None), Err(AuthError::BadToken));
        assert_eq!(auth.check(&with("s3cr3T"), None), Err(AuthError::BadToken));
        assert_eq!(
            auth.check(&Credentials::default(), None),
            Err(AuthError::MissingCredentials)
        );
    }

    #[test]
    fn user_and_password() {
        let single = Authenticator::from_config(&AuthConfig {
            user: Some("app".into()),
            password: Some("pw".into()),
            ..AuthConfig::default()
        })
        .unwrap();
        let listed = users(vec![
            password_user("app", "pw"),
            password_user("ops", "other"),
        ]);
        for auth in [single, listed] {
            let login = |u, p| Credentials {
                user: Some(u),
                pass: Some(p),
                ..Credentials::default()
            };
            assert_eq!(
                auth.check(&login("app", "pw"), None),
                Ok(Identity::User("app".into()))
            );
            assert_eq!(
                auth.check(&login("app", "PW"), None),
                Err(AuthError::BadPassword)
            );
            assert_eq!(
                auth.check(&login("bob", "pw"), None),
                Err(AuthError::UnknownUser)
            );
            let no_pass = Credentials {
                user: Some("app"),
                ..Credentials::default()
            };
            assert_eq!(auth.check(&no_pass, None), Err(AuthError::BadPassword));
        }
    }

    #[test]
    fn nkey_signs_the_nonce() {
        let kp = KeyPair::new_user();
        let auth = users(vec![nkey_user(&kp), password_user("app", "pw")]);
        assert!(auth.needs_nonce());
        let nonce = Authenticator::new_nonce().unwrap();
        let sig = BASE64URL_NOPAD.encode(&kp.sign(nonce.as_bytes()).unwrap());
        let pk = kp.public_key();
        let creds = |sig| Credentials {
            nkey: Some(&pk),
            sig,
            ..Credentials::default()
        };
        assert_eq!(
            auth.check(&creds(Some(&sig)), Some(&nonce)),
            Ok(Identity::Nkey(pk.clone()))
        );
        // Padded and standard base64 are accepted too, as nats-server does.
        let padded = BASE64URL.encode(&kp.sign(nonce.as_bytes()).unwrap());
        assert!(padded.ends_with('='));
        assert!(auth.check(&creds(Some(&padded)), Some(&nonce)).is_ok());
        let std = BASE64.encode(&kp.sign(nonce.as_bytes()).unwrap());
        assert!(auth.check(&creds(Some(&std)), Some(&nonce)).is_ok());
        // A signature of another nonce, garbage, or none at all.
        let other = Authenticator::new_nonce().unwrap();
        assert_eq!(
            auth.check(&creds(Some(&sig)), Some(&other)),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            auth.check(&creds(Some("!!")), Some(&nonce)),
            Err(AuthError::BadSignatureEncoding)
        );
        assert_eq!(
            auth.check(&creds(Some("AAAA")), Some(&nonce)),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            auth.check(&creds(None), Some(&nonce)),
            Err(AuthError::MissingSignature)
        );
        assert_eq!(
            auth.check(&creds(Some(&sig)), None),
            Err(AuthError::MissingNonce)
        );
        // Someone else's key, signing correctly, is still unknown.
        let stranger = KeyPair::new_user();
        let stranger_pk = stranger.public_key();
        let stranger_sig = BASE64URL_NOPAD.encode(&stranger.sign(nonce.as_bytes()).unwrap());
        let c = Credentials {
            nkey: Some(&stranger_pk),
            sig: Some(&stranger_sig),
            ..Credentials::default()
        };
        assert_eq!(auth.check(&c, Some(&nonce)), Err(AuthError::UnknownNkey));
        // Password users still log in beside nkey users.
        let login = Credentials {
            user: Some("app"),
            pass: Some("pw"),
            ..Credentials::default()
        };
        assert!(auth.check(&login, Some(&nonce)).is_ok());
    }

    #[test]
    fn nonces_look_like_nats_servers() {
        let a = Authenticator::new_nonce().unwrap();
        let b = Authenticator::new_nonce().unwrap();
        assert_eq!(a.len(), NONCE_LEN);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(
            BASE64URL_NOPAD.decode(a.as_bytes()).unwrap().len(),
            NONCE_RAW_LEN
        );
    }

    #[test]
    fn config_with_a_non_user_nkey_is_refused() {
        let account = KeyPair::new_account();
        let bad = UserConfig {
            nkey: Some(account.public_key()),
            user: None,
            password: None,
        };
        let e = Authenticator::from_config(&AuthConfig {
            users: vec![bad],
            ..AuthConfig::default()
        });
        assert_eq!(e.err(), Some(AuthError::InvalidConfig));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"ab"));
        assert!(secrets_equal(b"", b""));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = Credentials {
            pass: Some("hunter2"),
            auth_token: Some("tok3n"),
            ..Credentials::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("tok3n"));
    }
}
