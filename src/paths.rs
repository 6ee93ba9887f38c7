//! Filesystem calls whose errors name the path, and atomic writes (temp file beside the target, then rename).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("failed to read `{}`", path.display()))
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))
}

/// Writes `contents` unless the file already holds them: a rewrite would make what is built from it look stale.
pub fn write_if_changed(path: &Path, contents: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(());
    }
    write_atomic(path, contents.as_bytes())
}

/// The sha256 of a file on disk, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

pub fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path)
        .with_context(|| format!("failed to create directory `{}`", path.display()))
}

pub fn remove_file_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

pub fn remove_dir_all_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove directory `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

/// The prefix of every temp file we create beside `path`: `.<name>.tmp.<pid>.`, then random characters.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    format!(".{name}.tmp.{}.", std::process::id())
}

/// A new, empty temp file beside `path` (same directory, so a rename is atomic), created exclusively
/// (`O_EXCL`, mode 0600) under an unpredictable name: a link planted in the directory is never followed.
/// Removed when dropped unless persisted; a tool may write into it and `persist` renames it over `path`.
pub fn temp_file_beside(path: &Path) -> Result<tempfile::TempPath> {
    let dir = parent_dir(path);
    let file = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .rand_bytes(8)
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temp file in `{}`", dir.display()))?;
    Ok(file.into_temp_path())
}

/// `temp_file_beside`, kept open for reading and writing (a header written as it streams in, then fixed up).
pub fn open_temp_file_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = parent_dir(path);
    tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .rand_bytes(8)
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temp file in `{}`", dir.display()))
}

pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to set the mode of `{}` to {mode:o}", path.display()))
}

/// Renames a temp file over `path`; the temp is removed if that fails.
pub fn persist(temp: tempfile::TempPath, path: &Path) -> Result<()> {
    temp.persist(path).map_err(|e| {
        anyhow::Error::new(e.error).context(format!(
            "failed to rename a temp file to `{}`",
            path.display()
        ))
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Whether `name` is one of our temp files (`.<name>.tmp.<pid>` or `.<name>.tmp.<pid>.<random>`), and the pid that
/// made it, e.g. one left by a build that was killed.
pub fn temp_file_owner(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, rest) = name.rsplit_once(".tmp.")?;
    let (pid, random) = rest.split_once('.').unwrap_or((rest, "x"));
    let random_ok = !random.is_empty() && random.bytes().all(|b| b.is_ascii_alphanumeric());
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || !random_ok {
        return None;
    }
    pid.parse().ok()
}

/// Whether the process that made a temp file is gone (or is us, in an earlier step that failed).
pub fn temp_file_is_abandoned(name: &str) -> bool {
    match temp_file_owner(name) {
        Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

/// Removes our temp files in `dir` whose process is dead: what an interrupted command left. Returns how many.
pub fn remove_abandoned_temp_files(dir: &Path) -> usize {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !temp_file_is_abandoned(&name) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let gone = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

/// Writes `contents` to `path` so that readers see either the old file or the whole new one. The temp file is
/// created exclusively under an unpredictable name and removed on every error (a full disk leaves nothing).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    let dir = parent_dir(path);
    let mut file = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .rand_bytes(8)
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temp file in `{}`", dir.display()))?;
    file.write_all(contents)
        .and_then(|()| file.flush())
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    // Temp files are made 0600; what we publish is readable like any file we write.
    set_mode(file.path(), 0o644)?;
    file.persist(path).map_err(|e| {
        anyhow::Error::new(e.error).context(format!(
            "failed to rename a temp file to `{}`",
            path.display()
        ))
    })?;
    Ok(())
}

/// A new, empty directory beside `path` for staging, created exclusively under an unpredictable name.
pub fn temp_dir_beside(path: &Path) -> Result<tempfile::TempDir> {
    let dir = parent_dir(path);
    tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .rand_bytes(8)
        .tempdir_in(dir)
        .with_context(|| {
            format!(
                "failed to create a staging directory in `{}`",
                dir.display()
            )
        })
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).with_context(|| {
        let _ = std::fs::remove_file(from);
        format!(
            "failed to rename `{}` to `{}`",
            from.display(),
            to.display()
        )
    })
}

/// `path` made absolute against the current directory, with `.` and `..` folded lexically (`..` at `/` stays `/`):
/// `relpkg` and `a/../b` (with `a` missing) name what `make DESTDIR=` and the shell would.
pub fn absolute_lexically(path: &Path) -> Result<PathBuf> {
    use std::path::Component;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("failed to read the current directory")?
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for component in joined.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// renameat2(2) with `flags`; `Ok(false)` when the filesystem does not support them (the caller falls back).
fn rename_with_flags(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let status = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            flags,
        )
    };
    if status == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => Ok(false),
        _ => Err(error),
    }
}

/// Renames `from` to `to` only if `to` does not exist (`RENAME_NOREPLACE`): a file or directory that appeared
/// there is never replaced. Where the filesystem lacks the flag, checks first and renames.
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    let context = || {
        format!(
            "failed to rename `{}` to `{}`",
            from.display(),
            to.display()
        )
    };
    if rename_with_flags(from, to, libc::RENAME_NOREPLACE).with_context(context)? {
        return Ok(());
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists)).with_context(context);
    }
    std::fs::rename(from, to).with_context(context)
}

/// Swaps `a` and `b` atomically (`RENAME_EXCHANGE`): `b` gets `a`'s file and `a` keeps `b`'s old one, so the
/// swap can be undone. Returns false (and renames `a` over `b`, which cannot be undone) where the filesystem
/// lacks the flag.
pub fn rename_exchange(a: &Path, b: &Path) -> Result<bool> {
    let context = || format!("failed to exchange `{}` and `{}`", a.display(), b.display());
    if rename_with_flags(a, b, libc::RENAME_EXCHANGE).with_context(context)? {
        return Ok(true);
    }
    std::fs::rename(a, b).with_context(context)?;
    Ok(false)
}

/// Points the symlink `link` at `target` atomically (a new link beside it, renamed over the old one). Creating a
/// symlink fails when the name exists, so the temp name is never one an attacker planted.
pub fn symlink_atomic(target: &Path, link: &Path) -> Result<()> {
    // A temp file reserves an unpredictable name; the link takes its place.
    let reserved = temp_file_beside(link)?;
    let temp = reserved.to_path_buf();
    reserved
        .close()
        .with_context(|| format!("failed to remove `{}`", temp.display()))?;
    std::os::unix::fs::symlink(target, &temp)
        .with_context(|| format!("failed to create symlink `{}`", temp.display()))?;
    rename(&temp, link)
}

/// Modification time, or `None` when the file does not exist.
pub fn mtime(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Files directly in `dir` whose name ends with `suffix`, sorted for a stable build order.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(suffix) && !name.starts_with('.') && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// `a/b/../c` → `a/c` without touching the filesystem (paths in commands and messages stay readable).
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `base` (both absolute and normalized): `a/b` from `a` is `b`, `a` from `a/b` is `..`,
/// `a` from `a` is `.`.
pub fn relative(path: &Path, base: &Path) -> PathBuf {
    let path: Vec<_> = path.components().collect();
    let base: Vec<_> = base.components().collect();
    let common = path
        .iter()
        .zip(base.iter())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for component in &path[common..] {
        out.push(component.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The regular files matching `patterns` (paths or globs with `*`, `?`, `**`, relative to `base`), each pattern's
/// matches sorted, duplicates dropped, `..` folded so the same file is named one way.
pub fn glob_files(base: &Path, patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let full = normalize(&base.join(pattern));
        let mut matched = match simple_pattern(&full) {
            // A plain path, or a pattern only in its file name (`*.c`): one stat or one directory listing, not the
            // glob crate's walk from `/` (a no-op build expands every probe's patterns).
            Some((dir, None)) => vec![dir].into_iter().filter(|p| p.is_file()).collect(),
            Some((dir, Some(name))) => {
                let name = glob::Pattern::new(&name)
                    .with_context(|| format!("invalid source pattern `{pattern}`"))?;
                std::fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| name.matches(&e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            }
            None => glob::glob(&full.to_string_lossy())
                .with_context(|| format!("invalid source pattern `{pattern}`"))?
                .filter_map(|entry| entry.ok())
                .filter(|path| path.is_file())
                .collect::<Vec<_>>(),
        };
        matched.sort();
        for file in matched {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

/// A pattern whose only wildcards are in its last component: its directory, and that component when it is a
/// pattern (`None`: a plain path, returned whole).
fn simple_pattern(pattern: &Path) -> Option<(PathBuf, Option<String>)> {
    let is_wild = |text: &str| text.contains(['*', '?', '['].as_ref());
    let name = pattern.file_name()?.to_string_lossy().into_owned();
    let dir = pattern.parent()?;
    if is_wild(&dir.to_string_lossy()) {
        return None;
    }
    if !is_wild(&name) {
        return Some((pattern.to_path_buf(), None));
    }
    (!name.contains("**")).then(|| (dir.to_path_buf(), Some(name)))
}

/// Whether `path` (relative, `/`-separated) matches the glob `pattern` (`*` does not cross `/`; `**` does).
pub fn glob_matches(pattern: &str, path: &str) -> Result<bool> {
    let pattern = glob::Pattern::new(pattern.trim_start_matches("./"))
        .with_context(|| format!("invalid pattern `{pattern}`"))?;
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    Ok(pattern.matches_with(path, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_and_relate_lexically() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
        assert_eq!(normalize(Path::new("../x/../y")), Path::new("../y"));
        assert_eq!(normalize(Path::new("../../x")), Path::new("../../x"));
        assert_eq!(normalize(Path::new("/../x")), Path::new("/x"));
        assert_eq!(
            relative(Path::new("/w/a/b"), Path::new("/w/a")),
            Path::new("b")
        );
        assert_eq!(
            relative(Path::new("/w/a"), Path::new("/w/a/b")),
            Path::new("..")
        );
        assert_eq!(relative(Path::new("/w"), Path::new("/w")), Path::new("."));
    }

    #[test]
    fn temp_files_are_recognised_by_name_with_their_process() {
        let dir = tempfile::tempdir().unwrap();
        let temp = temp_file_beside(&dir.path().join("killprobe")).unwrap();
        let name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(temp_file_owner(&name), Some(std::process::id()), "{name}");
        assert!(!temp_file_is_abandoned(&name), "we are alive");
        assert_eq!(temp_file_owner(".x.bpf.o.tmp.123"), Some(123));
        assert_eq!(temp_file_owner(".x.h.tmp.123.AbC9xY"), Some(123));
        assert_eq!(temp_file_owner("killprobe"), None);
        assert_eq!(temp_file_owner(".killprobe.cmd"), None);
        assert_eq!(temp_file_owner(".x.tmp.12a"), None);
        assert_eq!(temp_file_owner("x.tmp.12"), None);
    }

    #[test]
    fn a_temp_file_is_created_exclusively_and_never_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        // A link at the name the old scheme would have used.
        let pid = std::process::id();
        std::os::unix::fs::symlink(&victim, dir.path().join(format!(".out.tmp.{pid}"))).unwrap();
        write_atomic(&dir.path().join("out"), b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "new"
        );
        // Nothing of ours is left beside it.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp.") && !n.ends_with(&std::process::id().to_string()))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_failed_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file goes: the final rename fails.
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::fs::write(dir.path().join("out").join("x"), "").unwrap();
        assert!(write_atomic(&dir.path().join("out"), b"new").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["out"]);
    }

    #[test]
    fn paths_are_made_absolute_lexically() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute_lexically(Path::new("relpkg")).unwrap(),
            cwd.join("relpkg")
        );
        assert_eq!(
            absolute_lexically(Path::new("missing/../b")).unwrap(),
            cwd.join("b")
        );
        assert_eq!(
            absolute_lexically(Path::new("/../x/./y/..")).unwrap(),
            Path::new("/x")
        );
    }

    #[test]
    fn noreplace_renames_never_replace_and_exchanges_swap() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "new").unwrap();
        std::fs::create_dir(&b).unwrap();
        assert!(rename_noreplace(&a, &b).is_err());
        std::fs::remove_dir(&b).unwrap();
        std::fs::write(&b, "old").unwrap();
        assert!(rename_noreplace(&a, &b).is_err());
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "old");
        if rename_exchange(&a, &b).unwrap() {
            assert_eq!(std::fs::read_to_string(&a).unwrap(), "old");
        }
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new");
    }

    #[test]
    fn abandoned_temp_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid 0 is never a process that wrote a file; /proc/0 does not exist.
        std::fs::write(dir.path().join(".a.h.tmp.0.zzzz"), "").unwrap();
        std::fs::create_dir(dir.path().join(".probe.tmp.0.yyyy")).unwrap();
        let ours = temp_file_beside(&dir.path().join("b")).unwrap();
        assert_eq!(remove_abandoned_temp_files(dir.path()), 2);
        assert!(ours.exists());
    }
}
