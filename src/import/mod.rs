//! `ebpf-probe import [DIR]`: reads a gala-gopher-style `ebpf.probe` tree's Makefiles (never running make or a
//! shell) and writes `ebpf-probe.toml` at its root and a `probe.toml` in each probe directory, listing every
//! construct it could not translate instead of guessing.

mod clash;
mod eval;
mod explain;
mod flags;
mod functions;
mod glob;
mod makefile;
mod model;
mod percent;
mod probe;
mod recipe;
mod relpath;
mod render;
mod rules;
mod token;
mod varmk;
mod write;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use model::{ProbeFile, Untranslated};
use write::{Outcome, Planned};

/// Directories under `src/` that hold shared code, never a probe, whatever files they hold.
const NOT_PROBES: [&str; 3] = ["mk", "include", "lib"];

pub struct ImportOptions {
    /// The `ebpf.probe` directory or its `src/`.
    pub dir: PathBuf,
    /// Move files import did not write aside (`<name>.orig`) instead of refusing.
    pub force: bool,
    /// DIR as the user wrote it, for the next-step hint (`None`: the current directory).
    pub dir_as_given: Option<String>,
}

/// What import did, printed by the caller.
pub struct Report {
    root: PathBuf,
    lines: Vec<String>,
    untranslated: Vec<Untranslated>,
    next: String,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "   Importing {}", self.root.display())?;
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        if self.untranslated.is_empty() {
            writeln!(f, "Everything the Makefiles say was translated.")?;
        } else {
            writeln!(
                f,
                "Not translated ({}; also written as comments in the files above):",
                self.untranslated.len()
            )?;
            for entry in &self.untranslated {
                writeln!(f, "  {entry}")?;
            }
        }
        writeln!(f, "Next: `{}` builds every probe.", self.next)
    }
}

pub fn import(options: &ImportOptions) -> Result<Report> {
    let (root, src) = tree(&options.dir)?;
    let probes = probe_dirs(&src)?;
    if probes.is_empty() {
        bail!(
            "no probe in `{}`: a probe is a directory there with a Makefile",
            src.display()
        );
    }
    let (mut workspace, shared) = varmk::translate(&root, &src, &probes)?;
    workspace
        .untranslated
        .extend(nested_makefiles(&root, &src, &probes));
    let mut files: Vec<ProbeFile> = Vec::new();
    for name in &probes {
        files.push(
            probe::translate(&root, &src, name, &shared)
                .with_context(|| format!("failed to read the Makefile of probe `{name}`"))?,
        );
    }

    for clash in clash::drop_clashing_installs(&root, &src, &mut files) {
        let name = clash
            .file
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        if let Some(probe) = files.iter_mut().find(|f| Some(&f.name) == name.as_ref()) {
            probe.untranslated.push(clash);
        }
    }

    let mut planned = vec![Planned {
        path: root.join(crate::core::workspace::MARKER),
        contents: render::workspace(&workspace),
    }];
    for file in &files {
        planned.push(Planned {
            path: src.join(&file.name).join(crate::core::probe::PROBE_CONFIG),
            contents: render::probe(file),
        });
    }
    let outcomes = write::write_all(&planned, options.force, &root)?;

    let shown = |p: &Path| relpath::text(p.strip_prefix(&root).unwrap_or(p));
    let mut lines = Vec::new();
    for (index, (plan, outcome)) in planned.iter().zip(&outcomes).enumerate() {
        let (verb, aside) = match outcome {
            Outcome::Written => ("Wrote", String::new()),
            Outcome::Unchanged => ("Unchanged", String::new()),
            Outcome::MovedAside(path) => (
                "Replaced",
                format!(" (the file that was there is now {})", shown(path)),
            ),
        };
        let summary = match index {
            0 => format!(
                "{} probes in {}/, shared sets: {}",
                probes.len(),
                workspace.probes,
                if workspace.build.shared.is_empty() {
                    "none".to_string()
                } else {
                    workspace.build.shared.join(", ")
                }
            ),
            i => summary(&files[i - 1]),
        };
        lines.push(format!(
            "{verb:>12} {}{aside}: {summary}",
            shown(&plan.path)
        ));
    }
    let mut untranslated: Vec<Untranslated> = Vec::new();
    for entry in workspace
        .untranslated
        .iter()
        .chain(files.iter().flat_map(|f| &f.untranslated))
    {
        if !untranslated.contains(entry) {
            untranslated.push(entry.clone());
        }
    }
    let next = match &options.dir_as_given {
        Some(dir) => format!("ebpf-probe -C {dir} -b"),
        None => "ebpf-probe -b".to_string(),
    };
    Ok(Report {
        root,
        lines,
        untranslated,
        next,
    })
}

/// The tree root (the `ebpf.probe` directory) and its `src/`, from either.
fn tree(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot use directory `{}`", dir.display()))?;
    let has_probes = |src: &Path| probe_dirs(src).is_ok_and(|p| !p.is_empty());
    if dir.join("src").join(varmk::VAR_MK).is_file() || has_probes(&dir.join("src")) {
        return Ok((dir.clone(), dir.join("src")));
    }
    if dir.join(varmk::VAR_MK).is_file() || (dir.ends_with("src") && has_probes(&dir)) {
        if let Some(parent) = dir.parent() {
            return Ok((parent.to_path_buf(), dir));
        }
    }
    bail!(
        "`{}` is not a gala-gopher-style ebpf.probe tree: expected `src/` with `mk/var.mk` and one directory per \
         probe holding a Makefile (give the ebpf.probe directory or its src/)",
        dir.display()
    )
}

/// Directories directly under `src/` with a Makefile, sorted.
fn probe_dirs(src: &Path) -> Result<Vec<String>> {
    let entries =
        std::fs::read_dir(src).with_context(|| format!("failed to list `{}`", src.display()))?;
    let mut probes = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || NOT_PROBES.contains(&name.as_str()) {
            continue;
        }
        if entry.path().join("Makefile").is_file() {
            probes.push(name);
        }
    }
    probes.sort();
    Ok(probes)
}

/// Makefiles below a probe directory, or in a shared directory: the old `src/Makefile` ran every directory
/// with a Makefile (`find . -name Makefile`) as a probe.
fn nested_makefiles(root: &Path, src: &Path, probes: &[String]) -> Vec<Untranslated> {
    let mut out = Vec::new();
    let mut found = Vec::new();
    find_makefiles(src, 0, &mut found);
    for path in found {
        let Ok(relative) = path.strip_prefix(src) else {
            continue;
        };
        let parts: Vec<_> = relative.components().collect();
        let top_level_probe = parts.len() == 2
            && probes
                .iter()
                .any(|p| relative.starts_with(p) && relative.ends_with("Makefile"));
        if parts.len() == 1 || top_level_probe {
            continue;
        }
        out.push(Untranslated {
            file: relpath::relative(&path, root),
            line: 1,
            construct: "Makefile".into(),
            why: "not a probe directory's own Makefile (the old src/Makefile built every directory holding \
                  one); not read"
                .into(),
        });
    }
    out
}

fn find_makefiles(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() && !path.is_symlink() {
            find_makefiles(&path, depth + 1, found);
        } else if path.file_name().is_some_and(|n| n == "Makefile") {
            found.push(path);
        }
    }
}

/// One line on what a probe's Makefile gave.
fn summary(file: &ProbeFile) -> String {
    let mut parts = vec![format!(
        "binary {}",
        file.binary.as_deref().unwrap_or("(none)")
    )];
    parts.push(format!("bpf {} ({})", file.bpf.join(" "), file.counts.bpf));
    let mut sources = format!(
        "sources {} ({})",
        file.sources.join(" "),
        file.counts.sources
    );
    if !file.shared.is_empty() {
        sources.push_str(&format!(" + {}", file.shared.join(", ")));
    }
    parts.push(sources);
    if let Some(meta) = &file.meta {
        parts.push(format!("meta {} ({})", meta.join(" "), file.counts.meta));
    }
    if !file.libs.is_empty() {
        parts.push(format!("libs {}", file.libs.join(" ")));
    }
    if let Some(btf) = file.defines.iter().find(|d| flags::is_btf_define(d)) {
        parts.push(format!("BTF {}", btf.trim_start_matches("__BTF_ENABLE_")));
    }
    for object in &file.objects {
        let mut text = format!("object {}", object.source);
        if !object.skeleton {
            text.push_str(" without skeleton");
        }
        if let Some(install) = &object.install {
            text.push_str(&format!(" installed to {install}/"));
        }
        parts.push(text);
    }
    for library in &file.libraries {
        parts.push(format!(
            "library {}{}",
            library.name,
            if library.jni { " (JNI)" } else { "" }
        ));
    }
    if !file.untranslated.is_empty() {
        parts.push(format!("{} not translated", file.untranslated.len()));
    }
    parts.join("; ")
}
