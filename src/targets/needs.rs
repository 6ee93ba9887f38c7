//! What a built `.bpf.o` needs from a kernel, read with the `object` crate and our BTF reader: its programs and
//! their attach targets (from the section names, as libbpf reads them), the CO-RE relocations each program's
//! instructions carry (as owned, name-based specs, so the object is read once and matched against any number of
//! kernels), and the kfuncs and ksyms it declares `extern`.

use std::path::Path;

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SymbolKind};

use crate::btf::{self, Btf, Kind, RelocationKind};

/// Where a program attaches, from its section name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// `kprobe/F`, `kretprobe/F`: a kernel function, by its symbol (`F+off` keeps only `F`).
    Kprobe { function: String },
    /// `ksyscall/NAME`: a system call, whatever its arch-specific wrapper is called.
    Syscall { name: String },
    /// `fentry/F`, `fexit/F`, `fmod_ret/F`, `lsm/H` (`bpf_lsm_H`), `iter/N` (`bpf_iter_N`): a function in BTF.
    BtfFunction { function: String },
    /// `tracepoint/C/N`, `tp/C/N`.
    Tracepoint { category: String, name: String },
    /// `raw_tracepoint/N`, `raw_tp/N`.
    RawTracepoint { name: String },
    /// `tp_btf/N`: the tracepoint's `btf_trace_N` type.
    TpBtf { name: String },
    /// `uprobe/BINARY:SYMBOL`.
    Uprobe { binary: String, symbol: String },
    /// `uprobe`/`uretprobe` without a target: attached by the loader (`UBPF_ATTACH`).
    UprobeByLoader,
    /// XDP, tc, socket filters, perf events…: nothing named to resolve.
    Nothing,
}

impl Attach {
    pub fn from_section(section: &str) -> Attach {
        let (kind, target) = section.split_once('/').unwrap_or((section, ""));
        let function = |name: &str| name.split('+').next().unwrap_or(name).to_string();
        match (kind, target) {
            ("kprobe" | "kretprobe", f) if !f.is_empty() => Attach::Kprobe {
                function: function(f),
            },
            ("ksyscall" | "kretsyscall", name) if !name.is_empty() => Attach::Syscall {
                name: name.to_string(),
            },
            ("fentry" | "fexit" | "fmod_ret" | "fentry.s" | "fexit.s" | "fmod_ret.s", f)
                if !f.is_empty() && !f.contains(':') =>
            {
                Attach::BtfFunction {
                    function: f.to_string(),
                }
            }
            ("lsm" | "lsm.s" | "lsm_cgroup", hook) if !hook.is_empty() => Attach::BtfFunction {
                function: format!("bpf_lsm_{hook}"),
            },
            ("iter" | "iter.s", name) if !name.is_empty() => Attach::BtfFunction {
                function: format!("bpf_iter_{name}"),
            },
            ("tracepoint" | "tp", target) if target.contains('/') => {
                let (category, name) = target.split_once('/').unwrap_or_default();
                Attach::Tracepoint {
                    category: category.to_string(),
                    name: name.to_string(),
                }
            }
            ("raw_tracepoint" | "raw_tp" | "raw_tracepoint.w" | "raw_tp.w", name)
                if !name.is_empty() =>
            {
                Attach::RawTracepoint {
                    name: name.to_string(),
                }
            }
            ("tp_btf", name) if !name.is_empty() => Attach::TpBtf {
                name: name.to_string(),
            },
            ("uprobe" | "uretprobe" | "uprobe.s" | "uretprobe.s", "") => Attach::UprobeByLoader,
            ("uprobe" | "uretprobe" | "uprobe.s" | "uretprobe.s", target) => {
                match target.rsplit_once(':') {
                    Some((binary, symbol)) if !binary.is_empty() && !symbol.is_empty() => {
                        Attach::Uprobe {
                            binary: binary.to_string(),
                            symbol: function(symbol),
                        }
                    }
                    _ => Attach::UprobeByLoader,
                }
            }
            _ => Attach::Nothing,
        }
    }

    /// `kprobe`, `tracepoint`…: the kind as `--json` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Attach::Kprobe { .. } => "kprobe",
            Attach::Syscall { .. } => "ksyscall",
            Attach::BtfFunction { .. } => "btf_function",
            Attach::Tracepoint { .. } => "tracepoint",
            Attach::RawTracepoint { .. } => "raw_tracepoint",
            Attach::TpBtf { .. } => "tp_btf",
            Attach::Uprobe { .. } => "uprobe",
            Attach::UprobeByLoader => "uprobe_by_loader",
            Attach::Nothing => "none",
        }
    }

    /// The target as written in the section (`syscalls/sys_enter_kill`), empty when there is none.
    pub fn target(&self) -> String {
        match self {
            Attach::Kprobe { function } | Attach::BtfFunction { function } => function.clone(),
            Attach::Syscall { name } | Attach::RawTracepoint { name } | Attach::TpBtf { name } => {
                name.clone()
            }
            Attach::Tracepoint { category, name } => format!("{category}/{name}"),
            Attach::Uprobe { binary, symbol } => format!("{binary}:{symbol}"),
            Attach::UprobeByLoader | Attach::Nothing => String::new(),
        }
    }
}

/// How a field's type must look in the kernel for libbpf to accept it (`bpf_core_fields_are_compat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldClass {
    /// Any struct or union.
    Composite,
    Pointer,
    Float,
    Int,
    /// An enum: the kernel's must have the same name (without flavour) unless one is anonymous.
    Enum(String),
    Array(Box<FieldClass>),
    /// Anything else (a function prototype): matched only by the same kind.
    Other,
}

impl FieldClass {
    fn of(btf: &Btf, id: u32, depth: usize) -> FieldClass {
        let id = btf.skip_aliases(id);
        match btf.get(id) {
            Some(t) => match t.kind {
                Kind::Struct | Kind::Union => FieldClass::Composite,
                Kind::Ptr => FieldClass::Pointer,
                Kind::Float => FieldClass::Float,
                Kind::Int => FieldClass::Int,
                Kind::Enum | Kind::Enum64 | Kind::Fwd => {
                    FieldClass::Enum(btf::essential_name(t.name).to_string())
                }
                Kind::Array if depth < 8 => FieldClass::Array(Box::new(FieldClass::of(
                    btf,
                    btf.array_element(t).unwrap_or(0),
                    depth + 1,
                ))),
                _ => FieldClass::Other,
            },
            None => FieldClass::Other,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            FieldClass::Composite => "a struct or union".into(),
            FieldClass::Pointer => "a pointer".into(),
            FieldClass::Float => "a floating-point number".into(),
            FieldClass::Int => "an integer".into(),
            FieldClass::Enum(name) if name.is_empty() => "an enum".into(),
            FieldClass::Enum(name) => format!("`enum {name}`"),
            FieldClass::Array(element) => format!("an array of {}", element.describe()),
            FieldClass::Other => "another kind of type".into(),
        }
    }
}

/// One step of a field access below the root type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A named member (anonymous members on the way are looked through, as libbpf does).
    Member { name: String, class: FieldClass },
    /// An array element.
    Index { class: FieldClass },
}

/// A CO-RE relocation as names: what the kernel's BTF must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreNeed {
    pub kind: RelocationKind,
    pub root_kind: Kind,
    /// The root type's name without flavour (`task_struct` for `task_struct___old`).
    pub root_name: String,
    pub steps: Vec<Step>,
    /// For enum value relocations: the enumerator.
    pub enumerator: Option<String>,
}

impl CoreNeed {
    /// `struct task_struct.signal.tgid`, `enum bpf_func_id::BPF_FUNC_x`: what the program reads, for messages.
    pub fn describe(&self) -> String {
        let mut text = format!("{}{}", self.root_kind.c_word(), self.root_name);
        for step in &self.steps {
            match step {
                Step::Member { name, .. } => {
                    text.push('.');
                    text.push_str(name);
                }
                Step::Index { .. } => text.push_str("[]"),
            }
        }
        if let Some(enumerator) = &self.enumerator {
            text += &format!("::{enumerator}");
        }
        text
    }
}

/// A `extern` function (kfunc) or variable (ksym) the object asks the kernel for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSymbolNeed {
    pub name: String,
    pub is_function: bool,
    /// Declared `__weak`: libbpf resolves a missing one to 0 and the program is expected to test for it.
    pub weak: bool,
}

#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    pub section: String,
    pub attach: Attach,
    pub core: Vec<CoreNeed>,
    /// Indices into `ObjectNeeds::kernel_symbols` of the kfuncs and ksyms its instructions (or the
    /// subprograms it may call) refer to.
    pub kernel_symbols: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct ObjectNeeds {
    pub programs: Vec<Program>,
    pub kernel_symbols: Vec<KernelSymbolNeed>,
}

pub fn read(path: &Path) -> Result<ObjectNeeds> {
    let data = crate::paths::read(path)?;
    parse(&data).with_context(|| format!("failed to read the BPF object `{}`", path.display()))
}

pub fn parse(data: &[u8]) -> Result<ObjectNeeds> {
    let elf = object::File::parse(data).context("not an ELF file")?;
    let mut programs = Vec::new();
    // (section index, start, end, index in `programs`) for attributing relocations to programs.
    let mut ranges = Vec::new();
    for section in elf.sections() {
        let executable = matches!(section.flags(), SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0);
        let name = section.name().unwrap_or_default();
        if !executable || name == ".text" {
            continue;
        }
        let mut symbols: Vec<_> = elf
            .symbols()
            .filter(|s| s.section_index() == Some(section.index()) && s.kind() == SymbolKind::Text)
            .collect();
        symbols.sort_by_key(|s| s.address());
        for symbol in symbols {
            ranges.push((
                name.to_string(),
                symbol.address(),
                symbol.address() + symbol.size().max(1),
                programs.len(),
            ));
            programs.push(Program {
                name: symbol.name().unwrap_or_default().to_string(),
                section: name.to_string(),
                attach: Attach::from_section(name),
                core: Vec::new(),
                kernel_symbols: Vec::new(),
            });
        }
    }
    let mut kernel_symbols = Vec::new();
    let Some(btf_section) = elf.section_by_name(".BTF") else {
        return Ok(ObjectNeeds {
            programs,
            kernel_symbols,
        });
    };
    let btf_data = btf_section.data().context("cannot read its .BTF section")?;
    let local = Btf::parse(btf_data).context("its .BTF section is not valid BTF")?;
    let weak: Vec<String> = elf
        .symbols()
        .filter(|s| s.is_weak() && s.is_undefined())
        .filter_map(|s| s.name().ok().map(String::from))
        .collect();
    for (_, ty) in local.iter() {
        let extern_function = ty.kind == Kind::Func && u32::from(ty.vlen) == btf::LINKAGE_EXTERN;
        let extern_variable =
            ty.kind == Kind::Var && local.var_linkage(ty) == Some(btf::LINKAGE_EXTERN);
        if (extern_function || extern_variable) && !ty.name.is_empty() {
            kernel_symbols.push(KernelSymbolNeed {
                name: ty.name.to_string(),
                is_function: extern_function,
                weak: weak.iter().any(|w| w == ty.name),
            });
        }
    }
    // libbpf's own `.kconfig` externs (`LINUX_KERNEL_VERSION`, `CONFIG_*`) come from the kernel's config, not BTF.
    kernel_symbols.retain(|s| s.is_function || !is_kconfig_extern(&s.name));
    attribute_kernel_symbols(&elf, &ranges, &kernel_symbols, &mut programs);
    if let Some(ext) = elf.section_by_name(".BTF.ext") {
        let ext_data = ext.data().context("cannot read its .BTF.ext section")?;
        for relocation in btf::ext::core_relocations(ext_data, &local)? {
            let Some(need) = core_need(&local, &relocation) else {
                continue;
            };
            let owners: Vec<usize> = if relocation.section == ".text" {
                // A subprogram: any program may call it.
                (0..programs.len()).collect()
            } else {
                let offset = u64::from(relocation.insn_off);
                ranges
                    .iter()
                    .filter(|(section, start, end, _)| {
                        section == relocation.section && (*start..*end).contains(&offset)
                    })
                    .map(|(.., index)| *index)
                    .collect()
            };
            for index in owners {
                if !programs[index].core.contains(&need) {
                    programs[index].core.push(need.clone());
                }
            }
        }
    }
    Ok(ObjectNeeds {
        programs,
        kernel_symbols,
    })
}

/// Which programs refer to which extern: the ELF relocations of each program section name the symbol.
fn attribute_kernel_symbols(
    elf: &object::File,
    ranges: &[(String, u64, u64, usize)],
    kernel_symbols: &[KernelSymbolNeed],
    programs: &mut [Program],
) {
    for section in elf.sections() {
        let name = section.name().unwrap_or_default();
        for (offset, relocation) in section.relocations() {
            let object::RelocationTarget::Symbol(index) = relocation.target() else {
                continue;
            };
            let Ok(symbol) = elf.symbol_by_index(index) else {
                continue;
            };
            let Some(need) = kernel_symbols
                .iter()
                .position(|k| Some(k.name.as_str()) == symbol.name().ok())
            else {
                continue;
            };
            let owners: Vec<usize> = if name == ".text" {
                (0..programs.len()).collect()
            } else {
                ranges
                    .iter()
                    .filter(|(section, start, end, _)| {
                        section == name && (*start..*end).contains(&offset)
                    })
                    .map(|(.., index)| *index)
                    .collect()
            };
            for owner in owners {
                if !programs[owner].kernel_symbols.contains(&need) {
                    programs[owner].kernel_symbols.push(need);
                }
            }
        }
    }
}

fn is_kconfig_extern(name: &str) -> bool {
    name.starts_with("CONFIG_")
        || matches!(
            name,
            "LINUX_KERNEL_VERSION" | "LINUX_HAS_BPF_COOKIE" | "LINUX_HAS_SYSCALL_WRAPPER"
        )
}

/// libbpf's `bpf_core_parse_spec`, kept as names: the root type and the named members on the way.
fn core_need(local: &Btf, relocation: &btf::CoreRelocation) -> Option<CoreNeed> {
    if !relocation.kind.needs_target() {
        return None;
    }
    let root = local.get(relocation.type_id)?;
    if root.name.is_empty() {
        return None; // libbpf refuses anonymous roots itself; nothing to look up by name
    }
    let indices: Vec<usize> = relocation
        .access
        .split(':')
        .map(|i| i.parse().ok())
        .collect::<Option<_>>()?;
    let mut need = CoreNeed {
        kind: relocation.kind,
        root_kind: root.kind,
        root_name: btf::essential_name(root.name).to_string(),
        steps: Vec::new(),
        enumerator: None,
    };
    if relocation.kind.is_enumval() {
        need.enumerator = Some(local.enumerators(root).get(*indices.first()?)?.to_string());
    } else if relocation.kind.is_field() {
        let mut id = local.skip_aliases(relocation.type_id);
        // The first index is an array index on the root (`p[0]`); the rest walk members and elements.
        for &index in indices.iter().skip(1) {
            let ty = local.get(id)?;
            match ty.kind {
                Kind::Struct | Kind::Union => {
                    let member = *local.members(ty).get(index)?;
                    if !member.name.is_empty() {
                        need.steps.push(Step::Member {
                            name: member.name.to_string(),
                            class: FieldClass::of(local, member.type_id, 0),
                        });
                    }
                    id = local.skip_aliases(member.type_id);
                }
                Kind::Array => {
                    let element = local.array_element(ty)?;
                    need.steps.push(Step::Index {
                        class: FieldClass::of(local, element, 0),
                    });
                    id = local.skip_aliases(element);
                }
                _ => return None,
            }
        }
    }
    Some(need)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_name_their_attach_targets_as_libbpf_reads_them() {
        assert_eq!(
            Attach::from_section("kprobe/tcp_sendmsg+4"),
            Attach::Kprobe {
                function: "tcp_sendmsg".into()
            }
        );
        assert_eq!(
            Attach::from_section("tracepoint/syscalls/sys_enter_kill").target(),
            "syscalls/sys_enter_kill"
        );
        assert_eq!(
            Attach::from_section("tp_btf/sched_switch"),
            Attach::TpBtf {
                name: "sched_switch".into()
            }
        );
        assert_eq!(
            Attach::from_section("lsm/file_open"),
            Attach::BtfFunction {
                function: "bpf_lsm_file_open".into()
            }
        );
        assert_eq!(Attach::from_section("uprobe"), Attach::UprobeByLoader);
        assert_eq!(
            Attach::from_section("uretprobe//usr/bin/bash:readline"),
            Attach::Uprobe {
                binary: "/usr/bin/bash".into(),
                symbol: "readline".into()
            }
        );
        assert_eq!(Attach::from_section("xdp"), Attach::Nothing);
        assert_eq!(Attach::from_section("kprobe.multi/tcp_*"), Attach::Nothing);
    }
}
