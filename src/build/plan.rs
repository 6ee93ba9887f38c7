//! The build graph of a workspace: every step of every selected probe (precompiled header, shared sources,
//! BPF objects, skeletons, userland C and C++ objects, links, shared libraries, Rust sources) with the steps each
//! one needs. Dependencies are right by construction: a loader object waits for every skeleton of its probe, a
//! link for every object it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use anyhow::Result;

use crate::core::artifacts::Installable;
use crate::core::compile::{define_flags, Compiler, LoaderHeader, PrecompiledHeader};
use crate::core::graph::Node;
use crate::core::probe::{Probe, Userland};
use crate::core::probe_flags::{probe_defines, probe_flags, shared_names, unique, ProbeFlags};
use crate::core::workspace::Workspace;
use crate::paths::normalize;

use super::prelude;

pub enum Action {
    PrecompiledHeader {
        pch: usize,
        /// The SDK header the prelude includes, for progress output.
        header: String,
    },
    /// The userland loaders' common prelude, precompiled by cc.
    LoaderHeader {
        pch: usize,
    },
    /// A source of a shared set, compiled once per set of probe defines for every probe that links it.
    SharedObject {
        compile: usize,
        source: PathBuf,
        object: PathBuf,
        cxx: bool,
    },
    /// A BPF source compiled with its DWARF (`<stem>.bpf.unstripped.o`), for `Strip`.
    BpfObject {
        source: PathBuf,
        object: PathBuf,
        /// The precompiled header to use, when the source includes the kernel header.
        pch: Option<usize>,
    },
    /// The BPF object (`<stem>.bpf.o`) from its unstripped compile, without DWARF (`llvm-strip -g`); the strip
    /// steps ready together run as one llvm-strip.
    Strip {
        unstripped: PathBuf,
        object: PathBuf,
    },
    Skeleton {
        object: PathBuf,
        skeleton: PathBuf,
    },
    UserObject {
        source: PathBuf,
        object: PathBuf,
        cxx: bool,
        /// Index into the probe's `[[library]]` list when the object belongs to a shared library.
        library: Option<usize>,
        /// The precompiled loader prelude to put first (`Plan::loader_headers`).
        pch: Option<usize>,
    },
    Link {
        objects: Vec<PathBuf>,
        binary: PathBuf,
        cxx: bool,
    },
    LinkLibrary {
        library: usize,
        objects: Vec<PathBuf>,
        output: PathBuf,
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
    /// What kind of step this is, as `--message-format json` names it.
    pub fn kind(&self) -> &'static str {
        match &self.action {
            Action::PrecompiledHeader { .. } | Action::LoaderHeader { .. } => "precompiled-header",
            Action::SharedObject { .. } => "shared-compile",
            Action::BpfObject { .. } => "bpf-compile",
            Action::Strip { .. } => "strip",
            Action::Skeleton { .. } => "skeleton",
            Action::UserObject { .. } => "compile",
            Action::Link { .. } => "link",
            Action::LinkLibrary { .. } => "link-library",
            Action::RustSources { .. } => "rust-sources",
        }
    }

    pub fn describe(&self, compiler: &Compiler, probes: &[Probe]) -> (&'static str, String) {
        let shown = |p: &Path| compiler.shown(p).display().to_string();
        match &self.action {
            Action::PrecompiledHeader { header, .. } => {
                ("Precompiling", format!("{header} (BPF prelude)"))
            }
            Action::LoaderHeader { .. } => ("Precompiling", "the loaders' headers".to_string()),
            Action::SharedObject { source, .. } => ("Compiling", shown(source)),
            Action::BpfObject { source, .. } => ("Compiling", shown(source)),
            Action::Strip { object, .. } => ("Stripping", shown(object)),
            Action::Skeleton { skeleton, .. } => ("Generating", shown(skeleton)),
            Action::UserObject { source, .. } => ("Compiling", shown(source)),
            Action::Link { binary, .. } => ("Linking", shown(binary)),
            Action::LinkLibrary { output, .. } => ("Linking", shown(output)),
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

/// How one shared set is compiled for a group of probes with the same defines.
pub struct SharedCompile {
    pub set: String,
    pub includes: Vec<PathBuf>,
    /// The probes' `-D` defines.
    pub flags: Vec<String>,
}

pub struct Plan {
    pub nodes: Vec<Node<Step>>,
    pub precompiled_headers: Vec<PrecompiledHeader>,
    pub loader_headers: Vec<LoaderHeader>,
    pub probe_flags: Vec<ProbeFlags>,
    pub shared_compiles: Vec<SharedCompile>,
    /// Per probe: standalone objects and libraries it installs.
    pub installables: Vec<Vec<Installable>>,
    /// Probes that could not even be planned (no `*.bpf.c`, no userland, a bad pattern), with why.
    pub unplannable: Vec<(usize, anyhow::Error)>,
}

pub struct PlanSettings<'a> {
    pub workspace: &'a Workspace,
    pub probes: &'a [Probe],
    pub compiler: &'a Compiler,
    /// Use a precompiled kernel header for BPF programs that include it.
    pub precompile_header: bool,
    /// Plan the C probes' skeletons, userland and links (a build for another architecture without a cross
    /// compiler plans BPF objects only).
    pub c_userland: bool,
    /// Plan the Rust probes' generated sources, for the cargo run after the graph.
    pub rust_userland: bool,
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
        loader_headers: Vec::new(),
        probe_flags: Vec::new(),
        shared_compiles: Vec::new(),
        installables: vec![Vec::new(); probes.len()],
        unplannable: Vec::new(),
    };
    let shared_sets = workspace.shared_sets()?;
    let mut sources = Vec::new();
    for probe in probes {
        let probe_sources = probe.sources().and_then(|s| {
            let shared = shared_names(workspace, probe, &shared_sets)?;
            Ok((s, shared))
        });
        plan.probe_flags.push(match &probe_sources {
            Ok((_, shared)) => probe_flags(workspace, probe, &shared_sets, shared),
            Err(_) => ProbeFlags::default(),
        });
        sources.push(probe_sources);
    }

    // The precompiled headers go first: every BPF compile whose prelude can be precompiled waits for one.
    // First each distinct prelude (the probe's BPF flags, the prelude's text, its own dirs) and its sources.
    let mut preludes: BTreeMap<PreludeKey, PlannedPrelude> = BTreeMap::new();
    let mut source_pch: BTreeMap<PathBuf, (usize, usize)> = BTreeMap::new();
    let mut source_prelude: Vec<(PathBuf, PreludeKey)> = Vec::new();
    // Each kernel header's bytes, read once (megabytes; a no-op build plans too).
    let mut kernel_headers: BTreeMap<PathBuf, Option<Vec<u8>>> = BTreeMap::new();
    if settings.precompile_header && compiler.has_kernel_header() {
        for (index, sources) in sources.iter().enumerate() {
            let Ok((sources, _)) = sources else { continue };
            let flags = plan.probe_flags[index].bpf_flags.clone();
            let macros = prelude::command_line_macros(&compiler.bpf_flags(&flags));
            for bpf in &sources.bpf {
                let Some((prelude, header_file)) =
                    shareable_prelude(workspace, &bpf.source, &macros)
                else {
                    continue;
                };
                // A probe's own clang flags may name its files (`-include local.h`): its header is compiled
                // with its whole include path. Otherwise the SDK's, which every probe's starts with.
                let own_dirs = if probe_clang_flags(&probes[index]).is_empty() {
                    Vec::new()
                } else {
                    plan.probe_flags[index].bpf_includes.clone()
                };
                let key = (flags.clone(), prelude.text.clone(), own_dirs.clone());
                source_prelude.push((bpf.source.clone(), key.clone()));
                preludes.entry(key).or_insert_with(|| {
                    let chain = match own_dirs.is_empty() {
                        true => chainable(&prelude, &macros, &header_file, &mut kernel_headers),
                        false => None,
                    };
                    PlannedPrelude {
                        include_dirs: if own_dirs.is_empty() {
                            workspace.layout.include_dirs.clone()
                        } else {
                            own_dirs
                        },
                        prelude,
                        header_file,
                        chain,
                    }
                });
            }
        }
    }
    // Preludes of the same flags that all open with the kernel header share one precompiled kernel header, and
    // each is precompiled on top of it (a few ms instead of re-parsing the kernel header); alone, a prelude
    // gains nothing from it.
    let mut chain_users: BTreeMap<(Vec<String>, PathBuf), usize> = BTreeMap::new();
    for ((flags, _, _), planned) in &preludes {
        if let Some(kernel_header) = &planned.chain {
            *chain_users
                .entry((flags.clone(), kernel_header.clone()))
                .or_default() += 1;
        }
    }
    let mut bases: BTreeMap<(Vec<String>, PathBuf), (usize, usize)> = BTreeMap::new();
    let mut pch_steps: BTreeMap<PreludeKey, (usize, usize)> = BTreeMap::new();
    for (key, planned) in &preludes {
        let flags = &key.0;
        let base = planned
            .chain
            .as_ref()
            .filter(|k| chain_users[&(flags.clone(), (*k).clone())] > 1)
            .map(|kernel_header| {
                *bases
                    .entry((flags.clone(), kernel_header.clone()))
                    .or_insert_with(|| {
                        let text = format!("#include \"{}\"\n", kernel_header.display());
                        plan.add_precompiled_header(
                            compiler.precompiled_header(
                                &workspace.pch_dir(),
                                flags,
                                (&text, kernel_header),
                                &planned.include_dirs,
                            ),
                            "the kernel header",
                            Vec::new(),
                        )
                    })
            });
        let mut pch_flags = flags.clone();
        if let Some((base_pch, _)) = base {
            pch_flags.push("-include-pch".to_string());
            pch_flags.push(
                compiler
                    .shown(&plan.precompiled_headers[base_pch].path)
                    .display()
                    .to_string(),
            );
        }
        let entry = plan.add_precompiled_header(
            compiler.precompiled_header(
                &workspace.pch_dir(),
                &pch_flags,
                (&planned.prelude.text, &planned.header_file),
                &planned.include_dirs,
            ),
            &planned.prelude.header,
            base.map(|(_, step)| step).into_iter().collect(),
        );
        pch_steps.insert(key.clone(), entry);
    }
    for (source, key) in source_prelude {
        source_pch.insert(source, pch_steps[&key]);
    }

    // Shared sets: compiled once per (set, probe defines) for the C probes that link them.
    // (set, defines) → (steps, objects).
    let mut shared_steps: BTreeMap<(String, Vec<String>), SharedSteps> = BTreeMap::new();
    // Loader sources with a precompilable prelude: source → (the probe's cflags, the prelude's text); that key →
    // (loader header, its step).
    let loader_preludes = loader_preludes(settings, &plan, &sources);
    let mut loader_steps: BTreeMap<LoaderKey, (usize, usize)> = BTreeMap::new();
    for (index, (probe, sources)) in probes.iter().zip(&sources).enumerate() {
        let Ok((_, shared)) = sources else { continue };
        if probe.userland() != Userland::C || !settings.c_userland {
            continue;
        }
        let defines = define_flags(&probe_defines(workspace, probe));
        for name in shared {
            let key = (name.clone(), defines.clone());
            if shared_steps.contains_key(&key) {
                continue;
            }
            let set = shared_sets
                .iter()
                .find(|s| &s.name == name)
                .expect("shared names are checked when planned");
            let out_dir = match defines.is_empty() {
                true => workspace.shared_output_dir(name),
                false => workspace
                    .shared_output_dir(name)
                    .join(format!("d-{:08x}", fnv1a32(defines.join(" ").as_bytes()))),
            };
            let compile = plan.shared_compiles.len();
            plan.shared_compiles.push(SharedCompile {
                set: name.clone(),
                includes: unique(
                    workspace
                        .layout
                        .include_dirs
                        .iter()
                        .chain(&set.dirs)
                        .cloned(),
                ),
                flags: defines.clone(),
            });
            let mut steps = Vec::new();
            let mut objects = Vec::new();
            let mut names = BTreeSet::new();
            for (source, cxx) in set
                .c
                .iter()
                .map(|s| (s, false))
                .chain(set.cxx.iter().map(|s| (s, true)))
            {
                let object_name = object_name(source);
                if !names.insert(object_name.clone()) {
                    plan.unplannable.push((
                        index,
                        anyhow::anyhow!(
                            "shared set `{name}` has two sources that compile to `{object_name}` (`{}` is one); rename one",
                            source.display()
                        ),
                    ));
                    continue;
                }
                let object = out_dir.join(object_name);
                objects.push(object.clone());
                steps.push(plan.add(
                    Action::SharedObject {
                        compile,
                        source: source.clone(),
                        object,
                        cxx,
                    },
                    None,
                    Vec::new(),
                ));
            }
            shared_steps.insert(key, (steps, objects));
        }
    }

    for (index, (probe, sources)) in probes.iter().zip(sources).enumerate() {
        let (sources, shared) = match sources {
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
        let mut skeleton_objects = Vec::new();
        for bpf in &sources.bpf {
            let object = out_dir.join(format!("{}.bpf.o", bpf.relative_stem.display()));
            let unstripped =
                out_dir.join(format!("{}.bpf.unstripped.o", bpf.relative_stem.display()));
            let pch_entry = source_pch.get(&bpf.source).copied();
            let compile = plan.add(
                Action::BpfObject {
                    source: bpf.source.clone(),
                    object: unstripped.clone(),
                    pch: pch_entry.map(|(pch, _)| pch),
                },
                Some(index),
                pch_entry.map(|(_, step)| step).into_iter().collect(),
            );
            let step = plan.add(
                Action::Strip {
                    unstripped,
                    object: object.clone(),
                },
                Some(index),
                vec![compile],
            );
            bpf_steps.push(step);
            if let Some(subdir) = &bpf.install {
                plan.installables[index].push(Installable {
                    path: object.clone(),
                    subdir: subdir.clone(),
                });
            }
            if bpf.skeleton {
                skeleton_objects.push((object.clone(), step, bpf));
            }
            objects.push(object);
        }
        if probe.userland() == Userland::Rust {
            if settings.rust_userland {
                plan.add(
                    Action::RustSources { objects },
                    Some(index),
                    bpf_steps.clone(),
                );
            }
            continue;
        }
        if !settings.c_userland {
            continue;
        }
        for (object, bpf_step, bpf) in skeleton_objects {
            skeleton_steps.push(plan.add(
                Action::Skeleton {
                    object,
                    skeleton: out_dir.join(format!("{}.skel.h", bpf.relative_stem.display())),
                },
                Some(index),
                vec![bpf_step],
            ));
        }
        // Standalone objects are installed, and loaded at run time: the probe is built only with them.
        let mut link_deps: Vec<usize> = bpf_steps.clone();
        let mut link_objects = Vec::new();
        let cxx = !sources.cxx.is_empty();
        for (source, is_cxx) in sources
            .c
            .iter()
            .map(|s| (s, false))
            .chain(sources.cxx.iter().map(|s| (s, true)))
        {
            let object = out_dir.join(mirrored_object(&probe.dir, source));
            let mut deps = skeleton_steps.clone();
            let pch = loader_preludes.get(source).map(|key| {
                let (pch, step) = match loader_steps.get(key) {
                    Some(entry) => *entry,
                    None => {
                        let header = compiler.loader_header(
                            &workspace.pch_dir(),
                            &key.0,
                            &key.1,
                            &workspace.layout.include_dirs,
                        );
                        let pch = plan.loader_headers.len();
                        plan.loader_headers.push(header);
                        let step = plan.add(Action::LoaderHeader { pch }, None, Vec::new());
                        loader_steps.insert(key.clone(), (pch, step));
                        (pch, step)
                    }
                };
                deps.push(step);
                pch
            });
            // The loader includes its skeletons.
            link_deps.push(plan.add(
                Action::UserObject {
                    source: source.clone(),
                    object: object.clone(),
                    cxx: is_cxx,
                    library: None,
                    pch,
                },
                Some(index),
                deps,
            ));
            link_objects.push(object);
        }
        let defines = define_flags(&probe_defines(workspace, probe));
        let mut links_cxx = cxx;
        for name in &shared {
            let (steps, shared_objects) = &shared_steps[&(name.clone(), defines.clone())];
            link_deps.extend(steps);
            link_objects.extend(shared_objects.iter().cloned());
            links_cxx |= shared_sets
                .iter()
                .any(|s| &s.name == name && !s.cxx.is_empty());
        }
        for (number, library) in probe.config.library.iter().enumerate() {
            let mut library_objects = Vec::new();
            let mut library_steps = Vec::new();
            for source in &library.sources {
                let source = normalize(&probe.dir.join(source));
                let object = out_dir
                    .join("lib")
                    .join(&library.name)
                    .join(mirrored_object(&probe.dir, &source));
                library_steps.push(plan.add(
                    Action::UserObject {
                        source,
                        object: object.clone(),
                        cxx: false,
                        library: Some(number),
                        pch: None,
                    },
                    Some(index),
                    skeleton_steps.clone(),
                ));
                library_objects.push(object);
            }
            let output = out_dir.join(&library.name);
            plan.installables[index].push(Installable {
                path: output.clone(),
                subdir: library.install.clone().unwrap_or_else(|| ".".into()),
            });
            link_deps.push(plan.add(
                Action::LinkLibrary {
                    library: number,
                    objects: library_objects,
                    output,
                },
                Some(index),
                library_steps,
            ));
        }
        plan.add(
            Action::Link {
                objects: link_objects,
                binary: workspace.bin_dir().join(probe.binary_name()),
                cxx: links_cxx,
            },
            Some(index),
            link_deps,
        );
    }
    Ok(plan)
}

impl Plan {
    /// A BPF precompiled header and the step that makes it (`header` names what it holds, for progress output):
    /// its index in `precompiled_headers`, and the step's.
    fn add_precompiled_header(
        &mut self,
        pch: PrecompiledHeader,
        header: &str,
        deps: Vec<usize>,
    ) -> (usize, usize) {
        let index = self.precompiled_headers.len();
        self.precompiled_headers.push(pch);
        let step = self.add(
            Action::PrecompiledHeader {
                pch: index,
                header: header.to_string(),
            },
            None,
            deps,
        );
        (index, step)
    }

    fn add(&mut self, action: Action, probe: Option<usize>, deps: Vec<usize>) -> usize {
        let cost = estimated_cost(&action);
        let batch = matches!(action, Action::Strip { .. });
        self.nodes.push(Node {
            step: Step { action, probe },
            deps,
            cost,
            batch,
        });
        self.nodes.len() - 1
    }
}

/// A step's typical CPU time in milliseconds on a small probe (measured on the 24-probe benchmark), for the graph
/// to start the longest chains first: only the proportions matter. The kernel header dominates: precompiling a
/// prelude costs twice a BPF compile without one, which costs four times a compile with one.
fn estimated_cost(action: &Action) -> u64 {
    match action {
        Action::PrecompiledHeader { .. } => 470,
        Action::LoaderHeader { .. } => 60,
        Action::BpfObject { pch: None, .. } => 240,
        Action::BpfObject { pch: Some(_), .. } => 60,
        // llvm-strip's start (loading libLLVM) is most of it; a batch pays it once.
        Action::Strip { .. } => 12,
        Action::Skeleton { .. } => 5,
        Action::SharedObject { cxx: true, .. } | Action::UserObject { cxx: true, .. } => 300,
        Action::SharedObject { .. } | Action::UserObject { .. } => 80,
        Action::Link { .. } | Action::LinkLibrary { .. } => 20,
        Action::RustSources { .. } => 20,
    }
}

/// What makes two sources share a precompiled prelude: the probe's BPF flags, the prelude's text, and (for a
/// probe whose clang flags may name its own files) its include dirs.
type PreludeKey = (Vec<String>, String, Vec<PathBuf>);

/// The clang flags a probe's probe.toml gives (not its defines): they may name the probe's own files.
fn probe_clang_flags(probe: &Probe) -> &[String] {
    &probe.config.clang_flags
}

/// A shared set's compile steps for one set of probe defines, and the objects they make.
type SharedSteps = (Vec<usize>, Vec<PathBuf>);

/// The object of `source` under a probe's output dir, mirroring its path in the probe dir
/// (`protocol/http/x.c` → `protocol/http/x.o`); a source outside it (`../lib/pystack/a.c`) goes under `_up_/`.
fn mirrored_object(probe_dir: &Path, source: &Path) -> PathBuf {
    let relative = crate::paths::relative(source, probe_dir);
    let mut object = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::ParentDir => object.push("_up_"),
            Component::Normal(name) => object.push(name),
            _ => {}
        }
    }
    object.set_extension("o");
    object
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// The prelude of a BPF source when a precompiled header of it may be shared: it can be run twice (see
/// `prelude`), and its header is an SDK header with an include guard, found in the SDK include dirs and not in
/// the source's own directory (every probe's compile then resolves it to the same file).
fn shareable_prelude(
    workspace: &Workspace,
    source: &Path,
    macros: &prelude::Macros,
) -> Option<(prelude::Prelude, PathBuf)> {
    let text = std::fs::read_to_string(source).ok()?;
    let prelude = prelude::prelude_of(&text, macros)?;
    if prelude.quoted && source.parent()?.join(&prelude.header).exists() {
        return None;
    }
    let header = workspace
        .layout
        .include_dirs
        .iter()
        .map(|dir| dir.join(&prelude.header))
        .find(|path| path.is_file())?;
    let header_text = std::fs::read(&header).ok()?;
    prelude::has_include_guard(&String::from_utf8_lossy(&header_text)).then_some((prelude, header))
}

/// One BPF prelude to precompile, and the kernel header it may be chained on (see `chainable`).
struct PlannedPrelude {
    prelude: prelude::Prelude,
    header_file: PathBuf,
    include_dirs: Vec<PathBuf>,
    chain: Option<PathBuf>,
}

/// The kernel header `prelude`'s precompiled header may be chained on: the one beside its SDK header (what that
/// header's `#include "vmlinux.h"` finds first), when the SDK header includes it first for this prelude and the
/// kernel header never mentions a macro defined before it (see `prelude::chain_on_kernel_header`).
fn chainable(
    prelude: &prelude::Prelude,
    macros: &prelude::Macros,
    sdk_header: &Path,
    kernel_headers: &mut BTreeMap<PathBuf, Option<Vec<u8>>>,
) -> Option<PathBuf> {
    let sdk_text = std::fs::read_to_string(sdk_header).ok()?;
    let defined_before = prelude::chain_on_kernel_header(prelude, macros, &sdk_text)?;
    let kernel_header = sdk_header.parent()?.join("vmlinux.h");
    let kernel_text = kernel_headers
        .entry(kernel_header.clone())
        .or_insert_with_key(|path| std::fs::read(path).ok())
        .as_deref()?;
    defined_before
        .iter()
        .all(|name| memchr::memmem::find(kernel_text, name.as_bytes()).is_none())
        .then_some(kernel_header)
}

/// What makes two loaders share a precompiled prelude: the probe's cflags and the prelude's text.
type LoaderKey = (Vec<String>, String);

/// The C loader sources (not libraries') with a precompilable prelude, each with its key. Whether a loader uses one
/// does not depend on which other probes are selected, so `-b <probe>` runs the same commands as `-b`.
fn loader_preludes(
    settings: &PlanSettings,
    plan: &Plan,
    sources: &[Result<(crate::core::probe::ProbeSources, Vec<String>)>],
) -> BTreeMap<PathBuf, LoaderKey> {
    let mut by_source = BTreeMap::new();
    if !settings.precompile_header || !settings.c_userland {
        return by_source;
    }
    // Every loader includes much the same headers: each is read once to find its guard.
    let mut guarded = BTreeMap::new();
    for (index, (probe, sources)) in settings.probes.iter().zip(sources).enumerate() {
        let Ok((sources, _)) = sources else { continue };
        if probe.userland() != Userland::C {
            continue;
        }
        let flags = &plan.probe_flags[index];
        for source in &sources.c {
            let prelude = loader_prelude(
                settings.workspace,
                settings.compiler,
                (source, flags),
                &mut guarded,
            );
            if let Some(text) = prelude {
                by_source.insert(source.clone(), (flags.cflags.clone(), text));
            }
        }
    }
    by_source
}

/// The prelude a loader `source` may share precompiled with other probes' (`prelude::include_run_of`): its leading
/// includes, each an SDK header (found in the SDK include dirs, not beside the source) or a system header (found in
/// libbpf's or the system's include dirs and in none of the probe's own), with an include guard. `None` when the
/// source opens otherwise.
fn loader_prelude(
    workspace: &Workspace,
    compiler: &Compiler,
    (source, flags): (&Path, &ProbeFlags),
    guarded: &mut BTreeMap<PathBuf, bool>,
) -> Option<String> {
    let text = std::fs::read_to_string(source).ok()?;
    let sdk = &workspace.layout.include_dirs;
    let own: Vec<&PathBuf> = flags
        .user_includes
        .iter()
        .filter(|d| !sdk.contains(d))
        .collect();
    let macros = prelude::command_line_macros(&compiler.user_define_flags(&flags.cflags));
    let beside = source.parent()?;
    prelude::include_run_of(&text, &macros, |header, quoted| {
        if quoted && beside.join(header).exists() {
            return false;
        }
        let found = match sdk.iter().map(|d| d.join(header)).find(|p| p.is_file()) {
            Some(path) => path,
            None if own.iter().any(|d| d.join(header).exists()) => return false,
            None => match compiler.system_header(header) {
                Some(path) => path,
                None => return false,
            },
        };
        *guarded.entry(found).or_insert_with_key(|path| {
            std::fs::read(path)
                .is_ok_and(|bytes| prelude::has_include_guard(&String::from_utf8_lossy(&bytes)))
        })
    })
}

/// `x.c` / `x.cpp` → `x.o`.
fn object_name(source: &Path) -> String {
    let mut name = PathBuf::from(source.file_name().unwrap_or_default());
    name.set_extension("o");
    name.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_mirror_their_source_paths_and_stay_inside() {
        let dir = Path::new("/w/src/l7probe");
        assert_eq!(
            mirrored_object(dir, Path::new("/w/src/l7probe/protocol/http/h.c")),
            Path::new("protocol/http/h.o")
        );
        assert_eq!(
            mirrored_object(dir, Path::new("/w/src/lib/pystack/a.c")),
            Path::new("_up_/lib/pystack/a.o")
        );
        assert_eq!(object_name(Path::new("/c/json_tool.cpp")), "json_tool.o");
    }
}
