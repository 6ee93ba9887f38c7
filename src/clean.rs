//! `-c/--clean`: removes build outputs under `.output/` — all (with the `compile_commands.json` the build wrote, when
//! unedited), or those of the named probes. Never sources or headers.

use anyhow::Result;

use crate::core::workspace::Workspace;
use crate::core::{fresh, selection};
use crate::paths;

pub fn clean(workspace: &Workspace, probe_names: &[String]) -> Result<()> {
    // Never pull outputs from under a build that is writing them.
    let _lock = if workspace.output_dir().is_dir() {
        Some(crate::core::lock::lock_output_dir(&workspace.lock_dir())?)
    } else {
        None
    };
    if probe_names.is_empty() {
        // The build's compile_commands.json goes with the record that says it is the build's.
        if crate::core::compile_db::remove_if_ours(&workspace.root, &workspace.output_dir())? {
            eprintln!(
                "     Removed {}",
                workspace.root.join(crate::core::compile_db::FILE).display()
            );
        }
        paths::remove_dir_all_if_exists(&workspace.output_dir())?;
        eprintln!("     Removed {}", workspace.output_dir().display());
        return Ok(());
    }
    for probe in selection::select_probes(workspace, workspace.probes()?, probe_names, &[])? {
        paths::remove_dir_all_if_exists(&workspace.probe_output_dir(&probe.name))?;
        let binary = workspace.bin_dir().join(probe.binary_name());
        fresh::forget(&binary)?;
        paths::remove_file_if_exists(&binary)?;
        eprintln!("     Removed outputs of {}", probe.name);
    }
    Ok(())
}
