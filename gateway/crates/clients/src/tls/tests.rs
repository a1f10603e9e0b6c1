//! A throwaway CA signs a server and a client certificate (rcgen); real handshakes run over
//! loopback TCP with futures-rustls on both ends.
use super::*;
use std::path::PathBuf;

use futures_rustls::rustls::RootCertStore;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use futures_rustls::pki_types::ServerName;
use futures_rustls::rustls::ClientConfig;
use futures_rustls::{TlsAcceptor, TlsConnector};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Files of one test PKI in a fresh temp directory (removed on drop).
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    fn new() -> Pki {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("twig-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();

        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "twig test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let leaf = |usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            p.subject_alt_names
                .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
            p.extended_key_usages = vec![usage];
            let cert = p.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf(ExtendedKeyUsagePurpose::ClientAuth);

        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", &ca_cert.pem()),
            server_cert: write("server-cert.pem", &server_cert),
            server_key: write("server-key.pem", &server_key),
            client_cert: write("client-cert.pem", &client_cert),
            client_key: write("client-key.pem", &client_key),
            dir,
        }
    }

    fn config(&self, verify: bool) -> TlsConfig {
        TlsConfig {
            cert_file: self.server_cert.clone(),
            key_file: self.server_key.clone(),
            ca_file: Some(self.ca.clone()),
            verify,
            verify_and_map: false,
            timeout: Duration::from_secs(2),
        }
    }

    fn client(&self, with_cert: bool) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in read_certs("CA", &self.ca).unwrap() {
            roots.add(cert).unwrap();
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = if with_cert {
            let chain = read_certs("certificate", &self.client_cert).unwrap();
            let key = read_key(&self.client_key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(config)
    }
}

/// Runs one TLS connection: the server writes a line, the client reads it.
/// Returns what each side saw.
fn converse(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> (std::io::Result<()>, std::io::Result<Vec<u8>>) {
    let run = async {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let server_side = async {
            let (stream, _) = listener.accept().await?;
            let mut tls = TlsAcceptor::from(server).accept(stream).await?;
            tls.write_all(b"INFO {}\r\n").await?;
            tls.flush().await?;
            // Wait for the client to hang up, so the line is not cut off by our close.
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest).await.map(|_| ())
        };
        let client_side = async {
            let stream = Async::<TcpStream>::connect(addr).await?;
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = TlsConnector::from(client).connect(name, stream).await?;
            let mut line = vec![0; 9];
            tls.read_exact(&mut line).await?;
            tls.close().await?;
            Ok(line)
        };
        future::zip(server_side, client_side).await
    };
    let deadline = async {
        Timer::after(Duration::from_secs(20)).await;
        panic!("TLS conversation hung");
    };
    smol::block_on(future::or(run, deadline))
}

#[test]
fn a_client_trusting_the_ca_talks_tls() {
    let pki = Pki::new();
    let server = server_config(&pki.config(false)).unwrap();
    let (s, c) = converse(server, pki.client(false));
    s.unwrap();
    assert_eq!(c.unwrap(), b"INFO {}\r\n");
}

#[test]
fn verify_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new();
    let server = server_config(&pki.config(true)).unwrap();
    let (s, c) = converse(server.clone(), pki.client(true));
    s.unwrap();
    assert_eq!(c.unwrap(), b"INFO {}\r\n");

    let (s, c) = converse(server, pki.client(false));
    let e = s.unwrap_err().to_string();
    assert!(e.contains("certificate"), "{e}");
    assert!(c.is_err());
}

#[test]
fn file_problems_are_named() {
    let pki = Pki::new();
    let mut config = pki.config(false);
    config.cert_file = pki.dir.join("nope.pem");
    let e = server_config(&config).unwrap_err().to_string();
    assert!(e.starts_with("cannot read TLS certificate "), "{e}");
    assert!(e.contains("nope.pem"), "{e}");

    // A key file where the certificate should be: no certificate in it.
    let mut config = pki.config(false);
    config.cert_file = pki.server_key.clone();
    let e = server_config(&config).unwrap_err().to_string();
    assert!(e.starts_with("no certificate found in "), "{e}");

    let mut config = pki.config(false);
    config.key_file = pki.server_cert.clone();
    let e = server_config(&config).unwrap_err().to_string();
    assert!(e.starts_with("no private key found in "), "{e}");

    // The client's key with the server's certificate.
    let mut config = pki.config(false);
    config.key_file = pki.client_key.clone();
    let e = server_config(&config).unwrap_err().to_string();
    assert!(
        e.starts_with("cannot use the TLS certificate and key"),
        "{e}"
    );

    let mut config = pki.config(true);
    config.ca_file = None;
    assert!(matches!(
        server_config(&config),
        Err(TlsError::VerifyWithoutCa)
    ));
}
