//! CONNECT bodies, client and leaf, without a heap.

use super::JsonError;
#[cfg(feature = "leaf")]
use super::info::SubjectPermission;
use super::read::{Reader, read_fields};
use super::text::{JsonStr, StrList};
use super::write::Writer;

/// A client's CONNECT (reference §1.3, nats-server `client.go type ClientOpts`).
///
/// **Server defaults for omitted keys**: nats-server starts from `verbose=true, pedantic=true,
/// echo=true` and overlays the JSON, so `CONNECT {}` gets `+OK` after every op. Those three are
/// `Option` here so a parsed CONNECT tells "omitted" (`None`) apart; the `effective_*` methods
/// apply the server's defaults. Everything else defaults to empty / `false` / `0`.
///
/// Written in `ClientOpts` order, leaving out `None`, `false` and `0`. The server checks, not
/// this type: `protocol` must be 0 or 1; `no_responders` needs `headers`; `account` and
/// `new_account` now fail authorization; `jwt` counts only in operator mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientConnect<'a> {
    /// `echo`: deliver this connection's own publishes to its own subscriptions (default true).
    pub echo: Option<bool>,
    /// `verbose`: `+OK` after every accepted op (default true).
    pub verbose: Option<bool>,
    /// `pedantic`: extra checks, e.g. `-ERR 'Invalid Publish Subject'` (default true).
    pub pedantic: Option<bool>,
    /// `tls_required`: the client requires TLS.
    pub tls_required: bool,
    /// `nkey`: the user's public nkey (then `sig` signs the INFO nonce).
    pub nkey: Option<JsonStr<'a>>,
    /// `jwt`: user JWT (operator mode).
    pub jwt: Option<JsonStr<'a>>,
    /// `sig`: base64url (no padding) Ed25519 signature of the INFO nonce.
    pub sig: Option<JsonStr<'a>>,
    /// `auth_token`: token authentication.
    pub auth_token: Option<JsonStr<'a>>,
    /// `user`: user name.
    pub user: Option<JsonStr<'a>>,
    /// `pass`: password.
    pub pass: Option<JsonStr<'a>>,
    /// `name`: client connection name (shows in `/connz`).
    pub name: Option<JsonStr<'a>>,
    /// `lang`: client library language. A hub takes it as "a client on the leafnode port".
    pub lang: Option<JsonStr<'a>>,
    /// `version`: client library version.
    pub version: Option<JsonStr<'a>>,
    /// `protocol`: 0 = original, 1 = accepts async INFO (and gets the `connect_info` INFO).
    pub protocol: i32,
    /// `account`: obsolete; makes authorization fail on current servers.
    #[cfg(feature = "leaf")]
    pub account: Option<JsonStr<'a>>,
    /// `new_account`: obsolete; makes authorization fail on current servers.
    #[cfg(feature = "leaf")]
    pub new_account: bool,
    /// `headers`: the client understands HPUB/HMSG.
    pub headers: bool,
    /// `no_responders`: ask for 503 status messages (requires `headers`).
    pub no_responders: bool,
    /// `import` (routes and leafs only).
    #[cfg(feature = "leaf")]
    pub import: Option<SubjectPermission<'a>>,
    /// `export` (routes and leafs only).
    #[cfg(feature = "leaf")]
    pub export: Option<SubjectPermission<'a>>,
    /// `remote_account` (leafs only).
    #[cfg(feature = "leaf")]
    pub remote_account: Option<JsonStr<'a>>,
    /// `proxy_sig`: a trusted proxy's nonce signature (2.12+).
    #[cfg(feature = "leaf")]
    pub proxy_sig: Option<JsonStr<'a>>,
}

impl<'a> ClientConnect<'a> {
    /// What a modern, quiet client sends: `verbose` and `pedantic` off, `protocol` 1, headers
    /// and no-responders on. Add credentials, `name`, `lang`, `version` as needed.
    pub const fn new() -> Self {
        ClientConnect {
            echo: None,
            verbose: Some(false),
            pedantic: Some(false),
            tls_required: false,
            nkey: None,
            jwt: None,
            sig: None,
            auth_token: None,
            user: None,
            pass: None,
            name: None,
            lang: None,
            version: None,
            protocol: 1,
            #[cfg(feature = "leaf")]
            account: None,
            #[cfg(feature = "leaf")]
            new_account: false,
            headers: true,
            no_responders: true,
            #[cfg(feature = "leaf")]
            import: None,
            #[cfg(feature = "leaf")]
            export: None,
            #[cfg(feature = "leaf")]
            remote_account: None,
            #[cfg(feature = "leaf")]
            proxy_sig: None,
        }
    }

    /// `verbose` as the server applies it (true when omitted).
    pub fn effective_verbose(&self) -> bool {
        self.verbose.unwrap_or(true)
    }

    /// `pedantic` as the server applies it (true when omitted).
    pub fn effective_pedantic(&self) -> bool {
        self.pedantic.unwrap_or(true)
    }

    /// `echo` as the server applies it (true when omitted).
    pub fn effective_echo(&self) -> bool {
        self.echo.unwrap_or(true)
    }

    /// Parses a CONNECT body (the JSON after `CONNECT `).
    pub fn parse(json: &'a [u8]) -> Result<Self, JsonError> {
        let mut r = Reader::new(json);
        let mut c = ClientConnect::default();
        r.object(|key, r| c.read_field(key, r))?;
        r.finish()?;
        Ok(c)
    }

    fn read_field(&mut self, key: &[u8], r: &mut Reader<'a>) -> Result<(), JsonError> {
        // Server and leafnode fields: without the `leaf` feature they are skipped as unknown
        // keys, which keeps a sensor's firmware small.
        #[cfg(feature = "leaf")]
        match key {
            b"import" => return SubjectPermission::read(r).map(|p| self.import = p),
            b"export" => return SubjectPermission::read(r).map(|p| self.export = p),
            b"account" => {
                self.account = r.opt_string()?;
                return Ok(());
            }
            b"new_account" => {
                self.new_account = r.bool()?;
                return Ok(());
            }
            b"remote_account" => {
                self.remote_account = r.opt_string()?;
                return Ok(());
            }
            b"proxy_sig" => {
                self.proxy_sig = r.opt_string()?;
                return Ok(());
            }
            _ => {}
        }
        read_fields!(key, r, {
            b"echo" => self.echo = r.opt_bool()?,
            b"verbose" => self.verbose = r.opt_bool()?,
            b"pedantic" => self.pedantic = r.opt_bool()?,
            b"tls_required" => self.tls_required = r.bool()?,
            b"nkey" => self.nkey = r.opt_string()?,
            b"jwt" => self.jwt = r.opt_string()?,
            b"sig" => self.sig = r.opt_string()?,
            b"auth_token" => self.auth_token = r.opt_string()?,
            b"user" => self.user = r.opt_string()?,
            b"pass" => self.pass = r.opt_string()?,
            b"name" => self.name = r.opt_string()?,
            b"lang" => self.lang = r.opt_string()?,
            b"version" => self.version = r.opt_string()?,
            b"protocol" => self.protocol = r.i32()?,
            b"headers" => self.headers = r.bool()?,
            b"no_responders" => self.no_responders = r.bool()?,
        })
    }

    /// Writes the CONNECT body into `out` and returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, JsonError> {
        let mut w = Writer::begin(out)?;
        w.opt_bool("echo", self.echo)?;
        w.opt_bool("verbose", self.verbose)?;
        w.opt_bool("pedantic", self.pedantic)?;
        w.true_bool("tls_required", self.tls_required)?;
        w.opt_str("nkey", &self.nkey)?;
        w.opt_str("jwt", &self.jwt)?;
        w.opt_str("sig", &self.sig)?;
        w.opt_str("auth_token", &self.auth_token)?;
        w.opt_str("user", &self.user)?;
        w.opt_str("pass", &self.pass)?;
        w.opt_str("name", &self.name)?;
        w.opt_str("lang", &self.lang)?;
        w.opt_str("version", &self.version)?;
        w.nonzero_int("protocol", self.protocol.into())?;
        #[cfg(feature = "leaf")]
        w.opt_str("account", &self.account)?;
        #[cfg(feature = "leaf")]
        w.true_bool("new_account", self.new_account)?;
        w.true_bool("headers", self.headers)?;
        w.true_bool("no_responders", self.no_responders)?;
        #[cfg(feature = "leaf")]
        {
            w.opt_permission("import", &self.import)?;
            w.opt_permission("export", &self.export)?;
        }
        #[cfg(feature = "leaf")]
        w.opt_str("remote_account", &self.remote_account)?;
        #[cfg(feature = "leaf")]
        w.opt_str("proxy_sig", &self.proxy_sig)?;
        w.end()
    }
}

/// A leaf's CONNECT to a hub (reference §2.4, nats-server `leafnode.go type leafConnectInfo`).
///
/// Keys are the code's, not the docs': `is_hub`, `compress_mode`, `protocol`. There is no `lang`:
/// a hub seeing `lang` closes with `attempted to connect to leaf node port`. (A hub that wants
/// that check parses the same body as [`ClientConnect`] and looks at `lang`; auth fields are
/// read from both views by nats-server too.)
///
/// Written in 2.15.1 order, leaving out `None`, `false` and `0`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeafConnect<'a> {
    /// `version`: the leaf's server version (checked against the hub's `min_version`).
    pub version: Option<JsonStr<'a>>,
    /// `nkey`: public nkey for raw nkey auth (2.10.8+).
    pub nkey: Option<JsonStr<'a>>,
    /// `jwt`: user JWT (creds file).
    pub jwt: Option<JsonStr<'a>>,
    /// `sig`: nonce signature for `jwt` or `nkey`.
    pub sig: Option<JsonStr<'a>>,
    /// `user`: user name.
    pub user: Option<JsonStr<'a>>,
    /// `pass`: password.
    pub pass: Option<JsonStr<'a>>,
    /// `auth_token`: token auth (2.10.26 / 2.11).
    pub auth_token: Option<JsonStr<'a>>,
    /// `tls_required`: sent (always `false`) by leafs up to 2.9 only; hubs ignore it.
    pub tls_required: Option<bool>,
    /// `server_id`: the leaf's server id.
    pub server_id: Option<JsonStr<'a>>,
    /// `domain`: the leaf's JetStream domain.
    pub domain: Option<JsonStr<'a>>,
    /// `name`: the leaf's server name (duplicate detection).
    pub name: Option<JsonStr<'a>>,
    /// `is_hub`: the leaf declares itself the hub (roles flip).
    pub is_hub: bool,
    /// `cluster`: the leaf's cluster name (defaults to its server name); no spaces, and not
    /// the hub's own cluster name.
    pub cluster: Option<JsonStr<'a>>,
    /// `headers`: header support (HMSG).
    pub headers: bool,
    /// `jetstream`: JetStream is configured for the bound account.
    pub jetstream: bool,
    /// `deny_pub`: the leaf's `deny_imports`; the hub adds them to its publish-deny.
    pub deny_pub: Option<StrList<'a>>,
    /// `isolate`: ask the hub not to send east-west interest from other leafs (2.12+).
    pub isolate: bool,
    /// `compress_mode`: `off`, `not supported`, `accept`, `s2_auto`, `s2_uncompressed`,
    /// `s2_fast`, `s2_better`, `s2_best` (2.10+; omitted = uncompressed).
    pub compress_mode: Option<JsonStr<'a>>,
    /// `gateway`: only a gateway would send this; a hub rejects it.
    pub gateway: Option<JsonStr<'a>>,
    /// `remote_account`: the leaf's local account name (informational).
    pub remote_account: Option<JsonStr<'a>>,
    /// `protocol`: server-to-server protocol level (3 from 2.11).
    pub protocol: i32,
}

impl<'a> LeafConnect<'a> {
    /// Parses a leaf CONNECT body.
    pub fn parse(json: &'a [u8]) -> Result<Self, JsonError> {
        let mut r = Reader::new(json);
        let mut c = LeafConnect::default();
        r.object(|key, r| c.read_field(key, r))?;
        r.finish()?;
        Ok(c)
    }

    fn read_field(&mut self, key: &[u8], r: &mut Reader<'a>) -> Result<(), JsonError> {
        read_fields!(key, r, {
            b"version" => self.version = r.opt_string()?,
            b"tls_required" => self.tls_required = r.opt_bool()?,
            b"nkey" => self.nkey = r.opt_string()?,
            b"jwt" => self.jwt = r.opt_string()?,
            b"sig" => self.sig = r.opt_string()?,
            b"user" => self.user = r.opt_string()?,
            b"pass" => self.pass = r.opt_string()?,
            b"auth_token" => self.auth_token = r.opt_string()?,
            b"server_id" => self.server_id = r.opt_string()?,
            b"domain" => self.domain = r.opt_string()?,
            b"name" => self.name = r.opt_string()?,
            b"is_hub" => self.is_hub = r.bool()?,
            b"cluster" => self.cluster = r.opt_string()?,
            b"headers" => self.headers = r.bool()?,
            b"jetstream" => self.jetstream = r.bool()?,
            b"deny_pub" => self.deny_pub = r.str_list()?,
            b"isolate" => self.isolate = r.bool()?,
            b"compress_mode" => self.compress_mode = r.opt_string()?,
            b"gateway" => self.gateway = r.opt_string()?,
            b"remote_account" => self.remote_account = r.opt_string()?,
            b"protocol" => self.protocol = r.i32()?,
        })
    }

    /// Writes the CONNECT body into `out` and returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, JsonError> {
        let mut w = Writer::begin(out)?;
        w.opt_str("version", &self.version)?;
        w.opt_str("nkey", &self.nkey)?;
        w.opt_str("jwt", &self.jwt)?;
        w.opt_str("sig", &self.sig)?;
        w.opt_str("user", &self.user)?;
        w.opt_str("pass", &self.pass)?;
        w.opt_str("auth_token", &self.auth_token)?;
        // ≤2.9 wrote `tls_required` after `pass`, before `server_id`; kept there so such a
        // CONNECT round-trips byte for byte.
        w.opt_bool("tls_required", self.tls_required)?;
        w.opt_str("server_id", &self.server_id)?;
        w.opt_str("domain", &self.domain)?;
        w.opt_str("name", &self.name)?;
        w.true_bool("is_hub", self.is_hub)?;
        w.opt_str("cluster", &self.cluster)?;
        w.true_bool("headers", self.headers)?;
        w.true_bool("jetstream", self.jetstream)?;
        w.opt_list("deny_pub", &self.deny_pub)?;
        w.true_bool("isolate", self.isolate)?;
        w.opt_str("compress_mode", &self.compress_mode)?;
        w.opt_str("gateway", &self.gateway)?;
        w.opt_str("remote_account", &self.remote_account)?;
        w.nonzero_int("protocol", self.protocol.into())?;
        w.end()
    }
}
