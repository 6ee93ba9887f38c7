//! `install` / `uninstall` into a DESTDIR: the tree, modes, manifest, exact removal, replacing a running
//! probe, and refused paths.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{list_tree, require_build_tools, require_kernel, RunningProbe, Workspace};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn workspace() -> Workspace {
    Workspace::new()
        .shipped_probe("killprobe")
        .shipped_probe("dnsprobe")
        .file("probes/killprobe/conf/killprobe.conf", "period = 5\n")
        .gen()
}

#[test]
fn install_into_destdir_gives_the_tree_modes_and_manifest_and_uninstall_undoes_it() {
    if !require_build_tools() {
        return;
    }
    let ws = workspace();
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("already-there"), "keep me").unwrap();
    let before = list_tree(dest.path());
    let destdir = dest.path().to_str().unwrap();
    ws.cmd(&["install", "--destdir", destdir])
        .success()
        .stdout_contains("installed");

    let bin = dest.path().join("usr/bin/extends/ebpf.probe");
    let meta = dest.path().join("opt/gala-gopher/meta");
    let conf = dest.path().join("etc/gala-gopher/extend_probes");
    assert_eq!(mode(&bin.join("killprobe")), 0o755);
    assert_eq!(mode(&bin.join("dnsprobe")), 0o755);
    assert_eq!(mode(&meta.join("killprobe.meta")), 0o644);
    assert_eq!(mode(&meta.join("dnsprobe.meta")), 0o644);
    assert_eq!(
        std::fs::read_to_string(conf.join("killprobe.conf")).unwrap(),
        "period = 5\n"
    );
    assert_eq!(mode(&conf.join("killprobe.conf")), 0o644);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dest.path().join("var/lib/ebpf-probe/installed.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["files"].as_array().unwrap().len(),
        5,
        "{manifest:#}"
    );

    ws.cmd(&["uninstall", "--destdir", destdir]).success();
    assert_eq!(
        list_tree(dest.path()),
        before,
        "uninstall leaves the directory as it was"
    );
}

#[test]
fn install_honours_the_old_install_sh_directories() {
    if !require_build_tools() {
        return;
    }
    let ws = workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    ws.cmd(&[
        "install",
        "killprobe",
        "--destdir",
        destdir,
        "-b",
        "/opt/gala-gopher/extend_probes",
        "-m",
        "/m",
        "-c",
        "/c",
    ])
    .success();
    assert!(dest
        .path()
        .join("opt/gala-gopher/extend_probes/killprobe")
        .is_file());
    assert!(dest.path().join("m/killprobe.meta").is_file());
    assert!(dest.path().join("c/killprobe.conf").is_file());
    assert!(
        !dest
            .path()
            .join("opt/gala-gopher/extend_probes/dnsprobe")
            .exists(),
        "only the named probe"
    );
    // Uninstalling one probe of several keeps the others.
    ws.cmd(&[
        "install",
        "dnsprobe",
        "--destdir",
        destdir,
        "-b",
        "/opt/gala-gopher/extend_probes",
        "-m",
        "/m",
        "-c",
        "/c",
    ])
    .success();
    ws.cmd(&[
        "uninstall",
        "killprobe",
        "--destdir",
        destdir,
        "-b",
        "/x",
        "-m",
        "/m",
        "-c",
        "/c",
    ])
    .success();
    assert!(!dest
        .path()
        .join("opt/gala-gopher/extend_probes/killprobe")
        .exists());
    assert!(dest
        .path()
        .join("opt/gala-gopher/extend_probes/dnsprobe")
        .is_file());
}

#[test]
fn installing_over_a_running_probe_works() {
    if !require_kernel() {
        return;
    }
    let ws = workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    ws.cmd(&["install", "killprobe", "--destdir", destdir])
        .success();
    let installed = dest.path().join("usr/bin/extends/ebpf.probe/killprobe");
    let running = RunningProbe::start(&installed, &[]);
    // A rebuilt binary (debug flags) installed while the old one runs.
    ws.cmd(&["-b", "killprobe", "-d"]).success();
    ws.cmd(&["install", "killprobe", "--destdir", destdir])
        .success();
    assert_eq!(mode(&installed), 0o755);
    let status = running.terminate();
    assert!(
        status.success(),
        "the running probe was not disturbed: {status}"
    );
}

#[test]
fn bad_install_paths_fail_cleanly_with_nothing_written() {
    if !require_build_tools() {
        return;
    }
    let ws = workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    ws.cmd(&["install", "--destdir", destdir, "-b", "relative/bin"])
        .failure()
        .stderr_contains("must be absolute");
    ws.cmd(&["install", "--destdir", destdir, "-b", "/usr/../../etc"])
        .failure()
        .stderr_contains("`..`");
    assert!(
        list_tree(dest.path()).is_empty(),
        "{:?}",
        list_tree(dest.path())
    );
    // /proc refuses new files even for root: the install stops before replacing anything.
    ws.cmd(&["install", "--destdir", "/proc/ebpf-probe-test"])
        .failure()
        .stderr_contains("nothing was installed");
    assert!(
        list_tree(dest.path()).is_empty(),
        "{:?}",
        list_tree(dest.path())
    );
    ws.cmd(&["uninstall", "--destdir", destdir])
        .failure()
        .stderr_contains("nothing to uninstall");
}
