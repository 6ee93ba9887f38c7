//! Which attach kinds the running kernel really offers: builds a tiny helper (`featprobe.bpf.c` + `featprobe.c`,
//! embedded here) with the probes' own pipeline, runs it, and reads one `<kind>\t<ok|no>\t<detail>` line per kind.
//! Feature probing by program type alone is wrong here: bpftool says `tracing` is unavailable, yet tp_btf works.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::core::compile::Compiler;
use crate::paths;
use crate::tool::Cmd;

const BPF_SOURCE: &str = include_str!("featprobe.bpf.c");
const USER_SOURCE: &str = include_str!("featprobe.c");

/// In the order the helper prints them.
pub const KINDS: [&str; 8] = [
    "kprobe",
    "fentry",
    "tp_btf",
    "tracepoint",
    "raw_tracepoint",
    "uprobe",
    "uretprobe",
    "ringbuf",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachKind {
    pub kind: String,
    pub available: bool,
    pub detail: String,
}

/// Builds (or reuses) the helper in `dir` and runs it. Needs root and the build tools.
pub fn test_attach_kinds(
    dir: &Path,
    kernel_release: &str,
    libbpf: &crate::libbpf::Libbpf,
) -> Result<Vec<AttachKind>> {
    paths::create_dir_all(dir)?;
    let bpf_source = dir.join("featprobe.bpf.c");
    let user_source = dir.join("featprobe.c");
    for (path, text) in [(&bpf_source, BPF_SOURCE), (&user_source, USER_SOURCE)] {
        paths::write_if_changed(path, text)
            .context("failed to write the attach-kind helper's source")?;
    }
    let compiler = Compiler::for_helper(dir, kernel_release, libbpf)?;
    let object = dir.join("featprobe.bpf.o");
    compiler.bpf_object(&bpf_source, &object, &[], &[], None)?;
    compiler.skeleton(&object, &dir.join("featprobe.skel.h"))?;
    let object = dir.join("featprobe.o");
    compiler.c_object(&user_source, &object, &[dir.to_path_buf()], &[], None)?;
    let helper = dir.join("featprobe");
    compiler.link(&[object], &helper, &[], false)?;
    let output = Cmd::program(&helper).run()?;
    let results = parse(&String::from_utf8_lossy(&output.stdout));
    if results.len() != KINDS.len() {
        bail!(
            "the attach-kind helper `{}` printed {} result lines, expected {}",
            helper.display(),
            results.len(),
            KINDS.len()
        );
    }
    Ok(results)
}

pub fn parse(text: &str) -> Vec<AttachKind> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let kind = fields.next()?;
            let verdict = fields.next()?;
            let detail = fields.next().unwrap_or("").to_string();
            KINDS.contains(&kind).then(|| AttachKind {
                kind: kind.to_string(),
                available: verdict == "ok",
                detail,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_lines_parse() {
        let text = "kprobe\tno\tattach failed: ENOENT (No such file or directory)\ntp_btf\tok\tloaded, attached and fired\nnoise\n";
        let parsed = parse(text);
        assert_eq!(parsed.len(), 2);
        assert!(!parsed[0].available);
        assert_eq!(
            parsed[0].detail,
            "attach failed: ENOENT (No such file or directory)"
        );
        assert!(parsed[1].available);
    }
}
