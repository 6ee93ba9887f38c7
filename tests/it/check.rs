//! `--check` against this machine: every row, the real attach-kind tests, JSON, and exit status.

use std::path::Path;
use std::sync::OnceLock;

use crate::support::{has_program, is_root, require, require_build_tools, Workspace};

fn rows(json: &serde_json::Value) -> &Vec<serde_json::Value> {
    json["rows"].as_array().expect("rows")
}

fn find<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rows(json)
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {json:#}"))
}

/// `check --json` as root with the tools, run once for the tests that read it; `None` when it cannot run here.
fn machine_report() -> Option<&'static serde_json::Value> {
    static REPORT: OnceLock<Option<serde_json::Value>> = OnceLock::new();
    REPORT
        .get_or_init(|| {
            if !require_build_tools() || !require("root", is_root()) {
                return None;
            }
            let ws = Workspace::new();
            let done = ws.cmd(&["check", "--json"]).success();
            Some(serde_json::from_str(&done.stdout()).unwrap_or_else(|e| {
                panic!("check --json printed no JSON ({e})\n{}", done.report())
            }))
        })
        .as_ref()
}

#[test]
fn check_reports_this_machine_correctly() {
    let Some(json) = machine_report() else {
        return;
    };
    assert_eq!(json["ok"], true, "{json:#}");
    let machine = std::env::consts::ARCH;
    let target = match machine {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "riscv64" => "riscv",
        other => other,
    };
    assert!(find(json, "arch")["value"]
        .as_str()
        .unwrap()
        .contains(&format!("BPF target {target}")));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(find(json, "kernel")["value"]
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
        assert_eq!(find(json, name)["ok"], true, "{name}: {json:#}");
        assert_eq!(find(json, name)["required"], true, "{name}");
    }
    assert_eq!(
        find(json, "btf")["ok"],
        Path::new("/sys/kernel/btf/vmlinux").exists()
    );
    for (name, fstype, point) in [
        ("tracefs", "tracefs", "/sys/kernel/tracing"),
        ("bpffs", "bpf", "/sys/fs/bpf"),
    ] {
        assert_eq!(
            find(json, name)["ok"],
            mounted(fstype, point),
            "{name}: {json:#}"
        );
    }
}

#[test]
fn pahole_cross_compiler_and_gen_route_rows_say_what_this_machine_has() {
    let Some(json) = machine_report() else {
        return;
    };
    let has_btf = Path::new("/sys/kernel/btf/vmlinux").is_file();
    // pahole: found or not as PATH says; required only where -g has to take the DWARF route.
    let pahole = find(json, "pahole");
    assert_eq!(pahole["section"], "tools", "{pahole}");
    assert_eq!(pahole["ok"], has_program("pahole"), "{pahole}");
    assert_eq!(pahole["required"], !has_btf, "{pahole}");
    if pahole["ok"] == false {
        assert!(
            pahole["fix"].as_str().is_some_and(|f| !f.is_empty()),
            "{pahole}"
        );
    }
    // One informational row per cross compiler: what -b --arch does with it, or without it.
    for name in ["aarch64-linux-gnu-gcc", "riscv64-linux-gnu-gcc"] {
        let row = find(json, name);
        assert_eq!(row["section"], "tools", "{row}");
        assert_eq!(row["required"], false, "{row}");
        assert_eq!(row["ok"], has_program(name), "{row}");
        let value = row["value"].as_str().unwrap();
        if has_program(name) {
            assert!(
                value.contains(name) && value.contains("-b --arch builds userland with it"),
                "{row}"
            );
        } else {
            assert!(value.contains("-b --arch builds BPF objects only"), "{row}");
            assert!(row["fix"].as_str().is_some_and(|f| !f.is_empty()), "{row}");
        }
    }
    // The gen route follows the kernel's BTF, and never decides the exit status.
    let route = find(json, "gen route");
    assert_eq!(route["section"], "kernel", "{route}");
    assert_eq!(route["required"], false, "{route}");
    assert_eq!(route["ok"], true, "{route}");
    let value = route["value"].as_str().unwrap();
    if has_btf {
        assert!(
            value.contains("dumps /sys/kernel/btf/vmlinux with bpftool"),
            "{route}"
        );
    } else {
        assert!(
            value.contains("--kernel-package") && value.contains("pahole"),
            "{route}"
        );
    }
    // The rows come in the order the sections print: tools before kernel, pahole before the cross compilers.
    let names: Vec<&str> = rows(json)
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(at("pahole") < at("aarch64-linux-gnu-gcc"));
    assert!(at("btf") < at("gen route"));
}

/// Whether /proc/self/mounts lists a `fstype` file system at `point`.
fn mounted(fstype: &str, point: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.get(1) == Some(&point) && fields.get(2) == Some(&fstype)
        })
}

/// The running kernel's build configuration, from /proc/config.gz or /boot/config-<release>, when readable.
fn kernel_config() -> Option<String> {
    if let Ok(file) = std::fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        use std::io::Read;
        if flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some(text);
        }
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()
}

/// Whether `CONFIG_<name>` is built in or a module; an option the file does not list is not set.
fn config_enabled(config: &str, name: &str) -> bool {
    let prefix = format!("CONFIG_{name}=");
    config.lines().any(|l| {
        l.strip_prefix(&prefix)
            .is_some_and(|v| v == "y" || v == "m")
    })
}

/// (major, minor) of the running kernel.
fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

fn exists(path: &str) -> bool {
    Path::new(path).exists()
}

/// What the test knows, without loading anything, about whether each attach kind can work here; `None` where
/// no such fact can be read (then only the row's consistency is checked).
fn expected_attach_kinds() -> Vec<(&'static str, Option<bool>, String)> {
    let config = kernel_config();
    let enabled = |name: &str| config.as_deref().map(|c| config_enabled(c, name));
    // BPF programs attached to perf and trace events; without it kprobe, uprobe and tracepoint programs have
    // nothing to attach to.
    let bpf_events = enabled("BPF_EVENTS").unwrap_or(true);
    let version = kernel_version();
    let btf = exists("/sys/kernel/btf/vmlinux");
    let kprobes = enabled("KPROBES").unwrap_or_else(|| {
        exists("/sys/bus/event_source/devices/kprobe")
            || exists("/sys/kernel/tracing/kprobe_events")
    });
    let uprobes = enabled("UPROBE_EVENTS").unwrap_or_else(|| {
        exists("/sys/bus/event_source/devices/uprobe")
            || exists("/sys/kernel/tracing/uprobe_events")
    });
    // libbpf reads a tracepoint's id from tracefs, mounted at either place.
    let tracefs =
        exists("/sys/kernel/tracing/events") || exists("/sys/kernel/debug/tracing/events");
    let why = |fact: bool, what: &str| format!("{what}: {fact}");
    // fentry needs BTF and (on x86) ftrace direct calls; with both, whether the kernel lets it load
    // (lockdown, trampolines) is not something a file says, so then nothing is expected.
    let fentry_possible = btf
        && (std::env::consts::ARCH != "x86_64"
            || enabled("DYNAMIC_FTRACE_WITH_DIRECT_CALLS").unwrap_or(true));
    vec![
        (
            "kprobe",
            Some(kprobes && bpf_events),
            why(
                kprobes && bpf_events,
                "CONFIG_KPROBES (or a kprobe PMU / kprobe_events) and CONFIG_BPF_EVENTS",
            ),
        ),
        (
            "fentry",
            (!fentry_possible).then_some(false),
            why(fentry_possible, "kernel BTF and ftrace direct calls"),
        ),
        (
            "tp_btf",
            Some(btf && version >= (5, 5)),
            why(btf && version >= (5, 5), "kernel BTF and Linux >= 5.5"),
        ),
        (
            "tracepoint",
            Some(tracefs && bpf_events),
            why(
                tracefs && bpf_events,
                "tracefs events and CONFIG_BPF_EVENTS",
            ),
        ),
        (
            "raw_tracepoint",
            Some(version >= (4, 17)),
            why(version >= (4, 17), "Linux >= 4.17"),
        ),
        (
            "uprobe",
            Some(uprobes && bpf_events),
            why(
                uprobes && bpf_events,
                "CONFIG_UPROBE_EVENTS (or a uprobe PMU / uprobe_events) and CONFIG_BPF_EVENTS",
            ),
        ),
        (
            "uretprobe",
            Some(uprobes && bpf_events),
            why(
                uprobes && bpf_events,
                "CONFIG_UPROBE_EVENTS (or a uprobe PMU / uprobe_events) and CONFIG_BPF_EVENTS",
            ),
        ),
        (
            "ringbuf",
            Some(version >= (5, 8)),
            why(version >= (5, 8), "Linux >= 5.8 (BPF ring buffers)"),
        ),
    ]
}

#[test]
fn attach_kinds_agree_with_what_the_kernel_says_about_itself() {
    let Some(json) = machine_report() else {
        return;
    };
    let attach: Vec<&serde_json::Value> = rows(json)
        .iter()
        .filter(|r| r["section"] == "attach")
        .collect();
    let expected = expected_attach_kinds();
    assert_eq!(
        attach
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|(kind, _, _)| *kind)
            .collect::<Vec<_>>(),
        "one row per attach kind, in the helper's order: {json:#}"
    );
    for (row, (kind, available, why)) in attach.iter().zip(&expected) {
        let ok = row["ok"].as_bool().unwrap();
        let value = row["value"].as_str().unwrap();
        assert_eq!(
            row["required"], false,
            "attach kinds are informational: {row}"
        );
        // The row says what happened, and that agrees with its mark.
        if ok {
            assert!(
                [
                    "loaded, attached and fired",
                    "loaded, attached, records received"
                ]
                .contains(&value),
                "{row}"
            );
        } else {
            assert!(
                [
                    "open failed: ",
                    "load refused: ",
                    "attach failed: ",
                    "ring buffer setup failed: ",
                    "attached but never fired",
                ]
                .iter()
                .any(|stage| value.starts_with(stage)),
                "a failed kind names the stage that failed: {row}"
            );
        }
        if let Some(available) = available {
            assert_eq!(
                ok, *available,
                "`{kind}` row disagrees with the kernel ({why}): {row}"
            );
        }
    }
    // The helper's own diagnosis of a missing kprobe PMU matches the file system.
    let kprobe = find(json, "kprobe");
    assert_eq!(
        kprobe["value"].as_str().unwrap().contains("no kprobe PMU"),
        kprobe["ok"] == false && !exists("/sys/bus/event_source/devices/kprobe"),
        "{kprobe}"
    );
    // A workspace that names no extra libraries gets no section for them.
    assert!(
        rows(json)
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
