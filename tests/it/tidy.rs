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
