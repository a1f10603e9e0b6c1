//! SUBSCRIBE and UNSUBSCRIBE: filters to NATS subjects (twig-core's mapping, as
//! nats-server's), `$share/G/filter` to queue group `G`, permissions, subscription options
//! and retained messages per Retain Handling.

use std::time::Instant;

use twig_core::mqtt::filter_to_subjects;
use twig_core::mqtt::max_subject_len;
use twig_core::mqtt::packet::{self, SubOptions, Version, props::id, reason};

use super::api::*;
use super::session::{Owed, Pending, Phase, Session};
use super::state::{Change, Subscription};

/// A filter split into its queue group (`$share/G/...`) and the filter proper.
fn split_share(filter: &str) -> Result<(Option<&str>, &str), ()> {
    let Some(rest) = filter.strip_prefix("$share/") else {
        return Ok((None, filter));
    };
    // MQTT 5 §4.8.2: a non-empty share name without `/`, `+`, `#`, then a filter.
    let (name, f) = rest.split_once('/').ok_or(())?;
    if name.is_empty() || name.contains(['+', '#']) || f.is_empty() {
        return Err(());
    }
    // A NATS queue name cannot hold blanks.
    if name.chars().any(char::is_whitespace) {
        return Err(());
    }
    Ok((Some(name), f))
}

/// The NATS subjects of an MQTT filter.
fn subjects_of(filter: &str) -> Option<Vec<String>> {
    let mut buf = vec![0u8; max_subject_len(filter.len())];
    let fs = filter_to_subjects(filter.as_bytes(), &mut buf).ok()?;
    let mut out = vec![String::from_utf8(fs.subject.to_vec()).ok()?];
    if let Some(p) = fs.parent {
        out.push(String::from_utf8(p.to_vec()).ok()?);
    }
    Some(out)
}

impl Session {
    pub(super) fn on_subscribe(&mut self, now: Instant, s: &packet::Subscribe<'_>) {
        let v5 = self.version == Version::V5;
        let sub_id = s.props.u32(id::SUBSCRIPTION_ID);
        let mut codes = Vec::new();
        for (filter, opts) in s.filters.iter() {
            let code = match self.subscribe_one(filter, opts, sub_id) {
                Ok(granted) => granted as u8,
                Err(Refusal::Close(code)) => return self.close(now, code, true),
                Err(Refusal::Code(c)) if v5 => c,
                Err(Refusal::Code(_)) => reason::v4::SUBACK_FAILURE,
            };
            codes.push(code);
        }
        let ticket = self.persist_subs();
        self.pending.push_back(Pending {
            ticket,
            done: if ticket.is_none() {
                Some(Outcome::Ok)
            } else {
                None
            },
            what: Owed::SubAck(s.pkid, codes),
        });
        self.flush_pending(now);
    }

    fn subscribe_one(
        &mut self,
        filter: &str,
        opts: SubOptions,
        sub_id: Option<u32>,
    ) -> Result<packet::QoS, Refusal> {
        let (share, bare) =
            split_share(filter).map_err(|()| Refusal::Code(reason::TOPIC_FILTER_INVALID))?;
        if share.is_some() && opts.no_local {
            // MQTT-3.8.3-4.
            return Err(Refusal::Close(reason::PROTOCOL_ERROR));
        }
        let subjects = subjects_of(bare).ok_or(Refusal::Code(reason::TOPIC_FILTER_INVALID))?;
        let perms = self.perms.as_deref();
        let allowed = perms.is_some_and(|p| subjects.iter().all(|s| p.subscribe(s, share)));
        if !allowed {
            tracing::debug!(client = %self.st.client_id, filter, "MQTT subscription denied");
            return Err(Refusal::Code(reason::NOT_AUTHORIZED));
        }
        let granted = opts.qos.min(self.cfg.max_qos);
        let options = SubOptions {
            qos: granted,
            ..opts
        };
        let existing = self.st.subs.iter().position(|s| s.filter == filter);
        let id = match existing {
            Some(i) => {
                // MQTT-3.8.4-3: same filter, new options; the NATS subscriptions stay.
                let s = &mut self.st.subs[i];
                s.options = options;
                s.sub_id = sub_id;
                s.id
            }
            None => {
                if self.st.subs.len() >= self.cfg.max_subscriptions {
                    return Err(Refusal::Code(reason::QUOTA_EXCEEDED));
                }
                let id = self.st.next_sub;
                self.st.next_sub += 1;
                for subject in &subjects {
                    self.events.push_back(Event::Subscribe {
                        id,
                        subject: subject.clone(),
                        queue: share.map(str::to_string),
                    });
                }
                self.st.subs.push(Subscription {
                    id,
                    filter: filter.to_string(),
                    options,
                    sub_id,
                    share: share.map(str::to_string),
                    subjects: subjects.clone(),
                });
                id
            }
        };
        // Retain Handling 0: send retained messages; 1: only for a new subscription; 2:
        // never. Never for shared subscriptions (MQTT 5 §4.8.2).
        let send = match opts.retain_handling {
            0 => true,
            1 => existing.is_none(),
            _ => false,
        };
        if send && share.is_none() && self.cfg.retain_available {
            for subject in subjects {
                self.events.push_back(Event::SendRetained { id, subject });
            }
        }
        Ok(granted)
    }

    pub(super) fn on_unsubscribe(&mut self, u: &packet::Unsubscribe<'_>) {
        let mut codes = Vec::new();
        for filter in u.filters.iter() {
            match self.st.subs.iter().position(|s| s.filter == filter) {
                Some(i) => {
                    let s = self.st.subs.remove(i);
                    for subject in s.subjects {
                        self.events
                            .push_back(Event::Unsubscribe { id: s.id, subject });
                    }
                    codes.push(reason::SUCCESS);
                }
                None => codes.push(reason::NO_SUBSCRIPTION_EXISTED),
            }
        }
        let ticket = self.persist_subs();
        self.pending.push_back(Pending {
            ticket,
            done: if ticket.is_none() {
                Some(Outcome::Ok)
            } else {
                None
            },
            what: Owed::UnsubAck(u.pkid, codes),
        });
        self.flush_pending(self.last_rx);
    }

    /// After a reload: a revoked login ends its connection (a kept session lives on offline,
    /// and its deliveries are filtered by the revoked permissions, so it receives nothing);
    /// subscriptions the new rules no longer allow are removed (and persisted so).
    pub(super) fn recheck(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected | Phase::Offline) {
            return;
        }
        let Some(p) = self.perms.as_deref() else {
            return;
        };
        if p.revoked() {
            tracing::info!(client = %self.st.client_id, "MQTT login revoked by a reload");
            // No will: the server ended it, for a user who may no longer publish at all.
            return self.close(now, reason::NOT_AUTHORIZED, false);
        }
        let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.st.subs)
            .into_iter()
            .partition(|s| {
                s.subjects
                    .iter()
                    .all(|subject| p.subscribe(subject, s.share.as_deref()))
            });
        self.st.subs = keep;
        if gone.is_empty() {
            return;
        }
        for s in gone {
            tracing::info!(client = %self.st.client_id, filter = %s.filter,
                "MQTT subscription removed: no longer allowed");
            for subject in s.subjects {
                self.events
                    .push_back(Event::Unsubscribe { id: s.id, subject });
            }
        }
        self.persist_session();
    }

    /// Persists the subscriptions of a lasting session; the SUBACK waits for the ticket.
    fn persist_subs(&mut self) -> Option<Ticket> {
        if !self.persistent() {
            return None;
        }
        let t = self.ticket();
        let change = Change::Session {
            client_id: self.st.client_id.clone(),
            expiry: self.st.expiry,
            subs: self.st.subs.clone(),
        };
        self.persist(change, Some(t));
        Some(t)
    }
}

enum Refusal {
    /// A SUBACK failure code (MQTT 5 reason; 3.1.1 gets 0x80).
    Code(u8),
    /// A protocol violation: close with this reason.
    Close(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_subscription_names() {
        assert_eq!(split_share("a/b"), Ok((None, "a/b")));
        assert_eq!(split_share("$share/g/a/#"), Ok((Some("g"), "a/#")));
        assert_eq!(split_share("$share/g"), Err(()));
        assert_eq!(split_share("$share//a"), Err(()));
        assert_eq!(split_share("$share/g+/a"), Err(()));
        assert_eq!(subjects_of("a/#"), Some(vec!["a.>".into(), "a".into()]));
    }
}
