//! `--check` against this machine: every row, the real attach-kind tests, JSON, and exit status.

use std::path::Path;

use crate::support::{is_root, require, require_build_tools, Workspace};

fn rows(json: &serde_json::Value) -> &Vec<serde_json::Value> {
    json["rows"].as_array().expect("rows")
}

fn find<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rows(json)
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {json:#}"))
}

#[test]
fn check_reports_this_machine_correctly() {
    if !require_build_tools() || !require("root", is_root()) {
        return;
    }
    let ws = Workspace::new();
    let done = ws.cmd(&["check", "--json"]).success();
    let json: serde_json::Value = serde_json::from_str(&done.stdout()).unwrap();
    assert_eq!(json["ok"], true);
    let machine = std::env::consts::ARCH;
    let target = match machine {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "riscv64" => "riscv",
        other => other,
    };
    assert!(find(&json, "arch")["value"]
        .as_str()
        .unwrap()
        .contains(&format!("BPF target {target}")));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(find(&json, "kernel")["value"]
        .as_str()
        .unwrap()
        .contains(release.trim()));
    for name in [
        "clang",
        "llvm-strip",
        "bpftool",
        "cc",
        "libelf",
        "zlib",
        "libbpf",
    ] {
        assert_eq!(find(&json, name)["ok"], true, "{name}: {json:#}");
        assert_eq!(find(&json, name)["required"], true, "{name}");
    }
    assert_eq!(
        find(&json, "btf")["ok"],
        Path::new("/sys/kernel/btf/vmlinux").exists()
    );
    // What this kernel really offers: kprobes are compiled out, fentry is refused, tp_btf works.
    let kprobe = find(&json, "kprobe");
    assert_eq!(kprobe["ok"], false);
    assert!(
        kprobe["value"].as_str().unwrap().contains("kprobe PMU"),
        "{kprobe}"
    );
    assert_eq!(find(&json, "fentry")["ok"], false);
    assert!(find(&json, "fentry")["value"]
        .as_str()
        .unwrap()
        .contains("EPERM"));
    for kind in ["tp_btf", "raw_tracepoint", "uprobe", "uretprobe", "ringbuf"] {
        assert_eq!(find(&json, kind)["ok"], true, "{kind}: {json:#}");
    }
    assert_eq!(
        find(&json, "tracepoint")["ok"],
        Path::new("/sys/kernel/tracing/events").is_dir()
    );
    // A workspace that names no extra libraries gets no section for them.
    assert!(
        rows(&json)
            .iter()
            .all(|r| r["section"] != "workspace libraries"),
        "{json:#}"
    );
}

#[test]
fn the_table_marks_rows_and_gives_fixes() {
    if !require_build_tools() {
        return;
    }
    let ws = Workspace::new();
    let done = ws.cmd(&["--check"]).success();
    done.stdout_contains("✔ clang")
        .stdout_contains("ready to build probes");
}

#[test]
fn check_fails_and_names_the_fix_when_clang_is_missing() {
    if !require_build_tools() {
        return;
    }
    // A PATH with every tool the check looks for except clang.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["llvm-strip", "bpftool", "cc", "make", "mount"] {
        let real = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists());
        if let Some(real) = real {
            std::os::unix::fs::symlink(real, bin.path().join(tool)).unwrap();
        }
    }
    let ws = Workspace::new();
    let done = ws
        .cmd(&["--check"])
        .env("PATH", bin.path().to_str().unwrap())
        .env_remove("CLANG")
        .failure();
    done.stdout_contains("✘ clang").stdout_contains("fix:");
    done.stderr_contains("clang");
    let json = ws
        .cmd(&["check", "--json"])
        .env("PATH", bin.path().to_str().unwrap())
        .env_remove("CLANG")
        .failure();
    let json: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(json["ok"], false);
    let clang = find(&json, "clang");
    assert_eq!(clang["ok"], false);
    assert!(
        clang["fix"].as_str().unwrap().contains("install"),
        "{clang}"
    );
}
