//! `-g`: the generated header, its link, determinism, other BTF files, and broken input.

use crate::support::{has_program, program, require, require_build_tools, Workspace};

fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn gen_writes_the_release_header_and_links_vmlinux_h() {
    if !require_build_tools()
        || !require(
            "kernel BTF",
            std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
        )
    {
        return;
    }
    let ws = Workspace::new().gen();
    let header = ws.path(&format!("include/linux_{}.h", release()));
    let first = std::fs::read(&header).unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(text.contains("struct task_struct {"));
    let tail = &text[text.len() - 200..];
    assert!(
        tail.contains("#include \"ext_def.h\"\n\n#endif"),
        "ext_def.h goes before the final #endif:\n{tail}"
    );
    let link = std::fs::read_link(ws.path("include/vmlinux.h")).unwrap();
    assert_eq!(link.to_str().unwrap(), format!("linux_{}.h", release()));
    ws.cmd(&["gen"]).success();
    assert_eq!(
        std::fs::read(&header).unwrap(),
        first,
        "running gen twice gives the same bytes"
    );
}

#[test]
fn a_broken_btf_file_is_a_clear_error_and_leaves_the_header_alone() {
    if !require_build_tools()
        || !require(
            "kernel BTF",
            std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
        )
    {
        return;
    }
    let ws = Workspace::new().gen();
    let header = ws.path(&format!("include/linux_{}.h", release()));
    let before = std::fs::read(&header).unwrap();
    let broken = ws.path("broken.btf");
    std::fs::write(&broken, b"\x9f\xeb\x01\x00garbage that is not BTF").unwrap();
    let done = ws
        .cmd(&[
            "gen",
            "--btf",
            broken.to_str().unwrap(),
            "--kernel-release",
            &release(),
        ])
        .failure();
    done.stderr_contains("could not read BTF from")
        .stderr_contains("left untouched");
    assert_eq!(std::fs::read(&header).unwrap(), before);
    assert_eq!(
        std::fs::read_link(ws.path("include/vmlinux.h"))
            .unwrap()
            .to_str()
            .unwrap(),
        format!("linux_{}.h", release())
    );
    ws.cmd(&["gen", "--btf", "/nonexistent.btf"])
        .failure()
        .stderr_contains("does not exist");
}

#[test]
fn gen_reads_other_btf_files_for_other_kernels() {
    if !require_build_tools()
        || !require(
            "kernel BTF",
            std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
        )
    {
        return;
    }
    let ws = Workspace::new();
    // Raw BTF: a copy of this kernel's, named as another kernel's.
    let raw = ws.path("other.btf");
    std::fs::copy("/sys/kernel/btf/vmlinux", &raw).unwrap();
    ws.cmd(&[
        "-g",
        "--btf",
        raw.to_str().unwrap(),
        "--kernel-release",
        "5.10.0-other",
    ])
    .success();
    assert!(ws.path("include/linux_5.10.0-other.h").is_file());
    assert_eq!(
        std::fs::read_link(ws.path("include/vmlinux.h"))
            .unwrap()
            .to_str()
            .unwrap(),
        "linux_5.10.0-other.h"
    );
    // A bad release name cannot escape include/.
    ws.cmd(&[
        "-g",
        "--btf",
        raw.to_str().unwrap(),
        "--kernel-release",
        "../../x",
    ])
    .failure()
    .stderr_contains("not a usable kernel release");
}

/// `tests/fixtures/kernel-dwarf/kernel.c` compiled by `compiler` with DWARF into `out`: a small "vmlinux".
pub fn kernel_elf_with_dwarf(compiler: &[&str], out: &std::path::Path) {
    let source = crate::support::repo_root().join("tests/fixtures/kernel-dwarf/kernel.c");
    program(compiler[0])
        .args(&compiler[1..])
        .args(["-g", "-O0", "-c"])
        .arg(&source)
        .arg("-o")
        .arg(out)
        .success();
}

/// The DWARF route needs gcc, pahole (installed by `--check --fix`, see the README) and the build tools.
pub fn require_dwarf_tools() -> bool {
    require_build_tools()
        && require("gcc", has_program("gcc"))
        && require(
            "pahole (dwarves; `ebpf-probe --check --fix` installs it)",
            has_program("pahole"),
        )
}

#[test]
fn gen_reads_a_vmlinux_with_dwarf_through_pahole() {
    if !require_dwarf_tools() {
        return;
    }
    // An SDK header that #defines a name the kernel has as an enumerator (gala-gopher's do).
    let ws = Workspace::new().file("include/probe_defs.h", "#define TASK_COMM_LEN 16\n");
    let vmlinux = ws.path("vmlinux");
    kernel_elf_with_dwarf(&["gcc"], &vmlinux);
    ws.cmd(&["-g", "--vmlinux", vmlinux.to_str().unwrap()])
        .success()
        .stderr_contains("pahole")
        .stderr_contains("TASK_COMM_LEN");
    // Named for the release in the ELF's linux_banner; vmlinux.h follows.
    let header = std::fs::read_to_string(ws.path("include/linux_5.10.0-dwarf.test.h")).unwrap();
    for declared in [
        "struct task_struct {",
        "struct trace_event_raw_sched_switch {",
        "struct trace_event_raw_sys_enter {",
        "struct pt_regs {",
        "typedef __u64 u64;",
        "#ifndef TASK_COMM_LEN\n\tTASK_COMM_LEN = 16,\n#endif",
        "#include \"ext_def.h\"\n\n#endif",
    ] {
        assert!(
            header.contains(declared),
            "the header lacks `{declared}`:\n{header}"
        );
    }
    assert_eq!(
        std::fs::read_link(ws.path("include/vmlinux.h")).unwrap(),
        std::path::Path::new("linux_5.10.0-dwarf.test.h")
    );
    // The header compiles for the BPF target, with a program using its types.
    let program_source = ws.path("uses_types.bpf.c");
    std::fs::write(
        &program_source,
        "#include \"vmlinux.h\"\n\
         #define SEC(name) __attribute__((section(name), used))\n\
         SEC(\"tp/sched/sched_switch\") int on_switch(struct trace_event_raw_sched_switch *ctx)\n\
         { struct task_struct *t = 0; return ctx->next_pid + sizeof(*t) + TASK_COMM_LEN; }\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    ws.program("clang")
        .args(["-target", "bpf", "-O2", "-g", "-Iinclude", "-c"])
        .arg(&program_source)
        .arg("-o")
        .arg(ws.path("uses_types.bpf.o"))
        .success();

    // --kernel-release names it instead.
    ws.cmd(&[
        "gen",
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        "--kernel-release",
        "5.10.0-named",
    ])
    .success();
    assert!(ws.path("include/linux_5.10.0-named.h").is_file());
}

#[test]
fn a_stripped_vmlinux_names_the_debuginfo_package_and_one_with_btf_skips_pahole() {
    if !require_dwarf_tools()
        || !require(
            "strip and llvm-objcopy",
            has_program("strip") && has_program("llvm-objcopy"),
        )
    {
        return;
    }
    let ws = Workspace::new();
    let vmlinux = ws.path("vmlinux");
    kernel_elf_with_dwarf(&["gcc"], &vmlinux);
    let stripped = ws.path("vmlinux.stripped");
    ws.program("strip")
        .args(["--strip-debug", "-o"])
        .arg(&stripped)
        .arg(&vmlinux)
        .success();
    let done = ws
        .cmd(&["-g", "--vmlinux", stripped.to_str().unwrap()])
        .failure();
    done.stderr_contains("neither a .BTF section nor DWARF")
        .stderr_contains("5.10.0-dwarf.test");
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    if os.contains("ID=debian") {
        done.stderr_contains("linux-image-5.10.0-dwarf.test-dbg");
    }
    assert!(!ws.path("include/linux_5.10.0-dwarf.test.h").exists());

    // A .BTF section (this kernel's BTF, as a vmlinux built with CONFIG_DEBUG_INFO_BTF carries it) is read as is.
    if !require(
        "kernel BTF",
        std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
    ) {
        return;
    }
    let with_btf = ws.path("vmlinux.btf-section");
    ws.program("llvm-objcopy")
        .arg("--add-section=.BTF=/sys/kernel/btf/vmlinux")
        .arg(&stripped)
        .arg(&with_btf)
        .success();
    let done = ws
        .cmd(&["-g", "--vmlinux", with_btf.to_str().unwrap()])
        .success();
    assert!(!done.stderr().contains("pahole"), "{}", done.report());
    let header = std::fs::read_to_string(ws.path("include/linux_5.10.0-dwarf.test.h")).unwrap();
    assert!(
        header.contains("struct bpf_prog {"),
        "the kernel's own types"
    );
}

/// A probe that calls kfuncs without declaring them: `bpf_task_from_pid` and `bpf_task_release`.
const KFUNC_BPF: &str = r#"#define BPF_PROG_KERN
#include "bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_process_exec")
int BPF_PROG(kfunc_exec)
{
    struct task_struct *task = bpf_task_from_pid(1);
    if (task) {
        bpf_printk("init is %d", task->pid);
        bpf_task_release(task);
    }
    return 0;
}
"#;

#[test]
fn the_header_declares_the_kernels_kfuncs_whatever_bpftool_writes() {
    if !require_build_tools()
        || !require(
            "kernel BTF at /sys/kernel/btf/vmlinux",
            std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
        )
    {
        return;
    }
    let ws = Workspace::new()
        .file("probes/kfuncs/kfuncs.bpf.c", KFUNC_BPF)
        .file("probes/kfuncs/kfuncs.c", "int main(void) { return 0; }\n")
        .gen();
    let header =
        std::fs::read_to_string(ws.path(&format!("include/linux_{}.h", release()))).unwrap();
    // This kernel's BTF tags its kfuncs (pahole ≥ 1.26); bpftool 7.1 writes no declarations, we do.
    let tagged = program("bpftool")
        .args(["btf", "dump", "file", "/sys/kernel/btf/vmlinux"])
        .success()
        .stdout()
        .contains("DECL_TAG 'bpf_kfunc'");
    if !require("a kernel whose BTF tags kfuncs (bpf_kfunc)", tagged) {
        return;
    }
    assert!(
        header.contains("extern struct task_struct *bpf_task_from_pid(s32) __weak __ksym;"),
        "no bpf_task_from_pid declaration"
    );
    assert_eq!(header.matches("#ifndef BPF_NO_KFUNC_PROTOTYPES").count(), 1);
    // The declarations come before ext_def.h, at the end, inside the guard.
    let kfuncs_at = header.find("#ifndef BPF_NO_KFUNC_PROTOTYPES").unwrap();
    let ext_def_at = header.rfind("#include \"ext_def.h\"").unwrap();
    assert!(kfuncs_at < ext_def_at);
    ws.cmd(&["-b", "kfuncs"]).success();
    // compat finds the kfunc on this kernel, and names it where a kernel lacks it.
    let kernels = tempfile::tempdir().unwrap();
    let fake = kernels.path().join("6.0.0-nokfunc.c");
    std::fs::write(
        &fake,
        "typedef void (*btf_trace_sched_process_exec)(void *);\nbtf_trace_sched_process_exec keep;\n\
         struct task_struct { int pid; };\nstruct task_struct *keep_task;\n",
    )
    .unwrap();
    let object = kernels.path().join("6.0.0-nokfunc.btf");
    program("clang")
        .args(["-g", "-O2", "-target", "bpf", "-c"])
        .arg(&fake)
        .arg("-o")
        .arg(&object)
        .success();
    // The header declares them __weak, so a kernel without one loads the object: ⚠, not ✘.
    let done = ws
        .cmd(&["compat", "kfuncs", "--kernel"])
        .arg(&object)
        .success();
    let out = done.stdout();
    assert!(
        out.contains("⚠ on 6.0.0-nokfunc: the kernel has no kfunc `bpf_task_from_pid`"),
        "{}",
        done.report()
    );
    assert!(
        !out.contains(&format!("on {}: the kernel has no kfunc", release())),
        "{}",
        done.report()
    );
}
