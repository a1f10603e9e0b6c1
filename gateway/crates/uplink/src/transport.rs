//! The byte layers between the uplink's socket and its NATS parser and writer: the S2 stream
//! (nats-server 2.10+ leafnode compression) and websocket framing (`ws://`/`wss://`
//! remotes), each optional.
//!
//! The order is nats-server's: on the wire, TCP (or TLS) <- S2 <- websocket frames <- NATS
//! ops. The writer frames, then compresses; the reader decompresses, then unframes. S2 starts
//! in the middle of a connection (after the INFO exchange), so it is switched on where the
//! byte stream stands ([`ReadLayers::start_s2`]); websocket framing is there from the start.
//!
//! [`ReadLayers`] and [`WriteLayers`] hold no socket: bytes in, bytes out, so a test can feed
//! them a stream split anywhere. [`WireReader`] is the `AsyncRead` shell over a socket half.
//!
//! Every buffer is bounded: the raw read buffer and the websocket stage's buffer are fixed,
//! the S2 decoder holds one block (at most `max_block`), and the reader hands out only as much
//! as the parser's buffer has room for; the rest waits in the socket.
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::task::{Context, Poll};

use futures_lite::AsyncRead;
use twig_core::s2::{DecodeError, Decoder, EncodeError, Encoder, Level, tables_len};
use twig_util::dial;
use twig_wsproto::{Event, FrameDecoder, FrameEncoder, FrameError};

/// Bytes read from the socket at a time.
pub const RAW_READ: usize = 32 * 1024;

/// Why the layers gave up on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerError {
    /// The hub's S2 stream does not decode.
    S2(DecodeError),
    /// The hub's websocket frames are invalid.
    Ws(FrameError),
    /// The hub sent a websocket close.
    Closed {
        /// Its status code, if any.
        code: Option<u16>,
        /// Its reason.
        reason: String,
    },
    /// The stream ended inside an S2 chunk or a websocket frame.
    Truncated(&'static str),
    /// Bytes arrived where the protocol has none (before TLS started, say).
    Unexpected(&'static str),
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerError::S2(e) => write!(f, "{e}"),
            LayerError::Ws(e) => write!(f, "{e}"),
            LayerError::Closed { code, reason } => match code {
                Some(c) => write!(f, "websocket closed by the hub ({c}: {reason:?})"),
                None => f.write_str("websocket closed by the hub"),
            },
            LayerError::Truncated(what) => write!(f, "connection ended inside {what}"),
            LayerError::Unexpected(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for LayerError {}

impl From<LayerError> for io::Error {
    fn from(e: LayerError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// What [`ReadLayers::pull`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled {
    /// This many NATS bytes were written to the output (never 0).
    Data(usize),
    /// Everything buffered is used: read more from the socket into [`ReadLayers::space`].
    NeedInput,
}

/// A fixed buffer with a read position.
struct Buf {
    bytes: Box<[u8]>,
    pos: usize,
    len: usize,
}

impl Buf {
    fn new(size: usize) -> Buf {
        Buf {
            bytes: vec![0; size].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.bytes[self.pos..self.len]
    }
}

/// The read side (see the module docs).
pub struct ReadLayers {
    raw: Buf,
    s2: Option<Decoder<Vec<u8>>>,
    ws: Option<WsIn>,
}

/// The websocket stage: the frame decoder, and (with S2 below it) the decoded S2 bytes it
/// reads frames from.
struct WsIn {
    dec: FrameDecoder,
    mid: Buf,
}

impl ReadLayers {
    /// Plain bytes: nothing between the socket and the parser yet.
    pub fn new() -> ReadLayers {
        ReadLayers {
            raw: Buf::new(RAW_READ),
            s2: None,
            ws: None,
        }
    }

    /// Websocket framing from the next byte on (right after the `101` answer).
    pub fn start_ws(&mut self) {
        self.ws = Some(WsIn {
            dec: FrameDecoder::default(),
            mid: Buf::new(RAW_READ),
        });
    }

    /// Decompresses from the next unread byte on: the stream starts right after the INFO
    /// that ended the plain part. Blocks up to `max_block` bytes are accepted.
    pub fn start_s2(&mut self, max_block: usize) {
        self.s2 = Some(Decoder::new(vec![0u8; max_block]));
    }

    /// Whether S2 is on.
    pub fn s2(&self) -> bool {
        self.s2.is_some()
    }

    /// Raw bytes read but not used yet.
    pub fn buffered(&self) -> usize {
        self.raw.len - self.raw.pos
    }

    /// Compressed bytes in and plain bytes out of the S2 layer so far.
    pub fn s2_totals(&self) -> Option<(u64, u64)> {
        self.s2.as_ref().map(Decoder::totals)
    }

    /// Where the next socket read goes (the unused rest is moved to the front first).
    pub fn space(&mut self) -> &mut [u8] {
        let r = &mut self.raw;
        r.bytes.copy_within(r.pos..r.len, 0);
        r.len -= r.pos;
        r.pos = 0;
        &mut r.bytes[r.len..]
    }

    /// Bytes already read from the socket by someone else (after an HTTP head), to be used
    /// before anything read next. At most one read's worth.
    pub fn preload(&mut self, bytes: &[u8]) {
        let space = self.space();
        let n = bytes.len().min(space.len());
        space[..n].copy_from_slice(&bytes[..n]);
        self.filled(n);
    }

    /// `n` bytes were read into [`ReadLayers::space`].
    pub fn filled(&mut self, n: usize) {
        self.raw.len = (self.raw.len + n).min(self.raw.bytes.len());
    }

    /// The socket ended: an error if it ended inside an S2 chunk or a websocket frame.
    pub fn at_eof(&self) -> Result<(), LayerError> {
        if self.s2.as_ref().is_some_and(|d| !d.is_idle()) {
            return Err(LayerError::Truncated("an S2 chunk"));
        }
        if self.ws.as_ref().is_some_and(|w| !w.dec.is_idle()) {
            return Err(LayerError::Truncated("a websocket frame"));
        }
        Ok(())
    }

    /// Writes NATS bytes into `out` (not empty) from what is buffered. Websocket pings are
    /// handed to `on_ping` (answer each with a pong carrying its payload).
    pub fn pull(
        &mut self,
        out: &mut [u8],
        on_ping: &mut dyn FnMut(&[u8]),
    ) -> Result<Pulled, LayerError> {
        if out.is_empty() {
            return Ok(Pulled::NeedInput);
        }
        let ReadLayers { raw, s2, ws } = self;
        let Some(ws) = ws else {
            return match s2 {
                None => {
                    let n = raw.pending().len().min(out.len());
                    out[..n].copy_from_slice(&raw.bytes[raw.pos..raw.pos + n]);
                    raw.pos += n;
                    Ok(if n == 0 {
                        Pulled::NeedInput
                    } else {
                        Pulled::Data(n)
                    })
                }
                Some(dec) => {
                    let (used, made) = dec.read(raw.pending(), out).map_err(LayerError::S2)?;
                    raw.pos += used;
                    Ok(if made == 0 {
                        Pulled::NeedInput
                    } else {
                        Pulled::Data(made)
                    })
                }
            };
        };
        loop {
            // The frames come from the S2 stage's output, or straight from the socket.
            let src = match s2 {
                Some(dec) => {
                    if ws.mid.pending().is_empty() {
                        let (used, made) = dec
                            .read(raw.pending(), &mut ws.mid.bytes)
                            .map_err(LayerError::S2)?;
                        raw.pos += used;
                        ws.mid.pos = 0;
                        ws.mid.len = made;
                        if made == 0 {
                            return Ok(Pulled::NeedInput);
                        }
                    }
                    &mut ws.mid
                }
                None => {
                    if raw.pending().is_empty() {
                        return Ok(Pulled::NeedInput);
                    }
                    &mut *raw
                }
            };
            // No more input than `out` holds, so a data event always fits.
            let lim = src.pending().len().min(out.len());
            let input = &src.bytes[src.pos..src.pos + lim];
            let (used, event) = ws.dec.decode(input).map_err(LayerError::Ws)?;
            let produced = match event {
                None | Some(Event::Pong(_)) => 0,
                Some(Event::Data { bytes, .. }) => {
                    out[..bytes.len()].copy_from_slice(bytes);
                    bytes.len()
                }
                Some(Event::Ping(payload)) => {
                    on_ping(payload);
                    0
                }
                Some(Event::Close { code, reason }) => {
                    return Err(LayerError::Closed {
                        code,
                        reason: reason.to_string(),
                    });
                }
            };
            src.pos += used;
            if produced > 0 {
                return Ok(Pulled::Data(produced));
            }
        }
    }
}

impl Default for ReadLayers {
    fn default() -> ReadLayers {
        ReadLayers::new()
    }
}

/// What the reader does with a websocket ping's payload (queue a pong for the writer).
pub type OnPing = Box<dyn FnMut(&[u8]) + Send>;

/// The hub's bytes through the [`ReadLayers`], as an `AsyncRead` of NATS bytes.
pub struct WireReader {
    inner: dial::Reader,
    /// The layers (switch S2 on through this).
    pub layers: ReadLayers,
    on_ping: OnPing,
}

impl WireReader {
    /// Reads from `inner`; websocket pings go to `on_ping`.
    pub fn new(inner: dial::Reader, on_ping: OnPing) -> WireReader {
        WireReader {
            inner,
            layers: ReadLayers::new(),
            on_ping,
        }
    }

    /// Goes on reading from `inner` (the TLS session that started on the same socket). No
    /// byte may be waiting: the hub sends nothing between its INFO and the TLS handshake.
    pub fn set_inner(&mut self, inner: dial::Reader) -> Result<(), LayerError> {
        if self.layers.buffered() > 0 {
            return Err(LayerError::Unexpected(
                "the hub sent data after its INFO, before the TLS handshake",
            ));
        }
        self.inner = inner;
        Ok(())
    }
}

impl AsyncRead for WireReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match this.layers.pull(out, &mut *this.on_ping)? {
                Pulled::Data(n) => return Poll::Ready(Ok(n)),
                Pulled::NeedInput => {}
            }
            let space = this.layers.space();
            let n = match this.inner.as_mut().poll_read(cx, space) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                return Poll::Ready(this.layers.at_eof().map(|()| 0).map_err(Into::into));
            }
            this.layers.filled(n);
        }
    }
}

/// The write side: one batch of NATS bytes in, what goes on the wire out.
pub struct WriteLayers {
    ws: Option<FrameEncoder>,
    s2: Option<Encoder<Vec<u32>>>,
    /// Where `s2_auto`'s current level is published (by the reader, on each PONG).
    level: Option<Arc<SharedLevel>>,
    plain: Vec<u8>,
    framed: Vec<u8>,
    out: Vec<u8>,
}

impl WriteLayers {
    /// Plain bytes, no layer.
    pub fn new() -> WriteLayers {
        WriteLayers {
            ws: None,
            s2: None,
            level: None,
            plain: Vec::new(),
            framed: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Frames every batch as a websocket binary message (masked or not, from the upgrade).
    pub fn start_ws(&mut self, enc: FrameEncoder) {
        self.ws = Some(enc);
    }

    /// Compresses every batch from now on, at the level `level` says at each batch.
    pub fn start_s2(&mut self, level: Arc<SharedLevel>) {
        // Tables for the best level, so s2_auto can move between levels on one stream.
        let tables = vec![0u32; tables_len(Level::Best)];
        self.s2 = Some(Encoder::new(level.get(), tables));
        self.level = Some(level);
    }

    /// True when bytes go out as they are.
    pub fn is_plain(&self) -> bool {
        self.ws.is_none() && self.s2.is_none()
    }

    /// Plain bytes in and wire bytes out of the S2 layer so far.
    pub fn s2_totals(&self) -> Option<(u64, u64)> {
        self.s2.as_ref().map(Encoder::totals)
    }

    /// The wire bytes for websocket pongs answering `pongs`, then one batch: `urgent` lines
    /// then `bulk` data, in one websocket message and one S2 flush (whole blocks: the hub
    /// decodes all of it on arrival). Empty when there is nothing to send.
    pub fn encode(
        &mut self,
        pongs: &[Vec<u8>],
        urgent: &[u8],
        bulk: &[u8],
    ) -> Result<&[u8], EncodeError> {
        self.out.clear();
        self.plain.clear();
        self.plain.extend_from_slice(urgent);
        self.plain.extend_from_slice(bulk);
        let framed: &[u8] = match &mut self.ws {
            Some(ws) => {
                self.framed.clear();
                for p in pongs {
                    ws.pong(p, &mut self.framed);
                }
                if !self.plain.is_empty() {
                    ws.binary(&self.plain, &mut self.framed);
                }
                &self.framed
            }
            None => &self.plain,
        };
        match &mut self.s2 {
            Some(enc) => {
                if let Some(l) = &self.level {
                    enc.set_level(l.get());
                }
                if !framed.is_empty() {
                    enc.encode_to_vec(framed, &mut self.out)?;
                }
                Ok(&self.out)
            }
            None => Ok(framed),
        }
    }

    /// Gives big buffers back once the link is idle (after a large message).
    pub fn shrink(&mut self, keep: usize) {
        for b in [&mut self.plain, &mut self.framed, &mut self.out] {
            if b.capacity() > keep {
                *b = Vec::new();
            }
        }
    }
}

impl Default for WriteLayers {
    fn default() -> WriteLayers {
        WriteLayers::new()
    }
}

/// The S2 level the writer uses, set by the reader as the RTT moves (`s2_auto`).
#[derive(Debug)]
pub struct SharedLevel(AtomicU8);

impl SharedLevel {
    /// Starting at `level`.
    pub fn new(level: Level) -> SharedLevel {
        SharedLevel(AtomicU8::new(level as u8))
    }

    /// The current level.
    pub fn get(&self) -> Level {
        match self.0.load(Relaxed) {
            0 => Level::Uncompressed,
            1 => Level::Fast,
            2 => Level::Better,
            _ => Level::Best,
        }
    }

    /// Sets the level; true if it changed.
    pub fn set(&self, level: Level) -> bool {
        self.0.swap(level as u8, Relaxed) != level as u8
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
