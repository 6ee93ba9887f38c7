//! rpm's rules per file: what becomes of each staged file (create, replace, `.ebpf-probe-new`, `-orig`, `-save`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::existing::{inspect, Existing};
use super::journal::{How, Step};
use super::manifest::{Entry, Kind, Manifest, MANIFEST};
use super::probe_files::FileToInstall;
use super::root::{make_dirs, Root};
use super::sibling::{free_sibling, sibling, NEW_SUFFIX, ORIG_SUFFIX, SAVE_SUFFIX};
use super::stage::{stage, Staged};
use crate::paths;

/// What install does with one file: the rename (with its staged temp) or nothing, and the line it prints.
pub(super) struct Action {
    pub(super) step: Option<(Step, tempfile::TempPath)>,
    pub(super) message: String,
}

/// Creates the directories, stages every file and decides, by the manifest and what is on disk, what becomes
/// of each: the actions in order and the manifest's files once they are done.
pub(super) fn plan_files(
    root: &Root,
    manifest: &Manifest,
    files_to_install: &[FileToInstall],
    run_probes: &BTreeSet<String>,
    created: &mut Vec<PathBuf>,
) -> Result<(Vec<Action>, Vec<Entry>)> {
    let mut wanted: Vec<&Path> = files_to_install
        .iter()
        .filter_map(|c| c.rel.parent())
        .collect();
    wanted.extend(Path::new(MANIFEST).parent());
    wanted.dedup();
    for dir in &wanted {
        make_dirs(root, dir, created)?;
    }
    for dir in &wanted {
        // What an interrupted install left here (after any journal of it was rolled back).
        if let Some(disk) = root.dir_on_disk(dir)? {
            paths::remove_abandoned_temp_files(&disk);
        }
    }
    let mut files = manifest.files.clone();
    let mut taken = BTreeSet::new();
    let mut actions = Vec::new();
    for copy in files_to_install {
        let staged = stage(root, copy)?;
        actions.push(plan_file(
            root, &mut files, copy, staged, run_probes, &mut taken,
        )?);
    }
    Ok((actions, files))
}

fn upsert(files: &mut Vec<Entry>, entry: Entry) {
    match files.iter_mut().find(|e| e.path == entry.path) {
        Some(old) => *old = entry,
        None => files.push(entry),
    }
}

/// Decides what becomes of one staged file (rpm's rules):
/// - nothing there: it is created;
/// - a file install wrote, unchanged since: replaced;
/// - a config file changed since install or not written by install: kept, and the new one is written beside it
///   as `<name>.ebpf-probe-new` (`%config(noreplace)`);
/// - any other file changed since install: replaced, the changed one kept as `<name>.ebpf-probe-save`;
/// - any other file install did not write: replaced, and kept as `<name>.ebpf-probe-orig`, which the manifest
///   names and `uninstall` puts back;
/// - the same bytes already there (and the same mode, unless it is a config file): left as they are, and left
///   by `uninstall` too.
fn plan_file(
    root: &Root,
    files: &mut Vec<Entry>,
    copy: &FileToInstall,
    staged: Staged,
    run_probes: &BTreeSet<String>,
    taken: &mut BTreeSet<PathBuf>,
) -> Result<Action> {
    let shown = root.shown(&copy.rel);
    let recorded = files.iter().find(|e| e.path == copy.rel).cloned();
    let mut probes = recorded
        .as_ref()
        .map(|e| e.probes.clone())
        .unwrap_or_default();
    for probe in &copy.probes {
        if !probes.contains(probe) {
            probes.push(probe.clone());
        }
    }
    if let Some(entry) = &recorded {
        let others: Vec<&str> = entry
            .probes
            .iter()
            .filter(|p| !run_probes.contains(*p) && !copy.probes.contains(p))
            .map(String::as_str)
            .collect();
        if !others.is_empty() && entry.sha256.as_deref() != Some(staged.sha256.as_str()) {
            bail!(
                "`{}` is installed by probe {} with other content; install them together or uninstall {} first",
                shown.display(),
                others.join(", "),
                others.join(", ")
            );
        }
    }
    let ours = recorded.as_ref().filter(|e| !e.existed);
    let fresh = Entry {
        path: copy.rel.clone(),
        probes: probes.clone(),
        kind: copy.kind,
        sha256: Some(staged.sha256.clone()),
        backup: ours.and_then(|e| e.backup.clone()),
        existed: false,
    };
    let installed = format!("  installed {} ({:o})", shown.display(), staged.mode);
    let step = |path: &Path, how: How, staged: Staged| -> Option<(Step, tempfile::TempPath)> {
        Some((
            Step {
                path: path.to_path_buf(),
                temp: staged.temp_rel,
                sha256: staged.sha256,
                how,
            },
            staged.temp,
        ))
    };
    let existing = inspect(&staged.disk)?;
    let modified = match (&existing, ours) {
        (Existing::Regular { sha256, .. }, Some(entry)) => match &entry.sha256 {
            Some(recorded) => recorded != sha256,
            // No checksum recorded (an older manifest): files an admin may edit count as edited.
            None => copy.kind.is_editable(),
        },
        (Existing::Other, _) => true,
        _ => false,
    };
    match existing {
        Existing::Directory => bail!(
            "`{}` is a directory, where ebpf-probe installs a file",
            shown.display()
        ),
        Existing::Missing => {
            upsert(files, fresh);
            taken.insert(copy.rel.clone());
            Ok(Action {
                step: step(&copy.rel, How::Create, staged),
                message: installed,
            })
        }
        Existing::Regular { sha256, .. } if ours.is_some() && !modified => {
            upsert(files, fresh);
            taken.insert(copy.rel.clone());
            Ok(Action {
                step: step(
                    &copy.rel,
                    How::Replace {
                        previous_sha256: sha256,
                    },
                    staged,
                ),
                message: installed,
            })
        }
        Existing::Regular { ref sha256, mode }
            if *sha256 == staged.sha256
                && (ours.is_some() || mode == staged.mode || copy.kind.is_config()) =>
        {
            let message = if ours.is_some() {
                format!(
                    "  kept {} (edited since install, to the new content)",
                    shown.display()
                )
            } else {
                format!(
                    "  kept {} (already there with the same content)",
                    shown.display()
                )
            };
            upsert(
                files,
                Entry {
                    existed: ours.is_none(),
                    ..fresh
                },
            );
            Ok(Action {
                step: None,
                message,
            })
        }
        _ if copy.kind.is_config() => {
            let reason = if ours.is_some() {
                "edited since install"
            } else {
                "not installed by ebpf-probe"
            };
            if let Some(entry) = ours {
                upsert(
                    files,
                    Entry {
                        probes: probes.clone(),
                        ..entry.clone()
                    },
                );
                if entry.sha256.as_deref() == Some(staged.sha256.as_str()) {
                    return Ok(Action {
                        step: None,
                        message: format!(
                            "  kept {} ({reason}; its new version is the one installed before)",
                            shown.display()
                        ),
                    });
                }
            }
            new_version(root, files, copy, staged, probes, reason, taken)
        }
        _ => {
            let (suffix, what) = if ours.is_some() {
                (SAVE_SUFFIX, "the edited file it replaced")
            } else {
                (ORIG_SUFFIX, "the file it replaced")
            };
            let keep = free_sibling(root, &copy.rel, suffix, taken)?;
            let backup = if ours.is_some() {
                fresh.backup.clone()
            } else {
                Some(keep.clone())
            };
            upsert(files, Entry { backup, ..fresh });
            taken.insert(copy.rel.clone());
            let message = format!(
                "{installed}; {what} is kept as {}",
                root.shown(&keep).display()
            );
            Ok(Action {
                step: step(&copy.rel, How::KeepOld { keep }, staged),
                message,
            })
        }
    }
}

/// A config file that stays as it is: the new one goes beside it as `<name>.ebpf-probe-new`.
fn new_version(
    root: &Root,
    files: &mut Vec<Entry>,
    copy: &FileToInstall,
    staged: Staged,
    probes: Vec<String>,
    reason: &str,
    taken: &mut BTreeSet<PathBuf>,
) -> Result<Action> {
    let new_rel = sibling(&copy.rel, NEW_SUFFIX);
    let new_disk = root
        .resolve(&new_rel)?
        .with_context(|| format!("the directory of `{}` is missing", copy.rel.display()))?;
    let recorded = files
        .iter()
        .find(|e| e.path == new_rel && !e.existed)
        .and_then(|e| e.sha256.clone());
    let (target, how) = match inspect(&new_disk)? {
        Existing::Missing => (new_rel, How::Create),
        // Ours from an earlier install, unchanged.
        Existing::Regular { sha256, .. } if recorded.as_deref() == Some(sha256.as_str()) => (
            new_rel,
            How::Replace {
                previous_sha256: sha256,
            },
        ),
        _ => (
            free_sibling(root, &copy.rel, NEW_SUFFIX, taken)?,
            How::Create,
        ),
    };
    taken.insert(target.clone());
    upsert(
        files,
        Entry {
            path: target.clone(),
            probes,
            kind: Kind::Config,
            sha256: Some(staged.sha256.clone()),
            backup: None,
            existed: false,
        },
    );
    Ok(Action {
        message: format!(
            "  kept {} ({reason}); the new version is {}",
            root.shown(&copy.rel).display(),
            root.shown(&target).display()
        ),
        step: Some((
            Step {
                path: target,
                temp: staged.temp_rel,
                sha256: staged.sha256,
                how,
            },
            staged.temp,
        )),
    })
}
