//! Which distro this is (/etc/os-release), its package manager, and the package names from `repo-config/packages.toml`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::tool::{self, Cmd, ToolKind};

/// Embedded so that an installed `ebpf-probe` knows the package names without the source tree.
const PACKAGES_TOML: &str = include_str!("../repo-config/packages.toml");

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    pub pretty_name: String,
    pub version_id: String,
    /// `VERSION_CODENAME` (Debian/Ubuntu's suite, `bookworm`); empty where the distro has none.
    pub version_codename: String,
    /// `VERSION` (`22.03 (LTS-SP1)` on openEuler).
    pub version: String,
}

impl OsRelease {
    pub fn read() -> OsRelease {
        ["/etc/os-release", "/usr/lib/os-release"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|text| OsRelease::parse(&text))
            .unwrap_or_default()
    }

    pub fn parse(text: &str) -> OsRelease {
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            if let Some((key, value)) = line.split_once('=') {
                let value = value.trim().trim_matches('"').trim_matches('\'');
                fields.insert(key.trim().to_string(), value.to_string());
            }
        }
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        OsRelease {
            id: get("ID"),
            id_like: get("ID_LIKE")
                .split_whitespace()
                .map(String::from)
                .collect(),
            pretty_name: get("PRETTY_NAME"),
            version_id: get("VERSION_ID"),
            version_codename: get("VERSION_CODENAME"),
            version: get("VERSION"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct PackagesFile {
    family: Vec<Family>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Family {
    pub name: String,
    ids: Vec<String>,
    pub manager: String,
    packages: BTreeMap<String, Vec<String>>,
}

impl Family {
    /// The distro family of `os`: its ID first, then each ID_LIKE word in order.
    pub fn detect(os: &OsRelease) -> Option<Family> {
        let file: PackagesFile =
            toml::from_str(PACKAGES_TOML).expect("repo-config/packages.toml is valid");
        std::iter::once(&os.id)
            .chain(&os.id_like)
            .find_map(|id| {
                file.family
                    .iter()
                    .find(|f| f.ids.iter().any(|i| i.eq_ignore_ascii_case(id)))
            })
            .cloned()
    }

    /// Packages providing `requirement` (`clang`, `libelf`, …), with `{release}` filled in.
    pub fn packages_for(&self, requirement: &str, kernel_release: &str) -> Vec<String> {
        self.packages
            .get(requirement)
            .map(|names| {
                names
                    .iter()
                    .map(|n| n.replace("{release}", kernel_release))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The command a user would type to install `packages`.
    pub fn install_command_line(&self, packages: &[String]) -> String {
        let install = format!("{} install -y {}", self.manager, packages.join(" "));
        let arches = foreign_architectures(packages);
        if arches.is_empty() {
            return install;
        }
        let add: Vec<String> = arches
            .iter()
            .map(|a| format!("dpkg --add-architecture {a}"))
            .collect();
        format!(
            "{} && {} update && {install}",
            add.join(" && "),
            self.manager
        )
    }

    /// The commands `--fix` runs to install `packages`: refresh the package lists, then install.
    pub fn install_commands(&self, packages: &[String]) -> Result<Vec<Cmd>> {
        let commands = match self.manager.as_str() {
            "apt-get" => {
                let apt = tool::find(ToolKind::AptGet)?;
                // `libelf-dev:arm64`: another architecture's packages need it added to dpkg first (multiarch).
                let mut commands = Vec::new();
                for arch in foreign_architectures(packages) {
                    let dpkg = tool::find(ToolKind::Dpkg)?;
                    commands.push(Cmd::new(&dpkg).args(["--add-architecture", arch]));
                }
                // A fresh machine has empty package lists, and stale lists point at deleted files.
                commands.extend([
                    Cmd::new(&apt).arg("update"),
                    Cmd::new(&apt)
                        .env("DEBIAN_FRONTEND", "noninteractive")
                        .args(["install", "-y", "--no-install-recommends"])
                        .args(packages),
                ]);
                commands
            }
            _ => {
                let manager = tool::find(ToolKind::Dnf)
                    .or_else(|_| tool::find(ToolKind::Yum))
                    .context("neither dnf nor yum is on PATH")?;
                vec![Cmd::new(&manager).args(["install", "-y"]).args(packages)]
            }
        };
        Ok(commands)
    }
}

/// The architectures of `name:arch` packages (Debian multiarch), each once, in order.
fn foreign_architectures(packages: &[String]) -> Vec<&str> {
    let mut arches = Vec::new();
    for arch in packages
        .iter()
        .filter_map(|p| p.split_once(':').map(|(_, a)| a))
    {
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    arches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_architecture_packages_name_their_architecture_once() {
        let packages: Vec<String> = [
            "gcc-aarch64-linux-gnu",
            "libelf-dev:arm64",
            "zlib1g-dev:arm64",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(foreign_architectures(&packages), ["arm64"]);
        let debian = Family::detect(&os("debian", "")).unwrap();
        assert_eq!(
            debian.install_command_line(&packages[1..]),
            "dpkg --add-architecture arm64 && apt-get update && apt-get install -y libelf-dev:arm64 zlib1g-dev:arm64"
        );
        assert!(foreign_architectures(&packages[..1]).is_empty());
    }

    fn os(id: &str, like: &str) -> OsRelease {
        OsRelease::parse(&format!("ID={id}\nID_LIKE=\"{like}\"\nPRETTY_NAME=\"x\"\n"))
    }

    #[test]
    fn families_match_by_id_then_id_like() {
        assert_eq!(Family::detect(&os("debian", "")).unwrap().name, "debian");
        assert_eq!(
            Family::detect(&os("ubuntu", "debian")).unwrap().name,
            "ubuntu"
        );
        assert_eq!(
            Family::detect(&os("openEuler", "")).unwrap().name,
            "openeuler"
        );
        assert_eq!(
            Family::detect(&os("rocky", "rhel centos fedora"))
                .unwrap()
                .name,
            "fedora"
        );
        assert_eq!(
            Family::detect(&os("somethingelse", "debian")).unwrap().name,
            "debian"
        );
        assert!(Family::detect(&os("arch", "")).is_none());
    }

    #[test]
    fn package_names_differ_per_family() {
        let debian = Family::detect(&os("debian", "")).unwrap();
        let euler = Family::detect(&os("openEuler", "")).unwrap();
        let ubuntu = Family::detect(&os("ubuntu", "debian")).unwrap();
        assert_eq!(debian.packages_for("libelf", "6.1.0"), ["libelf-dev"]);
        assert_eq!(euler.packages_for("libelf", "6.1.0"), ["elfutils-devel"]);
        assert_eq!(
            ubuntu.packages_for("bpftool", "6.8.0-31-generic"),
            ["linux-tools-common", "linux-tools-6.8.0-31-generic"]
        );
        assert_eq!(
            debian.install_command_line(&["clang".into()]),
            "apt-get install -y clang"
        );
    }

    #[test]
    fn os_release_parses_quoted_values() {
        let os = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id, "12");
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
    }
}
