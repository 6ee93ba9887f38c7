//! Other architectures: an aarch64 "vmlinux" with DWARF → `linux_<release>.aarch64.h` → `-b --arch aarch64` BPF
//! objects that read arm64's `pt_regs`, in their own output tree.

use crate::gen::{kernel_elf_with_dwarf, require_dwarf_tools};
use crate::support::{fix_environment, has_program, is_root, program, require, Workspace};

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

/// `-g --vmlinux VMLINUX --arch aarch64`: `include/linux_5.10.0-dwarf.test.aarch64.h` from the fixture kernel.
fn gen_aarch64_header(ws: &Workspace, vmlinux: &std::path::Path) {
    ws.cmd(&[
        "-g",
        "--vmlinux",
        vmlinux.to_str().unwrap(),
        "--arch",
        "aarch64",
    ])
    .success();
}

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
    gen_aarch64_header(&ws, &vmlinux);
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

/// A loader that opens its skeleton with libbpf and prints what the program stored.
const REGS_LOADER: &str = r#"#include <stdio.h>
#include <bpf/libbpf.h>
#include "regs.skel.h"

int main(void)
{
	struct regs_bpf *skel = regs_bpf__open();
	if (!skel) {
		fprintf(stderr, "cannot open the regs skeleton\n");
		return 1;
	}
	printf("|regs|%ld|\n", skel->bss->second_argument);
	regs_bpf__destroy(skel);
	return 0;
}
"#;

/// ELF `e_machine` of a file: 62 x86-64, 183 AArch64, 247 BPF.
fn elf_machine(path: &std::path::Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..4],
        b"\x7fELF",
        "{} is not an ELF file",
        path.display()
    );
    u16::from_le_bytes([bytes[18], bytes[19]])
}

#[test]
fn an_aarch64_cross_compiler_builds_the_userland_too() {
    if !require_dwarf_tools() || !require("root (to install the cross toolchain)", is_root()) {
        return;
    }
    let ws = Workspace::new()
        .file("probes/regs/regs.bpf.c", REGS_BPF)
        .file("probes/regs/regs.c", REGS_LOADER);
    // What a user does: let the tool install the cross compiler and aarch64's libelf and zlib.
    fix_environment(&ws, &["--arch", "aarch64"]);
    if !require(
        "aarch64-linux-gnu-gcc",
        has_program("aarch64-linux-gnu-gcc"),
    ) {
        return;
    }
    let vmlinux = ws.path("vmlinux.aarch64");
    kernel_elf_with_dwarf(&["clang", "--target=aarch64-linux-gnu"], &vmlinux);
    gen_aarch64_header(&ws, &vmlinux);
    // The native build first: the cross build must leave it alone.
    ws.cmd(&["-g"]).success();
    ws.cmd(&["-b"]).success();
    let native = ws.path(".output/bin/regs");
    let native_bytes = std::fs::read(&native).unwrap();

    // libbpf is built for aarch64 with the cross compiler, from the sources libbpf-sys vendors (no network).
    let Some(libbpf) = crate::libbpf::libbpf_sys_sources() else {
        require(
            "the libbpf-sys sources in the cargo registry (run `cargo fetch`)",
            false,
        );
        return;
    };
    let cache = ws.path("libbpf-cache");
    // `ebpf-probe ARGS` for the aarch64 kernel, with that libbpf and its own cache.
    let for_arm64 = |args: &[&str]| {
        let mut all = vec!["--libbpf", libbpf.to_str().unwrap()];
        all.extend(args);
        ws.cmd(&all)
            .env("VMLINUX_VER", "5.10.0-dwarf.test")
            .env("EBPF_PROBE_CACHE_DIR", &cache)
    };
    let cross_build = || for_arm64(&["-b", "--arch", "aarch64"]);
    let done = cross_build().env("CC", "aarch64-linux-gnu-gcc").success();
    done.stderr_contains("with `/usr/bin/aarch64-linux-gnu-gcc`");
    assert!(
        !done.stderr().contains("skipped the userland"),
        "{}",
        done.report()
    );
    let binary = ws.path(".output/aarch64/bin/regs");
    assert_eq!(elf_machine(&binary), 183, "{}", done.report());
    // Every object of the aarch64 tree is BPF or AArch64: nothing of this machine's is mixed in.
    for relative in crate::support::list_tree(&ws.path(".output/aarch64")) {
        let path = ws.path(&format!(".output/aarch64/{relative}"));
        if relative.ends_with(".bpf.o") || relative.ends_with(".bpf.unstripped.o") {
            assert_eq!(elf_machine(&path), 247, "{relative}");
        } else if relative.ends_with(".o") {
            assert_eq!(
                elf_machine(&path),
                183,
                "{relative} is not an AArch64 object"
            );
        }
    }
    assert!(
        crate::support::list_tree(&ws.path(".output/aarch64"))
            .iter()
            .any(|p| p.starts_with("lib/") && p.ends_with(".o")),
        "the shared lib/ sources are cross-compiled too"
    );
    assert_eq!(
        std::fs::read(&native).unwrap(),
        native_bytes,
        "the native binary is untouched"
    );
    assert_eq!(elf_machine(&native), 62);

    // Minimized BTF for aarch64 kernels, from the aarch64 objects: the aarch64 "kernel"'s BTF, as BTFHub names it.
    let kernel_btf = ws.path("5.10.0-dwarf.test.btf");
    program("pahole")
        .args(["-J", "--btf_encode_detached"])
        .arg(&kernel_btf)
        .arg(&vmlinux)
        .success();
    let kernel_arg = kernel_btf.to_str().unwrap();
    for_arm64(&["btfgen", "--arch", "aarch64", "--kernel", kernel_arg])
        .env("CC", "aarch64-linux-gnu-gcc")
        .success();
    let minimized = ws.path(".output/aarch64/btf/5.10.0-dwarf.test.btf");
    assert!(minimized.is_file());
    assert!(
        !ws.path(".output/btf").exists(),
        "nothing of aarch64's in the native tree"
    );

    // A package for aarch64: what `-b --arch` built goes where `install` puts this machine's, with its BTF.
    let destdir = ws.path("pkg-arm64");
    let destdir_arg = destdir.to_str().unwrap();
    for_arm64(&["install", "--arch", "aarch64", "--destdir", destdir_arg])
        .env("CC", "aarch64-linux-gnu-gcc")
        .success();
    assert_eq!(
        elf_machine(&destdir.join("usr/bin/extends/ebpf.probe/regs")),
        183
    );
    assert_eq!(
        std::fs::read(destdir.join("opt/gala-gopher/btf/5.10.0-dwarf.test.btf")).unwrap(),
        std::fs::read(&minimized).unwrap()
    );

    // A second run has nothing to do; `[cross.aarch64]` in ebpf-probe.toml does what CC did.
    std::fs::write(
        ws.path("ebpf-probe.toml"),
        "[cross.aarch64]\ncc = \"aarch64-linux-gnu-gcc\"\n",
    )
    .unwrap();
    let again = cross_build().env_remove("CC").success();
    for verb in ["Compiling", "Generating", "Linking"] {
        assert!(
            !again.stderr().contains(verb),
            "a no-op cross build ran a step\n{}",
            again.report()
        );
    }

    // Without a cross compiler the userland is not built for aarch64, and nothing is installed.
    std::fs::write(ws.path("ebpf-probe.toml"), "# no [cross.aarch64]\n").unwrap();
    let refused = ws.path("pkg-refused");
    ws.cmd(&[
        "install",
        "--arch",
        "aarch64",
        "--destdir",
        refused.to_str().unwrap(),
    ])
    .env("VMLINUX_VER", "5.10.0-dwarf.test")
    .env_remove("CC")
    .failure()
    .stderr_contains("cannot install for aarch64: the userland of `regs`");
    assert!(!refused.exists());

    // A configured compiler that is not there, or builds for another machine, is an error that names it.
    std::fs::write(
        ws.path("ebpf-probe.toml"),
        "[cross.aarch64]\ncc = \"no-such-aarch64-gcc\"\n",
    )
    .unwrap();
    cross_build()
        .env_remove("CC")
        .failure()
        .stderr_contains("[cross.aarch64] cc = \"no-such-aarch64-gcc\"");
    std::fs::write(
        ws.path("ebpf-probe.toml"),
        "[cross.aarch64]\ncc = \"gcc\"\n",
    )
    .unwrap();
    cross_build()
        .env_remove("CC")
        .failure()
        .stderr_contains("builds for x86_64");
}
