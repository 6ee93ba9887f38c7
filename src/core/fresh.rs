//! Incremental builds — the one place the rebuild decision is made: a step's output is fresh when it exists, was
//! made by the same fingerprint (command line and tool identities), and is newer than every input (its sources
//! plus the headers clang/cc listed in the `-MD` dependency file). C steps, Rust sources and `clean` all use it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::paths;

/// One step's output and what it was made from.
pub struct Step<'a> {
    pub output: &'a Path,
    /// Command lines and tool identities: a change means a rebuild.
    pub fingerprint: &'a str,
    pub inputs: &'a [PathBuf],
    /// The compiler's `-MD` file, whose paths are relative to `deps_base`.
    pub depfile: Option<&'a Path>,
    pub deps_base: &'a Path,
    /// The build's cache of source times, when it keeps one.
    pub times: Option<&'a SourceTimes>,
}

/// Runs `work` unless `step.output` is fresh; returns whether it ran. `work` writes the temp path it is given
/// (beside the output), which becomes the output only when `work` succeeds; the record is forgotten first, so an
/// interrupted step is never taken for fresh.
pub fn rebuild_unless_fresh(step: &Step, work: impl FnOnce(&Path) -> Result<()>) -> Result<bool> {
    if is_step_fresh(step) {
        return Ok(false);
    }
    let temp = begin(step)?;
    work(&temp)?;
    commit(step, temp)?;
    Ok(true)
}

/// Whether `step.output` is fresh (see the module's rule).
pub fn is_step_fresh(step: &Step) -> bool {
    is_fresh(
        step.output,
        step.fingerprint,
        step.inputs,
        step.depfile,
        step.deps_base,
        step.times,
    )
}

/// Starts remaking `step.output` (for steps run together, as `rebuild_unless_fresh` runs one): its record is
/// forgotten, and the temp file beside it that `commit` renames into place is made (removed when dropped).
pub fn begin(step: &Step) -> Result<tempfile::TempPath> {
    if let Some(parent) = step.output.parent() {
        paths::create_dir_all(parent)?;
    }
    forget(step.output)?;
    paths::temp_file_beside(step.output)
}

/// Makes the finished `temp` the output of `step`, and records how it was made.
pub fn commit(step: &Step, temp: tempfile::TempPath) -> Result<()> {
    // A tool that wrote into the file (rather than replacing it) left our 0600.
    if std::fs::metadata(&temp).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777 == 0o600
    }) {
        paths::set_mode(&temp, 0o644)?;
    }
    paths::persist(temp, step.output)?;
    record(step.output, step.fingerprint)
}

/// The file beside `output` holding the command line that produced it (kbuild keeps `.o.cmd` files the same way).
pub fn command_record(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.cmd"))
}

/// Paths in the depfile are relative to `deps_base`, the directory the compiler ran in.
fn is_fresh(
    output: &Path,
    command: &str,
    inputs: &[PathBuf],
    depfile: Option<&Path>,
    deps_base: &Path,
    times: Option<&SourceTimes>,
) -> bool {
    let Some(built) = paths::mtime(output) else {
        return false;
    };
    match std::fs::read_to_string(command_record(output)) {
        Ok(recorded) if recorded == command => {}
        _ => return false,
    }
    let mut all_inputs = inputs.to_vec();
    if let Some(depfile) = depfile {
        match std::fs::read_to_string(depfile) {
            Ok(text) => {
                all_inputs.extend(parse_depfile(&text).into_iter().map(|d| deps_base.join(d)))
            }
            Err(_) => return false,
        }
    }
    let outputs = output
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == ".output"));
    all_inputs.iter().all(|input| {
        let changed = match (outputs, times) {
            // A build's own outputs change while it runs; sources and headers do not.
            (Some(outputs), _) if input.starts_with(outputs) => paths::mtime(input),
            (_, Some(times)) => times.mtime(input),
            (_, None) => paths::mtime(input),
        };
        changed.is_some_and(|changed| changed <= built)
    })
}

/// The times of sources and headers, each stat'ed once per build: every step names the same SDK and kernel headers
/// (a no-op build of gala-gopher's tree asked 19,083 times for 1,470 files). Outputs are never cached: they change
/// while the build runs; sources do not.
#[derive(Default)]
pub struct SourceTimes(
    std::sync::Mutex<std::collections::HashMap<PathBuf, Option<std::time::SystemTime>>>,
);

impl SourceTimes {
    fn mtime(&self, path: &Path) -> Option<std::time::SystemTime> {
        if let Some(time) = self.0.lock().ok().and_then(|t| t.get(path).copied()) {
            return time;
        }
        let time = paths::mtime(path);
        if let Ok(mut times) = self.0.lock() {
            times.insert(path.to_path_buf(), time);
        }
        time
    }
}

/// Remembers that `fingerprint` failed to make `output`, so the next run does not try again until something changes.
pub fn record_failure(output: &Path, fingerprint: &str) -> Result<()> {
    paths::write_atomic(&failure_record(output), fingerprint.as_bytes())
}

/// Whether making `output` failed with this very `fingerprint` and no input has changed since.
pub fn failed_before(output: &Path, fingerprint: &str, inputs: &[PathBuf]) -> bool {
    let record = failure_record(output);
    let Some(failed_at) = paths::mtime(&record) else {
        return false;
    };
    std::fs::read_to_string(&record).is_ok_and(|recorded| recorded == fingerprint)
        && inputs
            .iter()
            .all(|input| paths::mtime(input).is_some_and(|changed| changed <= failed_at))
}

/// Forgets a remembered failure (when the step succeeds, or its inputs change).
pub fn forget_failure(output: &Path) -> Result<()> {
    paths::remove_file_if_exists(&failure_record(output))
}

fn failure_record(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.failed"))
}

/// Forgets how `output` was made (before remaking or removing it): it is then never taken for fresh.
pub fn forget(output: &Path) -> Result<()> {
    paths::remove_file_if_exists(&command_record(output))
}

/// Remembers that `output` is now the result of `command`.
pub fn record(output: &Path, command: &str) -> Result<()> {
    paths::write_atomic(&command_record(output), command.as_bytes())
}

/// Prerequisites from a make-style dependency file (`out.o: a.c b.h \` continued lines).
pub fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut deps = Vec::new();
    for line in joined.lines() {
        let Some((_, prerequisites)) = line.split_once(": ") else {
            continue;
        };
        // "\ " escapes a space inside a path; protect it while splitting on whitespace.
        let protected = prerequisites.replace("\\ ", "\u{0}");
        deps.extend(
            protected
                .split_whitespace()
                .map(|p| PathBuf::from(p.replace('\u{0}', " "))),
        );
    }
    deps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depfiles_parse_with_continuations_and_escaped_spaces() {
        let text = "out/a.o: probes/a/a.c include/bpf.h \\\n  out/a.skel.h /x/my\\ dir/h.h\n";
        let deps = parse_depfile(text);
        assert_eq!(
            deps,
            [
                "probes/a/a.c",
                "include/bpf.h",
                "out/a.skel.h",
                "/x/my dir/h.h"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn an_output_is_stale_when_its_command_changes_or_an_input_is_newer() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("a.c");
        let output = dir.path().join("a.o");
        std::fs::write(&input, "int x;").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&output, "obj").unwrap();
        let inputs = [input.clone()];
        assert!(
            !is_fresh(&output, "cc a.c", &inputs, None, dir.path(), None),
            "no record yet"
        );
        record(&output, "cc a.c").unwrap();
        assert!(is_fresh(&output, "cc a.c", &inputs, None, dir.path(), None));
        assert!(
            !is_fresh(
                &output,
                "cc -DGOPHER_DEBUG a.c",
                &inputs,
                None,
                dir.path(),
                None
            ),
            "flags changed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&input, "int y;").unwrap();
        assert!(
            !is_fresh(&output, "cc a.c", &inputs, None, dir.path(), None),
            "input newer"
        );
        forget(&output).unwrap();
        assert!(!is_fresh(
            &output,
            "cc a.c",
            &inputs,
            None,
            dir.path(),
            None
        ));
    }
}
