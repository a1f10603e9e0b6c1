//! twig-bench's pieces: `scan` (what the server sends) -> `conn` (one blocking connection) ->
//! `pubsub` / `reqrep` (the modes) -> `report` (one JSON line per run).
//!
//! No async runtime and no client library: std threads, blocking sockets with short timeouts,
//! and pre-built protocol bytes, so the bench spends as little CPU as it can on the same cores
//! as the server it measures.

pub mod conn;
pub mod jspub;
pub mod pubsub;
pub mod report;
pub mod reqrep;
pub mod scan;

use std::time::Duration;

/// Everything a run needs, from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// `HOST:PORT` of the server (a `nats://` prefix is accepted and dropped).
    pub url: String,
    /// Payload size in bytes.
    pub size: usize,
    /// Messages to publish (requests to make, for `reqrep`).
    pub msgs: u64,
    /// Hard limit on the whole run.
    pub limit: Duration,
    /// Subscribers for `pubsub`.
    pub subs: usize,
    /// Subject to publish on.
    pub subject: String,
    /// Requests made before latencies are recorded (`reqrep`).
    pub warmup: u64,
    /// Bytes the publisher writes per `write` call (whole PUB frames).
    pub batch: usize,
    /// Subscribers give up after this long without a new message once publishing is done.
    pub idle: Duration,
    /// `jspub`: publishes awaiting their PubAck at most.
    pub inflight: u64,
    /// `pubsub`: subscribers connect here instead of `url` (e.g. a hub, with the publisher on
    /// its leaf). The interest must then cross servers before the run starts: see
    /// [`Options::probe_subject`].
    pub sub_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            url: "127.0.0.1:4222".into(),
            size: 128,
            msgs: 100_000,
            limit: Duration::from_secs(30),
            subs: 1,
            subject: "twig.bench".into(),
            warmup: 100,
            batch: 64 * 1024,
            idle: Duration::from_secs(2),
            inflight: 256,
            sub_url: None,
        }
    }
}

impl Options {
    /// The subscribers' address (`sub_url`, else `url`).
    pub fn sub_addr(&self) -> &str {
        let u = self.sub_url.as_deref().unwrap_or(&self.url);
        u.strip_prefix("nats://").unwrap_or(u)
    }

    /// With subscribers on another server, each also subscribes this subject (after the
    /// measured one) and the publisher sends probes to it until every subscriber got one:
    /// interest crosses a link in order, so then the measured subject's interest has too.
    pub fn probe_subject(&self) -> Option<String> {
        self.sub_url
            .as_ref()
            .map(|_| format!("{}.ready", self.subject))
    }

    /// The address to connect to.
    pub fn addr(&self) -> &str {
        self.url.strip_prefix("nats://").unwrap_or(&self.url)
    }

    /// A payload of `size` printable bytes.
    pub fn payload(&self) -> Vec<u8> {
        (b'a'..=b'z').cycle().take(self.size).collect()
    }
}

/// `PUB <subject> [reply] <size>\r\n<payload>\r\n` appended to `out`.
pub fn pub_frame(out: &mut Vec<u8>, subject: &[u8], reply: Option<&[u8]>, payload: &[u8]) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject);
    out.push(b' ');
    if let Some(reply) = reply {
        out.extend_from_slice(reply);
        out.push(b' ');
    }
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}
