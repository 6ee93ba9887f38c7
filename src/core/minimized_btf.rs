//! The minimized kernel BTF files `btfgen` writes (`.output/btf/<release>.btf`) and `install` ships: where they
//! are, the built BPF objects they are made from, and the record of which objects (by sha256) each was made for,
//! so that `install` never ships a file that no longer covers the objects it installs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::core::probe::Probe;
use crate::core::workspace::Workspace;
use crate::paths;

/// The record's name inside `.output/btf/`.
const RECORD: &str = "btfgen.json";

/// What `btfgen` made, per kernel release.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub kernels: BTreeMap<String, KernelRecord>,
}

/// One minimized BTF: the kernel BTF it was cut from, and every object (relative to the workspace root) it
/// was made for, with the object's sha256 at that time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelRecord {
    pub input: PathBuf,
    pub objects: BTreeMap<PathBuf, String>,
}

/// `.output/btf/`.
pub fn btf_output_dir(workspace: &Workspace) -> PathBuf {
    workspace.output_dir().join("btf")
}

/// `.output/btf/<release>.btf`.
pub fn minimized_btf_path(workspace: &Workspace, release: &str) -> PathBuf {
    btf_output_dir(workspace).join(format!("{release}.btf"))
}

/// `.output/btf/`, created if missing; refused when something other than a directory is there (a symlink
/// planted there would send every file we write elsewhere).
pub fn ensure_btf_output_dir(workspace: &Workspace) -> Result<PathBuf> {
    let dir = btf_output_dir(workspace);
    paths::create_dir_all(&workspace.output_dir())?;
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("failed to create directory `{}`", dir.display()))
        }
    }
    check_plain_dir(&dir)?;
    Ok(dir)
}

fn check_plain_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("failed to read `{}`", dir.display()))?;
    if !meta.file_type().is_dir() {
        bail!(
            "`{}` is not a directory (a symlink or file is there); remove it and run `ebpf-probe btfgen` again",
            dir.display()
        );
    }
    Ok(())
}

/// The record, or an empty one when there is none yet.
pub fn read_record(workspace: &Workspace) -> Result<Record> {
    let path = btf_output_dir(workspace).join(RECORD);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", path.display())),
        Ok(meta) if !meta.is_file() => bail!(
            "`{}` is not a regular file; remove it and run `ebpf-probe btfgen` again",
            path.display()
        ),
        Ok(_) => {}
    }
    let text = paths::read_to_string(&path)?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is damaged; remove `{}` and run `ebpf-probe btfgen` again",
            path.display(),
            btf_output_dir(workspace).display()
        )
    })
}

/// Writes the record atomically (the caller holds the build lock and made the directory).
pub fn write_record(workspace: &Workspace, record: &Record) -> Result<()> {
    let dir = btf_output_dir(workspace);
    check_plain_dir(&dir)?;
    let text = serde_json::to_string_pretty(record)?;
    paths::write_atomic(&dir.join(RECORD), format!("{text}\n").as_bytes())
}

/// A minimized BTF file `install` ships.
#[derive(Debug, Clone)]
pub struct MinimizedBtf {
    pub release: String,
    pub path: PathBuf,
}

/// The minimized BTF files to install with `probes`: every `.output/btf/<release>.btf`, each checked to have been
/// made for exactly the objects those probes have now. None when `btfgen` never ran.
pub fn files_to_ship(workspace: &Workspace, probes: &[Probe]) -> Result<Vec<MinimizedBtf>> {
    let dir = btf_output_dir(workspace);
    if std::fs::symlink_metadata(&dir).is_err() {
        return Ok(Vec::new());
    }
    check_plain_dir(&dir)?;
    let record = read_record(workspace)?;
    let mut files = Vec::new();
    for name in paths::files_with_suffix(&dir, ".btf")? {
        let file_name = name.file_name().unwrap_or_default().to_string_lossy();
        let release = file_name.trim_end_matches(".btf").to_string();
        let Some(made) = record.kernels.get(&release) else {
            bail!(
                "`{}` was not made by `ebpf-probe btfgen` (no entry in `{}`); remove it, or make it with \
                 `ebpf-probe btfgen --kernel KERNEL_BTF`",
                name.display(),
                dir.join(RECORD).display()
            );
        };
        if std::fs::symlink_metadata(&name).is_ok_and(|m| !m.is_file()) {
            bail!(
                "`{}` is not a regular file (a symlink?); run `ebpf-probe btfgen` again to replace it",
                name.display()
            );
        }
        for probe in probes {
            for object in workspace.built_bpf_objects(probe)? {
                let relative = object
                    .strip_prefix(&workspace.root)
                    .unwrap_or(&object)
                    .to_path_buf();
                let now = paths::sha256_file(&object)?;
                let problem = match made.objects.get(&relative) {
                    None => "was not among the objects it was made for",
                    Some(sha256) if *sha256 != now => "changed since it was made",
                    Some(_) => continue,
                };
                bail!(
                    "the minimized BTF `{}` does not cover probe `{}`: `{}` {problem}; make it again with \
                     `ebpf-probe btfgen {} --kernel {}` (with every probe you install), or remove it",
                    name.display(),
                    probe.name,
                    relative.display(),
                    probes
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    made.input.display()
                );
            }
        }
        files.push(MinimizedBtf {
            release,
            path: name,
        });
    }
    Ok(files)
}
