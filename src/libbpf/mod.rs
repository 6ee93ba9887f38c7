//! Which libbpf C probes compile against and link: the system's, or a pinned release fetched, verified,
//! built and cached by us (`repo-config/libbpf.toml`).

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::toolchain::{self, Version, MIN_LIBBPF};
use crate::workspace::Workspace;

/// `--libbpf`: where a build's libbpf comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// The system libbpf when it is new enough for the SDK, else the pinned one.
    #[default]
    Auto,
    System,
    Pinned,
    /// A libbpf source tree or tarball on disk (air-gapped machines).
    Source(PathBuf),
}

/// The libbpf a build uses.
#[derive(Clone, Debug)]
pub struct Libbpf {
    pub version: Option<Version>,
    /// Put before the system include dirs (`-I`); holds `bpf/libbpf.h`. `None` for the system libbpf.
    pub include_dir: Option<PathBuf>,
    /// Linked instead of `-lbpf`. `None` for the system libbpf.
    pub static_library: Option<PathBuf>,
    /// Why this one, for `--check` and `-v` ("system libbpf 1.1.2 is new enough for the SDK (≥ 1.0)").
    pub reason: String,
}

impl Libbpf {
    /// What the link line needs for libbpf.
    pub fn link_args(&self) -> Vec<String> {
        match &self.static_library {
            Some(archive) => vec![archive.display().to_string()],
            None => vec!["-lbpf".to_string()],
        }
    }
}

impl Libbpf {
    /// The libbpf the system's compilers find by themselves.
    pub fn system() -> Libbpf {
        let version = toolchain::find_libbpf_headers().and_then(|h| h.version);
        Libbpf {
            version,
            include_dir: None,
            static_library: None,
            reason: format!(
                "system libbpf {} (the SDK needs ≥ {}.{})",
                version.map_or("of unknown version".to_string(), |v| v.to_string()),
                MIN_LIBBPF.0,
                MIN_LIBBPF.1
            ),
        }
    }
}

/// Resolves `policy` for `workspace`, fetching and building the pinned libbpf when it is needed and not cached.
pub fn select(_workspace: &Workspace, policy: &Policy, _jobs: usize) -> Result<Libbpf> {
    match policy {
        Policy::Auto | Policy::System => Ok(Libbpf::system()),
        Policy::Pinned | Policy::Source(_) => bail!("the pinned libbpf is not built yet"),
    }
}
