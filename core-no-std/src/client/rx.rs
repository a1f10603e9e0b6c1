//! A receive buffer in the shape [`Client::handle`](super::Client::handle) wants: read into
//! its free space, hand over what it holds, drop what was consumed.

/// `N` bytes of receive buffer. Pending bytes are moved to the front when more room is asked
/// for, which the parser allows (it counts from the start of the slice it is given).
///
/// ```
/// use twig_core::client::RxBuffer;
///
/// let mut rx = RxBuffer::<64>::new();
/// let free = rx.space();
/// free[..6].copy_from_slice(b"PING\r\n"); // e.g. `socket.read(rx.space())`
/// rx.filled(6);
/// assert_eq!(rx.data(), b"PING\r\n");
/// rx.consume(6);
/// assert!(rx.data().is_empty());
/// ```
#[derive(Debug)]
pub struct RxBuffer<const N: usize> {
    buf: [u8; N],
    start: usize,
    end: usize,
}

impl<const N: usize> RxBuffer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        RxBuffer {
            buf: [0; N],
            start: 0,
            end: 0,
        }
    }

    /// The received bytes not consumed yet.
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Drops the first `n` bytes of [`RxBuffer::data`].
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The free space to read into (after moving pending bytes to the front); empty when
    /// the buffer is full, which means one op is larger than `N` (see
    /// [`Options::limits`](super::Options)).
    pub fn space(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// Marks `n` bytes of [`RxBuffer::space`] as received.
    pub fn filled(&mut self, n: usize) {
        self.end = self.end.saturating_add(n).min(N);
    }

    /// Forgets everything (after a disconnect).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

impl<const N: usize> Default for RxBuffer<N> {
    fn default() -> Self {
        RxBuffer::new()
    }
}
