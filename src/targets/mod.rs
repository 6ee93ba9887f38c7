//! What a program needs from a kernel and whether a kernel has it, shared by `compat` (every program against
//! many kernels) and `new --attach` (one target against this machine, before anything is written).
//! `needs.rs` reads a built object's programs, attach targets, CO-RE relocations and kfuncs; `kernel.rs` reads
//! the kernels (the running one, BTF files, directories of them) and indexes each once for the names asked for;
//! `resolve.rs` answers for one program and one kernel. Uprobe targets are looked up here, on this machine.

pub mod kernel;
pub mod needs;
pub mod resolve;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};

use crate::btf::BtfFile;
use kernel::{KernelIndex, KernelSource, KernelSpec, Running, Wanted, RUNNING_BTF};
use needs::{Attach, KernelSymbolNeed, Program};
use resolve::{Cell, Status};

/// A program and the kfuncs/ksyms it refers to.
pub struct Need {
    pub program: Program,
    pub symbols: Vec<KernelSymbolNeed>,
}

/// Warnings for programs of `objects` that need an attach kind the running kernel lacks (a kprobe where
/// CONFIG_KPROBES is off), naming the tracepoint that sees the same calls when there is one. Reads the objects'
/// section names only when the kernel lacks a kind, so a build on a kernel with kprobes reads nothing.
pub fn kinds_missing_here(objects: &[(String, PathBuf)]) -> Vec<String> {
    if Path::new(kernel::KPROBE_EVENT_SOURCE).exists() {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for (probe, object) in objects {
        let Ok(object_needs) = needs::read(object) else {
            continue;
        };
        for program in object_needs.programs {
            if let Attach::Kprobe { function } = &program.attach {
                let alternative = resolve::tracepoint_alternative(function)
                    .map(|tp| format!(" (the tracepoint `{tp}` sees the same calls)"))
                    .unwrap_or_default();
                warnings.push(format!(
                    "probe `{probe}`: program `{}` is a kprobe on `{function}`, and this kernel has no kprobes \
                     (CONFIG_KPROBES off): it builds but cannot attach here{alternative}",
                    program.name
                ));
            }
        }
    }
    warnings
}

/// Why `attach` cannot work on this machine (a missing function, tracepoint, binary or symbol, with the nearest
/// real names; a kprobe on a kernel without kprobes), empty when it can. For `new --attach`.
pub fn problems_here(attach: Attach) -> Result<Vec<String>> {
    let uprobe = match &attach {
        Attach::Uprobe { binary, symbol } => Some(uprobe_on_this_machine(binary, symbol)),
        _ => None,
    };
    let need = Need {
        program: Program {
            name: String::new(),
            section: String::new(),
            attach,
            core: Vec::new(),
            kernel_symbols: Vec::new(),
        },
        symbols: Vec::new(),
    };
    let running = kernel::kernels(&[], true)?;
    let cells = resolve_all(&[&need], &running, 1)?;
    Ok(cells
        .iter()
        .flatten()
        .chain(&uprobe)
        .flat_map(|cell| cell.reasons.iter())
        .filter(|(status, _)| *status != Status::Ok)
        .map(|(_, reason)| reason.clone())
        .collect())
}

fn wanted(rows: &[&Need]) -> Wanted {
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

/// Every need against every kernel, `cells[need][kernel]`: each kernel read and indexed once, `jobs` kernels at a
/// time.
pub fn resolve_all(rows: &[&Need], kernels: &[KernelSpec], jobs: usize) -> Result<Vec<Vec<Cell>>> {
    let wanted = wanted(rows);
    let needs_kallsyms = rows.iter().any(|r| {
        matches!(
            r.program.attach,
            Attach::Kprobe { .. } | Attach::Syscall { .. }
        )
    });
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
                let Some(kernel) = kernels.get(index) else {
                    break;
                };
                let column = column(rows, kernel, &wanted, running.as_ref());
                results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(column);
            });
        }
    });
    let mut cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|_| Vec::with_capacity(kernels.len()))
        .collect();
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
    rows: &[&Need],
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
pub fn uprobe_on_this_machine(binary: &str, symbol: &str) -> Cell {
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
        [
            "/lib",
            "/usr/lib",
            "/lib64",
            "/usr/lib64",
            "/usr/local/lib",
            multiarch.as_str(),
        ]
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
        .filter_map(|s| {
            s.name()
                .ok()
                .map(|n| n.split('@').next().unwrap_or(n).to_string())
        })
        .collect())
}
