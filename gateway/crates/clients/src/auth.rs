//! Client authentication, as nats-server decides it for a CONNECT
//! (`auth.go processClientOrLeafAuthentication`): a shared token, users with passwords (plain
//! or bcrypt, see [`password`]), users identified by an nkey who sign the nonce sent in INFO,
//! users named by their TLS client certificate ([`certmap`], `verify_and_map`), and the
//! `no_auth_user` that clients without credentials become.
//!
//! The connection code fills [`Credentials`] from the parsed CONNECT and calls
//! [`Authenticator::login`]; the [`Login`] it returns says who the client is and which
//! permission rules ([`twig_perms::Rules`]) apply to it, with templates filled from that
//! identity. Every failure reads `Authorization Violation` on the wire; the [`AuthError`]
//! variants say why, for the log only. Plain secrets are compared in constant time so response
//! timing does not reveal how much of a guess was right; a bcrypt check is slow on purpose,
//! so [`Authenticator::needs_blocking`] tells the caller to run it off the event loop.
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use data_encoding::{BASE64, BASE64URL, BASE64URL_NOPAD};
use nkeys::KeyPair;

use twig_config::{AuthConfig, UserConfig};
use twig_perms::{Facts, Permissions, PermsError, Rules, template};

pub mod certmap;
pub mod password;
pub mod throttle;

#[cfg(test)]
mod login_tests;

pub use certmap::CertIdentity;
use password::{compare, constant_time_eq, is_bcrypt};

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

impl Credentials<'_> {
    /// No user, password, token or nkey (an empty string counts as none, as in nats-server):
    /// the case `no_auth_user` applies to.
    pub fn is_empty(&self) -> bool {
        let none = |s: Option<&str>| s.is_none_or(str::is_empty);
        none(self.user) && none(self.pass) && none(self.auth_token) && none(self.nkey)
    }
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
    /// A user name (with its password, as `no_auth_user`, or named by its certificate).
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

/// An accepted CONNECT.
#[derive(Debug, Clone)]
pub struct Login {
    /// Who the client is.
    pub identity: Identity,
    /// Its permissions (templates filled); `None`: everything is allowed.
    pub rules: Option<Arc<Rules>>,
    /// Whether its client certificate named it (`verify_and_map`).
    pub by_certificate: bool,
}

/// Why a client was refused (for the log; the client always sees `Authorization Violation`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// The user has no password: only a client certificate can name it.
    #[error("user requires a client certificate")]
    CertificateRequired,
    /// Certificates name users here, and the client presented none.
    #[error("no client certificate to map to a user")]
    NoCertificate,
    /// The client certificate names no configured user.
    #[error("client certificate maps to no user")]
    UnknownCertificate,
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
    /// The user's permission templates give invalid rules for this identity (nats-server:
    /// "generated invalid permissions").
    #[error("permissions for this identity are invalid: {0}")]
    Permissions(PermsError),
    /// A configured nkey is not a valid user public nkey (`Config::validate` rejects these).
    #[error("invalid user nkey in the configuration")]
    InvalidConfig,
    /// Configured permissions do not compile (`Config::validate` rejects these).
    #[error("invalid permissions in the configuration: {0}")]
    InvalidPermissions(PermsError),
    /// The OS random number generator failed while making a nonce.
    #[error("random number generator failed")]
    Random,
}

/// A user's permissions: compiled once, or (with templates) per login.
#[derive(Debug, Clone)]
enum UserRules {
    None,
    Fixed(Arc<Rules>),
    Templated(Arc<Permissions>),
}

impl UserRules {
    fn from_config(p: Option<&Permissions>) -> Result<UserRules, AuthError> {
        Ok(match p {
            None => UserRules::None,
            Some(p) if p.has_templates() => {
                p.validate().map_err(AuthError::InvalidPermissions)?;
                UserRules::Templated(Arc::new(p.clone()))
            }
            Some(p) => UserRules::Fixed(Arc::new(
                Rules::compile(p).map_err(AuthError::InvalidPermissions)?,
            )),
        })
    }

    fn for_identity(&self, facts: &Facts<'_>) -> Result<Option<Arc<Rules>>, AuthError> {
        match self {
            UserRules::None => Ok(None),
            UserRules::Fixed(r) => Ok(Some(r.clone())),
            UserRules::Templated(p) => {
                let filled = template::fill(p, facts).map_err(AuthError::Permissions)?;
                let rules = Rules::compile(&filled).map_err(AuthError::Permissions)?;
                Ok(Some(Arc::new(rules)))
            }
        }
    }
}

/// One `authorization.users` entry with a user name.
struct User {
    /// `None` for a user only a certificate names.
    password: Option<String>,
    /// `{{name()}}` (defaults to the user name).
    name: String,
    tags: Vec<String>,
    rules: UserRules,
}

/// One `authorization.users` entry with an nkey.
struct NkeyUser {
    key: KeyPair,
    name: Option<String>,
    tags: Vec<String>,
    rules: UserRules,
}

/// Checks CONNECT credentials against the `[authorization]` config. Cheap to share (`Arc`).
pub struct Authenticator {
    token: Option<String>,
    /// The single `authorization.user` / `password` (no permissions, as in nats-server).
    single: Option<(String, String)>,
    users: HashMap<String, User>,
    /// User names in config order: certificate mapping tries them in this order.
    user_order: Vec<String>,
    nkeys: HashMap<String, NkeyUser>,
    no_auth_user: Option<String>,
    /// Whether client certificates name users (`tls.verify_and_map`).
    tls_map: bool,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("token", &self.token.is_some())
            .field("single", &self.single.as_ref().map(|(u, _)| u))
            .field("users", &self.user_order)
            .field("nkeys", &self.nkeys.keys().collect::<Vec<_>>())
            .field("no_auth_user", &self.no_auth_user)
            .field("tls_map", &self.tls_map)
            .finish()
    }
}

impl Authenticator {
    /// Builds the checker from a validated config. Permissions without templates are compiled
    /// here, once for all connections of their user.
    pub fn from_config(config: &AuthConfig) -> Result<Authenticator, AuthError> {
        let mut users = HashMap::new();
        let mut user_order = Vec::new();
        let mut nkeys = HashMap::new();
        // nats-server `applyDefaultPermissions`: users without their own get the defaults.
        let rules_of = |u: &UserConfig| {
            UserRules::from_config(
                u.permissions
                    .as_ref()
                    .or(config.default_permissions.as_ref()),
            )
        };
        for u in &config.users {
            if let Some(nkey) = &u.nkey {
                let key = KeyPair::from_public_key(nkey).map_err(|_| AuthError::InvalidConfig)?;
                if key.key_pair_type() != nkeys::KeyPairType::User {
                    return Err(AuthError::InvalidConfig);
                }
                let entry = NkeyUser {
                    key,
                    name: u.name.clone(),
                    tags: u.tags.clone(),
                    rules: rules_of(u)?,
                };
                nkeys.insert(nkey.clone(), entry);
            } else if let Some(name) = &u.user {
                let entry = User {
                    password: u.password.clone(),
                    name: u.name.clone().unwrap_or_else(|| name.clone()),
                    tags: u.tags.clone(),
                    rules: rules_of(u)?,
                };
                users.insert(name.clone(), entry);
                user_order.push(name.clone());
            }
        }
        Ok(Authenticator {
            token: config.token.clone(),
            single: config.user.clone().zip(config.password.clone()),
            users,
            user_order,
            nkeys,
            no_auth_user: config.no_auth_user.clone(),
            tls_map: false,
        })
    }

    /// The checker for a whole config: `[authorization]`, and client certificates naming
    /// users when `tls.verify_and_map` is on.
    pub fn for_config(config: &twig_config::Config) -> Result<Authenticator, AuthError> {
        let tls_map = config.tls.as_ref().is_some_and(|t| t.verify_and_map);
        Ok(Authenticator::from_config(&config.authorization)?.map_certificates(tls_map))
    }

    /// Let client certificates name users (`tls.verify_and_map`): every user-name login then
    /// needs a certificate that maps to a configured user, as in nats-server (nkey users and
    /// `no_auth_user`... are not affected: nkeys are checked first).
    pub fn map_certificates(mut self, on: bool) -> Self {
        self.tls_map = on;
        self
    }

    /// True when clients must authenticate (INFO `auth_required`).
    pub fn auth_required(&self) -> bool {
        self.token.is_some()
            || self.single.is_some()
            || !self.users.is_empty()
            || !self.nkeys.is_empty()
    }

    /// INFO's `auth_required`: as nats-server, false when a `no_auth_user` lets clients in
    /// without credentials (they are still checked when they send some).
    pub fn info_auth_required(&self) -> bool {
        self.auth_required() && self.no_auth_user.is_none()
    }

    /// True when INFO must carry a nonce: some user is identified by an nkey.
    pub fn needs_nonce(&self) -> bool {
        !self.nkeys.is_empty()
    }

    /// Whether checking `creds` runs bcrypt (tens to hundreds of milliseconds): the caller
    /// should then run [`Authenticator::login`] on a blocking thread, not the event loop.
    pub fn needs_blocking(&self, creds: &Credentials<'_>) -> bool {
        let user = match creds.user {
            Some(u) if !u.is_empty() => Some(u),
            _ => None,
        };
        let stored = match (user, &self.token, &self.single) {
            (Some(u), _, _) => self
                .users
                .get(u)
                .and_then(|e| e.password.as_deref())
                .or(self.single.as_ref().map(|(_, p)| p.as_str())),
            (None, Some(t), _) => Some(t.as_str()),
            (None, None, Some((_, p))) => Some(p.as_str()),
            (None, None, None) => None,
        };
        stored.is_some_and(is_bcrypt)
    }

    /// The `no_auth_user`, if any.
    pub fn no_auth_user(&self) -> Option<&str> {
        self.no_auth_user.as_deref()
    }

    /// The password (or hash) configured for user `name`.
    pub fn password_of(&self, name: &str) -> Option<&str> {
        self.users.get(name).and_then(|u| u.password.as_deref())
    }

    /// Whether `creds` name a user or nkey this config does not have (a reload then closes
    /// the connection without an `-ERR`, as nats-server does for a user that is gone).
    /// Credentials without a user or nkey (a token, the no-auth user) name none.
    pub fn names_unknown_identity(&self, creds: &Credentials<'_>) -> bool {
        if let Some(k) = creds.nkey.filter(|k| !k.is_empty()) {
            return !self.nkeys.contains_key(k);
        }
        match creds.user.filter(|u| !u.is_empty()) {
            Some(u) => {
                !self.users.contains_key(u) && self.single.as_ref().is_none_or(|(n, _)| n != u)
            }
            None => false,
        }
    }

    /// A fresh nonce for INFO: 11 random bytes, base64url without padding (15 characters).
    pub fn new_nonce() -> Result<String, AuthError> {
        let mut raw = [0u8; NONCE_RAW_LEN];
        twig_util::id::fill(&mut raw).map_err(|_| AuthError::Random)?;
        Ok(BASE64URL_NOPAD.encode(&raw))
    }

    /// Decides a CONNECT without a client certificate and returns only who it is.
    pub fn check(
        &self,
        creds: &Credentials<'_>,
        nonce: Option<&str>,
    ) -> Result<Identity, AuthError> {
        self.login(creds, nonce, None).map(|l| l.identity)
    }

    /// Decides a CONNECT. `nonce` is the one sent in this connection's INFO, if any; `cert`
    /// the client's verified certificate, if it presented one.
    pub fn login(
        &self,
        creds: &Credentials<'_>,
        nonce: Option<&str>,
        cert: Option<&CertIdentity>,
    ) -> Result<Login, AuthError> {
        if !self.auth_required() {
            return Ok(Login {
                identity: Identity::Anonymous,
                rules: None,
                by_certificate: false,
            });
        }
        let no_auth = self.no_auth_user.as_deref().filter(|_| creds.is_empty());
        // nkeys first, as nats-server: a CONNECT with an nkey (or the no-auth user, if that is
        // an nkey) is decided here.
        if !self.nkeys.is_empty() {
            let implied = no_auth.filter(|n| self.nkeys.contains_key(*n));
            if let Some(nkey) = implied.or(creds.nkey.filter(|k| !k.is_empty())) {
                let user = self.nkeys.get(nkey).ok_or(AuthError::UnknownNkey)?;
                if implied.is_none() {
                    verify_signature(&user.key, creds.sig, nonce)?;
                }
                let facts = Facts {
                    name: user.name.as_deref(),
                    subject: Some(nkey),
                    tags: &user.tags,
                };
                return Ok(Login {
                    identity: Identity::Nkey(nkey.to_string()),
                    rules: user.rules.for_identity(&facts)?,
                    by_certificate: false,
                });
            }
        }
        if !self.users.is_empty() {
            if self.tls_map {
                return self.login_by_certificate(creds, cert);
            }
            let implied = no_auth.filter(|n| self.users.contains_key(*n));
            if let Some(name) = implied.or(creds.user.filter(|u| !u.is_empty())) {
                let user = self.users.get(name).ok_or_else(|| {
                    // Spend the time of a real comparison before saying no.
                    let given = creds.pass.unwrap_or("");
                    constant_time_eq(given.as_bytes(), given.as_bytes());
                    AuthError::UnknownUser
                })?;
                // The no-auth user needs no password; anyone else needs the right one. A user
                // without a password can only be named by a certificate.
                if implied.is_none() {
                    let stored = user
                        .password
                        .as_deref()
                        .ok_or(AuthError::CertificateRequired)?;
                    if !compare(stored, creds.pass.unwrap_or("")) {
                        return Err(AuthError::BadPassword);
                    }
                }
                return self.user_login(name, user, name, false);
            }
        }
        if let Some(token) = &self.token {
            let given = creds.auth_token.ok_or(AuthError::MissingCredentials)?;
            return if compare(token, given) {
                Ok(Login {
                    identity: Identity::Token,
                    rules: None,
                    by_certificate: false,
                })
            } else {
                Err(AuthError::BadToken)
            };
        }
        if let Some((name, stored)) = &self.single {
            let user = creds.user.ok_or(AuthError::MissingCredentials)?;
            let ok_user = constant_time_eq(name.as_bytes(), user.as_bytes());
            let ok_pass = compare(stored, creds.pass.unwrap_or(""));
            return match (ok_user, ok_pass) {
                (true, true) => Ok(Login {
                    identity: Identity::User(user.to_string()),
                    rules: None,
                    by_certificate: false,
                }),
                (true, false) => Err(AuthError::BadPassword),
                (false, _) => Err(AuthError::UnknownUser),
            };
        }
        Err(AuthError::MissingCredentials)
    }

    /// `verify_and_map`: the certificate names the user; a password, if the user has one,
    /// must still match (nats-server compares it as for any user).
    fn login_by_certificate(
        &self,
        creds: &Credentials<'_>,
        cert: Option<&CertIdentity>,
    ) -> Result<Login, AuthError> {
        let cert = cert.ok_or(AuthError::NoCertificate)?;
        let names: Vec<&str> = self.user_order.iter().map(String::as_str).collect();
        let name = cert.map(&names).ok_or(AuthError::UnknownCertificate)?;
        let user = self.users.get(name).ok_or(AuthError::UnknownCertificate)?;
        let stored = user.password.as_deref().unwrap_or("");
        if !compare(stored, creds.pass.unwrap_or("")) {
            return Err(AuthError::BadPassword);
        }
        self.user_login(name, user, &cert.subject(), true)
    }

    fn user_login(
        &self,
        name: &str,
        user: &User,
        subject: &str,
        by_certificate: bool,
    ) -> Result<Login, AuthError> {
        let facts = Facts {
            name: Some(&user.name),
            subject: Some(subject),
            tags: &user.tags,
        };
        Ok(Login {
            identity: Identity::User(name.to_string()),
            rules: user.rules.for_identity(&facts)?,
            by_certificate,
        })
    }
}

fn verify_signature(
    key: &KeyPair,
    sig: Option<&str>,
    nonce: Option<&str>,
) -> Result<(), AuthError> {
    let nonce = nonce.ok_or(AuthError::MissingNonce)?;
    let sig = sig.ok_or(AuthError::MissingSignature)?;
    let sig = decode_signature(sig)?;
    key.verify(nonce.as_bytes(), &sig)
        .map_err(|_| AuthError::BadSignature)
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

#[cfg(test)]
mod tests {
    use super::*;
    use twig_config::UserConfig;

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
            ..UserConfig::default()
        }
    }

    fn nkey_user(kp: &KeyPair) -> UserConfig {
        UserConfig {
            nkey: Some(kp.public_key()),
            ..UserConfig::default()
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
            ..UserConfig::default()
        };
        let e = Authenticator::from_config(&AuthConfig {
            users: vec![bad],
            ..AuthConfig::default()
        });
        assert_eq!(e.err(), Some(AuthError::InvalidConfig));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
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
