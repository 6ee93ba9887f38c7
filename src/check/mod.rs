//! `--check`: one row per fact the build depends on (✔/✘, the value found, the exact fix for this distro),
//! `--fix` to install missing packages and mount tracefs/bpffs, `--json` for scripts.

pub mod attach;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Serialize;

use crate::distro::{Family, OsRelease};
use crate::generate::KERNEL_BTF;
use crate::kernel::{self, KernelVersion};
use crate::libbpf::{self, Decision, Libbpf, LibbpfConfig, Policy};
use crate::tool::{self, Cmd, ToolKind};
use crate::toolchain::{
    self, parse_bpftool_version, parse_clang_version, MIN_CLANG_MAJOR, MIN_LIBBPF,
};

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
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub section: &'static str,
    pub name: &'static str,
    pub ok: bool,
    /// Whether `-b` needs it; only required rows decide the exit status.
    pub required: bool,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(skip)]
    action: Option<FixAction>,
}

#[derive(Debug, Clone, PartialEq)]
enum FixAction {
    /// Install the packages that provide this requirement (a key of repo-config/packages.toml).
    Install(&'static str),
    Mount {
        fstype: &'static str,
        point: &'static str,
    },
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub rows: Vec<Row>,
    /// Which libbpf C probes will build against (the `C libbpf` row, for scripts).
    pub libbpf: LibbpfChoice,
}

#[derive(Debug, Clone, Serialize)]
pub struct LibbpfChoice {
    pub policy: String,
    /// `system`, `pinned`, `path`, or `none` (the policy cannot be served).
    pub kind: &'static str,
    pub version: Option<String>,
    pub reason: String,
    /// The built cache entry, when it exists.
    pub cached: Option<PathBuf>,
    /// Where `-b` will download the pinned tarball from, in order, when it is not cached.
    pub fetch_from: Vec<String>,
}

impl Report {
    pub fn failed_required(&self) -> Vec<&'static str> {
        self.rows
            .iter()
            .filter(|r| r.required && !r.ok)
            .map(|r| r.name)
            .collect()
    }
}

pub fn check(options: &CheckOptions) -> Result<Report> {
    let mut report = gather(options);
    if options.fix {
        let actions: Vec<FixAction> = report
            .rows
            .iter()
            .filter(|r| !r.ok)
            .filter_map(|r| r.action.clone())
            .collect();
        if !actions.is_empty() {
            apply_fixes(&actions)?;
            report = gather(options);
        } else if !options.json {
            eprintln!("nothing to fix");
        }
    }
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
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

fn row(section: &'static str, name: &'static str, required: bool) -> Row {
    Row {
        section,
        name,
        ok: false,
        required,
        value: String::new(),
        fix: None,
        action: None,
    }
}

impl Row {
    fn pass(mut self, value: impl Into<String>) -> Row {
        self.ok = true;
        self.value = value.into();
        self
    }

    fn fail(mut self, value: impl Into<String>, fix: impl Into<String>) -> Row {
        self.ok = false;
        self.value = value.into();
        self.fix = Some(fix.into());
        self
    }

    fn with_action(mut self, action: FixAction) -> Row {
        if !self.ok {
            self.action = Some(action);
        }
        self
    }
}

/// Collects every row; never fails — what cannot be read becomes a ✘ row.
fn gather(options: &CheckOptions) -> Report {
    let helper_dir = options.helper_dir.as_path();
    let workspace_root = options.workspace_root.as_deref();
    let os = OsRelease::read();
    let family = Family::detect(&os);
    let release = kernel::release().unwrap_or_default();
    let install = |requirement: &'static str| -> String {
        match &family {
            Some(f) => f.install_command_line(&f.packages_for(requirement, &release)),
            None => format!(
                "install the package providing {requirement} (no package names known for this OS)"
            ),
        }
    };
    let mut rows = Vec::new();

    // System.
    let machine = kernel::machine();
    rows.push(match kernel::bpf_target_arch(&machine) {
        Some(target) => {
            row("system", "arch", true).pass(format!("{machine} (BPF target {target})"))
        }
        None => row("system", "arch", true)
            .fail(machine, "no BPF target is known for this architecture"),
    });
    let os_name = if os.pretty_name.is_empty() {
        os.id.clone()
    } else {
        os.pretty_name.clone()
    };
    rows.push(match &family {
        Some(f) => {
            row("system", "os", false).pass(format!("{os_name} ({} family, {})", f.name, f.manager))
        }
        None => row("system", "os", false).fail(
            if os_name.is_empty() {
                "unknown (no /etc/os-release)".to_string()
            } else {
                os_name
            },
            "add this distro's package names to repo-config/packages.toml to enable --fix",
        ),
    });
    rows.push(match KernelVersion::parse(&release) {
        Ok(v) => row("system", "kernel", true).pass(format!("{release} (version {v})")),
        Err(e) => row("system", "kernel", true).fail(release.clone(), e.to_string()),
    });

    // Tools.
    let clang_row = row("tools", "clang", true);
    rows.push(
        match tool::find(ToolKind::Clang) {
            Err(e) => clang_row.fail(e.to_string(), install("clang")),
            Ok(clang) => {
                let text = tool_output(&clang, &["--version"]);
                match parse_clang_version(&text) {
                    Some(v) if v.0 >= MIN_CLANG_MAJOR => {
                        clang_row.pass(format!("{v} ({})", clang.program.display()))
                    }
                    Some(v) => clang_row.fail(
                        format!(
                            "{v} ({}) is older than {MIN_CLANG_MAJOR}",
                            clang.program.display()
                        ),
                        format!(
                            "{}, or set CLANG to a clang >= {MIN_CLANG_MAJOR}",
                            install("clang")
                        ),
                    ),
                    None => clang_row.fail(
                        format!("{} printed no clang version", clang.program.display()),
                        "set CLANG to a working clang",
                    ),
                }
            }
        }
        .with_action(FixAction::Install("clang")),
    );
    rows.push(
        simple_tool_row(
            ToolKind::LlvmStrip,
            "llvm-strip",
            true,
            &["--version"],
            &install,
        )
        .with_action(FixAction::Install("llvm-strip")),
    );

    let bpftool_row = row("tools", "bpftool", true);
    let mut bpftool_libbpf = None;
    rows.push(
        match tool::find(ToolKind::Bpftool) {
            Err(e) => bpftool_row.fail(e.to_string(), install("bpftool")),
            Ok(bpftool) => {
                let (version, libbpf) = parse_bpftool_version(&tool_output(&bpftool, &["version"]));
                bpftool_libbpf = libbpf;
                let has_skeleton = tool_output(&bpftool, &["gen", "help"]).contains("skeleton");
                let described = format!(
                    "{}{} ({})",
                    version
                        .map(|v| format!("v{v}"))
                        .unwrap_or_else(|| "unknown version".into()),
                    libbpf
                        .map(|l| format!(", libbpf {}.{}", l.0, l.1))
                        .unwrap_or_default(),
                    bpftool.program.display()
                );
                if has_skeleton {
                    bpftool_row.pass(format!("{described}, has `gen skeleton`"))
                } else {
                    bpftool_row.fail(
                        format!("{described} lacks `gen skeleton`"),
                        install("bpftool"),
                    )
                }
            }
        }
        .with_action(FixAction::Install("bpftool")),
    );
    rows.push(
        simple_tool_row(ToolKind::Cc, "cc", true, &["--version"], &install)
            .with_action(FixAction::Install("cc")),
    );
    rows.push(
        simple_tool_row(ToolKind::Make, "make", false, &["--version"], &install)
            .with_action(FixAction::Install("make")),
    );

    // Libraries.
    rows.push(header_row("libelf", "libelf.h", &install).with_action(FixAction::Install("libelf")));
    rows.push(header_row("zlib", "zlib.h", &install).with_action(FixAction::Install("zlib")));
    let libbpf_headers = toolchain::find_libbpf_headers();
    let decision = libbpf::decide(&options.libbpf_config, &options.libbpf);
    let uses_system = matches!(
        decision,
        Ok(Decision::System(_)) | Ok(Decision::SystemUnusable(_))
    );
    // The system's libbpf matters to `-b` only when the build uses it; `--fix` still installs it.
    let libbpf_row = row("libraries", "libbpf", uses_system);
    rows.push(
        match &libbpf_headers {
            None => libbpf_row.fail("bpf/libbpf.h not found", install("libbpf")),
            Some(h) => match h.version {
                Some(v) if (v.0, v.1) >= MIN_LIBBPF => libbpf_row.pass(format!(
                    "{}.{} (headers in {}/bpf)",
                    v.0,
                    v.1,
                    h.include_dir.display()
                )),
                Some(v) => libbpf_row.fail(
                    format!(
                        "{}.{} is older than {}.{}",
                        v.0, v.1, MIN_LIBBPF.0, MIN_LIBBPF.1
                    ),
                    format!(
                        "install libbpf >= {}.{} ({})",
                        MIN_LIBBPF.0,
                        MIN_LIBBPF.1,
                        install("libbpf")
                    ),
                ),
                None => libbpf_row.fail(
                    format!(
                        "no version in {}/bpf/libbpf_version.h",
                        h.include_dir.display()
                    ),
                    format!(
                        "install libbpf >= {}.{} ({})",
                        MIN_LIBBPF.0,
                        MIN_LIBBPF.1,
                        install("libbpf")
                    ),
                ),
            },
        }
        .with_action(FixAction::Install("libbpf")),
    );
    let (c_libbpf_row, choice) = c_libbpf_row(&decision, &options.libbpf, &install);
    rows.push(c_libbpf_row);
    // A skeleton from a bpftool built on a newer libbpf may use API the linked libbpf lacks.
    let linked = choice.version.as_deref().and_then(toolchain::parse_version);
    if let (Some(tool_libbpf), Some(linked)) = (bpftool_libbpf, linked) {
        let skew = row("libraries", "skeleton/libbpf", false);
        rows.push(if (tool_libbpf.0, tool_libbpf.1) <= (linked.0, linked.1) {
            skew.pass(format!("bpftool's libbpf {}.{} <= linked libbpf {}.{}", tool_libbpf.0, tool_libbpf.1, linked.0, linked.1))
        } else {
            skew.fail(
                format!("bpftool is built on libbpf {}.{} but probes link libbpf {}.{}", tool_libbpf.0, tool_libbpf.1, linked.0, linked.1),
                "skeletons may use newer libbpf API; install a libbpf-dev matching bpftool, or set BPFTOOL to an older bpftool",
            )
        });
    }

    rows.push(rust_libbpf_row(workspace_root, &choice));

    // Kernel facilities.
    rows.push(if Path::new(KERNEL_BTF).is_file() {
        row("kernel", "btf", false).pass(KERNEL_BTF)
    } else {
        row("kernel", "btf", false).fail(
            format!("{KERNEL_BTF} missing (CONFIG_DEBUG_INFO_BTF off)"),
            "generate headers from a BTF file: `ebpf-probe gen --btf FILE --kernel-release R` (FILE from BTFHub, a vmlinux ELF, or `pahole -J`)",
        )
    });
    rows.push(mount_row("tracefs", "tracefs", "/sys/kernel/tracing"));
    rows.push(mount_row("bpffs", "bpf", "/sys/fs/bpf"));

    // Attach kinds, tested for real.
    let tools_ok = rows
        .iter()
        .filter(|r| r.section != "system" && r.required)
        .all(|r| r.ok);
    let untested = |reason: &str| -> Vec<Row> {
        attach::KINDS
            .iter()
            .map(|kind| row("attach", kind, false).fail(format!("not tested: {reason}"), ""))
            .collect()
    };
    if !kernel::is_root() {
        rows.extend(untested("loading BPF needs root (run as root)"));
    } else if !tools_ok {
        rows.extend(untested("the build tools above are missing"));
    } else {
        // The helper links the libbpf the probes will, when it is at hand; else the system's, if any.
        let libbpf = decision
            .as_ref()
            .ok()
            .and_then(Decision::usable_now)
            .unwrap_or_else(Libbpf::system);
        match attach::test_attach_kinds(helper_dir, &release, &libbpf) {
            Ok(kinds) => rows.extend(kinds.into_iter().map(|k| {
                let name = attach::KINDS
                    .iter()
                    .find(|n| **n == k.kind)
                    .copied()
                    .unwrap_or("?");
                if k.available {
                    row("attach", name, false).pass(k.detail)
                } else {
                    row("attach", name, false).fail(k.detail, "")
                }
            })),
            Err(e) => {
                // One row carries the whole error (with the failed command); the others point at it.
                let mut failed =
                    untested("the attach-kind helper did not build or run (see the first row)");
                failed[0] =
                    row("attach", attach::KINDS[0], false).fail(format!("not tested: {e:#}"), "");
                rows.extend(failed);
            }
        }
    }
    for r in rows.iter_mut().filter(|r| r.fix.as_deref() == Some("")) {
        r.fix = None;
    }
    let ok = rows.iter().filter(|r| r.required).all(|r| r.ok);
    Report {
        ok,
        rows,
        libbpf: choice,
    }
}

/// Which libbpf `-b` will use for C probes and why, from `libbpf::decide`: no download, no build.
fn c_libbpf_row(
    decision: &Result<Decision>,
    policy: &Policy,
    install: &dyn Fn(&'static str) -> String,
) -> (Row, LibbpfChoice) {
    let r = row("libraries", "C libbpf", true);
    let mut choice = LibbpfChoice {
        policy: policy.to_string(),
        kind: "none",
        version: None,
        reason: String::new(),
        cached: None,
        fetch_from: Vec::new(),
    };
    let decision = match decision {
        Ok(d) => d,
        Err(e) => {
            choice.reason = format!("{e:#}");
            return (
                r.fail(
                    format!("{e:#}"),
                    "fix `--libbpf` or `[libbpf]` in ebpf-probe.toml",
                ),
                choice,
            );
        }
    };
    choice.reason = decision.reason().to_string();
    choice.cached = decision
        .entry()
        .filter(|e| e.is_complete())
        .map(|e| e.dir.clone());
    choice.fetch_from = decision.fetch_urls().map(<[_]>::to_vec).unwrap_or_default();
    let (kind, version) = match decision {
        Decision::System(l) => ("system", l.version.map(|v| format!("{}.{}", v.0, v.1))),
        Decision::SystemUnusable(_) => ("none", None),
        Decision::Pinned { pinned, .. } => ("pinned", Some(pinned.version.to_string())),
        Decision::Source { version, .. } => ("path", version.map(|v| format!("{}.{}", v.0, v.1))),
    };
    choice.kind = kind;
    choice.version = version;
    let row = match decision {
        Decision::System(l) => r.pass(format!("-b uses the {}", l.reason)),
        Decision::SystemUnusable(why) => r.fail(
            why.clone(),
            format!("{}, or use `--libbpf pinned`", install("libbpf")),
        ),
        Decision::Pinned { .. } | Decision::Source { .. } => {
            let entry = decision
                .entry()
                .expect("pinned and path decisions have an entry");
            if entry.is_complete() {
                r.pass(format!(
                    "-b uses the {}; built and cached in {}",
                    decision.reason(),
                    entry.dir.display()
                ))
            } else if let Err(e) = tool::find(ToolKind::Make) {
                r.fail(
                    format!(
                        "-b would use the {}, but it is not built yet and building it needs make ({e})",
                        decision.reason()
                    ),
                    install("make"),
                )
                .with_action(FixAction::Install("make"))
            } else {
                let how = match decision.fetch_urls() {
                    Some(urls) => format!("downloads it from {} (in that order)", urls.join(", ")),
                    None => "unpacks it".to_string(),
                };
                r.pass(format!(
                    "-b uses the {}; not built yet: -b {how}, builds it with make and caches it in {}",
                    decision.reason(),
                    entry.dir.display()
                ))
            }
        }
    };
    (row, choice)
}

/// Rust probes link libbpf-sys's vendored libbpf statically (libbpf-rs 0.27 needs a newer libbpf than
/// Debian 12's 1.1), while C probes link the libbpf `C libbpf` names: report both so a skew is never a surprise.
fn rust_libbpf_row(workspace_root: Option<&Path>, c_libbpf: &LibbpfChoice) -> Row {
    let r = row("libraries", "rust libbpf", false);
    let lock = workspace_root.map(|root| root.join("Cargo.lock"));
    let text = lock
        .as_ref()
        .and_then(|l| std::fs::read_to_string(l).ok())
        .unwrap_or_default();
    let version_of = |package: &str| {
        let marker = format!("name = \"{package}\"\nversion = \"");
        text.find(&marker).map(|at| {
            let rest = &text[at + marker.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_string()
        })
    };
    match (version_of("libbpf-sys"), version_of("libbpf-rs")) {
        (Some(sys), Some(rs)) => r.pass(format!(
            "Rust probes: libbpf-rs {rs} on libbpf-sys {sys} (its vendored libbpf, linked statically); C probes: {}",
            match (c_libbpf.kind, &c_libbpf.version) {
                ("none", _) => "no usable libbpf (see `C libbpf`)".to_string(),
                (kind, Some(v)) => format!("the {kind} libbpf {v}"),
                (kind, None) => format!("the {kind} libbpf"),
            }
        )),
        _ => r.pass("no Rust probes in this workspace (no libbpf-rs in Cargo.lock)"),
    }
}

fn tool_output(tool: &tool::Tool, args: &[&str]) -> String {
    match Cmd::new(tool).args(args).output() {
        Ok(out) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => String::new(),
    }
}

fn simple_tool_row(
    kind: ToolKind,
    name: &'static str,
    required: bool,
    version_args: &[&str],
    install: &dyn Fn(&'static str) -> String,
) -> Row {
    let r = row("tools", name, required);
    match tool::find(kind) {
        Err(e) => r.fail(e.to_string(), install(name)),
        Ok(found) => {
            let text = tool_output(&found, version_args);
            // `llvm-strip --version` opens with a banner; the line naming a version is the useful one.
            let version = text
                .lines()
                .find(|l| l.contains("version") || l.contains("Make"))
                .or_else(|| text.lines().next())
                .unwrap_or("")
                .trim()
                .to_string();
            r.pass(format!("{version} ({})", found.program.display()))
        }
    }
}

fn header_row(name: &'static str, header: &str, install: &dyn Fn(&'static str) -> String) -> Row {
    let r = row("libraries", name, true);
    match toolchain::find_system_header(header) {
        Some(path) => r.pass(format!("{}", path.display())),
        None => r.fail(format!("{header} not found"), install(name)),
    }
}

fn mount_row(name: &'static str, fstype: &'static str, point: &'static str) -> Row {
    let r = row("kernel", name, false);
    if kernel::is_mounted(fstype, point) {
        r.pass(format!("mounted at {point}"))
    } else {
        r.fail(
            format!("not mounted at {point}"),
            format!("mount -t {fstype} {fstype} {point}"),
        )
        .with_action(FixAction::Mount { fstype, point })
    }
}

fn apply_fixes(actions: &[FixAction]) -> Result<()> {
    if !kernel::is_root() {
        bail!(
            "`--fix` installs packages and mounts filesystems, which needs root: run it with sudo"
        );
    }
    let os = OsRelease::read();
    let release = kernel::release().unwrap_or_default();
    let mut packages: Vec<String> = Vec::new();
    for action in actions {
        if let FixAction::Install(requirement) = action {
            let Some(family) = Family::detect(&os) else {
                bail!(
                    "cannot install {requirement}: no package names are known for OS `{}`; add a family to repo-config/packages.toml",
                    os.id
                );
            };
            for p in family.packages_for(requirement, &release) {
                if !packages.contains(&p) {
                    packages.push(p);
                }
            }
        }
    }
    if !packages.is_empty() {
        let family = Family::detect(&os).expect("checked above");
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

fn print_table(report: &Report) {
    let mut section = "";
    for r in &report.rows {
        if r.section != section {
            section = r.section;
            let title = match section {
                "attach" => "attach kinds (tested by loading, attaching and firing a tiny program; informational)",
                other => other,
            };
            println!("{title}");
        }
        let mark = if r.ok { "✔" } else { "✘" };
        let optional = if !r.ok && !r.required && r.section != "attach" {
            " (optional)"
        } else {
            ""
        };
        println!("  {mark} {:<16} {}{optional}", r.name, r.value);
        if let (false, Some(fix)) = (r.ok, &r.fix) {
            println!("    {:<16} fix: {fix}", "");
        }
    }
    let failed = report.failed_required();
    if failed.is_empty() {
        println!("ready to build probes");
    } else {
        println!("not ready to build probes: missing {}", failed.join(", "));
    }
}
