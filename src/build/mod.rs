//! `-b/--build`: selects the kernel header and libbpf, plans every step of every selected probe as one graph
//! (`plan`), runs it in parallel and incrementally (`graph`, `fresh`), then builds the Rust probes with one
//! cargo run. One probe's failure does not stop the others.

pub mod cross;
pub mod plan;
pub mod prelude;
pub mod rust;

use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::core::artifacts::BuiltProbe;
use crate::core::compile::{set_executable, Compiler, CompilerSettings};
use crate::core::graph::{self, Status};
use crate::core::probe::{Probe, Userland};
use crate::core::progress::{Console, Progress};
use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use crate::core::{header, lock};
use crate::paths;
use crate::tool::ProcessError;
use plan::{Action, Plan, PlanSettings, Step};

pub struct BuildOptions {
    /// `-d`: adds `-DGOPHER_DEBUG`.
    pub debug: bool,
    pub jobs: usize,
    pub verbose: bool,
    /// The kernel to build for (`$VMLINUX_VER`, else `uname -r`).
    pub kernel_release: String,
    /// `$BUILD_OPTS`, split on whitespace.
    pub build_opts: Vec<String>,
    /// `--libbpf`: which libbpf C probes compile against and link.
    pub libbpf: crate::libbpf::Policy,
    /// Precompile the kernel header once for all BPF programs (`EBPF_PROBE_PCH=0` turns it off).
    pub precompile_header: bool,
    /// A step running longer is named on the progress output (`EBPF_PROBE_SLOW_SECONDS`, default 60).
    pub slow_step: std::time::Duration,
    /// `--message-format json`: a JSON line on stdout per step, compiler diagnostic and the result.
    pub json_messages: bool,
}

/// Builds the selected probes (whose `.meta` the selection has checked).
pub fn build(
    workspace: &Workspace,
    selection: &Selection,
    options: &BuildOptions,
) -> Result<Vec<BuiltProbe>> {
    let probes = &selection.probes;
    if probes.is_empty() {
        eprintln!(
            "warning: no probes to build in `{}`",
            workspace.probes_dir().display()
        );
        return Ok(Vec::new());
    }
    check_unique_binaries(probes)?;
    let _lock = lock::lock_output_dir(&workspace.lock_dir())?;
    remove_abandoned_temp_files(&workspace.output_dir());
    let kernel_header = header::select_vmlinux_header(workspace, &options.kernel_release)?;
    let libbpf = crate::libbpf::select(&workspace.manifest.libbpf, &options.libbpf, options.jobs)?;
    let output = Console::detect().with_json(options.json_messages);
    let compiler = Compiler::new(&CompilerSettings {
        libbpf: &libbpf,
        root: &workspace.root,
        state_dir: &workspace.output_dir(),
        kernel_release: &options.kernel_release,
        kernel_header: Some(&kernel_header),
        debug: options.debug,
        build_opts: &options.build_opts,
        build: &workspace.manifest.build,
        verbose: options.verbose,
        target: None,
        output: output.clone(),
    })?;
    if options.verbose {
        output.println(&format!("       Using {}", libbpf.reason));
    }
    let skelgen = if probes.iter().any(|p| p.userland() == Userland::Rust) {
        Some(rust::build_skelgen(workspace, options.verbose)?)
    } else {
        None
    };

    let started = Instant::now();
    let plan = plan::plan(&PlanSettings {
        workspace,
        probes,
        compiler: &compiler,
        precompile_header: options.precompile_header,
        c_userland: true,
        rust_userland: true,
    })?;
    let mut failed: Vec<usize> = Vec::new();
    for (index, error) in &plan.unplannable {
        output.println(&format!(
            "error: probe `{}` failed to build: {error:#}\n",
            probes[*index].name
        ));
        failed.push(*index);
    }
    let statuses = run_plan(
        &plan,
        &RunContext {
            workspace,
            selection,
            probes,
            compiler: &compiler,
            skelgen: skelgen.as_deref(),
            output: &output,
            jobs: options.jobs,
            slow_step: options.slow_step,
            started: Instant::now(),
        },
    );
    prune_precompiled_headers(workspace, &plan);
    // Editors and clang tools read the compiles from here (a file we did not write is kept).
    match crate::core::compile_db::update(
        &workspace.root,
        &workspace.output_dir(),
        compiler.compile_commands(),
    ) {
        Ok(Some(note)) => output.println(&note),
        Ok(None) => {}
        Err(e) => output.println(&format!("warning: {e:#}")),
    }

    let mut finished: Vec<(usize, Result<Option<BuiltProbe>>)> = Vec::new();
    for (node, status) in plan.nodes.iter().zip(&statuses) {
        let Some(index) = node.step.probe else {
            continue;
        };
        if !node.step.is_final() {
            continue;
        }
        let result = match (status, &node.step.action) {
            (Status::Ran | Status::Fresh, Action::Link { binary, .. }) => Ok(Some(BuiltProbe {
                name: probes[index].name.clone(),
                binary: binary.clone(),
                installables: plan.installables[index].clone(),
            })),
            (Status::Ran | Status::Fresh, _) => Ok(None),
            // Failed here, or skipped because an earlier step failed: the error is printed already.
            _ => Err(anyhow::anyhow!("its errors are above")),
        };
        finished.push((index, result));
    }
    finished.sort_by_key(|(index, _)| *index);
    let results = finish_rust_probes(workspace, selection, &plan, finished, options.verbose)?;

    let mut built = Vec::new();
    for (index, result) in results {
        match result {
            Ok(b) => built.push(b),
            Err(_) => failed.push(index),
        }
    }
    if !failed.is_empty() {
        failed.sort();
        failed.dedup();
        let names: Vec<&str> = failed.iter().map(|i| probes[*i].name.as_str()).collect();
        output.record(&build_finished(&built, &names));
        bail!(
            "{} of {} probes failed to build: {} (their errors are above; {} built)",
            failed.len(),
            probes.len(),
            names.join(", "),
            built.len()
        );
    }
    output.record(&build_finished(&built, &[]));
    eprintln!(
        "    Finished {} probe{} in {:.2}s",
        built.len(),
        if built.len() == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64()
    );
    Ok(built)
}

/// The last JSON record of a build: whether it succeeded, the probes built and the ones that failed.
fn build_finished(built: &[BuiltProbe], failed: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "reason": "build-finished",
        "success": failed.is_empty(),
        "built": built.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        "failed": failed,
    })
}

/// The `step` record of a step that ran, was fresh or failed: `id` and `deps` (the steps it waited for) let a
/// reader rebuild the graph, e.g. the benchmark's critical path.
fn step_record(
    (id, node): (usize, &graph::Node<Step>),
    probes: &[Probe],
    commands: &[String],
    elapsed: std::time::Duration,
    outcome: &str,
) -> serde_json::Value {
    let step = &node.step;
    serde_json::json!({
        "reason": "step",
        "id": id,
        "deps": node.deps,
        "probe": step.probe.map(|p| probes[p].name.as_str()),
        "kind": step.kind(),
        "command": (!commands.is_empty()).then(|| commands.join(" && ")),
        "duration_ms": elapsed.as_millis() as u64,
        "outcome": outcome,
    })
}

struct RunContext<'a> {
    workspace: &'a Workspace,
    selection: &'a Selection,
    probes: &'a [Probe],
    compiler: &'a Compiler,
    skelgen: Option<&'a std::path::Path>,
    output: &'a Console,
    jobs: usize,
    /// How long a step may run before it is named as slow.
    slow_step: std::time::Duration,
    /// When the graph started: step records say when each step started, relative to it.
    started: Instant,
}

/// Runs the graph with progress output; failures are printed as they happen, each naming its probe.
fn run_plan(plan: &Plan, context: &RunContext) -> Vec<Status> {
    // One line per worker that can be busy: the graph starts no more workers than there are steps.
    let workers = context.jobs.clamp(1, plan.nodes.len().max(1));
    let progress = Progress::new(context.output, plan.nodes.len(), workers);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        // A step running far longer than steps do (a hung compiler) is named, rather than a silent build. The
        // watchdog wakes at once when the graph is done, so it costs a no-op build nothing.
        let progress = &progress;
        scope.spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                finished.recv_timeout(std::time::Duration::from_millis(200))
            {
                progress.report_slow_steps(context.slow_step);
            }
        });
        let statuses = run_steps(plan, context, progress);
        drop(done);
        statuses
    })
}

fn run_steps(plan: &Plan, context: &RunContext, progress: &Progress) -> Vec<Status> {
    graph::run_graph_batched(
        &plan.nodes,
        context.jobs,
        |indices, worker| {
            let first = &plan.nodes[indices[0]].step;
            let (verb, label) = match (&first.action, indices.len()) {
                (Action::Strip { .. }, many) if many > 1 => (
                    "Stripping",
                    format!("{many} BPF objects (one llvm-strip -g)"),
                ),
                _ => first.describe(context.compiler, context.probes),
            };
            progress.started(worker, &format!("{verb} {label}"));
            let started = Instant::now();
            context.output.take_step_commands();
            let results: Vec<Result<bool>> = match &first.action {
                Action::Strip { .. } => {
                    let pairs: Vec<_> = indices
                        .iter()
                        .map(|&index| match &plan.nodes[index].step.action {
                            Action::Strip { unstripped, object } => {
                                (unstripped.clone(), object.clone())
                            }
                            _ => unreachable!("only strip steps are batched"),
                        })
                        .collect();
                    context.compiler.strip_objects(&pairs)
                }
                _ => indices
                    .iter()
                    .map(|&index| execute(&plan.nodes[index].step, plan, context))
                    .collect(),
            };
            progress.idle(worker);
            let elapsed = started.elapsed();
            let ran = results.iter().any(|r| matches!(r, Ok(true)));
            if results.iter().all(|r| r.is_ok()) {
                progress.finished(verb, &label, ran, elapsed);
            }
            // A batch is one line of progress, and one step of the bar per step.
            for result in results.iter().skip(1) {
                if result.is_ok() {
                    progress.finished("", "", false, Default::default());
                }
            }
            if context.output.json() {
                let commands = context.output.take_step_commands();
                for (&index, result) in indices.iter().zip(&results) {
                    if let Err(error) = result {
                        // A failed compile's diagnostics are in its ProcessError (a successful one's were read by
                        // the compiler as it printed them).
                        if let Some(failure) =
                            error.chain().find_map(|e| e.downcast_ref::<ProcessError>())
                        {
                            context.output.diagnostics(&failure.stderr);
                        }
                    }
                    let outcome = match result {
                        Ok(true) => "ran",
                        Ok(false) => "fresh",
                        Err(_) => "failed",
                    };
                    let mut record = step_record(
                        (index, &plan.nodes[index]),
                        context.probes,
                        &commands,
                        // Each step of a batch gets its share of the one command's time.
                        elapsed / indices.len() as u32,
                        outcome,
                    );
                    if indices.len() > 1 {
                        record["batch"] = indices.len().into();
                    }
                    record["start_ms"] =
                        (started.duration_since(context.started).as_millis() as u64).into();
                    record["worker"] = worker.into();
                    context.output.record(&record);
                }
            }
            results
        },
        |index, status| {
            let step = &plan.nodes[index].step;
            match status {
                Status::Failed(error) => {
                    progress.finished("", "", false, Default::default());
                    let what = match step.probe {
                        Some(probe) => format!("probe `{}`", context.probes[probe].name),
                        None => match &step.action {
                            Action::SharedObject { compile, .. } => format!(
                                "the shared source set `{}`",
                                plan.shared_compiles[*compile].set
                            ),
                            _ => "a step every probe shares".to_string(),
                        },
                    };
                    progress.println(&format!("error: {what} failed to build: {error:#}\n"));
                }
                Status::Skipped { .. } => progress.finished("", "", false, Default::default()),
                Status::Ran | Status::Fresh => {
                    if let (Some(probe), Action::Link { binary, .. }) = (step.probe, &step.action) {
                        progress.println(&format!(
                            "{:>12} {} → {}",
                            if matches!(status, Status::Fresh) {
                                "Fresh"
                            } else {
                                "Built"
                            },
                            context.probes[probe].name,
                            context.compiler.shown(binary).display(),
                        ));
                    }
                }
            }
        },
    )
}

fn execute(step: &Step, plan: &Plan, context: &RunContext) -> Result<bool> {
    let RunContext {
        workspace,
        probes,
        compiler,
        ..
    } = *context;
    let probe = step.probe.map(|p| (&probes[p], &plan.probe_flags[p]));
    match &step.action {
        Action::PrecompiledHeader { pch, .. } => {
            compiler.build_precompiled_header(&plan.precompiled_headers[*pch])
        }
        Action::LoaderHeader { pch } => compiler.build_loader_header(&plan.loader_headers[*pch]),
        Action::SharedObject {
            compile,
            source,
            object,
            cxx,
        } => {
            let compile = &plan.shared_compiles[*compile];
            if *cxx {
                compiler.cxx_object(source, object, &compile.includes, &compile.flags)
            } else {
                compiler.c_object(source, object, &compile.includes, &compile.flags, None)
            }
        }
        Action::Strip { unstripped, object } => compiler
            .strip_objects(&[(unstripped.clone(), object.clone())])
            .pop()
            .expect("one result per object"),
        Action::BpfObject {
            source,
            object,
            pch,
        } => {
            let (_, flags) = probe.expect("a BPF object belongs to a probe");
            compiler.bpf_object_unstripped(
                source,
                object,
                &flags.bpf_includes,
                &flags.bpf_flags,
                pch.map(|p| &plan.precompiled_headers[p]),
            )
        }
        Action::Skeleton { object, skeleton } => compiler.skeleton(object, skeleton),
        Action::UserObject {
            source,
            object,
            cxx,
            library,
            pch,
        } => {
            let (probe, flags) = probe.expect("a userland object belongs to a probe");
            match library {
                Some(number) => {
                    let library = &probe.config.library[*number];
                    let mut includes = flags.user_includes.clone();
                    includes.extend(library.includes.iter().map(|d| probe.dir.join(d)));
                    if library.jni {
                        includes.extend(crate::toolchain::jni_include_dirs().with_context(
                            || {
                                format!(
                                    "library `{}` of probe `{}` needs JNI headers (`jni = true`)",
                                    library.name, probe.name
                                )
                            },
                        )?);
                    }
                    let mut cflags = flags.cflags.clone();
                    cflags.extend(library.cflags.iter().cloned());
                    compiler.c_object(source, object, &includes, &cflags, None)
                }
                None if *cxx => {
                    compiler.cxx_object(source, object, &flags.user_includes, &flags.cxxflags)
                }
                None => compiler.c_object(
                    source,
                    object,
                    &flags.user_includes,
                    &flags.cflags,
                    pch.map(|p| &plan.loader_headers[p]),
                ),
            }
        }
        Action::Link {
            objects,
            binary,
            cxx,
        } => {
            let (_, flags) = probe.expect("a link belongs to a probe");
            compiler.link(objects, binary, &flags.libs, *cxx)
        }
        Action::LinkLibrary {
            library,
            objects,
            output,
        } => {
            let (probe, _) = probe.expect("a library belongs to a probe");
            compiler.link_shared_library(objects, output, &probe.config.library[*library].cflags)
        }
        Action::RustSources { objects } => {
            let (probe, _) = probe.expect("Rust sources belong to a probe");
            let skelgen = context
                .skelgen
                .expect("the skeleton generator is built when Rust probes are selected");
            let tables: Vec<_> = context
                .selection
                .metas_of(&probe.name)
                .iter()
                .flat_map(|m| m.tables.iter().cloned())
                .collect();
            rust::generate(
                probe,
                &tables,
                &workspace.probe_output_dir(&probe.name),
                objects,
                skelgen,
            )
        }
    }
}

/// Temp files of steps whose build was killed: never trusted (they are not outputs), but worth their space back.
/// Called with the lock held, so no other build is writing any.
fn remove_abandoned_temp_files(output_dir: &std::path::Path) {
    paths::remove_abandoned_temp_files(output_dir);
    for entry in std::fs::read_dir(output_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            for dir in walk_dirs(&entry.path(), 8) {
                paths::remove_abandoned_temp_files(&dir);
            }
        }
    }
}

/// `dir` and the directories under it, at most `depth` levels down (outputs mirror source dirs).
fn walk_dirs(dir: &std::path::Path, depth: usize) -> Vec<std::path::PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    if depth == 0 {
        return dirs;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.extend(walk_dirs(&entry.path(), depth - 1));
        }
    }
    dirs
}

/// Precompiled headers are ~15 MB each; keep only those this build used (a header or flag change makes new ones),
/// with their `.d` and `.cmd` files, which share the name `vmlinux-<key>`.
fn prune_precompiled_headers(workspace: &Workspace, plan: &Plan) {
    let used: Vec<String> = plan
        .precompiled_headers
        .iter()
        .map(|p| &p.path)
        .chain(plan.loader_headers.iter().map(|p| &p.path))
        .filter_map(|p| p.file_name()?.to_str()?.split('.').next().map(String::from))
        .collect();
    if used.is_empty() {
        return;
    }
    for entry in std::fs::read_dir(workspace.pch_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = name.trim_start_matches('.').split('.').next().unwrap_or("");
        if !used.iter().any(|u| u == base) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Runs cargo once for every Rust probe whose BPF side and generated code are ready, and copies each
/// executable into `.output/bin/`.
fn finish_rust_probes(
    workspace: &Workspace,
    selection: &Selection,
    plan: &Plan,
    results: Vec<(usize, Result<Option<BuiltProbe>>)>,
    verbose: bool,
) -> Result<Vec<(usize, Result<BuiltProbe>)>> {
    let probes = &selection.probes;
    let waiting: Vec<&Probe> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(None)))
        .map(|(index, _)| &probes[*index])
        .collect();
    // Rust probes take part in the no-op rule: cargo starts only when one of them is not current.
    let current = if waiting.is_empty() {
        Vec::new()
    } else {
        rust::current_probes(workspace, &waiting)?
    };
    let mut cargo_results: Vec<(String, Result<rust::CargoArtifact>)> =
        if current.len() == waiting.len() {
            current.into_iter().map(|(name, a)| (name, Ok(a))).collect()
        } else {
            rust::cargo_build(workspace, &waiting, verbose)?
        };
    let mut finished = Vec::new();
    for (index, result) in results {
        let result = match result {
            Ok(Some(built)) => Ok(built),
            Err(e) => Err(e),
            Ok(None) => {
                let probe = &probes[index];
                let position = cargo_results
                    .iter()
                    .position(|(name, _)| *name == probe.name)
                    .expect("every waiting probe was built");
                let (_, outcome) = cargo_results.remove(position);
                outcome
                    .and_then(|rust::CargoArtifact { executable, fresh }| {
                        let binary = workspace.bin_dir().join(probe.binary_name());
                        if !fresh
                            || !binary.exists()
                            || paths::mtime(&binary) < paths::mtime(&executable)
                        {
                            let bytes = std::fs::read(&executable).with_context(|| {
                                format!("failed to read `{}`", executable.display())
                            })?;
                            paths::write_atomic(&binary, &bytes)?;
                            set_executable(&binary)?;
                        }
                        eprintln!(
                            "{:>12} {} → .output/bin/{} (cargo)",
                            if fresh { "Fresh" } else { "Built" },
                            probe.name,
                            probe.binary_name(),
                        );
                        Ok(BuiltProbe {
                            name: probe.name.clone(),
                            binary,
                            installables: plan.installables[index].clone(),
                        })
                    })
                    .with_context(|| format!("probe `{}` failed to build", probe.name))
                    .inspect_err(|e| eprintln!("error: {e:#}\n"))
            }
        };
        finished.push((index, result));
    }
    Ok(finished)
}

fn check_unique_binaries(probes: &[Probe]) -> Result<()> {
    for (i, a) in probes.iter().enumerate() {
        if let Some(b) = probes[i + 1..]
            .iter()
            .find(|b| b.binary_name() == a.binary_name())
        {
            bail!(
                "probes `{}` and `{}` would both build `.output/bin/{}`; give one of them another `binary` in its probe.toml",
                a.name,
                b.name,
                a.binary_name()
            );
        }
    }
    Ok(())
}
