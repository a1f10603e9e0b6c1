//! The transmit buffer: whole encoded ops waiting for the caller to send them.

use crate::wire::EncodeError;

/// Bytes not yet handed to the transport, `buf[head..tail]`. Ops are appended whole (an
/// encoder either writes a complete op or nothing), so the pending bytes always end on an
/// op boundary and anything may be appended after them in any order.
#[derive(Debug)]
pub(super) struct TxBuf<const N: usize> {
    buf: [u8; N],
    head: usize,
    tail: usize,
}

impl<const N: usize> TxBuf<N> {
    pub(super) const fn new() -> Self {
        TxBuf {
            buf: [0; N],
            head: 0,
            tail: 0,
        }
    }

    /// The bytes waiting to be sent.
    pub(super) fn pending(&self) -> &[u8] {
        self.buf.get(self.head..self.tail).unwrap_or_default()
    }

    /// Drops the first `n` pending bytes (they were sent); more than pending drops all.
    pub(super) fn consume(&mut self, n: usize) {
        self.head = self.head.saturating_add(n).min(self.tail);
        if self.head == self.tail {
            self.clear();
        }
    }

    /// Forgets everything pending (the transport is gone).
    pub(super) fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
    }

    /// Appends what `encode` writes into the free space, moving the pending bytes to the
    /// front first if that is what it takes. On error nothing is appended.
    pub(super) fn write_with(
        &mut self,
        mut encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
    ) -> Result<(), EncodeError> {
        let result = encode(self.buf.get_mut(self.tail..).unwrap_or_default());
        let result = match result {
            Err(EncodeError::BufferTooSmall { .. }) if self.head > 0 => {
                self.compact();
                encode(self.buf.get_mut(self.tail..).unwrap_or_default())
            }
            other => other,
        };
        let n = result?;
        self.tail = self.tail.saturating_add(n).min(N);
        Ok(())
    }

    /// Moves the pending bytes to the start of the buffer.
    fn compact(&mut self) {
        self.buf.copy_within(self.head..self.tail, 0);
        self.tail -= self.head;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(tx: &mut TxBuf<8>, bytes: &[u8]) -> Result<(), EncodeError> {
        tx.write_with(|out| {
            let dst = out
                .get_mut(..bytes.len())
                .ok_or(EncodeError::BufferTooSmall {
                    needed: bytes.len(),
                })?;
            dst.copy_from_slice(bytes);
            Ok(bytes.len())
        })
    }

    #[test]
    fn appends_consumes_and_compacts_only_when_needed() {
        let mut tx = TxBuf::<8>::new();
        put(&mut tx, b"abcde").unwrap();
        tx.consume(3);
        assert_eq!(tx.pending(), b"de");
        put(&mut tx, b"fgh").unwrap();
        assert_eq!(tx.pending(), b"defgh");
        put(&mut tx, b"ijk").unwrap(); // 5 + 3 = 8 fits after moving to the front
        assert_eq!(tx.pending(), b"defghijk");
        assert_eq!(
            put(&mut tx, b"l"),
            Err(EncodeError::BufferTooSmall { needed: 1 })
        );
        assert_eq!(
            tx.pending(),
            b"defghijk",
            "a refused op leaves the rest alone"
        );
        tx.consume(100);
        assert_eq!(tx.pending(), b"");
    }
}
