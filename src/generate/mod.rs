//! `-g/--gen`: a kernel's BTF → `include/linux_<release>.h` (bpftool's dump, rewritten while it streams), from
//! the running kernel, a BTF file, a vmlinux with DWARF (pahole) or the distro's kernel debug package; `vmlinux.h`
//! linked to it, or `linux_<release>.<arch>.h` for another architecture.

mod elf;
pub mod kernel_package;
mod kfuncs;
mod pahole;
mod stream;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::core::header::{arch_header_name, header_name};
use crate::core::workspace::Workspace;
use crate::distro::{Family, OsRelease};
use crate::kernel::KERNEL_BTF;
use crate::paths;
use crate::tool::{self, Cmd, ToolKind};
use crate::toolchain::install_hint;

pub use elf::normalize_arch;

/// Where the kernel's types come from.
#[derive(Debug, Clone)]
pub enum BtfSource {
    /// Raw BTF or an ELF with a `.BTF` section; the running kernel's `/sys/kernel/btf/vmlinux` by default.
    Btf(PathBuf),
    /// A vmlinux (or any ELF) with `.BTF` or DWARF.
    Vmlinux(PathBuf),
    /// The distro's kernel debug package for this release (the running kernel's when `None`).
    KernelPackage(Option<String>),
}

pub struct GenOptions {
    pub source: BtfSource,
    /// Names the header: `include/linux_<kernel_release>.h`; by default the running kernel's (`--btf`,
    /// `--kernel-package`) or the one the ELF was built as (`--vmlinux`).
    pub kernel_release: Option<String>,
    /// `uname -m` name of the architecture the header is for when it is not this machine's native header.
    pub arch: Option<String>,
}

/// How long bpftool may take to dump one BTF (a few hundred ms for a whole kernel).
const DUMP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The header written, and whether `vmlinux.h` now links to it (not for another architecture's header).
pub struct Generated {
    pub header: PathBuf,
    pub linked: bool,
}

pub fn generate_header(workspace: &Workspace, options: &GenOptions) -> Result<Generated> {
    let mut arch = match options.arch.as_deref() {
        Some(given) => Some(normalize_arch(given).with_context(|| {
            format!("unknown architecture `{given}` for --arch (use x86_64, aarch64 or riscv64)")
        })?),
        None => None,
    };
    // Kept until the header is written: pahole's BTF and an unpacked debug package live in it.
    let work = tempfile::Builder::new()
        .prefix("ebpf-probe-gen.")
        .tempdir()
        .context("failed to create a temp directory for -g")?;
    let (btf, release) = match &options.source {
        BtfSource::Btf(path) => {
            let release = match &options.kernel_release {
                Some(release) => release.clone(),
                None => crate::kernel::release()?,
            };
            check_btf_file(path, &release)?;
            (path.clone(), release)
        }
        BtfSource::Vmlinux(path) => vmlinux_btf(path, options, &mut arch, work.path(), None)?,
        BtfSource::KernelPackage(release) => {
            let release = match release.as_ref().or(options.kernel_release.as_ref()) {
                Some(release) => release.clone(),
                None => crate::kernel::release()?,
            };
            crate::kernel::validate_kernel_release(&release)?;
            let vmlinux = kernel_package::fetch_vmlinux(&release, work.path())?;
            vmlinux_btf(&vmlinux, options, &mut arch, work.path(), Some(release))?
        }
    };
    crate::kernel::validate_kernel_release(&release)?;
    let include = workspace.kernel_header_dir();
    let name = match arch {
        Some(arch) => arch_header_name(&release, arch),
        None => header_name(&release),
    };
    let target = include.join(&name);
    paths::create_dir_all(include)?;
    // What an interrupted `-g` left (a 3 MB temp header per run).
    paths::remove_abandoned_temp_files(include);
    dump_header(workspace, &btf, &target)?;
    if arch.is_some() {
        return Ok(Generated {
            header: target,
            linked: false,
        });
    }
    let link = include.join("vmlinux.h");
    let is_regular_file = std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_file());
    if is_regular_file {
        // A committed dispatcher (gala-gopher's picks a per-arch header) or a hand-made header: the user's bytes.
        eprintln!(
            "note: kept `{}`, a regular file rather than our link, so it still decides which header the build \
             uses; to build with the new header, include `{name}` from it, or move it away and run `-g` again",
            link.display(),
        );
        return Ok(Generated {
            header: target,
            linked: false,
        });
    }
    paths::symlink_atomic(Path::new(&name), &link)?;
    Ok(Generated {
        header: target,
        linked: true,
    })
}

fn check_btf_file(btf: &Path, release: &str) -> Result<()> {
    if !btf.exists() {
        if btf == Path::new(KERNEL_BTF) {
            bail!(
                "this kernel exposes no BTF at {KERNEL_BTF} (built without CONFIG_DEBUG_INFO_BTF).\n\
                 Generate the header another way:\n  \
                 - from this kernel's debug package: `ebpf-probe -g --kernel-package` (downloads {}, then pahole)\n  \
                 - from a vmlinux with DWARF: `ebpf-probe -g --vmlinux FILE`\n  \
                 - from a BTF file (a BTFHub `{release}.btf`, or an ELF with .BTF): `ebpf-probe -g --btf FILE --kernel-release {release}`",
                debuginfo_package(release)
            );
        }
        bail!("BTF file `{}` does not exist", btf.display());
    }
    let is_regular = std::fs::metadata(btf).is_ok_and(|m| m.is_file());
    if !is_regular && btf != Path::new(KERNEL_BTF) {
        bail!(
            "BTF file `{}` is not a regular file (a FIFO, device or directory); give a raw BTF file or an ELF with a .BTF section",
            btf.display()
        );
    }
    Ok(())
}

/// The BTF to dump for a vmlinux and the release to name the header for: its own `.BTF`, or BTF pahole made from
/// its DWARF in `work`. Sets `arch` from the ELF when it is not this machine's and none was given.
fn vmlinux_btf(
    vmlinux: &Path,
    options: &GenOptions,
    arch: &mut Option<&'static str>,
    work: &Path,
    package_release: Option<String>,
) -> Result<(PathBuf, String)> {
    if !std::fs::metadata(vmlinux).is_ok_and(|m| m.is_file()) {
        bail!(
            "vmlinux `{}` does not exist or is not a regular file",
            vmlinux.display()
        );
    }
    let elf = elf::inspect(vmlinux)?;
    let native = normalize_arch(&crate::kernel::machine());
    match (*arch, elf.machine) {
        (Some(wanted), Some(found)) if wanted != found => bail!(
            "`{}` is an {found} ELF, not {wanted}: drop --arch {wanted} or give the {wanted} vmlinux",
            vmlinux.display()
        ),
        (_, None) => bail!(
            "`{}` is an ELF for {}, an architecture ebpf-probe does not build for (x86_64, aarch64, riscv64)",
            vmlinux.display(),
            elf.architecture
        ),
        (None, Some(found)) if Some(found) != native => {
            eprintln!(
                "note: `{}` is an {found} kernel: writing its header as {} (as with --arch {found})",
                vmlinux.display(),
                arch_header_name("<release>", found)
            );
            *arch = Some(found);
        }
        _ => {}
    }
    let release = match options.kernel_release.clone().or(package_release) {
        Some(release) => release,
        None => match &elf.release {
            Some(release) => release.clone(),
            None => bail!(
                "cannot tell which kernel `{}` is (no linux_banner \"Linux version …\" and no .modinfo vermagic): \
                 name it with --kernel-release RELEASE",
                vmlinux.display()
            ),
        },
    };
    crate::kernel::validate_kernel_release(&release)
        .with_context(|| format!("the release read from `{}`", vmlinux.display()))?;
    if elf.has_btf {
        return Ok((vmlinux.to_path_buf(), release));
    }
    if !elf.has_dwarf {
        bail!(
            "`{}` has neither a .BTF section nor DWARF debug info (.debug_info), so there are no types to read: \
             it is a stripped kernel. Use the vmlinux with debug info from {} (it installs under \
             /usr/lib/debug/), or let `ebpf-probe -g --kernel-package {release}` fetch it",
            vmlinux.display(),
            debuginfo_package(&release)
        );
    }
    eprintln!(
        "    Encoding the DWARF of {} as BTF with pahole",
        vmlinux.display()
    );
    Ok((pahole::encode_btf(vmlinux, work)?, release))
}

/// The package holding kernel `release`'s vmlinux with DWARF on this distro, as a sentence fragment.
fn debuginfo_package(release: &str) -> String {
    match Family::detect(&OsRelease::read()) {
        Some(family) => match family.packages_for("kernel-debuginfo", release).as_slice() {
            [] => "the distro's kernel debuginfo package".to_string(),
            packages => format!("the `{}` package", packages.join(" ")),
        },
        None => format!(
            "the kernel's debuginfo package (`kernel-debuginfo-{release}` on openEuler/Fedora, \
             `linux-image-{release}-dbg` on Debian, `linux-image-{release}-dbgsym` on Ubuntu)"
        ),
    }
}

/// bpftool's C dump of `btf`, rewritten while it streams (see `stream.rs`) into a temp file beside `target`, renamed
/// over it once complete: the existing header stays as it was on any failure.
fn dump_header(workspace: &Workspace, btf: &Path, target: &Path) -> Result<()> {
    let bpftool = tool::find(ToolKind::Bpftool)
        .map_err(|e| anyhow::anyhow!("{e}; {}", install_hint("bpftool")))?;
    let macros = sdk_macros(&workspace.layout.include_dirs);
    let mut temp = paths::open_temp_file_beside(target)?;
    // The kfunc declarations come from our own reading of the BTF, on another thread while bpftool dumps.
    let (sender, receiver) = std::sync::mpsc::channel::<(String, usize)>();
    let btf_path = btf.to_path_buf();
    std::thread::spawn(move || {
        let prototypes = crate::btf::BtfFile::read(&btf_path)
            .and_then(|file| Ok(kfuncs::prototypes(&file.btf()?)))
            .unwrap_or_default();
        let _ = sender.send(prototypes);
    });
    let skipped = std::cell::Cell::new(0);
    let prototypes = || {
        let (text, not_written) = receiver.recv().unwrap_or_default();
        skipped.set(not_written);
        text
    };
    let rewrite = stream::Rewrite {
        ext_def: workspace.layout.ext_def,
        sdk_macros: &macros,
        kfunc_prototypes: &prototypes,
    };
    let done = Cmd::new(&bpftool)
        .args(["btf", "dump", "file"])
        .arg(btf)
        .args(["format", "c"])
        .stream_stdout(DUMP_TIMEOUT, |dump| {
            stream::rewrite_header(dump, temp.as_file_mut(), &rewrite)
        })
        .with_context(|| {
            format!(
                "bpftool could not read BTF from `{}` (it must be raw BTF or an ELF with a .BTF section); \
                 the existing headers were left untouched",
                btf.display()
            )
        })?;
    if skipped.get() > 0 {
        eprintln!(
            "note: {} kfunc{} of the kernel's BTF could not be declared in C (a parameter of an anonymous type); \
             declare {} yourself with __ksym if a program calls {}",
            skipped.get(),
            if skipped.get() == 1 { "" } else { "s" },
            if skipped.get() == 1 { "it" } else { "them" },
            if skipped.get() == 1 { "it" } else { "one" },
        );
    }
    if !done.guarded.is_empty() {
        eprintln!(
            "note: {} enumerator{} of the kernel's BTF {} also #defined by the SDK headers; each is wrapped in \
             `#ifndef NAME` so the two do not clash: {}",
            done.guarded.len(),
            if done.guarded.len() == 1 { "" } else { "s" },
            if done.guarded.len() == 1 { "is" } else { "are" },
            done.guarded.join(", ")
        );
    }
    paths::set_mode(temp.path(), 0o644)?;
    paths::persist(temp.into_temp_path(), target)
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
