//! The kernels `compat` checks against, and what each offers, read once per kernel: its BTF types indexed by the
//! names the objects ask for (one pass over the types, whatever the number of probes), and for the running
//! kernel also `/proc/kallsyms` (compiler-renamed functions such as `.isra.0` are there, not in BTF), tracefs'
//! events and whether it has kprobes at all.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Result};

use crate::btf::{self, Btf, BtfFile, Kind};

pub const RUNNING_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Present when the kernel has kprobes.
pub const KPROBE_EVENT_SOURCE: &str = "/sys/bus/event_source/devices/kprobe";
/// A BTFHub-style tree is a few directory levels deep (`distro/version/arch/release.btf`).
const MAX_DIR_DEPTH: usize = 6;
const MAX_KERNELS: usize = 10_000;

#[derive(Debug, Clone)]
pub enum KernelSource {
    Running,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct KernelSpec {
    /// The column's name: the running kernel's release, or the file's name without `.btf`.
    pub label: String,
    pub source: KernelSource,
}

/// The kernels named on the command line: files (raw BTF or ELF with `.BTF`) and directories of them, searched
/// to a few levels; the running kernel first unless left out.
pub fn kernels(paths: &[PathBuf], running: bool) -> Result<Vec<KernelSpec>> {
    let mut kernels = Vec::new();
    if running {
        kernels.push(KernelSpec {
            label: crate::kernel::release().unwrap_or_else(|_| "running".into()),
            source: KernelSource::Running,
        });
    }
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|e| anyhow::anyhow!("cannot read the kernel BTF `{}`: {e}", path.display()))?;
        if metadata.is_dir() {
            let mut found = Vec::new();
            collect_btf_files(path, 0, &mut found)?;
            if found.is_empty() {
                bail!(
                    "`{}` holds no BTF file (raw BTF or ELF; BTFHub ships `.btf.tar.xz`: unpack them first with \
                     `tar xJf`)",
                    path.display()
                );
            }
            found.sort();
            kernels.extend(found.into_iter().map(file_spec));
        } else {
            kernels.push(file_spec(path.clone()));
        }
        if kernels.len() > MAX_KERNELS {
            bail!("more than {MAX_KERNELS} kernels given");
        }
    }
    // Two files with one name (`5.4.0.btf` of two distros) get their paths as labels.
    let labels: Vec<String> = kernels.iter().map(|k| k.label.clone()).collect();
    for kernel in &mut kernels {
        if labels.iter().filter(|l| **l == kernel.label).count() > 1 {
            if let KernelSource::File(path) = &kernel.source {
                kernel.label = path.display().to_string();
            }
        }
    }
    Ok(kernels)
}

fn file_spec(path: PathBuf) -> KernelSpec {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    KernelSpec {
        label: name.strip_suffix(".btf").unwrap_or(&name).to_string(),
        source: KernelSource::File(path),
    }
}

fn collect_btf_files(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<()> {
    if depth > MAX_DIR_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot list `{}`: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        // Links are not followed: a directory tree of kernels is searched as it is.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_btf_files(&path, depth + 1, found)?;
        } else if kind.is_file() && BtfFile::looks_like(&path) {
            found.push(path);
            if found.len() > MAX_KERNELS {
                bail!("`{}` holds more than {MAX_KERNELS} files", dir.display());
            }
        }
    }
    Ok(())
}

/// The names every selected object asks for: only these are indexed from each kernel's BTF.
#[derive(Debug, Default)]
pub struct Wanted {
    /// Struct, union, enum and typedef names (without flavour) of CO-RE roots.
    pub types: HashSet<String>,
    /// Function names: kprobe, fentry and syscall targets, kfuncs.
    pub functions: HashSet<String>,
    /// Variables: ksyms.
    pub variables: HashSet<String>,
    /// `btf_trace_NAME` and `trace_event_raw_NAME`, for tracepoints.
    pub trace_types: HashSet<String>,
}

/// The running kernel's facts that are not in BTF.
pub struct Running {
    /// Function symbols of `/proc/kallsyms` (names only; they are readable without root).
    pub functions: Option<HashSet<String>>,
    /// `category/name` of every tracefs event, when tracefs is mounted.
    pub events: Option<BTreeSet<String>>,
    pub kprobes: bool,
}

impl Running {
    pub fn read(needs_functions: bool) -> Running {
        let functions = needs_functions
            .then(|| std::fs::read_to_string("/proc/kallsyms").ok())
            .flatten()
            .map(|text| {
                text.lines()
                    .filter_map(|line| {
                        let mut fields = line.split_whitespace();
                        let kind = fields.nth(1)?;
                        let name = fields.next()?;
                        matches!(kind, "t" | "T" | "W" | "w").then(|| name.to_string())
                    })
                    .collect::<HashSet<String>>()
            })
            .filter(|set| !set.is_empty());
        Running {
            functions,
            events: tracefs_events(),
            kprobes: Path::new(KPROBE_EVENT_SOURCE).exists(),
        }
    }
}

fn tracefs_events() -> Option<BTreeSet<String>> {
    let dir = [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .map(Path::new)
    .find(|d| d.is_dir())?;
    let mut events = BTreeSet::new();
    for category in std::fs::read_dir(dir).ok()?.flatten() {
        let category_name = category.file_name().to_string_lossy().into_owned();
        for event in std::fs::read_dir(category.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if event.path().is_dir() {
                events.insert(format!(
                    "{category_name}/{}",
                    event.file_name().to_string_lossy()
                ));
            }
        }
    }
    (!events.is_empty()).then_some(events)
}

/// One kernel's BTF, indexed for the wanted names.
pub struct KernelIndex<'a> {
    pub btf: Option<Btf<'a>>,
    /// By essential name: every type id of a wanted name.
    pub types: HashMap<&'a str, Vec<u32>>,
    pub functions: HashSet<&'a str>,
    pub variables: HashSet<&'a str>,
    pub trace_types: HashSet<&'a str>,
    pub running: Option<&'a Running>,
    /// Every function and tracepoint type name, gathered only when a miss needs "nearest" suggestions.
    all_functions: OnceLock<Vec<&'a str>>,
    all_tracepoints: OnceLock<Vec<&'a str>>,
}

impl<'a> KernelIndex<'a> {
    pub fn new(btf: Option<Btf<'a>>, wanted: &Wanted, running: Option<&'a Running>) -> Self {
        let mut index = KernelIndex {
            btf: None,
            types: HashMap::new(),
            functions: HashSet::new(),
            variables: HashSet::new(),
            trace_types: HashSet::new(),
            running,
            all_functions: OnceLock::new(),
            all_tracepoints: OnceLock::new(),
        };
        if let Some(btf) = &btf {
            for (id, ty) in btf.iter() {
                let name = ty.name;
                if name.is_empty() {
                    continue;
                }
                match ty.kind {
                    Kind::Func if wanted.functions.contains(name) => {
                        index.functions.insert(name);
                    }
                    Kind::Var if wanted.variables.contains(name) => {
                        index.variables.insert(name);
                    }
                    _ => {}
                }
                if matches!(ty.kind, Kind::Typedef | Kind::Struct)
                    && wanted.trace_types.contains(name)
                {
                    index.trace_types.insert(name);
                }
                let essential = btf::essential_name(name);
                if wanted.types.contains(essential) {
                    index.types.entry(essential).or_default().push(id);
                }
            }
        }
        index.btf = btf;
        index
    }

    pub fn all_functions(&self) -> &[&'a str] {
        self.all_functions.get_or_init(|| {
            self.btf
                .iter()
                .flat_map(|btf| btf.iter())
                .filter(|(_, t)| t.kind == Kind::Func)
                .map(|(_, t)| t.name)
                .collect()
        })
    }

    /// Tracepoint names known from BTF (`btf_trace_NAME` typedefs), without the prefix.
    pub fn all_tracepoints(&self) -> &[&'a str] {
        self.all_tracepoints.get_or_init(|| {
            self.btf
                .iter()
                .flat_map(|btf| btf.iter())
                .filter(|(_, t)| t.kind == Kind::Typedef)
                .filter_map(|(_, t)| t.name.strip_prefix("btf_trace_"))
                .collect()
        })
    }
}
