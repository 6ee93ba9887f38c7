//! The C libraries probes link: libelf and zlib for every probe (by their headers), and those a workspace names.

use std::path::PathBuf;

use super::fix::FixAction;
use super::{Host, Row};
use crate::tool::{self, Cmd, ToolKind};
use crate::toolchain;

/// The section of the libraries a workspace's configuration names.
const WORKSPACE_LIBRARIES: &str = "workspace libraries";

/// Libraries used through their header alone: no `lib<name>.so` to look for, the header says it is there.
const HEADER_ONLY: [(&str, &str); 2] = [("uthash", "uthash.h"), ("jni", "jni.h")];

/// libelf and zlib, which every probe's userland links (through libbpf).
pub fn header_rows(host: &Host) -> Vec<Row> {
    vec![
        header_row("libelf", "libelf.h", host).with_action(FixAction::install("libelf")),
        header_row("zlib", "zlib.h", host).with_action(FixAction::install("zlib")),
    ]
}

fn header_row(name: &'static str, header: &str, host: &Host) -> Row {
    let r = Row::new("libraries", name, true);
    match toolchain::find_system_header(header) {
        Some(path) => r.pass(format!("{}", path.display())),
        None => r.fail(format!("{header} not found"), host.install_command(name)),
    }
}

/// One required row per library in `libs` (linker names: `jsoncpp` for `-ljsoncpp`): present when the linker's
/// dirs hold `lib<name>.so` or `.a` (a header-only library: its header), else the package that provides it.
pub fn library_rows(libs: &[String], host: &Host) -> Vec<Row> {
    if libs.is_empty() {
        return Vec::new();
    }
    // Asked once for all libraries, and only when there are some: an empty list starts no process.
    let dirs = linker_search_dirs();
    libs.iter()
        .map(|name| library_row(name, locate(name, &dirs), host))
        .collect()
}

/// The row for library `name`, given where it was found or what the search said.
fn library_row(name: &str, found: Result<PathBuf, String>, host: &Host) -> Row {
    let r = Row::new(WORKSPACE_LIBRARIES, name, true);
    let missing = match found {
        Ok(path) => return r.pass(path.display().to_string()),
        Err(missing) => missing,
    };
    match &host.family {
        Some(family) if family.packages_for(name, &host.kernel_release).is_empty() => r.fail(
            missing,
            format!(
                "install the package providing {name} (repo-config/packages.toml names none for the {} family)",
                family.name
            ),
        ),
        _ => r
            .fail(missing, host.install_command(name))
            .with_action(FixAction::install(name)),
    }
}

/// Where library `name` is, or the row's value saying what was not found.
fn locate(name: &str, linker_dirs: &Result<Vec<PathBuf>, String>) -> Result<PathBuf, String> {
    if let Some((_, header)) = HEADER_ONLY.iter().find(|(lib, _)| *lib == name) {
        return header_dirs()
            .into_iter()
            .map(|dir| dir.join(header))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{header} not found"));
    }
    let dirs = linker_dirs
        .as_ref()
        .map_err(|e| format!("not checked: {e}"))?;
    dirs.iter()
        .find_map(|dir| {
            let file = ["so", "a"]
                .map(|ext| format!("lib{name}.{ext}"))
                .into_iter()
                .find(|file| dir.join(file).is_file())?;
            // gcc lists dirs like `/usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/`.
            Some(
                dir.canonicalize()
                    .unwrap_or_else(|_| dir.clone())
                    .join(file),
            )
        })
        .ok_or_else(|| format!("lib{name}.so or lib{name}.a not found in cc's library dirs"))
}

/// The system include dirs, then each JDK's (`jni.h` lives in `/usr/lib/jvm/<jdk>/include`).
fn header_dirs() -> Vec<PathBuf> {
    let mut jdks: Vec<PathBuf> = std::fs::read_dir("/usr/lib/jvm")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path().join("include"))
                .collect()
        })
        .unwrap_or_default();
    jdks.sort();
    let mut dirs = toolchain::system_include_dirs();
    dirs.extend(jdks);
    dirs
}

/// The dirs the linker searches for `-l` libraries, as `cc -print-search-dirs` lists them.
fn linker_search_dirs() -> Result<Vec<PathBuf>, String> {
    let cc = tool::find(ToolKind::Cc).map_err(|e| e.to_string())?;
    let cmd = Cmd::new(&cc).arg("-print-search-dirs");
    let output = cmd.run().map_err(|e| format!("{e:#}"))?;
    let dirs = parse_library_dirs(&String::from_utf8_lossy(&output.stdout));
    if dirs.is_empty() {
        return Err(format!("`{cmd}` listed no library dirs"));
    }
    Ok(dirs)
}

/// The `libraries: =/a/:/b/` line of `-print-search-dirs` (gcc and clang alike; `=` stands for the sysroot).
fn parse_library_dirs(text: &str) -> Vec<PathBuf> {
    text.lines()
        .find_map(|line| line.strip_prefix("libraries:"))
        .map(|list| {
            list.trim()
                .trim_start_matches('=')
                .split(':')
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distro::{Family, OsRelease};

    fn host(id: &str) -> Host {
        let os = OsRelease::parse(&format!("ID={id}\n"));
        Host {
            family: Family::detect(&os),
            os,
            kernel_release: "6.1.0".into(),
        }
    }

    #[test]
    fn library_packages_are_named_per_family() {
        let expected = [
            ("config", "libconfig-dev", "libconfig-devel"),
            ("jsoncpp", "libjsoncpp-dev", "jsoncpp-devel"),
            ("curl", "libcurl4-openssl-dev", "libcurl-devel"),
            ("uthash", "uthash-dev", "uthash-devel"),
            ("stdc++", "g++", "gcc-c++"),
            ("jni", "default-jdk-headless", "java-devel"),
        ];
        for (lib, deb, rpm) in expected {
            for id in ["debian", "ubuntu"] {
                let family = host(id).family.unwrap();
                assert_eq!(family.packages_for(lib, "6.1.0"), [deb], "{lib} on {id}");
            }
            for id in ["openEuler", "fedora"] {
                let family = host(id).family.unwrap();
                assert_eq!(family.packages_for(lib, "6.1.0"), [rpm], "{lib} on {id}");
            }
        }
    }

    #[test]
    fn a_missing_library_names_its_package_and_fix() {
        let row = library_row("jsoncpp", Err("not found".into()), &host("debian"));
        assert!(!row.ok && row.required);
        assert_eq!(row.section, WORKSPACE_LIBRARIES);
        assert_eq!(
            row.fix.as_deref(),
            Some("apt-get install -y libjsoncpp-dev")
        );
        assert_eq!(row.action, Some(FixAction::install("jsoncpp")));

        let row = library_row("stdc++", Err("not found".into()), &host("openEuler"));
        assert_eq!(row.fix.as_deref(), Some("dnf install -y gcc-c++"));

        // No package known: the fix says so and `--fix` has nothing to install.
        let row = library_row("nosuchlib", Err("not found".into()), &host("debian"));
        assert!(row
            .fix
            .unwrap()
            .contains("names none for the debian family"));
        assert_eq!(row.action, None);

        let row = library_row("curl", Ok("/usr/lib/libcurl.so".into()), &host("debian"));
        assert!(row.ok);
        assert_eq!(row.value, "/usr/lib/libcurl.so");
        assert_eq!(row.action, None);
    }

    #[test]
    fn library_dirs_come_from_print_search_dirs() {
        let gcc = "install: /usr/lib/gcc/x86_64-linux-gnu/12/\n\
                   programs: =/usr/lib/gcc/x86_64-linux-gnu/12/:/usr/bin/\n\
                   libraries: =/usr/lib/gcc/x86_64-linux-gnu/12/:/lib/x86_64-linux-gnu/:/usr/lib/\n";
        assert_eq!(
            parse_library_dirs(gcc),
            [
                PathBuf::from("/usr/lib/gcc/x86_64-linux-gnu/12/"),
                PathBuf::from("/lib/x86_64-linux-gnu/"),
                PathBuf::from("/usr/lib/"),
            ]
        );
        assert!(parse_library_dirs("programs: =/usr/bin\n").is_empty());
    }
}
