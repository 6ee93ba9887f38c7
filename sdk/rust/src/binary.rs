//! Find the ELF file a uprobe should go into: a path, a shared library this process maps, or a command
//! in PATH (the Rust side of `lib/elf_path.c`'s `resolve_loaded_lib`).

use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where the dynamic loader looks when LD_LIBRARY_PATH does not say (the directories libbpf searches too).
const LIBRARY_DIRS: &[&str] = &[
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];

/// The path of the shared library `name` as this process maps it, from `/proc/self/maps`:
/// `"libc.so.6"` → `/usr/lib/x86_64-linux-gnu/libc.so.6`. An exact file name wins; otherwise a versioned
/// file of the same library matches (`libc-2.31.so` for `libc.so.6` on old glibc, where `libc.so.6` is a
/// symlink and the maps show its target). The library this process maps is the one the system really
/// uses, which a guessed path may not be (multiarch directories, containers).
pub fn find_loaded_library(name: &str) -> Option<PathBuf> {
    let maps = fs::read_to_string("/proc/self/maps").ok()?;
    library_in_maps(&maps, name)
}

/// Resolves `spec` to the ELF file to attach a uprobe to:
/// - a path (anything with a `/`) is used as is, and must exist;
/// - otherwise a shared library this process maps ([`find_loaded_library`]);
/// - otherwise a `.so` name in LD_LIBRARY_PATH and the standard library directories;
/// - otherwise an executable in PATH (`"nginx"` → `/usr/sbin/nginx`).
pub fn resolve_binary(spec: &str) -> Result<PathBuf, Error> {
    if spec.is_empty() {
        return Err(Error::new(
            "cannot resolve an empty binary name: give a path, a library name (libc.so.6) or a command",
        ));
    }
    if spec.contains('/') {
        let path = PathBuf::from(spec);
        return if path.exists() {
            Ok(path)
        } else {
            Err(Error::new(format!(
                "binary {spec} does not exist: give the path of an executable or shared library"
            )))
        };
    }
    if let Some(path) = find_loaded_library(spec) {
        return Ok(path);
    }
    let library_dirs = library_search_dirs();
    if spec.contains(".so") {
        if let Some(path) = library_dirs
            .iter()
            .map(|dir| dir.join(spec))
            .find(|p| p.is_file())
        {
            return Ok(path);
        }
    }
    let path_dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect())
        .unwrap_or_default();
    if let Some(path) = path_dirs
        .iter()
        .map(|dir| dir.join(spec))
        .find(|p| is_executable(p))
    {
        return Ok(path);
    }
    let mut searched = vec!["the shared libraries this process maps (/proc/self/maps)".to_string()];
    if spec.contains(".so") {
        searched.push(format!(
            "the library directories {}",
            join_paths(&library_dirs)
        ));
    }
    searched.push(format!(
        "the executables in PATH ({})",
        join_paths(&path_dirs)
    ));
    Err(Error::new(format!(
        "cannot find binary '{spec}': searched {}; give its full path instead",
        searched.join(", ")
    )))
}

fn library_search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("LD_LIBRARY_PATH")
        .map(|path| {
            env::split_paths(&path)
                .filter(|d| !d.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    dirs.extend(LIBRARY_DIRS.iter().map(PathBuf::from));
    dirs
}

fn join_paths(dirs: &[PathBuf]) -> String {
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    shown.join(":")
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The pathname column of the maps lines, then the first exact file-name match, else the first versioned one.
fn library_in_maps(maps: &str, name: &str) -> Option<PathBuf> {
    let paths: Vec<&str> = maps.lines().filter_map(mapped_path).collect();
    let file_name = |path: &str| path.rsplit('/').next().unwrap_or(path).to_string();
    paths
        .iter()
        .find(|path| file_name(path) == name)
        .or_else(|| {
            paths
                .iter()
                .find(|path| is_version_of(&file_name(path), name))
        })
        .map(PathBuf::from)
}

/// `address perms offset dev inode   pathname`: the first five columns are single-space separated, the
/// pathname (which may contain spaces) is padded. Anonymous and special mappings (`[heap]`) and files
/// deleted since they were mapped (an upgraded library: its path is now another file) are not usable.
fn mapped_path(line: &str) -> Option<&str> {
    let path = line.splitn(6, ' ').nth(5)?.trim_start();
    (path.starts_with('/') && !path.ends_with(" (deleted)")).then_some(path)
}

/// Whether `file_name` is another version of library `name`: same stem (the part before `.so`) followed
/// by `.so…` or `-<version>…so`. `libc.so.6` ~ `libc-2.31.so`, but not `libcrypto.so.3`.
fn is_version_of(file_name: &str, name: &str) -> bool {
    let stem = name.split(".so").next().unwrap_or(name);
    if stem.is_empty() || !file_name.contains(".so") {
        return false;
    }
    match file_name.strip_prefix(stem) {
        Some(rest) => {
            rest.starts_with(".so")
                || (rest.starts_with('-') && rest[1..].starts_with(|c: char| c.is_ascii_digit()))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1234                       /usr/bin/cat
7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 
7f1c2a200000-7f1c2a228000 r--p 00000000 fd:01 5678                       /usr/lib/x86_64-linux-gnu/libcrypto.so.3
7f1c2a400000-7f1c2a428000 r--p 00000000 fd:01 9012                       /lib/x86_64-linux-gnu/libc-2.31.so
7f1c2a600000-7f1c2a628000 r--p 00000000 fd:01 3456                       /opt/my libs/libssl.so.1.1
7f1c2a800000-7f1c2a828000 r--p 00000000 fd:01 7890                       /usr/lib/libz.so.1 (deleted)
7ffd5f9e0000-7ffd5fa01000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn maps_lookup_prefers_exact_names_then_versions() {
        assert_eq!(
            library_in_maps(MAPS, "libc.so.6"),
            Some(PathBuf::from("/lib/x86_64-linux-gnu/libc-2.31.so"))
        );
        assert_eq!(
            library_in_maps(MAPS, "libssl.so.1.1"),
            Some(PathBuf::from("/opt/my libs/libssl.so.1.1"))
        );
        assert_eq!(
            library_in_maps(MAPS, "libcrypto.so.3"),
            Some(PathBuf::from("/usr/lib/x86_64-linux-gnu/libcrypto.so.3"))
        );
        // Deleted since mapped: the path no longer names the mapped file.
        assert_eq!(library_in_maps(MAPS, "libz.so.1"), None);
        assert_eq!(library_in_maps(MAPS, "libm.so.6"), None);
    }

    #[test]
    fn versions_of_a_library_share_its_stem_only() {
        assert!(is_version_of("libc-2.31.so", "libc.so.6"));
        assert!(is_version_of("libssl.so.3", "libssl.so.1.1"));
        assert!(!is_version_of("libcrypto.so.3", "libc.so.6"));
        assert!(!is_version_of("libc-tools", "libc.so.6"));
    }

    #[test]
    fn this_process_maps_libc() {
        let path =
            find_loaded_library("libc.so.6").expect("a Rust test binary links libc dynamically");
        assert!(path.exists(), "{}", path.display());
        assert!(
            path.to_string_lossy().contains("libc"),
            "{}",
            path.display()
        );
    }

    #[test]
    fn paths_are_taken_as_they_are() {
        assert_eq!(resolve_binary("/bin/sh").unwrap(), PathBuf::from("/bin/sh"));
        let missing = resolve_binary("/no/such/binary").unwrap_err().to_string();
        assert!(
            missing.contains("/no/such/binary does not exist"),
            "{missing}"
        );
    }

    #[test]
    fn commands_are_found_in_path() {
        let sh = resolve_binary("sh").unwrap();
        assert!(sh.is_absolute() && is_executable(&sh), "{}", sh.display());
        assert_eq!(sh.file_name().unwrap(), "sh");
    }

    #[test]
    fn libraries_resolve_to_the_mapped_file() {
        let libc = resolve_binary("libc.so.6").unwrap();
        assert_eq!(Some(libc), find_loaded_library("libc.so.6"));
    }

    #[test]
    fn a_missing_name_says_what_was_searched() {
        let error = resolve_binary("no-such-command-ebpf-probe")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cannot find binary 'no-such-command-ebpf-probe'"),
            "{error}"
        );
        assert!(error.contains("/proc/self/maps"), "{error}");
        assert!(error.contains("executables in PATH"), "{error}");
        assert!(!error.contains("library directories"), "{error}");
        let error = resolve_binary("libnosuch.so.9").unwrap_err().to_string();
        assert!(error.contains("library directories"), "{error}");
        assert!(resolve_binary("").is_err());
    }
}
