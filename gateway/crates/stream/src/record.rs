//! How one stored message is laid out in a log record:
//! `time u64 LE (ns since the Unix epoch) | subject_len u16 LE | headers_len u32 LE |
//! subject | headers | payload`. The log adds its own length and CRC around it.

/// Bytes before the subject.
pub const HEAD: usize = 14;

/// A stored message, borrowed from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMsg<'a> {
    /// When it was stored (ns since the Unix epoch).
    pub time_ns: u64,
    /// Its subject.
    pub subject: &'a [u8],
    /// Its header block, if any.
    pub headers: Option<&'a [u8]>,
    /// Its body.
    pub payload: &'a [u8],
}

/// Encodes a message into a new record buffer; `None` if the subject or headers are too
/// long for the length fields (the session already bounds both far below).
pub fn encode(
    time_ns: u64,
    subject: &[u8],
    headers: Option<&[u8]>,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let hdrs = headers.unwrap_or_default();
    let subject_len = u16::try_from(subject.len()).ok()?;
    let headers_len = u32::try_from(hdrs.len()).ok()?;
    let mut v = Vec::with_capacity(HEAD + subject.len() + hdrs.len() + payload.len());
    v.extend_from_slice(&time_ns.to_le_bytes());
    v.extend_from_slice(&subject_len.to_le_bytes());
    v.extend_from_slice(&headers_len.to_le_bytes());
    v.extend_from_slice(subject);
    v.extend_from_slice(hdrs);
    v.extend_from_slice(payload);
    Some(v)
}

/// Decodes a record; `None` if it is not one `encode` wrote.
pub fn decode(rec: &[u8]) -> Option<StoredMsg<'_>> {
    let time_ns = u64::from_le_bytes(rec.get(0..8)?.try_into().ok()?);
    let subject_len = u16::from_le_bytes(rec.get(8..10)?.try_into().ok()?) as usize;
    let headers_len = u32::from_le_bytes(rec.get(10..14)?.try_into().ok()?) as usize;
    let rest = rec.get(HEAD..)?;
    let subject = rest.get(..subject_len)?;
    let rest = rest.get(subject_len..)?;
    let headers = rest.get(..headers_len)?;
    let payload = rest.get(headers_len..)?;
    Some(StoredMsg {
        time_ns,
        subject,
        headers: (headers_len > 0).then_some(headers),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = b"NATS/1.0\r\nA: b\r\n\r\n";
        let r = encode(7, b"s.x", Some(h), b"body").unwrap();
        let m = decode(&r).unwrap();
        assert_eq!(
            m,
            StoredMsg {
                time_ns: 7,
                subject: b"s.x",
                headers: Some(h),
                payload: b"body"
            }
        );
        let r = encode(1, b"s", None, b"").unwrap();
        assert_eq!(decode(&r).unwrap().headers, None);
        for n in 0..r.len() {
            // Shorter than the head and the subject: not a record.
            assert_eq!(decode(&r[..n]).is_none(), n <= HEAD);
        }
        assert!(decode(&[0xFF; 20]).is_none());
    }
}
