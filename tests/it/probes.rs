//! The shipped probes and the SDK, end to end on the real kernel: build, run as root, trigger, read lines.

use std::time::Duration;

use crate::support::{
    assert_killprobe_sees_a_real_kill, program, require_kernel, RunningProbe, Workspace,
};

#[test]
fn killprobe_reports_a_real_kill_within_a_second() {
    if !require_kernel() {
        return;
    }
    let ws = Workspace::new().shipped_probe("killprobe").gen();
    ws.cmd(&["-b", "killprobe"]).success();
    assert_killprobe_sees_a_real_kill(&ws.path(".output/bin/killprobe"));
}

#[test]
fn dnsprobe_sees_a_child_resolve_localhost() {
    if !require_kernel() {
        return;
    }
    let ws = Workspace::new().shipped_probe("dnsprobe").gen();
    ws.cmd(&["-b", "dnsprobe"]).success();
    let mut probe = RunningProbe::start(&ws.path(".output/bin/dnsprobe"), &[]);

    let resolver = program("getent").args(["ahosts", "localhost"]).spawn();
    let prefix = format!("|dns_lookup|{}|getent|localhost|", resolver.id());
    // A minimal root may have no /etc/hosts entry for localhost; the lookup is still made and reported.
    let resolved = resolver.wait().output.status.success();
    let line = probe.wait_for_line(Duration::from_secs(2), |l| l.starts_with(&prefix));
    let Some(line) = line else {
        panic!(
            "expected a line starting {prefix:?}; the probe printed {:#?}",
            probe.seen
        );
    };
    // |dns_lookup|pid|comm|host|ret|latency_us| : ret 0 and a latency in microseconds.
    let values: Vec<&str> = line.trim_matches('|').split('|').collect();
    assert_eq!(values.len(), 6, "{line}");
    let ret: i32 = values[4]
        .parse()
        .unwrap_or_else(|_| panic!("ret is a number: {line}"));
    assert_eq!(
        ret == 0,
        resolved,
        "ret 0 exactly when getent resolved localhost: {line}"
    );
    assert!(
        values[5].parse::<u64>().is_ok(),
        "latency is a number: {line}"
    );
    assert!(probe.terminate().success());
}

#[test]
fn every_sdk_macro_that_this_kernel_runs_sees_the_right_values() {
    if !require_kernel() {
        return;
    }
    let ws = Workspace::new().fixture_probe("sdkprobe").gen();
    ws.cmd(&["-b"]).success();
    let run = ws.program(ws.path(".output/bin/sdkprobe")).success();
    for check in [
        "tracepoint ok",
        "raw_tracepoint ok",
        "uprobe ok",
        "uretprobe ok",
        "uprobe_ret ok",
    ] {
        run.stdout_contains(check);
    }
}

#[test]
fn kprobe_macros_pass_the_verifier() {
    if !require_kernel() {
        return;
    }
    let ws = Workspace::new().fixture_probe("sdkprobe").gen();
    ws.cmd(&["-b"]).success();
    assert!(crate::support::require(
        "bpffs at /sys/fs/bpf",
        std::path::Path::new("/sys/fs/bpf").is_dir()
    ));
    let pin_dir = format!("/sys/fs/bpf/ebpf-probe-test-{}", std::process::id());
    let loaded = program("bpftool")
        .args(["prog", "loadall"])
        .arg(ws.path(".output/sdkprobe/sdk_kprobe.bpf.o"))
        .arg(&pin_dir)
        .output();
    let pinned: Vec<String> = std::fs::read_dir(&pin_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&pin_dir);
    loaded.assert_success();
    // KPROBE, KRETPROBE and both halves of KPROBE_RET were verified and loaded.
    assert!(pinned.len() >= 4, "loaded programs: {pinned:?}");
}
