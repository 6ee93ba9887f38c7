//! What each selected probe installs (executable, installables, `.meta` and `conf/` files, minimized kernel BTF)
//! and where it goes.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::conf::conf_files;
use super::manifest::Kind;
use crate::core::artifacts::BuiltProbe;
use crate::core::minimized_btf::MinimizedBtf;
use crate::core::selection::Selection;

/// One file to install: where it comes from, where it goes (relative to the root), and what it is.
pub(super) struct FileToInstall {
    pub(super) probes: Vec<String>,
    pub(super) source: PathBuf,
    pub(super) rel: PathBuf,
    pub(super) kind: Kind,
}

/// The install directories, relative to the install root.
pub(super) struct InstallTo {
    pub(super) bin_dir: PathBuf,
    pub(super) conf_dir: PathBuf,
    pub(super) meta_dir: PathBuf,
    pub(super) btf_dir: PathBuf,
}

/// What to install: each probe's executable, its installables, `.meta` and `conf/` files, then the minimized
/// kernel BTF files, which serve every probe installed with them.
pub(super) fn files_to_install(
    selection: &Selection,
    built: &[BuiltProbe],
    to: &InstallTo,
    minimized_btf: &[MinimizedBtf],
) -> Result<Vec<FileToInstall>> {
    let (bin_dir, conf_dir, meta_dir) = (&to.bin_dir, &to.conf_dir, &to.meta_dir);
    let mut files = Vec::new();
    for probe in &selection.probes {
        let Some(built) = built.iter().find(|b| b.name == probe.name) else {
            bail!("probe `{}` was not built", probe.name);
        };
        let probes = vec![probe.name.clone()];
        files.push(FileToInstall {
            probes: probes.clone(),
            source: resolved(&built.binary)?,
            rel: bin_dir.join(probe.binary_name()),
            kind: Kind::Executable,
        });
        for installable in &built.installables {
            let name = installable.path.file_name().unwrap_or_default();
            let is_object = name.to_string_lossy().ends_with(".bpf.o");
            files.push(FileToInstall {
                probes: probes.clone(),
                source: resolved(&installable.path)?,
                rel: join_subdir(bin_dir, &installable.subdir).join(name),
                kind: if is_object {
                    Kind::Object
                } else {
                    Kind::Library
                },
            });
        }
        for meta in probe.meta_files()? {
            let name = meta.file_name().context("a .meta file has a name")?;
            files.push(FileToInstall {
                probes: probes.clone(),
                rel: meta_dir.join(name),
                source: resolved(&meta)?,
                kind: Kind::Meta,
            });
        }
        let conf = match probe.conf_dir() {
            Some(_) => conf_files(&probe.dir)?,
            None => Vec::new(),
        };
        for (rel, source) in conf {
            files.push(FileToInstall {
                probes: probes.clone(),
                source,
                rel: conf_dir.join(rel),
                kind: Kind::Config,
            });
        }
    }
    let all_probes: Vec<String> = selection.probes.iter().map(|p| p.name.clone()).collect();
    for btf in minimized_btf {
        files.push(FileToInstall {
            probes: all_probes.clone(),
            source: resolved(&btf.path)?,
            rel: to.btf_dir.join(format!("{}.btf", btf.release)),
            kind: Kind::Btf,
        });
    }
    Ok(files)
}

/// A built file or `.meta` with its links resolved: what staging opens (without following links, so the file
/// read is the one checked).
fn resolved(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("failed to resolve `{}`", path.display()))
}

/// `dir` joined with a probe.toml `install` subdirectory (`.` is the dir itself).
fn join_subdir(dir: &Path, subdir: &str) -> PathBuf {
    let mut out = dir.to_path_buf();
    for component in Path::new(subdir).components() {
        if let Component::Normal(name) = component {
            out.push(name);
        }
    }
    out
}

/// Two probes may install the same file (gala-gopher's ksliprobe and pgsliprobe both ship `tc_tstamp.bpf.o`):
/// fine when the bytes are the same, and both probes own it; other bytes at one path are an error.
pub(super) fn unique(files: Vec<FileToInstall>, root_dir: &Path) -> Result<Vec<FileToInstall>> {
    let mut unique: Vec<FileToInstall> = Vec::new();
    for copy in files {
        match unique.iter_mut().find(|u| u.rel == copy.rel) {
            Some(first) if same_bytes(&first.source, &copy.source) => {
                for probe in copy.probes {
                    if !first.probes.contains(&probe) {
                        first.probes.push(probe);
                    }
                }
            }
            Some(first) => bail!(
                "`{}` (probe {}) and `{}` (probe {}) would both be installed as `{}`",
                first.source.display(),
                first.probes.join(", "),
                copy.source.display(),
                copy.probes.join(", "),
                root_dir.join(&copy.rel).display()
            ),
            None => unique.push(copy),
        }
    }
    Ok(unique)
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}
