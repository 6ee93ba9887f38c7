//! `-g --kernel-package [RELEASE]`: the distro's kernel debug package for a release (`kernel-debuginfo` with dnf
//! from `repo-config/openEuler.repo` or the distro's debuginfo repositories; `linux-image-<release>-dbg`/`-dbgsym`
//! with apt-get from `repo-config/debug-archives.toml`, or a mirror of that archive named by
//! `EBPF_PROBE_DEBUG_MIRROR`), downloaded by the package manager (its own progress) into a temp dir without touching
//! the system's package state, unpacked (`dpkg-deb -x`, `bsdtar`), and its vmlinux.

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
    /// The archive's URL, `{mirror}` in `apt_sources` and the embedded `.repo` file.
    #[serde(default)]
    mirror: Option<String>,
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

/// `EBPF_PROBE_DEBUG_MIRROR` (with `EBPF_PROBE_DEBUG_MIRROR_UNSIGNED=1`): where to fetch the debug package from
/// instead of the distro's archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugMirror {
    /// `http://`, `https://` or `file:/` URL without a trailing slash.
    pub url: String,
    /// The mirror's indexes are not signed with the distro's key: apt's `[trusted=yes]`, dnf's `gpgcheck=0`.
    pub unsigned: bool,
}

impl DebugMirror {
    /// The mirror the two variables name, if any. The URL is written into a sources line or a `.repo` file, so it
    /// must be one word of plain URL characters.
    pub fn parse(url: Option<&str>, unsigned: Option<&str>) -> Result<Option<DebugMirror>> {
        let unsigned = match unsigned.map(str::trim) {
            None | Some("") | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                bail!("EBPF_PROBE_DEBUG_MIRROR_UNSIGNED must be 1 or 0, not `{other}`")
            }
        };
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            if unsigned {
                bail!("EBPF_PROBE_DEBUG_MIRROR_UNSIGNED=1 is set, but EBPF_PROBE_DEBUG_MIRROR names no mirror");
            }
            return Ok(None);
        };
        let has_scheme = ["http://", "https://", "file:/"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        let plain = url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '[' | ']' | '"' | '\\' | '{' | '}'));
        if !has_scheme || !plain {
            bail!(
                "EBPF_PROBE_DEBUG_MIRROR must be an http://, https:// or file:/ URL without spaces, brackets or \
                 quotes (a mirror of the distro's debug archive, e.g. http://mirror.example/debian-debug), not `{url}`"
            );
        }
        Ok(Some(DebugMirror {
            url: url.trim_end_matches('/').to_string(),
            unsigned,
        }))
    }
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

/// Which package and repositories give kernel `release`'s vmlinux with DWARF on `os`, from `mirror` when given.
pub fn route(os: &OsRelease, release: &str, mirror: Option<&DebugMirror>) -> Result<Route> {
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
    let mirror_url = match (mirror, &archive.mirror) {
        (Some(mirror), Some(_)) => mirror.url.clone(),
        (None, Some(url)) => url.clone(),
        (Some(_), None) => bail!(
            "EBPF_PROBE_DEBUG_MIRROR does not apply on {}: dnf downloads from the debuginfo repositories of the \
             system's .repo files (/etc/yum.repos.d), so point those at the mirror instead, and unset \
             EBPF_PROBE_DEBUG_MIRROR",
            family.name
        ),
        (None, None) => String::new(),
    };
    let unsigned = mirror.is_some_and(|m| m.unsigned);
    if !archive.apt_sources.is_empty() {
        if os.version_codename.is_empty() {
            bail!("/etc/os-release has no VERSION_CODENAME, which names the debug archive's suite");
        }
        return Ok(Route::Apt {
            package,
            sources: archive
                .apt_sources
                .iter()
                .map(|line| {
                    let line = line
                        .replace("{codename}", &os.version_codename)
                        .replace("{mirror}", &mirror_url);
                    match line.strip_prefix("deb ") {
                        Some(rest) if unsigned => format!("deb [trusted=yes] {rest}"),
                        _ => line,
                    }
                })
                .collect(),
            vmlinux,
        });
    }
    let repo_file = match &archive.dnf_repo_file {
        Some(name) if name == "openEuler.repo" => {
            let version = openeuler_version_dir(os)
                .context("cannot tell the openEuler release from /etc/os-release (VERSION)")?;
            let text = OPENEULER_REPO
                .replace("{version}", &version)
                .replace("{mirror}", &mirror_url);
            Some(if unsigned {
                text.replace("gpgcheck=1", "gpgcheck=0")
            } else {
                text
            })
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

/// How long the package manager may take to read the archive's indexes, and to download the package (Debian's
/// `linux-image-*-dbg` is close to 1 GB); both also give up on a stalled connection by their own timeouts.
const INDEX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);
const DOWNLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3 * 60 * 60);

/// Downloads and unpacks kernel `release`'s debug package under `work` and returns its vmlinux. The package
/// manager runs with the terminal, so its own progress (apt's `Get:`/percent line, dnf's bar) is what the user sees.
pub fn fetch_vmlinux(release: &str, mirror: Option<&DebugMirror>, work: &Path) -> Result<PathBuf> {
    let os = OsRelease::read();
    let route = route(&os, release, mirror)?;
    let downloads = work.join("download");
    let root = work.join("root");
    paths::create_dir_all(&downloads)?;
    paths::create_dir_all(&root)?;
    let what_to_do = format!(
        "check that kernel {release} is one this archive has (`--kernel-package RELEASE` names another), set \
         EBPF_PROBE_DEBUG_MIRROR to a mirror or snapshot of the archive that has it, or give the vmlinux with \
         DWARF with `-g --vmlinux FILE`"
    );
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
            let mut options = vec![
                format!("Dir::Etc::SourceList={}", list.display()),
                "Dir::Etc::SourceParts=/nonexistent".to_string(),
                format!("Dir::State::Lists={}", work.join("lists").display()),
                format!("Dir::Cache={}", work.join("cache").display()),
                "Debug::NoLocking=1".to_string(),
            ];
            if crate::kernel::is_root() {
                // apt downloads as `_apt`, who cannot enter our private temp dir: it would fall back to root with a
                // warning; say so up front instead.
                options.push("APT::Sandbox::User=root".to_string());
            }
            let with_options = |cmd: Cmd| options.iter().fold(cmd, |cmd, o| cmd.args(["-o", o]));
            let repositories = sources.join("; ");
            let update = with_options(Cmd::new(&apt)).arg("update");
            eprintln!("+ {update}");
            // apt-get update fails when any one suite cannot be read (a mirror that carries only `-debug`, not
            // `-proposed-updates-debug`); the package may still be in the others, so only the download decides.
            let index_failure = update.run_inherited_with_timeout(INDEX_TIMEOUT).err();
            if index_failure.is_some() {
                eprintln!(
                    "warning: apt-get could not read every index of the debug archive (its messages above); \
                     looking for `{package}` in those it read"
                );
            }
            let download = with_options(Cmd::new(&apt))
                .args(["download", package])
                .cwd(&downloads);
            eprintln!("+ {download}");
            download
                .run_inherited_with_timeout(DOWNLOAD_TIMEOUT)
                .with_context(|| {
                    let index_note = if index_failure.is_some() {
                        " Reading the archive's index failed too (apt's messages above): check the network \
                         (HTTP_PROXY) and the mirror's URL."
                    } else {
                        ""
                    };
                    format!(
                        "could not download `{package}`, kernel {release}'s debug package, from {repositories}: \
                         {what_to_do}.{index_note}"
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
            let repositories = match repo_file {
                Some(text) => {
                    let repos = work.join("repos.d");
                    paths::create_dir_all(&repos)?;
                    std::fs::write(repos.join("ebpf-probe-debug.repo"), text)
                        .context("failed to write the repository file")?;
                    download = download.arg(format!("--setopt=reposdir={}", repos.display()));
                    enabled_baseurls(text).join("; ")
                }
                None => format!("the system's repositories matching {}", enable.join(", ")),
            };
            for pattern in enable {
                download = download.arg(format!("--enablerepo={pattern}"));
            }
            let download = download
                .arg(format!("--destdir={}", downloads.display()))
                .arg(package);
            eprintln!("+ {download}");
            download
                .run_inherited_with_timeout(DOWNLOAD_TIMEOUT)
                .with_context(|| {
                    format!(
                        "could not download `{package}`, kernel {release}'s debuginfo package, from {repositories}: \
                         {what_to_do}."
                    )
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

/// The `baseurl`s of a `.repo` file's enabled sections, for saying where a download was tried.
fn enabled_baseurls(repo_file: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (mut enabled, mut baseurl) = (false, None::<String>);
    for line in repo_file.lines().map(str::trim).chain(["["]) {
        if line.starts_with('[') {
            if let Some(url) = baseurl.take().filter(|_| enabled) {
                found.push(url);
            }
            enabled = false;
        } else if let Some(value) = line.strip_prefix("enabled=") {
            enabled = value.trim() == "1";
        } else if let Some(value) = line.strip_prefix("baseurl=") {
            baseurl = Some(value.trim().to_string());
        }
    }
    found
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
        // The openEuler .repo has the three sections, each with a baseurl under {mirror}/{version}.
        for section in ["[everything]", "[debuginfo]", "[source]"] {
            let at = OPENEULER_REPO
                .find(section)
                .unwrap_or_else(|| panic!("{section}"));
            assert!(OPENEULER_REPO[at..].contains("baseurl={mirror}/{version}/"));
        }
        // Only [debuginfo] is enabled.
        assert_eq!(
            enabled_baseurls(OPENEULER_REPO),
            ["{mirror}/{version}/debuginfo/$basearch/"]
        );
        // Every archive with sources or an embedded .repo says where it is.
        for (name, archive) in &archives {
            let uses_mirror = !archive.apt_sources.is_empty() || archive.dnf_repo_file.is_some();
            assert_eq!(archive.mirror.is_some(), uses_mirror, "{name}");
            assert!(
                archive
                    .apt_sources
                    .iter()
                    .all(|s| s.starts_with("deb {mirror} ")),
                "{name}"
            );
        }
    }

    #[test]
    fn debian_and_ubuntu_use_their_debug_archives() {
        let debian = route(
            &os("ID=debian\nVERSION_CODENAME=bookworm\n"),
            "6.1.0-13-amd64",
            None,
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
            None,
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
        } = route(&euler, "5.10.0-136.12.0.86.oe2203sp1.x86_64", None).unwrap()
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
            None,
        )
        .unwrap()
        else {
            panic!("dnf")
        };
        assert_eq!(repo_file, None);
        assert_eq!(enable, ["*-debuginfo"]);
        assert!(route(&os("ID=arch\n"), "6.1", None).is_err());
    }

    #[test]
    fn a_mirror_replaces_the_archive_url_and_unsigned_trusts_it() {
        let mirror = |url: &str, unsigned: bool| DebugMirror {
            url: url.into(),
            unsigned,
        };
        let bookworm = os("ID=debian\nVERSION_CODENAME=bookworm\n");
        let Route::Apt { sources, .. } = route(
            &bookworm,
            "6.1.0-13-amd64",
            Some(&mirror("http://127.0.0.1:8080/debian-debug", true)),
        )
        .unwrap() else {
            panic!("apt")
        };
        assert_eq!(
            sources,
            [
                "deb [trusted=yes] http://127.0.0.1:8080/debian-debug bookworm-debug main",
                "deb [trusted=yes] http://127.0.0.1:8080/debian-debug bookworm-proposed-updates-debug main",
            ]
        );
        let Route::Apt { sources, .. } = route(
            &bookworm,
            "6.1.0-13-amd64",
            Some(&mirror("https://mirror.example/debian-debug", false)),
        )
        .unwrap() else {
            panic!("apt")
        };
        assert_eq!(
            sources[0],
            "deb https://mirror.example/debian-debug bookworm-debug main"
        );
        let euler = os("ID=\"openEuler\"\nVERSION=\"22.03 (LTS-SP1)\"\n");
        let Route::Dnf { repo_file, .. } = route(
            &euler,
            "5.10.0-136.12.0.86.oe2203sp1.x86_64",
            Some(&mirror("http://mirror.example/openeuler", true)),
        )
        .unwrap() else {
            panic!("dnf")
        };
        let repo_file = repo_file.unwrap();
        assert_eq!(
            enabled_baseurls(&repo_file),
            ["http://mirror.example/openeuler/openEuler-22.03-LTS-SP1/debuginfo/$basearch/"]
        );
        assert!(repo_file.contains("gpgcheck=0") && !repo_file.contains("gpgcheck=1"));
        // Fedora's repositories are the system's: a mirror cannot be put in, and saying so beats ignoring it.
        let error = route(
            &os("ID=fedora\n"),
            "6.5.6-300.fc39.x86_64",
            Some(&mirror("http://mirror.example/fedora", false)),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("/etc/yum.repos.d"), "{error}");
    }

    #[test]
    fn the_mirror_variables_are_checked() {
        assert_eq!(DebugMirror::parse(None, None).unwrap(), None);
        assert_eq!(DebugMirror::parse(Some(" "), Some("0")).unwrap(), None);
        assert_eq!(
            DebugMirror::parse(Some("http://127.0.0.1:1/debian-debug/"), Some("1")).unwrap(),
            Some(DebugMirror {
                url: "http://127.0.0.1:1/debian-debug".into(),
                unsigned: true
            })
        );
        assert!(DebugMirror::parse(Some("file:///srv/mirror"), None)
            .unwrap()
            .is_some());
        for bad in [
            "deb.debian.org/debian-debug",
            "http://a b",
            "[trusted=yes] http://x",
            "http://x\nbaseurl=y",
        ] {
            let error = DebugMirror::parse(Some(bad), None).unwrap_err().to_string();
            assert!(
                error.contains("EBPF_PROBE_DEBUG_MIRROR must be"),
                "{bad}: {error}"
            );
        }
        assert!(DebugMirror::parse(Some("http://x"), Some("yes")).is_err());
        assert!(DebugMirror::parse(None, Some("1")).is_err());
    }
}
