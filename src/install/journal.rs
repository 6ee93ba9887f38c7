//! The journal of an install's renames: doing them, rolling them back, and recovering an interrupted install.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::existing::sha256_at;
use super::manifest::{write_manifest, Entry, Manifest, MANIFEST};
use super::root::{remove_created_dirs, Root};
use crate::paths;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Pending {
    /// The process that wrote the journal (for the message).
    pub(super) pid: u32,
    /// Whether there was a manifest before: rolling back rewrites it, or removes the journal's.
    pub(super) manifest_existed: bool,
    /// Outermost first.
    pub(super) created_dirs: Vec<PathBuf>,
    pub(super) steps: Vec<Step>,
}

/// One rename of a staged temp file into place.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Step {
    pub(super) path: PathBuf,
    /// The staged file, beside `path`.
    pub(super) temp: PathBuf,
    pub(super) sha256: String,
    pub(super) how: How,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum How {
    /// Nothing is at `path`.
    Create,
    /// `path` is a file install wrote, unchanged: swapped with the temp (which then holds the old bytes).
    Replace { previous_sha256: String },
    /// `path` is kept: hard-linked as `keep`, then the temp renamed over `path`.
    KeepOld { keep: PathBuf },
}

/// `error`, after rolling back the journal's renames (or saying why that failed too).
pub(super) fn rolled_back(
    root: &Root,
    journal: &mut Manifest,
    error: anyhow::Error,
) -> anyhow::Error {
    match roll_back(root, journal) {
        Ok(()) => error.context("the install was rolled back: nothing was installed"),
        Err(undo) => error.context(format!(
            "rolling the install back failed too ({undo:#}); the journal in `{}` lets the next install or \
             uninstall finish it",
            root.shown(Path::new(MANIFEST)).display()
        )),
    }
}

pub(super) fn execute(root: &Root, step: &Step) -> Result<()> {
    let missing = || anyhow!("the directory of `{}` is gone", step.path.display());
    let path = root.resolve(&step.path)?.ok_or_else(missing)?;
    let temp = root.resolve(&step.temp)?.ok_or_else(missing)?;
    match &step.how {
        How::Create => paths::rename_noreplace(&temp, &path),
        How::Replace { .. } => paths::rename_exchange(&temp, &path).map(|_| ()),
        How::KeepOld { keep } => {
            let keep = root.resolve(keep)?.ok_or_else(missing)?;
            std::fs::hard_link(&path, &keep).with_context(|| {
                format!(
                    "failed to keep `{}` as `{}`",
                    path.display(),
                    keep.display()
                )
            })?;
            std::fs::rename(&temp, &path).with_context(|| {
                format!(
                    "failed to rename `{}` to `{}`",
                    temp.display(),
                    path.display()
                )
            })
        }
    }
}

/// Undoes the journal's renames (last first) and restores the manifest as it was before them. Each step is
/// undone only as far as it happened, and a file is removed only when it holds the bytes the step wrote, so
/// undoing twice, or a journal cut short by a kill, is safe.
fn roll_back(root: &Root, manifest: &mut Manifest) -> Result<()> {
    let Some(pending) = manifest.pending.clone() else {
        return Ok(());
    };
    let mut failures = Vec::new();
    for step in pending.steps.iter().rev() {
        if let Err(error) = undo(root, step, &mut manifest.files) {
            failures.push(format!("{error:#}"));
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    manifest.pending = None;
    if pending.manifest_existed {
        write_manifest(root, manifest)?;
    } else if let Some(disk) = root.resolve(Path::new(MANIFEST))? {
        paths::remove_file_if_exists(&disk)?;
    }
    remove_created_dirs(root, &pending.created_dirs);
    for step in &pending.steps {
        if let Ok(Some(dir)) = root.dir_on_disk(step.path.parent().unwrap_or(Path::new(""))) {
            paths::remove_abandoned_temp_files(&dir);
        }
    }
    Ok(())
}

fn undo(root: &Root, step: &Step, files: &mut [Entry]) -> Result<()> {
    let (Some(path), Some(temp)) = (root.resolve(&step.path)?, root.resolve(&step.temp)?) else {
        // Its directory is gone, and with it anything the step wrote.
        return Ok(());
    };
    let temp_exists = std::fs::symlink_metadata(&temp).is_ok();
    let now = sha256_at(&path)?;
    let wrote_it = now.as_deref() == Some(step.sha256.as_str());
    match &step.how {
        How::Create => {
            if !temp_exists && wrote_it {
                paths::remove_file_if_exists(&path)?;
            }
        }
        How::Replace { previous_sha256 } => {
            if temp_exists && wrote_it && *previous_sha256 != step.sha256 {
                // Swapped: the temp holds the previous bytes.
                std::fs::rename(&temp, &path).with_context(|| {
                    format!(
                        "failed to restore `{}` from `{}`",
                        path.display(),
                        temp.display()
                    )
                })?;
            } else if !temp_exists && wrote_it {
                // Renamed where exchanging is unsupported: the previous bytes are gone, the new ones are ours.
                for entry in files.iter_mut().filter(|e| e.path == step.path) {
                    entry.sha256 = Some(step.sha256.clone());
                }
            }
        }
        How::KeepOld { keep } => {
            if let Some(keep) = root.resolve(keep)? {
                if let Ok(kept) = std::fs::symlink_metadata(&keep) {
                    let current = std::fs::symlink_metadata(&path).ok();
                    if current.is_some_and(|c| c.dev() == kept.dev() && c.ino() == kept.ino()) {
                        // Linked, not yet replaced.
                        paths::remove_file_if_exists(&keep)?;
                    } else {
                        std::fs::rename(&keep, &path).with_context(|| {
                            format!(
                                "failed to restore `{}` from `{}`",
                                path.display(),
                                keep.display()
                            )
                        })?;
                    }
                }
            }
        }
    }
    if std::fs::symlink_metadata(&temp).is_ok() {
        paths::remove_file_if_exists(&temp)?;
    }
    Ok(())
}

/// Rolls back an install that never finished (its journal is in the manifest). Returns the manifest as it was
/// before that install (`None` when there was none) and whether there was anything to roll back.
pub(super) fn recover(root: &Root, manifest: Option<Manifest>) -> Result<(Option<Manifest>, bool)> {
    let Some(mut manifest) = manifest else {
        return Ok((None, false));
    };
    let Some(pending) = &manifest.pending else {
        return Ok((Some(manifest), false));
    };
    let existed = pending.manifest_existed;
    eprintln!(
        "note: an install into `{}` (process {}) was interrupted; rolling it back",
        root.dir.display(),
        pending.pid
    );
    roll_back(root, &mut manifest).with_context(|| {
        format!(
            "failed to roll back the interrupted install recorded in `{}`; fix the cause and run install or \
             uninstall again",
            root.shown(Path::new(MANIFEST)).display()
        )
    })?;
    eprintln!("note: rolled back; the files are as they were before that install");
    Ok((existed.then_some(manifest), true))
}
