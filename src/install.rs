//! `install` / `uninstall`: copies built probes, their `.meta` and `conf/` files into the gala-gopher directories
//! (optionally under a DESTDIR) by rpm's rules for files an admin may own or edit, all or nothing, and records what
//! it wrote (paths relative to the install root, each file's sha256) so that `uninstall` undoes exactly that.
//!
//! All or nothing: every file is staged in a hidden temp file beside its destination; then the manifest is written
//! with a `pending` journal naming every rename about to happen; then the renames; then the manifest without the
//! journal. A run that dies in between leaves the journal, and the next `install` or `uninstall` rolls it back
//! before anything else. One install or uninstall per install root at a time (a lock on the root directory).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::artifacts::BuiltProbe;
use crate::core::selection::Selection;
use crate::core::workspace::Workspace;
use crate::paths;

pub struct InstallDirs {
    pub bin_dir: PathBuf,
    pub conf_dir: PathBuf,
    pub meta_dir: PathBuf,
    pub destdir: Option<PathBuf>,
}

/// Where the manifest lives, relative to the install root.
const MANIFEST: &str = "var/lib/ebpf-probe/installed.json";
const MANIFEST_VERSION: u64 = 2;
/// rpm's `.rpmnew`: the new version of a config file that stays as the admin left it.
const NEW_SUFFIX: &str = ".ebpf-probe-new";
/// The file install replaced that it had not written; `uninstall` puts it back.
const ORIG_SUFFIX: &str = ".ebpf-probe-orig";
/// rpm's `.rpmsave`: a file changed since install, kept when install replaces or uninstall removes it.
const SAVE_SUFFIX: &str = ".ebpf-probe-save";
/// What every name above shares: a recorded backup must be `<file>` + this + the rest, beside `<file>`.
const SIBLING_MARK: &str = ".ebpf-probe-";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u64,
    files: Vec<Entry>,
    /// Directories `install` created, removed again when they are empty and nothing is installed any more
    /// (`.` is the install root itself).
    dirs: Vec<PathBuf>,
    /// An install under way: what to undo if it never finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<Pending>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// Relative to the install root.
    path: PathBuf,
    /// Every probe that installed these bytes here (two probes may ship the same file).
    probes: Vec<String>,
    kind: Kind,
    /// What install wrote; `None` only for files recorded by an ebpf-probe that kept no checksums.
    sha256: Option<String>,
    /// The file install replaced, kept beside it, that `uninstall` puts back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup: Option<PathBuf>,
    /// The file was already there with these bytes: install wrote nothing and `uninstall` leaves it.
    #[serde(default, skip_serializing_if = "is_false")]
    existed: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Executable,
    Library,
    Object,
    Meta,
    Config,
}

impl Kind {
    /// The mode a file of this kind gets, never more than its source's.
    fn intended_mode(self) -> u32 {
        match self {
            Kind::Executable | Kind::Library => 0o755,
            Kind::Object | Kind::Meta | Kind::Config => 0o644,
        }
    }

    /// rpm's `%config(noreplace)`: an existing file with other content is never replaced.
    fn is_config(self) -> bool {
        self == Kind::Config
    }

    /// Files an admin may edit after install: kept when they changed.
    fn is_editable(self) -> bool {
        matches!(self, Kind::Meta | Kind::Config)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    /// The process that wrote the journal (for the message).
    pid: u32,
    /// Whether there was a manifest before: rolling back rewrites it, or removes the journal's.
    manifest_existed: bool,
    /// Outermost first.
    created_dirs: Vec<PathBuf>,
    steps: Vec<Step>,
}

/// One rename of a staged temp file into place.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    path: PathBuf,
    /// The staged file, beside `path`.
    temp: PathBuf,
    sha256: String,
    how: How,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum How {
    /// Nothing is at `path`.
    Create,
    /// `path` is a file install wrote, unchanged: swapped with the temp (which then holds the old bytes).
    Replace { previous_sha256: String },
    /// `path` is kept: hard-linked as `keep`, then the temp renamed over `path`.
    KeepOld { keep: PathBuf },
}

/// A manifest written before checksums and relative paths.
#[derive(Deserialize)]
struct LegacyManifest {
    files: Vec<LegacyFile>,
    dirs: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct LegacyFile {
    probe: String,
    path: PathBuf,
}

impl Manifest {
    fn new() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            files: Vec::new(),
            dirs: Vec::new(),
            pending: None,
        }
    }
}

impl InstallDirs {
    /// The install root: `--destdir` made absolute against the current directory with `.` and `..` folded
    /// lexically, as `make DESTDIR=relpkg` or `DESTDIR=a/../b` is meant; `/` without one.
    fn root_dir(&self) -> Result<PathBuf> {
        match &self.destdir {
            Some(destdir) if !destdir.as_os_str().is_empty() => paths::absolute_lexically(destdir),
            _ => Ok(PathBuf::from("/")),
        }
    }

    /// `dir` (`-b`, `-c`, `-m`) relative to the install root.
    fn relative_dir(&self, dir: &Path) -> Result<PathBuf> {
        if dir.components().any(|c| c == Component::ParentDir) {
            bail!(
                "`{}` contains `..`; give a plain absolute directory",
                dir.display()
            );
        }
        let absolute = match &self.destdir {
            Some(_) if !dir.is_absolute() => {
                bail!(
                    "`{}` must be absolute when --destdir is given (it is placed under DESTDIR)",
                    dir.display()
                )
            }
            Some(_) => dir.to_path_buf(),
            None => paths::absolute_lexically(dir)?,
        };
        Ok(absolute
            .strip_prefix("/")
            .unwrap_or(&absolute)
            .to_path_buf())
    }
}

/// The install root, and the rule that nothing install or uninstall touches resolves outside it.
struct Root {
    /// Absolute and lexical: what messages show.
    dir: PathBuf,
    /// `dir` with its links resolved.
    canonical: PathBuf,
}

impl Root {
    fn open(dir: PathBuf) -> Result<Root> {
        let canonical = std::fs::canonicalize(&dir)
            .with_context(|| format!("failed to resolve `{}`", dir.display()))?;
        Ok(Root { dir, canonical })
    }

    fn shown(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() || rel == Path::new(".") {
            self.dir.clone()
        } else {
            self.dir.join(rel)
        }
    }

    /// Where the recorded path `rel` is on disk: the links of its parent directories followed (they must lead
    /// to a directory beneath the root), its last component not. `None` when its parent does not exist.
    fn resolve(&self, rel: &Path) -> Result<Option<PathBuf>> {
        if rel == Path::new(".") {
            return Ok(Some(self.canonical.clone()));
        }
        if let Err(reason) = check_recorded(rel) {
            bail!("`{}` {reason}", rel.display());
        }
        let name = rel.file_name().context("a recorded path has a name")?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let mut existing = parent;
        let mut missing = false;
        let resolved = loop {
            match std::fs::canonicalize(self.canonical.join(existing)) {
                Ok(resolved) => break resolved,
                Err(_) => {
                    missing = true;
                    match existing.parent() {
                        Some(up) => existing = up,
                        None => break self.canonical.clone(),
                    }
                }
            }
        };
        if !resolved.starts_with(&self.canonical) {
            bail!(
                "`{}` leads through `{}`, which resolves to `{}`, outside the install root `{}`",
                self.shown(rel).display(),
                self.shown(existing).display(),
                resolved.display(),
                self.dir.display()
            );
        }
        Ok((!missing).then(|| resolved.join(name)))
    }

    /// `rel_dir` on disk, when it exists (the root itself for an empty path).
    fn dir_on_disk(&self, rel_dir: &Path) -> Result<Option<PathBuf>> {
        if rel_dir.as_os_str().is_empty() {
            Ok(Some(self.canonical.clone()))
        } else {
            self.resolve(rel_dir)
        }
    }
}

/// A recorded path is relative and plain: not absolute, no `..`, no `.`, not empty.
fn check_recorded(rel: &Path) -> std::result::Result<(), &'static str> {
    if rel.as_os_str().is_empty() {
        return Err("is empty");
    }
    if rel.has_root() {
        return Err("is absolute");
    }
    for component in rel.components() {
        match component {
            Component::Normal(_) => {}
            Component::ParentDir => return Err("contains `..`"),
            Component::CurDir => return Err("contains `.`"),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
        }
    }
    Ok(())
}

/// `rel` + `suffix` (a name beside it).
fn sibling(rel: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = rel.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    rel.with_file_name(name)
}

/// Whether `other` is one of our names for a copy of `rel`: beside it, named `<rel's name>.ebpf-probe-…`.
fn is_sibling_of(other: &Path, rel: &Path) -> bool {
    let (Some(name), Some(other_name)) = (rel.file_name(), other.file_name()) else {
        return false;
    };
    let mut prefix = name.as_bytes().to_vec();
    prefix.extend_from_slice(SIBLING_MARK.as_bytes());
    other.parent() == rel.parent() && other_name.as_bytes().starts_with(&prefix)
}

/// Whether `temp` is a temp file beside `rel` (our hidden `.<name>.tmp.<pid>.<random>` names).
fn is_temp_beside(temp: &Path, rel: &Path) -> bool {
    temp.parent() == rel.parent()
        && temp
            .file_name()
            .is_some_and(|n| paths::temp_file_owner(&n.to_string_lossy()).is_some())
}

/// One file to install: where it comes from, where it goes (relative to the root), and what it is.
struct Copy {
    probes: Vec<String>,
    source: PathBuf,
    rel: PathBuf,
    kind: Kind,
}

/// Installs the selected probes (already built): executables, their standalone BPF objects and libraries in the
/// subdirectories their probe.toml names, `.meta` files and `conf/` files.
pub fn install(
    workspace: &Workspace,
    selection: &Selection,
    built: &[BuiltProbe],
    dirs: &InstallDirs,
) -> Result<()> {
    let nothing = || {
        format!(
            "nothing was installed (the directories are as they were); workspace `{}`",
            workspace.root.display()
        )
    };
    let root_dir = dirs.root_dir()?;
    let copies = copies(
        selection,
        built,
        &dirs.relative_dir(&dirs.bin_dir)?,
        &dirs.relative_dir(&dirs.conf_dir)?,
        &dirs.relative_dir(&dirs.meta_dir)?,
    )
    .and_then(|copies| unique(copies, &root_dir))
    .with_context(nothing)?;
    let run_probes: BTreeSet<String> = selection.probes.iter().map(|p| p.name.clone()).collect();

    let root_was_missing = std::fs::symlink_metadata(&root_dir).is_err();
    paths::create_dir_all(&root_dir).with_context(nothing)?;
    let root = Root::open(root_dir).with_context(nothing)?;
    let _lock = lock(&root)?;
    let (manifest, _) = recover(&root, load_manifest(&root)?)?;
    let manifest_existed = manifest.is_some();
    let manifest = manifest.unwrap_or_else(Manifest::new);

    let mut created: Vec<PathBuf> = Vec::new();
    if root_was_missing {
        created.push(PathBuf::from("."));
    }
    // Stage and decide everything first: a bad destination, an unwritable directory or a full disk fails here,
    // before anything is replaced, and the staged files and new directories are removed again.
    let planned = plan(&root, &manifest, &copies, &run_probes, &mut created);
    let (actions, files) = match planned {
        Ok(planned) => planned,
        Err(error) => {
            remove_created_dirs(&root, &created);
            return Err(error.context(nothing()));
        }
    };

    // The journal: every rename about to happen, recorded before the first one.
    let mut journal = Manifest {
        pending: Some(Pending {
            pid: std::process::id(),
            manifest_existed,
            created_dirs: created.clone(),
            steps: actions
                .iter()
                .filter_map(|a| a.step.as_ref().map(|(step, _)| step.clone()))
                .collect(),
        }),
        ..manifest
    };
    if let Err(error) = write_manifest(&root, &journal) {
        drop(actions);
        remove_created_dirs(&root, &created);
        return Err(error.context(nothing()));
    }

    // rename(2) replaces a running probe's executable without touching the file it is running from.
    let mut old_bytes = Vec::new();
    for action in actions {
        if let Some((step, temp)) = action.step {
            // From here on the journal says what becomes of the temp file.
            let _ = temp.keep();
            if let Err(error) = execute(&root, &step) {
                return Err(rolled_back(&root, &mut journal, error));
            }
            if matches!(step.how, How::Replace { .. }) {
                old_bytes.push(step.temp);
            }
        }
        println!("{}", action.message);
    }

    let mut dirs_now = journal.dirs.clone();
    for dir in created {
        if !dirs_now.contains(&dir) {
            dirs_now.push(dir);
        }
    }
    let committed = Manifest {
        version: MANIFEST_VERSION,
        files,
        dirs: dirs_now,
        pending: None,
    };
    if let Err(error) = write_manifest(&root, &committed) {
        return Err(rolled_back(&root, &mut journal, error));
    }
    // The previous bytes of files we replaced, swapped into the temp names.
    for temp in old_bytes {
        if let Ok(Some(temp)) = root.resolve(&temp) {
            let _ = std::fs::remove_file(temp);
        }
    }
    println!(
        "  recorded in {}",
        root.shown(Path::new(MANIFEST)).display()
    );
    Ok(())
}

/// `error`, after rolling back the journal's renames (or saying why that failed too).
fn rolled_back(root: &Root, journal: &mut Manifest, error: anyhow::Error) -> anyhow::Error {
    match roll_back(root, journal) {
        Ok(()) => error.context("the install was rolled back: nothing was installed"),
        Err(undo) => error.context(format!(
            "rolling the install back failed too ({undo:#}); the journal in `{}` lets the next install or \
             uninstall finish it",
            root.shown(Path::new(MANIFEST)).display()
        )),
    }
}

/// What to install: each probe's executable, its installables, `.meta` and `conf/` files.
fn copies(
    selection: &Selection,
    built: &[BuiltProbe],
    bin_dir: &Path,
    conf_dir: &Path,
    meta_dir: &Path,
) -> Result<Vec<Copy>> {
    let mut copies = Vec::new();
    for probe in &selection.probes {
        let Some(built) = built.iter().find(|b| b.name == probe.name) else {
            bail!("probe `{}` was not built", probe.name);
        };
        let probes = vec![probe.name.clone()];
        copies.push(Copy {
            probes: probes.clone(),
            source: resolved(&built.binary)?,
            rel: bin_dir.join(probe.binary_name()),
            kind: Kind::Executable,
        });
        for installable in &built.installables {
            let name = installable.path.file_name().unwrap_or_default();
            let is_object = name.to_string_lossy().ends_with(".bpf.o");
            copies.push(Copy {
                probes: probes.clone(),
                source: resolved(&installable.path)?,
                rel: join_subdir(bin_dir, &installable.subdir).join(name),
                kind: if is_object {
                    Kind::Object
                } else {
                    Kind::Library
                },
            });
        }
        for meta in probe.meta_files()? {
            let name = meta.file_name().context("a .meta file has a name")?;
            copies.push(Copy {
                probes: probes.clone(),
                rel: meta_dir.join(name),
                source: resolved(&meta)?,
                kind: Kind::Meta,
            });
        }
        let conf = match probe.conf_dir() {
            Some(_) => conf_files(&probe.dir)?,
            None => Vec::new(),
        };
        for (rel, source) in conf {
            copies.push(Copy {
                probes: probes.clone(),
                source,
                rel: conf_dir.join(rel),
                kind: Kind::Config,
            });
        }
    }
    Ok(copies)
}

/// A built file or `.meta` with its links resolved: what staging opens (without following links, so the file
/// read is the one checked).
fn resolved(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("failed to resolve `{}`", path.display()))
}

/// `dir` joined with a probe.toml `install` subdirectory (`.` is the dir itself).
fn join_subdir(dir: &Path, subdir: &str) -> PathBuf {
    let mut out = dir.to_path_buf();
    for component in Path::new(subdir).components() {
        if let Component::Normal(name) = component {
            out.push(name);
        }
    }
    out
}

/// Two probes may install the same file (gala-gopher's ksliprobe and pgsliprobe both ship `tc_tstamp.bpf.o`):
/// fine when the bytes are the same, and both probes own it; other bytes at one path are an error.
fn unique(copies: Vec<Copy>, root_dir: &Path) -> Result<Vec<Copy>> {
    let mut unique: Vec<Copy> = Vec::new();
    for copy in copies {
        match unique.iter_mut().find(|u| u.rel == copy.rel) {
            Some(first) if same_bytes(&first.source, &copy.source) => {
                for probe in copy.probes {
                    if !first.probes.contains(&probe) {
                        first.probes.push(probe);
                    }
                }
            }
            Some(first) => bail!(
                "`{}` (probe {}) and `{}` (probe {}) would both be installed as `{}`",
                first.source.display(),
                first.probes.join(", "),
                copy.source.display(),
                copy.probes.join(", "),
                root_dir.join(&copy.rel).display()
            ),
            None => unique.push(copy),
        }
    }
    Ok(unique)
}

/// The files of a probe's `conf/`: their names under `conf/` and the file to read. A symlink is followed only
/// when it resolves inside the probe directory; one that leaves it (`x.conf -> /etc/shadow`) is refused, as is
/// anything that is not a regular file or directory.
fn conf_files(probe_dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let conf = probe_dir.join("conf");
    if std::fs::symlink_metadata(&conf).is_err() {
        return Ok(Vec::new());
    }
    let probe_canonical = std::fs::canonicalize(probe_dir)
        .with_context(|| format!("failed to resolve `{}`", probe_dir.display()))?;
    let conf_disk = resolve_inside(&conf, &probe_canonical, probe_dir)?;
    if !conf_disk.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let mut visited = BTreeSet::new();
    walk_conf(
        &conf_disk,
        &conf,
        Path::new(""),
        &probe_canonical,
        probe_dir,
        &mut visited,
        &mut files,
    )?;
    Ok(files)
}

/// `path` with its links resolved, which must stay inside the probe directory.
fn resolve_inside(path: &Path, probe_canonical: &Path, probe_dir: &Path) -> Result<PathBuf> {
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    if !meta.file_type().is_symlink() {
        return std::fs::canonicalize(path)
            .with_context(|| format!("failed to resolve `{}`", path.display()));
    }
    let target = std::fs::read_link(path)
        .with_context(|| format!("failed to read the symlink `{}`", path.display()))?;
    let resolved = std::fs::canonicalize(path).with_context(|| {
        format!(
            "`{}` is a symlink to `{}`, which does not exist; refusing to install it",
            path.display(),
            target.display()
        )
    })?;
    if !resolved.starts_with(probe_canonical) {
        bail!(
            "`{}` is a symlink to `{}`, outside the probe directory `{}`; refusing to install it \
             (copy the file into the probe instead)",
            path.display(),
            target.display(),
            probe_dir.display()
        );
    }
    Ok(resolved)
}

fn walk_conf(
    dir_disk: &Path,
    dir_shown: &Path,
    rel: &Path,
    probe_canonical: &Path,
    probe_dir: &Path,
    visited: &mut BTreeSet<PathBuf>,
    files: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<()> {
    // A link back up (`conf/again -> .`) would never end.
    if !visited.insert(dir_disk.to_path_buf()) {
        return Ok(());
    }
    let mut names: Vec<OsString> = std::fs::read_dir(dir_disk)
        .with_context(|| format!("failed to list `{}`", dir_shown.display()))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("failed to list `{}`", dir_shown.display()))?;
    names.sort();
    for name in names {
        let shown = dir_shown.join(&name);
        let disk = dir_disk.join(&name);
        let rel = rel.join(&name);
        let file_type = std::fs::symlink_metadata(&disk)
            .with_context(|| format!("failed to read `{}`", shown.display()))?
            .file_type();
        let resolved = if file_type.is_symlink() {
            resolve_inside(&shown, probe_canonical, probe_dir)?
        } else {
            disk
        };
        let meta = std::fs::metadata(&resolved)
            .with_context(|| format!("failed to read `{}`", shown.display()))?;
        if meta.is_dir() {
            walk_conf(
                &resolved,
                &shown,
                &rel,
                probe_canonical,
                probe_dir,
                visited,
                files,
            )?;
        } else if meta.is_file() {
            files.push((rel, resolved));
        } else {
            bail!(
                "`{}` is not a regular file (a FIFO, socket or device); refusing to install it",
                shown.display()
            );
        }
    }
    Ok(())
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

/// A staged file: the temp beside its destination, and what it holds.
struct Staged {
    temp: tempfile::TempPath,
    temp_rel: PathBuf,
    disk: PathBuf,
    sha256: String,
    mode: u32,
}

/// What install does with one file: the rename (with its staged temp) or nothing, and the line it prints.
struct Action {
    step: Option<(Step, tempfile::TempPath)>,
    message: String,
}

/// Creates the directories, stages every file and decides, by the manifest and what is on disk, what becomes
/// of each: the actions in order and the manifest's files once they are done.
fn plan(
    root: &Root,
    manifest: &Manifest,
    copies: &[Copy],
    run_probes: &BTreeSet<String>,
    created: &mut Vec<PathBuf>,
) -> Result<(Vec<Action>, Vec<Entry>)> {
    let mut wanted: Vec<&Path> = copies.iter().filter_map(|c| c.rel.parent()).collect();
    wanted.extend(Path::new(MANIFEST).parent());
    wanted.dedup();
    for dir in &wanted {
        make_dirs(root, dir, created)?;
    }
    for dir in &wanted {
        // What an interrupted install left here (after any journal of it was rolled back).
        if let Some(disk) = root.dir_on_disk(dir)? {
            paths::remove_abandoned_temp_files(&disk);
        }
    }
    let mut files = manifest.files.clone();
    let mut taken = BTreeSet::new();
    let mut actions = Vec::new();
    for copy in copies {
        let staged = stage(root, copy)?;
        actions.push(plan_one(
            root, &mut files, copy, staged, run_probes, &mut taken,
        )?);
    }
    Ok((actions, files))
}

/// Creates the directory `rel` beneath the root, recording (outermost first) the ones it made. Each directory on
/// the way must resolve beneath the root: a planted link (`usr -> /`) is refused before anything is created.
fn make_dirs(root: &Root, rel: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut prefix = PathBuf::new();
    for component in rel.components() {
        prefix.push(component);
        let shown = root.shown(&prefix);
        let disk = root
            .resolve(&prefix)?
            .with_context(|| format!("failed to create directory `{}`", shown.display()))?;
        match std::fs::symlink_metadata(&disk) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&disk)
                    .with_context(|| format!("failed to create directory `{}`", shown.display()))?;
                created.push(prefix.clone());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read `{}`", shown.display()))
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::canonicalize(&disk).with_context(|| {
                    format!("`{}` is a symlink that leads nowhere", shown.display())
                })?;
                if !target.starts_with(&root.canonical) {
                    bail!(
                        "`{}` is a symlink to `{}`, outside the install root `{}`; refusing to install through it",
                        shown.display(),
                        target.display(),
                        root.dir.display()
                    );
                }
                if !target.is_dir() {
                    bail!("`{}` is not a directory", shown.display());
                }
            }
            Ok(_) => bail!("`{}` is not a directory", shown.display()),
        }
    }
    Ok(())
}

fn stage(root: &Root, copy: &Copy) -> Result<Staged> {
    let shown = root.shown(&copy.rel);
    let disk = root
        .resolve(&copy.rel)?
        .with_context(|| format!("the directory of `{}` is missing", shown.display()))?;
    let temp = paths::temp_file_beside(&disk)?;
    let (sha256, mode) =
        copy_into(&copy.source, &temp, copy.kind.intended_mode()).with_context(|| {
            format!(
                "failed to copy `{}` to `{}`",
                copy.source.display(),
                temp.display()
            )
        })?;
    let temp_rel = copy
        .rel
        .with_file_name(temp.file_name().context("a temp file has a name")?);
    Ok(Staged {
        temp,
        temp_rel,
        disk,
        sha256,
        mode,
    })
}

/// Copies `from` into the temp file `to` we created (opened without following links): returns the bytes'
/// sha256 and the mode given, `intended` bounded by `from`'s own mode.
fn copy_into(from: &Path, to: &Path, intended: u32) -> Result<(String, u32)> {
    let (mut source, meta) = open_regular(from)?;
    let mode = intended & meta.mode() & 0o777;
    let mut destination = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = source.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        destination.write_all(&buffer[..n])?;
    }
    destination.flush()?;
    destination.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok((hex(&hasher.finalize()), mode))
}

/// Opens a regular file without following a link at its name and without blocking on a FIFO.
fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    if !meta.is_file() {
        bail!("`{}` is not a regular file", path.display());
    }
    Ok((file, meta))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is at a destination now.
enum Existing {
    Missing,
    Directory,
    /// A symlink, FIFO, socket or device: never read through.
    Other,
    Regular {
        sha256: String,
        mode: u32,
    },
}

fn inspect(disk: &Path) -> Result<Existing> {
    match std::fs::symlink_metadata(disk) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Existing::Missing),
        Err(e) => Err(e).with_context(|| format!("failed to read `{}`", disk.display())),
        Ok(meta) if meta.is_dir() => Ok(Existing::Directory),
        Ok(meta) if meta.is_file() => {
            let (mut file, meta) = open_regular(disk)?;
            Ok(Existing::Regular {
                sha256: sha256_of(&mut file)
                    .with_context(|| format!("failed to read `{}`", disk.display()))?,
                mode: meta.mode() & 0o777,
            })
        }
        Ok(_) => Ok(Existing::Other),
    }
}

fn sha256_of(file: &mut File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// The sha256 of the regular file at `disk`, `None` when it is missing or not a regular file.
fn sha256_at(disk: &Path) -> Result<Option<String>> {
    match inspect(disk)? {
        Existing::Regular { sha256, .. } => Ok(Some(sha256)),
        _ => Ok(None),
    }
}

fn upsert(files: &mut Vec<Entry>, entry: Entry) {
    match files.iter_mut().find(|e| e.path == entry.path) {
        Some(old) => *old = entry,
        None => files.push(entry),
    }
}

/// `rel` + `suffix`, or + `suffix.N` for the first N naming nothing on disk and no other planned file.
fn free_sibling(
    root: &Root,
    rel: &Path,
    suffix: &str,
    taken: &mut BTreeSet<PathBuf>,
) -> Result<PathBuf> {
    for n in 0u32.. {
        let candidate = if n == 0 {
            sibling(rel, suffix)
        } else {
            sibling(rel, &format!("{suffix}.{n}"))
        };
        if taken.contains(&candidate) {
            continue;
        }
        let disk = root
            .resolve(&candidate)?
            .with_context(|| format!("the directory of `{}` is missing", rel.display()))?;
        if std::fs::symlink_metadata(&disk).is_err() {
            taken.insert(candidate.clone());
            return Ok(candidate);
        }
    }
    unreachable!("some name is free")
}

/// Decides what becomes of one staged file (rpm's rules):
/// - nothing there: it is created;
/// - a file install wrote, unchanged since: replaced;
/// - a config file changed since install or not written by install: kept, and the new one is written beside it
///   as `<name>.ebpf-probe-new` (`%config(noreplace)`);
/// - any other file changed since install: replaced, the changed one kept as `<name>.ebpf-probe-save`;
/// - any other file install did not write: replaced, and kept as `<name>.ebpf-probe-orig`, which the manifest
///   names and `uninstall` puts back;
/// - the same bytes already there (and the same mode, unless it is a config file): left as they are, and left
///   by `uninstall` too.
fn plan_one(
    root: &Root,
    files: &mut Vec<Entry>,
    copy: &Copy,
    staged: Staged,
    run_probes: &BTreeSet<String>,
    taken: &mut BTreeSet<PathBuf>,
) -> Result<Action> {
    let shown = root.shown(&copy.rel);
    let recorded = files.iter().find(|e| e.path == copy.rel).cloned();
    let mut probes = recorded
        .as_ref()
        .map(|e| e.probes.clone())
        .unwrap_or_default();
    for probe in &copy.probes {
        if !probes.contains(probe) {
            probes.push(probe.clone());
        }
    }
    if let Some(entry) = &recorded {
        let others: Vec<&str> = entry
            .probes
            .iter()
            .filter(|p| !run_probes.contains(*p) && !copy.probes.contains(p))
            .map(String::as_str)
            .collect();
        if !others.is_empty() && entry.sha256.as_deref() != Some(staged.sha256.as_str()) {
            bail!(
                "`{}` is installed by probe {} with other content; install them together or uninstall {} first",
                shown.display(),
                others.join(", "),
                others.join(", ")
            );
        }
    }
    let ours = recorded.as_ref().filter(|e| !e.existed);
    let fresh = Entry {
        path: copy.rel.clone(),
        probes: probes.clone(),
        kind: copy.kind,
        sha256: Some(staged.sha256.clone()),
        backup: ours.and_then(|e| e.backup.clone()),
        existed: false,
    };
    let installed = format!("  installed {} ({:o})", shown.display(), staged.mode);
    let step = |path: &Path, how: How, staged: Staged| -> Option<(Step, tempfile::TempPath)> {
        Some((
            Step {
                path: path.to_path_buf(),
                temp: staged.temp_rel,
                sha256: staged.sha256,
                how,
            },
            staged.temp,
        ))
    };
    let existing = inspect(&staged.disk)?;
    let modified = match (&existing, ours) {
        (Existing::Regular { sha256, .. }, Some(entry)) => match &entry.sha256 {
            Some(recorded) => recorded != sha256,
            // No checksum recorded (an older manifest): files an admin may edit count as edited.
            None => copy.kind.is_editable(),
        },
        (Existing::Other, _) => true,
        _ => false,
    };
    match existing {
        Existing::Directory => bail!(
            "`{}` is a directory, where ebpf-probe installs a file",
            shown.display()
        ),
        Existing::Missing => {
            upsert(files, fresh);
            taken.insert(copy.rel.clone());
            Ok(Action {
                step: step(&copy.rel, How::Create, staged),
                message: installed,
            })
        }
        Existing::Regular { sha256, .. } if ours.is_some() && !modified => {
            upsert(files, fresh);
            taken.insert(copy.rel.clone());
            Ok(Action {
                step: step(
                    &copy.rel,
                    How::Replace {
                        previous_sha256: sha256,
                    },
                    staged,
                ),
                message: installed,
            })
        }
        Existing::Regular { ref sha256, mode }
            if *sha256 == staged.sha256
                && (ours.is_some() || mode == staged.mode || copy.kind.is_config()) =>
        {
            let message = if ours.is_some() {
                format!(
                    "  kept {} (edited since install, to the new content)",
                    shown.display()
                )
            } else {
                format!(
                    "  kept {} (already there with the same content)",
                    shown.display()
                )
            };
            upsert(
                files,
                Entry {
                    existed: ours.is_none(),
                    ..fresh
                },
            );
            Ok(Action {
                step: None,
                message,
            })
        }
        _ if copy.kind.is_config() => {
            let reason = if ours.is_some() {
                "edited since install"
            } else {
                "not installed by ebpf-probe"
            };
            if let Some(entry) = ours {
                upsert(
                    files,
                    Entry {
                        probes: probes.clone(),
                        ..entry.clone()
                    },
                );
                if entry.sha256.as_deref() == Some(staged.sha256.as_str()) {
                    return Ok(Action {
                        step: None,
                        message: format!(
                            "  kept {} ({reason}; its new version is the one installed before)",
                            shown.display()
                        ),
                    });
                }
            }
            new_version(root, files, copy, staged, probes, reason, taken)
        }
        _ => {
            let (suffix, what) = if ours.is_some() {
                (SAVE_SUFFIX, "the edited file it replaced")
            } else {
                (ORIG_SUFFIX, "the file it replaced")
            };
            let keep = free_sibling(root, &copy.rel, suffix, taken)?;
            let backup = if ours.is_some() {
                fresh.backup.clone()
            } else {
                Some(keep.clone())
            };
            upsert(files, Entry { backup, ..fresh });
            taken.insert(copy.rel.clone());
            let message = format!(
                "{installed}; {what} is kept as {}",
                root.shown(&keep).display()
            );
            Ok(Action {
                step: step(&copy.rel, How::KeepOld { keep }, staged),
                message,
            })
        }
    }
}

/// A config file that stays as it is: the new one goes beside it as `<name>.ebpf-probe-new`.
fn new_version(
    root: &Root,
    files: &mut Vec<Entry>,
    copy: &Copy,
    staged: Staged,
    probes: Vec<String>,
    reason: &str,
    taken: &mut BTreeSet<PathBuf>,
) -> Result<Action> {
    let new_rel = sibling(&copy.rel, NEW_SUFFIX);
    let new_disk = root
        .resolve(&new_rel)?
        .with_context(|| format!("the directory of `{}` is missing", copy.rel.display()))?;
    let recorded = files
        .iter()
        .find(|e| e.path == new_rel && !e.existed)
        .and_then(|e| e.sha256.clone());
    let (target, how) = match inspect(&new_disk)? {
        Existing::Missing => (new_rel, How::Create),
        // Ours from an earlier install, unchanged.
        Existing::Regular { sha256, .. } if recorded.as_deref() == Some(sha256.as_str()) => (
            new_rel,
            How::Replace {
                previous_sha256: sha256,
            },
        ),
        _ => (
            free_sibling(root, &copy.rel, NEW_SUFFIX, taken)?,
            How::Create,
        ),
    };
    taken.insert(target.clone());
    upsert(
        files,
        Entry {
            path: target.clone(),
            probes,
            kind: Kind::Config,
            sha256: Some(staged.sha256.clone()),
            backup: None,
            existed: false,
        },
    );
    Ok(Action {
        message: format!(
            "  kept {} ({reason}); the new version is {}",
            root.shown(&copy.rel).display(),
            root.shown(&target).display()
        ),
        step: Some((
            Step {
                path: target,
                temp: staged.temp_rel,
                sha256: staged.sha256,
                how,
            },
            staged.temp,
        )),
    })
}

fn execute(root: &Root, step: &Step) -> Result<()> {
    let missing = || anyhow!("the directory of `{}` is gone", step.path.display());
    let path = root.resolve(&step.path)?.ok_or_else(missing)?;
    let temp = root.resolve(&step.temp)?.ok_or_else(missing)?;
    match &step.how {
        How::Create => paths::rename_noreplace(&temp, &path),
        How::Replace { .. } => paths::rename_exchange(&temp, &path).map(|_| ()),
        How::KeepOld { keep } => {
            let keep = root.resolve(keep)?.ok_or_else(missing)?;
            std::fs::hard_link(&path, &keep).with_context(|| {
                format!(
                    "failed to keep `{}` as `{}`",
                    path.display(),
                    keep.display()
                )
            })?;
            std::fs::rename(&temp, &path).with_context(|| {
                format!(
                    "failed to rename `{}` to `{}`",
                    temp.display(),
                    path.display()
                )
            })
        }
    }
}

/// Undoes the journal's renames (last first) and restores the manifest as it was before them. Each step is
/// undone only as far as it happened, and a file is removed only when it holds the bytes the step wrote, so
/// undoing twice, or a journal cut short by a kill, is safe.
fn roll_back(root: &Root, manifest: &mut Manifest) -> Result<()> {
    let Some(pending) = manifest.pending.clone() else {
        return Ok(());
    };
    let mut failures = Vec::new();
    for step in pending.steps.iter().rev() {
        if let Err(error) = undo(root, step, &mut manifest.files) {
            failures.push(format!("{error:#}"));
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    manifest.pending = None;
    if pending.manifest_existed {
        write_manifest(root, manifest)?;
    } else if let Some(disk) = root.resolve(Path::new(MANIFEST))? {
        paths::remove_file_if_exists(&disk)?;
    }
    remove_created_dirs(root, &pending.created_dirs);
    for step in &pending.steps {
        if let Ok(Some(dir)) = root.dir_on_disk(step.path.parent().unwrap_or(Path::new(""))) {
            paths::remove_abandoned_temp_files(&dir);
        }
    }
    Ok(())
}

fn undo(root: &Root, step: &Step, files: &mut [Entry]) -> Result<()> {
    let (Some(path), Some(temp)) = (root.resolve(&step.path)?, root.resolve(&step.temp)?) else {
        // Its directory is gone, and with it anything the step wrote.
        return Ok(());
    };
    let temp_exists = std::fs::symlink_metadata(&temp).is_ok();
    let now = sha256_at(&path)?;
    let wrote_it = now.as_deref() == Some(step.sha256.as_str());
    match &step.how {
        How::Create => {
            if !temp_exists && wrote_it {
                paths::remove_file_if_exists(&path)?;
            }
        }
        How::Replace { previous_sha256 } => {
            if temp_exists && wrote_it && *previous_sha256 != step.sha256 {
                // Swapped: the temp holds the previous bytes.
                std::fs::rename(&temp, &path).with_context(|| {
                    format!(
                        "failed to restore `{}` from `{}`",
                        path.display(),
                        temp.display()
                    )
                })?;
            } else if !temp_exists && wrote_it {
                // Renamed where exchanging is unsupported: the previous bytes are gone, the new ones are ours.
                for entry in files.iter_mut().filter(|e| e.path == step.path) {
                    entry.sha256 = Some(step.sha256.clone());
                }
            }
        }
        How::KeepOld { keep } => {
            if let Some(keep) = root.resolve(keep)? {
                if let Ok(kept) = std::fs::symlink_metadata(&keep) {
                    let current = std::fs::symlink_metadata(&path).ok();
                    if current.is_some_and(|c| c.dev() == kept.dev() && c.ino() == kept.ino()) {
                        // Linked, not yet replaced.
                        paths::remove_file_if_exists(&keep)?;
                    } else {
                        std::fs::rename(&keep, &path).with_context(|| {
                            format!(
                                "failed to restore `{}` from `{}`",
                                path.display(),
                                keep.display()
                            )
                        })?;
                    }
                }
            }
        }
    }
    if std::fs::symlink_metadata(&temp).is_ok() {
        paths::remove_file_if_exists(&temp)?;
    }
    Ok(())
}

/// Removes the directories install created (recorded outermost first) that are empty.
fn remove_created_dirs(root: &Root, created: &[PathBuf]) {
    let mut dirs: Vec<&PathBuf> = created.iter().collect();
    // Deepest first; the root itself last.
    dirs.sort_by_key(|d| {
        std::cmp::Reverse(if d.as_path() == Path::new(".") {
            0
        } else {
            d.components().count()
        })
    });
    for dir in dirs {
        if let Ok(Some(disk)) = root.resolve(dir) {
            let _ = std::fs::remove_dir(disk);
        }
    }
}

/// Rolls back an install that never finished (its journal is in the manifest). Returns the manifest as it was
/// before that install (`None` when there was none) and whether there was anything to roll back.
fn recover(root: &Root, manifest: Option<Manifest>) -> Result<(Option<Manifest>, bool)> {
    let Some(mut manifest) = manifest else {
        return Ok((None, false));
    };
    let Some(pending) = &manifest.pending else {
        return Ok((Some(manifest), false));
    };
    let existed = pending.manifest_existed;
    eprintln!(
        "note: an install into `{}` (process {}) was interrupted; rolling it back",
        root.dir.display(),
        pending.pid
    );
    roll_back(root, &mut manifest).with_context(|| {
        format!(
            "failed to roll back the interrupted install recorded in `{}`; fix the cause and run install or \
             uninstall again",
            root.shown(Path::new(MANIFEST)).display()
        )
    })?;
    eprintln!("note: rolled back; the files are as they were before that install");
    Ok((existed.then_some(manifest), true))
}

/// Removes what `install` recorded for `probe_names` (every probe in the manifest when empty). A file changed
/// since install is kept as `<name>.ebpf-probe-save`, a file install had replaced is put back, a file another
/// probe still uses stays, and nothing outside the install root is touched.
pub fn uninstall(probe_names: &[String], dirs: &InstallDirs) -> Result<()> {
    let root_dir = dirs.root_dir()?;
    let nothing = || {
        anyhow!(
            "nothing to uninstall: no install manifest at `{}` (use the same --destdir as for install)",
            root_dir.join(MANIFEST).display()
        )
    };
    if !root_dir.is_dir() {
        return Err(nothing());
    }
    let root = Root::open(root_dir.clone())?;
    let _lock = lock(&root)?;
    let (manifest, recovered) = recover(&root, load_manifest(&root)?)?;
    let Some(mut manifest) = manifest else {
        if recovered {
            return Ok(());
        }
        return Err(nothing());
    };
    let manifest_shown = root.shown(Path::new(MANIFEST));
    for name in probe_names {
        if !manifest.files.iter().any(|f| f.probes.contains(name)) {
            bail!(
                "probe `{name}` is not recorded in `{}`",
                manifest_shown.display()
            );
        }
    }
    let mut kept = Vec::new();
    let mut result = Ok(());
    let mut touched_dirs = BTreeSet::new();
    for mut entry in std::mem::take(&mut manifest.files) {
        let selected =
            probe_names.is_empty() || entry.probes.iter().any(|p| probe_names.contains(p));
        if !selected || result.is_err() {
            kept.push(entry);
            continue;
        }
        let remaining: Vec<String> = if probe_names.is_empty() {
            Vec::new()
        } else {
            entry
                .probes
                .iter()
                .filter(|p| !probe_names.contains(p))
                .cloned()
                .collect()
        };
        if !remaining.is_empty() {
            println!(
                "  kept {} (probe {} still uses it)",
                root.shown(&entry.path).display(),
                remaining.join(", ")
            );
            entry.probes = remaining;
            kept.push(entry);
            continue;
        }
        touched_dirs.insert(entry.path.parent().unwrap_or(Path::new("")).to_path_buf());
        if let Err(error) = remove_entry(&root, &entry) {
            kept.push(entry);
            result = Err(error);
        }
    }
    manifest.files = kept;
    if manifest.files.is_empty() {
        if let Some(disk) = root.resolve(Path::new(MANIFEST))? {
            paths::remove_file_if_exists(&disk)?;
        }
        remove_created_dirs(&root, &std::mem::take(&mut manifest.dirs));
    } else {
        write_manifest(&root, &manifest)?;
    }
    for dir in touched_dirs {
        if let Ok(Some(disk)) = root.dir_on_disk(&dir) {
            paths::remove_abandoned_temp_files(&disk);
        }
    }
    result
}

/// Removes one recorded file, or keeps it when it is no longer what install wrote; puts back what it replaced.
fn remove_entry(root: &Root, entry: &Entry) -> Result<()> {
    let shown = root.shown(&entry.path);
    let Some(disk) = root.resolve(&entry.path)? else {
        println!("  removed {}", shown.display());
        return Ok(());
    };
    if entry.existed {
        println!("  kept {} (it was there before install)", shown.display());
        return Ok(());
    }
    let backup = match &entry.backup {
        Some(rel) => root
            .resolve(rel)?
            .filter(|disk| std::fs::symlink_metadata(disk).is_ok())
            .map(|disk| (rel, disk)),
        None => None,
    };
    let restore = |backup: Option<(&PathBuf, PathBuf)>| -> Result<()> {
        if let Some((rel, backup_disk)) = backup {
            std::fs::rename(&backup_disk, &disk).with_context(|| {
                format!(
                    "failed to put `{}` back as `{}`",
                    root.shown(rel).display(),
                    shown.display()
                )
            })?;
            println!(
                "  restored {} (the file install had replaced, from {})",
                shown.display(),
                root.shown(rel).display()
            );
        }
        Ok(())
    };
    let existing = inspect(&disk)?;
    let unchanged = match (&existing, &entry.sha256) {
        (Existing::Regular { sha256, .. }, Some(recorded)) => sha256 == recorded,
        (Existing::Regular { .. }, None) => !entry.kind.is_editable(),
        _ => false,
    };
    match existing {
        Existing::Missing => {
            println!("  removed {}", shown.display());
            restore(backup)
        }
        _ if unchanged => {
            if backup.is_some() {
                restore(backup)
            } else {
                paths::remove_file_if_exists(&disk)?;
                println!("  removed {}", shown.display());
                Ok(())
            }
        }
        _ if entry.backup.is_some() && backup.is_none() => {
            // The backup is gone: most likely an interrupted uninstall already put it back here.
            println!(
                "  kept {} (not the file install wrote, and its backup is gone)",
                shown.display()
            );
            Ok(())
        }
        _ => {
            let mut taken = BTreeSet::new();
            let save = free_sibling(root, &entry.path, SAVE_SUFFIX, &mut taken)?;
            let save_disk = root
                .resolve(&save)?
                .context("the directory of a recorded file is missing")?;
            paths::rename_noreplace(&disk, &save_disk)?;
            let why = if entry.sha256.is_some() {
                "changed since install"
            } else {
                "no checksum was recorded, so it may have been edited"
            };
            println!(
                "  kept {} as {} ({why})",
                shown.display(),
                root.shown(&save).display()
            );
            restore(backup)
        }
    }
}

/// One install or uninstall per install root at a time: an exclusive lock on the root directory itself, which
/// the kernel releases however the holder exits.
fn lock(root: &Root) -> Result<File> {
    let file = File::open(&root.canonical)
        .with_context(|| format!("failed to open `{}`", root.dir.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            eprintln!(
                "    Blocking waiting for another ebpf-probe install or uninstall in `{}` to finish",
                root.dir.display()
            );
            file.lock()
                .with_context(|| format!("failed to lock `{}`", root.dir.display()))?;
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("failed to lock `{}`", root.dir.display()))
        }
    }
    Ok(file)
}

/// Reads the manifest (never through a link), migrating one written by an older ebpf-probe, and refuses it when
/// any path it records could lead outside the install root.
fn load_manifest(root: &Root) -> Result<Option<Manifest>> {
    let rel = Path::new(MANIFEST);
    let shown = root.shown(rel);
    let Some(disk) = root.resolve(rel)? else {
        return Ok(None);
    };
    let bytes = match std::fs::symlink_metadata(&disk) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", shown.display())),
        Ok(meta) if meta.file_type().is_symlink() => bail!(
            "the install manifest `{}` is a symlink; refusing to follow it",
            shown.display()
        ),
        Ok(meta) if !meta.is_file() => bail!(
            "the install manifest `{}` is not a regular file",
            shown.display()
        ),
        Ok(_) => {
            let (mut file, _) = open_regular(&disk)?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .with_context(|| format!("failed to read `{}`", shown.display()))?;
            bytes
        }
    };
    let damaged = || {
        format!(
            "the install manifest `{}` is damaged; fix or remove it",
            shown.display()
        )
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).with_context(damaged)?;
    let manifest = match value.get("version") {
        None => migrate(
            root,
            serde_json::from_value(value).with_context(damaged)?,
            &shown,
        )?,
        Some(version) if version.as_u64() == Some(MANIFEST_VERSION) => {
            serde_json::from_value(value).with_context(damaged)?
        }
        Some(version) => bail!(
            "the install manifest `{}` was written by a newer ebpf-probe (version {version}); use that one",
            shown.display()
        ),
    };
    validate(root, &manifest, &shown)?;
    Ok(Some(manifest))
}

/// A manifest of absolute, DESTDIR-prefixed paths (written before relative paths and checksums): kept only when
/// every path is inside this install root, made relative to it.
fn migrate(root: &Root, legacy: LegacyManifest, shown: &Path) -> Result<Manifest> {
    let mut problems = Vec::new();
    let mut relative = |path: &Path| -> Option<PathBuf> {
        let rel = if !path.is_absolute() {
            Err("is not absolute")
        } else if path.components().any(|c| c == Component::ParentDir) {
            Err("contains `..`")
        } else {
            path.strip_prefix(&root.dir)
                .map_err(|_| "is outside the install root")
        };
        match rel {
            Ok(rel) if rel.as_os_str().is_empty() => Some(PathBuf::from(".")),
            Ok(rel) => Some(rel.to_path_buf()),
            Err(reason) => {
                problems.push(format!("`{}` {reason}", path.display()));
                None
            }
        }
    };
    let mut manifest = Manifest::new();
    for file in &legacy.files {
        let Some(rel) = relative(&file.path) else {
            continue;
        };
        if let Some(entry) = manifest.files.iter_mut().find(|e| e.path == rel) {
            if !entry.probes.contains(&file.probe) {
                entry.probes.push(file.probe.clone());
            }
            continue;
        }
        let kind = legacy_kind(&root.dir.join(&rel));
        manifest.files.push(Entry {
            path: rel,
            probes: vec![file.probe.clone()],
            kind,
            sha256: None,
            backup: None,
            existed: false,
        });
    }
    for dir in &legacy.dirs {
        if let Some(rel) = relative(dir) {
            manifest.dirs.push(rel);
        }
    }
    if !problems.is_empty() {
        bail!(
            "refusing to use the install manifest `{}` (written by an older ebpf-probe): it records paths outside \
             the install root `{}` (was the tree copied from another --destdir?); nothing was changed\n  {}",
            shown.display(),
            root.dir.display(),
            problems.join("\n  ")
        );
    }
    Ok(manifest)
}

/// What an older manifest's file was, by its name and mode.
fn legacy_kind(path: &Path) -> Kind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let executable = std::fs::symlink_metadata(path).is_ok_and(|m| m.mode() & 0o111 != 0);
    if name.ends_with(".meta") {
        Kind::Meta
    } else if name.ends_with(".bpf.o") {
        Kind::Object
    } else if name.ends_with(".so") || name.contains(".so.") {
        Kind::Library
    } else if executable {
        Kind::Executable
    } else {
        Kind::Config
    }
}

/// Every path the manifest records must be relative and plain and resolve beneath the root; backups and temp
/// files must sit beside the file they belong to.
fn validate(root: &Root, manifest: &Manifest, shown: &Path) -> Result<()> {
    let mut problems = Vec::new();
    let mut check = |rel: &Path, what: &str| {
        if let Err(reason) = check_recorded(rel) {
            problems.push(format!("{what} `{}` {reason}", rel.display()));
        } else if let Err(error) = root.resolve(rel) {
            problems.push(format!("{what} {error}"));
        }
    };
    for entry in &manifest.files {
        check(&entry.path, "file");
        if let Some(backup) = &entry.backup {
            check(backup, "backup");
        }
    }
    for dir in &manifest.dirs {
        if dir != Path::new(".") {
            check(dir, "directory");
        }
    }
    if let Some(pending) = &manifest.pending {
        for step in &pending.steps {
            check(&step.path, "file");
            check(&step.temp, "temp file");
            if let How::KeepOld { keep } = &step.how {
                check(keep, "backup");
            }
        }
        for dir in &pending.created_dirs {
            if dir != Path::new(".") {
                check(dir, "directory");
            }
        }
    }
    for entry in &manifest.files {
        if let Some(backup) = &entry.backup {
            if !is_sibling_of(backup, &entry.path) {
                problems.push(format!(
                    "backup `{}` is not a `{}{SIBLING_MARK}…` file beside it",
                    backup.display(),
                    entry.path.display()
                ));
            }
        }
    }
    for step in manifest.pending.iter().flat_map(|p| &p.steps) {
        if !is_temp_beside(&step.temp, &step.path) {
            problems.push(format!(
                "temp file `{}` is not an ebpf-probe temp file beside `{}`",
                step.temp.display(),
                step.path.display()
            ));
        }
        if let How::KeepOld { keep } = &step.how {
            if !is_sibling_of(keep, &step.path) {
                problems.push(format!(
                    "backup `{}` is not a `{}{SIBLING_MARK}…` file beside it",
                    keep.display(),
                    step.path.display()
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "refusing to act on the install manifest `{}`: it records paths that are not plain paths beneath the \
             install root `{}`; nothing was changed\n  {}",
            shown.display(),
            root.dir.display(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

fn write_manifest(root: &Root, manifest: &Manifest) -> Result<()> {
    let disk = root
        .resolve(Path::new(MANIFEST))?
        .context("the manifest's directory is missing")?;
    paths::write_atomic(&disk, serde_json::to_string_pretty(manifest)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_paths_must_be_plain_and_relative() {
        assert!(check_recorded(Path::new("usr/bin/x")).is_ok());
        assert_eq!(check_recorded(Path::new("/etc/passwd")), Err("is absolute"));
        assert_eq!(
            check_recorded(Path::new("usr/../../etc")),
            Err("contains `..`")
        );
        assert_eq!(check_recorded(Path::new("./x")), Err("contains `.`"));
        assert_eq!(check_recorded(Path::new("")), Err("is empty"));
    }

    #[test]
    fn backups_and_temps_must_sit_beside_their_file() {
        let file = Path::new("etc/p/x.conf");
        assert!(is_sibling_of(
            Path::new("etc/p/x.conf.ebpf-probe-orig"),
            file
        ));
        assert!(is_sibling_of(
            Path::new("etc/p/x.conf.ebpf-probe-save.2"),
            file
        ));
        assert!(!is_sibling_of(Path::new("etc/p/y.ebpf-probe-orig"), file));
        assert!(!is_sibling_of(
            Path::new("etc/x.conf.ebpf-probe-orig"),
            file
        ));
        assert!(is_temp_beside(
            Path::new("etc/p/.x.conf.tmp.12.AbCd1234"),
            file
        ));
        assert!(!is_temp_beside(Path::new("etc/p/passwd"), file));
    }

    #[test]
    fn a_resolved_path_never_leaves_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root_dir = dir.path().join("root");
        std::fs::create_dir_all(root_dir.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root_dir.join("esc")).unwrap();
        std::os::unix::fs::symlink("usr", root_dir.join("inside")).unwrap();
        let root = Root::open(root_dir.clone()).unwrap();
        let canonical = std::fs::canonicalize(&root_dir).unwrap();
        assert_eq!(
            root.resolve(Path::new("inside/bin/x")).unwrap(),
            Some(canonical.join("usr/bin/x"))
        );
        assert_eq!(root.resolve(Path::new("missing/x")).unwrap(), None);
        let error = root.resolve(Path::new("esc/victim")).unwrap_err();
        assert!(
            format!("{error}").contains("outside the install root"),
            "{error}"
        );
        assert!(root.resolve(Path::new("../x")).is_err());
        assert!(root.resolve(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn legacy_files_get_a_kind_by_name_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("killprobe");
        std::fs::write(&program, "").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(legacy_kind(&program), Kind::Executable);
        assert_eq!(legacy_kind(&dir.path().join("x.meta")), Kind::Meta);
        assert_eq!(legacy_kind(&dir.path().join("x.bpf.o")), Kind::Object);
        assert_eq!(legacy_kind(&dir.path().join("a.so")), Kind::Library);
        assert_eq!(legacy_kind(&dir.path().join("p.conf")), Kind::Config);
    }
}
