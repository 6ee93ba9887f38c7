//! `check-meta [PROBE…]`: validates probes' `.meta` files by gala-gopher's loading rules before anything is
//! built or installed; table names are checked for uniqueness across the whole workspace.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::meta::{self, MetaFile, Severity};
use crate::paths;
use crate::workspace::Workspace;

/// Checks the named probes' meta (all probes' when none are named); prints every diagnostic to stderr.
pub fn check_meta(workspace: &Workspace, probe_names: &[String]) -> Result<Vec<MetaFile>> {
    let selected = workspace.select_probes(probe_names, &[])?;
    // Bytes: libconfig, and so gala-gopher, accepts strings and comments that are not UTF-8.
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut selected_paths = Vec::new();
    // Every probe takes part, because a table name must be unique in the meta directory it is installed into.
    for probe in workspace.probes()? {
        let metas = paths::files_with_suffix(&probe.dir, ".meta")?;
        let is_selected = selected.iter().any(|p| p.name == probe.name);
        if metas.is_empty() && is_selected {
            eprintln!(
                "warning: probe `{}` has no .meta file; gala-gopher drops lines of tables it has no meta for",
                probe.name
            );
        }
        for path in metas {
            let shown = path
                .strip_prefix(&workspace.root)
                .map(PathBuf::from)
                .unwrap_or(path.clone());
            if is_selected {
                selected_paths.push(shown.clone());
            }
            files.push((shown, paths::read(&path)?));
        }
    }
    let (parsed, diagnostics) = meta::check_files(&files);
    let relevant: Vec<_> = diagnostics
        .iter()
        .filter(|d| selected_paths.contains(&d.path))
        .collect();
    for diagnostic in &relevant {
        eprintln!("{diagnostic}");
    }
    let errors = relevant
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors > 0 {
        bail!(
            "{errors} error{} in .meta files (listed above); gala-gopher would refuse to load them",
            if errors == 1 { "" } else { "s" }
        );
    }
    Ok(parsed
        .into_iter()
        .filter(|m| selected_paths.contains(&m.path))
        .collect())
}
