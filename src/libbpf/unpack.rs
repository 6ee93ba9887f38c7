//! Unpacking a libbpf source tarball (gzip + tar) into a new directory: nothing in it can write, point or lead
//! outside that directory, and a small tarball cannot fill the disk.
//!
//! The rule, checked for each entry before anything of it is written (`Tree::admit`, pure):
//! - a path is relative, has no `..`, and is at most 1024 bytes and 32 components long;
//! - only directories, regular files, symlinks and hard links are unpacked (pax and GNU records only carry
//!   metadata); device nodes, fifos, sparse files and unknown kinds are refused;
//! - an entry never goes *through* nor *replaces* anything but a directory this unpack made: each directory
//!   above an entry is a real directory, and stays one (no later entry can put a link in its place);
//! - a symlink's target is relative and its `..` all come first, climbing no higher than the top of the tree
//!   (`../include/x.h`, `ci` and `.` pass; `/etc`, `../../..` from one level down and `a/../..` do not);
//! - a hard link names a regular file unpacked before it.
//!
//! Why that is enough, whatever the order of the links: a symlink's leading `..` climb real directories from
//! the link's own (real) directory, so they end inside; what follows is plain names, each of them a real
//! directory, a file or another symlink obeying the same rule. So any path of plain names inside the tree,
//! followed by the kernel, stays inside it — what a build copying `include/bpf/*.h` relies on. No link is
//! resolved against the others, so no order of entries (`a -> .` then `a/a/…/esc -> ../../…`, or the link a
//! target goes through coming after it) can change the answer: `a/a/…/esc` goes through `a` and is refused.
//!
//! Entries are created without following links (`mkdir`, `open(O_CREAT|O_EXCL|O_NOFOLLOW)`, `symlink`,
//! `link`), with modes 0644/0755 only. The tar inside the gzip may be at most 256 MiB (the files of libbpf
//! 1.7.0 come to 6 MiB) and have at most 20,000 entries. On any refusal or error the new directory is
//! removed, so nothing of a refused tarball is left.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
use tar::EntryType;

/// How much a tarball may unpack to. `LIMITS` is what libbpf tarballs are held to; tests use smaller ones.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The tar stream inside the gzip: headers, names and file contents together.
    pub bytes: u64,
    pub entries: usize,
    /// An entry's path or link target, in bytes.
    pub path_bytes: usize,
    /// Components in an entry's path.
    pub depth: usize,
}

/// libbpf 1.7.0 has 124 files, 6 MiB in all, at most 4 levels deep with names under 80 bytes: these leave
/// room for any libbpf release while a tarball that expands a thousandfold stops early.
pub const LIMITS: Limits = Limits {
    bytes: 256 << 20,
    entries: 20_000,
    path_bytes: 1024,
    depth: 32,
};

/// Unpacks `tarball` into `dest` (created here: it must not exist) and returns the libbpf source root inside
/// it: the directory holding `src/Makefile` (the tarball's single top directory, or `dest` itself). On error
/// `dest` is removed.
pub fn unpack_tarball(tarball: &Path, dest: &Path) -> Result<PathBuf> {
    unpack_tarball_within(tarball, dest, &LIMITS)
}

fn unpack_tarball_within(tarball: &Path, dest: &Path, limits: &Limits) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = dest.parent() {
        crate::paths::create_dir_all(parent)?;
    }
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(dest)
        .with_context(|| format!("failed to create directory `{}`", dest.display()))?;
    let unpacked = unpack_entries(tarball, dest, limits).and_then(|()| {
        source_root(dest).with_context(|| {
            format!(
                "`{}` is not a libbpf source tarball: it has no src/Makefile (at its top or in its one top directory)",
                tarball.display()
            )
        })
    });
    if unpacked.is_err() {
        // Never follows links: a symlink in the tree is removed, not what it points at.
        let _ = std::fs::remove_dir_all(dest);
    }
    unpacked
}

fn unpack_entries(tarball: &Path, dest: &Path, limits: &Limits) -> Result<()> {
    let file = std::fs::File::open(tarball)
        .with_context(|| format!("failed to open `{}`", tarball.display()))?;
    let refuse = |why: String| {
        anyhow!(
            "refusing to unpack `{}`: {why}; nothing from it was kept (this is not a plain libbpf source tarball)",
            tarball.display()
        )
    };
    let over_limit = Rc::new(Cell::new(false));
    let capped = Capped {
        inner: flate2::read::GzDecoder::new(file),
        left: limits.bytes,
        over_limit: over_limit.clone(),
    };
    // Whatever failed once the stream went over the limit (tar's own reading of a huge name, a file's
    // contents), the limit is the reason to give.
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        if over_limit.get() {
            refuse(too_big(limits, None))
        } else {
            refuse(format!("{what} ({e})"))
        }
    };
    let mut archive = tar::Archive::new(capped);
    let entries = archive
        .entries()
        .map_err(|e| failed("it is not a gzip'd tar archive", &e))?;
    let mut tree = Tree::new(limits);
    for entry in entries {
        let mut entry = entry.map_err(|e| failed("it is not a gzip'd tar archive", &e))?;
        let path = entry
            .path()
            .map_err(|e| failed("an entry has an unreadable name", &e))?
            .into_owned();
        let link = entry
            .link_name()
            .map_err(|e| {
                failed(
                    &format!("`{}` has an unreadable link name", path.display()),
                    &e,
                )
            })?
            .map(|l| l.into_owned());
        let mut kind = entry.header().entry_type();
        // Old (pre-POSIX) archives mark a directory only by the trailing slash of its name.
        if kind == EntryType::Regular && entry.path_bytes().ends_with(b"/") {
            kind = EntryType::Directory;
        }
        let step = tree
            .admit(&path, kind, link.as_deref(), entry.size())
            .map_err(refuse)?;
        write_step(dest, &step, &mut entry).map_err(|e| {
            if over_limit.get() {
                refuse(too_big(limits, None))
            } else {
                e.context(format!(
                    "failed to unpack `{}` from `{}` into `{}`",
                    path.display(),
                    tarball.display(),
                    dest.display()
                ))
            }
        })?;
    }
    Ok(())
}

/// Why a tarball over `limits.bytes` is refused, naming the entry that crossed it when known.
fn too_big(limits: &Limits, at: Option<(&Path, u64)>) -> String {
    let mut why = format!(
        "it unpacks to more than {}, the limit for a libbpf source tarball (libbpf 1.7.0's files come to 6 MiB)",
        human_size(limits.bytes)
    );
    if let Some((path, size)) = at {
        why.push_str(&format!(
            "; `{}` alone is {}",
            path.display(),
            human_size(size)
        ));
    }
    why
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// The decompressed stream, cut off after `left` more bytes: reading past them is an error and sets
/// `over_limit`, so that no name, pax record or file in the tarball can make us hold or write more.
struct Capped<R> {
    inner: R,
    left: u64,
    over_limit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // At the limit: fine if the stream ends here, an error if there is more.
            let mut one = [0u8; 1];
            if self.inner.read(&mut one)? == 0 {
                return Ok(0);
            }
            self.over_limit.set(true);
            return Err(std::io::Error::other("the unpacked size limit was reached"));
        }
        let at_most = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..at_most])?;
        self.left -= read as u64;
        Ok(read)
    }
}

/// What one admitted entry writes, at paths relative to the target (normalized: plain names only).
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// A metadata record, or a directory that already exists.
    Nothing,
    Directory(PathBuf),
    File(PathBuf),
    /// The link, then its target as written in the tarball.
    Symlink(PathBuf, PathBuf),
    /// The link, then the (normalized) path of the file it names.
    HardLink(PathBuf, PathBuf),
}

/// What has been unpacked so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unpacked {
    Directory,
    File,
    Symlink,
}

impl Unpacked {
    fn noun(self) -> &'static str {
        match self {
            Unpacked::Directory => "directory",
            Unpacked::File => "file",
            Unpacked::Symlink => "symlink",
        }
    }
}

/// The tree as unpacked so far (every path, including the directories made for an entry's parents) and
/// what is left of the limits. `admit` does no I/O, so each rule is unit-tested.
struct Tree {
    limits: Limits,
    unpacked: HashMap<PathBuf, Unpacked>,
    entries: usize,
    file_bytes: u64,
}

impl Tree {
    fn new(limits: &Limits) -> Tree {
        Tree {
            limits: *limits,
            unpacked: HashMap::new(),
            entries: 0,
            file_bytes: 0,
        }
    }

    /// Whether the next entry may be unpacked, and what to write for it; `Err` says why not. An admitted
    /// entry is recorded as unpacked.
    fn admit(
        &mut self,
        raw_path: &Path,
        kind: EntryType,
        link: Option<&Path>,
        size: u64,
    ) -> Result<Step, String> {
        self.entries += 1;
        if self.entries > self.limits.entries {
            return Err(format!(
                "it has more than {} entries, the limit for a libbpf source tarball (libbpf 1.7.0 has 124 files)",
                self.limits.entries
            ));
        }
        // Pax and GNU extension records carry metadata (GitHub's archives start with one), nothing is written.
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(Step::Nothing);
        }
        let shown = raw_path.display();
        let path = self.entry_path(raw_path)?;
        if path.as_os_str().is_empty() {
            // `./`: the target directory itself.
            return match kind {
                EntryType::Directory => Ok(Step::Nothing),
                _ => Err(format!("entry `{shown}` has no name")),
            };
        }
        for ancestor in path.ancestors().skip(1) {
            match self.unpacked.get(ancestor) {
                None | Some(Unpacked::Directory) => {}
                Some(other) => {
                    return Err(format!(
                        "`{shown}` goes through the {} `{}` unpacked before it",
                        other.noun(),
                        ancestor.display()
                    ))
                }
            }
        }
        match (self.unpacked.get(&path), kind) {
            (None, _) => {}
            // A directory listed twice, or after the files in it.
            (Some(Unpacked::Directory), EntryType::Directory) => return Ok(Step::Nothing),
            (Some(already), _) => {
                return Err(format!(
                    "`{shown}` would replace the {} unpacked before it at that path",
                    already.noun()
                ))
            }
        }
        let step = match kind {
            EntryType::Directory => Step::Directory(path.clone()),
            EntryType::Regular | EntryType::Continuous => {
                if size > self.limits.bytes - self.file_bytes {
                    return Err(too_big(&self.limits, Some((raw_path, size))));
                }
                self.file_bytes += size;
                Step::File(path.clone())
            }
            EntryType::Symlink => {
                let target = link.ok_or_else(|| format!("symlink `{shown}` has no target"))?;
                self.check_symlink_target(&path, raw_path, target)?;
                Step::Symlink(path.clone(), target.to_path_buf())
            }
            EntryType::Link => {
                let target = link.ok_or_else(|| format!("hard link `{shown}` has no target"))?;
                let outside = || {
                    format!(
                        "hard link `{shown}` → `{}` points outside the unpacked tree",
                        target.display()
                    )
                };
                // A hard link's target is another path in the archive, from the top.
                let named = self.entry_path(target).map_err(|_| outside())?;
                match self.unpacked.get(&named) {
                    Some(Unpacked::File) => Step::HardLink(path.clone(), named),
                    Some(other) => {
                        return Err(format!(
                            "hard link `{shown}` → `{}` names a {}, not a file",
                            target.display(),
                            other.noun()
                        ))
                    }
                    None => {
                        return Err(format!(
                            "hard link `{shown}` → `{}` names no file unpacked before it",
                            target.display()
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "entry `{shown}` is a {other:?} (device node, fifo or other special file)"
                ))
            }
        };
        for ancestor in path.ancestors().skip(1) {
            if !ancestor.as_os_str().is_empty() {
                self.unpacked
                    .entry(ancestor.to_path_buf())
                    .or_insert(Unpacked::Directory);
            }
        }
        let unpacked = match step {
            Step::Directory(_) => Unpacked::Directory,
            Step::Symlink(..) => Unpacked::Symlink,
            _ => Unpacked::File,
        };
        self.unpacked.insert(path, unpacked);
        Ok(step)
    }

    /// An entry's path, normalized to plain names (`./a//b` is `a/b`): relative, no `..`, within the limits.
    fn entry_path(&self, raw: &Path) -> Result<PathBuf, String> {
        let shown = raw.display();
        if raw.as_os_str().len() > self.limits.path_bytes {
            return Err(format!(
                "entry `{shown}` has a path longer than {} bytes",
                self.limits.path_bytes
            ));
        }
        let mut path = PathBuf::new();
        for component in raw.components() {
            match component {
                Component::Normal(name) => path.push(name),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(format!("entry `{shown}` has a `..` component"))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!("entry `{shown}` has an absolute path"))
                }
            }
        }
        if path.components().count() > self.limits.depth {
            return Err(format!(
                "entry `{shown}` is more than {} directories deep",
                self.limits.depth
            ));
        }
        Ok(path)
    }

    /// A symlink at `path` (normalized) may point at `target`: relative, its `..` first, and no more of them
    /// than there are directories above the link.
    fn check_symlink_target(
        &self,
        path: &Path,
        raw_path: &Path,
        target: &Path,
    ) -> Result<(), String> {
        let shown = raw_path.display();
        let target_shown = target.display();
        if target.as_os_str().is_empty() {
            return Err(format!("symlink `{shown}` has an empty target"));
        }
        if target.as_os_str().len() > self.limits.path_bytes {
            return Err(format!(
                "symlink `{shown}` has a target longer than {} bytes",
                self.limits.path_bytes
            ));
        }
        let mut climbs = 0;
        let mut after_a_name = false;
        for component in target.components() {
            match component {
                Component::ParentDir if after_a_name => {
                    return Err(format!(
                        "symlink `{shown}` → `{target_shown}` has a `..` after a name (only leading `..` are \
                         allowed, so that following links never leaves the tree)"
                    ))
                }
                Component::ParentDir => climbs += 1,
                Component::Normal(_) => after_a_name = true,
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!(
                        "symlink `{shown}` points at the absolute path `{target_shown}`"
                    ))
                }
            }
        }
        // The target is relative to the link's own directory, `path`'s parent.
        let directories_above = path.components().count() - 1;
        if climbs > directories_above {
            return Err(format!(
                "symlink `{shown}` → `{target_shown}` points outside the unpacked tree"
            ));
        }
        Ok(())
    }
}

/// Writes what `admit` allowed. Parents are made one directory at a time; nothing follows a link.
fn write_step<R: Read>(dest: &Path, step: &Step, entry: &mut tar::Entry<'_, R>) -> Result<()> {
    match step {
        Step::Nothing => Ok(()),
        Step::Directory(path) => {
            make_parents(dest, path)?;
            make_directory(&dest.join(path))
        }
        Step::File(path) => {
            make_parents(dest, path)?;
            write_file(&dest.join(path), entry)
        }
        Step::Symlink(path, target) => {
            make_parents(dest, path)?;
            let link = dest.join(path);
            std::os::unix::fs::symlink(target, &link).with_context(|| {
                format!(
                    "failed to create symlink `{}` → `{}`",
                    link.display(),
                    target.display()
                )
            })
        }
        Step::HardLink(path, named) => {
            make_parents(dest, path)?;
            let (link, original) = (dest.join(path), dest.join(named));
            // linkat(2) without AT_SYMLINK_FOLLOW; `named` is a regular file anyway.
            std::fs::hard_link(&original, &link).with_context(|| {
                format!(
                    "failed to create hard link `{}` to `{}`",
                    link.display(),
                    original.display()
                )
            })
        }
    }
}

fn make_parents(dest: &Path, path: &Path) -> Result<()> {
    let mut dir = dest.to_path_buf();
    for name in path.parent().into_iter().flat_map(Path::components) {
        dir.push(name);
        make_directory(&dir)?;
    }
    Ok(())
}

/// Creates `dir`, or accepts the directory already there; a link in its place is an error, never followed.
fn make_directory(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == std::io::ErrorKind::AlreadyExists
                && std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("failed to create directory `{}`", dir.display())),
    }
}

/// Creates `path` (never opening anything already there, link or not) with the entry's contents, mode
/// 0755 if the tarball marks it executable and 0644 otherwise (no set-id bits, no write for others), and the
/// entry's mtime.
fn write_file<R: Read>(path: &Path, entry: &mut tar::Entry<'_, R>) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let executable = entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0);
    // As the tar crate does: an mtime of 0 becomes 1, since some tools take 0 for "no time".
    let mtime = entry.header().mtime().unwrap_or(0).max(1);
    let size = entry.size();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    let written = std::io::copy(entry, &mut file)
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    if written != size {
        anyhow::bail!(
            "the tarball ends inside `{}` ({written} of its {size} bytes)",
            path.display()
        );
    }
    let mode = if executable { 0o755 } else { 0o644 };
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to set the mode of `{}`", path.display()))?;
    if let Some(mtime) = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(mtime)) {
        file.set_modified(mtime)
            .with_context(|| format!("failed to set the mtime of `{}`", path.display()))?;
    }
    Ok(())
}

/// The directory holding `src/Makefile`: `dir` itself or its single subdirectory.
pub fn source_root(dir: &Path) -> Option<PathBuf> {
    if dir.join("src/Makefile").is_file() {
        return Some(dir.to_path_buf());
    }
    let subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink())
        .collect();
    match subdirs.as_slice() {
        [only] if only.join("src/Makefile").is_file() => Some(only.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    /// Admits `entries` in order into a tree held to `limits`: the first refusal, or the steps.
    fn admit_all_within(
        limits: &Limits,
        entries: &[(&str, EntryType, Option<&str>)],
    ) -> Result<Vec<Step>, String> {
        let mut tree = Tree::new(limits);
        entries
            .iter()
            .map(|(path, kind, link)| tree.admit(Path::new(path), *kind, link.map(Path::new), 0))
            .collect()
    }

    fn admit_all(entries: &[(&str, EntryType, Option<&str>)]) -> Result<Vec<Step>, String> {
        admit_all_within(&LIMITS, entries)
    }

    /// The refusal of the last of `entries`, all the others being admitted.
    fn refusal(entries: &[(&str, EntryType, Option<&str>)]) -> String {
        let (last, before) = entries.split_last().unwrap();
        let mut tree = Tree::new(&LIMITS);
        for (path, kind, link) in before {
            tree.admit(Path::new(path), *kind, link.map(Path::new), 0)
                .unwrap_or_else(|e| panic!("`{path}` was refused: {e}"));
        }
        tree.admit(Path::new(last.0), last.1, last.2.map(Path::new), 0)
            .expect_err("the last entry was admitted")
    }

    const FILE: EntryType = EntryType::Regular;
    const DIR: EntryType = EntryType::Directory;
    const SYMLINK: EntryType = EntryType::Symlink;
    const HARD_LINK: EntryType = EntryType::Link;

    #[test]
    fn plain_files_and_directories_pass() {
        let steps = admit_all(&[
            ("pax_global_header", EntryType::XGlobalHeader, None),
            ("./", DIR, None),
            ("libbpf-1.7.0/", DIR, None),
            ("libbpf-1.7.0/src/Makefile", FILE, None),
            ("./libbpf-1.7.0/README.md", FILE, None),
            // Listed again, or after its files: nothing to do.
            ("libbpf-1.7.0/src/", DIR, None),
        ])
        .unwrap();
        assert_eq!(
            steps,
            [
                Step::Nothing,
                Step::Nothing,
                Step::Directory("libbpf-1.7.0".into()),
                Step::File("libbpf-1.7.0/src/Makefile".into()),
                Step::File("libbpf-1.7.0/README.md".into()),
                Step::Nothing,
            ]
        );
    }

    #[test]
    fn absolute_paths_and_dotdot_are_refused() {
        let e = refusal(&[("/etc/cron.d/x", FILE, None)]);
        assert!(e.contains("absolute path"), "{e}");
        let e = refusal(&[("libbpf-1.7.0/../../x", FILE, None)]);
        assert!(e.contains("`..`"), "{e}");
        // Even a `..` that stays inside is refused: no legitimate tarball needs one.
        let e = refusal(&[("a/../b", FILE, None)]);
        assert!(e.contains("`..`"), "{e}");
    }

    #[test]
    fn symlinks_must_stay_inside() {
        admit_all(&[
            ("t/src/link", SYMLINK, Some("../include/x.h")),
            ("t/link", SYMLINK, Some("src/./x")),
            ("t/here", SYMLINK, Some(".")),
            ("t/top", SYMLINK, Some("..")),
            // libbpf 1.0.x has `travis-ci -> ci`.
            ("travis-ci", SYMLINK, Some("ci")),
        ])
        .unwrap();
        let e = refusal(&[("t/link", SYMLINK, Some("../../etc/passwd"))]);
        assert!(e.contains("points outside"), "{e}");
        let e = refusal(&[("link", SYMLINK, Some(".."))]);
        assert!(e.contains("points outside"), "{e}");
        let e = refusal(&[("t/link", SYMLINK, Some("/etc"))]);
        assert!(e.contains("absolute path"), "{e}");
        assert!(admit_all(&[("t/link", SYMLINK, None)]).is_err());
        assert!(admit_all(&[("t/link", SYMLINK, Some(""))]).is_err());
    }

    #[test]
    fn a_symlink_target_with_dotdot_after_a_name_is_refused_even_when_it_reads_as_inside() {
        // Lexically `t/a/../x` is `t/x`; but if `t/a` is (or later becomes) a link, `..` is the parent of
        // wherever it leads. Only leading `..` climb directories known to be real.
        for target in ["a/../x", "a/../../..", "../a/../../b"] {
            let e = refusal(&[("t/u/link", SYMLINK, Some(target))]);
            assert!(e.contains("`..` after a name"), "{target}: {e}");
        }
    }

    #[test]
    fn the_link_to_dot_chain_is_refused_where_it_goes_through_the_link() {
        // The attack: `a -> .` makes `t/a/a/a/a` the same directory as `t`, so `../../../..` from there reads
        // as staying inside, yet climbs out of `t` and beyond.
        let e = refusal(&[
            ("t/src/Makefile", FILE, None),
            ("t/a", SYMLINK, Some(".")),
            ("t/a/a/a/a/esc", SYMLINK, Some("../../../../../..")),
        ]);
        assert_eq!(
            e,
            "`t/a/a/a/a/esc` goes through the symlink `t/a` unpacked before it"
        );
    }

    #[test]
    fn nothing_goes_through_or_replaces_a_link_or_a_file() {
        let e = refusal(&[("t/l", SYMLINK, Some("sub")), ("t/l/f", FILE, None)]);
        assert!(e.contains("goes through the symlink `t/l`"), "{e}");
        let e = refusal(&[("t/l", SYMLINK, Some("sub")), ("t/l/d/", DIR, None)]);
        assert!(e.contains("goes through the symlink `t/l`"), "{e}");
        let e = refusal(&[("t/f", FILE, None), ("t/f/g", FILE, None)]);
        assert!(e.contains("goes through the file `t/f`"), "{e}");
        // A link may not take the place of a directory others are in, nor of a file or a link.
        let e = refusal(&[("t/d/f", FILE, None), ("t/d", SYMLINK, Some("."))]);
        assert!(e.contains("would replace the directory"), "{e}");
        let e = refusal(&[("t/d/", DIR, None), ("t/d", SYMLINK, Some("."))]);
        assert!(e.contains("would replace the directory"), "{e}");
        let e = refusal(&[("t/f", FILE, None), ("t/f", SYMLINK, Some("x"))]);
        assert!(e.contains("would replace the file"), "{e}");
        let e = refusal(&[("t/l", SYMLINK, Some("x")), ("t/l", FILE, None)]);
        assert!(e.contains("would replace the symlink"), "{e}");
        let e = refusal(&[("t/l", SYMLINK, Some("x")), ("t/l/", DIR, None)]);
        assert!(e.contains("would replace the symlink"), "{e}");
    }

    #[test]
    fn hard_links_name_a_file_unpacked_before_them() {
        let steps = admit_all(&[("t/a", FILE, None), ("t/b", HARD_LINK, Some("./t/a"))]).unwrap();
        assert_eq!(steps[1], Step::HardLink("t/b".into(), "t/a".into()));
        let e = refusal(&[("t/b", HARD_LINK, Some("/etc/shadow"))]);
        assert!(e.contains("points outside"), "{e}");
        let e = refusal(&[("t/b", HARD_LINK, Some("../outside"))]);
        assert!(e.contains("points outside"), "{e}");
        let e = refusal(&[("t/b", HARD_LINK, Some("t/a"))]);
        assert!(e.contains("names no file unpacked before it"), "{e}");
        // A hard link to a symlink would be a copy of the link, its target then read from elsewhere.
        let e = refusal(&[("t/s", SYMLINK, Some("..")), ("b", HARD_LINK, Some("t/s"))]);
        assert!(e.contains("names a symlink"), "{e}");
        let e = refusal(&[("t/d/", DIR, None), ("b", HARD_LINK, Some("t/d"))]);
        assert!(e.contains("names a directory"), "{e}");
        let e = refusal(&[
            ("t/l", SYMLINK, Some("x")),
            ("t/b", HARD_LINK, Some("t/l/f")),
        ]);
        assert!(e.contains("names no file"), "{e}");
    }

    #[test]
    fn device_nodes_and_fifos_are_refused() {
        let e = refusal(&[("t/dev", EntryType::Char, None)]);
        assert!(e.contains("special file"), "{e}");
        assert!(admit_all(&[("t/blk", EntryType::Block, None)]).is_err());
        assert!(admit_all(&[("t/fifo", EntryType::Fifo, None)]).is_err());
        assert!(admit_all(&[("t/sparse", EntryType::GNUSparse, None)]).is_err());
    }

    #[test]
    fn paths_are_bounded_in_length_and_depth() {
        let deep = vec!["d"; 33].join("/");
        let e = refusal(&[(&deep, FILE, None)]);
        assert!(e.contains("more than 32 directories deep"), "{e}");
        assert!(admit_all(&[(&vec!["d"; 32].join("/"), FILE, None)]).is_ok());
        let long = format!("t/{}", "x".repeat(1023));
        let e = refusal(&[(&long, FILE, None)]);
        assert!(e.contains("longer than 1024 bytes"), "{e}");
        let e = refusal(&[("t/l", SYMLINK, Some(&"x/".repeat(513)))]);
        assert!(e.contains("target longer than 1024 bytes"), "{e}");
    }

    #[test]
    fn entries_and_bytes_are_bounded() {
        let limits = Limits {
            entries: 3,
            ..LIMITS
        };
        let e = admit_all_within(
            &limits,
            &[
                ("a", FILE, None),
                ("b", FILE, None),
                ("c", FILE, None),
                ("d", FILE, None),
            ],
        )
        .unwrap_err();
        assert!(e.contains("more than 3 entries"), "{e}");

        let mut tree = Tree::new(&LIMITS);
        let huge = 3 << 30;
        let e = tree
            .admit(Path::new("t/zeros"), FILE, None, huge)
            .unwrap_err();
        assert!(
            e.contains("more than 256 MiB") && e.contains("`t/zeros` alone is 3072 MiB"),
            "{e}"
        );
        // Files together: 200 MiB, then 56 MiB fit; one byte more does not.
        let mut tree = Tree::new(&LIMITS);
        tree.admit(Path::new("a"), FILE, None, 200 << 20).unwrap();
        tree.admit(Path::new("b"), FILE, None, 56 << 20).unwrap();
        let e = tree.admit(Path::new("c"), FILE, None, 1).unwrap_err();
        assert!(e.contains("more than 256 MiB"), "{e}");
    }

    /// A raw tar header with `name` (bypassing `set_path`, which refuses what we want to test).
    fn header(name: &str, kind: EntryType, link: Option<&str>, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        if let Some(link) = link {
            h.set_link_name_literal(link).unwrap();
        }
        h.set_cksum();
        h
    }

    type RawEntry<'a> = (&'a str, EntryType, Option<&'a str>, &'a [u8]);

    fn tarball(dir: &Path, entries: &[RawEntry]) -> PathBuf {
        let path = dir.join("t.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut builder = tar::Builder::new(gz);
        for (name, kind, link, data) in entries {
            builder
                .append(&header(name, *kind, *link, data.len() as u64), *data)
                .unwrap();
        }
        builder
            .into_inner()
            .unwrap()
            .finish()
            .unwrap()
            .flush()
            .unwrap();
        path
    }

    const MAKEFILE: RawEntry = ("top/src/Makefile", EntryType::Regular, None, b"all:\n");

    /// Unpacking `entries` fails; the message (with its causes) is returned after checking that the target
    /// directory is gone and nothing was written beside the tarball.
    fn refused(entries: &[RawEntry]) -> String {
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tarball(tmp.path(), entries);
        let dest = tmp.path().join("a/b/dest");
        let e = format!("{:#}", unpack_tarball(&tarball, &dest).unwrap_err());
        assert!(
            !dest.exists(),
            "a refused tarball left `{}`",
            dest.display()
        );
        let mut beside: Vec<_> = walk(tmp.path());
        beside.retain(|p| !p.ends_with("t.tar.gz") && !p.ends_with("a") && !p.ends_with("a/b"));
        assert!(beside.is_empty(), "written beside the target: {beside:?}");
        e
    }

    /// Every path under `dir`, links not followed.
    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            out.push(path.clone());
            if entry.file_type().unwrap().is_dir() {
                out.extend(walk(&path));
            }
        }
        out
    }

    #[test]
    fn a_tarball_with_dotdot_writes_nothing_outside() {
        let e = refused(&[MAKEFILE, ("top/../../evil", EntryType::Regular, None, b"x")]);
        assert!(
            e.contains("refusing to unpack") && e.contains("`..`"),
            "{e}"
        );
    }

    #[test]
    fn a_tarball_with_an_escaping_symlink_is_refused_before_writing_through_it() {
        let e = refused(&[
            MAKEFILE,
            ("top/esc", EntryType::Symlink, Some("../../.."), b""),
            ("top/esc/owned", EntryType::Regular, None, b"x"),
        ]);
        assert!(e.contains("points outside"), "{e}");
    }

    #[test]
    fn the_link_to_dot_chain_writes_nothing_and_leaves_nothing() {
        let e = refused(&[
            MAKEFILE,
            ("top/a", EntryType::Symlink, Some("."), b""),
            (
                "top/a/a/a/a/a/esc",
                EntryType::Symlink,
                Some("../../../../../../../.."),
                b"",
            ),
            ("top/a/a/a/a/a/esc/escaped", EntryType::Regular, None, b"x"),
        ]);
        assert!(
            e.contains("refusing to unpack") && e.contains("goes through the symlink `top/a`"),
            "{e}"
        );
    }

    #[test]
    fn a_file_through_an_inside_link_is_refused() {
        let e = refused(&[
            MAKEFILE,
            ("top/include/", EntryType::Directory, None, b""),
            ("top/inc", EntryType::Symlink, Some("include"), b""),
            ("top/inc/x.h", EntryType::Regular, None, b"x"),
        ]);
        assert!(
            e.contains("`top/inc/x.h` goes through the symlink `top/inc`"),
            "{e}"
        );
    }

    #[test]
    fn a_hard_link_to_a_file_outside_is_refused_and_the_file_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("secret");
        std::fs::write(&outside, "s").unwrap();
        for target in [outside.to_str().unwrap(), "../secret", "top/../../secret"] {
            let tarball = tarball(
                tmp.path(),
                &[MAKEFILE, ("top/h", EntryType::Link, Some(target), b"")],
            );
            let dest = tmp.path().join("dest");
            let e = unpack_tarball(&tarball, &dest).unwrap_err().to_string();
            assert!(e.contains("points outside"), "{target}: {e}");
            assert!(!dest.exists());
            assert_eq!(std::fs::metadata(&outside).unwrap().nlink(), 1);
        }
    }

    #[test]
    fn a_device_node_is_refused() {
        let e = refused(&[MAKEFILE, ("top/mem", EntryType::Char, None, b"")]);
        assert!(e.contains("`top/mem` is a Char (device node"), "{e}");
    }

    #[test]
    fn too_many_entries_stop_at_the_limit_and_leave_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..50).map(|i| format!("top/f{i}")).collect();
        let mut entries = vec![MAKEFILE];
        entries.extend(
            names
                .iter()
                .map(|n| (n.as_str(), EntryType::Regular, None, &b"x"[..])),
        );
        let tarball = tarball(tmp.path(), &entries);
        let dest = tmp.path().join("dest");
        let limits = Limits {
            entries: 40,
            ..LIMITS
        };
        let e = unpack_tarball_within(&tarball, &dest, &limits)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("more than 40 entries") && e.contains("t.tar.gz"),
            "{e}"
        );
        assert!(!dest.exists());
    }

    #[test]
    fn files_adding_up_past_the_size_limit_stop_there_and_leave_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let chunk = vec![0u8; 300 << 10];
        let names: Vec<String> = (0..5).map(|i| format!("top/z{i}")).collect();
        let mut entries = vec![MAKEFILE];
        entries.extend(
            names
                .iter()
                .map(|n| (n.as_str(), EntryType::Regular, None, &chunk[..])),
        );
        let tarball = tarball(tmp.path(), &entries);
        let dest = tmp.path().join("dest");
        let limits = Limits {
            bytes: 1 << 20,
            ..LIMITS
        };
        let e = unpack_tarball_within(&tarball, &dest, &limits)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("more than 1 MiB") && e.contains("`top/z3` alone is 300 KiB"),
            "{e}"
        );
        assert!(!dest.exists());
    }

    #[test]
    fn a_huge_long_name_stops_at_the_limit_before_it_is_held() {
        // The tar crate reads a GNU long name whole: the capped stream is what bounds it.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut builder = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        let long = format!("top/{}", "n/".repeat(64 << 10));
        builder
            .append_data(&mut h, &long, &b"x\n\n\n\n"[..])
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap();
        let dest = tmp.path().join("dest");
        let limits = Limits {
            bytes: 64 << 10,
            ..LIMITS
        };
        let e = unpack_tarball_within(&path, &dest, &limits)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 64 KiB"), "{e}");
        assert!(!dest.exists());
    }

    /// A real `.tar.gz` (CRC and length checked by any gunzip) of `top/src/Makefile` and `top/zeros`, a file of
    /// `mib` MiB of zeros, written without ever holding more than 1 MiB: a one-MiB deflate chunk ending on a
    /// sync flush is self-contained, so it is repeated verbatim.
    fn gzip_bomb(path: &Path, mib: u64) {
        use flate2::write::DeflateEncoder;
        fn deflate(data: &[u8], last: bool) -> Vec<u8> {
            let mut encoder = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).unwrap();
            if last {
                return encoder.finish().unwrap();
            }
            encoder.flush().unwrap();
            std::mem::take(encoder.get_mut())
        }
        let mut prefix = Vec::new();
        for (h, data) in [
            (
                header("top/src/Makefile", EntryType::Regular, None, 5),
                &b"all:\n"[..],
            ),
            (
                header("top/zeros", EntryType::Regular, None, mib << 20),
                &b""[..],
            ),
        ] {
            prefix.extend_from_slice(h.as_bytes());
            prefix.extend_from_slice(data);
            prefix.resize(prefix.len().div_ceil(512) * 512, 0);
        }
        let zeros = vec![0u8; 1 << 20];
        let end_of_archive = [0u8; 1024];
        let mut crc = flate2::Crc::new();
        crc.update(&prefix);
        let mut zeros_crc = flate2::Crc::new();
        zeros_crc.update(&zeros);
        for _ in 0..mib {
            crc.combine(&zeros_crc);
        }
        crc.update(&end_of_archive);

        let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])
            .unwrap();
        out.write_all(&deflate(&prefix, false)).unwrap();
        let chunk = deflate(&zeros, false);
        for _ in 0..mib {
            out.write_all(&chunk).unwrap();
        }
        out.write_all(&deflate(&end_of_archive, true)).unwrap();
        out.write_all(&crc.sum().to_le_bytes()).unwrap();
        out.write_all(&crc.amount().to_le_bytes()).unwrap();
        out.flush().unwrap();
    }

    #[test]
    fn the_gzip_bomb_builder_makes_a_real_tarball() {
        let tmp = tempfile::tempdir().unwrap();
        let bomb = tmp.path().join("small.tar.gz");
        gzip_bomb(&bomb, 3);
        // Read to the end, so flate2 checks the CRC and length.
        let mut all = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&bomb).unwrap())
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all.len(), 3 * 512 + (3 << 20) + 1024);
        let root = unpack_tarball(&bomb, &tmp.path().join("dest")).unwrap();
        assert_eq!(
            std::fs::metadata(root.join("zeros")).unwrap().len(),
            3 << 20
        );
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit_with_the_tarball_named_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let bomb = tmp.path().join("libbpf-bomb.tar.gz");
        gzip_bomb(&bomb, 3 << 10);
        let compressed = std::fs::metadata(&bomb).unwrap().len();
        assert!(compressed < 8 << 20, "the bomb is {compressed} bytes");
        let dest = tmp.path().join("staging/src");
        let e = unpack_tarball(&bomb, &dest).unwrap_err().to_string();
        assert!(
            e.contains(&format!("refusing to unpack `{}`", bomb.display()))
                && e.contains("more than 256 MiB, the limit for a libbpf source tarball")
                && e.contains("`top/zeros` alone is 3072 MiB"),
            "{e}"
        );
        assert!(!dest.exists());
    }

    #[test]
    fn an_existing_target_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tarball(tmp.path(), &[MAKEFILE]);
        let dest = tmp.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("mine"), "keep").unwrap();
        assert!(unpack_tarball(&tarball, &dest).is_err());
        assert_eq!(std::fs::read_to_string(dest.join("mine")).unwrap(), "keep");
    }

    #[test]
    fn a_good_tarball_unpacks_to_its_source_root() {
        let tmp = tempfile::tempdir().unwrap();
        let mut script = header("libbpf-9.9.9/scripts/run.sh", EntryType::Regular, None, 3);
        script.set_mode(0o4775);
        script.set_cksum();
        let path = tmp.path().join("t.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut builder = tar::Builder::new(gz);
        let entries: &[RawEntry] = &[
            ("pax_global_header", EntryType::XGlobalHeader, None, b""),
            ("libbpf-9.9.9/", EntryType::Directory, None, b""),
            (
                "libbpf-9.9.9/src/Makefile",
                EntryType::Regular,
                None,
                b"all:\n",
            ),
            (
                "libbpf-9.9.9/src/link.h",
                EntryType::Symlink,
                Some("../include/x.h"),
                b"",
            ),
            (
                "libbpf-9.9.9/include/x.h",
                EntryType::Regular,
                None,
                b"int x;\n",
            ),
            (
                "libbpf-9.9.9/include/same.h",
                EntryType::Link,
                Some("libbpf-9.9.9/include/x.h"),
                b"",
            ),
            (
                "libbpf-9.9.9/travis-ci",
                EntryType::Symlink,
                Some("src"),
                b"",
            ),
        ];
        for (name, kind, link, data) in entries {
            builder
                .append(&header(name, *kind, *link, data.len() as u64), *data)
                .unwrap();
        }
        builder.append(&script, &b"#!\n"[..]).unwrap();
        builder.into_inner().unwrap().finish().unwrap();

        let dest = tmp.path().join("dest");
        let root = unpack_tarball(&path, &dest).unwrap();
        assert_eq!(root, dest.join("libbpf-9.9.9"));
        assert_eq!(std::fs::read(root.join("src/link.h")).unwrap(), b"int x;\n");
        assert_eq!(
            std::fs::read(root.join("include/same.h")).unwrap(),
            b"int x;\n"
        );
        assert_eq!(
            std::fs::read(root.join("travis-ci/Makefile")).unwrap(),
            b"all:\n"
        );
        let header_file = std::fs::metadata(root.join("include/x.h")).unwrap();
        assert_eq!(
            (header_file.mode() & 0o7777, header_file.mtime()),
            (0o644, 1_700_000_000)
        );
        // Executable stays executable; set-id bits and group write do not come along.
        let script = std::fs::metadata(root.join("scripts/run.sh")).unwrap();
        assert_eq!(script.mode() & 0o7777, 0o755);
    }

    #[test]
    fn links_that_pass_never_lead_outside_in_any_order() {
        // Links in both orders, to links, to `.` and `..`, before and after what they name: whatever the
        // tarball's order, every path in the tree resolves inside it.
        let tmp = tempfile::tempdir().unwrap();
        let entries: &[RawEntry] = &[
            MAKEFILE,
            ("top/l1", EntryType::Symlink, Some("b/x"), b""),
            ("top/b", EntryType::Symlink, Some(".."), b""),
            ("top/here", EntryType::Symlink, Some("."), b""),
            (
                "top/src/up",
                EntryType::Symlink,
                Some("../../top/here/b"),
                b"",
            ),
            ("top/src/inc", EntryType::Symlink, Some("../include"), b""),
            (
                "top/include/h.h",
                EntryType::Symlink,
                Some("../src/up/top/src/Makefile"),
                b"",
            ),
        ];
        let tarball = tarball(tmp.path(), entries);
        let dest = tmp.path().join("dest");
        unpack_tarball(&tarball, &dest).unwrap();
        let inside = dest.canonicalize().unwrap();
        let mut paths = walk(&dest);
        // One level of names below each link too: `l/x`, `here/b/top/…`.
        for path in paths.clone() {
            for name in ["x", "b", "top", "src", "here", "up"] {
                paths.push(path.join(name));
            }
        }
        for path in paths {
            if let Ok(resolved) = path.canonicalize() {
                assert!(
                    resolved.starts_with(&inside),
                    "`{}` resolves to `{}`, outside",
                    path.display(),
                    resolved.display()
                );
            }
        }
        assert_eq!(
            std::fs::read(dest.join("top/include/h.h")).unwrap(),
            b"all:\n"
        );
    }

    #[test]
    fn a_tarball_without_src_makefile_is_not_libbpf() {
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tarball(tmp.path(), &[("x/README", EntryType::Regular, None, b"hi")]);
        let dest = tmp.path().join("dest");
        let e = unpack_tarball(&tarball, &dest).unwrap_err();
        assert!(format!("{e:#}").contains("no src/Makefile"), "{e:#}");
        assert!(!dest.exists());
    }
}
