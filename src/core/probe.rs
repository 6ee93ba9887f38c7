//! One probe: its directory, its `probe.toml`, and what that makes of it — sources, BPF objects (with or without
//! a skeleton, installed or not), extra libraries — resolved against the probe directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::core::manifest::{self, ProbeConfig};
use crate::paths;

/// Optional per-probe settings, what the old per-probe Makefile could say.
pub const PROBE_CONFIG: &str = "probe.toml";

#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub dir: PathBuf,
    pub config: ProbeConfig,
    /// One of a flat layout's tools: `dir` is shared with the others, and its settings come from the manifest.
    pub flat: bool,
    /// Why its settings could not be read: an error only when it is selected, so one broken probe.toml does
    /// not stop the build of another probe.
    pub problem: Option<String>,
}

/// The language of a probe's loader: C files beside the `.bpf.c`, or a cargo crate (a `Cargo.toml` there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Userland {
    C,
    Rust,
}

/// A BPF program source of a probe and what becomes of its object.
#[derive(Debug, Clone)]
pub struct BpfSource {
    pub source: PathBuf,
    /// The source's path relative to the probe dir without `.bpf.c` (`bpf/kern_sock`): outputs mirror it.
    pub relative_stem: PathBuf,
    pub skeleton: bool,
    /// Subdirectory of the binary dir the object is installed into.
    pub install: Option<String>,
}

/// What a probe's sources are, its globs expanded.
#[derive(Debug)]
pub struct ProbeSources {
    pub bpf: Vec<BpfSource>,
    pub c: Vec<PathBuf>,
    pub cxx: Vec<PathBuf>,
}

impl Probe {
    pub fn load(name: String, dir: PathBuf) -> Result<Probe> {
        let config_path = dir.join(PROBE_CONFIG);
        let config = if config_path.is_file() {
            let config: ProbeConfig = manifest::read(&config_path, "probe settings")?;
            validate(&config, &config_path)?;
            config
        } else {
            ProbeConfig::default()
        };
        Ok(Probe {
            name,
            dir,
            config,
            flat: false,
            problem: None,
        })
    }

    /// A flat layout's tool `name`: `<name>.bpf.c` and `<name>.c` in `dir` unless `[probe.NAME]` says otherwise,
    /// and `<name>.meta` when it exists.
    pub fn flat(
        name: String,
        dir: PathBuf,
        mut config: ProbeConfig,
        manifest: &Path,
    ) -> Result<Probe> {
        validate(&config, manifest).with_context(|| format!("in `[probe.{name}]`"))?;
        config
            .bpf
            .get_or_insert_with(|| vec![format!("{name}.bpf.c")]);
        config
            .sources
            .get_or_insert_with(|| vec![format!("{name}.c")]);
        config.cxx_sources.get_or_insert_with(Vec::new);
        config
            .meta
            .get_or_insert_with(|| vec![format!("{name}.meta")]);
        Ok(Probe {
            name,
            dir,
            config,
            flat: true,
            problem: None,
        })
    }
}

impl Probe {
    /// A probe whose settings could not be read, kept with why.
    pub fn broken(name: String, dir: PathBuf, error: &anyhow::Error) -> Probe {
        Probe {
            name,
            dir,
            config: ProbeConfig::default(),
            flat: false,
            problem: Some(format!("{error:#}")),
        }
    }
}

/// The checks every probe's settings get, wherever they are written.
fn validate(config: &ProbeConfig, config_path: &Path) -> Result<()> {
    if let Some(binary) = &config.binary {
        validate_binary_name(binary)
            .with_context(|| format!("invalid `binary` in `{}`", config_path.display()))?;
    }
    for library in &config.library {
        validate_binary_name(&library.name).with_context(|| {
            format!("invalid `[[library]] name` in `{}`", config_path.display())
        })?;
    }
    for install in config
        .object
        .iter()
        .filter_map(|o| o.install.as_deref())
        .chain(config.library.iter().filter_map(|l| l.install.as_deref()))
    {
        validate_install_subdir(install)
            .with_context(|| format!("invalid `install` in `{}`", config_path.display()))?;
    }
    Ok(())
}

impl Probe {
    /// Where its settings are written (for messages): its probe.toml, or the flat layout's manifest.
    pub fn config_path(&self) -> PathBuf {
        if self.flat {
            self.dir.join(manifest::MARKER)
        } else {
            self.dir.join(PROBE_CONFIG)
        }
    }

    /// Its `conf/` directory, installed by `install -c`; a flat layout's tools share a directory, so have none.
    pub fn conf_dir(&self) -> Option<PathBuf> {
        (!self.flat).then(|| self.dir.join("conf"))
    }

    pub fn userland(&self) -> Userland {
        if !self.flat && self.dir.join("Cargo.toml").is_file() {
            Userland::Rust
        } else {
            Userland::C
        }
    }

    pub fn binary_name(&self) -> &str {
        self.config.binary.as_deref().unwrap_or(&self.name)
    }

    /// Its `.meta` files: `meta = [...]` in probe.toml, else `*.meta` in its directory.
    pub fn meta_files(&self) -> Result<Vec<PathBuf>> {
        match &self.config.meta {
            Some(patterns) => paths::glob_files(&self.dir, patterns)
                .with_context(|| format!("in `meta` of `{}`", self.config_path().display())),
            None => paths::files_with_suffix(&self.dir, ".meta"),
        }
    }

    /// Extra include dirs from probe.toml, resolved.
    pub fn include_dirs(&self) -> Vec<PathBuf> {
        self.config
            .includes
            .iter()
            .map(|d| crate::paths::normalize(&self.dir.join(d)))
            .collect()
    }

    /// Expands the probe's source globs. An error names the probe dir and what is missing.
    pub fn sources(&self) -> Result<ProbeSources> {
        let context = || format!("in `{}`", self.config_path().display());
        let default = |globs: &Option<Vec<String>>, pattern: &str| -> Vec<String> {
            globs.clone().unwrap_or_else(|| vec![pattern.to_string()])
        };
        let bpf_files = paths::glob_files(&self.dir, &default(&self.config.bpf, "*.bpf.c"))
            .with_context(context)?;
        if bpf_files.is_empty() {
            bail!("`{}` has no *.bpf.c kernel program", self.dir.display());
        }
        let mut bpf = Vec::new();
        for source in bpf_files {
            let relative = source
                .strip_prefix(&self.dir)
                .unwrap_or(&source)
                .to_path_buf();
            let name = relative.to_string_lossy();
            let stem = name.strip_suffix(".bpf.c").unwrap_or(&name);
            let mut skeleton = true;
            let mut install = None;
            for object in &self.config.object {
                if paths::glob_matches(&object.source, &name).with_context(context)? {
                    skeleton = object.skeleton.unwrap_or(skeleton);
                    install = object.install.clone().or(install);
                }
            }
            bpf.push(BpfSource {
                relative_stem: PathBuf::from(stem),
                source,
                skeleton,
                install,
            });
        }
        if self.userland() == Userland::Rust {
            return Ok(ProbeSources {
                bpf,
                c: Vec::new(),
                cxx: Vec::new(),
            });
        }
        let library_sources: Vec<PathBuf> = self
            .config
            .library
            .iter()
            .flat_map(|l| l.sources.iter().map(|s| self.dir.join(s)))
            .collect();
        let c: Vec<PathBuf> = paths::glob_files(&self.dir, &default(&self.config.sources, "*.c"))
            .with_context(context)?
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".bpf.c"))
            .filter(|p| !library_sources.contains(p))
            .collect();
        let cxx = paths::glob_files(&self.dir, &default(&self.config.cxx_sources, "*.cpp"))
            .with_context(context)?;
        if c.is_empty() && cxx.is_empty() {
            bail!(
                "`{}` has no userland *.c file (expected `{}.c` with main() that loads the skeleton)",
                self.dir.display(),
                self.binary_name()
            );
        }
        Ok(ProbeSources { bpf, c, cxx })
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

/// An install subdirectory is relative and stays inside the directory it is installed into.
pub fn validate_install_subdir(dir: &str) -> Result<()> {
    if dir == "." {
        return Ok(());
    }
    let path = Path::new(dir);
    let ok = !dir.is_empty()
        && path.components().all(|c| {
            matches!(c, std::path::Component::Normal(n) if !n.to_string_lossy().starts_with('.'))
        });
    if !ok {
        bail!("`{dir}` must be a relative directory inside the install dir (no `..`, no leading `/` or `.`)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_names_must_be_plain_file_names() {
        assert!(validate_binary_name("trace_lvs").is_ok());
        assert!(validate_binary_name("../x").is_err());
        assert!(validate_binary_name("a/b").is_err());
        assert!(validate_binary_name("").is_err());
    }

    #[test]
    fn install_subdirs_stay_inside() {
        assert!(validate_install_subdir(".").is_ok());
        assert!(validate_install_subdir("stack_bpf").is_ok());
        assert!(validate_install_subdir("a/b").is_ok());
        assert!(validate_install_subdir("../etc").is_err());
        assert!(validate_install_subdir("/etc").is_err());
        assert!(validate_install_subdir("").is_err());
    }

    #[test]
    fn sources_follow_globs_and_object_settings() {
        let dir = tempfile::tempdir().unwrap();
        let probe_dir = dir.path().join("stackprobe");
        for file in [
            "stack_bpf/a.bpf.c",
            "stack_bpf/b.bpf.c",
            "main.c",
            "protocol/http/http.c",
            "protocol/x.c",
            "jvmti/agent.c",
            "x.cpp",
        ] {
            let path = probe_dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        std::fs::write(
            probe_dir.join(PROBE_CONFIG),
            r#"
            bpf = ["stack_bpf/*.bpf.c"]
            sources = ["*.c", "protocol/**/*.c"]
            [[object]]
            source = "stack_bpf/b.bpf.c"
            skeleton = false
            install = "stack_bpf"
            [[library]]
            name = "agent.so"
            sources = ["jvmti/agent.c"]
            "#,
        )
        .unwrap();
        let probe = Probe::load("stackprobe".into(), probe_dir.clone()).unwrap();
        let sources = probe.sources().unwrap();
        let stems: Vec<_> = sources
            .bpf
            .iter()
            .map(|b| b.relative_stem.clone())
            .collect();
        assert_eq!(
            stems,
            [PathBuf::from("stack_bpf/a"), PathBuf::from("stack_bpf/b")]
        );
        assert!(sources.bpf[0].skeleton && sources.bpf[0].install.is_none());
        assert!(!sources.bpf[1].skeleton);
        assert_eq!(sources.bpf[1].install.as_deref(), Some("stack_bpf"));
        let c: Vec<_> = sources
            .c
            .iter()
            .map(|p| p.strip_prefix(&probe_dir).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            c,
            ["main.c", "protocol/http/http.c", "protocol/x.c"].map(PathBuf::from)
        );
        assert_eq!(sources.cxx.len(), 1);
    }
}
