//! What a build hands on to `install` and `run`: each built probe's executable and the files it installs besides
//! (standalone BPF objects, shared libraries), and where `install` puts them by default.

use std::path::PathBuf;

/// Where `install` puts executables (the old guide's default; gala-gopher packages use /opt/gala-gopher/extend_probes).
pub const DEFAULT_BIN_DIR: &str = "/usr/bin/extends/ebpf.probe";
/// Where `install` puts probes' conf/ files (install.sh's `-c` default).
pub const DEFAULT_CONF_DIR: &str = "/etc/gala-gopher/extend_probes";
/// Where `install` puts .meta files (install.sh's `-m` default).
pub const DEFAULT_META_DIR: &str = "/opt/gala-gopher/meta";

/// Where `install` puts minimized kernel BTF files (gala-gopher's `btf_custom_path` directory; the SDKs' default).
pub const DEFAULT_BTF_DIR: &str = "/opt/gala-gopher/btf";

/// A probe that built: where its executable is, and what else it installs (standalone objects, libraries).
#[derive(Debug, Clone)]
pub struct BuiltProbe {
    pub name: String,
    pub binary: PathBuf,
    pub installables: Vec<Installable>,
}

/// A file a probe installs besides its executable, and into which subdirectory of the binary dir.
#[derive(Debug, Clone)]
pub struct Installable {
    pub path: PathBuf,
    pub subdir: String,
}
