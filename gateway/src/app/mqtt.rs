//! The MQTT listener's wiring: the sockets (the client port's rules for `host`), TLS, the
//! store file, and logins answered by the client port's authenticator, so MQTT devices have
//! the same users, passwords, certificates and permissions as NATS clients.

use std::sync::Arc;

use twig_core::log::Config as LogConfig;
use twig_core::mqtt::packet::reason;

use crate::auth::{AuthError, Authenticator, CertIdentity, Credentials};
use crate::config::{Config, MqttListenerConfig};
use crate::mqtt::listener::login::{LoggedIn, Login, LoginRequest, Refused};
use crate::mqtt::listener::{self, Listener, Setup};
use crate::mqtt::server::store::{Store, StoreLimits};
use crate::mqtt::server::{AllowAll, Permissions};
use crate::perms::Rules;
use crate::router::Router;
use crate::server::state::Shared;
use crate::stream::flash::FileFlash;

/// Starts the listener when `[mqtt_listener]` is configured.
pub fn start(
    config: &Config,
    router: &Arc<Router>,
    clients: &Arc<Shared>,
    ex: &Arc<async_executor::Executor<'static>>,
) -> Result<Option<Arc<Listener>>, String> {
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
    let login = MqttLogin::new(config, m)?;
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
        login: Arc::new(login),
        store,
        router: router.clone(),
        next_cid: Arc::new(move || next.next_cid()),
    };
    listener::start(setup, ex)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Logins against `[authorization]` (with `mqtt_listener.no_auth_user` for clients without a
/// user name). MQTT has no server nonce, so users identified by an nkey cannot log in over it.
struct MqttLogin {
    auth: Option<Authenticator>,
}

impl MqttLogin {
    fn new(config: &Config, m: &MqttListenerConfig) -> Result<MqttLogin, String> {
        let mut a = config.authorization.clone();
        if m.no_auth_user.is_some() {
            a.no_auth_user = m.no_auth_user.clone();
        }
        let auth = Authenticator::from_config(&a)
            .map_err(|e| format!("mqtt_listener: authorization: {e}"))?
            .map_certificates(m.tls.as_ref().is_some_and(|t| t.verify_and_map));
        Ok(MqttLogin {
            auth: auth.auth_required().then_some(auth),
        })
    }
}

impl Login for MqttLogin {
    fn login(&self, req: &LoginRequest<'_>) -> Result<LoggedIn, Refused> {
        let Some(auth) = &self.auth else {
            return Ok(LoggedIn {
                user: None,
                permissions: Box::new(AllowAll),
            });
        };
        let pass = match req.password.map(std::str::from_utf8) {
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                return Err(Refused {
                    code: reason::BAD_USER_NAME_OR_PASSWORD,
                    why: "password is not UTF-8".into(),
                });
            }
            None => None,
        };
        // A token is given as the password (nats-server's MQTT listener takes it so too).
        let creds = Credentials {
            user: req.username,
            pass,
            auth_token: pass,
            nkey: None,
            sig: None,
        };
        let cert = req
            .certificate
            .and_then(|der| CertIdentity::from_der(der).ok());
        match auth.login(&creds, None, cert.as_ref()) {
            Ok(l) => Ok(LoggedIn {
                user: l.identity.name().map(str::to_string),
                permissions: match l.rules {
                    Some(rules) => Box::new(RulesPerms(rules)),
                    None => Box::new(AllowAll),
                },
            }),
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
}

/// A user's permission rules, asked by the MQTT session about NATS subjects.
struct RulesPerms(Arc<Rules>);

impl Permissions for RulesPerms {
    fn publish(&self, subject: &str) -> bool {
        self.0.may_publish(subject.as_bytes())
    }
    fn subscribe(&self, subject: &str, queue: Option<&str>) -> bool {
        self.0
            .may_subscribe(subject.as_bytes(), queue.map(str::as_bytes))
    }
}
