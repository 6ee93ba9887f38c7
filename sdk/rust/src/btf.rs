//! Which kernel BTF a skeleton is opened with (libbpf's `btf_custom_path`), as the C SDK's `LOAD` decides:
//! a minimized BTF from `ebpf-probe btfgen` on kernels without `/sys/kernel/btf/vmlinux`.

use std::path::{Path, PathBuf};

/// Where `ebpf-probe install` puts minimized BTF files (gala-gopher's directory); `EBPF_PROBE_BTF_DIR` overrides it.
pub const DEFAULT_BTF_DIR: &str = "/opt/gala-gopher/btf";

const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The BTF file libbpf resolves CO-RE relocations against, or `None` for libbpf's own search:
/// - `$EBPF_PROBE_BTF_FILE` when set and not empty: that file, always (to test a minimized file, or use one
///   made by hand);
/// - else, when `/sys/kernel/btf/vmlinux` is missing: `$EBPF_PROBE_BTF_DIR/<uname -r>.btf`
///   ([`DEFAULT_BTF_DIR`] when the variable is unset), if it exists.
///
/// Which file is used, or that the expected one is missing, is said on stderr, naming `skeleton`.
pub fn btf_custom_path(skeleton: &str) -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(file) = env("EBPF_PROBE_BTF_FILE") {
        let file = PathBuf::from(file);
        eprintln!(
            "{skeleton}: using kernel BTF {} (EBPF_PROBE_BTF_FILE)",
            file.display()
        );
        return Some(file);
    }
    if Path::new(KERNEL_BTF).exists() {
        return None;
    }
    let dir = env("EBPF_PROBE_BTF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BTF_DIR));
    let file = dir.join(format!("{}.btf", kernel_release()?));
    if !file.is_file() {
        eprintln!(
            "{skeleton}: this kernel has no {KERNEL_BTF} and {} is missing; make it with \
             `ebpf-probe btfgen --kernel <this kernel's BTF>` and install it, or set EBPF_PROBE_BTF_DIR or \
             EBPF_PROBE_BTF_FILE",
            file.display()
        );
        return None;
    }
    eprintln!(
        "{skeleton}: using kernel BTF {} (this kernel has no {KERNEL_BTF})",
        file.display()
    );
    Some(file)
}

/// `uname -r`.
fn kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
}
