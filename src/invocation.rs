//! One invocation, resolved once and dispatched: `Request` is what the command line asked for, whichever spelling
//! (the old `build.sh` flags or subcommands); `Environment` is what the environment says (`VMLINUX_VER`,
//! `BUILD_OPTS`, `EXTEND_PROBES`, `EBPF_PROBE_PCH`), read once; then the workspace is found (its configuration
//! parsed once), the probes selected once, and the operations run in the fixed order
//! check → clean → gen → build → verify → compat → btfgen → install.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::btfgen::{self, BtfgenOptions};
use crate::build::{self, BuildOptions};
use crate::check::{self, CheckOptions};
use crate::cli::{
    BtfgenArgs, BuildArgs, CheckArgs, Cli, Command, CompatArgs, CompletionsArgs, GenArgs,
    ImportArgs, InitArgs, InstallArgs, InstallCommandArgs, ManArgs, MessageFormatArg, NewArgs,
    RunArgs, ShellArg, UserlandArg, VerifyArgs,
};
use crate::compat::{self, CompatOptions};
use crate::core::probe::Userland;
use crate::core::selection;
use crate::core::workspace::Workspace;
use crate::generate::{self, BtfSource, GenOptions};
use crate::install::{self, InstallDirs};
use crate::kernel;
use crate::kernel::KERNEL_BTF;
use crate::manual;
use crate::run::RunOptions;
use crate::scaffold::{self, Attach, NewOptions};
use crate::verify::{self, VerifyOptions};

/// Everything one invocation asked for, whichever spelling was used (no I/O yet).
#[derive(Debug, Default)]
pub struct Request {
    pub directory: Option<PathBuf>,
    pub verbose: bool,
    /// `--libbpf`, unparsed: a relative path is resolved against the current directory in `run`.
    pub libbpf: Option<String>,
    pub check: Option<CheckArgs>,
    pub clean: Option<Vec<String>>,
    pub gen: Option<GenArgs>,
    pub build: Option<BuildArgs>,
    pub btfgen: Option<BtfgenArgs>,
    pub install: Option<InstallCommandArgs>,
    pub uninstall: Option<InstallArgs>,
    pub new: Option<NewArgs>,
    pub init: Option<InitArgs>,
    pub run: Option<RunArgs>,
    pub check_meta: Option<Vec<String>>,
    pub verify: Option<VerifyArgs>,
    pub compat: Option<CompatArgs>,
    pub import: Option<ImportArgs>,
    pub completions: Option<CompletionsArgs>,
    pub man: Option<ManArgs>,
}

impl Request {
    pub fn from_cli(cli: Cli) -> Result<Request> {
        // clap's `requires` takes one argument; --arch needs one of two.
        if let Some(arch) = cli
            .arch
            .as_deref()
            .filter(|_| !cli.gen && cli.build.is_none() && !cli.check)
        {
            bail!(
                "--arch {arch} does nothing on its own: it goes with -g (write that architecture's header, \
                 `-g --btf FILE --arch {arch}`), -b (build for it, `-b --arch {arch}`) or --check (check its cross \
                 compiler, `--check --fix --arch {arch}`); the subcommands take it as `gen --arch`, `build --arch` \
                 and `check --arch`"
            );
        }
        if cli.command.is_some() && !cli.action_flags().is_empty() {
            bail!(
                "use either a subcommand or the build.sh-style flags ({}), not both",
                cli.action_flags().join(", ")
            );
        }
        let mut plan = Request {
            directory: cli.directory,
            verbose: cli.verbose,
            libbpf: cli.libbpf,
            ..Request::default()
        };
        if let Some(command) = cli.command {
            match command {
                Command::Check(args) => plan.check = Some(args),
                Command::Gen(args) => plan.gen = Some(args),
                Command::Build(args) => plan.build = Some(args),
                Command::Clean(args) => plan.clean = Some(args.probes),
                Command::Btfgen(args) => plan.btfgen = Some(args),
                Command::Install(args) => plan.install = Some(args),
                Command::Uninstall(args) => plan.uninstall = Some(args),
                Command::New(args) => plan.new = Some(args),
                Command::Init(args) => plan.init = Some(args),
                Command::Run(args) => plan.run = Some(args),
                Command::CheckMeta(args) => plan.check_meta = Some(args.probes),
                Command::Verify(args) => plan.verify = Some(args),
                Command::Compat(args) => plan.compat = Some(args),
                Command::Import(args) => plan.import = Some(args),
                Command::Completions(args) => plan.completions = Some(args),
                Command::Man(args) => plan.man = Some(args),
            }
            return Ok(plan);
        }
        if cli.check {
            plan.check = Some(CheckArgs {
                fix: cli.fix,
                json: cli.json,
                arch: cli.arch.clone(),
            });
        }
        plan.clean = cli.clean;
        if cli.gen {
            plan.gen = Some(GenArgs {
                btf: cli.btf,
                vmlinux: cli.vmlinux,
                kernel_package: cli.kernel_package,
                arch: cli.arch.clone(),
                kernel_release: cli.kernel_release,
            });
        }
        if let Some(probes) = cli.build {
            plan.build = Some(BuildArgs {
                probes,
                debug: cli.debug,
                jobs: cli.jobs,
                message_format: cli.message_format,
                verify: cli.verify,
                no_retry: cli.no_retry,
                arch: cli.arch,
            });
        }
        if cli.install {
            plan.install = Some(InstallCommandArgs {
                arch: None,
                dirs: InstallArgs {
                    probes: Vec::new(),
                    bin_dir: crate::core::artifacts::DEFAULT_BIN_DIR.into(),
                    conf_dir: crate::core::artifacts::DEFAULT_CONF_DIR.into(),
                    meta_dir: crate::core::artifacts::DEFAULT_META_DIR.into(),
                    btf_dir: crate::core::artifacts::DEFAULT_BTF_DIR.into(),
                    destdir: None,
                },
            });
        }
        Ok(plan)
    }
}

/// `-b` for the running kernel: a program of a kind it lacks builds, but is said to be unattachable here.
fn warn_about_attach_kinds_missing_here(
    workspace: &Workspace,
    selection: &selection::Selection,
    kernel_release: &str,
) {
    if kernel::release().ok().as_deref() != Some(kernel_release) {
        return;
    }
    let objects: Vec<(String, PathBuf)> = selection
        .probes
        .iter()
        .flat_map(|probe| {
            workspace
                .built_bpf_objects(probe)
                .unwrap_or_default()
                .into_iter()
                .map(|object| (probe.name.clone(), object))
        })
        .collect();
    for warning in crate::targets::kinds_missing_here(&objects) {
        eprintln!("warning: {warning}");
    }
}

/// The environment variables the old scripts read, parsed once.
struct Environment {
    /// `VMLINUX_VER`: build for this kernel instead of the running one.
    kernel_release: Option<String>,
    /// `BUILD_OPTS`, split with shell-word rules (`-DMSG="a b"` stays one word).
    build_opts: Vec<String>,
    /// `EXTEND_PROBES="a|b"`: probes left out.
    exclude: Vec<String>,
    /// `EBPF_PROBE_PCH=0` turns the precompiled kernel header off.
    precompile_header: bool,
    /// `EBPF_PROBE_SLOW_SECONDS`: after how long a running step is named as slow.
    slow_step: std::time::Duration,
    /// `EBPF_PROBE_DEBUG_MIRROR` and `EBPF_PROBE_DEBUG_MIRROR_UNSIGNED`, unparsed: only `-g --kernel-package`
    /// reads them, so a bad value stops only that.
    debug_mirror: (Option<String>, Option<String>),
}

impl Environment {
    fn read() -> Result<Environment> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let kernel_release = match env("VMLINUX_VER") {
            Some(release) => {
                let release = release.trim().to_string();
                crate::kernel::validate_kernel_release(&release).context("invalid VMLINUX_VER")?;
                Some(release)
            }
            None => None,
        };
        let build_opts = match env("BUILD_OPTS") {
            Some(opts) => shell_words::split(&opts).map_err(|e| {
                anyhow::anyhow!("BUILD_OPTS is not valid shell words ({e}): `{opts}`")
            })?,
            None => Vec::new(),
        };
        Ok(Environment {
            kernel_release,
            build_opts,
            exclude: env("EXTEND_PROBES")
                .map(|l| parse_probe_list(&l))
                .unwrap_or_default(),
            precompile_header: env("EBPF_PROBE_PCH").is_none_or(|v| v != "0"),
            slow_step: match env("EBPF_PROBE_SLOW_SECONDS") {
                Some(text) => std::time::Duration::from_secs(
                    text.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s > 0)
                        .with_context(|| {
                            format!(
                                "EBPF_PROBE_SLOW_SECONDS must be a number of seconds, not `{text}`"
                            )
                        })?,
                ),
                None => std::time::Duration::from_secs(60),
            },
            debug_mirror: (
                env("EBPF_PROBE_DEBUG_MIRROR"),
                env("EBPF_PROBE_DEBUG_MIRROR_UNSIGNED"),
            ),
        })
    }

    fn kernel_release(&self) -> Result<String> {
        match &self.kernel_release {
            Some(release) => Ok(release.clone()),
            None => kernel::release(),
        }
    }
}

pub fn run(request: Request) -> Result<()> {
    let start_dir = match &request.directory {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()?,
    };
    // Completions and man pages come from the clap definitions alone: no workspace, no environment.
    if request.completions.is_some() || request.man.is_some() {
        return run_manual(&request, &start_dir);
    }
    let environment = Environment::read()?;
    // Said before anything runs, not after a build.
    if request.verify.is_some() || request.build.as_ref().is_some_and(|b| b.verify) {
        verify::require_root()?;
    }
    // Import makes a workspace out of a tree that is not one yet: it needs none.
    if let Some(args) = &request.import {
        return run_import(args, &start_dir);
    }
    if let Some(args) = &request.init {
        let dir = if args.dir.is_absolute() {
            args.dir.clone()
        } else {
            start_dir.join(&args.dir)
        };
        let workspace = scaffold::init_workspace(&dir)?;
        eprintln!(
            "     Created workspace {} (next: `cd {} && ebpf-probe new myprobe`)",
            workspace.root.display(),
            args.dir.display()
        );
        return Ok(());
    }
    let needs_workspace = request.check_meta.is_some()
        || request.clean.is_some()
        || request.gen.is_some()
        || request.build.is_some()
        || request.btfgen.is_some()
        || request.install.is_some()
        || request.uninstall.is_some()
        || request.new.is_some()
        || request.run.is_some()
        || request.verify.is_some();
    // The check works anywhere; inside a workspace it keeps its helper build under .output/.check.
    let workspace = match Workspace::find(&start_dir) {
        Ok(ws) => Some(ws),
        // `-C DIR new NAME` on an empty or missing directory starts a workspace there.
        Err(_)
            if request.new.is_some()
                && request.directory.is_some()
                && is_empty_or_missing(&start_dir) =>
        {
            let workspace = scaffold::init_workspace(&start_dir)?;
            eprintln!("     Created workspace {}", workspace.root.display());
            Some(workspace)
        }
        Err(e) if needs_workspace => return Err(e),
        Err(_) => None,
    };
    let manifest_path = workspace.as_ref().map(Workspace::manifest_path);
    let libbpf = crate::libbpf::resolve_policy(
        request.libbpf.as_deref(),
        &std::env::current_dir()?,
        workspace
            .as_ref()
            .zip(manifest_path.as_deref())
            .map(|(w, manifest)| (&w.manifest.libbpf, w.root.as_path(), manifest)),
    )?;

    if let (None, Some(ws), crate::libbpf::Policy::Source(path)) =
        (&request.libbpf, &workspace, &libbpf)
    {
        // A tarball's Makefile runs as us: the workspace's choice is trusted only if its owner is.
        crate::core::trust::check_owner(
            path,
            &ws.root,
            "the libbpf source that ebpf-probe.toml names",
        )?;
    }
    if let Some(args) = &request.check {
        let helper_dir = match &workspace {
            Some(ws) => ws.check_output_dir(),
            None => std::env::temp_dir().join(format!(
                "ebpf-probe-check-{}",
                kernel::effective_uid().unwrap_or(0)
            )),
        };
        let extra_libs = match &workspace {
            Some(ws) => ws.named_libraries(&ws.probes()?),
            None => Vec::new(),
        };
        let arch = match &args.arch {
            Some(arch) => Some(generate::normalize_arch(arch).with_context(|| {
                format!("unknown architecture `{arch}` for --arch (use x86_64, aarch64 or riscv64)")
            })?),
            None => None,
        };
        check::check(&CheckOptions {
            arch: arch.map(String::from),
            extra_libs,
            fix: args.fix,
            json: args.json,
            helper_dir,
            workspace_root: workspace.as_ref().map(|w| w.root.clone()),
            libbpf: libbpf.clone(),
            libbpf_config: workspace
                .as_ref()
                .map(|w| w.manifest.libbpf.clone())
                .unwrap_or_default(),
        })?;
    }
    let Some(workspace) = workspace else {
        return Ok(());
    };
    if let Some(args) = &request.new {
        let attach = Attach::parse(&args.attach)?;
        let problems = crate::targets::problems_here(attach.target())?;
        if !problems.is_empty() {
            let list = problems.join("\n  ");
            if !args.force {
                bail!(
                    "`--attach {}` cannot attach on this machine:\n  {list}\nnothing was written; if the probe is \
                     meant for another machine, `--force` writes it anyway",
                    args.attach
                );
            }
            eprintln!(
                "warning: `--attach {}` cannot attach on this machine:\n  {list}\nwriting the probe anyway (--force)",
                args.attach
            );
        }
        let userland = match args.userland {
            UserlandArg::C => Userland::C,
            UserlandArg::Rust => Userland::Rust,
        };
        let dir = scaffold::new_probe(
            &workspace,
            &NewOptions {
                name: args.name.clone(),
                userland,
                attach,
                attach_spec: args.attach.clone(),
                binary: args.binary.clone(),
            },
        )?;
        eprintln!(
            "     Created probe {} ({}); build it with `ebpf-probe -b {}`",
            dir.display(),
            args.attach,
            args.name
        );
    }
    if let Some(probes) = &request.check_meta {
        let selection = selection::select(&workspace, probes, &[])?;
        let files: Vec<_> = selection.metas.iter().flatten().collect();
        let tables: usize = files.iter().map(|f| f.tables.len()).sum();
        eprintln!(
            "     Checked {} .meta file{} ({tables} tables): no errors",
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
    }
    if let Some(probes) = &request.clean {
        crate::clean::clean(&workspace, probes)?;
    }
    if let Some(args) = &request.gen {
        let source = match (&args.vmlinux, &args.kernel_package, &args.btf) {
            (Some(vmlinux), _, _) => BtfSource::Vmlinux(vmlinux.clone()),
            (None, Some(release), _) => BtfSource::KernelPackage(release.clone()),
            (None, None, btf) => BtfSource::Btf(
                btf.clone()
                    .unwrap_or_else(|| Path::new(KERNEL_BTF).to_path_buf()),
            ),
        };
        let debug_mirror = match &source {
            BtfSource::KernelPackage(_) => generate::kernel_package::DebugMirror::parse(
                environment.debug_mirror.0.as_deref(),
                environment.debug_mirror.1.as_deref(),
            )?,
            _ => None,
        };
        let options = GenOptions {
            source,
            kernel_release: args.kernel_release.clone(),
            arch: args.arch.clone(),
            debug_mirror,
        };
        let generated = generate::generate_header(&workspace, &options)?;
        let name = generated
            .header
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if generated.linked {
            eprintln!(
                "   Generated {} (vmlinux.h → {name})",
                generated.header.display()
            );
        } else {
            eprintln!("   Generated {}", generated.header.display());
        }
    }
    let build_options = |debug: bool,
                         jobs: Option<usize>,
                         message_format: MessageFormatArg|
     -> Result<BuildOptions> {
        let jobs = match jobs {
            Some(0) => bail!("-j 0 builds nothing; give at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        Ok(BuildOptions {
            debug,
            jobs,
            verbose: request.verbose,
            kernel_release: environment.kernel_release()?,
            libbpf: libbpf.clone(),
            precompile_header: environment.precompile_header,
            slow_step: environment.slow_step,
            build_opts: environment.build_opts.clone(),
            json_messages: message_format == MessageFormatArg::Json,
        })
    };
    let verify_options = |options: &BuildOptions, no_retry: bool| VerifyOptions {
        kernel_release: options.kernel_release.clone(),
        libbpf: options.libbpf.clone(),
        jobs: options.jobs,
        debug: options.debug,
        build_opts: options.build_opts.clone(),
        retry: !no_retry,
    };
    if let Some(args) = &request.build {
        let selection = selection::select(&workspace, &args.probes, &environment.exclude)?;
        let options = build_options(args.debug, args.jobs, args.message_format)?;
        if let Some(arch) = &args.arch {
            let arch = generate::normalize_arch(arch).with_context(|| {
                format!("unknown architecture `{arch}` for --arch (use x86_64, aarch64 or riscv64)")
            })?;
            if args.verify {
                bail!("--verify loads programs into this kernel; it cannot check objects built with --arch {arch}");
            }
            build::cross::build_for_arch(&workspace, &selection, &options, arch)?;
        } else {
            build::build(&workspace, &selection, &options)?;
            warn_about_attach_kinds_missing_here(&workspace, &selection, &options.kernel_release);
            if args.verify {
                verify::verify(
                    &workspace,
                    &selection,
                    &verify_options(&options, args.no_retry),
                )?;
            }
        }
    }
    if let Some(args) = &request.verify {
        let selection = selection::select(&workspace, &args.probes, &environment.exclude)?;
        let options = build_options(false, None, MessageFormatArg::Human)?;
        build::build(&workspace, &selection, &options)?;
        verify::verify(
            &workspace,
            &selection,
            &verify_options(&options, args.no_retry),
        )?;
    }
    if let Some(args) = &request.compat {
        let selection = selection::select(&workspace, &args.probes, &environment.exclude)?;
        let options = build_options(false, None, MessageFormatArg::Human)?;
        build::build(&workspace, &selection, &options)?;
        let compat_options = CompatOptions {
            kernels: args.kernels.clone(),
            running: !args.no_running,
            json: args.json,
            jobs: match args.jobs {
                Some(0) => bail!("-j 0 checks nothing; give at least 1"),
                Some(n) => n,
                None => options.jobs,
            },
        };
        compat::compat(&workspace, &selection, &compat_options)?;
    }
    if let Some(args) = &request.btfgen {
        let selection = selection::select(&workspace, &args.probes, &environment.exclude)?;
        let options = build_options(false, None, MessageFormatArg::Human)?;
        let arch_view;
        let for_objects = match &args.arch {
            None => {
                build::build(&workspace, &selection, &options)?;
                &workspace
            }
            Some(arch) => {
                let arch = generate::normalize_arch(arch).with_context(|| {
                    format!(
                        "unknown architecture `{arch}` for --arch (use x86_64, aarch64 or riscv64)"
                    )
                })?;
                arch_view =
                    build::cross::build_for_arch(&workspace, &selection, &options, arch)?.workspace;
                &arch_view
            }
        };
        let current_dir = std::env::current_dir()?;
        btfgen::btfgen(
            for_objects,
            &selection,
            &BtfgenOptions {
                kernels: args.kernels.iter().map(|k| current_dir.join(k)).collect(),
            },
        )?;
    }
    if let Some(InstallCommandArgs { dirs, arch }) = &request.install {
        let selection = selection::select(&workspace, &dirs.probes, &[])?;
        let options = build_options(false, None, MessageFormatArg::Human)?;
        match arch {
            None => {
                let built = build::build(&workspace, &selection, &options)?;
                install::install(&workspace, &selection, &built, &install_dirs(dirs))?;
            }
            Some(arch) => {
                let arch = generate::normalize_arch(arch).with_context(|| {
                    format!(
                        "unknown architecture `{arch}` for --arch (use x86_64, aarch64 or riscv64)"
                    )
                })?;
                let built = build::cross::build_for_arch(&workspace, &selection, &options, arch)?;
                if !built.skipped.is_empty() {
                    let skipped: Vec<String> = built
                        .skipped
                        .iter()
                        .map(|(name, why)| format!("`{name}` ({why})"))
                        .collect();
                    bail!(
                        "cannot install for {arch}: the userland of {} was not built for {arch}, so nothing was \
                         installed; configure a cross compiler (see `ebpf-probe build --help`, --arch) or install \
                         the other probes by name",
                        skipped.join(", ")
                    );
                }
                install::install(
                    &built.workspace,
                    &selection,
                    &built.probes,
                    &install_dirs(dirs),
                )?;
            }
        }
    }
    if let Some(args) = &request.uninstall {
        install::uninstall(&args.probes, &install_dirs(args))?;
    }
    if let Some(args) = &request.run {
        let selection = selection::select(&workspace, std::slice::from_ref(&args.probe), &[])?;
        let built = build::build(
            &workspace,
            &selection,
            &build_options(false, None, MessageFormatArg::Human)?,
        )?;
        let tables: Vec<_> = selection
            .metas_of(&args.probe)
            .iter()
            .flat_map(|m| m.tables.iter().cloned())
            .collect();
        let binary = &built.first().context("nothing was built")?.binary;
        crate::run::run_probe(
            &args.probe,
            binary,
            &tables,
            &RunOptions {
                seconds: args.seconds,
                args: args.args.clone(),
            },
        )?;
    }
    Ok(())
}

fn run_manual(request: &Request, start_dir: &Path) -> Result<()> {
    use std::io::Write;
    let mut command = <Cli as clap::CommandFactory>::command();
    let bytes = match (&request.completions, &request.man) {
        (Some(args), _) => {
            let shell = match args.shell {
                ShellArg::Bash => manual::Shell::Bash,
                ShellArg::Zsh => manual::Shell::Zsh,
                ShellArg::Fish => manual::Shell::Fish,
            };
            manual::completion_script(&mut command, shell)
        }
        (None, Some(ManArgs { dir: Some(dir) })) => {
            let written = manual::write_man_pages(&command, &start_dir.join(dir))?;
            eprintln!(
                "       Wrote {} man pages into {}",
                written.len(),
                dir.display()
            );
            return Ok(());
        }
        _ => manual::man_page(&command)?,
    };
    std::io::stdout()
        .lock()
        .write_all(&bytes)
        .context("failed to write to stdout")
}

fn run_import(args: &ImportArgs, start_dir: &Path) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let report = crate::import::import(&crate::import::ImportOptions {
        dir: start_dir.join(&dir),
        force: args.force,
        dir_as_given: args.dir.as_ref().map(|d| d.display().to_string()),
    })?;
    eprint!("{report}");
    Ok(())
}

fn is_empty_or_missing(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(!dir.exists())
}

fn install_dirs(args: &InstallArgs) -> InstallDirs {
    InstallDirs {
        bin_dir: args.bin_dir.clone(),
        conf_dir: args.conf_dir.clone(),
        meta_dir: args.meta_dir.clone(),
        btf_dir: args.btf_dir.clone(),
        destdir: args.destdir.clone(),
    }
}

/// `EXTEND_PROBES="a|b"` as the old scripts took it; spaces and commas also separate.
pub fn parse_probe_list(list: &str) -> Vec<String> {
    list.split(['|', ',', ' ', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('/').trim_start_matches("./").to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lists_split_like_the_old_scripts() {
        assert_eq!(
            parse_probe_list("stackprobe|ioprobe"),
            ["stackprobe", "ioprobe"]
        );
        assert_eq!(parse_probe_list(" a, ./b/ |"), ["a", "b"]);
        assert!(parse_probe_list("").is_empty());
    }
}
