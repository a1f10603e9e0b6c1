//! The read buffer of a protocol connection (a client, the uplink): bytes are read in at the
//! end, parsed ops consumed from the front, and the unparsed tail of a read (a split op) kept
//! for the next one.
//!
//! It starts at `base` bytes and doubles only when one op does not fit, up to `max` (the
//! largest op the limits allow); once a large message has passed and nothing is left over it
//! shrinks back to `base`, so a connection that saw one big message does not keep its memory.
//! [`ReadBuf::release`] gives all of it back while nothing is unparsed (an idle connection
//! then holds no buffer); the next [`ReadBuf::make_room`] allocates `base` again.
use std::io;

use futures_lite::{AsyncRead, AsyncReadExt};

/// One op does not fit even at the largest size the limits allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// A growable read buffer (see the module docs).
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    base: usize,
    max: usize,
}

impl ReadBuf {
    /// A buffer of `base` bytes that may grow to `max` (at least `base`).
    pub fn new(base: usize, max: usize) -> ReadBuf {
        ReadBuf {
            buf: vec![0; base],
            start: 0,
            filled: 0,
            base,
            max: max.max(base),
        }
    }

    /// Moves the unparsed tail to the front and makes room for the next read: grows when the
    /// tail fills the buffer, gives the memory back when nothing is left over.
    pub fn make_room(&mut self) -> Result<(), TooLarge> {
        if self.buf.is_empty() {
            self.buf.resize(self.base, 0);
            return Ok(());
        }
        self.buf.copy_within(self.start..self.filled, 0);
        self.filled -= self.start;
        self.start = 0;
        if self.filled == self.buf.len() {
            if self.buf.len() >= self.max {
                return Err(TooLarge);
            }
            let grown = (self.buf.len() * 2).min(self.max);
            self.buf.resize(grown, 0);
        } else if self.filled == 0 && self.buf.len() > self.base {
            self.buf.truncate(self.base);
            self.buf.shrink_to_fit();
        }
        Ok(())
    }

    /// Reads once from `r` into the free space (call [`ReadBuf::make_room`] first); 0 = end
    /// of stream.
    pub async fn read_from(&mut self, r: &mut (impl AsyncRead + Unpin)) -> io::Result<usize> {
        let n = r.read(&mut self.buf[self.filled..]).await?;
        self.filled += n;
        Ok(n)
    }

    /// Hands the unparsed bytes to `parse`, which returns a value borrowing them and how many
    /// bytes it used; those are consumed. `Ok(None)` leaves everything for the next read.
    pub fn next<'a, T, E>(
        &'a mut self,
        parse: impl FnOnce(&'a [u8]) -> Result<Option<(T, usize)>, E>,
    ) -> Result<Option<T>, E> {
        let ReadBuf {
            buf, start, filled, ..
        } = self;
        match parse(buf.get(*start..*filled).unwrap_or_default())? {
            Some((value, used)) => {
                *start += used;
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }

    /// Frees the buffer if nothing is unparsed (call [`ReadBuf::make_room`] before reading
    /// again); returns whether it did.
    pub fn release(&mut self) -> bool {
        if self.unparsed() != 0 {
            return false;
        }
        self.buf = Vec::new();
        self.start = 0;
        self.filled = 0;
        true
    }

    /// Bytes read and not parsed yet.
    pub fn unparsed(&self) -> usize {
        self.filled - self.start
    }

    /// The current capacity (for tests and monitoring).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses newline-terminated lines.
    fn line(b: &[u8]) -> Result<Option<(&[u8], usize)>, ()> {
        Ok(b.iter().position(|&c| c == b'\n').map(|i| (&b[..i], i + 1)))
    }

    #[test]
    fn split_ops_survive_and_the_buffer_grows_then_shrinks() {
        let mut rb = ReadBuf::new(4, 16);
        let mut input: &[u8] = b"ab\ncdefghij\nk\n";
        let mut seen = Vec::new();
        smol::block_on(async {
            loop {
                rb.make_room().unwrap();
                if rb.read_from(&mut input).await.unwrap() == 0 {
                    break;
                }
                while let Some(l) = rb.next(line).unwrap() {
                    seen.push(l.to_vec());
                }
            }
        });
        assert_eq!(seen, [&b"ab"[..], b"cdefghij", b"k"]);
        assert_eq!(rb.capacity(), 4, "back to the base size once empty");

        let mut rb = ReadBuf::new(4, 8);
        let mut input: &[u8] = b"0123456789\n";
        let too_large = smol::block_on(async {
            loop {
                if rb.make_room().is_err() {
                    return true;
                }
                if rb.read_from(&mut input).await.unwrap() == 0 {
                    return false;
                }
                while rb.next(line).unwrap().is_some() {}
            }
        });
        assert!(too_large, "an op past `max` is refused");
    }

    #[test]
    fn release_frees_only_an_empty_buffer() {
        let mut rb = ReadBuf::new(8, 16);
        let mut input: &[u8] = b"ab
cd";
        smol::block_on(async {
            rb.make_room().unwrap();
            rb.read_from(&mut input).await.unwrap();
        });
        assert_eq!(rb.next(line).unwrap(), Some(&b"ab"[..]));
        assert!(!rb.release(), "`cd` is still unparsed");
        assert_eq!(rb.next(line).unwrap(), None);
        rb.next(|b: &[u8]| Ok::<_, ()>(Some(((), b.len()))))
            .unwrap();
        assert!(rb.release());
        assert_eq!(rb.capacity(), 0);
        rb.make_room().unwrap();
        assert_eq!(rb.capacity(), 8);
    }
}
