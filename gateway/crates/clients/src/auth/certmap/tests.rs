//! Certificate mapping, piece by piece: subjects built as raw DER (multi-valued RDNs, repeated
//! attributes, odd string types), whole certificates from rcgen.

use super::*;

// --- a tiny DER writer for subjects -----------------------------------------------------

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        out.extend([0x81, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// `2.5.4.<last>` as an OID TLV.
fn x520(last: u8) -> Vec<u8> {
    tlv(0x06, &[0x55, 0x04, last])
}

fn dc_oid() -> Vec<u8> {
    tlv(
        0x06,
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
    )
}

fn email_oid() -> Vec<u8> {
    tlv(
        0x06,
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
    )
}

const UTF8: u8 = 0x0c;
const PRINTABLE: u8 = 0x13;
const IA5: u8 = 0x16;
const BMP: u8 = 0x1e;

fn atv(oid: Vec<u8>, tag: u8, value: &[u8]) -> Vec<u8> {
    let mut c = oid;
    c.extend(tlv(tag, value));
    tlv(0x30, &c)
}

/// A Name: a SEQUENCE of SETs of attributes (each inner Vec one RDN).
fn name(rdns: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut seq = Vec::new();
    for rdn in rdns {
        seq.extend(tlv(0x31, &rdn.concat()));
    }
    tlv(0x30, &seq)
}

fn parse(der: &[u8]) -> X509Name<'_> {
    X509Name::from_der(der).expect("a valid Name").1
}

fn cn(v: &str) -> Vec<u8> {
    atv(x520(3), UTF8, v.as_bytes())
}
fn o(v: &str) -> Vec<u8> {
    atv(x520(10), UTF8, v.as_bytes())
}
fn ou(v: &str) -> Vec<u8> {
    atv(x520(11), PRINTABLE, v.as_bytes())
}
fn c(v: &str) -> Vec<u8> {
    atv(x520(6), PRINTABLE, v.as_bytes())
}
fn dc(v: &str) -> Vec<u8> {
    atv(dc_oid(), IA5, v.as_bytes())
}

// --- Go's rendering ---------------------------------------------------------------------

#[test]
fn go_renders_most_specific_first_in_its_fixed_order() {
    // Written C, O, CN: rendered CN, O, C.
    let der = name(&[vec![c("DE")], vec![o("Acme")], vec![cn("dev-7")]]);
    assert_eq!(go_rendering(&parse(&der)), "CN=dev-7,O=Acme,C=DE");
    // Written in another order: Go still renders its fixed order.
    let der = name(&[vec![cn("dev-7")], vec![c("DE")], vec![o("Acme")]]);
    assert_eq!(go_rendering(&parse(&der)), "CN=dev-7,O=Acme,C=DE");
}

#[test]
fn go_groups_repeated_attributes_and_keeps_the_last_cn() {
    let der = name(&[
        vec![ou("b")],
        vec![cn("first")],
        vec![ou("a")],
        vec![cn("second")],
        vec![o("Acme")],
    ]);
    assert_eq!(go_rendering(&parse(&der)), "CN=second,OU=b+OU=a,O=Acme");
}

#[test]
fn go_drops_attributes_it_does_not_name_and_dc_is_added_apart() {
    let der = name(&[
        vec![dc("org")],
        vec![dc("example")],
        vec![atv(email_oid(), IA5, b"dev@example.org")],
        vec![cn("dev")],
    ]);
    let name = parse(&der);
    assert_eq!(go_rendering(&name), "CN=dev");
    assert_eq!(domain_components(&name), "DC=org,DC=example");
    // The email attribute is not a type nats-server's DN match knows: no DN step.
    assert_eq!(subject_dn(&name), None);
}

#[test]
fn go_escaping() {
    assert_eq!(
        escape("a,b+c\"d\\e<f>g;h"),
        "a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h"
    );
    assert_eq!(escape(" lead and trail "), "\\ lead and trail\\ ");
    assert_eq!(escape("#first #not"), "\\#first #not");
    assert_eq!(escape("caf\u{e9}"), "caf\u{e9}");
    let der = name(&[vec![cn("Doe, John")]]);
    assert_eq!(go_rendering(&parse(&der)), "CN=Doe\\, John");
}

#[test]
fn string_types() {
    let bmp: Vec<u8> = "Zoë".encode_utf16().flat_map(u16::to_be_bytes).collect();
    let der = name(&[
        vec![atv(x520(3), BMP, &bmp)],
        vec![atv(x520(10), IA5, b"x")],
    ]);
    assert_eq!(go_rendering(&parse(&der)), "CN=Zoë,O=x");
    // A non-string value (an INTEGER) is skipped by Go's Name and ends the DN step.
    let der = name(&[vec![atv(x520(3), 0x02, &[5])], vec![o("Acme")]]);
    assert_eq!(go_rendering(&parse(&der)), "O=Acme");
    assert_eq!(subject_dn(&parse(&der)), None);
}

// --- DNs --------------------------------------------------------------------------------

fn attrs(pairs: &[(&str, &str)]) -> Vec<Attr> {
    pairs
        .iter()
        .map(|(k, v)| Attr {
            kind: k.to_string(),
            value: v.to_string(),
        })
        .collect()
}

#[test]
fn dn_parsing_follows_ldap_parse_dn() {
    let d = Dn::parse("CN=dev-7,O=Acme Inc,C=DE").unwrap();
    assert_eq!(
        d.0,
        vec![
            attrs(&[("CN", "dev-7")]),
            attrs(&[("O", "Acme Inc")]),
            attrs(&[("C", "DE")])
        ]
    );
    // Spaces around values and after commas go; escapes and hex pairs are undone.
    let d = Dn::parse(" cn = a\\, b , ou=x\\2Cy+ou=z\\ ").unwrap();
    assert_eq!(
        d.0,
        vec![
            attrs(&[("cn", "a, b")]),
            attrs(&[("ou", "x,y"), ("ou", "z ")])
        ]
    );
    // Not DNs: no type, BER values, broken escapes.
    for bad in [
        "alice",
        "dev@example.org",
        "CN=#0403616263",
        "CN=a\\",
        "CN=a\\zz",
        "=x",
    ] {
        assert_eq!(Dn::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn the_subject_as_a_dn_is_reversed_and_compared_by_rdn() {
    let der = name(&[
        vec![c("DE")],
        vec![o("Acme")],
        vec![ou("a"), ou("b")],
        vec![cn("dev")],
    ]);
    let subject = subject_dn(&parse(&der)).unwrap();
    assert_eq!(subject.0[0], attrs(&[("CN", "dev")]));
    assert_eq!(subject.0[1], attrs(&[("OU", "b"), ("OU", "a")]));
    let same = Dn::parse("cn=dev,OU=a+OU=b,O=Acme,C=DE").unwrap();
    assert!(
        same.equal(&subject),
        "types ignore case, attributes in an RDN any order"
    );
    let reordered = Dn::parse("C=DE,O=Acme,OU=b+OU=a,CN=dev").unwrap();
    assert!(!reordered.equal(&subject));
    assert!(reordered.rdns_match(&subject));
    let other = Dn::parse("CN=dev,OU=a,O=Acme,C=DE").unwrap();
    assert!(!other.equal(&subject) && !other.rdns_match(&subject));
    let case = Dn::parse("CN=DEV,OU=a+OU=b,O=Acme,C=DE").unwrap();
    assert!(!case.equal(&subject), "values are compared exactly");
}

// --- whole certificates -----------------------------------------------------------------

fn cert(build: impl FnOnce(&mut rcgen::CertificateParams)) -> CertIdentity {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    build(&mut params);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    CertIdentity::from_der(cert.der()).unwrap()
}

fn san(kind: &str, v: &str) -> rcgen::SanType {
    let ia5 = v.to_string().try_into().unwrap();
    match kind {
        "email" => rcgen::SanType::Rfc822Name(ia5),
        "dns" => rcgen::SanType::DnsName(ia5),
        _ => rcgen::SanType::URI(ia5),
    }
}

#[test]
fn mapping_order_is_nats_servers() {
    let id = cert(|p| {
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "dev-7");
        p.subject_alt_names = vec![
            san("dns", "dev-7.devices.acme"),
            san("email", "dev-7@acme.example"),
            san("uri", "spiffe://acme/dev-7"),
        ];
    });
    assert_eq!(id.subject(), "CN=dev-7,O=Acme");
    let all = [
        "CN=dev-7,O=Acme",
        "spiffe://acme/dev-7",
        "dev-7.devices.acme",
        "dev-7@acme.example",
    ];
    // Email first, then DNS, then URI, then the DN, whatever the config order.
    assert_eq!(id.map(&all), Some("dev-7@acme.example"));
    assert_eq!(id.map(&all[..3]), Some("dev-7.devices.acme"));
    assert_eq!(id.map(&all[..2]), Some("spiffe://acme/dev-7"));
    assert_eq!(id.map(&all[..1]), Some("CN=dev-7,O=Acme"));
    // The DN in the certificate's own order also matches (RDNs in any order).
    assert_eq!(
        id.map(&["alice", "O=Acme,CN=dev-7"]),
        Some("O=Acme,CN=dev-7")
    );
    // In the same order wins over reordered, whatever comes first in the config.
    assert_eq!(
        id.map(&["O=Acme,CN=dev-7", "cn=dev-7, o=Acme"]),
        Some("cn=dev-7, o=Acme")
    );
    assert_eq!(id.map(&["alice", "CN=dev-8,O=Acme", "CN=dev-7"]), None);
    assert_eq!(id.map(&[]), None);
}

#[test]
fn domain_components_join_the_rendering() {
    let dc_type = rcgen::DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]);
    let id = cert(|p| {
        p.distinguished_name.push(dc_type, "example");
        p.distinguished_name.push(rcgen::DnType::CommonName, "svc");
    });
    assert_eq!(id.subject(), "CN=svc,DC=example");
    assert_eq!(id.map(&["CN=svc,DC=example"]), Some("CN=svc,DC=example"));
    // The DN step covers it too, since DC is a type it knows.
    assert_eq!(id.map(&["DC=example,CN=svc"]), Some("DC=example,CN=svc"));
}

#[test]
fn garbage_is_not_a_certificate() {
    assert_eq!(CertIdentity::from_der(b"nope"), Err(CertError::Malformed));
    assert_eq!(CertIdentity::from_der(&[]), Err(CertError::Malformed));
}
