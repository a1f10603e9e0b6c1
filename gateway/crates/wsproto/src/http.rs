//! Reading an HTTP/1.1 response head (status line and headers) out of a byte buffer.

/// Heads longer than this are refused: no proxy or hub needs more, and it bounds what a
/// misbehaving peer can make us hold.
pub const MAX_HEAD: usize = 16 * 1024;
/// At most this many header fields.
const MAX_HEADERS: usize = 64;

/// A parsed response head; `len` bytes of the input were the head (the rest belongs to the
/// protocol that follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub len: usize,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any value of `name`, as a comma-separated token list, holds `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Why a head could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x.
    Malformed(String),
    /// Longer than [`MAX_HEAD`] without ending.
    TooLong,
}

/// `Ok(None)` while the head is incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Ok(Some(Head {
            status: resp.code.unwrap_or(0),
            reason: resp.reason.unwrap_or("").to_string(),
            headers: resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).trim().to_string(),
                    )
                })
                .collect(),
            len,
        })),
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => Err(HeadError::TooLong),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}
