//! Whose configuration we adopt: like git's `safe.directory` (after CVE-2022-24765), a workspace whose marker,
//! root or configuration files belong to another user (not us, not root) is refused, because building it runs
//! what that configuration says — compiler flags, a libbpf tarball's Makefile — as us. An explicit opt-in,
//! `EBPF_PROBE_SAFE_DIRECTORIES` (paths separated by `:`, or `*`), trusts it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Result};

/// The opt-in variable.
pub const SAFE_DIRECTORIES: &str = "EBPF_PROBE_SAFE_DIRECTORIES";

/// Refuses `path` (a workspace file or directory, `what` says which) when another user owns it, unless the
/// workspace `root` is trusted explicitly.
pub fn check_owner(path: &Path, root: &Path, what: &str) -> Result<()> {
    let Some(me) = crate::kernel::effective_uid() else {
        return Ok(());
    };
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let owner = metadata.uid();
    if owner == me
        || owner == 0
        || is_trusted(root, std::env::var(SAFE_DIRECTORIES).ok().as_deref())
    {
        return Ok(());
    }
    bail!(
        "{what} `{}` belongs to uid {owner}, not to you (uid {me}) or root: building a workspace runs what its \
         configuration says, so ebpf-probe does not adopt one another user could have planted. If you trust it, \
         run with {SAFE_DIRECTORIES}={} (or `*`), or change its owner",
        path.display(),
        root.display()
    )
}

fn is_trusted(root: &Path, setting: Option<&str>) -> bool {
    let Some(setting) = setting else {
        return false;
    };
    setting.split(':').any(|entry| {
        let entry = entry.trim();
        entry == "*"
            || (!entry.is_empty()
                && Path::new(entry)
                    .canonicalize()
                    .is_ok_and(|trusted| trusted == root))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_roots_or_a_star_are_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        assert!(!is_trusted(&root, None));
        assert!(!is_trusted(&root, Some("")));
        assert!(!is_trusted(&root, Some("/nonexistent")));
        assert!(is_trusted(&root, Some("*")));
        assert!(is_trusted(&root, Some(&format!("/x:{}", root.display()))));
    }

    #[test]
    fn files_of_us_or_root_are_adopted() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_owner(dir.path(), dir.path(), "workspace").is_ok());
    }
}
