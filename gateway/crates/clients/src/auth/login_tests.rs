//! Logins beyond plain passwords: bcrypt, `no_auth_user`, permissions and templates per
//! identity, certificates naming users.

use std::time::Instant;

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;

use super::*;
use twig_config::Config;
use twig_perms::{Budgets, Checker};

fn auth(toml: &str) -> Authenticator {
    let config = Config::from_toml(toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
    config.validate().unwrap_or_else(|e| panic!("{toml}: {e}"));
    Authenticator::from_config(&config.authorization)
        .unwrap()
        .map_certificates(config.tls.as_ref().is_some_and(|t| t.verify_and_map))
}

fn login<'a>(user: &'a str, pass: &'a str) -> Credentials<'a> {
    Credentials {
        user: Some(user),
        pass: Some(pass),
        ..Credentials::default()
    }
}

fn may_publish(l: &Login, subject: &str) -> bool {
    match &l.rules {
        None => true,
        Some(r) => {
            Checker::new(r.clone(), Budgets::default()).publish(Instant::now(), subject.as_bytes())
        }
    }
}

#[test]
fn bcrypt_passwords_and_tokens() {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let a = auth(&format!(
        "[authorization]\nusers = [{{ user = \"app\", password = \"{hash}\" }}, {{ user = \"ops\", password = \"plain\" }}]"
    ));
    assert!(a.needs_blocking(&login("app", "x")));
    assert!(!a.needs_blocking(&login("ops", "x")));
    assert!(!a.needs_blocking(&login("nobody", "x")));
    assert_eq!(
        a.check(&login("app", "s3cret"), None),
        Ok(Identity::User("app".into()))
    );
    assert_eq!(
        a.check(&login("app", "S3cret"), None),
        Err(AuthError::BadPassword)
    );
    // The hash itself is not the password.
    assert_eq!(
        a.check(&login("app", &hash), None),
        Err(AuthError::BadPassword)
    );
    assert!(a.check(&login("ops", "plain"), None).is_ok());
    let t = auth(&format!("[authorization]\ntoken = \"{hash}\""));
    assert!(t.needs_blocking(&Credentials::default()));
    let tok = |t: &'static str| Credentials {
        auth_token: Some(t),
        ..Credentials::default()
    };
    assert_eq!(t.check(&tok("s3cret"), None), Ok(Identity::Token));
    assert_eq!(t.check(&tok("nope"), None), Err(AuthError::BadToken));
    let single = auth(&format!(
        "[authorization]\nuser = \"u\"\npassword = \"{hash}\""
    ));
    assert!(single.check(&login("u", "s3cret"), None).is_ok());
    assert!(single.needs_blocking(&login("u", "")));
}

#[test]
fn broken_bcrypt_hashes_are_refused_at_load() {
    let e = Config::from_toml("[authorization]\nuser = \"u\"\npassword = \"$2a$11$tooshort\"")
        .and_then(|c| c.validate().map(|_| c))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a valid one"), "{e}");
}

#[test]
fn no_auth_user_is_who_sends_nothing() {
    let a = auth(
        "[authorization]\nno_auth_user = \"guest\"\nusers = [\
         { user = \"guest\", password = \"g\", permissions = { publish = \"public.>\" } },\
         { user = \"app\", password = \"pw\" }]",
    );
    assert!(
        a.auth_required() && !a.info_auth_required(),
        "INFO says no auth, as nats-server"
    );
    let l = a.login(&Credentials::default(), None, None).unwrap();
    assert_eq!(l.identity, Identity::User("guest".into()));
    assert!(may_publish(&l, "public.x") && !may_publish(&l, "private"));
    // Empty strings count as nothing, as in nats-server.
    assert!(a.check(&login("", ""), None).is_ok());
    // Anyone who sends credentials is checked as usual.
    assert_eq!(
        a.check(&login("app", "pw"), None),
        Ok(Identity::User("app".into()))
    );
    assert_eq!(
        a.check(&login("app", "x"), None),
        Err(AuthError::BadPassword)
    );
    assert_eq!(
        a.check(&login("guest", "x"), None),
        Err(AuthError::BadPassword)
    );
    // Without no_auth_user, nothing is not enough.
    let strict = auth("[authorization]\nusers = [{ user = \"app\", password = \"pw\" }]");
    assert_eq!(
        strict.check(&Credentials::default(), None),
        Err(AuthError::MissingCredentials)
    );
}

#[test]
fn no_auth_user_as_an_nkey() {
    let kp = KeyPair::new_user();
    let pk = kp.public_key();
    let a = auth(&format!(
        "[authorization]\nno_auth_user = \"{pk}\"\nusers = [{{ nkey = \"{pk}\" }}]"
    ));
    assert_eq!(
        a.check(&Credentials::default(), None),
        Ok(Identity::Nkey(pk.clone()))
    );
}

#[test]
fn no_auth_user_must_exist() {
    for toml in [
        "[authorization]\nno_auth_user = \"x\"\nusers = [{ user = \"a\", password = \"b\" }]",
        "[authorization]\nno_auth_user = \"x\"\ntoken = \"t\"",
    ] {
        let e = Config::from_toml(toml)
            .and_then(|c| c.validate().map(|_| c))
            .unwrap_err();
        assert!(e.to_string().contains("no_auth_user"), "{e}");
    }
}

#[test]
fn permissions_come_with_the_login() {
    let a = auth(
        "[authorization]\n\
         default_permissions = { publish = { deny = \">\" } }\n\
         users = [\
         { user = \"a\", password = \"p\", permissions = { publish = \"a.>\" } },\
         { user = \"b\", password = \"p\" },\
         ]",
    );
    let la = a.login(&login("a", "p"), None, None).unwrap();
    assert!(may_publish(&la, "a.x") && !may_publish(&la, "b.x"));
    let lb = a.login(&login("b", "p"), None, None).unwrap();
    assert!(!may_publish(&lb, "a.x"), "default_permissions apply to b");
    // Permissions without templates are compiled once and shared by every connection.
    let again = a.login(&login("a", "p"), None, None).unwrap();
    assert!(Arc::ptr_eq(
        la.rules.as_ref().unwrap(),
        again.rules.as_ref().unwrap()
    ));
    // No permissions at all: no rules.
    let open = auth("[authorization]\nusers = [{ user = \"a\", password = \"p\" }]");
    assert!(
        open.login(&login("a", "p"), None, None)
            .unwrap()
            .rules
            .is_none()
    );
}

#[test]
fn one_rule_for_a_fleet() {
    let kp = KeyPair::new_user();
    let pk = kp.public_key();
    let a = auth(&format!(
        "[authorization]\n\
         default_permissions = {{ publish = [\"sensors.{{{{name()}}}}.>\"], subscribe = [\"cmd.{{{{name()}}}}.>\", \"site.{{{{tag(site)}}}}.>\"] }}\n\
         users = [\
         {{ user = \"dev-1\", password = \"p\", tags = [\"site:berlin\"] }},\
         {{ user = \"dev-2\", password = \"p\" }},\
         {{ nkey = \"{pk}\", name = \"mcu-9\" }},\
         ]"
    ));
    let d1 = a.login(&login("dev-1", "p"), None, None).unwrap();
    assert!(may_publish(&d1, "sensors.dev-1.t") && !may_publish(&d1, "sensors.dev-2.t"));
    let r1 = d1.rules.unwrap();
    assert!(r1.may_subscribe(b"site.berlin.news", None));
    let d2 = a.login(&login("dev-2", "p"), None, None).unwrap();
    let r2 = d2.rules.clone().unwrap();
    assert!(r2.may_subscribe(b"cmd.dev-2.reboot", None));
    assert!(
        !r2.may_subscribe(b"site.berlin.news", None),
        "no site tag: that entry grants nothing"
    );
    // The nkey user's configured name fills {{name()}}.
    let nonce = Authenticator::new_nonce().unwrap();
    let sig = BASE64URL_NOPAD.encode(&kp.sign(nonce.as_bytes()).unwrap());
    let creds = Credentials {
        nkey: Some(&pk),
        sig: Some(&sig),
        ..Credentials::default()
    };
    let m = a.login(&creds, Some(&nonce), None).unwrap();
    assert!(may_publish(&m, "sensors.mcu-9.t") && !may_publish(&m, "sensors.dev-1.t"));
}

#[test]
fn a_template_that_fails_refuses_the_login() {
    let a = auth(
        "[authorization]\nusers = [{ user = \"d\", password = \"p\", \
         permissions = { publish = { deny = \"x.{{tag(site)}}\" } } }]",
    );
    assert!(matches!(
        a.login(&login("d", "p"), None, None),
        Err(AuthError::Permissions(_))
    ));
}

#[test]
fn invalid_permissions_are_refused_at_load() {
    for (toml, want) in [
        (
            "[authorization]\nusers = [{ user = \"d\", password = \"p\", permissions = { publish = \"a..b\" } }]",
            "authorization.users[0].permissions",
        ),
        (
            "[authorization]\ndefault_permissions = { subscribe = [\"a q r\"] }\nusers = [{ user = \"d\", password = \"p\" }]",
            "authorization.default_permissions",
        ),
        (
            "[authorization]\nusers = [{ user = \"d\", password = \"p\", permissions = { publish = \"a.{{account-name()}}\" } }]",
            "not defined",
        ),
    ] {
        let e = Config::from_toml(toml)
            .and_then(|c| c.validate().map(|_| c))
            .unwrap_err();
        assert!(e.to_string().contains(want), "{toml}: {e}");
    }
}

// --- certificates -----------------------------------------------------------------------

fn cert_for(cn: &str, email: Option<&str>) -> CertIdentity {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Acme");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    if let Some(e) = email {
        params.subject_alt_names = vec![rcgen::SanType::Rfc822Name(
            e.to_string().try_into().unwrap(),
        )];
    }
    let key = rcgen::KeyPair::generate().unwrap();
    CertIdentity::from_der(params.self_signed(&key).unwrap().der()).unwrap()
}

const TLS: &str =
    "[tls]\ncert_file = \"c\"\nkey_file = \"k\"\nca_file = \"ca\"\nverify_and_map = true\n";

#[test]
fn certificates_name_users() {
    let a = auth(&format!(
        "{TLS}[authorization]\n\
         default_permissions = {{ publish = [\"sensors.{{{{name()}}}}.>\", \"dn.{{{{subject()}}}}\"] }}\n\
         users = [\
         {{ user = \"CN=dev-7,O=Acme\", name = \"dev-7\" }},\
         {{ user = \"ops@acme.example\" }},\
         {{ user = \"CN=locked,O=Acme\", password = \"pw\" }},\
         ]"
    ));
    let dev = cert_for("dev-7", None);
    let l = a.login(&Credentials::default(), None, Some(&dev)).unwrap();
    assert_eq!(l.identity, Identity::User("CN=dev-7,O=Acme".into()));
    assert!(l.by_certificate);
    assert!(may_publish(&l, "sensors.dev-7.t"));
    assert!(
        may_publish(&l, "dn.CN=dev-7,O=Acme"),
        "subject() is the certificate's subject"
    );
    let ops = cert_for("someone", Some("ops@acme.example"));
    let l = a.login(&Credentials::default(), None, Some(&ops)).unwrap();
    assert_eq!(l.identity, Identity::User("ops@acme.example".into()));
    // No certificate, or one that names nobody: refused, whatever else is sent.
    assert_eq!(
        a.login(&login("ops@acme.example", ""), None, None).err(),
        Some(AuthError::NoCertificate)
    );
    let stranger = cert_for("stranger", None);
    assert_eq!(
        a.login(&Credentials::default(), None, Some(&stranger))
            .err(),
        Some(AuthError::UnknownCertificate)
    );
    // A mapped user with a password must still send it (nats-server compares it too).
    let locked = cert_for("locked", None);
    assert_eq!(
        a.login(&Credentials::default(), None, Some(&locked)).err(),
        Some(AuthError::BadPassword)
    );
    assert!(a.login(&login("", "pw"), None, Some(&locked)).is_ok());
}

#[test]
fn certificate_users_need_verify_and_map() {
    let e = Config::from_toml("[authorization]\nusers = [{ user = \"CN=x\" }]")
        .and_then(|c| c.validate().map(|_| c))
        .unwrap_err();
    assert!(e.to_string().contains("verify_and_map"), "{e}");
    // And a password-less user is never logged in by a password, even an empty one.
    let a = Authenticator::from_config(&AuthConfig {
        users: vec![UserConfig {
            user: Some("CN=x".into()),
            ..UserConfig::default()
        }],
        ..AuthConfig::default()
    })
    .unwrap();
    assert_eq!(
        a.check(&login("CN=x", ""), None),
        Err(AuthError::CertificateRequired)
    );
}

#[test]
fn nkeys_still_work_when_certificates_name_users() {
    let kp = KeyPair::new_user();
    let pk = kp.public_key();
    let a = auth(&format!(
        "{TLS}[authorization]\nusers = [{{ nkey = \"{pk}\" }}, {{ user = \"CN=d,O=Acme\" }}]"
    ));
    let nonce = Authenticator::new_nonce().unwrap();
    let sig = BASE64URL_NOPAD.encode(&kp.sign(nonce.as_bytes()).unwrap());
    let creds = Credentials {
        nkey: Some(&pk),
        sig: Some(&sig),
        ..Credentials::default()
    };
    assert_eq!(
        a.check(&creds, Some(&nonce)),
        Ok(Identity::Nkey(pk.clone()))
    );
}

#[test]
fn bcrypt_configs_start_and_bound_their_checks() {
    let hash = bcrypt::hash("x", 4).unwrap();
    for toml in [
        format!("[authorization]\ntoken = \"{hash}\""),
        format!("[authorization]\nusers = [{{ user = \"a\", password = \"{hash}\" }}]"),
        format!("[authorization]\nuser = \"a\"\npassword = \"{hash}\"\nmax_bcrypt_checks = 8"),
    ] {
        let config = Config::from_toml(&toml).unwrap();
        config.validate().unwrap_or_else(|e| panic!("{toml}: {e}"));
        assert!(Authenticator::for_config(&config).is_ok(), "{toml}");
    }
    assert_eq!(Config::default().authorization.max_bcrypt_checks, 2);
    let e = Config::from_toml("[authorization]\ntoken = \"t\"\nmax_bcrypt_checks = 0")
        .and_then(|c| c.validate().map(|_| c))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_bcrypt_checks"), "{e}");
}
