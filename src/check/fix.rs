//! `--fix`: what a ✘ row's fix does (install packages after `apt-get update`, mount tracefs/bpffs), and doing it.

use anyhow::{bail, Result};

use super::{Host, Report};
use crate::kernel;
use crate::tool::{self, Cmd, ToolKind};

#[derive(Debug, Clone, PartialEq)]
pub enum FixAction {
    /// Install the packages that provide this requirement (a key of repo-config/packages.toml).
    Install(String),
    Mount {
        fstype: &'static str,
        point: &'static str,
    },
}

impl FixAction {
    pub fn install(requirement: impl Into<String>) -> FixAction {
        FixAction::Install(requirement.into())
    }
}

/// The actions of the ✘ rows, in row order.
pub fn actions(report: &Report) -> Vec<FixAction> {
    report
        .rows
        .iter()
        .filter(|r| !r.ok)
        .filter_map(|r| r.action.clone())
        .collect()
}

/// Installs every package the actions need in one package-manager run, then mounts.
pub fn apply_fixes(actions: &[FixAction], host: &Host) -> Result<()> {
    if !kernel::is_root() {
        bail!(
            "`--fix` installs packages and mounts filesystems, which needs root: run it with sudo"
        );
    }
    let mut packages: Vec<String> = Vec::new();
    for action in actions {
        if let FixAction::Install(requirement) = action {
            let Some(family) = &host.family else {
                bail!(
                    "cannot install {requirement}: no package names are known for OS `{}`; add a family to repo-config/packages.toml",
                    host.os.id
                );
            };
            for p in family.packages_for(requirement, &host.kernel_release) {
                if !packages.contains(&p) {
                    packages.push(p);
                }
            }
        }
    }
    if !packages.is_empty() {
        let family = host.family.as_ref().expect("checked above");
        for cmd in family.install_commands(&packages)? {
            eprintln!("+ {cmd}");
            cmd.run_inherited()?;
        }
    }
    for action in actions {
        if let FixAction::Mount { fstype, point } = action {
            let mount = tool::find(ToolKind::Mount)?;
            let cmd = Cmd::new(&mount).args(["-t", fstype, fstype, point]);
            eprintln!("+ {cmd}");
            cmd.run()?;
        }
    }
    Ok(())
}
