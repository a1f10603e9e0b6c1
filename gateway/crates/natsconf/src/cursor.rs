//! The text, one character at a time, with its line and column.
use std::path::Path;
use std::sync::Arc;

use crate::value::{Error, Pos};

/// A position in the text that can be returned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    offset: usize,
    line: u32,
    column: u32,
}

/// Reads `text` forward; never panics, whatever the text.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    file: Option<Arc<Path>>,
    at: Mark,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str, file: Option<Arc<Path>>) -> Self {
        Cursor {
            text,
            file,
            at: Mark {
                offset: 0,
                line: 1,
                column: 1,
            },
        }
    }

    /// The next character, not consumed.
    pub(crate) fn peek(&self) -> Option<char> {
        self.text.get(self.at.offset..)?.chars().next()
    }

    /// The character after the next one, not consumed.
    pub(crate) fn peek2(&self) -> Option<char> {
        let mut rest = self.text.get(self.at.offset..)?.chars();
        rest.next();
        rest.next()
    }

    /// Consumes and returns the next character.
    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at.offset += c.len_utf8();
        if c == '\n' {
            self.at.line = self.at.line.saturating_add(1);
            self.at.column = 1;
        } else {
            self.at.column = self.at.column.saturating_add(1);
        }
        Some(c)
    }

    /// Consumes the next character if it is `c`.
    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Byte offset of the cursor (tests).
    #[cfg(test)]
    pub(crate) fn mark_offset(&self) -> usize {
        self.at.offset
    }

    pub(crate) fn mark(&self) -> Mark {
        self.at
    }

    pub(crate) fn reset(&mut self, mark: Mark) {
        self.at = mark;
    }

    /// The text from `mark` to here.
    pub(crate) fn since(&self, mark: Mark) -> &'a str {
        self.text.get(mark.offset..self.at.offset).unwrap_or("")
    }

    /// Where `mark` is.
    pub(crate) fn pos_of(&self, mark: Mark) -> Pos {
        Pos {
            file: self.file.clone(),
            line: mark.line,
            column: mark.column,
        }
    }

    /// Where the cursor is.
    pub(crate) fn pos(&self) -> Pos {
        self.pos_of(self.at)
    }

    /// An error at the cursor.
    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error {
            pos: self.pos(),
            message: message.into(),
        }
    }

    /// An error at `mark`.
    pub(crate) fn error_at(&self, mark: Mark, message: impl Into<String>) -> Error {
        Error {
            pos: self.pos_of(mark),
            message: message.into(),
        }
    }

    /// Skips spaces and tabs.
    pub(crate) fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// Skips any white space, new lines included.
    pub(crate) fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// At `#` or `//`: a comment starts here.
    pub(crate) fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek2() == Some('/'),
            _ => false,
        }
    }

    /// Skips a comment up to (not including) the end of its line.
    pub(crate) fn skip_comment(&mut self) {
        while !matches!(self.peek(), None | Some('\n' | '\r')) {
            self.bump();
        }
    }

    /// Skips white space, new lines and comments.
    pub(crate) fn skip_space_and_comments(&mut self) {
        loop {
            self.skip_space();
            if self.at_comment() {
                self.skip_comment();
            } else {
                return;
            }
        }
    }

    /// The file being read.
    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}
