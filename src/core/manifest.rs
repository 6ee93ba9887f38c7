//! The configuration files of a workspace as written: `ebpf-probe.toml` (layout, build settings, shared source
//! sets, `[libbpf]`) and each probe's `probe.toml`. Parsed once; unknown keys are errors so typos do not pass.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::libbpf::LibbpfConfig;
use crate::paths;

/// The file that marks a workspace root, as `Cargo.toml` marks a cargo package.
pub const MARKER: &str = "ebpf-probe.toml";

/// `ebpf-probe.toml`. Every table is optional; the defaults are the layout `init` creates.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceManifest {
    /// `[libbpf]`: the policy, mirrors of the pinned tarball, or a replacement pin.
    #[serde(default)]
    pub libbpf: LibbpfConfig,
    /// `[layout]`: where probes, SDK headers and the kernel header are.
    #[serde(default)]
    pub layout: LayoutConfig,
    /// `[build]`: defines, flags and libraries every probe gets.
    #[serde(default)]
    pub build: BuildConfig,
    /// `[sources.NAME]`: sets of userland sources shared by probes, compiled once.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSetConfig>,
    /// `[probe.NAME]`: a flat layout's per-probe settings (what a probe dir's probe.toml says otherwise).
    #[serde(default)]
    pub probe: BTreeMap<String, ProbeConfig>,
    /// `[cross.ARCH]` (`aarch64`, `riscv64`): the cross compiler `-b --arch ARCH` builds userland with.
    #[serde(default)]
    pub cross: BTreeMap<String, CrossConfig>,
}

/// `[cross.ARCH]`: another architecture's C compilers; without it (and without a `CC` for that architecture)
/// `-b --arch` builds BPF objects only.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossConfig {
    /// The C compiler: a name on PATH (`aarch64-linux-gnu-gcc`) or a path.
    pub cc: Option<String>,
    /// The C++ compiler (default: the C compiler's name with `gcc` → `g++`, `clang` → `clang++`, when that exists).
    pub cxx: Option<String>,
    /// Flags every userland compile and link of that architecture gets, e.g. `["--sysroot=/srv/arm64-root"]`.
    #[serde(default)]
    pub flags: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutConfig {
    /// The directory holding one directory per probe (default `probes`).
    pub probes: Option<String>,
    /// A directory there is a probe when it holds this file (default: a `*.bpf.c` or a `probe.toml`).
    pub probe_marker: Option<String>,
    /// Directory names under `probes` that are never probes (`lib`, `include`, `mk`).
    #[serde(default)]
    pub skip: Vec<String>,
    /// SDK include dirs, in order, for every BPF and userland compile (default `["include"]`).
    pub include: Option<Vec<String>>,
    /// Where `vmlinux.h` and `linux_<release>.h` live, and what `-g` writes (default: the first `include`).
    pub kernel_header_dir: Option<String>,
    /// Check `.meta` files and warn about probes without one (default true).
    pub meta: Option<bool>,
    /// `-g` appends `#include "ext_def.h"` to the generated header (default true).
    pub ext_def: Option<bool>,
    /// One directory of tools (libbpf-tools' shape): every `<name>.bpf.c` in `probes` is a probe `<name>` whose
    /// loader is `<name>.c`; `[probe.NAME]` holds its settings (default false).
    pub flat: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// `NAME` or `NAME=VALUE`, passed as `-D` to every BPF and userland compile.
    #[serde(default)]
    pub defines: Vec<String>,
    /// Extra clang flags for every BPF compile.
    #[serde(default)]
    pub bpf_flags: Vec<String>,
    /// Extra flags for every userland C compile.
    #[serde(default)]
    pub cflags: Vec<String>,
    /// Extra flags for every C++ compile.
    #[serde(default)]
    pub cxxflags: Vec<String>,
    /// `-isystem` dirs for userland (C and C++) compiles.
    #[serde(default)]
    pub system_includes: Vec<String>,
    /// Libraries every probe links after its objects (names or flags); libbpf is always the tool's own choice.
    #[serde(default)]
    pub libs: Vec<String>,
    /// Linker flags every probe link gets before its objects.
    #[serde(default)]
    pub ldflags: Vec<String>,
    /// The shared source sets a probe links when its probe.toml does not say (default: `lib` when it exists).
    pub shared: Option<Vec<String>>,
    /// C sources include C++ library headers (`<cxxabi.h>`): the C++ library's include dirs, found by the tool, go
    /// after every other dir of userland C compiles (gala-gopher's `CXXABI_INCLUDE_DIR`).
    #[serde(default)]
    pub cxx_headers_in_c: bool,
    /// Two defines, `[WITH_BTF, WITHOUT_BTF]` (gala-gopher's `__BTF_ENABLE_ON`/`_OFF`): a probe whose `defines`
    /// name neither gets the first when the target kernel has BTF (`/sys/kernel/btf/vmlinux`), else the second.
    #[serde(default)]
    pub btf_defines: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSetConfig {
    /// C sources: paths or globs, relative to the workspace root (they may lie outside it).
    #[serde(default)]
    pub c: Vec<String>,
    /// C++ sources, compiled with the C++ compiler; linking any makes the probe link the C++ runtime.
    #[serde(default)]
    pub cxx: Vec<String>,
}

/// `probe.toml`: what a probe's Makefile could say; every key optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Executable name when it differs from the directory (the old `lvsprobe/trace_lvs`).
    pub binary: Option<String>,
    /// Extra flags for clang when compiling this probe's BPF programs, e.g. `["-mcpu=v3"]`.
    #[serde(default)]
    pub clang_flags: Vec<String>,
    /// Extra flags for the C compiler when compiling this probe's userland `*.c`.
    #[serde(default)]
    pub cflags: Vec<String>,
    /// Extra flags for the C++ compiler.
    #[serde(default)]
    pub cxxflags: Vec<String>,
    /// Extra libraries to link, as `-l` names (`"pthread"`) or full flags (`"-Wl,--as-needed"`).
    #[serde(default)]
    pub libs: Vec<String>,
    /// `NAME` or `NAME=VALUE`, passed as `-D` to this probe's BPF and userland compiles.
    #[serde(default)]
    pub defines: Vec<String>,
    /// Extra include dirs (relative to the probe dir), after the SDK's, for BPF and userland compiles.
    #[serde(default)]
    pub includes: Vec<String>,
    /// BPF sources (globs relative to the probe dir; default `["*.bpf.c"]`).
    pub bpf: Option<Vec<String>>,
    /// Userland C sources (default `["*.c"]`; a `*.bpf.c` never counts).
    pub sources: Option<Vec<String>>,
    /// C++ sources (default `["*.cpp"]`).
    pub cxx_sources: Option<Vec<String>>,
    /// The shared source sets this probe links (default: `[build] shared`).
    pub shared: Option<Vec<String>>,
    /// `.meta` files, paths or globs (default: `*.meta` in the probe dir).
    pub meta: Option<Vec<String>>,
    /// Settings for the BPF objects whose source matches `source`.
    #[serde(default)]
    pub object: Vec<ObjectConfig>,
    /// Shared libraries built beside the probe (a JVMTI agent).
    #[serde(default)]
    pub library: Vec<LibraryConfig>,
    /// Programs `verify` does not load, each with why (an fentry on a kernel that refuses fentry loads).
    #[serde(default)]
    pub verify_skip: BTreeMap<String, String>,
    /// Programs `compat` reports but does not fail on, each with why (a fallback the loader picks at run time).
    #[serde(default)]
    pub compat_optional: BTreeMap<String, String>,
    /// Uprobe targets the loader attaches at run time (`UBPF_ATTACH`), as `BINARY:SYMBOL`, for `compat`
    /// to check on this machine (a bare binary name is looked up on PATH and in the library dirs).
    #[serde(default)]
    pub uprobes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectConfig {
    /// A path or glob relative to the probe dir (`stack_bpf/*.bpf.c`).
    pub source: String,
    /// Generate `<stem>.skel.h` (default true); objects loaded by path at run time need none.
    pub skeleton: Option<bool>,
    /// Install the `.bpf.o` into this subdirectory of the binary dir (`"."`: the binary dir itself).
    pub install: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryConfig {
    /// The file name (`jvm_agentv1.so`).
    pub name: String,
    /// C sources, relative to the probe dir.
    pub sources: Vec<String>,
    /// Extra compiler flags (`-shared -fPIC` are always given).
    #[serde(default)]
    pub cflags: Vec<String>,
    /// Extra include dirs, relative to the probe dir.
    #[serde(default)]
    pub includes: Vec<String>,
    /// Add the JDK's JNI include dirs (`$JAVA_HOME/include`, else found from `javac` on PATH).
    #[serde(default)]
    pub jni: bool,
    /// Subdirectory of the binary dir it is installed into (default `"."`).
    pub install: Option<String>,
}

/// Reads and parses a TOML file, naming it in every error.
pub fn read<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = paths::read(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        anyhow::anyhow!(
            "invalid {what} in `{}`: line {line}, column {column} is not UTF-8 (TOML files are UTF-8; re-save it \
             as UTF-8)",
            path.display()
        )
    })?;
    toml::from_str(&text).with_context(|| format!("invalid {what} in `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_utf8_is_named_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.toml");
        std::fs::write(&path, b"binary = \"x\"\n# caf\xe9\n").unwrap();
        let error = format!(
            "{:#}",
            read::<ProbeConfig>(&path, "probe settings").unwrap_err()
        );
        assert!(error.contains("line 2, column 6 is not UTF-8"), "{error}");
    }

    #[test]
    fn an_empty_manifest_is_the_default_layout() {
        let manifest: WorkspaceManifest = toml::from_str("").unwrap();
        assert!(manifest.layout.probes.is_none());
        assert!(manifest.sources.is_empty());
    }

    #[test]
    fn every_documented_key_parses_and_typos_do_not() {
        let manifest: WorkspaceManifest = toml::from_str(
            r#"
            [layout]
            probes = "src"
            probe_marker = "Makefile"
            skip = ["lib", "mk"]
            include = ["src/include", "../../../common"]
            kernel_header_dir = "src/include"
            meta = false
            ext_def = false
            [build]
            defines = ["BPF_NO_GLOBAL_DATA"]
            bpf_flags = ["-std=gnu11"]
            cflags = ["-Wunused"]
            cxxflags = ["-std=c++11"]
            system_includes = ["/usr/include/jsoncpp"]
            libs = ["config"]
            ldflags = ["-Wl,-z,now"]
            shared = ["lib", "common"]
            cxx_headers_in_c = true
            [sources.common]
            c = ["../../../common/*.c"]
            cxx = ["../../../common/*.cpp"]
            "#,
        )
        .unwrap();
        assert_eq!(manifest.sources["common"].cxx.len(), 1);
        assert!(toml::from_str::<WorkspaceManifest>("[layout]\nprobe = \"src\"").is_err());
        let probe: ProbeConfig = toml::from_str(
            r#"
            binary = "stackprobe"
            bpf = ["stack_bpf/*.bpf.c"]
            includes = ["../lib/pystack"]
            sources = ["*.c", "protocol/**/*.c"]
            cxx_sources = []
            shared = ["lib"]
            defines = ["__BTF_ENABLE_ON"]
            meta = ["a.meta"]
            [[object]]
            source = "stack_bpf/*.bpf.c"
            skeleton = false
            install = "stack_bpf"
            [[library]]
            name = "jvm_agentv1.so"
            sources = ["jvmti/jvm_agent.c"]
            jni = true
            "#,
        )
        .unwrap();
        assert_eq!(probe.object[0].install.as_deref(), Some("stack_bpf"));
        assert!(probe.library[0].jni);
        assert!(toml::from_str::<ProbeConfig>("[[object]]\nsrc = \"x\"").is_err());
    }
}
