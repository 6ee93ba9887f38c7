//! Unpacking a libbpf source tarball (gzip + tar) into an empty directory, refusing any entry that could write
//! or point outside it: absolute paths, `..`, links that escape, device nodes.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use tar::EntryType;

/// Unpacks `tarball` into `dest` (created; should be new) and returns the libbpf source root inside it: the
/// directory holding `src/Makefile` (the tarball's single top directory, or `dest` itself).
pub fn unpack_tarball(tarball: &Path, dest: &Path) -> Result<PathBuf> {
    let file = std::fs::File::open(tarball)
        .with_context(|| format!("failed to open `{}`", tarball.display()))?;
    let refuse = |why: String| {
        anyhow::anyhow!(
            "refusing to unpack `{}`: {why}; nothing from it was kept (this is not a plain libbpf source tarball)",
            tarball.display()
        )
    };
    crate::paths::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_ownerships(false);
    archive.set_unpack_xattrs(false);
    let entries = archive
        .entries()
        .map_err(|e| refuse(format!("it is not a gzip'd tar archive ({e})")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| refuse(format!("it is not a gzip'd tar archive ({e})")))?;
        let path = entry
            .path()
            .map_err(|e| refuse(format!("an entry has an unreadable name ({e})")))?
            .into_owned();
        let link = entry
            .link_name()
            .map_err(|e| {
                refuse(format!(
                    "`{}` has an unreadable link name ({e})",
                    path.display()
                ))
            })?
            .map(|l| l.into_owned());
        check_entry(&path, entry.header().entry_type(), link.as_deref()).map_err(refuse)?;
        // tar's unpack_in also checks, with the real filesystem, that no parent directory leads outside.
        let inside = entry.unpack_in(dest).with_context(|| {
            format!(
                "failed to unpack `{}` from `{}` into `{}`",
                path.display(),
                tarball.display(),
                dest.display()
            )
        })?;
        if !inside {
            return Err(refuse(format!(
                "`{}` would be written outside the target",
                path.display()
            )));
        }
    }
    source_root(dest).with_context(|| {
        format!(
            "`{}` is not a libbpf source tarball: it has no src/Makefile (at its top or in its one top directory)",
            tarball.display()
        )
    })
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

/// Whether an entry may be unpacked: `Err` says why not. Pure, so each rule is unit-tested.
pub fn check_entry(path: &Path, kind: EntryType, link: Option<&Path>) -> Result<(), String> {
    let shown = path.display();
    if path.has_root() || matches!(path.components().next(), Some(Component::Prefix(_))) {
        return Err(format!("entry `{shown}` has an absolute path"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("entry `{shown}` has a `..` component"));
    }
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::Directory => Ok(()),
        // Pax and GNU extension records carry metadata (GitHub's archives start with one), nothing is written.
        EntryType::XGlobalHeader
        | EntryType::XHeader
        | EntryType::GNULongName
        | EntryType::GNULongLink => Ok(()),
        EntryType::Symlink => {
            let target = link.ok_or_else(|| format!("symlink `{shown}` has no target"))?;
            if target.has_root() {
                return Err(format!(
                    "symlink `{shown}` points at the absolute path `{}`",
                    target.display()
                ));
            }
            // The target is relative to the link's own directory.
            let from = path.parent().unwrap_or(Path::new(""));
            if escapes(&from.join(target)) {
                return Err(format!(
                    "symlink `{shown}` → `{}` points outside the unpacked tree",
                    target.display()
                ));
            }
            Ok(())
        }
        EntryType::Link => {
            let target = link.ok_or_else(|| format!("hard link `{shown}` has no target"))?;
            // A hard link's target is another path in the archive, from the top.
            if target.has_root() || escapes(target) {
                return Err(format!(
                    "hard link `{shown}` → `{}` points outside the unpacked tree",
                    target.display()
                ));
            }
            Ok(())
        }
        other => Err(format!(
            "entry `{shown}` is a {other:?} (device node, fifo or other special file)"
        )),
    }
}

/// Whether a relative path climbs above where it starts, resolving `..` lexically (`a/../../b` does).
fn escapes(path: &Path) -> bool {
    let mut depth: i64 = 0;
    for component in path.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return true,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn check(path: &str, kind: EntryType, link: Option<&str>) -> Result<(), String> {
        check_entry(Path::new(path), kind, link.map(Path::new))
    }

    #[test]
    fn plain_files_and_directories_pass() {
        assert!(check("libbpf-1.7.0/", EntryType::Directory, None).is_ok());
        assert!(check("libbpf-1.7.0/src/Makefile", EntryType::Regular, None).is_ok());
        assert!(check("./libbpf-1.7.0/README.md", EntryType::Regular, None).is_ok());
        assert!(check("pax_global_header", EntryType::XGlobalHeader, None).is_ok());
    }

    #[test]
    fn absolute_paths_and_dotdot_are_refused() {
        let e = check("/etc/cron.d/x", EntryType::Regular, None).unwrap_err();
        assert!(e.contains("absolute path"), "{e}");
        let e = check("libbpf-1.7.0/../../x", EntryType::Regular, None).unwrap_err();
        assert!(e.contains("`..`"), "{e}");
        // Even a `..` that stays inside is refused: no legitimate tarball needs one.
        let e = check("a/../b", EntryType::Regular, None).unwrap_err();
        assert!(e.contains("`..`"), "{e}");
    }

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(check("t/src/link", EntryType::Symlink, Some("../include/x.h")).is_ok());
        assert!(check("t/link", EntryType::Symlink, Some("src/./x")).is_ok());
        let e = check("t/link", EntryType::Symlink, Some("../../etc/passwd")).unwrap_err();
        assert!(e.contains("points outside"), "{e}");
        let e = check("link", EntryType::Symlink, Some("..")).unwrap_err();
        assert!(e.contains("points outside"), "{e}");
        let e = check("t/link", EntryType::Symlink, Some("/etc")).unwrap_err();
        assert!(e.contains("absolute path"), "{e}");
        assert!(check("t/link", EntryType::Symlink, None).is_err());
    }

    #[test]
    fn hard_links_must_stay_inside() {
        assert!(check("t/b", EntryType::Link, Some("t/a")).is_ok());
        let e = check("t/b", EntryType::Link, Some("/etc/shadow")).unwrap_err();
        assert!(e.contains("points outside"), "{e}");
        let e = check("t/b", EntryType::Link, Some("../outside")).unwrap_err();
        assert!(e.contains("points outside"), "{e}");
    }

    #[test]
    fn device_nodes_and_fifos_are_refused() {
        let e = check("t/dev", EntryType::Char, None).unwrap_err();
        assert!(e.contains("special file"), "{e}");
        assert!(check("t/fifo", EntryType::Fifo, None).is_err());
    }

    /// A raw tar header with `name` (bypassing `set_path`, which refuses what we want to test).
    fn header(name: &str, kind: EntryType, link: Option<&str>, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(size);
        if let Some(link) = link {
            h.set_link_name_literal(link).unwrap();
        }
        h.set_cksum();
        h
    }

    fn tarball(dir: &Path, entries: &[(&str, EntryType, Option<&str>, &[u8])]) -> PathBuf {
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

    #[test]
    fn a_tarball_with_dotdot_writes_nothing_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tarball(
            tmp.path(),
            &[
                ("top/src/Makefile", EntryType::Regular, None, b"all:\n"),
                ("top/../../evil", EntryType::Regular, None, b"x"),
            ],
        );
        let dest = tmp.path().join("a/b/dest");
        let e = unpack_tarball(&tarball, &dest).unwrap_err().to_string();
        assert!(
            e.contains("refusing to unpack") && e.contains("`..`"),
            "{e}"
        );
        assert!(!tmp.path().join("a/evil").exists() && !tmp.path().join("evil").exists());
    }

    #[test]
    fn a_tarball_with_an_escaping_symlink_is_refused_before_writing_through_it() {
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tarball(
            tmp.path(),
            &[
                ("top/src/Makefile", EntryType::Regular, None, b"all:\n"),
                ("top/esc", EntryType::Symlink, Some("../../.."), b""),
                ("top/esc/owned", EntryType::Regular, None, b"x"),
            ],
        );
        let dest = tmp.path().join("dest");
        let e = unpack_tarball(&tarball, &dest).unwrap_err().to_string();
        assert!(e.contains("points outside"), "{e}");
        assert!(!dest.join("top/esc").exists());
    }

    #[test]
    fn a_good_tarball_unpacks_to_its_source_root() {
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tarball(
            tmp.path(),
            &[
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
            ],
        );
        let dest = tmp.path().join("dest");
        let root = unpack_tarball(&tarball, &dest).unwrap();
        assert_eq!(root, dest.join("libbpf-9.9.9"));
        assert_eq!(std::fs::read(root.join("src/link.h")).unwrap(), b"int x;\n");
    }

    #[test]
    fn a_tarball_without_src_makefile_is_not_libbpf() {
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tarball(tmp.path(), &[("x/README", EntryType::Regular, None, b"hi")]);
        let e = unpack_tarball(&tarball, &tmp.path().join("dest")).unwrap_err();
        assert!(format!("{e:#}").contains("no src/Makefile"), "{e:#}");
    }
}
