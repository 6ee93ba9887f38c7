//! Rust-userland probes: `new --userland rust` → `-b` → `run`, one shared target directory (libbpf-sys
//! compiles once for all Rust probes), warm rebuilds touch only the edited probe, and a probe crate built
//! without ebpf-probe says what to run.

use crate::support::{require, require_kernel, run_while_triggering, Workspace};

/// Each test gets its own cargo target directory, so "compiled once" is measured from cold.
fn cold_target() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ebpf-probe-rust-target")
        .tempdir()
        .unwrap()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn rust_probes_share_one_build_and_rebuild_only_what_changed() {
    if !require_kernel() || !require("cargo", crate::support::has_program("cargo")) {
        return;
    }
    let target = cold_target();
    let target_dir = target.path().to_str().unwrap();
    let ws = Workspace::new().gen();
    ws.cmd(&["new", "rexec", "--userland", "rust"]).success();
    ws.cmd(&[
        "new",
        "rlookup",
        "--userland",
        "rust",
        "--attach",
        "uretprobe:libc.so.6:getaddrinfo",
    ])
    .success();
    assert!(
        ws.path("Cargo.toml").is_file()
            && ws.path("sdk/rust/Cargo.toml").is_file()
            && ws.path("sdk/skelgen/src/main.rs").is_file()
    );

    let cold = ws
        .cmd(&["-b"])
        .env("CARGO_TARGET_DIR", target_dir)
        .success();
    let stderr = cold.stderr();
    assert_eq!(
        count(&stderr, "Compiling libbpf-sys"),
        1,
        "libbpf-sys compiles once for all Rust probes:\n{stderr}"
    );
    // The skeleton generator's cargo run and the probes' resolve libbpf-rs's features alike.
    assert_eq!(
        count(&stderr, "Compiling libbpf-rs"),
        1,
        "libbpf-rs compiles once, for the skeleton generator and the probes:\n{stderr}"
    );
    assert!(ws.path(".output/bin/rexec").is_file() && ws.path(".output/bin/rlookup").is_file());
    assert!(
        ws.path(".output/rexec/rexec.skel.rs").is_file()
            && ws.path(".output/rexec/meta.rs").is_file()
    );

    // Touch one probe's main.rs: only that crate is rebuilt.
    let main_rs = ws.path("probes/rexec/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(&main_rs, format!("{text}\n// edited\n")).unwrap();
    let warm = ws
        .cmd(&["-b"])
        .env("CARGO_TARGET_DIR", target_dir)
        .success();
    let stderr = warm.stderr();
    assert_eq!(count(&stderr, "Compiling rexec"), 1, "{stderr}");
    assert_eq!(count(&stderr, "Compiling rlookup"), 0, "{stderr}");
    assert_eq!(count(&stderr, "Compiling libbpf"), 0, "{stderr}");
    assert_eq!(count(&stderr, "Compiling ebpf-probe-sdk"), 0, "{stderr}");

    // Nothing changed: cargo is not even started (Rust probes take part in the no-op rule).
    let noop = ws
        .cmd(&["-v", "-b"])
        .env("CARGO_TARGET_DIR", target_dir)
        .success();
    assert!(!noop.stderr().contains("Running `"), "{}", noop.report());
    noop.stderr_contains("Fresh rexec");
    // A manifest edit is seen even though no dep-info lists it: cargo runs again.
    let manifest = ws.path("probes/rlookup/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n")).unwrap();
    let edited = ws
        .cmd(&["-v", "-b"])
        .env("CARGO_TARGET_DIR", target_dir)
        .success();
    assert!(edited.stderr().contains("Running `"), "{}", edited.report());

    // The new Rust probe prints valid lines out of the box.
    let run = run_while_triggering(&ws, "rexec", &[("CARGO_TARGET_DIR", target_dir)], &["true"]);
    run.assert_success();
    assert!(
        run.stdout().lines().any(|l| l.starts_with("|rexec|")),
        "{}",
        run.report()
    );
    assert!(!run.stderr().contains(" 0 valid lines"), "{}", run.report());
}

#[test]
fn a_rust_probe_built_without_ebpf_probe_says_to_run_it() {
    if !require("cargo", crate::support::has_program("cargo")) {
        return;
    }
    let ws = Workspace::new();
    ws.cmd(&["new", "rplain", "--userland", "rust"]).success();
    let target = cold_target();
    // Only the build script runs (no dependency is compiled before it fails): `cargo check` is enough.
    ws.program("cargo")
        .args(["check", "--release", "-p", "rplain"])
        .env("CARGO_TARGET_DIR", target.path())
        .failure()
        .stderr_contains("ebpf-probe -b rplain");
}
