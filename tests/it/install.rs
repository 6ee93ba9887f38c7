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

// ---------------------------------------------------------------------------------------------------------------
// Safety: what install and uninstall guarantee (issue 11), each reproduced as the attack or fault it answers.
// These use two tiny probes (no kernel types, no shared sources) so each test builds in well under a second with
// the real clang, bpftool and cc.

use std::collections::BTreeMap;
use std::io::Write;

use crate::support::{is_root, require, Blocked, Tmpfs};

const TINY_BPF: &str = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
SEC(\"tracepoint/syscalls/sys_enter_kill\") int NAME_prog(void *ctx) { return 0; }\n\
char LICENSE[] SEC(\"license\") = \"GPL\";\n";

const TINY_META: &str = "version = \"1.0.0\";\nmeasurements:\n(\n    {\n        table_name: \"NAME\",\n\
        entity_name: \"NAME\",\n        fields:\n        (\n            {\n                description: \"k\",\n\
                type: \"key\",\n                name: \"k\",\n            }\n        )\n    }\n)\n";

const BIN_DIR: &str = "usr/bin/extends/ebpf.probe";
const META_DIR: &str = "opt/gala-gopher/meta";
const CONF_DIR: &str = "etc/gala-gopher/extend_probes";
const MANIFEST: &str = "var/lib/ebpf-probe/installed.json";

fn tiny_source(name: &str, greeting: &str) -> String {
    format!("#include <stdio.h>\nint main(void) {{ puts(\"|{name}|{greeting}|\"); return 0; }}\n")
}

fn tiny_probe(ws: Workspace, name: &str) -> Workspace {
    ws.file(
        &format!("probes/{name}/{name}.bpf.c"),
        &TINY_BPF.replace("NAME", name),
    )
    .file(&format!("probes/{name}/{name}.c"), &tiny_source(name, "v1"))
    .file(
        &format!("probes/{name}/{name}.meta"),
        &TINY_META.replace("NAME", name),
    )
    .file(&format!("probes/{name}/probe.toml"), "shared = []\n")
    .file(
        &format!("probes/{name}/conf/{name}.conf"),
        &format!("{name} = 1\n"),
    )
}

/// Two tiny probes, `tinya` and `tinyb`, each with a `.meta` and `conf/<name>.conf`, built.
fn tiny_workspace_with(extra: impl FnOnce(Workspace) -> Workspace) -> Workspace {
    let ws = Workspace::new().file(
        "include/vmlinux.h",
        "/* the tiny probes use no kernel types */\n",
    );
    let ws = extra(tiny_probe(tiny_probe(ws, "tinya"), "tinyb"));
    ws.cmd(&["-b"]).success();
    ws
}

fn tiny_workspace() -> Workspace {
    tiny_workspace_with(|ws| ws)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every entry below `dir`: a directory, a link and its target, or a file's mode and content (hashed).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    list_tree(dir)
        .into_iter()
        .map(|rel| {
            let path = dir.join(&rel);
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                "dir".to_string()
            } else {
                format!(
                    "{:o} {}",
                    meta.permissions().mode() & 0o7777,
                    sha256_hex(&std::fs::read(&path).unwrap())
                )
            };
            (rel, what)
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest_of(dest: &Path) -> serde_json::Value {
    serde_json::from_str(&read(&dest.join(MANIFEST))).unwrap()
}

fn temp_files(dir: &Path) -> Vec<String> {
    list_tree(dir)
        .into_iter()
        .filter(|p| p.contains(".tmp."))
        .collect()
}

fn can_mount() -> bool {
    require("root (to mount a small tmpfs)", is_root())
        && require("the mount program", crate::support::has_program("mount"))
}

#[test]
fn uninstall_refuses_a_tampered_manifest_and_removes_nothing() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let base = tempfile::tempdir().unwrap();
    let dest = base.path().join("dest");
    let victim = base.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::create_dir(base.path().join("victim-dir")).unwrap();
    ws.cmd(&["install", "tinya", "--destdir", dest.to_str().unwrap()])
        .success();
    std::os::unix::fs::symlink(base.path(), dest.join("esc")).unwrap();

    // Entries that would delete the victim, each with its real checksum so only the path rules stop them.
    let mut manifest = manifest_of(&dest);
    let entry = |path: &str| {
        serde_json::json!({"path": path, "probes": ["tinya"], "kind": "config",
            "sha256": sha256_hex(b"precious\n")})
    };
    let files = manifest["files"].as_array_mut().unwrap();
    files.push(entry(victim.to_str().unwrap()));
    files.push(entry("../victim"));
    files.push(entry("esc/victim"));
    files[0]["backup"] = serde_json::json!("esc/victim");
    let dirs = manifest["dirs"].as_array_mut().unwrap();
    dirs.push(serde_json::json!("../victim-dir"));
    dirs.push(serde_json::json!("esc/victim-dir"));
    std::fs::write(
        dest.join(MANIFEST),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let before = snapshot(&dest);

    let done = ws
        .cmd(&["uninstall", "--destdir", dest.to_str().unwrap()])
        .failure();
    done.stderr_contains(&format!("`{}` is absolute", victim.display()))
        .stderr_contains("`../victim` contains `..`")
        .stderr_contains("esc/victim` leads through")
        .stderr_contains("outside the install root")
        .stderr_contains("`../victim-dir` contains `..`")
        .stderr_contains("backup")
        .stderr_contains("nothing was changed");
    assert_eq!(read(&victim), "precious\n");
    assert!(base.path().join("victim-dir").is_dir());
    assert_eq!(snapshot(&dest), before, "nothing in the destdir changed");
    // install reads the same manifest and refuses it too.
    ws.cmd(&["install", "tinya", "--destdir", dest.to_str().unwrap()])
        .failure()
        .stderr_contains("refusing to act on the install manifest");
    assert_eq!(snapshot(&dest), before);

    // A manifest that is a link is never followed (here to the victim).
    std::fs::remove_file(dest.join(MANIFEST)).unwrap();
    std::os::unix::fs::symlink(&victim, dest.join(MANIFEST)).unwrap();
    ws.cmd(&["uninstall", "--destdir", dest.to_str().unwrap()])
        .failure()
        .stderr_contains("is a symlink; refusing to follow it");
    assert_eq!(read(&victim), "precious\n");
}

#[test]
fn install_refuses_directories_that_lead_outside_the_destdir() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let base = tempfile::tempdir().unwrap();
    let dest = base.path().join("dest");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    // A planted `usr -> <outside>` would have install write into the real tree.
    std::os::unix::fs::symlink(&outside, dest.join("usr")).unwrap();
    ws.cmd(&["install", "--destdir", dest.to_str().unwrap()])
        .failure()
        .stderr_contains(&format!(
            "`{}` is a symlink to `{}`, outside the install root",
            dest.join("usr").display(),
            std::fs::canonicalize(&outside).unwrap().display()
        ))
        .stderr_contains("nothing was installed");
    assert!(list_tree(&outside).is_empty(), "{:?}", list_tree(&outside));
    assert_eq!(list_tree(&dest), ["usr"]);
}

#[test]
fn uninstall_of_a_copied_tree_touches_only_the_copy() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let base = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        base.path().join("a"),
        base.path().join("b"),
        base.path().join("c"),
    );
    ws.cmd(&["install", "--destdir", a.to_str().unwrap()])
        .success();
    let installed_a = snapshot(&a);
    for copy in [&b, &c] {
        assert!(crate::support::program("cp")
            .arg("-a")
            .arg(&a)
            .arg(copy)
            .success()
            .output
            .status
            .success());
    }
    let manifest = manifest_of(&a);
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["path"].as_str().unwrap().starts_with('/')),
        "paths are recorded relative to the destdir: {manifest:#}"
    );

    ws.cmd(&["uninstall", "--destdir", b.to_str().unwrap()])
        .success();
    assert!(
        !b.exists() || list_tree(&b).is_empty(),
        "{:?}",
        list_tree(&b)
    );
    assert_eq!(snapshot(&a), installed_a, "the original tree is untouched");

    // A manifest from before relative paths, copied with its tree: its absolute paths name `a`'s files.
    let legacy = |root: &Path| {
        let files: Vec<_> = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                serde_json::json!({"probe": f["probes"][0],
                    "path": root.join(f["path"].as_str().unwrap())})
            })
            .collect();
        serde_json::json!({"files": files, "dirs": [root.join("var")]}).to_string()
    };
    std::fs::write(c.join(MANIFEST), legacy(&a)).unwrap();
    let copied = snapshot(&c);
    ws.cmd(&["uninstall", "--destdir", c.to_str().unwrap()])
        .failure()
        .stderr_contains(&format!(
            "`{}` is outside the install root",
            a.join(BIN_DIR).join("tinya").display()
        ))
        .stderr_contains("nothing was changed");
    assert_eq!(snapshot(&c), copied);
    assert_eq!(snapshot(&a), installed_a);

    // The same old manifest naming the files where they are is migrated: programs go, and configs and metas,
    // which it has no checksum for, are kept aside.
    std::fs::write(c.join(MANIFEST), legacy(&c)).unwrap();
    ws.cmd(&["uninstall", "--destdir", c.to_str().unwrap()])
        .success()
        .stdout_contains("no checksum was recorded");
    assert!(!c.join(BIN_DIR).join("tinya").exists());
    assert_eq!(
        read(&c.join(CONF_DIR).join("tinya.conf.ebpf-probe-save")),
        "tinya = 1\n"
    );
    assert_eq!(snapshot(&a), installed_a);
}

#[test]
fn conf_links_that_leave_the_probe_are_refused_and_modes_never_widen() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let base = tempfile::tempdir().unwrap();
    let secret = base.path().join("shadow");
    std::fs::write(&secret, "root:secret-hash:19000::::::\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let outside_dir = base.path().join("etc");
    std::fs::create_dir(&outside_dir).unwrap();
    std::fs::write(outside_dir.join("other.conf"), "secret-dir\n").unwrap();
    let dest = base.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let conf = ws.path("probes/tinya/conf");
    let install = || ws.cmd(&["install", "tinya", "--destdir", dest.to_str().unwrap()]);

    std::os::unix::fs::symlink(&secret, conf.join("evil.conf")).unwrap();
    install()
        .failure()
        .stderr_contains(&format!(
            "`{}` is a symlink to `{}`, outside the probe directory",
            conf.join("evil.conf").display(),
            secret.display()
        ))
        .stderr_contains("nothing was installed");
    assert!(list_tree(&dest).is_empty(), "{:?}", list_tree(&dest));
    std::fs::remove_file(conf.join("evil.conf")).unwrap();

    std::os::unix::fs::symlink(&outside_dir, conf.join("sub")).unwrap();
    install()
        .failure()
        .stderr_contains(&format!("`{}` is a symlink to", conf.join("sub").display()));
    std::fs::remove_file(conf.join("sub")).unwrap();

    // A FIFO is refused, not read (which would hang).
    let fifo = std::ffi::CString::new(conf.join("pipe.conf").to_str().unwrap()).unwrap();
    // SAFETY: a valid path string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    install()
        .failure()
        .stderr_contains("pipe.conf` is not a regular file");
    std::fs::remove_file(conf.join("pipe.conf")).unwrap();
    assert!(list_tree(&dest).is_empty(), "{:?}", list_tree(&dest));

    // Links that stay inside the probe are followed; a private source stays private.
    std::os::unix::fs::symlink("tinya.conf", conf.join("alias.conf")).unwrap();
    std::os::unix::fs::symlink("../tinya.meta", conf.join("meta.conf")).unwrap();
    std::fs::create_dir(conf.join("sub")).unwrap();
    std::fs::write(conf.join("sub/nested.conf"), "nested\n").unwrap();
    std::fs::write(conf.join("private.conf"), "token = 1\n").unwrap();
    std::fs::set_permissions(
        conf.join("private.conf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    install().success();
    let installed = dest.join(CONF_DIR);
    assert_eq!(read(&installed.join("alias.conf")), "tinya = 1\n");
    assert_eq!(
        read(&installed.join("meta.conf")),
        read(&ws.path("probes/tinya/tinya.meta"))
    );
    assert_eq!(read(&installed.join("sub/nested.conf")), "nested\n");
    assert_eq!(mode(&installed.join("private.conf")), 0o600);
    assert_eq!(mode(&installed.join("tinya.conf")), 0o644);
    assert_eq!(mode(&dest.join(BIN_DIR).join("tinya")), 0o755);
    for file in list_tree(&dest) {
        let path = dest.join(&file);
        if path.is_file() {
            assert!(
                !std::fs::read(&path)
                    .unwrap()
                    .windows(6)
                    .any(|w| w == b"secret"),
                "{file} holds the secret"
            );
        }
    }
}

#[test]
fn edited_config_and_meta_files_are_kept_on_uninstall() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    ws.cmd(&["install", "--destdir", destdir]).success();
    let conf = dest.path().join(CONF_DIR).join("tinya.conf");
    let meta = dest.path().join(META_DIR).join("tinya.meta");
    std::fs::write(&conf, "tinya = 2 # the admin's choice\n").unwrap();
    let edited_meta = format!("{}# tuned\n", read(&meta));
    std::fs::write(&meta, &edited_meta).unwrap();

    let done = ws.cmd(&["uninstall", "--destdir", destdir]).success();
    done.stdout_contains(&format!(
        "kept {} as {}.ebpf-probe-save (changed since install)",
        conf.display(),
        conf.display()
    ))
    .stdout_contains(&format!(
        "kept {} as {}.ebpf-probe-save",
        meta.display(),
        meta.display()
    ));
    assert_eq!(
        read(
            &dest
                .path()
                .join(CONF_DIR)
                .join("tinya.conf.ebpf-probe-save")
        ),
        "tinya = 2 # the admin's choice\n"
    );
    assert_eq!(
        read(
            &dest
                .path()
                .join(META_DIR)
                .join("tinya.meta.ebpf-probe-save")
        ),
        edited_meta
    );
    assert_eq!(
        list_tree(dest.path()),
        [
            "etc",
            "etc/gala-gopher",
            "etc/gala-gopher/extend_probes",
            "etc/gala-gopher/extend_probes/tinya.conf.ebpf-probe-save",
            "opt",
            "opt/gala-gopher",
            "opt/gala-gopher/meta",
            "opt/gala-gopher/meta/tinya.meta.ebpf-probe-save",
        ],
        "unchanged files are removed, edited ones kept aside"
    );
}

#[test]
fn install_keeps_files_it_did_not_create_and_uninstall_puts_them_back() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    let at = |dir: &str, name: &str| dest.path().join(dir).join(name);
    for dir in [BIN_DIR, META_DIR, CONF_DIR] {
        std::fs::create_dir_all(dest.path().join(dir)).unwrap();
    }
    std::fs::write(at(CONF_DIR, "tinya.conf"), "the admin's own\n").unwrap();
    std::fs::set_permissions(
        at(CONF_DIR, "tinya.conf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // The same content as the probe's, with the admin's own mode: adopted as it is.
    std::fs::write(at(CONF_DIR, "tinyb.conf"), "tinyb = 1\n").unwrap();
    std::fs::set_permissions(
        at(CONF_DIR, "tinyb.conf"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::write(at(BIN_DIR, "tinya"), "#!/bin/sh\necho the admin's tinya\n").unwrap();
    std::fs::set_permissions(at(BIN_DIR, "tinya"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(at(META_DIR, "tinya.meta"), "# the admin's meta\n").unwrap();
    let before = snapshot(dest.path());

    let done = ws.cmd(&["install", "--destdir", destdir]).success();
    let conf = at(CONF_DIR, "tinya.conf");
    done.stdout_contains(&format!(
        "kept {} (not installed by ebpf-probe); the new version is {}.ebpf-probe-new",
        conf.display(),
        conf.display()
    ))
    .stdout_contains(&format!(
        "the file it replaced is kept as {}.ebpf-probe-orig",
        at(BIN_DIR, "tinya").display()
    ))
    .stdout_contains(&format!(
        "kept {} (already there with the same content)",
        at(CONF_DIR, "tinyb.conf").display()
    ));
    assert_eq!(read(&conf), "the admin's own\n");
    assert_eq!(mode(&conf), 0o600);
    assert_eq!(
        read(&at(CONF_DIR, "tinya.conf.ebpf-probe-new")),
        "tinya = 1\n"
    );
    assert_eq!(
        read(&at(BIN_DIR, "tinya.ebpf-probe-orig")),
        "#!/bin/sh\necho the admin's tinya\n"
    );
    assert_eq!(
        std::fs::read(at(BIN_DIR, "tinya")).unwrap(),
        std::fs::read(ws.path(".output/bin/tinya")).unwrap()
    );
    assert_eq!(
        read(&at(META_DIR, "tinya.meta.ebpf-probe-orig")),
        "# the admin's meta\n"
    );
    let manifest = manifest_of(dest.path());
    let binary = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == format!("{BIN_DIR}/tinya"))
        .unwrap();
    assert_eq!(
        binary["backup"],
        format!("{BIN_DIR}/tinya.ebpf-probe-orig"),
        "{manifest:#}"
    );

    // Again: the same names, nothing piles up.
    let installed = list_tree(dest.path());
    ws.cmd(&["install", "--destdir", destdir]).success();
    assert_eq!(list_tree(dest.path()), installed);

    ws.cmd(&["uninstall", "--destdir", destdir])
        .success()
        .stdout_contains("restored");
    assert_eq!(
        snapshot(dest.path()),
        before,
        "every file the admin had is back, as it was"
    );
}

#[test]
fn a_directory_where_a_file_goes_stops_the_install_before_anything_changes() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let dest = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dest.path().join(META_DIR).join("tinyb.meta/x")).unwrap();
    let before = snapshot(dest.path());
    ws.cmd(&["install", "--destdir", dest.path().to_str().unwrap()])
        .failure()
        .stderr_contains("tinyb.meta` is a directory")
        .stderr_contains("nothing was installed");
    assert_eq!(snapshot(dest.path()), before);
}

#[test]
fn an_install_killed_between_renames_is_rolled_back_by_uninstall() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    let first = dest.path().join(BIN_DIR).join("tinya");
    let mut install = Blocked::start(&ws, &["install", "--destdir", destdir]);
    install.wait_until("the first file is installed", || first.exists());
    install.kill();
    // Killed between renames: the journal records what was under way, the other files wait in temps.
    assert!(manifest_of(dest.path())["pending"].is_object());
    assert!(!temp_files(dest.path()).is_empty());
    assert!(!dest.path().join(BIN_DIR).join("tinyb").exists());

    ws.cmd(&["uninstall", "--destdir", destdir])
        .success()
        .stderr_contains("was interrupted; rolling it back")
        .stderr_contains("rolled back");
    assert!(
        list_tree(dest.path()).is_empty(),
        "{:?}",
        list_tree(dest.path())
    );
}

#[test]
fn an_install_killed_between_renames_is_rolled_back_and_redone_by_the_next_install() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    let first = dest.path().join(BIN_DIR).join("tinya");
    let mut install = Blocked::start(&ws, &["install", "--destdir", destdir]);
    install.wait_until("the first file is installed", || first.exists());
    install.kill();

    ws.cmd(&["install", "--destdir", destdir])
        .success()
        .stderr_contains("rolled back");
    assert_eq!(temp_files(dest.path()), Vec::<String>::new());
    let manifest = manifest_of(dest.path());
    assert!(manifest.get("pending").is_none(), "{manifest:#}");
    assert_eq!(manifest["files"].as_array().unwrap().len(), 6);
    for probe in ["tinya", "tinyb"] {
        assert!(dest.path().join(BIN_DIR).join(probe).is_file());
        assert!(dest
            .path()
            .join(META_DIR)
            .join(format!("{probe}.meta"))
            .is_file());
        assert!(dest
            .path()
            .join(CONF_DIR)
            .join(format!("{probe}.conf"))
            .is_file());
    }
    ws.cmd(&["uninstall", "--destdir", destdir]).success();
    assert!(list_tree(dest.path()).is_empty());
}

#[test]
fn an_interrupted_upgrade_is_rolled_back_to_the_previous_files() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    ws.cmd(&["install", "--destdir", destdir]).success();
    let installed = dest.path().join(BIN_DIR).join("tinya");
    let v1 = std::fs::read(&installed).unwrap();
    let v1_tree = snapshot(dest.path());
    std::fs::write(ws.path("probes/tinya/tinya.c"), tiny_source("tinya", "v2")).unwrap();
    ws.cmd(&["-b"]).success();
    let v2 = std::fs::read(ws.path(".output/bin/tinya")).unwrap();
    assert_ne!(v1, v2);

    let mut install = Blocked::start(&ws, &["install", "--destdir", destdir]);
    install.wait_until("the new tinya is in place", || {
        std::fs::read(&installed).is_ok_and(|bytes| bytes == v2)
    });
    install.kill();
    // Uninstalling the other probe first rolls the interrupted upgrade back: tinya is v1 again.
    ws.cmd(&["uninstall", "tinyb", "--destdir", destdir])
        .success()
        .stderr_contains("rolled back");
    assert_eq!(std::fs::read(&installed).unwrap(), v1);
    let after: BTreeMap<_, _> = snapshot(dest.path())
        .into_iter()
        .filter(|(path, _)| path != MANIFEST)
        .collect();
    let expected: BTreeMap<_, _> = v1_tree
        .into_iter()
        .filter(|(path, _)| path != MANIFEST && !path.contains("tinyb"))
        .collect();
    assert_eq!(after, expected);
    ws.cmd(&["uninstall", "--destdir", destdir]).success();
    assert!(list_tree(dest.path()).is_empty());
}

#[test]
fn an_uninstall_killed_midway_is_finished_by_the_next_one_and_loses_nothing() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    let admins = dest.path().join(BIN_DIR).join("tinya");
    std::fs::create_dir_all(admins.parent().unwrap()).unwrap();
    std::fs::write(&admins, "#!/bin/sh\necho the admin's tinya\n").unwrap();
    let before = snapshot(dest.path());
    ws.cmd(&["install", "--destdir", destdir]).success();

    // Killed right after its first step, putting the admin's tinya back.
    let mut uninstall = Blocked::start(&ws, &["uninstall", "--destdir", destdir]);
    uninstall.wait_until("the admin's tinya is back", || {
        std::fs::read(&admins).is_ok_and(|b| b.starts_with(b"#!/bin/sh"))
    });
    uninstall.kill();
    ws.cmd(&["uninstall", "--destdir", destdir]).success();
    assert_eq!(snapshot(dest.path()), before);
}

#[test]
fn a_directory_appearing_where_a_file_goes_rolls_the_install_back() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    let first = dest.path().join(BIN_DIR).join("tinya");
    let mut install = Blocked::start(&ws, &["install", "--destdir", destdir]);
    install.wait_until("the first file is installed", || first.exists());
    // Between two renames, a directory takes the place of a file still to come.
    std::fs::create_dir(dest.path().join(META_DIR).join("tinya.meta")).unwrap();
    std::fs::write(dest.path().join(META_DIR).join("tinya.meta/x"), "").unwrap();
    let (success, _stdout, stderr) = install.release();
    assert!(!success);
    assert!(stderr.contains("the install was rolled back"), "{stderr}");
    assert!(stderr.contains("tinya.meta"), "{stderr}");
    assert_eq!(
        list_tree(dest.path()),
        [
            "opt",
            "opt/gala-gopher",
            "opt/gala-gopher/meta",
            "opt/gala-gopher/meta/tinya.meta",
            "opt/gala-gopher/meta/tinya.meta/x",
        ],
        "only the planted directory (and the directories holding it) remain"
    );

    // A file someone writes there meanwhile is not replaced either.
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    let first = dest.path().join(BIN_DIR).join("tinya");
    let mut install = Blocked::start(&ws, &["install", "--destdir", destdir]);
    install.wait_until("the first file is installed", || first.exists());
    let planted = dest.path().join(CONF_DIR).join("tinyb.conf");
    std::fs::write(&planted, "written meanwhile\n").unwrap();
    let (success, _stdout, stderr) = install.release();
    assert!(!success);
    assert!(stderr.contains("the install was rolled back"), "{stderr}");
    assert_eq!(read(&planted), "written meanwhile\n");
    assert_eq!(
        list_tree(dest.path()),
        [
            "etc",
            "etc/gala-gopher",
            "etc/gala-gopher/extend_probes",
            "etc/gala-gopher/extend_probes/tinyb.conf",
        ]
    );
}

#[test]
fn a_full_disk_or_an_unwritable_manifest_installs_nothing() {
    if !require_build_tools() || !can_mount() {
        return;
    }
    let ws = tiny_workspace();
    let base = tempfile::tempdir().unwrap();

    // Too small for the first executable: staging fails, the temps and new directories go.
    let small = base.path().join("small");
    let _small = Tmpfs::mount(&small, "size=8k");
    ws.cmd(&["install", "--destdir", small.to_str().unwrap()])
        .failure()
        .stderr_contains("nothing was installed");
    assert!(list_tree(&small).is_empty(), "{:?}", list_tree(&small));

    // The manifest's directory is read-only: the journal cannot be written, so nothing is renamed.
    let readonly = base.path().join("readonly");
    let manifest_dir = readonly.join("var/lib/ebpf-probe");
    let _readonly = Tmpfs::mount(&manifest_dir, "ro,size=64k");
    ws.cmd(&["install", "--destdir", readonly.to_str().unwrap()])
        .failure()
        .stderr_contains("nothing was installed");
    assert_eq!(
        list_tree(&readonly),
        ["var", "var/lib", "var/lib/ebpf-probe"]
    );

    // The disk fills up between two renames: the final manifest cannot be written, and the install is rolled back.
    let filling = base.path().join("filling");
    let _filling = Tmpfs::mount(&filling, "size=1m");
    let first = filling.join(BIN_DIR).join("tinya");
    let mut install = Blocked::start(&ws, &["install", "--destdir", filling.to_str().unwrap()]);
    install.wait_until("the first file is installed", || first.exists());
    let mut filler = std::fs::File::create(filling.join("filler")).unwrap();
    while filler.write_all(&[0u8; 4096]).is_ok() {}
    let (success, _stdout, stderr) = install.release();
    assert!(!success);
    assert!(stderr.contains("the install was rolled back"), "{stderr}");
    assert_eq!(list_tree(&filling), ["filler"]);
}

#[test]
fn relative_and_unnormalized_destdirs_work_like_make_destdir() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace();
    ws.cmd(&["install", "tinya", "--destdir", "relpkg"])
        .success();
    assert!(ws.path("relpkg").join(BIN_DIR).join("tinya").is_file());
    ws.cmd(&["uninstall", "--destdir", "relpkg"]).success();
    assert!(
        !ws.path("relpkg").exists(),
        "the destdir install made is gone"
    );

    ws.cmd(&["install", "tinya", "--destdir", "missing/../pkg"])
        .success();
    assert!(ws.path("pkg").join(BIN_DIR).join("tinya").is_file());
    assert!(!ws.path("missing").exists());
    ws.cmd(&["uninstall", "--destdir", "./pkg/"]).success();
    assert!(!ws.path("pkg").exists());
}

#[test]
fn a_file_two_probes_install_stays_until_the_last_of_them_is_uninstalled() {
    if !require_build_tools() {
        return;
    }
    let ws = tiny_workspace_with(|ws| {
        ws.file("probes/tinya/conf/common.conf", "shared = 1\n")
            .file("probes/tinyb/conf/common.conf", "shared = 1\n")
    });
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    let common = dest.path().join(CONF_DIR).join("common.conf");

    // Installed together, or one after the other: both probes own it.
    for separately in [false, true] {
        if separately {
            ws.cmd(&["install", "tinya", "--destdir", destdir])
                .success();
            ws.cmd(&["install", "tinyb", "--destdir", destdir])
                .success();
        } else {
            ws.cmd(&["install", "--destdir", destdir]).success();
        }
        let manifest = manifest_of(dest.path());
        let entry = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == format!("{CONF_DIR}/common.conf"))
            .unwrap()
            .clone();
        assert_eq!(entry["probes"], serde_json::json!(["tinya", "tinyb"]));
        ws.cmd(&["uninstall", "tinya", "--destdir", destdir])
            .success()
            .stdout_contains("(probe tinyb still uses it)");
        assert_eq!(read(&common), "shared = 1\n");
        ws.cmd(&["uninstall", "tinyb", "--destdir", destdir])
            .success();
        assert!(!common.exists());
        assert!(list_tree(dest.path()).is_empty());
    }

    // Other bytes at the same path from a probe installed on its own: refused, nothing of it installed.
    ws.cmd(&["install", "tinya", "--destdir", destdir])
        .success();
    std::fs::write(ws.path("probes/tinyb/conf/common.conf"), "shared = 2\n").unwrap();
    let before = snapshot(dest.path());
    ws.cmd(&["install", "tinyb", "--destdir", destdir])
        .failure()
        .stderr_contains("is installed by probe tinya with other content");
    assert_eq!(snapshot(dest.path()), before);
}
