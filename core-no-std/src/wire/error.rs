//! The small `Copy` errors of the wire layer.

use core::fmt;

/// Why bytes could not be parsed as NATS ops. Every parse error ends the connection;
/// [`ParseError::server_err`] tells what nats-server writes to the peer before closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The bytes do not start a known op (or an op name is not followed by a blank where
    /// one is required, or a line is empty).
    UnknownOp,
    /// The control line is longer than [`Limits::max_control_line`](super::Limits), found
    /// as soon as the unterminated line grows past it.
    ControlLineTooLong,
    /// The announced payload is larger than [`Limits::max_payload`](super::Limits), found
    /// from the control line alone, before the payload arrives.
    MaxPayload,
    /// The payload is not followed by CRLF (its size was a lie).
    MissingPayloadCrlf,
    /// Wrong number of arguments for the op (e.g. `PUB foo`, `LS+ subj queue`).
    ArgCount,
    /// A size is not 1 to 9 decimal digits (nats-server's `parseSize`).
    BadSize,
    /// The header size of `HPUB`/`HMSG` is larger than the total size.
    HeaderSizeExceedsTotal,
    /// A leafnode message with four or more arguments whose second one is not `+` or `|`.
    BadReplyIndicator,
    /// A queue weight or `UNSUB` maximum that is not a decimal number in range.
    BadNumber,
}

impl ParseError {
    /// The `-ERR` text nats-server sends for this error before closing, or `None` when it
    /// closes without a word (argument errors: a protocol violation).
    pub const fn server_err(&self) -> Option<&'static str> {
        match self {
            ParseError::UnknownOp | ParseError::MissingPayloadCrlf => {
                Some("Unknown Protocol Operation")
            }
            ParseError::ControlLineTooLong => Some("maximum control line exceeded"),
            ParseError::MaxPayload => Some("Maximum Payload Violation"),
            ParseError::ArgCount
            | ParseError::BadSize
            | ParseError::HeaderSizeExceedsTotal
            | ParseError::BadReplyIndicator
            | ParseError::BadNumber => None,
        }
    }

    /// Whether nats-server closes the connection on this error: always, since the stream
    /// cannot be resynchronised after a malformed op. Kept as a method so callers read
    /// as policy rather than assumption.
    pub const fn closes_connection(&self) -> bool {
        true
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ParseError::UnknownOp => "unknown protocol operation",
            ParseError::ControlLineTooLong => "maximum control line exceeded",
            ParseError::MaxPayload => "maximum payload exceeded",
            ParseError::MissingPayloadCrlf => "payload not followed by CRLF",
            ParseError::ArgCount => "wrong number of arguments",
            ParseError::BadSize => "bad or missing size",
            ParseError::HeaderSizeExceedsTotal => "header size larger than total size",
            ParseError::BadReplyIndicator => "bad or missing reply indicator",
            ParseError::BadNumber => "bad number",
        };
        f.write_str(s)
    }
}

/// Why an op could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small; `needed` is the full encoded length.
    BufferTooSmall {
        /// Bytes the encoding needs in total.
        needed: usize,
    },
    /// A token (subject, sid, reply, queue) is empty or contains a blank, CR or LF, or a
    /// JSON/-ERR text contains CR or LF: written out, it would change the op's meaning.
    InvalidArgument,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small ({needed} bytes needed)")
            }
            EncodeError::InvalidArgument => f.write_str("argument would corrupt the op"),
        }
    }
}

/// Why a header block could not be parsed or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The block does not start with `NATS/1.0`.
    BadVersion,
    /// The status is not three digits (or not 100..=999 when writing).
    BadStatus,
    /// A line is not CRLF-terminated, a field line has no `:` or an empty/blank key, or
    /// the block does not end with an empty line exactly at its end.
    Malformed,
    /// A key or value to write contains a forbidden byte (CR, LF; in keys also `:` and blanks).
    InvalidField,
    /// The output buffer is full.
    BufferFull,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            HeaderError::BadVersion => "header block does not start with NATS/1.0",
            HeaderError::BadStatus => "bad header status",
            HeaderError::Malformed => "malformed header block",
            HeaderError::InvalidField => "invalid header key or value",
            HeaderError::BufferFull => "header buffer full",
        };
        f.write_str(s)
    }
}
