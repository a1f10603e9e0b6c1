//! State shared by every client connection of one server: configuration, identity, the
//! router, credentials, TLS, and the live connections (for monitoring and shutdown).
//!
//! Lock order: `clients`, `auth` and `tls` are each taken alone; a client's own locks are never held
//! while taking them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use twig_core::wire::json::full::ServerInfo;

use crate::auth::throttle::LoginThrottle;
use crate::auth::{AuthError, Authenticator, CertIdentity, Login};
use crate::reauth::{self, AuthState, Outcome, StoredLogin};
use crate::session::PendingConnect;
use crate::tls::ClientTls;
use twig_config::Config;
use twig_router::Router;
use twig_router::client::ClientShared;
use twig_util::id::Identity;
use twig_util::lock::lock;

/// Everything connections share.
pub struct Shared {
    /// The configuration the server runs with (after flags were applied).
    pub config: Arc<Config>,
    /// `server_id`: an nkey-shaped random id, as nats-server's.
    pub server_id: String,
    /// `server_name` (the configured name, or the id).
    pub server_name: String,
    /// The port actually bound (differs from the config when it asked for -1).
    pub port: u16,
    /// When the server started.
    pub start: SystemTime,
    /// Subscriptions and delivery (and the server-wide counters).
    pub router: Arc<Router>,
    /// Credentials checks in force, and the logins made (see [`crate::reauth`]).
    auth: Mutex<AuthState>,
    /// Failed logins per address, to slow down guessing (a leaf lock, taken alone).
    pub login_throttle: Mutex<LoginThrottle>,
    /// Turns for bcrypt checks (`authorization.max_bcrypt_checks` at once) and their number;
    /// a reload that changes the number puts a new one in (a leaf lock, taken alone).
    bcrypt_gate: Mutex<(usize, Arc<async_lock::Semaphore>)>,
    /// TLS for the client port in force, when configured (a leaf lock, taken alone: a
    /// connection clones it once; a reload swaps it).
    tls: Mutex<Option<ClientTls>>,
    /// Live client connections by cid.
    pub clients: Mutex<HashMap<u64, Arc<ClientShared>>>,
    /// Lame duck mode was entered (SIGUSR2): no new clients, the others are being closed.
    lame_duck: AtomicBool,
    next_cid: AtomicU64,
}

impl Shared {
    /// Shared state for a server bound to `port`, delivering through `router`.
    pub fn new(
        config: Arc<Config>,
        identity: Identity,
        router: Arc<Router>,
        port: u16,
        auth: Authenticator,
        tls: Option<ClientTls>,
    ) -> Self {
        let throttle = LoginThrottle::new(config.authorization.login_throttle);
        let checks = config.authorization.max_bcrypt_checks.max(1);
        Shared {
            bcrypt_gate: Mutex::new((checks, Arc::new(async_lock::Semaphore::new(checks)))),
            config,
            server_id: identity.server_id,
            server_name: identity.server_name,
            port,
            start: twig_util::clock::now(),
            router,
            login_throttle: Mutex::new(throttle),
            auth: Mutex::new(AuthState::new(auth)),
            tls: Mutex::new(tls),
            clients: Mutex::new(HashMap::new()),
            lame_duck: AtomicBool::new(false),
            next_cid: AtomicU64::new(1),
        }
    }

    /// The client port's TLS in force (a reload may change it; a connection keeps the one it
    /// was accepted with).
    pub fn tls(&self) -> Option<ClientTls> {
        lock(&self.tls).clone()
    }

    /// A reload's `[tls]`, already built (so nothing here can fail): connections accepted
    /// from now on are upgraded with it, or stay plain when it is `None`; the open ones keep
    /// their session. When `verify_and_map` changes, the caller reloads the authorization
    /// too ([`Shared::reload_authorization`] builds its authenticator from the same config).
    pub fn reload_tls(&self, tls: Option<ClientTls>) {
        *lock(&self.tls) = tls;
    }

    /// The credentials checks in force (they change on a reload).
    pub fn auth(&self) -> Arc<Authenticator> {
        lock(&self.auth).current.clone()
    }

    /// The authenticator in force and its generation, for a CONNECT.
    pub(crate) fn auth_snapshot(&self) -> (Arc<Authenticator>, u64) {
        let st = lock(&self.auth);
        (st.current.clone(), st.generation)
    }

    /// Keeps an accepted login for reloads; false (nothing kept) when a reload came after
    /// `generation`: the CONNECT must be checked again against the new authenticator.
    pub(crate) fn register_login(&self, generation: u64, login: StoredLogin) -> bool {
        let mut st = lock(&self.auth);
        if st.generation != generation {
            return false;
        }
        st.logins.insert(login.client.cid, Box::new(login));
        true
    }

    /// A connection closed: its login is forgotten.
    pub(crate) fn forget_login(&self, cid: u64) {
        lock(&self.auth).logins.remove(&cid);
    }

    /// A reload's `[authorization]`: refused whole (nothing changes) when it cannot be put in
    /// force; else the new users, tokens, nkeys and permissions apply to new and open
    /// connections alike ([`crate::reauth`]).
    pub fn reload_authorization(&self, config: &Config) -> Result<Outcome, String> {
        let auth = Authenticator::for_config(config).map_err(|e| e.to_string())?;
        let throttle = config.authorization.login_throttle;
        {
            let mut t = lock(&self.login_throttle);
            if t.config() != throttle {
                *t = LoginThrottle::new(throttle);
            }
        }
        {
            // Checks already running keep their turns on the old gate until they finish.
            let checks = config.authorization.max_bcrypt_checks.max(1);
            let mut g = lock(&self.bcrypt_gate);
            if g.0 != checks {
                *g = (checks, Arc::new(async_lock::Semaphore::new(checks)));
            }
        }
        Ok(reauth::reload(&self.auth, &self.router, auth))
    }

    /// Decides the CONNECT `p` of `client` on a blocking thread (its bcrypt check would hold
    /// an executor thread for tens to hundreds of milliseconds): once a turn is free (at most
    /// `authorization.max_bcrypt_checks` run at once, the others wait here, one waiting
    /// future per connection, so `max_connections` bounds the queue). The turn is held by
    /// the check itself, so a connection that goes away meanwhile does not free it early.
    /// `None`: the client was closed while it waited for its turn (no check was spent on it).
    pub(crate) async fn login_off_loop(
        &self,
        client: &ClientShared,
        auth: Arc<Authenticator>,
        p: &PendingConnect,
        nonce: Option<String>,
        cert: Option<CertIdentity>,
    ) -> Option<Result<Option<Login>, AuthError>> {
        let gate = lock(&self.bcrypt_gate).1.clone();
        let turn = gate.acquire_arc().await;
        if client.out.closed().is_some() {
            return None;
        }
        let creds = p.owned_credentials();
        let verdict = blocking::unblock(move || {
            let _turn = turn;
            let c = creds.borrowed();
            auth.login(&c, nonce.as_deref(), cert.as_ref())
        })
        .await;
        Some(verdict.map(Some))
    }

    /// A turn for one bcrypt check, for another listener's logins (the MQTT devices'): at
    /// most `authorization.max_bcrypt_checks` run at once across all of them. Hold it for
    /// the whole check.
    pub async fn bcrypt_turn(&self) -> async_lock::SemaphoreGuardArc {
        let gate = lock(&self.bcrypt_gate).1.clone();
        gate.acquire_arc().await
    }

    /// The next connection id.
    pub fn next_cid(&self) -> u64 {
        self.next_cid.fetch_add(1, Relaxed)
    }

    /// The live connections (a snapshot of the set, for monitoring).
    pub fn connections(&self) -> Vec<Arc<ClientShared>> {
        lock(&self.clients).values().cloned().collect()
    }

    /// Whether headers are on for this server.
    pub fn headers_supported(&self) -> bool {
        !self.config.no_header_support
    }

    /// The INFO line sent on accept, for a connection upgraded with `tls` (the TLS in force
    /// when it was accepted, [`Shared::tls`]).
    pub fn info_line(
        &self,
        client: &ClientShared,
        nonce: Option<&str>,
        tls: Option<&ClientTls>,
    ) -> String {
        self.info_json(client, nonce, tls, false, false)
    }

    /// The INFO nats-server 2.12+ sends after the first PONG to a protocol-1 client.
    pub fn connect_info_line(&self, client: &ClientShared) -> String {
        self.info_json(client, None, self.tls().as_ref(), true, false)
    }

    /// The async INFO that announces lame duck mode (`"ldm":true`; no nonce, as nats-server).
    pub fn lame_duck_info_line(&self, client: &ClientShared) -> String {
        self.info_json(client, None, self.tls().as_ref(), false, true)
    }

    /// Marks lame duck mode (see [`super::lame_duck`]).
    pub fn enter_lame_duck(&self) {
        self.lame_duck.store(true, Relaxed);
    }

    /// Whether lame duck mode was entered.
    pub fn in_lame_duck(&self) -> bool {
        self.lame_duck.load(Relaxed)
    }

    fn info_json(
        &self,
        client: &ClientShared,
        nonce: Option<&str>,
        tls: Option<&ClientTls>,
        connect_info: bool,
        ldm: bool,
    ) -> String {
        // Every field nats-server 2.15.1 sends in the same configuration, in its order and
        // with its omitempty rules (twig-core's owned INFO), except these, left out on purpose:
        // - `jetstream`, `api_lvl`, `domain`: twig has no JetStream API (its streams answer
        //   PubAcks, nothing else), so a client must not think it can manage streams here;
        // - `xkey`: the x25519 key nats-server signs auth-callout requests for; twig has no
        //   auth callout, and a key nobody can use would only mislead;
        // - `tls_available`: nats-server's `allow_non_tls`, which twig does not have;
        // - `cluster`, `cluster_dynamic`, `connect_urls`, `ws_connect_urls`: twig is never
        //   part of a cluster, so there are no other servers to announce.
        // `go` carries the Rust compiler that built twig (clients such as nats-core require
        // the key), and `twig_version` follows nats-server's fields.
        let info = ServerInfo {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: twig_util::version::NATS_SERVER.to_owned(),
            proto: 1,
            git_commit: twig_util::version::git_commit().map(str::to_owned),
            go: twig_util::version::RUSTC.to_owned(),
            host: self.config.listen_host().to_owned(),
            port: i32::from(self.port),
            headers: self.headers_supported(),
            auth_required: self.auth().info_auth_required(),
            tls_required: tls.is_some(),
            tls_verify: tls.is_some_and(|t| t.verify),
            max_payload: i32::try_from(self.config.max_payload).unwrap_or(i32::MAX),
            client_id: client.cid,
            client_ip: Some(client.addr.ip().to_string()),
            nonce: nonce.map(str::to_owned),
            connect_info,
            remote_account: connect_info.then(|| "$G".to_owned()),
            ldm,
            ..ServerInfo::default()
        };
        let json = serde_json::to_vec(&InfoWithTwigVersion {
            info: &info,
            twig_version: twig_util::version::TWIG,
        })
        .unwrap_or_default();
        // nats-server writes a space between the JSON and CRLF.
        format!("INFO {} \r\n", String::from_utf8_lossy(&json))
    }
}

/// twig-core's INFO with `twig_version` after nats-server's fields.
#[derive(serde::Serialize)]
struct InfoWithTwigVersion<'a> {
    #[serde(flatten)]
    info: &'a ServerInfo,
    twig_version: &'a str,
}
