//! Reading a Makefile's text into statements (assignments, rules with their recipes, includes, conditionals),
//! without expanding anything: GNU make's line rules, and no more of them than gala-gopher's Makefiles use.

/// One statement, at the (first physical) line it starts on, counted from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Assign {
        name: String,
        op: AssignOp,
        value: String,
    },
    Rule(RuleText),
    Include {
        paths: String,
        optional: bool,
    },
    If(Condition),
    /// `else`, or `else ifeq …` / `else ifdef …`.
    Else(Option<Condition>),
    Endif,
    Undefine(String),
    /// A line the reader does not take apart; `why` says what it is.
    Unsupported {
        text: String,
        why: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `:=`, `::=`, `:::=`: expanded once, now.
    Simple,
    /// `=` and `define`: expanded at each use.
    Recursive,
    /// `+=`
    Append,
    /// `?=`
    IfUndefined,
    /// `!=`: the output of a shell command.
    Shell,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleText {
    pub targets: String,
    pub double_colon: bool,
    /// The middle part of a static pattern rule (`$(OBJS): %.o: %.c`).
    pub target_pattern: Option<String>,
    /// Normal and order-only prerequisites (both must exist before the recipe runs).
    pub prereqs: String,
    pub recipe: Vec<RecipeLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeLine {
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `ifeq`/`ifneq` with its unparsed arguments: `(a,b)`, `"a" "b"` or `'a' 'b'`.
    Equal { negate: bool, args: String },
    /// `ifdef`/`ifndef` with the (unexpanded) variable name.
    Defined { negate: bool, name: String },
}

impl Condition {
    pub fn text(&self) -> String {
        match self {
            Condition::Equal { negate, args } => {
                format!("{} {args}", if *negate { "ifneq" } else { "ifeq" })
            }
            Condition::Defined { negate, name } => {
                format!("{} {name}", if *negate { "ifndef" } else { "ifdef" })
            }
        }
    }
}

/// The statements of a Makefile, in order.
pub fn parse(text: &str) -> Vec<Statement> {
    let lines = logical_lines(text);
    let mut statements: Vec<Statement> = Vec::new();
    // Index of the rule whose recipe tab-led lines belong to.
    let mut rule: Option<usize> = None;
    let mut index = 0;
    while index < lines.len() {
        let (number, raw) = &lines[index];
        index += 1;
        if let Some(recipe) = raw.strip_prefix('\t') {
            if let Some(at) = rule {
                if let Kind::Rule(r) = &mut statements[at].kind {
                    r.recipe.push(RecipeLine {
                        line: *number,
                        text: recipe.trim().to_string(),
                    });
                }
                continue;
            }
        }
        let text = strip_comment(raw);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let mut words = text.splitn(2, char::is_whitespace);
        let first = words.next().unwrap_or_default();
        let rest = words.next().unwrap_or_default().trim();
        let kind = match first {
            "include" | "-include" | "sinclude" => Kind::Include {
                paths: rest.to_string(),
                optional: first != "include",
            },
            "ifeq" | "ifneq" | "ifdef" | "ifndef" => match condition(first, rest) {
                Some(c) => Kind::If(c),
                None => unsupported(text, "a conditional without its arguments"),
            },
            "else" if rest.is_empty() => Kind::Else(None),
            "else" => {
                let mut w = rest.splitn(2, char::is_whitespace);
                let keyword = w.next().unwrap_or_default();
                match condition(keyword, w.next().unwrap_or_default().trim()) {
                    Some(c) => Kind::Else(Some(c)),
                    None => unsupported(text, "text after `else` that is not a conditional"),
                }
            }
            "endif" => Kind::Endif,
            "define" => {
                let (name, op) = define_header(rest);
                let mut body = Vec::new();
                while index < lines.len() && lines[index].1.trim() != "endef" {
                    body.push(lines[index].1.clone());
                    index += 1;
                }
                index += 1;
                Kind::Assign {
                    name,
                    op,
                    value: body.join("\n"),
                }
            }
            "undefine" => Kind::Undefine(rest.to_string()),
            "vpath" => unsupported(text, "`vpath` changes where make looks for prerequisites"),
            // `override` beats command-line values, which import does not have; `export` affects only the
            // environment of recipes. Both leave the assignment itself as it is.
            "override" | "export" if !rest.is_empty() => {
                if first == "export" && !rest.contains('=') {
                    continue;
                }
                assignment_or_rule(rest)
            }
            "export" | "unexport" => continue,
            _ => assignment_or_rule(text),
        };
        rule = match (&kind, rule) {
            (Kind::Rule(_), _) => Some(statements.len()),
            // Conditionals may sit between a rule and its recipe lines.
            (Kind::If(_) | Kind::Else(_) | Kind::Endif, current) => current,
            _ => None,
        };
        statements.push(Statement {
            line: *number,
            kind,
        });
    }
    statements
}

fn unsupported(text: &str, why: &'static str) -> Kind {
    Kind::Unsupported {
        text: text.to_string(),
        why,
    }
}

/// Physical lines joined at backslash-newline, `\r` dropped, each with the number of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trailing_backslashes = line.chars().rev().take_while(|c| *c == '\\').count();
        let continues = trailing_backslashes % 2 == 1;
        let body = if continues {
            &line[..line.len() - 1]
        } else {
            line
        };
        let (number, mut joined) = match pending.take() {
            Some((number, mut so_far)) => {
                so_far.push(' ');
                so_far.push_str(body.trim_start());
                (number, so_far)
            }
            None => (index + 1, body.to_string()),
        };
        if continues {
            let trimmed = joined.trim_end().len();
            joined.truncate(trimmed);
            pending = Some((number, joined));
        } else {
            out.push((number, joined));
        }
    }
    if let Some(last) = pending {
        out.push(last);
    }
    out
}

/// The line up to an unescaped `#`, with `\#` read as `#`.
fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'#') => {
                out.push('#');
                chars.next();
            }
            '#' => break,
            _ => out.push(c),
        }
    }
    out
}

fn condition(keyword: &str, rest: &str) -> Option<Condition> {
    if rest.is_empty() {
        return None;
    }
    Some(match keyword {
        "ifeq" | "ifneq" => Condition::Equal {
            negate: keyword == "ifneq",
            args: rest.to_string(),
        },
        "ifdef" | "ifndef" => Condition::Defined {
            negate: keyword == "ifndef",
            name: rest.to_string(),
        },
        _ => return None,
    })
}

fn define_header(rest: &str) -> (String, AssignOp) {
    let rest = rest.trim();
    for (suffix, op) in [
        (":::=", AssignOp::Simple),
        ("::=", AssignOp::Simple),
        (":=", AssignOp::Simple),
        ("+=", AssignOp::Append),
        ("?=", AssignOp::IfUndefined),
        ("!=", AssignOp::Shell),
        ("=", AssignOp::Recursive),
    ] {
        if let Some(name) = rest.strip_suffix(suffix) {
            return (name.trim().to_string(), op);
        }
    }
    (rest.to_string(), AssignOp::Recursive)
}

/// Byte offsets of `:`, `=`, `;` and `|` that are outside `$(…)`/`${…}`.
fn top_level(text: &str) -> Vec<(usize, char)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut previous = '\0';
    for (i, c) in text.char_indices() {
        match c {
            '(' | '{' if previous == '$' || depth > 0 => depth += 1,
            ')' | '}' if depth > 0 => depth -= 1,
            ':' | '=' | ';' | '|' if depth == 0 => out.push((i, c)),
            _ => {}
        }
        previous = c;
    }
    out
}

fn assignment_or_rule(text: &str) -> Kind {
    let marks = top_level(text);
    let Some(&(at, mark)) = marks.iter().find(|(_, c)| *c == ':' || *c == '=') else {
        return unsupported(text, "not a rule, an assignment or a directive");
    };
    if mark == '=' {
        let before = &text[..at];
        let (name, op) = match before.chars().last() {
            Some('+') => (&before[..before.len() - 1], AssignOp::Append),
            Some('?') => (&before[..before.len() - 1], AssignOp::IfUndefined),
            Some('!') => (&before[..before.len() - 1], AssignOp::Shell),
            _ => (before, AssignOp::Recursive),
        };
        return assign(text, name, op, &text[at + 1..]);
    }
    let after = &text[at..];
    for op in [":::=", "::=", ":="] {
        if let Some(value) = after.strip_prefix(op) {
            return assign(text, &text[..at], AssignOp::Simple, value);
        }
    }
    rule(text, at)
}

fn assign(text: &str, name: &str, op: AssignOp, value: &str) -> Kind {
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return unsupported(text, "an assignment to a name with spaces (or none)");
    }
    Kind::Assign {
        name: name.to_string(),
        op,
        value: value.trim_start().to_string(),
    }
}

fn rule(text: &str, colon: usize) -> Kind {
    let targets = text[..colon].trim().to_string();
    let double_colon = text[colon + 1..].starts_with(':');
    let after = &text[colon + if double_colon { 2 } else { 1 }..];
    let (head, inline_recipe) = match top_level(after).iter().find(|(_, c)| *c == ';') {
        Some(&(at, _)) => (&after[..at], Some(after[at + 1..].trim().to_string())),
        None => (after, None),
    };
    let marks = top_level(head);
    if marks.iter().any(|(_, c)| *c == '=') {
        return unsupported(
            text,
            "a target-specific variable (a value for one target only)",
        );
    }
    let (target_pattern, prereqs) = match marks.iter().find(|(_, c)| *c == ':') {
        Some(&(at, _)) => (Some(head[..at].trim().to_string()), &head[at + 1..]),
        None => (None, head),
    };
    Kind::Rule(RuleText {
        targets,
        double_colon,
        target_pattern,
        prereqs: prereqs.replace('|', " ").trim().to_string(),
        recipe: inline_recipe
            .filter(|r| !r.is_empty())
            .map(|text| RecipeLine { line: 0, text })
            .into_iter()
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Kind> {
        parse(text).into_iter().map(|s| s.kind).collect()
    }

    fn assign(name: &str, op: AssignOp, value: &str) -> Kind {
        Kind::Assign {
            name: name.into(),
            op,
            value: value.into(),
        }
    }

    #[test]
    fn assignments_of_every_flavour() {
        assert_eq!(
            kinds("A := x $(B)\nB = y\nC += z # note\nD ?= w\nC++ = g++\nE::=1\nF != uname\n"),
            vec![
                assign("A", AssignOp::Simple, "x $(B)"),
                assign("B", AssignOp::Recursive, "y"),
                assign("C", AssignOp::Append, "z"),
                assign("D", AssignOp::IfUndefined, "w"),
                assign("C++", AssignOp::Recursive, "g++"),
                assign("E", AssignOp::Simple, "1"),
                assign("F", AssignOp::Shell, "uname"),
            ]
        );
    }

    #[test]
    fn continuation_lines_join_and_keep_the_first_line_number() {
        let statements = parse("# c\nBASE := -Ia \\\n        -Ib \\\n\t-Ic\nX = 1\r\n");
        assert_eq!(statements[0].line, 2);
        assert_eq!(
            statements[0].kind,
            assign("BASE", AssignOp::Simple, "-Ia -Ib -Ic")
        );
        assert_eq!(statements[1].line, 5);
        assert_eq!(statements[1].kind, assign("X", AssignOp::Recursive, "1"));
    }

    #[test]
    fn rules_take_their_tab_led_recipe_across_comments_and_blank_lines() {
        let statements =
            parse("all: a b\n# comment\n%.o: %.c | dir\n\t$(CC) -c $< -o $@\n\n\techo done\nX = 1\n\tnot recipe\n");
        let Kind::Rule(all) = &statements[0].kind else {
            panic!()
        };
        assert_eq!(all.targets, "all");
        assert_eq!(all.prereqs, "a b");
        assert!(all.recipe.is_empty());
        let Kind::Rule(object) = &statements[1].kind else {
            panic!()
        };
        assert_eq!(object.prereqs, "%.c   dir");
        let recipe: Vec<_> = object
            .recipe
            .iter()
            .map(|r| (r.line, r.text.as_str()))
            .collect();
        assert_eq!(recipe, vec![(4, "$(CC) -c $< -o $@"), (6, "echo done")]);
        // A tab-led line outside a rule is an ordinary line (here: not a rule or assignment).
        assert!(matches!(statements[3].kind, Kind::Unsupported { .. }));
    }

    #[test]
    fn static_pattern_double_colon_inline_recipe_and_colons_inside_references() {
        let Kind::Rule(r) = &kinds("$(OBJ): %.o: %.cpp\n")[0] else {
            panic!()
        };
        assert_eq!(r.targets, "$(OBJ)");
        assert_eq!(r.target_pattern.as_deref(), Some("%.o"));
        assert_eq!(r.prereqs, "%.cpp");
        let Kind::Rule(r) = &kinds("clean:: ; rm -f x\n")[0] else {
            panic!()
        };
        assert!(r.double_colon);
        assert_eq!(r.recipe[0].text, "rm -f x");
        assert_eq!(
            kinds("X := $(A:.c=.o)\n")[0],
            assign("X", AssignOp::Simple, "$(A:.c=.o)")
        );
        assert!(matches!(
            kinds("prog: CFLAGS += -g\n")[0],
            Kind::Unsupported { .. }
        ));
    }

    #[test]
    fn directives() {
        assert_eq!(
            kinds("include ../mk/var.mk\n-include x.d\nifeq ($(A), b)\nelse ifndef C\nendif\nexport X\noverride Y = 1\ndefine Z\nl1\nl2\nendef\nvpath %.c src\n"),
            vec![
                Kind::Include {
                    paths: "../mk/var.mk".into(),
                    optional: false
                },
                Kind::Include {
                    paths: "x.d".into(),
                    optional: true
                },
                Kind::If(Condition::Equal {
                    negate: false,
                    args: "($(A), b)".into()
                }),
                Kind::Else(Some(Condition::Defined {
                    negate: true,
                    name: "C".into()
                })),
                Kind::Endif,
                assign("Y", AssignOp::Recursive, "1"),
                assign("Z", AssignOp::Recursive, "l1\nl2"),
                Kind::Unsupported {
                    text: "vpath %.c src".into(),
                    why: "`vpath` changes where make looks for prerequisites"
                },
            ]
        );
    }
}
