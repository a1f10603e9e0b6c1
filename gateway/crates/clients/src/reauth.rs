//! The authorization in force and its reload (SIGHUP), as nats-server's `reloadAuthorization`:
//! the new users, tokens, nkeys and permissions apply to the connections already open, and
//! only those no longer allowed are cut off.
//!
//! Each accepted CONNECT leaves its credentials here (a [`StoredLogin`], kept as nats-server
//! keeps a client's CONNECT options; never logged). A reload swaps the [`Authenticator`] and
//! checks every stored login again:
//!
//! - a user or nkey named in CONNECT that the new config no longer has: the connection is
//!   closed without an `-ERR` (nats-server closes it as "moved to another account");
//! - credentials the new config refuses (a changed password, a removed token):
//!   `-ERR 'Authorization Violation'`, then closed;
//! - otherwise the identity's new rules go in force ([`apply_rules`]): fresh caches, earned
//!   reply permissions forgotten (nats-server makes a new `replies` map), and each
//!   subscription no longer allowed removed with
//!   `-ERR 'Permissions Violation for Subscription to "S" (sid "N")'`.
//!
//! Races with connections in flight are closed by a generation number: a CONNECT checked
//! against the old authenticator registers its login only if no reload came in between, else
//! it logs in again (`AuthState::generation`); a SUB checked against old rules is checked
//! again by its reader when the connection's rules changed meanwhile
//! (`ClientShared::perms_generation`, see `session.rs`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use twig_perms::violation::go_quote;
use twig_perms::{Budgets, Checker, Rules, Subscribe};
use twig_router::Router;
use twig_router::client::ClientShared;
use twig_router::outbound::CloseReason;
use twig_util::lock::lock;

use crate::auth::{Authenticator, CertIdentity, Credentials, Identity};

/// The authenticator in force, its generation, and the logins made under it (a leaf lock).
pub(crate) struct AuthState {
    pub(crate) current: Arc<Authenticator>,
    /// Bumped by every reload.
    pub(crate) generation: u64,
    /// Boxed: the table's slots stay small (it is sized for up to twice the connections).
    pub(crate) logins: HashMap<u64, Box<StoredLogin>>,
}

impl AuthState {
    pub(crate) fn new(auth: Authenticator) -> Self {
        AuthState {
            current: Arc::new(auth),
            generation: 0,
            logins: HashMap::new(),
        }
    }
}

/// What one connection logged in with, to check again on a reload.
#[derive(Clone)]
pub struct StoredLogin {
    /// The connection.
    pub client: Arc<ClientShared>,
    /// What it sent (or was given as the `no_auth_user`); `None` when nothing: every open
    /// connection keeps a `StoredLogin`, and most devices of an open gateway send nothing.
    secrets: Option<Box<Secrets>>,
    /// Logged in as the `no_auth_user` nkey without credentials.
    implied_nkey: bool,
    /// The client's certificate (`verify_and_map`); boxed, as most logins have none and
    /// every open connection keeps one `StoredLogin`.
    cert: Option<Box<CertIdentity>>,
}

// Secrets stay out of debug logs.
impl fmt::Debug for StoredLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredLogin")
            .field("cid", &self.client.cid)
            .field("user", &self.s().user)
            .field("nkey", &self.s().nkey)
            .finish_non_exhaustive()
    }
}

/// The credentials of a [`StoredLogin`] (and the nonce the nkey signed).
#[derive(Clone, Default, PartialEq, Eq)]
struct Secrets {
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
    nkey: Option<String>,
    sig: Option<String>,
    nonce: Option<String>,
}

static NO_SECRETS: Secrets = Secrets {
    user: None,
    pass: None,
    token: None,
    nkey: None,
    sig: None,
    nonce: None,
};

impl StoredLogin {
    fn s(&self) -> &Secrets {
        self.secrets.as_deref().unwrap_or(&NO_SECRETS)
    }

    /// Keeps `creds` (and the nonce the nkey signed) of `client`, which `auth` logged in as
    /// `identity`. A client that sent nothing and became the `no_auth_user` is kept as that
    /// user with the password configured now (nats-server copies both into the client's
    /// CONNECT options), so a reload that changes that user's password or removes it cuts
    /// the client off, and one that names another `no_auth_user` does not move it.
    pub fn new(
        client: Arc<ClientShared>,
        creds: &Credentials<'_>,
        nonce: Option<&str>,
        identity: &Identity,
        auth: &Authenticator,
        cert: Option<CertIdentity>,
    ) -> Self {
        let own = |s: Option<&str>| s.map(str::to_owned);
        let mut secrets = Secrets {
            user: own(creds.user),
            pass: own(creds.pass),
            token: own(creds.auth_token),
            nkey: own(creds.nkey),
            sig: own(creds.sig),
            nonce: own(nonce),
        };
        let mut implied_nkey = false;
        if creds.is_empty() && cert.is_none() {
            match identity {
                Identity::User(name) => {
                    secrets.pass = auth.password_of(name).map(str::to_owned);
                    secrets.user = Some(name.clone());
                }
                Identity::Nkey(key) => {
                    secrets.nkey = Some(key.clone());
                    implied_nkey = true;
                }
                Identity::Anonymous | Identity::Token => {}
            }
        }
        StoredLogin {
            client,
            secrets: (secrets != NO_SECRETS).then(|| Box::new(secrets)),
            implied_nkey,
            cert: cert.map(Box::new),
        }
    }

    /// The credentials to check against `auth`: as stored, except that the `no_auth_user`
    /// nkey needs no signature while it still is the `no_auth_user` (as in nats-server).
    fn credentials(&self, auth: &Authenticator) -> Credentials<'_> {
        if self.implied_nkey && auth.no_auth_user() == self.s().nkey.as_deref() {
            return Credentials::default();
        }
        Credentials {
            user: self.s().user.as_deref(),
            pass: self.s().pass.as_deref(),
            auth_token: self.s().token.as_deref(),
            nkey: self.s().nkey.as_deref(),
            sig: self.s().sig.as_deref(),
        }
    }

    /// The user or nkey named (for `names_unknown_identity`), as stored.
    fn named(&self) -> Credentials<'_> {
        Credentials {
            user: self.s().user.as_deref(),
            nkey: self.s().nkey.as_deref(),
            ..Credentials::default()
        }
    }
}

/// What a reload did to the open connections.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Connections checked.
    pub checked: usize,
    /// Closed: their user or nkey is gone.
    pub removed: usize,
    /// Closed with `Authorization Violation`: their credentials are refused now.
    pub refused: usize,
    /// Subscriptions removed because the new rules do not allow them.
    pub subs_removed: usize,
}

/// Puts `auth` in force and checks every open connection against it.
pub(crate) fn reload(
    state: &std::sync::Mutex<AuthState>,
    router: &Router,
    auth: Authenticator,
) -> Outcome {
    let auth = Arc::new(auth);
    let logins: Vec<StoredLogin> = {
        let mut st = lock(state);
        st.current = auth.clone();
        st.generation += 1;
        st.logins.values().map(|l| (**l).clone()).collect()
    };
    let mut out = Outcome::default();
    for login in logins {
        out.checked += 1;
        let client = &login.client;
        if client.out.closed().is_some() {
            continue;
        }
        if auth.names_unknown_identity(&login.named()) {
            out.removed += 1;
            tracing::info!(
                "{}:{} - cid:{} - closed: its user is no longer configured",
                client.addr.ip(),
                client.addr.port(),
                client.cid
            );
            client.out.close(CloseReason::ClientClosed);
            client.out.wake();
            continue;
        }
        let result = if auth.auth_required() {
            auth.login(
                &login.credentials(&auth),
                login.s().nonce.as_deref(),
                login.cert.as_deref(),
            )
            .map(|l| l.rules)
        } else {
            Ok(None)
        };
        match result {
            Ok(rules) => out.subs_removed += apply_rules(router, client, rules),
            Err(why) => {
                out.refused += 1;
                let who = match (&login.s().nkey, &login.s().user) {
                    (Some(k), _) if !k.is_empty() => format!(" - Nkey {k:?}"),
                    (_, Some(u)) if !u.is_empty() => format!(" - User {u:?}"),
                    _ => String::new(),
                };
                tracing::error!(
                    "{}:{} - cid:{} - authentication error{who} ({why}; after a reload)",
                    client.addr.ip(),
                    client.addr.port(),
                    client.cid
                );
                client.out.push_bytes(b"-ERR 'Authorization Violation'\r\n");
                client.out.close(CloseReason::AuthenticationViolation);
                client.out.wake();
            }
        }
    }
    out
}

/// Puts `rules` in force on `client` (fresh caches, no earned reply permissions) and removes
/// the subscriptions they no longer allow, telling the client about each. Returns how many.
pub fn apply_rules(
    router: &Router,
    client: &Arc<ClientShared>,
    rules: Option<Arc<Rules>>,
) -> usize {
    let subs: Vec<_> = lock(&client.subs).values().cloned().collect();
    // Filter every delivery while the rules change: a subscription that needs the filter
    // under the new rules must not get a message unfiltered in between.
    for s in &subs {
        s.filtered.store(true, Ordering::SeqCst);
    }
    client.set_perms(rules.map(|r| Checker::new(r, Budgets::default())));
    let mut removed = 0;
    for sub in subs {
        let queue = sub.queue.as_deref();
        let verdict = client
            .with_perms(|c| c.subscribe(&sub.subject, queue))
            .unwrap_or(Subscribe::Allowed { filtered: false });
        match verdict {
            Subscribe::Allowed { filtered } => sub.filtered.store(filtered, Ordering::SeqCst),
            Subscribe::Denied => {
                removed += 1;
                router.remove_sub(&sub);
                let sid = String::from_utf8_lossy(&sub.sid);
                let (subject, queue_part) = (
                    go_quote(&sub.subject),
                    queue.map(|q| format!(" using queue {}", go_quote(q))),
                );
                let queue_part = queue_part.unwrap_or_default();
                let line = format!(
                    "-ERR 'Permissions Violation for Subscription to {subject}{queue_part} (sid {})'\r\n",
                    go_quote(sid.as_bytes())
                );
                client.out.push_bytes(line.as_bytes());
                tracing::info!(
                    "Removed sub {subject}{queue_part} (sid {}) for cid:{} - not authorized",
                    go_quote(sid.as_bytes()),
                    client.cid
                );
            }
        }
    }
    if removed > 0 {
        client.flush();
    }
    removed
}
