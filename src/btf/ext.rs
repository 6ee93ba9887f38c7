//! The CO-RE relocations in a `.bpf.o`'s `.BTF.ext` section: for each program section, which instruction reads
//! which field or type of the object's own BTF, and how (`struct bpf_core_relo`). libbpf resolves them against
//! the kernel's BTF at load time; `compat` does the same ahead of time.

use anyhow::{bail, Result};

use super::Btf;

/// `enum bpf_core_relo_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocationKind {
    FieldByteOffset,
    FieldByteSize,
    FieldExists,
    FieldSigned,
    FieldLshiftU64,
    FieldRshiftU64,
    TypeIdLocal,
    TypeIdTarget,
    TypeExists,
    TypeSize,
    EnumvalExists,
    EnumvalValue,
    TypeMatches,
}

impl RelocationKind {
    fn from_raw(raw: u32) -> Option<RelocationKind> {
        use RelocationKind::*;
        Some(match raw {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    pub fn is_field(self) -> bool {
        use RelocationKind::*;
        matches!(
            self,
            FieldByteOffset
                | FieldByteSize
                | FieldExists
                | FieldSigned
                | FieldLshiftU64
                | FieldRshiftU64
        )
    }

    pub fn is_enumval(self) -> bool {
        matches!(
            self,
            RelocationKind::EnumvalExists | RelocationKind::EnumvalValue
        )
    }

    /// The `bpf_core_*_exists` checks: a missing target makes them evaluate to 0, which the program tests;
    /// it is not a load failure.
    pub fn is_existence_check(self) -> bool {
        use RelocationKind::*;
        matches!(self, FieldExists | TypeExists | EnumvalExists | TypeMatches)
    }

    /// `TYPE_ID_LOCAL` refers to the object's own BTF and never fails.
    pub fn needs_target(self) -> bool {
        self != RelocationKind::TypeIdLocal
    }
}

#[derive(Debug, Clone)]
pub struct CoreRelocation<'a> {
    /// The ELF section of the instruction (`kprobe/do_exit`, `.text`).
    pub section: &'a str,
    /// Byte offset of the instruction in that section.
    pub insn_off: u32,
    /// The root type, in the object's BTF.
    pub type_id: u32,
    /// `0:1:2`: an array index into the root, then member (or element) indices.
    pub access: &'a str,
    pub kind: RelocationKind,
}

/// Reads the CO-RE relocations of `.BTF.ext` (whose strings live in the object's `.BTF`).
pub fn core_relocations<'a>(ext: &[u8], btf: &Btf<'a>) -> Result<Vec<CoreRelocation<'a>>> {
    let word = |at: usize| -> Result<u32> {
        ext.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
            .ok_or_else(|| anyhow::anyhow!(".BTF.ext is truncated at byte {at}"))
    };
    if ext.len() < 8 || u16::from_le_bytes([ext[0], ext[1]]) != super::MAGIC {
        bail!(".BTF.ext has no 0xeb9f magic (a big-endian object is not supported)");
    }
    let header_len = word(4)? as usize;
    if header_len < 32 {
        return Ok(Vec::new()); // written before CO-RE existed
    }
    let (offset, len) = (word(24)? as usize, word(28)? as usize);
    let start = header_len + offset;
    let end = start + len;
    if end > ext.len() {
        bail!(".BTF.ext's CO-RE section lies outside it");
    }
    let mut relocations = Vec::new();
    if len == 0 {
        return Ok(relocations);
    }
    let record_size = word(start)? as usize;
    if record_size < 16 {
        bail!(".BTF.ext's CO-RE records are {record_size} bytes (at least 16 expected)");
    }
    let mut at = start + 4;
    while at < end {
        let section = btf.string(word(at)?)?;
        let count = word(at + 4)? as usize;
        at += 8;
        let records_end = count
            .checked_mul(record_size)
            .and_then(|n| n.checked_add(at))
            .filter(|e| *e <= end)
            .ok_or_else(|| {
                anyhow::anyhow!(".BTF.ext's CO-RE records for `{section}` run past it")
            })?;
        while at < records_end {
            let kind = word(at + 12)?;
            relocations.push(CoreRelocation {
                section,
                insn_off: word(at)?,
                type_id: word(at + 4)?,
                access: btf.string(word(at + 8)?)?,
                kind: RelocationKind::from_raw(kind).ok_or_else(|| {
                    anyhow::anyhow!("a CO-RE relocation in `{section}` has unknown kind {kind}")
                })?,
            });
            at += record_size;
        }
    }
    Ok(relocations)
}
