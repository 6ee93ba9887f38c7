//! `-g --kernel-package [RELEASE]`: the distro's kernel debug package for a release (`kernel-debuginfo` with dnf
//! from `repo-config/openEuler.repo` or the distro's debuginfo repositories; `linux-image-<release>-dbg`/`-dbgsym`
//! with apt-get from `repo-config/debug-archives.toml`), downloaded by the package manager (its own progress) into
//! a temp dir without touching the system's package state, unpacked (`dpkg-deb -x`, `bsdtar`), and its vmlinux.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::distro::{Family, OsRelease};
use crate::paths;
use crate::tool::{self, Cmd, ToolKind};

/// Embedded, as packages.toml is, so an installed binary has them.
const DEBUG_ARCHIVES: &str = include_str!("../../repo-config/debug-archives.toml");
const OPENEULER_REPO: &str = include_str!("../../repo-config/openEuler.repo");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Archive {
    #[serde(default)]
    apt_sources: Vec<String>,
    #[serde(default)]
    dnf_repo_file: Option<String>,
    #[serde(default)]
    dnf_enable: Vec<String>,
    vmlinux: Vec<String>,
}

/// How to get one release's debug package on this distro.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// apt-get with exactly these `sources.list` lines.
    Apt {
        package: String,
        sources: Vec<String>,
        vmlinux: Vec<String>,
    },
    /// dnf with these repositories: a `.repo` file's text (only it is read) or the system's with these enabled.
    Dnf {
        package: String,
        repo_file: Option<String>,
        enable: Vec<String>,
        vmlinux: Vec<String>,
    },
}

fn archives() -> BTreeMap<String, Archive> {
    toml::from_str(DEBUG_ARCHIVES).expect("repo-config/debug-archives.toml is valid")
}

/// openEuler's release directory from os-release: `openEuler-22.03-LTS-SP1` from VERSION `22.03 (LTS-SP1)`.
pub fn openeuler_version_dir(os: &OsRelease) -> Option<String> {
    let version = if os.version.is_empty() {
        &os.version_id
    } else {
        &os.version
    };
    let (number, qualifier) = match version.split_once('(') {
        Some((number, rest)) => (number.trim(), rest.trim_end_matches(')').trim()),
        None => (version.trim(), ""),
    };
    if number.is_empty() {
        return None;
    }
    Some(match qualifier {
        "" => format!("openEuler-{number}"),
        q => format!("openEuler-{number}-{}", q.replace(' ', "-")),
    })
}

/// Which package and repositories give kernel `release`'s vmlinux with DWARF on `os`.
pub fn route(os: &OsRelease, release: &str) -> Result<Route> {
    let Some(family) = Family::detect(os) else {
        bail!(
            "no kernel debug packages are known for OS `{}`: give the vmlinux with DWARF with --vmlinux FILE",
            os.id
        );
    };
    let package = family
        .packages_for("kernel-debuginfo", release)
        .into_iter()
        .next()
        .with_context(|| {
            format!(
                "repo-config/packages.toml names no kernel-debuginfo for {}",
                family.name
            )
        })?;
    let archives = archives();
    let archive = archives
        .get(&family.name)
        .with_context(|| format!("repo-config/debug-archives.toml has no [{}]", family.name))?;
    let vmlinux = archive
        .vmlinux
        .iter()
        .map(|p| p.replace("{release}", release))
        .collect();
    if !archive.apt_sources.is_empty() {
        if os.version_codename.is_empty() {
            bail!("/etc/os-release has no VERSION_CODENAME, which names the debug archive's suite");
        }
        return Ok(Route::Apt {
            package,
            sources: archive
                .apt_sources
                .iter()
                .map(|s| s.replace("{codename}", &os.version_codename))
                .collect(),
            vmlinux,
        });
    }
    let repo_file = match &archive.dnf_repo_file {
        Some(name) if name == "openEuler.repo" => {
            let version = openeuler_version_dir(os)
                .context("cannot tell the openEuler release from /etc/os-release (VERSION)")?;
            Some(OPENEULER_REPO.replace("{version}", &version))
        }
        Some(name) => {
            bail!("repo-config/debug-archives.toml names `{name}`, which is not embedded")
        }
        None => None,
    };
    Ok(Route::Dnf {
        package,
        repo_file,
        enable: archive.dnf_enable.clone(),
        vmlinux,
    })
}

/// Downloads and unpacks kernel `release`'s debug package under `work` and returns its vmlinux.
pub fn fetch_vmlinux(release: &str, work: &Path) -> Result<PathBuf> {
    let os = OsRelease::read();
    let route = route(&os, release)?;
    let downloads = work.join("download");
    let root = work.join("root");
    paths::create_dir_all(&downloads)?;
    paths::create_dir_all(&root)?;
    let vmlinux = match &route {
        Route::Apt {
            package,
            sources,
            vmlinux,
        } => {
            let list = work.join("debug.list");
            std::fs::write(&list, sources.join("\n") + "\n")
                .with_context(|| format!("failed to write `{}`", list.display()))?;
            for dir in ["lists/partial", "cache/archives/partial"] {
                paths::create_dir_all(&work.join(dir))?;
            }
            let apt = tool::find(ToolKind::AptGet)?;
            // Only our sources, lists and cache: the system's apt state is neither read nor changed.
            let options = [
                format!("Dir::Etc::SourceList={}", list.display()),
                "Dir::Etc::SourceParts=/nonexistent".to_string(),
                format!("Dir::State::Lists={}", work.join("lists").display()),
                format!("Dir::Cache={}", work.join("cache").display()),
                "Debug::NoLocking=1".to_string(),
            ];
            let with_options = |cmd: Cmd| options.iter().fold(cmd, |cmd, o| cmd.args(["-o", o]));
            let update = with_options(Cmd::new(&apt)).arg("update");
            eprintln!("+ {update}");
            update.run_inherited()?;
            let download = with_options(Cmd::new(&apt))
                .args(["download", package])
                .cwd(&downloads);
            eprintln!("+ {download}");
            download.run_inherited().with_context(|| {
                format!(
                    "could not download `{package}` (is kernel {release} in the debug archive?)"
                )
            })?;
            let deb = only_file_with_suffix(&downloads, ".deb")?;
            let dpkg_deb = tool::find(ToolKind::DpkgDeb)?;
            Cmd::new(&dpkg_deb).arg("-x").arg(&deb).arg(&root).run()?;
            vmlinux
        }
        Route::Dnf {
            package,
            repo_file,
            enable,
            vmlinux,
        } => {
            let dnf =
                tool::find(ToolKind::Dnf).context("`dnf download` fetches the debuginfo rpm")?;
            let mut download = Cmd::new(&dnf).arg("download");
            if let Some(text) = repo_file {
                let repos = work.join("repos.d");
                paths::create_dir_all(&repos)?;
                std::fs::write(repos.join("ebpf-probe-debug.repo"), text)
                    .context("failed to write the repository file")?;
                download = download.arg(format!("--setopt=reposdir={}", repos.display()));
            }
            for pattern in enable {
                download = download.arg(format!("--enablerepo={pattern}"));
            }
            let download = download
                .arg(format!("--destdir={}", downloads.display()))
                .arg(package);
            eprintln!("+ {download}");
            download.run_inherited().with_context(|| {
                format!("could not download `{package}` (is kernel {release} in the debuginfo repository?)")
            })?;
            let rpm = only_file_with_suffix(&downloads, ".rpm")?;
            let bsdtar = tool::find(ToolKind::Bsdtar).map_err(|e| {
                anyhow::anyhow!("{e}: bsdtar (libarchive) unpacks the rpm; install `bsdtar`")
            })?;
            Cmd::new(&bsdtar)
                .arg("-xf")
                .arg(&rpm)
                .arg("-C")
                .arg(&root)
                .run()?;
            vmlinux
        }
    };
    vmlinux
        .iter()
        .map(|relative| root.join(relative))
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "the debug package of kernel {release} holds none of {}",
                vmlinux.join(", ")
            )
        })
}

fn only_file_with_suffix(dir: &Path, suffix: &str) -> Result<PathBuf> {
    match paths::files_with_suffix(dir, suffix)?.as_slice() {
        [one] => Ok(one.clone()),
        found => bail!(
            "expected one {suffix} in `{}`, found {}",
            dir.display(),
            found.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> OsRelease {
        OsRelease::parse(text)
    }

    #[test]
    fn repo_config_parses_and_every_family_has_a_route() {
        let archives = archives();
        for family in ["debian", "ubuntu", "openeuler", "fedora"] {
            assert!(!archives[family].vmlinux.is_empty(), "{family}");
        }
        // The openEuler .repo has the three sections, each with a baseurl under {version}.
        for section in ["[everything]", "[debuginfo]", "[source]"] {
            let at = OPENEULER_REPO
                .find(section)
                .unwrap_or_else(|| panic!("{section}"));
            assert!(OPENEULER_REPO[at..].contains("baseurl=https://repo.openeuler.org/{version}/"));
        }
    }

    #[test]
    fn debian_and_ubuntu_use_their_debug_archives() {
        let debian = route(
            &os("ID=debian\nVERSION_CODENAME=bookworm\n"),
            "6.1.0-13-amd64",
        )
        .unwrap();
        assert_eq!(
            debian,
            Route::Apt {
                package: "linux-image-6.1.0-13-amd64-dbg".into(),
                sources: vec![
                    "deb http://deb.debian.org/debian-debug bookworm-debug main".into(),
                    "deb http://deb.debian.org/debian-debug bookworm-proposed-updates-debug main"
                        .into(),
                ],
                vmlinux: vec![
                    "usr/lib/debug/boot/vmlinux-6.1.0-13-amd64".into(),
                    "usr/lib/debug/lib/modules/6.1.0-13-amd64/vmlinux".into(),
                ],
            }
        );
        let Route::Apt {
            package, sources, ..
        } = route(
            &os("ID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=jammy\n"),
            "5.15.0-91-generic",
        )
        .unwrap()
        else {
            panic!("apt")
        };
        assert_eq!(package, "linux-image-5.15.0-91-generic-dbgsym");
        assert!(sources[0].starts_with("deb http://ddebs.ubuntu.com jammy "));
    }

    #[test]
    fn openeuler_reads_its_repo_file_and_fedora_enables_debuginfo() {
        let euler = os("NAME=\"openEuler\"\nID=\"openEuler\"\nVERSION=\"22.03 (LTS-SP1)\"\nVERSION_ID=\"22.03\"\n");
        assert_eq!(
            openeuler_version_dir(&euler).as_deref(),
            Some("openEuler-22.03-LTS-SP1")
        );
        let Route::Dnf {
            package,
            repo_file,
            enable,
            vmlinux,
        } = route(&euler, "5.10.0-136.12.0.86.oe2203sp1.x86_64").unwrap()
        else {
            panic!("dnf")
        };
        assert_eq!(
            package,
            "kernel-debuginfo-5.10.0-136.12.0.86.oe2203sp1.x86_64"
        );
        let repo_file = repo_file.unwrap();
        assert!(repo_file.contains(
            "baseurl=https://repo.openeuler.org/openEuler-22.03-LTS-SP1/debuginfo/$basearch/"
        ));
        assert!(enable.is_empty());
        assert_eq!(
            vmlinux,
            ["usr/lib/debug/lib/modules/5.10.0-136.12.0.86.oe2203sp1.x86_64/vmlinux"]
        );
        let Route::Dnf {
            repo_file, enable, ..
        } = route(
            &os("ID=rocky\nID_LIKE=\"rhel centos fedora\"\n"),
            "4.18.0-513.el8.x86_64",
        )
        .unwrap()
        else {
            panic!("dnf")
        };
        assert_eq!(repo_file, None);
        assert_eq!(enable, ["*-debuginfo"]);
        assert!(route(&os("ID=arch\n"), "6.1").is_err());
    }
}
