//! Owned INFO/CONNECT structs for the gateway (feature `alloc`), via serde and serde_json.
//!
//! Same fields, order and omission rules as the heap-free types in [`super`]: `Option` fields are
//! written when `Some`, `bool`/integer fields Go marks `omitempty` when non-zero, the rest
//! always. Reading accepts `null` for any field (async-nats writes `"jwt":null`), ignores unknown
//! keys, and unescapes strings. Unlike the heap-free readers, keys must match exactly (every real
//! peer writes them lowercase). `From<&heap-free>` converts a borrowed parse into these.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::{Deserialize, Deserializer, Serialize};

use super::{JsonError, JsonStr, StrList};

/// `null` reads as the type's default, as Go's decoder leaves a field untouched on `null`.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(v: &i32) -> bool {
    *v == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn map_err(e: serde_json::Error) -> JsonError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => JsonError::UnexpectedEnd,
        Category::Data => JsonError::WrongType,
        Category::Syntax | Category::Io => JsonError::Syntax,
    }
}

fn owned(s: &JsonStr<'_>) -> String {
    s.to_string()
}

fn owned_opt(s: &Option<JsonStr<'_>>) -> Option<String> {
    s.as_ref().map(owned)
}

fn owned_list(list: &Option<StrList<'_>>) -> Option<Vec<String>> {
    list.as_ref()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
}

/// Subjects allowed and denied (`import`/`export`), owned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectPermission {
    /// `allow`: permitted subjects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// `deny`: refused subjects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
}

impl From<&super::SubjectPermission<'_>> for SubjectPermission {
    fn from(p: &super::SubjectPermission<'_>) -> Self {
        SubjectPermission {
            allow: owned_list(&p.allow),
            deny: owned_list(&p.deny),
        }
    }
}

/// Generates `parse` (serde_json) and `to_json` for an owned message type.
macro_rules! json_io {
    ($ty:ident) => {
        impl $ty {
            /// Parses the JSON body.
            pub fn parse(json: &[u8]) -> Result<Self, JsonError> {
                serde_json::from_slice(json).map_err(map_err)
            }

            /// The JSON body, fields in nats-server's order.
            pub fn to_json(&self) -> Result<Vec<u8>, JsonError> {
                serde_json::to_vec(self).map_err(map_err)
            }
        }
    };
}

/// A server INFO, owned: the full field set of reference §1.2, §1.4 and §2.3. See
/// [`super::ServerInfo`] for what each field means.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    /// `server_id`: the server's public nkey.
    #[serde(deserialize_with = "nullable")]
    pub server_id: String,
    /// `server_name`: configured name, else the server id.
    #[serde(deserialize_with = "nullable")]
    pub server_name: String,
    /// `version`: server version, e.g. `2.15.1`.
    #[serde(deserialize_with = "nullable")]
    pub version: String,
    /// `proto`: 1 on the client port (async INFO, echo); on the leafnode port 1 up to 2.10,
    /// 3 from 2.11.
    #[serde(deserialize_with = "nullable")]
    pub proto: i32,
    /// `git_commit` (omitted by builds that do not know it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// `go`: Go version of the build.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub go: String,
    /// `host`: listen (or advertise) host.
    #[serde(deserialize_with = "nullable")]
    pub host: String,
    /// `port`: listen (or advertise) port.
    #[serde(deserialize_with = "nullable")]
    pub port: i32,
    /// `headers`: the server supports headers (HPUB/HMSG).
    #[serde(deserialize_with = "nullable")]
    pub headers: bool,
    /// `auth_required`: a CONNECT with credentials is needed (always true on the leafnode port).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// `tls_required`: TLS is required.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// `tls_verify`: client certificates are verified.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// `tls_available`: TLS is possible but not required.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_available: bool,
    /// `max_payload`: largest payload this connection may publish.
    #[serde(deserialize_with = "nullable")]
    pub max_payload: i32,
    /// `jetstream`: JetStream is enabled.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub jetstream: bool,
    /// `ip`: `host:port` on the leafnode port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// `client_id`: the connection id; a soliciting leaf refuses an INFO with 0 (wrong port).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero_u64")]
    pub client_id: u64,
    /// `client_ip`: the server's view of the client's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// `nonce`: to sign with an nkey (15 base64url chars); always sent on the leafnode port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// `cluster`: cluster name when clustered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `cluster_dynamic`: the cluster name was generated.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub cluster_dynamic: bool,
    /// `domain`: JetStream domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `connect_urls`: other servers' client URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_urls: Option<Vec<String>>,
    /// `ws_connect_urls`: other servers' websocket URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws_connect_urls: Option<Vec<String>>,
    /// `ldm`: the server entered lame-duck mode; reconnect elsewhere.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub ldm: bool,
    /// `compression`: leafnode compression the hub offers (`s2_auto`, `off`, …); absent = none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// `connect_info`: this INFO answers the CONNECT (client: after the first PING, 2.12+;
    /// leaf: right after CONNECT).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub connect_info: bool,
    /// `remote_account`: the account the connection is bound to (in the `connect_info` INFO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    /// `acc_is_sys`: that account is the system account.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub acc_is_sys: bool,
    /// `api_lvl`: JetStream API level (2.12+; 5 on 2.15.1).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub api_lvl: i32,
    /// `import`: what a leaf may receive/subscribe to (leafnode `connect_info` INFO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    /// `export`: what a leaf may publish to the hub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    /// `info_on_connect`: the hub answers CONNECT with an INFO; a leaf waits up to 2 s for it.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub info_on_connect: bool,
    /// `leafnode_urls`: the hub cluster's leafnode URLs. A soliciting leaf (2.2+) refuses an
    /// INFO without this key as "wrong port"; `Some` of an empty list is written as `[]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leafnode_urls: Option<Vec<String>>,
    /// `xkey`: the server's x25519 public key (2.10+, auth callout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xkey: Option<String>,
}

json_io!(ServerInfo);

impl From<&super::ServerInfo<'_>> for ServerInfo {
    fn from(i: &super::ServerInfo<'_>) -> Self {
        ServerInfo {
            server_id: owned(&i.server_id),
            server_name: owned(&i.server_name),
            version: owned(&i.version),
            proto: i.proto,
            git_commit: owned_opt(&i.git_commit),
            go: owned(&i.go),
            host: owned(&i.host),
            port: i.port,
            headers: i.headers,
            auth_required: i.auth_required,
            tls_required: i.tls_required,
            tls_verify: i.tls_verify,
            tls_available: i.tls_available,
            max_payload: i.max_payload,
            jetstream: i.jetstream,
            ip: owned_opt(&i.ip),
            client_id: i.client_id,
            client_ip: owned_opt(&i.client_ip),
            nonce: owned_opt(&i.nonce),
            cluster: owned_opt(&i.cluster),
            cluster_dynamic: i.cluster_dynamic,
            domain: owned_opt(&i.domain),
            connect_urls: owned_list(&i.connect_urls),
            ws_connect_urls: owned_list(&i.ws_connect_urls),
            ldm: i.ldm,
            compression: owned_opt(&i.compression),
            connect_info: i.connect_info,
            remote_account: owned_opt(&i.remote_account),
            acc_is_sys: i.acc_is_sys,
            api_lvl: i.api_lvl,
            import: i.import.as_ref().map(SubjectPermission::from),
            export: i.export.as_ref().map(SubjectPermission::from),
            info_on_connect: i.info_on_connect,
            leafnode_urls: owned_list(&i.leafnode_urls),
            xkey: owned_opt(&i.xkey),
        }
    }
}

/// A client CONNECT, owned: the full field set of reference §1.3. See
/// [`super::ClientConnect`] for the meaning of each field and the server's defaults
/// (`verbose`, `pedantic`, `echo` are true when omitted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientConnect {
    /// `echo`: deliver this connection's own publishes to its own subscriptions (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// `verbose`: `+OK` after every accepted op (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verbose: Option<bool>,
    /// `pedantic`: extra checks, e.g. `-ERR 'Invalid Publish Subject'` (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pedantic: Option<bool>,
    /// `tls_required`: the client requires TLS.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// `nkey`: the user's public nkey (then `sig` signs the INFO nonce).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    /// `jwt`: user JWT (operator mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// `sig`: base64url (no padding) Ed25519 signature of the INFO nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// `auth_token`: token authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// `user`: user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `pass`: password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// `name`: client connection name (shows in `/connz`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `lang`: client library language. A hub takes it as "a client on the leafnode port".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// `version`: client library version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `protocol`: 0 = original, 1 = accepts async INFO (and gets the `connect_info` INFO).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub protocol: i32,
    /// `account`: obsolete; makes authorization fail on current servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `new_account`: obsolete; makes authorization fail on current servers.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub new_account: bool,
    /// `headers`: the client understands HPUB/HMSG.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub headers: bool,
    /// `no_responders`: ask for 503 status messages (requires `headers`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub no_responders: bool,
    /// `import` (routes and leafs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    /// `export` (routes and leafs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    /// `remote_account` (leafs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    /// `proxy_sig`: a trusted proxy's nonce signature (2.12+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_sig: Option<String>,
}

json_io!(ClientConnect);

impl From<&super::ClientConnect<'_>> for ClientConnect {
    fn from(c: &super::ClientConnect<'_>) -> Self {
        ClientConnect {
            echo: c.echo,
            verbose: c.verbose,
            pedantic: c.pedantic,
            tls_required: c.tls_required,
            nkey: owned_opt(&c.nkey),
            jwt: owned_opt(&c.jwt),
            sig: owned_opt(&c.sig),
            auth_token: owned_opt(&c.auth_token),
            user: owned_opt(&c.user),
            pass: owned_opt(&c.pass),
            name: owned_opt(&c.name),
            lang: owned_opt(&c.lang),
            version: owned_opt(&c.version),
            protocol: c.protocol,
            account: owned_opt(&c.account),
            new_account: c.new_account,
            headers: c.headers,
            no_responders: c.no_responders,
            import: c.import.as_ref().map(SubjectPermission::from),
            export: c.export.as_ref().map(SubjectPermission::from),
            remote_account: owned_opt(&c.remote_account),
            proxy_sig: owned_opt(&c.proxy_sig),
        }
    }
}

/// A leaf CONNECT, owned: the full field set of reference §2.4 (never `lang`). See
/// [`super::LeafConnect`] for the meaning of each field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeafConnect {
    /// `version`: the leaf's server version (checked against the hub's `min_version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `nkey`: public nkey for raw nkey auth (2.10.8+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    /// `jwt`: user JWT (creds file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// `sig`: nonce signature for `jwt` or `nkey`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// `user`: user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `pass`: password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// `auth_token`: token auth (2.10.26 / 2.11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// `tls_required`: sent (always `false`) by leafs up to 2.9 only; hubs ignore it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_required: Option<bool>,
    /// `server_id`: the leaf's server id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// `domain`: the leaf's JetStream domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `name`: the leaf's server name (duplicate detection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `is_hub`: the leaf declares itself the hub (roles flip).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub is_hub: bool,
    /// `cluster`: the leaf's cluster name (defaults to its server name); no spaces, and not
    /// the hub's own cluster name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `headers`: header support (HMSG).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub headers: bool,
    /// `jetstream`: JetStream is configured for the bound account.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub jetstream: bool,
    /// `deny_pub`: the leaf's `deny_imports`; the hub adds them to its publish-deny.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_pub: Option<Vec<String>>,
    /// `isolate`: ask the hub not to send east-west interest from other leafs (2.12+).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub isolate: bool,
    /// `compress_mode`: `off`, `not supported`, `accept`, `s2_auto`, `s2_uncompressed`,
    /// `s2_fast`, `s2_better`, `s2_best` (2.10+; omitted = uncompressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compress_mode: Option<String>,
    /// `gateway`: only a gateway would send this; a hub rejects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// `remote_account`: the leaf's local account name (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    /// `protocol`: server-to-server protocol level (3 from 2.11).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub protocol: i32,
}

json_io!(LeafConnect);

impl From<&super::LeafConnect<'_>> for LeafConnect {
    fn from(c: &super::LeafConnect<'_>) -> Self {
        LeafConnect {
            version: owned_opt(&c.version),
            nkey: owned_opt(&c.nkey),
            jwt: owned_opt(&c.jwt),
            sig: owned_opt(&c.sig),
            user: owned_opt(&c.user),
            pass: owned_opt(&c.pass),
            auth_token: owned_opt(&c.auth_token),
            tls_required: c.tls_required,
            server_id: owned_opt(&c.server_id),
            domain: owned_opt(&c.domain),
            name: owned_opt(&c.name),
            is_hub: c.is_hub,
            cluster: owned_opt(&c.cluster),
            headers: c.headers,
            jetstream: c.jetstream,
            deny_pub: owned_list(&c.deny_pub),
            isolate: c.isolate,
            compress_mode: owned_opt(&c.compress_mode),
            gateway: owned_opt(&c.gateway),
            remote_account: owned_opt(&c.remote_account),
            protocol: c.protocol,
        }
    }
}
