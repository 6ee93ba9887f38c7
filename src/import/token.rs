//! Special pieces inside expanded Makefile text: globs kept as patterns, values the reader cannot know, and
//! install directories bound later.
//!
//! Expanded text stays a plain `String` (so make's word functions work on it unchanged); these pieces are
//! delimited by private-use characters, which never occur in a Makefile and are not whitespace, so a piece
//! always stays inside one word.

const GLOB_OPEN: char = '\u{E000}';
const GLOB_CLOSE: char = '\u{E001}';
const OPAQUE_OPEN: char = '\u{E002}';
const OPAQUE_CLOSE: char = '\u{E003}';
const SYMBOL_OPEN: char = '\u{E004}';
const SYMBOL_CLOSE: char = '\u{E005}';

/// `$(wildcard PATTERN)` kept as the pattern (relative to make's directory, or absolute).
pub fn glob(pattern: &str) -> String {
    format!("{GLOB_OPEN}{pattern}{GLOB_CLOSE}")
}

/// A value the reader cannot know; `id` indexes the evaluation's list of opaque values.
pub fn opaque(id: usize) -> String {
    format!("{OPAQUE_OPEN}{id}{OPAQUE_CLOSE}")
}

/// A variable whose value the installer chooses (`$(INSTALL_DIR)`).
pub fn symbol(name: &str) -> String {
    format!("{SYMBOL_OPEN}{name}{SYMBOL_CLOSE}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Glob(&'a str),
    Opaque(usize),
    Symbol(&'a str),
}

/// The pieces of `text`, in order. An unterminated marker (which expansion never produces) reads as text.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some((start, open)) = rest
            .char_indices()
            .find(|(_, c)| [GLOB_OPEN, OPAQUE_OPEN, SYMBOL_OPEN].contains(c))
        else {
            out.push(Piece::Text(rest));
            break;
        };
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let close = match open {
            GLOB_OPEN => GLOB_CLOSE,
            OPAQUE_OPEN => OPAQUE_CLOSE,
            _ => SYMBOL_CLOSE,
        };
        let inner_start = start + open.len_utf8();
        let Some(len) = rest[inner_start..].find(close) else {
            out.push(Piece::Text(&rest[start..]));
            break;
        };
        let inner = &rest[inner_start..inner_start + len];
        out.push(match open {
            GLOB_OPEN => Piece::Glob(inner),
            OPAQUE_OPEN => match inner.parse() {
                Ok(id) => Piece::Opaque(id),
                Err(_) => Piece::Text(inner),
            },
            _ => Piece::Symbol(inner),
        });
        rest = &rest[inner_start + len + close.len_utf8()..];
    }
    out
}

/// The text with glob markers removed (their pattern kept); opaque values and symbols stay marked.
pub fn unglob(text: &str) -> String {
    text.chars()
        .filter(|c| *c != GLOB_OPEN && *c != GLOB_CLOSE)
        .collect()
}

/// Whether the text holds a glob anywhere.
pub fn has_glob(text: &str) -> bool {
    text.contains(GLOB_OPEN)
}

/// The ids of the opaque values in `text`.
pub fn opaque_ids(text: &str) -> Vec<usize> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Opaque(id) => Some(id),
            _ => None,
        })
        .collect()
}

/// Whether `text` is entirely known: no opaque value and no symbol.
pub fn is_known(text: &str) -> bool {
    !text.contains(OPAQUE_OPEN) && !text.contains(SYMBOL_OPEN)
}

/// Whether the word begins with an opaque value or a symbol (so it is no option nor file name import can read).
pub fn starts_unknown(word: &str) -> bool {
    matches!(
        pieces(word).first(),
        Some(Piece::Opaque(_) | Piece::Symbol(_))
    )
}

/// When the word is one glob and nothing else, its pattern.
pub fn as_glob(word: &str) -> Option<&str> {
    match pieces(word).as_slice() {
        [Piece::Glob(pattern)] => Some(pattern),
        _ => None,
    }
}

/// Make's words: split on whitespace.
pub fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_round_trip_each_kind_inside_one_word() {
        let word = format!("-I{}/include{}", opaque(3), glob("x/*.c"));
        assert_eq!(
            pieces(&word),
            vec![
                Piece::Text("-I"),
                Piece::Opaque(3),
                Piece::Text("/include"),
                Piece::Glob("x/*.c")
            ]
        );
        assert_eq!(words(&format!("a {word} b")).len(), 3);
        assert_eq!(opaque_ids(&word), vec![3]);
        assert!(!is_known(&word));
        assert_eq!(as_glob(&glob("*.c")), Some("*.c"));
        assert_eq!(as_glob(&format!("{}x", glob("*.c"))), None);
        assert_eq!(unglob(&glob("a/*.c")), "a/*.c");
        assert_eq!(
            pieces(&format!("{}/sub", symbol("INSTALL_DIR"))),
            vec![Piece::Symbol("INSTALL_DIR"), Piece::Text("/sub")]
        );
    }
}
