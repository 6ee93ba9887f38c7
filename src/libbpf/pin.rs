//! The pinned libbpf release (`repo-config/libbpf.toml`, embedded) and a workspace's `[libbpf]` table, which may
//! choose the policy, add mirrors, or replace the pinned tarball (air-gapped forks, tests).

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::toolchain::{parse_version, Version};

/// Embedded so that an installed `ebpf-probe` knows the pin without the source tree.
const LIBBPF_TOML: &str = include_str!("../../repo-config/libbpf.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinFile {
    version: String,
    sha256: String,
    urls: Vec<String>,
}

/// `[libbpf]` in `ebpf-probe.toml`; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibbpfConfig {
    /// `auto`, `system`, `pinned`, or a libbpf source tree or tarball (relative to the workspace root).
    pub policy: Option<String>,
    /// URLs serving the pinned tarball, tried before the pin's own (a local mirror).
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Replaces the pinned tarball's URLs; needs `sha256` with it.
    pub url: Option<String>,
    /// Replaces the pinned tarball's hash; needs `url` with it.
    pub sha256: Option<String>,
    /// The release `url` serves, when it is not the pinned one.
    pub version: Option<String>,
}

/// The tarball a pinned build uses: what it is, its hash, and where to get it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub version: Version,
    pub sha256: String,
    pub urls: Vec<String>,
    /// Where the hash comes from, for messages: `repo-config/libbpf.toml` or the workspace file.
    pub origin: &'static str,
}

/// The pin compiled into this binary.
pub fn embedded() -> Pinned {
    parse_pin_file(LIBBPF_TOML).expect("repo-config/libbpf.toml is checked by a unit test")
}

fn parse_pin_file(text: &str) -> Result<Pinned> {
    let file: PinFile = toml::from_str(text).context("invalid repo-config/libbpf.toml")?;
    Ok(Pinned {
        version: parse_release(&file.version)?,
        sha256: parse_sha256(&file.sha256)?,
        urls: file.urls,
        origin: "repo-config/libbpf.toml",
    })
}

impl LibbpfConfig {
    /// The pin as this workspace sees it: its mirrors first, then the pin's URLs (or its replacement tarball).
    pub fn pinned(&self) -> Result<Pinned> {
        let mut pinned = match (&self.url, &self.sha256) {
            (None, None) => {
                if self.version.is_some() {
                    bail!("`[libbpf] version` in ebpf-probe.toml names the release that `url` serves; give `url` and `sha256` with it, or remove it");
                }
                embedded()
            }
            (Some(url), Some(sha256)) => Pinned {
                version: match &self.version {
                    Some(v) => parse_release(v)?,
                    None => embedded().version,
                },
                sha256: parse_sha256(sha256)?,
                urls: vec![url.clone()],
                origin: "ebpf-probe.toml [libbpf]",
            },
            _ => bail!(
                "`[libbpf] url` and `sha256` in ebpf-probe.toml replace the pinned tarball together; give both or neither"
            ),
        };
        let mut urls = self.mirrors.clone();
        urls.append(&mut pinned.urls);
        pinned.urls = urls;
        Ok(pinned)
    }
}

fn parse_release(text: &str) -> Result<Version> {
    match parse_version(text) {
        Some(v) if text.trim_start_matches('v').split('.').count() == 3 => Ok(v),
        _ => {
            bail!("`{text}` is not a libbpf release; write it as MAJOR.MINOR.PATCH, e.g. \"1.7.0\"")
        }
    }
}

fn parse_sha256(text: &str) -> Result<String> {
    let hex = text.trim().to_ascii_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("`{text}` is not a sha256 (64 hex digits)");
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_pin_is_libbpf_1_7_0_upstream_first() {
        let pin = embedded();
        assert_eq!(pin.version, Version(1, 7, 0));
        assert_eq!(
            pin.sha256,
            "7ab5feffbf78557f626f2e3e3204788528394494715a30fc2070fcddc2051b7b"
        );
        assert!(pin.urls[0].starts_with("https://github.com/libbpf/libbpf/"));
        assert!(pin.urls.len() >= 2);
    }

    #[test]
    fn mirrors_come_before_the_pinned_urls() {
        let config: LibbpfConfig =
            toml::from_str("mirrors = [\"http://127.0.0.1:8000/libbpf-1.7.0.tar.gz\"]").unwrap();
        let pin = config.pinned().unwrap();
        assert_eq!(pin.urls[0], "http://127.0.0.1:8000/libbpf-1.7.0.tar.gz");
        assert_eq!(pin.urls[1..], embedded().urls[..]);
        assert_eq!(pin.sha256, embedded().sha256);
    }

    #[test]
    fn url_and_sha256_replace_the_pin_together() {
        let hash = "AB".repeat(32);
        let config: LibbpfConfig = toml::from_str(&format!(
            "url = \"http://127.0.0.1:1/x.tar.gz\"\nsha256 = \"{hash}\"\nmirrors = [\"http://m/x\"]"
        ))
        .unwrap();
        let pin = config.pinned().unwrap();
        assert_eq!(pin.urls, ["http://m/x", "http://127.0.0.1:1/x.tar.gz"]);
        assert_eq!(pin.sha256, "ab".repeat(32));
        assert_eq!(pin.version, embedded().version);

        let half: LibbpfConfig = toml::from_str("url = \"http://x/y\"").unwrap();
        assert!(half
            .pinned()
            .unwrap_err()
            .to_string()
            .contains("give both or neither"));
        let bad: LibbpfConfig = toml::from_str("url = \"http://x/y\"\nsha256 = \"1234\"").unwrap();
        assert!(bad.pinned().unwrap_err().to_string().contains("64 hex"));
        assert!(toml::from_str::<LibbpfConfig>("polcy = \"auto\"").is_err());
    }
}
