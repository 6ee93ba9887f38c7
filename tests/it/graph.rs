//! The build graph with the real tools, for what only they can show: the precompiled kernel header gives the
//! same objects, real `-MD` dependency files (system headers included) make a no-op build start nothing and
//! carry SDK header edits to every program, and clang's own refusal of a damaged precompiled header is
//! recognised. The tools are wrapped by scripts that log each call. The graph's logic itself (what reruns
//! after which edit, ordering, failures, interruptions, the lock, progress output) is tested with fake tools
//! in `fast`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::support::{built_and_fresh, has_program, require, require_build_tools, Workspace};

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
/// to `.tools/calls`, then runs the real tool.
struct Wrapped {
    dir: PathBuf,
}

impl Wrapped {
    fn new(ws: &Workspace) -> Wrapped {
        let dir = ws.path(".tools");
        std::fs::create_dir_all(&dir).unwrap();
        let wrap = |name: &str| {
            let real = which(name);
            let script = format!(
                "#!/bin/sh\necho \"{name} $*\" >> '{log}'\nexec '{real}' \"$@\"\n",
                log = dir.join("calls").display(),
                real = real.display(),
            );
            let path = dir.join(name);
            std::fs::write(&path, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        for tool in ["clang", "llvm-strip", "bpftool", "cc"] {
            wrap(tool);
        }
        Wrapped { dir }
    }

    fn cmd(&self, ws: &Workspace, args: &[&str]) -> crate::support::Run {
        let tool = |name: &str| self.dir.join(name).display().to_string();
        ws.cmd(args)
            .env("CLANG", tool("clang"))
            .env("LLVM_STRIP", tool("llvm-strip"))
            .env("BPFTOOL", tool("bpftool"))
            .env("CC", tool("cc"))
    }

    /// The tool calls since the last `take_calls`.
    fn take_calls(&self) -> Vec<String> {
        let log = self.dir.join("calls");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(String::from).collect()
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

#[test]
fn objects_are_the_same_with_and_without_the_precompiled_headers() {
    if !ready() {
        return;
    }
    // sdkuser's and sdkother's loaders open alike (`<stdio.h>`): their prelude is precompiled for both. sdkup's
    // BPF side opens with the user-side prelude: with the kernel-side one, two preludes chained on one precompiled
    // kernel header.
    let ws = sdk_probe(
        sdk_probe(Workspace::new().shipped_probe("killprobe"), "sdkuser"),
        "sdkother",
    )
    .file(
        "probes/sdkup/sdkup.bpf.c",
        "#define BPF_PROG_USER\n#include \"bpf.h\"\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n\
         SEC(\"uprobe\")\nint sdkup_call(struct pt_regs *ctx) { return PT_REGS_PARM1(ctx) ? 1 : 0; }\n",
    )
    .file("probes/sdkup/sdkup.c", "int main(void) { return 0; }\n")
    .gen();
    let plain = ws.cmd(&["-v", "-b"]).env("EBPF_PROBE_PCH", "0").success();
    assert!(
        !plain.stderr().contains("-include-pch") && !plain.stderr().contains("-include .output"),
        "{}",
        plain.report()
    );
    let objects = [
        ".output/killprobe/killprobe.bpf.o",
        ".output/sdkuser/sdkuser.bpf.o",
        ".output/sdkup/sdkup.bpf.o",
        ".output/sdkup/sdkup.skel.h",
        ".output/killprobe/killprobe.o",
        ".output/sdkuser/sdkuser.o",
        ".output/sdkother/sdkother.o",
    ];
    let without: Vec<Vec<u8>> = objects
        .iter()
        .map(|o| std::fs::read(ws.path(o)).unwrap())
        .collect();

    // Turning the header on changes the commands, so both objects are rebuilt, now through it.
    let precompiled = ws.cmd(&["-v", "-b"]).success();
    precompiled
        .stderr_contains("-x c-header .output/pch/prelude-")
        .stderr_contains("-include-pch .output/pch/prelude-")
        .stderr_contains("-x c-header .output/pch/loader-")
        .stderr_contains("-include .output/pch/loader-");
    let chained = precompiled
        .stderr()
        .lines()
        .filter(|l| l.contains("-x c-header .output/pch/prelude-") && l.contains("-include-pch"))
        .count();
    assert_eq!(
        chained,
        2,
        "both preludes chained on the kernel header\n{}",
        precompiled.report()
    );
    let (built, _) = built_and_fresh(&precompiled.stderr());
    assert_eq!(
        built,
        // sdkup's BPF object is compiled again too, to the same bytes; its loader includes no skeleton.
        ["killprobe", "sdkother", "sdkuser"],
        "{}",
        precompiled.report()
    );
    for (object, before) in objects.iter().zip(&without) {
        assert!(
            std::fs::read(ws.path(object)).unwrap() == *before,
            "`{object}` differs when built with the precompiled headers"
        );
    }
}

#[test]
fn real_dependency_files_make_a_noop_build_start_nothing_and_carry_sdk_header_edits() {
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

    // clang's and cc's depfiles name system headers too (/usr/include/…): all older than the outputs.
    let noop = tools.cmd(&ws, &["-b"]).success();
    assert_eq!(
        tools.take_calls(),
        Vec::<String>::new(),
        "{}",
        noop.report()
    );
    assert_eq!(built_and_fresh(&noop.stderr()).1, ["alpha", "beta"]);

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
    let run = ws.program(ws.path(".output/bin/beta")).success();
    assert_eq!(run.stdout(), "opened 1\n", "{}", run.report());
}

#[test]
fn a_precompiled_header_clang_refuses_is_done_without_and_made_again() {
    if !ready() {
        return;
    }
    let ws = sdk_probe(Workspace::new(), "alpha").gen();
    let tools = Wrapped::new(&ws);
    tools.cmd(&ws, &["-b"]).success();

    // A damaged precompiled header: clang refuses it (in its own words, which the build must recognise), the
    // program is compiled without, and the next build makes the header again.
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

/// A probe whose own clang flags name one of its files (`-include local.h`) gets a precompiled header compiled with
/// its include path: no failure note, the program uses the header, and a second build starts nothing.
#[test]
fn a_probe_flag_that_names_its_own_header_still_gets_a_precompiled_header() {
    if !ready() {
        return;
    }
    let ws = Workspace::new()
        .shipped_probe("killprobe")
        .file(
            "probes/killprobe/probe.toml",
            "clang_flags = [\"-include\", \"local.h\"]\n",
        )
        .file(
            "probes/killprobe/local.h",
            "#define KILLPROBE_LOCAL_HEADER 1\n",
        )
        .gen();
    let built = ws.cmd(&["-v", "-b"]).success();
    assert!(
        !built.stderr().contains("could not precompile"),
        "{}",
        built.report()
    );
    let compile = built
        .stderr()
        .lines()
        .find(|l| l.contains("killprobe.bpf.c") && l.contains("clang"))
        .map(String::from)
        .unwrap_or_default();
    assert!(compile.contains("-include-pch"), "{}", built.report());
    let again = ws.cmd(&["-v", "-b"]).success();
    assert!(
        !again.stderr().contains("Running `"),
        "a no-op build starts nothing: {}",
        again.report()
    );
}

/// Every `-b` leaves `compile_commands.json` for editors: each compile with the arguments that ran, minus the
/// precompiled header, so clang alone (as clangd would) can check each file with them.
#[test]
fn every_build_writes_a_compilation_database_clang_can_use() {
    if !ready() {
        return;
    }
    let ws = Workspace::new().shipped_probe("killprobe").gen();
    ws.cmd(&["-b"]).success();
    let path = ws.path("compile_commands.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let files: Vec<&str> = entries
        .iter()
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"probes/killprobe/killprobe.bpf.c"),
        "{files:?}"
    );
    assert!(files.contains(&"probes/killprobe/killprobe.c"), "{files:?}");
    assert!(files.iter().any(|f| f.starts_with("lib/")), "{files:?}");
    assert!(!text.contains("-include-pch"), "{text}");
    for entry in &entries {
        // The recorded command, checked for syntax only: it must stand on its own.
        let arguments: Vec<String> = entry["arguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let mut check: Vec<String> = Vec::new();
        let mut skip = false;
        for argument in &arguments[1..] {
            if skip {
                skip = false;
            } else if ["-o", "-MF", "-MT"].contains(&argument.as_str()) {
                skip = true;
            } else if argument != "-MD" {
                check.push(argument.clone());
            }
        }
        check.push("-fsyntax-only".into());
        crate::support::program(&arguments[0])
            .args(&check)
            .current_dir(Path::new(entry["directory"].as_str().unwrap()))
            .success();
    }
    // A no-op build leaves it as it was.
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    ws.cmd(&["-b"]).success();
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    // `-c` takes it with the outputs, and the next build writes it again (it is not taken for someone else's).
    ws.cmd(&["-c"]).success();
    assert!(!path.exists());
    let rebuilt = ws.cmd(&["-b"]).success();
    assert!(!rebuilt.stderr().contains("kept"), "{}", rebuilt.report());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // An edited one is the user's: `-c` leaves it.
    std::fs::write(&path, "[]\n").unwrap();
    ws.cmd(&["-c"]).success();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "[]\n");
}

/// What the issue asks of editor support, with the editor's own server: `clangd --check` (Debian's clangd package,
/// which `--check --fix` installs) finds no error in a `.bpf.c` and a loader `.c` of a freshly built workspace.
#[test]
fn clangd_finds_no_error_in_a_built_workspace() {
    if !ready()
        || !require(
            "clangd (`ebpf-probe --check --fix` installs it)",
            has_program("clangd"),
        )
    {
        return;
    }
    let ws = Workspace::new().shipped_probe("killprobe").gen();
    ws.cmd(&["-b"]).success();
    for file in [
        "probes/killprobe/killprobe.bpf.c",
        "probes/killprobe/killprobe.c",
    ] {
        let done = ws
            .program("clangd")
            .arg(format!("--check={file}"))
            .success();
        assert!(
            done.stderr().contains("All checks completed, 0 errors"),
            "{}",
            done.report()
        );
    }
}
