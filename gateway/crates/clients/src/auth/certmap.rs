//! Client certificates mapped to users, as nats-server's `verify_and_map` does
//! (`auth.go checkClientTLSCertSubject`, `internal/ldap/dn.go`).
//!
//! A certificate names a configured user by the first of these that is a user name:
//!
//! 1. a SAN email address, then a SAN DNS name, then a SAN URI (each in certificate order);
//! 2. the subject as a distinguished name: each configured user name that parses as a DN
//!    (`CN=dev-7,O=Acme`, RFC 4514) is compared with the subject RDN by RDN (attribute types
//!    case-insensitive, values exact), first in the same order, then in any order. This step
//!    only runs when every subject attribute is one of nats-server's ten known types (C, O,
//!    OU, CN, SERIALNUMBER, L, ST, STREET, POSTALCODE, DC) with a string value;
//! 3. the subject rendered as Go's `RDNSequence.String()` of `Name.ToRDNSequence()` renders it
//!    (RFC 2253 style, most specific first, in Go's fixed attribute order), followed by
//!    `,DC=...` for any domain components; then the same without them.
//!
//! The rendering of step 3 is [`CertIdentity::subject`], what templates call `subject()`.

use std::fmt::Write;

use x509_parser::asn1_rs::Tag;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// What is wrong with a peer certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The DER does not parse as an X.509 certificate.
    #[error("the client certificate does not parse")]
    Malformed,
}

/// What a client certificate can be mapped by, taken from its DER once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    emails: Vec<String>,
    dns_names: Vec<String>,
    uris: Vec<String>,
    /// The subject as a DN (nats-server's `ldap.FromRawCertSubject`), when it can be one.
    dn: Option<Dn>,
    /// Go's rendering of the subject (without domain components).
    rendered: String,
    /// `DC=a,DC=b` in subject order, or empty.
    dcs: String,
}

impl CertIdentity {
    /// Reads the leaf certificate a client presented (DER).
    pub fn from_der(der: &[u8]) -> Result<CertIdentity, CertError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| CertError::Malformed)?;
        let mut id = CertIdentity {
            emails: Vec::new(),
            dns_names: Vec::new(),
            uris: Vec::new(),
            dn: subject_dn(cert.subject()),
            rendered: go_rendering(cert.subject()),
            dcs: domain_components(cert.subject()),
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(s) => id.emails.push((*s).to_string()),
                    GeneralName::DNSName(s) => id.dns_names.push((*s).to_string()),
                    GeneralName::URI(s) => id.uris.push((*s).to_string()),
                    _ => {}
                }
            }
        }
        Ok(id)
    }

    /// The subject as nats-server renders it (step 3 of the module docs, with the domain
    /// components when there are any).
    pub fn subject(&self) -> String {
        if self.dcs.is_empty() {
            self.rendered.clone()
        } else {
            format!("{},{}", self.rendered, self.dcs)
        }
    }

    /// The configured user this certificate maps to, if any, among `users`.
    pub fn map<'u>(&self, users: &[&'u str]) -> Option<&'u str> {
        let exact = |name: &str| users.iter().copied().find(|u| *u == name);
        let sans = self.emails.iter().chain(&self.dns_names).chain(&self.uris);
        for name in sans {
            if let Some(u) = exact(name) {
                return Some(u);
            }
        }
        if let Some(dn) = &self.dn {
            let parsed: Vec<(&str, Dn)> = users
                .iter()
                .filter_map(|u| Some((*u, Dn::parse(u)?)))
                .collect();
            if let Some((u, _)) = parsed.iter().find(|(_, d)| d.equal(dn)) {
                return Some(u);
            }
            if let Some((u, _)) = parsed.iter().find(|(_, d)| d.rdns_match(dn)) {
                return Some(u);
            }
        }
        if !self.dcs.is_empty()
            && let Some(u) = exact(&self.subject())
        {
            return Some(u);
        }
        exact(&self.rendered)
    }
}

// --- distinguished names, as nats-server's internal/ldap compares them ------------------

/// One attribute: type as written, value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attr {
    kind: String,
    value: String,
}

/// A DN: RDNs most specific first, each a set of attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dn(Vec<Vec<Attr>>);

impl Dn {
    /// `ldap.ParseDN`: RFC 4514 text, `\` escapes of a special character or two hex digits,
    /// unescaped spaces around values dropped; `None` if it is not a DN.
    pub(crate) fn parse(text: &str) -> Option<Dn> {
        let bytes = text.as_bytes();
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut kind: Option<String> = None;
        let mut trailing_spaces = 0usize;
        let mut i = 0;
        let take = |buf: &mut Vec<u8>, trailing: &mut usize| -> Option<String> {
            let keep = buf.len().checked_sub(*trailing)?;
            buf.truncate(keep);
            *trailing = 0;
            String::from_utf8(std::mem::take(buf)).ok()
        };
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'\\' => {
                    trailing_spaces = 0;
                    let next = *bytes.get(i + 1)?;
                    if b" \"#+,;<=>\\".contains(&next) {
                        buf.push(next);
                        i += 2;
                        continue;
                    }
                    let hex = text.get(i + 1..i + 3)?;
                    buf.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                    continue;
                }
                b'=' => {
                    kind = Some(take(&mut buf, &mut trailing_spaces)?);
                    // BER-encoded values (`CN=#04...`) are not supported, as in nats-server.
                    if bytes.get(i + 1) == Some(&b'#') {
                        return None;
                    }
                }
                b',' | b'+' => {
                    let k = kind.take().filter(|k| !k.is_empty())?;
                    let value = take(&mut buf, &mut trailing_spaces)?;
                    rdn.push(Attr { kind: k, value });
                    if c == b',' {
                        rdns.push(std::mem::take(&mut rdn));
                    }
                }
                b' ' if buf.is_empty() => {}
                _ => {
                    if c == b' ' {
                        trailing_spaces += 1;
                    } else {
                        trailing_spaces = 0;
                    }
                    buf.push(c);
                }
            }
            i += 1;
        }
        if !buf.is_empty() {
            let k = kind.take().filter(|k| !k.is_empty())?;
            let value = take(&mut buf, &mut trailing_spaces)?;
            rdn.push(Attr { kind: k, value });
            rdns.push(rdn);
        }
        Some(Dn(rdns))
    }

    /// Same RDNs in the same order.
    fn equal(&self, other: &Dn) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| rdn_eq(a, b))
    }

    /// Same RDNs in any order.
    fn rdns_match(&self, other: &Dn) -> bool {
        if self.0.len() != other.0.len() {
            return false;
        }
        let mut used = vec![false; other.0.len()];
        self.0.iter().all(|mine| {
            let found = other
                .0
                .iter()
                .enumerate()
                .find(|(j, theirs)| !used[*j] && rdn_eq(mine, theirs));
            match found {
                Some((j, _)) => {
                    used[j] = true;
                    true
                }
                None => false,
            }
        })
    }
}

fn attr_eq(a: &Attr, b: &Attr) -> bool {
    a.kind.eq_ignore_ascii_case(&b.kind) && a.value == b.value
}

fn rdn_eq(a: &[Attr], b: &[Attr]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| b.iter().any(|y| attr_eq(x, y)))
        && b.iter().all(|y| a.iter().any(|x| attr_eq(x, y)))
}

// --- reading the certificate's subject --------------------------------------------------

const OID_CN: &str = "2.5.4.3";
const OID_SERIAL: &str = "2.5.4.5";
const OID_C: &str = "2.5.4.6";
const OID_L: &str = "2.5.4.7";
const OID_ST: &str = "2.5.4.8";
const OID_STREET: &str = "2.5.4.9";
const OID_O: &str = "2.5.4.10";
const OID_OU: &str = "2.5.4.11";
const OID_POSTAL: &str = "2.5.4.17";
const OID_DC: &str = "0.9.2342.19200300.100.1.25";

/// nats-server's `attributeTypeNames` (Go's, plus DC).
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        OID_CN => "CN",
        OID_SERIAL => "SERIALNUMBER",
        OID_C => "C",
        OID_L => "L",
        OID_ST => "ST",
        OID_STREET => "STREET",
        OID_O => "O",
        OID_OU => "OU",
        OID_POSTAL => "POSTALCODE",
        OID_DC => "DC",
        _ => return None,
    })
}

/// An attribute value as Go's asn1 reads one into a string (the string types; BMPString as
/// UTF-16), or `None` for other types.
fn text(atv: &AttributeTypeAndValue<'_>) -> Option<String> {
    let any = atv.attr_value();
    let data = any.data;
    match any.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(data).ok().map(str::to_string)
        }
        Tag::T61String => Some(String::from_utf8_lossy(data).into_owned()),
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// `ldap.FromRawCertSubject`: RDNs reversed (most specific first), attributes within each RDN
/// reversed; `None` if any attribute is of an unknown type or not a string.
fn subject_dn(name: &X509Name<'_>) -> Option<Dn> {
    let mut rdns = Vec::new();
    for rdn in name.iter() {
        let mut attrs = Vec::new();
        for atv in rdn.iter() {
            let kind = short_name(&atv.attr_type().to_id_string())?;
            attrs.push(Attr {
                kind: kind.to_string(),
                value: text(atv)?,
            });
        }
        if attrs.is_empty() {
            continue;
        }
        attrs.reverse();
        rdns.push(attrs);
    }
    rdns.reverse();
    Some(Dn(rdns))
}

/// Go's `pkix.Name`: filled from the subject (`FillFromRDNSequence`), then rendered by
/// `ToRDNSequence().String()`: C, ST, L, STREET, POSTALCODE, O, OU (each a multi-valued RDN
/// of all its values), CN and SERIALNUMBER (the last one of each); other attributes dropped;
/// printed last RDN first.
fn go_rendering(name: &X509Name<'_>) -> String {
    let order = [
        (OID_C, "C"),
        (OID_ST, "ST"),
        (OID_L, "L"),
        (OID_STREET, "STREET"),
        (OID_POSTAL, "POSTALCODE"),
        (OID_O, "O"),
        (OID_OU, "OU"),
        (OID_CN, "CN"),
        (OID_SERIAL, "SERIALNUMBER"),
    ];
    let mut values: Vec<Vec<String>> = vec![Vec::new(); order.len()];
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let Some(v) = text(atv) else { continue };
            let oid = atv.attr_type().to_id_string();
            if let Some(i) = order.iter().position(|(o, _)| *o == oid) {
                if oid == OID_CN || oid == OID_SERIAL {
                    // A single string in Go's Name: the last one wins.
                    values[i] = vec![v];
                } else {
                    values[i].push(v);
                }
            }
        }
    }
    let mut out = String::new();
    for (i, (_, short)) in order.iter().enumerate().rev() {
        if values[i].is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        for (j, v) in values[i].iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let _ = write!(out, "{short}={}", escape(v));
        }
    }
    out
}

/// `DC=...` for each domain component in subject order (nats-server `getTLSAuthDCs`).
fn domain_components(name: &X509Name<'_>) -> String {
    let mut dcs = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            if atv.attr_type().to_id_string() == OID_DC
                && let Some(v) = text(atv)
            {
                dcs.push(format!("DC={v}"));
            }
        }
    }
    dcs.join(",")
}

/// Go's RFC 2253 escaping in `RDNSequence.String`.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (k, c) in value.char_indices() {
        let esc = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if esc {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
