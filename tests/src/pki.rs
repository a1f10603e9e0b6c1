//! Throwaway certificates for TLS tests: a CA, a server certificate for `localhost`,
//! 127.0.0.1 and ::1, and a client certificate (for mutual TLS), written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Writes `ca.pem`, `server.pem`, `server-key.pem`, `client.pem`, `client-key.pem` into `dir`
/// (the CA named `ca_name`, the client certificate for `client_name`) and returns their paths
/// in that order.
pub fn write(dir: &Path, ca_name: &str, client_name: &str) -> [PathBuf; 5] {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).expect("self-signed CA");
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>, client: bool| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(names).expect("params");
        // Python 3.13's default TLS context (VERIFY_X509_STRICT) wants it.
        p.use_authority_key_identifier_extension = true;
        if client {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        } else {
            p.subject_alt_names
                .push(SanType::IpAddress([127, 0, 0, 1].into()));
            p.subject_alt_names
                .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        }
        (p.signed_by(&key, &issuer).expect("signed"), key)
    };
    let (server, server_key) = leaf(vec!["localhost".into()], false);
    let (client, client_key) = leaf(vec![client_name.into()], true);
    [
        ("ca.pem", ca_cert.pem()),
        ("server.pem", server.pem()),
        ("server-key.pem", server_key.serialize_pem()),
        ("client.pem", client.pem()),
        ("client-key.pem", client_key.serialize_pem()),
    ]
    .map(|(name, pem)| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write a PEM file");
        path
    })
}
