//! Lexical path arithmetic, as make's `$(abspath)` does it: `.` and `..` resolved without the filesystem, and
//! one path written relative to another (`../../../common` from the workspace root).

use std::path::{Component, Path, PathBuf};

/// `path` with `.` removed and `..` applied to the part before it (never above the root).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
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

/// A path as the generated files write it: `/`-separated text.
pub fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_relative() {
        assert_eq!(
            normalize(Path::new("/t/e/src/mk//../../../../../common")),
            PathBuf::from("/common")
        );
        assert_eq!(
            normalize(Path::new("/t/src/mk/../lib/./x")),
            PathBuf::from("/t/src/lib/x")
        );
        assert_eq!(
            relative(
                Path::new("/g/src/common"),
                Path::new("/g/src/probes/extends/ebpf.probe")
            ),
            PathBuf::from("../../../common")
        );
        assert_eq!(
            relative(Path::new("/e/src/l7probe"), Path::new("/e/src/l7probe")),
            PathBuf::from(".")
        );
        assert_eq!(
            relative(
                Path::new("/e/src/lib/pystack"),
                Path::new("/e/src/stackprobe")
            ),
            PathBuf::from("../lib/pystack")
        );
    }
}
