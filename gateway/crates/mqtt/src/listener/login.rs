//! How the listener asks who a device is. The app answers with the same users, passwords,
//! certificates and permissions as for NATS clients (`twig-clients`' authenticator): this
//! component may not use another component, so the question is a trait the app implements.

use std::net::SocketAddr;

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

/// Decides CONNECTs.
pub trait Login: Send + Sync {
    /// Decides one CONNECT. Called on the executor: it must not block (a slow check, such as
    /// bcrypt, belongs on a blocking thread behind this call's owner).
    fn login(&self, req: &LoginRequest<'_>) -> Result<LoggedIn, Refused>;
}

/// Everyone may do everything (no `[authorization]`).
pub struct Anonymous;

impl Login for Anonymous {
    fn login(&self, _: &LoginRequest<'_>) -> Result<LoggedIn, Refused> {
        Ok(LoggedIn {
            user: None,
            permissions: Box::new(crate::server::AllowAll),
        })
    }
}
