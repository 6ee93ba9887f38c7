//! `extern` declarations of the kernel's kfuncs for the generated header, as newer bpftool writes them, whatever
//! bpftool is installed: Debian's bpftool 7.1 writes none, so a program calling `bpf_task_from_pid` would not
//! compile. A kfunc is a BTF `FUNC` tagged `bpf_kfunc` (`DECL_TAG`, kernels whose BTF pahole ≥ 1.26 encoded); each
//! is declared `__weak __ksym`, so an object that names one still loads on a kernel without it. Parameter names
//! are left out: a kernel's parameter name may be a macro in the program's headers.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::btf::{Btf, Kind};

/// The guard users define to leave the declarations out, as with bpftool's own.
pub const GUARD: &str = "BPF_NO_KFUNC_PROTOTYPES";

/// The declarations block (empty when the BTF tags no kfunc), and how many kfuncs could not be written in C (a
/// parameter of an anonymous type).
pub fn prototypes(btf: &Btf) -> (String, usize) {
    let mut kfuncs: BTreeMap<&str, u32> = BTreeMap::new();
    for (_, ty) in btf.iter() {
        if ty.kind == Kind::DeclTag
            && ty.name == "bpf_kfunc"
            && btf.decl_tag_component(ty) == Some(-1)
        {
            if let Some(func) = btf.get(ty.size_or_type).filter(|f| f.kind == Kind::Func) {
                kfuncs.insert(func.name, func.size_or_type);
            }
        }
    }
    if kfuncs.is_empty() {
        return (String::new(), 0);
    }
    let mut skipped = 0;
    let mut text = format!(
        "#ifndef {GUARD}\n\
         /* The kernel's kfuncs (BTF FUNCs tagged bpf_kfunc), declared by ebpf-probe -g; define {GUARD} to leave \
         them out. */\n\
         #ifndef __ksym\n#define __ksym __attribute__((section(\".ksyms\")))\n#endif\n\
         #ifndef __weak\n#define __weak __attribute__((weak))\n#endif\n"
    );
    for (name, proto) in kfuncs {
        match function_declaration(btf, name, proto) {
            Some(declaration) => {
                let _ = writeln!(text, "extern {declaration} __weak __ksym;");
            }
            None => skipped += 1,
        }
    }
    text += &format!("#endif /* {GUARD} */\n\n");
    (text, skipped)
}

/// `struct task_struct *bpf_task_from_pid(s32)`.
fn function_declaration(btf: &Btf, name: &str, proto_id: u32) -> Option<String> {
    let proto = btf.get(proto_id).filter(|t| t.kind == Kind::FuncProto)?;
    let params = btf.params(proto);
    let mut list = Vec::new();
    for (index, (_, type_id)) in params.iter().enumerate() {
        if *type_id == 0 && index + 1 == params.len() {
            list.push("...".to_string());
        } else {
            list.push(declarator(btf, *type_id, "", 0)?);
        }
    }
    let params = if list.is_empty() {
        "void".to_string()
    } else {
        list.join(", ")
    };
    declarator(btf, proto.size_or_type, &format!("{name}({params})"), 0)
}

/// The C declaration of `inner` (a name, or a declarator built so far) with type `id`; `None` for what C cannot
/// name (an anonymous struct as a parameter).
fn declarator(btf: &Btf, id: u32, inner: &str, depth: usize) -> Option<String> {
    if depth > 32 {
        return None;
    }
    let spaced = |base: &str| {
        if inner.is_empty() {
            base.to_string()
        } else {
            format!("{base} {inner}")
        }
    };
    let Some(ty) = btf.get(id) else {
        return Some(spaced("void"));
    };
    match ty.kind {
        Kind::Int | Kind::Float | Kind::Typedef => (!ty.name.is_empty()).then(|| spaced(ty.name)),
        Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Fwd => {
            if ty.name.is_empty() {
                return None;
            }
            let word = match ty.kind {
                Kind::Union => "union",
                Kind::Enum | Kind::Enum64 => "enum",
                Kind::Fwd if ty.kind_flag => "union",
                _ => "struct",
            };
            Some(spaced(&format!("{word} {}", ty.name)))
        }
        Kind::Ptr => {
            let target = btf.get(ty.size_or_type);
            match target.map(|t| t.kind) {
                Some(Kind::FuncProto) => {
                    let proto = target?;
                    let params: Option<Vec<String>> = btf
                        .params(proto)
                        .iter()
                        .map(|(_, t)| {
                            if *t == 0 {
                                Some("...".to_string())
                            } else {
                                declarator(btf, *t, "", depth + 1)
                            }
                        })
                        .collect();
                    let params = params?;
                    let params = if params.is_empty() {
                        "void".to_string()
                    } else {
                        params.join(", ")
                    };
                    declarator(
                        btf,
                        proto.size_or_type,
                        &format!("(*{inner})({params})"),
                        depth + 1,
                    )
                }
                _ => declarator(btf, ty.size_or_type, &format!("*{inner}"), depth + 1),
            }
        }
        Kind::Const | Kind::Volatile => {
            let word = if ty.kind == Kind::Const {
                "const"
            } else {
                "volatile"
            };
            let target_is_pointer = btf
                .get(ty.size_or_type)
                .is_some_and(|t| t.kind == Kind::Ptr);
            if target_is_pointer {
                declarator(
                    btf,
                    ty.size_or_type,
                    format!("{word} {inner}").trim_end(),
                    depth + 1,
                )
            } else {
                declarator(btf, ty.size_or_type, inner, depth + 1).map(|d| format!("{word} {d}"))
            }
        }
        Kind::Restrict | Kind::TypeTag => declarator(btf, ty.size_or_type, inner, depth + 1),
        Kind::Array => {
            let element = btf.array_element(ty)?;
            let len = btf.array_len(ty)?;
            let inner = if inner.starts_with('*') {
                format!("({inner})")
            } else {
                inner.to_string()
            };
            declarator(btf, element, &format!("{inner}[{len}]"), depth + 1)
        }
        Kind::FuncProto | Kind::Func | Kind::Var | Kind::Datasec | Kind::DeclTag => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::tests::Builder;

    #[test]
    fn tagged_functions_become_weak_ksym_declarations() {
        let mut b = Builder::new();
        let int = b.add(1, "s32", 0, 4, &[Ok(32)]); // 1
        let task = b.add(4, "task_struct", 0, 0, &[]); // 2
        let task_ptr = b.add(2, "", 0, task, &[]); // 3
        let char_ty = b.add(1, "char", 0, 1, &[Ok(8)]); // 4
        let const_char = b.add(10, "", 0, char_ty, &[]); // 5
        let str_ptr = b.add(2, "", 0, const_char, &[]); // 6
        let proto = b.add(
            13,
            "",
            2,
            task_ptr,
            &[Err("pid"), Ok(int), Err("name"), Ok(str_ptr)],
        );
        let func = b.add(12, "bpf_task_from_pid", 1, proto, &[]);
        b.add(17, "bpf_kfunc", 0, func, &[Ok(u32::MAX)]);
        let untagged = b.add(12, "not_a_kfunc", 1, proto, &[]);
        b.add(17, "other_tag", 0, untagged, &[Ok(u32::MAX)]);
        let bytes = b.bytes();
        let btf = Btf::parse(&bytes).unwrap();
        let (text, skipped) = prototypes(&btf);
        assert_eq!(skipped, 0);
        assert!(
            text.contains(
                "extern struct task_struct *bpf_task_from_pid(s32, const char *) __weak __ksym;\n"
            ),
            "{text}"
        );
        assert!(!text.contains("not_a_kfunc"), "{text}");
        assert!(
            text.starts_with("#ifndef BPF_NO_KFUNC_PROTOTYPES\n"),
            "{text}"
        );
    }

    #[test]
    fn no_tag_no_block() {
        let mut b = Builder::new();
        b.add(1, "int", 0, 4, &[Ok(32)]);
        let bytes = b.bytes();
        assert_eq!(prototypes(&Btf::parse(&bytes).unwrap()), (String::new(), 0));
    }
}
