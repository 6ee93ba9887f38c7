//! `compat`: whether each program of the selected probes would attach and relocate on each given kernel —
//! the running one and any number of BTF files — without loading anything. Objects are read once (`object.rs`),
//! each kernel's BTF is read once and indexed for the names all objects ask for (`kernel.rs`), and every program
//! is resolved against it (`resolve.rs`), kernels in parallel. The result is a matrix program × kernel
//! (`render.rs`), or JSON; the exit status is non-zero when a program not in `compat_optional` fails anywhere.

mod kernel;
pub mod needs;
mod render;
pub mod resolve;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};

use crate::btf::BtfFile;
use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use kernel::{KernelIndex, KernelSource, KernelSpec, Running, Wanted};
use needs::{Attach, KernelSymbolNeed, ObjectNeeds, Program};
use resolve::{Cell, Status};

pub use kernel::RUNNING_BTF;

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
    pub program: Program,
    /// Why a failure here is not an error (`compat_optional`), when it is not.
    pub optional: Option<String>,
    /// For uprobe targets: whether the binary and symbol exist on this machine (not a kernel matter).
    pub on_this_machine: Option<Cell>,
    symbols: Vec<KernelSymbolNeed>,
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

pub fn matrix(workspace: &Workspace, selection: &Selection, options: &CompatOptions) -> Result<Matrix> {
    let mut rows = Vec::new();
    for probe in &selection.probes {
        for path in workspace.built_bpf_objects(probe)? {
            let object_needs = needs::read(&path)?;
            let relative = path.strip_prefix(&workspace.root).unwrap_or(&path).to_path_buf();
            rows.extend(rows_of(&probe.name, &relative, object_needs, &probe.config.compat_optional));
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
                object: probe.config_path().strip_prefix(&workspace.root).unwrap_or(&probe.config_path()).to_path_buf(),
                program: Program {
                    name: "(probe.toml uprobes)".into(),
                    section: format!("uprobe/{target}"),
                    attach,
                    core: Vec::new(),
                    kernel_symbols: Vec::new(),
                },
                optional: None,
                on_this_machine: None,
                symbols: Vec::new(),
            });
        }
    }
    for row in &mut rows {
        if let Attach::Uprobe { binary, symbol } = &row.program.attach {
            row.on_this_machine = Some(uprobe_on_this_machine(binary, symbol));
        }
    }
    let kernels = kernel::kernels(&options.kernels, options.running)?;
    let cells = resolve_all(&rows, &kernels, options.jobs)?;
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
            symbols: program
                .kernel_symbols
                .iter()
                .map(|i| needs.kernel_symbols[*i].clone())
                .collect(),
            program,
        })
        .collect()
}

fn wanted(rows: &[Row]) -> Wanted {
    let mut wanted = Wanted::default();
    for row in rows {
        match &row.program.attach {
            Attach::Kprobe { function } | Attach::BtfFunction { function } => {
                wanted.functions.insert(function.clone());
            }
            Attach::Syscall { name } => {
                wanted.functions.extend(resolve::syscall_functions(name));
            }
            Attach::Tracepoint { category, name } => {
                wanted.trace_types.insert(format!("btf_trace_{name}"));
                wanted.trace_types.insert(format!("trace_event_raw_{name}"));
                if category == "syscalls" {
                    if let Some(call) = name
                        .strip_prefix("sys_enter_")
                        .or_else(|| name.strip_prefix("sys_exit_"))
                    {
                        wanted.functions.extend(resolve::syscall_functions(call));
                    }
                }
            }
            Attach::RawTracepoint { name } | Attach::TpBtf { name } => {
                wanted.trace_types.insert(format!("btf_trace_{name}"));
                wanted.trace_types.insert(format!("trace_event_raw_{name}"));
            }
            Attach::Uprobe { .. } | Attach::UprobeByLoader | Attach::Nothing => {}
        }
        for need in &row.program.core {
            wanted.types.insert(need.root_name.clone());
        }
        for symbol in &row.symbols {
            if symbol.is_function {
                wanted.functions.insert(symbol.name.clone());
            } else {
                wanted.variables.insert(symbol.name.clone());
            }
        }
    }
    wanted
}

/// Every row against every kernel: each kernel read and indexed once, `jobs` kernels at a time.
fn resolve_all(rows: &[Row], kernels: &[KernelSpec], jobs: usize) -> Result<Vec<Vec<Cell>>> {
    let wanted = wanted(rows);
    let needs_kallsyms = rows
        .iter()
        .any(|r| matches!(r.program.attach, Attach::Kprobe { .. } | Attach::Syscall { .. }));
    let running = kernels
        .iter()
        .any(|k| matches!(k.source, KernelSource::Running))
        .then(|| Running::read(needs_kallsyms));
    let next = AtomicUsize::new(0);
    let mut columns: Vec<Option<Result<Vec<Cell>>>> = (0..kernels.len()).map(|_| None).collect();
    let results = std::sync::Mutex::new(&mut columns);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, kernels.len().max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(kernel) = kernels.get(index) else { break };
                let column = column(rows, kernel, &wanted, running.as_ref());
                results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(column);
            });
        }
    });
    let mut cells: Vec<Vec<Cell>> = rows.iter().map(|_| Vec::with_capacity(kernels.len())).collect();
    for (kernel, column) in kernels.iter().zip(columns) {
        let column = column
            .context("a kernel was not checked")?
            .with_context(|| format!("cannot check against the kernel `{}`", kernel.label))?;
        for (row, cell) in cells.iter_mut().zip(column) {
            row.push(cell);
        }
    }
    Ok(cells)
}

fn column(
    rows: &[Row],
    kernel: &KernelSpec,
    wanted: &Wanted,
    running: Option<&Running>,
) -> Result<Vec<Cell>> {
    let (file, running) = match &kernel.source {
        KernelSource::Running => {
            let file = Path::new(RUNNING_BTF)
                .exists()
                .then(|| BtfFile::read(Path::new(RUNNING_BTF)))
                .transpose()?;
            (file, running)
        }
        KernelSource::File(path) => (Some(BtfFile::read(path)?), None),
    };
    let btf = file.as_ref().map(BtfFile::btf).transpose()?;
    let index = KernelIndex::new(btf, wanted, running);
    Ok(rows
        .iter()
        .map(|row| {
            let symbols: Vec<&KernelSymbolNeed> = row.symbols.iter().collect();
            resolve::resolve(&row.program, &symbols, &index)
        })
        .collect())
}

/// A uprobe's binary and symbol, on this machine: the binary by path, on PATH or in the library dirs, and the
/// symbol in its symbol table or dynamic symbols.
fn uprobe_on_this_machine(binary: &str, symbol: &str) -> Cell {
    let mut cell = Cell {
        status: Status::Ok,
        reasons: Vec::new(),
    };
    let Some(path) = find_binary(binary) else {
        cell.status = Status::Fail;
        cell.reasons.push((
            Status::Fail,
            format!("there is no binary `{binary}` on this machine (a path, or a name on PATH or in the library dirs)"),
        ));
        return cell;
    };
    match binary_symbols(&path) {
        Ok(symbols) if symbols.iter().any(|s| s == symbol) => {}
        Ok(symbols) => {
            cell.status = Status::Fail;
            cell.reasons.push((
                Status::Fail,
                format!(
                    "`{}` has no symbol `{symbol}`{}",
                    path.display(),
                    crate::nearest::nearest_text(symbol, symbols.iter().map(String::as_str))
                ),
            ));
        }
        Err(error) => {
            cell.status = Status::Fail;
            cell.reasons.push((Status::Fail, format!("{error:#}")));
        }
    }
    cell
}

fn find_binary(binary: &str) -> Option<PathBuf> {
    if binary.contains('/') {
        return Path::new(binary).is_file().then(|| PathBuf::from(binary));
    }
    crate::tool::find_program(binary).or_else(|| {
        let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
        ["/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib", multiarch.as_str()]
            .iter()
            .map(|dir| Path::new(dir).join(binary))
            .find(|p| p.is_file())
    })
}

fn binary_symbols(path: &Path) -> Result<Vec<String>> {
    use object::{Object, ObjectSymbol};
    let data = crate::paths::read(path)?;
    let elf = object::File::parse(&*data)
        .with_context(|| format!("`{}` is not an ELF binary", path.display()))?;
    Ok(elf
        .symbols()
        .chain(elf.dynamic_symbols())
        .filter(|s| s.is_definition())
        .filter_map(|s| s.name().ok().map(|n| n.split('@').next().unwrap_or(n).to_string()))
        .collect())
}
