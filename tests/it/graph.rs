//! The build graph with the real tools: the precompiled kernel header (same objects, fallbacks), a no-op build
//! that starts no process, rebuilding exactly what an edit affects, interrupted builds, and the workspace lock.
//! The tools are wrapped by scripts that log each call and can stall or fail on cue.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::{require, require_build_tools, Workspace};

/// A BPF program and loader that use the SDK like a real probe (`bpf.h`, so the kernel header too).
fn sdk_probe(ws: Workspace, name: &str) -> Workspace {
    ws.file(
        &format!("probes/{name}/{name}.bpf.c"),
        &format!(
            r#"#define BPF_PROG_KERN
#include "bpf.h"
char LICENSE[] SEC("license") = "GPL";
SEC("tracepoint/syscalls/sys_enter_getpid")
int {name}_getpid(void *ctx) {{ return BPF_ANY; }}
"#
        ),
    )
    .file(
        &format!("probes/{name}/{name}.c"),
        &format!(
            r#"#include <stdio.h>
#include "{name}.skel.h"
int main(void) {{
    struct {name}_bpf *skel = {name}_bpf__open();
    printf("opened %d\n", skel != NULL);
    {name}_bpf__destroy(skel);
    return 0;
}}
"#
        ),
    )
}

fn ready() -> bool {
    require_build_tools() && require("kernel BTF", Path::new("/sys/kernel/btf/vmlinux").exists())
}

/// Scripts in `<ws>/.tools/` standing in for clang, llvm-strip, bpftool and cc: each appends its command line
/// to `.tools/calls`, then runs the real tool. `clang` also obeys `.tools/stall` (sleep after compiling a
/// `.bpf.c`, having touched `.tools/stalled`) and `.tools/no-pch` (fail to precompile a header).
struct Wrapped {
    dir: PathBuf,
}

impl Wrapped {
    fn new(ws: &Workspace) -> Wrapped {
        let dir = ws.path(".tools");
        std::fs::create_dir_all(&dir).unwrap();
        let wrap = |name: &str, real: &str, extra: &str| {
            let real = which(real);
            let script = format!(
                "#!/bin/sh\necho \"{name} $*\" >> '{log}'\n{extra}exec '{real}' \"$@\"\n",
                log = dir.join("calls").display(),
                real = real.display(),
            );
            let path = dir.join(name);
            std::fs::write(&path, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let clang_extra = format!(
            r#"case "$*" in
  *c-header*) [ -e '{dir}/no-pch' ] && {{ echo "error: cannot precompile here" >&2; exit 1; }} ;;
  *.bpf.c*) if [ -e '{dir}/stall' ]; then '{real}' "$@" || exit $?; touch '{dir}/stalled'; sleep 60; exit 0; fi ;;
esac
"#,
            dir = dir.display(),
            real = which("clang").display()
        );
        wrap("clang", "clang", &clang_extra);
        wrap("llvm-strip", "llvm-strip", "");
        wrap("bpftool", "bpftool", "");
        wrap("cc", "cc", "");
        Wrapped { dir }
    }

    fn cmd(&self, ws: &Workspace, args: &[&str]) -> crate::support::Run {
        let tool = |name: &str| self.dir.join(name).display().to_string();
        ws.cmd(args)
            .env("CLANG", &tool("clang"))
            .env("LLVM_STRIP", &tool("llvm-strip"))
            .env("BPFTOOL", &tool("bpftool"))
            .env("CC", &tool("cc"))
    }

    /// The tool calls since the last `take_calls`.
    fn take_calls(&self) -> Vec<String> {
        let log = self.dir.join("calls");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(String::from).collect()
    }

    fn flag(&self, name: &str, on: bool) {
        let path = self.dir.join(name);
        if on {
            std::fs::write(path, "").unwrap();
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{program}` is not on PATH"))
}

/// Moves `path`'s modification time a second into the future, as an editor saving it would (whatever the
/// file system's timestamp granularity).
fn touch(path: &Path) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(1))
        .unwrap();
}

fn built_and_fresh(stderr: &str) -> (Vec<String>, Vec<String>) {
    let names = |verb: &str| -> Vec<String> {
        let mut names: Vec<String> = stderr
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix(verb))
            .filter_map(|rest| rest.split_whitespace().next().map(String::from))
            .collect();
        names.sort();
        names
    };
    (names("Built "), names("Fresh "))
}

#[test]
fn objects_are_the_same_with_and_without_the_precompiled_header() {
    if !ready() {
        return;
    }
    let ws = sdk_probe(Workspace::new().shipped_probe("killprobe"), "sdkuser").gen();
    let plain = ws.cmd(&["-v", "-b"]).env("EBPF_PROBE_PCH", "0").success();
    assert!(
        !plain.stderr().contains("-include-pch"),
        "{}",
        plain.report()
    );
    let objects = [
        ".output/killprobe/killprobe.bpf.o",
        ".output/sdkuser/sdkuser.bpf.o",
    ];
    let without: Vec<Vec<u8>> = objects
        .iter()
        .map(|o| std::fs::read(ws.path(o)).unwrap())
        .collect();

    // Turning the header on changes the commands, so both objects are rebuilt, now through it.
    let precompiled = ws.cmd(&["-v", "-b"]).success();
    precompiled
        .stderr_contains("-x c-header include/vmlinux.h")
        .stderr_contains("-include-pch .output/pch/vmlinux-");
    let (built, _) = built_and_fresh(&precompiled.stderr());
    assert_eq!(built, ["killprobe", "sdkuser"], "{}", precompiled.report());
    for (object, before) in objects.iter().zip(&without) {
        assert!(
            std::fs::read(ws.path(object)).unwrap() == *before,
            "`{object}` differs when built with the precompiled header"
        );
    }
}

#[test]
fn a_noop_build_starts_no_process_and_an_edit_rebuilds_exactly_what_it_affects() {
    if !ready() {
        return;
    }
    let ws = sdk_probe(sdk_probe(Workspace::new(), "alpha"), "beta").gen();
    let tools = Wrapped::new(&ws);
    tools.cmd(&ws, &["-b"]).success();
    let cold = tools.take_calls();
    assert_eq!(
        cold.iter()
            .filter(|c| c.starts_with("clang") && c.contains("c-header"))
            .count(),
        1,
        "the kernel header is precompiled once for both probes: {cold:#?}"
    );
    assert_eq!(
        cold.iter()
            .filter(|c| c.starts_with("cc") && c.contains("lib/elf_path.c"))
            .count(),
        1,
        "lib/ is compiled once for both probes: {cold:#?}"
    );

    let noop = tools.cmd(&ws, &["-b"]).success();
    assert_eq!(
        tools.take_calls(),
        Vec::<String>::new(),
        "{}",
        noop.report()
    );
    assert_eq!(built_and_fresh(&noop.stderr()).1, ["alpha", "beta"]);

    touch(&ws.path("probes/alpha/alpha.bpf.c"));
    let one = tools.cmd(&ws, &["-b"]).success();
    assert_eq!(
        built_and_fresh(&one.stderr()),
        (vec!["alpha".to_string()], vec!["beta".to_string()]),
        "{}",
        one.report()
    );
    let calls = tools.take_calls();
    assert!(
        calls.iter().all(|c| !c.contains("beta")),
        "nothing of beta ran: {calls:#?}"
    );

    // ext_def.h reaches every BPF program through the kernel header (and its precompiled form); bpf.h reaches
    // every program and loader. The old Makefiles rebuilt nothing for either.
    for header in ["include/ext_def.h", "include/bpf.h"] {
        touch(&ws.path(header));
        let all = tools.cmd(&ws, &["-b"]).success();
        assert_eq!(
            built_and_fresh(&all.stderr()).0,
            ["alpha", "beta"],
            "touching {header}: {}",
            all.report()
        );
        tools.take_calls();
    }

    // -d changes every compile's flags, and back again.
    for args in [&["-b", "-d"][..], &["-b"][..]] {
        let switched = tools.cmd(&ws, args).success();
        assert_eq!(built_and_fresh(&switched.stderr()).0, ["alpha", "beta"]);
    }
    let headers: Vec<String> = crate::support::list_tree(&ws.path(".output/pch"))
        .into_iter()
        .filter(|p| p.ends_with(".pch"))
        .collect();
    assert_eq!(
        headers.len(),
        1,
        "only the header in use is kept: {headers:?}"
    );
    let binary = ws.path(".output/bin/beta");
    let run = Command::new(&binary).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "opened 1\n");
}

#[test]
fn when_clang_cannot_use_a_precompiled_header_the_build_goes_on_without_it() {
    if !ready() {
        return;
    }
    let ws = sdk_probe(Workspace::new(), "alpha").gen();
    let tools = Wrapped::new(&ws);

    tools.flag("no-pch", true);
    let refused = tools.cmd(&ws, &["-b"]).success();
    refused.stderr_contains("note: clang could not precompile `include/vmlinux.h`");
    assert!(ws.path(".output/bin/alpha").is_file());
    tools.flag("no-pch", false);
    tools.cmd(&ws, &["-b"]).success();

    // A damaged precompiled header: clang refuses it, the program is compiled without, and the next build
    // makes the header again.
    let pch = std::fs::read_dir(ws.path(".output/pch"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pch"))
        .expect("a precompiled header");
    std::fs::write(&pch, b"not a precompiled header").unwrap();
    tools.cmd(&ws, &["-b"]).success().stderr_contains(
        "clang refused the precompiled kernel header for `probes/alpha/alpha.bpf.c`",
    );
    tools.take_calls();
    tools.cmd(&ws, &["-b"]).success();
    assert!(tools.take_calls().iter().any(|c| c.contains("c-header")));
    assert!(std::fs::metadata(&pch).unwrap().len() > 1_000_000);
}

/// Starts `ebpf-probe -b` with the stalling clang, in its own process group, and waits until clang has
/// compiled a `.bpf.c` and stalled.
fn start_stalled_build(ws: &Workspace, tools: &Wrapped) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    tools.flag("stall", true);
    let mut command = tools.cmd(ws, &["-b"]).command;
    let child = command
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !tools.dir.join("stalled").exists() {
        assert!(Instant::now() < deadline, "clang never stalled");
        std::thread::sleep(Duration::from_millis(20));
    }
    tools.flag("stall", false);
    child
}

fn kill_group(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

#[test]
fn an_interrupted_build_leaves_no_output_a_later_build_would_trust() {
    if !ready() {
        return;
    }
    let ws = sdk_probe(Workspace::new(), "alpha").gen();
    let tools = Wrapped::new(&ws);
    let mut build = start_stalled_build(&ws, &tools);
    kill_group(&mut build);

    // clang finished writing, but the step did not: only a temp file may exist, never the object.
    let object = ws.path(".output/alpha/alpha.bpf.o");
    assert!(!object.exists(), "a half-made object was left in place");
    assert!(!ws.path(".output/alpha/.alpha.bpf.o.cmd").exists());

    let leftovers = |ws: &Workspace| -> Vec<String> {
        crate::support::list_tree(&ws.path(".output"))
            .into_iter()
            .filter(|p| p.contains(".tmp."))
            .collect()
    };
    assert!(!leftovers(&ws).is_empty(), "clang's temp output is there");

    let again = tools.cmd(&ws, &["-b"]).success();
    assert_eq!(built_and_fresh(&again.stderr()).0, ["alpha"]);
    assert_eq!(
        leftovers(&ws),
        Vec::<String>::new(),
        "the next build cleared it"
    );
    let run = Command::new(ws.path(".output/bin/alpha")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "opened 1\n");
}

#[test]
fn a_second_build_of_the_same_workspace_waits_for_the_first() {
    if !ready() {
        return;
    }
    let ws = sdk_probe(Workspace::new(), "alpha").gen();
    let tools = Wrapped::new(&ws);
    let mut first = start_stalled_build(&ws, &tools);
    let waiter = std::thread::spawn({
        let run = tools.cmd(&ws, &["-b"]);
        move || run.output()
    });
    // The second build must be waiting, not building alongside the first.
    std::thread::sleep(Duration::from_millis(700));
    assert!(!waiter.is_finished(), "the second build did not wait");
    kill_group(&mut first);
    let second = waiter.join().unwrap();
    assert!(second.output.status.success(), "{}", second.report());
    second.stderr_contains("Blocking waiting for another ebpf-probe build of this workspace");
    assert!(ws.path(".output/bin/alpha").is_file());
}

#[test]
fn a_terminal_gets_progress_bars_and_a_log_gets_one_line_per_step() {
    if !ready()
        || !require(
            "script (util-linux) for a pseudo-terminal",
            crate::support::has_program("script"),
        )
    {
        return;
    }
    let ws = sdk_probe(Workspace::new(), "alpha").gen();
    let logged = ws.cmd(&["-b"]).success();
    logged
        .stderr_contains("Precompiling include/vmlinux.h (")
        .stderr_contains("Compiling probes/alpha/alpha.bpf.c (")
        .stderr_contains("Generating .output/alpha/alpha.skel.h (")
        .stderr_contains("Linking .output/bin/alpha (")
        .stderr_contains("Built alpha → .output/bin/alpha");
    assert!(
        !logged.stderr().contains("Building ["),
        "{}",
        logged.report()
    );

    ws.cmd(&["-c"]).success();
    let _ptys = PseudoTerminals::ensure();
    let command = format!("{} -b", crate::support::BIN);
    let mut script = Command::new("script");
    script
        .args(["-qec", &command, "/dev/null"])
        .current_dir(ws.root())
        .env("TERM", "xterm");
    let output = script.output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        shown.contains("Building ["),
        "no bar on a terminal:\n{shown}"
    );
    assert!(shown.contains("Built alpha"), "{shown}");
    assert!(
        !shown.contains("Compiling probes/alpha/alpha.bpf.c ("),
        "per-step lines are for logs, not terminals:\n{shown}"
    );
}

/// Pseudo-terminals for `script`: a machine's /dev/pts is normally mounted, a bare root's (CI's fresh root) is
/// not. Then, as root, a private devpts instance is mounted there for the test (/dev/ptmx uses the one at
/// /dev/pts) and unmounted after.
struct PseudoTerminals {
    mounted: bool,
}

impl PseudoTerminals {
    fn ensure() -> PseudoTerminals {
        if Path::new("/dev/pts/ptmx").exists() {
            return PseudoTerminals { mounted: false };
        }
        let status = Command::new("mount")
            .args([
                "-t",
                "devpts",
                "-o",
                "newinstance,ptmxmode=0666",
                "devpts",
                "/dev/pts",
            ])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "/dev/pts is not mounted and mounting a devpts there failed ({status})"
        );
        PseudoTerminals { mounted: true }
    }
}

impl Drop for PseudoTerminals {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("/dev/pts").status();
        }
    }
}
