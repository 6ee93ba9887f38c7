//! The probe tree: finding its root by the marker file, its fixed layout, and the probes in it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::paths;

/// The file that marks a workspace root, as `Cargo.toml` marks a cargo package.
pub const MARKER: &str = "ebpf-probe.toml";
/// Optional per-probe settings, what the old per-probe Makefile could say.
pub const PROBE_CONFIG: &str = "probe.toml";

/// Workspace-wide settings; unknown keys are refused so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// `[libbpf]`: the policy, mirrors of the pinned tarball, or a replacement pin.
    #[serde(default)]
    pub libbpf: crate::libbpf::LibbpfConfig,
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
}

impl Workspace {
    /// The workspace containing `start`: `start` itself or the nearest parent holding the marker file.
    pub fn find(start: &Path) -> Result<Workspace> {
        let start = start
            .canonicalize()
            .with_context(|| format!("cannot use directory `{}`", start.display()))?;
        for dir in start.ancestors() {
            if dir.join(MARKER).is_file() {
                let workspace = Workspace {
                    root: dir.to_path_buf(),
                };
                workspace.config()?;
                return Ok(workspace);
            }
        }
        bail!(
            "no ebpf-probe workspace at `{}` or any parent directory (a workspace has a `{MARKER}` file at its root); \
             run from inside one, pass `-C DIR`, or create one with `ebpf-probe init DIR`",
            start.display()
        )
    }

    pub fn config(&self) -> Result<WorkspaceConfig> {
        let path = self.root.join(MARKER);
        toml::from_str(&paths::read_to_string(&path)?)
            .with_context(|| format!("invalid workspace file `{}`", path.display()))
    }

    /// SDK headers and the generated kernel headers.
    pub fn include_dir(&self) -> PathBuf {
        self.root.join("include")
    }

    /// Userland C shared by every probe (the old `src/lib/`), compiled once.
    pub fn lib_dir(&self) -> PathBuf {
        self.root.join("lib")
    }

    pub fn probes_dir(&self) -> PathBuf {
        self.root.join("probes")
    }

    /// Everything the build writes; `clean` removes from here only.
    pub fn output_dir(&self) -> PathBuf {
        self.root.join(".output")
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.output_dir().join("bin")
    }

    pub fn lib_output_dir(&self) -> PathBuf {
        self.output_dir().join("lib")
    }

    /// Precompiled kernel headers, one per (header, clang, flags).
    pub fn pch_dir(&self) -> PathBuf {
        self.output_dir().join("pch")
    }

    pub fn probe_output_dir(&self, probe: &str) -> PathBuf {
        self.output_dir().join(probe)
    }

    /// The environment check's own tiny probes.
    pub fn check_output_dir(&self) -> PathBuf {
        self.output_dir().join(".check")
    }

    /// Every probe directory under `probes/`, sorted by name. A probe is a directory with a `*.bpf.c`.
    pub fn probes(&self) -> Result<Vec<Probe>> {
        let dir = self.probes_dir();
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut probes = Vec::new();
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("failed to list `{}`", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            let has_bpf = !paths::files_with_suffix(&path, ".bpf.c")?.is_empty();
            if !has_bpf && !path.join(PROBE_CONFIG).is_file() {
                continue;
            }
            probes.push(Probe::load(name, path)?);
        }
        probes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(probes)
    }

    /// The probes named on the command line (all when none are named), minus `exclude`.
    pub fn select_probes(&self, names: &[String], exclude: &[String]) -> Result<Vec<Probe>> {
        let all = self.probes()?;
        for name in names.iter().chain(exclude) {
            if !all.iter().any(|p| &p.name == name) {
                let known: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
                bail!(
                    "no probe named `{name}` in `{}` (probes here: {})",
                    self.probes_dir().display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            }
        }
        Ok(all
            .into_iter()
            .filter(|p| names.is_empty() || names.contains(&p.name))
            .filter(|p| !exclude.contains(&p.name))
            .collect())
    }
}

/// Per-probe settings from `probes/<probe>/probe.toml`; every key is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Executable name when it differs from the directory (the old `lvsprobe/trace_lvs`).
    pub binary: Option<String>,
    /// Extra flags for clang when compiling `*.bpf.c`, e.g. `["-mcpu=v3"]`.
    #[serde(default)]
    pub clang_flags: Vec<String>,
    /// Extra flags for the C compiler when compiling userland `*.c`.
    #[serde(default)]
    pub cflags: Vec<String>,
    /// Extra libraries to link, as `-l` names (`"pthread"`) or full flags (`"-Wl,--as-needed"`).
    #[serde(default)]
    pub libs: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub dir: PathBuf,
    pub config: ProbeConfig,
}

/// The language of a probe's loader: C files beside the `.bpf.c`, or a cargo crate (a `Cargo.toml` there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Userland {
    C,
    Rust,
}

impl Probe {
    fn load(name: String, dir: PathBuf) -> Result<Probe> {
        let config_path = dir.join(PROBE_CONFIG);
        let config = if config_path.is_file() {
            let config: ProbeConfig = toml::from_str(&paths::read_to_string(&config_path)?)
                .with_context(|| {
                    format!("invalid probe settings in `{}`", config_path.display())
                })?;
            if let Some(binary) = &config.binary {
                validate_binary_name(binary)
                    .with_context(|| format!("invalid `binary` in `{}`", config_path.display()))?;
            }
            config
        } else {
            ProbeConfig::default()
        };
        Ok(Probe { name, dir, config })
    }

    pub fn userland(&self) -> Userland {
        if self.dir.join("Cargo.toml").is_file() {
            Userland::Rust
        } else {
            Userland::C
        }
    }

    pub fn binary_name(&self) -> &str {
        self.config.binary.as_deref().unwrap_or(&self.name)
    }
}

pub fn validate_binary_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok {
        bail!("`{name}` is not a plain file name (letters, digits, `_`, `-`, `.`; no `/`)");
    }
    Ok(())
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

    #[test]
    fn binary_names_must_be_plain_file_names() {
        assert!(validate_binary_name("trace_lvs").is_ok());
        assert!(validate_binary_name("../x").is_err());
        assert!(validate_binary_name("a/b").is_err());
        assert!(validate_binary_name("").is_err());
    }
}
