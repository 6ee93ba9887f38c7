//! Which libbpf C probes compile against and link: the system's, or a pinned release fetched, verified,
//! built and cached by us (`repo-config/libbpf.toml`), or one given by path.

pub mod cache;
mod fetch;
mod make;
pub mod pin;
mod source;
mod unpack;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::paths;
use crate::toolchain::{self, Version, MIN_LIBBPF};

use cache::{entry_key, Cache, Entry, Staging};
pub use pin::{LibbpfConfig, Pinned};
use source::Source;

/// `--libbpf`: where a build's libbpf comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// The system libbpf when it is new enough for the SDK, else the pinned one.
    #[default]
    Auto,
    System,
    Pinned,
    /// A libbpf source tree or tarball on disk (air-gapped machines).
    Source(PathBuf),
}

impl Policy {
    /// `auto`, `system`, `pinned`, or a path (relative ones are taken from `base`).
    pub fn parse(value: &str, base: &Path) -> Result<Policy> {
        Ok(match value.trim() {
            "auto" => Policy::Auto,
            "system" => Policy::System,
            "pinned" => Policy::Pinned,
            "" => bail!("an empty libbpf policy; use `auto`, `system`, `pinned` or a path to a libbpf source tree or tarball"),
            path => Policy::Source(base.join(path)),
        })
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::Auto => f.write_str("auto"),
            Policy::System => f.write_str("system"),
            Policy::Pinned => f.write_str("pinned"),
            Policy::Source(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The policy a command uses: `--libbpf` (relative paths from `cwd`), else the workspace's `[libbpf] policy`
/// (relative paths from the workspace root), else `auto`. `workspace` is its `[libbpf]` table, the root and the
/// manifest's path (for messages).
pub fn resolve_policy(
    flag: Option<&str>,
    cwd: &Path,
    workspace: Option<(&LibbpfConfig, &Path, &Path)>,
) -> Result<Policy> {
    if let Some((config, _, manifest)) = workspace {
        // The rest of the table is checked now too, so a mistake shows on any command, not only on a cold build.
        config
            .pinned()
            .with_context(|| format!("invalid `[libbpf]` in `{}`", manifest.display()))?;
    }
    if let Some(value) = flag {
        return Policy::parse(value, cwd).context("invalid `--libbpf`");
    }
    match workspace {
        Some((
            LibbpfConfig {
                policy: Some(value),
                ..
            },
            root,
            manifest,
        )) => Policy::parse(value, root)
            .with_context(|| format!("invalid `[libbpf] policy` in `{}`", manifest.display())),
        _ => Ok(Policy::Auto),
    }
}

/// The libbpf a build uses.
#[derive(Clone, Debug)]
pub struct Libbpf {
    pub version: Option<Version>,
    /// Put before the system include dirs (`-I`); holds `bpf/libbpf.h`. `None` for the system libbpf.
    pub include_dir: Option<PathBuf>,
    /// Linked instead of `-lbpf`. `None` for the system libbpf.
    pub static_library: Option<PathBuf>,
    /// Why this one, for `--check` and `-v` ("system libbpf 1.1 (…): policy auto, and it is new enough …").
    pub reason: String,
}

impl Libbpf {
    /// What the link line needs for libbpf.
    pub fn link_args(&self) -> Vec<String> {
        match &self.static_library {
            Some(archive) => vec![archive.display().to_string()],
            None => vec!["-lbpf".to_string()],
        }
    }
}

impl Libbpf {
    /// The libbpf the system's compilers find by themselves.
    pub fn system() -> Libbpf {
        let headers = toolchain::find_libbpf_headers();
        let version = headers.as_ref().and_then(|h| h.version);
        Libbpf {
            version,
            include_dir: None,
            static_library: None,
            reason: format!(
                "system libbpf {} (the SDK needs ≥ {}.{})",
                version.map_or("of unknown version".to_string(), short_version),
                MIN_LIBBPF.0,
                MIN_LIBBPF.1
            ),
        }
    }

    fn from_entry(entry: &Entry, version: Option<Version>, reason: String) -> Libbpf {
        Libbpf {
            version,
            include_dir: Some(entry.include_dir()),
            static_library: Some(entry.static_library()),
            reason,
        }
    }
}

/// What a build will use, decided from the policy, the system headers and the cache: no network, no building.
/// `--check` reports it; `select` then makes it real.
#[derive(Clone, Debug)]
pub enum Decision {
    System(Libbpf),
    /// The policy asks for the system libbpf, which is missing or too old: what to tell the user.
    SystemUnusable(String),
    /// The pinned release; `entry` exists when it is already built.
    Pinned {
        pinned: Pinned,
        entry: Entry,
        reason: String,
    },
    /// A libbpf given by path; `entry` exists when it is already built.
    Source {
        source: Source,
        entry: Entry,
        version: Option<Version>,
        reason: String,
    },
}

impl Decision {
    pub fn reason(&self) -> &str {
        match self {
            Decision::System(libbpf) => &libbpf.reason,
            Decision::SystemUnusable(why) => why,
            Decision::Pinned { reason, .. } | Decision::Source { reason, .. } => reason,
        }
    }

    /// The built cache entry this decision uses, when it needs one.
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            Decision::Pinned { entry, .. } | Decision::Source { entry, .. } => Some(entry),
            _ => None,
        }
    }

    /// The libbpf this decision stands for when nothing has to be fetched or built first.
    pub fn usable_now(&self) -> Option<Libbpf> {
        match self {
            Decision::System(libbpf) => Some(libbpf.clone()),
            Decision::SystemUnusable(_) => None,
            Decision::Pinned {
                pinned,
                entry,
                reason,
            } => entry
                .is_complete()
                .then(|| Libbpf::from_entry(entry, Some(pinned.version), reason.clone())),
            Decision::Source {
                entry,
                version,
                reason,
                ..
            } => entry.is_complete().then(|| {
                Libbpf::from_entry(
                    entry,
                    version.or_else(|| entry_version(entry)),
                    reason.clone(),
                )
            }),
        }
    }

    /// The URLs a build would try, when it must download.
    pub fn fetch_urls(&self) -> Option<&[String]> {
        match self {
            Decision::Pinned { pinned, entry, .. } if !entry.is_complete() => Some(&pinned.urls),
            _ => None,
        }
    }
}

/// Decides without side effects (reads the system headers, the cache, and a `--libbpf PATH` to hash it).
pub fn decide(config: &LibbpfConfig, policy: &Policy) -> Result<Decision> {
    let pinned = config.pinned()?;
    // Only needed for the pinned or a given libbpf: a machine without HOME can still use the system's.
    let cache = Cache::locate;
    let pinned_decision = |reason: String| -> Result<Decision> {
        Ok(Decision::Pinned {
            entry: cache()?.entry(&entry_key(&pinned.version.to_string(), &pinned.sha256)),
            pinned: pinned.clone(),
            reason,
        })
    };
    let minimum = format!("{}.{}", MIN_LIBBPF.0, MIN_LIBBPF.1);
    let headers = toolchain::find_libbpf_headers();
    let system_problem = system_problem(headers.as_ref());
    let system = |policy_note: &str| {
        let mut libbpf = Libbpf::system();
        let h = headers
            .as_ref()
            .expect("no problem means headers were found");
        libbpf.reason = format!(
            "system libbpf {} ({}/bpf): {policy_note}",
            libbpf.version.map_or("?".into(), short_version),
            h.include_dir.display()
        );
        Decision::System(libbpf)
    };
    Ok(match policy {
        Policy::Auto => match system_problem {
            None => system(&format!(
                "policy auto, and it is new enough for the SDK (≥ {minimum})"
            )),
            Some(problem) => pinned_decision(format!(
                "pinned libbpf {}: policy auto, and {problem}",
                pinned.version
            ))?,
        },
        Policy::System => match system_problem {
            None => system("policy system"),
            Some(problem) => Decision::SystemUnusable(format!(
                "the libbpf policy is `system`, but {problem}; {}, or build with `--libbpf pinned` (libbpf {} built \
                 from source and cached)",
                toolchain::install_hint("libbpf"),
                pinned.version
            )),
        },
        Policy::Pinned => pinned_decision(format!(
            "pinned libbpf {} ({}): policy pinned",
            pinned.version, pinned.origin
        ))?,
        Policy::Source(path) => {
            let source = Source::inspect(path)?;
            let (key, version) = source.cache_key(&pinned);
            let entry = cache()?.entry(&key);
            let version = version.or_else(|| entry_version(&entry));
            Decision::Source {
                reason: format!(
                    "libbpf {}from `{}`: policy path",
                    version.map_or(String::new(), |v| format!("{} ", short_version(v))),
                    source.path().display()
                ),
                source,
                entry,
                version,
            }
        }
    })
}

/// Why the system libbpf cannot serve the SDK, if it cannot: missing, unversioned, or older than `MIN_LIBBPF`.
fn system_problem(headers: Option<&toolchain::LibbpfHeaders>) -> Option<String> {
    let minimum = format!("{}.{}", MIN_LIBBPF.0, MIN_LIBBPF.1);
    match headers {
        None => Some("there is no system libbpf (bpf/libbpf.h not found)".to_string()),
        Some(h) => match h.version {
            None => Some(format!(
                "the system libbpf in {} declares no version (bpf/libbpf_version.h)",
                h.include_dir.display()
            )),
            Some(v) if (v.0, v.1) < MIN_LIBBPF => Some(format!(
                "the system libbpf {} is older than the SDK needs (≥ {minimum})",
                short_version(v)
            )),
            Some(_) => None,
        },
    }
}

/// Resolves `policy` with the workspace's `[libbpf]` table, fetching and building the pinned libbpf when it is
/// needed and not cached.
pub fn select(config: &LibbpfConfig, policy: &Policy, jobs: usize) -> Result<Libbpf> {
    select_with(decide(config, policy)?, jobs, None)
}

/// Another architecture's C compiler, which a libbpf for it is built with (`-b --arch` with a cross compiler).
pub struct CrossCompiler<'a> {
    /// `uname -m` name: part of the cache entry's key.
    pub arch: &'a str,
    pub cc: &'a crate::tool::Tool,
}

/// The libbpf the userland of another architecture links. `auto` is the pinned release built with the cross
/// compiler (this machine's libbpf is for this machine); `system` is the one the cross compiler finds itself
/// (`-lbpf`: Debian's `libbpf-dev:arm64`, or a sysroot's); a path is built with the cross compiler.
pub fn select_for_arch(
    config: &LibbpfConfig,
    policy: &Policy,
    jobs: usize,
    cross: &CrossCompiler,
) -> Result<Libbpf> {
    let policy = match policy {
        Policy::Auto => &Policy::Pinned,
        other => other,
    };
    let built_with = format!(
        ", built for {} with `{}`",
        cross.arch,
        cross.cc.program.display()
    );
    let decision = match decide(config, policy)? {
        Decision::System(_) | Decision::SystemUnusable(_) => {
            let mut libbpf = Libbpf::system();
            libbpf.reason = format!(
                "the {} libbpf the cross compiler `{}` finds (-lbpf): policy system",
                cross.arch,
                cross.cc.program.display()
            );
            return Ok(libbpf);
        }
        Decision::Pinned {
            pinned,
            entry,
            reason,
        } => Decision::Pinned {
            entry: entry.for_arch(cross.arch),
            reason: reason + &built_with,
            pinned,
        },
        Decision::Source {
            source,
            entry,
            version,
            reason,
        } => Decision::Source {
            entry: entry.for_arch(cross.arch),
            reason: reason + &built_with,
            source,
            version,
        },
    };
    select_with(decision, jobs, Some(cross.cc))
}

fn select_with(
    decision: Decision,
    jobs: usize,
    cross_cc: Option<&crate::tool::Tool>,
) -> Result<Libbpf> {
    match decision {
        Decision::System(libbpf) => Ok(libbpf),
        Decision::SystemUnusable(why) => bail!(why),
        Decision::Pinned {
            pinned,
            entry,
            reason,
        } => {
            if !entry.is_complete() {
                fetch_and_build(&pinned, &entry, jobs, cross_cc)?;
            }
            Ok(Libbpf::from_entry(&entry, Some(pinned.version), reason))
        }
        Decision::Source {
            source,
            entry,
            version,
            reason,
        } => {
            if !entry.is_complete() {
                build_source(&source, &entry, jobs, cross_cc)?;
            }
            let version = version.or_else(|| entry_version(&entry));
            match version {
                Some(v) if (v.0, v.1) >= MIN_LIBBPF => {}
                _ => bail!(
                    "the libbpf from `{}` is {}; the SDK needs ≥ {}.{}",
                    source.path().display(),
                    version.map_or("of unknown version".to_string(), |v| format!(
                        "version {}",
                        short_version(v)
                    )),
                    MIN_LIBBPF.0,
                    MIN_LIBBPF.1
                ),
            }
            Ok(Libbpf::from_entry(&entry, version, reason))
        }
    }
}

/// Downloads (unless a verified download is kept), unpacks and builds the pinned libbpf into `entry`, once
/// across concurrent builds.
fn fetch_and_build(
    pinned: &Pinned,
    entry: &Entry,
    jobs: usize,
    cross_cc: Option<&crate::tool::Tool>,
) -> Result<()> {
    let cache = Cache {
        dir: entry.dir.parent().expect("entries are in the cache").into(),
    };
    let _lock = cache.lock()?;
    if entry.is_complete() {
        // Another ebpf-probe built it while we waited for the lock.
        return Ok(());
    }
    let what = match cross_cc {
        Some(cc) => format!("libbpf {} with `{}`", pinned.version, cc.program.display()),
        None => format!("libbpf {}", pinned.version),
    };
    let version = pinned.version.to_string();
    let tarball = cache.download_path(&version, &pinned.sha256);
    let kept = tarball.is_file() && fetch::sha256_file(&tarball)? == pinned.sha256;
    if !kept {
        paths::remove_file_if_exists(&tarball)?;
        let downloaded = fetch::fetch_verified(&pinned.urls, &pinned.sha256, &tarball, &what)?;
        eprintln!(
            "{:>12} {what} ({} KiB in {:.1}s from {}, sha256 verified)",
            "Downloaded",
            downloaded.bytes / 1024,
            downloaded.elapsed.as_secs_f64(),
            downloaded.url
        );
    }
    let staging = cache.staging(&entry_name(entry))?;
    let unpack_started = Instant::now();
    let root = unpack::unpack_tarball(&tarball, &staging.source_dir()).inspect_err(|_| {
        // It matches the pin's hash yet cannot be unpacked (`..`, escaping links, not gzip): keeping it helps nobody.
        let _ = std::fs::remove_file(&tarball);
    })?;
    let unpacked_in = unpack_started.elapsed();
    build_into(staging, &root, entry, jobs, (&what, cross_cc))?;
    eprintln!(
        "{:>12} {what} in `{}` (unpacked in {:.1}s)",
        "Cached",
        entry.dir.display(),
        unpacked_in.as_secs_f64()
    );
    Ok(())
}

fn build_source(
    source: &Source,
    entry: &Entry,
    jobs: usize,
    cross_cc: Option<&crate::tool::Tool>,
) -> Result<()> {
    let cache = Cache {
        dir: entry.dir.parent().expect("entries are in the cache").into(),
    };
    let _lock = cache.lock()?;
    if entry.is_complete() {
        return Ok(());
    }
    let key = entry_name(entry);
    let what = match cross_cc {
        Some(cc) => format!(
            "libbpf from `{}` with `{}`",
            source.path().display(),
            cc.program.display()
        ),
        None => format!("libbpf from `{}`", source.path().display()),
    };
    let staging = cache.staging(&key)?;
    let root = match source {
        Source::Tarball { path, .. } => unpack::unpack_tarball(path, &staging.source_dir())?,
        // make writes only into OBJDIR and DESTDIR, so a read-only tree is fine.
        Source::Tree { root, .. } => root.clone(),
    };
    build_into(staging, &root, entry, jobs, (&what, cross_cc))?;
    eprintln!("{:>12} {what} in `{}`", "Cached", entry.dir.display());
    Ok(())
}

/// Builds the libbpf in `root` inside `staging`, then renames the result into place as `entry`. Any failure,
/// or an interruption, leaves no entry: the staging directory is removed (now, or by the next run that takes
/// the lock).
/// The cache key an entry is named by.
fn entry_name(entry: &Entry) -> String {
    entry
        .dir
        .file_name()
        .expect("entries have names")
        .to_string_lossy()
        .into_owned()
}

fn build_into(
    staging: Staging,
    root: &Path,
    entry: &Entry,
    jobs: usize,
    (what, cross_cc): (&str, Option<&crate::tool::Tool>),
) -> Result<()> {
    if entry.dir.exists() {
        // Incomplete (someone deleted part of it): rebuilt from scratch.
        paths::remove_dir_all_if_exists(&entry.dir)?;
    }
    let started = Instant::now();
    eprintln!(
        "{:>12} {what} (static libbpf.a and headers, make -j{jobs})",
        "Building"
    );
    make::build_static(
        root,
        &staging.object_dir(),
        &staging.output_dir(),
        jobs,
        (what, cross_cc),
    )?;
    staging.commit(entry)?;
    eprintln!(
        "{:>12} {what} in {:.1}s",
        "Built",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The release a built entry declares in `bpf/libbpf_version.h` (major and minor only).
fn entry_version(entry: &Entry) -> Option<Version> {
    std::fs::read_to_string(entry.include_dir().join("bpf/libbpf_version.h"))
        .ok()
        .and_then(|text| toolchain::parse_libbpf_version_header(&text))
}

/// Headers declare only major.minor: `1.1`, not a made-up `1.1.0`.
fn short_version(v: Version) -> String {
    format!("{}.{}", v.0, v.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_keywords_and_paths() {
        let base = Path::new("/work/ws");
        assert_eq!(Policy::parse("auto", base).unwrap(), Policy::Auto);
        assert_eq!(Policy::parse("system", base).unwrap(), Policy::System);
        assert_eq!(Policy::parse("pinned", base).unwrap(), Policy::Pinned);
        assert_eq!(
            Policy::parse("vendor/libbpf-1.7.0.tar.gz", base).unwrap(),
            Policy::Source(PathBuf::from("/work/ws/vendor/libbpf-1.7.0.tar.gz"))
        );
        assert_eq!(
            Policy::parse("/srv/libbpf", base).unwrap(),
            Policy::Source(PathBuf::from("/srv/libbpf"))
        );
        assert!(Policy::parse(" ", base).is_err());
    }

    #[test]
    fn auto_takes_the_system_libbpf_only_from_1_0_on() {
        let headers = |version| toolchain::LibbpfHeaders {
            include_dir: PathBuf::from("/usr/include"),
            version,
        };
        assert_eq!(system_problem(Some(&headers(Some(Version(1, 1, 0))))), None);
        assert_eq!(system_problem(Some(&headers(Some(Version(1, 0, 0))))), None);
        let old = system_problem(Some(&headers(Some(Version(0, 8, 0))))).unwrap();
        assert!(
            old.contains("0.8 is older than the SDK needs (≥ 1.0)"),
            "{old}"
        );
        assert!(system_problem(Some(&headers(None)))
            .unwrap()
            .contains("declares no version"));
        assert!(system_problem(None)
            .unwrap()
            .contains("bpf/libbpf.h not found"));
    }

    #[test]
    fn the_link_line_names_the_archive_or_lbpf() {
        let mut libbpf = Libbpf::system();
        assert_eq!(libbpf.link_args(), ["-lbpf"]);
        libbpf.static_library = Some(PathBuf::from("/c/libbpf/1.7.0-x/lib/libbpf.a"));
        assert_eq!(libbpf.link_args(), ["/c/libbpf/1.7.0-x/lib/libbpf.a"]);
    }
}
