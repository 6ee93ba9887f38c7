//! `verify` on the real kernel: a deliberate verifier error is named with the kernel's message and its `.bpf.c`
//! line, the shipped killprobe passes, `verify_skip` skips, `-b --verify` verifies, and no program of ours stays
//! loaded after a pass, a rejection or a Ctrl-C.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::{program, require, require_kernel, send_signal, Workspace};

/// A probe `bad`: `good_prog` checks its map lookup; `unchecked_lookup` dereferences it without a NULL check.
const BAD_BPF: &str = r#"#define BPF_PROG_KERN
#include "bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, u32);
    __type(value, u64);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_kill")
int good_prog(void *ctx)
{
    u32 key = 1;
    u64 *value = bpf_map_lookup_elem(&counts, &key);
    if (value)
        *value += 1;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int unchecked_lookup(void *ctx)
{
    u32 key = 0;
    u64 *value = bpf_map_lookup_elem(&counts, &key);
    *value += 2; /* the deliberate error */
    return 0;
}
"#;

const USERLAND: &str = "int main(void) { return 0; }\n";

/// `bad` with its programs renamed `good_<tag>` and `unchecked_<tag>`, so tests running at once can tell theirs apart.
fn bad_probe(tag: &str) -> Workspace {
    let source = BAD_BPF
        .replace("good_prog", &format!("good_{tag}"))
        .replace("unchecked_lookup", &format!("unchecked_{tag}"));
    Workspace::new()
        .file("probes/bad/bad.bpf.c", &source)
        .file("probes/bad/bad.c", USERLAND)
}

/// The line of `needle` in `text`, counted from 1.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// The names of the programs loaded now (`bpftool prog show`; the kernel keeps the first 15 bytes of a name).
fn loaded_program_names() -> BTreeSet<String> {
    loaded_names("prog")
}

/// The names of the `prog`s or `map`s the kernel holds now.
fn loaded_names(kind: &str) -> BTreeSet<String> {
    let done = program("bpftool").args([kind, "show"]).success();
    done.stdout()
        .lines()
        .filter_map(|line| {
            let rest = line.split_once("  name ")?.1;
            Some(rest.split_whitespace().next()?.to_string())
        })
        .collect()
}

/// Asserts that none of `names` is loaded, giving the kernel a moment to free what a dead process held.
fn assert_none_loaded(names: &[&str]) {
    let truncated: Vec<String> = names.iter().map(|n| n.chars().take(15).collect()).collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let loaded = loaded_program_names();
        let left: Vec<&String> = truncated.iter().filter(|n| loaded.contains(*n)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "programs still loaded after verify: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn verify_names_the_rejected_program_its_message_and_source_line() {
    if !require_kernel() {
        return;
    }
    let ws = bad_probe("fail").gen();
    // clang is happy with it: only the verifier objects.
    ws.cmd(&["-b", "bad"]).success();
    let done = ws.cmd(&["verify", "bad"]).failure();
    let line = line_of(BAD_BPF, "*value += 2;");
    done.stdout_contains("✔ good_fail (tracepoint/syscalls/sys_enter_kill)")
        .stdout_contains("✘ unchecked_fail (tracepoint/syscalls/sys_enter_kill): rejected")
        .stdout_contains("invalid mem access 'map_value_or_null'")
        .stdout_contains(&format!("at probes/bad/bad.bpf.c:{line}: *value += 2;"))
        .stdout_contains("1 rejected")
        .stderr_contains("the kernel's verifier rejected 1 program");
    assert_none_loaded(&["good_fail", "unchecked_fail"]);
}

#[test]
fn shipped_killprobe_passes_with_an_instruction_count() {
    if !require_kernel() {
        return;
    }
    let ws = Workspace::new().shipped_probe("killprobe").gen();
    let done = ws.cmd(&["verify", "killprobe"]).success();
    let stdout = done.stdout();
    let line = stdout
        .lines()
        .find(|l| l.contains("✔ bpf_trace_syscalls_sys_enter_kill"))
        .unwrap_or_else(|| panic!("no ✔ line for killprobe's program\n{}", done.report()));
    let count: u64 = line
        .split("): ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in `{line}`"));
    assert!(count > 0, "{line}");
    assert!(line.contains(" ms"), "no verification time in `{line}`");
    assert_none_loaded(&["bpf_trace_syscalls_sys_enter_kill"]);
}

#[test]
fn verify_skip_names_what_it_skipped_and_why() {
    if !require_kernel() {
        return;
    }
    // What the key is for: an fentry program, which this kernel refuses to load (EPERM) even to root.
    let fentry = "#define BPF_PROG_KERN\n#include \"bpf.h\"\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n\
                  SEC(\"fentry/do_sys_openat2\")\nint BPF_PROG(fentry_skip, int dfd)\n{\n    return 0;\n}\n";
    let ws = bad_probe("skip")
        .file(
            "probes/bad/probe.toml",
            "verify_skip = { unchecked_skip = \"the test's deliberate error\" }\n",
        )
        .file("probes/tramp/tramp.bpf.c", fentry)
        .file("probes/tramp/tramp.c", USERLAND)
        .file(
            "probes/tramp/probe.toml",
            "verify_skip = { fentry_skip = \"fentry: refused here\", gone = \"renamed\" }\n",
        )
        .gen();
    ws.cmd(&["verify"])
        .success()
        .stdout_contains("- unchecked_skip: skipped (the test's deliberate error)")
        .stdout_contains("✔ good_skip")
        .stdout_contains("- fentry_skip: skipped (fentry: refused here)")
        .stderr_contains("warning: `verify_skip` in ")
        .stderr_contains("names `gone`, which no object of `tramp` has")
        .stdout_contains("2 skipped");
}

#[test]
fn build_with_verify_verifies_what_it_built() {
    if !require_kernel() {
        return;
    }
    let ws = bad_probe("build").shipped_probe("killprobe").gen();
    ws.cmd(&["-b", "killprobe", "--verify"])
        .success()
        .stderr_contains("Built killprobe")
        .stdout_contains("Verifying killprobe")
        .stdout_contains("✔ bpf_trace_syscalls_sys_enter_kill");
    ws.cmd(&["build", "--verify", "bad"])
        .failure()
        .stdout_contains("✘ unchecked_build");
}

#[test]
fn a_verify_interrupted_with_sigint_leaves_nothing_loaded() {
    if !require_kernel() || !require("bpftool", crate::support::has_program("bpftool")) {
        return;
    }
    // Programs that each keep the verifier busy for a while (a loop it walks 100000 times), so the signal comes
    // while one of them is loaded.
    let mut source = String::from(
        "#define BPF_PROG_KERN\n#include \"bpf.h\"\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n\
         struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } \
         vsig_hits SEC(\".maps\");\n",
    );
    let names: Vec<String> = (0..20).map(|i| format!("vsig_{i}")).collect();
    for name in &names {
        source += &format!(
            "SEC(\"tracepoint/syscalls/sys_enter_kill\")\nint {name}(void *ctx)\n{{\n    u32 key = 0;\n    \
             u64 *v = bpf_map_lookup_elem(&vsig_hits, &key);\n    if (!v)\n        return 0;\n\
             #pragma clang loop unroll(disable)\n    for (u32 i = 0; i < 100000; i++)\n        \
             __sync_fetch_and_add(v, i);\n    return 0;\n}}\n"
        );
    }
    let ws = Workspace::new()
        .shipped_probe("killprobe")
        .file("probes/many/many.bpf.c", &source)
        .file("probes/many/many.c", USERLAND)
        .gen();
    ws.cmd(&["-b", "many"]).success();
    // A first verify builds the loader, so the interrupted one starts no compiler: its child is the loader.
    ws.cmd(&["verify", "killprobe"]).success();
    let before = loaded_program_names();
    let mut verify = ws.cmd(&["verify", "many"]).spawn();
    let pid = verify.id();
    // Wait for the loader (our child) to start.
    let children = format!("/proc/{pid}/task/{pid}/children");
    let deadline = Instant::now() + Duration::from_secs(60);
    let loader = loop {
        let listed = std::fs::read_to_string(&children).unwrap_or_default();
        let loader = listed.split_whitespace().find(|child| {
            std::fs::read_to_string(format!("/proc/{child}/cmdline"))
                .is_ok_and(|c| c.contains("verifier"))
        });
        if let Some(child) = loader {
            break child.to_string();
        }
        assert!(Instant::now() < deadline, "verify started no loader");
        assert!(!verify.is_finished(), "verify ended before its loader ran");
        std::thread::sleep(Duration::from_millis(5));
    };
    // Interrupt while the loader holds our objects, as a Ctrl-C would. A program shows only between the end of its
    // verification and its close, but the object's map lives through the whole load.
    while !loaded_names("map").contains("vsig_hits") {
        assert!(
            Instant::now() < deadline,
            "the loader never created our map"
        );
        assert!(
            !verify.is_finished(),
            "verify ended before the loader was seen at work"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(send_signal(pid, "INT"));
    let done = verify.wait();
    assert!(!done.output.status.success(), "{}", done.report());
    // The loader goes with it (PR_SET_PDEATHSIG), not after finishing its list.
    let gone_by = Instant::now() + Duration::from_secs(3);
    while std::fs::read_to_string(format!("/proc/{loader}/cmdline"))
        .is_ok_and(|c| c.contains("verifier"))
    {
        assert!(
            Instant::now() < gone_by,
            "the loader {loader} outlived verify"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_none_loaded(&name_refs);
    assert!(
        !loaded_names("map").contains("vsig_hits"),
        "the map outlived verify"
    );
    let after = loaded_program_names();
    let new: Vec<&String> = after
        .difference(&before)
        .filter(|n| n.starts_with("vsig_"))
        .collect();
    assert!(new.is_empty(), "left loaded: {new:?}");
}

#[test]
fn verify_without_root_says_so_before_building() {
    if !require("root (to drop its capabilities)", crate::support::is_root())
        || !require("setpriv", crate::support::has_program("setpriv"))
    {
        return;
    }
    let ws = bad_probe("user");
    // Root without capabilities: the same user (so the workspace stays trusted and readable, whatever the
    // permissions of `/` or of root's home are), but no right to load BPF.
    for args in [&["verify"][..], &["-b", "--verify"][..]] {
        program("setpriv")
            .args(["--bounding-set=-all", "--inh-caps=-all"])
            .arg(crate::support::BIN)
            .arg("-C")
            .arg(ws.root())
            .args(args)
            .failure()
            .stderr_contains("needs root");
    }
    assert!(
        !ws.path(".output").exists(),
        "a refused verify built something"
    );
}
