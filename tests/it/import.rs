//! `import`: tests/fixtures/gala-tree (gala-gopher's layout, our code) read into ebpf-probe.toml and probe.toml
//! files: what is written, that a second run changes nothing, that a foreign file is not replaced, that no
//! source file changes; and the tree built, run and installed from what import wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{list_tree, program, require_kernel, Done, RunningProbe, Workspace};

/// The ebpf.probe directory inside the fixture tree, as gala-gopher places it.
const EBPF_PROBE: &str = "src/probes/extends/ebpf.probe";

const WORKSPACE_TOML: &str = r#"# Written by ebpf-probe import from src/mk/var.mk and the probe Makefiles under src/.
# Re-running import replaces this file; delete this line to keep your edits (import then won't touch it).

[layout]
probes = "src"
probe_marker = "Makefile"
skip = ["include", "lib", "mk"]
include = ["src/include", "../../../common", "src/lib"]
kernel_header_dir = "src/include"
meta = true
ext_def = false

[build]
# Left to ebpf-probe: -D__TARGET_ARCH_* -DCLANG_VER_MAJOR (computed for the build machine); -lbpf -lelf -lz
#   -lpthread (always linked; -lbpf is the libbpf --libbpf chose).
# -D__BTF_ENABLE_ON/OFF is per probe (its BTF_ENABLE_OVERRIDE); a probe that sets neither gets btf_defines'
#   choice: the first when the target kernel has BTF, as var.mk computed when make ran.
defines = ["FIXTURE_TREE", "PROBE_AGENT_VER=\"1\""]
bpf_flags = ["-fPIC", "-std=gnu11"]
cflags = ["-std=gnu11", "-Wno-stringop-truncation"]
cxxflags = ["-std=c++11"]
libs = ["stdc++"]
ldflags = ["-Wl,-z,relro,-z,now"]
shared = ["lib", "common"]
btf_defines = ["__BTF_ENABLE_ON", "__BTF_ENABLE_OFF"]

[sources.lib]
c = ["src/lib/*.c"]

[sources.common]
c = ["../../../common/*.c"]
cxx = ["../../../common/*.cpp"]
"#;

const EXECPROBE_TOML: &str = r#"# Written by ebpf-probe import from this directory's Makefile.
# Re-running import replaces this file; delete this line to keep your edits (import then won't touch it).
binary = "exec_watch"
defines = ["__BTF_ENABLE_ON"]
includes = ["inc"]
bpf = ["bpf/*.bpf.c"]
sources = ["*.c", "util/*.c"]
cxx_sources = ["*.cpp"]
shared = ["lib", "common"]
meta = ["*.meta"]
"#;

const SIGPROBE_TOML: &str = r#"# Written by ebpf-probe import from this directory's Makefile.
# Re-running import replaces this file; delete this line to keep your edits (import then won't touch it).
# BTF_ENABLE_OVERRIDE is not set: no __BTF_ENABLE_* define here, so ebpf-probe's rule applies: __BTF_ENABLE_ON
#   when /sys/kernel/btf/vmlinux exists, as var.mk computed it.
binary = "sigprobe"
bpf = ["sig_bpf/*.bpf.c"]
sources = ["*.c"]
cxx_sources = ["*.cpp"]
shared = ["lib", "common"]
meta = ["*.meta"]

[[object]]
source = "sig_bpf/*.bpf.c"
skeleton = false
install = "sig_bpf"
"#;

const EXITPROBE_TOML: &str = r#"# Written by ebpf-probe import from this directory's Makefile.
# Re-running import replaces this file; delete this line to keep your edits (import then won't touch it).
binary = "exitprobe"
libs = ["m"]
defines = ["__BTF_ENABLE_ON"]
bpf = ["*.bpf.c"]
sources = ["*.c"]
cxx_sources = ["*.cpp"]
shared = ["lib", "common"]
meta = ["*.meta"]

[[library]]
name = "procagent1.so"
sources = ["agent/agent.c"]
install = "."
"#;

/// What import writes, relative to the ebpf.probe directory.
const GENERATED: [(&str, &str); 4] = [
    ("ebpf-probe.toml", WORKSPACE_TOML),
    ("src/execprobe/probe.toml", EXECPROBE_TOML),
    ("src/exitprobe/probe.toml", EXITPROBE_TOML),
    ("src/sigprobe/probe.toml", SIGPROBE_TOML),
];

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    list_tree(dir)
        .into_iter()
        .map(|relative| dir.join(relative))
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path.strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect()
}

/// stderr with the temp dir written `[ROOT]`.
fn redacted_stderr(ws: &Workspace, done: &Done) -> String {
    let root = ws.root().canonicalize().unwrap();
    done.stderr().replace(&root.display().to_string(), "[ROOT]")
}

fn import(ws: &Workspace, extra: &[&str]) -> Done {
    let mut args = vec!["import", EBPF_PROBE];
    args.extend_from_slice(extra);
    ws.cmd(&args).success()
}

#[test]
fn import_writes_the_schema_from_the_makefiles_and_touches_no_source() {
    let ws = Workspace::fixture_tree("gala-tree");
    let before = snapshot(ws.root());
    let done = import(&ws, &[]);
    assert_eq!(
        redacted_stderr(&ws, &done),
        "   Importing [ROOT]/src/probes/extends/ebpf.probe
       Wrote ebpf-probe.toml: 3 probes in src/, shared sets: lib, common
       Wrote src/execprobe/probe.toml: binary exec_watch; bpf bpf/*.bpf.c (1); sources *.c util/*.c (2) + lib, common; meta *.meta (2); BTF ON
       Wrote src/exitprobe/probe.toml: binary exitprobe; bpf *.bpf.c (1); sources *.c (1) + lib, common; meta *.meta (1); libs m; BTF ON; library procagent1.so
       Wrote src/sigprobe/probe.toml: binary sigprobe; bpf sig_bpf/*.bpf.c (1); sources *.c (1) + lib, common; meta *.meta (1); object sig_bpf/*.bpf.c without skeleton installed to sig_bpf/
Everything the Makefiles say was translated.
Next: `ebpf-probe -C src/probes/extends/ebpf.probe -b` builds every probe.
"
    );
    let root = ws.path(EBPF_PROBE);
    for (file, expected) in GENERATED {
        assert_eq!(
            std::fs::read_to_string(root.join(file)).unwrap(),
            expected,
            "{file}"
        );
    }
    // Every file that was there is unchanged, and the only new files are the generated ones.
    let mut after = snapshot(ws.root());
    for (file, _) in GENERATED {
        let path = Path::new(EBPF_PROBE).join(file);
        assert!(after.remove(&path).is_some(), "{file} was written");
    }
    assert!(before == after, "import changed or added other files");
}

#[test]
fn import_again_changes_nothing() {
    let ws = Workspace::fixture_tree("gala-tree");
    import(&ws, &[]);
    let first = snapshot(ws.root());
    let again = import(&ws, &[]);
    let stderr = again.stderr();
    assert_eq!(stderr.matches("   Unchanged ").count(), 4, "{stderr}");
    assert!(!stderr.contains("Wrote"), "{stderr}");
    assert!(
        first == snapshot(ws.root()),
        "a second import changed files"
    );
}

#[test]
fn import_refuses_a_file_it_did_not_write_and_force_moves_it_aside() {
    let ws = Workspace::fixture_tree("gala-tree");
    let mine = "# my own workspace settings\n[libbpf]\npolicy = \"system\"\n";
    let marker = ws.path(EBPF_PROBE).join("ebpf-probe.toml");
    std::fs::write(&marker, mine).unwrap();
    let before = snapshot(ws.root());
    ws.cmd(&["import", EBPF_PROBE])
        .failure()
        .stderr_contains("not replacing a file that import did not write")
        .stderr_contains("ebpf-probe.toml")
        .stderr_contains("Nothing was written")
        .stderr_contains("--force");
    assert!(
        before == snapshot(ws.root()),
        "a refused import wrote files"
    );

    let done = import(&ws, &["--force"]);
    done.stderr_contains(
        "Replaced ebpf-probe.toml (the file that was there is now ebpf-probe.toml.orig)",
    );
    assert_eq!(
        std::fs::read_to_string(marker.with_extension("toml.orig")).unwrap(),
        mine
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), WORKSPACE_TOML);
}

#[test]
fn import_from_src_writes_at_the_ebpf_probe_directory() {
    let ws = Workspace::fixture_tree("gala-tree");
    ws.cmd(&["import"])
        .current_dir(&ws.path(EBPF_PROBE).join("src"))
        .success()
        .stderr_contains("Next: `ebpf-probe -b` builds every probe.");
    assert_eq!(
        std::fs::read_to_string(ws.path(EBPF_PROBE).join("ebpf-probe.toml")).unwrap(),
        WORKSPACE_TOML
    );
}

#[test]
fn what_import_cannot_translate_is_listed_with_its_line_and_kept_as_a_comment() {
    let ws = Workspace::fixture_tree("gala-tree");
    let makefile = ws.path(EBPF_PROBE).join("src/sigprobe/Makefile");
    let mut text = std::fs::read_to_string(&makefile).unwrap();
    let line = text.lines().count() + 1;
    text.push_str("CFLAGS += $(shell pkg-config --cflags libfoo)\n");
    std::fs::write(&makefile, text).unwrap();
    let done = import(&ws, &[]);
    let entry = format!(
        "src/sigprobe/Makefile:{line}: `$(shell pkg-config --cflags libfoo)`: a compiler argument made from \
         `$(shell pkg-config --cflags libfoo)`, which runs a shell command when make runs (import runs none)"
    );
    done.stderr_contains("Not translated (1; also written as comments in the files above):")
        .stderr_contains(&format!("  {entry}\n"))
        .stderr_contains("meta *.meta (1); object sig_bpf/*.bpf.c without skeleton installed to sig_bpf/; 1 not translated");
    let probe_toml =
        std::fs::read_to_string(ws.path(EBPF_PROBE).join("src/sigprobe/probe.toml")).unwrap();
    assert!(
        probe_toml.contains(
            "# Not translated (also listed by `ebpf-probe import`):\n# - src/sigprobe/Makefile:"
        ),
        "{probe_toml}"
    );
}

/// Starts `binary`, runs `trigger` (which returns the line to expect), and asserts the line comes within 2 s.
fn assert_line(binary: &Path, args: &[&str], trigger: impl FnOnce() -> String) {
    let mut probe = RunningProbe::start(binary, args);
    let expected = trigger();
    let line = probe.wait_for_line(Duration::from_secs(2), |l| l.starts_with(&expected));
    assert!(
        line.is_some(),
        "{} printed no line starting {expected:?}; it printed {:#?}",
        binary.display(),
        probe.seen
    );
    let status = probe.terminate();
    assert!(
        status.success(),
        "{} stops cleanly on SIGTERM: {status}",
        binary.display()
    );
}

/// Runs `true`: exec_watch and exitprobe see its exec and exit.
fn run_true() -> u32 {
    let child = program("true").spawn();
    let pid = child.id();
    child.wait();
    pid
}

/// `kill -USR1` a sleeping child: sigprobe sees the kill program's kill(2).
fn kill_a_child() -> String {
    let mut victim = program("sleep").arg("30").spawn();
    let killer = program("kill")
        .args(["-USR1", &victim.id().to_string()])
        .spawn();
    let expected = format!("|sig_event|{}|10|{}|kill|", killer.id(), victim.id());
    killer.wait();
    victim.kill();
    victim.wait();
    expected
}

/// The whole tree through ebpf-probe: import, build, run each probe on the real kernel, install. Needs the core
/// to read the schema import writes ([layout], [build], [sources], the new probe.toml keys).
#[test]
fn fixture_tree_builds_runs_and_installs() {
    if !require_kernel() {
        return;
    }
    let ws = Workspace::fixture_tree("gala-tree");
    let root = ws.path(EBPF_PROBE);
    // vmlinux.h picks the per-arch header, which is generated here and never committed.
    let dump = program("bpftool")
        .args([
            "btf",
            "dump",
            "file",
            "/sys/kernel/btf/vmlinux",
            "format",
            "c",
        ])
        .success();
    std::fs::write(
        root.join("src/include/vmlinux_x86_64.h"),
        &dump.output.stdout,
    )
    .unwrap();
    import(&ws, &[]);
    // What a user does next: `--check --fix` installs what the imported configuration names beyond the SDK's
    // needs (here libstdc++ and the C++ compiler, for common/'s .cpp), then `-b`.
    crate::support::fix_environment(&ws, &["-C", EBPF_PROBE]);
    ws.cmd(&["-C", EBPF_PROBE, "-b"]).success();

    let bin = root.join(".output/bin");
    let me = std::process::id();
    assert_line(&bin.join("exec_watch"), &[], || {
        format!("|exec_event|{}|{me}|true|true|", run_true())
    });
    let object = root.join(".output/sigprobe/sig_bpf/kill.bpf.o");
    assert_line(
        &bin.join("sigprobe"),
        &[object.to_str().unwrap()],
        kill_a_child,
    );
    assert_line(&bin.join("exitprobe"), &[], || {
        format!("|proc_exit|{}|true|", run_true())
    });

    let dest = tempfile::tempdir().unwrap();
    ws.cmd(&[
        "-C",
        EBPF_PROBE,
        "install",
        "--destdir",
        dest.path().to_str().unwrap(),
    ])
    .success();
    assert_eq!(
        list_tree(dest.path()),
        [
            "opt",
            "opt/gala-gopher",
            "opt/gala-gopher/meta",
            "opt/gala-gopher/meta/exec_event.meta",
            "opt/gala-gopher/meta/exec_total.meta",
            "opt/gala-gopher/meta/exitprobe.meta",
            "opt/gala-gopher/meta/sigprobe.meta",
            "usr",
            "usr/bin",
            "usr/bin/extends",
            "usr/bin/extends/ebpf.probe",
            "usr/bin/extends/ebpf.probe/exec_watch",
            "usr/bin/extends/ebpf.probe/exitprobe",
            "usr/bin/extends/ebpf.probe/procagent1.so",
            "usr/bin/extends/ebpf.probe/sig_bpf",
            "usr/bin/extends/ebpf.probe/sig_bpf/kill.bpf.o",
            "usr/bin/extends/ebpf.probe/sigprobe",
            "var",
            "var/lib",
            "var/lib/ebpf-probe",
            "var/lib/ebpf-probe/installed.json",
        ]
    );
    // Installed, sigprobe finds its object in sig_bpf/ beside itself.
    let installed = dest.path().join("usr/bin/extends/ebpf.probe/sigprobe");
    assert_line(&installed, &[], kill_a_child);
}

/// `--check` in an imported tree lists the libraries its configuration names, with this distro's packages.
#[test]
fn check_lists_the_libraries_an_imported_tree_links() {
    let ws = Workspace::fixture_tree("gala-tree");
    import(&ws, &[]);
    let check = ws.cmd(&["-C", EBPF_PROBE, "check"]).try_output().unwrap();
    let stdout = String::from_utf8_lossy(&check.output.stdout).into_owned();
    assert!(stdout.contains("workspace libraries"), "{}", check.report());
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("stdc++") && l.contains("libstdc++")),
        "{}",
        check.report()
    );
}
