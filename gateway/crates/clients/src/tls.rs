//! TLS on the client port: the server side of [`twig_util::tls`], from `[tls]`.
use std::sync::Arc;

use futures_rustls::TlsAcceptor;
use futures_rustls::rustls::ServerConfig;
use futures_rustls::rustls::server::WebPkiClientVerifier;

use twig_config::TlsConfig;
pub use twig_util::tls::TlsError;
use twig_util::tls::{provider, read_certs, read_key, roots};

/// Builds the server-side TLS config from `[tls]`.
pub fn server_config(config: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certs("certificate", &config.cert_file)?;
    let key = read_key(&config.key_file)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    // verify_and_map needs a verified certificate to map (nats-server: it implies verify).
    let builder = if config.verify || config.verify_and_map {
        let ca_path = config.ca_file.as_ref().ok_or(TlsError::VerifyWithoutCa)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_path)?), provider)
                .build()?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Ok(Arc::new(builder.with_single_cert(chain, key)?))
}

/// The client port's TLS in force: what a connection accepted now is upgraded with. Built
/// whole from `[tls]` (at start, and by a reload before anything changes, so a certificate
/// or key that does not load refuses the reload), then swapped in as one value: a connection
/// takes it once, before its INFO, and keeps it (nats-server: a reloaded `tls` block applies
/// to new connections; open ones keep their session).
#[derive(Clone)]
pub struct ClientTls {
    /// The rustls server side: certificate, key, client-certificate verifier.
    pub acceptor: TlsAcceptor,
    /// INFO `tls_verify`: client certificates are required (`verify`).
    pub verify: bool,
    /// Client certificates name users (`verify_and_map`).
    pub map: bool,
}

impl ClientTls {
    /// Reads the files `[tls]` names and builds the server side from them.
    pub fn from_config(config: &TlsConfig) -> Result<ClientTls, TlsError> {
        Ok(ClientTls {
            acceptor: TlsAcceptor::from(server_config(config)?),
            verify: config.verify,
            map: config.verify_and_map,
        })
    }
}

#[cfg(test)]
mod tests;
