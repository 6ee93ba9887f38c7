//! The workspace-level safety rules of a tool that runs as root: whose configuration is adopted, which user files
//! `-g` keeps, what dead processes left behind, and environment values that could point outside the workspace.

use std::os::unix::fs::PermissionsExt;

use crate::support::{
    is_root, list_tree, program, require, require_build_tools, require_kernel, Workspace,
};

/// A user other than root and us, as another account on a shared machine would be.
const OTHER_UID: &str = "4242";

fn chown(ws: &Workspace, relative: &str) {
    program("chown")
        .arg(OTHER_UID)
        .arg(ws.path(relative))
        .success();
}

#[test]
fn a_workspace_another_user_owns_is_refused_until_it_is_trusted() {
    if !require("root (to give files to another user)", is_root()) {
        return;
    }
    let ws = Workspace::new();
    chown(&ws, "ebpf-probe.toml");
    ws.cmd(&["check-meta"])
        .failure()
        .stderr_contains("workspace file `")
        .stderr_contains(&format!(
            "belongs to uid {OTHER_UID}, not to you (uid 0) or root"
        ))
        .stderr_contains("EBPF_PROBE_SAFE_DIRECTORIES=");
    // Trusted by name, or with `*`: adopted.
    let root = ws.root().canonicalize().unwrap();
    ws.cmd(&["check-meta"])
        .env("EBPF_PROBE_SAFE_DIRECTORIES", root.as_os_str())
        .success();
    ws.cmd(&["check-meta"])
        .env("EBPF_PROBE_SAFE_DIRECTORIES", "/elsewhere:*")
        .success();
}

#[test]
fn a_probe_toml_or_libbpf_tarball_another_user_planted_is_refused() {
    if !require("root (to give files to another user)", is_root()) {
        return;
    }
    let ws = Workspace::new()
        .shipped_probe("killprobe")
        .file("probes/killprobe/probe.toml", "clang_flags = [\"-O2\"]\n");
    chown(&ws, "probes/killprobe/probe.toml");
    ws.cmd(&["check-meta", "killprobe"])
        .failure()
        .stderr_contains("probe `killprobe`: probe settings `")
        .stderr_contains(&format!("belongs to uid {OTHER_UID}"));

    let ws = Workspace::new()
        .file("ebpf-probe.toml", "[libbpf]\npolicy = \"evil.tar.gz\"\n")
        .file("evil.tar.gz", "not even a tarball");
    chown(&ws, "evil.tar.gz");
    ws.cmd(&["check-meta"])
        .failure()
        .stderr_contains("the libbpf source that ebpf-probe.toml names `")
        .stderr_contains(&format!("belongs to uid {OTHER_UID}"));
}

#[test]
fn one_broken_probe_toml_does_not_stop_commands_on_another_probe() {
    let ws = Workspace::new()
        .shipped_probe("killprobe")
        .file("probes/other/other.bpf.c", "int x;\n")
        .file("probes/other/probe.toml", "binray = \"typo\"\n");
    ws.cmd(&["check-meta", "killprobe"]).success();
    ws.cmd(&["check-meta", "other"])
        .failure()
        .stderr_contains("probe `other`: invalid probe settings in `")
        .stderr_contains("unknown field `binray`");
}

#[test]
fn gen_keeps_a_vmlinux_h_that_is_a_regular_file_and_cleans_what_a_dead_gen_left() {
    if !require_kernel() {
        return;
    }
    let dispatcher = "/* mine: picks a header per arch */\n#include \"vmlinux_x86_64.h\"\n";
    let ws = Workspace::new()
        .file("include/vmlinux.h", dispatcher)
        // What a `-g` killed mid-write left (pid 0 is never alive).
        .file("include/.linux_9.9.h.tmp.0.aBcD1234", "half a header");
    let done = ws.cmd(&["-g"]).success();
    done.stderr_contains("note: kept `")
        .stderr_contains("a regular file rather than our link");
    assert_eq!(
        std::fs::read_to_string(ws.path("include/vmlinux.h")).unwrap(),
        dispatcher
    );
    let release = String::from_utf8(program("uname").arg("-r").success().output.stdout).unwrap();
    assert!(ws
        .path(&format!("include/linux_{}.h", release.trim()))
        .is_file());
    let left: Vec<String> = list_tree(&ws.path("include"))
        .into_iter()
        .filter(|p| p.contains(".tmp."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn new_cleans_what_a_dead_new_left() {
    let ws = Workspace::new().file("probes/.stale.tmp.0.xYz/half.c", "int half;\n");
    ws.cmd(&["new", "fresh"]).success();
    assert!(!ws.path("probes/.stale.tmp.0.xYz").exists());
    assert!(ws.path("probes/fresh/fresh.bpf.c").is_file());
    let mode = std::fs::metadata(ws.path("probes/fresh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "a new probe dir is an ordinary one");
}

#[test]
fn vmlinux_ver_cannot_point_outside_the_workspace() {
    let ws = Workspace::new().shipped_probe("killprobe");
    let outside = tempfile::tempdir().unwrap();
    let sneaky = format!("5.10.0/../../../../..{}/x", outside.path().display());
    ws.cmd(&["-b"])
        .env("VMLINUX_VER", &sneaky)
        .failure()
        .stderr_contains("invalid VMLINUX_VER")
        .stderr_contains("is not a usable kernel release name");
    assert!(list_tree(outside.path()).is_empty());
    assert!(!ws.path("include/vmlinux.h").exists());
}

#[test]
fn a_marker_that_is_a_directory_says_so() {
    let ws = Workspace::new();
    std::fs::remove_file(ws.path("ebpf-probe.toml")).unwrap();
    std::fs::create_dir(ws.path("ebpf-probe.toml")).unwrap();
    ws.cmd(&["check-meta"])
        .failure()
        .stderr_contains("is a directory; a workspace marker must be a file");
}

#[test]
fn gen_refuses_a_btf_that_is_not_a_regular_file() {
    let ws = Workspace::new();
    program("mkfifo").arg(ws.path("pipe.btf")).success();
    let pipe = ws.path("pipe.btf");
    ws.cmd(&[
        "gen",
        "--btf",
        pipe.to_str().unwrap(),
        "--kernel-release",
        "6.1.0",
    ])
    .failure()
    .stderr_contains("is not a regular file (a FIFO, device or directory)");
}

#[test]
fn a_home_that_does_not_exist_is_not_created_for_the_cache() {
    // A kernel header, so the build gets as far as choosing libbpf.
    let ws = Workspace::new()
        .shipped_probe("killprobe")
        .file("include/vmlinux.h", "/* a header */\n");
    let home = ws.path("no-such-home");
    ws.cmd(&["--libbpf", "pinned", "-b"])
        .env("HOME", &home)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("EBPF_PROBE_CACHE_DIR")
        .failure()
        .stderr_contains("is not a directory; set EBPF_PROBE_CACHE_DIR=");
    assert!(!home.exists());
}

#[test]
fn extend_probes_naming_no_probe_is_a_warning_and_build_opts_keep_quotes() {
    if !require_build_tools() || !require_kernel() {
        return;
    }
    let ws = Workspace::new().shipped_probe("killprobe").gen();
    ws.cmd(&["-v", "-b"])
        .env("EXTEND_PROBES", "nosuchprobe")
        .env("BUILD_OPTS", "-DMSG=\"a b\" -DTWO")
        .success()
        .stderr_contains(
            "warning: EXTEND_PROBES names `nosuchprobe`, which is not a probe here; ignored",
        )
        .stderr_contains("'-DMSG=a b' -DTWO");
}

#[test]
fn new_refuses_an_attach_target_this_machine_does_not_have_unless_forced() {
    if !require_kernel() {
        return;
    }
    let ws = Workspace::new();
    ws.cmd(&[
        "new",
        "typo",
        "--attach",
        "tracepoint:sched/sched_process_exc",
    ])
    .failure()
    .stderr_contains("`--attach tracepoint:sched/sched_process_exc` cannot attach on this machine")
    .stderr_contains(
        "the kernel has no tracepoint `sched/sched_process_exc`; nearest: `sched_process_exec`",
    )
    .stderr_contains("--force");
    ws.cmd(&["new", "nobin", "--attach", "uprobe:/no/such/binary:main"])
        .failure()
        .stderr_contains("there is no binary `/no/such/binary` on this machine");
    ws.cmd(&["new", "nosym", "--attach", "uprobe:libc.so.6:getpidd"])
        .failure()
        .stderr_contains("has no symbol `getpidd`; nearest: `getpid`");
    ws.cmd(&["new", "nofn", "--attach", "kprobe:tcp_sendmsgg"])
        .failure()
        .stderr_contains("no function `tcp_sendmsgg`; nearest: `tcp_sendmsg`");
    assert!(!ws.path("probes/typo").exists() && !ws.path("probes/nobin").exists());
    // Meant for another machine: written, with the reasons as a warning.
    ws.cmd(&[
        "new",
        "typo",
        "--attach",
        "tracepoint:sched/sched_process_exc",
        "--force",
    ])
    .success()
    .stderr_contains("writing the probe anyway (--force)");
    assert!(ws.path("probes/typo/typo.bpf.c").is_file());
    // A real one: no warning.
    let real = ws
        .cmd(&[
            "new",
            "real",
            "--attach",
            "tracepoint:sched/sched_process_exec",
        ])
        .success();
    assert!(!real.stderr().contains("warning:"), "{}", real.report());
}
