//! `completions` and `man`: shell completion scripts and roff man pages generated from the clap definitions.
//!
//! This operation is handed the `clap::Command` that `cli` defines (the definition, never parsed arguments), so
//! completions and pages cannot drift from `--help`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::paths;

/// The shells `completions` writes a script for.
#[derive(Debug, Clone, Copy)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The completion script for `shell`.
pub fn completion_script(command: &mut clap::Command, shell: Shell) -> Vec<u8> {
    let name = command.get_name().to_string();
    let mut out = Vec::new();
    match shell {
        Shell::Bash => clap_complete::generate(clap_complete::Shell::Bash, command, name, &mut out),
        Shell::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, command, name, &mut out),
        Shell::Fish => clap_complete::generate(clap_complete::Shell::Fish, command, name, &mut out),
    }
    out
}

/// The man page of the program (section 1), listing every subcommand.
pub fn man_page(command: &clap::Command) -> Result<Vec<u8>> {
    render_page(command, &program_and_version(command))
}

/// `ebpf-probe 0.1.0`: the footer of every page, a subcommand's included (it has no version of its own).
fn program_and_version(command: &clap::Command) -> String {
    format!(
        "{} {}",
        command.get_name(),
        command.get_version().unwrap_or_default()
    )
}

fn render_page(command: &clap::Command, source: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .source(source)
        .render(&mut out)
        .context("failed to render the man page")?;
    Ok(out)
}

/// Writes `<name>.1` and `<name>-<subcommand>.1` for every subcommand into `dir` (created if missing, by
/// `write_atomic`), each atomically; returns the files written.
pub fn write_man_pages(command: &clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut command = command.clone();
    // Building names each subcommand `ebpf-probe-<sub>` (its page title) with the usage `ebpf-probe <sub>`.
    command.build();
    let name = command.get_name().to_string();
    let source = program_and_version(&command);
    let mut written = Vec::new();
    let top = dir.join(format!("{name}.1"));
    paths::write_atomic(&top, &man_page(&command)?)?;
    written.push(top);
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let page_name = format!("{name}-{}", sub.get_name());
        let path = dir.join(format!("{page_name}.1"));
        paths::write_atomic(&path, &render_page(sub, &source)?)?;
        written.push(path);
    }
    Ok(written)
}
