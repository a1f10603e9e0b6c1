//! The `-ERR` texts of permission violations, exactly as nats-server writes them
//! (`client.go pubPermissionViolation`, `subPermissionViolation`, `replySubjectViolation`):
//! subjects quoted as Go's `%q` does. The connection stays open after each.

use std::fmt::Write;

/// `Permissions Violation for Publish to "<subject>"`.
pub fn publish(subject: &[u8]) -> String {
    format!("Permissions Violation for Publish to {}", go_quote(subject))
}

/// `Permissions Violation for Subscription to "<subject>"`, with ` using queue "<queue>"` for
/// a queue subscription.
pub fn subscription(subject: &[u8], queue: Option<&[u8]>) -> String {
    let mut s = format!(
        "Permissions Violation for Subscription to {}",
        go_quote(subject)
    );
    if let Some(q) = queue {
        let _ = write!(s, " using queue {}", go_quote(q));
    }
    s
}

/// `Permissions Violation for Publish with Reply of "<reply>"`.
pub fn reply(reply: &[u8]) -> String {
    format!(
        "Permissions Violation for Publish with Reply of {}",
        go_quote(reply)
    )
}

/// Go's `strconv.Quote` of bytes: `"`, backslash escapes for `\a\b\f\n\r\t\v`, `\\` and `\"`,
/// `\xNN` for other control bytes and bytes that are not UTF-8, `\uNNNN` for non-printing
/// characters. (Go asks Unicode's tables what prints; here every non-ASCII character that is
/// not a control or a format character counts as printing, which covers what subjects hold.)
pub fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{07}' => out.push_str("\\a"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{0b}' => out.push_str("\\v"),
                c if c < ' ' || c == '\u{7f}' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() || is_format(c) => {
                    if (c as u32) < 0x10000 {
                        let _ = write!(out, "\\u{:04x}", c as u32);
                    } else {
                        let _ = write!(out, "\\U{:08x}", c as u32);
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// The Unicode format characters (category Cf) that commonly occur; Go prints them escaped.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00ad | 0x0600..=0x0605 | 0x061c | 0x06dd | 0x070f | 0x180e | 0x200b..=0x200f
        | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb)
}
