//! Reading permissions from a config through serde, in every shape nats-server's config parser
//! takes (`opts.go parseUserPermissions`, `parseVariablePermissions`, `parseAllowResponses`):
//!
//! - keys are case-insensitive, with nats-server's aliases: `pub`/`publish`/`import`,
//!   `sub`/`subscribe`/`export`, `allow_responses`/`publish_allow_responses`; in
//!   `allow_responses`, `max`/`max_msgs`/`max_messages`/`max_responses` and
//!   `expires`/`expiration`/`ttl`;
//! - a direction is a subject, a list of subjects (the allow list), or `{ allow, deny }`
//!   (each a subject or a list); `{}` is no rule, `[]` is no allow list;
//! - `allow_responses` is `true`/`false` or `{ max, expires }`: `max` 0 means the default (1),
//!   negative means unlimited; `expires` is a Go duration string (`"1m"`), `"0"` the default
//!   (2 minutes), negative never.
//!
//! Any serde format works (TOML here, nats-server's format through its own value tree).
//! Subjects are checked later, by [`Permissions::validate`].

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::spec::{
    DEFAULT_RESPONSE_EXPIRES, DEFAULT_RESPONSE_MAX, Permissions, ResponsePermission,
    SubjectPermission,
};

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PermissionsVisitor)
    }
}

struct PermissionsVisitor;

impl<'de> Visitor<'de> for PermissionsVisitor {
    type Value = Permissions;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of permissions (publish, subscribe, allow_responses)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Permissions, A::Error> {
        let mut p = Permissions::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.to_ascii_lowercase().as_str() {
                "pub" | "publish" | "import" => p.publish = map.next_value::<Side>()?.0,
                "sub" | "subscribe" | "export" => p.subscribe = map.next_value::<Side>()?.0,
                "allow_responses" | "publish_allow_responses" => {
                    p.allow_responses = map.next_value::<Responses>()?.0;
                }
                _ => {
                    return Err(de::Error::custom(format!(
                        "unknown field {key:?} parsing permissions"
                    )));
                }
            }
        }
        Ok(p)
    }
}

/// One direction: a subject, a list, or `{ allow, deny }` (`None` for `{}`).
struct Side(Option<SubjectPermission>);

impl<'de> Deserialize<'de> for Side {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SideVisitor)
    }
}

struct SideVisitor;

impl<'de> Visitor<'de> for SideVisitor {
    type Value = Side;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a subject, a list of subjects, or a map with allow and/or deny")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Side, E> {
        Ok(Side(Some(SubjectPermission {
            allow: Some(vec![v.to_string()]),
            deny: Vec::new(),
        })))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Side, A::Error> {
        let allow = SubjectsVisitor.visit_seq(seq)?.0;
        Ok(Side(Some(SubjectPermission {
            allow: (!allow.is_empty()).then_some(allow),
            deny: Vec::new(),
        })))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Side, A::Error> {
        let mut p = SubjectPermission::default();
        let mut any = false;
        while let Some(key) = map.next_key::<String>()? {
            any = true;
            let list = map.next_value::<Subjects>()?.0;
            match key.to_ascii_lowercase().as_str() {
                "allow" => p.allow = (!list.is_empty()).then_some(list),
                "deny" => p.deny = list,
                _ => {
                    return Err(de::Error::custom(format!(
                        "unknown field name {key:?} parsing subject permissions, only 'allow' \
                         or 'deny' are permitted"
                    )));
                }
            }
        }
        // nats-server: an empty map is no rule at all.
        Ok(Side(any.then_some(p)))
    }
}

/// A subject or a list of subjects.
struct Subjects(Vec<String>);

impl<'de> Deserialize<'de> for Subjects {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SubjectsVisitor)
    }
}

struct SubjectsVisitor;

impl<'de> Visitor<'de> for SubjectsVisitor {
    type Value = Subjects;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a subject, or array of subjects")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Subjects, E> {
        Ok(Subjects(vec![v.to_string()]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Subjects, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<OneSubject>()? {
            out.push(s.0);
        }
        Ok(Subjects(out))
    }
}

/// A list element: only a string will do.
struct OneSubject(String);

impl<'de> Deserialize<'de> for OneSubject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OneSubject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a subject (subject in permissions array cannot be cast to string)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneSubject, E> {
                Ok(OneSubject(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `allow_responses`: a boolean or `{ max, expires }`.
struct Responses(Option<ResponsePermission>);

impl<'de> Deserialize<'de> for Responses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ResponsesVisitor)
    }
}

struct ResponsesVisitor;

impl<'de> Visitor<'de> for ResponsesVisitor {
    type Value = Responses;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean or a map (response permissions)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Responses, E> {
        Ok(Responses(v.then(ResponsePermission::default)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Responses, A::Error> {
        let mut rp = ResponsePermission::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.to_ascii_lowercase().as_str() {
                "max" | "max_msgs" | "max_messages" | "max_responses" => {
                    let max = map.next_value::<i64>()?;
                    rp.max = match max {
                        0 => Some(DEFAULT_RESPONSE_MAX),
                        n if n < 0 => None,
                        n => Some(n.unsigned_abs()),
                    };
                }
                "expires" | "expiration" | "ttl" => {
                    let text = map.next_value::<GoDurationText>()?.0;
                    let nanos = parse_go_duration(&text)
                        .map_err(|e| de::Error::custom(format!("error parsing expires: {e}")))?;
                    rp.expires = match nanos {
                        0 => Some(DEFAULT_RESPONSE_EXPIRES),
                        n if n < 0 => None,
                        n => Some(Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))),
                    };
                }
                _ => {
                    return Err(de::Error::custom(format!(
                        "unknown field {key:?} parsing permissions"
                    )));
                }
            }
        }
        Ok(Responses(Some(rp)))
    }
}

/// `expires` must be a string (nats-server: "not a duration string" otherwise).
struct GoDurationText(String);

impl<'de> Deserialize<'de> for GoDurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"1m\" (error parsing expires, not a duration string)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDurationText, E> {
                Ok(GoDurationText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Go's `time.ParseDuration`, signed, in nanoseconds: `[-+]?(<number><unit>)+` with units `ns`,
/// `us` (`µs`, `μs`), `ms`, `s`, `m`, `h`, or a bare `0`.
pub fn parse_go_duration(s: &str) -> Result<i128, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut nanos = int.checked_mul(unit_nanos).ok_or_else(bad)?;
        let frac = frac_part.get(..frac_part.len().min(18)).unwrap_or("");
        if !frac.is_empty() {
            let f: i128 = frac.parse().map_err(|_| bad())?;
            let scale = 10i128.pow(u32::try_from(frac.len()).unwrap_or(18));
            nanos = nanos.checked_add(f * unit_nanos / scale).ok_or_else(bad)?;
        }
        total = total.checked_add(nanos).ok_or_else(bad)?;
        // Go's Duration is an int64 of nanoseconds.
        if total > i128::from(i64::MAX) {
            return Err(bad());
        }
        rest = next;
    }
    Ok(if negative { -total } else { total })
}
