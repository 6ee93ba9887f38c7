//! `verify`: loads every program of every BPF object of the selected probes into the running kernel's verifier,
//! one at a time and without attaching, then unloads it; says ✔ with the instruction count and verification time
//! or ✘ with the verifier's message, the `.bpf.c` line and the log's tail. Programs in a probe's `verify_skip` are
//! not loaded. A rejection a known flag fixes (`fixes`) names the flag, and the program is recompiled with it and
//! loaded again (`retry`) unless `--no-retry`. Fails when any other program is rejected, also when the flag would
//! make it load: the objects as the probe is configured are what ships.

mod fixes;
mod loader;
mod log;
mod retry;

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::core::lock;
use crate::core::probe::Probe;
use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use fixes::FlagFix;
use loader::{Outcome, ProgramResult};
use retry::{Retried, Retrier, RetrySettings};

pub struct VerifyOptions {
    /// The kernel release the loader is compiled for (the build's).
    pub kernel_release: String,
    /// The libbpf the build used: the loader links the same one, so it resolves sections and CO-RE alike.
    pub libbpf: crate::libbpf::Policy,
    pub jobs: usize,
    /// The build's `-d` and `$BUILD_OPTS`: a retry compiles as the build did.
    pub debug: bool,
    pub build_opts: Vec<String>,
    /// Recompile a rejected program with a flag known to fix its rejection and load it again (not `--no-retry`).
    pub retry: bool,
}

/// Refuses before anything is built: loading programs into the kernel needs root.
pub fn require_root() -> Result<()> {
    if !crate::kernel::can_load_bpf() {
        bail!(
            "`verify` loads programs into the kernel's verifier and needs root (CAP_BPF or CAP_SYS_ADMIN; run it \
             with sudo)"
        );
    }
    Ok(())
}

/// Verifies the selected probes' built objects (the caller has built them).
pub fn verify(workspace: &Workspace, selection: &Selection, options: &VerifyOptions) -> Result<()> {
    require_root()?;
    let libbpf = crate::libbpf::select(&workspace.manifest.libbpf, &options.libbpf, options.jobs)?;
    let loader = {
        let _lock = lock::lock_output_dir(&workspace.lock_dir())?;
        loader::build_loader(
            &workspace.verify_output_dir(),
            &options.kernel_release,
            &libbpf,
        )
        .context("failed to build the verifier loader")?
    };
    let mut retrier = Retrier::new(RetrySettings {
        workspace,
        kernel_release: &options.kernel_release,
        libbpf: &libbpf,
        debug: options.debug,
        build_opts: &options.build_opts,
        loader: &loader,
    });
    let mut rejected = 0;
    let mut loaded = 0;
    let mut skipped = 0;
    let mut fixed_by_flag = 0;
    for probe in &selection.probes {
        // What the build passed clang besides the defines: a flag already there is not suggested again.
        let compile_flags: Vec<String> = workspace
            .manifest
            .build
            .bpf_flags
            .iter()
            .chain(&probe.config.clang_flags)
            .chain(&options.build_opts)
            .cloned()
            .collect();
        let skip: Vec<&str> = probe
            .config
            .verify_skip
            .keys()
            .map(String::as_str)
            .collect();
        let mut seen: Vec<String> = Vec::new();
        for object in workspace.built_bpf_objects(probe)? {
            let relative = object.strip_prefix(&workspace.root).unwrap_or(&object);
            println!("   Verifying {} ({})", probe.name, relative.display());
            let result = loader::verify_object(&loader, &object, &skip)
                .with_context(|| format!("failed to verify `{}`", relative.display()))?;
            if let Some((errno, messages)) = &result.open_error {
                println!("  ✘ libbpf could not open the object: {errno}");
                for line in messages.lines() {
                    println!("      {line}");
                }
                rejected += 1;
            }
            let names: Vec<String> = result.programs.iter().map(|p| p.name.clone()).collect();
            for program in &result.programs {
                seen.push(program.name.clone());
                match &program.outcome {
                    Outcome::Loaded { .. } => loaded += 1,
                    Outcome::Rejected { .. } => rejected += 1,
                    Outcome::Skipped => skipped += 1,
                }
                let followup = match fix_for(program, &compile_flags) {
                    Some(fix) if options.retry => {
                        let retried = retrier.try_fix(probe, &object, &program.name, &names, fix);
                        if matches!(retried, Retried::Loads { .. }) {
                            fixed_by_flag += 1;
                        }
                        retried_line(fix, &retried, probe, &workspace.root)
                    }
                    Some(fix) => hint_line(fix),
                    None => String::new(),
                };
                print!("{}{followup}", render(program, probe, &workspace.root));
            }
        }
        for name in skip.iter().filter(|name| !seen.iter().any(|s| s == *name)) {
            eprintln!(
                "warning: `verify_skip` in {} names `{name}`, which no object of `{}` has",
                probe.config_path().display(),
                probe.name
            );
        }
    }
    println!(
        "    Verified {loaded} program{} loaded, {rejected} rejected, {skipped} skipped",
        if loaded == 1 { "" } else { "s" }
    );
    if rejected > 0 {
        let fixable = match fixed_by_flag {
            0 => String::new(),
            1 if rejected == 1 => "; it loads with the flag named there".to_string(),
            1 => "; one of them loads with the flag named there".to_string(),
            n => format!("; {n} of them load with the flag named there"),
        };
        bail!(
            "the kernel's verifier rejected {rejected} program{} (see above{fixable})",
            if rejected == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// The known fix for a program the verifier rejected, if its message has one and the compile lacks its flag.
fn fix_for(program: &ProgramResult, compile_flags: &[String]) -> Option<&'static FlagFix> {
    match &program.outcome {
        Outcome::Rejected {
            from_kernel: true,
            log,
            ..
        } => fixes::fix_for(&log::read_rejection(log).message?, compile_flags),
        _ => None,
    }
}

/// What the retry with `fix`'s flag showed, and what to do about it.
fn retried_line(fix: &FlagFix, retried: &Retried, probe: &Probe, root: &Path) -> String {
    let flag = fix.flag;
    match retried {
        Retried::Loads { verified_insns } => {
            let config = probe.config_path();
            let config = config.strip_prefix(root).unwrap_or(&config).display();
            let edit = if probe.config.clang_flags.is_empty() {
                format!("add clang_flags = [\"{flag}\"] to {config}")
            } else {
                format!("add \"{flag}\" to clang_flags in {config}")
            };
            format!("      ↳ with {flag}: ✔ loads ({verified_insns} instructions): {edit}\n")
        }
        Retried::StillRejected(message) => {
            format!("      ↳ with {flag}: still rejected ({message})\n")
        }
        Retried::NotTried(why) => {
            let mut text = format!("      ↳ with {flag}: could not try it:\n");
            for line in why.lines().take(20) {
                text += &format!("        | {line}\n");
            }
            text
        }
    }
}

/// The fix named without trying it (`--no-retry`).
fn hint_line(fix: &FlagFix) -> String {
    format!(
        "      hint: `clang_flags = [\"{}\"]` in probe.toml often fixes this ({}); `verify` without --no-retry tries it\n",
        fix.flag, fix.why
    )
}

fn render(program: &ProgramResult, probe: &Probe, root: &Path) -> String {
    let name = &program.name;
    let section = &program.section;
    match &program.outcome {
        Outcome::Loaded {
            verified_insns,
            micros,
        } => format!(
            "  ✔ {name} ({section}): {verified_insns} instructions verified in {:.1} ms\n",
            *micros as f64 / 1000.0
        ),
        Outcome::Skipped => {
            let why = probe
                .config
                .verify_skip
                .get(name)
                .map_or("", String::as_str);
            format!("  - {name}: skipped ({why})\n")
        }
        Outcome::Rejected {
            errno,
            from_kernel: true,
            log,
        } => {
            let rejection = log::read_rejection(log);
            let mut text = format!("  ✘ {name} ({section}): rejected, {errno}\n");
            if let Some(message) = &rejection.message {
                text += &format!("      {message}\n");
            }
            if let Some(source) = &rejection.source {
                let file = source_path(probe, root, &source.file);
                text += &format!("      at {file}:{}: {}\n", source.line, source.text);
            }
            if !rejection.tail.is_empty() {
                text += "      verifier log (last lines):\n";
                for line in &rejection.tail {
                    text += &format!("        | {line}\n");
                }
            }
            text
        }
        Outcome::Rejected {
            errno,
            from_kernel: false,
            log,
        } => {
            let mut text =
                format!("  ✘ {name} ({section}): not loaded, {errno} (no verifier log)\n");
            for line in log.lines().filter(|l| !l.trim().is_empty()) {
                text += &format!("        | {line}\n");
            }
            if let Some(hint) = log::refused_load_hint(section, errno) {
                text += &format!("      hint: {hint}\n");
            }
            text
        }
    }
}

/// The logged file (as clang recorded it, often a bare file name) as a path in the probe, when one matches.
fn source_path(probe: &Probe, root: &Path, logged: &str) -> String {
    let candidate = probe.dir.join(logged);
    if Path::new(logged).is_relative() && candidate.is_file() {
        return candidate
            .strip_prefix(root)
            .unwrap_or(&candidate)
            .display()
            .to_string();
    }
    logged.to_string()
}
