//! `-g --kernel-package`: the distro's kernel debug package for a release, fetched and unpacked to its vmlinux.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

pub fn fetch_vmlinux(release: &str, _work: &Path) -> Result<PathBuf> {
    bail!("fetching the debug package of kernel {release} is not implemented yet")
}
