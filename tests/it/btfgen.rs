//! `btfgen`: minimized kernel BTF per release from this kernel and a BTFHub-style archive (≥ 50× smaller), a
//! probe loading and firing with `btf_custom_path` set to its minimized file (C and Rust SDK), `install`/`uninstall`
//! of the files, the refusal of stale ones, clear errors, and links planted where we write.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::support::{
    assert_killprobe_sees_a_real_kill_with_env, has_program, program, require, require_build_tools,
    require_kernel, Workspace,
};

const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
/// The release the BTFHub-style copy of this kernel's BTF is filed under.
const OTHER_RELEASE: &str = "5.10.0-60.18.0.50.oe2203.x86_64";

fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string()
}

/// The build tools and this kernel's BTF (btfgen's input; loading is not needed).
fn require_btfgen_tools() -> bool {
    require_build_tools()
        && require(
            "kernel BTF at /sys/kernel/btf/vmlinux",
            Path::new(KERNEL_BTF).exists(),
        )
        && require("tar and xz", has_program("tar") && has_program("xz"))
}

fn killprobe() -> Workspace {
    Workspace::new().shipped_probe("killprobe").gen()
}

/// A BTFHub-style tree under `dir`: `openeuler/22.03/x86_64/<OTHER_RELEASE>.btf.tar.xz`, holding a copy of this
/// kernel's BTF under that name. Returns the tree's root.
fn btfhub_tree(dir: &Path) -> PathBuf {
    let hub = dir.join("btfhub-archive");
    let arch_dir = hub.join("openeuler/22.03/x86_64");
    std::fs::create_dir_all(&arch_dir).unwrap();
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::copy(KERNEL_BTF, staging.join(format!("{OTHER_RELEASE}.btf"))).unwrap();
    program("tar")
        .arg("-cJf")
        .arg(arch_dir.join(format!("{OTHER_RELEASE}.btf.tar.xz")))
        .arg("-C")
        .arg(&staging)
        .arg(format!("{OTHER_RELEASE}.btf"))
        .success();
    hub
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}

#[test]
fn btfgen_minimizes_this_kernel_and_a_btfhub_archive_at_least_50_times() {
    if !require_btfgen_tools() {
        return;
    }
    let ws = killprobe();
    let scratch = tempfile::tempdir().unwrap();
    let hub = btfhub_tree(scratch.path());
    let run = ws
        .cmd(&[
            "btfgen",
            "--kernel",
            KERNEL_BTF,
            "--kernel",
            hub.to_str().unwrap(),
        ])
        .success();
    let input = size(Path::new(KERNEL_BTF));
    for name in [release(), OTHER_RELEASE.to_string()] {
        let output = ws.path(&format!(".output/btf/{name}.btf"));
        let minimized = size(&output);
        eprintln!("{name}: {input} → {minimized} bytes");
        assert!(minimized > 0, "{name}: empty output");
        assert!(
            input >= 50 * minimized,
            "{name}: {input} → {minimized} bytes is less than 50× smaller"
        );
        run.stderr_contains(&format!("Minimized {name} ("));
        // Real BTF, holding the type killprobe relocates against.
        program("bpftool")
            .args(["btf", "dump", "file"])
            .arg(&output)
            .success()
            .stdout_contains("STRUCT 'trace_event_raw_sys_enter'");
    }
    // Made for killprobe's object, as it is now.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path(".output/btf/btfgen.json")).unwrap())
            .unwrap();
    assert!(
        record["kernels"][OTHER_RELEASE]["objects"][".output/killprobe/killprobe.bpf.o"]
            .is_string(),
        "{record:#}"
    );
}

#[test]
fn killprobe_loads_and_fires_with_its_minimized_btf_and_fails_with_a_btf_lacking_its_types() {
    if !require_kernel() {
        return;
    }
    let ws = killprobe();
    ws.cmd(&["btfgen", "killprobe", "--kernel", KERNEL_BTF])
        .success();
    let minimized = ws.path(&format!(".output/btf/{}.btf", release()));
    let binary = ws.path(".output/bin/killprobe");
    let startup = assert_killprobe_sees_a_real_kill_with_env(
        &binary,
        &[("EBPF_PROBE_BTF_FILE", minimized.as_os_str())],
    );
    let said = format!(
        "killprobe: using kernel BTF {} (EBPF_PROBE_BTF_FILE)",
        minimized.display()
    );
    assert!(startup.contains(&said), "expected {said:?} in {startup:#?}");

    // The relocations really come from that file: BTF without the kernel's types fails the load, naming it.
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("other.c");
    std::fs::write(
        &source,
        "struct other { int x; };\nstruct other instance;\n",
    )
    .unwrap();
    let unrelated = scratch.path().join("other.o");
    program("clang")
        .args(["-g", "-target", "bpf", "-c"])
        .arg(&source)
        .arg("-o")
        .arg(&unrelated)
        .success();
    ws.program(&binary)
        .env("EBPF_PROBE_BTF_FILE", &unrelated)
        .failure()
        .stderr_contains(&format!("using kernel BTF {}", unrelated.display()))
        .stderr_contains(
            "failed to load BPF object killprobe.bpf.o with the kernel BTF named above",
        );
}

#[test]
fn the_rust_sdk_loads_and_fires_with_the_minimized_btf_too() {
    if !require_kernel() || !require("cargo", has_program("cargo")) {
        return;
    }
    let ws = Workspace::new()
        .shipped_probe("tcpprobe")
        .rust_workspace(&["probes/tcpprobe"])
        .gen();
    // The target directory tcpprobe's own test uses: libbpf-sys compiles once.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rust-probes-target");
    ws.cmd(&["btfgen", "tcpprobe", "--kernel", KERNEL_BTF])
        .env("CARGO_TARGET_DIR", &target)
        .success();
    let minimized = ws.path(&format!(".output/btf/{}.btf", release()));
    let binary = ws.path(".output/bin/tcpprobe");
    let mut probe = crate::support::RunningProbe::start_with_env(
        &binary,
        &[],
        &[("EBPF_PROBE_BTF_FILE", minimized.as_os_str())],
    );
    let said = format!(
        "using kernel BTF {} (EBPF_PROBE_BTF_FILE)",
        minimized.display()
    );
    assert!(
        probe.startup.iter().any(|l| l.contains(&said)),
        "expected {said:?} in {:#?}",
        probe.startup
    );
    // It fires: a loopback connection that closes is reported, with its server port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(server).unwrap();
        std::io::Write::write_all(&mut stream, b"hello").unwrap();
    });
    let (mut accepted, _) = listener.accept().unwrap();
    let mut buffer = Vec::new();
    std::io::Read::read_to_end(&mut accepted, &mut buffer).unwrap();
    drop(accepted);
    client.join().unwrap();
    let port = format!("|{}|", server.port());
    let line = probe.wait_for_line(std::time::Duration::from_secs(3), |l| {
        l.starts_with("|tcp_link|") && l.contains(&port)
    });
    assert!(
        line.is_some(),
        "expected a tcp_link line for port {}; the probe printed {:#?}",
        server.port(),
        probe.seen
    );
    assert!(probe.terminate().success());
    // And an unrelated BTF makes the load fail: the file is the one libbpf used.
    let empty = tempfile::NamedTempFile::new().unwrap();
    ws.program(&binary)
        .env("EBPF_PROBE_BTF_FILE", empty.path())
        .failure()
        .stderr_contains("failed to load BPF object");
}

#[test]
fn install_ships_the_minimized_btf_where_gala_gopher_loads_it_and_uninstall_removes_it() {
    if !require_btfgen_tools() {
        return;
    }
    let ws = killprobe();
    ws.cmd(&["btfgen", "--kernel", KERNEL_BTF]).success();
    let name = format!("{}.btf", release());
    let made = std::fs::read(ws.path(&format!(".output/btf/{name}"))).unwrap();

    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    ws.cmd(&["install", "--destdir", destdir])
        .success()
        .stdout_contains(&format!("/opt/gala-gopher/btf/{name} (644)"));
    let installed = dest.path().join("opt/gala-gopher/btf").join(&name);
    assert_eq!(std::fs::read(&installed).unwrap(), made);
    let manifest =
        std::fs::read_to_string(dest.path().join("var/lib/ebpf-probe/installed.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let entry = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == format!("opt/gala-gopher/btf/{name}"))
        .unwrap_or_else(|| panic!("no btf entry in {manifest:#}"));
    assert_eq!(entry["kind"], "btf");
    assert_eq!(entry["probes"], serde_json::json!(["killprobe"]));

    ws.cmd(&["uninstall", "--destdir", destdir]).success();
    assert!(!installed.exists());

    // -B puts them elsewhere.
    ws.cmd(&["install", "--destdir", destdir, "-B", "/usr/lib/btf"])
        .success();
    assert_eq!(
        std::fs::read(dest.path().join("usr/lib/btf").join(&name)).unwrap(),
        made
    );
}

#[test]
fn install_refuses_a_minimized_btf_made_for_other_objects() {
    if !require_btfgen_tools() {
        return;
    }
    let ws = killprobe();
    ws.cmd(&["btfgen", "--kernel", KERNEL_BTF]).success();
    // A different program: the object changes, so the minimized BTF may lack what it relocates against.
    let source = ws.path("probes/killprobe/killprobe.bpf.c");
    let text = std::fs::read_to_string(&source).unwrap();
    let changed = text.replace(
        "event.signal = (int)ctx->args[1];",
        "event.signal = (int)ctx->args[2];",
    );
    assert_ne!(text, changed, "the edit applies");
    std::fs::write(&source, changed).unwrap();
    let dest = tempfile::tempdir().unwrap();
    ws.cmd(&["install", "--destdir", dest.path().to_str().unwrap()])
        .failure()
        .stderr_contains("does not cover probe `killprobe`")
        .stderr_contains("changed since it was made")
        .stderr_contains(&format!(
            "ebpf-probe btfgen killprobe --kernel {KERNEL_BTF}"
        ));
    assert!(!dest.path().join("opt").exists(), "nothing was installed");
}

#[test]
fn btfgen_errors_say_what_where_and_what_to_do() {
    if !require_btfgen_tools() {
        return;
    }
    let ws = killprobe();
    let scratch = tempfile::tempdir().unwrap();
    // Not BTF at all, under a release name.
    let text = scratch.path().join("5.10.0-1.btf");
    std::fs::write(&text, "not btf\n").unwrap();
    ws.cmd(&["btfgen", "--kernel", text.to_str().unwrap()])
        .failure()
        .stderr_contains(&format!("`{}` is not kernel BTF", text.display()));
    // A name that gives no release.
    let unnamed = scratch.path().join("kernel.bin");
    std::fs::copy(KERNEL_BTF, &unnamed).unwrap();
    ws.cmd(&["btfgen", "--kernel", unnamed.to_str().unwrap()])
        .failure()
        .stderr_contains("kernel.bin")
        .stderr_contains("name it `<release>.btf`");
    // Two inputs for one release.
    let copy = scratch.path().join(format!("{}.btf", release()));
    std::fs::copy(KERNEL_BTF, &copy).unwrap();
    ws.cmd(&[
        "btfgen",
        "--kernel",
        KERNEL_BTF,
        "--kernel",
        copy.to_str().unwrap(),
    ])
    .failure()
    .stderr_contains(&format!(
        "two kernel BTFs are for release {}: `{KERNEL_BTF}` and `{}`",
        release(),
        copy.display()
    ));
    // No bpftool: the override is named and the install hint given (the build before it needs none when fresh).
    ws.cmd(&["-b"]).success();
    ws.cmd(&["btfgen", "--kernel", KERNEL_BTF])
        .env("BPFTOOL", "/nonexistent/bpftool")
        .failure()
        .stderr_contains("/nonexistent/bpftool")
        .stderr_contains("install");
    assert!(!ws.path(".output/btf/5.10.0-1.btf").exists());
}

#[test]
fn btfgen_replaces_a_planted_link_and_refuses_a_linked_output_dir() {
    if !require_btfgen_tools() {
        return;
    }
    let ws = killprobe();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let btf_dir = ws.path(".output/btf");
    std::fs::create_dir_all(&btf_dir).unwrap();
    let output = btf_dir.join(format!("{}.btf", release()));
    std::os::unix::fs::symlink(&victim, &output).unwrap();
    ws.cmd(&["btfgen", "--kernel", KERNEL_BTF]).success();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(&output).unwrap();
    assert!(meta.is_file(), "the link was replaced by a regular file");

    // `.output/btf` itself a link to elsewhere: refused, nothing written there.
    std::fs::remove_dir_all(&btf_dir).unwrap();
    std::os::unix::fs::symlink(outside.path(), &btf_dir).unwrap();
    ws.cmd(&["btfgen", "--kernel", KERNEL_BTF])
        .failure()
        .stderr_contains("is not a directory (a symlink or file is there)");
    let names: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, [OsStr::new("victim")]);
}

#[test]
fn install_never_writes_through_a_link_planted_at_the_btf_destination() {
    if !require_btfgen_tools() {
        return;
    }
    let ws = killprobe();
    ws.cmd(&["btfgen", "--kernel", KERNEL_BTF]).success();
    let dest = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let btf_dir = dest.path().join("opt/gala-gopher/btf");
    std::fs::create_dir_all(&btf_dir).unwrap();
    let destination = btf_dir.join(format!("{}.btf", release()));
    std::os::unix::fs::symlink(&victim, &destination).unwrap();
    let destdir = dest.path().to_str().unwrap();
    ws.cmd(&["install", "--destdir", destdir]).success();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(&destination).unwrap().is_file());
    // uninstall puts the link back as it was.
    ws.cmd(&["uninstall", "--destdir", destdir]).success();
    assert_eq!(std::fs::read_link(&destination).unwrap(), victim);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}
