//! The `kernel` section (BTF, tracefs, bpffs) and the `attach` section: which attach kinds really work, via `attach`.

use std::path::Path;

use anyhow::Result;

use super::attach;
use super::fix::FixAction;
use super::Row;
use crate::kernel;
use crate::kernel::KERNEL_BTF;
use crate::libbpf::{Decision, Libbpf};

pub fn rows() -> Vec<Row> {
    let has_btf = Path::new(KERNEL_BTF).is_file();
    let btf = if has_btf {
        Row::new("kernel", "btf", false).pass(KERNEL_BTF)
    } else {
        Row::new("kernel", "btf", false).fail(
            format!("{KERNEL_BTF} missing (CONFIG_DEBUG_INFO_BTF off)"),
            "generate the header from the kernel's DWARF: `ebpf-probe -g --kernel-package` (or `-g --vmlinux FILE`, `-g --btf FILE`)",
        )
    };
    let route = Row::new("kernel", "gen route", false).pass(gen_route(has_btf));
    vec![
        btf,
        route,
        mount_row("tracefs", "tracefs", "/sys/kernel/tracing"),
        mount_row("bpffs", "bpf", "/sys/fs/bpf"),
    ]
}

/// Which way a plain `-g` makes this kernel's header.
fn gen_route(has_btf: bool) -> String {
    if has_btf {
        format!("-g dumps {KERNEL_BTF} with bpftool")
    } else {
        "-g cannot read this kernel's BTF: `-g --kernel-package` fetches its debuginfo vmlinux, pahole -J encodes its \
         DWARF as BTF, bpftool dumps that"
            .to_string()
    }
}

fn mount_row(name: &'static str, fstype: &'static str, point: &'static str) -> Row {
    let r = Row::new("kernel", name, false);
    if kernel::is_mounted(fstype, point) {
        r.pass(format!("mounted at {point}"))
    } else {
        r.fail(
            format!("not mounted at {point}"),
            format!("mount -t {fstype} {fstype} {point}"),
        )
        .with_action(FixAction::Mount { fstype, point })
    }
}

/// One row per attach kind, tested for real when we are root and the helper can be built; informational only.
pub fn attach_rows(
    helper_can_build: bool,
    helper_dir: &Path,
    kernel_release: &str,
    decision: &Result<Decision>,
) -> Vec<Row> {
    let untested = |reason: &str| -> Vec<Row> {
        attach::KINDS
            .iter()
            .map(|kind| Row::new("attach", *kind, false).fail(format!("not tested: {reason}"), ""))
            .collect()
    };
    if !kernel::is_root() {
        return untested("loading BPF needs root (run as root)");
    }
    if !helper_can_build {
        return untested("the build tools above are missing");
    }
    // The helper links the libbpf the probes will, when it is at hand; else the system's, if any.
    let libbpf = decision
        .as_ref()
        .ok()
        .and_then(Decision::usable_now)
        .unwrap_or_else(Libbpf::system);
    match attach::test_attach_kinds(helper_dir, kernel_release, &libbpf) {
        Ok(kinds) => kinds
            .into_iter()
            .map(|k| {
                let name = attach::KINDS
                    .iter()
                    .find(|n| **n == k.kind)
                    .copied()
                    .unwrap_or("?");
                if k.available {
                    Row::new("attach", name, false).pass(k.detail)
                } else {
                    Row::new("attach", name, false).fail(k.detail, "")
                }
            })
            .collect(),
        Err(e) => {
            // One row carries the whole error (with the failed command); the others point at it.
            let mut failed =
                untested("the attach-kind helper did not build or run (see the first row)");
            failed[0] =
                Row::new("attach", attach::KINDS[0], false).fail(format!("not tested: {e:#}"), "");
            failed
        }
    }
}
