//! The libbpf rows of `libraries`: the system headers, which libbpf C probes use and why, bpftool skew, Rust probes.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::fix::FixAction;
use super::{Host, Row};
use crate::libbpf::{Decision, Policy};
use crate::tool::{self, ToolKind};
use crate::toolchain::{self, Version, MIN_LIBBPF};

/// Which libbpf C probes will build against, as `--check --json` reports it under `libbpf`.
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

pub struct LibbpfRows {
    pub rows: Vec<Row>,
    pub choice: LibbpfChoice,
}

/// `decision` is `libbpf::decide`'s answer for this check; `bpftool_libbpf` the libbpf bpftool was built on.
pub fn rows(
    host: &Host,
    decision: &Result<Decision>,
    policy: &Policy,
    bpftool_libbpf: Option<Version>,
    workspace_root: Option<&Path>,
) -> LibbpfRows {
    let mut rows = vec![system_libbpf_row(host, decision)];
    let (c_libbpf_row, choice) = c_libbpf_row(decision, policy, host);
    rows.push(c_libbpf_row);
    let linked = choice.version.as_deref().and_then(toolchain::parse_version);
    if let (Some(tool_libbpf), Some(linked)) = (bpftool_libbpf, linked) {
        rows.push(skeleton_skew_row(tool_libbpf, linked));
    }
    rows.push(rust_libbpf_row(workspace_root, &choice));
    LibbpfRows { rows, choice }
}

/// The system's libbpf headers: they matter to `-b` only when the build uses them; `--fix` still installs them.
fn system_libbpf_row(host: &Host, decision: &Result<Decision>) -> Row {
    let uses_system = matches!(
        decision,
        Ok(Decision::System(_)) | Ok(Decision::SystemUnusable(_))
    );
    let r = Row::new("libraries", "libbpf", uses_system);
    let too_old_fix = || {
        format!(
            "install libbpf >= {}.{} ({})",
            MIN_LIBBPF.0,
            MIN_LIBBPF.1,
            host.install_command("libbpf")
        )
    };
    match toolchain::find_libbpf_headers() {
        None => r.fail("bpf/libbpf.h not found", host.install_command("libbpf")),
        Some(h) => match h.version {
            Some(v) if (v.0, v.1) >= MIN_LIBBPF => r.pass(format!(
                "{}.{} (headers in {}/bpf)",
                v.0,
                v.1,
                h.include_dir.display()
            )),
            Some(v) => r.fail(
                format!(
                    "{}.{} is older than {}.{}",
                    v.0, v.1, MIN_LIBBPF.0, MIN_LIBBPF.1
                ),
                too_old_fix(),
            ),
            None => r.fail(
                format!(
                    "no version in {}/bpf/libbpf_version.h",
                    h.include_dir.display()
                ),
                too_old_fix(),
            ),
        },
    }
    .with_action(FixAction::install("libbpf"))
}

/// Which libbpf `-b` will use for C probes and why, from `libbpf::decide`: no download, no build.
fn c_libbpf_row(decision: &Result<Decision>, policy: &Policy, host: &Host) -> (Row, LibbpfChoice) {
    let r = Row::new("libraries", "C libbpf", true);
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
            format!(
                "{}, or use `--libbpf pinned`",
                host.install_command("libbpf")
            ),
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
                    host.install_command("make"),
                )
                .with_action(FixAction::install("make"))
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

/// A skeleton from a bpftool built on a newer libbpf may use API the linked libbpf lacks.
fn skeleton_skew_row(tool_libbpf: Version, linked: Version) -> Row {
    let skew = Row::new("libraries", "skeleton/libbpf", false);
    if (tool_libbpf.0, tool_libbpf.1) <= (linked.0, linked.1) {
        skew.pass(format!(
            "bpftool's libbpf {}.{} <= linked libbpf {}.{}",
            tool_libbpf.0, tool_libbpf.1, linked.0, linked.1
        ))
    } else {
        skew.fail(
            format!(
                "bpftool is built on libbpf {}.{} but probes link libbpf {}.{}",
                tool_libbpf.0, tool_libbpf.1, linked.0, linked.1
            ),
            "skeletons may use newer libbpf API; install a libbpf-dev matching bpftool, or set BPFTOOL to an older bpftool",
        )
    }
}

/// Rust probes link libbpf-sys's vendored libbpf statically (libbpf-rs 0.27 needs a newer libbpf than
/// Debian 12's 1.1), while C probes link the libbpf `C libbpf` names: report both so a skew is never a surprise.
fn rust_libbpf_row(workspace_root: Option<&Path>, c_libbpf: &LibbpfChoice) -> Row {
    let r = Row::new("libraries", "rust libbpf", false);
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
