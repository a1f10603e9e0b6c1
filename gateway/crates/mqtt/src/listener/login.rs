//! How the listener asks who a device is. The app answers with the same users, passwords,
//! certificates and permissions as for NATS clients (`twig-clients`' authenticator): this
//! component may not use another component, so the question is a trait the app implements.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use crate::server::Permissions;

/// A CONNECT to decide.
#[derive(Clone, Copy)]
pub struct LoginRequest<'a> {
    /// The client id (the assigned one if the client sent none).
    pub client_id: &'a str,
    /// MQTT user name.
    pub username: Option<&'a str>,
    /// MQTT password (bytes: MQTT passwords are binary data).
    pub password: Option<&'a [u8]>,
    /// The client's address.
    pub addr: SocketAddr,
    /// The client's verified TLS certificate (DER, leaf), when it presented one.
    pub certificate: Option<&'a [u8]>,
}

impl std::fmt::Debug for LoginRequest<'_> {
    // The password never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("addr", &self.addr)
            .field("certificate", &self.certificate.is_some())
            .finish()
    }
}

/// An accepted login.
pub struct LoggedIn {
    /// The user it logged in as (`/connz` `authorized_user`), if any.
    pub user: Option<String>,
    /// What it may publish and subscribe to (NATS subjects, after the topic mapping).
    pub permissions: Box<dyn Permissions>,
}

/// A refused login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The MQTT 5 reason code for the CONNACK (0x86 bad user name or password, 0x87 not
    /// authorized); 3.1.1 clients get the matching return code.
    pub code: u8,
    /// Why, for the log only (never a secret).
    pub why: String,
}

/// A login's verdict, to await: at once for most logins, after a blocking thread's check
/// for a slow one (bcrypt). It owns what it needs, so the request can go.
pub type Verdict = Pin<Box<dyn Future<Output = Result<LoggedIn, Refused>> + Send>>;

/// Decides CONNECTs.
pub trait Login: Send + Sync {
    /// Decides one CONNECT. Called on the executor: whatever is slow (bcrypt) must happen
    /// in the returned future off the executor, e.g. behind `blocking::unblock`; only this
    /// connection's task waits for it.
    fn login(&self, req: &LoginRequest<'_>) -> Verdict;
}

/// Everyone may do everything (no `[authorization]`).
pub struct Anonymous;

impl Login for Anonymous {
    fn login(&self, _: &LoginRequest<'_>) -> Verdict {
        Box::pin(std::future::ready(Ok(LoggedIn {
            user: None,
            permissions: Box::new(crate::server::AllowAll),
        })))
    }
}
