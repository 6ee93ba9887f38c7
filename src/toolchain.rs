//! The tools and C libraries a build needs: finding them, reading their versions, and saying how to get them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::distro::{Family, OsRelease};
use crate::tool::{self, Cmd, Tool, ToolKind};

/// clang older than this cannot compile BPF CO-RE code (the old build.sh demanded the same).
pub const MIN_CLANG_MAJOR: u32 = 10;
/// The SDK uses `bpf_program__attach_uprobe_opts` with `func_name` and BTF-defined maps: libbpf 1.0 and up.
pub const MIN_LIBBPF: (u32, u32) = (1, 0);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Reads `1.2.3` (missing parts are 0) from the start of `s`.
pub fn parse_version(s: &str) -> Option<Version> {
    let s = s.trim_start_matches('v');
    let numeric: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = numeric
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some(Version(major, minor, patch))
}

/// The version in `clang --version` output: "Debian clang version 14.0.6", "Ubuntu clang version 18.1.3 (1ubuntu1)",
/// "clang version 17.0.6 (Fedora 17.0.6-2.fc39)", "Apple clang version 15.0.0".
pub fn parse_clang_version(text: &str) -> Option<Version> {
    text.lines().find_map(|line| {
        let at = line.find("clang version ")?;
        parse_version(&line[at + "clang version ".len()..])
    })
}

/// `bpftool version` prints "<argv0> v7.1.0\nusing libbpf v1.1" (argv0 may be `/usr/sbin/bpftool`); older ones
/// print only the first line.
pub fn parse_bpftool_version(text: &str) -> (Option<Version>, Option<Version>) {
    let mut bpftool = None;
    let mut libbpf = None;
    for line in text.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        let (first, second) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if first.ends_with("bpftool") && second.starts_with('v') {
            bpftool = parse_version(second);
        } else if let Some(rest) = line.strip_prefix("using libbpf ") {
            libbpf = parse_version(rest);
        }
    }
    (bpftool, libbpf)
}

/// The libbpf development headers: where `bpf/libbpf.h` is and the version its `libbpf_version.h` declares.
#[derive(Clone, Debug)]
pub struct LibbpfHeaders {
    pub include_dir: PathBuf,
    pub version: Option<Version>,
}

pub fn find_libbpf_headers() -> Option<LibbpfHeaders> {
    let include_dir = system_include_dirs()
        .into_iter()
        .find(|d| d.join("bpf/libbpf.h").is_file())?;
    let version = std::fs::read_to_string(include_dir.join("bpf/libbpf_version.h"))
        .ok()
        .and_then(|text| parse_libbpf_version_header(&text));
    Some(LibbpfHeaders {
        include_dir,
        version,
    })
}

pub fn parse_libbpf_version_header(text: &str) -> Option<Version> {
    let define = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line
                .trim()
                .strip_prefix("#define")?
                .trim()
                .strip_prefix(name)?;
            rest.trim().parse::<u32>().ok()
        })
    };
    Some(Version(
        define("LIBBPF_MAJOR_VERSION")?,
        define("LIBBPF_MINOR_VERSION")?,
        0,
    ))
}

/// Where the system C headers live, most specific first.
pub fn system_include_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/usr/local/include"),
        PathBuf::from("/usr/include"),
    ];
    if let Some(multiarch) = multiarch_include_dir() {
        dirs.push(multiarch);
    }
    dirs
}

/// A C header on the system include path, e.g. `libelf.h`.
pub fn find_system_header(name: &str) -> Option<PathBuf> {
    system_include_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Debian-style multiarch dir (`/usr/include/x86_64-linux-gnu`) that holds `asm/types.h`; clang's BPF
/// target does not search it by itself. Fedora and openEuler keep `asm/` in `/usr/include` and have none.
pub fn multiarch_include_dir() -> Option<PathBuf> {
    let machine = crate::kernel::machine();
    let triples = match machine.as_str() {
        "x86_64" => vec!["x86_64-linux-gnu"],
        "aarch64" => vec!["aarch64-linux-gnu"],
        "riscv64" => vec!["riscv64-linux-gnu"],
        "i686" | "i386" => vec!["i386-linux-gnu"],
        "s390x" => vec!["s390x-linux-gnu"],
        "ppc64le" => vec!["powerpc64le-linux-gnu"],
        "loongarch64" => vec!["loongarch64-linux-gnu"],
        _ => vec![],
    };
    triples
        .into_iter()
        .map(|t| Path::new("/usr/include").join(t))
        .find(|d| d.join("asm/types.h").is_file())
}

/// What to tell a user who lacks `requirement`: the distro's install command, and the one-step fix.
pub fn install_hint(requirement: &str) -> String {
    let os = OsRelease::read();
    let release = crate::kernel::release().unwrap_or_default();
    match Family::detect(&os) {
        Some(family) => {
            let packages = family.packages_for(requirement, &release);
            format!(
                "install it with `{}` or run `ebpf-probe --check --fix`",
                family.install_command_line(&packages)
            )
        }
        None => format!(
            "install the package that provides {requirement} with your distro's package manager (ebpf-probe \
             knows no package names for `{}`; add them to repo-config/packages.toml)",
            if os.id.is_empty() { "this OS" } else { &os.id }
        ),
    }
}

/// The programs every probe build runs.
#[derive(Clone, Debug)]
pub struct Toolchain {
    pub clang: Tool,
    pub llvm_strip: Tool,
    pub bpftool: Tool,
    pub cc: Tool,
}

impl Toolchain {
    pub fn find() -> Result<Toolchain> {
        let find = |kind: ToolKind, requirement: &str| -> Result<Tool> {
            tool::find(kind).map_err(|e| anyhow::anyhow!("{e}; {}", install_hint(requirement)))
        };
        let clang = find(ToolKind::Clang, "clang")?;
        Ok(Toolchain {
            clang,
            llvm_strip: find(ToolKind::LlvmStrip, "llvm-strip")?,
            bpftool: find(ToolKind::Bpftool, "bpftool")?,
            cc: find(ToolKind::Cc, "cc")?,
        })
    }

    /// clang's version, asked of clang only when `cache` (a file beside the build outputs) does not already
    /// hold the answer for this exact clang binary: a no-op build starts no process at all.
    /// Fails when clang is too old for BPF CO-RE.
    pub fn clang_version(&self, cache: &Path) -> Result<Option<Version>> {
        let identity = tool_identity(&self.clang.program);
        let cached = std::fs::read_to_string(cache).ok().and_then(|text| {
            let (who, version) = text.split_once('\n')?;
            (who == identity).then(|| parse_version(version.trim()))
        });
        let version = match cached {
            Some(version) => version,
            None => {
                let output = Cmd::new(&self.clang).arg("--version").run()?;
                let version = parse_clang_version(&String::from_utf8_lossy(&output.stdout));
                let text = format!(
                    "{identity}\n{}\n",
                    version.map_or(String::new(), |v| v.to_string())
                );
                // Only a cache: a read-only tree still builds, it just asks clang every time.
                let _ = crate::paths::write_atomic(cache, text.as_bytes());
                version
            }
        };
        match version {
            Some(v) if v.0 < MIN_CLANG_MAJOR => bail!(
                "`{}` is clang {v}; BPF builds need clang >= {MIN_CLANG_MAJOR}. Point CLANG at a newer clang or {}",
                self.clang.program.display(),
                install_hint("clang")
            ),
            _ => Ok(version),
        }
    }
}

/// Which exact program `path` is, without running it: its resolved path, size and modification time. Part of
/// every step's fingerprint, so upgrading a tool rebuilds what it made.
pub fn tool_identity(path: &Path) -> String {
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match std::fs::metadata(&resolved) {
        Ok(meta) => {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .unwrap_or_default();
            format!(
                "{} {} {}.{:09}",
                resolved.display(),
                meta.len(),
                modified.as_secs(),
                modified.subsec_nanos()
            )
        }
        Err(_) => resolved.display().to_string(),
    }
}

/// The JDK's JNI include dirs (`jni.h` and the platform's `jni_md.h`): `$JAVA_HOME`, else the JDK `javac` on PATH
/// belongs to (the old Makefile's rule).
pub fn jni_include_dirs() -> Result<Vec<PathBuf>> {
    let home = match std::env::var_os("JAVA_HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home),
        None => {
            let javac = crate::tool::find_program("javac").ok_or_else(|| {
                anyhow::anyhow!(
                    "no JDK: JAVA_HOME is not set and `javac` is not on PATH; install one ({}) or set JAVA_HOME",
                    install_hint("jni")
                )
            })?;
            let real = javac.canonicalize().unwrap_or(javac);
            real.parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .unwrap_or_default()
        }
    };
    let include = home.join("include");
    if !include.join("jni.h").is_file() {
        anyhow::bail!(
            "`{}` has no jni.h: JAVA_HOME (or the JDK of `javac`) must point at a JDK with headers ({})",
            include.display(),
            install_hint("jni")
        );
    }
    Ok(vec![include.clone(), include.join("linux")])
}

/// The C++ standard library's include dirs (`/usr/include/c++/<N>` and its per-target dir, Debian's
/// `/usr/include/<multiarch>/c++/<N>` or openEuler's `/usr/include/c++/<N>/<arch>-<vendor>-linux`), for C sources
/// that include `<cxxabi.h>`. The highest installed version; empty when there is none.
pub fn cxx_library_include_dirs() -> Vec<PathBuf> {
    let base = Path::new("/usr/include/c++");
    let newest = std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            parse_version(&name).map(|v| (v, name))
        })
        .max_by_key(|(v, _)| *v);
    let Some((_, version)) = newest else {
        return Vec::new();
    };
    let mut dirs = vec![base.join(&version)];
    let machine = crate::kernel::machine();
    if let Ok(entries) = std::fs::read_dir(Path::new("/usr/include")) {
        let mut targets: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("c++").join(&version))
            .filter(|d| {
                d.is_dir()
                    && d.to_string_lossy()
                        .starts_with(&format!("/usr/include/{machine}-"))
            })
            .collect();
        targets.sort();
        dirs.extend(targets);
    }
    if let Ok(entries) = std::fs::read_dir(base.join(&version)) {
        let mut targets: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|d| {
                d.is_dir()
                    && d.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{machine}-")))
            })
            .collect();
        targets.sort();
        dirs.extend(targets);
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clang_versions_parse_from_every_vendor_banner() {
        assert_eq!(
            parse_clang_version("Debian clang version 14.0.6\nTarget: x86_64-pc-linux-gnu"),
            Some(Version(14, 0, 6))
        );
        assert_eq!(
            parse_clang_version("Ubuntu clang version 18.1.3 (1ubuntu1)"),
            Some(Version(18, 1, 3))
        );
        assert_eq!(
            parse_clang_version("Ubuntu clang version 14.0.0-1ubuntu1.1"),
            Some(Version(14, 0, 0))
        );
        assert_eq!(
            parse_clang_version("clang version 17.0.6 (Fedora 17.0.6-2.fc39)"),
            Some(Version(17, 0, 6))
        );
        assert_eq!(
            parse_clang_version("clang version 12.0.1 (openEuler 12.0.1-1.oe2203)"),
            Some(Version(12, 0, 1))
        );
        assert_eq!(
            parse_clang_version("Homebrew clang version 9.0.1"),
            Some(Version(9, 0, 1))
        );
        assert_eq!(parse_clang_version("gcc (Debian 12.2.0-14) 12.2.0"), None);
    }

    #[test]
    fn bpftool_reports_its_own_and_its_libbpf_version() {
        assert_eq!(
            parse_bpftool_version("bpftool v7.1.0\nusing libbpf v1.1\nfeatures: libbpf_strict\n"),
            (Some(Version(7, 1, 0)), Some(Version(1, 1, 0)))
        );
        assert_eq!(
            parse_bpftool_version("/usr/sbin/bpftool v5.10.0\n"),
            (Some(Version(5, 10, 0)), None)
        );
    }

    #[test]
    fn libbpf_version_header_parses() {
        let text = "#define __LIBBPF_VERSION_H\n#define LIBBPF_MAJOR_VERSION 1\n#define LIBBPF_MINOR_VERSION 7\n";
        assert_eq!(parse_libbpf_version_header(text), Some(Version(1, 7, 0)));
        assert_eq!(parse_libbpf_version_header("nothing"), None);
    }
}
