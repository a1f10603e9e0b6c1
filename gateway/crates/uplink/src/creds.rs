//! Credentials for the hub: user/password, token, an nkey seed, or a `.creds` file (a user
//! JWT and the seed that signs the hub's nonce), as nats-server's `sendLeafConnect` sends them.
//!
//! Loading reads files (the shell does it before each connect, so a rotated `.creds` file is
//! picked up); filling a CONNECT only signs, so the session stays free of I/O.
use std::path::{Path, PathBuf};

use data_encoding::BASE64URL_NOPAD;
use twig_core::wire::json::full::LeafConnect;

use twig_config::{LeafUrl, RemoteConfig};

/// Why credentials could not be loaded. One sentence each, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    /// The `.creds` file could not be read.
    #[error("cannot read credentials file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file does not hold a JWT block followed by a seed block.
    #[error("credentials file {} is malformed: expected a user JWT and an nkey seed block", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The seed does not decode.
    #[error("the nkey seed {where_} is not valid: {error}")]
    BadSeed {
        /// Which seed (the file, or "in the config").
        where_: String,
        /// What nkeys said.
        error: String,
    },
}

/// What authenticates twig to the hub.
pub enum Credentials {
    /// Nothing (a hub without leafnode auth).
    None,
    /// `user` and `pass`; a user without password is also sent as a token, as nats-server does.
    UserPass {
        /// User name.
        user: String,
        /// Password, if any.
        pass: Option<String>,
    },
    /// A token.
    Token(String),
    /// An nkey: the public key is sent with the nonce signature.
    Nkey(nkeys::KeyPair),
    /// A user JWT and the key that signs the nonce (`.creds` file).
    Jwt {
        /// The user JWT.
        jwt: String,
        /// The user's key pair.
        key: nkeys::KeyPair,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::UserPass { .. } => "UserPass",
            Credentials::Token(_) => "Token",
            Credentials::Nkey(_) => "Nkey",
            Credentials::Jwt { .. } => "Jwt",
        })
    }
}

impl Credentials {
    /// The credentials for connecting to `url` of `remote`: the remote's own, else those in
    /// the URL (`user:pass@`).
    pub fn load(remote: &RemoteConfig, url: &LeafUrl) -> Result<Credentials, CredsError> {
        if let Some(path) = &remote.credentials {
            return load_creds_file(path);
        }
        if let Some(seed) = &remote.nkey {
            let key = nkeys::KeyPair::from_seed(seed).map_err(|e| CredsError::BadSeed {
                where_: "in the config".into(),
                error: e.to_string(),
            })?;
            return Ok(Credentials::Nkey(key));
        }
        if let Some(t) = &remote.token {
            return Ok(Credentials::Token(t.clone()));
        }
        if let Some(u) = &remote.user {
            return Ok(Credentials::UserPass {
                user: u.clone(),
                pass: remote.password.clone(),
            });
        }
        if let Some(u) = &url.user {
            return Ok(Credentials::UserPass {
                user: u.clone(),
                pass: url.password.clone(),
            });
        }
        Ok(Credentials::None)
    }

    /// Puts the credentials into `connect`, signing `nonce` where a key is involved.
    pub fn fill(&self, nonce: Option<&str>, connect: &mut LeafConnect) {
        let sign = |key: &nkeys::KeyPair| {
            key.sign(nonce.unwrap_or_default().as_bytes())
                .ok()
                .map(|s| BASE64URL_NOPAD.encode(&s))
        };
        match self {
            Credentials::None => {}
            Credentials::UserPass { user, pass } => {
                connect.user = Some(user.clone());
                match pass {
                    Some(p) => connect.pass = Some(p.clone()),
                    // nats-server: "if only username is provided, set both Token and User".
                    None => connect.auth_token = Some(user.clone()),
                }
            }
            Credentials::Token(t) => connect.auth_token = Some(t.clone()),
            Credentials::Nkey(key) => {
                connect.nkey = Some(key.public_key());
                connect.sig = sign(key);
            }
            Credentials::Jwt { jwt, key } => {
                connect.jwt = Some(jwt.clone());
                connect.sig = sign(key);
            }
        }
    }
}

fn load_creds_file(path: &Path) -> Result<Credentials, CredsError> {
    let text = std::fs::read_to_string(path).map_err(|error| CredsError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let (jwt, seed) = parse_creds(&text).ok_or_else(|| CredsError::Malformed {
        path: path.to_path_buf(),
    })?;
    let key = nkeys::KeyPair::from_seed(seed).map_err(|e| CredsError::BadSeed {
        where_: format!("in {}", path.display()),
        error: e.to_string(),
    })?;
    Ok(Credentials::Jwt {
        jwt: jwt.to_string(),
        key,
    })
}

/// The JWT and the seed of a `.creds` file: the first two blocks framed by dashed lines
/// (`-----BEGIN NATS USER JWT-----` … `------END NATS USER JWT------`).
pub fn parse_creds(text: &str) -> Option<(&str, &str)> {
    let mut blocks = Vec::with_capacity(2);
    let mut lines = text.lines().map(str::trim);
    while blocks.len() < 2 {
        // An opening dashed line, one content line, a closing dashed line.
        let open = lines.by_ref().find(|l| is_dash_line(l))?;
        let _ = open;
        let content = lines.next()?;
        if content.is_empty() || is_dash_line(content) {
            return None;
        }
        let close = lines.next()?;
        if !is_dash_line(close) {
            return None;
        }
        blocks.push(content);
    }
    Some((blocks.first()?, blocks.get(1)?))
}

fn is_dash_line(l: &str) -> bool {
    l.len() > 6 && l.starts_with("---") && l.ends_with("---")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDS: &str = "-----BEGIN NATS USER JWT-----
eyJhbGciOiJlZDI1NTE5LW5rZXkiLCJ0eXAiOiJKV1QifQ.e30.c2ln
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.

-----BEGIN USER NKEY SEED-----
SEED_HERE
------END USER NKEY SEED------

*************************************************************
";

    #[test]
    fn creds_file_blocks() {
        let (jwt, seed) = parse_creds(CREDS).unwrap();
        assert!(jwt.starts_with("eyJ") && jwt.ends_with("c2ln"));
        assert_eq!(seed, "SEED_HERE");
        assert_eq!(parse_creds("no blocks here"), None);
        assert_eq!(parse_creds("-----BEGIN X-----\n-----END X-----\n"), None);
    }

    #[test]
    fn nkey_signature_verifies_and_user_alone_is_also_a_token() {
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().unwrap();
        let creds = Credentials::Nkey(nkeys::KeyPair::from_seed(&seed).unwrap());
        let mut c = LeafConnect::default();
        creds.fill(Some("NONCE123"), &mut c);
        assert_eq!(c.nkey.as_deref(), Some(user.public_key().as_str()));
        let sig = BASE64URL_NOPAD.decode(c.sig.unwrap().as_bytes()).unwrap();
        user.verify(b"NONCE123", &sig).unwrap();

        let mut c = LeafConnect::default();
        Credentials::UserPass {
            user: "edge".into(),
            pass: None,
        }
        .fill(None, &mut c);
        assert_eq!(
            (c.user.as_deref(), c.auth_token.as_deref()),
            (Some("edge"), Some("edge"))
        );
    }

    #[test]
    fn creds_file_on_disk() {
        let user = nkeys::KeyPair::new_user();
        let dir = std::env::temp_dir().join(format!("twig-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("u.creds");
        let text = CREDS.replace("SEED_HERE", &user.seed().unwrap());
        std::fs::write(&path, text).unwrap();
        let Credentials::Jwt { jwt, key } = load_creds_file(&path).unwrap() else {
            panic!("not a JWT")
        };
        assert!(jwt.starts_with("eyJ"));
        assert_eq!(key.public_key(), user.public_key());
        let missing = load_creds_file(&dir.join("nope.creds")).unwrap_err();
        assert!(missing.to_string().contains("nope.creds"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
