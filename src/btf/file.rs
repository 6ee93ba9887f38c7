//! A file holding BTF: raw BTF (the kernel's `/sys/kernel/btf/vmlinux`, BTFHub's `.btf`) or an ELF file with a
//! `.BTF` section (a vmlinux built with `CONFIG_DEBUG_INFO_BTF`, a `.bpf.o`). Read whole, bounded in size.

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};

use super::Btf;

/// A vmlinux with DWARF can be a few hundred MB; its `.BTF` is what we read, but the ELF is read whole.
const MAX_FILE_BYTES: u64 = 1 << 30;

pub struct BtfFile {
    data: Vec<u8>,
    btf: Range<usize>,
}

impl BtfFile {
    pub fn read(path: &Path) -> Result<BtfFile> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("failed to open `{}`", path.display()))?;
        let mut data = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut data)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        if data.len() as u64 > MAX_FILE_BYTES {
            bail!(
                "`{}` is larger than {} MiB: not a BTF file",
                path.display(),
                MAX_FILE_BYTES >> 20
            );
        }
        let btf = if data.starts_with(b"\x7fELF") {
            let elf = object::File::parse(&*data)
                .with_context(|| format!("`{}` is not a valid ELF file", path.display()))?;
            let section = elf.section_by_name(".BTF").with_context(|| {
                format!(
                    "`{}` is an ELF file without a .BTF section (a kernel built without CONFIG_DEBUG_INFO_BTF; \
                     `ebpf-probe -g --vmlinux` makes BTF from its DWARF)",
                    path.display()
                )
            })?;
            let (start, len) = section
                .file_range()
                .with_context(|| format!("`{}`'s .BTF section has no data", path.display()))?;
            start as usize..(start + len) as usize
        } else {
            0..data.len()
        };
        let file = BtfFile { data, btf };
        file.btf()
            .with_context(|| format!("`{}` is not readable BTF", path.display()))?;
        Ok(file)
    }

    pub fn btf(&self) -> Result<Btf<'_>> {
        Btf::parse(&self.data[self.btf.clone()])
    }

    /// Whether the bytes start like a BTF or ELF file, to pick files out of a directory.
    pub fn looks_like(path: &Path) -> bool {
        let mut magic = [0u8; 4];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
            && (magic == *b"\x7fELF"
                || u16::from_le_bytes([magic[0], magic[1]]) == super::MAGIC
                || u16::from_be_bytes([magic[0], magic[1]]) == super::MAGIC)
    }
}
