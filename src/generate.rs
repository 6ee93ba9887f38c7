//! `-g/--gen`: dump a kernel's BTF to `include/linux_<release>.h` with bpftool, include `ext_def.h`, link `vmlinux.h`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::core::header::header_name;
use crate::core::workspace::Workspace;
use crate::paths;
use crate::tool::{self, Cmd, ToolKind};
use crate::toolchain::install_hint;

use crate::kernel::KERNEL_BTF;

pub struct GenOptions {
    /// Raw BTF or an ELF with a `.BTF` section; the running kernel's by default.
    pub btf: PathBuf,
    /// Names the header: `include/linux_<kernel_release>.h`.
    pub kernel_release: String,
}

pub fn generate_header(workspace: &Workspace, options: &GenOptions) -> Result<PathBuf> {
    let release = &options.kernel_release;
    crate::kernel::validate_kernel_release(release)?;
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
    let is_regular = std::fs::metadata(&options.btf).is_ok_and(|m| m.is_file());
    if !is_regular && options.btf != Path::new(KERNEL_BTF) {
        bail!(
            "BTF file `{}` is not a regular file (a FIFO, device or directory); give a raw BTF file or an ELF with a .BTF section",
            options.btf.display()
        );
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

    let (header, guarded) = guard_enumerators(&header, &sdk_macros(&workspace.layout.include_dirs));
    if !guarded.is_empty() {
        eprintln!(
            "note: {} enumerator{} of the kernel's BTF {} also #defined by the SDK headers; each is wrapped in              `#ifndef NAME` so the two do not clash: {}",
            guarded.len(),
            if guarded.len() == 1 { "" } else { "s" },
            if guarded.len() == 1 { "is" } else { "are" },
            guarded.join(", ")
        );
    }

    let include = workspace.kernel_header_dir();
    // What an interrupted `-g` left (a 3 MB temp header per run).
    paths::remove_abandoned_temp_files(include);
    let target = include.join(header_name(release));
    paths::write_atomic(&target, header.as_bytes())?;
    let link = include.join("vmlinux.h");
    let is_regular_file = std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_file());
    if is_regular_file {
        // A committed dispatcher (gala-gopher's picks a per-arch header) or a hand-made header: the user's bytes.
        eprintln!(
            "note: kept `{}`, a regular file rather than our link, so it still decides which header the build              uses; to build with the new header, include `{}` from it, or move it away and run `-g` again",
            link.display(),
            header_name(release)
        );
    } else {
        paths::symlink_atomic(Path::new(&header_name(release)), &link)?;
    }
    Ok(target)
}

/// Macro names `#define`d by the headers directly in the SDK include dirs.
fn sdk_macros(include_dirs: &[PathBuf]) -> BTreeSet<String> {
    let mut macros = BTreeSet::new();
    for dir in include_dirs {
        for header in paths::files_with_suffix(dir, ".h").unwrap_or_default() {
            let name = header.file_name().unwrap_or_default().to_string_lossy();
            // ext_def.h is included after every kernel type and guards its own definitions.
            if name == "vmlinux.h"
                || name == "ext_def.h"
                || name.starts_with("linux_")
                || name.starts_with("vmlinux_")
            {
                continue;
            }
            let Ok(text) = std::fs::read(&header) else {
                continue;
            };
            for line in String::from_utf8_lossy(&text).lines() {
                let Some(rest) = line.trim_start().strip_prefix('#') else {
                    continue;
                };
                let Some(rest) = rest.trim_start().strip_prefix("define") else {
                    continue;
                };
                let name: String = rest
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    macros.insert(name);
                }
            }
        }
    }
    macros
}

/// Wraps each enumerator line (`\tNAME = VALUE,`) whose name is one of `macros` in `#ifndef NAME … #endif`: a
/// header that `#define`s it before including the kernel header would otherwise turn the line into `16 = 16,`
/// (gala-gopher's `TASK_COMM_LEN` against a 6.x kernel's `enum { TASK_COMM_LEN = 16 }`).
fn guard_enumerators(header: &str, macros: &BTreeSet<String>) -> (String, Vec<String>) {
    if macros.is_empty() {
        return (header.to_string(), Vec::new());
    }
    let mut out = String::with_capacity(header.len());
    let mut guarded = Vec::new();
    for line in header.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let name: String = trimmed
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let is_enumerator = line.starts_with('\t')
            && !name.is_empty()
            && trimmed[name.len()..].trim_start().starts_with('=')
            && trimmed.trim_end().ends_with(',');
        if is_enumerator && macros.contains(&name) {
            out.push_str(&format!("#ifndef {name}\n{line}#endif\n"));
            if !guarded.contains(&name) {
                guarded.push(name);
            }
        } else {
            out.push_str(line);
        }
    }
    (out, guarded)
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

    #[test]
    fn enumerators_the_sdk_defines_are_guarded() {
        let header = "enum {\n\tTASK_COMM_LEN = 16,\n\tOTHER = 2,\n};\nstruct s {\n\tint TASK_COMM_LEN;\n};\n";
        let macros: BTreeSet<String> = ["TASK_COMM_LEN".to_string()].into();
        let (out, guarded) = guard_enumerators(header, &macros);
        assert_eq!(guarded, ["TASK_COMM_LEN"]);
        assert_eq!(
            out,
            "enum {\n#ifndef TASK_COMM_LEN\n\tTASK_COMM_LEN = 16,\n#endif\n\tOTHER = 2,\n};\nstruct s {\n\tint TASK_COMM_LEN;\n};\n"
        );
    }
}
