//! Writing what the client owes the server into the transmit buffer: CONNECT, SUB/UNSUB, the
//! handshake PING, PONGs and PINGs, in that order and only while they fit.

use super::Client;
use super::subs::Entry;
use crate::wire::args::fmt_u64;
use crate::wire::{Op, encode_connect_with};

impl<const SUBS: usize, const TX: usize, const NAMES: usize> Client<'_, SUBS, TX, NAMES> {
    /// Writes owed control ops in protocol order (CONNECT, SUB/UNSUB, the handshake PING,
    /// PONGs, PINGs) while they fit; returns whether nothing is owed any more.
    pub(super) fn fill(&mut self) -> bool {
        if !self.on_wire() {
            return true;
        }
        if self.due.connect {
            #[cfg_attr(not(feature = "nkey"), allow(unused_mut))]
            let mut connect = self.options.connect;
            #[cfg(feature = "nkey")]
            if let (Some(signer), Some(sig)) = (self.options.nkey, self.sig.as_ref()) {
                use crate::wire::json::JsonStr;
                connect.nkey = Some(JsonStr::new(signer.public_key()));
                // Base64url is ASCII.
                connect.sig = Some(JsonStr::new(core::str::from_utf8(sig).unwrap_or("")));
            }
            let written = self
                .tx
                .write_with(|out| encode_connect_with(out, |json| connect.write(json).ok()));
            if written.is_err() {
                return false;
            }
            self.due.connect = false;
        }
        if !self.fill_subs() {
            return false;
        }
        if self.due.handshake_ping {
            if self.tx.write_with(|out| Op::Ping.encode(out)).is_err() {
                return false;
            }
            self.due.handshake_ping = false;
            self.due.handshake_ping_sent = true;
        }
        while self.due.pongs > 0 {
            if self.tx.write_with(|out| Op::Pong.encode(out)).is_err() {
                return false;
            }
            self.due.pongs -= 1;
        }
        while self.due.pings > 0 {
            if self.tx.write_with(|out| Op::Ping.encode(out)).is_err() {
                return false;
            }
            self.due.pings -= 1;
        }
        true
    }

    /// The SUB/UNSUB part of [`Client::fill`].
    fn fill_subs(&mut self) -> bool {
        let mut i = 0;
        while let Some(e) = self.subs.entries().get(i).copied() {
            let owed = !e.sent || e.unsub_due || e.max_due;
            if owed && !self.write_sub_ops(&e) {
                return false;
            }
            if e.unsub_due {
                self.subs.remove(e.sid);
                continue;
            }
            if let Some(slot) = self.subs.entries_mut().get_mut(i) {
                slot.sent = true;
                slot.max_due = false;
            }
            i += 1;
        }
        true
    }

    /// Writes what entry `e` owes, all or nothing: `SUB` (and `UNSUB <sid> <left>` with a
    /// maximum) when not sent yet, else `UNSUB <sid>` or `UNSUB <sid> <max>`.
    fn write_sub_ops(&mut self, e: &Entry) -> bool {
        let mut digits = [0; 20];
        let sid = fmt_u64(u64::from(e.sid.0), &mut digits);
        let (subject, queue) = self.subs.names(e);
        // The server counts `max` from this connection's SUB.
        let max = e
            .remaining()
            .map(|left| left.saturating_add(e.delivered_here));
        let sub = (!e.sent).then_some(Op::Sub {
            subject,
            queue,
            sid,
        });
        let unsub = if e.unsub_due {
            Some(Op::Unsub { sid, max: None })
        } else if !e.sent || e.max_due {
            max.map(|max| Op::Unsub {
                sid,
                max: Some(max),
            })
        } else {
            None
        };
        self.tx
            .write_with(|out| {
                let mut n: usize = 0;
                for op in [sub, unsub].into_iter().flatten() {
                    n = n.saturating_add(op.encode(out.get_mut(n..).unwrap_or_default())?);
                }
                Ok(n)
            })
            .is_ok()
    }
}
