//! Opening the byte stream to a hub, up to where the hub's first INFO can be read: TCP
//! (directly, or through an HTTP CONNECT proxy), and for websocket remotes TLS (`wss://`)
//! and the upgrade to `/leafnode` (twig-wsproto's request and check).
//!
//! nats-server's order: a plain or `tls://` remote reads the hub's INFO in the clear and only
//! then starts TLS (the shell does that after the INFO); a websocket remote does TLS first,
//! then the HTTP upgrade, and the INFO comes in the first frame.
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt, FutureExt};
use futures_rustls::rustls::ClientConfig;
use twig_config::{LeafConfig, LeafUrl, RemoteConfig};
use twig_util::dial::{self, Writer};
use twig_wsproto::{
    ClientHandshake, FrameEncoder, ProxyUrl, connect_request, read_connect_response,
};

use super::transport::{OnPing, WireReader, WriteLayers};

/// HTTP heads are read this much at a time (the bytes after the head are kept).
const HEAD_READ: usize = 1024;

/// A connection ready for the hub's INFO.
pub struct Opened {
    /// The socket (shut down when the connection ends; TLS after the INFO runs on it).
    pub stream: Arc<Async<TcpStream>>,
    /// The hub's bytes (websocket framing already on for a websocket remote).
    pub reader: WireReader,
    /// Where twig's bytes go.
    pub writer: Writer,
    /// The writer's layers (websocket framing for a websocket remote).
    pub layers: WriteLayers,
    /// TLS is already on (`wss://`): no TLS after the INFO.
    pub tls_done: bool,
}

/// Dials `url` of `remote` and, for a websocket URL, upgrades the connection.
pub async fn open(
    remote: &RemoteConfig,
    leaf: &LeafConfig,
    url: &LeafUrl,
    tls: Option<Arc<ClientConfig>>,
    on_ping: OnPing,
) -> Result<Opened, String> {
    let dial_timeout = remote.dial_timeout(leaf);
    let (stream, leftover) = match &remote.proxy {
        None => {
            let s = dial::tcp(&url.host, url.port, dial_timeout, leaf.unsent_limit)
                .await
                .map_err(|e| e.to_string())?;
            (s, Vec::new())
        }
        Some(p) => {
            let proxy = ProxyUrl::parse(&p.url).map_err(|e| e.to_string())?;
            let timeout = p.timeout.unwrap_or(dial_timeout);
            let s = dial::tcp(&proxy.host, proxy.port, timeout, leaf.unsent_limit)
                .await
                .map_err(|e| format!("failed to connect to proxy: {e}"))?;
            let credentials = p.username.as_deref().zip(p.password.as_deref());
            let req = connect_request(&url.host_port(), credentials);
            let mut io = dial::ArcIo(s.clone());
            within(timeout, "the proxy's answer", async {
                io.write_all(&req).await.map_err(|e| e.to_string())?;
                let (buf, head) = read_head(&mut io, |b| {
                    read_connect_response(b).map_err(|e| e.to_string())
                })
                .await?;
                Ok((s, buf[head..].to_vec()))
            })
            .await?
        }
    };
    let Some(ws) = &url.ws else {
        // The hub speaks first (its INFO may already have come with the proxy's answer).
        let mut reader = WireReader::new(Box::pin(dial::ArcIo(stream.clone())), on_ping);
        reader.layers.preload(&leftover);
        return Ok(Opened {
            writer: Box::pin(dial::ArcIo(stream.clone())),
            stream,
            reader,
            layers: WriteLayers::new(),
            tls_done: false,
        });
    };
    if !leftover.is_empty() {
        return Err("the proxy sent data before the websocket upgrade".into());
    }
    let (mut r, mut w) = if ws.tls {
        let Some(config) = tls else {
            return Err("wss:// needs leafnodes.remotes.tls (at least ca_file)".into());
        };
        let t = remote.tls.as_ref();
        let name = t
            .and_then(|t| t.server_name.clone())
            .unwrap_or_else(|| url.host.clone());
        let timeout = t.map_or(twig_config::default_tls_timeout(), |t| t.timeout);
        dial::tls(stream.clone(), config, &name, timeout)
            .await
            .map_err(|e| format!("TLS handshake error: {e}"))?
    } else {
        dial::plain(stream.clone())
    };
    let key = {
        let (a, b) = (twig_util::id::random_u64(), twig_util::id::random_u64());
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&a.to_le_bytes());
        k[8..].copy_from_slice(&b.to_le_bytes());
        k
    };
    let (hs, req) = ClientHandshake::leafnode(ws, key, remote.ws_no_masking);
    // nats-server gives the whole upgrade the first-INFO timeout.
    let (up, frames) = within(remote.first_info_timeout, "the websocket upgrade", async {
        w.write_all(&req).await.map_err(|e| e.to_string())?;
        w.flush().await.map_err(|e| e.to_string())?;
        let mut found = None;
        let (buf, head) = read_head(&mut r, |b| match hs.read_response(b) {
            Ok(Some(up)) => {
                found = Some(up);
                Ok(Some(up.head_len))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        })
        .await?;
        let up = found.ok_or("websocket upgrade without an answer")?;
        Ok((up, buf[head..].to_vec()))
    })
    .await?;
    let mut reader = WireReader::new(r, on_ping);
    reader.layers.start_ws();
    reader.layers.preload(&frames);
    let mut layers = WriteLayers::new();
    layers.start_ws(FrameEncoder::new(up.mask, twig_util::id::random_u64()));
    Ok(Opened {
        stream,
        reader,
        writer: w,
        layers,
        tls_done: ws.tls,
    })
}

/// Runs `f` within `limit`; `what` names what did not come in time.
async fn within<T>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let late = async {
        Timer::after(limit).await;
        Err(format!("no {what} within {limit:?}"))
    };
    f.or(late).await
}

/// Reads until `check` finds a whole HTTP head (its length), `HEAD_READ` bytes at a time;
/// returns everything read (the head and what came after it). `check` refuses heads past
/// 16 KiB, so this is bounded.
async fn read_head(
    r: &mut (impl AsyncRead + Unpin),
    mut check: impl FnMut(&[u8]) -> Result<Option<usize>, String>,
) -> Result<(Vec<u8>, usize), String> {
    let mut buf = Vec::new();
    loop {
        let at = buf.len();
        buf.resize(at + HEAD_READ, 0);
        let n = r.read(&mut buf[at..]).await.map_err(|e| e.to_string())?;
        buf.truncate(at + n);
        if n == 0 {
            return Err("connection closed during the HTTP exchange".into());
        }
        if let Some(head) = check(&buf)? {
            return Ok((buf, head));
        }
    }
}
