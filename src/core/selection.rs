//! The probes one command works on: every probe read once, the selection by name (minus `EXTEND_PROBES`), and
//! their `.meta` files parsed and checked once by gala-gopher's loading rules — table names are unique across the
//! whole workspace, because every `.meta` is installed into one directory.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::core::probe::Probe;
use crate::core::workspace::Workspace;
use crate::meta::{self, MetaFile, Severity};
use crate::paths;

/// The selected probes, with the parsed `.meta` of each (in the same order).
pub struct Selection {
    pub probes: Vec<Probe>,
    pub metas: Vec<Vec<MetaFile>>,
}

impl Selection {
    /// The parsed `.meta` files of the probe named `name`.
    pub fn metas_of(&self, name: &str) -> &[MetaFile] {
        self.probes
            .iter()
            .position(|p| p.name == name)
            .map_or(&[], |i| &self.metas[i])
    }
}

/// The probes named (all when none are), minus `exclude`. A named probe that does not exist is an error; an
/// excluded one is only a warning, as the old scripts ignored it.
pub fn select_probes(
    workspace: &Workspace,
    all: Vec<Probe>,
    names: &[String],
    exclude: &[String],
) -> Result<Vec<Probe>> {
    for name in names {
        if !all.iter().any(|p| &p.name == name) {
            let known: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "no probe named `{name}` in `{}` (probes here: {})",
                workspace.probes_dir().display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    for name in exclude {
        if !all.iter().any(|p| &p.name == name) {
            eprintln!("warning: EXTEND_PROBES names `{name}`, which is not a probe here; ignored");
        }
    }
    let selected: Vec<Probe> = all
        .into_iter()
        .filter(|p| names.is_empty() || names.contains(&p.name))
        .filter(|p| !exclude.contains(&p.name))
        .collect();
    if let Some(probe) = selected.iter().find(|p| p.problem.is_some()) {
        bail!(
            "probe `{}`: {}",
            probe.name,
            probe.problem.as_deref().unwrap_or_default()
        );
    }
    Ok(selected)
}

/// Reads every probe once, selects, and checks the selected probes' `.meta` (against all probes' tables); prints
/// every diagnostic of the selected probes and fails on errors. With `[layout] meta = false`, nothing is checked.
pub fn select(workspace: &Workspace, names: &[String], exclude: &[String]) -> Result<Selection> {
    let all = workspace.probes()?;
    if !workspace.layout.check_meta {
        let probes = select_probes(workspace, all, names, exclude)?;
        let metas = probes.iter().map(|_| Vec::new()).collect();
        return Ok(Selection { probes, metas });
    }
    // Bytes: libconfig, and so gala-gopher, accepts strings and comments that are not UTF-8.
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut owners: Vec<String> = Vec::new();
    for probe in &all {
        for path in probe.meta_files()? {
            files.push((workspace_relative(workspace, &path), paths::read(&path)?));
            owners.push(probe.name.clone());
        }
    }
    let probes = select_probes(workspace, all, names, exclude)?;
    let is_selected = |owner: &str| probes.iter().any(|p| p.name == owner);
    for probe in &probes {
        if !owners.contains(&probe.name) {
            eprintln!(
                "warning: probe `{}` has no .meta file; gala-gopher drops lines of tables it has no meta for \
                 (`[layout] meta = false` in ebpf-probe.toml turns .meta checks off)",
                probe.name
            );
        }
    }
    let (parsed, diagnostics) = meta::check_files(&files);
    let selected_paths: Vec<&PathBuf> = files
        .iter()
        .zip(&owners)
        .filter(|(_, owner)| is_selected(owner))
        .map(|((path, _), _)| path)
        .collect();
    let relevant: Vec<_> = diagnostics
        .iter()
        .filter(|d| selected_paths.contains(&&d.path))
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
    let mut metas: Vec<Vec<MetaFile>> = probes.iter().map(|_| Vec::new()).collect();
    for meta in parsed {
        let Some(index) = files.iter().position(|(path, _)| *path == meta.path) else {
            continue;
        };
        if let Some(slot) = probes.iter().position(|p| p.name == owners[index]) {
            metas[slot].push(meta);
        }
    }
    Ok(Selection { probes, metas })
}

fn workspace_relative(workspace: &Workspace, path: &std::path::Path) -> PathBuf {
    path.strip_prefix(&workspace.root)
        .map(PathBuf::from)
        .unwrap_or_else(|_| path.to_path_buf())
}
