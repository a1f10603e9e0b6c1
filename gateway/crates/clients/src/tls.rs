//! TLS on the client port: the server side of [`twig_util::tls`], from `[tls]`.
use std::sync::Arc;

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

#[cfg(test)]
mod tests;
