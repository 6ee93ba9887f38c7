//! Make's text and file functions (`$(wildcard)`, `$(patsubst)`, `$(filter-out)`, `$(abspath)`, `$(foreach)`,
//! the one `$(shell find … -type d)` form gala-gopher uses, …), evaluated over words that may hold globs and
//! opaque values. A function import does not evaluate gives an opaque value naming it.

use std::path::Path;

use super::eval::{DirTree, Evaluation, Location};
use super::{percent, relpath, token};

/// Every function name GNU make knows; `$(name args)` with one of these is a call, not a variable.
pub const FUNCTIONS: &[&str] = &[
    "subst",
    "patsubst",
    "strip",
    "findstring",
    "filter",
    "filter-out",
    "sort",
    "word",
    "wordlist",
    "words",
    "firstword",
    "lastword",
    "dir",
    "notdir",
    "suffix",
    "basename",
    "addsuffix",
    "addprefix",
    "join",
    "wildcard",
    "realpath",
    "abspath",
    "error",
    "warning",
    "info",
    "shell",
    "origin",
    "flavor",
    "foreach",
    "if",
    "or",
    "and",
    "call",
    "eval",
    "file",
    "value",
    "let",
    "intcmp",
    "guile",
];

/// Splits function arguments at commas outside parentheses and braces, into at most `max` parts.
pub fn split_arguments(args: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in args.char_indices() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 && parts.len() + 1 < max => {
                parts.push(&args[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&args[start..]);
    parts
}

impl Evaluation {
    pub(super) fn call(&mut self, name: &str, args: &str, at: &Location) -> String {
        let construct = format!("$({name} {args})");
        match name {
            "foreach" => return self.foreach(args, at, &construct),
            "if" | "or" | "and" => return self.conditional_function(name, args, at, &construct),
            "shell" => return self.shell(args, at),
            _ => {}
        }
        let arity = match name {
            "subst" | "patsubst" | "wordlist" => 3,
            "findstring" | "filter" | "filter-out" | "word" | "addsuffix" | "addprefix"
            | "join" => 2,
            _ => 1,
        };
        let raw = split_arguments(args, arity);
        let a: Vec<String> = raw.iter().map(|r| self.expand(r, at)).collect();
        let arg = |i: usize| a.get(i).map(String::as_str).unwrap_or_default();
        let words = |i: usize| token::words(arg(i));
        let per_word = |f: &dyn Fn(&str) -> String, i: usize| -> String {
            words(i).iter().map(|w| f(w)).collect::<Vec<_>>().join(" ")
        };
        match name {
            "subst" if !arg(0).is_empty() => arg(2).replace(arg(0), arg(1)),
            "subst" => arg(2).to_string(),
            "patsubst" => {
                let (pattern, replacement) = (arg(0).trim(), arg(1).trim());
                per_word(&|w| percent::patsubst_word(pattern, replacement, w), 2)
            }
            "strip" => words(0).join(" "),
            "findstring" if arg(1).contains(arg(0)) => arg(0).to_string(),
            "findstring" => String::new(),
            "filter" | "filter-out" => {
                let patterns: Vec<String> = words(0).into_iter().map(String::from).collect();
                let text: Vec<String> = words(1).into_iter().map(String::from).collect();
                self.filter(name == "filter-out", &patterns, &text, at, &construct)
            }
            "sort" => {
                let mut w = words(0);
                w.sort();
                w.dedup();
                w.join(" ")
            }
            "words" => words(0).len().to_string(),
            "firstword" => words(0).first().copied().unwrap_or_default().to_string(),
            "lastword" => words(0).last().copied().unwrap_or_default().to_string(),
            "word" | "wordlist" => {
                let numbers: Option<Vec<usize>> =
                    (0..arity - 1).map(|i| arg(i).trim().parse().ok()).collect();
                let list = words(arity - 1);
                match numbers.as_deref() {
                    Some([n]) if *n > 0 => list.get(n - 1).copied().unwrap_or_default().into(),
                    Some([s, e]) if *s > 0 => list
                        .iter()
                        .skip(s - 1)
                        .take((e + 1).saturating_sub(*s))
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" "),
                    _ => self.opaque(
                        at,
                        &construct,
                        "has a word index that is not a number",
                        None,
                    ),
                }
            }
            "dir" | "notdir" | "suffix" | "basename" => {
                if words(0).iter().any(|w| token::has_glob(w)) {
                    return self.opaque(
                        at,
                        &construct,
                        "takes apart file names that $(wildcard) finds when make runs",
                        None,
                    );
                }
                per_word(&|w| file_name_part(name, w), 0)
            }
            "addsuffix" | "addprefix" => {
                if words(1).iter().any(|w| token::has_glob(w)) {
                    return self.opaque(
                        at,
                        &construct,
                        "adds to file names that $(wildcard) finds when make runs",
                        None,
                    );
                }
                let affix = arg(0).trim();
                per_word(
                    &|w| {
                        if name == "addsuffix" {
                            format!("{w}{affix}")
                        } else {
                            format!("{affix}{w}")
                        }
                    },
                    1,
                )
            }
            "join" => {
                let (x, y) = (words(0), words(1));
                (0..x.len().max(y.len()))
                    .map(|i| {
                        format!(
                            "{}{}",
                            x.get(i).copied().unwrap_or_default(),
                            y.get(i).copied().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            "wildcard" => {
                let mut out = Vec::new();
                for word in words(0) {
                    if token::is_known(word) {
                        out.push(token::glob(&token::unglob(word)));
                    } else {
                        out.push(self.opaque(
                            at,
                            &construct,
                            "looks for files under a directory known only when make runs",
                            None,
                        ));
                    }
                }
                out.join(" ")
            }
            "abspath" => {
                let cwd = self.cwd.clone();
                per_word(&|w| absolute(&cwd, w), 0)
            }
            "realpath" => self.opaque(
                at,
                &construct,
                "resolves symbolic links on the machine that runs make",
                None,
            ),
            "error" => {
                self.unread(at, &construct, "make stops with this error");
                String::new()
            }
            "warning" | "info" => String::new(),
            _ => self.opaque(
                at,
                &construct,
                &format!("uses `{name}`, a make function import does not evaluate"),
                None,
            ),
        }
    }

    /// `$(filter)`/`$(filter-out)`. A glob passes filter-out only when no pattern could remove some of its
    /// files: otherwise the result depends on which files exist, and is opaque.
    fn filter(
        &mut self,
        out: bool,
        patterns: &[String],
        text: &[String],
        at: &Location,
        construct: &str,
    ) -> String {
        let mut kept = Vec::new();
        for word in text {
            let hit = patterns.iter().any(|p| percent::matches(p, word));
            if hit == out {
                continue;
            }
            if let (true, Some(glob)) = (out, token::as_glob(word)) {
                if patterns.iter().any(|p| may_remove_part_of(p, glob)) {
                    kept.push(self.opaque(
                        at,
                        construct,
                        "removes some of the files a $(wildcard) finds, which only make running knows",
                        None,
                    ));
                    continue;
                }
            }
            kept.push(word.clone());
        }
        kept.join(" ")
    }

    fn foreach(&mut self, args: &str, at: &Location, construct: &str) -> String {
        let parts = split_arguments(args, 3);
        let [name, list, body] = parts.as_slice() else {
            return self.opaque(at, construct, "lacks one of its three arguments", None);
        };
        let name = self.expand(name, at).trim().to_string();
        let list = self.expand(list, at);
        let mut out = Vec::new();
        for word in token::words(&list) {
            self.locals.push((name.clone(), word.to_string()));
            let value = self.expand(body, at);
            self.locals.pop();
            if !value.trim().is_empty() {
                out.push(value.trim().to_string());
            }
        }
        out.join(" ")
    }

    fn conditional_function(
        &mut self,
        name: &str,
        args: &str,
        at: &Location,
        construct: &str,
    ) -> String {
        let parts = split_arguments(args, if name == "if" { 3 } else { usize::MAX });
        if name == "if" {
            let condition = self.expand(parts[0], at).trim().to_string();
            // Whether a $(wildcard) finds anything is known only when make runs.
            if !token::is_known(&condition) || token::has_glob(&condition) {
                return self.opaque(
                    at,
                    construct,
                    "tests a condition known only when make runs",
                    None,
                );
            }
            let chosen = if condition.is_empty() { 2 } else { 1 };
            return match parts.get(chosen) {
                Some(text) => self.expand(text, at),
                None => String::new(),
            };
        }
        let mut last = String::new();
        for part in parts {
            last = self.expand(part, at).trim().to_string();
            if !token::is_known(&last) || token::has_glob(&last) {
                return self.opaque(
                    at,
                    construct,
                    "tests a condition known only when make runs",
                    None,
                );
            }
            if (name == "or") != last.is_empty() {
                return last;
            }
        }
        if name == "or" {
            String::new()
        } else {
            last
        }
    }

    /// `$(shell find DIR [-maxdepth N] -type d)` is the glob `DIR/**` (checked against the tree later); any
    /// other command is opaque: import runs no commands.
    fn shell(&mut self, args: &str, at: &Location) -> String {
        let construct = format!("$(shell {})", args.trim());
        let command = self.expand(args, at);
        if token::is_known(&command) && !token::has_glob(&command) {
            if let Some((dir, max_depth)) = find_directories(&command) {
                self.dir_trees.push(DirTree {
                    at: at.clone(),
                    dir: dir.clone(),
                    max_depth,
                });
                return token::glob(&format!("{}/**", dir.trim_end_matches('/')));
            }
        }
        self.opaque(
            at,
            &construct,
            "runs a shell command when make runs (import runs none)",
            None,
        )
    }
}

/// Whether the filter-out pattern `pattern` could remove some, not all, of the files the glob finds. Taking out
/// `*.bpf.c` files is always fine: a `*.bpf.c` never counts as a userland source in probe.toml.
fn may_remove_part_of(pattern: &str, glob: &str) -> bool {
    let pattern = token::unglob(pattern);
    if pattern.ends_with(".bpf.c") {
        return false;
    }
    if pattern.contains('%') {
        // `%.h` cannot take anything out of `*.c`; `%_test.c` could.
        let extension = |s: &str| s.rsplit_once('.').map(|(_, e)| e.to_string());
        return extension(&pattern) == extension(glob) || extension(&pattern).is_none();
    }
    super::glob::matches(glob, &pattern) || pattern.contains(['*', '?', '['])
}

/// `find DIR [-maxdepth N] -type d` → (DIR, N).
fn find_directories(command: &str) -> Option<(String, Option<usize>)> {
    let words = token::words(command);
    let (&"find", rest) = words.split_first()? else {
        return None;
    };
    let (dir, mut options) = rest.split_first()?;
    if dir.starts_with('-') {
        return None;
    }
    let mut max_depth = None;
    let mut directories = false;
    while let Some((option, rest)) = options.split_first() {
        let (value, rest) = rest.split_first()?;
        match (*option, *value) {
            ("-maxdepth", n) => max_depth = Some(n.parse().ok()?),
            ("-type", "d") => directories = true,
            _ => return None,
        }
        options = rest;
    }
    directories.then(|| (dir.to_string(), max_depth))
}

fn file_name_part(function: &str, word: &str) -> String {
    let (dir, file) = match word.rfind('/') {
        Some(at) => (&word[..=at], &word[at + 1..]),
        None => ("", word),
    };
    let dot = file.rfind('.');
    match function {
        "dir" if dir.is_empty() => "./".to_string(),
        "dir" => dir.to_string(),
        "notdir" => file.to_string(),
        "suffix" => dot.map(|d| file[d..].to_string()).unwrap_or_default(),
        _ => match dot {
            Some(d) => format!("{dir}{}", &file[..d]),
            None => word.to_string(),
        },
    }
}

/// `$(abspath)` of one word: lexical, from make's directory; a glob's pattern is made absolute the same way.
fn absolute(cwd: &Path, word: &str) -> String {
    if let Some(glob) = token::as_glob(word) {
        return token::glob(&relpath::text(&relpath::normalize(&cwd.join(glob))));
    }
    if !token::is_known(word) || token::has_glob(word) {
        return word.to_string();
    }
    relpath::text(&relpath::normalize(&cwd.join(word)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn expand(definitions: &str, text: &str) -> (Evaluation, String) {
        let mut e = Evaluation::new(Path::new("/w/p"));
        e.read_text(Path::new("/w/p/Makefile"), "Makefile", definitions);
        let at = Location {
            file: "/w/p/Makefile".into(),
            line: 99,
        };
        let value = e.expand(text, &at);
        (e, value)
    }

    #[test]
    fn word_functions() {
        let (_, v) = expand("L = b a c a\n", "$(sort $(L))|$(words $(L))|$(word 2,$(L))|$(firstword $(L))|$(lastword $(L))|$(strip  x   y )|$(subst a,o,$(L))|$(findstring a,xax)");
        assert_eq!(v, "a b c|4|a|b|a|x y|b o c o|a");
        let (_, v) = expand("", "$(dir src/mk/var.mk x)|$(notdir a/b.c)|$(basename a/b.c)|$(suffix a/b.c)|$(addprefix -I,a b)|$(addsuffix .o,a)|$(join a b,1 2)");
        assert_eq!(v, "src/mk/ ./|b.c|a/b|.c|-Ia -Ib|a.o|a1 b2");
        let (_, v) = expand(
            "",
            "$(abspath ../mk/ x/./y)|$(if ,yes,no)|$(or ,b)|$(and a,b)",
        );
        assert_eq!(v, "/w/mk /w/p/x/y|no|b|b");
        let (e, v) = expand("", "$(if $(wildcard /sys/kernel/btf/vmlinux),ON,OFF)");
        assert!(e.opaques[token::opaque_ids(&v)[0]]
            .why
            .contains("condition"));
    }

    #[test]
    fn globs_flow_through_patsubst_filter_and_foreach() {
        let (_, v) = expand(
            "BPF_C := $(wildcard bpf/*.bpf.c)\nSRC := $(filter-out $(BPF_C), $(wildcard *.c))\n",
            "$(patsubst %.bpf.c, %.skel.h, $(BPF_C))|$(SRC)|$(filter %.c,$(BPF_C) x.h)",
        );
        assert_eq!(
            v,
            format!(
                "{}|{}|{}",
                token::glob("bpf/*.skel.h"),
                token::glob("*.c"),
                token::glob("bpf/*.bpf.c")
            )
        );
        let (e, v) = expand(
            "D = $(shell find ./protocol -maxdepth 3 -type d)\n",
            "$(foreach dir, $(D), $(wildcard $(dir)/*.c))",
        );
        assert_eq!(v, token::glob("./protocol/**/*.c"));
        assert_eq!(e.dir_trees[0].max_depth, Some(3));
    }

    #[test]
    fn what_cannot_be_known_is_opaque_and_says_why() {
        let (e, v) = expand(
            "V = $(shell rpm -q libbpf)\nS := $(filter-out x.c, $(wildcard *.c))\n",
            "-DV=$(V) $(S) $(call f,1) $(realpath /x)",
        );
        let ids = token::opaque_ids(&v);
        assert_eq!(ids.len(), 4, "{v}");
        assert!(e.opaques[ids[0]].construct.contains("rpm -q libbpf"));
        assert!(e.opaques[ids[1]].why.contains("removes some"));
        assert!(e.opaques[ids[2]].why.contains("`call`"));
        assert!(e.opaques[ids[3]].why.contains("symbolic links"));
        // Expanding the same construct again reuses its opaque value.
        let (mut e, _) = expand("V = $(shell true)\n", "");
        let at = Location {
            file: "/w/p/Makefile".into(),
            line: 5,
        };
        let a = e.expand("$(V)", &at);
        let b = e.expand("$(V)", &at);
        assert_eq!(a, b);
    }

    #[test]
    fn find_forms() {
        assert_eq!(
            find_directories("find ./protocol -maxdepth 3 -type d"),
            Some(("./protocol".into(), Some(3)))
        );
        assert_eq!(find_directories("find x -type d"), Some(("x".into(), None)));
        assert_eq!(find_directories("find x -name '*.c'"), None);
        assert_eq!(find_directories("ls x"), None);
    }
}
