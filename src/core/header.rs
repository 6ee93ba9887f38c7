//! Which kernel header a build uses: `include/linux_<release>.h` when it exists (vmlinux.h is pointed at it),
//! else an existing `include/vmlinux.h`, else a clear error — the old build.sh's rule.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::core::workspace::Workspace;
use crate::paths;

/// Name of the generated header for kernel `release`.
pub fn header_name(release: &str) -> String {
    format!("linux_{release}.h")
}

/// Name of the header for kernel `release` on another architecture (`uname -m` name): `linux_<release>.<arch>.h`,
/// beside the native one, which `vmlinux.h` keeps pointing at (`-b --arch` selects this one).
pub fn arch_header_name(release: &str, arch: &str) -> String {
    format!("linux_{release}.{arch}.h")
}

pub fn select_vmlinux_header(workspace: &Workspace, release: &str) -> Result<PathBuf> {
    let include = workspace.kernel_header_dir();
    let matched = include.join(header_name(release));
    let link = include.join("vmlinux.h");
    let link_meta = std::fs::symlink_metadata(&link).ok();
    let is_symlink = link_meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_symlink());

    if matched.is_file() {
        if link_meta.is_none() || is_symlink {
            if std::fs::read_link(&link).ok().as_deref() != Some(Path::new(&header_name(release))) {
                paths::symlink_atomic(Path::new(&header_name(release)), &link)?;
            }
        } else {
            // A regular vmlinux.h was put there by hand; replacing it could lose work, so it wins.
            eprintln!(
                "warning: `{}` is a regular file, not a link; using it rather than `{}`. Delete it to use the generated header.",
                link.display(),
                matched.display()
            );
        }
        return Ok(link);
    }
    if link.is_file() {
        let target = std::fs::read_link(&link)
            .map(|t| format!(" → {}", t.display()))
            .unwrap_or_default();
        eprintln!(
            "note: no `{}` for kernel {release}; using the existing `include/vmlinux.h`{target}",
            header_name(release)
        );
        return Ok(link);
    }
    let available: Vec<String> = std::fs::read_dir(include)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("linux_") && n.ends_with(".h"))
        .collect();
    let dangling = if is_symlink {
        format!(" (`{}` is a link to a missing file)", link.display())
    } else {
        String::new()
    };
    let similar = if available.is_empty() {
        "ln -s linux_<similar-release>.h include/vmlinux.h".to_string()
    } else {
        format!(
            "ln -sf {} include/vmlinux.h   (headers here: {})",
            available[0],
            available.join(", ")
        )
    };
    bail!(
        "no kernel header for kernel {release}: `{}` does not exist and there is no `include/vmlinux.h`{dangling}.\n\
         Fix it one of these ways:\n  \
         - generate it from this kernel's BTF: `ebpf-probe -g`\n  \
         - generate it from another kernel's BTF: `ebpf-probe gen --btf FILE --kernel-release {release}`\n  \
         - use a similar kernel's header: `{similar}`\n  \
         - or build for a kernel whose header you have: `VMLINUX_VER=<release> ebpf-probe -b`",
        matched.display()
    )
}
