//! A session task's inbox: what reaches the task from elsewhere while it waits on its socket.
//!
//! - NATS messages for its subscriptions: the router hands them over through [`Sink`] (one
//!   inbox behind every subscription of the session, each tagged with its subscription id),
//!   copied into one buffer each and bounded in bytes: past `max_bytes` a delivery is dropped
//!   and counted, as a slow consumer's would be, and never blocks the publisher.
//! - Answers of the store thread (persisted, retained messages for a new subscription), and
//!   the streams' notices for QoS 1/2 publishes ([`Notices`]): no channel per session.
//! - Control: another connection takes the session over; shutdown; a reload's recheck.
//!
//! One leaf mutex and one event: the task drains everything at once when woken. The event is
//! notified only when the inbox goes from empty to not empty, so a burst wakes the task once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use event_listener::{Event, EventListener};

use crate::server::{Outcome, Ticket};
use twig_router::Message;
use twig_router::internal::{Owner, Sink};
use twig_router::store::{NoticeSink, Stored};
use twig_util::lock::lock;

use super::ackwait::{self, Waiter};
use super::task::Handover;

/// A NATS message for one subscription of the session, owned (one allocation).
pub(super) struct Item {
    /// The subscription id ([`crate::server::Event::Subscribe`]).
    pub sub: u32,
    /// Published by this same session (MQTT 5 No Local).
    pub own: bool,
    /// A retained message sent for a new subscription.
    pub retained: bool,
    /// The publisher's acknowledgement waits for this copy to be stored (see [`ackwait`]).
    ///
    /// [`ackwait`]: super::ackwait
    pub ack: Option<Arc<Waiter>>,
    subject: u16,
    reply: u16,
    headers: u32,
    data: Box<[u8]>,
}

impl Item {
    /// Copies `msg`; `None` if its subject or reply does not fit the item's lengths (MQTT
    /// topics are at most 65535 bytes, so such a subject could not be delivered anyway).
    pub fn new(sub: u32, own: bool, retained: bool, msg: &Message<'_>) -> Option<Item> {
        let reply = msg.reply.unwrap_or(&[]);
        let headers = msg.headers.unwrap_or(&[]);
        let mut data =
            Vec::with_capacity(msg.subject.len() + reply.len() + headers.len() + msg.payload.len());
        data.extend_from_slice(msg.subject);
        data.extend_from_slice(reply);
        data.extend_from_slice(headers);
        data.extend_from_slice(msg.payload);
        Some(Item {
            sub,
            own,
            retained,
            ack: None,
            subject: u16::try_from(msg.subject.len()).ok()?,
            reply: u16::try_from(reply.len()).ok()?,
            headers: u32::try_from(headers.len()).ok()?,
            data: data.into_boxed_slice(),
        })
    }

    /// Bytes it holds (against the inbox's bound).
    pub fn cost(&self) -> usize {
        64 + self.data.len()
    }

    /// The subject (as text: NATS subjects that are not UTF-8 have no MQTT topic).
    pub fn subject(&self) -> Option<&str> {
        std::str::from_utf8(&self.data[..usize::from(self.subject)]).ok()
    }

    /// The reply subject.
    pub fn reply(&self) -> Option<&str> {
        let s = usize::from(self.subject);
        let r = &self.data[s..s + usize::from(self.reply)];
        (!r.is_empty())
            .then(|| std::str::from_utf8(r).ok())
            .flatten()
    }

    /// The header block.
    pub fn headers(&self) -> Option<&[u8]> {
        let s = usize::from(self.subject) + usize::from(self.reply);
        let h = &self.data[s..s + self.headers as usize];
        (!h.is_empty()).then_some(h)
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let s = usize::from(self.subject) + usize::from(self.reply) + self.headers as usize;
        &self.data[s..]
    }
}

/// What else reaches the task.
pub(super) enum Control {
    /// Another connection with the same client id: close, then hand the session over.
    TakeOver(async_channel::Sender<Handover>),
    /// The server is stopping.
    Shutdown,
    /// A reload changed the users or permissions: check the login and subscriptions again.
    Recheck,
}

#[derive(Default)]
struct State {
    msgs: VecDeque<Item>,
    bytes: usize,
    done: Vec<(u64, Ticket, Outcome)>,
    stored: Vec<(u64, Stored)>,
    control: VecDeque<Control>,
}

impl State {
    fn is_empty(&self) -> bool {
        self.msgs.is_empty()
            && self.done.is_empty()
            && self.stored.is_empty()
            && self.control.is_empty()
    }
}

/// Everything a session task takes in besides its socket and its streams' answers.
pub(super) struct Inbox {
    state: Mutex<State>,
    ready: Event,
    /// The owner id the session publishes under (its own messages are marked `own`).
    pub owner: Owner,
    max_bytes: usize,
    /// Deliveries dropped because the inbox was full.
    pub dropped: AtomicU64,
    /// The session is lasting (its queued QoS 1/2 messages go to flash): a device's publish
    /// delivered here is acknowledged once its copy is stored. Set by the task each turn.
    pub lasting: AtomicBool,
}

/// What one drain took out.
#[derive(Default)]
pub(super) struct Drained {
    pub msgs: Vec<Item>,
    /// (the asking task's epoch, ticket, outcome)
    pub done: Vec<(u64, Ticket, Outcome)>,
    /// (the publishing task's epoch, the stream's notice)
    pub stored: Vec<(u64, Stored)>,
    pub control: Vec<Control>,
}

impl Inbox {
    /// An empty inbox holding at most `max_bytes` of messages.
    pub fn new(owner: Owner, max_bytes: usize) -> Inbox {
        Inbox {
            state: Mutex::new(State::default()),
            ready: Event::new(),
            owner,
            max_bytes,
            dropped: AtomicU64::new(0),
            lasting: AtomicBool::new(false),
        }
    }

    /// Queues a message unless the inbox is full (then it is dropped and counted).
    pub fn push_msg(&self, item: Item) -> bool {
        let mut st = lock(&self.state);
        if st.bytes + item.cost() > self.max_bytes {
            drop(st);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let wake = st.is_empty();
        st.bytes += item.cost();
        st.msgs.push_back(item);
        drop(st);
        if wake {
            self.ready.notify(1);
        }
        true
    }

    /// An operation finished (never dropped: the session waits for it). `epoch` names the task
    /// that asked (a task that adopts an inbox ignores its predecessor's answers).
    pub fn push_done(&self, epoch: u64, ticket: Ticket, outcome: Outcome) {
        let mut st = lock(&self.state);
        let wake = st.is_empty();
        st.done.push((epoch, ticket, outcome));
        drop(st);
        if wake {
            self.ready.notify(1);
        }
    }

    /// A stream's notice for a publish of the task `epoch` (never dropped: bounded by the
    /// session's QoS 1/2 publishes in flight, at most its receive maximum).
    pub fn push_stored(&self, epoch: u64, s: Stored) {
        let mut st = lock(&self.state);
        let wake = st.is_empty();
        st.stored.push((epoch, s));
        drop(st);
        if wake {
            self.ready.notify(1);
        }
    }

    /// A control message.
    pub fn push_control(&self, c: Control) {
        let mut st = lock(&self.state);
        let wake = st.is_empty();
        st.control.push_back(c);
        drop(st);
        if wake {
            self.ready.notify(1);
        }
    }

    /// Takes up to `max_msgs` messages and everything else.
    pub fn drain(&self, max_msgs: usize) -> Drained {
        let mut st = lock(&self.state);
        let n = st.msgs.len().min(max_msgs);
        let msgs: Vec<Item> = st.msgs.drain(..n).collect();
        st.bytes -= msgs.iter().map(Item::cost).sum::<usize>();
        if st.msgs.is_empty() {
            // An idle session keeps no queue capacity from its last burst.
            st.msgs = VecDeque::new();
        }
        Drained {
            msgs,
            done: std::mem::take(&mut st.done),
            stored: std::mem::take(&mut st.stored),
            control: std::mem::take(&mut st.control).into(),
        }
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        lock(&self.state).is_empty()
    }

    /// A listener to await before sleeping: create it, check [`Inbox::is_empty`], then wait.
    pub fn listen(&self) -> EventListener {
        self.ready.listen()
    }
}

/// Where the streams send a task's notices: its inbox, tagged with its epoch (made on the
/// task's first publish to a stream; an idle session has none).
pub(super) struct Notices {
    pub epoch: u64,
    pub inbox: std::sync::Arc<Inbox>,
}

impl NoticeSink for Notices {
    fn stored(&self, s: Stored) -> bool {
        self.inbox.push_stored(self.epoch, s);
        true
    }
}

impl Sink for Inbox {
    fn offer(&self, tag: u64, msg: &Message<'_>, from: Option<Owner>) -> bool {
        let own = from == Some(self.owner);
        let Ok(sub) = u32::try_from(tag) else {
            return false;
        };
        match Item::new(sub, own, false, msg) {
            Some(mut item) => {
                if self.lasting.load(Ordering::Relaxed) {
                    item.ack = ackwait::current();
                }
                self.push_msg(item)
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(subject: &'a [u8], payload: &'a [u8]) -> Message<'a> {
        Message {
            subject,
            reply: Some(b"_INBOX.1"),
            headers: Some(b"NATS/1.0\r\n\r\n"),
            payload,
        }
    }

    #[test]
    fn an_item_gives_back_the_message() {
        let m = msg(b"a.b", b"21.5");
        let it = Item::new(3, true, false, &m).unwrap();
        assert_eq!(it.subject(), Some("a.b"));
        assert_eq!(it.reply(), Some("_INBOX.1"));
        assert_eq!(it.headers(), Some(&b"NATS/1.0\r\n\r\n"[..]));
        assert_eq!(it.payload(), b"21.5");
        let bare = Message {
            subject: b"x",
            reply: None,
            headers: None,
            payload: b"",
        };
        let it = Item::new(1, false, false, &bare).unwrap();
        assert_eq!(
            (it.reply(), it.headers(), it.payload()),
            (None, None, &b""[..])
        );
    }

    #[test]
    fn the_inbox_is_bounded_in_bytes_and_marks_its_owners_messages() {
        let owner = twig_router::internal::new_owner();
        let inbox = Inbox::new(owner, 200);
        let payload = [0u8; 50];
        assert!(inbox.offer(1, &msg(b"a", &payload), Some(owner)));
        assert!(
            !inbox.offer(2, &msg(b"a", &payload), None),
            "past 200 bytes"
        );
        assert_eq!(inbox.dropped.load(Ordering::Relaxed), 1);
        inbox.push_done(7, Ticket(4), Outcome::Ok);
        let d = inbox.drain(10);
        assert_eq!(d.msgs.len(), 1);
        assert!(d.msgs[0].own && d.msgs[0].sub == 1);
        assert_eq!(d.done, [(7, Ticket(4), Outcome::Ok)]);
        assert!(inbox.is_empty());
        // Room again once drained.
        assert!(inbox.offer(2, &msg(b"a", &payload), None));
    }
}
