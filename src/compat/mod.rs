//! `compat`: whether each program of the selected probes would attach and relocate on each given kernel —
//! the running one and any number of BTF files — without loading anything. Objects are read once (`object.rs`),
//! each kernel's BTF is read once and indexed for the names all objects ask for (`kernel.rs`), and every program
//! is resolved against it (`resolve.rs`), kernels in parallel. The result is a matrix program × kernel
//! (`render.rs`), or JSON; the exit status is non-zero when a program not in `compat_optional` fails anywhere.

mod render;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use crate::paths;
use crate::targets::kernel::{self, KernelSpec};
use crate::targets::needs::{self, Attach, ObjectNeeds, Program};
use crate::targets::resolve::{Cell, Status};
use crate::targets::{self, Need};

pub struct CompatOptions {
    /// BTF files and directories of them, one column each.
    pub kernels: Vec<PathBuf>,
    /// Whether the running kernel is a column too.
    pub running: bool,
    pub json: bool,
    pub jobs: usize,
}

/// One row of the matrix: a program of a built object.
pub struct Row {
    pub probe: String,
    /// The object, relative to the workspace root.
    pub object: PathBuf,
    pub need: Need,
    /// Why a failure here is not an error (`compat_optional`), when it is not.
    pub optional: Option<String>,
    /// For uprobe targets: whether the binary and symbol exist on this machine (not a kernel matter).
    pub on_this_machine: Option<Cell>,
}

pub struct Matrix {
    pub kernels: Vec<KernelSpec>,
    pub rows: Vec<Row>,
    /// `cells[row][kernel]`.
    pub cells: Vec<Vec<Cell>>,
}

impl Matrix {
    pub fn failures(&self) -> usize {
        self.rows
            .iter()
            .zip(&self.cells)
            .filter(|(row, cells)| {
                row.optional.is_none()
                    && (cells.iter().any(|c| c.status == Status::Fail)
                        || row
                            .on_this_machine
                            .as_ref()
                            .is_some_and(|c| c.status == Status::Fail))
            })
            .count()
    }
}

pub fn compat(workspace: &Workspace, selection: &Selection, options: &CompatOptions) -> Result<()> {
    let matrix = matrix(workspace, selection, options)?;
    if options.json {
        println!("{}", render::json(&matrix));
    } else {
        print!("{}", render::text(&matrix));
    }
    let failures = matrix.failures();
    if failures > 0 {
        bail!(
            "{failures} program{} cannot attach or relocate on every kernel (see above; a program that may fail \
             goes in `compat_optional` in its probe.toml, with why)",
            if failures == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

pub fn matrix(
    workspace: &Workspace,
    selection: &Selection,
    options: &CompatOptions,
) -> Result<Matrix> {
    let mut rows = Vec::new();
    for probe in &selection.probes {
        for path in workspace.built_bpf_objects(probe)? {
            let object_needs = needs::read(&path)?;
            let relative = path
                .strip_prefix(&workspace.root)
                .unwrap_or(&path)
                .to_path_buf();
            rows.extend(rows_of(
                &probe.name,
                &relative,
                object_needs,
                &probe.config.compat_optional,
            ));
        }
        for target in &probe.config.uprobes {
            let Some((binary, symbol)) = target.rsplit_once(':') else {
                bail!(
                    "`uprobes` in {} has `{target}`: write it as BINARY:SYMBOL",
                    probe.config_path().display()
                );
            };
            let attach = Attach::Uprobe {
                binary: binary.to_string(),
                symbol: symbol.to_string(),
            };
            rows.push(Row {
                probe: probe.name.clone(),
                object: paths::relative(&probe.config_path(), &workspace.root),
                need: Need {
                    program: Program {
                        name: "(probe.toml uprobes)".into(),
                        section: format!("uprobe/{target}"),
                        attach,
                        core: Vec::new(),
                        kernel_symbols: Vec::new(),
                    },
                    symbols: Vec::new(),
                },
                optional: None,
                on_this_machine: None,
            });
        }
    }
    for row in &mut rows {
        if let Attach::Uprobe { binary, symbol } = &row.need.program.attach {
            row.on_this_machine = Some(targets::uprobe_on_this_machine(binary, symbol));
        }
    }
    let kernels = kernel::kernels(&options.kernels, options.running)?;
    let needs: Vec<&Need> = rows.iter().map(|r| &r.need).collect();
    let cells = targets::resolve_all(&needs, &kernels, options.jobs)?;
    Ok(Matrix {
        kernels,
        rows,
        cells,
    })
}

fn rows_of(
    probe: &str,
    object: &Path,
    needs: ObjectNeeds,
    optional: &std::collections::BTreeMap<String, String>,
) -> Vec<Row> {
    needs
        .programs
        .into_iter()
        .map(|program| Row {
            probe: probe.to_string(),
            object: object.to_path_buf(),
            optional: optional.get(&program.name).cloned(),
            on_this_machine: None,
            need: Need {
                symbols: program
                    .kernel_symbols
                    .iter()
                    .map(|i| needs.kernel_symbols[*i].clone())
                    .collect(),
                program,
            },
        })
        .collect()
}
