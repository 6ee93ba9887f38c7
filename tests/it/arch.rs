//! Other architectures: an aarch64 "vmlinux" with DWARF → `linux_<release>.aarch64.h` → `-b --arch aarch64` BPF
//! objects that read arm64's `pt_regs`, in their own output tree.

use crate::gen::{kernel_elf_with_dwarf, require_dwarf_tools};
use crate::support::{has_program, program, require, Workspace};

const REGS_BPF: &str = r#"#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

long second_argument;

SEC("kprobe/do_sys_open")
int on_open(struct pt_regs *ctx)
{
	second_argument = PT_REGS_PARM2(ctx);
	return 0;
}
"#;

#[test]
fn an_aarch64_header_builds_bpf_objects_with_arm64_pt_regs() {
    if !require_dwarf_tools() || !require("llvm-objdump", has_program("llvm-objdump")) {
        return;
    }
    let ws = Workspace::new()
        .file("probes/regs/regs.bpf.c", REGS_BPF)
        .file("probes/regs/regs.c", "int main(void) { return 0; }\n");
    let vmlinux = ws.path("vmlinux.aarch64");
    kernel_elf_with_dwarf(&["clang", "--target=aarch64-linux-gnu"], &vmlinux);

    // An x86_64 header is not written from an aarch64 ELF.
    ws.cmd(&[
        "-g",
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        "--arch",
        "x86_64",
    ])
    .failure()
    .stderr_contains("is an aarch64 ELF, not x86_64");
    ws.cmd(&[
        "-g",
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        "--arch",
        "aarch64",
    ])
    .success();
    let header =
        std::fs::read_to_string(ws.path("include/linux_5.10.0-dwarf.test.aarch64.h")).unwrap();
    assert!(header.contains("struct user_pt_regs {"), "{header}");
    assert!(
        std::fs::symlink_metadata(ws.path("include/vmlinux.h")).is_err(),
        "another architecture's header leaves vmlinux.h alone"
    );

    let done = ws
        .cmd(&["-b", "--arch", "aarch64"])
        .env("VMLINUX_VER", "5.10.0-dwarf.test")
        .success();
    done.stderr_contains("skipped the userland of regs for aarch64");
    let object = ws.path(".output/aarch64/regs/regs.bpf.o");
    assert!(object.is_file(), "{}", done.report());
    // PT_REGS_PARM2 is regs[1] of struct user_pt_regs on arm64 (offset 8); x86's `si` would be offset 104.
    let disassembly = program("llvm-objdump")
        .arg("-d")
        .arg(&object)
        .success()
        .stdout();
    assert!(
        disassembly.contains("r1 = *(u64 *)(r1 + 8)"),
        "{disassembly}"
    );
    assert!(!disassembly.contains("+ 104)"), "{disassembly}");
    // Nothing native was built, and nothing of this build is outside .output/aarch64.
    let outside: Vec<String> = crate::support::list_tree(&ws.path(".output"))
        .into_iter()
        .filter(|p| p.ends_with(".o") && !p.starts_with("aarch64/"))
        .collect();
    assert!(
        outside.is_empty(),
        "objects outside .output/aarch64: {outside:?}"
    );
    assert!(!ws.path(".output/bin/regs").exists());

    // Without the header the build says how to make it.
    ws.cmd(&["-b", "--arch", "riscv64"])
        .env("VMLINUX_VER", "5.10.0-dwarf.test")
        .failure()
        .stderr_contains("-g --btf FILE --arch riscv64");
}
