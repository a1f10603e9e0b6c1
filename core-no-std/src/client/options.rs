//! What the client sends in its CONNECT and the timers it keeps.

#[cfg(feature = "nkey")]
use crate::nkey::Signer;
use crate::wire::Limits;
use crate::wire::json::{ClientConnect, JsonStr};

/// Client settings. Credentials and names are borrowed for `'o` (usually `'static` on a
/// microcontroller: constants or a `static` config).
///
/// ```
/// use twig_core::client::Options;
///
/// let options = Options::new()
///     .name("sensor-7")
///     .user_password("sensor", "s3cret")
///     .ping_interval_ms(10_000);
/// assert_eq!(options.connect.verbose, Some(false));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Options<'o> {
    /// The CONNECT body sent after every INFO that opens a connection. [`Options::new`]
    /// starts from [`ClientConnect::new`] (verbose and pedantic off, protocol 1, headers and
    /// no-responders on) with `lang` `rust` and this crate's version.
    pub connect: ClientConnect<'o>,
    /// Keepalive: a PING after this many milliseconds of connection, and again every as many
    /// (nats.go sends one every 2 minutes; a sensor usually wants to notice sooner).
    pub ping_interval_ms: u64,
    /// PINGs left unanswered before the connection counts as stale (nats.go: 2).
    pub max_pings_out: u32,
    /// Time from [`Client::connect`](super::Client::connect) until the server answered the
    /// handshake's PING; past it the connection is given up.
    pub connect_timeout_ms: u64,
    /// Limits on what the server sends. `max_payload` should not exceed what the caller's
    /// receive buffer can hold whole (see [`Client::handle`](super::Client::handle)); a
    /// larger message from the server then ends the connection instead of stalling it.
    pub limits: Limits,
    /// The user nkey that signs the server's nonce (feature `nkey`): `CONNECT` then carries
    /// its public key as `nkey` and the signature as `sig`.
    #[cfg(feature = "nkey")]
    pub nkey: Option<&'o Signer>,
}

impl<'o> Options<'o> {
    /// Defaults: keepalive every 30 s, stale after 2 unanswered PINGs, 5 s to connect,
    /// nats-server's default limits.
    pub const fn new() -> Self {
        let mut connect = ClientConnect::new();
        connect.lang = Some(JsonStr::new("rust"));
        connect.version = Some(JsonStr::new(env!("CARGO_PKG_VERSION")));
        Options {
            connect,
            ping_interval_ms: 30_000,
            max_pings_out: 2,
            connect_timeout_ms: 5_000,
            limits: Limits {
                max_control_line: Limits::DEFAULT_MAX_CONTROL_LINE,
                max_payload: Limits::DEFAULT_MAX_PAYLOAD,
            },
            #[cfg(feature = "nkey")]
            nkey: None,
        }
    }

    /// The connection name (shows in the server's `/connz`).
    pub const fn name(mut self, name: &'o str) -> Self {
        self.connect.name = Some(JsonStr::new(name));
        self
    }

    /// User and password authentication.
    pub const fn user_password(mut self, user: &'o str, pass: &'o str) -> Self {
        self.connect.user = Some(JsonStr::new(user));
        self.connect.pass = Some(JsonStr::new(pass));
        self
    }

    /// nkey authentication (feature `nkey`): each connection's `CONNECT` is signed with
    /// `signer` over the nonce in the server's INFO. A server that sends no nonce does not do
    /// nkey authentication; the `CONNECT` then goes without `nkey` and `sig`.
    ///
    /// ```
    /// # #[cfg(feature = "nkey")] {
    /// use twig_core::client::Options;
    /// use twig_core::nkey::Signer;
    ///
    /// // A device's seed (made with `nk -gen user`); keep it out of source control.
    /// let seed = "SUAMTPZAC73CNEHO3HN2CQUMWVUGNUDDWYK52ZR5RQCDTOOL3QA3LCYHWQ";
    /// let signer = Signer::from_seed(seed).unwrap();
    /// assert_eq!(signer.public_key(), "UBI7OHFE3LF55YEZCXASWLPL5NMQPRK4LYYK7EBAOPJFCMGK4SURXXJ4");
    /// let options = Options::new().name("sensor-7").nkey(&signer);
    /// # let _ = options;
    /// # }
    /// ```
    #[cfg(feature = "nkey")]
    pub const fn nkey(mut self, signer: &'o Signer) -> Self {
        self.nkey = Some(signer);
        self
    }

    /// Token authentication.
    pub const fn token(mut self, token: &'o str) -> Self {
        self.connect.auth_token = Some(JsonStr::new(token));
        self
    }

    /// Whether the server delivers this client's own publishes to its own subscriptions
    /// (the server's default is yes).
    pub const fn echo(mut self, echo: bool) -> Self {
        self.connect.echo = Some(echo);
        self
    }

    /// The keepalive interval in milliseconds.
    pub const fn ping_interval_ms(mut self, ms: u64) -> Self {
        self.ping_interval_ms = ms;
        self
    }

    /// The connect timeout in milliseconds.
    pub const fn connect_timeout_ms(mut self, ms: u64) -> Self {
        self.connect_timeout_ms = ms;
        self
    }

    /// The largest message (header block plus payload) accepted from the server.
    pub const fn max_incoming_payload(mut self, bytes: usize) -> Self {
        self.limits.max_payload = bytes;
        self
    }
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options::new()
    }
}
