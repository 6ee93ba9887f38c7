//! The command line itself: help text, both spellings, errors outside a workspace.

use crate::support::{Workspace, BIN};
use std::process::Command;

#[test]
fn help_documents_the_old_spellings_and_the_subcommands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--check",
        "-g, --gen",
        "-b, --build",
        "-c, --clean",
        "--install",
        "-d, --debug",
        "-C <DIR>",
        "check",
        "gen",
        "build",
        "clean",
        "install",
        "new",
        "VMLINUX_VER",
        "EXTEND_PROBES",
        "BUILD_OPTS",
        "CLANG",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn no_arguments_prints_help_and_fails() {
    let out = Command::new(BIN).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

#[test]
fn outside_a_workspace_the_error_names_the_marker_and_the_ways_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["-C", dir.path().to_str().unwrap(), "-b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ebpf-probe.toml") && stderr.contains("-C DIR"),
        "{stderr}"
    );
}

#[test]
fn the_workspace_is_found_from_a_subdirectory_and_with_dash_c() {
    let ws = Workspace::new()
        .file("probes/p/p.bpf.c", "")
        .file("probes/p/p.c", "");
    // Cleaning a probe by name proves the workspace (and its probe list) was found.
    let mut from_sub = ws.cmd(&["-c", "p"]);
    from_sub.command.current_dir(ws.path("probes/p"));
    from_sub.success().stderr_contains("Removed outputs of p");
    let other = tempfile::tempdir().unwrap();
    let mut with_c = ws.cmd(&["-C", ws.root().to_str().unwrap(), "clean", "p"]);
    with_c.command.current_dir(other.path());
    with_c.success();
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
