//! What is at a path on disk (missing, a directory, a regular file's sha256 and mode), read without following links.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// Opens a regular file without following a link at its name and without blocking on a FIFO.
pub(super) fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata)> {
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

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is at a destination now.
pub(super) enum Existing {
    Missing,
    Directory,
    /// A symlink, FIFO, socket or device: never read through.
    Other,
    Regular {
        sha256: String,
        mode: u32,
    },
}

pub(super) fn inspect(disk: &Path) -> Result<Existing> {
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
pub(super) fn sha256_at(disk: &Path) -> Result<Option<String>> {
    match inspect(disk)? {
        Existing::Regular { sha256, .. } => Ok(Some(sha256)),
        _ => Ok(None),
    }
}
