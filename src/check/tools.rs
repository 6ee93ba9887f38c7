//! The `tools` section: clang (and its minimum version), llvm-strip, bpftool (with `gen skeleton`), cc, make, pahole
//! (DWARF → BTF for `-g`), clangd (editors, on `compile_commands.json`), and the cross compilers `-b --arch` builds other architectures' userland with.

use super::fix::FixAction;
use super::{Host, Row};
use crate::tool::{self, Cmd, ToolKind};
use crate::toolchain::{parse_bpftool_version, parse_clang_version, Version, MIN_CLANG_MAJOR};

pub struct Tools {
    pub rows: Vec<Row>,
    /// The libbpf bpftool was built on, which its skeletons may expect (the `skeleton/libbpf` row).
    pub bpftool_libbpf: Option<Version>,
}

pub fn rows(host: &Host, arch: Option<&str>) -> Tools {
    let clang = clang_row(host).with_action(FixAction::install("clang"));
    let llvm_strip = simple_tool_row(ToolKind::LlvmStrip, "llvm-strip", true, host)
        .with_action(FixAction::install("llvm-strip"));
    let (bpftool, bpftool_libbpf) = bpftool_row(host);
    let bpftool = bpftool.with_action(FixAction::install("bpftool"));
    let cc = simple_tool_row(ToolKind::Cc, "cc", true, host).with_action(FixAction::install("cc"));
    let make = simple_tool_row(ToolKind::Make, "make", false, host)
        .with_action(FixAction::install("make"));
    // `-g` needs pahole only for a kernel without BTF (the DWARF route), so it is required only then; `--fix`
    // installs it either way, as it does make, so `-g --vmlinux`/`--kernel-package` work after `--check --fix`.
    let kernel_has_btf = std::path::Path::new(crate::kernel::KERNEL_BTF).is_file();
    let pahole = simple_tool_row(ToolKind::Pahole, "pahole", !kernel_has_btf, host)
        .with_action(FixAction::install("pahole"));
    // Editors read the compile_commands.json every -b writes through clangd; never required to build.
    let clangd = simple_tool_row(ToolKind::Clangd, "clangd", false, host)
        .with_action(FixAction::install("clangd"));
    let mut rows = vec![clang, llvm_strip, bpftool, cc, make, pahole, clangd];
    rows.extend(cross_compiler_rows(host, arch));
    Tools {
        rows,
        bpftool_libbpf,
    }
}

/// Which cross compilers `-b --arch ARCH` can build userland with. Without `--arch` they are informational (BPF
/// objects need none, and `--fix` installs none: each is a large toolchain); `--check --arch ARCH` requires that
/// architecture's C compiler and its libelf and zlib, which `--fix` installs where the distro packages them.
fn cross_compiler_rows(host: &Host, arch: Option<&str>) -> Vec<Row> {
    let machine = crate::kernel::machine();
    if let Some(arch) = arch
        .filter(|a| crate::kernel::bpf_target_arch(a) != crate::kernel::bpf_target_arch(&machine))
    {
        return target_rows(host, arch);
    }
    [
        (ToolKind::CrossGccAarch64, "aarch64-linux-gnu-gcc"),
        (ToolKind::CrossGccRiscv64, "riscv64-linux-gnu-gcc"),
    ]
    .into_iter()
    .map(|(kind, name)| {
        let r = Row::new("tools", name, false);
        match tool::find(kind) {
            Ok(found) => r.pass(format!(
                "{} (-b --arch builds userland with it)",
                found.program.display()
            )),
            Err(_) => r.fail(
                "not found: -b --arch builds BPF objects only (or set CC)",
                host.install_command(name),
            ),
        }
    })
    .collect()
}

/// `--check --arch ARCH`: ARCH's C compiler (`CC` when it builds for ARCH, else `<ARCH>-linux-gnu-gcc`), and
/// whether it links a program against ARCH's libelf and zlib, as every loader does.
fn target_rows(host: &Host, arch: &str) -> Vec<Row> {
    let gcc = format!("{arch}-linux-gnu-gcc");
    let compiler_row = Row::new("tools", format!("{arch} C compiler"), true);
    let libraries_row = Row::new("tools", format!("{arch} libelf, zlib"), true);
    let libraries = format!("{arch}-libraries");
    let libraries_fix = || {
        match host.family.as_ref().map(|f| f.packages_for(&libraries, "")) {
        Some(packages) if !packages.is_empty() => (
            host.install_command(&libraries),
            Some(FixAction::install(libraries.clone())),
        ),
        _ => (
            format!(
                "this distro packages no {arch} libelf/zlib: build them for {arch} into a sysroot and name it in \
                 ebpf-probe.toml, [cross.{arch}] flags = [\"--sysroot=DIR\"]"
            ),
            None,
        ),
    }
    };
    let from_cc = tool::find(ToolKind::Cc)
        .ok()
        .filter(|_| std::env::var_os("CC").is_some_and(|v| !v.is_empty()))
        .filter(|cc| {
            let triple = tool_output(cc, &["-dumpmachine"]);
            let machine = triple.trim().split('-').next().unwrap_or("");
            !machine.is_empty()
                && crate::kernel::bpf_target_arch(machine) == crate::kernel::bpf_target_arch(arch)
        });
    let compiler =
        from_cc.or_else(|| tool::find_program(&gcc).map(|program| tool::Tool { program }));
    let Some(compiler) = compiler else {
        let (fix, action) = libraries_fix();
        let mut libraries_row =
            libraries_row.fail(format!("not checked: no {arch} C compiler"), fix);
        if let Some(action) = action {
            libraries_row = libraries_row.with_action(action);
        }
        return vec![
            compiler_row
                .fail(
                    format!("neither {gcc} on PATH nor a CC that builds for {arch}"),
                    format!(
                        "{}, or set CC to {arch}'s C compiler",
                        host.install_command(&gcc)
                    ),
                )
                .with_action(FixAction::install(gcc.clone())),
            libraries_row,
        ];
    };
    let compiler_row = compiler_row.pass(format!(
        "{} (-b --arch {arch} builds userland with it when CC or [cross.{arch}] cc names it)",
        compiler.program.display()
    ));
    let libraries_row = match links_libelf_and_zlib(&compiler) {
        Ok(()) => libraries_row.pass(format!("{} links -lelf -lz", compiler.program.display())),
        Err(why) => {
            let (fix, action) = libraries_fix();
            let row = libraries_row.fail(why, fix);
            match action {
                Some(action) => row.with_action(action),
                None => row,
            }
        }
    };
    vec![compiler_row, libraries_row]
}

/// Compiles and links a program that calls libelf and zlib with `cc`; the error is the compiler's first line.
fn links_libelf_and_zlib(cc: &tool::Tool) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
    let source = dir.path().join("links.c");
    std::fs::write(
        &source,
        "#include <libelf.h>\n#include <zlib.h>\n\
         int main(void) { return elf_version(EV_CURRENT) == EV_NONE || !zlibVersion(); }\n",
    )
    .map_err(|e| format!("cannot write `{}`: {e}", source.display()))?;
    let output = Cmd::new(cc)
        .arg(&source)
        .args(["-lelf", "-lz", "-o"])
        .arg(dir.path().join("links"))
        .output()
        .map_err(|e| format!("{e:#}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr
        .lines()
        .find(|l| l.contains("error") || l.contains("cannot find"))
        .or_else(|| stderr.lines().next())
        .unwrap_or("it failed")
        .trim();
    Err(format!("cannot link -lelf -lz: {first}"))
}

fn clang_row(host: &Host) -> Row {
    let r = Row::new("tools", "clang", true);
    let clang = match tool::find(ToolKind::Clang) {
        Err(e) => return r.fail(e.to_string(), host.install_command("clang")),
        Ok(clang) => clang,
    };
    match parse_clang_version(&tool_output(&clang, &["--version"])) {
        Some(v) if v.0 >= MIN_CLANG_MAJOR => r.pass(format!("{v} ({})", clang.program.display())),
        Some(v) => r.fail(
            format!(
                "{v} ({}) is older than {MIN_CLANG_MAJOR}",
                clang.program.display()
            ),
            format!(
                "{}, or set CLANG to a clang >= {MIN_CLANG_MAJOR}",
                host.install_command("clang")
            ),
        ),
        None => r.fail(
            format!("{} printed no clang version", clang.program.display()),
            "set CLANG to a working clang",
        ),
    }
}

/// The bpftool row, and the libbpf version bpftool reports it was built on.
fn bpftool_row(host: &Host) -> (Row, Option<Version>) {
    let r = Row::new("tools", "bpftool", true);
    let bpftool = match tool::find(ToolKind::Bpftool) {
        Err(e) => return (r.fail(e.to_string(), host.install_command("bpftool")), None),
        Ok(bpftool) => bpftool,
    };
    let (version, libbpf) = parse_bpftool_version(&tool_output(&bpftool, &["version"]));
    let has_skeleton = tool_output(&bpftool, &["gen", "help"]).contains("skeleton");
    let described = format!(
        "{}{} ({})",
        version
            .map(|v| format!("v{v}"))
            .unwrap_or_else(|| "unknown version".into()),
        libbpf
            .map(|l| format!(", libbpf {}.{}", l.0, l.1))
            .unwrap_or_default(),
        bpftool.program.display()
    );
    let row = if has_skeleton {
        r.pass(format!("{described}, has `gen skeleton`"))
    } else {
        r.fail(
            format!("{described} lacks `gen skeleton`"),
            host.install_command("bpftool"),
        )
    };
    (row, libbpf)
}

/// A tool that only has to be there: the row shows its version line and where it was found.
fn simple_tool_row(kind: ToolKind, name: &'static str, required: bool, host: &Host) -> Row {
    let r = Row::new("tools", name, required);
    match tool::find(kind) {
        Err(e) => r.fail(e.to_string(), host.install_command(name)),
        Ok(found) => {
            let text = tool_output(&found, &["--version"]);
            // `llvm-strip --version` opens with a banner; the line naming a version is the useful one.
            let version = text
                .lines()
                .find(|l| l.contains("version") || l.contains("Make"))
                .or_else(|| text.lines().next())
                .unwrap_or("")
                .trim()
                .to_string();
            r.pass(format!("{version} ({})", found.program.display()))
        }
    }
}

/// stdout and stderr together; empty when the tool cannot be started.
fn tool_output(tool: &tool::Tool, args: &[&str]) -> String {
    match Cmd::new(tool).args(args).output() {
        Ok(out) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => String::new(),
    }
}
