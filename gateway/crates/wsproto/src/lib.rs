//! Layer 0, `twig-wsproto` (uses no crate of twig; the uplink drives it): the WebSocket client
//! side of a leafnode remote, and the HTTP CONNECT proxy
//! in front of it, without any IO.
//!
//! - [`url`]: `ws://` / `wss://` remote URLs (host, port, path, credentials) and the path a
//!   nats-server hub serves leafnodes on (`/leafnode`, after the URL's own path).
//! - [`handshake`]: the HTTP/1.1 upgrade request and the check of the hub's `101` answer
//!   (`Sec-WebSocket-Accept`, nats-server's `Nats-No-Masking` option).
//! - [`frame`]: frame encoding (client frames masked unless the hub agreed not to) and an
//!   incremental decoder that hands data out as it arrives, answers nothing itself and
//!   survives input split anywhere.
//! - [`proxy`]: the HTTP `CONNECT host:port` tunnel request with Basic credentials and the
//!   check of the proxy's answer (nats-server's remote `proxy { url, username, password }`).
//!
//! The caller owns the socket, the clock and the randomness: keys and masking seeds are
//! passed in, bytes go in and out of buffers.
//!
//! Layering with S2 (checked against nats-server 2.15 in `tests/tests/ws_nats.rs`): the
//! upgrade and the hub's first INFO frame are plain; once S2 is negotiated, nats-server
//! frames its output and then compresses the frames, and decompresses its input before
//! parsing frames. So the wire is TCP <- S2 stream <- websocket frames <- NATS ops, and a
//! leaf must frame, then compress (and decompress, then unframe). nats-server offers S2 on a
//! websocket leaf connection only when websocket compression is off, which twig never asks
//! for.

pub mod frame;
pub mod handshake;
mod http;
pub mod proxy;
pub mod url;

pub use frame::{CloseCode, Event, FrameDecoder, FrameEncoder, FrameError, Limits, Opcode};
pub use handshake::{ClientHandshake, HandshakeError, Upgraded};
pub use proxy::{ProxyError, ProxyUrl, connect_request, read_connect_response};
pub use url::{RemoteUrl, UrlError, leafnode_path};
