//! The versioned JSON manifest of what install wrote: its records, reading (with migration), checks and writing.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::existing::open_regular;
use super::journal::{How, Pending};
use super::root::{check_recorded, Root};
use super::sibling::{is_sibling_of, is_temp_beside, SIBLING_MARK};
use crate::paths;

/// Where the manifest lives, relative to the install root.
pub(super) const MANIFEST: &str = "var/lib/ebpf-probe/installed.json";
/// 3 added `btf` files; a version 2 manifest reads as it is (an older ebpf-probe refuses version 3 by its number
/// rather than as damaged).
pub(super) const MANIFEST_VERSION: u64 = 3;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Manifest {
    pub(super) version: u64,
    pub(super) files: Vec<Entry>,
    /// Directories `install` created, removed again when they are empty and nothing is installed any more
    /// (`.` is the install root itself).
    pub(super) dirs: Vec<PathBuf>,
    /// An install under way: what to undo if it never finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) pending: Option<Pending>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct Entry {
    /// Relative to the install root.
    pub(super) path: PathBuf,
    /// Every probe that installed these bytes here (two probes may ship the same file).
    pub(super) probes: Vec<String>,
    pub(super) kind: Kind,
    /// What install wrote; `None` only for files recorded by an ebpf-probe that kept no checksums.
    pub(super) sha256: Option<String>,
    /// The file install replaced, kept beside it, that `uninstall` puts back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) backup: Option<PathBuf>,
    /// The file was already there with these bytes: install wrote nothing and `uninstall` leaves it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(super) existed: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Kind {
    Executable,
    Library,
    Object,
    Meta,
    Config,
    /// A minimized kernel BTF file (`btfgen`).
    Btf,
}

impl Kind {
    /// The mode a file of this kind gets, never more than its source's.
    pub(super) fn intended_mode(self) -> u32 {
        match self {
            Kind::Executable | Kind::Library => 0o755,
            Kind::Object | Kind::Meta | Kind::Config | Kind::Btf => 0o644,
        }
    }

    /// rpm's `%config(noreplace)`: an existing file with other content is never replaced.
    pub(super) fn is_config(self) -> bool {
        self == Kind::Config
    }

    /// Files an admin may edit after install: kept when they changed.
    pub(super) fn is_editable(self) -> bool {
        matches!(self, Kind::Meta | Kind::Config)
    }
}

/// A manifest written before checksums and relative paths.
#[derive(Deserialize)]
struct LegacyManifest {
    files: Vec<LegacyFile>,
    dirs: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct LegacyFile {
    probe: String,
    path: PathBuf,
}

impl Manifest {
    pub(super) fn new() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            files: Vec::new(),
            dirs: Vec::new(),
            pending: None,
        }
    }
}

/// Reads the manifest (never through a link), migrating one written by an older ebpf-probe, and refuses it when
/// any path it records could lead outside the install root.
pub(super) fn load_manifest(root: &Root) -> Result<Option<Manifest>> {
    let rel = Path::new(MANIFEST);
    let shown = root.shown(rel);
    let Some(disk) = root.resolve(rel)? else {
        return Ok(None);
    };
    let bytes = match std::fs::symlink_metadata(&disk) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", shown.display())),
        Ok(meta) if meta.file_type().is_symlink() => bail!(
            "the install manifest `{}` is a symlink; refusing to follow it",
            shown.display()
        ),
        Ok(meta) if !meta.is_file() => bail!(
            "the install manifest `{}` is not a regular file",
            shown.display()
        ),
        Ok(_) => {
            let (mut file, _) = open_regular(&disk)?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .with_context(|| format!("failed to read `{}`", shown.display()))?;
            bytes
        }
    };
    let damaged = || {
        format!(
            "the install manifest `{}` is damaged; fix or remove it",
            shown.display()
        )
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).with_context(damaged)?;
    let manifest = match value.get("version") {
        None => migrate(
            root,
            serde_json::from_value(value).with_context(damaged)?,
            &shown,
        )?,
        Some(version) if matches!(version.as_u64(), Some(2) | Some(MANIFEST_VERSION)) => {
            serde_json::from_value(value).with_context(damaged)?
        }
        Some(version) => bail!(
            "the install manifest `{}` was written by a newer ebpf-probe (version {version}); use that one",
            shown.display()
        ),
    };
    validate(root, &manifest, &shown)?;
    Ok(Some(manifest))
}

/// A manifest of absolute, DESTDIR-prefixed paths (written before relative paths and checksums): kept only when
/// every path is inside this install root, made relative to it.
fn migrate(root: &Root, legacy: LegacyManifest, shown: &Path) -> Result<Manifest> {
    let mut problems = Vec::new();
    let mut relative = |path: &Path| -> Option<PathBuf> {
        let rel = if !path.is_absolute() {
            Err("is not absolute")
        } else if path.components().any(|c| c == Component::ParentDir) {
            Err("contains `..`")
        } else {
            path.strip_prefix(&root.dir)
                .map_err(|_| "is outside the install root")
        };
        match rel {
            Ok(rel) if rel.as_os_str().is_empty() => Some(PathBuf::from(".")),
            Ok(rel) => Some(rel.to_path_buf()),
            Err(reason) => {
                problems.push(format!("`{}` {reason}", path.display()));
                None
            }
        }
    };
    let mut manifest = Manifest::new();
    for file in &legacy.files {
        let Some(rel) = relative(&file.path) else {
            continue;
        };
        if let Some(entry) = manifest.files.iter_mut().find(|e| e.path == rel) {
            if !entry.probes.contains(&file.probe) {
                entry.probes.push(file.probe.clone());
            }
            continue;
        }
        let kind = legacy_kind(&root.dir.join(&rel));
        manifest.files.push(Entry {
            path: rel,
            probes: vec![file.probe.clone()],
            kind,
            sha256: None,
            backup: None,
            existed: false,
        });
    }
    for dir in &legacy.dirs {
        if let Some(rel) = relative(dir) {
            manifest.dirs.push(rel);
        }
    }
    if !problems.is_empty() {
        bail!(
            "refusing to use the install manifest `{}` (written by an older ebpf-probe): it records paths outside \
             the install root `{}` (was the tree copied from another --destdir?); nothing was changed\n  {}",
            shown.display(),
            root.dir.display(),
            problems.join("\n  ")
        );
    }
    Ok(manifest)
}

/// What an older manifest's file was, by its name and mode.
fn legacy_kind(path: &Path) -> Kind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let executable = std::fs::symlink_metadata(path).is_ok_and(|m| m.mode() & 0o111 != 0);
    if name.ends_with(".meta") {
        Kind::Meta
    } else if name.ends_with(".bpf.o") {
        Kind::Object
    } else if name.ends_with(".so") || name.contains(".so.") {
        Kind::Library
    } else if executable {
        Kind::Executable
    } else {
        Kind::Config
    }
}

/// Every path the manifest records must be relative and plain and resolve beneath the root; backups and temp
/// files must sit beside the file they belong to.
fn validate(root: &Root, manifest: &Manifest, shown: &Path) -> Result<()> {
    let mut problems = Vec::new();
    let mut check = |rel: &Path, what: &str| {
        if let Err(reason) = check_recorded(rel) {
            problems.push(format!("{what} `{}` {reason}", rel.display()));
        } else if let Err(error) = root.resolve(rel) {
            problems.push(format!("{what} {error}"));
        }
    };
    for entry in &manifest.files {
        check(&entry.path, "file");
        if let Some(backup) = &entry.backup {
            check(backup, "backup");
        }
    }
    for dir in &manifest.dirs {
        if dir != Path::new(".") {
            check(dir, "directory");
        }
    }
    if let Some(pending) = &manifest.pending {
        for step in &pending.steps {
            check(&step.path, "file");
            check(&step.temp, "temp file");
            if let How::KeepOld { keep } = &step.how {
                check(keep, "backup");
            }
        }
        for dir in &pending.created_dirs {
            if dir != Path::new(".") {
                check(dir, "directory");
            }
        }
    }
    for entry in &manifest.files {
        if let Some(backup) = &entry.backup {
            if !is_sibling_of(backup, &entry.path) {
                problems.push(format!(
                    "backup `{}` is not a `{}{SIBLING_MARK}…` file beside it",
                    backup.display(),
                    entry.path.display()
                ));
            }
        }
    }
    for step in manifest.pending.iter().flat_map(|p| &p.steps) {
        if !is_temp_beside(&step.temp, &step.path) {
            problems.push(format!(
                "temp file `{}` is not an ebpf-probe temp file beside `{}`",
                step.temp.display(),
                step.path.display()
            ));
        }
        if let How::KeepOld { keep } = &step.how {
            if !is_sibling_of(keep, &step.path) {
                problems.push(format!(
                    "backup `{}` is not a `{}{SIBLING_MARK}…` file beside it",
                    keep.display(),
                    step.path.display()
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "refusing to act on the install manifest `{}`: it records paths that are not plain paths beneath the \
             install root `{}`; nothing was changed\n  {}",
            shown.display(),
            root.dir.display(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

pub(super) fn write_manifest(root: &Root, manifest: &Manifest) -> Result<()> {
    let disk = root
        .resolve(Path::new(MANIFEST))?
        .context("the manifest's directory is missing")?;
    paths::write_atomic(&disk, serde_json::to_string_pretty(manifest)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn legacy_files_get_a_kind_by_name_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("killprobe");
        std::fs::write(&program, "").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(legacy_kind(&program), Kind::Executable);
        assert_eq!(legacy_kind(&dir.path().join("x.meta")), Kind::Meta);
        assert_eq!(legacy_kind(&dir.path().join("x.bpf.o")), Kind::Object);
        assert_eq!(legacy_kind(&dir.path().join("a.so")), Kind::Library);
        assert_eq!(legacy_kind(&dir.path().join("p.conf")), Kind::Config);
    }
}
