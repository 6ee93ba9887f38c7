//! Writing the generated files: each atomically (an exclusively created temp file with an unpredictable name
//! beside it, then renamed), only files import wrote before (the header line) unless `--force` moves the
//! others aside to `<name>.orig`, and nothing at all when any file would be refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::render::HEADER;

/// A file to write and its full contents.
pub struct Planned {
    pub path: PathBuf,
    pub contents: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Written,
    Unchanged,
    /// A file import did not write was moved to this path first (`--force`).
    MovedAside(PathBuf),
}

/// Whether import wrote this file (its first line is the header).
fn written_by_import(contents: &str) -> bool {
    contents
        .lines()
        .next()
        .is_some_and(|l| l.starts_with(HEADER))
}

/// Writes every planned file, or none when one exists that import did not write and `force` is off.
pub fn write_all(planned: &[Planned], force: bool, root: &Path) -> Result<Vec<Outcome>> {
    let mut foreign = Vec::new();
    for plan in planned {
        match std::fs::read(&plan.path) {
            Ok(bytes) if !written_by_import(&String::from_utf8_lossy(&bytes)) => {
                foreign.push(plan.path.clone())
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read `{}`", plan.path.display()))
            }
        }
    }
    let shown = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    if !foreign.is_empty() && !force {
        bail!(
            "not replacing {} that import did not write (no `{HEADER}` first line): {}\n\
             Nothing was written. To go on, move {} away yourself, or run `ebpf-probe import --force`, \
             which moves each to `<name>.orig` first.",
            if foreign.len() == 1 { "a file" } else { "files" },
            foreign.iter().map(|p| shown(p)).collect::<Vec<_>>().join(", "),
            if foreign.len() == 1 { "it" } else { "them" },
        );
    }
    for path in &foreign {
        let aside = orig_path(path);
        if aside.exists() {
            bail!(
                "`{}` already exists, so `{}` cannot be moved aside to it; move one of them yourself. \
                 Nothing was written.",
                shown(&aside),
                shown(path)
            );
        }
    }
    let mut outcomes = Vec::new();
    for plan in planned {
        let outcome = if foreign.contains(&plan.path) {
            let aside = orig_path(&plan.path);
            crate::paths::rename(&plan.path, &aside)?;
            write_atomic(&plan.path, plan.contents.as_bytes())?;
            Outcome::MovedAside(aside)
        } else if std::fs::read(&plan.path).is_ok_and(|b| b == plan.contents.as_bytes()) {
            Outcome::Unchanged
        } else {
            write_atomic(&plan.path, plan.contents.as_bytes())?;
            Outcome::Written
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn orig_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".orig");
    path.with_file_name(name)
}

/// Temp file beside `path` (created exclusively, unpredictable name, removed if anything fails), then renamed.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
    temp.write_all(contents)
        .and_then(|_| temp.as_file().sync_all())
        .with_context(|| format!("failed to write `{}`", temp.path().display()))?;
    // tempfile creates 0600; a configuration file is readable like the Makefile beside it.
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("failed to set the mode of `{}`", temp.path().display()))?;
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("failed to rename a temporary file to `{}`", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dir: &Path, name: &str, contents: &str) -> Planned {
        Planned {
            path: dir.join(name),
            contents: contents.to_string(),
        }
    }

    #[test]
    fn writes_then_reports_unchanged_and_refuses_foreign_files_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let ours = format!("{HEADER} from here.\nx = 1\n");
        let planned = vec![plan(dir.path(), "a.toml", &ours)];
        assert_eq!(
            write_all(&planned, false, dir.path()).unwrap(),
            vec![Outcome::Written]
        );
        assert_eq!(
            write_all(&planned, false, dir.path()).unwrap(),
            vec![Outcome::Unchanged]
        );
        std::fs::write(dir.path().join("b.toml"), "mine = true\n").unwrap();
        let planned = vec![
            plan(dir.path(), "a.toml", &format!("{ours}y = 2\n")),
            plan(dir.path(), "b.toml", &ours),
        ];
        let error = write_all(&planned, false, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("b.toml") && error.contains("--force"),
            "{error}"
        );
        // Nothing was written, not even the file import owns.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.toml")).unwrap(),
            ours
        );
        let outcomes = write_all(&planned, true, dir.path()).unwrap();
        assert_eq!(outcomes[0], Outcome::Written);
        assert_eq!(
            outcomes[1],
            Outcome::MovedAside(dir.path().join("b.toml.orig"))
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.toml.orig")).unwrap(),
            "mine = true\n"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "no temp file left: {names:?}");
    }
}
