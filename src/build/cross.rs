//! `-b --arch ARCH`: the workspace built for another architecture, in its own tree `.output/<ARCH>/` (objects,
//! skeletons, `bin/`), never mixed with this machine's. BPF objects get `-D__TARGET_ARCH_<arch>` and
//! `include/linux_<release>.<ARCH>.h`; C userland is built too when a cross compiler is configured (`CC` for that
//! architecture, or `[cross.ARCH]` in `ebpf-probe.toml`), with a libbpf built by it. Otherwise, and for Rust
//! probes (cargo would need that architecture's Rust target), the build names what it skipped.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::plan::{self, Action, PlanSettings};
use super::{run_plan, BuildOptions, RunContext};
use crate::core::artifacts::BuiltProbe;
use crate::core::compile::{Compiler, CompilerSettings, Target};
use crate::core::graph::Status;
use crate::core::header::{arch_header_name, header_name};
use crate::core::manifest::CrossConfig;
use crate::core::progress::Console;
use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use crate::core::{lock, probe::Userland};
use crate::paths;
use crate::tool::{self, Cmd, Tool, ToolKind};

/// What one `-b --arch` built: the probes whose executable was linked (what `install --arch` ships), the probes
/// whose userland was skipped and why, and the workspace as that architecture sees it.
pub struct ArchBuild {
    pub probes: Vec<BuiltProbe>,
    pub skipped: Vec<(String, String)>,
    pub workspace: Workspace,
}

/// Builds every selected probe for `arch` (a `uname -m` name) and says what it skipped.
pub fn build_for_arch(
    workspace: &Workspace,
    selection: &Selection,
    options: &BuildOptions,
    arch: &str,
) -> Result<ArchBuild> {
    let bpf_arch = crate::kernel::bpf_target_arch(arch)
        .with_context(|| format!("no BPF target architecture is known for `--arch {arch}`"))?;
    let release = &options.kernel_release;
    let header = workspace
        .kernel_header_dir()
        .join(arch_header_name(release, arch));
    if !header.is_file() {
        bail!(
            "no {arch} kernel header for kernel {release}: `{}` does not exist.\n\
             Generate it from that kernel's BTF or vmlinux: `ebpf-probe -g --btf FILE --arch {arch} --kernel-release \
             {release}` or `ebpf-probe -g --vmlinux FILE --arch {arch}` (and build with VMLINUX_VER=<its release>)",
            header.display()
        );
    }
    super::check_unique_binaries(&selection.probes)?;
    let compilers = cross_compilers(workspace, arch)?;
    let arch_dir = workspace.output_dir().join(arch);
    paths::create_dir_all(&arch_dir)?;
    let _lock = lock::lock_output_dir(&workspace.lock_dir())?;
    super::remove_abandoned_temp_files(&arch_dir);
    let include = mirror_sdk_headers(workspace, &arch_dir.join("include"), &header)?;
    let view = workspace.for_arch(arch, &include);
    let probes = &selection.probes;
    let builds_c_userland =
        compilers.cc.is_some() && probes.iter().any(|p| p.userland() == Userland::C);
    let libbpf = match (&compilers.cc, builds_c_userland) {
        (Some(cc), true) => crate::libbpf::select_for_arch(
            &workspace.manifest.libbpf,
            &options.libbpf,
            options.jobs,
            &crate::libbpf::CrossCompiler { arch, cc },
        )?,
        // BPF objects only: they need libbpf's headers, which are the same for every architecture.
        _ => crate::libbpf::select(&workspace.manifest.libbpf, &options.libbpf, options.jobs)?,
    };
    let output = Console::detect().with_json(options.json_messages);
    if options.verbose {
        output.println(&format!("       Using {}", libbpf.reason));
    }
    let target = Target {
        bpf_arch: bpf_arch.to_string(),
        cc: compilers.cc.clone(),
        cxx: compilers.cxx.clone(),
        flags: compilers.flags.clone(),
    };
    let compiler = Compiler::new(&CompilerSettings {
        libbpf: &libbpf,
        root: &workspace.root,
        state_dir: &arch_dir,
        kernel_release: release,
        kernel_header: Some(&include.join("vmlinux.h")),
        debug: options.debug,
        build_opts: &options.build_opts,
        build: &workspace.manifest.build,
        verbose: options.verbose,
        output: output.clone(),
        target: Some(&target),
    })?;
    let plan = plan::plan(&PlanSettings {
        workspace: &view,
        probes,
        compiler: &compiler,
        precompile_header: options.precompile_header,
        c_userland: compilers.cc.is_some(),
        rust_userland: false,
    })?;
    let mut failed: Vec<&str> = Vec::new();
    for (index, error) in &plan.unplannable {
        output.println(&format!(
            "error: probe `{}` failed to build for {arch}: {error:#}\n",
            probes[*index].name
        ));
        failed.push(&probes[*index].name);
    }
    let statuses = run_plan(
        &plan,
        &RunContext {
            workspace: &view,
            selection,
            probes,
            compiler: &compiler,
            skelgen: None,
            output: &output,
            jobs: options.jobs,
            slow_step: options.slow_step,
            started: std::time::Instant::now(),
        },
    );

    let mut objects = Vec::new();
    let mut linked = Vec::new();
    for (node, status) in plan.nodes.iter().zip(&statuses) {
        let ok = matches!(status, Status::Ran | Status::Fresh);
        match (&node.step.action, node.step.probe) {
            (_, Some(index)) if !ok => failed.push(&probes[index].name),
            (Action::Strip { object, .. }, _) => objects.push(object.clone()),
            (Action::Link { binary, .. }, Some(index)) => linked.push(BuiltProbe {
                name: probes[index].name.clone(),
                binary: binary.clone(),
                installables: plan.installables[index].clone(),
            }),
            _ => {}
        }
    }
    failed.sort();
    failed.dedup();
    objects.sort();
    linked.retain(|b| !failed.contains(&b.name.as_str()));
    let mut skipped_why = Vec::new();

    let skipped = |userland: Userland| -> Vec<&str> {
        probes
            .iter()
            .filter(|p| p.userland() == userland && !failed.contains(&p.name.as_str()))
            .map(|p| p.name.as_str())
            .collect()
    };
    let c_skipped = skipped(Userland::C);
    if compilers.cc.is_none() {
        for name in &c_skipped {
            skipped_why.push((name.to_string(), compilers.why_none.clone()));
        }
    }
    if compilers.cc.is_none() && !c_skipped.is_empty() {
        output.println(&format!(
            "note: skipped the userland of {} for {arch}: {}; only the BPF objects were built. To build it too, \
             set CC to a C compiler for {arch} (`ebpf-probe --check --fix --arch {arch}` installs \
             {} and {arch}'s libelf and zlib where the distro packages them) or name one in ebpf-probe.toml: \
             [cross.{arch}] cc = \"{}\"",
            c_skipped.join(", "),
            compilers.why_none,
            default_cross_gcc(arch),
            default_cross_gcc(arch),
        ));
    }
    let rust_skipped = skipped(Userland::Rust);
    for name in &rust_skipped {
        skipped_why.push((
            name.to_string(),
            "Rust probes are not cross-built".to_string(),
        ));
    }
    if !rust_skipped.is_empty() {
        output.println(&format!(
            "note: skipped the userland of {} for {arch}: Rust probes are not cross-built (cargo would need the \
             {arch}-unknown-linux-gnu target and a linker for it); only their BPF objects were built",
            rust_skipped.join(", ")
        ));
    }
    output.record(&super::build_finished(&linked, &failed));
    if !failed.is_empty() {
        bail!(
            "{} of {} probes failed to build for {arch}: {} (their errors are above)",
            failed.len(),
            probes.len(),
            failed.join(", ")
        );
    }
    let binaries = if linked.is_empty() {
        String::new()
    } else {
        format!(
            " and {} executable{}",
            linked.len(),
            if linked.len() == 1 { "" } else { "s" },
        )
    };
    output.println(&format!(
        "    Finished {} BPF object{}{binaries} for {arch} ({}) in {}",
        objects.len(),
        if objects.len() == 1 { "" } else { "s" },
        arch_header_name(release, arch),
        compiler.shown(&arch_dir).display()
    ));
    Ok(ArchBuild {
        probes: linked,
        skipped: skipped_why,
        workspace: view,
    })
}

/// The C compilers of one architecture's userland, when one is configured.
#[derive(Debug)]
pub struct CrossCompilers {
    pub cc: Option<Tool>,
    pub cxx: Option<Tool>,
    pub flags: Vec<String>,
    /// Why there is no `cc`, for the note that says what was skipped.
    pub why_none: String,
}

/// Debian's (and Fedora's) name of the GNU C cross compiler for `arch`.
pub fn default_cross_gcc(arch: &str) -> String {
    format!("{arch}-linux-gnu-gcc")
}

/// The cross compiler for `arch`: `CC` when it builds for `arch` (`$CC -dumpmachine`), else `[cross.ARCH] cc`. A
/// configured compiler that is missing or builds for another architecture is an error; none configured is not.
pub fn cross_compilers(workspace: &Workspace, arch: &str) -> Result<CrossCompilers> {
    let config = workspace.manifest.cross.get(arch);
    let flags = config.map(|c| c.flags.clone()).unwrap_or_default();
    let mut why_none = format!(
        "no cross compiler is configured (CC is not set, and ebpf-probe.toml has no [cross.{arch}])"
    );
    if std::env::var_os("CC").is_some_and(|v| !v.is_empty()) {
        let cc = tool::find(ToolKind::Cc)?;
        let machine = target_machine(&cc)?;
        if builds_for(&machine, arch) {
            let cxx = match std::env::var_os("CXX").filter(|v| !v.is_empty()) {
                Some(_) => {
                    let cxx = tool::find(ToolKind::Cxx)?;
                    let cxx_machine = target_machine(&cxx)?;
                    if !builds_for(&cxx_machine, arch) {
                        bail!(
                            "CXX=`{}` builds for {cxx_machine}, but CC builds for {arch}: set CXX to {arch}'s C++ \
                             compiler too, or unset it",
                            cxx.program.display()
                        );
                    }
                    Some(cxx)
                }
                None => config
                    .and_then(|c| c.cxx.as_deref())
                    .and_then(find_tool)
                    .or_else(|| sibling_cxx(&cc)),
            };
            return Ok(CrossCompilers {
                cc: Some(cc),
                cxx,
                flags,
                why_none: String::new(),
            });
        }
        why_none = format!(
            "CC=`{}` builds for {machine}, not {arch}",
            cc.program.display()
        );
    }
    let Some(CrossConfig { cc: Some(name), .. }) = config else {
        return Ok(CrossCompilers {
            cc: None,
            cxx: None,
            flags,
            why_none,
        });
    };
    let manifest = workspace.manifest_path();
    let cc = find_tool(name).with_context(|| {
        format!(
            "[cross.{arch}] cc = \"{name}\" in `{}` is not an executable program on PATH; install it \
             (`ebpf-probe --check --fix --arch {arch}`) or correct the name",
            manifest.display()
        )
    })?;
    let machine = target_machine(&cc)?;
    if !builds_for(&machine, arch) {
        bail!(
            "[cross.{arch}] cc = \"{name}\" in `{}` builds for {machine}, not {arch}; name {arch}'s C compiler there \
             (e.g. {})",
            manifest.display(),
            default_cross_gcc(arch)
        );
    }
    let cxx = match config.and_then(|c| c.cxx.as_deref()) {
        Some(cxx_name) => Some(find_tool(cxx_name).with_context(|| {
            format!(
                "[cross.{arch}] cxx = \"{cxx_name}\" in `{}` is not an executable program on PATH",
                manifest.display()
            )
        })?),
        None => sibling_cxx(&cc),
    };
    Ok(CrossCompilers {
        cc: Some(cc),
        cxx,
        flags,
        why_none: String::new(),
    })
}

fn find_tool(name: &str) -> Option<Tool> {
    let path = Path::new(name);
    let program = if path.components().count() > 1 {
        Some(path.to_path_buf()).filter(|p| p.is_file())
    } else {
        tool::find_program(name)
    }?;
    Some(Tool { program })
}

/// The C++ compiler installed beside a C compiler: `aarch64-linux-gnu-gcc` → `aarch64-linux-gnu-g++`.
fn sibling_cxx(cc: &Tool) -> Option<Tool> {
    let name = cc.program.file_name()?.to_str()?;
    let cxx = sibling_cxx_name(name)?;
    find_tool(&cc.program.with_file_name(cxx).display().to_string())
}

fn sibling_cxx_name(cc: &str) -> Option<String> {
    for (c, cxx) in [("gcc", "g++"), ("clang", "clang++"), ("cc", "c++")] {
        if let Some(prefix) = cc.strip_suffix(c) {
            return Some(format!("{prefix}{cxx}"));
        }
        // Versioned names: `aarch64-linux-gnu-gcc-12` → `aarch64-linux-gnu-g++-12`.
        if let Some((base, version)) = cc.rsplit_once('-') {
            if version.chars().all(|ch| ch.is_ascii_digit()) && base.ends_with(c) {
                return Some(format!("{}{cxx}-{version}", &base[..base.len() - c.len()]));
            }
        }
    }
    None
}

/// What a compiler builds for: `$CC -dumpmachine` (`aarch64-linux-gnu`).
fn target_machine(cc: &Tool) -> Result<String> {
    let output = Cmd::new(cc)
        .arg("-dumpmachine")
        .run()
        .with_context(|| format!("cannot ask `{}` what it builds for", cc.program.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Whether a target triple (`aarch64-linux-gnu`, `x86_64-pc-linux-gnu`) is for `arch` (a `uname -m` name).
fn builds_for(triple: &str, arch: &str) -> bool {
    let machine = triple.split('-').next().unwrap_or("");
    let bpf = crate::kernel::bpf_target_arch;
    !machine.is_empty() && bpf(machine).is_some() && bpf(machine) == bpf(arch)
}

/// `dir` holding a copy of every SDK header of the kernel header dir (written only when changed, so freshness
/// holds) and `vmlinux.h` linking to `header`: a source's `#include "vmlinux.h"` is looked up beside the SDK header
/// that includes it, so the native `include/vmlinux.h` must not be beside it.
fn mirror_sdk_headers(workspace: &Workspace, dir: &Path, header: &Path) -> Result<PathBuf> {
    paths::create_dir_all(dir)?;
    for source in paths::files_with_suffix(workspace.kernel_header_dir(), ".h")? {
        let Some(name) = source.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if name == "vmlinux.h" || name.starts_with("linux_") {
            continue;
        }
        let text = paths::read_to_string(&source)?;
        paths::write_if_changed(&dir.join(&name), &text)?;
    }
    let link = dir.join("vmlinux.h");
    let target = paths::absolute_lexically(header)?;
    if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
        paths::symlink_atomic(&target, &link)?;
    }
    // Not the native header's name: a mirror never looks like a generated header to `-g` or the build.
    debug_assert_ne!(
        link.file_name(),
        Some(std::ffi::OsStr::new(&header_name("x")))
    );
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_are_matched_to_the_architecture_they_build_for() {
        assert!(builds_for("aarch64-linux-gnu", "aarch64"));
        assert!(builds_for("arm64-apple-darwin", "aarch64"));
        assert!(builds_for("riscv64-linux-gnu", "riscv64"));
        assert!(!builds_for("x86_64-linux-gnu", "aarch64"));
        assert!(!builds_for("x86_64-pc-linux-gnu", "riscv64"));
        assert!(!builds_for("", "aarch64"));
        assert!(!builds_for("bogus", "aarch64"));
    }

    #[test]
    fn the_cxx_beside_a_cc_is_named_after_it() {
        assert_eq!(
            sibling_cxx_name("aarch64-linux-gnu-gcc").as_deref(),
            Some("aarch64-linux-gnu-g++")
        );
        assert_eq!(
            sibling_cxx_name("aarch64-linux-gnu-gcc-12").as_deref(),
            Some("aarch64-linux-gnu-g++-12")
        );
        assert_eq!(sibling_cxx_name("clang").as_deref(), Some("clang++"));
        assert_eq!(sibling_cxx_name("cc").as_deref(), Some("c++"));
        assert_eq!(sibling_cxx_name("zig"), None);
    }
}
