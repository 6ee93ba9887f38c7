//! The flags and include dirs of one probe's BPF and userland compiles (its defines, clang/cc flags, include
//! path of SDK, own, extra and shared-set dirs), computed the same way by every operation that compiles for it:
//! the build's plan, `-b --arch`, and `verify` when it recompiles a rejected program with a known fixing flag.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::core::compile::define_flags;
use crate::core::probe::Probe;
use crate::core::workspace::{SharedSet, Workspace};

/// The flags and include dirs of one probe's compiles, computed once when planning.
#[derive(Default)]
pub struct ProbeFlags {
    pub bpf_includes: Vec<PathBuf>,
    pub user_includes: Vec<PathBuf>,
    /// The probe's clang flags and `-D` defines (the precompiled header is shared by probes with equal ones).
    pub bpf_flags: Vec<String>,
    pub cflags: Vec<String>,
    pub cxxflags: Vec<String>,
    pub libs: Vec<String>,
}

/// The shared sets `probe` links, each checked to exist.
pub fn shared_names(
    workspace: &Workspace,
    probe: &Probe,
    sets: &[SharedSet],
) -> Result<Vec<String>> {
    let (names, from) = match &probe.config.shared {
        Some(names) => (names.clone(), probe.config_path()),
        None => (workspace.default_shared(), workspace.manifest_path()),
    };
    for name in &names {
        if !sets.iter().any(|s| &s.name == name) {
            let known: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "`{}` names the shared source set `{name}`, which `{}` does not define (sets: {}); add `[sources.{name}]` there or remove the name",
                from.display(),
                workspace.manifest_path().display(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            );
        }
    }
    Ok(names)
}

pub fn probe_flags(
    workspace: &Workspace,
    probe: &Probe,
    sets: &[SharedSet],
    shared: &[String],
) -> ProbeFlags {
    let out_dir = workspace.probe_output_dir(&probe.name);
    let sdk = &workspace.layout.include_dirs;
    let own = [out_dir, probe.dir.clone()];
    let shared_dirs: Vec<PathBuf> = sets
        .iter()
        .filter(|s| shared.contains(&s.name))
        .flat_map(|s| s.dirs.iter().cloned())
        .collect();
    let includes = unique(
        sdk.iter()
            .chain(&own)
            .chain(&probe.include_dirs())
            .chain(&shared_dirs)
            .cloned(),
    );
    let defines = define_flags(&probe_defines(workspace, probe));
    let config = &probe.config;
    ProbeFlags {
        bpf_includes: includes.clone(),
        user_includes: includes,
        bpf_flags: defines.iter().chain(&config.clang_flags).cloned().collect(),
        cflags: defines.iter().chain(&config.cflags).cloned().collect(),
        cxxflags: defines.iter().chain(&config.cxxflags).cloned().collect(),
        libs: config.libs.clone(),
    }
}

/// The probe's own defines, plus `[build] btf_defines`' choice when it names neither of the two.
pub fn probe_defines(workspace: &Workspace, probe: &Probe) -> Vec<String> {
    let mut defines = probe.config.defines.clone();
    let choices = &workspace.manifest.build.btf_defines;
    if let [with_btf, without_btf] = choices.as_slice() {
        let named = |name: &str| defines.iter().any(|d| d.split('=').next() == Some(name));
        if !named(with_btf) && !named(without_btf) {
            let has_btf = Path::new(crate::kernel::KERNEL_BTF).exists();
            defines.push(if has_btf { with_btf } else { without_btf }.clone());
        }
    }
    defines
}

pub fn unique(items: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}
