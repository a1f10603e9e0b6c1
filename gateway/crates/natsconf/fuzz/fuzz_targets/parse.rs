//! Any text: the parser returns a tree or an error with a position inside the text, never
//! panics, never recurses without bound. Includes and variables come from a fake source that
//! serves the input itself as every file (so include chains and self-includes are exercised)
//! and a few environment variables, some of them cyclic.
#![no_main]

use std::io;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use twig_natsconf::{Kind, Map, Source, parse_with};

struct Echo<'a>(&'a str);

impl Source for Echo<'_> {
    fn read(&self, path: &Path) -> io::Result<String> {
        if path.to_string_lossy().contains("missing") {
            return Err(io::Error::new(io::ErrorKind::NotFound, "missing"));
        }
        Ok(self.0.to_owned())
    }

    fn env(&self, name: &str) -> Option<String> {
        match name {
            "A" => Some("$B".into()),
            "B" => Some("$A".into()),
            "N" => Some("4222".into()),
            "S" => Some("\"a b\"".into()),
            "M" => Some("{ x: [1, 2 ] }".into()),
            "E" => Some(String::new()),
            _ => None,
        }
    }
}

/// Walks the tree, so every node is reachable and sane.
fn walk(m: &Map, lines: u32) {
    for e in m.entries() {
        assert!(e.key_pos.line >= 1);
        if e.key_pos.file.is_none() {
            assert!(e.key_pos.line <= lines, "key line {} past the text", e.key_pos.line);
        }
        value(&e.value.kind, lines);
    }
}

fn value(k: &Kind, lines: u32) {
    match k {
        Kind::Map(m) => walk(m, lines),
        Kind::Array(a) => a.iter().for_each(|v| value(&v.kind, lines)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = u32::try_from(text.matches('\n').count() + 1).unwrap_or(u32::MAX);
    match parse_with(text, None, &Echo(text)) {
        Ok(m) => walk(&m, lines),
        Err(e) => assert!(e.pos.line >= 1 && e.pos.column >= 1),
    }
});
