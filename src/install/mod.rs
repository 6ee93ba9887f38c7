//! `install` / `uninstall`: copies built probes, their `.meta` and `conf/` files into the gala-gopher directories
//! (optionally under a DESTDIR) by rpm's rules for files an admin may own or edit, all or nothing, and records what
//! it wrote (paths relative to the install root, each file's sha256) so that `uninstall` undoes exactly that.
//!
//! All or nothing: every file is staged in a hidden temp file beside its destination; then the manifest is written
//! with a `pending` journal naming every rename about to happen; then the renames; then the manifest without the
//! journal. A run that dies in between leaves the journal, and the next `install` or `uninstall` rolls it back
//! before anything else. One install or uninstall per install root at a time (a lock on the root directory).

mod conf;
mod existing;
mod journal;
mod manifest;
mod plan;
mod probe_files;
mod root;
mod sibling;
mod stage;
mod uninstall;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::core::artifacts::BuiltProbe;
use crate::core::minimized_btf::files_to_ship;
use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use crate::paths;

use journal::{execute, recover, rolled_back, How, Pending};
use manifest::{load_manifest, write_manifest, Manifest, MANIFEST, MANIFEST_VERSION};
use plan::plan_files;
use probe_files::{files_to_install, unique, InstallTo};
use root::{lock, remove_created_dirs, Root};

pub use uninstall::uninstall;

pub struct InstallDirs {
    pub bin_dir: PathBuf,
    pub conf_dir: PathBuf,
    pub meta_dir: PathBuf,
    /// Where `.output/btf/<release>.btf` files go (gala-gopher's `/opt/gala-gopher/btf`).
    pub btf_dir: PathBuf,
    pub destdir: Option<PathBuf>,
}

/// Installs the selected probes (already built): executables, their standalone BPF objects and libraries in the
/// subdirectories their probe.toml names, `.meta` files and `conf/` files, and the minimized kernel BTF files
/// `btfgen` made for them (owned by every probe installed with them).
pub fn install(
    workspace: &Workspace,
    selection: &Selection,
    built: &[BuiltProbe],
    dirs: &InstallDirs,
) -> Result<()> {
    let nothing = || {
        format!(
            "nothing was installed (the directories are as they were); workspace `{}`",
            workspace.root.display()
        )
    };
    let root_dir = dirs.root_dir()?;
    let minimized_btf = files_to_ship(workspace, &selection.probes).with_context(nothing)?;
    let files_to_install = files_to_install(
        selection,
        built,
        &InstallTo {
            bin_dir: dirs.relative_dir(&dirs.bin_dir)?,
            conf_dir: dirs.relative_dir(&dirs.conf_dir)?,
            meta_dir: dirs.relative_dir(&dirs.meta_dir)?,
            btf_dir: dirs.relative_dir(&dirs.btf_dir)?,
        },
        &minimized_btf,
    )
    .and_then(|files| unique(files, &root_dir))
    .with_context(nothing)?;
    let run_probes: BTreeSet<String> = selection.probes.iter().map(|p| p.name.clone()).collect();

    let root_was_missing = std::fs::symlink_metadata(&root_dir).is_err();
    paths::create_dir_all(&root_dir).with_context(nothing)?;
    let root = Root::open(root_dir).with_context(nothing)?;
    let _lock = lock(&root)?;
    let (manifest, _) = recover(&root, load_manifest(&root)?)?;
    let manifest_existed = manifest.is_some();
    let manifest = manifest.unwrap_or_else(Manifest::new);

    let mut created: Vec<PathBuf> = Vec::new();
    if root_was_missing {
        created.push(PathBuf::from("."));
    }
    // Stage and decide everything first: a bad destination, an unwritable directory or a full disk fails here,
    // before anything is replaced, and the staged files and new directories are removed again.
    let planned = plan_files(
        &root,
        &manifest,
        &files_to_install,
        &run_probes,
        &mut created,
    );
    let (actions, files) = match planned {
        Ok(planned) => planned,
        Err(error) => {
            remove_created_dirs(&root, &created);
            return Err(error.context(nothing()));
        }
    };

    // The journal: every rename about to happen, recorded before the first one.
    let mut journal = Manifest {
        pending: Some(Pending {
            pid: std::process::id(),
            manifest_existed,
            created_dirs: created.clone(),
            steps: actions
                .iter()
                .filter_map(|a| a.step.as_ref().map(|(step, _)| step.clone()))
                .collect(),
        }),
        ..manifest
    };
    if let Err(error) = write_manifest(&root, &journal) {
        drop(actions);
        remove_created_dirs(&root, &created);
        return Err(error.context(nothing()));
    }

    // rename(2) replaces a running probe's executable without touching the file it is running from.
    let mut old_bytes = Vec::new();
    for action in actions {
        if let Some((step, temp)) = action.step {
            // From here on the journal says what becomes of the temp file.
            let _ = temp.keep();
            if let Err(error) = execute(&root, &step) {
                return Err(rolled_back(&root, &mut journal, error));
            }
            if matches!(step.how, How::Replace { .. }) {
                old_bytes.push(step.temp);
            }
        }
        println!("{}", action.message);
    }

    let mut dirs_now = journal.dirs.clone();
    for dir in created {
        if !dirs_now.contains(&dir) {
            dirs_now.push(dir);
        }
    }
    let committed = Manifest {
        version: MANIFEST_VERSION,
        files,
        dirs: dirs_now,
        pending: None,
    };
    if let Err(error) = write_manifest(&root, &committed) {
        return Err(rolled_back(&root, &mut journal, error));
    }
    // The previous bytes of files we replaced, swapped into the temp names.
    for temp in old_bytes {
        if let Ok(Some(temp)) = root.resolve(&temp) {
            let _ = std::fs::remove_file(temp);
        }
    }
    println!(
        "  recorded in {}",
        root.shown(Path::new(MANIFEST)).display()
    );
    Ok(())
}
