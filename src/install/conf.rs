//! A probe's `conf/` files, and the rule that a symlink there is followed only when it stays inside the probe.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The files of a probe's `conf/`: their names under `conf/` and the file to read. A symlink is followed only
/// when it resolves inside the probe directory; one that leaves it (`x.conf -> /etc/shadow`) is refused, as is
/// anything that is not a regular file or directory.
pub(super) fn conf_files(probe_dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let conf = probe_dir.join("conf");
    if std::fs::symlink_metadata(&conf).is_err() {
        return Ok(Vec::new());
    }
    let probe_canonical = std::fs::canonicalize(probe_dir)
        .with_context(|| format!("failed to resolve `{}`", probe_dir.display()))?;
    let conf_disk = resolve_inside(&conf, &probe_canonical, probe_dir)?;
    if !conf_disk.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let mut visited = BTreeSet::new();
    walk_conf(
        &conf_disk,
        &conf,
        Path::new(""),
        &probe_canonical,
        probe_dir,
        &mut visited,
        &mut files,
    )?;
    Ok(files)
}

/// `path` with its links resolved, which must stay inside the probe directory.
fn resolve_inside(path: &Path, probe_canonical: &Path, probe_dir: &Path) -> Result<PathBuf> {
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    if !meta.file_type().is_symlink() {
        return std::fs::canonicalize(path)
            .with_context(|| format!("failed to resolve `{}`", path.display()));
    }
    let target = std::fs::read_link(path)
        .with_context(|| format!("failed to read the symlink `{}`", path.display()))?;
    let resolved = std::fs::canonicalize(path).with_context(|| {
        format!(
            "`{}` is a symlink to `{}`, which does not exist; refusing to install it",
            path.display(),
            target.display()
        )
    })?;
    if !resolved.starts_with(probe_canonical) {
        bail!(
            "`{}` is a symlink to `{}`, outside the probe directory `{}`; refusing to install it \
             (copy the file into the probe instead)",
            path.display(),
            target.display(),
            probe_dir.display()
        );
    }
    Ok(resolved)
}

fn walk_conf(
    dir_disk: &Path,
    dir_shown: &Path,
    rel: &Path,
    probe_canonical: &Path,
    probe_dir: &Path,
    visited: &mut BTreeSet<PathBuf>,
    files: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<()> {
    // A link back up (`conf/again -> .`) would never end.
    if !visited.insert(dir_disk.to_path_buf()) {
        return Ok(());
    }
    let mut names: Vec<OsString> = std::fs::read_dir(dir_disk)
        .with_context(|| format!("failed to list `{}`", dir_shown.display()))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("failed to list `{}`", dir_shown.display()))?;
    names.sort();
    for name in names {
        let shown = dir_shown.join(&name);
        let disk = dir_disk.join(&name);
        let rel = rel.join(&name);
        let file_type = std::fs::symlink_metadata(&disk)
            .with_context(|| format!("failed to read `{}`", shown.display()))?
            .file_type();
        let resolved = if file_type.is_symlink() {
            resolve_inside(&shown, probe_canonical, probe_dir)?
        } else {
            disk
        };
        let meta = std::fs::metadata(&resolved)
            .with_context(|| format!("failed to read `{}`", shown.display()))?;
        if meta.is_dir() {
            walk_conf(
                &resolved,
                &shown,
                &rel,
                probe_canonical,
                probe_dir,
                visited,
                files,
            )?;
        } else if meta.is_file() {
            files.push((rel, resolved));
        } else {
            bail!(
                "`{}` is not a regular file (a FIFO, socket or device); refusing to install it",
                shown.display()
            );
        }
    }
    Ok(())
}
