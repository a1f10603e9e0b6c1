//! What twig says it is: a nats-server version for clients and hubs, and its own version.
//!
//! Clients and hubs compare versions: a legacy nats-py test asserts major version 2, a hub
//! with `leafnodes { min_version: "2.10.0" }` refuses any leaf below it (the only use a hub
//! makes of a leaf's version; nats-server accepts no `min_version` below 2.8.0). Reporting
//! twig's own `0.1.0` there would make twig look like an ancient server, so INFO, the leafnode
//! CONNECT and `/varz` carry [`NATS_SERVER`], and twig's own version goes next to it
//! ([`TWIG`], as `twig_version`).

/// The nats-server release whose protocol twig speaks: **2.12.0**.
///
/// Why this one:
/// - Client protocol: twig speaks `proto` 1 with headers and no-responders (2.2) and, like
///   nats-server from 2.12.0 on, answers a protocol-1 client's first PING with the extra
///   `connect_info` INFO. That INFO is the newest change a client can see on the wire, and
///   twig's replies are compared byte for byte with nats-server 2.15.1's
///   (`tests/tests/conformance.rs`). A version below 2.12 would announce a protocol without
///   the INFO twig sends; nothing client-visible changed from 2.12 to 2.15.
/// - Leafnode protocol: twig's CONNECT carries `compress_mode`, `remote_account` and nkey
///   signatures (2.10) and `protocol` 1 (no message tracing, which is `protocol` 3 from
///   2.11). Hubs key features on `protocol`, never on `version`, so 2.12.0 promises nothing
///   the hub would act on; it only meets a `min_version` up to 2.12.0.
/// - Not JetStream: twig has no JetStream API, so INFO leaves out `jetstream` and `api_lvl`
///   whatever the version says (clients check those, not the version, before using JS).
pub const NATS_SERVER: &str = "2.12.0";

/// twig's own version (the crate version), reported as `twig_version` next to [`NATS_SERVER`].
pub const TWIG: &str = env!("CARGO_PKG_VERSION");

/// The git commit twig was built from (7 hex digits), when the build knew it (`build.rs`).
pub fn git_commit() -> Option<&'static str> {
    Some(env!("TWIG_GIT_COMMIT")).filter(|c| !c.is_empty())
}

/// The compiler that built twig, reported where nats-server reports its Go version (INFO
/// `go`, which clients such as nats-core require; `/varz` `go`).
pub const RUSTC: &str = env!("TWIG_RUSTC");

/// The `-v` line: twig's version first (it is twig), then what it speaks and its build.
pub fn version_line() -> String {
    let git = git_commit()
        .map(|c| format!(", git [{c}]"))
        .unwrap_or_default();
    format!("twig: v{TWIG} (nats-server protocol v{NATS_SERVER}{git}, {RUSTC})")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version parts of the ecosystem read: `major.minor.patch`, major 2, at least the 2.8.0
    /// a hub accepts as `min_version`.
    #[test]
    fn the_reported_version_is_a_nats_server_2_version() {
        let parts: Vec<u32> = NATS_SERVER.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], 2);
        assert!((parts[1], parts[2]) >= (8, 0));
        assert!(version_line().starts_with(&format!("twig: v{TWIG} (")));
        assert!(version_line().contains(NATS_SERVER));
        assert!(RUSTC.starts_with("rustc"));
        if let Some(c) = git_commit() {
            assert!(
                c.len() >= 7 && c.chars().all(|x| x.is_ascii_hexdigit()),
                "{c}"
            );
        }
    }
}
