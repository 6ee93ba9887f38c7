//! `compat`: attach targets and CO-RE relocations resolved without loading anything, against the running kernel
//! (a misspelt kprobe target with its nearest names, one that exists only as `NAME.isra.0`, tracepoints that exist)
//! and against kernels given as BTF files made here with clang (a CO-RE field one of them lacks is ✘ there, named).

use std::path::Path;

use serde_json::Value;

use crate::support::{program, require, require_build_tools, Workspace};

const USERLAND: &str = "int main(void) { return 0; }\n";

/// A probe whose programs attach to `missing_target` (a kprobe), `renamed_target` (a kprobe), the kill syscall's
/// tracepoint, and read `task_struct->tgid` through CO-RE.
fn targets_probe(missing_target: &str, renamed_target: &str) -> Workspace {
    let source = format!(
        r#"#define BPF_PROG_KERN
#include "bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe/{missing_target}")
int missing_fn(void *ctx) {{ return 0; }}

SEC("kprobe/{renamed_target}")
int renamed_fn(void *ctx) {{ return 0; }}

SEC("tracepoint/syscalls/sys_enter_kill")
int kill_tp(void *ctx) {{ return 0; }}

SEC("tracepoint/syscalls/sys_enter_kill")
int read_tgid(void *ctx)
{{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    int tgid = BPF_CORE_READ(task, tgid);
    bpf_printk("%d", tgid);
    return 0;
}}
"#
    );
    Workspace::new()
        .file("probes/targets/targets.bpf.c", &source)
        .file("probes/targets/targets.c", USERLAND)
        .gen()
}

/// A kernel function that exists here only under a compiler-made name (`X.isra.0` without `X`), from kallsyms.
fn isra_only_function() -> Option<String> {
    let symbols = std::fs::read_to_string("/proc/kallsyms").ok()?;
    let names: std::collections::HashSet<&str> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let mut candidates: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".isra.0"))
        .filter(|base| !names.contains(base) && !base.contains('.'))
        .collect();
    candidates.sort();
    candidates.first().map(|s| s.to_string())
}

fn require_running_kernel_facts() -> bool {
    require_build_tools()
        && require(
            "kernel BTF at /sys/kernel/btf/vmlinux",
            Path::new("/sys/kernel/btf/vmlinux").exists(),
        )
}

fn program_entry<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["program"] == name)
        .unwrap_or_else(|| panic!("no program {name} in {json:#}"))
}

fn reasons(cell: &Value) -> String {
    cell["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_running_kernel_names_missing_and_compiler_renamed_kprobe_targets() {
    if !require_running_kernel_facts() {
        return;
    }
    let isra = isra_only_function();
    if !require(
        "a kernel function that exists only as NAME.isra.0",
        isra.is_some(),
    ) {
        return;
    }
    let isra = isra.unwrap();
    let ws = targets_probe("tcp_sendmsgg", &isra);
    let done = ws.cmd(&["compat", "--json"]).failure();
    let json: Value =
        serde_json::from_str(&done.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", done.report()));
    assert_eq!(json["version"], 1);
    assert_eq!(json["kernels"].as_array().unwrap().len(), 1);
    assert_eq!(json["kernels"][0]["source"], "running");
    assert_eq!(json["ok"], false);

    let missing = &program_entry(&json, "missing_fn")["kernels"][0];
    assert_eq!(missing["status"], "fail", "{json:#}");
    let text = reasons(missing);
    assert!(text.contains("no function `tcp_sendmsgg`"), "{text}");
    assert!(
        text.contains("`tcp_sendmsg`"),
        "nearest name missing: {text}"
    );

    let renamed = &program_entry(&json, "renamed_fn")["kernels"][0];
    assert_eq!(renamed["status"], "fail", "{json:#}");
    let text = reasons(renamed);
    assert!(text.contains(&format!("`{isra}.isra.0`")), "{text}");

    for ok in ["kill_tp", "read_tgid"] {
        let entry = program_entry(&json, ok);
        assert_eq!(entry["kernels"][0]["status"], "ok", "{entry:#}");
        assert_eq!(entry["attach"]["target"], "syscalls/sys_enter_kill");
    }

    // The human form says the same, and the command fails naming what to do.
    let done = ws.cmd(&["compat"]).failure();
    done.stdout_contains("✘")
        .stdout_contains("`tcp_sendmsg`")
        .stderr_contains("compat_optional");
}

/// A kernel as BTF: clang compiles C declarations for the BPF target with `-g`, which gives an ELF file whose
/// `.BTF` section describes them, as a vmlinux's does.
fn fake_kernel(dir: &Path, name: &str, task_fields: &str) -> std::path::PathBuf {
    let source = dir.join(format!("{name}.c"));
    let object = dir.join(format!("{name}.btf.o"));
    std::fs::write(
        &source,
        format!(
            "struct task_struct {{ {task_fields} }};\n\
             typedef void (*btf_trace_sched_process_exec)(void *, struct task_struct *);\n\
             struct task_struct *keep_task;\n\
             btf_trace_sched_process_exec keep_trace;\n\
             int __x64_sys_kill(int pid, int sig) {{ return pid + sig; }}\n"
        ),
    )
    .unwrap();
    program("clang")
        .args(["-g", "-O2", "-target", "bpf", "-c"])
        .arg(&source)
        .arg("-o")
        .arg(&object)
        .success();
    object
}

#[test]
fn btf_files_are_columns_and_a_missing_core_field_is_named_there() {
    if !require_running_kernel_facts() {
        return;
    }
    let ws = targets_probe("tcp_sendmsg", "tcp_sendmsg").file(
        "probes/targets/probe.toml",
        "[compat_optional]\nmissing_fn = \"kprobes\"\nrenamed_fn = \"kprobes\"\n",
    );
    let kernels = tempfile::tempdir().unwrap();
    let old = fake_kernel(kernels.path(), "5.10.0-old", "int pid; int tgid;");
    let renamed = fake_kernel(kernels.path(), "6.99.0-renamed", "int pid; int tgid_v2;");
    let args = [
        "compat",
        "--json",
        "--kernel",
        old.to_str().unwrap(),
        "--kernel",
        renamed.to_str().unwrap(),
    ];
    let done = ws.cmd(&args).failure();
    let json: Value =
        serde_json::from_str(&done.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", done.report()));
    let labels: Vec<&str> = json["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 3, "{labels:?}");
    assert_eq!(&labels[1..], ["5.10.0-old.btf.o", "6.99.0-renamed.btf.o"]);

    let read_tgid = program_entry(&json, "read_tgid");
    let statuses: Vec<&str> = read_tgid["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "fail"], "{read_tgid:#}");
    let text = reasons(&read_tgid["kernels"][2]);
    assert!(
        text.contains("`struct task_struct` has no field `tgid`"),
        "{text}"
    );
    // The tracepoint of a syscall is there in both files (their BTF has the syscall's function).
    let kill_tp = program_entry(&json, "kill_tp");
    assert!(
        kill_tp["kernels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "ok"),
        "{kill_tp:#}"
    );
    // Optional programs are reported but do not fail the command.
    assert_eq!(program_entry(&json, "missing_fn")["required"], false);
    assert_eq!(json["failures"], 1);

    // The text matrix has a column per kernel and names the field under the row.
    let done = ws
        .cmd(
            &args[..1]
                .iter()
                .chain(&args[2..])
                .copied()
                .collect::<Vec<_>>(),
        )
        .failure();
    let out = done.stdout();
    let header = out.lines().nth(1).unwrap();
    assert!(
        header.contains("5.10.0-old.btf.o") && header.contains("6.99.0-renamed.btf.o"),
        "{out}"
    );
    assert!(
        out.contains("✘ on 6.99.0-renamed.btf.o: `struct task_struct` has no field `tgid`"),
        "{out}"
    );

    // Marked optional, the same result passes.
    let ws = ws.file(
        "probes/targets/probe.toml",
        "[compat_optional]\nmissing_fn = \"kprobes\"\nrenamed_fn = \"kprobes\"\nread_tgid = \"reads tgid_v2 on 6.99\"\n",
    );
    ws.cmd(&args).success();
}

#[test]
fn a_directory_of_kernels_is_searched_and_bad_input_is_named() {
    if !require_build_tools() {
        return;
    }
    let ws = targets_probe("tcp_sendmsg", "tcp_sendmsg").file(
        "probes/targets/probe.toml",
        "[compat_optional]\nmissing_fn = \"kprobes\"\nrenamed_fn = \"kprobes\"\n",
    );
    let kernels = tempfile::tempdir().unwrap();
    let nested = kernels.path().join("debian/12/x86_64");
    std::fs::create_dir_all(&nested).unwrap();
    fake_kernel(&nested, "6.1.0-a", "int pid; int tgid;");
    fake_kernel(&nested, "6.1.0-b", "int pid; int tgid;");
    std::fs::write(nested.join("README"), "not a kernel\n").unwrap();
    let done = ws
        .cmd(&["compat", "--json", "--no-running", "--kernel"])
        .arg(kernels.path())
        .success();
    let json: Value = serde_json::from_str(&done.stdout()).unwrap();
    assert_eq!(json["kernels"].as_array().unwrap().len(), 2, "{json:#}");

    let empty = tempfile::tempdir().unwrap();
    ws.cmd(&["compat", "--no-running", "--kernel"])
        .arg(empty.path())
        .failure()
        .stderr_contains("holds no BTF file");
    let not_btf = empty.path().join("junk.btf");
    std::fs::write(
        &not_btf,
        [0x9fu8, 0xeb, 1, 0, 24, 0, 0, 0, 0xff, 0xff, 0, 0],
    )
    .unwrap();
    ws.cmd(&["compat", "--no-running", "--kernel"])
        .arg(&not_btf)
        .failure()
        .stderr_contains("junk.btf");
}
