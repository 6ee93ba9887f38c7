//! Filesystem calls whose errors name the path, and atomic writes (temp file beside the target, then rename).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("failed to read `{}`", path.display()))
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))
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

/// A sibling path for temporary output: same directory (so rename is atomic), unique per process.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Whether `name` is a `temp_sibling` (`.<name>.tmp.<pid>`), e.g. one left by a build that was killed.
pub fn is_temp_sibling_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp.")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes `contents` to `path` so that readers see either the old file or the whole new one.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        create_dir_all(parent)?;
    }
    let temp = temp_sibling(path);
    std::fs::write(&temp, contents)
        .with_context(|| format!("failed to write `{}`", temp.display()))?;
    rename(&temp, path)
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

/// Points the symlink `link` at `target` atomically (a new link beside it, renamed over the old one).
pub fn symlink_atomic(target: &Path, link: &Path) -> Result<()> {
    let temp = temp_sibling(link);
    remove_file_if_exists(&temp)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_siblings_are_recognised_by_name() {
        let temp = temp_sibling(Path::new("/w/.output/bin/killprobe"));
        let name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(is_temp_sibling_name(&name), "{name}");
        assert!(is_temp_sibling_name(".x.bpf.o.tmp.123"));
        assert!(!is_temp_sibling_name("killprobe"));
        assert!(!is_temp_sibling_name(".killprobe.cmd"));
        assert!(!is_temp_sibling_name(".x.tmp.12a"));
        assert!(!is_temp_sibling_name("x.tmp.12"));
    }
}

/// The regular files matching `patterns` (paths or globs with `*`, `?`, `**`, relative to `base`), each pattern's
/// matches sorted, duplicates dropped, `..` folded so the same file is named one way.
pub fn glob_files(base: &Path, patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let full = crate::core::workspace::normalize(&base.join(pattern));
        let text = full.to_string_lossy();
        let mut matched: Vec<PathBuf> = glob::glob(&text)
            .with_context(|| format!("invalid source pattern `{pattern}`"))?
            .filter_map(|entry| entry.ok())
            .filter(|path| path.is_file())
            .collect();
        matched.sort();
        for file in matched {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    Ok(files)
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
