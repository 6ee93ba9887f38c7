//! The install root (DESTDIR resolved lexically) and the rule that every path touched resolves beneath it.

use std::fs::{File, TryLockError};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::InstallDirs;
use crate::paths;

impl InstallDirs {
    /// The install root: `--destdir` made absolute against the current directory with `.` and `..` folded
    /// lexically, as `make DESTDIR=relpkg` or `DESTDIR=a/../b` is meant; `/` without one.
    pub(super) fn root_dir(&self) -> Result<PathBuf> {
        match &self.destdir {
            Some(destdir) if !destdir.as_os_str().is_empty() => paths::absolute_lexically(destdir),
            _ => Ok(PathBuf::from("/")),
        }
    }

    /// `dir` (`-b`, `-c`, `-m`) relative to the install root.
    pub(super) fn relative_dir(&self, dir: &Path) -> Result<PathBuf> {
        if dir.components().any(|c| c == Component::ParentDir) {
            bail!(
                "`{}` contains `..`; give a plain absolute directory",
                dir.display()
            );
        }
        let absolute = match &self.destdir {
            Some(_) if !dir.is_absolute() => {
                bail!(
                    "`{}` must be absolute when --destdir is given (it is placed under DESTDIR)",
                    dir.display()
                )
            }
            Some(_) => dir.to_path_buf(),
            None => paths::absolute_lexically(dir)?,
        };
        Ok(absolute
            .strip_prefix("/")
            .unwrap_or(&absolute)
            .to_path_buf())
    }
}

/// The install root, and the rule that nothing install or uninstall touches resolves outside it.
pub(super) struct Root {
    /// Absolute and lexical: what messages show.
    pub(super) dir: PathBuf,
    /// `dir` with its links resolved.
    pub(super) canonical: PathBuf,
}

impl Root {
    pub(super) fn open(dir: PathBuf) -> Result<Root> {
        let canonical = std::fs::canonicalize(&dir)
            .with_context(|| format!("failed to resolve `{}`", dir.display()))?;
        Ok(Root { dir, canonical })
    }

    pub(super) fn shown(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() || rel == Path::new(".") {
            self.dir.clone()
        } else {
            self.dir.join(rel)
        }
    }

    /// Where the recorded path `rel` is on disk: the links of its parent directories followed (they must lead
    /// to a directory beneath the root), its last component not. `None` when its parent does not exist.
    pub(super) fn resolve(&self, rel: &Path) -> Result<Option<PathBuf>> {
        if rel == Path::new(".") {
            return Ok(Some(self.canonical.clone()));
        }
        if let Err(reason) = check_recorded(rel) {
            bail!("`{}` {reason}", rel.display());
        }
        let name = rel.file_name().context("a recorded path has a name")?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let mut existing = parent;
        let mut missing = false;
        let resolved = loop {
            match std::fs::canonicalize(self.canonical.join(existing)) {
                Ok(resolved) => break resolved,
                Err(_) => {
                    missing = true;
                    match existing.parent() {
                        Some(up) => existing = up,
                        None => break self.canonical.clone(),
                    }
                }
            }
        };
        if !resolved.starts_with(&self.canonical) {
            bail!(
                "`{}` leads through `{}`, which resolves to `{}`, outside the install root `{}`",
                self.shown(rel).display(),
                self.shown(existing).display(),
                resolved.display(),
                self.dir.display()
            );
        }
        Ok((!missing).then(|| resolved.join(name)))
    }

    /// `rel_dir` on disk, when it exists (the root itself for an empty path).
    pub(super) fn dir_on_disk(&self, rel_dir: &Path) -> Result<Option<PathBuf>> {
        if rel_dir.as_os_str().is_empty() {
            Ok(Some(self.canonical.clone()))
        } else {
            self.resolve(rel_dir)
        }
    }
}

/// A recorded path is relative and plain: not absolute, no `..`, no `.`, not empty.
pub(super) fn check_recorded(rel: &Path) -> std::result::Result<(), &'static str> {
    if rel.as_os_str().is_empty() {
        return Err("is empty");
    }
    if rel.has_root() {
        return Err("is absolute");
    }
    for component in rel.components() {
        match component {
            Component::Normal(_) => {}
            Component::ParentDir => return Err("contains `..`"),
            Component::CurDir => return Err("contains `.`"),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
        }
    }
    Ok(())
}

/// Creates the directory `rel` beneath the root, recording (outermost first) the ones it made. Each directory on
/// the way must resolve beneath the root: a planted link (`usr -> /`) is refused before anything is created.
pub(super) fn make_dirs(root: &Root, rel: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut prefix = PathBuf::new();
    for component in rel.components() {
        prefix.push(component);
        let shown = root.shown(&prefix);
        let disk = root
            .resolve(&prefix)?
            .with_context(|| format!("failed to create directory `{}`", shown.display()))?;
        match std::fs::symlink_metadata(&disk) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&disk)
                    .with_context(|| format!("failed to create directory `{}`", shown.display()))?;
                created.push(prefix.clone());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read `{}`", shown.display()))
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::canonicalize(&disk).with_context(|| {
                    format!("`{}` is a symlink that leads nowhere", shown.display())
                })?;
                if !target.starts_with(&root.canonical) {
                    bail!(
                        "`{}` is a symlink to `{}`, outside the install root `{}`; refusing to install through it",
                        shown.display(),
                        target.display(),
                        root.dir.display()
                    );
                }
                if !target.is_dir() {
                    bail!("`{}` is not a directory", shown.display());
                }
            }
            Ok(_) => bail!("`{}` is not a directory", shown.display()),
        }
    }
    Ok(())
}

/// Removes the directories install created (recorded outermost first) that are empty.
pub(super) fn remove_created_dirs(root: &Root, created: &[PathBuf]) {
    let mut dirs: Vec<&PathBuf> = created.iter().collect();
    // Deepest first; the root itself last.
    dirs.sort_by_key(|d| {
        std::cmp::Reverse(if d.as_path() == Path::new(".") {
            0
        } else {
            d.components().count()
        })
    });
    for dir in dirs {
        if let Ok(Some(disk)) = root.resolve(dir) {
            let _ = std::fs::remove_dir(disk);
        }
    }
}

/// One install or uninstall per install root at a time: an exclusive lock on the root directory itself, which
/// the kernel releases however the holder exits.
pub(super) fn lock(root: &Root) -> Result<File> {
    let file = File::open(&root.canonical)
        .with_context(|| format!("failed to open `{}`", root.dir.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            eprintln!(
                "    Blocking waiting for another ebpf-probe install or uninstall in `{}` to finish",
                root.dir.display()
            );
            file.lock()
                .with_context(|| format!("failed to lock `{}`", root.dir.display()))?;
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("failed to lock `{}`", root.dir.display()))
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_paths_must_be_plain_and_relative() {
        assert!(check_recorded(Path::new("usr/bin/x")).is_ok());
        assert_eq!(check_recorded(Path::new("/etc/passwd")), Err("is absolute"));
        assert_eq!(
            check_recorded(Path::new("usr/../../etc")),
            Err("contains `..`")
        );
        assert_eq!(check_recorded(Path::new("./x")), Err("contains `.`"));
        assert_eq!(check_recorded(Path::new("")), Err("is empty"));
    }

    #[test]
    fn a_resolved_path_never_leaves_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root_dir = dir.path().join("root");
        std::fs::create_dir_all(root_dir.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root_dir.join("esc")).unwrap();
        std::os::unix::fs::symlink("usr", root_dir.join("inside")).unwrap();
        let root = Root::open(root_dir.clone()).unwrap();
        let canonical = std::fs::canonicalize(&root_dir).unwrap();
        assert_eq!(
            root.resolve(Path::new("inside/bin/x")).unwrap(),
            Some(canonical.join("usr/bin/x"))
        );
        assert_eq!(root.resolve(Path::new("missing/x")).unwrap(), None);
        let error = root.resolve(Path::new("esc/victim")).unwrap_err();
        assert!(
            format!("{error}").contains("outside the install root"),
            "{error}"
        );
        assert!(root.resolve(Path::new("../x")).is_err());
        assert!(root.resolve(Path::new("/etc/passwd")).is_err());
    }
}
