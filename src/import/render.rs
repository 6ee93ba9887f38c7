//! The translation as TOML text: keys in the schema's order, comments for what was left to the tool and for
//! every construct not translated. The same translation always gives the same bytes.

use std::fmt::Write;

use super::model::{ProbeFile, Untranslated, WorkspaceFile};

/// The first line of every file import writes; import replaces only files that start with it.
pub const HEADER: &str = "# Written by ebpf-probe import";

const OWNERSHIP: &str =
    "Re-running import replaces this file; delete this line to keep your edits (import then won't touch it).";

pub fn workspace(file: &WorkspaceFile) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{HEADER} from {}/mk/var.mk and the probe Makefiles under {}/.",
        file.probes, file.probes
    );
    comment(&mut out, OWNERSHIP);
    out.push_str("\n[layout]\n");
    let _ = writeln!(out, "probes = {}", string(&file.probes));
    out.push_str("probe_marker = \"Makefile\"\n");
    list(&mut out, "skip", &file.skip, true);
    list(&mut out, "include", &file.include, true);
    if let Some(dir) = &file.kernel_header_dir {
        let _ = writeln!(out, "kernel_header_dir = {}", string(dir));
    }
    out.push_str("meta = true\n");
    let _ = writeln!(out, "ext_def = {}", file.ext_def);

    out.push_str("\n[build]\n");
    for note in &file.notes {
        comment(&mut out, note);
    }
    let b = &file.build;
    list(&mut out, "defines", &b.defines, false);
    list(&mut out, "bpf_flags", &b.bpf_flags, false);
    list(&mut out, "cflags", &b.cflags, false);
    list(&mut out, "cxxflags", &b.cxxflags, false);
    list(&mut out, "system_includes", &b.system_includes, false);
    list(&mut out, "libs", &b.libs, false);
    list(&mut out, "ldflags", &b.ldflags, false);
    list(&mut out, "shared", &b.shared, true);
    list(&mut out, "btf_defines", &b.btf_defines, false);
    if b.cxx_headers_in_c {
        out.push_str("cxx_headers_in_c = true\n");
    }
    for set in &file.sources {
        let _ = writeln!(out, "\n[sources.{}]", key(&set.name));
        list(&mut out, "c", &set.c, false);
        list(&mut out, "cxx", &set.cxx, false);
    }
    untranslated(&mut out, &file.untranslated);
    out
}

pub fn probe(file: &ProbeFile) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADER} from this directory's Makefile.");
    comment(&mut out, OWNERSHIP);
    for note in &file.notes {
        comment(&mut out, note);
    }
    if let Some(binary) = &file.binary {
        let _ = writeln!(out, "binary = {}", string(binary));
    }
    list(&mut out, "clang_flags", &file.clang_flags, false);
    list(&mut out, "cflags", &file.cflags, false);
    list(&mut out, "cxxflags", &file.cxxflags, false);
    list(&mut out, "libs", &file.libs, false);
    list(&mut out, "defines", &file.defines, false);
    list(&mut out, "includes", &file.includes, false);
    list(&mut out, "bpf", &file.bpf, true);
    list(&mut out, "sources", &file.sources, true);
    list(&mut out, "cxx_sources", &file.cxx_sources, true);
    list(&mut out, "shared", &file.shared, true);
    if let Some(meta) = &file.meta {
        list(&mut out, "meta", meta, true);
    }
    for object in &file.objects {
        out.push_str("\n[[object]]\n");
        let _ = writeln!(out, "source = {}", string(&object.source));
        if !object.skeleton {
            out.push_str("skeleton = false\n");
        }
        if let Some(install) = &object.install {
            let _ = writeln!(out, "install = {}", string(install));
        }
    }
    for library in &file.libraries {
        out.push_str("\n[[library]]\n");
        if library.install.is_none() {
            comment(
                &mut out,
                "The Makefile's install rule does not copy this library; ebpf-probe installs it into the bin dir.",
            );
        }
        let _ = writeln!(out, "name = {}", string(&library.name));
        list(&mut out, "sources", &library.sources, true);
        list(&mut out, "cflags", &library.cflags, false);
        list(&mut out, "includes", &library.includes, false);
        if library.jni {
            out.push_str("jni = true\n");
        }
        if let Some(install) = &library.install {
            let _ = writeln!(out, "install = {}", string(install));
        }
    }
    untranslated(&mut out, &file.untranslated);
    out
}

fn untranslated(out: &mut String, entries: &[Untranslated]) {
    if entries.is_empty() {
        return;
    }
    out.push('\n');
    comment(out, "Not translated (also listed by `ebpf-probe import`):");
    for entry in entries {
        comment(out, &format!("- {entry}"));
    }
}

/// `# text`, wrapped at 110 columns.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > 110 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#  ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// `name = ["a", "b"]`, on several lines when long; an empty list only when `always`.
fn list(out: &mut String, name: &str, items: &[String], always: bool) {
    if items.is_empty() && !always {
        return;
    }
    let quoted: Vec<String> = items.iter().map(|i| string(i)).collect();
    let one_line = format!("{name} = [{}]", quoted.join(", "));
    if one_line.len() <= 110 {
        out.push_str(&one_line);
        out.push('\n');
        return;
    }
    let _ = writeln!(out, "{name} = [");
    for item in quoted {
        let _ = writeln!(out, "    {item},");
    }
    out.push_str("]\n");
}

/// A TOML basic string.
fn string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A table key: bare when it can be, quoted otherwise.
fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        string(name)
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{Library, Object};
    use super::*;

    #[test]
    fn probe_files_parse_as_toml_with_the_schema_keys() {
        let file = ProbeFile {
            name: "stackprobe".into(),
            binary: Some("stackprobe".into()),
            defines: vec!["__BTF_ENABLE_ON".into(), "V=\"v1\"".into()],
            bpf: vec!["stack_bpf/*.bpf.c".into()],
            sources: vec!["*.c".into()],
            shared: vec!["lib".into()],
            objects: vec![Object {
                source: "stack_bpf/*.bpf.c".into(),
                skeleton: false,
                install: Some("stack_bpf".into()),
            }],
            libraries: vec![Library {
                name: "agent.so".into(),
                sources: vec!["agent/agent.c".into()],
                jni: true,
                install: Some(".".into()),
                ..Library::default()
            }],
            notes: vec!["a note".into()],
            untranslated: vec![Untranslated {
                file: "src/p/Makefile".into(),
                line: 3,
                construct: "$(shell x)".into(),
                why: "runs".into(),
            }],
            ..ProbeFile::default()
        };
        let text = probe(&file);
        assert!(text.starts_with(HEADER));
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(value["defines"][1].as_str(), Some("V=\"v1\""));
        assert_eq!(value["object"][0]["skeleton"].as_bool(), Some(false));
        assert_eq!(value["library"][0]["jni"].as_bool(), Some(true));
        assert_eq!(value["cxx_sources"].as_array().map(Vec::len), Some(0));
        assert!(value.get("includes").is_none());
        assert!(text.contains("# - src/p/Makefile:3: `$(shell x)`: runs\n"));
    }

    #[test]
    fn long_lists_and_comments_wrap() {
        let mut out = String::new();
        let items: Vec<String> = (0..20).map(|i| format!("file{i}.c")).collect();
        list(&mut out, "sources", &items, true);
        assert!(out.starts_with("sources = [\n    \"file0.c\",\n"));
        let mut out = String::new();
        comment(&mut out, &"word ".repeat(40));
        assert!(out.lines().all(|l| l.len() <= 110 && l.starts_with('#')));
        assert_eq!(string("a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(key("lib"), "lib");
        assert_eq!(key("a.b"), "\"a.b\"");
    }
}
