//! Client certificates mapped to users (`verify_and_map`): twig's mapping
//! (`twig_gateway::auth::CertIdentity::map`) against nats-server 2.15.1 itself. One server
//! knows a dozen users named every way a certificate can name one (SAN email, DNS, URI;
//! subject DN in and out of order, with spaces, escapes, domain components; Go's rendering
//! when the DN match cannot run); each certificate logs in with no credentials, and the user
//! nats-server picked (each may publish only to its own `who.<n>`) must be the one twig picks,
//! both by its mapping alone and as a running server given the same config.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use twig_gateway::auth::CertIdentity;
use twig_tests::harness::{ServerOptions, ServerUnderTest, Target};
use twig_tests::nats_server::{NatsServer, Options};

const USERS: &[&str] = &[
    "dev-1@acme.example",
    "dev-2.devices.acme",
    "spiffe://acme/dev-3",
    "CN=dev-4,O=Acme",
    "O=Acme,OU=eu,CN=dev-5",
    "CN=dev-6,OU=eu,O=Acme,C=DE",
    "CN=dev 7,O=Acme Inc",
    "CN=dev\\,8,O=Acme",
    "CN=svc,DC=example",
    "cn=dev-10",
    "CN=dev-11",
    "CN=svc2,DC=example",
];

const EMAIL_ATTR: &[u64] = &[1, 2, 840, 113549, 1, 9, 1];
const DC_ATTR: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 25];

/// One client certificate: subject attributes in order, then SANs (`email:`, `dns:`, `uri:`).
struct Spec {
    subject: &'static [(&'static str, &'static str)],
    sans: &'static [&'static str],
}

const CERTS: &[Spec] = &[
    Spec {
        subject: &[("CN", "anything")],
        sans: &["email:dev-1@acme.example"],
    },
    Spec {
        subject: &[("CN", "x")],
        sans: &["dns:dev-2.devices.acme"],
    },
    Spec {
        subject: &[("CN", "x")],
        sans: &["uri:spiffe://acme/dev-3"],
    },
    Spec {
        subject: &[("O", "Acme"), ("CN", "dev-4")],
        sans: &[],
    },
    Spec {
        subject: &[("O", "Acme"), ("OU", "eu"), ("CN", "dev-5")],
        sans: &[],
    },
    Spec {
        subject: &[("C", "DE"), ("O", "Acme"), ("OU", "eu"), ("CN", "dev-6")],
        sans: &[],
    },
    Spec {
        subject: &[("O", "Acme Inc"), ("CN", "dev 7")],
        sans: &[],
    },
    Spec {
        subject: &[("O", "Acme"), ("CN", "dev,8")],
        sans: &[],
    },
    Spec {
        subject: &[("DC", "example"), ("CN", "svc")],
        sans: &[],
    },
    Spec {
        subject: &[("CN", "dev-10")],
        sans: &[],
    },
    // An attribute the DN match does not know: only Go's rendering can name the user.
    Spec {
        subject: &[("CN", "dev-11"), ("EMAIL", "dev-11@acme.example")],
        sans: &[],
    },
    Spec {
        subject: &[("DC", "example"), ("CN", "svc2"), ("EMAIL", "s@x")],
        sans: &[],
    },
    // The SAN email wins over a subject that names another user.
    Spec {
        subject: &[("O", "Acme"), ("CN", "dev-4")],
        sans: &["email:dev-1@acme.example", "dns:dev-2.devices.acme"],
    },
    // Nobody.
    Spec {
        subject: &[("CN", "stranger"), ("O", "Acme")],
        sans: &["dns:stranger.acme"],
    },
    Spec {
        subject: &[("O", "Acme"), ("CN", "DEV-4")],
        sans: &[],
    },
];

fn dn_type(short: &str) -> DnType {
    match short {
        "CN" => DnType::CommonName,
        "O" => DnType::OrganizationName,
        "OU" => DnType::OrganizationalUnitName,
        "C" => DnType::CountryName,
        "DC" => DnType::CustomDnType(DC_ATTR.to_vec()),
        "EMAIL" => DnType::CustomDnType(EMAIL_ATTR.to_vec()),
        other => panic!("no type {other}"),
    }
}

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "twig test CA");
        let cert = ca.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(ca, key),
        }
    }

    fn leaf(&self, params: CertificateParams) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        (params.signed_by(&key, &self.issuer).unwrap(), key)
    }

    fn client(&self, spec: &Spec) -> (CertificateDer<'static>, KeyPair) {
        let mut p = CertificateParams::new(Vec::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        for (k, v) in spec.subject {
            p.distinguished_name.push(dn_type(k), *v);
        }
        for san in spec.sans {
            let (kind, v) = san.split_once(':').unwrap();
            let ia5 = v.to_string().try_into().unwrap();
            p.subject_alt_names.push(match kind {
                "email" => SanType::Rfc822Name(ia5),
                "dns" => SanType::DnsName(ia5),
                _ => SanType::URI(ia5),
            });
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (cert, key) = self.leaf(p);
        (cert.der().clone(), key)
    }
}

/// Logs in over TLS with `cert` and no credentials; the index of the user nats-server chose
/// (the `who.<n>` it may publish to), or `None` if it refused the login.
fn nats_server_maps(
    port: u16,
    ca_pem: &str,
    cert: CertificateDer<'static>,
    key: &KeyPair,
) -> Option<usize> {
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert], key)
            .unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.set_nodelay(true).unwrap();
    // INFO comes in the clear; TLS starts after it.
    let mut info = Vec::new();
    let mut byte = [0u8];
    while !info.ends_with(b"\r\n") {
        std::io::Read::read_exact(&mut tcp, &mut byte).unwrap();
        info.push(byte[0]);
    }
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .unwrap();
    let mut r = BufReader::new(StreamOwned::new(conn, tcp));
    let request = |r: &mut BufReader<StreamOwned<ClientConnection, TcpStream>>, text: &str| {
        r.get_mut()
            .write_all(format!("{text}PING\r\n").as_bytes())
            .unwrap();
        let mut errs = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                errs.push("closed".to_string());
                return errs;
            }
            match line.trim_end() {
                "PONG" => return errs,
                l if l.starts_with("-ERR") => errs.push(l.to_string()),
                _ => {}
            }
        }
    };
    let login = request(
        &mut r,
        "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\n",
    );
    if !login.is_empty() {
        assert_eq!(login[0], "-ERR 'Authorization Violation'");
        return None;
    }
    let allowed: Vec<usize> = (0..USERS.len())
        .filter(|i| request(&mut r, &format!("PUB who.{i} 0\r\n\r\n")).is_empty())
        .collect();
    assert_eq!(allowed.len(), 1, "one user, one subject: {allowed:?}");
    Some(allowed[0])
}

#[test]
fn certificates_map_to_the_users_nats_server_maps_them_to() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".into()]).unwrap();
    server
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let (server_cert, server_key) = pki.leaf(server);
    let path = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    std::fs::write(path("ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(path("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(path("server-key.pem"), server_key.serialize_pem()).unwrap();
    let users: Vec<String> = USERS
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let name = serde_json::to_string(u).unwrap();
            format!("{{\"user\": {name}, \"permissions\": {{\"publish\": [\"who.{i}\"]}}}}")
        })
        .collect();
    let extra = format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify_and_map: true\n}}\n\
         authorization {{\n  users: [\n    {}\n  ]\n}}\n",
        path("server.pem"),
        path("server-key.pem"),
        path("ca.pem"),
        users.join(",\n    ")
    );
    // twig reads the same text as its config file (nats-server's format).
    let conf = dir.path().join("twig.conf");
    std::fs::write(&conf, &extra).unwrap();
    let twig = ServerUnderTest::start_target(
        Target::Twig,
        &ServerOptions {
            extra_args: vec!["-c".into(), conf.display().to_string()],
            ..ServerOptions::default()
        },
    );
    let nats = NatsServer::start(&Options {
        extra,
        ..Options::default()
    });
    let mut mapped = 0;
    for (n, spec) in CERTS.iter().enumerate() {
        let (cert, key) = pki.client(spec);
        let ours = CertIdentity::from_der(&cert)
            .unwrap()
            .map(USERS)
            .map(|u| USERS.iter().position(|x| *x == u).unwrap());
        let theirs = nats_server_maps(nats.client_port, &pki.ca_pem, cert.clone(), &key);
        assert_eq!(
            ours, theirs,
            "certificate {n} ({:?}, {:?})",
            spec.subject, spec.sans
        );
        // And twig itself, logging the certificate in and applying that user's permissions.
        let twigs = nats_server_maps(twig.port(), &pki.ca_pem, cert, &key);
        assert_eq!(
            twigs, theirs,
            "twig, certificate {n} ({:?}, {:?})",
            spec.subject, spec.sans
        );
        mapped += usize::from(theirs.is_some());
    }
    // Every user was reachable and the refusals were tried too.
    assert_eq!(mapped, CERTS.len() - 2);
}
