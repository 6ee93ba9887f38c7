//! `uninstall`: removes what the manifest records, keeping changed files and putting back what install replaced.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::existing::{inspect, Existing};
use super::journal::recover;
use super::manifest::{load_manifest, write_manifest, Entry, MANIFEST};
use super::root::{lock, remove_created_dirs, Root};
use super::sibling::{free_sibling, SAVE_SUFFIX};
use super::InstallDirs;
use crate::paths;

/// Removes what `install` recorded for `probe_names` (every probe in the manifest when empty). A file changed
/// since install is kept as `<name>.ebpf-probe-save`, a file install had replaced is put back, a file another
/// probe still uses stays, and nothing outside the install root is touched.
pub fn uninstall(probe_names: &[String], dirs: &InstallDirs) -> Result<()> {
    let root_dir = dirs.root_dir()?;
    let nothing = || {
        anyhow!(
            "nothing to uninstall: no install manifest at `{}` (use the same --destdir as for install)",
            root_dir.join(MANIFEST).display()
        )
    };
    if !root_dir.is_dir() {
        return Err(nothing());
    }
    let root = Root::open(root_dir.clone())?;
    let _lock = lock(&root)?;
    let (manifest, recovered) = recover(&root, load_manifest(&root)?)?;
    let Some(mut manifest) = manifest else {
        if recovered {
            return Ok(());
        }
        return Err(nothing());
    };
    let manifest_shown = root.shown(Path::new(MANIFEST));
    for name in probe_names {
        if !manifest.files.iter().any(|f| f.probes.contains(name)) {
            bail!(
                "probe `{name}` is not recorded in `{}`",
                manifest_shown.display()
            );
        }
    }
    let mut kept = Vec::new();
    let mut result = Ok(());
    let mut touched_dirs = BTreeSet::new();
    for mut entry in std::mem::take(&mut manifest.files) {
        let selected =
            probe_names.is_empty() || entry.probes.iter().any(|p| probe_names.contains(p));
        if !selected || result.is_err() {
            kept.push(entry);
            continue;
        }
        let remaining: Vec<String> = if probe_names.is_empty() {
            Vec::new()
        } else {
            entry
                .probes
                .iter()
                .filter(|p| !probe_names.contains(p))
                .cloned()
                .collect()
        };
        if !remaining.is_empty() {
            println!(
                "  kept {} (probe {} still uses it)",
                root.shown(&entry.path).display(),
                remaining.join(", ")
            );
            entry.probes = remaining;
            kept.push(entry);
            continue;
        }
        touched_dirs.insert(entry.path.parent().unwrap_or(Path::new("")).to_path_buf());
        if let Err(error) = remove_entry(&root, &entry) {
            kept.push(entry);
            result = Err(error);
        }
    }
    manifest.files = kept;
    if manifest.files.is_empty() {
        if let Some(disk) = root.resolve(Path::new(MANIFEST))? {
            paths::remove_file_if_exists(&disk)?;
        }
        remove_created_dirs(&root, &std::mem::take(&mut manifest.dirs));
    } else {
        write_manifest(&root, &manifest)?;
    }
    for dir in touched_dirs {
        if let Ok(Some(disk)) = root.dir_on_disk(&dir) {
            paths::remove_abandoned_temp_files(&disk);
        }
    }
    result
}

/// Removes one recorded file, or keeps it when it is no longer what install wrote; puts back what it replaced.
fn remove_entry(root: &Root, entry: &Entry) -> Result<()> {
    let shown = root.shown(&entry.path);
    let Some(disk) = root.resolve(&entry.path)? else {
        println!("  removed {}", shown.display());
        return Ok(());
    };
    if entry.existed {
        println!("  kept {} (it was there before install)", shown.display());
        return Ok(());
    }
    let backup = match &entry.backup {
        Some(rel) => root
            .resolve(rel)?
            .filter(|disk| std::fs::symlink_metadata(disk).is_ok())
            .map(|disk| (rel, disk)),
        None => None,
    };
    let restore = |backup: Option<(&PathBuf, PathBuf)>| -> Result<()> {
        if let Some((rel, backup_disk)) = backup {
            std::fs::rename(&backup_disk, &disk).with_context(|| {
                format!(
                    "failed to put `{}` back as `{}`",
                    root.shown(rel).display(),
                    shown.display()
                )
            })?;
            println!(
                "  restored {} (the file install had replaced, from {})",
                shown.display(),
                root.shown(rel).display()
            );
        }
        Ok(())
    };
    let existing = inspect(&disk)?;
    let unchanged = match (&existing, &entry.sha256) {
        (Existing::Regular { sha256, .. }, Some(recorded)) => sha256 == recorded,
        (Existing::Regular { .. }, None) => !entry.kind.is_editable(),
        _ => false,
    };
    match existing {
        Existing::Missing => {
            println!("  removed {}", shown.display());
            restore(backup)
        }
        _ if unchanged => {
            if backup.is_some() {
                restore(backup)
            } else {
                paths::remove_file_if_exists(&disk)?;
                println!("  removed {}", shown.display());
                Ok(())
            }
        }
        _ if entry.backup.is_some() && backup.is_none() => {
            // The backup is gone: most likely an interrupted uninstall already put it back here.
            println!(
                "  kept {} (not the file install wrote, and its backup is gone)",
                shown.display()
            );
            Ok(())
        }
        _ => {
            let mut taken = BTreeSet::new();
            let save = free_sibling(root, &entry.path, SAVE_SUFFIX, &mut taken)?;
            let save_disk = root
                .resolve(&save)?
                .context("the directory of a recorded file is missing")?;
            paths::rename_noreplace(&disk, &save_disk)?;
            let why = if entry.sha256.is_some() {
                "changed since install"
            } else {
                "no checksum was recorded, so it may have been edited"
            };
            println!(
                "  kept {} as {} ({why})",
                shown.display(),
                root.shown(&save).display()
            );
            restore(backup)
        }
    }
}
