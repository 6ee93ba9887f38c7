//! `install` / `uninstall`: copies built probes, their `.meta` and `conf/` files into the gala-gopher
//! directories (optionally under a DESTDIR), atomically, and records exactly what it wrote in a manifest
//! so that `uninstall` removes those files and the directories it created, and nothing else.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::core::artifacts::BuiltProbe;
use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use crate::paths;

pub struct InstallDirs {
    pub bin_dir: PathBuf,
    pub conf_dir: PathBuf,
    pub meta_dir: PathBuf,
    pub destdir: Option<PathBuf>,
}

/// Where the manifest lives in the installed tree (under DESTDIR when given).
const MANIFEST: &str = "var/lib/ebpf-probe/installed.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    files: Vec<InstalledFile>,
    /// Directories `install` created, to remove again when they are empty.
    dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct InstalledFile {
    probe: String,
    path: PathBuf,
}

impl InstallDirs {
    /// `dir` as placed on disk: under DESTDIR when given (as `make install DESTDIR=` does).
    fn place(&self, dir: &Path) -> Result<PathBuf> {
        if dir.components().any(|c| c == Component::ParentDir) {
            bail!(
                "`{}` contains `..`; give a plain absolute directory",
                dir.display()
            );
        }
        match &self.destdir {
            Some(destdir) => {
                if !dir.is_absolute() {
                    bail!("`{}` must be absolute when --destdir is given (it is placed under DESTDIR)", dir.display());
                }
                Ok(destdir.join(dir.strip_prefix("/").unwrap_or(dir)))
            }
            None if dir.is_absolute() => Ok(dir.to_path_buf()),
            None => Ok(std::env::current_dir()?.join(dir)),
        }
    }

    fn manifest_path(&self) -> PathBuf {
        match &self.destdir {
            Some(destdir) => destdir.join(MANIFEST),
            None => Path::new("/").join(MANIFEST),
        }
    }
}

/// One file to install: built or source file → destination, with its mode.
struct Copy {
    probe: String,
    from: PathBuf,
    to: PathBuf,
    mode: u32,
}

/// Installs the selected probes (already built): executables, their standalone BPF objects and libraries in the
/// subdirectories their probe.toml names, `.meta` files and `conf/` files.
pub fn install(
    workspace: &Workspace,
    selection: &Selection,
    built: &[BuiltProbe],
    dirs: &InstallDirs,
) -> Result<()> {
    let probes = &selection.probes;
    let bin_dir = dirs.place(&dirs.bin_dir)?;
    let conf_dir = dirs.place(&dirs.conf_dir)?;
    let meta_dir = dirs.place(&dirs.meta_dir)?;
    let mut copies = Vec::new();
    for probe in probes {
        let Some(built) = built.iter().find(|b| b.name == probe.name) else {
            bail!("probe `{}` was not built", probe.name);
        };
        copies.push(Copy {
            probe: probe.name.clone(),
            from: built.binary.clone(),
            to: bin_dir.join(probe.binary_name()),
            mode: 0o755,
        });
        for installable in &built.installables {
            let name = installable.path.file_name().unwrap_or_default();
            let is_library = !name.to_string_lossy().ends_with(".bpf.o");
            copies.push(Copy {
                probe: probe.name.clone(),
                from: installable.path.clone(),
                to: bin_dir.join(&installable.subdir).join(name),
                mode: if is_library { 0o755 } else { 0o644 },
            });
        }
        for meta in probe.meta_files()? {
            let to = meta_dir.join(meta.file_name().unwrap());
            copies.push(Copy {
                probe: probe.name.clone(),
                from: meta,
                to,
                mode: 0o644,
            });
        }
        let conf = probe.dir.join("conf");
        if conf.is_dir() {
            for file in files_under(&conf)? {
                let to = conf_dir.join(file.strip_prefix(&conf).unwrap());
                copies.push(Copy {
                    probe: probe.name.clone(),
                    from: file,
                    to,
                    mode: 0o644,
                });
            }
        }
    }
    // Two probes may install the same file (gala-gopher's ksliprobe and pgsliprobe both ship `tc_tstamp.bpf.o`):
    // fine when the bytes are the same, and the first probe owns it.
    let mut unique: Vec<Copy> = Vec::new();
    for copy in copies {
        match unique.iter().find(|u| u.to == copy.to) {
            Some(first) if same_bytes(&first.from, &copy.from) => {}
            _ => unique.push(copy),
        }
    }
    let copies = unique;
    for (i, a) in copies.iter().enumerate() {
        if let Some(b) = copies[i + 1..].iter().find(|b| b.to == a.to) {
            bail!(
                "`{}` (probe {}) and `{}` (probe {}) would both be installed as `{}`",
                a.from.display(),
                a.probe,
                b.from.display(),
                b.probe,
                b.to.display()
            );
        }
    }

    let manifest_path = dirs.manifest_path();
    let mut manifest = read_manifest(&manifest_path)?;
    // Stage every file beside its destination first: an unwritable directory or a full disk fails here,
    // before anything is replaced, and the staged files and new directories are removed again.
    let mut created_dirs = Vec::new();
    let mut staged: Vec<(tempfile::TempPath, &Copy)> = Vec::new();
    let staging = (|| -> Result<()> {
        let mut wanted: Vec<&Path> = copies.iter().filter_map(|c| c.to.parent()).collect();
        wanted.extend(manifest_path.parent());
        for dir in wanted {
            create_dirs_recording(dir, &mut created_dirs)?;
        }
        for copy in &copies {
            if let Some(dir) = copy.to.parent() {
                // What an interrupted install left here.
                paths::remove_abandoned_temp_files(dir);
            }
            let temp = paths::temp_file_beside(&copy.to)?;
            stage_copy(&copy.from, &temp).with_context(|| {
                format!(
                    "failed to copy `{}` to `{}`",
                    copy.from.display(),
                    temp.display()
                )
            })?;
            set_mode(&temp, copy.mode)?;
            staged.push((temp, copy));
        }
        Ok(())
    })();
    if let Err(error) = staging {
        // Dropping the staged temp files removes them.
        drop(staged);
        for dir in created_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(error.context(format!(
            "nothing was installed (the directories are as they were); workspace `{}`",
            workspace.root.display()
        )));
    }
    // rename(2) replaces a running probe's executable without touching the file it is running from.
    for (temp, copy) in staged {
        paths::persist(temp, &copy.to)?;
        println!("  installed {} ({:o})", copy.to.display(), copy.mode);
        let entry = InstalledFile {
            probe: copy.probe.clone(),
            path: copy.to.clone(),
        };
        if !manifest.files.contains(&entry) {
            manifest.files.push(entry);
        }
    }
    for dir in created_dirs {
        if !manifest.dirs.contains(&dir) {
            manifest.dirs.push(dir);
        }
    }
    write_manifest(&manifest_path, &manifest)?;
    println!("  recorded in {}", manifest_path.display());
    Ok(())
}

/// Removes what `install` recorded for `probe_names` (every probe in the manifest when empty).
pub fn uninstall(probe_names: &[String], dirs: &InstallDirs) -> Result<()> {
    let manifest_path = dirs.manifest_path();
    if !manifest_path.exists() {
        bail!("nothing to uninstall: no install manifest at `{}` (use the same --destdir as for install)", manifest_path.display());
    }
    let mut manifest = read_manifest(&manifest_path)?;
    for name in probe_names {
        if !manifest.files.iter().any(|f| &f.probe == name) {
            bail!(
                "probe `{name}` is not recorded in `{}`",
                manifest_path.display()
            );
        }
    }
    let (remove, keep): (Vec<_>, Vec<_>) = manifest
        .files
        .drain(..)
        .partition(|f| probe_names.is_empty() || probe_names.contains(&f.probe));
    manifest.files = keep;
    for file in &remove {
        paths::remove_file_if_exists(&file.path)?;
        println!("  removed {}", file.path.display());
    }
    if manifest.files.is_empty() {
        paths::remove_file_if_exists(&manifest_path)?;
        // Deepest first; a directory someone else put files into stays.
        let mut created = std::mem::take(&mut manifest.dirs);
        created.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in created {
            let _ = std::fs::remove_dir(&dir);
        }
    } else {
        write_manifest(&manifest_path, &manifest)?;
    }
    Ok(())
}

/// Copies `from` into the temp file `to` we created: `to` is opened without following links, and `from`'s
/// mode bounds what the copy may get (see `set_mode`'s callers).
fn stage_copy(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut source = std::fs::File::open(from)?;
    let mut destination = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)?;
    std::io::copy(&mut source, &mut destination)?;
    Ok(())
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    if !path.exists() {
        return Ok(Manifest::default());
    }
    serde_json::from_str(&paths::read_to_string(path)?).with_context(|| {
        format!(
            "the install manifest `{}` is damaged; fix or remove it",
            path.display()
        )
    })
}

fn write_manifest(path: &Path, manifest: &Manifest) -> Result<()> {
    paths::write_atomic(path, serde_json::to_string_pretty(manifest)?.as_bytes())
}

/// Creates `dir` and its missing parents, remembering (outermost first) the ones that did not exist.
fn create_dirs_recording(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    for d in missing.into_iter().rev() {
        std::fs::create_dir(d)
            .with_context(|| format!("failed to create directory `{}`", d.display()))?;
        created.push(d.to_path_buf());
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to set the mode of `{}`", path.display()))
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
