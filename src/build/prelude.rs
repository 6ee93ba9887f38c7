//! Which BPF sources may share a precompiled header, and what it holds: a source's *prelude* — the directives
//! before its first `#include` (`#define BPF_PROG_KERN`, gala-gopher's `#ifdef BPF_PROG_USER / #undef … / #endif`)
//! and that include (`bpf.h`, `vmlinux.h`). The header is compiled once from the prelude's text, and clang puts it
//! before the source, which then runs its prelude a second time. That is the same program only when a second run
//! changes nothing: the prelude may use just `#define`, `#undef`, `#ifdef`, `#ifndef`, `#else` and `#endif`, and
//! running it from its own end state must give that state again with no conflicting redefinition; the included
//! header must have an include guard, so the second `#include` adds nothing.

//!
//! A userland loader's prelude (`include_run_of`) is the same idea for cc: the simple directives, then the run of
//! `#include`s that opens the file (`<stdio.h>`, `"bpf.h"`, …), up to the first header the caller does not accept
//! (one beside the source, the probe's own, one without an include guard). It is precompiled once and put first
//! with `-include`; the source's own includes then add nothing.

use std::collections::BTreeMap;

/// Macro name → its text (`NAME(args) body` as written after the name), as the preprocessor holds it.
pub type Macros = BTreeMap<String, String>;

/// A source's prelude: the directives as written (one per line) and the header its `#include` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prelude {
    pub text: String,
    /// As written between the quotes or brackets.
    pub header: String,
    /// `#include "…"` (searched in the source's own directory first) rather than `<…>`.
    pub quoted: bool,
}

/// The macros `-D`/`-U` flags leave defined before the first line of a source.
pub fn command_line_macros(flags: &[String]) -> Macros {
    let mut macros = Macros::new();
    for flag in flags {
        if let Some(definition) = flag.strip_prefix("-D") {
            let (name, value) = definition.split_once('=').unwrap_or((definition, "1"));
            macros.insert(name.to_string(), format!(" {value}"));
        } else if let Some(name) = flag.strip_prefix("-U") {
            macros.remove(name);
        }
    }
    macros
}

/// The prelude of `source`, when it is one that can be precompiled and run again safely (see the module doc).
pub fn prelude_of(source: &str, command_line: &Macros) -> Option<Prelude> {
    let mut directives: Vec<String> = Vec::new();
    let mut include: Option<(String, bool)> = None;
    for line in code_lines(source) {
        let directive = line.strip_prefix('#')?.trim_start();
        if let Some(rest) = directive.strip_prefix("include") {
            let rest = rest.trim();
            let (header, quoted) = if let Some(name) = rest.strip_prefix('"') {
                (name.strip_suffix('"')?, true)
            } else {
                (rest.strip_prefix('<')?.strip_suffix('>')?, false)
            };
            directives.push(format!("#{directive}"));
            include = Some((header.to_string(), quoted));
            break;
        }
        directives.push(format!("#{directive}"));
    }
    let (header, quoted) = include?;
    let steps: Vec<Directive> = directives[..directives.len() - 1]
        .iter()
        .map(|d| Directive::parse(d))
        .collect::<Option<_>>()?;
    let once = run(&steps, command_line.clone())?;
    let twice = run(&steps, once.clone())?;
    if once != twice {
        return None;
    }
    Some(Prelude {
        text: directives.join("\n") + "\n",
        header,
        quoted,
    })
}

/// The directives and the leading run of `#include`s of a userland `source` whose headers `accept(header, quoted)`
/// takes (it checks where each resolves and that it has an include guard); `None` when no include qualifies or the
/// directives before the first include could not be run twice (see `prelude_of`).
pub fn include_run_of(
    source: &str,
    command_line: &Macros,
    mut accept: impl FnMut(&str, bool) -> bool,
) -> Option<String> {
    let mut directives: Vec<String> = Vec::new();
    let mut includes: Vec<String> = Vec::new();
    for line in code_lines(source) {
        let Some(directive) = line.strip_prefix('#').map(str::trim_start) else {
            break;
        };
        let Some(rest) = directive.strip_prefix("include") else {
            if !includes.is_empty() {
                break;
            }
            directives.push(format!("#{directive}"));
            continue;
        };
        let rest = rest.trim();
        let (header, quoted) = if let Some(name) = rest.strip_prefix('"') {
            (name.strip_suffix('"'), true)
        } else {
            (
                rest.strip_prefix('<').and_then(|r| r.strip_suffix('>')),
                false,
            )
        };
        match header {
            Some(header) if accept(header, quoted) => includes.push(format!("#{directive}")),
            _ => break,
        }
    }
    if includes.is_empty() {
        return None;
    }
    let steps: Vec<Directive> = directives
        .iter()
        .map(|d| Directive::parse(d))
        .collect::<Option<_>>()?;
    let once = run(&steps, command_line.clone())?;
    if run(&steps, once.clone())? != once {
        return None;
    }
    Some(
        directives
            .into_iter()
            .chain(includes)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    )
}

/// When the kernel header can be precompiled on its own and `prelude`'s precompiled header chained on it (clang's
/// `-include-pch` while precompiling): the macro names the prelude and the SDK header `sdk_header` define or
/// undefine before the SDK header includes `vmlinux.h`, which the caller checks the kernel header never mentions.
/// Chaining moves the kernel header before them, so `None` unless the SDK header does include it for this prelude
/// (the `#if`s around it evaluated with the prelude's macros), with nothing before it but its include guard,
/// conditionals on `defined(…)`, `#error`s not taken, `#define`s and `#undef`s: no other header, no code.
pub fn chain_on_kernel_header(
    prelude: &Prelude,
    command_line: &Macros,
    sdk_header: &str,
) -> Option<Vec<String>> {
    let mut touched: Vec<String> = Vec::new();
    let steps: Vec<Directive> = prelude
        .text
        .lines()
        .filter(|l| !l.trim_start().starts_with("#include") && !l.trim().is_empty())
        .map(Directive::parse)
        .collect::<Option<_>>()?;
    for step in &steps {
        if let Directive::Define { name, .. } | Directive::Undef(name) = step {
            touched.push(name.clone());
        }
    }
    let mut macros = run(&steps, command_line.clone())?;
    // Each open conditional: (this branch taken, the enclosing ones taken, some branch already taken).
    let mut open: Vec<(bool, bool, bool)> = Vec::new();
    let active = |open: &Vec<(bool, bool, bool)>| open.iter().all(|(taken, _, _)| *taken);
    for line in code_lines(sdk_header) {
        let directive = line.strip_prefix('#')?.trim_start();
        let word: String = directive
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let rest = directive[word.len()..].trim();
        match word.as_str() {
            "if" | "ifdef" | "ifndef" => {
                let holds = match word.as_str() {
                    "if" => condition(rest, &macros)?,
                    "ifdef" => macros.contains_key(rest),
                    _ => !macros.contains_key(rest),
                };
                let outer = active(&open);
                open.push((outer && holds, outer, holds));
            }
            "elif" => {
                let (_, outer, done) = open.pop()?;
                let holds = !done && condition(rest, &macros)?;
                open.push((outer && holds, outer, done || holds));
            }
            "else" => {
                let (_, outer, done) = open.pop()?;
                open.push((outer && !done, outer, true));
            }
            "endif" => {
                open.pop()?;
            }
            _ if !active(&open) => {}
            "define" | "undef" => {
                let step = Directive::parse(line)?;
                if let Directive::Define { name, .. } | Directive::Undef(name) = &step {
                    touched.push(name.clone());
                }
                macros = run(std::slice::from_ref(&step), macros)?;
            }
            "include" if matches!(rest, "\"vmlinux.h\"" | "<vmlinux.h>") => {
                touched.sort();
                touched.dedup();
                return Some(touched);
            }
            _ => return None,
        }
    }
    None
}

/// An `#if` condition made of `defined(NAME)`/`defined NAME`, `!`, `&&`, `||` and `0`/`1`; `None` for anything else.
fn condition(expression: &str, macros: &Macros) -> Option<bool> {
    let any = expression.split("||").map(|alternative| {
        alternative.split("&&").try_fold(true, |all, term| {
            let mut term = term.trim();
            let mut negated = false;
            while let Some(rest) = term.strip_prefix('!') {
                negated = !negated;
                term = rest.trim_start();
            }
            let value = match term {
                "0" => false,
                "1" => true,
                _ => {
                    let name = term.strip_prefix("defined")?.trim();
                    let name = match name.strip_prefix('(') {
                        Some(inner) => inner.strip_suffix(')')?.trim(),
                        None => name,
                    };
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return None;
                    }
                    macros.contains_key(name)
                }
            };
            Some(all && (value != negated))
        })
    });
    let mut result = false;
    for alternative in any {
        result |= alternative?;
    }
    Some(result)
}

/// Whether a header's first directives are an include guard (`#ifndef X` + `#define X`) or `#pragma once`.
pub fn has_include_guard(header: &str) -> bool {
    let mut lines = code_lines(header).into_iter();
    let Some(first) = lines.next() else {
        return false;
    };
    let first = first.trim_start_matches('#').trim_start();
    if first.starts_with("pragma") && first.contains("once") {
        return true;
    }
    let Some(guard) = first.strip_prefix("ifndef").map(str::trim) else {
        return false;
    };
    lines.next().is_some_and(|second| {
        second
            .trim_start_matches('#')
            .trim_start()
            .strip_prefix("define")
            .is_some_and(|rest| rest.split_whitespace().next() == Some(guard))
    })
}

enum Directive {
    Define { name: String, text: String },
    Undef(String),
    IfDef { name: String, defined: bool },
    Else,
    EndIf,
}

impl Directive {
    fn parse(line: &str) -> Option<Directive> {
        let directive = line.strip_prefix('#')?.trim_start();
        let word: String = directive
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let rest = directive[word.len()..].trim_start();
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after_name = &rest[name.len()..];
        let name_only = !name.is_empty() && after_name.trim().is_empty();
        match word.as_str() {
            "define" if !name.is_empty() => Some(Directive::Define {
                text: normalize_body(after_name),
                name,
            }),
            "undef" if name_only => Some(Directive::Undef(name)),
            "ifdef" if name_only => Some(Directive::IfDef {
                name,
                defined: true,
            }),
            "ifndef" if name_only => Some(Directive::IfDef {
                name,
                defined: false,
            }),
            "else" if rest.is_empty() => Some(Directive::Else),
            "endif" => Some(Directive::EndIf),
            _ => None,
        }
    }
}

/// A macro's text with runs of blanks folded, as the preprocessor compares redefinitions.
fn normalize_body(text: &str) -> String {
    let parameters_glued = !text.starts_with(char::is_whitespace) && text.starts_with('(');
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if parameters_glued || folded.is_empty() {
        folded
    } else {
        format!(" {folded}")
    }
}

/// Runs the directives from `macros`; `None` when a definition conflicts with one in force (a redefinition
/// that would warn and change meaning) or the conditionals do not balance.
fn run(steps: &[Directive], mut macros: Macros) -> Option<Macros> {
    // Whether each open conditional's current branch is taken.
    let mut taken: Vec<(bool, bool)> = Vec::new();
    let active = |taken: &Vec<(bool, bool)>| taken.iter().all(|(branch, _)| *branch);
    for step in steps {
        match step {
            Directive::IfDef { name, defined } => {
                let outer = active(&taken);
                let holds = macros.contains_key(name) == *defined;
                taken.push((outer && holds, outer));
            }
            Directive::Else => {
                let (branch, outer) = taken.pop()?;
                taken.push((outer && !branch, outer));
            }
            Directive::EndIf => {
                taken.pop()?;
            }
            _ if !active(&taken) => {}
            Directive::Define { name, text } => {
                if macros.get(name).is_some_and(|old| old != text) {
                    return None;
                }
                macros.insert(name.clone(), text.clone());
            }
            Directive::Undef(name) => {
                macros.remove(name);
            }
        }
    }
    taken.is_empty().then_some(macros)
}

/// The lines of C text outside comments, trimmed, blank ones left out.
fn code_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut in_comment = false;
    for line in text.lines() {
        let mut line = line.trim();
        if in_comment {
            match line.find("*/") {
                Some(end) => {
                    in_comment = false;
                    line = line[end + 2..].trim();
                }
                None => continue,
            }
        }
        if let Some(start) = line.strip_prefix("/*") {
            match start.find("*/") {
                Some(end) => line = start[end + 2..].trim(),
                None => {
                    in_comment = true;
                    continue;
                }
            }
        }
        if let Some((code, _)) = line.split_once("//") {
            line = code.trim();
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prelude(text: &str) -> Option<Prelude> {
        prelude_of(
            text,
            &command_line_macros(&["-D__TARGET_ARCH_x86".to_string()]),
        )
    }

    #[test]
    fn the_sdk_and_gala_gopher_preludes_are_precompiled() {
        let ours =
            prelude("// SPDX\n#define BPF_PROG_KERN\n#include \"bpf.h\"\n#include \"x.h\"\n")
                .unwrap();
        assert_eq!(ours.text, "#define BPF_PROG_KERN\n#include \"bpf.h\"\n");
        assert_eq!((ours.header.as_str(), ours.quoted), ("bpf.h", true));
        let gala = "/* licence\n * text */\n#ifdef BPF_PROG_USER\n#undef BPF_PROG_USER\n#endif\n#define BPF_PROG_KERN\n#include \"bpf.h\"\n";
        assert_eq!(
            prelude(gala).unwrap().text,
            "#ifdef BPF_PROG_USER\n#undef BPF_PROG_USER\n#endif\n#define BPF_PROG_KERN\n#include \"bpf.h\"\n"
        );
        assert_eq!(
            prelude("#include <vmlinux.h>\n").unwrap().header,
            "vmlinux.h"
        );
    }

    #[test]
    fn preludes_that_a_second_run_would_change_are_not() {
        // Defined, then tested: the second run takes the other branch and defines Z.
        assert_eq!(
            prelude("#ifdef X\n#define Z 1\n#endif\n#define X\n#include \"bpf.h\"\n"),
            None
        );
        // Another branch that ends in the same state is fine.
        assert!(prelude(
            "#ifndef X\n#define Y 1\n#endif\n#define X\n#define Y 1\n#include \"bpf.h\"\n"
        )
        .is_some());
        // A redefinition with another value.
        assert_eq!(
            prelude("#define X 1\n#undef X\n#define X 2\n#include \"bpf.h\"\n"),
            None
        );
        // Against the command line's value.
        assert_eq!(
            prelude("#define __TARGET_ARCH_x86 2\n#include \"bpf.h\"\n"),
            None
        );
        // Anything but the plain directives, or code before the include.
        assert_eq!(prelude("#if X > 1\n#endif\n#include \"bpf.h\"\n"), None);
        assert_eq!(prelude("int x;\n#include \"bpf.h\"\n"), None);
        assert_eq!(prelude("#ifdef X\n#include \"bpf.h\"\n#endif\n"), None);
        assert_eq!(prelude("int main(void) { return 0; }\n"), None);
        // Guarded redefinitions of the same value are fine.
        assert!(prelude("#ifndef X\n#define X 1\n#endif\n#include \"bpf.h\"\n").is_some());
    }

    #[test]
    fn a_loader_prelude_is_its_leading_run_of_accepted_includes() {
        let macros = command_line_macros(&[]);
        let loader = "/* x */\n#include <getopt.h>\n#include <stdio.h>\n\n#include \"bpf.h\"\n#include \"p.h\"\n#include <string.h>\nint x;\n";
        let not_own = |header: &str, _: bool| header != "p.h";
        assert_eq!(
            include_run_of(loader, &macros, not_own).unwrap(),
            "#include <getopt.h>\n#include <stdio.h>\n#include \"bpf.h\"\n"
        );
        assert_eq!(
            include_run_of(
                "#define _GNU_SOURCE\n#include <sched.h>\nint x;\n",
                &macros,
                |_, _| true
            )
            .unwrap(),
            "#define _GNU_SOURCE\n#include <sched.h>\n"
        );
        // Nothing accepted first, code first, or a prelude a second run would change.
        assert_eq!(
            include_run_of("#include \"p.h\"\n#include <stdio.h>\n", &macros, not_own),
            None
        );
        assert_eq!(
            include_run_of("int x;\n#include <stdio.h>\n", &macros, not_own),
            None
        );
        assert_eq!(
            include_run_of(
                "#ifdef X\n#define Z 1\n#endif\n#define X\n#include <stdio.h>\n",
                &macros,
                not_own
            ),
            None
        );
    }

    #[test]
    fn the_sdk_header_chains_on_the_kernel_header_only_when_it_includes_it_first() {
        let sdk = "/* umbrella */\n#ifndef __SDK_H__\n#define __SDK_H__\n\
                   #if defined(BPF_PROG_KERN) && defined(BPF_PROG_USER)\n#error \"one only\"\n#endif\n\
                   #if defined(BPF_PROG_KERN) || defined(BPF_PROG_USER)\n#include \"vmlinux.h\"\n\
                   #include <bpf/bpf_helpers.h>\n#endif\n#endif\n";
        let kern = prelude("#define BPF_PROG_KERN\n#include \"bpf.h\"\n").unwrap();
        let macros = command_line_macros(&["-D__TARGET_ARCH_x86".to_string()]);
        assert_eq!(
            chain_on_kernel_header(&kern, &macros, sdk).unwrap(),
            ["BPF_PROG_KERN", "__SDK_H__"]
        );
        // Neither side defined: the SDK header does not include the kernel header at all.
        let loader = prelude("#include \"bpf.h\"\n").unwrap();
        assert_eq!(chain_on_kernel_header(&loader, &macros, sdk), None);
        // Both defined: the #error is taken.
        let both =
            prelude("#define BPF_PROG_KERN\n#define BPF_PROG_USER\n#include \"bpf.h\"\n").unwrap();
        assert_eq!(chain_on_kernel_header(&both, &macros, sdk), None);
        // Another header or code before the kernel header: it could depend on what the kernel header declares.
        for early in ["#include <linux/types.h>\n", "typedef int s32;\n"] {
            let sdk = format!(
                "#ifndef __SDK_H__\n#define __SDK_H__\n{early}#include \"vmlinux.h\"\n#endif\n"
            );
            assert_eq!(
                chain_on_kernel_header(&kern, &macros, &sdk),
                None,
                "{early}"
            );
        }
        // A define before it is reported, so the caller can check the kernel header never names it.
        let sdk = "#ifndef __SDK_H__\n#define __SDK_H__\n#define TASK_COMM_LEN 16\n#include <vmlinux.h>\n#endif\n";
        assert_eq!(
            chain_on_kernel_header(&kern, &macros, sdk).unwrap(),
            ["BPF_PROG_KERN", "TASK_COMM_LEN", "__SDK_H__"]
        );
        // An #if this reader cannot evaluate: not chained.
        let sdk = "#if KER_VER_MAJOR > 4\n#include \"vmlinux.h\"\n#endif\n";
        assert_eq!(chain_on_kernel_header(&kern, &macros, sdk), None);
    }

    #[test]
    fn conditions_on_defined_evaluate() {
        let macros = command_line_macros(&["-DA".to_string()]);
        assert_eq!(condition("defined(A)", &macros), Some(true));
        assert_eq!(condition("defined B || defined(A)", &macros), Some(true));
        assert_eq!(condition("defined(A) && !defined(B)", &macros), Some(true));
        assert_eq!(condition("!defined(A)", &macros), Some(false));
        assert_eq!(condition("0", &macros), Some(false));
        assert_eq!(condition("A > 1", &macros), None);
        assert_eq!(condition("defined(A) && (B)", &macros), None);
    }

    #[test]
    fn include_guards_are_recognised() {
        assert!(has_include_guard(
            "/* c */\n#ifndef __BPF_H__\n#define __BPF_H__\n#endif\n"
        ));
        assert!(has_include_guard("#pragma once\n"));
        assert!(!has_include_guard("#ifndef A\n#define B\n"));
        assert!(!has_include_guard("#include \"x.h\"\n"));
    }
}
