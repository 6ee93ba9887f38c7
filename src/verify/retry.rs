//! Trying a known fixing flag on a rejected program: the probe's `.bpf.c` recompiled with the build's own clang
//! command plus the flag (`Compiler::bpf_object` with the flags `core::probe_flags` gives the build) into
//! `.output/.verify/with-<flag>/<probe>/`, never over the built object, and that one program loaded from there by
//! the same loader (so, as for every load of `verify`, nothing stays loaded).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use crate::core::compile::{Compiler, CompilerSettings};
use crate::core::probe::Probe;
use crate::core::probe_flags::{probe_flags, shared_names};
use crate::core::progress::Console;
use crate::core::workspace::Workspace;
use crate::core::{header, lock};
use crate::libbpf::Libbpf;
use crate::paths;

use super::fixes::{dir_name, FlagFix};
use super::loader::{self, Outcome};
use super::log::read_rejection;

/// What the build that made the objects was given, so a recompile is the same command plus one flag.
pub struct RetrySettings<'a> {
    pub workspace: &'a Workspace,
    pub kernel_release: &'a str,
    pub libbpf: &'a Libbpf,
    pub debug: bool,
    pub build_opts: &'a [String],
    pub loader: &'a Path,
}

/// What the program did with the flag.
#[derive(Debug, PartialEq, Eq)]
pub enum Retried {
    Loads {
        verified_insns: u64,
    },
    /// The verifier's message (or the errno of a load refused before verifying).
    StillRejected(String),
    /// The recompile or the load could not be done (why).
    NotTried(String),
}

pub struct Retrier<'a> {
    settings: RetrySettings<'a>,
    /// Made on the first retry: most runs of `verify` never need one.
    compiler: Option<Compiler>,
    /// (built object, flag) → the object compiled with the flag, or why not: each is compiled once.
    compiled: HashMap<(PathBuf, &'static str), Result<PathBuf, String>>,
}

impl<'a> Retrier<'a> {
    pub fn new(settings: RetrySettings<'a>) -> Retrier<'a> {
        Retrier {
            settings,
            compiler: None,
            compiled: HashMap::new(),
        }
    }

    /// Loads `program` of `probe`'s built `object` recompiled with `fix`'s flag; `programs` are all the object's
    /// programs (the others are not loaded).
    pub fn try_fix(
        &mut self,
        probe: &Probe,
        object: &Path,
        program: &str,
        programs: &[String],
        fix: &'static FlagFix,
    ) -> Retried {
        let key = (object.to_path_buf(), fix.flag);
        if !self.compiled.contains_key(&key) {
            let compiled = self
                .compile(probe, object, fix.flag)
                .map_err(|e| format!("{e:#}"));
            self.compiled.insert(key.clone(), compiled);
        }
        let retried = match &self.compiled[&key] {
            Ok(path) => path.clone(),
            Err(why) => return Retried::NotTried(why.clone()),
        };
        let skip: Vec<&str> = programs
            .iter()
            .map(String::as_str)
            .filter(|name| *name != program)
            .collect();
        let result = match loader::verify_object(self.settings.loader, &retried, &skip) {
            Ok(result) => result,
            Err(e) => return Retried::NotTried(format!("{e:#}")),
        };
        if let Some((errno, _)) = result.open_error {
            return Retried::NotTried(format!(
                "libbpf could not open the recompiled object: {errno}"
            ));
        }
        match result.programs.into_iter().find(|p| p.name == program) {
            Some(p) => match p.outcome {
                Outcome::Loaded { verified_insns, .. } => Retried::Loads { verified_insns },
                Outcome::Rejected {
                    errno,
                    from_kernel: true,
                    log,
                } => Retried::StillRejected(read_rejection(&log).message.unwrap_or(errno)),
                Outcome::Rejected { errno, .. } => {
                    Retried::StillRejected(format!("not loaded, {errno}"))
                }
                Outcome::Skipped => Retried::NotTried("skipped".to_string()),
            },
            None => Retried::NotTried(format!("the recompiled object has no program `{program}`")),
        }
    }

    /// `probe`'s source of `object` compiled as the build compiles it, plus `flag`, into its own directory.
    fn compile(&mut self, probe: &Probe, object: &Path, flag: &str) -> Result<PathBuf> {
        let workspace = self.settings.workspace;
        let out_dir = workspace.probe_output_dir(&probe.name);
        let sources = probe.sources()?;
        let bpf = sources
            .bpf
            .iter()
            .find(|bpf| out_dir.join(format!("{}.bpf.o", bpf.relative_stem.display())) == object)
            .ok_or_else(|| {
                anyhow!(
                    "no source of probe `{}` builds `{}`",
                    probe.name,
                    object.display()
                )
            })?;
        let sets = workspace.shared_sets()?;
        let shared = shared_names(workspace, probe, &sets)?;
        let flags = probe_flags(workspace, probe, &sets, &shared);
        let mut bpf_flags = flags.bpf_flags.clone();
        bpf_flags.push(flag.to_string());
        let retried = workspace
            .verify_output_dir()
            .join(format!("with-{}", dir_name(flag)))
            .join(&probe.name)
            .join(format!("{}.bpf.o", bpf.relative_stem.display()));
        if let Some(dir) = retried.parent() {
            paths::create_dir_all(dir)?;
        }
        let compiler = self.compiler()?;
        let _lock = lock::lock_output_dir(&workspace.lock_dir())?;
        compiler
            .bpf_object(&bpf.source, &retried, &flags.bpf_includes, &bpf_flags, None)
            .with_context(|| {
                format!(
                    "failed to compile `{}` with `{flag}`",
                    compiler.shown(&bpf.source).display()
                )
            })?;
        Ok(retried)
    }

    /// The build's compiler: same kernel header, defines, `[build]` flags and `$BUILD_OPTS`.
    fn compiler(&mut self) -> Result<&Compiler> {
        if self.compiler.is_none() {
            let RetrySettings {
                workspace,
                kernel_release,
                libbpf,
                debug,
                build_opts,
                ..
            } = self.settings;
            let kernel_header = header::select_vmlinux_header(workspace, kernel_release)?;
            self.compiler = Some(Compiler::new(&CompilerSettings {
                libbpf,
                root: &workspace.root,
                state_dir: &workspace.output_dir(),
                kernel_release,
                kernel_header: Some(&kernel_header),
                debug,
                build_opts,
                build: &workspace.manifest.build,
                verbose: false,
                target: None,
                output: Console::plain(),
            })?);
        }
        Ok(self.compiler.as_ref().expect("made above"))
    }
}
