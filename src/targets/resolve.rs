//! Whether one kernel offers what one program needs: its attach target, its CO-RE relocations (libbpf's matching
//! rules: candidates by name without flavour, members found by name through anonymous members, field types
//! compatible as `bpf_core_fields_are_compat` says) and its kfuncs. Each answer is ✔, ⚠ (it loads, with a
//! caveat) or ✘ with the reason, naming the missing function, tracepoint, type or field and the nearest real names.

use super::kernel::KernelIndex;
use super::needs::{Attach, CoreNeed, FieldClass, KernelSymbolNeed, Program, Step};
use crate::btf::{Btf, Kind};
use crate::nearest::nearest_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn symbol(self) -> &'static str {
        match self {
            Status::Ok => "✔",
            Status::Warn => "⚠",
            Status::Fail => "✘",
        }
    }

    pub fn json_name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warning",
            Status::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub status: Status,
    pub reasons: Vec<(Status, String)>,
}

impl Cell {
    fn add(&mut self, status: Status, reason: String) {
        self.status = self.status.max(status);
        self.reasons.push((status, reason));
    }
}

/// A program against a kernel. `symbols` are the kfuncs and ksyms the program's instructions refer to.
pub fn resolve(program: &Program, symbols: &[&KernelSymbolNeed], kernel: &KernelIndex) -> Cell {
    let mut cell = Cell {
        status: Status::Ok,
        reasons: Vec::new(),
    };
    attach(&program.attach, kernel, &mut cell);
    match &kernel.btf {
        Some(btf) => {
            // A type the kernel lacks is said once, with every access the program makes to it.
            let mut missing_types: Vec<(String, Vec<String>)> = Vec::new();
            for need in &program.core {
                match core(need, btf, kernel) {
                    Ok(()) => {}
                    Err(CoreProblem::NoType) => {
                        let root = format!("{}{}", need.root_kind.c_word(), need.root_name);
                        let access = need.describe();
                        match missing_types.iter_mut().find(|(r, _)| *r == root) {
                            Some((_, accesses)) => accesses.push(access),
                            None => missing_types.push((root, vec![access])),
                        }
                    }
                    Err(CoreProblem::Other(reason)) => cell.add(Status::Fail, reason),
                }
            }
            for (root, accesses) in missing_types {
                let shown: Vec<String> = accesses.iter().take(3).map(|a| format!("`{a}`")).collect();
                let more = match accesses.len().saturating_sub(3) {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                cell.add(
                    Status::Fail,
                    format!(
                        "the kernel's BTF has no `{root}` (CO-RE: the program reads {}{more})",
                        shown.join(", ")
                    ),
                );
            }
            for symbol in symbols {
                kernel_symbol(symbol, kernel, &mut cell);
            }
        }
        None if !program.core.is_empty() || !symbols.is_empty() => cell.add(
            Status::Warn,
            "this kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE relocations and kfuncs not checked; \
             such a kernel needs a BTF file: `ebpf-probe btfgen --kernel <its BTF>` makes a minimized one and \
             `install` ships it to /opt/gala-gopher/btf, where the SDKs load it (`btf_custom_path`)"
                .into(),
        ),
        None => {}
    }
    cell
}

/// The names a syscall's entry function has on the architectures we build for.
pub fn syscall_functions(name: &str) -> [String; 6] {
    [
        format!("__x64_sys_{name}"),
        format!("__arm64_sys_{name}"),
        format!("__riscv_sys_{name}"),
        format!("__se_sys_{name}"),
        format!("__do_sys_{name}"),
        format!("sys_{name}"),
    ]
}

/// `__x64_sys_kill` → `syscalls/sys_enter_kill`: the tracepoint that sees the same calls as a syscall kprobe.
pub fn tracepoint_alternative(function: &str) -> Option<String> {
    [
        "__x64_sys_",
        "__arm64_sys_",
        "__riscv_sys_",
        "__se_sys_",
        "__do_sys_",
    ]
    .iter()
    .find_map(|prefix| function.strip_prefix(prefix))
    .map(|call| format!("syscalls/sys_enter_{call}"))
}

fn has_function(kernel: &KernelIndex, name: &str) -> bool {
    match kernel.running.and_then(|r| r.functions.as_ref()) {
        Some(symbols) => symbols.contains(name),
        None => kernel.functions.contains(name),
    }
}

fn attach(target: &Attach, kernel: &KernelIndex, cell: &mut Cell) {
    match target {
        Attach::Kprobe { function } => {
            if kernel.running.is_some_and(|r| !r.kprobes) {
                let alternative = tracepoint_alternative(function)
                    .map(|tp| format!("; the tracepoint `{tp}` sees the same calls"))
                    .unwrap_or_default();
                cell.add(
                    Status::Warn,
                    format!(
                        "this kernel has no kprobes (CONFIG_KPROBES off): `{function}` cannot be attached here{alternative}"
                    ),
                );
            }
            if !has_function(kernel, function) {
                cell.add(Status::Fail, missing_function(function, kernel));
            }
        }
        Attach::Syscall { name } => {
            if !syscall_functions(name)
                .iter()
                .any(|f| has_function(kernel, f))
            {
                cell.add(
                    Status::Fail,
                    format!(
                        "the kernel has no system call `{name}` (no `__*_sys_{name}` function)"
                    ),
                );
            }
        }
        Attach::BtfFunction { function } => {
            if kernel.btf.is_none() {
                cell.add(
                    Status::Fail,
                    format!(
                        "`{function}` is resolved in the kernel's BTF, and this kernel has none"
                    ),
                );
            } else if !kernel.functions.contains(function.as_str()) {
                cell.add(
                    Status::Fail,
                    format!(
                        "the kernel's BTF has no function `{function}`{}",
                        nearest_text(function, filtered(kernel.all_functions(), function))
                    ),
                );
            }
        }
        Attach::Tracepoint { category, name } => {
            if let Some(events) = kernel.running.and_then(|r| r.events.as_ref()) {
                let wanted = format!("{category}/{name}");
                if !events.contains(&wanted) {
                    let prefix = format!("{category}/");
                    let in_category = events
                        .iter()
                        .filter_map(|e| e.strip_prefix(&prefix))
                        .collect::<Vec<_>>();
                    let nearest = if in_category.is_empty() {
                        nearest_text(&wanted, events.iter().map(String::as_str))
                    } else {
                        nearest_text(name, in_category)
                    };
                    cell.add(
                        Status::Fail,
                        format!("the kernel has no tracepoint `{wanted}`{nearest}"),
                    );
                }
            } else if !tracepoint_in_btf(category, name, kernel) {
                cell.add(
                    Status::Fail,
                    missing_tracepoint(&format!("{category}/{name}"), name, kernel),
                );
            }
        }
        Attach::RawTracepoint { name } => {
            let found = match kernel.running.and_then(|r| r.events.as_ref()) {
                Some(events) => events.iter().any(|e| e.rsplit('/').next() == Some(name)),
                None => tracepoint_in_btf("", name, kernel),
            };
            if !found {
                cell.add(Status::Fail, missing_tracepoint(name, name, kernel));
            }
        }
        Attach::TpBtf { name } => {
            if !kernel
                .trace_types
                .contains(format!("btf_trace_{name}").as_str())
            {
                cell.add(Status::Fail, missing_tracepoint(name, name, kernel));
            }
        }
        Attach::Uprobe { .. } | Attach::UprobeByLoader | Attach::Nothing => {}
    }
}

fn tracepoint_in_btf(category: &str, name: &str, kernel: &KernelIndex) -> bool {
    if category == "syscalls" {
        // System call tracepoints come from syscall metadata, not TRACE_EVENT: the syscall itself tells.
        if let Some(call) = name
            .strip_prefix("sys_enter_")
            .or_else(|| name.strip_prefix("sys_exit_"))
        {
            return syscall_functions(call)
                .iter()
                .any(|f| kernel.functions.contains(f.as_str()));
        }
    }
    kernel
        .trace_types
        .contains(format!("btf_trace_{name}").as_str())
        || kernel
            .trace_types
            .contains(format!("trace_event_raw_{name}").as_str())
}

fn missing_tracepoint(shown: &str, name: &str, kernel: &KernelIndex) -> String {
    let source = if kernel.btf.is_some() {
        format!(" (no `btf_trace_{name}` in its BTF)")
    } else {
        String::new()
    };
    format!(
        "the kernel has no tracepoint `{shown}`{source}{}",
        nearest_text(name, filtered(kernel.all_tracepoints(), name))
    )
}

fn missing_function(function: &str, kernel: &KernelIndex) -> String {
    if let Some(symbols) = kernel.running.and_then(|r| r.functions.as_ref()) {
        let mut variants: Vec<&str> = symbols
            .iter()
            .map(String::as_str)
            .filter(|n| {
                n.strip_prefix(function).is_some_and(|rest| {
                    [".isra", ".constprop", ".part", ".cold", ".llvm"]
                        .iter()
                        .any(|suffix| rest.starts_with(suffix))
                })
            })
            .collect();
        if !variants.is_empty() {
            variants.sort();
            let list: Vec<String> = variants.iter().map(|v| format!("`{v}`")).collect();
            return format!(
                "the kernel has `{function}` only as {} (inlined or specialised by the compiler): attach to that name",
                list.join(", ")
            );
        }
        let names: Vec<&str> = symbols.iter().map(String::as_str).collect();
        return format!(
            "the kernel has no function `{function}`{}",
            nearest_text(function, filtered(&names, function))
        );
    }
    format!(
        "the kernel has no function `{function}`{}",
        nearest_text(function, filtered(kernel.all_functions(), function))
    )
}

/// Names sharing the wanted one's first three characters: edit distance over 100,000 kernel names would be slow.
fn filtered<'n>(names: &'n [&'n str], wanted: &'n str) -> impl Iterator<Item = &'n str> + 'n {
    let head = wanted.get(..3).unwrap_or(wanted);
    names.iter().copied().filter(move |n| n.starts_with(head))
}

fn kernel_symbol(symbol: &KernelSymbolNeed, kernel: &KernelIndex, cell: &mut Cell) {
    let found = if symbol.is_function {
        kernel.functions.contains(symbol.name.as_str())
    } else {
        kernel.variables.contains(symbol.name.as_str())
    };
    if found {
        return;
    }
    let what = if symbol.is_function {
        "kfunc"
    } else {
        "kernel variable (ksym)"
    };
    if symbol.weak {
        cell.add(
            Status::Warn,
            format!(
                "the kernel has no {what} `{}`; it is declared __weak, so it resolves to 0 and the program must test \
                 it (bpf_ksym_exists)",
                symbol.name
            ),
        );
    } else {
        let names: &[&str] = if symbol.is_function {
            kernel.all_functions()
        } else {
            &[]
        };
        cell.add(
            Status::Fail,
            format!(
                "the kernel has no {what} `{}`{} (declare it __weak and test bpf_ksym_exists() to load without it)",
                symbol.name,
                nearest_text(&symbol.name, filtered(names, &symbol.name))
            ),
        );
    }
}

enum CoreProblem {
    /// No type of the root's name and kind.
    NoType,
    Other(String),
}

/// libbpf's CO-RE matching of one relocation against the kernel's BTF.
fn core(need: &CoreNeed, btf: &Btf, kernel: &KernelIndex) -> Result<(), CoreProblem> {
    let candidates: Vec<u32> = kernel
        .types
        .get(need.root_name.as_str())
        .into_iter()
        .flatten()
        .copied()
        .filter(|id| {
            btf.get(*id)
                .is_some_and(|t| same_kind(t.kind, need.root_kind))
        })
        .collect();
    let guarded = need.kind.is_existence_check();
    if candidates.is_empty() {
        return if guarded {
            Ok(())
        } else {
            Err(CoreProblem::NoType)
        };
    }
    let mut first_problem = None;
    for candidate in candidates {
        let outcome = if need.kind.is_enumval() {
            enumerator(need, btf, candidate)
        } else if need.kind.is_field() {
            field(need, btf, candidate)
        } else {
            Ok(())
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(problem) => {
                first_problem.get_or_insert(problem);
            }
        }
    }
    if guarded {
        return Ok(());
    }
    Err(CoreProblem::Other(first_problem.unwrap_or_default()))
}

fn same_kind(kernel: Kind, local: Kind) -> bool {
    let enum_like = |k| matches!(k, Kind::Enum | Kind::Enum64);
    kernel == local || (enum_like(kernel) && enum_like(local))
}

fn enumerator(need: &CoreNeed, btf: &Btf, candidate: u32) -> Result<(), String> {
    let wanted = need.enumerator.as_deref().unwrap_or_default();
    let ty = btf.get(candidate).ok_or_default()?;
    if btf
        .enumerators(ty)
        .iter()
        .any(|e| crate::btf::essential_name(e) == crate::btf::essential_name(wanted))
    {
        Ok(())
    } else {
        Err(format!(
            "`enum {}` has no value `{wanted}` in the kernel's BTF (CO-RE)",
            need.root_name
        ))
    }
}

fn field(need: &CoreNeed, btf: &Btf, candidate: u32) -> Result<(), String> {
    let mut id = btf.skip_aliases(candidate);
    let mut path = format!("{}{}", need.root_kind.c_word(), need.root_name);
    for step in &need.steps {
        match step {
            Step::Member { name, class } => {
                let Some(member_type) = find_member(btf, id, name, 0) else {
                    return Err(format!(
                        "`{}` has no field `{name}` in the kernel's BTF (CO-RE: the program reads `{}`)",
                        btf.describe(id),
                        need.describe()
                    ));
                };
                path = format!("{path}.{name}");
                if !class_compatible(btf, member_type, class, 0) {
                    return Err(format!(
                        "`{path}` is {} in the kernel's BTF, the program reads {} (CO-RE)",
                        describe_class(btf, member_type),
                        class.describe()
                    ));
                }
                id = btf.skip_aliases(member_type);
            }
            Step::Index { class } => {
                let Some(element) = btf.get(id).and_then(|t| btf.array_element(t)) else {
                    return Err(format!(
                        "`{path}` is not an array in the kernel's BTF (CO-RE: the program indexes it)"
                    ));
                };
                if !class_compatible(btf, element, class, 0) {
                    return Err(format!(
                        "the elements of `{path}` are {} in the kernel's BTF, the program reads {} (CO-RE)",
                        describe_class(btf, element),
                        class.describe()
                    ));
                }
                path += "[]";
                id = btf.skip_aliases(element);
            }
        }
    }
    Ok(())
}

/// A member by name, looking through anonymous struct and union members as libbpf does.
fn find_member(btf: &Btf, id: u32, name: &str, depth: usize) -> Option<u32> {
    let ty = btf.get(btf.skip_aliases(id))?;
    if depth > 16 {
        return None;
    }
    let members = btf.members(ty);
    if let Some(member) = members
        .iter()
        .find(|m| crate::btf::essential_name(m.name) == crate::btf::essential_name(name))
    {
        return Some(member.type_id);
    }
    members
        .iter()
        .filter(|m| m.name.is_empty())
        .find_map(|m| find_member(btf, m.type_id, name, depth + 1))
}

fn class_compatible(btf: &Btf, id: u32, class: &FieldClass, depth: usize) -> bool {
    let Some(ty) = btf.get(btf.skip_aliases(id)) else {
        return false;
    };
    match class {
        FieldClass::Composite => matches!(ty.kind, Kind::Struct | Kind::Union),
        FieldClass::Pointer => ty.kind == Kind::Ptr,
        FieldClass::Float => ty.kind == Kind::Float,
        FieldClass::Int => ty.kind == Kind::Int,
        FieldClass::Enum(name) => {
            matches!(ty.kind, Kind::Enum | Kind::Enum64 | Kind::Fwd)
                && (name.is_empty()
                    || ty.name.is_empty()
                    || crate::btf::essential_name(ty.name) == name)
        }
        FieldClass::Array(element) => {
            depth < 8
                && btf
                    .array_element(ty)
                    .is_some_and(|e| class_compatible(btf, e, element, depth + 1))
        }
        FieldClass::Other => false,
    }
}

fn describe_class(btf: &Btf, id: u32) -> String {
    match btf.get(btf.skip_aliases(id)).map(|t| t.kind) {
        Some(Kind::Struct | Kind::Union) => format!("`{}`", btf.describe(btf.skip_aliases(id))),
        Some(Kind::Ptr) => "a pointer".into(),
        Some(Kind::Int) => "an integer".into(),
        Some(Kind::Enum | Kind::Enum64) => format!("`{}`", btf.describe(btf.skip_aliases(id))),
        Some(Kind::Array) => "an array".into(),
        Some(Kind::Float) => "a floating-point number".into(),
        _ => "another kind of type".into(),
    }
}

trait OkOrDefault<T> {
    fn ok_or_default(self) -> Result<T, String>;
}

impl<T> OkOrDefault<T> for Option<T> {
    fn ok_or_default(self) -> Result<T, String> {
        self.ok_or_else(|| "the kernel's BTF is inconsistent".to_string())
    }
}
