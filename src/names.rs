//! Rust names made from probe and table names: the type of a `.meta` table's line struct, a field, the `new`
//! template's `{{Name}}`.

pub fn camel_case(name: &str) -> String {
    let mut out = String::new();
    for part in name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    out
}

const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
    "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

pub fn rust_ident(name: &str) -> String {
    let mut ident: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, '_');
    }
    if ["self", "Self", "super", "crate"].contains(&ident.as_str()) {
        ident.push('_');
    } else if RUST_KEYWORDS.contains(&ident.as_str()) {
        ident.insert_str(0, "r#");
    }
    ident
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_valid_rust() {
        assert_eq!(camel_case("kill_info"), "KillInfo");
        assert_eq!(camel_case("9x"), "T9x");
        assert_eq!(rust_ident("fn"), "r#fn");
        assert_eq!(rust_ident("self"), "self_");
        assert_eq!(rust_ident("1st"), "_1st");
    }
}
