//! A leafnode connection spoken by hand (twig-core's wire codec and S2 codec, no twig): the
//! soliciting side's handshake with nats-server's compression negotiation, then ops both
//! ways. Tests use it to check the S2 codec against a real hub without the gateway in the way.
//!
//! Reads go through a buffer of `read_size` bytes, so a small size splits every S2 chunk and
//! every op across reads; writes can be cut into pieces of `write_piece` bytes too. Over a
//! websocket ([`ws_upgrade`], optionally through an HTTP CONNECT proxy: [`dial_via_proxy`])
//! the same leaf protocol travels inside binary frames (twig-wsproto's codec).
//!
//! Layering, as nats-server does it: with both websocket and S2, the S2 stream is the outer
//! layer and the websocket frames are inside it (nats-server frames its output, then
//! compresses the frames; it decompresses what it reads, then parses frames). So on the wire:
//! TCP <- S2 <- websocket frames <- NATS ops.

use std::time::Instant as StdInstant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Any byte stream a leaf can run over: TCP, or TLS on TCP (`wss://`).
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}
use tokio::time::{Instant, timeout_at};
use twig_core::s2::mode::{LeafPlan, Mode, Thresholds, leaf_plan};
use twig_core::s2::{Decoder, Encoder, Level, NATS_BLOCK_SIZE, tables_len};
use twig_core::wire::{Limits, Mode as WireMode, Op, Parser};
use twig_wsproto::{
    ClientHandshake, Event, FrameDecoder, FrameEncoder, HandshakeError, ProxyError, RemoteUrl,
    connect_request, read_connect_response,
};

/// The websocket layer of a connection: frame codec both ways, bytes read past the `101`.
pub struct WsLink {
    dec: FrameDecoder,
    enc: FrameEncoder,
    leftover: Vec<u8>,
    /// Whether our frames are masked.
    pub masked: bool,
}

/// Reads an HTTP head byte by byte (so nothing after it is consumed) until `done` says it
/// is complete; returns all bytes read.
async fn read_head<T>(
    stream: &mut (impl Conn + ?Sized),
    deadline: Instant,
    mut done: impl FnMut(&[u8]) -> Option<T>,
) -> (Vec<u8>, T) {
    let mut buf = Vec::new();
    loop {
        if let Some(t) = done(&buf) {
            return (buf, t);
        }
        let mut b = [0u8; 256];
        let n = timeout_at(deadline, stream.read(&mut b))
            .await
            .expect("timed out reading an HTTP answer")
            .expect("read an HTTP answer");
        assert!(n > 0, "connection closed during the HTTP exchange");
        buf.extend_from_slice(&b[..n]);
    }
}

/// Opens a tunnel to `target` (`host:port`) through the HTTP CONNECT proxy at `proxy_port`.
pub async fn dial_via_proxy(
    proxy_port: u16,
    target: &str,
    credentials: Option<(&str, &str)>,
    deadline: Instant,
) -> Result<(TcpStream, Vec<u8>), ProxyError> {
    let mut stream = timeout_at(deadline, TcpStream::connect(("127.0.0.1", proxy_port)))
        .await
        .expect("proxy connect timed out")
        .expect("proxy connect");
    stream
        .write_all(&connect_request(target, credentials))
        .await
        .expect("write CONNECT");
    let (buf, res) = read_head(&mut stream, deadline, |b| match read_connect_response(b) {
        Ok(None) => None,
        other => Some(other),
    })
    .await;
    let head = res?.expect("complete");
    Ok((stream, buf[head..].to_vec()))
}

/// The websocket upgrade for a leafnode connection on `stream` (`leftover`: bytes already
/// read past a proxy's answer).
pub async fn ws_upgrade(
    stream: &mut (impl Conn + ?Sized),
    url: &RemoteUrl,
    no_masking: bool,
    deadline: Instant,
) -> Result<WsLink, HandshakeError> {
    let key: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5C);
    let (hs, req) = ClientHandshake::leafnode(url, key, no_masking);
    stream.write_all(&req).await.expect("write the upgrade");
    let (buf, res) = read_head(stream, deadline, |b| match hs.read_response(b) {
        Ok(None) => None,
        other => Some(other),
    })
    .await;
    let up = res?.expect("complete");
    Ok(WsLink {
        dec: FrameDecoder::default(),
        enc: FrameEncoder::new(up.mask, 0x0123_4567_89AB_CDEF),
        leftover: buf[up.head_len..].to_vec(),
        masked: up.mask,
    })
}

/// An op received, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// `INFO` with its JSON.
    Info(serde_json::Value),
    /// `LS+ subject`.
    LsPlus(String),
    /// `LS- subject`.
    LsMinus(String),
    /// `LMSG`/`HMSG`.
    Msg {
        /// Subject.
        subject: String,
        /// Reply subject.
        reply: Option<String>,
        /// Header block.
        headers: Option<Vec<u8>>,
        /// Payload.
        payload: Vec<u8>,
    },
    /// `PONG` (PINGs are answered inside).
    Pong,
    /// `-ERR` text.
    Err(String),
    /// Anything else (its debug text).
    Other(String),
}

/// One raw leaf connection.
pub struct RawLeaf {
    stream: Box<dyn Conn>,
    ws: Option<WsLink>,
    enc: Option<Encoder<Vec<u32>>>,
    dec: Option<Decoder<Vec<u8>>>,
    parser: Parser,
    /// Plain bytes not yet parsed.
    plain: Vec<u8>,
    read_size: usize,
    /// Cut each write into pieces this long (0 = whole).
    pub write_piece: usize,
    /// The hub's first INFO.
    pub hub_info: serde_json::Value,
    /// What negotiation decided.
    pub plan: LeafPlan,
    /// Plain bytes sent and bytes that went on the wire for them.
    pub sent: (u64, u64),
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl RawLeaf {
    /// Connects to a hub's leafnode port, negotiates compression with `mode` and completes
    /// the handshake (through the hub's post-CONNECT INFO). `name` must be unique per hub.
    pub async fn connect(
        port: u16,
        mode: Mode,
        name: &str,
        read_size: usize,
        deadline: Instant,
    ) -> RawLeaf {
        let stream = timeout_at(deadline, TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("leaf connect timed out")
            .expect("leaf connect");
        stream.set_nodelay(true).expect("nodelay");
        RawLeaf::handshake(Box::new(stream), None, mode, name, read_size, deadline).await
    }

    /// The same on an open connection, over `ws` if given.
    pub async fn handshake(
        stream: Box<dyn Conn>,
        ws: Option<WsLink>,
        mode: Mode,
        name: &str,
        read_size: usize,
        deadline: Instant,
    ) -> RawLeaf {
        let started = StdInstant::now();
        let mut leaf = RawLeaf {
            stream,
            ws,
            enc: None,
            dec: None,
            parser: Parser::new(WireMode::Leaf, Limits::default().for_server_link()),
            plain: Vec::new(),
            read_size: read_size.max(1),
            write_piece: 0,
            hub_info: serde_json::Value::Null,
            plan: LeafPlan::Plain {
                connect: Mode::NotSupported,
            },
            sent: (0, 0),
        };
        let Got::Info(info) = leaf.next(deadline).await else {
            panic!("the hub did not start with INFO");
        };
        let offered = info["compression"].as_str().map(str::to_owned);
        // nats-server's first s2_auto level comes from the time since the connection began.
        let plan = leaf_plan(
            mode,
            &Thresholds::default(),
            offered.as_deref(),
            started.elapsed(),
        )
        .expect("the hub offered a known compression mode");
        leaf.hub_info = info;
        leaf.plan = plan;
        let connect_mode = match plan {
            LeafPlan::Compress {
                info: info_mode,
                level,
                connect,
            } => {
                // Our INFO goes out plain; everything after it is S2 both ways.
                let ours = serde_json::json!({
                    "server_id": format!("RAWLEAF{name}"),
                    "name": name,
                    "version": "2.15.1",
                    "proto": 3,
                    "headers": true,
                    "client_id": 1,
                    "compression": info_mode.as_str(),
                });
                leaf.write_plain(format!("INFO {ours}\r\n").as_bytes())
                    .await;
                leaf.enc = Some(Encoder::new(level, vec![0u32; tables_len(Level::Best)]));
                // 1 MiB: the largest block nats-server writes (its writer's block size).
                leaf.dec = Some(Decoder::new(vec![0u8; NATS_BLOCK_SIZE]));
                // The hub answers with its INFO again, compressed.
                match leaf.next(deadline).await {
                    Got::Info(_) => {}
                    other => panic!("expected the hub's compressed INFO, got {other:?}"),
                }
                connect
            }
            LeafPlan::Plain { connect } => connect,
        };
        let connect = serde_json::json!({
            "version": "2.15.1",
            "server_id": format!("RAWLEAF{name}"),
            "name": name,
            "cluster": name,
            "headers": true,
            "compress_mode": connect_mode.as_str(),
            "remote_account": "$G",
            "protocol": 1,
        });
        leaf.send(format!("CONNECT {connect}\r\n").as_bytes()).await;
        if leaf.hub_info["info_on_connect"].as_bool() == Some(true) {
            loop {
                match leaf.next(deadline).await {
                    Got::Info(i) if i["connect_info"].as_bool() == Some(true) => break,
                    Got::Err(e) => panic!("hub refused the raw leaf: {e}"),
                    _ => {}
                }
            }
        }
        leaf
    }

    /// The encoder's level, if compressing.
    pub fn level(&self) -> Option<Level> {
        self.enc.as_ref().map(Encoder::level)
    }

    /// Changes the level we compress at (what `s2_auto` does when the RTT moves).
    pub fn set_level(&mut self, level: Level) {
        if let Some(e) = self.enc.as_mut() {
            e.set_level(level);
        }
    }

    /// Sends `plain` as one flush: in a websocket frame if over websocket, then compressed
    /// if negotiated.
    pub async fn send(&mut self, plain: &[u8]) {
        let framed = self.frame(plain);
        let wire = match self.enc.as_mut() {
            Some(e) => {
                let mut out = Vec::new();
                e.encode_to_vec(&framed, &mut out).expect("encode");
                out
            }
            None => framed,
        };
        self.sent.0 += plain.len() as u64;
        self.sent.1 += wire.len() as u64;
        self.write_raw(&wire).await;
    }

    /// Sends `plain` framed (if over websocket) but never compressed: the INFO that comes
    /// before the switch to S2.
    async fn write_plain(&mut self, plain: &[u8]) {
        let framed = self.frame(plain);
        self.write_raw(&framed).await;
    }

    fn frame(&mut self, plain: &[u8]) -> Vec<u8> {
        match self.ws.as_mut() {
            Some(ws) => {
                let mut out = Vec::new();
                ws.enc.binary(plain, &mut out);
                out
            }
            None => plain.to_vec(),
        }
    }

    async fn write_raw(&mut self, bytes: &[u8]) {
        let piece = if self.write_piece == 0 {
            bytes.len().max(1)
        } else {
            self.write_piece
        };
        for p in bytes.chunks(piece) {
            self.stream.write_all(p).await.expect("leaf write");
            self.stream.flush().await.expect("leaf flush");
        }
    }

    /// The next op other than PING (answered); panics at `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Got {
        loop {
            if let Some(got) = self.parse_one() {
                if got == Got::Other("PING".into()) {
                    self.send(b"PONG\r\n").await;
                    continue;
                }
                return got;
            }
            let mut buf = vec![0u8; self.read_size];
            let n = match self.ws.as_mut().map(|w| std::mem::take(&mut w.leftover)) {
                Some(left) if !left.is_empty() => {
                    buf = left;
                    buf.len()
                }
                _ => timeout_at(deadline, self.stream.read(&mut buf))
                    .await
                    .expect("timed out waiting for the hub")
                    .expect("leaf read"),
            };
            assert!(n > 0, "the hub closed the connection");
            let inner = self.decompress(&buf[..n]);
            let (data, pings) = self.unframe(&inner);
            self.plain.extend_from_slice(&data);
            for p in pings {
                let mut pong = Vec::new();
                if let Some(ws) = self.ws.as_mut() {
                    ws.enc.pong(&p, &mut pong);
                }
                let wire = match self.enc.as_mut() {
                    Some(e) => {
                        let mut out = Vec::new();
                        e.encode_to_vec(&pong, &mut out).expect("encode");
                        out
                    }
                    None => pong,
                };
                self.write_raw(&wire).await;
            }
        }
    }

    /// The S2 layer: what the hub's stream decodes to (or `bytes` before the switch).
    fn decompress(&mut self, bytes: &[u8]) -> Vec<u8> {
        let Some(d) = self.dec.as_mut() else {
            return bytes.to_vec();
        };
        let mut out = Vec::new();
        let mut input = bytes;
        loop {
            let f = d.feed(input).expect("the hub's S2 stream decodes");
            out.extend_from_slice(f.plain);
            input = &input[f.consumed..];
            if f.consumed == 0 && f.plain.is_empty() {
                return out;
            }
        }
    }

    /// The websocket layer: the leaf protocol inside the frames, and ping payloads to
    /// answer (or `bytes` as they are without a websocket).
    fn unframe(&mut self, bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let Some(ws) = self.ws.as_mut() else {
            return (bytes.to_vec(), Vec::new());
        };
        let mut data = Vec::new();
        let mut pings = Vec::new();
        let mut input = bytes;
        while !input.is_empty() {
            let (n, ev) = ws
                .dec
                .decode(input)
                .expect("the hub's websocket frames decode");
            match ev {
                Some(Event::Data { bytes, .. }) => data.extend_from_slice(bytes),
                Some(Event::Ping(p)) => pings.push(p.to_vec()),
                Some(Event::Close { code, reason }) => {
                    panic!("the hub closed the websocket: {code:?} {reason}")
                }
                Some(Event::Pong(_)) | None => {}
            }
            input = &input[n..];
        }
        (data, pings)
    }

    fn parse_one(&mut self) -> Option<Got> {
        let (got, used) = match self.parser.parse(&self.plain) {
            Ok(Some((op, used))) => (own(op), used),
            Ok(None) => return None,
            Err(e) => panic!("the hub sent what twig-core cannot parse: {e:?}"),
        };
        self.plain.drain(..used);
        // The first INFO is plain; a compressing leaf must not have read past it. The hub
        // sends nothing more before our answer, so the buffer is empty here.
        Some(got)
    }
}

fn own(op: Op<'_>) -> Got {
    match op {
        Op::Info(j) => Got::Info(serde_json::from_slice(j).expect("INFO JSON")),
        Op::LsPlus { subject, .. } => Got::LsPlus(text(subject)),
        Op::LsMinus { subject, .. } => Got::LsMinus(text(subject)),
        Op::Lmsg {
            subject,
            reply,
            headers,
            payload,
            ..
        } => Got::Msg {
            subject: text(subject),
            reply: reply.map(text),
            headers: headers.map(<[u8]>::to_vec),
            payload: payload.to_vec(),
        },
        Op::Ping => Got::Other("PING".into()),
        Op::Pong => Got::Pong,
        Op::Err(e) => Got::Err(text(e)),
        other => Got::Other(format!("{other:?}")),
    }
}
