//! Operator-mode credentials for tests: operator, account and user JWTs signed with nkeys (the
//! NATS JWT v2 format: base64url header and claims, Ed25519 signature by the issuer), and the
//! `.creds` file a user gets. Only what a hub in operator mode checks; no expiry, no limits.

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use serde_json::{Value, json};

/// A key pair and the JWT that describes it.
pub struct Signed {
    /// The subject's keys.
    pub key: KeyPair,
    /// Its JWT.
    pub jwt: String,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Encodes `claims` as a JWT signed by `issuer`.
pub fn encode(claims: &Value, issuer: &KeyPair) -> String {
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{body}");
    let sig = issuer.sign(signing_input.as_bytes()).expect("sign JWT");
    format!("{signing_input}.{}", BASE64URL_NOPAD.encode(&sig))
}

fn claims(name: &str, issuer: &KeyPair, subject: &KeyPair, nats: Value) -> Value {
    let mut jti = [0u8; 16];
    getrandom_fill(&mut jti);
    json!({
        "jti": data_encoding::BASE32_NOPAD.encode(&jti),
        "iat": now(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject.public_key(),
        "nats": nats,
    })
}

fn getrandom_fill(b: &mut [u8]) {
    // Uniqueness only; a fresh key pair's public key is random enough.
    let k = KeyPair::new_user().public_key();
    for (i, x) in b.iter_mut().enumerate() {
        *x = k.as_bytes()[(i * 3 + 5) % k.len()];
    }
}

/// A self-signed operator.
pub fn operator(name: &str) -> Signed {
    let key = KeyPair::new_operator();
    let jwt = encode(
        &claims(name, &key, &key, json!({"type": "operator", "version": 2})),
        &key,
    );
    Signed { key, jwt }
}

/// An account of `op` without limits.
pub fn account(op: &Signed, name: &str) -> Signed {
    let key = KeyPair::new_account();
    let nats = json!({
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                   "wildcards": true, "conn": -1, "leaf": -1},
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account",
        "version": 2
    });
    let jwt = encode(&claims(name, &op.key, &key, nats), &op.key);
    Signed { key, jwt }
}

/// A user of `acc` without limits.
pub fn user(acc: &Signed, name: &str) -> Signed {
    let key = KeyPair::new_user();
    let nats = json!({
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2
    });
    let jwt = encode(&claims(name, &acc.key, &key, nats), &acc.key);
    Signed { key, jwt }
}

/// The `.creds` file text for `user` (as `nsc` writes it).
pub fn creds_file(user: &Signed) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n",
        user.jwt,
        user.key.seed().expect("user seed")
    )
}

/// The hub config lines for operator mode with `accounts` preloaded in a memory resolver.
pub fn hub_config(op: &Signed, accounts: &[&Signed]) -> String {
    let preload = accounts
        .iter()
        .map(|a| format!("  {}: \"{}\"", a.key.public_key(), a.jwt))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "operator: \"{}\"\nresolver: MEMORY\nresolver_preload: {{\n{preload}\n}}\n",
        op.jwt
    )
}
