//! From parsed arguments to work: reads the environment (VMLINUX_VER, BUILD_OPTS, EXTEND_PROBES), finds the
//! workspace, builds each operation's options and runs them in the fixed order check → clean → gen → build → install.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::build::{self, BuildOptions};
use crate::check::{self, CheckOptions};
use crate::cli::{
    BuildArgs, CheckArgs, Cli, Command, GenArgs, ImportArgs, InitArgs, InstallArgs, NewArgs,
    RunArgs, UserlandArg,
};
use crate::gen::{self, GenOptions, KERNEL_BTF};
use crate::install::{self, InstallDirs};
use crate::kernel;
use crate::run::RunOptions;
use crate::scaffold::{self, Attach, NewOptions, Userland};
use crate::workspace::{parse_probe_list, Workspace};

/// Everything one invocation asked for, whichever spelling was used.
#[derive(Debug, Default)]
pub struct Plan {
    pub directory: Option<PathBuf>,
    pub verbose: bool,
    /// `--libbpf`, unparsed: a relative path is resolved against the current directory in `run`.
    pub libbpf: Option<String>,
    pub check: Option<CheckArgs>,
    pub clean: Option<Vec<String>>,
    pub gen: Option<GenArgs>,
    pub build: Option<BuildArgs>,
    pub install: Option<InstallArgs>,
    pub uninstall: Option<InstallArgs>,
    pub new: Option<NewArgs>,
    pub init: Option<InitArgs>,
    pub run: Option<RunArgs>,
    pub check_meta: Option<Vec<String>>,
    pub import: Option<ImportArgs>,
}

impl Plan {
    pub fn from_cli(cli: Cli) -> Result<Plan> {
        if cli.command.is_some() && !cli.action_flags().is_empty() {
            bail!(
                "use either a subcommand or the build.sh-style flags ({}), not both",
                cli.action_flags().join(", ")
            );
        }
        let mut plan = Plan {
            directory: cli.directory,
            verbose: cli.verbose,
            libbpf: cli.libbpf,
            ..Plan::default()
        };
        if let Some(command) = cli.command {
            match command {
                Command::Check(args) => plan.check = Some(args),
                Command::Gen(args) => plan.gen = Some(args),
                Command::Build(args) => plan.build = Some(args),
                Command::Clean(args) => plan.clean = Some(args.probes),
                Command::Install(args) => plan.install = Some(args),
                Command::Uninstall(args) => plan.uninstall = Some(args),
                Command::New(args) => plan.new = Some(args),
                Command::Init(args) => plan.init = Some(args),
                Command::Run(args) => plan.run = Some(args),
                Command::CheckMeta(args) => plan.check_meta = Some(args.probes),
                Command::Import(args) => plan.import = Some(args),
            }
            return Ok(plan);
        }
        if cli.check {
            plan.check = Some(CheckArgs {
                fix: cli.fix,
                json: cli.json,
            });
        }
        plan.clean = cli.clean;
        if cli.gen {
            plan.gen = Some(GenArgs {
                btf: cli.btf,
                kernel_release: cli.kernel_release,
            });
        }
        if let Some(probes) = cli.build {
            plan.build = Some(BuildArgs {
                probes,
                debug: cli.debug,
                jobs: cli.jobs,
            });
        }
        if cli.install {
            plan.install = Some(InstallArgs {
                probes: Vec::new(),
                bin_dir: crate::cli::DEFAULT_BIN_DIR.into(),
                conf_dir: crate::cli::DEFAULT_CONF_DIR.into(),
                meta_dir: crate::cli::DEFAULT_META_DIR.into(),
                destdir: None,
            });
        }
        Ok(plan)
    }
}

pub fn run(plan: Plan) -> Result<()> {
    let start_dir = match &plan.directory {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()?,
    };
    // Import makes a workspace out of a tree that is not one yet: it needs none.
    if let Some(args) = &plan.import {
        return run_import(args, &start_dir);
    }
    if let Some(args) = &plan.init {
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
    let needs_workspace = plan.check_meta.is_some()
        || plan.clean.is_some()
        || plan.gen.is_some()
        || plan.build.is_some()
        || plan.install.is_some()
        || plan.uninstall.is_some()
        || plan.new.is_some()
        || plan.run.is_some();
    // The check works anywhere; inside a workspace it keeps its helper build under .output/.check.
    let workspace = match Workspace::find(&start_dir) {
        Ok(ws) => Some(ws),
        // `-C DIR new NAME` on an empty or missing directory starts a workspace there.
        Err(_)
            if plan.new.is_some()
                && plan.directory.is_some()
                && is_empty_or_missing(&start_dir) =>
        {
            let workspace = scaffold::init_workspace(&start_dir)?;
            eprintln!("     Created workspace {}", workspace.root.display());
            Some(workspace)
        }
        Err(e) if needs_workspace => return Err(e),
        Err(_) => None,
    };
    let libbpf = crate::libbpf::resolve_policy(
        plan.libbpf.as_deref(),
        &std::env::current_dir()?,
        workspace.as_ref(),
    )?;

    if let Some(args) = &plan.check {
        let helper_dir = match &workspace {
            Some(ws) => ws.check_output_dir(),
            None => std::env::temp_dir().join(format!(
                "ebpf-probe-check-{}",
                kernel::effective_uid().unwrap_or(0)
            )),
        };
        check::check(&CheckOptions {
            fix: args.fix,
            json: args.json,
            helper_dir,
            workspace_root: workspace.as_ref().map(|w| w.root.clone()),
            libbpf: libbpf.clone(),
            libbpf_config: match &workspace {
                Some(ws) => ws.config()?.libbpf,
                None => Default::default(),
            },
        })?;
    }
    let Some(workspace) = workspace else {
        return Ok(());
    };
    if let Some(args) = &plan.new {
        let attach = Attach::parse(&args.attach)?;
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
    if let Some(probes) = &plan.check_meta {
        let files = crate::check_meta::check_meta(&workspace, probes)?;
        let tables: usize = files.iter().map(|f| f.tables.len()).sum();
        eprintln!(
            "     Checked {} .meta file{} ({tables} tables): no errors",
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
    }
    if let Some(probes) = &plan.clean {
        crate::clean::clean(&workspace, probes)?;
    }
    if let Some(args) = &plan.gen {
        let options = gen_options(args)?;
        let header = gen::gen(&workspace, &options)?;
        eprintln!(
            "   Generated {} (include/vmlinux.h → {})",
            header.display(),
            header.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    if let Some(args) = &plan.build {
        build::build(&workspace, &build_options(args, plan.verbose, &libbpf)?)?;
    }
    if let Some(args) = &plan.install {
        let build_args = BuildArgs {
            probes: args.probes.clone(),
            debug: false,
            jobs: None,
        };
        let built = build::build(
            &workspace,
            &build_options(&build_args, plan.verbose, &libbpf)?,
        )?;
        let probes = workspace.select_probes(&args.probes, &[])?;
        let binaries: Vec<_> = built.into_iter().map(|b| (b.name, b.binary)).collect();
        install::install(&workspace, &probes, &binaries, &install_dirs(args))?;
    }
    if let Some(args) = &plan.uninstall {
        install::uninstall(&args.probes, &install_dirs(args))?;
    }
    if let Some(args) = &plan.run {
        let build_args = BuildArgs {
            probes: vec![args.probe.clone()],
            debug: false,
            jobs: None,
        };
        let built = build::build(
            &workspace,
            &build_options(&build_args, plan.verbose, &libbpf)?,
        )?;
        let metas = crate::check_meta::check_meta(&workspace, std::slice::from_ref(&args.probe))?;
        let tables: Vec<_> = metas.into_iter().flat_map(|m| m.tables).collect();
        let binary = &built.first().context("nothing was built")?.binary;
        crate::run::run(
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
        destdir: args.destdir.clone(),
    }
}

fn gen_options(args: &GenArgs) -> Result<GenOptions> {
    let kernel_release = match &args.kernel_release {
        Some(r) => r.clone(),
        None => kernel::release()?,
    };
    Ok(GenOptions {
        btf: args
            .btf
            .clone()
            .unwrap_or_else(|| Path::new(KERNEL_BTF).to_path_buf()),
        kernel_release,
    })
}

fn build_options(
    args: &BuildArgs,
    verbose: bool,
    libbpf: &crate::libbpf::Policy,
) -> Result<BuildOptions> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let kernel_release = match env("VMLINUX_VER") {
        Some(release) => release.trim().to_string(),
        None => kernel::release()?,
    };
    let jobs = match args.jobs {
        Some(0) => bail!("-j 0 builds nothing; give at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    Ok(BuildOptions {
        probes: args.probes.clone(),
        exclude: env("EXTEND_PROBES")
            .map(|l| parse_probe_list(&l))
            .unwrap_or_default(),
        debug: args.debug,
        jobs,
        verbose,
        kernel_release,
        libbpf: libbpf.clone(),
        precompile_header: env("EBPF_PROBE_PCH").is_none_or(|v| v != "0"),
        build_opts: env("BUILD_OPTS")
            .map(|o| o.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
    })
}
