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
#[allow(missing_docs)] // documented on the heap-free twin, field for field
pub struct ServerInfo {
    #[serde(deserialize_with = "nullable")]
    pub server_id: String,
    #[serde(deserialize_with = "nullable")]
    pub server_name: String,
    #[serde(deserialize_with = "nullable")]
    pub version: String,
    #[serde(deserialize_with = "nullable")]
    pub proto: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub go: String,
    #[serde(deserialize_with = "nullable")]
    pub host: String,
    #[serde(deserialize_with = "nullable")]
    pub port: i32,
    #[serde(deserialize_with = "nullable")]
    pub headers: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_available: bool,
    #[serde(deserialize_with = "nullable")]
    pub max_payload: i32,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub jetstream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero_u64")]
    pub client_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub cluster_dynamic: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_urls: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws_connect_urls: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub ldm: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub connect_info: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub acc_is_sys: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub api_lvl: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub info_on_connect: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leafnode_urls: Option<Vec<String>>,
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
#[allow(missing_docs)] // documented on the heap-free twin, field for field
pub struct ClientConnect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verbose: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pedantic: Option<bool>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub protocol: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub new_account: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub headers: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub no_responders: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
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
#[allow(missing_docs)] // documented on the heap-free twin, field for field
pub struct LeafConnect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub is_hub: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub headers: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub jetstream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_pub: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub isolate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compress_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
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
