//! `-b --arch ARCH`: BPF objects for another architecture (`-D__TARGET_ARCH_<arch>`, against
//! `include/linux_<release>.<ARCH>.h`) in their own tree, `.output/<ARCH>/<probe>/…`; userland is not built.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};

use super::plan::{probe_flags, shared_names};
use super::BuildOptions;
use crate::core::compile::{Compiler, CompilerSettings};
use crate::core::header::{arch_header_name, header_name};
use crate::core::progress::Console;
use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use crate::core::{lock, probe::Userland};
use crate::paths;

/// Builds every selected probe's BPF objects for `arch` (a `uname -m` name) and says what it skipped.
pub fn build_for_arch(
    workspace: &Workspace,
    selection: &Selection,
    options: &BuildOptions,
    arch: &str,
) -> Result<Vec<PathBuf>> {
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
    let arch_dir = workspace.output_dir().join(arch);
    paths::create_dir_all(&arch_dir)?;
    let _lock = lock::lock_output_dir(&workspace.output_dir())?;
    let include = mirror_sdk_headers(workspace, &arch_dir.join("include"), &header)?;
    let libbpf = crate::libbpf::select(&workspace.manifest.libbpf, &options.libbpf, options.jobs)?;
    let output = Console::detect();
    let mut compiler = Compiler::new(&CompilerSettings {
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
    })?;
    compiler.retarget_bpf(bpf_arch);

    // Every BPF compile of every probe: (probe, source, object, include dirs, flags).
    let sets = workspace.shared_sets()?;
    let mut compiles = Vec::new();
    let mut skipped_userland = Vec::new();
    for probe in &selection.probes {
        let sources = probe
            .sources()
            .with_context(|| format!("probe `{}`", probe.name))?;
        let shared = shared_names(workspace, probe, &sets)?;
        let flags = probe_flags(workspace, probe, &sets, &shared);
        let native_out = workspace.probe_output_dir(&probe.name);
        let out_dir = arch_dir.join(&probe.name);
        // The SDK dir holding vmlinux.h is replaced by its mirror, the native output dir by this tree's.
        let includes: Vec<PathBuf> = flags
            .bpf_includes
            .iter()
            .map(|dir| {
                if dir == workspace.kernel_header_dir() {
                    include.clone()
                } else if *dir == native_out {
                    out_dir.clone()
                } else {
                    dir.clone()
                }
            })
            .collect();
        for bpf in &sources.bpf {
            let object = out_dir.join(format!("{}.bpf.o", bpf.relative_stem.display()));
            compiles.push((
                probe.name.clone(),
                bpf.source.clone(),
                object,
                includes.clone(),
                flags.bpf_flags.clone(),
            ));
        }
        if !sources.c.is_empty() || !sources.cxx.is_empty() || probe.userland() == Userland::Rust {
            skipped_userland.push(probe.name.clone());
        }
    }

    let next = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    let built = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1).min(compiles.len().max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some((probe, source, object, includes, flags)) = compiles.get(index) else {
                    break;
                };
                match compiler.bpf_object(source, object, includes, flags, None) {
                    Ok(ran) => {
                        if ran {
                            output.println(&format!(
                                "   Compiled {} ({arch})",
                                compiler.shown(object).display()
                            ));
                        }
                        built.lock().unwrap().push(object.clone());
                    }
                    Err(e) => {
                        output.println(&format!(
                            "error: probe `{probe}` failed to build for {arch}: {e:#}\n"
                        ));
                        failures.lock().unwrap().push(probe.clone());
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    failures.dedup();
    let mut built = built.into_inner().unwrap();
    built.sort();
    if !skipped_userland.is_empty() {
        output.println(&format!(
            "note: skipped the userland of {} for {arch}: cross-building loaders needs a cross compiler and libbpf, \
             libelf and zlib built for {arch}, which -b --arch does not set up (cross compilers here: \
             `ebpf-probe --check`); only the BPF objects were built",
            skipped_userland.join(", ")
        ));
    }
    if !failures.is_empty() {
        bail!(
            "{} probe(s) failed to build for {arch}: {}",
            failures.len(),
            failures.join(", ")
        );
    }
    output.println(&format!(
        "    Finished {} BPF object{} for {arch} ({}) in {}",
        built.len(),
        if built.len() == 1 { "" } else { "s" },
        arch_header_name(release, arch),
        compiler.shown(&arch_dir).display()
    ));
    Ok(built)
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
