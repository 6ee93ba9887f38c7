//! `btfgen`: cuts each given kernel BTF down to the types the selected probes' BPF objects relocate against
//! (`bpftool gen min_core_btf`), one `.output/btf/<release>.btf` per kernel release, for kernels without
//! `/sys/kernel/btf/vmlinux` (gala-gopher loads `/opt/gala-gopher/btf/<release>.btf` through `btf_custom_path`).
//!
//! Inputs: a raw BTF file or an ELF with a `.BTF` section, named `<release>.btf` (BTFHub), `vmlinux-<release>`
//! (a debuginfo vmlinux) or `/sys/kernel/btf/vmlinux` (the running kernel); a BTFHub `<release>.btf.tar.xz`
//! (one member, `<release>.btf`, read with `tar` to memory: nothing is unpacked on disk); or a directory,
//! searched for those `.btf` and `.btf.tar.xz` names (BTFHub's `<distro>/<version>/<arch>/<release>.btf.tar.xz`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::core::lock;
use crate::core::minimized_btf::{
    ensure_btf_output_dir, minimized_btf_path, read_record, write_record, KernelRecord,
};
use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use crate::kernel::KERNEL_BTF;
use crate::paths;
use crate::tool::{self, Cmd, ToolKind};
use crate::toolchain::install_hint;

pub struct BtfgenOptions {
    /// Kernel BTF files and directories, absolute or relative to the current directory.
    pub kernels: Vec<PathBuf>,
}

/// One kernel BTF to minimize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelInput {
    pub release: String,
    pub path: PathBuf,
    /// A BTFHub `.btf.tar.xz`: its one member is read with `tar`.
    pub packed: bool,
}

/// How deep a directory of kernel BTFs is searched (BTFHub's files are 3 levels down).
const MAX_DEPTH: usize = 6;

/// Makes `.output/btf/<release>.btf` for every kernel given, from the selected probes' built objects (the
/// caller has built them). Returns the files written.
pub fn btfgen(
    workspace: &Workspace,
    selection: &Selection,
    options: &BtfgenOptions,
) -> Result<Vec<PathBuf>> {
    let inputs = kernel_inputs(&options.kernels)?;
    let mut objects = Vec::new();
    for probe in &selection.probes {
        objects.extend(workspace.built_bpf_objects(probe)?);
    }
    if objects.is_empty() {
        let names: Vec<&str> = selection.probes.iter().map(|p| p.name.as_str()).collect();
        bail!(
            "the selected probes ({}) have no BPF objects, so there is nothing to minimize a kernel BTF for; \
             name probes with .bpf.c sources",
            names.join(", ")
        );
    }
    let bpftool = tool::find(ToolKind::Bpftool)
        .map_err(|e| anyhow::anyhow!("{e}; {}", install_hint("bpftool")))?;
    let mut object_sums = BTreeMap::new();
    for object in &objects {
        let relative = object.strip_prefix(&workspace.root).unwrap_or(object);
        object_sums.insert(relative.to_path_buf(), paths::sha256_file(object)?);
    }

    let _lock = lock::lock_output_dir(&workspace.lock_dir())?;
    // Temp files of a btfgen that was killed (their process is gone).
    paths::remove_abandoned_temp_files(&ensure_btf_output_dir(workspace)?);
    let mut record = read_record(workspace)?;
    let mut written = Vec::new();
    for input in &inputs {
        let output = minimized_btf_path(workspace, &input.release);
        let input_bytes = minimize(&bpftool, input, &objects, &output)?;
        let output_bytes = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "   Minimized {} ({} → {}, {}) → {}",
            input.release,
            human_size(input_bytes),
            human_size(output_bytes),
            ratio(input_bytes, output_bytes),
            output
                .strip_prefix(&workspace.root)
                .unwrap_or(&output)
                .display()
        );
        record.kernels.insert(
            input.release.clone(),
            KernelRecord {
                input: input.path.clone(),
                objects: object_sums.clone(),
            },
        );
        written.push(output);
    }
    write_record(workspace, &record)?;
    Ok(written)
}

/// Minimizes one kernel BTF into `output` (a temp file beside it, renamed); returns the input's size.
fn minimize(
    bpftool: &tool::Tool,
    input: &KernelInput,
    objects: &[PathBuf],
    output: &Path,
) -> Result<u64> {
    // The unpacked member of a .btf.tar.xz lives in a temp file beside the output while bpftool reads it.
    let unpacked = if input.packed {
        let bytes = read_packed(input)?;
        let temp = paths::temp_file_beside(output)?;
        std::fs::write(&temp, &bytes)
            .with_context(|| format!("failed to write `{}`", temp.display()))?;
        Some(temp)
    } else {
        None
    };
    let source: &Path = unpacked.as_deref().unwrap_or(&input.path);
    let shown = if input.packed {
        format!("{} (unpacked)", input.path.display())
    } else {
        input.path.display().to_string()
    };
    check_is_btf(source, &shown)?;
    let input_bytes = std::fs::metadata(source)
        .with_context(|| format!("failed to read `{shown}`"))?
        .len();
    let temp = paths::temp_file_beside(output)?;
    Cmd::new(bpftool)
        .args(["gen", "min_core_btf"])
        .arg(source)
        .arg(&temp)
        .args(objects)
        .run()
        .with_context(|| {
            format!(
                "bpftool could not minimize the kernel BTF `{shown}` for release {} (bpftool 7.0 or newer has \
                 `gen min_core_btf`; an ELF must have a .BTF section); nothing was written",
                input.release
            )
        })?;
    paths::set_mode(&temp, 0o644)?;
    paths::persist(temp, output)?;
    Ok(input_bytes)
}

/// The one `<release>.btf` member of a BTFHub `.btf.tar.xz`, read to memory by `tar` (nothing is written on
/// disk by tar, so a hostile tarball's paths and links do nothing).
fn read_packed(input: &KernelInput) -> Result<Vec<u8>> {
    let tar = tool::find_program("tar").with_context(|| {
        format!(
            "`{}` is a .tar.xz and reading it needs `tar` (and `xz`), which is not installed; install them \
             (packages tar and xz-utils or xz) or unpack the archive elsewhere and give the .btf file",
            input.path.display()
        )
    })?;
    let listed = Cmd::program(&tar)
        .arg("-tJf")
        .arg(&input.path)
        .run()
        .with_context(|| format!("failed to list `{}`", input.path.display()))?;
    let listing = String::from_utf8_lossy(&listed.stdout);
    let members: Vec<&str> = listing.lines().filter(|l| !l.is_empty()).collect();
    let expected = format!("{}.btf", input.release);
    let member = match members.as_slice() {
        [one] if Path::new(one).file_name() == Some(expected.as_ref()) => one.to_string(),
        _ => bail!(
            "`{}` should hold one file, `{expected}` (as BTFHub's archives do), but holds: {}; unpack it \
             yourself and give the .btf file",
            input.path.display(),
            members.join(", ")
        ),
    };
    let unpacked = Cmd::program(&tar)
        .arg("-xJOf")
        .arg(&input.path)
        .arg(&member)
        .run()
        .with_context(|| format!("failed to unpack `{}`", input.path.display()))?;
    Ok(unpacked.stdout)
}

/// Raw BTF (magic 0xeb9f, either byte order) or an ELF file; anything else is named as not BTF.
fn check_is_btf(path: &Path, shown: &str) -> Result<()> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("failed to open `{shown}`"))?;
    let read = file
        .read(&mut magic)
        .with_context(|| format!("failed to read `{shown}`"))?;
    let is_btf = read >= 2 && (magic[..2] == [0x9f, 0xeb] || magic[..2] == [0xeb, 0x9f]);
    let is_elf = read == 4 && magic == *b"\x7fELF";
    if !is_btf && !is_elf {
        bail!(
            "`{shown}` is not kernel BTF: neither raw BTF (magic 0xeb9f) nor an ELF file with a .BTF section; \
             give a BTFHub `<release>.btf`, a vmlinux or {KERNEL_BTF}"
        );
    }
    Ok(())
}

/// Every kernel BTF the arguments name, by release; two inputs for one release are an error naming both.
pub fn kernel_inputs(arguments: &[PathBuf]) -> Result<Vec<KernelInput>> {
    if arguments.is_empty() {
        bail!(
            "name the kernel BTF to minimize for: `--kernel FILE|DIR` ({KERNEL_BTF} for this kernel, a BTFHub \
             `<release>.btf[.tar.xz]` or a directory of them)"
        );
    }
    let mut found = Vec::new();
    for argument in arguments {
        let meta = std::fs::metadata(argument).with_context(|| {
            format!(
                "kernel BTF `{}` does not exist (give a file or a directory of `<release>.btf` files)",
                argument.display()
            )
        })?;
        if meta.is_dir() {
            let before = found.len();
            search_dir(argument, 0, &mut found)?;
            if found.len() == before {
                bail!(
                    "no `<release>.btf` or `<release>.btf.tar.xz` file under `{}` (searched {MAX_DEPTH} levels deep)",
                    argument.display()
                );
            }
        } else {
            found.push(input_of_file(argument)?);
        }
    }
    let mut by_release: BTreeMap<String, KernelInput> = BTreeMap::new();
    for input in found {
        match by_release.get(&input.release) {
            None => {
                by_release.insert(input.release.clone(), input);
            }
            Some(first) if first.path == input.path => {}
            // BTFHub's archive unpacked in place: the .btf beside its .btf.tar.xz is the same kernel.
            Some(first)
                if first.packed != input.packed && first.path.parent() == input.path.parent() =>
            {
                if first.packed {
                    by_release.insert(input.release.clone(), input);
                }
            }
            Some(first) => bail!(
                "two kernel BTFs are for release {}: `{}` and `{}`; give only one of them",
                input.release,
                first.path.display(),
                input.path.display()
            ),
        }
    }
    Ok(by_release.into_values().collect())
}

fn search_dir(dir: &Path, depth: usize, found: &mut Vec<KernelInput>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("failed to list `{}`", dir.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Symlinked directories are not followed: a loop cannot make the search endless.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth + 1 < MAX_DEPTH && !name.starts_with('.') {
                search_dir(&path, depth + 1, found)?;
            }
        } else if (name.ends_with(".btf") || name.ends_with(".btf.tar.xz")) && path.is_file() {
            found.push(input_of_file(&path)?);
        }
    }
    Ok(())
}

/// A kernel BTF file and the release its name gives.
fn input_of_file(path: &Path) -> Result<KernelInput> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (release, packed) = if let Some(release) = name.strip_suffix(".btf.tar.xz") {
        (release.to_string(), true)
    } else if let Some(release) = name.strip_suffix(".btf") {
        (release.to_string(), false)
    } else if let Some(release) = name.strip_prefix("vmlinux-") {
        (release.to_string(), false)
    } else if paths::absolute_lexically(path)? == Path::new(KERNEL_BTF) {
        (crate::kernel::release()?, false)
    } else {
        bail!(
            "cannot tell which kernel release `{}` is for from its name: name it `<release>.btf` (as BTFHub \
             does) or `vmlinux-<release>`",
            path.display()
        );
    };
    crate::kernel::validate_kernel_release(&release).with_context(|| {
        format!(
            "`{}` does not name a kernel release (`<release>.btf`)",
            path.display()
        )
    })?;
    let is_file = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    if !is_file {
        bail!(
            "kernel BTF `{}` is not a regular file (a FIFO, device or directory)",
            path.display()
        );
    }
    Ok(KernelInput {
        release,
        path: path.to_path_buf(),
        packed,
    })
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / (1 << 10) as f64)
    } else {
        format!("{bytes} B")
    }
}

fn ratio(input: u64, output: u64) -> String {
    if output == 0 {
        return "empty".to_string();
    }
    format!("{}× smaller", input / output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_come_from_btfhub_and_vmlinux_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"\x9f\xeb").unwrap();
            path
        };
        let input = input_of_file(&file("5.10.0-60.18.0.50.oe2203.x86_64.btf")).unwrap();
        assert_eq!(input.release, "5.10.0-60.18.0.50.oe2203.x86_64");
        assert!(!input.packed);
        let input = input_of_file(&file("4.19.90-2003.4.0.0036.oe1.x86_64.btf.tar.xz")).unwrap();
        assert_eq!(input.release, "4.19.90-2003.4.0.0036.oe1.x86_64");
        assert!(input.packed);
        assert_eq!(
            input_of_file(&file("vmlinux-6.1.0-28-amd64"))
                .unwrap()
                .release,
            "6.1.0-28-amd64"
        );
        let error = input_of_file(&file("kernel.bin")).unwrap_err().to_string();
        assert!(
            error.contains("kernel.bin") && error.contains("<release>.btf"),
            "{error}"
        );
        assert!(input_of_file(&file(".btf")).is_err());
    }

    #[test]
    fn one_release_twice_is_an_error_naming_both_unless_unpacked_beside_its_archive() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["a/22.03/x86_64", "b"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("a/22.03/x86_64/5.10.0-1.btf.tar.xz"), b"x").unwrap();
        std::fs::write(dir.path().join("a/22.03/x86_64/5.10.0-1.btf"), b"\x9f\xeb").unwrap();
        std::fs::write(dir.path().join("a/22.03/x86_64/README"), b"x").unwrap();
        let inputs = kernel_inputs(&[dir.path().join("a")]).unwrap();
        assert_eq!(inputs.len(), 1);
        assert!(!inputs[0].packed, "the unpacked file is preferred");

        std::fs::write(dir.path().join("b/5.10.0-1.btf"), b"\x9f\xeb").unwrap();
        let error = kernel_inputs(&[dir.path().join("a"), dir.path().join("b/5.10.0-1.btf")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("5.10.0-1")
                && error.contains("a/22.03/x86_64/5.10.0-1.btf`")
                && error.contains("b/5.10.0-1.btf`"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_directory_says_what_it_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let error = kernel_inputs(&[dir.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("<release>.btf"), "{error}");
    }
}
