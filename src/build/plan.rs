//! The build graph of a workspace: every step of every selected probe (precompiled header, BPF objects,
//! skeletons, userland objects, links, Rust sources) with the steps each one needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::build::compile::{Compiler, PrecompiledHeader};
use crate::build::graph::Node;
use crate::paths;
use crate::workspace::{Probe, Userland, Workspace};

pub enum Action {
    PrecompiledHeader {
        pch: usize,
    },
    /// `lib/*.c`, compiled once for every probe (the old Makefiles recompiled it into each one).
    LibObject {
        source: PathBuf,
        object: PathBuf,
    },
    BpfObject {
        source: PathBuf,
        object: PathBuf,
        /// The precompiled header to use, when the source includes the kernel header.
        pch: Option<usize>,
    },
    Skeleton {
        object: PathBuf,
        skeleton: PathBuf,
    },
    UserObject {
        source: PathBuf,
        object: PathBuf,
    },
    Link {
        objects: Vec<PathBuf>,
        binary: PathBuf,
    },
    /// A Rust probe's `<stem>.skel.rs` and `meta.rs`; cargo builds it after the graph.
    RustSources {
        objects: Vec<PathBuf>,
    },
}

pub struct Step {
    pub action: Action,
    /// Index into the selected probes; `None` for steps every probe shares.
    pub probe: Option<usize>,
}

impl Step {
    /// A probe's last step: when it succeeds, the probe is built (or, for Rust, ready for cargo).
    pub fn is_final(&self) -> bool {
        matches!(
            self.action,
            Action::Link { .. } | Action::RustSources { .. }
        )
    }

    /// What progress output calls this step: a verb and the file it makes or compiles.
    pub fn describe(&self, compiler: &Compiler, probes: &[Probe]) -> (&'static str, String) {
        let shown = |p: &Path| compiler.shown(p).display().to_string();
        match &self.action {
            Action::PrecompiledHeader { .. } => ("Precompiling", "include/vmlinux.h".to_string()),
            Action::LibObject { source, .. } => ("Compiling", shown(source)),
            Action::BpfObject { source, .. } => ("Compiling", shown(source)),
            Action::Skeleton { skeleton, .. } => ("Generating", shown(skeleton)),
            Action::UserObject { source, .. } => ("Compiling", shown(source)),
            Action::Link { binary, .. } => ("Linking", shown(binary)),
            Action::RustSources { .. } => (
                "Generating",
                format!(
                    "{} skeleton and meta.rs",
                    self.probe.map_or("", |p| probes[p].name.as_str())
                ),
            ),
        }
    }
}

pub struct Plan {
    pub nodes: Vec<Node<Step>>,
    pub precompiled_headers: Vec<PrecompiledHeader>,
    /// Probes that could not even be planned (no `*.bpf.c`, no userland), with why.
    pub unplannable: Vec<(usize, anyhow::Error)>,
}

pub struct PlanSettings<'a> {
    pub workspace: &'a Workspace,
    pub probes: &'a [Probe],
    pub compiler: &'a Compiler,
    /// Use a precompiled kernel header for BPF programs that include it.
    pub precompile_header: bool,
}

pub fn plan(settings: &PlanSettings) -> Result<Plan> {
    let PlanSettings {
        workspace,
        probes,
        compiler,
        ..
    } = *settings;
    let mut plan = Plan {
        nodes: Vec::new(),
        precompiled_headers: Vec::new(),
        unplannable: Vec::new(),
    };
    let sources: Vec<Result<ProbeSources>> = probes.iter().map(probe_sources).collect();

    // The precompiled headers go first: every BPF compile that includes the kernel header waits for one.
    // Probe-specific clang flags → (precompiled header, its step).
    let mut pch_steps: BTreeMap<Vec<String>, (usize, usize)> = BTreeMap::new();
    let tested = if settings.precompile_header {
        let include = workspace.include_dir();
        macros_tested_by(&[include.join("vmlinux.h"), include.join("ext_def.h")])
    } else {
        BTreeSet::new()
    };
    let uses_pch = |source: &Path| can_use_precompiled_header(source, &tested);
    for (probe, sources) in probes.iter().zip(&sources) {
        let Ok(sources) = sources else { continue };
        let flags = &probe.config.clang_flags;
        if !settings.precompile_header
            || pch_steps.contains_key(flags)
            || !sources.bpf.iter().any(|s| uses_pch(s))
        {
            continue;
        }
        if let Some(header) = compiler.precompiled_header(&workspace.pch_dir(), flags) {
            let pch = plan.precompiled_headers.len();
            plan.precompiled_headers.push(header);
            let step = plan.add(Action::PrecompiledHeader { pch }, None, Vec::new());
            pch_steps.insert(flags.clone(), (pch, step));
        }
    }

    let mut lib_steps = Vec::new();
    let mut lib_objects = Vec::new();
    let lib_dir = workspace.lib_dir();
    let needs_lib = probes.iter().any(|p| p.userland() == Userland::C);
    if needs_lib && lib_dir.is_dir() {
        for source in paths::files_with_suffix(&lib_dir, ".c")? {
            let object = workspace.lib_output_dir().join(object_name(&source));
            lib_objects.push(object.clone());
            lib_steps.push(plan.add(Action::LibObject { source, object }, None, Vec::new()));
        }
    }

    for (index, (probe, sources)) in probes.iter().zip(sources).enumerate() {
        let sources = match sources {
            Ok(sources) => sources,
            Err(e) => {
                plan.unplannable.push((index, e));
                continue;
            }
        };
        let out_dir = workspace.probe_output_dir(&probe.name);
        let mut objects = Vec::new();
        let mut bpf_steps = Vec::new();
        let mut skeleton_steps = Vec::new();
        for source in &sources.bpf {
            let stem = stem(source, ".bpf.c");
            let object = out_dir.join(format!("{stem}.bpf.o"));
            let pch_entry = pch_steps
                .get(&probe.config.clang_flags)
                .filter(|_| uses_pch(source));
            bpf_steps.push(plan.add(
                Action::BpfObject {
                    source: source.clone(),
                    object: object.clone(),
                    pch: pch_entry.map(|(pch, _)| *pch),
                },
                Some(index),
                pch_entry.map(|(_, step)| *step).into_iter().collect(),
            ));
            objects.push(object);
        }
        if probe.userland() == Userland::Rust {
            plan.add(
                Action::RustSources { objects },
                Some(index),
                bpf_steps.clone(),
            );
            continue;
        }
        for (object, bpf_step) in objects.iter().zip(&bpf_steps) {
            let stem = stem(object, ".bpf.o");
            skeleton_steps.push(plan.add(
                Action::Skeleton {
                    object: object.clone(),
                    skeleton: out_dir.join(format!("{stem}.skel.h")),
                },
                Some(index),
                vec![*bpf_step],
            ));
        }
        let mut link_deps = lib_steps.clone();
        let mut link_objects = Vec::new();
        for source in &sources.user {
            let object = out_dir.join(object_name(source));
            // The loader includes its skeletons.
            link_deps.push(plan.add(
                Action::UserObject {
                    source: source.clone(),
                    object: object.clone(),
                },
                Some(index),
                skeleton_steps.clone(),
            ));
            link_objects.push(object);
        }
        link_objects.extend(lib_objects.iter().cloned());
        plan.add(
            Action::Link {
                objects: link_objects,
                binary: workspace.bin_dir().join(probe.binary_name()),
            },
            Some(index),
            link_deps,
        );
    }
    Ok(plan)
}

impl Plan {
    fn add(&mut self, action: Action, probe: Option<usize>, deps: Vec<usize>) -> usize {
        self.nodes.push(Node {
            step: Step { action, probe },
            deps,
        });
        self.nodes.len() - 1
    }
}

struct ProbeSources {
    bpf: Vec<PathBuf>,
    user: Vec<PathBuf>,
}

fn probe_sources(probe: &Probe) -> Result<ProbeSources> {
    let bpf = paths::files_with_suffix(&probe.dir, ".bpf.c")?;
    if bpf.is_empty() {
        bail!("`{}` has no *.bpf.c kernel program", probe.dir.display());
    }
    let user: Vec<PathBuf> = if probe.userland() == Userland::Rust {
        Vec::new()
    } else {
        paths::files_with_suffix(&probe.dir, ".c")?
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".bpf.c"))
            .collect()
    };
    if probe.userland() == Userland::C && user.is_empty() {
        bail!(
            "`{}` has no userland *.c file (expected `{}.c` with main() that loads the skeleton)",
            probe.dir.display(),
            probe.binary_name()
        );
    }
    Ok(ProbeSources { bpf, user })
}

/// Whether a BPF source can take the precompiled kernel header: the header is its first `#include` (directly or
/// through the SDK's `bpf.h`) and nothing before it defines a macro the header tests (such as
/// `BPF_NO_PRESERVE_ACCESS_INDEX`). The precompiled header comes before everything else in the source, so in
/// any other case it could change what the program means; those sources parse the header the plain way.
fn can_use_precompiled_header(source: &Path, tested: &BTreeSet<String>) -> bool {
    std::fs::read_to_string(source).is_ok_and(|text| starts_with_kernel_header(&text, tested))
}

fn starts_with_kernel_header(text: &str, tested: &BTreeSet<String>) -> bool {
    let mut in_comment = false;
    for line in text.lines() {
        let mut line = line.trim();
        if in_comment {
            match line.find("*/") {
                Some(end) => {
                    in_comment = false;
                    line = line[end + 2..].trim();
                }
                None => continue,
            }
        }
        if let Some(start) = line.strip_prefix("/*") {
            match start.find("*/") {
                Some(end) => line = start[end + 2..].trim(),
                None => {
                    in_comment = true;
                    continue;
                }
            }
        }
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let Some(directive) = line.strip_prefix('#').map(str::trim_start) else {
            return false;
        };
        if let Some(name) = directive.strip_prefix("include") {
            let name = name
                .trim()
                .trim_matches(|c| c == '"' || c == '<' || c == '>');
            return name == "vmlinux.h" || name == "bpf.h";
        }
        let Some(definition) = directive.strip_prefix("define") else {
            return false;
        };
        let macro_name: String = definition
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if tested.contains(&macro_name) {
            return false;
        }
    }
    false
}

/// The macros `#ifdef`/`#ifndef`/`defined()` tests in the kernel header and what it includes (`ext_def.h`).
fn macros_tested_by(headers: &[PathBuf]) -> BTreeSet<String> {
    let mut tested = BTreeSet::new();
    for header in headers {
        let Ok(text) = std::fs::read_to_string(header) else {
            continue;
        };
        for line in text.lines() {
            let Some(directive) = line.trim_start().strip_prefix('#').map(str::trim_start) else {
                continue;
            };
            let names = if let Some(rest) = directive
                .strip_prefix("ifndef")
                .or_else(|| directive.strip_prefix("ifdef"))
            {
                vec![rest]
            } else if directive.starts_with("if") {
                directive.split("defined").skip(1).collect()
            } else {
                continue;
            };
            for name in names {
                let name: String = name
                    .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    tested.insert(name);
                }
            }
        }
    }
    tested
}

fn stem(path: &Path, suffix: &str) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.strip_suffix(suffix).unwrap_or(&name).to_string()
}

fn object_name(source: &Path) -> String {
    format!("{}.o", stem(source, ".c"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sources_that_open_with_the_kernel_header_take_the_precompiled_one() {
        let tested: BTreeSet<String> = ["BPF_NO_PRESERVE_ACCESS_INDEX", "BPF_ANY"]
            .map(String::from)
            .into();
        let takes = |text: &str| starts_with_kernel_header(text, &tested);
        assert!(takes(
            "// x\n#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n"
        ));
        assert!(takes(
            "/* licence\n * more */\n#define BPF_PROG_KERN\n# include \"bpf.h\"\n"
        ));
        assert!(takes("#include <vmlinux.h>\n"));
        assert!(!takes("#include <linux/bpf.h>\n#include \"vmlinux.h\"\n"));
        assert!(!takes("// #include \"vmlinux.h\" is not used here\n"));
        assert!(!takes(
            "#define BPF_NO_PRESERVE_ACCESS_INDEX\n#include \"vmlinux.h\"\n"
        ));
        assert!(!takes("#ifdef X\n#include \"vmlinux.h\"\n#endif\n"));
        assert!(!takes("#include <bpf/bpf.h>\n"));
    }

    #[test]
    fn the_macros_a_header_tests_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let header = dir.path().join("h.h");
        std::fs::write(
            &header,
            "#ifndef __VMLINUX_H__\n#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n# ifdef A\n#if defined(B) && defined C\n#define D 1\n",
        )
        .unwrap();
        let tested = macros_tested_by(&[header, dir.path().join("missing.h")]);
        assert_eq!(
            tested.into_iter().collect::<Vec<_>>(),
            [
                "A",
                "B",
                "BPF_NO_PRESERVE_ACCESS_INDEX",
                "C",
                "__VMLINUX_H__"
            ]
        );
    }
}
