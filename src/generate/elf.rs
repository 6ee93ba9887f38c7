//! What `-g --vmlinux` needs to know of an ELF (read with the `object` crate, on demand, never the whole file):
//! its architecture, whether it carries `.BTF` or DWARF, and the kernel release it was built as.

use std::path::Path;

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol};

/// The facts of one ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelElf {
    /// `uname -m`'s name for the ELF's machine (`x86_64`, `aarch64`, `riscv64`), when it is one we build for.
    pub machine: Option<&'static str>,
    /// The ELF's machine as `object` names it, for messages about machines we do not build for.
    pub architecture: String,
    pub has_btf: bool,
    pub has_dwarf: bool,
    /// From `linux_banner` ("Linux version X …"), a "Linux version " string in `.rodata`, or `.modinfo`'s
    /// `vermagic=X …`.
    pub release: Option<String>,
}

/// The banner's data is at most this long; the release is its third word.
const BANNER_MAX: usize = 512;
/// `.rodata` and `.modinfo` are searched for the banner only up to this size (a vmlinux's are a few MiB).
const SCAN_MAX: u64 = 64 << 20;

pub fn inspect(path: &Path) -> Result<KernelElf> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache).with_context(|| {
        format!(
            "`{}` is not an ELF file `object` can read (give a vmlinux, or raw BTF with --btf)",
            path.display()
        )
    })?;
    let architecture = elf.architecture();
    let machine = match architecture {
        object::Architecture::X86_64 => Some("x86_64"),
        object::Architecture::Aarch64 => Some("aarch64"),
        object::Architecture::Riscv64 => Some("riscv64"),
        _ => None,
    };
    let non_empty = |name: &str| elf.section_by_name(name).is_some_and(|s| s.size() > 0);
    Ok(KernelElf {
        machine,
        architecture: format!("{architecture:?}"),
        has_btf: non_empty(".BTF"),
        has_dwarf: non_empty(".debug_info") || non_empty(".zdebug_info"),
        release: banner_release(&elf).or_else(|| vermagic_release(&elf)),
    })
}

/// The release in `linux_banner`, found by its symbol, else by its text in `.rodata`.
fn banner_release<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
) -> Option<String> {
    if let Some(symbol) = elf.symbol_by_name("linux_banner") {
        if let Some(section) = symbol
            .section_index()
            .and_then(|i| elf.section_by_index(i).ok())
        {
            let start = symbol.address().checked_sub(section.address())?;
            if let Ok(Some(bytes)) = section.data_range(
                start,
                BANNER_MAX.min(section.size().saturating_sub(start) as usize) as u64,
            ) {
                if let Some(release) = release_after(bytes, b"Linux version ") {
                    return Some(release);
                }
            }
        }
    }
    let rodata = elf
        .section_by_name(".rodata")
        .filter(|s| s.size() <= SCAN_MAX)?;
    let data = rodata.data().ok()?;
    release_after(data, b"Linux version ")
}

/// The release in `.modinfo`'s `vermagic=` (modules and some vmlinux builds carry it).
fn vermagic_release<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
) -> Option<String> {
    let modinfo = elf
        .section_by_name(".modinfo")
        .filter(|s| s.size() <= SCAN_MAX)?;
    let data = modinfo.data().ok()?;
    data.split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(b"vermagic="))
        .and_then(|rest| release_after(rest, b""))
}

/// The word after the first `marker` in `bytes`: printable, no spaces.
pub fn release_after(bytes: &[u8], marker: &[u8]) -> Option<String> {
    let at = if marker.is_empty() {
        0
    } else {
        bytes.windows(marker.len()).position(|w| w == marker)? + marker.len()
    };
    let word: Vec<u8> = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_graphic())
        .take(128)
        .copied()
        .collect();
    (!word.is_empty()).then(|| String::from_utf8_lossy(&word).into_owned())
}

/// `--arch` names (uname -m), with the aliases people type.
pub fn normalize_arch(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" | "amd64" | "x86" => Some("x86_64"),
        "aarch64" | "arm64" => Some("aarch64"),
        "riscv64" | "riscv" => Some("riscv64"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_come_from_the_banner_or_vermagic() {
        assert_eq!(
            release_after(
                b"\0junkLinux version 5.10.0-60.18.0.50.oe2203.x86_64 (abuild@localhost) #1 SMP\n\0",
                b"Linux version "
            )
            .as_deref(),
            Some("5.10.0-60.18.0.50.oe2203.x86_64")
        );
        assert_eq!(
            release_after(b"6.1.0-13-amd64 SMP preempt mod_unload ", b"").as_deref(),
            Some("6.1.0-13-amd64")
        );
        assert_eq!(release_after(b"Linux version ", b"Linux version "), None);
        assert_eq!(release_after(b"nothing here", b"Linux version "), None);
    }

    #[test]
    fn arch_names_normalize_to_uname_m() {
        assert_eq!(normalize_arch("arm64"), Some("aarch64"));
        assert_eq!(normalize_arch("riscv64"), Some("riscv64"));
        assert_eq!(normalize_arch("amd64"), Some("x86_64"));
        assert_eq!(normalize_arch("vax"), None);
    }
}
