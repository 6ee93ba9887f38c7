//! A libbpf given by path (`--libbpf PATH`, for air-gapped machines): a source tarball or an unpacked tree, and
//! the cache entry it builds into. A tarball with the pinned hash is the pinned libbpf and shares its entry.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::cache::entry_key;
use super::fetch::{hex, sha256_file};
use super::pin::Pinned;
use crate::toolchain::Version;

#[derive(Clone, Debug)]
pub enum Source {
    Tarball {
        path: PathBuf,
        sha256: String,
    },
    /// `root` holds `src/Makefile`; `hash` covers every file under `src/` and `include/`.
    Tree {
        path: PathBuf,
        root: PathBuf,
        hash: String,
    },
}

impl Source {
    pub fn inspect(path: &Path) -> Result<Source> {
        if path.is_dir() {
            let Some(root) = super::unpack::source_root(path) else {
                bail!(
                    "`{}` is not a libbpf source tree: it has no src/Makefile (give the directory a libbpf release \
                     unpacks to, or its .tar.gz)",
                    path.display()
                );
            };
            let hash = tree_hash(&root)?;
            Ok(Source::Tree {
                path: path.to_path_buf(),
                root,
                hash,
            })
        } else if path.is_file() {
            Ok(Source::Tarball {
                path: path.to_path_buf(),
                sha256: sha256_file(path)?,
            })
        } else {
            bail!(
                "the libbpf source `{}` does not exist; the libbpf policy is `auto`, `system`, `pinned`, or the path \
                 of a libbpf source tree or .tar.gz",
                path.display()
            )
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Source::Tarball { path, .. } | Source::Tree { path, .. } => path,
        }
    }

    /// The cache entry name, and the release when it is known without building (the pinned tarball).
    pub fn cache_key(&self, pinned: &Pinned) -> (String, Option<Version>) {
        match self {
            Source::Tarball { sha256, .. } if *sha256 == pinned.sha256 => (
                entry_key(&pinned.version.to_string(), sha256),
                Some(pinned.version),
            ),
            Source::Tarball { sha256, .. } => (entry_key("src", sha256), None),
            Source::Tree { hash, .. } => (entry_key("tree", hash), None),
        }
    }
}

/// A hash of the files a libbpf build reads (`src/`, `include/`): names and contents, in sorted order.
fn tree_hash(root: &Path) -> Result<String> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("failed to list `{}`", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("failed to list `{}`", dir.display()))?
                .path();
            if path.is_dir() {
                walk(&path, files)?;
            } else if path.is_file() {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for sub in ["src", "include"] {
        if root.join(sub).is_dir() {
            walk(&root.join(sub), &mut files)?;
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(root).unwrap_or(&file);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(
            std::fs::read(&file).with_context(|| format!("failed to read `{}`", file.display()))?,
        );
        hasher.update([0]);
    }
    Ok(hex(&hasher.finalize()))
}
