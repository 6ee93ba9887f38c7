//! `-b/--build`: selects the kernel header, compiles the shared userland library once, then builds every
//! selected probe in parallel; one probe's failure does not stop the others.

pub mod compile;
pub mod fresh;
pub mod header;
pub mod rust;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::paths;
use crate::workspace::{Probe, Userland, Workspace};
use compile::{link_flags, Compiler, CompilerSettings};

pub struct BuildOptions {
    /// Probe directory names; empty means all.
    pub probes: Vec<String>,
    /// Left out (`EXTEND_PROBES="a|b"`).
    pub exclude: Vec<String>,
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
}

/// A probe that built, and where its executable is.
#[derive(Debug, Clone)]
pub struct BuiltProbe {
    pub name: String,
    pub binary: PathBuf,
    /// Nothing needed rebuilding.
    pub fresh: bool,
}

pub fn build(workspace: &Workspace, options: &BuildOptions) -> Result<Vec<BuiltProbe>> {
    let probes = workspace.select_probes(&options.probes, &options.exclude)?;
    if probes.is_empty() {
        eprintln!(
            "warning: no probes to build in `{}`",
            workspace.probes_dir().display()
        );
        return Ok(Vec::new());
    }
    check_unique_binaries(&probes)?;
    let names: Vec<String> = probes.iter().map(|p| p.name.clone()).collect();
    crate::check_meta::check_meta(workspace, &names)?;
    header::select_vmlinux_header(workspace, &options.kernel_release)?;
    let libbpf = crate::libbpf::select(workspace, &options.libbpf, options.jobs)?;
    let compiler = Compiler::new(&CompilerSettings {
        libbpf: &libbpf,
        root: &workspace.root,
        kernel_release: &options.kernel_release,
        debug: options.debug,
        build_opts: &options.build_opts,
        verbose: options.verbose,
    })?;
    let lib_objects = build_shared_lib(&compiler, workspace).with_context(|| {
        format!(
            "the shared userland library in `{}` failed to build",
            workspace.lib_dir().display()
        )
    })?;

    let has_rust = probes.iter().any(|p| p.userland() == Userland::Rust);
    let skelgen = if has_rust {
        Some(rust::build_skelgen(workspace, options.verbose)?)
    } else {
        None
    };

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Option<BuiltProbe>>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, probes.len()) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(probe) = probes.get(index) else {
                    break;
                };
                let probe_started = Instant::now();
                let result = build_probe(
                    &compiler,
                    workspace,
                    probe,
                    &lib_objects,
                    skelgen.as_deref(),
                )
                .with_context(|| format!("probe `{}` failed to build", probe.name));
                match &result {
                    // A Rust probe's userland is built by the one cargo run below.
                    Ok(None) => {}
                    Ok(Some(built)) => eprintln!(
                        "{:>12} {} → {} ({:.1}s)",
                        if built.fresh { "Fresh" } else { "Built" },
                        probe.name,
                        compiler.shown(&built.binary).display(),
                        probe_started.elapsed().as_secs_f64()
                    ),
                    Err(e) => eprintln!("error: {e:#}\n"),
                }
                results.lock().unwrap().push((index, result));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(index, _)| *index);
    let results = finish_rust_probes(workspace, &probes, results, options.verbose)?;

    let mut built = Vec::new();
    let mut failed = Vec::new();
    for (index, result) in results {
        match result {
            Ok(b) => built.push(b),
            Err(_) => failed.push(probes[index].name.clone()),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} probes failed to build: {} (their errors are above; {} built)",
            failed.len(),
            probes.len(),
            failed.join(", "),
            built.len()
        );
    }
    eprintln!(
        "    Finished {} probe{} in {:.1}s",
        built.len(),
        if built.len() == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64()
    );
    Ok(built)
}

/// Runs cargo once for every Rust probe whose BPF side and generated code are ready, and copies each
/// executable into `.output/bin/`.
fn finish_rust_probes(
    workspace: &Workspace,
    probes: &[Probe],
    results: Vec<(usize, Result<Option<BuiltProbe>>)>,
    verbose: bool,
) -> Result<Vec<(usize, Result<BuiltProbe>)>> {
    let waiting: Vec<&Probe> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(None)))
        .map(|(index, _)| &probes[*index])
        .collect();
    let mut cargo_results = if waiting.is_empty() {
        Vec::new()
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
                            fresh,
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

fn set_executable(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to make `{}` executable", path.display()))
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

/// `lib/*.c`, compiled once into `.output/lib/` and linked into every probe (the old Makefiles recompiled it per probe).
fn build_shared_lib(compiler: &Compiler, workspace: &Workspace) -> Result<Vec<PathBuf>> {
    let lib_dir = workspace.lib_dir();
    if !lib_dir.is_dir() {
        return Ok(Vec::new());
    }
    let include_dirs = [workspace.include_dir(), lib_dir.clone()];
    let mut objects = Vec::new();
    for source in paths::files_with_suffix(&lib_dir, ".c")? {
        let object = workspace.lib_output_dir().join(object_name(&source));
        compiler.c_object(&source, &object, &include_dirs, &[])?;
        objects.push(object);
    }
    Ok(objects)
}

fn object_name(source: &std::path::Path) -> String {
    let name = source.file_name().unwrap_or_default().to_string_lossy();
    format!("{}.o", name.strip_suffix(".c").unwrap_or(&name))
}

/// Builds a C probe completely (`Some`), or a Rust probe's BPF side and generated code (`None`: cargo is next).
fn build_probe(
    compiler: &Compiler,
    workspace: &Workspace,
    probe: &Probe,
    lib_objects: &[PathBuf],
    skelgen: Option<&std::path::Path>,
) -> Result<Option<BuiltProbe>> {
    let out_dir = workspace.probe_output_dir(&probe.name);
    let bpf_sources = paths::files_with_suffix(&probe.dir, ".bpf.c")?;
    if bpf_sources.is_empty() {
        bail!("`{}` has no *.bpf.c kernel program", probe.dir.display());
    }
    let bpf_includes = [workspace.include_dir(), out_dir.clone(), probe.dir.clone()];
    let mut objects = Vec::new();
    for source in &bpf_sources {
        compiler.bpf_object(source, &out_dir, &bpf_includes, &probe.config.clang_flags)?;
        let name = source.file_name().unwrap_or_default().to_string_lossy();
        objects.push(out_dir.join(format!(
            "{}.bpf.o",
            name.strip_suffix(".bpf.c").unwrap_or(&name)
        )));
    }
    if probe.userland() == Userland::Rust {
        let skelgen =
            skelgen.expect("the skeleton generator is built when Rust probes are selected");
        rust::generate(probe, &out_dir, &objects, skelgen)?;
        return Ok(None);
    }

    let user_sources: Vec<PathBuf> = paths::files_with_suffix(&probe.dir, ".c")?
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    if user_sources.is_empty() {
        bail!(
            "`{}` has no userland *.c file (expected `{}.c` with main() that loads the skeleton)",
            probe.dir.display(),
            probe.binary_name()
        );
    }
    let user_includes = [
        workspace.include_dir(),
        out_dir.clone(),
        probe.dir.clone(),
        workspace.lib_dir(),
    ];
    let mut objects = Vec::new();
    for source in &user_sources {
        let object = out_dir.join(object_name(source));
        compiler.c_object(source, &object, &user_includes, &probe.config.cflags)?;
        objects.push(object);
    }
    objects.extend(lib_objects.iter().cloned());
    let binary = workspace.bin_dir().join(probe.binary_name());
    let relinked = compiler.link(&objects, &binary, &link_flags(&probe.config.libs))?;
    Ok(Some(BuiltProbe {
        name: probe.name.clone(),
        binary,
        fresh: !relinked,
    }))
}
