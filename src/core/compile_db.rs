//! `compile_commands.json` at the workspace root, clang's JSON compilation database: every BPF, userland and
//! shared-source compile with the arguments that ran (the precompiled header left out), so clangd and other
//! clang-based tools understand `.bpf.c` files and loaders. Rewritten only when it changes; a file we did not
//! write (or one edited since) is kept and said so.

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::core::compile::CompileCommand;
use crate::paths;

pub const FILE: &str = "compile_commands.json";
/// The sha256 of what we last wrote, so a file someone else wrote or edited is recognised.
const RECORD: &str = ".compile_commands.sha256";

/// Writes `commands` into `root/compile_commands.json`, keeping the entries of files this build did not plan
/// (a `-b PROBE` of one probe keeps the others') as long as those files exist. Returns a note when it kept a file
/// it does not own.
pub fn update(
    root: &Path,
    output_dir: &Path,
    commands: Vec<CompileCommand>,
) -> Result<Option<String>> {
    let path = root.join(FILE);
    let record = output_dir.join(RECORD);
    let mut entries = commands;
    if let Ok(existing) = std::fs::read(&path) {
        let ours = std::fs::read_to_string(&record).is_ok_and(|r| r.trim() == hex(&existing));
        if !ours {
            return Ok(Some(format!(
                "note: kept `{}`: ebpf-probe did not write it (or it was edited since); remove it to have `-b` write one",
                path.display()
            )));
        }
        let previous: Vec<CompileCommand> = serde_json::from_slice(&existing).unwrap_or_default();
        for entry in previous {
            let planned = entries
                .iter()
                .any(|e| e.file == entry.file && e.output == entry.output);
            if !planned && Path::new(&entry.directory).join(&entry.file).is_file() {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| (&a.file, &a.output).cmp(&(&b.file, &b.output)));
        let text = render(&entries)?;
        if text.as_bytes() == existing.as_slice() {
            return Ok(None);
        }
        return write(&path, &record, &text).map(|()| None);
    }
    entries.sort_by(|a, b| (&a.file, &a.output).cmp(&(&b.file, &b.output)));
    write(&path, &record, &render(&entries)?).map(|()| None)
}

/// Removes `root/compile_commands.json` when it is still what a build wrote (`clean` of the whole output dir takes
/// the record with it, after which the file would look like someone else's); returns whether it did.
pub fn remove_if_ours(root: &Path, output_dir: &Path) -> Result<bool> {
    let path = root.join(FILE);
    let Ok(existing) = std::fs::read(&path) else {
        return Ok(false);
    };
    let ours =
        std::fs::read_to_string(output_dir.join(RECORD)).is_ok_and(|r| r.trim() == hex(&existing));
    if ours {
        paths::remove_file_if_exists(&path)?;
    }
    Ok(ours)
}

fn render(entries: &[CompileCommand]) -> Result<String> {
    let mut text =
        serde_json::to_string_pretty(entries).context("could not render compile_commands.json")?;
    text.push('\n');
    Ok(text)
}

fn write(path: &Path, record: &Path, text: &str) -> Result<()> {
    paths::write_atomic(path, text.as_bytes())?;
    paths::write_atomic(record, hex(text.as_bytes()).as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(root: &Path, file: &str) -> CompileCommand {
        CompileCommand {
            directory: root.display().to_string(),
            arguments: vec!["clang".into(), "-c".into(), file.into()],
            file: file.into(),
            output: format!("{file}.o"),
        }
    }

    #[test]
    fn entries_of_other_probes_are_kept_and_a_foreign_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let out = root.join(".output");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(root.join("a.c"), "").unwrap();
        std::fs::write(root.join("b.c"), "").unwrap();
        update(root, &out, vec![entry(root, "a.c"), entry(root, "b.c")]).unwrap();
        // A build of one probe: the other's entry stays.
        update(root, &out, vec![entry(root, "a.c")]).unwrap();
        let written: Vec<CompileCommand> =
            serde_json::from_slice(&std::fs::read(root.join(FILE)).unwrap()).unwrap();
        assert_eq!(written.len(), 2);
        // Someone edits it: kept, with a note.
        std::fs::write(root.join(FILE), "[]\n").unwrap();
        let note = update(root, &out, vec![entry(root, "a.c")]).unwrap();
        assert!(note.unwrap().contains("ebpf-probe did not write it"));
        assert_eq!(std::fs::read_to_string(root.join(FILE)).unwrap(), "[]\n");
    }
}
