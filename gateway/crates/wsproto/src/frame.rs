//! WebSocket frames (RFC 6455 section 5) for the client end of a leafnode link.
//!
//! [`FrameDecoder`] reads the hub's frames as they arrive, split anywhere: data (binary,
//! text, continuation) is handed out as borrowed slices of the input the moment it is there,
//! never buffered, so a frame of any size costs no memory and the NATS parser behind sees a
//! plain byte stream, as nats-server's own reader does. Control frames (at most 125 bytes)
//! are gathered in a fixed buffer and handed out whole. The decoder only reads: answering a
//! ping or a close is the caller's (with [`FrameEncoder`]).
//!
//! Checked, each with its own [`FrameError`]: reserved bits (no extension is ever
//! negotiated), unknown opcodes, masked frames from the server, control frames that are
//! fragmented or longer than 125 bytes, continuation without a message or a new message
//! inside one, 64-bit lengths with the top bit set, data frames over [`Limits::max_frame`],
//! close frames with a 1-byte body, a reserved code or a reason that is not UTF-8.

use std::fmt;

/// Frame opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0.
    Continuation,
    /// 0x1.
    Text,
    /// 0x2: what NATS uses.
    Binary,
    /// 0x8.
    Close,
    /// 0x9.
    Ping,
    /// 0xA.
    Pong,
}

impl Opcode {
    fn from_bits(b: u8) -> Option<Opcode> {
        Some(match b {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Close status codes this crate sends (RFC 6455 7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000.
    Normal,
    /// 1001.
    GoingAway,
    /// 1002.
    ProtocolError,
    /// 1007.
    InvalidData,
    /// 1009.
    TooBig,
    /// Any other code.
    Other(u16),
}

impl CloseCode {
    /// The number on the wire.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidData => 1007,
            CloseCode::TooBig => 1009,
            CloseCode::Other(c) => c,
        }
    }
}

/// What the decoder found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Payload bytes of a data frame (a part of it, if the input ended inside it). `last` is
    /// true for the final bytes of a message's final frame.
    Data {
        /// The bytes.
        bytes: &'a [u8],
        /// End of a message.
        last: bool,
    },
    /// A ping with its payload: answer with a pong carrying the same bytes.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The hub closes: answer with a close and end the connection. `code` is `None` for an
    /// empty close body.
    Close {
        /// Status code.
        code: Option<u16>,
        /// UTF-8 reason.
        reason: &'a str,
    },
}

/// A frame the decoder refuses; the link must be closed (with [`FrameError::close_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// RSV1-3 set: no extension was negotiated.
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    UnknownOpcode(u8),
    /// A server must not mask its frames.
    MaskedByServer,
    /// A control frame without FIN.
    FragmentedControl,
    /// A control frame longer than 125 bytes.
    ControlTooLong(u8),
    /// A continuation frame with no message started.
    UnexpectedContinuation,
    /// A new data message before the previous one's final frame.
    MessageInterrupted,
    /// A 64-bit length with the most significant bit set.
    BadLength,
    /// A data frame longer than the limit.
    FrameTooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A close frame with a 1-byte body, a code that may not be sent, or a non-UTF-8 reason.
    BadClose,
}

impl FrameError {
    /// The close code to send back.
    pub fn close_code(self) -> CloseCode {
        match self {
            FrameError::FrameTooLarge { .. } => CloseCode::TooBig,
            _ => CloseCode::ProtocolError,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::ReservedBits => f.write_str("websocket: RSV bits set without an extension"),
            FrameError::UnknownOpcode(o) => write!(f, "websocket: unknown opcode {o:#x}"),
            FrameError::MaskedByServer => f.write_str("websocket: masked frame from the server"),
            FrameError::FragmentedControl => {
                f.write_str("websocket: control frame does not have the final bit set")
            }
            FrameError::ControlTooLong(n) => {
                write!(f, "websocket: control frame of {n} bytes (at most 125)")
            }
            FrameError::UnexpectedContinuation => {
                f.write_str("websocket: continuation frame without a message")
            }
            FrameError::MessageInterrupted => f.write_str(
                "websocket: new message started before the final frame of the previous one",
            ),
            FrameError::BadLength => f.write_str("websocket: invalid 64-bit payload length"),
            FrameError::FrameTooLarge { len, max } => {
                write!(
                    f,
                    "websocket: frame of {len} bytes exceeds the limit of {max}"
                )
            }
            FrameError::BadClose => f.write_str("websocket: invalid close frame"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Decoder limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest data frame accepted (payload bytes). Data is never buffered, so this only
    /// guards against nonsense; nats-server's own cap on a buffered websocket message is
    /// 64 MiB, the default here.
    pub max_frame: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame: 64 << 20,
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    /// A frame header: 2 to 14 bytes.
    Head { have: usize, buf: [u8; 14] },
    /// Payload of a data frame; `fin` of the frame.
    Data { left: u64, fin: bool },
    /// Payload of a control frame, gathered in `ctl`.
    Control { op: Opcode, len: usize },
}

const HEAD: State = State::Head {
    have: 0,
    buf: [0; 14],
};

/// The incremental frame decoder (see the module doc).
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    state: State,
    /// A data message is open (its final frame not seen yet).
    in_message: bool,
    ctl: [u8; 125],
    ctl_have: usize,
    limits: Limits,
    failed: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new(Limits::default())
    }
}

impl FrameDecoder {
    /// A decoder at the start of a connection.
    pub fn new(limits: Limits) -> FrameDecoder {
        FrameDecoder {
            state: HEAD,
            in_message: false,
            ctl: [0; 125],
            ctl_have: 0,
            limits,
            failed: None,
        }
    }

    /// Reads from `input` up to the next event: returns the bytes consumed and the event, or
    /// `(input.len(), None)` when the input ended first. Call again with the rest.
    pub fn decode<'a>(
        &'a mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<Event<'a>>), FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.step(input) {
            Ok((n, ev)) => Ok((n, ev.map(|ev| ev.resolve(input, &self.ctl)))),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    /// True at a frame boundary outside any fragmented message.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { have: 0, .. }) && !self.in_message
    }

    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<Found>), FrameError> {
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                State::Head { have, buf } => {
                    buf[*have] = input[i];
                    *have += 1;
                    i += 1;
                    let need = head_len(&buf[..*have]);
                    if *have < need {
                        continue;
                    }
                    let b = *buf;
                    if let Some(found) = self.start_frame(&b[..need])? {
                        return Ok((i, Some(found)));
                    }
                }
                State::Data { left, fin } => {
                    let n = (*left).min((input.len() - i) as u64) as usize;
                    *left -= n as u64;
                    let last = *left == 0 && *fin;
                    if *left == 0 {
                        if *fin {
                            self.in_message = false;
                        }
                        self.state = HEAD;
                    }
                    return Ok((
                        i + n,
                        Some(Found::Data {
                            at: i,
                            len: n,
                            last,
                        }),
                    ));
                }
                State::Control { op, len } => {
                    let (op, len) = (*op, *len);
                    let n = (len - self.ctl_have).min(input.len() - i);
                    self.ctl[self.ctl_have..self.ctl_have + n].copy_from_slice(&input[i..i + n]);
                    self.ctl_have += n;
                    i += n;
                    if self.ctl_have == len {
                        self.state = HEAD;
                        return Ok((i, Some(self.control(op, len)?)));
                    }
                }
            }
        }
        Ok((i, None))
    }

    /// A complete header: check it and set up the payload. Returns an event for frames with
    /// an empty payload that must be reported (controls).
    fn start_frame(&mut self, h: &[u8]) -> Result<Option<Found>, FrameError> {
        let (b0, b1) = (h[0], h[1]);
        if b0 & 0x70 != 0 {
            return Err(FrameError::ReservedBits);
        }
        let op = Opcode::from_bits(b0 & 0x0F).ok_or(FrameError::UnknownOpcode(b0 & 0x0F))?;
        if b1 & 0x80 != 0 {
            return Err(FrameError::MaskedByServer);
        }
        let fin = b0 & 0x80 != 0;
        let len = match b1 & 0x7F {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => {
                let v = u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]);
                if v >> 63 != 0 {
                    return Err(FrameError::BadLength);
                }
                v
            }
            n => u64::from(n),
        };
        if op.is_control() {
            if !fin {
                return Err(FrameError::FragmentedControl);
            }
            if len > 125 {
                return Err(FrameError::ControlTooLong(b1 & 0x7F));
            }
            self.ctl_have = 0;
            if len == 0 {
                self.state = HEAD;
                return self.control(op, 0).map(Some);
            }
            self.state = State::Control {
                op,
                len: len as usize,
            };
            return Ok(None);
        }
        match op {
            Opcode::Continuation if !self.in_message => {
                return Err(FrameError::UnexpectedContinuation);
            }
            Opcode::Text | Opcode::Binary if self.in_message => {
                return Err(FrameError::MessageInterrupted);
            }
            _ => {}
        }
        if len > self.limits.max_frame {
            return Err(FrameError::FrameTooLarge {
                len,
                max: self.limits.max_frame,
            });
        }
        self.in_message = !fin;
        self.state = if len == 0 {
            HEAD
        } else {
            State::Data { left: len, fin }
        };
        Ok(None)
    }

    fn control(&self, op: Opcode, len: usize) -> Result<Found, FrameError> {
        Ok(match op {
            Opcode::Ping => Found::Ping(len),
            Opcode::Pong => Found::Pong(len),
            _ => {
                let body = &self.ctl[..len];
                match len {
                    0 => Found::Close { code: None, len: 0 },
                    1 => return Err(FrameError::BadClose),
                    _ => {
                        let code = u16::from_be_bytes([body[0], body[1]]);
                        let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
                        if !allowed || std::str::from_utf8(&body[2..]).is_err() {
                            return Err(FrameError::BadClose);
                        }
                        Found::Close {
                            code: Some(code),
                            len,
                        }
                    }
                }
            }
        })
    }
}

/// An event by position, resolved into borrows once the decoder's state is settled.
enum Found {
    Data { at: usize, len: usize, last: bool },
    Ping(usize),
    Pong(usize),
    Close { code: Option<u16>, len: usize },
}

impl Found {
    fn resolve<'a>(self, input: &'a [u8], ctl: &'a [u8; 125]) -> Event<'a> {
        match self {
            Found::Data { at, len, last } => Event::Data {
                bytes: &input[at..at + len],
                last,
            },
            Found::Ping(n) => Event::Ping(&ctl[..n]),
            Found::Pong(n) => Event::Pong(&ctl[..n]),
            Found::Close { code, len } => Event::Close {
                code,
                // Checked to be UTF-8 in `control`.
                reason: std::str::from_utf8(&ctl[2.min(len)..len]).unwrap_or(""),
            },
        }
    }
}

/// Header bytes a frame needs, given at least its first byte (2 until the second is known).
fn head_len(h: &[u8]) -> usize {
    let Some(&b1) = h.get(1) else { return 2 };
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

/// Writes client frames: masked with a fresh key per frame unless the hub agreed otherwise.
#[derive(Debug, Clone)]
pub struct FrameEncoder {
    mask: bool,
    rng: u64,
    max_frame: usize,
}

impl FrameEncoder {
    /// `mask` from the handshake ([`crate::Upgraded::mask`]); `seed` from the caller's
    /// randomness (masking keys only have to be unpredictable to scripts in a browser, so a
    /// seeded generator is enough).
    pub fn new(mask: bool, seed: u64) -> FrameEncoder {
        FrameEncoder {
            mask,
            rng: seed | 1,
            max_frame: usize::MAX,
        }
    }

    /// Cuts data into frames of at most `max` payload bytes (default: one frame per call).
    #[must_use]
    pub fn with_max_frame(mut self, max: usize) -> FrameEncoder {
        self.max_frame = max.max(1);
        self
    }

    /// Whether frames are masked.
    pub fn masks(&self) -> bool {
        self.mask
    }

    /// Bytes [`FrameEncoder::binary`] adds to `len` payload bytes at most.
    pub fn overhead(&self, len: usize) -> usize {
        let frames = len.div_ceil(self.max_frame).max(1);
        frames * (10 + if self.mask { 4 } else { 0 })
    }

    /// Appends `payload` as one binary message (several frames if longer than the maximum).
    pub fn binary(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        out.reserve(payload.len() + self.overhead(payload.len()));
        if payload.is_empty() {
            self.frame(Opcode::Binary, true, &[], out);
            return;
        }
        let mut pieces = payload.chunks(self.max_frame).peekable();
        let mut op = Opcode::Binary;
        while let Some(p) = pieces.next() {
            self.frame(op, pieces.peek().is_none(), p, out);
            op = Opcode::Continuation;
        }
    }

    /// Appends a ping (payload of at most 125 bytes; longer is cut).
    pub fn ping(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        self.frame(Opcode::Ping, true, &payload[..payload.len().min(125)], out);
    }

    /// Appends a pong answering a ping's payload.
    pub fn pong(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        self.frame(Opcode::Pong, true, &payload[..payload.len().min(125)], out);
    }

    /// Appends a close with `code` and a reason (cut to fit 125 bytes at a char boundary).
    pub fn close(&mut self, code: CloseCode, reason: &str, out: &mut Vec<u8>) {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut body = code.code().to_be_bytes().to_vec();
        body.extend_from_slice(&reason.as_bytes()[..end]);
        self.frame(Opcode::Close, true, &body, out);
    }

    fn frame(&mut self, op: Opcode, fin: bool, payload: &[u8], out: &mut Vec<u8>) {
        let mask_bit = if self.mask { 0x80 } else { 0 };
        out.push(if fin { 0x80 } else { 0 } | op.bits());
        let n = payload.len();
        if n < 126 {
            out.push(mask_bit | n as u8);
        } else if n <= 0xFFFF {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        if !self.mask {
            out.extend_from_slice(payload);
            return;
        }
        let key = self.next_key();
        out.extend_from_slice(&key);
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], key);
    }

    fn next_key(&mut self) -> [u8; 4] {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32).to_be_bytes()
    }
}

/// XORs `data` with the 4-byte `key` repeated (RFC 6455 5.3), eight bytes at a time.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let k8 = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ k8;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests;
