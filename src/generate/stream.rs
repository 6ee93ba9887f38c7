//! The header as bpftool writes it, rewritten line by line on its way to the file: enumerators the SDK `#define`s
//! wrapped in `#ifndef`, and `#include "ext_def.h"` put before the guard's final `#endif`.

use std::collections::BTreeSet;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};

use anyhow::{bail, Context, Result};

/// What to change in the dump.
pub struct Rewrite<'a> {
    /// Put `#include "ext_def.h"` before the last `#endif` (`[layout] ext_def`).
    pub ext_def: bool,
    /// Enumerators with these names are wrapped in `#ifndef NAME … #endif`.
    pub sdk_macros: &'a BTreeSet<String>,
    /// Declarations put before the final `#endif` (the kfuncs), unless the dump has its own (newer bpftool's
    /// `BPF_NO_KFUNC_PROTOTYPES` block); asked for at the end, so they can be made while bpftool dumps.
    pub kfunc_prototypes: &'a dyn Fn() -> String,
}

/// What the rewrite did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// Enumerators wrapped, each once, in the order met.
    pub guarded: Vec<String>,
    /// Whether `kfunc_prototypes` went in (bpftool wrote none of its own).
    pub kfuncs_added: bool,
    pub bytes: u64,
}

const EXT_DEF_INCLUDE: &[u8] = b"#include \"ext_def.h\"\n\n";

/// Copies `input` to `output` (positioned at its start, empty), rewriting as `rewrite` says. Memory stays at one
/// line plus what follows the last `#endif`: everything is written as it comes, the offset of the last `#endif`
/// line is remembered, and at the end the lines from there are read back and written again after the include
/// (bpftool's dump ends with that `#endif`, so this is one line).
pub fn rewrite_header<W: Read + Write + Seek>(
    input: &mut dyn BufRead,
    output: &mut W,
    rewrite: &Rewrite,
) -> Result<Rewritten> {
    let mut done = Rewritten::default();
    let mut line = Vec::with_capacity(256);
    let mut last_endif: Option<u64> = None;
    let mut offset: u64 = 0;
    let mut ends_with_newline = true;
    let mut bpftool_kfuncs = false;
    {
        let mut out = std::io::BufWriter::with_capacity(1 << 18, &mut *output);
        loop {
            line.clear();
            let n = input
                .read_until(b'\n', &mut line)
                .context("failed to read bpftool's output")?;
            if n == 0 {
                break;
            }
            ends_with_newline = line.ends_with(b"\n");
            if !bpftool_kfuncs && line.starts_with(b"#ifndef BPF_NO_KFUNC_PROTOTYPES") {
                bpftool_kfuncs = true;
            }
            if line.trim_ascii_start().starts_with(b"#endif") {
                last_endif = Some(offset);
            }
            let name = guarded_enumerator(&line, rewrite.sdk_macros);
            if let Some(name) = name {
                let guarded = [
                    b"#ifndef ".as_slice(),
                    name.as_bytes(),
                    b"\n",
                    &line,
                    if ends_with_newline { b"" } else { b"\n" },
                    b"#endif\n",
                ]
                .concat();
                out.write_all(&guarded)
                    .context("failed to write the header")?;
                offset += guarded.len() as u64;
                ends_with_newline = true;
                if !done.guarded.iter().any(|g| g == name) {
                    done.guarded.push(name.to_string());
                }
            } else {
                out.write_all(&line).context("failed to write the header")?;
                offset += line.len() as u64;
            }
        }
        out.flush().context("failed to write the header")?;
    }
    let mut insertion = Vec::new();
    if !bpftool_kfuncs {
        let prototypes = (rewrite.kfunc_prototypes)();
        done.kfuncs_added = !prototypes.is_empty();
        insertion.extend_from_slice(prototypes.as_bytes());
    }
    if rewrite.ext_def {
        insertion.extend_from_slice(EXT_DEF_INCLUDE);
    }
    if !insertion.is_empty() {
        let Some(at) = last_endif else {
            bail!("bpftool's dump does not look like a C header (no closing #endif)");
        };
        output
            .seek(SeekFrom::Start(at))
            .context("failed to seek in the header")?;
        let mut tail = Vec::new();
        output
            .read_to_end(&mut tail)
            .context("failed to read the header back")?;
        if !ends_with_newline {
            tail.push(b'\n');
        }
        output
            .seek(SeekFrom::Start(at))
            .context("failed to seek in the header")?;
        // Longer than what it replaces, so nothing old is left past the end.
        output
            .write_all(&[insertion.as_slice(), &tail].concat())
            .context("failed to write the header")?;
        offset = at + (insertion.len() + tail.len()) as u64;
    }
    done.bytes = offset;
    Ok(done)
}

/// The name of the enumerator on `line` (`\tNAME = VALUE,`) when it is one of `macros`.
fn guarded_enumerator<'m>(line: &[u8], macros: &'m BTreeSet<String>) -> Option<&'m str> {
    if macros.is_empty() || !line.starts_with(b"\t") {
        return None;
    }
    let trimmed = line.trim_ascii();
    let name_len = trimmed
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    if name_len == 0
        || !trimmed[name_len..].trim_ascii_start().starts_with(b"=")
        || !trimmed.ends_with(b",")
    {
        return None;
    }
    let name = std::str::from_utf8(&trimmed[..name_len]).ok()?;
    macros.get(name).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, ext_def: bool, macros: &[&str]) -> Result<(String, Rewritten)> {
        let macros: BTreeSet<String> = macros.iter().map(|m| m.to_string()).collect();
        let mut out = std::io::Cursor::new(Vec::new());
        let done = rewrite_header(
            &mut std::io::BufReader::with_capacity(7, input.as_bytes()),
            &mut out,
            &Rewrite {
                ext_def,
                sdk_macros: &macros,
                kfunc_prototypes: &String::new,
            },
        )?;
        let text = String::from_utf8(out.into_inner()).unwrap();
        assert_eq!(done.bytes, text.len() as u64);
        Ok((text, done))
    }

    #[test]
    fn ext_def_goes_before_the_final_endif() {
        let header = "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n#ifndef X\n#endif\nstruct a;\n#endif /* __VMLINUX_H__ */\n";
        let (out, _) = run(header, true, &[]).unwrap();
        assert!(
            out.ends_with("struct a;\n#include \"ext_def.h\"\n\n#endif /* __VMLINUX_H__ */\n"),
            "{out}"
        );
        let (out, _) = run("#endif", true, &[]).unwrap();
        assert_eq!(out, "#include \"ext_def.h\"\n\n#endif\n");
        let (out, _) = run(header, false, &[]).unwrap();
        assert_eq!(out, header);
        let error = run("no guard\n", true, &[]).unwrap_err();
        assert!(error.to_string().contains("no closing #endif"), "{error}");
    }

    #[test]
    fn enumerators_the_sdk_defines_are_guarded() {
        let header = "enum {\n\tTASK_COMM_LEN = 16,\n\tOTHER = 2,\n};\nstruct s {\n\tint TASK_COMM_LEN;\n};\nenum {\n\tTASK_COMM_LEN = 16,\n};\n#endif\n";
        let (out, done) = run(header, true, &["TASK_COMM_LEN"]).unwrap();
        assert_eq!(done.guarded, ["TASK_COMM_LEN"]);
        assert_eq!(
            out,
            "enum {\n#ifndef TASK_COMM_LEN\n\tTASK_COMM_LEN = 16,\n#endif\n\tOTHER = 2,\n};\nstruct s {\n\tint TASK_COMM_LEN;\n};\n\
             enum {\n#ifndef TASK_COMM_LEN\n\tTASK_COMM_LEN = 16,\n#endif\n};\n#include \"ext_def.h\"\n\n#endif\n"
        );
    }
}
