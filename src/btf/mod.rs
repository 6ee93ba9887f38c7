//! A reader for the kernel's BPF Type Format: raw BTF (`/sys/kernel/btf/vmlinux`, BTFHub's `.btf` files) or the
//! `.BTF` section of an ELF file (a vmlinux, a `.bpf.o`), and the CO-RE relocations of a `.bpf.o`'s `.BTF.ext`.
//! It borrows the bytes it reads: types are records with offsets into them, names are `&str` into the string
//! section, and nothing is copied, so reading a kernel's 5 MB BTF costs one pass.
//!
//! The format is the kernel's `Documentation/bpf/btf.rst`: a header, then type records (`struct btf_type` and
//! a kind-specific tail), then NUL-terminated strings. Every offset and count is checked against the data.

pub mod ext;
mod file;

pub use ext::{CoreRelocation, RelocationKind};
pub use file::BtfFile;

use anyhow::{bail, Result};

const MAGIC: u16 = 0xeb9f;
/// Far more types than any kernel has (6.x: ~150,000): a corrupt count cannot make us allocate without bound.
const MAX_TYPES: usize = 4_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl Kind {
    fn from_raw(raw: u32) -> Option<Kind> {
        use Kind::*;
        Some(match raw {
            1 => Int,
            2 => Ptr,
            3 => Array,
            4 => Struct,
            5 => Union,
            6 => Enum,
            7 => Fwd,
            8 => Typedef,
            9 => Volatile,
            10 => Const,
            11 => Restrict,
            12 => Func,
            13 => FuncProto,
            14 => Var,
            15 => Datasec,
            16 => Float,
            17 => DeclTag,
            18 => TypeTag,
            19 => Enum64,
            _ => return None,
        })
    }

    /// The bytes that follow `struct btf_type` for this kind, with `vlen` entries.
    fn tail_len(self, vlen: usize) -> usize {
        use Kind::*;
        match self {
            Int | Var | DeclTag => 4,
            Array => 12,
            Struct | Union | Datasec | Enum64 => 12 * vlen,
            Enum | FuncProto => 8 * vlen,
            Ptr | Fwd | Typedef | Volatile | Const | Restrict | Func | Float | TypeTag => 0,
        }
    }

    /// The word C uses before the name (`struct task_struct`), for messages.
    pub fn c_word(self) -> &'static str {
        match self {
            Kind::Struct => "struct ",
            Kind::Union => "union ",
            Kind::Enum | Kind::Enum64 => "enum ",
            Kind::Fwd => "struct ",
            _ => "",
        }
    }
}

/// One type record: its kind, name and the offset of its tail in the type section.
#[derive(Debug, Clone, Copy)]
pub struct Type<'a> {
    pub kind: Kind,
    pub name: &'a str,
    /// `vlen`: members, enumerators, parameters; for a FUNC, its linkage (0 static, 1 global, 2 extern).
    pub vlen: u16,
    /// For a FWD: a union (else a struct).
    pub kind_flag: bool,
    /// `size` (ints, structs, enums, datasecs) or `type` (everything that refers to one other type).
    pub size_or_type: u32,
    tail: usize,
}

/// A member of a struct or union.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub name: &'a str,
    pub type_id: u32,
}

/// Linkage of a FUNC or VAR: `extern` ones are what a `.bpf.o` asks the kernel for (kfuncs, ksyms).
pub const LINKAGE_EXTERN: u32 = 2;

pub struct Btf<'a> {
    /// Type id N is `types[N - 1]`; id 0 is `void`.
    types: Vec<Type<'a>>,
    type_section: &'a [u8],
    strings: &'a [u8],
    big_endian: bool,
}

impl<'a> Btf<'a> {
    /// Parses raw BTF (header, types, strings), in either byte order.
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>> {
        if data.len() < 24 {
            bail!("too short for BTF ({} bytes)", data.len());
        }
        let big_endian = match (u16::from_le_bytes([data[0], data[1]]), data[2]) {
            (MAGIC, 1) => false,
            (m, 1) if m.swap_bytes() == MAGIC => true,
            (MAGIC, version) => bail!("BTF version {version} is not supported (only 1)"),
            _ => bail!("not BTF (no 0xeb9f magic)"),
        };
        let word = |at: usize| read_u32(data, at, big_endian);
        let header_len = word(4)? as usize;
        let (type_off, type_len, str_off, str_len) = (
            word(8)? as usize,
            word(12)? as usize,
            word(16)? as usize,
            word(20)? as usize,
        );
        let section = |offset: usize, len: usize, what: &str| -> Result<&'a [u8]> {
            header_len
                .checked_add(offset)
                .and_then(|start| Some((start, start.checked_add(len)?)))
                .filter(|(_, end)| *end <= data.len())
                .map(|(start, end)| &data[start..end])
                .ok_or_else(|| anyhow::anyhow!("its {what} section lies outside the data"))
        };
        let type_section = section(type_off, type_len, "type")?;
        let strings = section(str_off, str_len, "string")?;
        let mut btf = Btf {
            types: Vec::new(),
            type_section,
            strings,
            big_endian,
        };
        let mut at = 0;
        while at < type_section.len() {
            if btf.types.len() >= MAX_TYPES {
                bail!("more than {MAX_TYPES} types");
            }
            let name_off = read_u32(type_section, at, big_endian)?;
            let info = read_u32(type_section, at + 4, big_endian)?;
            let size_or_type = read_u32(type_section, at + 8, big_endian)?;
            let kind = Kind::from_raw((info >> 24) & 0x1f).ok_or_else(|| {
                anyhow::anyhow!(
                    "type {} has unknown kind {}",
                    btf.types.len() + 1,
                    (info >> 24) & 0x1f
                )
            })?;
            let vlen = (info & 0xffff) as u16;
            let tail = at + 12;
            let end = tail + kind.tail_len(vlen as usize);
            if end > type_section.len() {
                bail!("type {} runs past the type section", btf.types.len() + 1);
            }
            btf.types.push(Type {
                kind,
                name: btf.string(name_off)?,
                vlen,
                kind_flag: info >> 31 == 1,
                size_or_type,
                tail,
            });
            at = end;
        }
        Ok(btf)
    }

    /// The NUL-terminated string at `offset` in the string section (names are ASCII identifiers).
    pub fn string(&self, offset: u32) -> Result<&'a str> {
        let strings: &'a [u8] = self.strings;
        let rest = strings.get(offset as usize..).ok_or_else(|| {
            anyhow::anyhow!("string offset {offset} is outside the string section")
        })?;
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| anyhow::anyhow!("string at {offset} is not NUL-terminated"))?;
        std::str::from_utf8(&rest[..end])
            .map_err(|_| anyhow::anyhow!("string at {offset} is not UTF-8"))
    }

    /// The type with this id; `None` for `void` (0) and ids past the end.
    pub fn get(&self, id: u32) -> Option<&Type<'a>> {
        (id as usize).checked_sub(1).and_then(|i| self.types.get(i))
    }

    /// Every type with its id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Type<'a>)> {
        self.types
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32 + 1, t))
    }

    fn tail_u32(&self, ty: &Type, index: usize) -> u32 {
        // In bounds: `parse` checked that every tail fits.
        read_u32(self.type_section, ty.tail + 4 * index, self.big_endian).unwrap_or(0)
    }

    /// A struct's or union's members (empty for any other kind).
    pub fn members(&self, ty: &Type<'a>) -> Vec<Member<'a>> {
        if !matches!(ty.kind, Kind::Struct | Kind::Union) {
            return Vec::new();
        }
        (0..ty.vlen as usize)
            .map(|i| Member {
                name: self.string(self.tail_u32(ty, 3 * i)).unwrap_or(""),
                type_id: self.tail_u32(ty, 3 * i + 1),
            })
            .collect()
    }

    /// An enum's enumerator names.
    pub fn enumerators(&self, ty: &Type<'a>) -> Vec<&'a str> {
        let stride = match ty.kind {
            Kind::Enum => 2,
            Kind::Enum64 => 3,
            _ => return Vec::new(),
        };
        (0..ty.vlen as usize)
            .map(|i| self.string(self.tail_u32(ty, stride * i)).unwrap_or(""))
            .collect()
    }

    /// An array's element type id.
    pub fn array_element(&self, ty: &Type) -> Option<u32> {
        (ty.kind == Kind::Array).then(|| self.tail_u32(ty, 0))
    }

    /// A FUNC_PROTO's parameters as (name, type id); a last parameter of type 0 is `...`.
    pub fn params(&self, ty: &Type<'a>) -> Vec<(&'a str, u32)> {
        if ty.kind != Kind::FuncProto {
            return Vec::new();
        }
        (0..ty.vlen as usize)
            .map(|i| {
                (
                    self.string(self.tail_u32(ty, 2 * i)).unwrap_or(""),
                    self.tail_u32(ty, 2 * i + 1),
                )
            })
            .collect()
    }

    /// An array's element count.
    pub fn array_len(&self, ty: &Type) -> Option<u32> {
        (ty.kind == Kind::Array).then(|| self.tail_u32(ty, 2))
    }

    /// A DECL_TAG's component index: -1 when it tags the type itself, else a member or parameter.
    pub fn decl_tag_component(&self, ty: &Type) -> Option<i32> {
        (ty.kind == Kind::DeclTag).then(|| self.tail_u32(ty, 0) as i32)
    }

    /// A VAR's linkage.
    pub fn var_linkage(&self, ty: &Type) -> Option<u32> {
        (ty.kind == Kind::Var).then(|| self.tail_u32(ty, 0))
    }

    /// The type `id` stands for once typedefs, qualifiers and type tags are looked through.
    pub fn skip_aliases(&self, mut id: u32) -> u32 {
        // A loop of typedefs is corrupt BTF; the bound keeps it from hanging us.
        for _ in 0..64 {
            match self.get(id) {
                Some(t)
                    if matches!(
                        t.kind,
                        Kind::Typedef
                            | Kind::Volatile
                            | Kind::Const
                            | Kind::Restrict
                            | Kind::TypeTag
                    ) =>
                {
                    id = t.size_or_type
                }
                _ => break,
            }
        }
        id
    }

    /// `struct task_struct`, `int`, `void`: a type as a C programmer names it, for messages.
    pub fn describe(&self, id: u32) -> String {
        match self.get(id) {
            None => "void".into(),
            Some(t) if t.name.is_empty() => format!("anonymous {}", t.kind.c_word().trim_end()),
            Some(t) => format!("{}{}", t.kind.c_word(), t.name),
        }
    }
}

/// A name without libbpf's flavour suffix: `task_struct___v58` → `task_struct` (CO-RE matches on this).
pub fn essential_name(name: &str) -> &str {
    name.find("___").map_or(name, |at| &name[..at])
}

fn read_u32(data: &[u8], at: usize, big_endian: bool) -> Result<u32> {
    let bytes: [u8; 4] = data
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("truncated at byte {at}"))?;
    Ok(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds raw BTF from type records, for tests.
    pub(crate) struct Builder {
        strings: Vec<u8>,
        types: Vec<u8>,
        count: u32,
    }

    impl Builder {
        pub(crate) fn new() -> Builder {
            Builder {
                strings: vec![0],
                types: Vec::new(),
                count: 0,
            }
        }

        pub(crate) fn name(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let at = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            at
        }

        /// Adds a type (`kind` as the raw number) and returns its id; tail words that are names are `Err(name)`.
        pub(crate) fn add(
            &mut self,
            kind: u32,
            name: &str,
            vlen: u32,
            size_or_type: u32,
            tail: &[Result<u32, &str>],
        ) -> u32 {
            let name = self.name(name);
            let words: Vec<u32> = tail
                .iter()
                .map(|w| match w {
                    Ok(v) => *v,
                    Err(n) => self.name(n),
                })
                .collect();
            for word in [name, (kind << 24) | vlen, size_or_type]
                .into_iter()
                .chain(words)
            {
                self.types.extend_from_slice(&word.to_le_bytes());
            }
            self.count += 1;
            self.count
        }

        pub(crate) fn bytes(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            for word in [
                24,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    #[test]
    fn reads_structs_members_and_aliases() {
        let mut b = Builder::new();
        let int = b.add(1, "int", 0, 4, &[Ok(32)]);
        let task = b.add(
            4,
            "task_struct",
            2,
            8,
            &[Err("pid"), Ok(int), Ok(0), Err("tgid"), Ok(int), Ok(32)],
        );
        let typedef = b.add(8, "task_t", 0, task, &[]);
        let bytes = b.bytes();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(btf.iter().count(), 3);
        let t = btf.get(task).unwrap();
        assert_eq!((t.kind, t.name), (Kind::Struct, "task_struct"));
        let names: Vec<_> = btf.members(t).iter().map(|m| m.name).collect();
        assert_eq!(names, ["pid", "tgid"]);
        assert_eq!(btf.skip_aliases(typedef), task);
        assert_eq!(btf.describe(task), "struct task_struct");
    }

    #[test]
    fn refuses_what_is_not_btf_or_is_cut_short() {
        assert!(Btf::parse(b"\x7fELF and more bytes than twenty four").is_err());
        let mut b = Builder::new();
        b.add(4, "s", 3, 8, &[]); // claims 3 members, has none
        let error = Btf::parse(&b.bytes()).err().unwrap().to_string();
        assert!(error.contains("runs past"), "{error}");
    }

    #[test]
    fn flavours_share_an_essential_name() {
        assert_eq!(essential_name("task_struct___v58"), "task_struct");
        assert_eq!(essential_name("task_struct"), "task_struct");
    }
}
