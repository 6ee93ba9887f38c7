//! What import writes, before it is rendered: ebpf-probe.toml's [layout], [build] and [sources], one probe.toml
//! per probe (the keys of /work/notes/layout-schema.md), and what could not be translated.

use std::path::PathBuf;

/// A construct import did not translate: where (relative to the tree root), what, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Untranslated {
    pub file: PathBuf,
    pub line: usize,
    pub construct: String,
    pub why: String,
}

impl std::fmt::Display for Untranslated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}`: {}",
            self.file.display(),
            self.line,
            self.construct,
            self.why
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct WorkspaceFile {
    /// `[layout] probes`: the directory holding the probe directories, relative to the root.
    pub probes: String,
    pub skip: Vec<String>,
    pub include: Vec<String>,
    pub kernel_header_dir: Option<String>,
    pub ext_def: bool,
    pub build: Build,
    pub sources: Vec<SourceSet>,
    /// Comments: what was left to the tool, and why.
    pub notes: Vec<String>,
    pub untranslated: Vec<Untranslated>,
}

#[derive(Debug, Clone, Default)]
pub struct Build {
    pub defines: Vec<String>,
    pub bpf_flags: Vec<String>,
    pub cflags: Vec<String>,
    pub cxxflags: Vec<String>,
    pub system_includes: Vec<String>,
    pub libs: Vec<String>,
    pub ldflags: Vec<String>,
    pub shared: Vec<String>,
    /// `BTF_ENABLE_OVERRIDE`'s defines, chosen by the tool when a probe sets none.
    pub btf_defines: Vec<String>,
    /// C sources include C++ library headers (`CXXABI_INCLUDE_DIR`).
    pub cxx_headers_in_c: bool,
}

/// `[sources.<name>]`: globs relative to the root.
#[derive(Debug, Clone, Default)]
pub struct SourceSet {
    pub name: String,
    pub c: Vec<String>,
    pub cxx: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ProbeFile {
    /// The probe's directory name.
    pub name: String,
    pub binary: Option<String>,
    pub defines: Vec<String>,
    pub includes: Vec<String>,
    pub bpf: Vec<String>,
    pub sources: Vec<String>,
    pub cxx_sources: Vec<String>,
    pub shared: Vec<String>,
    pub meta: Option<Vec<String>>,
    pub libs: Vec<String>,
    pub clang_flags: Vec<String>,
    pub cflags: Vec<String>,
    pub cxxflags: Vec<String>,
    pub objects: Vec<Object>,
    pub libraries: Vec<Library>,
    pub notes: Vec<String>,
    pub untranslated: Vec<Untranslated>,
    /// For the one-line summary: how many files the BPF, C and meta globs find.
    pub counts: Counts,
}

#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub bpf: usize,
    pub sources: usize,
    pub meta: usize,
}

/// `[[object]]`: settings for the BPF objects built from `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub source: String,
    pub skeleton: bool,
    pub install: Option<String>,
}

/// `[[library]]`: a shared library built beside the probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Library {
    pub name: String,
    pub sources: Vec<String>,
    pub cflags: Vec<String>,
    pub includes: Vec<String>,
    pub jni: bool,
    pub install: Option<String>,
}
