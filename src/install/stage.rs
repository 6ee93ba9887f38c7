//! Staging: a file copied into a temp file beside its destination, hashed, its mode bounded by the source's.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::existing::{hex, open_regular};
use super::probe_files::FileToInstall;
use super::root::Root;
use crate::paths;

/// A staged file: the temp beside its destination, and what it holds.
pub(super) struct Staged {
    pub(super) temp: tempfile::TempPath,
    pub(super) temp_rel: PathBuf,
    pub(super) disk: PathBuf,
    pub(super) sha256: String,
    pub(super) mode: u32,
}

pub(super) fn stage(root: &Root, copy: &FileToInstall) -> Result<Staged> {
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
