//! The libbpf cache shared by every workspace of a user: verified downloads and built entries (`lib/libbpf.a` +
//! `include/`), one per release, hash and architecture, a lock so that concurrent builds fetch and build once,
//! and staging directories that become entries only by a final rename.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::paths;

/// Overrides where the cache lives (default `$XDG_CACHE_HOME/ebpf-probe`, else `~/.cache/ebpf-probe`).
pub const CACHE_DIR_ENV: &str = "EBPF_PROBE_CACHE_DIR";

/// The cache's directory for libbpf: `<cache>/libbpf`.
#[derive(Clone, Debug)]
pub struct Cache {
    pub dir: PathBuf,
}

/// A built libbpf: headers and a static library. It exists only complete (it is renamed into place).
#[derive(Clone, Debug)]
pub struct Entry {
    pub dir: PathBuf,
}

impl Entry {
    /// Holds `bpf/libbpf.h` and libbpf's own `linux/bpf.h` (the UAPI it was written against).
    pub fn include_dir(&self) -> PathBuf {
        self.dir.join("include")
    }

    pub fn static_library(&self) -> PathBuf {
        self.dir.join("lib/libbpf.a")
    }

    pub fn is_complete(&self) -> bool {
        self.static_library().is_file() && self.include_dir().join("bpf/libbpf.h").is_file()
    }
    /// The same libbpf compiled for another architecture (`-b --arch`): the key's machine replaced by `arch`.
    pub fn for_arch(&self, arch: &str) -> Entry {
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let machine = format!("-{}", crate::kernel::machine());
        let base = name.strip_suffix(&machine).unwrap_or(&name);
        Entry {
            dir: self.dir.with_file_name(format!("{base}-{arch}")),
        }
    }
}

impl Cache {
    /// `$EBPF_PROBE_CACHE_DIR/libbpf`, `$XDG_CACHE_HOME/ebpf-probe/libbpf` or `~/.cache/ebpf-probe/libbpf`.
    /// Reads the environment only; nothing is created.
    pub fn locate() -> Result<Cache> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = if let Some(dir) = var(CACHE_DIR_ENV) {
            dir
        } else if let Some(dir) = var("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
            dir.join("ebpf-probe")
        } else if let Some(home) = var("HOME") {
            // A HOME that does not exist (`HOME=/nonexistent`, a service account) is not one to create.
            if !home.is_dir() {
                bail!(
                    "no cache directory for the pinned libbpf: HOME (`{}`) is not a directory; set \
                     {CACHE_DIR_ENV}=/some/writable/dir",
                    home.display()
                );
            }
            home.join(".cache/ebpf-probe")
        } else {
            bail!("no cache directory for the pinned libbpf: HOME is not set; set {CACHE_DIR_ENV}=/some/writable/dir");
        };
        Ok(Cache {
            dir: root.join("libbpf"),
        })
    }

    /// The built libbpf for `key` (see `entry_key`), whether or not it exists yet.
    pub fn entry(&self, key: &str) -> Entry {
        Entry {
            dir: self.dir.join(key),
        }
    }

    /// Where a verified download of the tarball with `sha256` is kept, so a failed build does not fetch again.
    pub fn download_path(&self, version: &str, sha256: &str) -> PathBuf {
        self.dir
            .join("downloads")
            .join(format!("libbpf-{version}-{}.tar.gz", &sha256[..16]))
    }

    /// Takes the cache's lock, creating the cache directory first. Waits (saying so) while another `ebpf-probe`
    /// holds it; released when the returned guard is dropped. Leftovers of interrupted runs are removed here,
    /// since nobody else can be writing them while we hold the lock.
    pub fn lock(&self) -> Result<CacheLock> {
        let not_writable = |e: std::io::Error, path: &Path| {
            anyhow!(
                "the libbpf cache `{}` is not writable ({e}); make it writable, or set {CACHE_DIR_ENV} to a writable directory",
                path.display()
            )
        };
        std::fs::create_dir_all(self.dir.join("downloads"))
            .map_err(|e| not_writable(e, &self.dir))?;
        let lock_path = self.dir.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| not_writable(e, &lock_path))?;
        if file.try_lock().is_err() {
            eprintln!(
                "{:>12} for another ebpf-probe to finish with the libbpf cache (lock `{}`)",
                "Waiting",
                lock_path.display()
            );
            file.lock()
                .with_context(|| format!("failed to lock `{}`", lock_path.display()))?;
        }
        let lock = CacheLock { _file: file };
        self.remove_leftovers()?;
        Ok(lock)
    }

    /// Staging directories and partial downloads of runs that were killed: never entries, never reused.
    fn remove_leftovers(&self) -> Result<()> {
        for dir in [self.dir.clone(), self.dir.join("downloads")] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") || name.ends_with(".part") {
                    let path = entry.path();
                    if path.is_dir() {
                        paths::remove_dir_all_if_exists(&path)?;
                    } else {
                        paths::remove_file_if_exists(&path)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A fresh staging directory beside the entries (so the final rename is atomic); removed when dropped.
    pub fn staging(&self, key: &str) -> Result<Staging> {
        let dir = self.dir.join(format!(".tmp-{key}-{}", std::process::id()));
        paths::remove_dir_all_if_exists(&dir)?;
        paths::create_dir_all(&dir)?;
        Ok(Staging { dir })
    }
}

/// The cache entry's name: release, start of the source hash, and the architecture it was compiled for (a
/// home directory may be shared between machines).
pub fn entry_key(version: &str, sha256: &str) -> String {
    format!("{version}-{}-{}", &sha256[..16], crate::kernel::machine())
}

/// Held while fetching and building; dropping it releases the lock.
pub struct CacheLock {
    _file: File,
}

/// Where one fetch-unpack-build happens: `src/` (unpacked), `obj/` (make's objects), `out/` (the entry to be).
pub struct Staging {
    pub dir: PathBuf,
}

impl Staging {
    pub fn source_dir(&self) -> PathBuf {
        self.dir.join("src")
    }

    pub fn object_dir(&self) -> PathBuf {
        self.dir.join("obj")
    }

    pub fn output_dir(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// Renames the finished output into place as `entry`: before this the entry does not exist at all.
    pub fn commit(self, entry: &Entry) -> Result<()> {
        let out = self.output_dir();
        if !(Entry { dir: out.clone() }).is_complete() {
            bail!(
                "the libbpf build in `{}` did not produce lib/libbpf.a and include/bpf/libbpf.h",
                out.display()
            );
        }
        paths::rename(&out, &entry.dir)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
