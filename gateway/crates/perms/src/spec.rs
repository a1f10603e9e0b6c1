//! Permissions as plain data, in nats-server's shape (`server/auth.go` `Permissions`), and the
//! checks nats-server makes on them when it loads a config (`opts.go checkPermSubjectArray`).

use std::time::Duration;

use twig_core::subject;

use super::PermsError;
use super::template;

/// nats-server's `DEFAULT_ALLOW_RESPONSE_MAX_MSGS`: responses allowed per request by default.
pub const DEFAULT_RESPONSE_MAX: u64 = 1;
/// nats-server's `DEFAULT_ALLOW_RESPONSE_EXPIRATION`: how long a response may take by default.
pub const DEFAULT_RESPONSE_EXPIRES: Duration = Duration::from_secs(120);

/// One user's `permissions` (or `default_permissions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    /// `publish`: subjects the user may publish to. `None`: no publish rule at all.
    pub publish: Option<SubjectPermission>,
    /// `subscribe`: subjects (optionally `"subject queue"`) the user may subscribe to.
    pub subscribe: Option<SubjectPermission>,
    /// `allow_responses`: publishing to the reply subject of a message this user received.
    pub allow_responses: Option<ResponsePermission>,
}

/// `allow` and `deny` lists of one direction.
///
/// nats-server's distinctions are kept: `allow: None` means no allow list (everything not
/// denied passes); `allow: Some(vec![])` on `publish` means nothing passes. A config can only
/// produce `Some(vec![])` through `allow_responses` (nats-server reads `publish = []` as no
/// allow list, see [`Permissions::warnings`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectPermission {
    /// Subjects allowed (wildcards; on `subscribe` also `"subject queue"`).
    pub allow: Option<Vec<String>>,
    /// Subjects denied; a deny wins over an allow.
    pub deny: Vec<String>,
}

/// `allow_responses`: after receiving a message with a reply subject, the user may publish to
/// that reply subject `max` times within `expires`, whatever `publish` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponsePermission {
    /// Responses per received request; `None` is unlimited (a negative `max` in the config).
    pub max: Option<u64>,
    /// How long after the request a response may come; `None` never expires (negative).
    pub expires: Option<Duration>,
}

impl Default for ResponsePermission {
    /// `allow_responses = true`: one response within two minutes.
    fn default() -> Self {
        ResponsePermission {
            max: Some(DEFAULT_RESPONSE_MAX),
            expires: Some(DEFAULT_RESPONSE_EXPIRES),
        }
    }
}

/// Which list an entry is in, for error texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// `publish.allow`
    PublishAllow,
    /// `publish.deny`
    PublishDeny,
    /// `subscribe.allow`
    SubscribeAllow,
    /// `subscribe.deny`
    SubscribeDeny,
}

impl List {
    /// The option path, as a config names it.
    pub const fn as_str(self) -> &'static str {
        match self {
            List::PublishAllow => "publish allow",
            List::PublishDeny => "publish deny",
            List::SubscribeAllow => "subscribe allow",
            List::SubscribeDeny => "subscribe deny",
        }
    }

    /// Whether entries may carry a queue group (`"subject queue"`).
    pub const fn takes_queue(self) -> bool {
        matches!(self, List::SubscribeAllow | List::SubscribeDeny)
    }

    pub(crate) const fn is_allow(self) -> bool {
        matches!(self, List::PublishAllow | List::SubscribeAllow)
    }
}

impl Permissions {
    /// Checks every entry as nats-server does when it loads a config: a valid subject (as for
    /// SUB, so wildcards are fine), or on `subscribe` `"subject queue"` with both valid.
    /// Template entries (`{{name()}}`, ...) must use known operations and be valid with any
    /// token in their place. Returns the first problem.
    pub fn validate(&self) -> Result<(), PermsError> {
        for (list, entries) in self.lists() {
            for entry in entries {
                if template::has_template(entry) {
                    template::check_template_entry(entry, list)?;
                } else {
                    check_entry(entry, list)?;
                }
            }
        }
        Ok(())
    }

    /// Whether any entry holds a template, i.e. the rules differ per identity.
    pub fn has_templates(&self) -> bool {
        self.lists()
            .any(|(_, entries)| entries.iter().any(|e| template::has_template(e)))
    }

    /// Settings that do what nats-server does but rarely what was meant, in plain words.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, side) in [("publish", &self.publish), ("subscribe", &self.subscribe)] {
            if let Some(SubjectPermission { allow: None, deny }) = side
                && deny.is_empty()
            {
                out.push(format!(
                    "{name} has an empty allow list, which nats-server reads as no list: \
                     everything is allowed (deny \">\" forbids everything)"
                ));
            }
        }
        out
    }

    /// Every list with the name it goes by.
    pub(crate) fn lists(&self) -> impl Iterator<Item = (List, &[String])> {
        fn side(s: &Option<SubjectPermission>, allow: List, deny: List) -> [(List, &[String]); 2] {
            let (a, d): (&[String], &[String]) = match s {
                Some(s) => (s.allow.as_deref().unwrap_or(&[]), &s.deny),
                None => (&[], &[]),
            };
            [(allow, a), (deny, d)]
        }
        side(&self.publish, List::PublishAllow, List::PublishDeny)
            .into_iter()
            .chain(side(
                &self.subscribe,
                List::SubscribeAllow,
                List::SubscribeDeny,
            ))
    }
}

/// One entry split into subject and queue (nats-server `splitSubjectQueue`: fields separated
/// by whitespace, one or two of them).
pub(crate) fn split_entry(entry: &str) -> Option<(&str, Option<&str>)> {
    let mut fields = entry.split_whitespace();
    let subject = fields.next()?;
    let queue = fields.next();
    if fields.next().is_some() {
        return None;
    }
    Some((subject, queue))
}

/// nats-server `checkPermSubjectArray` for one entry.
pub(crate) fn check_entry(entry: &str, list: List) -> Result<(), PermsError> {
    if subject::is_valid(entry.as_bytes()) {
        return Ok(());
    }
    let invalid = |s: &str| PermsError::InvalidSubject {
        list,
        subject: s.to_string(),
    };
    if !list.takes_queue() {
        return Err(invalid(entry));
    }
    let mut fields = entry.split_whitespace();
    let (Some(subj), Some(queue), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(invalid(entry));
    };
    if !subject::is_valid(subj.as_bytes()) {
        return Err(invalid(subj));
    }
    if !subject::is_valid(queue.as_bytes()) {
        return Err(PermsError::InvalidQueue {
            list,
            queue: queue.to_string(),
        });
    }
    Ok(())
}
