//! `--check`: gathers every section's rows into a `Report`, runs `--fix`, prints it, and sets the exit status.

pub mod attach;
mod fix;
mod kernel_features;
mod libbpf;
mod libraries;
mod render;
mod row;
mod system;
mod tools;

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::distro::{Family, OsRelease};
use crate::libbpf::{LibbpfConfig, Policy};

pub use self::libbpf::LibbpfChoice;
pub use self::row::Row;

pub struct CheckOptions {
    pub fix: bool,
    pub json: bool,
    /// Where the attach-kind helper is built (`.output/.check` in a workspace).
    pub helper_dir: PathBuf,
    /// The workspace, when there is one: its Cargo.lock says which libbpf Rust probes link.
    pub workspace_root: Option<PathBuf>,
    /// `--libbpf` (or the workspace's `[libbpf] policy`) and the workspace's `[libbpf]` table: which libbpf `-b`
    /// will use is reported without fetching or building anything.
    pub libbpf: Policy,
    pub libbpf_config: LibbpfConfig,
    /// Libraries the workspace's configuration names (`jsoncpp`, `uthash`, …); none, no `workspace libraries` section.
    pub extra_libs: Vec<String>,
    /// `--arch ARCH`: that architecture's C compiler, libelf and zlib are required (for `-b --arch` userland).
    pub arch: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub rows: Vec<Row>,
    /// Which libbpf C probes will build against (the `C libbpf` row, for scripts).
    pub libbpf: LibbpfChoice,
}

impl Report {
    pub fn failed_required(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.required && !r.ok)
            .map(|r| r.name.as_str())
            .collect()
    }
}

/// What every section needs to know about this machine, read once per `--check`.
pub struct Host {
    pub os: OsRelease,
    pub family: Option<Family>,
    pub kernel_release: String,
}

impl Host {
    fn read() -> Host {
        let os = OsRelease::read();
        let family = Family::detect(&os);
        Host {
            os,
            family,
            kernel_release: crate::kernel::release().unwrap_or_default(),
        }
    }

    /// The command that installs `requirement` (a key of repo-config/packages.toml) here, as a row's fix.
    pub fn install_command(&self, requirement: &str) -> String {
        match &self.family {
            Some(f) => f.install_command_line(&f.packages_for(requirement, &self.kernel_release)),
            None => format!(
                "install the package providing {requirement} (no package names known for this OS)"
            ),
        }
    }
}

pub fn check(options: &CheckOptions) -> Result<Report> {
    let host = Host::read();
    let mut report = gather(options, &host);
    if options.fix {
        let actions = fix::actions(&report);
        if !actions.is_empty() {
            fix::apply_fixes(&actions, &host)?;
            report = gather(options, &host);
        } else if !options.json {
            eprintln!("nothing to fix");
        }
    }
    render::print(&report, options.json)?;
    let failed = report.failed_required();
    if !failed.is_empty() {
        bail!(
            "the environment cannot build probes: {} {} missing or unusable (see the ✘ rows and their fixes{})",
            failed.join(", "),
            if failed.len() == 1 { "is" } else { "are" },
            if options.fix { "" } else { ", or run `ebpf-probe --check --fix`" }
        );
    }
    Ok(report)
}

/// Collects every row, section by section; never fails — what cannot be read becomes a ✘ row.
fn gather(options: &CheckOptions, host: &Host) -> Report {
    let system = system::rows(host);
    let tools = tools::rows(host, options.arch.as_deref());
    let headers = libraries::header_rows(host);
    let decision = crate::libbpf::decide(&options.libbpf_config, &options.libbpf);
    let libbpf = libbpf::rows(
        host,
        &decision,
        &options.libbpf,
        tools.bpftool_libbpf,
        options.workspace_root.as_deref(),
    );
    let workspace_libraries = libraries::library_rows(&options.extra_libs, host);
    let kernel = kernel_features::rows();
    // The helper needs the build tools and the libraries every probe links, not the workspace's own libraries.
    let helper_can_build = tools
        .rows
        .iter()
        .chain(&headers)
        .chain(&libbpf.rows)
        .chain(&kernel)
        .filter(|r| r.required)
        .all(|r| r.ok);
    let attach = kernel_features::attach_rows(
        helper_can_build,
        &options.helper_dir,
        &host.kernel_release,
        &decision,
    );
    let mut rows: Vec<Row> = [
        system,
        tools.rows,
        headers,
        libbpf.rows,
        workspace_libraries,
        kernel,
        attach,
    ]
    .into_iter()
    .flatten()
    .collect();
    for r in rows.iter_mut().filter(|r| r.fix.as_deref() == Some("")) {
        r.fix = None;
    }
    let ok = rows.iter().filter(|r| r.required).all(|r| r.ok);
    Report {
        ok,
        rows,
        libbpf: libbpf.choice,
    }
}
