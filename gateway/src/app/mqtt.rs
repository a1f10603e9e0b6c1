//! The MQTT listener's wiring: the sockets (the client port's rules for `host`), TLS, the
//! store file, and logins answered by the client port's authenticator, so MQTT devices have
//! the same users, passwords, certificates and permissions as NATS clients.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use twig_core::log::Config as LogConfig;
use twig_core::mqtt::packet::reason;

use crate::auth::{AuthError, Authenticator, CertIdentity, Credentials};
use crate::config::{Config, MqttListenerConfig};
use crate::mqtt::listener::login::{LoggedIn, Login, LoginRequest, Refused, Verdict};
use crate::mqtt::listener::{self, Listener, Setup};
use crate::mqtt::server::store::{Store, StoreLimits};
use crate::mqtt::server::{AllowAll, Permissions};
use crate::perms::Rules;
use crate::router::Router;
use crate::server::state::Shared;
use crate::stream::flash::FileFlash;
use crate::util::lock::lock;

/// Starts the listener when `[mqtt_listener]` is configured.
pub fn start(
    config: &Config,
    router: &Arc<Router>,
    clients: &Arc<Shared>,
    ex: &Arc<async_executor::Executor<'static>>,
) -> Result<Option<MqttReload>, String> {
    let Some(m) = &config.mqtt_listener else {
        return Ok(None);
    };
    let port = m.port.bind_port();
    let backlog = config.listen_backlog;
    let bound = crate::server::listen::bind(m.host.as_deref(), port, backlog).map_err(|e| {
        format!(
            "cannot listen for MQTT clients on {}:{port}: {e}",
            m.host
                .as_deref()
                .unwrap_or(crate::server::listen::DEFAULT_HOST)
        )
    })?;
    let tls = match &m.tls {
        Some(t) => Some(
            crate::server::tls::server_config(t).map_err(|e| format!("mqtt_listener.tls: {e}"))?,
        ),
        None => None,
    };
    let login = Arc::new(MqttLogin::new(config, m, clients)?);
    let path = m.store_path(&config.store_dir);
    let flash = FileFlash::open(&path, m.store_size as u64)
        .map_err(|e| format!("mqtt_listener: cannot open {}: {e}", path.display()))?;
    let limits = StoreLimits {
        max_retained_bytes: m.max_retained_bytes,
        max_retained: m.max_retained,
    };
    let log = LogConfig::new(0, m.store_size as u32);
    let store = Store::open(flash, log, limits)
        .map_err(|e| format!("mqtt_listener: cannot read {}: {e:?}", path.display()))?;
    let next = clients.clone();
    let setup = Setup {
        config: m.clone(),
        listeners: bound.listeners,
        tls,
        login: login.clone(),
        store,
        router: router.clone(),
        next_cid: Arc::new(move || next.next_cid()),
    };
    let listener = listener::start(setup, ex).map_err(|e| e.to_string())?;
    Ok(Some(MqttReload { listener, login }))
}

/// Logins against `[authorization]` (with `mqtt_listener.no_auth_user` for clients without a
/// user name). MQTT has no server nonce, so users identified by an nkey cannot log in over it.
///
/// A reload swaps the authenticator ([`MqttReload`]): each open login is checked again with
/// the credentials it logged in with (as `twig_clients::reauth` does for NATS clients), and
/// its session is told to recheck, so a removed user is closed and narrowed permissions apply
/// to the sessions already open, kept offline ones included.
pub struct MqttLogin {
    /// `mqtt_listener.no_auth_user`, which overrides `[authorization]`'s.
    no_auth_user: Option<String>,
    /// `mqtt_listener.tls.verify_and_map`.
    map_certificates: bool,
    /// `None`: no `[authorization]`, everyone may do everything.
    auth: Mutex<Option<Arc<Authenticator>>>,
    /// The logins accepted so far, for a reload to check again (dead ones pruned on login).
    live: Arc<Mutex<Vec<Weak<LiveLogin>>>>,
    /// The client port's state: its turns for bcrypt checks are shared with the devices.
    clients: Arc<Shared>,
}

/// What a reload checks an open login with: the credentials it logged in with.
struct LiveLogin {
    user: Option<String>,
    pass: Option<String>,
    cert: Option<CertIdentity>,
    /// `None`: everything allowed.
    rules: Mutex<Option<Arc<Rules>>>,
    revoked: AtomicBool,
}

/// A new authenticator, built and checked, waiting for [`MqttReload::apply`].
pub struct Prepared(Option<Arc<Authenticator>>);

/// What a reload did to the MQTT logins.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rechecked {
    /// Open logins checked again.
    pub checked: usize,
    /// Those whose login no longer holds (closed).
    pub revoked: usize,
}

impl MqttLogin {
    fn new(
        config: &Config,
        m: &MqttListenerConfig,
        clients: &Arc<Shared>,
    ) -> Result<MqttLogin, String> {
        let login = MqttLogin {
            no_auth_user: m.no_auth_user.clone(),
            map_certificates: m.tls.as_ref().is_some_and(|t| t.verify_and_map),
            auth: Mutex::new(None),
            live: Arc::new(Mutex::new(Vec::new())),
            clients: clients.clone(),
        };
        let Prepared(auth) = login.prepare(config)?;
        *lock(&login.auth) = auth;
        Ok(login)
    }

    /// The authenticator for `config`'s `[authorization]`, or why it cannot be built.
    fn prepare(&self, config: &Config) -> Result<Prepared, String> {
        let mut a = config.authorization.clone();
        if self.no_auth_user.is_some() {
            a.no_auth_user = self.no_auth_user.clone();
        }
        let auth = Authenticator::from_config(&a)
            .map_err(|e| format!("mqtt_listener: authorization: {e}"))?
            .map_certificates(self.map_certificates);
        Ok(Prepared(auth.auth_required().then(|| Arc::new(auth))))
    }

    /// Checks `live` against `auth` (`None`: no authorization), as a new login would be.
    fn check(
        auth: Option<&Authenticator>,
        live: &LiveLogin,
    ) -> Result<Option<Arc<Rules>>, AuthError> {
        match auth {
            Some(auth) => check_login(auth, live).map(|(_, rules)| rules),
            None => Ok(None),
        }
    }
}

impl Login for MqttLogin {
    fn login(&self, req: &LoginRequest<'_>) -> Verdict {
        let auth = lock(&self.auth).clone();
        let Some(auth) = auth else {
            return Box::pin(std::future::ready(Ok(LoggedIn {
                user: None,
                permissions: Box::new(AllowAll),
            })));
        };
        let pass = match req.password.map(std::str::from_utf8) {
            Some(Ok(p)) => Some(p.to_string()),
            Some(Err(_)) => {
                return Box::pin(std::future::ready(Err(Refused {
                    code: reason::BAD_USER_NAME_OR_PASSWORD,
                    why: "password is not UTF-8".into(),
                })));
            }
            None => None,
        };
        let live = LiveLogin {
            user: req.username.map(str::to_string),
            pass,
            cert: req
                .certificate
                .and_then(|der| CertIdentity::from_der(der).ok()),
            rules: Mutex::new(None),
            revoked: AtomicBool::new(false),
        };
        let all = self.live.clone();
        if !auth.needs_blocking(&live.credentials()) {
            let verdict = check_login(&auth, &live);
            return Box::pin(std::future::ready(accepted(verdict, live, &all)));
        }
        // bcrypt: on a blocking thread, in a turn shared with the NATS clients' logins
        // (`authorization.max_bcrypt_checks` at once); only this device's task waits.
        let clients = self.clients.clone();
        Box::pin(async move {
            let turn = clients.bcrypt_turn().await;
            let (verdict, live) = blocking::unblock(move || {
                let _turn = turn;
                (check_login(&auth, &live), live)
            })
            .await;
            accepted(verdict, live, &all)
        })
    }
}

/// Who `live` logs in as, and its rules.
fn check_login(
    auth: &Authenticator,
    live: &LiveLogin,
) -> Result<(Option<String>, Option<Arc<Rules>>), AuthError> {
    auth.login(&live.credentials(), None, live.cert.as_ref())
        .map(|l| (l.identity.name().map(str::to_string), l.rules))
}

/// The listener's answer to a login's verdict; an accepted login is kept for reloads.
fn accepted(
    verdict: Result<(Option<String>, Option<Arc<Rules>>), AuthError>,
    live: LiveLogin,
    all: &Mutex<Vec<Weak<LiveLogin>>>,
) -> Result<LoggedIn, Refused> {
    match verdict {
        Ok((user, rules)) => {
            *lock(&live.rules) = rules;
            let live = Arc::new(live);
            let mut all = lock(all);
            // Pruned when the list doubles: amortized O(1) per login.
            if all.len() >= 64 && all.len().is_power_of_two() {
                all.retain(|w| w.strong_count() > 0);
            }
            all.push(Arc::downgrade(&live));
            Ok(LoggedIn {
                user,
                permissions: Box::new(LivePerms(live)),
            })
        }
        Err(e) => Err(Refused {
            code: match e {
                AuthError::Permissions(_) | AuthError::InvalidPermissions(_) => {
                    reason::NOT_AUTHORIZED
                }
                _ => reason::BAD_USER_NAME_OR_PASSWORD,
            },
            why: e.to_string(),
        }),
    }
}

impl LiveLogin {
    /// The credentials it logged in with. A token is given as the password (nats-server's
    /// MQTT listener takes it so too).
    fn credentials(&self) -> Credentials<'_> {
        Credentials {
            user: self.user.as_deref(),
            pass: self.pass.as_deref(),
            auth_token: self.pass.as_deref(),
            nkey: None,
            sig: None,
        }
    }
}

/// The listener and its logins, for a reload of `[authorization]`.
pub struct MqttReload {
    pub listener: Arc<Listener>,
    pub login: Arc<MqttLogin>,
}

impl MqttReload {
    /// Builds the authenticator of `next`; an error refuses the whole reload.
    pub fn prepare(&self, next: &Config) -> Result<Prepared, String> {
        self.login.prepare(next)
    }

    /// Puts `p` in force: new logins use it, open ones are checked again with it (on the
    /// caller's thread: a bcrypt check takes tens of ms), then every session rechecks.
    pub fn apply(&self, Prepared(auth): Prepared) -> Rechecked {
        *lock(&self.login.auth) = auth.clone();
        let live: Vec<Arc<LiveLogin>> = {
            let mut all = lock(&self.login.live);
            all.retain(|w| w.strong_count() > 0);
            all.iter().filter_map(Weak::upgrade).collect()
        };
        let mut out = Rechecked::default();
        for l in &live {
            out.checked += 1;
            match MqttLogin::check(auth.as_deref(), l) {
                Ok(rules) => *lock(&l.rules) = rules,
                Err(_) => {
                    l.revoked.store(true, Ordering::Release);
                    out.revoked += 1;
                }
            }
        }
        self.listener.recheck();
        out
    }
}

/// A login's permissions, as the last reload left them.
struct LivePerms(Arc<LiveLogin>);

impl Permissions for LivePerms {
    fn publish(&self, subject: &str) -> bool {
        !self.revoked()
            && lock(&self.0.rules)
                .as_ref()
                .is_none_or(|r| r.may_publish(subject.as_bytes()))
    }
    fn subscribe(&self, subject: &str, queue: Option<&str>) -> bool {
        !self.revoked()
            && lock(&self.0.rules)
                .as_ref()
                .is_none_or(|r| r.may_subscribe(subject.as_bytes(), queue.map(str::as_bytes)))
    }
    fn deliver(&self, subject: &str, queue: Option<&str>) -> bool {
        !self.revoked()
            && lock(&self.0.rules)
                .as_ref()
                .is_none_or(|r| r.may_deliver(subject.as_bytes(), queue.map(str::as_bytes)))
    }
    fn revoked(&self) -> bool {
        self.0.revoked.load(Ordering::Acquire)
    }
}
