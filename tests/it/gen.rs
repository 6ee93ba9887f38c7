//! `-g`: the generated header, its link, determinism, other BTF files, and broken input.

use crate::support::{require, require_build_tools, Workspace};

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
