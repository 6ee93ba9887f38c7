//! `-g/--gen`: dump a kernel's BTF to `include/linux_<release>.h` with bpftool, include `ext_def.h`, link `vmlinux.h`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::core::header::header_name;
use crate::core::workspace::Workspace;
use crate::paths;
use crate::tool::{self, Cmd, ToolKind};
use crate::toolchain::install_hint;

pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

pub struct GenOptions {
    /// Raw BTF or an ELF with a `.BTF` section; the running kernel's by default.
    pub btf: PathBuf,
    /// Names the header: `include/linux_<kernel_release>.h`.
    pub kernel_release: String,
}

pub fn generate_header(workspace: &Workspace, options: &GenOptions) -> Result<PathBuf> {
    let release = &options.kernel_release;
    crate::invocation::validate_kernel_release(release)?;
    if !options.btf.exists() {
        if options.btf == Path::new(KERNEL_BTF) {
            bail!(
                "this kernel exposes no BTF at {KERNEL_BTF} (built without CONFIG_DEBUG_INFO_BTF).\n\
                 Generate the header from a BTF file instead: `ebpf-probe gen --btf FILE --kernel-release {release}`, where FILE is\n  \
                 - a vmlinux ELF with a .BTF section, or a BTFHub `{release}.btf`, or\n  \
                 - BTF made from DWARF with pahole: `pahole -J vmlinux` on the debuginfo vmlinux \
                 (kernel-debuginfo on openEuler/Fedora, linux-image-{release}-dbg on Debian/Ubuntu)"
            );
        }
        bail!("BTF file `{}` does not exist", options.btf.display());
    }
    let bpftool = tool::find(ToolKind::Bpftool)
        .map_err(|e| anyhow::anyhow!("{e}; {}", install_hint("bpftool")))?;
    let dump = Cmd::new(&bpftool)
        .args(["btf", "dump", "file"])
        .arg(&options.btf)
        .args(["format", "c"])
        .run()
        .with_context(|| {
            format!(
                "bpftool could not read BTF from `{}` (it must be raw BTF or an ELF with a .BTF section); \
                 the existing headers were left untouched",
                options.btf.display()
            )
        })?;
    let header =
        String::from_utf8(dump.stdout).context("bpftool printed a header that is not UTF-8")?;
    let header = if workspace.layout.ext_def {
        insert_ext_def(&header).with_context(|| {
            format!(
                "bpftool's dump of `{}` does not look like a C header (no closing #endif)",
                options.btf.display()
            )
        })?
    } else {
        header
    };

    let include = workspace.kernel_header_dir();
    let target = include.join(header_name(release));
    paths::write_atomic(&target, header.as_bytes())?;
    paths::symlink_atomic(Path::new(&header_name(release)), &include.join("vmlinux.h"))?;
    Ok(target)
}

/// Puts `#include "ext_def.h"` just before the header guard's final `#endif`, as the old gen script's
/// `sed '$i'` did, so the SDK's extra definitions see every kernel type.
pub fn insert_ext_def(header: &str) -> Option<String> {
    let end = header.rfind("#endif")?;
    let mut out = String::with_capacity(header.len() + 32);
    out.push_str(&header[..end]);
    out.push_str("#include \"ext_def.h\"\n\n");
    out.push_str(&header[end..]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_def_goes_before_the_final_endif() {
        let header = "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n#ifndef X\n#endif\nstruct a;\n#endif /* __VMLINUX_H__ */\n";
        let out = insert_ext_def(header).unwrap();
        assert!(
            out.ends_with("struct a;\n#include \"ext_def.h\"\n\n#endif /* __VMLINUX_H__ */\n"),
            "{out}"
        );
        assert_eq!(insert_ext_def("no guard"), None);
    }
}
