//! nats-server's config format (`-c leaf.conf`) onto the same [`Config`] the TOML builds.
//!
//! The file is read by `twig-natsconf` into a tree with positions; this module renames
//! nats-server's options (and their aliases) to twig's, converts the values nats-server's way
//! (sizes `1MB`, durations `"2m"`, `listen: host:port`, `authorization.timeout` in seconds),
//! and hands the result to the same deserializer and validation as the TOML. So every check
//! and default is shared, and the two formats cannot drift apart.
//!
//! An option twig does not have is an error naming it and its line, never ignored: nats-server
//! options twig lacks say why ([`unsupported`]), unknown ones are unknown, as nats-server
//! treats them. Keys used only as `$variables` are skipped, as nats-server skips them.
use std::collections::HashMap;
use std::path::Path;

use twig_natsconf::{Entry, Kind, Map, Pos, Value};

use super::{Config, ConfigError};

/// Where each twig option came from: its path in twig's names (`authorization.users.nkey`,
/// no indices, as serde reports them) to the nats-server key as written and its position.
#[derive(Default)]
struct Origins(HashMap<String, (String, Pos)>);

impl Origins {
    fn note(&mut self, path: &str, e: &Entry) {
        self.0
            .entry(path.to_owned())
            .or_insert_with(|| (e.key.clone(), e.key_pos.clone()));
    }

    /// The origin of `path`, or of its nearest parent that has one.
    fn find(&self, path: &str) -> Option<&(String, Pos)> {
        let mut p = strip_indices(path);
        loop {
            if let Some(o) = self.0.get(&p) {
                return Some(o);
            }
            let (parent, _) = p.rsplit_once('.')?;
            p = parent.to_owned();
        }
    }
}

fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

/// An error at `pos` (an included file names itself).
fn at(pos: &Pos, message: String) -> ConfigError {
    ConfigError::Parse {
        path: pos.file.as_deref().map(Path::to_path_buf),
        line: pos.line as usize,
        column: pos.column as usize,
        message,
    }
}

/// Parses nats-server-format `text` (the file `file`, for includes) and validates it.
pub fn from_nats_conf(text: &str, file: Option<&Path>) -> Result<Config, ConfigError> {
    let tree = twig_natsconf::parse_with(text, file, &twig_natsconf::System)
        .map_err(|e| at(&e.pos, e.message))?;
    from_tree(&tree)
}

/// The mapping, for a tree already read.
pub fn from_tree(tree: &Map) -> Result<Config, ConfigError> {
    let mut origins = Origins::default();
    let mut out = toml::Table::new();
    top(tree, &mut out, &mut origins)?;
    let config: Config = toml::Value::Table(out)
        .try_into()
        .map_err(|e: toml::de::Error| located(&origins, e.message()))?;
    config.validate().map_err(|e| match e {
        ConfigError::Invalid { option, reason, .. } => match origins.find(&option) {
            Some((_, pos)) => at(pos, format!("invalid `{option}`: {reason}")),
            None => e_invalid(option, reason),
        },
        other => other,
    })?;
    Ok(config)
}

fn e_invalid(option: String, reason: String) -> ConfigError {
    ConfigError::Invalid {
        path: None,
        option,
        reason,
    }
}

/// A deserializer message (`invalid type: ..., expected ...\nin `a.b``) at the option's line.
fn located(origins: &Origins, message: &str) -> ConfigError {
    let path = message
        .split_once("in `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(p, _)| p.to_owned());
    let first = message.lines().next().unwrap_or(message).to_owned();
    match path.as_deref().and_then(|p| origins.find(p)) {
        Some((key, pos)) => at(pos, format!("`{key}`: {first}")),
        None => e_invalid("config".into(), first),
    }
}

/// What to do with one nats-server option.
enum Action {
    /// Copy under this twig name, converted.
    To(&'static str, Conv),
    /// Handled by a function of this module.
    Custom(fn(&Entry, &mut toml::Table, &mut Origins, &str) -> Result<(), ConfigError>),
    /// A nats-server option twig does not have, and why.
    Unsupported(&'static str),
}

/// Value conversions (checked here so the message names nats-server's key).
#[derive(Clone, Copy)]
enum Conv {
    Str,
    Int,
    Bool,
    /// Bytes: an integer (suffixes already applied) or a string such as `"1MB"`.
    Size,
    /// A Go duration string (`"2m"`, `"500ms"`); see [`duration`].
    Duration,
    /// A string or a list of strings, as a list.
    List,
    /// Any value as it is (permissions: twig's deserializer takes nats-server's shapes).
    Any,
}

/// Applies `lookup` to every entry of `map`, writing twig's options into `out`.
fn section(
    map: &Map,
    prefix: &str,
    out: &mut toml::Table,
    origins: &mut Origins,
    lookup: fn(&str) -> Option<Action>,
    what: &str,
) -> Result<(), ConfigError> {
    for e in map.entries() {
        let Some(action) = lookup(e.key.as_str()) else {
            if e.used_as_variable {
                continue;
            }
            return Err(at(
                &e.key_pos,
                format!("unknown option `{}` in {what}", e.key),
            ));
        };
        match action {
            Action::To(name, conv) => {
                let v = convert(e, conv)?;
                origins.note(&join(prefix, name), e);
                out.insert(name.to_owned(), v);
            }
            Action::Custom(f) => f(e, out, origins, prefix)?,
            Action::Unsupported(why) => {
                return Err(at(
                    &e.key_pos,
                    format!(
                        "option `{}` (in {what}) is not supported by twig: {why}",
                        e.key
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn wrong(e: &Entry, expected: &str) -> ConfigError {
    at(
        &e.value.pos,
        format!(
            "`{}` must be {expected}, not {}",
            e.key,
            e.value.kind.describe()
        ),
    )
}

fn convert(e: &Entry, conv: Conv) -> Result<toml::Value, ConfigError> {
    let v = &e.value.kind;
    Ok(match (conv, v) {
        (Conv::Str, Kind::String(s)) => toml::Value::String(s.clone()),
        (Conv::Str, _) => return Err(wrong(e, "a string")),
        (Conv::Int, Kind::Integer(i)) => toml::Value::Integer(*i),
        (Conv::Int, _) => return Err(wrong(e, "an integer")),
        (Conv::Bool, Kind::Bool(b)) => toml::Value::Boolean(*b),
        (Conv::Bool, _) => return Err(wrong(e, "true or false")),
        (Conv::Size, Kind::Integer(i)) => toml::Value::Integer(*i),
        (Conv::Size, Kind::String(s)) => {
            // Parsed here too, where the key and line are known (the deserializer's own error
            // would name neither).
            crate::values::parse_size(s).map_err(|m| value_error(e, m))?;
            toml::Value::String(s.clone())
        }
        (Conv::Size, _) => return Err(wrong(e, "a size (1048576 or 1MB)")),
        (Conv::Duration, _) => duration(e)?,
        (Conv::List, Kind::String(s)) => toml::Value::Array(vec![toml::Value::String(s.clone())]),
        (Conv::List, Kind::Array(items)) => toml::Value::Array(
            items
                .iter()
                .map(|i| match &i.kind {
                    Kind::String(s) => Ok(toml::Value::String(s.clone())),
                    _ => Err(wrong(e, "a string or a list of strings")),
                })
                .collect::<Result<_, _>>()?,
        ),
        (Conv::List, _) => return Err(wrong(e, "a string or a list of strings")),
        (Conv::Any, _) => any(&e.value),
    })
}

/// A duration as nats-server's `-t` takes it: a Go duration string. An integer is refused
/// with the reason (nats-server's `-t` refuses it too): an unquoted `2m` is the number
/// 2,000,000, and 2,000,000 seconds is not what anyone means.
fn duration(e: &Entry) -> Result<toml::Value, ConfigError> {
    match &e.value.kind {
        Kind::String(s) => {
            crate::values::parse_duration(s).map_err(|m| value_error(e, m))?;
            Ok(toml::Value::String(s.clone()))
        }
        Kind::Integer(i) => Err(at(
            &e.value.pos,
            format!(
                "`{}` must be a duration string such as \"2m\" or \"30s\", not the number {i} \
                 (unquoted, 2m is the number 2000000; nats-server -t refuses it too)",
                e.key
            ),
        )),
        _ => Err(wrong(e, "a duration string such as \"2m\"")),
    }
}

/// A value the deserializer would refuse without saying where: the key and its line.
fn value_error(e: &Entry, message: String) -> ConfigError {
    at(&e.value.pos, format!("`{}`: {message}", e.key))
}

/// Seconds as a number (`authorization.timeout`, `tls.timeout`): nats-server's floats.
fn seconds(e: &Entry) -> Result<toml::Value, ConfigError> {
    let check = |text: String| crate::values::parse_duration(&text).map_err(|m| value_error(e, m));
    match &e.value.kind {
        Kind::Integer(i) => {
            check(i.to_string())?;
            Ok(toml::Value::Integer(*i))
        }
        Kind::Float(f) => {
            if !(f.is_finite() && *f >= 0.0 && *f <= crate::bounds::MAX_DURATION.as_secs_f64()) {
                return Err(value_error(
                    e,
                    format!("{f} seconds is negative or too long"),
                ));
            }
            Ok(toml::Value::Float(*f))
        }
        Kind::String(s) => Ok(toml::Value::String(s.clone())),
        _ => Err(wrong(e, "a number of seconds")),
    }
}

/// Any value, keys as written.
fn any(v: &Value) -> toml::Value {
    match &v.kind {
        Kind::String(s) | Kind::DateTime(s) => toml::Value::String(s.clone()),
        Kind::Integer(i) => toml::Value::Integer(*i),
        Kind::Float(f) => toml::Value::Float(*f),
        Kind::Bool(b) => toml::Value::Boolean(*b),
        Kind::Array(a) => toml::Value::Array(a.iter().map(any).collect()),
        Kind::Map(m) => toml::Value::Table(
            m.entries()
                .iter()
                .filter(|e| !e.used_as_variable)
                .map(|e| (e.key.clone(), any(&e.value)))
                .collect(),
        ),
    }
}

fn as_map(e: &Entry) -> Result<&Map, ConfigError> {
    match &e.value.kind {
        Kind::Map(m) => Ok(m),
        _ => Err(wrong(e, "a block { ... }")),
    }
}

/// Adds `t` as the table `name` of `out`, joining a table already there.
fn merge_table(out: &mut toml::Table, name: &str, t: toml::Table) {
    match out.get_mut(name) {
        Some(toml::Value::Table(existing)) => existing.extend(t),
        _ => {
            out.insert(name.to_owned(), toml::Value::Table(t));
        }
    }
}

/// `host:port`, `[v6]:port`, `:port` (every interface, as nats-server) or a bare port.
fn host_port(e: &Entry) -> Result<(Option<String>, Option<i64>), ConfigError> {
    let bad = || wrong(e, "host:port, or a port number");
    match &e.value.kind {
        Kind::Integer(p) => Ok((None, Some(*p))),
        Kind::String(s) => {
            let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
            let port: i64 = port.parse().map_err(|_| bad())?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let host = if host.is_empty() { "0.0.0.0" } else { host };
            Ok((Some(host.to_owned()), Some(port)))
        }
        _ => Err(bad()),
    }
}

mod sections;
use sections::top;

#[cfg(test)]
#[path = "natsconf_tests.rs"]
mod tests;
