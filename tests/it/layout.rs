//! Other layouts than `include/ lib/ probes/`: a flat directory of tools (libbpf-tools' shape) sharing helper `.c`
//! files and a BPF-side `.bpf.h`, built in place with `[layout] flat`, named shared sets, no `.meta` checks and no
//! `ext_def.h` in the generated header.

use crate::support::{program, require_build_tools, require_kernel, Workspace};

const MANIFEST: &str = r#"# A flat tree of tools, as open-source libbpf tool collections lay them out.
[layout]
probes = "tools"
flat = true
meta = false
ext_def = false
# Every compile, BPF ones too, sees the BPF-side headers the tools share.
include = ["include", "tools/bpf"]

[sources.helpers]
c = ["tools/helpers/*.c"]

[build]
shared = ["helpers"]

[probe.countexec]
binary = "count-exec"

[probe.bare]
shared = []
"#;

/// The BPF side of a tool: a map from the shared `maps.bpf.h` (found through `[layout] include`).
fn bpf_tool(name: &str) -> String {
    format!(
        "#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n#include \"maps.bpf.h\"\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\nSHARED_COUNTER_MAP({name}_counts);\n\
         SEC(\"tracepoint/sched/sched_process_exec\")\nint {name}_exec(void *ctx) {{ return 0; }}\n"
    )
}

/// A loader that calls the shared helper (or not).
fn loader(name: &str, uses_helper: bool) -> String {
    let call = if uses_helper {
        "  return helper_answer() == 42 ? 0 : 1;\n"
    } else {
        "  return 0;\n"
    };
    format!(
        "#include <stdio.h>\n#include \"{name}.skel.h\"\n{}int main(void) {{\n{call}}}\n",
        if uses_helper {
            "#include \"trace_helpers.h\"\n"
        } else {
            ""
        }
    )
}

fn flat_workspace() -> Workspace {
    Workspace::new()
        .file("ebpf-probe.toml", MANIFEST)
        .file(
            "tools/bpf/maps.bpf.h",
            "#pragma once\n#define SHARED_COUNTER_MAP(n) struct { __uint(type, BPF_MAP_TYPE_ARRAY); \
             __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } n SEC(\".maps\")\n",
        )
        .file(
            "tools/helpers/trace_helpers.h",
            "#pragma once\nint helper_answer(void);\n",
        )
        .file(
            "tools/helpers/trace_helpers.c",
            "#include \"trace_helpers.h\"\nint helper_answer(void) { return 42; }\n",
        )
        .file("tools/countexec.bpf.c", &bpf_tool("countexec"))
        .file("tools/countexec.c", &loader("countexec", true))
        .file("tools/bare.bpf.c", &bpf_tool("bare"))
        .file("tools/bare.c", &loader("bare", false))
}

#[test]
fn a_flat_tree_of_tools_builds_in_place_with_shared_helpers_and_no_meta() {
    if !require_kernel() {
        return;
    }
    let ws = flat_workspace();
    // ext_def = false: the generated header is bpftool's dump alone.
    ws.cmd(&["-g"]).success();
    let header = std::fs::read_to_string(ws.path("include/vmlinux.h")).unwrap();
    assert!(!header.contains("ext_def.h"), "ext_def.h was appended");

    let built = ws.cmd(&["-v", "-b"]).success();
    built
        .stderr_contains("Built countexec → .output/bin/count-exec")
        .stderr_contains("Built bare → .output/bin/bare");
    // meta = false: no warning about probes without a .meta.
    assert!(!built.stderr().contains(".meta"), "{}", built.report());
    // The BPF compile sees the layout's include dirs (maps.bpf.h is there, not beside the tool).
    let bpf_compile = built
        .stderr()
        .lines()
        .find(|l| l.contains("-c tools/countexec.bpf.c"))
        .map(String::from)
        .unwrap_or_default();
    assert!(bpf_compile.contains("-Itools/bpf"), "{}", built.report());

    // A tool links only the shared sets it names: `bare` says `shared = []`.
    let symbols = |binary: &str| {
        let nm = program("nm").arg(ws.path(binary)).success();
        String::from_utf8_lossy(&nm.output.stdout).into_owned()
    };
    assert!(symbols(".output/bin/count-exec").contains("helper_answer"));
    assert!(!symbols(".output/bin/bare").contains("helper_answer"));
    // And the helper does what it should: count-exec exits 0 only when helper_answer() is 42.
    program(ws.path(".output/bin/count-exec")).success();

    // Nothing changed: nothing is rebuilt.
    let again = ws.cmd(&["-v", "-b"]).success();
    assert!(!again.stderr().contains("Running `"), "{}", again.report());
}

#[test]
fn a_flat_layout_refuses_settings_for_a_tool_that_does_not_exist() {
    if !require_build_tools() {
        return;
    }
    let ws = flat_workspace().file(
        "ebpf-probe.toml",
        &format!("{MANIFEST}\n[probe.nosuch]\nbinary = \"x\"\n"),
    );
    ws.cmd(&["-b"])
        .failure()
        .stderr_contains("`[probe.nosuch]` in `")
        .stderr_contains("there is no `nosuch.bpf.c` in `");
}
