//! The MQTT listener's flash store: retained messages, persistent sessions (settings,
//! subscriptions, queued and in-flight messages) and QoS 2 receive state, in one twig-core
//! [`kv::Table`] (log-structured, crash-safe, compacted; see its docs).
//!
//! Keys (a client id is length-prefixed, so any id is a safe key and a prefix scan finds
//! exactly one client's records):
//!
//! | key | value |
//! |---|---|
//! | `r` topic | retained message: subject, header block, payload |
//! | `s` id | session: expiry, subscriptions |
//! | `q` id serial | a queued message ([`OutMsg`]) |
//! | `p` id serial | its packet id once sent at QoS 2, and whether PUBREL went |
//! | `2` id pkid | a QoS 2 message received and not yet released: its number |
//!
//! A [`Change`] from a session is applied as one or a few table operations; the caller syncs
//! (group commit: one [`Store::sync`] for everything that waits, then it answers the tickets).
//! Since the table recovers to the state after some prefix of its operations, a session
//! loads after a power cut as it was at some point after the last sync.

use std::time::Instant;

use twig_core::kv::{self, Table};
use twig_core::log::{Config as LogConfig, Flush};
use twig_core::mqtt::packet::{QoS, SubOptions};

use super::state::{Change, Inflight, OutMsg, Qos2In, SessionState, Stage, Subscription};

/// Limits of the store.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Bytes of retained messages (topic, headers, payload).
    pub max_retained_bytes: usize,
    /// Retained messages.
    pub max_retained: usize,
}

/// Store errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError<E> {
    /// The table failed or is full.
    Kv(kv::Error<E>),
    /// The retained-message limits are reached.
    RetainedFull,
    /// A record does not decode (written by another version?).
    Corrupt,
}

impl<E> From<kv::Error<E>> for StoreError<E> {
    fn from(e: kv::Error<E>) -> Self {
        StoreError::Kv(e)
    }
}

/// A retained message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMsg {
    /// The topic.
    pub topic: String,
    /// Its NATS subject.
    pub subject: String,
    /// Header block.
    pub headers: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

/// The store.
pub struct Store<F: Flush> {
    table: Table<F>,
    limits: StoreLimits,
    retained_bytes: usize,
    /// Messages queued in stored sessions (monitoring: `/mqttz`).
    queued: u64,
    buf: Vec<u8>,
}

fn key(tag: u8, id: &str, tail: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + id.len() + tail.len());
    k.push(tag);
    k.extend_from_slice(&(id.len() as u16).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k.extend_from_slice(tail);
    k
}

impl<F: Flush> Store<F> {
    /// Opens the store in `config`'s region.
    pub fn open(
        flash: F,
        config: LogConfig,
        limits: StoreLimits,
    ) -> Result<Self, StoreError<F::Error>> {
        let table = Table::open(flash, config)?;
        let retained_bytes = table
            .keys_with_prefix(b"r")
            .map(|k| k.len() + table.value_len(k).unwrap_or(0))
            .sum();
        let mut store = Store {
            table,
            limits,
            retained_bytes,
            queued: 0,
            buf: Vec::new(),
        };
        store.remove_orphans()?;
        store.queued = store.table.keys_with_prefix(b"q").count() as u64;
        Ok(store)
    }

    /// Removes the records of sessions whose session record is gone (a cut in the middle of
    /// a [`Change::Deleted`]), so a new session under the same client id never inherits them.
    fn remove_orphans(&mut self) -> Result<(), StoreError<F::Error>> {
        let mut orphans = Vec::new();
        for tag in [b'q', b'p', b'2'] {
            for k in self.table.keys_with_prefix(&[tag]) {
                let Some(len) = k
                    .get(1..3)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                else {
                    continue;
                };
                let Some(id) = k.get(3..3 + len) else {
                    continue;
                };
                let mut sk = vec![b's'];
                sk.extend_from_slice(&(len as u16).to_be_bytes());
                sk.extend_from_slice(id);
                if !self.table.contains(&sk) {
                    orphans.push(k.to_vec());
                }
            }
        }
        for k in orphans {
            self.table.delete(&k)?;
        }
        Ok(())
    }

    /// Makes every change so far durable.
    pub fn sync(&mut self) -> Result<(), StoreError<F::Error>> {
        Ok(self.table.sync()?)
    }

    /// The table (statistics).
    pub fn table(&self) -> &Table<F> {
        &self.table
    }

    /// The flash.
    pub fn into_inner(self) -> F {
        self.table.into_inner()
    }

    /// Retained messages on file.
    pub fn retained_count(&self) -> usize {
        self.table.keys_with_prefix(b"r").count()
    }

    /// Bytes of retained messages.
    pub fn retained_bytes(&self) -> usize {
        self.retained_bytes
    }

    /// Keeps `m` as its topic's retained message.
    pub fn set_retained(&mut self, m: &RetainedMsg) -> Result<(), StoreError<F::Error>> {
        let mut k = vec![b'r'];
        k.extend_from_slice(m.topic.as_bytes());
        let mut v = Vec::new();
        put_bytes(&mut v, m.subject.as_bytes());
        put_bytes(&mut v, &m.headers);
        v.extend_from_slice(&m.payload);
        let old = self.table.value_len(&k).map_or(0, |n| n + k.len());
        let new = k.len() + v.len();
        let count = self.retained_count() + usize::from(old == 0);
        if self.retained_bytes - old + new > self.limits.max_retained_bytes
            || count > self.limits.max_retained
        {
            return Err(StoreError::RetainedFull);
        }
        self.table.put(&k, &v)?;
        self.retained_bytes = self.retained_bytes - old + new;
        Ok(())
    }

    /// Forgets a topic's retained message.
    pub fn clear_retained(&mut self, topic: &str) -> Result<(), StoreError<F::Error>> {
        let mut k = vec![b'r'];
        k.extend_from_slice(topic.as_bytes());
        let old = self.table.value_len(&k).map_or(0, |n| n + k.len());
        if self.table.delete(&k)? {
            self.retained_bytes -= old;
        }
        Ok(())
    }

    /// The retained messages whose subject matches the NATS subscription `filter`.
    pub fn retained_matching(
        &mut self,
        filter: &str,
    ) -> Result<Vec<RetainedMsg>, StoreError<F::Error>> {
        let keys: Vec<Vec<u8>> = self
            .table
            .keys_with_prefix(b"r")
            .map(<[u8]>::to_vec)
            .collect();
        let mut out = Vec::new();
        for k in keys {
            if !self.table.get(&k, &mut self.buf)? {
                continue;
            }
            let mut r = Rd(&self.buf);
            let subject = r.bytes().ok_or(StoreError::Corrupt)?;
            if !twig_core::subject::matches(filter.as_bytes(), subject) {
                continue;
            }
            let headers = r.bytes().ok_or(StoreError::Corrupt)?;
            let topic = String::from_utf8(k[1..].to_vec()).map_err(|_| StoreError::Corrupt)?;
            out.push(RetainedMsg {
                topic,
                subject: String::from_utf8(subject.to_vec()).map_err(|_| StoreError::Corrupt)?,
                headers: headers.to_vec(),
                payload: r.0.to_vec(),
            });
        }
        Ok(out)
    }

    /// Applies a session's change.
    pub fn apply(&mut self, change: &Change) -> Result<(), StoreError<F::Error>> {
        match change {
            Change::Session {
                client_id,
                expiry,
                subs,
            } => {
                let mut v = expiry.to_be_bytes().to_vec();
                for s in subs {
                    encode_sub(&mut v, s);
                }
                self.table.put(&key(b's', client_id, &[]), &v)?;
            }
            Change::Queued { client_id, msg } => {
                let k = key(b'q', client_id, &msg.serial.to_be_bytes());
                let new = !self.table.contains(&k);
                self.table.put(&k, &encode_msg(msg))?;
                self.queued += u64::from(new);
            }
            Change::Sent {
                client_id,
                serial,
                pkid,
                released,
            } => {
                let k = key(b'p', client_id, &serial.to_be_bytes());
                let mut v = pkid.to_be_bytes().to_vec();
                v.push(u8::from(*released));
                self.table.put(&k, &v)?;
            }
            Change::Done { client_id, serial } => {
                // The message first: a `p` record without its `q` is ignored, so a cut
                // between the two leaves the state the change makes.
                let was = self
                    .table
                    .delete(&key(b'q', client_id, &serial.to_be_bytes()))?;
                self.queued -= u64::from(was && self.queued > 0);
                self.table
                    .delete(&key(b'p', client_id, &serial.to_be_bytes()))?;
            }
            Change::Qos2Received { client_id, pkid, n } => {
                let k = key(b'2', client_id, &pkid.to_be_bytes());
                self.table.put(&k, &n.to_be_bytes())?;
            }
            Change::Qos2Published { client_id, pkid, n } => {
                // The same record with a trailing 1: published.
                let k = key(b'2', client_id, &pkid.to_be_bytes());
                let mut v = n.to_be_bytes().to_vec();
                v.push(1);
                self.table.put(&k, &v)?;
            }
            Change::Qos2Released { client_id, pkid } => {
                self.table
                    .delete(&key(b'2', client_id, &pkid.to_be_bytes()))?;
            }
            Change::Deleted { client_id } => {
                // The session record first: without it the rest is never loaded, and
                // `open` removes what a cut left behind.
                for tag in [b's', b'q', b'p', b'2'] {
                    let prefix = key(tag, client_id, &[]);
                    let keys: Vec<Vec<u8>> = self
                        .table
                        .keys_with_prefix(&prefix)
                        .map(<[u8]>::to_vec)
                        .collect();
                    for k in keys {
                        let was = self.table.delete(&k)?;
                        if tag == b'q' && was {
                            self.queued = self.queued.saturating_sub(1);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Messages queued in stored sessions.
    pub fn queued_count(&self) -> u64 {
        self.queued
    }

    /// Whether `client_id` has a stored session.
    pub fn has_session(&self, client_id: &str) -> bool {
        self.table.contains(&key(b's', client_id, &[]))
    }

    /// Client ids with a stored session.
    pub fn sessions(&self) -> Vec<String> {
        self.table
            .keys_with_prefix(b"s")
            .filter_map(|k| String::from_utf8(k.get(3..)?.to_vec()).ok())
            .collect()
    }

    /// A stored session, rebuilt (message expiry restarts from `now`: time twig was down is
    /// not counted against it).
    pub fn load_session(
        &mut self,
        client_id: &str,
        now: Instant,
    ) -> Result<Option<SessionState>, StoreError<F::Error>> {
        if !self.table.get(&key(b's', client_id, &[]), &mut self.buf)? {
            return Ok(None);
        }
        let mut st = SessionState {
            client_id: client_id.to_string(),
            ..SessionState::default()
        };
        let mut r = Rd(&self.buf);
        st.expiry = r.u32().ok_or(StoreError::Corrupt)?;
        while !r.0.is_empty() {
            st.subs.push(decode_sub(&mut r).ok_or(StoreError::Corrupt)?);
        }
        st.next_sub = st.subs.iter().map(|s| s.id + 1).max().unwrap_or(0);
        let qprefix = key(b'q', client_id, &[]);
        let qkeys: Vec<Vec<u8>> = self
            .table
            .keys_with_prefix(&qprefix)
            .map(<[u8]>::to_vec)
            .collect();
        for k in qkeys {
            if !self.table.get(&k, &mut self.buf)? {
                continue;
            }
            let msg = decode_msg(&self.buf, now).ok_or(StoreError::Corrupt)?;
            st.next_serial = st.next_serial.max(msg.serial + 1);
            st.queued_bytes += msg.cost();
            let pk = key(b'p', client_id, &msg.serial.to_be_bytes());
            if self.table.get(&pk, &mut self.buf)? {
                let mut r = Rd(&self.buf);
                let pkid = r.u16().ok_or(StoreError::Corrupt)?;
                let stage = match r.u8() {
                    Some(1) => Stage::WaitComp,
                    _ => Stage::WaitRec,
                };
                st.last_pkid = st.last_pkid.max(pkid);
                st.inflight.push_back(Inflight { pkid, stage, msg });
            } else {
                st.queue.push_back(msg);
            }
        }
        let prefix2 = key(b'2', client_id, &[]);
        let keys2: Vec<Vec<u8>> = self
            .table
            .keys_with_prefix(&prefix2)
            .map(<[u8]>::to_vec)
            .collect();
        for k in keys2 {
            let pkid = k
                .get(k.len().saturating_sub(2)..)
                .and_then(|b| Some(u16::from_be_bytes(b.try_into().ok()?)));
            if !self.table.get(&k, &mut self.buf)? {
                continue;
            }
            let n = Rd(&self.buf).u64().ok_or(StoreError::Corrupt)?;
            let pkid = pkid.ok_or(StoreError::Corrupt)?;
            st.next_qos2 = st.next_qos2.max(n + 1);
            // Published (`Qos2Published`): a repeat PUBLISH gets its PUBREC only. Not known
            // to be published: a repeat publishes it again under the same Nats-Msg-Id (a
            // stream drops a duplicate); a PUBREL releases it.
            let published = self.buf.get(8) == Some(&1);
            st.qos2_in.push(Qos2In {
                pkid,
                n,
                recorded: published,
            });
        }
        Ok(Some(st))
    }
}

fn put_bytes(v: &mut Vec<u8>, b: &[u8]) {
    v.extend_from_slice(&(b.len() as u32).to_be_bytes());
    v.extend_from_slice(b);
}

fn encode_sub(v: &mut Vec<u8>, s: &Subscription) {
    v.extend_from_slice(&s.id.to_be_bytes());
    put_bytes(v, s.filter.as_bytes());
    v.push(s.options.to_byte());
    v.extend_from_slice(&s.sub_id.unwrap_or(0).to_be_bytes());
    put_bytes(v, s.share.as_deref().unwrap_or("").as_bytes());
    v.push(s.subjects.len() as u8);
    for subj in &s.subjects {
        put_bytes(v, subj.as_bytes());
    }
}

fn decode_sub(r: &mut Rd<'_>) -> Option<Subscription> {
    let id = r.u32()?;
    let filter = r.string()?;
    let o = r.u8()?;
    let options = SubOptions {
        qos: QoS::from_bits(o & 3)?,
        no_local: o & 4 != 0,
        retain_as_published: o & 8 != 0,
        retain_handling: (o >> 4) & 3,
    };
    let sub_id = Some(r.u32()?).filter(|&n| n != 0);
    let share = Some(r.string()?).filter(|s| !s.is_empty());
    let n = r.u8()?;
    let subjects = (0..n).map(|_| r.string()).collect::<Option<Vec<_>>>()?;
    Some(Subscription {
        id,
        filter,
        options,
        sub_id,
        share,
        subjects,
    })
}

fn encode_msg(m: &OutMsg) -> Vec<u8> {
    let mut v = m.serial.to_be_bytes().to_vec();
    put_bytes(&mut v, m.topic.as_bytes());
    v.push(m.qos as u8 | u8::from(m.retain) << 2);
    put_bytes(&mut v, &m.props);
    v.extend_from_slice(&m.sub_id.unwrap_or(0).to_be_bytes());
    // Expiry as its interval; 0xFFFF_FFFF: none.
    v.extend_from_slice(&m.expiry.map_or(u32::MAX, |(_, s)| s).to_be_bytes());
    v.extend_from_slice(&m.payload);
    v
}

fn decode_msg(b: &[u8], now: Instant) -> Option<OutMsg> {
    let mut r = Rd(b);
    let serial = r.u64()?;
    let topic = r.string()?;
    let f = r.u8()?;
    let props = r.bytes()?.to_vec();
    let sub_id = Some(r.u32()?).filter(|&n| n != 0);
    let expiry = Some(r.u32()?).filter(|&s| s != u32::MAX).map(|s| (now, s));
    Some(OutMsg {
        serial,
        topic,
        qos: QoS::from_bits(f & 3)?,
        retain: f & 4 != 0,
        props,
        sub_id,
        payload: r.0.to_vec(),
        expiry,
    })
}

/// A reader over a stored value.
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (h, t) = self.0.split_at_checked(n)?;
        self.0 = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests;
