//! Evaluating parsed Makefiles as make reads them: variables of each flavour, includes, conditionals and rules.
//! What cannot be known without running make (a `$(shell …)`, a condition on the machine or the environment)
//! becomes an opaque value that remembers where it came from and why, instead of a guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::makefile::{self, AssignOp, Condition, Kind, RuleText, Statement};
use super::{percent, relpath, token};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

/// A value the reader cannot know: the construct that makes it, where, and why it cannot be known.
#[derive(Debug, Clone)]
pub struct Opaque {
    pub at: Location,
    pub construct: String,
    pub why: String,
    /// The variable it was assigned to, when it comes from an assignment under an unknown condition.
    pub variable: Option<String>,
}

/// A statement the reader did not apply.
#[derive(Debug, Clone)]
pub struct Unread {
    pub at: Location,
    pub construct: String,
    pub why: String,
}

#[derive(Debug, Clone)]
struct Variable {
    /// The value as assigned and appended to, each part with its line; raw text when recursive.
    segments: Vec<(Location, String)>,
    recursive: bool,
}

/// A rule with its targets and prerequisites expanded (make expands them when reading) and its recipe not yet
/// (make expands recipes when it runs them, with the variables' final values).
#[derive(Debug, Clone)]
pub struct Rule {
    pub targets: Vec<String>,
    pub prereqs: Vec<String>,
    pub recipe: Vec<(Location, String)>,
    /// Targets hold `%`.
    pub pattern: bool,
}

/// `$(shell find DIR -maxdepth N -type d)`: every directory under DIR, read as the glob `DIR/**`.
#[derive(Debug, Clone)]
pub struct DirTree {
    pub at: Location,
    pub dir: String,
    pub max_depth: Option<usize>,
}

/// Variables install.sh passes on make's command line, which beats any value a Makefile gives them; they stay
/// symbols so an install recipe reads as "copy into the bin dir".
pub const INSTALLER_VARIABLES: [&str; 3] = ["INSTALL_DIR", "CONF_INSTALL_DIR", "META_INSTALL_DIR"];

#[derive(Debug, Clone, Copy)]
struct Branch {
    active: bool,
    taken: bool,
    /// The opaque value explaining why this conditional could not be decided.
    unknown: Option<usize>,
}

enum Context {
    Active,
    Inactive,
    Unknown(usize),
}

/// The state of make after reading a Makefile and what it includes, with make's directory `cwd`.
pub struct Evaluation {
    pub cwd: PathBuf,
    vars: BTreeMap<String, Variable>,
    pub rules: Vec<Rule>,
    pub opaques: Vec<Opaque>,
    pub unread: Vec<Unread>,
    /// Values Makefiles give INSTALLER_VARIABLES (overridden when install.sh runs make).
    pub installer_assignments: Vec<(Location, String, String)>,
    pub dir_trees: Vec<DirTree>,
    pub default_goal: Option<String>,
    pub phony: Vec<String>,
    /// Every file read, the top one first.
    pub files: Vec<PathBuf>,
    makefile_list: Vec<String>,
    pub(super) locals: Vec<(String, String)>,
    expanding: Vec<String>,
    branches: Vec<Branch>,
}

impl Evaluation {
    pub fn new(cwd: &Path) -> Evaluation {
        Evaluation {
            cwd: cwd.to_path_buf(),
            vars: BTreeMap::new(),
            rules: Vec::new(),
            opaques: Vec::new(),
            unread: Vec::new(),
            installer_assignments: Vec::new(),
            dir_trees: Vec::new(),
            default_goal: None,
            phony: Vec::new(),
            files: Vec::new(),
            makefile_list: Vec::new(),
            locals: Vec::new(),
            expanding: Vec::new(),
            branches: Vec::new(),
        }
    }

    /// Reads the Makefile at `path` (named `as_given` in `$(MAKEFILE_LIST)`) and everything it includes.
    pub fn read(&mut self, path: &Path, as_given: &str) -> anyhow::Result<()> {
        let text = crate::paths::read_to_string(path)?;
        self.read_text(path, as_given, &text);
        Ok(())
    }

    pub fn read_text(&mut self, path: &Path, as_given: &str, text: &str) {
        self.makefile_list.push(as_given.to_string());
        self.files.push(path.to_path_buf());
        let depth = self.branches.len();
        let statements = makefile::parse(text);
        self.statements(path, &statements);
        if self.branches.len() > depth {
            self.unread.push(Unread {
                at: Location {
                    file: path.to_path_buf(),
                    line: statements.last().map_or(1, |s| s.line),
                },
                construct: "end of file".into(),
                why: "a conditional is missing its `endif`".into(),
            });
            self.branches.truncate(depth);
        }
    }

    fn statements(&mut self, file: &Path, statements: &[Statement]) {
        for statement in statements {
            let at = Location {
                file: file.to_path_buf(),
                line: statement.line,
            };
            self.statement(&at, &statement.kind);
        }
    }

    fn statement(&mut self, at: &Location, kind: &Kind) {
        match kind {
            Kind::If(condition) => {
                let branch = match self.context(self.branches.len()) {
                    Context::Inactive => Branch {
                        active: false,
                        taken: true,
                        unknown: None,
                    },
                    _ => self.branch(condition, at),
                };
                self.branches.push(branch);
            }
            Kind::Else(condition) => {
                let parent = self.context(self.branches.len().saturating_sub(1));
                let Some(top) = self.branches.last().copied() else {
                    return self.unread(at, "else", "`else` without `ifeq`/`ifdef`");
                };
                let next = if matches!(parent, Context::Inactive) || top.unknown.is_some() {
                    top
                } else if top.taken {
                    Branch {
                        active: false,
                        ..top
                    }
                } else {
                    match condition {
                        None => Branch {
                            active: true,
                            taken: true,
                            unknown: None,
                        },
                        Some(c) => self.branch(c, at),
                    }
                };
                *self.branches.last_mut().expect("checked above") = next;
            }
            Kind::Endif => {
                if self.branches.pop().is_none() {
                    self.unread(at, "endif", "`endif` without `ifeq`/`ifdef`");
                }
            }
            _ => match self.context(self.branches.len()) {
                Context::Inactive => {}
                Context::Active => self.apply(at, kind),
                Context::Unknown(id) => self.apply_under_unknown(at, kind, id),
            },
        }
    }

    /// Whether statements are read, skipped, or read under a condition that could not be decided, judging the
    /// innermost `depth` conditionals.
    fn context(&self, depth: usize) -> Context {
        let branches = &self.branches[..depth];
        if branches.iter().any(|b| !b.active) {
            return Context::Inactive;
        }
        match branches.iter().rev().find_map(|b| b.unknown) {
            Some(id) => Context::Unknown(id),
            None => Context::Active,
        }
    }

    fn branch(&mut self, condition: &Condition, at: &Location) -> Branch {
        match self.decide(condition, at) {
            Ok(taken) => Branch {
                active: taken,
                taken,
                unknown: None,
            },
            Err(id) => Branch {
                active: true,
                taken: false,
                unknown: Some(id),
            },
        }
    }

    /// The condition's truth, or the id of an opaque value saying why it cannot be decided here.
    fn decide(&mut self, condition: &Condition, at: &Location) -> Result<bool, usize> {
        let construct = condition.text();
        match condition {
            Condition::Equal { negate, args } => {
                let Some((a, b)) = equal_arguments(args) else {
                    return Err(self.opaque_id(
                        at,
                        &construct,
                        "has arguments import cannot read",
                        None,
                    ));
                };
                let a = self.expand(&a, at).trim().to_string();
                let b = self.expand(&b, at).trim().to_string();
                for side in [&a, &b] {
                    if let Some(&id) = token::opaque_ids(side).first() {
                        let why = format!(
                            "compares a value known only when make runs (`{}`)",
                            self.opaques[id].construct
                        );
                        return Err(self.opaque_id(at, &construct, &why, None));
                    }
                    if token::has_glob(side) || !token::is_known(side) {
                        return Err(self.opaque_id(
                            at,
                            &construct,
                            "compares file names or install directories known only when make runs",
                            None,
                        ));
                    }
                }
                Ok((a == b) != *negate)
            }
            Condition::Defined { negate, name } => {
                let name = self.expand(name, at).trim().to_string();
                match self.vars.get(&name) {
                    Some(var) if !INSTALLER_VARIABLES.contains(&name.as_str()) => {
                        let set = var.segments.iter().any(|(_, v)| !v.trim().is_empty());
                        Ok(set != *negate)
                    }
                    _ => {
                        let why = format!("depends on whether `{name}` is set in the environment");
                        Err(self.opaque_id(at, &construct, &why, None))
                    }
                }
            }
        }
    }

    fn apply(&mut self, at: &Location, kind: &Kind) {
        match kind {
            Kind::Assign { name, op, value } => self.assign(at, name, *op, value),
            Kind::Rule(rule) => self.rule(at, rule),
            Kind::Include { paths, optional } => self.include(at, paths, *optional),
            Kind::Undefine(name) => {
                let name = self.expand(name, at).trim().to_string();
                self.vars.remove(&name);
            }
            Kind::Unsupported { text, why } => self.unread(at, text, why),
            Kind::If(_) | Kind::Else(_) | Kind::Endif => {}
        }
    }

    /// Under a condition that could not be decided, an assignment's variable becomes (or gains) an opaque
    /// value; anything else is reported unread.
    fn apply_under_unknown(&mut self, at: &Location, kind: &Kind, condition: usize) {
        let why = format!(
            "is assigned under `{}`, which {}",
            self.opaques[condition].construct, self.opaques[condition].why
        );
        match kind {
            Kind::Assign { name, op, value } => {
                let name = self.expand(name, at).trim().to_string();
                let construct = format!("{name} {} {}", op_text(*op), value.trim());
                let value = self.opaque(at, &construct, &why, Some(&name));
                match (op, self.vars.get_mut(&name)) {
                    (AssignOp::Append, Some(var)) => var.segments.push((at.clone(), value)),
                    _ => {
                        self.vars.insert(
                            name,
                            Variable {
                                segments: vec![(at.clone(), value)],
                                recursive: false,
                            },
                        );
                    }
                }
            }
            Kind::Rule(rule) => self.unread(at, &format!("{}: …", rule.targets), &why),
            Kind::Include { paths, .. } => self.unread(at, &format!("include {paths}"), &why),
            Kind::Undefine(name) => self.unread(at, &format!("undefine {name}"), &why),
            Kind::Unsupported { text, why } => self.unread(at, text, why),
            Kind::If(_) | Kind::Else(_) | Kind::Endif => {}
        }
    }

    fn assign(&mut self, at: &Location, name: &str, op: AssignOp, value: &str) {
        let name = self.expand(name, at).trim().to_string();
        if INSTALLER_VARIABLES.contains(&name.as_str()) {
            let value = self.expand(value, at).trim().to_string();
            self.installer_assignments.push((at.clone(), name, value));
            return;
        }
        let existing = self.vars.get(&name).map(|v| v.recursive);
        match (op, existing) {
            (AssignOp::Simple, _) => {
                let value = self.expand(value, at);
                self.set(name, at, value, false);
            }
            (AssignOp::Recursive, _) | (AssignOp::Append | AssignOp::IfUndefined, None) => {
                self.set(name, at, value.to_string(), true)
            }
            (AssignOp::Append, Some(recursive)) => {
                let value = if recursive {
                    value.to_string()
                } else {
                    self.expand(value, at)
                };
                if let Some(var) = self.vars.get_mut(&name) {
                    var.segments.push((at.clone(), value));
                }
            }
            (AssignOp::IfUndefined, Some(_)) => {}
            (AssignOp::Shell, _) => {
                let construct = format!("{name} != {}", value.trim());
                let value = self.opaque(
                    at,
                    &construct,
                    "is the output of a shell command when make runs (import runs none)",
                    Some(&name),
                );
                self.set(name, at, value, false);
            }
        }
    }

    fn set(&mut self, name: String, at: &Location, value: String, recursive: bool) {
        self.vars.insert(
            name,
            Variable {
                segments: vec![(at.clone(), value)],
                recursive,
            },
        );
    }

    fn rule(&mut self, at: &Location, rule: &RuleText) {
        let targets: Vec<String> = owned_words(&self.expand(&rule.targets, at));
        let prereqs: Vec<String> = owned_words(&self.expand(&rule.prereqs, at));
        let recipe: Vec<(Location, String)> = rule
            .recipe
            .iter()
            .map(|line| {
                let line_number = if line.line == 0 { at.line } else { line.line };
                (
                    Location {
                        file: at.file.clone(),
                        line: line_number,
                    },
                    line.text.clone(),
                )
            })
            .collect();
        if let Some(target_pattern) = &rule.target_pattern {
            let target_pattern = self.expand(target_pattern, at).trim().to_string();
            for target in &targets {
                let plain = token::unglob(target);
                let Some(stem) = percent::stem(&target_pattern, &plain) else {
                    self.unread(
                        at,
                        &format!("{target}: {target_pattern}: …"),
                        "a target that does not match its static pattern",
                    );
                    continue;
                };
                let is_glob = token::as_glob(target).is_some();
                let prereqs = prereqs
                    .iter()
                    .map(|p| {
                        let substituted = percent::substitute(&token::unglob(p), stem);
                        if is_glob && p.contains('%') {
                            token::glob(&substituted)
                        } else if p.contains('%') {
                            substituted
                        } else {
                            p.clone()
                        }
                    })
                    .collect();
                self.rules.push(Rule {
                    targets: vec![target.clone()],
                    prereqs,
                    recipe: recipe.clone(),
                    pattern: false,
                });
            }
            return;
        }
        let pattern = targets.iter().any(|t| t.contains('%'));
        if targets.iter().any(|t| t == ".PHONY") {
            self.phony.extend(prereqs.iter().cloned());
        }
        if !pattern && self.default_goal.is_none() {
            if let Some(first) = targets.first() {
                if !first.starts_with('.') || first.contains('/') {
                    self.default_goal = Some(first.clone());
                }
            }
        }
        self.rules.push(Rule {
            targets,
            prereqs,
            recipe,
            pattern,
        });
    }

    fn include(&mut self, at: &Location, paths: &str, optional: bool) {
        let expanded = self.expand(paths, at);
        for word in token::words(&expanded) {
            if !token::is_known(word) || token::has_glob(word) {
                self.unread(
                    at,
                    &format!("include {paths}"),
                    "names a file known only when make runs",
                );
                continue;
            }
            let path = relpath::normalize(&self.cwd.join(word));
            if self.files.len() > 32 {
                self.unread(at, &format!("include {word}"), "includes nest too deeply");
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(text) => self.read_text(&path, word, &text),
                Err(_) if optional => {}
                Err(e) => self.unread(
                    at,
                    &format!("include {word}"),
                    &format!("`{}` cannot be read: {e}", path.display()),
                ),
            }
        }
    }

    pub(super) fn unread(&mut self, at: &Location, construct: &str, why: &str) {
        self.unread.push(Unread {
            at: at.clone(),
            construct: construct.to_string(),
            why: why.to_string(),
        });
    }

    /// The marker of an opaque value (one per construct and line, however often it is expanded).
    pub(super) fn opaque(
        &mut self,
        at: &Location,
        construct: &str,
        why: &str,
        variable: Option<&str>,
    ) -> String {
        token::opaque(self.opaque_id(at, construct, why, variable))
    }

    fn opaque_id(
        &mut self,
        at: &Location,
        construct: &str,
        why: &str,
        variable: Option<&str>,
    ) -> usize {
        if let Some(id) = self
            .opaques
            .iter()
            .position(|o| &o.at == at && o.construct == construct)
        {
            return id;
        }
        self.opaques.push(Opaque {
            at: at.clone(),
            construct: construct.to_string(),
            why: why.to_string(),
            variable: variable.map(String::from),
        });
        self.opaques.len() - 1
    }

    /// Expands `text` (written at `at`) as make would.
    pub fn expand(&mut self, text: &str, at: &Location) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let Some(next) = after.chars().next() else {
                rest = "";
                break;
            };
            match next {
                '$' => {
                    out.push('$');
                    rest = &after[1..];
                }
                '(' | '{' => {
                    let close = if next == '(' { ')' } else { '}' };
                    let Some(end) = matching_close(after, next, close) else {
                        out.push_str(&self.opaque(
                            at,
                            text.trim(),
                            "is an unterminated variable reference",
                            None,
                        ));
                        rest = "";
                        break;
                    };
                    let value = self.reference(&after[1..end], at);
                    out.push_str(&value);
                    rest = &after[end + 1..];
                }
                c => {
                    let value = self.variable(&c.to_string(), at);
                    out.push_str(&value);
                    rest = &after[c.len_utf8()..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// `$(…)`: a function call, a substitution reference (`$(VAR:.c=.o)`) or a (computed) variable name.
    fn reference(&mut self, inner: &str, at: &Location) -> String {
        if let Some((name, args)) = inner.split_once(|c: char| c.is_whitespace()) {
            if super::functions::FUNCTIONS.contains(&name) {
                return self.call(name, args, at);
            }
        }
        if let Some((name, from, to)) = substitution_reference(inner) {
            let name = self.expand(name, at);
            let value = self.variable(name.trim(), at);
            let from = self.expand(from, at);
            let to = self.expand(to, at);
            let (from, to) = if from.contains('%') {
                (from, to)
            } else {
                (format!("%{from}"), format!("%{to}"))
            };
            return token::words(&value)
                .iter()
                .map(|w| percent::patsubst_word(&from, &to, w))
                .collect::<Vec<_>>()
                .join(" ");
        }
        let name = self.expand(inner, at);
        self.variable(name.trim(), at)
    }

    /// A variable's value now; an undefined variable is empty, as in make run with an empty environment.
    pub fn variable(&mut self, name: &str, at: &Location) -> String {
        if let Some((_, value)) = self.locals.iter().rev().find(|(n, _)| n == name) {
            return value.clone();
        }
        if INSTALLER_VARIABLES.contains(&name) {
            return token::symbol(name);
        }
        match name {
            "MAKEFILE_LIST" => return self.makefile_list.join(" "),
            "CURDIR" => return relpath::text(&self.cwd),
            _ => {}
        }
        let Some(var) = self.vars.get(name).cloned() else {
            return builtin(name).to_string();
        };
        if !var.recursive {
            return join_segments(var.segments.into_iter().map(|(_, v)| v));
        }
        if self.expanding.iter().any(|n| n == name) {
            return self.opaque(at, &format!("$({name})"), "refers to itself", None);
        }
        self.expanding.push(name.to_string());
        let mut parts = Vec::new();
        for (location, raw) in &var.segments {
            parts.push(self.expand(raw, location));
        }
        self.expanding.pop();
        join_segments(parts.into_iter())
    }

    /// The expanded value of a variable the Makefiles define, or `None`.
    pub fn value(&mut self, name: &str) -> Option<String> {
        let at = self.defined_at(name)?;
        Some(self.variable(name, &at))
    }

    /// Where a variable was first assigned.
    pub fn defined_at(&self, name: &str) -> Option<Location> {
        self.vars
            .get(name)
            .and_then(|v| v.segments.first())
            .map(|(at, _)| at.clone())
    }

    /// A rule's recipe lines expanded for one target, with make's automatic variables.
    pub fn expand_recipe(
        &mut self,
        rule: &Rule,
        target: &str,
        prereqs: &[String],
        stem: &str,
    ) -> Vec<(Location, String)> {
        let mut unique: Vec<String> = Vec::new();
        for p in prereqs {
            if !unique.contains(p) {
                unique.push(p.clone());
            }
        }
        let first = prereqs.first().cloned().unwrap_or_default();
        let automatic = [
            ("@", target.to_string()),
            ("<", first.clone()),
            ("^", unique.join(" ")),
            ("+", prereqs.join(" ")),
            ("?", unique.join(" ")),
            ("*", stem.to_string()),
            ("@D", dir_part(target)),
            ("@F", file_part(target)),
            ("<D", dir_part(&first)),
            ("<F", file_part(&first)),
        ];
        let saved = self.locals.len();
        self.locals
            .extend(automatic.iter().map(|(n, v)| (n.to_string(), v.clone())));
        let lines = rule
            .recipe
            .iter()
            .map(|(at, raw)| (at.clone(), self.expand(raw, at)))
            .collect();
        self.locals.truncate(saved);
        lines
    }
}

/// GNU make's built-in value of a variable no Makefile sets (`$(CC)` is `cc`), else empty.
fn builtin(name: &str) -> &'static str {
    match name {
        "CC" => "cc",
        "CXX" => "g++",
        "CPP" => "$(CC) -E",
        "AR" => "ar",
        "AS" => "as",
        "LD" => "ld",
        "RM" => "rm -f",
        "MAKE" => "make",
        _ => "",
    }
}

fn op_text(op: AssignOp) -> &'static str {
    match op {
        AssignOp::Simple => ":=",
        AssignOp::Recursive => "=",
        AssignOp::Append => "+=",
        AssignOp::IfUndefined => "?=",
        AssignOp::Shell => "!=",
    }
}

fn owned_words(text: &str) -> Vec<String> {
    token::words(text).into_iter().map(String::from).collect()
}

fn join_segments(parts: impl Iterator<Item = String>) -> String {
    parts
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn dir_part(path: &str) -> String {
    match path.rfind('/') {
        Some(at) => path[..at].to_string(),
        None => ".".to_string(),
    }
}

fn file_part(path: &str) -> String {
    match path.rfind('/') {
        Some(at) => path[at + 1..].to_string(),
        None => path.to_string(),
    }
}

/// The index in `text` (which starts with `open`) of the bracket closing it.
fn matching_close(text: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// `VAR:from=to` split into its parts, when `inner` is one.
fn substitution_reference(inner: &str) -> Option<(&str, &str, &str)> {
    let mut depth = 0usize;
    for (i, c) in inner.char_indices() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                let (from, to) = inner[i + 1..].split_once('=')?;
                return Some((&inner[..i], from, to));
            }
            _ => {}
        }
    }
    None
}

/// `(a,b)`, `"a" "b"` or `'a' 'b'` → (a, b), unexpanded.
fn equal_arguments(args: &str) -> Option<(String, String)> {
    let args = args.trim();
    if let Some(inside) = args.strip_prefix('(').and_then(|a| a.strip_suffix(')')) {
        let parts = super::functions::split_arguments(inside, 2);
        return match parts.as_slice() {
            [a, b] => Some((a.to_string(), b.to_string())),
            _ => None,
        };
    }
    let mut quoted = Vec::new();
    let mut rest = args;
    while let Some(quote) = rest.chars().next() {
        if quote != '"' && quote != '\'' {
            return None;
        }
        let end = rest[1..].find(quote)? + 1;
        quoted.push(rest[1..end].to_string());
        rest = rest[end + 1..].trim_start();
    }
    match <[String; 2]>::try_from(quoted) {
        Ok([a, b]) => Some((a, b)),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluate(text: &str) -> Evaluation {
        let mut e = Evaluation::new(Path::new("/w/src/probe"));
        e.read_text(Path::new("/w/src/probe/Makefile"), "Makefile", text);
        e
    }

    fn value(e: &mut Evaluation, name: &str) -> String {
        e.value(name).unwrap_or_default()
    }

    #[test]
    fn flavours_expand_when_make_would() {
        let mut e =
            evaluate("A = $(B)\nS := $(B)\nB = 1\nA += x\nS += $(B)\nD ?= d\nD ?= e\nC++ = g++\n");
        assert_eq!(value(&mut e, "A"), "1 x");
        assert_eq!(value(&mut e, "S"), "1");
        assert_eq!(value(&mut e, "D"), "d");
        assert_eq!(value(&mut e, "C++"), "g++");
        assert_eq!(e.value("NOPE"), None);
        let at = e.defined_at("A").unwrap();
        assert_eq!(e.expand("$(CC) $(NOPE)x", &at), "cc x");
        let at = e.defined_at("A").unwrap();
        assert_eq!(e.expand("$(C++) $$x $(A:x=y) ${S}", &at), "g++ $x 1 y 1");
    }

    #[test]
    fn conditionals_decided_and_undecided() {
        let mut e = evaluate(
            "X = a\nifeq ($(X), a)\nY = yes\nelse\nY = no\nendif\nARCH = $(shell uname -m)\nifeq ($(ARCH), x86_64)\n  TYPE = x86\nelse ifeq ($(ARCH), aarch64)\n  TYPE = arm64\nendif\nifndef JAVA_HOME\n\tJAVA_HOME := /x\nendif\nJNI := -I$(JAVA_HOME)/include\nifdef X\nZ = 1\nendif\n",
        );
        assert_eq!(value(&mut e, "Y"), "yes");
        assert_eq!(value(&mut e, "Z"), "1");
        let kind = value(&mut e, "TYPE");
        let id = token::opaque_ids(&kind)[0];
        assert!(
            e.opaques[id].why.contains("uname -m"),
            "{:?}",
            e.opaques[id]
        );
        let jni = value(&mut e, "JNI");
        let id = token::opaque_ids(&jni)[0];
        assert_eq!(e.opaques[id].variable.as_deref(), Some("JAVA_HOME"));
        assert!(e.opaques[id].why.contains("environment"));
        assert!(jni.ends_with("/include"));
    }

    #[test]
    fn rules_static_patterns_and_the_default_goal() {
        let e = evaluate(
            ".PHONY: all\nSRC := $(wildcard *.cpp)\nOBJ = $(patsubst %.cpp,%.o,$(SRC))\nall: app\n$(OBJ): %.o: %.cpp\n\tg++ -c $^ -o $@\n%.skel.h: %.bpf.o\n\tbpftool gen skeleton $< > $@\n",
        );
        assert_eq!(e.default_goal.as_deref(), Some("all"));
        assert_eq!(e.phony, vec!["all"]);
        let object = &e.rules[2];
        assert_eq!(object.targets, vec![token::glob("*.o")]);
        assert_eq!(object.prereqs, vec![token::glob("*.cpp")]);
        assert!(!object.pattern);
        assert!(e.rules[3].pattern);
        assert_eq!(e.rules[3].recipe[0].0.line, 8);
    }

    #[test]
    fn automatic_variables_in_recipes() {
        let mut e = evaluate("CC = gcc\n%: %.c util.c\n\t$(CC) $(filter %.c,$^) -o $@\n");
        let rule = e.rules[0].clone();
        let lines = e.expand_recipe(
            &rule,
            "app",
            &["app.c".into(), "util.c".into(), "x.h".into()],
            "app",
        );
        assert_eq!(lines[0].1, "gcc app.c util.c -o app");
    }

    #[test]
    fn installer_variables_stay_symbols_and_their_assignments_are_kept() {
        let mut e = evaluate("INSTALL_DIR=/opt/x\nDEST = $(INSTALL_DIR)/sub\n");
        assert_eq!(
            value(&mut e, "DEST"),
            format!("{}/sub", token::symbol("INSTALL_DIR"))
        );
        assert_eq!(e.installer_assignments[0].2, "/opt/x");
    }

    #[test]
    fn makefile_list_and_includes_resolve_like_make() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("mk")).unwrap();
        std::fs::create_dir_all(src.join("p")).unwrap();
        std::fs::write(
            src.join("mk/var.mk"),
            "ROOT_DIR := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))\nLIB := $(ROOT_DIR)../lib\n",
        )
        .unwrap();
        let mut e = Evaluation::new(&src.join("p"));
        e.read_text(&src.join("p/Makefile"), "Makefile", "include ../mk/var.mk\nX := $(abspath $(LIB))\n-include nothing.d\ninclude missing.mk\n");
        assert_eq!(value(&mut e, "X"), src.join("lib").display().to_string());
        assert_eq!(e.files.len(), 2);
        assert_eq!(e.unread.len(), 1, "{:?}", e.unread);
        assert!(e.unread[0].construct.contains("missing.mk"));
    }
}
