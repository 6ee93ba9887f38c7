//! The workspace: found by its marker file, its configuration parsed once, and its layout — where probes, SDK
//! headers, the kernel header, shared sources and outputs are. Every other module asks it instead of joining paths.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::core::manifest::{self, WorkspaceManifest};
use crate::core::probe::{Probe, PROBE_CONFIG};
use crate::core::trust;
use crate::paths;

pub use crate::core::manifest::MARKER;

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    /// `ebpf-probe.toml`, as parsed once when the workspace was found.
    pub manifest: WorkspaceManifest,
    pub layout: Layout,
    /// Where this build writes: `.output`, or `.output/<ARCH>` for another architecture (`for_arch`).
    output: PathBuf,
}

/// Where things are, resolved against the root; defaults are the layout `init` creates.
#[derive(Debug, Clone)]
pub struct Layout {
    pub probes_dir: PathBuf,
    /// A directory under `probes_dir` is a probe when it holds this file; `None`: a `*.bpf.c` or `probe.toml`.
    pub probe_marker: Option<String>,
    pub skip: Vec<String>,
    /// SDK include dirs in order.
    pub include_dirs: Vec<PathBuf>,
    pub kernel_header_dir: PathBuf,
    pub check_meta: bool,
    pub ext_def: bool,
    /// Probes are `<name>.bpf.c` files in `probes_dir`, not directories.
    pub flat: bool,
}

/// A named set of userland sources shared by probes (`lib/*.c` by default), compiled once.
#[derive(Debug, Clone)]
pub struct SharedSet {
    pub name: String,
    pub c: Vec<PathBuf>,
    pub cxx: Vec<PathBuf>,
    /// The directories its sources are in: on the include path of every probe that links it.
    pub dirs: Vec<PathBuf>,
}

impl Workspace {
    /// The workspace containing `start`: `start` itself or the nearest parent holding the marker file.
    pub fn find(start: &Path) -> Result<Workspace> {
        let start = start
            .canonicalize()
            .with_context(|| format!("cannot use directory `{}`", start.display()))?;
        for dir in start.ancestors() {
            let marker = dir.join(MARKER);
            if marker.is_dir() {
                bail!(
                    "`{}` is a directory; a workspace marker must be a file (it may be empty)",
                    marker.display()
                );
            }
            if marker.is_file() {
                return Workspace::load(dir);
            }
        }
        bail!(
            "no ebpf-probe workspace at `{}` or any parent directory (a workspace has a `{MARKER}` file at its root); \
             run from inside one, pass `-C DIR`, or create one with `ebpf-probe init DIR`",
            start.display()
        )
    }

    /// The workspace rooted at `root`, whose marker file exists.
    pub fn load(root: &Path) -> Result<Workspace> {
        trust::check_owner(root, root, "workspace directory")?;
        trust::check_owner(&root.join(MARKER), root, "workspace file")?;
        let manifest: WorkspaceManifest = manifest::read(&root.join(MARKER), "workspace settings")?;
        let btf_defines = &manifest.build.btf_defines;
        if !btf_defines.is_empty() && btf_defines.len() != 2 {
            bail!(
                "`[build] btf_defines` in `{}` names {} define(s); it takes two, the one for kernels with BTF first: \
                 [\"__BTF_ENABLE_ON\", \"__BTF_ENABLE_OFF\"]",
                root.join(MARKER).display(),
                btf_defines.len()
            );
        }
        let layout = Layout::resolve(root, &manifest);
        Ok(Workspace {
            root: root.to_path_buf(),
            manifest,
            layout,
            output: root.join(".output"),
        })
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(MARKER)
    }

    pub fn kernel_header_dir(&self) -> &Path {
        &self.layout.kernel_header_dir
    }

    pub fn probes_dir(&self) -> &Path {
        &self.layout.probes_dir
    }

    /// Everything the build writes; `clean` removes from here only.
    pub fn output_dir(&self) -> PathBuf {
        self.output.clone()
    }

    /// The directory whose `.lock` serializes every build, clean and btfgen of the workspace: `.output`, also
    /// for an architecture's view (its tree is inside).
    pub fn lock_dir(&self) -> PathBuf {
        self.root.join(".output")
    }

    /// The same workspace built for another architecture (`-b --arch`): every output under `.output/<arch>/`, and
    /// `sdk_mirror` (the SDK headers beside that architecture's `vmlinux.h`) first on every include path.
    pub fn for_arch(&self, arch: &str, sdk_mirror: &Path) -> Workspace {
        let mut view = self.clone();
        view.output = self.output.join(arch);
        view.layout.include_dirs.insert(0, sdk_mirror.to_path_buf());
        view
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.output_dir().join("bin")
    }

    /// Objects of shared source sets: `.output/lib/` for the default set, `.output/shared/<set>/` for others.
    pub fn shared_output_dir(&self, set: &str) -> PathBuf {
        if set == "lib" {
            self.output_dir().join("lib")
        } else {
            self.output_dir().join("shared").join(set)
        }
    }

    /// Precompiled kernel headers, one per (header, clang, flags).
    pub fn pch_dir(&self) -> PathBuf {
        self.output_dir().join("pch")
    }

    pub fn probe_output_dir(&self, probe: &str) -> PathBuf {
        self.output_dir().join(probe)
    }

    /// The built `.bpf.o` files of a probe, where the build puts them; an error names the first one not built.
    pub fn built_bpf_objects(&self, probe: &Probe) -> Result<Vec<PathBuf>> {
        let out_dir = self.probe_output_dir(&probe.name);
        let mut objects = Vec::new();
        for bpf in probe.sources()?.bpf {
            let object = out_dir.join(format!("{}.bpf.o", bpf.relative_stem.display()));
            if !object.is_file() {
                bail!(
                    "`{}` is not built (run `ebpf-probe -b {}` first)",
                    object.display(),
                    probe.name
                );
            }
            objects.push(object);
        }
        Ok(objects)
    }

    /// The environment check's own tiny probes.
    pub fn check_output_dir(&self) -> PathBuf {
        self.output_dir().join(".check")
    }

    /// The loader `verify` builds and runs.
    pub fn verify_output_dir(&self) -> PathBuf {
        self.output_dir().join(".verify")
    }

    /// The shared source sets, with their globs expanded; the default is `lib` = `lib/*.c`.
    pub fn shared_sets(&self) -> Result<Vec<SharedSet>> {
        let mut sets = Vec::new();
        if self.manifest.sources.is_empty() {
            let lib = self.root.join("lib");
            if lib.is_dir() {
                sets.push(SharedSet {
                    name: "lib".into(),
                    c: paths::files_with_suffix(&lib, ".c")?,
                    cxx: Vec::new(),
                    dirs: vec![lib],
                });
            }
            return Ok(sets);
        }
        for (name, config) in &self.manifest.sources {
            let context = || {
                format!(
                    "in `[sources.{name}]` of `{}`",
                    self.manifest_path().display()
                )
            };
            let c = paths::glob_files(&self.root, &config.c).with_context(context)?;
            let cxx = paths::glob_files(&self.root, &config.cxx).with_context(context)?;
            let mut dirs: Vec<PathBuf> = Vec::new();
            for file in c.iter().chain(&cxx) {
                if let Some(dir) = file.parent() {
                    if !dirs.iter().any(|d| d == dir) {
                        dirs.push(dir.to_path_buf());
                    }
                }
            }
            sets.push(SharedSet {
                name: name.clone(),
                c,
                cxx,
                dirs,
            });
        }
        Ok(sets)
    }

    /// The shared sets a probe links when its probe.toml does not say.
    pub fn default_shared(&self) -> Vec<String> {
        match &self.manifest.build.shared {
            Some(names) => names.clone(),
            None if self.manifest.sources.is_empty()
                || self.manifest.sources.contains_key("lib") =>
            {
                vec!["lib".to_string()]
            }
            None => Vec::new(),
        }
    }

    /// The libraries the configuration names beyond the ones every build needs (libbpf, libelf, zlib, pthread):
    /// `[build] libs`, each probe's `libs`, `stdc++` for C++ sources, `jni` for a `jni = true` library. Linker
    /// names, as `--check` looks them up.
    pub fn named_libraries(&self, probes: &[Probe]) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut add = |name: &str| {
            let name = name.strip_prefix("-l").unwrap_or(name);
            let is_plain = !name.is_empty()
                && !name.starts_with('-')
                && !name.contains('/')
                && !["bpf", "elf", "z", "pthread", "c", "m", "dl", "rt"].contains(&name);
            if is_plain && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        };
        for lib in &self.manifest.build.libs {
            add(lib);
        }
        if self
            .manifest
            .sources
            .values()
            .any(|set| !set.cxx.is_empty())
        {
            add("stdc++");
        }
        for probe in probes {
            for lib in &probe.config.libs {
                add(lib);
            }
            if probe
                .config
                .cxx_sources
                .as_ref()
                .is_some_and(|c| !c.is_empty())
            {
                add("stdc++");
            }
            if probe.config.library.iter().any(|l| l.jni) {
                add("jni");
            }
        }
        names
    }

    /// Every probe, sorted by name, each with its `probe.toml` read: read once per command.
    pub fn probes(&self) -> Result<Vec<Probe>> {
        let dir = self.probes_dir();
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        if self.layout.flat {
            return self.flat_probes();
        }
        let mut probes = Vec::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("failed to list `{}`", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') || !path.is_dir() || self.layout.skip.contains(&name) {
                continue;
            }
            let is_probe = match &self.layout.probe_marker {
                Some(marker) => path.join(marker).is_file(),
                None => {
                    !paths::files_with_suffix(&path, ".bpf.c")?.is_empty()
                        || path.join(PROBE_CONFIG).is_file()
                }
            };
            if is_probe {
                let loaded =
                    trust::check_owner(&path.join(PROBE_CONFIG), &self.root, "probe settings")
                        .and_then(|()| Probe::load(name.clone(), path.clone()));
                probes.push(loaded.unwrap_or_else(|e| Probe::broken(name, path, &e)));
            }
        }
        probes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(probes)
    }
}

impl Workspace {
    /// A flat layout's probes: one per `<name>.bpf.c` in the probes dir, with `[probe.NAME]` from the manifest.
    fn flat_probes(&self) -> Result<Vec<Probe>> {
        let dir = self.probes_dir();
        let mut probes = Vec::new();
        for source in paths::files_with_suffix(dir, ".bpf.c")? {
            let file = source.file_name().unwrap_or_default().to_string_lossy();
            let name = file.trim_end_matches(".bpf.c").to_string();
            if self.layout.skip.contains(&name) {
                continue;
            }
            let config = self.manifest.probe.get(&name).cloned().unwrap_or_default();
            probes.push(Probe::flat(
                name,
                dir.to_path_buf(),
                config,
                &self.manifest_path(),
            )?);
        }
        for name in self.manifest.probe.keys() {
            if !probes.iter().any(|p| &p.name == name) {
                bail!(
                    "`[probe.{name}]` in `{}` names no probe: there is no `{name}.bpf.c` in `{}`",
                    self.manifest_path().display(),
                    dir.display()
                );
            }
        }
        Ok(probes)
    }
}

impl Layout {
    fn resolve(root: &Path, manifest: &WorkspaceManifest) -> Layout {
        let config = &manifest.layout;
        let join = |relative: &str| crate::paths::normalize(&root.join(relative));
        let include_dirs: Vec<PathBuf> = match &config.include {
            Some(dirs) if !dirs.is_empty() => dirs.iter().map(|d| join(d)).collect(),
            _ => vec![root.join("include")],
        };
        Layout {
            probes_dir: join(config.probes.as_deref().unwrap_or("probes")),
            probe_marker: config.probe_marker.clone(),
            skip: config.skip.clone(),
            kernel_header_dir: config
                .kernel_header_dir
                .as_deref()
                .map(join)
                .unwrap_or_else(|| include_dirs[0].clone()),
            include_dirs,
            check_meta: config.meta.unwrap_or(true),
            ext_def: config.ext_def.unwrap_or(true),
            flat: config.flat.unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_layout_is_what_init_creates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MARKER), "").unwrap();
        let workspace = Workspace::load(dir.path()).unwrap();
        assert_eq!(workspace.layout.probes_dir, dir.path().join("probes"));
        assert_eq!(workspace.layout.include_dirs, [dir.path().join("include")]);
        assert_eq!(
            workspace.layout.kernel_header_dir,
            dir.path().join("include")
        );
        assert!(workspace.layout.check_meta && workspace.layout.ext_def);
        assert_eq!(workspace.default_shared(), ["lib"]);
    }
}
