//! Invariants of the source tree, checked over the files themselves (rust-analyzer's `tidy.rs`): only `tool`
//! starts processes, only the test builder does in tests, and every Rust file opens with a `//!` line.

use std::path::{Path, PathBuf};

use crate::support::repo_root;

/// Every `.rs` file under `dir` (relative to the repository), sorted; `target` and hidden directories skipped.
fn rust_files(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join(dir), &mut out);
    out.sort();
    out.into_iter()
        .map(|p| p.strip_prefix(repo_root()).unwrap().to_path_buf())
        .collect()
}

/// `sdk/<crate>/src` of every crate under `sdk/`.
fn sdk_source_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(repo_root().join("sdk"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("src").is_dir())
        .map(|e| format!("sdk/{}/src", e.file_name().to_string_lossy()))
        .collect();
    dirs.sort();
    dirs
}

/// `file:line: text` for each line of `files` that names the process API outside comments.
fn process_spawns(files: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        for (index, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let imports_command = code.contains("process::{") && code.contains("Command");
            if code.contains("Command::new") || code.contains("process::Command") || imports_command
            {
                found.push(format!("{}:{}: {}", file.display(), index + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_tool_module_starts_processes() {
    let files: Vec<PathBuf> = rust_files("src")
        .into_iter()
        .chain(sdk_source_dirs().iter().flat_map(|d| rust_files(d)))
        .filter(|f| f != Path::new("src/tool.rs"))
        .collect();
    let offenders = process_spawns(&files);
    assert!(
        offenders.is_empty(),
        "only src/tool.rs may use std::process::Command (run programs through `tool::Cmd`):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn tests_start_processes_only_through_the_builder() {
    let files: Vec<PathBuf> = rust_files("tests/it")
        .into_iter()
        .filter(|f| f != Path::new("tests/it/support.rs") && f != Path::new("tests/it/tidy.rs"))
        .collect();
    let offenders = process_spawns(&files);
    assert!(
        offenders.is_empty(),
        "tests run programs through `support` (`Workspace::cmd`, `ebpf_probe`, `program`), whose failures \
         report the command, cwd, tree, stdout and stderr:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn every_rust_file_opens_with_a_doc_line() {
    let mut dirs = vec!["src".to_string(), "tests/it".to_string()];
    dirs.extend(sdk_source_dirs());
    let files: Vec<PathBuf> = dirs.iter().flat_map(|d| rust_files(d)).collect();
    assert!(
        files.iter().any(|f| f == Path::new("src/main.rs")),
        "the walk found the sources: {files:?}"
    );
    let offenders: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
            let first = text.lines().next().unwrap_or("");
            (!first.starts_with("//!")).then(|| format!("{}:1: {first}", file.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "every Rust file opens with one `//!` line saying what it is for:\n{}",
        offenders.join("\n")
    );
}

/// The layer of a module of `src/`: 0 base, 1 core, 2 operations, 3 the top (argument parsing and dispatch).
fn layer(module: &str) -> Option<u8> {
    match module {
        "paths" | "tool" | "toolchain" | "kernel" | "distro" | "meta" | "names" | "embedded"
        | "libbpf" | "btf" | "targets" | "nearest" => Some(0),
        "core" => Some(1),
        "build" | "check" | "generate" | "clean" | "install" | "run" | "scaffold" | "import"
        | "manual" | "verify" | "compat" | "btfgen" => Some(2),
        "invocation" | "cli" | "main" => Some(3),
        _ => None,
    }
}

/// The module a `src/` file belongs to: `src/core/x.rs` → `core::x`, `src/build/plan.rs` → `build`, `src/paths.rs` →
/// `paths` (core is looked at per file, the others per directory).
fn module_of(path: &Path) -> String {
    let parts: Vec<String> = path
        .strip_prefix("src")
        .unwrap()
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [top, file] if top == "core" => format!("core::{file}"),
        [top, ..] => top.clone(),
        [] => unreachable!(),
    }
}

/// `crate::a::b` paths a file names (in `use` lines and inline), as modules in `module_of`'s terms.
fn imports_of(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let name = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            };
            let top = name(rest);
            let module = if top == "core" {
                let sub = rest[top.len()..].trim_start_matches("::");
                if sub.starts_with('{') {
                    // `crate::core::{a, b}`: each named submodule.
                    let inner = sub
                        .strip_prefix('{')
                        .unwrap_or(sub)
                        .split('}')
                        .next()
                        .unwrap_or("");
                    for item in inner.split(',') {
                        let item = name(item.trim());
                        if !item.is_empty() {
                            found.push(format!("core::{item}"));
                        }
                    }
                    continue;
                }
                format!("core::{}", name(sub))
            } else {
                top
            };
            if !module.is_empty() {
                found.push(module);
            }
        }
    }
    found
}

/// Layers, top to bottom: main/cli/invocation → operations → core → base. A module imports only from its own layer
/// or below, an operation never from another operation, and the module graph has no cycle.
#[test]
fn modules_import_only_downwards_and_without_cycles() {
    let mut edges: Vec<(String, String, String)> = Vec::new();
    for file in rust_files("src") {
        let text = std::fs::read_to_string(repo_root().join(&file)).unwrap();
        let from = module_of(&file);
        for to in imports_of(&text) {
            if to != from {
                edges.push((from.clone(), to, file.display().to_string()));
            }
        }
    }
    let top = |m: &str| m.split("::").next().unwrap().to_string();
    let mut wrong = Vec::new();
    for (from, to, file) in &edges {
        let (Some(from_layer), Some(to_layer)) = (layer(&top(from)), layer(&top(to))) else {
            wrong.push(format!(
                "{file}: `{from}` → `{to}`: a module the layer list does not know"
            ));
            continue;
        };
        if to_layer > from_layer {
            wrong.push(format!("{file}: `{from}` (layer {from_layer}) imports `{to}` (layer {to_layer}), an upper layer"));
        } else if from_layer == 2 && to_layer == 2 && top(from) != top(to) {
            wrong.push(format!(
                "{file}: operation `{from}` imports operation `{to}`"
            ));
        }
    }
    // A cycle: a module that reaches itself.
    let modules: std::collections::BTreeSet<&str> =
        edges.iter().map(|(from, _, _)| from.as_str()).collect();
    for start in modules {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![start.to_string()];
        while let Some(module) = todo.pop() {
            for (_, to, file) in edges.iter().filter(|(from, _, _)| *from == module) {
                if to == start {
                    wrong.push(format!(
                        "{file}: `{module}` → `{start}` closes a cycle through `{start}`"
                    ));
                } else if seen.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "the module layers are broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn imports_are_read_from_use_lines_and_inline_paths() {
    assert_eq!(
        imports_of("use crate::core::{fresh, selection};\nlet x = crate::paths::read(p); // crate::run::x\n"),
        ["core::fresh", "core::selection", "paths"]
    );
}
