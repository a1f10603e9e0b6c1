//! rustls setup, one way for every TLS end of twig: the client port (server side), the uplink
//! and the MQTT bridge (client side).
//!
//! The crypto provider is ring, named explicitly rather than taken from a process default, so
//! the binary never depends on aws-lc (which needs cmake and a C toolchain per ARM target);
//! ring cross-compiles with a plain C cross compiler. Certificates and keys are PEM files.
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::server::VerifierBuilderError;
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, crypto::CryptoProvider};

/// Why TLS could not be set up. Each renders as one sentence naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be opened.
    #[error("cannot read TLS {what} {}: {error}", path.display())]
    Read {
        /// Which file: "certificate", "key" or "CA".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("invalid PEM in TLS {what} {}: {error}", path.display())]
    Pem {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parse error.
        error: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate found in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error("no private key found in {}", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate was rejected.
    #[error("invalid CA certificate in {}: {error}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        error: rustls::Error,
    },
    /// `verify` is on but no CA was given.
    #[error("tls.verify needs tls.ca_file to verify client certificates against")]
    VerifyWithoutCa,
    /// The client certificate verifier could not be built.
    #[error("cannot verify client certificates: {0}")]
    Verifier(#[from] VerifierBuilderError),
    /// rustls refused the certificate and key (e.g. a key that does not match).
    #[error("cannot use the TLS certificate and key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The ring provider, for server and (in tests and the uplink) client configs alike.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config trusting the CAs in `ca_file`, with a client certificate when `cert` and
/// `key` are both given.
pub fn client_config(
    ca_file: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_file)?);
    let config = match (cert, key) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(read_certs("certificate", cert)?, read_key(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The CA certificates in `path` as a root store.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("CA", path)? {
        roots.add(cert).map_err(|error| TlsError::BadCa {
            path: path.to_path_buf(),
            error,
        })?;
    }
    Ok(roots)
}

fn open(what: &'static str, path: &Path) -> Result<BufReader<File>, TlsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|error| TlsError::Read {
            what,
            path: path.to_path_buf(),
            error,
        })
}

/// The certificates in a PEM file (`what` names it in errors: "certificate", "CA").
pub fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut reader = open(what, path)?;
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            error,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let mut reader = open("key", path)?;
    rustls_pemfile::private_key(&mut reader)
        .map_err(|error| TlsError::Pem {
            what: "key",
            path: path.to_path_buf(),
            error,
        })?
        .ok_or_else(|| TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        })
}
