//! The pinned libbpf: fetched from a real HTTP server on 127.0.0.1, verified, unpacked, built and cached; every
//! fault leaves no cache entry and a retry after the fix succeeds; killprobe links it statically and runs.
//!
//! The tarball is made here from the libbpf sources the libbpf-sys crate carries in the cargo registry (the
//! Rust probes depend on it, so `cargo fetch` puts it there): no third-party source is committed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::http::{refused_url, Mode, Server};
use crate::support::{
    assert_killprobe_sees_a_real_kill, has_program, is_root, list_tree, program, require,
    require_build_tools, require_kernel, Run, Workspace,
};

const LIBBPF_SYS: &str = "libbpf-sys-1.7.0+v1.7.0";

/// A gzip'd tar and its sha256.
#[derive(Clone)]
struct Tarball {
    bytes: Arc<Vec<u8>>,
    sha256: String,
}

/// `libbpf/` of the libbpf-sys crate in the cargo registry.
pub fn libbpf_sys_sources() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    std::fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .flatten()
        .map(|index| index.path().join(LIBBPF_SYS).join("libbpf"))
        .find(|dir| dir.join("src/Makefile").is_file())
}

/// What every test here needs: the build tools, make, kernel BTF for `-g`, and the libbpf sources.
fn require_libbpf_build() -> bool {
    require_build_tools()
        && require("make", has_program("make"))
        && require(
            "kernel BTF at /sys/kernel/btf/vmlinux",
            Path::new("/sys/kernel/btf/vmlinux").exists(),
        )
        && require(
            &format!("the {LIBBPF_SYS} sources in the cargo registry (run `cargo fetch`)"),
            libbpf_sys_sources().is_some(),
        )
}

/// `libbpf-1.7.0/…` from the registry sources, then `extra` raw entries (names written as given).
fn make_tarball(extra: &[(&str, tar::EntryType, Option<&str>)]) -> Tarball {
    let sources = libbpf_sys_sources().expect("checked by require_libbpf_build");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.append_dir_all("libbpf-1.7.0", &sources).unwrap();
    for (name, kind, link) in extra {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(if *kind == tar::EntryType::Regular {
            4
        } else {
            0
        });
        if let Some(link) = link {
            header.set_link_name_literal(link).unwrap();
        }
        header.set_cksum();
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"pwn\n"
        } else {
            b""
        };
        builder.append(&header, data).unwrap();
    }
    let mut gz = builder.into_inner().unwrap();
    gz.flush().unwrap();
    let bytes = gz.finish().unwrap();
    Tarball {
        sha256: sha256_hex(&bytes),
        bytes: Arc::new(bytes),
    }
}

fn good_tarball() -> &'static Tarball {
    static TARBALL: OnceLock<Tarball> = OnceLock::new();
    TARBALL.get_or_init(|| make_tarball(&[]))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A workspace with killprobe whose `[libbpf]` pin is `url` + `sha256`, with its kernel header generated.
fn pinned_workspace(url: &str, sha256: &str) -> Workspace {
    Workspace::new()
        .shipped_probe("killprobe")
        .file("ebpf-probe.toml", &pin_config(url, sha256))
        .gen()
}

fn pin_config(url: &str, sha256: &str) -> String {
    format!("[libbpf]\nurl = \"{url}\"\nsha256 = \"{sha256}\"\n")
}

fn set_pin(ws: &Workspace, url: &str, sha256: &str) {
    std::fs::write(ws.path("ebpf-probe.toml"), pin_config(url, sha256)).unwrap();
}

/// `ebpf-probe -b killprobe --libbpf pinned` with `cache` as the libbpf cache and no proxy in the way.
fn build_pinned(ws: &Workspace, cache: &Path) -> Run {
    without_proxies(ws.cmd(&["-b", "killprobe", "--libbpf", "pinned"]))
        .env("EBPF_PROBE_CACHE_DIR", cache.to_str().unwrap())
}

fn without_proxies(mut run: Run) -> Run {
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        run = run.env_remove(var);
    }
    run
}

/// The cache entry for the pinned release with `sha256` built on this machine.
fn entry_dir(cache: &Path, sha256: &str) -> PathBuf {
    let machine = program("uname")
        .arg("-m")
        .success()
        .stdout()
        .trim()
        .to_string();
    cache
        .join("libbpf")
        .join(format!("1.7.0-{}-{machine}", &sha256[..16]))
}

/// After a failure the cache holds at most its lock file and empty directories: no entry, no download, no
/// staging directory, no partial file.
fn assert_no_partial_cache(cache: &Path, context: &str) {
    let leftovers: Vec<String> = list_tree(cache)
        .into_iter()
        .filter(|p| !matches!(p.as_str(), "libbpf" | "libbpf/.lock" | "libbpf/downloads"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "a failed fetch or build left {leftovers:?} in the cache\n{context}"
    );
}

fn assert_built(cache: &Path, sha256: &str) {
    let entry = entry_dir(cache, sha256);
    assert!(
        entry.join("lib/libbpf.a").is_file() && entry.join("include/bpf/libbpf.h").is_file(),
        "no complete entry at {}: {:?}",
        entry.display(),
        list_tree(cache)
    );
    let version = std::fs::read_to_string(entry.join("include/bpf/libbpf_version.h")).unwrap();
    assert!(version.contains("LIBBPF_MINOR_VERSION 7"), "{version}");
}

/// One cache built once for the tests that only read it: two builds started at the same time in two
/// workspaces, against one server. Also what `two_builds_at_once_…` checks.
struct SharedCache {
    cache: PathBuf,
    requests: usize,
    stderrs: Vec<String>,
    seconds: f64,
}

fn shared_cache() -> Option<&'static SharedCache> {
    static SHARED: OnceLock<Option<SharedCache>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if !require_libbpf_build() {
                return None;
            }
            let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libbpf-shared-cache");
            let _ = std::fs::remove_dir_all(&cache);
            let tarball = good_tarball();
            let server = Server::start(Mode::Serve(tarball.bytes.clone()));
            let url = server.url("libbpf-1.7.0.tar.gz");
            let workspaces = [
                pinned_workspace(&url, &tarball.sha256),
                pinned_workspace(&url, &tarball.sha256),
            ];
            let started = Instant::now();
            let builds: Vec<_> = workspaces
                .iter()
                .map(|ws| build_pinned(ws, &cache).spawn())
                .collect();
            let dones: Vec<_> = builds.into_iter().map(|b| b.wait()).collect();
            let seconds = started.elapsed().as_secs_f64();
            for done in &dones {
                done.assert_success();
            }
            let stderrs: Vec<String> = dones.iter().map(|d| d.stderr()).collect();
            Some(SharedCache {
                cache,
                requests: server.requests(),
                stderrs,
                seconds,
            })
        })
        .as_ref()
}

#[test]
fn two_builds_at_once_download_and_build_the_pinned_libbpf_once() {
    let Some(shared) = shared_cache() else {
        return;
    };
    let all = shared.stderrs.join("\n---\n");
    eprintln!(
        "two concurrent cold builds took {:.1}s\n{all}",
        shared.seconds
    );
    assert_eq!(shared.requests, 1, "one download for two builds\n{all}");
    assert_eq!(all.matches("Downloaded libbpf 1.7.0").count(), 1, "{all}");
    assert_eq!(all.matches("Built libbpf 1.7.0").count(), 1, "{all}");
    assert!(all.contains("sha256 verified"), "{all}");
    assert_built(&shared.cache, &good_tarball().sha256);
    let leftovers: Vec<String> = list_tree(&shared.cache.join("libbpf"))
        .into_iter()
        .filter(|p| p.contains(".tmp-") || p.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn killprobe_on_the_pinned_libbpf_links_no_libbpf_so_and_sees_a_real_kill() {
    let Some(shared) = shared_cache() else {
        return;
    };
    if !require_kernel() || !require("ldd", has_program("ldd")) {
        return;
    }
    let sha256 = &good_tarball().sha256;
    let entry = entry_dir(&shared.cache, sha256);
    // Nothing listens at the pin's URL: the build must come from the cache.
    let ws = pinned_workspace(&refused_url("libbpf-1.7.0.tar.gz"), sha256);
    let built = without_proxies(ws.cmd(&["-b", "killprobe", "--libbpf", "pinned", "-v"]))
        .env("EBPF_PROBE_CACHE_DIR", shared.cache.to_str().unwrap())
        .success();
    built.stderr_contains(&format!("-I{}", entry.join("include").display()));
    built.stderr_contains(&entry.join("lib/libbpf.a").display().to_string());
    built.stderr_contains("-DLIBBPF_VER_MINOR=7");

    let binary = ws.path(".output/bin/killprobe");
    let ldd = program("ldd").arg(&binary).success();
    assert!(
        !ldd.stdout().contains("libbpf.so"),
        "killprobe links libbpf statically\n{}",
        ldd.report()
    );

    assert_killprobe_sees_a_real_kill(&binary);
}

#[test]
fn a_second_build_with_the_network_gone_reuses_the_cache() {
    let Some(shared) = shared_cache() else {
        return;
    };
    let sha256 = &good_tarball().sha256;
    let ws = pinned_workspace(&refused_url("libbpf-1.7.0.tar.gz"), sha256);
    let started = Instant::now();
    let done = build_pinned(&ws, &shared.cache).success();
    eprintln!(
        "an offline build on the cached libbpf took {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let stderr = done.stderr();
    assert!(
        !stderr.contains("Downloading") && !stderr.contains("Building libbpf"),
        "the cache was not reused:\n{}",
        done.report()
    );
    assert!(ws.path(".output/bin/killprobe").is_file());
}

#[test]
fn check_reports_the_system_or_the_pinned_libbpf_and_why() {
    if !require(
        "a system libbpf ≥ 1.0 (libbpf-dev)",
        Path::new("/usr/include/bpf/libbpf_version.h").is_file(),
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let empty_cache = tmp.path().join("cache");
    let mirror = "http://127.0.0.1:9/libbpf-1.7.0.tar.gz";
    let ws = Workspace::new().file(
        "ebpf-probe.toml",
        &format!("[libbpf]\nmirrors = [\"{mirror}\"]\n"),
    );
    let check = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--check", "--json"];
        all.extend_from_slice(args);
        let done = ws
            .cmd(&all)
            .env("EBPF_PROBE_CACHE_DIR", empty_cache.to_str().unwrap())
            .output();
        serde_json::from_str(&done.stdout())
            .unwrap_or_else(|e| panic!("--check --json printed no JSON ({e})\n{}", done.report()))
    };

    let auto = check(&[]);
    let libbpf = &auto["libbpf"];
    assert_eq!(libbpf["policy"], "auto", "{libbpf}");
    assert_eq!(libbpf["kind"], "system", "{libbpf}");
    let version = libbpf["version"].as_str().unwrap().to_string();
    assert!(version.starts_with("1."), "{libbpf}");
    let reason = libbpf["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("system libbpf {version}"))
            && reason.contains("policy auto, and it is new enough for the SDK (≥ 1.0)"),
        "{reason}"
    );

    let pinned = check(&["--libbpf", "pinned"]);
    let libbpf = &pinned["libbpf"];
    assert_eq!(libbpf["kind"], "pinned", "{libbpf}");
    assert_eq!(libbpf["version"], "1.7.0", "{libbpf}");
    assert!(libbpf["cached"].is_null(), "{libbpf}");
    assert_eq!(libbpf["fetch_from"][0], mirror, "{libbpf}");
    assert!(
        libbpf["fetch_from"][1]
            .as_str()
            .unwrap()
            .starts_with("https://github.com/libbpf/libbpf/"),
        "upstream comes right after the workspace's mirror: {libbpf}"
    );
    let row = pinned["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "C libbpf")
        .expect("a `C libbpf` row");
    let value = row["value"].as_str().unwrap();
    assert!(
        value.contains("pinned libbpf 1.7.0")
            && value.contains("not built yet")
            && value.contains(mirror),
        "{value}"
    );

    // The workspace's own policy applies without the flag; the table says the same in words.
    std::fs::write(
        ws.path("ebpf-probe.toml"),
        "[libbpf]\npolicy = \"pinned\"\n",
    )
    .unwrap();
    let table = ws
        .cmd(&["--check"])
        .env("EBPF_PROBE_CACHE_DIR", empty_cache.to_str().unwrap())
        .output();
    table.stdout_contains(
        "C libbpf         -b uses the pinned libbpf 1.7.0 (repo-config/libbpf.toml): policy pinned; not built yet",
    );
    // No network was used: nothing was downloaded into the cache.
    assert!(!empty_cache.join("libbpf/downloads").exists());
}

#[test]
fn check_says_where_the_cached_pinned_libbpf_is() {
    let Some(shared) = shared_cache() else {
        return;
    };
    let sha256 = &good_tarball().sha256;
    let ws = Workspace::new().file(
        "ebpf-probe.toml",
        &pin_config("http://127.0.0.1:9/x", sha256),
    );
    let done = ws
        .cmd(&["--check", "--json", "--libbpf", "pinned"])
        .env("EBPF_PROBE_CACHE_DIR", shared.cache.to_str().unwrap())
        .output();
    let report: serde_json::Value = serde_json::from_str(&done.stdout()).unwrap();
    assert_eq!(
        report["libbpf"]["cached"],
        entry_dir(&shared.cache, sha256).display().to_string(),
        "{}",
        report["libbpf"]
    );
    assert_eq!(report["libbpf"]["fetch_from"], serde_json::json!([]));
}

/// A fault case: its own cache directory and a workspace pinned to `url`/`sha256`.
struct Case {
    _tmp: tempfile::TempDir,
    cache: PathBuf,
    ws: Workspace,
}

impl Case {
    fn new(url: &str, sha256: &str) -> Case {
        let tmp = tempfile::tempdir().unwrap();
        Case {
            cache: tmp.path().join("cache"),
            ws: pinned_workspace(url, sha256),
            _tmp: tmp,
        }
    }

    /// The build fails, says each of `expected`, and leaves no partial cache.
    fn fails_with(&self, expected: &[&str]) {
        let done = build_pinned(&self.ws, &self.cache).failure();
        for needle in expected {
            done.stderr_contains(needle);
        }
        assert_no_partial_cache(&self.cache, &done.report());
        assert!(!self.ws.path(".output/bin/killprobe").exists());
    }

    /// The build succeeds and the pinned release is cached.
    fn succeeds(&self, sha256: &str) {
        build_pinned(&self.ws, &self.cache).success();
        assert_built(&self.cache, sha256);
        assert!(self.ws.path(".output/bin/killprobe").is_file());
    }
}

#[test]
fn a_404_fails_clearly_and_a_retry_once_the_file_is_served_succeeds() {
    if !require_libbpf_build() {
        return;
    }
    let tarball = good_tarball();
    let server = Server::start(Mode::NotFound);
    let url = server.url("libbpf-1.7.0.tar.gz");
    let case = Case::new(&url, &tarball.sha256);
    case.fails_with(&[
        "could not download libbpf 1.7.0",
        &format!("{url}: HTTP 404 Not Found"),
        "mirrors = [",
        "--libbpf /path/to/the.tar.gz",
    ]);
    // A 404 is not retried.
    assert_eq!(server.requests(), 1);
    server.set_mode(Mode::Serve(tarball.bytes.clone()));
    case.succeeds(&tarball.sha256);
}

#[test]
fn a_refused_connection_fails_clearly_and_a_retry_with_a_server_succeeds() {
    if !require_libbpf_build() {
        return;
    }
    let tarball = good_tarball();
    let url = refused_url("libbpf-1.7.0.tar.gz");
    let case = Case::new(&url, &tarball.sha256);
    case.fails_with(&[
        &format!("{url}: could not connect"),
        "(3 attempts)",
        "trying again",
    ]);
    let server = Server::start(Mode::Serve(tarball.bytes.clone()));
    set_pin(
        &case.ws,
        &server.url("libbpf-1.7.0.tar.gz"),
        &tarball.sha256,
    );
    case.succeeds(&tarball.sha256);
}

#[test]
fn a_download_cut_short_fails_clearly_and_a_retry_with_the_whole_file_succeeds() {
    if !require_libbpf_build() {
        return;
    }
    let tarball = good_tarball();
    let server = Server::start(Mode::Truncate {
        body: tarball.bytes.clone(),
        sent: tarball.bytes.len() / 2,
    });
    let url = server.url("libbpf-1.7.0.tar.gz");
    let case = Case::new(&url, &tarball.sha256);
    case.fails_with(&[&format!("{url}: "), "broke off after", "(3 attempts)"]);
    assert_eq!(server.requests(), 3, "a cut download is retried");
    server.set_mode(Mode::Serve(tarball.bytes.clone()));
    case.succeeds(&tarball.sha256);
}

#[test]
fn a_wrong_sha256_fails_clearly_keeps_nothing_and_a_retry_with_the_right_one_succeeds() {
    if !require_libbpf_build() {
        return;
    }
    let tarball = good_tarball();
    let server = Server::start(Mode::Serve(tarball.bytes.clone()));
    let url = server.url("libbpf-1.7.0.tar.gz");
    let wrong = "0".repeat(64);
    let case = Case::new(&url, &wrong);
    case.fails_with(&[
        "sha256 mismatch",
        &format!("has sha256 {}", tarball.sha256),
        &format!("the pin says {wrong}"),
    ]);
    set_pin(&case.ws, &url, &tarball.sha256);
    case.succeeds(&tarball.sha256);
}

/// A tarball whose hash matches its pin but which tries to write outside: refused, nothing written outside,
/// the download discarded; pinning the good tarball then builds.
fn refused_tarball_case(evil: &[(&str, tar::EntryType, Option<&str>)], expected: &[&str]) {
    let bad = make_tarball(evil);
    let good = good_tarball();
    let server = Server::start(Mode::Serve(bad.bytes.clone()));
    let case = Case::new(&server.url("evil.tar.gz"), &bad.sha256);
    let mut all = vec!["refusing to unpack", "not a plain libbpf source tarball"];
    all.extend_from_slice(expected);
    case.fails_with(&all);
    let escaped: Vec<String> = list_tree(case._tmp.path())
        .into_iter()
        .filter(|p| p.ends_with("escaped"))
        .collect();
    assert!(
        escaped.is_empty(),
        "written outside the target: {escaped:?}"
    );
    server.set_mode(Mode::Serve(good.bytes.clone()));
    set_pin(&case.ws, &server.url("good.tar.gz"), &good.sha256);
    case.succeeds(&good.sha256);
}

#[test]
fn a_tarball_with_dotdot_entries_is_refused_and_a_retry_with_a_clean_one_succeeds() {
    if !require_libbpf_build() {
        return;
    }
    // From the staging `src/`, four levels up is the cache directory itself.
    refused_tarball_case(
        &[(
            "libbpf-1.7.0/../../../../escaped",
            tar::EntryType::Regular,
            None,
        )],
        &["`libbpf-1.7.0/../../../../escaped` has a `..` component"],
    );
}

#[test]
fn a_tarball_with_an_escaping_symlink_is_refused_and_a_retry_with_a_clean_one_succeeds() {
    if !require_libbpf_build() {
        return;
    }
    refused_tarball_case(
        &[
            (
                "libbpf-1.7.0/src/out",
                tar::EntryType::Symlink,
                Some("../../../../.."),
            ),
            (
                "libbpf-1.7.0/src/out/escaped",
                tar::EntryType::Regular,
                None,
            ),
        ],
        &["symlink `libbpf-1.7.0/src/out` → `../../../../..` points outside the unpacked tree"],
    );
}

#[test]
fn a_tarball_whose_links_chain_out_through_a_link_to_dot_is_refused_and_a_retry_with_a_clean_one_succeeds(
) {
    if !require_libbpf_build() {
        return;
    }
    // Issue 11's attack: `src/a -> .` makes `src/a/a/…/a` (20 of them) the `src` directory itself, so a link
    // there with 22 `..` reads as landing on the top of the tree yet climbs to `/`; libbpf's Makefile then
    // installed `src/usdt.bpf.h`, a link through it, as the cache's `include/bpf/usdt.bpf.h`: `/etc/shadow`.
    let deep = format!("libbpf-1.7.0/src/{}esc", "a/".repeat(20));
    let up = "../".repeat(22);
    let through = format!("{}esc/etc/shadow", "a/".repeat(20));
    refused_tarball_case(
        &[
            ("libbpf-1.7.0/src/a", tar::EntryType::Symlink, Some(".")),
            (&deep, tar::EntryType::Symlink, Some(&up)),
            (
                "libbpf-1.7.0/src/usdt.bpf.h",
                tar::EntryType::Symlink,
                Some(&through),
            ),
        ],
        &[&format!(
            "`{deep}` goes through the symlink `libbpf-1.7.0/src/a` unpacked before it"
        )],
    );
}

/// A `.tar.gz` of `libbpf-1.7.0/src/Makefile` and `libbpf-1.7.0/zeros`, `mib` MiB of zeros, built without
/// holding them: a deflate chunk of 1 MiB of zeros that ends on a sync flush stands alone, so it is repeated.
/// The CRC and length are right: gunzip takes it.
fn gzip_bomb(mib: u64) -> Tarball {
    fn deflate(data: &[u8], last: bool) -> Vec<u8> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        if last {
            return encoder.finish().unwrap();
        }
        encoder.flush().unwrap();
        std::mem::take(encoder.get_mut())
    }
    let mut prefix = Vec::new();
    for (path, data, size) in [
        ("libbpf-1.7.0/src/Makefile", &b"all:\n"[..], 5),
        ("libbpf-1.7.0/zeros", &b""[..], mib << 20),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_path(path).unwrap();
        header.set_mode(0o644);
        header.set_size(size);
        header.set_cksum();
        prefix.extend_from_slice(header.as_bytes());
        prefix.extend_from_slice(data);
        prefix.resize(prefix.len().div_ceil(512) * 512, 0);
    }
    let zeros = vec![0u8; 1 << 20];
    let end_of_archive = [0u8; 1024];
    let mut crc = flate2::Crc::new();
    crc.update(&prefix);
    let mut zeros_crc = flate2::Crc::new();
    zeros_crc.update(&zeros);
    for _ in 0..mib {
        crc.combine(&zeros_crc);
    }
    crc.update(&end_of_archive);
    let mut bytes = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    bytes.extend(deflate(&prefix, false));
    let chunk = deflate(&zeros, false);
    for _ in 0..mib {
        bytes.extend_from_slice(&chunk);
    }
    bytes.extend(deflate(&end_of_archive, true));
    bytes.extend(crc.sum().to_le_bytes());
    bytes.extend(crc.amount().to_le_bytes());
    Tarball {
        sha256: sha256_hex(&bytes),
        bytes: Arc::new(bytes),
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_size_limit_and_leaves_nothing_in_the_cache() {
    if !require_libbpf_build() {
        return;
    }
    let bomb = gzip_bomb(3 << 10);
    assert!(bomb.bytes.len() < 4 << 20, "{} bytes", bomb.bytes.len());
    let server = Server::start(Mode::Serve(bomb.bytes.clone()));
    let case = Case::new(&server.url("libbpf-bomb.tar.gz"), &bomb.sha256);
    let started = Instant::now();
    case.fails_with(&[
        "refusing to unpack `",
        "downloads/libbpf-1.7.0-",
        "it unpacks to more than 256 MiB, the limit for a libbpf source tarball",
        "`libbpf-1.7.0/zeros` alone is 3072 MiB",
        "nothing from it was kept",
    ]);
    // Refused at the entry's header: the 3 GiB are never inflated.
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

/// A read-only tmpfs mounted over a directory (root ignores permission bits), unmounted on drop.
struct ReadOnlyMount {
    dir: PathBuf,
    mounted: bool,
}

impl ReadOnlyMount {
    fn new(dir: &Path) -> ReadOnlyMount {
        std::fs::create_dir_all(dir).unwrap();
        program("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
            .arg(dir)
            .success();
        ReadOnlyMount {
            dir: dir.to_path_buf(),
            mounted: true,
        }
    }

    fn unmount(&mut self) {
        if self.mounted {
            program("umount").arg(&self.dir).success();
            self.mounted = false;
        }
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = program("umount").arg(&self.dir).try_output();
        }
    }
}

#[test]
fn a_read_only_cache_fails_clearly_and_a_retry_once_it_is_writable_succeeds() {
    if !require_libbpf_build() || !require("root (to mount a read-only tmpfs)", is_root()) {
        return;
    }
    let tarball = good_tarball();
    let server = Server::start(Mode::Serve(tarball.bytes.clone()));
    let case = Case::new(&server.url("libbpf-1.7.0.tar.gz"), &tarball.sha256);
    let mut mount = ReadOnlyMount::new(&case.cache);
    let done = build_pinned(&case.ws, &case.cache).failure();
    done.stderr_contains(&format!(
        "the libbpf cache `{}` is not writable",
        case.cache.join("libbpf").display()
    ));
    done.stderr_contains("Read-only file system");
    done.stderr_contains("set EBPF_PROBE_CACHE_DIR to a writable directory");
    assert_eq!(
        server.requests(),
        0,
        "nothing is downloaded into an unwritable cache"
    );
    assert!(list_tree(&case.cache).is_empty());
    mount.unmount();
    case.succeeds(&tarball.sha256);
}

#[test]
fn the_policy_system_fails_clearly_when_the_system_libbpf_cannot_serve() {
    // Only checkable where the system has no usable libbpf; elsewhere `system` must simply work.
    let ws = Workspace::new().file("ebpf-probe.toml", "[libbpf]\npolicy = \"system\"\n");
    let done = ws.cmd(&["--check", "--json"]).output();
    let report: serde_json::Value = match serde_json::from_str(&done.stdout()) {
        Ok(r) => r,
        Err(e) => panic!("no JSON ({e})\n{}", done.report()),
    };
    assert_eq!(report["libbpf"]["policy"], "system");
    if Path::new("/usr/include/bpf/libbpf.h").is_file() {
        assert_eq!(report["libbpf"]["kind"], "system", "{}", report["libbpf"]);
    } else {
        assert_eq!(report["libbpf"]["kind"], "none", "{}", report["libbpf"]);
        assert!(report["libbpf"]["reason"]
            .as_str()
            .unwrap()
            .contains("--libbpf pinned"));
    }
}

#[test]
fn a_bad_libbpf_setting_is_an_error_naming_it() {
    let ws = Workspace::new().file("ebpf-probe.toml", "[libbpf]\nurl = \"http://x/y.tar.gz\"\n");
    ws.cmd(&["-b", "--libbpf", "pinned"])
        .failure()
        .stderr_contains("invalid `[libbpf]` in")
        .stderr_contains("replace the pinned tarball together; give both or neither");
    let ws = Workspace::new().file("ebpf-probe.toml", "[libbpf]\npolicy = \"pined\"\n");
    // An unknown word is a path, and a missing path says what the policy can be.
    let done = ws.cmd(&["--check", "--json"]).output();
    assert!(
        done.stdout()
            .contains("pined` does not exist; the libbpf policy is `auto`, `system`, `pinned`"),
        "{}",
        done.report()
    );
}
