//! The names install gives beside a file: `.ebpf-probe-new`/`-orig`/`-save` copies and hidden temp files.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::root::Root;
use crate::paths;

/// rpm's `.rpmnew`: the new version of a config file that stays as the admin left it.
pub(super) const NEW_SUFFIX: &str = ".ebpf-probe-new";
/// The file install replaced that it had not written; `uninstall` puts it back.
pub(super) const ORIG_SUFFIX: &str = ".ebpf-probe-orig";
/// rpm's `.rpmsave`: a file changed since install, kept when install replaces or uninstall removes it.
pub(super) const SAVE_SUFFIX: &str = ".ebpf-probe-save";
/// What every name above shares: a recorded backup must be `<file>` + this + the rest, beside `<file>`.
pub(super) const SIBLING_MARK: &str = ".ebpf-probe-";

/// `rel` + `suffix` (a name beside it).
pub(super) fn sibling(rel: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = rel.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    rel.with_file_name(name)
}

/// Whether `other` is one of our names for a copy of `rel`: beside it, named `<rel's name>.ebpf-probe-…`.
pub(super) fn is_sibling_of(other: &Path, rel: &Path) -> bool {
    let (Some(name), Some(other_name)) = (rel.file_name(), other.file_name()) else {
        return false;
    };
    let mut prefix = name.as_bytes().to_vec();
    prefix.extend_from_slice(SIBLING_MARK.as_bytes());
    other.parent() == rel.parent() && other_name.as_bytes().starts_with(&prefix)
}

/// Whether `temp` is a temp file beside `rel` (our hidden `.<name>.tmp.<pid>.<random>` names).
pub(super) fn is_temp_beside(temp: &Path, rel: &Path) -> bool {
    temp.parent() == rel.parent()
        && temp
            .file_name()
            .is_some_and(|n| paths::temp_file_owner(&n.to_string_lossy()).is_some())
}

/// `rel` + `suffix`, or + `suffix.N` for the first N naming nothing on disk and no other planned file.
pub(super) fn free_sibling(
    root: &Root,
    rel: &Path,
    suffix: &str,
    taken: &mut BTreeSet<PathBuf>,
) -> Result<PathBuf> {
    for n in 0u32.. {
        let candidate = if n == 0 {
            sibling(rel, suffix)
        } else {
            sibling(rel, &format!("{suffix}.{n}"))
        };
        if taken.contains(&candidate) {
            continue;
        }
        let disk = root
            .resolve(&candidate)?
            .with_context(|| format!("the directory of `{}` is missing", rel.display()))?;
        if std::fs::symlink_metadata(&disk).is_err() {
            taken.insert(candidate.clone());
            return Ok(candidate);
        }
    }
    unreachable!("some name is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_and_temps_must_sit_beside_their_file() {
        let file = Path::new("etc/p/x.conf");
        assert!(is_sibling_of(
            Path::new("etc/p/x.conf.ebpf-probe-orig"),
            file
        ));
        assert!(is_sibling_of(
            Path::new("etc/p/x.conf.ebpf-probe-save.2"),
            file
        ));
        assert!(!is_sibling_of(Path::new("etc/p/y.ebpf-probe-orig"), file));
        assert!(!is_sibling_of(
            Path::new("etc/x.conf.ebpf-probe-orig"),
            file
        ));
        assert!(is_temp_beside(
            Path::new("etc/p/.x.conf.tmp.12.AbCd1234"),
            file
        ));
        assert!(!is_temp_beside(Path::new("etc/p/passwd"), file));
    }
}
