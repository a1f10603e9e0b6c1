//! The subscription table: what the client has subscribed to, kept across reconnects.
//!
//! Subjects and queue names are copied into one byte pool (`NAMES` bytes), back to back, so a
//! subscription costs its name's length rather than a fixed maximum; removing one moves the
//! names after it down.

use heapless::Vec;

use super::{ClientError, Sid};

/// One subscription and what the wire still owes for it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub(super) sid: Sid,
    /// Start of the subject in the pool; the queue name, if any, follows it.
    name_at: usize,
    subject_len: usize,
    queue_len: usize,
    /// Auto-unsubscribe after this many deliveries in total.
    pub(super) max: Option<u64>,
    /// Deliveries so far, over every connection.
    pub(super) delivered: u64,
    /// Deliveries on the current connection (what the server counts an `UNSUB <sid> <max>`
    /// against).
    pub(super) delivered_here: u64,
    /// Its `SUB` was written on the current connection.
    pub(super) sent: bool,
    /// An `UNSUB <sid>` is owed; the entry goes once it is written.
    pub(super) unsub_due: bool,
    /// An `UNSUB <sid> <max>` is owed; the entry stays.
    pub(super) max_due: bool,
}

impl Entry {
    /// Deliveries left before the auto-unsubscribe, if one is set.
    pub(super) fn remaining(&self) -> Option<u64> {
        self.max.map(|m| m.saturating_sub(self.delivered))
    }
}

/// At most `S` subscriptions whose names take at most `NAMES` bytes together.
#[derive(Debug)]
pub(super) struct Subs<const S: usize, const NAMES: usize> {
    entries: Vec<Entry, S>,
    names: [u8; NAMES],
    names_len: usize,
    /// The next sid to hand out; sids are never reused by one client.
    next_sid: u32,
}

impl<const S: usize, const NAMES: usize> Subs<S, NAMES> {
    pub(super) const fn new() -> Self {
        Subs {
            entries: Vec::new(),
            names: [0; NAMES],
            names_len: 0,
            next_sid: 1,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds a subscription (subject and queue already validated) and returns its sid.
    pub(super) fn insert(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
    ) -> Result<Sid, ClientError> {
        if self.entries.is_full() {
            return Err(ClientError::TooManySubscriptions);
        }
        let queue = queue.unwrap_or_default();
        let name_at = self.names_len;
        let end = name_at
            .checked_add(subject.len())
            .and_then(|n| n.checked_add(queue.len()))
            .filter(|&n| n <= NAMES)
            .ok_or(ClientError::NamesFull)?;
        let sid = Sid(self.next_sid);
        let next = self
            .next_sid
            .checked_add(1)
            .ok_or(ClientError::TooManySubscriptions)?;
        let dst = self
            .names
            .get_mut(name_at..end)
            .ok_or(ClientError::NamesFull)?;
        let (s, q) = dst.split_at_mut(subject.len());
        s.copy_from_slice(subject);
        q.copy_from_slice(queue);
        let entry = Entry {
            sid,
            name_at,
            subject_len: subject.len(),
            queue_len: queue.len(),
            max: None,
            delivered: 0,
            delivered_here: 0,
            sent: false,
            unsub_due: false,
            max_due: false,
        };
        self.entries
            .push(entry)
            .map_err(|_| ClientError::TooManySubscriptions)?;
        self.names_len = end;
        self.next_sid = next;
        Ok(sid)
    }

    pub(super) fn get_mut(&mut self, sid: Sid) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.sid == sid)
    }

    /// The entries, in the order they were subscribed.
    pub(super) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(super) fn entries_mut(&mut self) -> &mut [Entry] {
        &mut self.entries
    }

    /// The subject and queue name of `e`.
    pub(super) fn names(&self, e: &Entry) -> (&[u8], Option<&[u8]>) {
        let subject_end = e.name_at.saturating_add(e.subject_len);
        let queue_end = subject_end.saturating_add(e.queue_len);
        let subject = self.names.get(e.name_at..subject_end).unwrap_or_default();
        let queue = self.names.get(subject_end..queue_end).unwrap_or_default();
        (subject, (!queue.is_empty()).then_some(queue))
    }

    /// Removes the subscription `sid` and frees its names.
    pub(super) fn remove(&mut self, sid: Sid) {
        let Some(i) = self.entries.iter().position(|e| e.sid == sid) else {
            return;
        };
        let e = self.entries.remove(i);
        let len = e.subject_len.saturating_add(e.queue_len);
        let end = e.name_at.saturating_add(len).min(self.names_len);
        self.names.copy_within(end..self.names_len, e.name_at);
        self.names_len = self.names_len.saturating_sub(len);
        for other in self.entries.iter_mut() {
            if other.name_at > e.name_at {
                other.name_at = other.name_at.saturating_sub(len);
            }
        }
    }

    /// After a disconnect: nothing is on the wire any more. Subscriptions the caller already
    /// dropped (an `UNSUB` owed) are gone with the old connection.
    pub(super) fn forget_connection(&mut self) {
        while let Some(sid) = self.entries.iter().find(|e| e.unsub_due).map(|e| e.sid) {
            self.remove(sid);
        }
        for e in self.entries.iter_mut() {
            e.sent = false;
            e.max_due = false;
            e.delivered_here = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_packed_and_moved_down_on_removal() {
        let mut subs = Subs::<3, 16>::new();
        let a = subs.insert(b"a.b", None).unwrap();
        let b = subs.insert(b"cc", Some(b"q")).unwrap();
        let c = subs.insert(b"d.>", None).unwrap();
        assert_eq!((a, b, c), (Sid(1), Sid(2), Sid(3)));
        assert_eq!(
            subs.insert(b"x", None),
            Err(ClientError::TooManySubscriptions)
        );
        subs.remove(a);
        let names: [(&[u8], Option<&[u8]>); 2] = [(b"cc", Some(b"q")), (b"d.>", None)];
        assert!(subs.entries().iter().map(|e| subs.names(e)).eq(names));
        assert_eq!(
            subs.insert(b"0123456789a", None),
            Err(ClientError::NamesFull),
            "6 of 16 bytes used"
        );
        assert_eq!(
            subs.insert(b"0123456789", None),
            Ok(Sid(4)),
            "sids are not reused"
        );
        assert_eq!(subs.names(&subs.entries()[2]), (&b"0123456789"[..], None));
        subs.remove(Sid(99));
        assert_eq!(subs.len(), 3);
    }
}
