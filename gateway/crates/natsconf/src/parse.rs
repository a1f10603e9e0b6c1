//! The grammar: a document is entries (`key [=|:] value`) ended by a new line, `;` or `,`;
//! the top level may also be wrapped in `{ }`; values are scalars, `[arrays]`, `{maps}` and
//! `( blocks )` (raw text up to a `)` alone on a line). `include path` brings in another
//! file's entries; `$NAME` is resolved against the enclosing maps, then the environment.
use std::path::Path;
use std::sync::Arc;

use crate::cursor::Cursor;
use crate::scalar::{self, Scalar};
use crate::source::Source;
use crate::value::{Entry, Error, Kind, Map, Value, join};

/// Deepest nesting of maps and arrays: far past any real config, and keeps a hostile one from
/// exhausting the stack.
const MAX_DEPTH: usize = 64;
/// Deepest chain of includes (a file including itself hits it).
const MAX_INCLUDES: usize = 16;
/// Most includes in one document, all levels together (two includes per file, 16 deep,
/// would otherwise read 65536 files).
const MAX_INCLUDED_FILES: usize = 256;

/// State shared by a document and the documents it reads (includes, environment values).
#[derive(Default)]
pub(crate) struct Shared {
    /// Environment variables being resolved, to refuse `A=$B`, `B=$A`.
    env_refs: Vec<String>,
    /// Include chain length.
    includes: usize,
    /// Files included so far.
    included_files: usize,
}

/// Where entries are: the top level, the top level's `{ }`, or a map value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    Block,
    Map,
}

struct Parser<'t, 'x> {
    cur: Cursor<'t>,
    source: &'x dyn Source,
    shared: &'x mut Shared,
    /// The maps being read, outermost first: `$NAME` looks in them, innermost first.
    scopes: Vec<Map>,
    depth: usize,
}

/// Reads one document.
pub(crate) fn document(
    text: &str,
    file: Option<Arc<Path>>,
    source: &dyn Source,
    shared: &mut Shared,
) -> Result<Map, Error> {
    let mut p = Parser {
        cur: Cursor::new(text, file),
        source,
        shared,
        scopes: vec![Map::default()],
        depth: 0,
    };
    p.top()?;
    Ok(p.scopes.pop().unwrap_or_default())
}

impl Parser<'_, '_> {
    fn top(&mut self) -> Result<(), Error> {
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                None => return Ok(()),
                Some('{') => {
                    self.cur.bump();
                    self.block()?;
                }
                Some(_) => self.entry(Ctx::Top)?,
            }
        }
    }

    /// The top level's `{ ... }` (JSON-like files): its entries belong to the top level.
    fn block(&mut self) -> Result<(), Error> {
        self.enter()?;
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                None => {
                    return Err(self
                        .cur
                        .error("unclosed '{' (the end of the text came first)"));
                }
                Some('}') => {
                    self.cur.bump();
                    self.depth -= 1;
                    return Ok(());
                }
                Some('{') => {
                    self.cur.bump();
                    self.block()?;
                }
                Some(_) => self.entry(Ctx::Block)?,
            }
        }
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self
                .cur
                .error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// `key [=|:] value` and what ends it, or `include path`.
    fn entry(&mut self, ctx: Ctx) -> Result<(), Error> {
        let key_mark = self.cur.mark();
        let (key, bare) = self.key(ctx)?;
        if bare
            && key.eq_ignore_ascii_case("include")
            && self.cur.peek().is_some_and(char::is_whitespace)
        {
            self.include()?;
        } else {
            self.cur.skip_space();
            if self.cur.peek().is_none() {
                return Err(self
                    .cur
                    .error_at(key_mark, format!("key {key:?} has no value")));
            }
            if matches!(self.cur.peek(), Some('=' | ':')) {
                self.cur.bump();
            }
            let value = self.value()?;
            let entry = Entry {
                key,
                key_pos: self.cur.pos_of(key_mark),
                value,
                used_as_variable: false,
            };
            self.scope().insert(entry);
        }
        self.value_end(ctx)
    }

    fn scope(&mut self) -> &mut Map {
        if self.scopes.is_empty() {
            self.scopes.push(Map::default());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    /// A key: `"quoted"`, `'quoted'`, or a bare word up to white space, `=` or `:`. Returns
    /// whether it was bare (only a bare `include` is the keyword).
    fn key(&mut self, ctx: Ctx) -> Result<(String, bool), Error> {
        let open = self.cur.mark();
        match self.cur.peek() {
            Some(q @ ('"' | '\'')) => {
                self.cur.bump();
                let start = self.cur.mark();
                loop {
                    match self.cur.peek() {
                        Some(c) if c == q => break,
                        Some(_) => {
                            self.cur.bump();
                        }
                        None => return Err(self.cur.error_at(open, "unclosed quoted key")),
                    }
                }
                let key = self.cur.since(start).to_owned();
                self.cur.bump();
                Ok((key, false))
            }
            Some(c @ ('=' | ':')) => Err(self.cur.error(format!("unexpected key separator {c:?}"))),
            Some(']') if ctx == Ctx::Map => {
                Err(self.cur.error("unexpected ']' where a key should be"))
            }
            _ => {
                while self
                    .cur
                    .peek()
                    .is_some_and(|c| !c.is_whitespace() && c != '=' && c != ':')
                {
                    self.cur.bump();
                }
                Ok((self.cur.since(open).to_owned(), true))
            }
        }
    }

    /// After a value: blanks, a comment, then the end of the line, `;` or `,` (or the `}` of
    /// the enclosing map or block, left for it to read).
    fn value_end(&mut self, ctx: Ctx) -> Result<(), Error> {
        self.cur.skip_blanks();
        if self.cur.at_comment() {
            self.cur.skip_comment();
            return Ok(());
        }
        match self.cur.peek() {
            None => Ok(()),
            Some('\n' | '\r' | ';' | ',') => {
                self.cur.bump();
                Ok(())
            }
            // nats-server lets a stray `}` end a top-level value.
            Some('}') if ctx == Ctx::Top => {
                self.cur.bump();
                Ok(())
            }
            Some('}') => Ok(()),
            Some(c) => Err(self.cur.error(format!(
                "a value must end with a new line, ';', ',' or a comment, not {c:?}"
            ))),
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        self.cur.skip_blanks();
        let start = self.cur.mark();
        let pos = self.cur.pos();
        let kind = match self.cur.peek() {
            None => {
                return Err(self
                    .cur
                    .error("expected a value, found the end of the text"));
            }
            Some('\n' | '\r') => return Err(self.cur.error("expected a value, found a new line")),
            Some('[') => {
                self.cur.bump();
                Kind::Array(self.array()?)
            }
            Some('{') => {
                self.cur.bump();
                Kind::Map(self.map()?)
            }
            Some('\'') => {
                self.cur.bump();
                Kind::String(scalar::raw_string(&mut self.cur, start)?)
            }
            Some('"') => {
                self.cur.bump();
                Kind::String(scalar::quoted_string(&mut self.cur, start)?)
            }
            Some('(') => {
                self.cur.bump();
                Kind::String(self.paren_block()?)
            }
            Some('.') => return Err(self.cur.error("a number must start with a digit, not '.'")),
            Some(c) => {
                let s = if c.is_ascii_digit() {
                    scalar::number_or_word(&mut self.cur)?
                } else if c == '-' {
                    scalar::negative(&mut self.cur)?
                } else {
                    scalar::word(&mut self.cur)?
                };
                match s {
                    Scalar::Value(k) => k,
                    Scalar::Variable(name) => return self.variable(&name, pos),
                }
            }
        };
        Ok(Value { kind, pos })
    }

    /// `[ v, v \n v ]` (the cursor is past `[`).
    fn array(&mut self) -> Result<Vec<Value>, Error> {
        self.enter()?;
        let mut items = Vec::new();
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                Some(',') => return Err(self.cur.error("unexpected ',' in an array")),
                None => {
                    return Err(self
                        .cur
                        .error("unclosed '[' (the end of the text came first)"));
                }
                Some(_) => {}
            }
            items.push(self.value()?);
            self.cur.skip_blanks();
            if self.cur.at_comment() {
                self.cur.skip_comment();
            }
            match self.cur.peek() {
                Some(',' | '\n' | '\r') => {
                    self.cur.bump();
                }
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                None => {
                    return Err(self
                        .cur
                        .error("unclosed '[' (the end of the text came first)"));
                }
                Some(c) => {
                    return Err(self.cur.error(format!(
                        "array values are separated by ',' or new lines and end with ']', not {c:?}"
                    )));
                }
            }
        }
        self.depth -= 1;
        Ok(items)
    }

    /// `{ key: value ... }` (the cursor is past `{`).
    fn map(&mut self) -> Result<Map, Error> {
        self.enter()?;
        self.scopes.push(Map::default());
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                Some('}') => {
                    self.cur.bump();
                    break;
                }
                None => {
                    return Err(self
                        .cur
                        .error("unclosed '{' (the end of the text came first)"));
                }
                Some(_) => self.entry(Ctx::Map)?,
            }
        }
        self.depth -= 1;
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// `( text )`: everything up to a `)` alone on its line (the cursor is past `(`). The
    /// text keeps its last new line, as nats-server's does.
    fn paren_block(&mut self) -> Result<String, Error> {
        let open = self.cur.mark();
        let start = self.cur.mark();
        let mut prev = '(';
        loop {
            let before = self.cur.mark();
            match self.cur.bump() {
                None => {
                    return Err(self
                        .cur
                        .error_at(open, "unclosed '(' block (end it with ')' alone on a line)"));
                }
                Some(')') if prev == '\n' && matches!(self.cur.peek(), None | Some('\n')) => {
                    let end = self.cur.mark();
                    self.cur.reset(before);
                    let text = self.cur.since(start).to_owned();
                    self.cur.reset(end);
                    return Ok(text);
                }
                Some(c) => prev = c,
            }
        }
    }

    /// `include path` (the cursor is past `include`): the file's entries join this map.
    fn include(&mut self) -> Result<(), Error> {
        self.cur.skip_blanks();
        let at = self.cur.mark();
        let path = match self.cur.peek() {
            Some(q @ ('"' | '\'')) => {
                self.cur.bump();
                let start = self.cur.mark();
                while self.cur.peek().is_some_and(|c| c != q) {
                    self.cur.bump();
                }
                if self.cur.peek().is_none() {
                    return Err(self.cur.error_at(at, "unclosed quoted include path"));
                }
                let p = self.cur.since(start).to_owned();
                self.cur.bump();
                p
            }
            None | Some('\n' | '\r') => return Err(self.cur.error("include needs a file name")),
            Some(c) if matches!(c, '[' | '{' | '(' | '-' | '\\') || c.is_ascii_digit() => {
                return Err(self
                    .cur
                    .error(format!("include needs a file name, not {c:?}")));
            }
            Some(_) => {
                let start = self.cur.mark();
                while !matches!(
                    self.cur.peek(),
                    None | Some('\n' | '\r' | ';' | '}' | ' ' | '\t' | '\'')
                ) {
                    self.cur.bump();
                }
                let p = self.cur.since(start).to_owned();
                self.cur.eat('\'');
                p
            }
        };
        if self.shared.includes >= MAX_INCLUDES {
            return Err(self.cur.error_at(
                at,
                format!("includes nested deeper than {MAX_INCLUDES} (does a file include itself?)"),
            ));
        }
        if self.shared.included_files >= MAX_INCLUDED_FILES {
            return Err(self.cur.error_at(
                at,
                format!("more than {MAX_INCLUDED_FILES} included files in one configuration"),
            ));
        }
        self.shared.included_files += 1;
        let full = join(self.cur.file().and_then(Path::parent), &path);
        let text = self.source.read(&full).map_err(|e| {
            self.cur.error_at(
                at,
                format!("cannot read included file {}: {e}", full.display()),
            )
        })?;
        self.shared.includes += 1;
        let included = document(
            &text,
            Some(Arc::from(full.as_path())),
            self.source,
            self.shared,
        );
        self.shared.includes -= 1;
        for entry in included?.entries() {
            self.scope().insert(entry.clone());
        }
        Ok(())
    }

    /// `$name`: the nearest enclosing map's `name` so far, else the environment.
    fn variable(&mut self, name: &str, pos: crate::value::Pos) -> Result<Value, Error> {
        // nats-server reads an unquoted `$2a$...` as a bcrypt hash, not a variable.
        if name.starts_with("2a$") {
            return Ok(Value {
                kind: Kind::String(format!("${name}")),
                pos,
            });
        }
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.get_mut(name) {
                entry.used_as_variable = true;
                return Ok(Value {
                    kind: entry.value.kind.clone(),
                    pos,
                });
            }
        }
        let err = |message: String| Error {
            pos: pos.clone(),
            message,
        };
        if self.shared.env_refs.iter().any(|r| r == name) {
            return Err(err(format!("variable reference cycle for {name:?}")));
        }
        let Some(text) = self.source.env(name) else {
            return Err(err(format!(
                "variable {name:?} is not defined (neither above in the file nor in the environment)"
            )));
        };
        if text.is_empty() {
            return Ok(Value {
                kind: Kind::String(String::new()),
                pos,
            });
        }
        // The environment's text is read as a value, so `4222` is a number.
        self.shared.env_refs.push(name.to_owned());
        let parsed = document(&format!("pk={text}"), None, self.source, self.shared);
        self.shared.env_refs.pop();
        let map = parsed.map_err(|e| {
            err(format!(
                "environment variable {name:?} does not read as a value: {}",
                e.message
            ))
        })?;
        match map.get("pk") {
            Some(e) if map.len() == 1 => Ok(Value {
                kind: e.value.kind.clone(),
                pos,
            }),
            _ => Err(err(format!(
                "environment variable {name:?} does not read as one value"
            ))),
        }
    }
}
