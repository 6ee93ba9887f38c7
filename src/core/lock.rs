//! One build (or clean) of a workspace at a time: an exclusive lock on `.output/.lock`, held until dropped.
//! The kernel releases it when the holder exits, however it exits.

use std::fs::{File, TryLockError};
use std::path::Path;

use anyhow::{Context, Result};

use crate::paths;

/// Held while this process builds or cleans `.output/`; the kernel releases it if the process dies.
pub struct BuildLock {
    _file: File,
}

pub fn lock_output_dir(output_dir: &Path) -> Result<BuildLock> {
    use std::os::unix::fs::MetadataExt;
    let path = output_dir.join(".lock");
    loop {
        paths::create_dir_all(output_dir)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("failed to open the build lock `{}`", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                eprintln!(
                    "    Blocking waiting for another ebpf-probe build of this workspace to finish (lock `{}`)",
                    path.display()
                );
                file.lock()
                    .with_context(|| format!("failed to lock `{}`", path.display()))?;
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("failed to lock `{}`", path.display()))
            }
        }
        // A `clean` that held the lock may have removed `.output/` with the lock file in it: a lock on a file
        // no longer at `path` protects nothing, so take the new one.
        let held = file.metadata().map(|m| (m.dev(), m.ino())).ok();
        let current = std::fs::metadata(&path).map(|m| (m.dev(), m.ino())).ok();
        if held.is_some() && held == current {
            return Ok(BuildLock { _file: file });
        }
    }
}
