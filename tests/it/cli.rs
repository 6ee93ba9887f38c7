//! The command line itself: the exact options, subcommands and environment variables `--help` documents, both
//! spellings, errors outside a workspace.

use std::collections::BTreeSet;

use crate::support::{ebpf_probe, program, Workspace, BIN};

/// Options every subcommand takes (clap's `global = true`) and `-h`.
const GLOBAL: &[&str] = &["-C", "-v", "--verbose", "--libbpf", "-h", "--help"];

/// Every subcommand: its usage line and its own options (besides `GLOBAL`).
const SUBCOMMANDS: &[(&str, &str, &[&str])] = &[
    (
        "check",
        "Usage: ebpf-probe check [OPTIONS]",
        &["--fix", "--json", "--arch"],
    ),
    (
        "gen",
        "Usage: ebpf-probe gen [OPTIONS]",
        &[
            "--btf",
            "--vmlinux",
            "--kernel-package",
            "--arch",
            "--kernel-release",
        ],
    ),
    (
        "build",
        "Usage: ebpf-probe build [OPTIONS] [PROBE]...",
        &[
            "-d",
            "--debug",
            "-j",
            "--jobs",
            "--message-format",
            "--verify",
            "--no-retry",
            "--arch",
        ],
    ),
    ("clean", "Usage: ebpf-probe clean [OPTIONS] [PROBE]...", &[]),
    (
        "verify",
        "Usage: ebpf-probe verify [OPTIONS] [PROBE]...",
        &["--no-retry"],
    ),
    (
        "btfgen",
        "Usage: ebpf-probe btfgen [OPTIONS] --kernel <FILE|DIR> [PROBE]...",
        &["--kernel", "--arch"],
    ),
    (
        "compat",
        "Usage: ebpf-probe compat [OPTIONS] [PROBE]...",
        &["--kernel", "--no-running", "--json", "-j", "--jobs"],
    ),
    (
        "install",
        "Usage: ebpf-probe install [OPTIONS] [PROBE]...",
        INSTALL,
    ),
    (
        "uninstall",
        "Usage: ebpf-probe uninstall [OPTIONS] [PROBE]...",
        INSTALL_DIRS,
    ),
    (
        "new",
        "Usage: ebpf-probe new [OPTIONS] <NAME>",
        &["--userland", "--attach", "--binary", "--force"],
    ),
    ("init", "Usage: ebpf-probe init [OPTIONS] <DIR>", &[]),
    (
        "run",
        "Usage: ebpf-probe run [OPTIONS] <PROBE> [-- <ARGS>...]",
        &["--seconds"],
    ),
    (
        "check-meta",
        "Usage: ebpf-probe check-meta [OPTIONS] [PROBE]...",
        &[],
    ),
    (
        "import",
        "Usage: ebpf-probe import [OPTIONS] [DIR]",
        &["--force"],
    ),
    (
        "completions",
        "Usage: ebpf-probe completions [OPTIONS] <SHELL>",
        &[],
    ),
    ("man", "Usage: ebpf-probe man [OPTIONS]", &["--dir"]),
];

/// `install`'s options: the directories `uninstall` shares, then `--arch`.
const INSTALL: &[&str] = &[
    "-b",
    "--bin-dir",
    "-c",
    "--conf-dir",
    "-m",
    "--meta-dir",
    "-B",
    "--btf-dir",
    "--destdir",
    "--arch",
];
const INSTALL_DIRS: &[&str] = INSTALL.split_at(INSTALL.len() - 1).0;

/// The top level's own options: the build.sh spellings, and `--version`.
const TOP_LEVEL: &[&str] = &[
    "--check",
    "--fix",
    "--json",
    "-g",
    "--gen",
    "--btf",
    "--vmlinux",
    "--kernel-package",
    "--kernel-release",
    "--arch",
    "-b",
    "--build",
    "-d",
    "--debug",
    "-j",
    "--jobs",
    "--message-format",
    "--verify",
    "--no-retry",
    "-c",
    "--clean",
    "--install",
    "-V",
    "--version",
];

/// The environment variables the program reads, which `--help` must document.
const ENVIRONMENT: &[&str] = &[
    "CLANG",
    "LLVM_STRIP",
    "BPFTOOL",
    "CC",
    "CXX",
    "VMLINUX_VER",
    "BUILD_OPTS",
    "EXTEND_PROBES",
    "EBPF_PROBE_CACHE_DIR",
    "HTTPS_PROXY",
    "NO_PROXY",
    "EBPF_PROBE_PCH",
    "EBPF_PROBE_SAFE_DIRECTORIES",
    "EBPF_PROBE_SLOW_SECONDS",
    "EBPF_PROBE_DEBUG_MIRROR",
    "EBPF_PROBE_DEBUG_MIRROR_UNSIGNED",
    "EBPF_PROBE_BTF_FILE",
    "EBPF_PROBE_BTF_DIR",
];

fn help(args: &[&str]) -> String {
    ebpf_probe(args).success().stdout()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The lines of `section` (`Commands:`, `Environment:`): from its heading to the next blank line.
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The flags clap lists as options: lines indented 2 (`  -g, --gen`) or 6 (`      --check`) that start with `-`,
/// read up to the description. Wrapped descriptions are indented further, so a flag named only in prose is not one.
fn option_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter(|l| matches!(indent(l), 2 | 6) && l.trim_start().starts_with('-'))
        .flat_map(|l| {
            let head = l.trim_start().split("  ").next().unwrap_or("");
            head.split(", ")
                .filter_map(|part| part.split_whitespace().next())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn help_lists_exactly_the_old_spellings_and_the_global_options() {
    let top = help(&["--help"]);
    assert_eq!(
        top.lines().find(|l| l.starts_with("Usage:")),
        Some("Usage: ebpf-probe [OPTIONS] [COMMAND]"),
        "{top}"
    );
    let expected: BTreeSet<String> = set(GLOBAL).union(&set(TOP_LEVEL)).cloned().collect();
    assert_eq!(option_flags(&top), expected, "{top}");
}

#[test]
fn help_lists_exactly_the_subcommands() {
    let top = help(&["--help"]);
    let listed: Vec<&str> = section(&top, "Commands:")
        .into_iter()
        .filter(|l| indent(l) == 2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut expected: Vec<&str> = SUBCOMMANDS.iter().map(|(name, _, _)| *name).collect();
    expected.push("help");
    assert_eq!(listed, expected, "{top}");
}

#[test]
fn every_subcommand_has_its_usage_line_and_exactly_its_options() {
    for (name, usage, own) in SUBCOMMANDS {
        let text = help(&[name, "--help"]);
        assert_eq!(
            text.lines().find(|l| l.starts_with("Usage:")),
            Some(*usage),
            "`{name} --help`:\n{text}"
        );
        let expected: BTreeSet<String> = set(GLOBAL).union(&set(own)).cloned().collect();
        assert_eq!(option_flags(&text), expected, "`{name} --help`:\n{text}");
    }
}

#[test]
fn help_documents_every_environment_variable() {
    let top = help(&["--help"]);
    // `CLANG, LLVM_STRIP, BPFTOOL, CC   use these…`, `EXTEND_PROBES="a|b"   leave…`: the names before the text.
    let documented: BTreeSet<String> = section(&top, "Environment:")
        .into_iter()
        .flat_map(|l| {
            l.trim_start()
                .split("  ")
                .next()
                .unwrap_or("")
                .split(", ")
                .map(|name| name.split('=').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .filter(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    assert_eq!(documented, set(ENVIRONMENT), "{top}");
}

#[test]
fn the_option_reader_ignores_flags_named_only_in_prose() {
    // A help text that mentions --install in a wrapped description must not count it as an option.
    let text =
        "Options:\n  -x, --ex <N>  Does x\n                 (see --install)\n      --why     Why\n";
    assert_eq!(option_flags(text), set(&["-x", "--ex", "--why"]));
}

#[test]
fn no_arguments_prints_help_and_fails() {
    let done = ebpf_probe(&[]).failure();
    assert!(
        done.stderr()
            .starts_with("Write, check, build and ship eBPF probes")
            && done
                .stderr()
                .lines()
                .any(|l| l == "Usage: ebpf-probe [OPTIONS] [COMMAND]"),
        "{}",
        done.report()
    );
}

#[test]
fn outside_a_workspace_the_error_names_the_marker_and_the_ways_out() {
    let dir = tempfile::tempdir().unwrap();
    let done = ebpf_probe(&["-C", dir.path().to_str().unwrap(), "-b"])
        .tree_of(dir.path())
        .failure();
    done.stderr_contains("ebpf-probe.toml")
        .stderr_contains("-C DIR");
    // The same from a current directory outside any workspace, without -C.
    ebpf_probe(&["-b"])
        .failure()
        .stderr_contains("ebpf-probe.toml");
}

#[test]
fn the_workspace_is_found_from_a_subdirectory_and_with_dash_c() {
    let ws = Workspace::new()
        .file("probes/p/p.bpf.c", "")
        .file("probes/p/p.c", "");
    // Cleaning a probe by name proves the workspace (and its probe list) was found.
    ws.cmd(&["-c", "p"])
        .current_dir(&ws.path("probes/p"))
        .success()
        .stderr_contains("Removed outputs of p");
    let other = tempfile::tempdir().unwrap();
    ws.cmd(&["-C", ws.root().to_str().unwrap(), "clean", "p"])
        .current_dir(other.path())
        .success()
        .stderr_contains("Removed outputs of p");
}

#[test]
fn an_unknown_probe_is_refused_with_the_list_of_probes() {
    let ws = Workspace::new()
        .file("probes/p/p.bpf.c", "")
        .file("probes/p/p.c", "");
    ws.cmd(&["-c", "nosuch"])
        .failure()
        .stderr_contains("no probe named `nosuch`")
        .stderr_contains("probes here: p");
}

/// Every subcommand name (what completions and the man page must know).
fn subcommand_names() -> Vec<&'static str> {
    SUBCOMMANDS.iter().map(|(name, _, _)| *name).collect()
}

#[test]
fn bash_completions_name_every_subcommand_and_register_with_complete() {
    let script = ebpf_probe(&["completions", "bash"]).success().stdout();
    for name in subcommand_names() {
        assert!(script.contains(name), "`{name}` missing from:\n{script}");
    }
    assert!(script.contains("complete -F"), "{script}");
    // bash itself accepts the script and registers the completion function.
    let command = format!("source <('{BIN}' completions bash) && complete -p ebpf-probe");
    program("bash")
        .args(["-c", &command])
        .success()
        .stdout_contains("ebpf-probe");
}

#[test]
fn zsh_and_fish_completions_are_printed() {
    // Nothing but the definitions is read: an environment a build would refuse does not matter.
    ebpf_probe(&["completions", "zsh"])
        .env("VMLINUX_VER", "not a release")
        .success()
        .stdout_contains("#compdef ebpf-probe");
    ebpf_probe(&["completions", "fish"])
        .success()
        .stdout_contains("complete -c ebpf-probe");
    ebpf_probe(&["completions", "tcsh"])
        .failure()
        .stderr_contains("invalid value 'tcsh'");
}

#[test]
fn the_man_page_is_roff_and_lists_every_subcommand() {
    let page = ebpf_probe(&["man"]).success().stdout();
    // clap_mangen opens with two string definitions (`.ie`/`.el`); the first macro of the page itself is `.TH`.
    let first_macro = page
        .lines()
        .find(|l| l.starts_with(".TH") || l.starts_with(".SH"))
        .unwrap_or("");
    assert!(first_macro.starts_with(".TH ebpf-probe 1"), "{page}");
    for name in subcommand_names() {
        // roff escapes the hyphen in `check-meta`.
        let escaped = name.replace('-', "\\-");
        assert!(
            page.contains(&format!("\nebpf\\-probe\\-{escaped}(1)\n")),
            "`{name}` missing from:\n{page}"
        );
    }
    // The environment `--help` documents is in the page too.
    for variable in ENVIRONMENT {
        assert!(
            page.contains(variable),
            "`{variable}` missing from:\n{page}"
        );
    }
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("man1");
    ebpf_probe(&["man", "--dir", dir.to_str().unwrap()])
        .tree_of(out.path())
        .success()
        .stderr_contains("man pages");
    let mut expected = vec!["ebpf-probe.1".to_string()];
    expected.extend(
        subcommand_names()
            .iter()
            .map(|n| format!("ebpf-probe-{n}.1")),
    );
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, expected);
    let check = std::fs::read_to_string(dir.join("ebpf-probe-check.1")).unwrap();
    assert!(check.contains(".TH ebpf-probe-check 1"), "{check}");
    assert!(check.contains("\\-\\-fix"), "{check}");
}

#[test]
fn arch_without_gen_or_build_says_what_it_goes_with() {
    let ws = Workspace::new();
    for args in [&["--arch", "aarch64"][..], &["--arch", "aarch64", "check"]] {
        ws.cmd(args)
            .failure()
            .stderr_contains("--arch aarch64 does nothing on its own")
            .stderr_contains("-g --btf FILE --arch aarch64")
            .stderr_contains("-b --arch aarch64")
            .stderr_contains("--check --fix --arch aarch64");
    }
    // With --check it asks for that architecture's cross toolchain; a name that is no architecture is refused.
    let checked = ws.cmd(&["--check", "--arch", "riscv64"]).output();
    checked
        .stdout_contains("riscv64 C compiler")
        .stdout_contains("riscv64 libelf, zlib");
    ws.cmd(&["check", "--arch", "sparc9"])
        .failure()
        .stderr_contains("unknown architecture `sparc9` for --arch");
}
