//! DWARF → BTF with pahole (dwarves), for a vmlinux whose kernel was built without `CONFIG_DEBUG_INFO_BTF`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::tool::{self, Cmd, ToolKind};
use crate::toolchain::install_hint;

/// pahole writes raw BTF to a file of its own (`--btf_encode_detached`) from this release on; older ones add a
/// `.BTF` section to the ELF they read, so they are given a copy.
const DETACHED_SINCE: (u32, u32) = (1, 22);

/// Encodes `elf`'s DWARF as BTF in `work` (an exclusive temp directory) and returns the file bpftool should read:
/// raw BTF, or a copy of the ELF with a `.BTF` section. `elf` itself is never written.
pub fn encode_btf(elf: &Path, work: &Path) -> Result<PathBuf> {
    let pahole = tool::find(ToolKind::Pahole).map_err(|e| {
        anyhow::anyhow!(
            "{e}: pahole turns the ELF's DWARF into BTF; {}",
            install_hint("pahole")
        )
    })?;
    let version = Cmd::new(&pahole)
        .arg("--version")
        .run()
        .ok()
        .and_then(|out| parse_pahole_version(&String::from_utf8_lossy(&out.stdout)));
    // Newer pahole writes the BTF to a file of its own; an older one adds `.BTF` to the ELF it is given, a copy.
    let (args, output): (Vec<std::ffi::OsString>, PathBuf) =
        if version.is_none_or(|v| v >= DETACHED_SINCE) {
            let btf = work.join("vmlinux.btf");
            let detached = format!("--btf_encode_detached={}", btf.display());
            (vec![detached.into(), elf.into()], btf)
        } else {
            let copy = work.join("vmlinux");
            std::fs::copy(elf, &copy).with_context(|| {
                format!(
                    "failed to copy `{}` to `{}` for pahole",
                    elf.display(),
                    copy.display()
                )
            })?;
            (vec![copy.clone().into()], copy)
        };
    let cmd = Cmd::new(&pahole).arg("-J").args(args);
    cmd.run().with_context(|| {
        format!(
            "pahole could not encode the DWARF of `{}` as BTF",
            elf.display()
        )
    })?;
    Ok(output)
}

/// `v1.24` → (1, 24).
pub fn parse_pahole_version(text: &str) -> Option<(u32, u32)> {
    let word = text.split_whitespace().next()?.trim_start_matches('v');
    let (major, minor) = word.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pahole_versions_parse() {
        assert_eq!(parse_pahole_version("v1.24\n"), Some((1, 24)));
        assert_eq!(parse_pahole_version("v1.19"), Some((1, 19)));
        assert_eq!(parse_pahole_version("garbage"), None);
    }
}
