//! The `system` section: the machine's architecture and its BPF target, the distro, the kernel release.

use super::{Host, Row};
use crate::kernel::{self, KernelVersion};

pub fn rows(host: &Host) -> Vec<Row> {
    let machine = kernel::machine();
    let arch = match kernel::bpf_target_arch(&machine) {
        Some(target) => {
            Row::new("system", "arch", true).pass(format!("{machine} (BPF target {target})"))
        }
        None => Row::new("system", "arch", true)
            .fail(machine, "no BPF target is known for this architecture"),
    };
    let os_name = if host.os.pretty_name.is_empty() {
        host.os.id.clone()
    } else {
        host.os.pretty_name.clone()
    };
    let os = match &host.family {
        Some(f) => Row::new("system", "os", false)
            .pass(format!("{os_name} ({} family, {})", f.name, f.manager)),
        None => Row::new("system", "os", false).fail(
            if os_name.is_empty() {
                "unknown (no /etc/os-release)".to_string()
            } else {
                os_name
            },
            "add this distro's package names to repo-config/packages.toml to enable --fix",
        ),
    };
    let release = &host.kernel_release;
    let kernel = match KernelVersion::parse(release) {
        Ok(v) => Row::new("system", "kernel", true).pass(format!("{release} (version {v})")),
        Err(e) => Row::new("system", "kernel", true).fail(release.clone(), e.to_string()),
    };
    vec![arch, os, kernel]
}
