//! Facts about the machine: CPU architecture and its BPF target name, kernel release and version.

use anyhow::{bail, Result};

/// The `__TARGET_ARCH_*` name libbpf's `bpf_tracing.h` expects for a `uname -m` machine name.
pub fn bpf_target_arch(machine: &str) -> Option<&'static str> {
    match machine {
        "x86_64" | "i686" | "i386" => Some("x86"),
        "aarch64" | "arm64" => Some("arm64"),
        "riscv64" => Some("riscv"),
        "s390x" => Some("s390"),
        "ppc64le" | "powerpc64" => Some("powerpc"),
        "loongarch64" => Some("loongarch"),
        "arm" | "armv7l" => Some("arm"),
        "mips" | "mips64" => Some("mips"),
        "sparc64" => Some("sparc"),
        _ => None,
    }
}

/// `uname -m` of this machine, as the kernel reports it.
pub fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/arch")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// `uname -r` of the running kernel.
pub fn release() -> Result<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_err(|e| {
        anyhow::anyhow!("failed to read the kernel release from /proc/sys/kernel/osrelease: {e}")
    })?;
    Ok(release.trim().to_string())
}

/// Major, minor, patch of a kernel release such as `6.18.44-fc-v669` or `5.10.0-60.18.0.50.oe2203.x86_64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    pub fn parse(release: &str) -> Result<KernelVersion> {
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>());
        let mut next = || numbers.next().and_then(|n| n.ok());
        match (next(), next()) {
            (Some(major), Some(minor)) => Ok(KernelVersion {
                major,
                minor,
                // "6.8" has no patch level; treat it as .0 as the kernel's own LINUX_VERSION_CODE does.
                patch: next().unwrap_or(0),
            }),
            _ => bail!("cannot read a kernel version from release `{release}` (expected e.g. 6.1.0-13-amd64)"),
        }
    }
}

impl std::fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The effective user id, from /proc/self/status (no libc call needed).
/// Where the running kernel exposes its BTF.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

pub fn is_root() -> bool {
    effective_uid() == Some(0)
}

/// Whether this process may load BPF programs: CAP_SYS_ADMIN, or CAP_BPF (kernel ≥ 5.8), in its effective set.
/// Root without capabilities (a container, `setpriv --bounding-set=-all`) may not.
pub fn can_load_bpf() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0 || caps & (1 << CAP_BPF) != 0)
}

/// Whether a filesystem of type `fstype` is mounted at `mount_point` (per /proc/mounts).
pub fn is_mounted(fstype: &str, mount_point: &str) -> bool {
    std::fs::read_to_string("/proc/mounts")
        .map(|mounts| {
            mounts.lines().any(|line| {
                let mut fields = line.split_whitespace();
                let (_, point, kind) = (fields.next(), fields.next(), fields.next());
                point == Some(mount_point) && kind == Some(fstype)
            })
        })
        .unwrap_or(false)
}

/// A kernel release names files (`linux_<release>.h`) and goes into `-DKER_RELEASE`: no `/`, no leading `.`,
/// no whitespace or quotes.
pub fn validate_kernel_release(release: &str) -> anyhow::Result<()> {
    if release.is_empty()
        || release.len() > 128
        || release.starts_with('.')
        || release
            .chars()
            .any(|c| c == '/' || c == '"' || c == '\\' || c.is_whitespace() || c.is_control())
    {
        anyhow::bail!(
            "`{release}` is not a usable kernel release name (it names the file linux_<release>.h)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_must_be_plain_names() {
        assert!(validate_kernel_release("6.1.0-28-amd64").is_ok());
        assert!(validate_kernel_release("5.10.0/../../../x").is_err());
        assert!(validate_kernel_release("..x").is_err());
        assert!(validate_kernel_release("a b").is_err());
        assert!(validate_kernel_release("").is_err());
    }

    #[test]
    fn arch_maps_to_bpf_target() {
        assert_eq!(bpf_target_arch("x86_64"), Some("x86"));
        assert_eq!(bpf_target_arch("aarch64"), Some("arm64"));
        assert_eq!(bpf_target_arch("riscv64"), Some("riscv"));
        assert_eq!(bpf_target_arch("vax"), None);
    }

    #[test]
    fn kernel_versions_parse_from_distro_releases() {
        let v = |major, minor, patch| KernelVersion {
            major,
            minor,
            patch,
        };
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v669").unwrap(),
            v(6, 18, 44)
        );
        assert_eq!(
            KernelVersion::parse("5.10.0-60.18.0.50.oe2203.x86_64").unwrap(),
            v(5, 10, 0)
        );
        assert_eq!(
            KernelVersion::parse("4.19.90-2003.4.0.0036.oe1").unwrap(),
            v(4, 19, 90)
        );
        assert_eq!(KernelVersion::parse("6.8").unwrap(), v(6, 8, 0));
        assert!(KernelVersion::parse("linux").is_err());
    }
}
