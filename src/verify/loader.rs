//! The loader that puts programs through the kernel's verifier: `verifier.c` (embedded here) built with the
//! probes' own pipeline and the libbpf the build selected, run on a set of objects, its one line per program read.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::core::compile::Compiler;
use crate::libbpf::Libbpf;
use crate::paths;
use crate::tool::Cmd;

use super::log::unescape;

const LOADER_SOURCE: &str = include_str!("verifier.c");

/// What the kernel said about one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramResult {
    pub name: String,
    pub section: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Loaded {
        verified_insns: u64,
        micros: u64,
    },
    /// `log` is the verifier's when `from_kernel`, else libbpf's own messages.
    Rejected {
        errno: String,
        from_kernel: bool,
        log: String,
    },
    /// Named in `verify_skip`: not loaded.
    Skipped,
}

/// One object's programs, or why libbpf could not open it.
#[derive(Debug, Default)]
pub struct ObjectResult {
    pub programs: Vec<ProgramResult>,
    pub open_error: Option<(String, String)>,
}

/// Builds the loader into `dir` (a no-op when it is fresh). Needs the build tools.
pub fn build_loader(dir: &Path, kernel_release: &str, libbpf: &Libbpf) -> Result<PathBuf> {
    paths::create_dir_all(dir)?;
    let source = dir.join("verifier.c");
    paths::write_if_changed(&source, LOADER_SOURCE)
        .context("failed to write the verifier loader's source")?;
    let compiler = Compiler::for_helper(dir, kernel_release, libbpf)?;
    let object = dir.join("verifier.o");
    compiler.c_object(&source, &object, &[], &[], None)?;
    let loader = dir.join("verifier");
    compiler.link(&[object], &loader, &[], false)?;
    Ok(loader)
}

/// Loads every program of `object` but those in `skip`, one at a time; nothing stays loaded after it returns.
pub fn verify_object(loader: &Path, object: &Path, skip: &[&str]) -> Result<ObjectResult> {
    let mut cmd = Cmd::program(loader);
    for name in skip {
        cmd = cmd.arg("--skip").arg(name);
    }
    let output = cmd.arg(object).run()?;
    Ok(parse(&String::from_utf8_lossy(&output.stdout)))
}

pub fn parse(text: &str) -> ObjectResult {
    let mut result = ObjectResult::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.splitn(7, '\t').collect();
        match fields.as_slice() {
            ["object", _path, "fail", errno, messages] => {
                result.open_error = Some((errno.to_string(), unescape(messages)));
            }
            ["prog", name, section, verdict, rest @ ..] => {
                let outcome = match (*verdict, rest) {
                    ("ok", [insns, micros]) => Outcome::Loaded {
                        verified_insns: insns.parse().unwrap_or(0),
                        micros: micros.parse().unwrap_or(0),
                    },
                    ("fail", [errno, source, log]) => Outcome::Rejected {
                        errno: errno.to_string(),
                        from_kernel: *source == "kernel",
                        log: unescape(log),
                    },
                    ("skip", []) => Outcome::Skipped,
                    _ => continue,
                };
                result.programs.push(ProgramResult {
                    name: name.to_string(),
                    section: section.to_string(),
                    outcome,
                });
            }
            _ => {}
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_lines_parse() {
        let text = "prog\ta\ttp/x/y\tok\t13\t708\nprog\tb\ttp/x/y\tfail\tEACCES (Permission denied)\tkernel\tline 1\\nR0 bad\nprog\tc\tfentry/f\tskip\nnoise\n";
        let result = parse(text);
        assert_eq!(result.programs.len(), 3);
        assert_eq!(
            result.programs[0].outcome,
            Outcome::Loaded {
                verified_insns: 13,
                micros: 708
            }
        );
        assert_eq!(
            result.programs[1].outcome,
            Outcome::Rejected {
                errno: "EACCES (Permission denied)".into(),
                from_kernel: true,
                log: "line 1\nR0 bad".into()
            }
        );
        assert_eq!(result.programs[2].outcome, Outcome::Skipped);
    }
}
