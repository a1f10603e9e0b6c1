//! The server INFO body, client port and leafnode port, without a heap.

use super::JsonError;
use super::read::{Reader, read_fields};
use super::text::{JsonStr, StrList};
use super::write::Writer;

/// Subjects allowed and denied, as in the `import`/`export` of a leafnode INFO
/// (nats-server `SubjectPermission`). `None` lists are absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectPermission<'a> {
    /// `allow`: subjects (wildcards allowed) that are permitted.
    pub allow: Option<StrList<'a>>,
    /// `deny`: subjects that are refused even if allowed.
    pub deny: Option<StrList<'a>>,
}

#[cfg(feature = "leaf")]
impl<'a> SubjectPermission<'a> {
    /// Reads `{"allow":[…],"deny":[…]}` or `null`.
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Option<Self>, JsonError> {
        if r.null()? {
            return Ok(None);
        }
        let mut perm = SubjectPermission::default();
        r.object(|key, r| {
            match key {
                b"allow" => perm.allow = r.str_list()?,
                b"deny" => perm.deny = r.str_list()?,
                _ => r.skip_value()?,
            }
            Ok(())
        })
        .map_err(|e| match e {
            JsonError::ExpectedObject => JsonError::WrongType,
            other => other,
        })?;
        Ok(Some(perm))
    }
}

/// The INFO a nats-server sends (reference §1.2 client port, §1.4 after the first PING, §2.3
/// leafnode port), borrowing from the JSON bytes.
///
/// Fields are in nats-server 2.15.1's order (`server.go type Info`). Those Go always writes are
/// plain values; `omitempty` ones are `Option`, `false` or `0` when absent. Route and gateway
/// fields are skipped like any unknown key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerInfo<'a> {
    /// `server_id`: the server's public nkey.
    pub server_id: JsonStr<'a>,
    /// `server_name`: configured name, else the server id.
    pub server_name: JsonStr<'a>,
    /// `version`: server version, e.g. `2.15.1`.
    pub version: JsonStr<'a>,
    /// `proto`: 1 on the client port (async INFO, echo); on the leafnode port 1 up to 2.10,
    /// 3 from 2.11.
    pub proto: i32,
    /// `git_commit` (omitted by builds that do not know it).
    #[cfg(feature = "leaf")]
    pub git_commit: Option<JsonStr<'a>>,
    /// `go`: Go version of the build.
    #[cfg(feature = "leaf")]
    pub go: JsonStr<'a>,
    /// `host`: listen (or advertise) host.
    pub host: JsonStr<'a>,
    /// `port`: listen (or advertise) port.
    pub port: i32,
    /// `headers`: the server supports headers (HPUB/HMSG).
    pub headers: bool,
    /// `auth_required`: a CONNECT with credentials is needed (always true on the leafnode port).
    pub auth_required: bool,
    /// `tls_required`: TLS is required.
    pub tls_required: bool,
    /// `tls_verify`: client certificates are verified.
    pub tls_verify: bool,
    /// `tls_available`: TLS is possible but not required.
    pub tls_available: bool,
    /// `max_payload`: largest payload this connection may publish.
    pub max_payload: i32,
    /// `jetstream`: JetStream is enabled.
    pub jetstream: bool,
    /// `ip`: `host:port` on the leafnode port.
    #[cfg(feature = "leaf")]
    pub ip: Option<JsonStr<'a>>,
    /// `client_id`: the connection id; a soliciting leaf refuses an INFO with 0 (wrong port).
    pub client_id: u64,
    /// `client_ip`: the server's view of the client's address.
    pub client_ip: Option<JsonStr<'a>>,
    /// `nonce`: to sign with an nkey (15 base64url chars); always sent on the leafnode port.
    pub nonce: Option<JsonStr<'a>>,
    /// `cluster`: cluster name when clustered.
    #[cfg(feature = "leaf")]
    pub cluster: Option<JsonStr<'a>>,
    /// `cluster_dynamic`: the cluster name was generated.
    #[cfg(feature = "leaf")]
    pub cluster_dynamic: bool,
    /// `domain`: JetStream domain.
    pub domain: Option<JsonStr<'a>>,
    /// `connect_urls`: other servers' client URLs.
    pub connect_urls: Option<StrList<'a>>,
    /// `ws_connect_urls`: other servers' websocket URLs.
    #[cfg(feature = "leaf")]
    pub ws_connect_urls: Option<StrList<'a>>,
    /// `ldm`: the server entered lame-duck mode; reconnect elsewhere.
    pub ldm: bool,
    /// `compression`: leafnode compression the hub offers (`s2_auto`, `off`, …); absent = none.
    #[cfg(feature = "leaf")]
    pub compression: Option<JsonStr<'a>>,
    /// `connect_info`: this INFO answers the CONNECT (client: after the first PING, 2.12+;
    /// leaf: right after CONNECT).
    #[cfg(feature = "leaf")]
    pub connect_info: bool,
    /// `remote_account`: the account the connection is bound to (in the `connect_info` INFO).
    #[cfg(feature = "leaf")]
    pub remote_account: Option<JsonStr<'a>>,
    /// `acc_is_sys`: that account is the system account.
    #[cfg(feature = "leaf")]
    pub acc_is_sys: bool,
    /// `api_lvl`: JetStream API level (2.12+; 5 on 2.15.1).
    #[cfg(feature = "leaf")]
    pub api_lvl: i32,
    /// `import`: what a leaf may receive/subscribe to (leafnode `connect_info` INFO).
    #[cfg(feature = "leaf")]
    pub import: Option<SubjectPermission<'a>>,
    /// `export`: what a leaf may publish to the hub.
    #[cfg(feature = "leaf")]
    pub export: Option<SubjectPermission<'a>>,
    /// `info_on_connect`: the hub answers CONNECT with an INFO; a leaf waits up to 2 s for it.
    #[cfg(feature = "leaf")]
    pub info_on_connect: bool,
    /// `leafnode_urls`: the hub cluster's leafnode URLs. A soliciting leaf (2.2+) refuses an
    /// INFO without this key as "wrong port"; `Some` of an empty list is written as `[]`.
    #[cfg(feature = "leaf")]
    pub leafnode_urls: Option<StrList<'a>>,
    /// `xkey`: the server's x25519 public key (2.10+, auth callout).
    #[cfg(feature = "leaf")]
    pub xkey: Option<JsonStr<'a>>,
}

impl<'a> ServerInfo<'a> {
    /// Parses an INFO body (the JSON after `INFO `; trailing whitespace is fine).
    pub fn parse(json: &'a [u8]) -> Result<Self, JsonError> {
        let mut r = Reader::new(json);
        let mut info = ServerInfo::default();
        r.object(|key, r| info.read_field(key, r))?;
        r.finish()?;
        Ok(info)
    }

    fn read_field(&mut self, key: &[u8], r: &mut Reader<'a>) -> Result<(), JsonError> {
        // Server and leafnode fields: without the `leaf` feature they are skipped as unknown
        // keys, which keeps a sensor's firmware small.
        #[cfg(feature = "leaf")]
        match key {
            b"import" => return SubjectPermission::read(r).map(|p| self.import = p),
            b"export" => return SubjectPermission::read(r).map(|p| self.export = p),
            b"git_commit" => {
                self.git_commit = r.opt_string()?;
                return Ok(());
            }
            b"go" => {
                self.go = r.string_or_empty()?;
                return Ok(());
            }
            b"ip" => {
                self.ip = r.opt_string()?;
                return Ok(());
            }
            b"cluster" => {
                self.cluster = r.opt_string()?;
                return Ok(());
            }
            b"cluster_dynamic" => {
                self.cluster_dynamic = r.bool()?;
                return Ok(());
            }
            b"ws_connect_urls" => {
                self.ws_connect_urls = r.str_list()?;
                return Ok(());
            }
            b"compression" => {
                self.compression = r.opt_string()?;
                return Ok(());
            }
            b"connect_info" => {
                self.connect_info = r.bool()?;
                return Ok(());
            }
            b"remote_account" => {
                self.remote_account = r.opt_string()?;
                return Ok(());
            }
            b"acc_is_sys" => {
                self.acc_is_sys = r.bool()?;
                return Ok(());
            }
            b"api_lvl" => {
                self.api_lvl = r.i32()?;
                return Ok(());
            }
            b"info_on_connect" => {
                self.info_on_connect = r.bool()?;
                return Ok(());
            }
            b"leafnode_urls" => {
                self.leafnode_urls = r.str_list()?;
                return Ok(());
            }
            b"xkey" => {
                self.xkey = r.opt_string()?;
                return Ok(());
            }
            _ => {}
        }
        read_fields!(key, r, {
            b"server_id" => self.server_id = r.string_or_empty()?,
            b"server_name" => self.server_name = r.string_or_empty()?,
            b"version" => self.version = r.string_or_empty()?,
            b"proto" => self.proto = r.i32()?,
            b"host" => self.host = r.string_or_empty()?,
            b"port" => self.port = r.i32()?,
            b"headers" => self.headers = r.bool()?,
            b"auth_required" => self.auth_required = r.bool()?,
            b"tls_required" => self.tls_required = r.bool()?,
            b"tls_verify" => self.tls_verify = r.bool()?,
            b"tls_available" => self.tls_available = r.bool()?,
            b"max_payload" => self.max_payload = r.i32()?,
            b"jetstream" => self.jetstream = r.bool()?,
            b"client_id" => self.client_id = r.u64()?,
            b"client_ip" => self.client_ip = r.opt_string()?,
            b"nonce" => self.nonce = r.opt_string()?,
            b"domain" => self.domain = r.opt_string()?,
            b"connect_urls" => self.connect_urls = r.str_list()?,
            b"ldm" => self.ldm = r.bool()?,
        })
    }

    /// Writes the INFO body into `out` (as nats-server 2.15.1 orders and omits fields) and
    /// returns its length; [`JsonError::BufferTooSmall`] if it does not fit.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, JsonError> {
        let mut w = Writer::begin(out)?;
        w.str("server_id", &self.server_id)?;
        w.str("server_name", &self.server_name)?;
        w.str("version", &self.version)?;
        w.int("proto", self.proto.into())?;
        #[cfg(feature = "leaf")]
        w.opt_str("git_commit", &self.git_commit)?;
        #[cfg(feature = "leaf")]
        w.str("go", &self.go)?;
        w.str("host", &self.host)?;
        w.int("port", self.port.into())?;
        w.bool("headers", self.headers)?;
        w.true_bool("auth_required", self.auth_required)?;
        w.true_bool("tls_required", self.tls_required)?;
        w.true_bool("tls_verify", self.tls_verify)?;
        w.true_bool("tls_available", self.tls_available)?;
        w.int("max_payload", self.max_payload.into())?;
        w.true_bool("jetstream", self.jetstream)?;
        #[cfg(feature = "leaf")]
        w.opt_str("ip", &self.ip)?;
        w.nonzero_uint("client_id", self.client_id)?;
        w.opt_str("client_ip", &self.client_ip)?;
        w.opt_str("nonce", &self.nonce)?;
        #[cfg(feature = "leaf")]
        w.opt_str("cluster", &self.cluster)?;
        #[cfg(feature = "leaf")]
        w.true_bool("cluster_dynamic", self.cluster_dynamic)?;
        w.opt_str("domain", &self.domain)?;
        w.opt_list("connect_urls", &self.connect_urls)?;
        #[cfg(feature = "leaf")]
        w.opt_list("ws_connect_urls", &self.ws_connect_urls)?;
        w.true_bool("ldm", self.ldm)?;
        #[cfg(feature = "leaf")]
        w.opt_str("compression", &self.compression)?;
        #[cfg(feature = "leaf")]
        w.true_bool("connect_info", self.connect_info)?;
        #[cfg(feature = "leaf")]
        w.opt_str("remote_account", &self.remote_account)?;
        #[cfg(feature = "leaf")]
        w.true_bool("acc_is_sys", self.acc_is_sys)?;
        #[cfg(feature = "leaf")]
        w.nonzero_int("api_lvl", self.api_lvl.into())?;
        #[cfg(feature = "leaf")]
        {
            w.opt_permission("import", &self.import)?;
            w.opt_permission("export", &self.export)?;
        }
        #[cfg(feature = "leaf")]
        w.true_bool("info_on_connect", self.info_on_connect)?;
        #[cfg(feature = "leaf")]
        w.opt_list("leafnode_urls", &self.leafnode_urls)?;
        #[cfg(feature = "leaf")]
        w.opt_str("xkey", &self.xkey)?;
        w.end()
    }
}
