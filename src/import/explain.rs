//! Turning what the reader could not know (opaque values, unread statements) into `Untranslated` entries a
//! person can act on: the file relative to the tree root, the line, the construct as written, and why.

use std::path::{Path, PathBuf};

use super::eval::{Evaluation, Location, Unread};
use super::model::Untranslated;
use super::{relpath, token};

pub struct Explainer {
    root: PathBuf,
    pub entries: Vec<Untranslated>,
}

impl Explainer {
    pub fn new(root: &Path) -> Explainer {
        Explainer {
            root: root.to_path_buf(),
            entries: Vec::new(),
        }
    }

    /// Records one entry (once per file, line and construct).
    pub fn at(&mut self, at: &Location, construct: &str, why: &str) {
        let file = relpath::relative(&at.file, &self.root);
        let entry = Untranslated {
            file,
            line: at.line,
            construct: construct.trim().to_string(),
            why: why.to_string(),
        };
        if !self
            .entries
            .iter()
            .any(|e| e.file == entry.file && e.line == entry.line && e.construct == entry.construct)
        {
            self.entries.push(entry);
        }
    }

    pub fn unread(&mut self, unread: &Unread) {
        self.at(&unread.at, &unread.construct, &unread.why);
    }

    /// Words the translation needed but that hold values known only when make runs, grouped by the construct
    /// that makes them unknown; `role` says what the words were for ("an include dir").
    pub fn words(&mut self, eval: &Evaluation, words: &[String], role: &str) {
        let mut groups: Vec<(usize, Vec<String>)> = Vec::new();
        for word in words {
            let Some(&id) = token::opaque_ids(word).first() else {
                continue;
            };
            let rendered = render(eval, word);
            match groups.iter_mut().find(|(g, _)| *g == id) {
                Some((_, list)) => list.push(rendered),
                None => groups.push((id, vec![rendered])),
            }
        }
        for (id, list) in groups {
            let opaque = &eval.opaques[id];
            let why = format!(
                "{role} made from `{}`, which {}",
                opaque.construct, opaque.why
            );
            self.at(&opaque.at.clone(), &list.join(" "), &why);
        }
    }
}

/// A word as the Makefile would spell it: globs as their pattern, opaque values as the construct (or the
/// variable) they stand for, installer variables as `$(NAME)`.
pub fn render(eval: &Evaluation, word: &str) -> String {
    token::pieces(word)
        .into_iter()
        .map(|piece| match piece {
            token::Piece::Text(t) | token::Piece::Glob(t) => t.to_string(),
            token::Piece::Opaque(id) => match &eval.opaques[id].variable {
                Some(name) => format!("$({name})"),
                None => eval.opaques[id].construct.clone(),
            },
            token::Piece::Symbol(name) => format!("$({name})"),
        })
        .collect()
}
