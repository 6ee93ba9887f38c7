//! Downloading the pinned tarball: each URL in order (a few attempts each for transient failures), streamed to a
//! temp file while hashing, accepted only when the sha256 matches, then renamed into place.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::paths;

/// Waiting for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waiting for the response headers, and then for each read of the body: a stalled server fails, a slow one not.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per URL for failures that may pass (connection refused or reset, timeouts, 5xx); then the next URL.
const ATTEMPTS: u32 = 3;
/// Pause before the second attempt; doubled before each later one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// What one download delivered.
pub struct Downloaded {
    pub url: String,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Why one attempt failed, and whether trying the same URL again could help.
enum Failure {
    Transient(String),
    Permanent(String),
    /// Our side (the temp file cannot be written): no URL will do better, so stop.
    Local(anyhow::Error),
}

/// Downloads the first of `urls` whose file has `sha256` to `dest` (a temp file beside it, renamed when
/// verified). `what` names it in messages ("libbpf 1.7.0"). The error lists every URL with its failure.
pub fn fetch_verified(
    urls: &[String],
    sha256: &str,
    dest: &Path,
    what: &str,
) -> Result<Downloaded> {
    if urls.is_empty() {
        bail!("no URL to download {what} from; add one to `[libbpf] mirrors` in ebpf-probe.toml");
    }
    // Proxies come from HTTPS_PROXY/HTTP_PROXY/ALL_PROXY and NO_PROXY (reqwest's default).
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(READ_TIMEOUT)
        .user_agent(concat!("ebpf-probe/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("failed to set up the HTTP client")?;
    let temp = dest.with_file_name(format!(
        ".{}.{}.part",
        dest.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut failures = Vec::new();
    for url in urls {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let failure = loop {
            let started = Instant::now();
            match download_once(&client, url, sha256, &temp, what) {
                Ok(bytes) => {
                    paths::rename(&temp, dest)?;
                    return Ok(Downloaded {
                        url: url.clone(),
                        bytes,
                        elapsed: started.elapsed(),
                    });
                }
                Err(failure) => {
                    let _ = std::fs::remove_file(&temp);
                    match failure {
                        Failure::Local(e) => return Err(e),
                        Failure::Transient(why) if attempt < ATTEMPTS => {
                            eprintln!(
                                "{:>12} {url}: {why}; trying again in {:.1}s (attempt {} of {ATTEMPTS})",
                                "Warning",
                                backoff.as_secs_f64(),
                                attempt + 1
                            );
                            std::thread::sleep(backoff);
                            backoff *= 2;
                            attempt += 1;
                        }
                        Failure::Transient(why) => {
                            break format!("{why} ({attempt} attempts)");
                        }
                        Failure::Permanent(why) => break why,
                    }
                }
            }
        };
        failures.push(format!("  {url}: {failure}"));
    }
    bail!(
        "could not download {what} (sha256 {sha256}) from any of its {} URL{}:\n{}\n\
         configure a mirror that serves this file in ebpf-probe.toml (`[libbpf]` `mirrors = [\"http://HOST/libbpf.tar.gz\"]`), \
         or download it on another machine and build with `--libbpf /path/to/the.tar.gz`",
        urls.len(),
        if urls.len() == 1 { "" } else { "s" },
        failures.join("\n")
    )
}

fn download_once(
    client: &reqwest::blocking::Client,
    url: &str,
    sha256: &str,
    temp: &Path,
    what: &str,
) -> std::result::Result<u64, Failure> {
    let mut response = client
        .get(url)
        .send()
        .map_err(|e| Failure::Transient(describe_request_error(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let why = format!("HTTP {status}");
        return Err(
            if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                Failure::Transient(why)
            } else {
                Failure::Permanent(why)
            },
        );
    }
    let total = response.content_length();
    let progress = progress_bar(total, what, url);
    let mut file = File::create(temp).map_err(|e| {
        Failure::Local(anyhow!(
            "failed to create `{}`: {e}; make the cache directory writable or set {}",
            temp.display(),
            super::cache::CACHE_DIR_ENV
        ))
    })?;
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match response.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                progress.abandon();
                let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
                return Err(Failure::Transient(format!(
                    "the download broke off after {received}{of} bytes: {}",
                    describe_error_chain(&e)
                )));
            }
        };
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n])
            .map_err(|e| Failure::Local(anyhow!("failed to write `{}`: {e}", temp.display())))?;
        received += n as u64;
        progress.set_position(received);
    }
    progress.finish_and_clear();
    if let Some(total) = total.filter(|t| *t != received) {
        return Err(Failure::Transient(format!(
            "the download ended after {received} of {total} bytes"
        )));
    }
    file.sync_all()
        .map_err(|e| Failure::Local(anyhow!("failed to write `{}`: {e}", temp.display())))?;
    let actual = hex(&hasher.finalize());
    if actual != sha256 {
        return Err(Failure::Permanent(format!(
            "sha256 mismatch: the file served ({received} bytes) has sha256 {actual}, the pin says {sha256}; \
             the file was discarded (a wrong file on the server, or a wrong `sha256` in the pin)"
        )));
    }
    Ok(received)
}

/// A bar on a terminal; nothing elsewhere (logs get the one-line "Downloading" message instead).
fn progress_bar(total: Option<u64>, what: &str, url: &str) -> indicatif::ProgressBar {
    eprintln!("{:>12} {what} from {url}", "Downloading");
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::no_length(),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix("Fetching");
    bar
}

/// reqwest says "error sending request for url (…)"; what helps is the cause under it (refused, DNS, timeout).
fn describe_request_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let causes = describe_error_chain(error);
    format!("{kind}: {causes}")
}

fn describe_error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        // reqwest's own layer repeats the URL we print anyway.
        if !text.starts_with("error sending request for url")
            && !text.starts_with("error decoding response body")
            && !parts.iter().any(|p| p.contains(&text))
        {
            parts.push(text);
        }
        current = e.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of a file on disk, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    paths::sha256_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
