//! `-b` and `-c` with the real clang, llvm-strip, bpftool and cc: outputs, per-probe settings, failures that
//! do not stop other probes, incremental rebuilds, header selection, exclusion and cleaning.

use std::path::Path;
use std::time::SystemTime;

use crate::support::{require, require_build_tools, Workspace};

const TINY_BPF: &str = r#"// A minimal kernel program: opens with the generated header like every probe.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tiny.h"
char LICENSE[] SEC("license") = "GPL";
SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx) { return TINY_RET; }
"#;

const TINY_USER: &str = r#"#include <stdio.h>
#include "tiny.skel.h"
int main(void) {
    struct tiny_bpf *skel = tiny_bpf__open();
    printf("opened %d\n", skel != NULL);
    tiny_bpf__destroy(skel);
    return 0;
}
"#;

fn with_tiny(ws: Workspace, dir: &str) -> Workspace {
    ws.file(&format!("probes/{dir}/tiny.bpf.c"), TINY_BPF)
        .file(&format!("probes/{dir}/tiny.h"), "#define TINY_RET 0\n")
        .file(&format!("probes/{dir}/tiny.c"), TINY_USER)
}

fn ready() -> bool {
    require_build_tools() && require("kernel BTF", Path::new("/sys/kernel/btf/vmlinux").exists())
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .modified()
        .unwrap()
}

#[test]
fn a_compile_error_shows_clangs_own_lines_and_does_not_stop_the_other_probes() {
    if !ready() {
        return;
    }
    let ws = with_tiny(Workspace::new(), "tiny")
        .file(
            "probes/broken/broken.bpf.c",
            "#include \"vmlinux.h\"\n\nint oops( {\n",
        )
        .file("probes/broken/broken.c", "int main(void) { return 0; }\n")
        .gen();
    let done = ws.cmd(&["-b"]).failure();
    done.stderr_contains("probe `broken` failed to build")
        .stderr_contains("probes/broken/broken.bpf.c:3:")
        .stderr_contains("error:")
        .stderr_contains("-target bpf")
        .stderr_contains("1 of 2 probes failed to build: broken");
    let run = ws.program(ws.path(".output/bin/tiny")).success();
    assert_eq!(run.stdout(), "opened 1\n", "{}", run.report());
    assert!(ws.path(".output/tiny/tiny.skel.h").is_file());
    assert!(ws.path(".output/tiny/tiny.bpf.o").is_file());
}

#[test]
fn builds_are_incremental_and_follow_headers_and_flags() {
    if !ready() {
        return;
    }
    let ws = with_tiny(Workspace::new(), "tiny").gen();
    ws.cmd(&["-b", "tiny"]).success();
    let binary = ws.path(".output/bin/tiny");
    let object = ws.path(".output/tiny/tiny.bpf.o");
    let (bin_time, obj_time) = (mtime(&binary), mtime(&object));

    let again = ws.cmd(&["-v", "-b", "tiny"]).success();
    assert!(
        !again.stderr().contains("Running"),
        "nothing should run:\n{}",
        again.stderr()
    );
    assert_eq!(mtime(&binary), bin_time);

    // Editing a header the BPF program includes rebuilds the object (clang's -MD dependencies).
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(ws.path("probes/tiny/tiny.h"), "#define TINY_RET 1\n").unwrap();
    ws.cmd(&["-b", "tiny"]).success();
    assert!(
        mtime(&object) > obj_time,
        "header change rebuilt the object"
    );

    // -d changes the flags, so everything is rebuilt with -DGOPHER_DEBUG.
    let debug = ws.cmd(&["-v", "-b", "tiny", "-d"]).success();
    debug
        .stderr_contains("-DGOPHER_DEBUG")
        .stderr_contains("-DKER_VER_MAJOR=");
    assert!(mtime(&binary) > bin_time);
}

#[test]
fn probe_toml_sets_binary_name_and_extra_flags() {
    if !ready() {
        return;
    }
    let ws = with_tiny(Workspace::new(), "lvsprobe")
        .file(
            "probes/lvsprobe/probe.toml",
            "binary = \"trace_lvs\"\nclang_flags = [\"-mcpu=v3\"]\ncflags = [\"-DEXTRA_CFLAG=7\"]\nlibs = [\"m\"]\n",
        )
        .gen();
    let done = ws
        .cmd(&["-v", "build"])
        .env("BUILD_OPTS", "-DFROM_BUILD_OPTS=1")
        .success();
    done.stderr_contains("-mcpu=v3")
        .stderr_contains("-DEXTRA_CFLAG=7")
        .stderr_contains("-lm")
        .stderr_contains("-DFROM_BUILD_OPTS=1");
    assert!(ws.path(".output/bin/trace_lvs").is_file());
    assert!(!ws.path(".output/bin/lvsprobe").exists());

    let bad = Workspace::new().file("probes/p/probe.toml", "binary = \"../escape\"\n");
    bad.cmd(&["-b"])
        .failure()
        .stderr_contains("invalid `binary`");
    let typo = Workspace::new().file("probes/p/probe.toml", "clang_flag = []\n");
    typo.cmd(&["-b"])
        .failure()
        .stderr_contains("probe.toml")
        .stderr_contains("unknown field");
}

#[test]
fn several_kernel_programs_give_several_skeletons() {
    if !ready() {
        return;
    }
    let second = TINY_BPF.replace("on_getpid", "on_getpid_too");
    let user = "#include \"tiny.skel.h\"\n#include \"other.skel.h\"\nint main(void) { struct tiny_bpf *a = tiny_bpf__open(); struct other_bpf *b = other_bpf__open(); int ok = a && b; tiny_bpf__destroy(a); other_bpf__destroy(b); return !ok; }\n";
    let ws = Workspace::new()
        .file("probes/multi/tiny.bpf.c", TINY_BPF)
        .file("probes/multi/other.bpf.c", &second)
        .file("probes/multi/tiny.h", "#define TINY_RET 0\n")
        .file("probes/multi/multi.c", user)
        .gen();
    ws.cmd(&["-b"]).success();
    assert!(ws.path(".output/multi/other.skel.h").is_file());
    ws.program(ws.path(".output/bin/multi")).success();
}

#[test]
fn extend_probes_leaves_probes_out() {
    if !ready() {
        return;
    }
    let ws = with_tiny(Workspace::new(), "tiny")
        .file("probes/broken/broken.bpf.c", "syntax error\n")
        .file("probes/broken/broken.c", "")
        .gen();
    ws.cmd(&["-b"]).env("EXTEND_PROBES", "broken|").success();
    assert!(ws.path(".output/bin/tiny").is_file());
    assert!(!ws.path(".output/broken").exists());
}

#[test]
fn header_selection_follows_vmlinux_ver_and_explains_a_missing_header() {
    if !ready() {
        return;
    }
    let ws = with_tiny(Workspace::new(), "tiny");
    ws.cmd(&["-b"])
        .failure()
        .stderr_contains("ebpf-probe -g")
        .stderr_contains("ln -s")
        .stderr_contains("--btf");

    let ws = ws.gen();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string();
    std::fs::copy(
        ws.path(&format!("include/linux_{release}.h")),
        ws.path("include/linux_9.9.9-test.h"),
    )
    .unwrap();
    ws.cmd(&["-v", "-b"])
        .env("VMLINUX_VER", "9.9.9-test")
        .success()
        .stderr_contains("-DKER_VER_MAJOR=9");
    assert_eq!(
        std::fs::read_link(ws.path("include/vmlinux.h"))
            .unwrap()
            .to_str()
            .unwrap(),
        "linux_9.9.9-test.h"
    );
    // No header for the asked release: the existing vmlinux.h is used, and the user is told.
    ws.cmd(&["-b"])
        .env("VMLINUX_VER", "1.2.3-none")
        .success()
        .stderr_contains("using the existing `include/vmlinux.h`");
}

#[test]
fn a_tool_override_that_does_not_exist_is_named() {
    if !ready() {
        return;
    }
    let ws = with_tiny(Workspace::new(), "tiny").gen();
    ws.cmd(&["-b"])
        .env("CLANG", "/nonexistent/clang")
        .failure()
        .stderr_contains("CLANG=/nonexistent/clang");
}

#[test]
fn clean_removes_outputs_but_never_sources_or_headers() {
    if !ready() {
        return;
    }
    let ws = with_tiny(with_tiny(Workspace::new(), "tiny"), "other").gen();
    ws.cmd(&["-b"]).success();
    ws.cmd(&["-c", "tiny"]).success();
    assert!(!ws.path(".output/tiny").exists() && !ws.path(".output/bin/tiny").exists());
    assert!(ws.path(".output/bin/other").is_file());
    ws.cmd(&["clean"]).success();
    assert!(!ws.path(".output").exists());
    assert!(ws.path("probes/tiny/tiny.bpf.c").is_file());
    assert!(ws.path("include/vmlinux.h").exists() && ws.path("include/ext_def.h").is_file());
}

#[test]
fn gen_reads_btf_from_an_elf_object() {
    if !ready() {
        return;
    }
    let ws = with_tiny(Workspace::new(), "tiny").gen();
    ws.cmd(&["-b"]).success();
    let object = ws.path(".output/tiny/tiny.bpf.o");
    ws.cmd(&[
        "gen",
        "--btf",
        object.to_str().unwrap(),
        "--kernel-release",
        "elf-test",
    ])
    .success();
    assert!(std::fs::read_to_string(ws.path("include/linux_elf-test.h"))
        .unwrap()
        .contains("#include \"ext_def.h\""));
}

#[test]
fn message_format_json_streams_steps_diagnostics_and_the_result() {
    if !ready() {
        return;
    }
    // tiny builds with a warning: a successful compile's diagnostics are reported too.
    let ws = with_tiny(Workspace::new(), "tiny")
        .file(
            "probes/tiny/tiny.bpf.c",
            &format!("{TINY_BPF}static int tiny_unused;\n"),
        )
        .file(
            "probes/broken/broken.bpf.c",
            "#include \"vmlinux.h\"\n\nint oops( {\n",
        )
        .file("probes/broken/broken.c", "int main(void) { return 0; }\n")
        .gen();
    let done = ws.cmd(&["-b", "--message-format", "json"]).failure();
    // Humans keep their output on stderr.
    done.stderr_contains("probe `broken` failed to build");
    let records: Vec<serde_json::Value> = done
        .stdout()
        .lines()
        .map(|line| {
            assert!(
                line.starts_with(r#"{"reason":""#),
                "{line}\n{}",
                done.report()
            );
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", done.report()))
        })
        .collect();
    let reason = |r: &serde_json::Value| r["reason"].as_str().unwrap_or("").to_string();
    assert!(
        records.iter().any(|r| reason(r) == "diagnostic"
            && r["file"] == "probes/broken/broken.bpf.c"
            && r["line"] == 3
            && r["severity"] == "error"),
        "no diagnostic for broken.bpf.c:3:\n{}",
        done.report()
    );
    assert!(
        records.iter().any(|r| reason(r) == "diagnostic"
            && r["file"] == "probes/tiny/tiny.bpf.c"
            && r["line"] == 8
            && r["severity"] == "warning"
            && r["message"]
                .as_str()
                .is_some_and(|m| m.contains("tiny_unused"))),
        "no warning for tiny.bpf.c:8:\n{}",
        done.report()
    );
    assert!(
        records.iter().any(|r| reason(r) == "step"
            && r["probe"] == "broken"
            && r["kind"] == "bpf-compile"
            && r["outcome"] == "failed"
            && r["command"]
                .as_str()
                .is_some_and(|c| c.contains("-target bpf"))),
        "no failed bpf-compile step of broken:\n{}",
        done.report()
    );
    assert!(
        records.iter().any(|r| reason(r) == "step"
            && r["probe"] == "tiny"
            && r["kind"] == "link"
            && r["outcome"] == "ran"),
        "no link step of tiny:\n{}",
        done.report()
    );
    let last = records.last().expect("records were printed");
    assert_eq!(reason(last), "build-finished", "{}", done.report());
    assert_eq!(last["success"], false);
    assert_eq!(last["failed"], serde_json::json!(["broken"]));
    assert_eq!(last["built"], serde_json::json!(["tiny"]));
    // A second build: tiny's steps are fresh and carry no command.
    let again = ws
        .cmd(&["build", "--message-format=json", "tiny"])
        .success();
    let last: serde_json::Value =
        serde_json::from_str(again.stdout().lines().last().unwrap_or("")).unwrap();
    assert_eq!(last["success"], true, "{}", again.report());
    assert!(
        again
            .stdout()
            .lines()
            .all(|l| !l.contains("\"outcome\":\"ran\"")),
        "{}",
        again.report()
    );
}
