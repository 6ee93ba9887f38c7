//! The fast tier: the build graph, freshness and planning with fake tools, so it needs no clang, bpftool or
//! kernel and runs in seconds. The fakes are shell scripts in `<workspace>/.tools/` given through `CLANG`,
//! `LLVM_STRIP`, `BPFTOOL` and `CC` (and a fake `make` first on PATH, which "builds" a fake libbpf given with
//! `[libbpf] policy`); each logs its command line to `.tools/calls` when it starts and a `done …` line when it
//! has finished. What the real tools do to the same graph is tested in `graph` and `build`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::support::{
    built_and_fresh, list_tree, program, repo_root, require, Run, Spawned, Workspace,
};

/// The kernel these builds are for (`VMLINUX_VER`); the workspace has a fake header for it.
const RELEASE: &str = "6.1.0-fake";

/// What `gen` would write, reduced to what matters here: the guard and the `ext_def.h` include.
const KERNEL_HEADER: &str =
    "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\nstruct task_struct;\n#include \"ext_def.h\"\n#endif\n";

/// The prelude of every fake: who it is, and one log line per start.
const PRELUDE: &str = r#"#!/bin/sh
# A fake @NAME@ for ebpf-probe's fast tests (tests/it/fast.rs): logs its command line and does the least the
# build needs of it.
tools='@TOOLS@'
args="$*"
echo "@NAME@ $args" >> "$tools/calls"
"#;

/// clang and cc: `--version`; a compile (`-c SRC`, or `-x c-header HEADER`) writes `-o` and a `-MD -MF` depfile
/// listing the source and each `#include "…"` it names that is found beside it or in a `-I` dir (one level, as
/// far as these tests need); a link writes `-o`. Fails like a compiler on a source containing
/// `FAKE_COMPILE_ERROR`, refuses to precompile while `.tools/no-pch` exists, and after compiling a `.bpf.c`
/// while `.tools/stall` exists writes its name to `.tools/stalled` and sleeps.
const COMPILER: &str = r#"if [ "$1" = --version ]; then echo '@VERSION@'; exit 0; fi
out= dep= target= src= lang= incs=
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift ;;
    -MF) dep=$2; shift ;;
    -MT) target=$2; shift ;;
    -c) src=$2; shift ;;
    -x) lang=$2; shift ;;
    -target|-include-pch|-idirafter) shift ;;
    -I*) incs="$incs ${1#-I}" ;;
    -*) ;;
    *.h) src=$1 ;;
  esac
  shift
done
[ -n "$out" ] || { echo "fake @NAME@: no -o in: $args" >&2; exit 2; }
if [ "$lang" = c-header ] && [ -e "$tools/no-pch" ]; then
  echo "error: cannot precompile here (fake @NAME@)" >&2; exit 1
fi
if [ -n "$src" ] && grep -q FAKE_COMPILE_ERROR "$src"; then
  echo "$src:3:1: error: expected ';' after top level declarator (fake @NAME@)" >&2; exit 1
fi
echo "fake @NAME@ output for ${src:-a link}" > "$out"
if [ -n "$dep" ]; then
  # Every header reached through `#include "…"`, at any depth, as a real compiler lists them.
  deps=$src todo=$src seen=" $src "
  while [ -n "$todo" ]; do
    next=
    for file in $todo; do
      for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file"); do
        for dir in $(dirname "$file") $incs; do
          if [ -f "$dir/$inc" ]; then
            case "$seen" in *" $dir/$inc "*) ;; *) seen="$seen$dir/$inc " deps="$deps $dir/$inc" next="$next $dir/$inc" ;; esac
            break
          fi
        done
      done
    done
    todo=$next
  done
  echo "$target: $deps" > "$dep"
fi
case "$src" in
  *.bpf.c) if [ -e "$tools/stall" ]; then echo $$ > "$tools/stalled.pid"; echo "$src" > "$tools/stalled"; exec sleep 60; fi ;;
esac
echo "done @NAME@ $args" >> "$tools/calls"
"#;

const STRIP: &str = r#"if [ "$1" = --version ]; then echo 'LLVM version 17.0.6 (fake)'; exit 0; fi
[ "$1" = -g ] || { echo "fake llvm-strip: cannot do: $args" >&2; exit 2; }
shift
for file; do
  [ -f "$file" ] || { echo "fake llvm-strip: no file $file" >&2; exit 1; }
  # While `.tools/bad-strip` names a probe, its object is one llvm-strip cannot read.
  if [ -e "$tools/bad-strip" ]; then
    case "$file" in *"$(cat "$tools/bad-strip")"*) echo "llvm-strip: error: '$file': truncated ELF" >&2; exit 1 ;; esac
  fi
  echo stripped >> "$file"
done
echo "done llvm-strip $args" >> "$tools/calls"
"#;

/// `bpftool version`, and `gen skeleton OBJ name NAME` printing a header (slowly while `.tools/slow-bpftool` exists).
const BPFTOOL: &str = r#"case "$1" in
  version|--version|-V) echo 'bpftool v7.1.0'; echo 'using libbpf v1.1'; exit 0 ;;
esac
if [ "$1 $2 $4" != "gen skeleton name" ]; then echo "fake bpftool: cannot do: $args" >&2; exit 2; fi
[ -f "$3" ] || { echo "Error: failed to open BPF object file $3" >&2; exit 255; }
if [ -e "$tools/slow-bpftool" ]; then sleep 0.3; fi
printf '/* fake skeleton of %s */\nstruct %s;\n' "$3" "$5"
echo "done bpftool $args" >> "$tools/calls"
"#;

/// libbpf's Makefile as ebpf-probe runs it: installs a static library and versioned headers into DESTDIR.
const MAKE: &str = r#"dest=
for arg; do case "$arg" in DESTDIR=*) dest=${arg#DESTDIR=} ;; esac; done
[ -n "$dest" ] || { echo "fake make: no DESTDIR in: $args" >&2; exit 2; }
mkdir -p "$dest/lib" "$dest/include/bpf" "$dest/include/linux"
echo fake > "$dest/lib/libbpf.a"
echo '/* fake libbpf.h */' > "$dest/include/bpf/libbpf.h"
printf '#define LIBBPF_MAJOR_VERSION 1\n#define LIBBPF_MINOR_VERSION 7\n' > "$dest/include/bpf/libbpf_version.h"
echo "done make $args" >> "$tools/calls"
"#;

/// The fake tools of one workspace, and their log.
struct Fakes {
    dir: PathBuf,
}

impl Fakes {
    fn install(ws: &Workspace) -> Fakes {
        let dir = ws.path(".tools");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let script = |path: PathBuf, name: &str, body: &str, version: &str| {
            let text = format!("{PRELUDE}{body}")
                .replace("@NAME@", name)
                .replace("@TOOLS@", &dir.display().to_string())
                .replace("@VERSION@", version);
            std::fs::write(&path, text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        script(
            dir.join("clang"),
            "clang",
            COMPILER,
            "clang version 17.0.6 (fake)",
        );
        script(dir.join("cc"), "cc", COMPILER, "cc (fake) 12.2.0");
        script(dir.join("llvm-strip"), "llvm-strip", STRIP, "");
        script(dir.join("bpftool"), "bpftool", BPFTOOL, "");
        script(dir.join("bin/make"), "make", MAKE, "");
        // A libbpf source tree is recognised by its src/Makefile; the fake make never reads it.
        std::fs::create_dir_all(dir.join("libbpf/src")).unwrap();
        std::fs::write(dir.join("libbpf/src/Makefile"), "# read by nobody\n").unwrap();
        Fakes { dir }
    }

    /// `run` with the fakes in place of the real tools, its own libbpf cache, and nothing from the caller's
    /// environment that changes a build.
    fn env(&self, run: Run) -> Run {
        let tool = |name: &str| self.dir.join(name);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(self.dir.join("bin")).chain(std::env::split_paths(&path)),
        )
        .unwrap();
        run.env("CLANG", tool("clang"))
            .env("LLVM_STRIP", tool("llvm-strip"))
            .env("BPFTOOL", tool("bpftool"))
            .env("CC", tool("cc"))
            .env("PATH", path)
            .env("EBPF_PROBE_CACHE_DIR", self.dir.join("cache"))
            .env("VMLINUX_VER", RELEASE)
            .env_remove("BUILD_OPTS")
            .env_remove("EXTEND_PROBES")
            .env_remove("EBPF_PROBE_PCH")
    }

    fn cmd(&self, ws: &Workspace, args: &[&str]) -> Run {
        self.env(ws.cmd(args))
    }

    /// Every log line since the last `take_events`: starts (`clang …`) and ends (`done clang …`), in order.
    fn take_events(&self) -> Vec<String> {
        let log = self.dir.join("calls");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(String::from).collect()
    }

    /// The steps started since the last take, in the order they started (see `step_of`).
    fn take_steps(&self) -> Vec<String> {
        self.take_events()
            .iter()
            .filter(|e| !e.starts_with("done "))
            .flat_map(|e| steps_of(e))
            .collect()
    }

    fn cue(&self, name: &str, on: bool) {
        let path = self.dir.join(name);
        if on {
            std::fs::write(path, "").unwrap();
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A logged command line as the step it is: `clang probes/a/a.bpf.c`, `strip .output/a/a.bpf.o`,
/// `skeleton .output/a/a.bpf.o`, `cc lib/x.c`, `link .output/bin/a`, `precompile prelude` (a BPF source's prelude,
/// `.output/pch/prelude-<key>.h`), `make`,
/// `clang --version`. Temp outputs are shown as the output they become. One llvm-strip of many objects is one
/// `strip` step per object.
fn steps_of(call: &str) -> Vec<String> {
    let words: Vec<&str> = call.split_whitespace().collect();
    match words.first() {
        Some(&"llvm-strip") if words.get(1) == Some(&"-g") => words[2..]
            .iter()
            .map(|o| format!("strip {}", final_name(o)))
            .collect(),
        _ => vec![step_of(call)],
    }
}

fn step_of(call: &str) -> String {
    let words: Vec<&str> = call.split_whitespace().collect();
    let after = |flag: &str| {
        let at = words.iter().position(|w| *w == flag)?;
        words.get(at + 1).map(|w| final_name(w))
    };
    let tool = words[0];
    let step = match tool {
        _ if words.get(1) == Some(&"--version") => Some(format!("{tool} --version")),
        "clang" | "cc" if words.contains(&"c-header") => after("c-header").map(|h| {
            if h.starts_with(".output/pch/prelude-") {
                "precompile prelude".to_string()
            } else if h.starts_with(".output/pch/loader-") {
                "precompile loader prelude".to_string()
            } else {
                format!("precompile {h}")
            }
        }),
        "clang" | "cc" => after("-c")
            .map(|source| format!("{tool} {source}"))
            .or_else(|| after("-o").map(|binary| format!("link {binary}"))),
        "llvm-strip" => words.last().map(|o| format!("strip {}", final_name(o))),
        "bpftool" => words.get(3).map(|o| format!("skeleton {o}")),
        "make" => Some("make".to_string()),
        _ => None,
    };
    step.unwrap_or_else(|| panic!("a log line no fake writes: {call}"))
}

/// `.output/a/.a.bpf.o.tmp.123` → `.output/a/a.bpf.o`.
fn final_name(path: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), path),
    };
    match name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp.")) {
        Some((base, _)) => format!("{dir}{base}"),
        None => path.to_string(),
    }
}

/// The steps of one C probe whose BPF program is `stem`, in the order they must run.
fn probe_steps(probe: &str, stem: &str) -> Vec<String> {
    vec![
        format!("clang probes/{probe}/{stem}.bpf.c"),
        format!("strip .output/{probe}/{stem}.bpf.o"),
        format!("skeleton .output/{probe}/{stem}.bpf.o"),
        format!("cc probes/{probe}/{probe}.c"),
        format!("link .output/bin/{probe}"),
    ]
}

/// `cc lib/<x>.c` for each of the SDK's `lib/*.c` (the workspace copies this repository's).
fn lib_steps() -> Vec<String> {
    let mut steps: Vec<String> = std::fs::read_dir(repo_root().join("lib"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".c"))
        .map(|n| format!("cc lib/{n}"))
        .collect();
    steps.sort();
    assert!(!steps.is_empty(), "the SDK has a lib/*.c");
    steps
}

fn sorted(mut steps: Vec<String>) -> Vec<String> {
    steps.sort();
    steps
}

/// A BPF program that opens with the SDK's `bpf.h`, as a real probe does (so the precompiled header applies).
fn sdk_program(name: &str) -> String {
    format!(
        "#define BPF_PROG_KERN\n#include \"bpf.h\"\nchar LICENSE[] SEC(\"license\") = \"GPL\";\nint {name}_prog(void *ctx) {{ return 0; }}\n"
    )
}

/// A loader that includes its skeleton(s).
fn loader(stems: &[&str]) -> String {
    let includes: String = stems
        .iter()
        .map(|s| format!("#include \"{s}.skel.h\"\n"))
        .collect();
    format!("#include <stdio.h>\n{includes}int main(void) {{ return 0; }}\n")
}

/// A workspace with a fake kernel header and the fake libbpf, and its fakes. `alpha` opens with `bpf.h`,
/// `beta` with `vmlinux.h` only: an edit of `bpf.h` concerns alpha alone.
fn workspace() -> (Workspace, Fakes) {
    let ws = Workspace::new()
        .file(
            "ebpf-probe.toml",
            "# The fast tests' workspace: a fake libbpf source tree, \"built\" by the fake make.\n[libbpf]\npolicy = \".tools/libbpf\"\n",
        )
        .file(&format!("include/linux_{RELEASE}.h"), KERNEL_HEADER)
        .file("probes/alpha/alpha.bpf.c", &sdk_program("alpha"))
        .file("probes/alpha/alpha.c", &loader(&["alpha"]))
        .file(
            "probes/beta/beta.bpf.c",
            "#include \"vmlinux.h\"\nint beta_prog(void *ctx) { return 0; }\n",
        )
        .file("probes/beta/beta.c", &loader(&["beta"]));
    let fakes = Fakes::install(&ws);
    (ws, fakes)
}

/// Everything a cold build of `workspace()` runs.
fn cold_steps() -> Vec<String> {
    // alpha's prelude (`#define BPF_PROG_KERN` + bpf.h) and beta's (vmlinux.h) each get a precompiled header.
    let mut steps = vec![
        "clang --version".to_string(),
        "make".to_string(),
        "precompile prelude".to_string(),
        "precompile prelude".to_string(),
    ];
    // Both loaders open with `#include <stdio.h>`: precompiled once, when the system has the header.
    if ["/usr/local/include/stdio.h", "/usr/include/stdio.h"]
        .iter()
        .any(|h| Path::new(h).is_file())
    {
        steps.push("precompile loader prelude".to_string());
    }
    steps.extend(lib_steps());
    steps.extend(probe_steps("alpha", "alpha"));
    steps.extend(probe_steps("beta", "beta"));
    sorted(steps)
}

/// Gives `path` a modification time after every output so far and before any output written from now on (file
/// times come from a clock that may lag the system clock by a tick).
fn touch(path: &Path) {
    std::thread::sleep(Duration::from_millis(40));
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_millis(20))
        .unwrap();
}

#[test]
fn a_cold_build_runs_each_step_once_and_a_second_build_starts_no_tool() {
    let (ws, fakes) = workspace();
    let cold = fakes.cmd(&ws, &["-b"]).success();
    assert_eq!(
        sorted(fakes.take_steps()),
        cold_steps(),
        "{}",
        cold.report()
    );
    assert!(ws.path(".output/bin/alpha").is_file() && ws.path(".output/bin/beta").is_file());

    let noop = fakes.cmd(&ws, &["-b"]).success();
    assert_eq!(
        fakes.take_events(),
        Vec::<String>::new(),
        "{}",
        noop.report()
    );
    assert_eq!(
        built_and_fresh(&noop.stderr()),
        (vec![], vec!["alpha".to_string(), "beta".to_string()]),
        "{}",
        noop.report()
    );
}

#[test]
fn touching_a_bpf_program_reruns_exactly_its_compile_strip_skeleton_loader_and_link() {
    let (ws, fakes) = workspace();
    fakes.cmd(&ws, &["-b"]).success();
    fakes.take_events();

    touch(&ws.path("probes/alpha/alpha.bpf.c"));
    let one = fakes.cmd(&ws, &["-b"]).success();
    // Each step needs the one before, so this is also the order.
    assert_eq!(
        fakes.take_steps(),
        probe_steps("alpha", "alpha"),
        "{}",
        one.report()
    );
    assert_eq!(
        built_and_fresh(&one.stderr()),
        (vec!["alpha".to_string()], vec!["beta".to_string()])
    );
    fakes.cmd(&ws, &["-b"]).success();
    assert_eq!(fakes.take_events(), Vec::<String>::new(), "settled again");
}

#[test]
fn touching_a_header_reruns_what_its_depfile_names() {
    let (ws, fakes) = workspace();
    fakes.cmd(&ws, &["-b"]).success();
    fakes.take_events();
    let depfile = std::fs::read_to_string(ws.path(".output/alpha/alpha.bpf.unstripped.d")).unwrap();
    assert!(depfile.contains("include/bpf.h"), "{depfile}");

    // bpf.h is in alpha's depfiles only (its program's and its prelude's): alpha's precompiled header is made
    // again, then alpha.
    touch(&ws.path("include/bpf.h"));
    let sdk = fakes.cmd(&ws, &["-b"]).success();
    let mut expected = vec!["precompile prelude".to_string()];
    expected.extend(probe_steps("alpha", "alpha"));
    assert_eq!(fakes.take_steps(), expected, "{}", sdk.report());

    // ext_def.h is in both preludes' depfiles (through vmlinux.h): both headers are made again, and every
    // BPF program compiled with them follows.
    touch(&ws.path("include/ext_def.h"));
    let kernel = fakes.cmd(&ws, &["-b"]).success();
    let mut expected = vec![
        "precompile prelude".to_string(),
        "precompile prelude".to_string(),
    ];
    expected.extend(probe_steps("alpha", "alpha"));
    expected.extend(probe_steps("beta", "beta"));
    assert_eq!(
        sorted(fakes.take_steps()),
        sorted(expected),
        "{}",
        kernel.report()
    );

    // A header of lib/ (found beside its source): that object, and every link that takes it.
    touch(&ws.path("lib/elf_path.h"));
    let lib = fakes.cmd(&ws, &["-b"]).success();
    assert_eq!(
        sorted(fakes.take_steps()),
        sorted(vec![
            "cc lib/elf_path.c".to_string(),
            "link .output/bin/alpha".to_string(),
            "link .output/bin/beta".to_string(),
        ]),
        "{}",
        lib.report()
    );
}

#[test]
fn debug_changes_every_compile_and_only_the_header_in_use_is_kept() {
    let (ws, fakes) = workspace();
    fakes.cmd(&ws, &["-b"]).success();
    fakes.take_events();
    let every_step: Vec<String> = cold_steps()
        .into_iter()
        .filter(|s| s != "make" && s != "clang --version")
        .collect();

    for (args, debug) in [(&["-b", "-d"][..], true), (&["-b"][..], false)] {
        let switched = fakes.cmd(&ws, args).success();
        let events = fakes.take_events();
        let starts: Vec<&String> = events.iter().filter(|e| !e.starts_with("done ")).collect();
        // The skeletons' command does not change, but their objects did; so every step runs.
        assert_eq!(
            sorted(starts.iter().flat_map(|e| steps_of(e)).collect()),
            every_step,
            "{args:?}\n{}",
            switched.report()
        );
        for compile in starts.iter().filter(|e| e.contains(" -c ")) {
            assert_eq!(
                compile.contains("-DGOPHER_DEBUG"),
                debug,
                "{args:?}: {compile}"
            );
        }
    }
    let headers: Vec<String> = list_tree(&ws.path(".output/pch"))
        .into_iter()
        .filter(|p| p.ends_with(".pch"))
        .collect();
    assert_eq!(
        headers.len(),
        2,
        "only the headers in use (alpha's and beta's preludes) are kept: {headers:?}"
    );
    fakes.cmd(&ws, &["-b"]).success();
    assert_eq!(fakes.take_events(), Vec::<String>::new());
}

#[test]
fn a_changed_tool_reruns_what_it_made() {
    let (ws, fakes) = workspace();
    fakes.cmd(&ws, &["-b"]).success();
    fakes.take_events();
    // A new bpftool (same path, new file): the skeletons, then what includes them.
    touch(&fakes.dir.join("bpftool"));
    let done = fakes.cmd(&ws, &["-b"]).success();
    let expected: Vec<String> = ["alpha", "beta"]
        .iter()
        .flat_map(|p| probe_steps(p, p).into_iter().skip(2))
        .collect();
    assert_eq!(
        sorted(fakes.take_steps()),
        sorted(expected),
        "{}",
        done.report()
    );
}

#[test]
fn a_failing_compile_fails_only_its_probe_and_the_summary_names_it() {
    let (ws, fakes) = workspace();
    let ws = ws
        .file(
            "probes/broken/broken.bpf.c",
            "#include \"vmlinux.h\"\n/* FAKE_COMPILE_ERROR */\nint oops(\n",
        )
        .file("probes/broken/broken.c", &loader(&["broken"]));
    let done = fakes.cmd(&ws, &["-b"]).failure();
    done.stderr_contains("error: probe `broken` failed to build")
        .stderr_contains("probes/broken/broken.bpf.c:3:1: error: expected ';'")
        .stderr_contains("1 of 3 probes failed to build: broken (their errors are above; 2 built)")
        .stderr_contains("Built alpha")
        .stderr_contains("Built beta");
    let steps = fakes.take_steps();
    let of_broken: Vec<&String> = steps.iter().filter(|s| s.contains("broken")).collect();
    assert_eq!(
        of_broken,
        ["clang probes/broken/broken.bpf.c"],
        "nothing after the failed compile runs\n{}",
        done.report()
    );
    assert!(ws.path(".output/bin/alpha").is_file() && ws.path(".output/bin/beta").is_file());
    assert!(!ws.path(".output/bin/broken").exists());

    // The next build retries only the broken program.
    fakes.cmd(&ws, &["-b"]).failure();
    assert_eq!(fakes.take_steps(), ["clang probes/broken/broken.bpf.c"]);
}

#[test]
fn objects_ready_together_are_stripped_by_one_llvm_strip_and_a_bad_one_fails_only_its_probe() {
    let (ws, fakes) = workspace();
    // One worker: both programs compile before either strip is taken (compiles head longer chains).
    fakes.cmd(&ws, &["-b", "-j", "1"]).success();
    let strips: Vec<String> = fakes
        .take_events()
        .into_iter()
        .filter(|e| e.starts_with("llvm-strip"))
        .collect();
    assert_eq!(strips.len(), 1, "{strips:?}");
    assert_eq!(
        sorted(steps_of(&strips[0])),
        [
            "strip .output/alpha/alpha.bpf.o",
            "strip .output/beta/beta.bpf.o"
        ]
    );
    // The unstripped objects stay; the stripped ones are what skeletons are made from.
    for probe in ["alpha", "beta"] {
        let object = ws.path(&format!(".output/{probe}/{probe}.bpf.o"));
        let unstripped = ws.path(&format!(".output/{probe}/{probe}.bpf.unstripped.o"));
        assert!(std::fs::read_to_string(&object)
            .unwrap()
            .ends_with("stripped\n"));
        assert!(!std::fs::read_to_string(&unstripped)
            .unwrap()
            .contains("stripped"));
    }

    // An object llvm-strip refuses, in a batch with a good one: the batch is redone one object at a time, so
    // only that probe fails.
    let ws = ws
        .file(
            "probes/gamma/gamma.bpf.c",
            "#include \"vmlinux.h\"\nint gamma_prog(void *ctx) { return 0; }\n",
        )
        .file("probes/gamma/gamma.c", &loader(&["gamma"]));
    touch(&ws.path("probes/alpha/alpha.bpf.c"));
    std::fs::write(ws.path(".tools/bad-strip"), "gamma").unwrap();
    let done = fakes.cmd(&ws, &["-b", "-j", "1"]).failure();
    done.stderr_contains("error: probe `gamma` failed to build")
        .stderr_contains("truncated ELF")
        .stderr_contains("1 of 3 probes failed to build: gamma")
        .stderr_contains("Built alpha");
    assert!(!ws.path(".output/gamma/gamma.bpf.o").exists());
    assert!(!ws.path(".output/bin/gamma").exists());
}

#[test]
fn a_loader_waits_for_all_its_skeletons_and_the_link_for_every_object() {
    let (ws, fakes) = workspace();
    let ws = ws
        .file("probes/multi/one.bpf.c", &sdk_program("one"))
        .file("probes/multi/two.bpf.c", &sdk_program("two"))
        .file("probes/multi/multi.c", &loader(&["one", "two"]));
    fakes.cue("slow-bpftool", true);
    let done = fakes.cmd(&ws, &["-b", "multi", "-j", "8"]).success();
    let events = fakes.take_events();
    let at = |pred: &dyn Fn(&str) -> bool, what: &str| -> usize {
        events
            .iter()
            .position(|e| pred(e))
            .unwrap_or_else(|| panic!("no {what} in {events:#?}\n{}", done.report()))
    };
    let start = |step: &str| {
        at(
            &|e: &str| !e.starts_with("done ") && step_of(e) == step,
            step,
        )
    };
    let end = |step: &str| {
        at(
            &|e: &str| e.strip_prefix("done ").is_some_and(|e| step_of(e) == step),
            &format!("end of {step}"),
        )
    };
    let loader_start = start("cc probes/multi/multi.c");
    for stem in ["one", "two"] {
        let skeleton = format!("skeleton .output/multi/{stem}.bpf.o");
        assert!(
            end(&skeleton) < loader_start,
            "the loader started before {skeleton} ended: {events:#?}"
        );
    }
    // The two skeletons ran side by side, so the order above is the graph's doing, not a queue's.
    assert!(
        start("skeleton .output/multi/two.bpf.o") < end("skeleton .output/multi/one.bpf.o")
            && start("skeleton .output/multi/one.bpf.o") < end("skeleton .output/multi/two.bpf.o"),
        "with -j 8 the skeletons overlap: {events:#?}"
    );
    let link = start("link .output/bin/multi");
    for object in std::iter::once("cc probes/multi/multi.c".to_string()).chain(lib_steps()) {
        assert!(
            end(&object) < link,
            "the link started before {object} ended: {events:#?}"
        );
    }
}

#[test]
fn when_clang_cannot_precompile_the_header_the_build_goes_on_without_it() {
    let (ws, fakes) = workspace();
    fakes.cue("no-pch", true);
    let refused = fakes.cmd(&ws, &["-b"]).success();
    refused
        .stderr_contains("note: clang could not precompile `#include \"bpf.h\"`")
        .stderr_contains("error: cannot precompile here (fake clang)");
    let compiles: Vec<String> = fakes
        .take_events()
        .into_iter()
        .filter(|e| e.starts_with("clang ") && e.contains(".bpf.c"))
        .collect();
    assert_eq!(compiles.len(), 2, "{}", refused.report());
    assert!(
        compiles.iter().all(|c| !c.contains("-include-pch")),
        "{compiles:#?}"
    );
    assert!(ws.path(".output/bin/alpha").is_file());

    // The failure is remembered: the next build starts no clang for it, and says nothing new.
    let remembered = fakes.cmd(&ws, &["-b"]).success();
    assert_eq!(
        fakes.take_events(),
        Vec::<String>::new(),
        "{}",
        remembered.report()
    );

    // Once clang can and the header changes, the header is made and the programs are compiled again with it.
    fakes.cue("no-pch", false);
    touch(&ws.path("include/bpf.h"));
    touch(&ws.path("include/vmlinux.h"));
    let again = fakes.cmd(&ws, &["-b"]).success();
    let events = fakes.take_events();
    let with_header = events
        .iter()
        .filter(|e| e.starts_with("clang ") && e.contains(".bpf.c") && e.contains("-include-pch"))
        .count();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("clang ") && e.contains("c-header"))
            && with_header == 2,
        "{events:#?}\n{}",
        again.report()
    );
}

/// Starts `ebpf-probe -b` with the stalling clang, in its own process group, and waits until clang has
/// written a `.bpf.c`'s object and stalled; returns the build and the probe whose program stalled.
fn start_stalled_build(ws: &Workspace, fakes: &Fakes) -> (Spawned, String) {
    fakes.cue("stall", true);
    let build = fakes.cmd(ws, &["-b"]).own_process_group().spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    let stalled = loop {
        // `probes/<probe>/<probe>.bpf.c`, once the write is complete.
        let text = std::fs::read_to_string(fakes.dir.join("stalled")).unwrap_or_default();
        if let Some(probe) = text
            .trim()
            .strip_prefix("probes/")
            .and_then(|p| p.split('/').next())
        {
            if text.ends_with('\n') {
                break probe.to_string();
            }
        }
        assert!(Instant::now() < deadline, "clang never stalled");
        std::thread::sleep(Duration::from_millis(10));
    };
    fakes.cue("stall", false);
    (build, stalled)
}

/// Kills the build and its tools (the whole process group) and reaps it.
fn kill_group(build: Spawned) {
    let _ = program("kill")
        .args(["-KILL", "--", &format!("-{}", build.id())])
        .try_output();
    build.wait();
}

#[test]
fn an_interrupted_build_leaves_no_output_a_later_build_would_trust() {
    let (ws, fakes) = workspace();
    let (build, stalled_on) = start_stalled_build(&ws, &fakes);
    kill_group(build);

    // clang finished writing, but the step did not: only a temp file may exist, never the object.
    let object = ws.path(&format!(".output/{stalled_on}/{stalled_on}.bpf.o"));
    assert!(!object.exists(), "a half-made object was left in place");
    assert!(!ws
        .path(&format!(".output/{stalled_on}/.{stalled_on}.bpf.o.cmd"))
        .exists());
    let leftovers = |ws: &Workspace| -> Vec<String> {
        list_tree(&ws.path(".output"))
            .into_iter()
            .filter(|p| p.contains(".tmp."))
            .collect()
    };
    assert!(!leftovers(&ws).is_empty(), "clang's temp output is there");

    let again = fakes.cmd(&ws, &["-b"]).success();
    assert!(
        built_and_fresh(&again.stderr()).0.contains(&stalled_on),
        "{}",
        again.report()
    );
    assert_eq!(
        leftovers(&ws),
        Vec::<String>::new(),
        "the next build cleared it"
    );
    assert!(object.is_file() && ws.path(&format!(".output/bin/{stalled_on}")).is_file());
}

#[test]
fn a_step_that_hangs_is_named_while_the_build_waits() {
    let (ws, fakes) = workspace();
    fakes.cue("stall", true);
    let build = fakes
        .cmd(&ws, &["-b"])
        .env("EBPF_PROBE_SLOW_SECONDS", "1")
        .own_process_group()
        .spawn();
    std::thread::sleep(Duration::from_millis(2500));
    fakes.cue("stall", false);
    let _ = program("kill")
        .args(["-KILL", "--", &format!("-{}", build.id())])
        .try_output();
    let done = build.wait();
    let stderr = done.stderr();
    assert!(
        stderr.contains("Waiting on Compiling probes/") && stderr.contains(".bpf.c (running for "),
        "{}",
        done.report()
    );
}

#[test]
fn a_killed_build_leaves_no_compiler_running() {
    let (ws, fakes) = workspace();
    let (build, _) = start_stalled_build(&ws, &fakes);
    let clang: u32 = std::fs::read_to_string(fakes.dir.join("stalled.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(Path::new(&format!("/proc/{clang}")).exists());
    // Only ebpf-probe is killed (not its group), as `kill PID` or an OOM kill would: its compiler goes with it.
    let _ = program("kill")
        .args(["-KILL", &build.id().to_string()])
        .try_output();
    build.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    // A zombie until reaped by init is gone for our purpose: it runs nothing.
    let running = || {
        std::fs::read_to_string(format!("/proc/{clang}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    };
    while running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !running(),
        "the stalled compiler (pid {clang}) outlived the build"
    );
}

#[test]
fn a_second_build_of_the_same_workspace_waits_for_the_first() {
    let (ws, fakes) = workspace();
    let (first, _) = start_stalled_build(&ws, &fakes);
    let mut second = fakes.cmd(&ws, &["-b"]).spawn();
    // The second build must be waiting, not building alongside the first.
    std::thread::sleep(Duration::from_millis(700));
    assert!(!second.is_finished(), "the second build did not wait");
    kill_group(first);
    let second = second.wait();
    second
        .assert_success()
        .stderr_contains("Blocking waiting for another ebpf-probe build of this workspace");
    assert!(ws.path(".output/bin/alpha").is_file() && ws.path(".output/bin/beta").is_file());
}

#[test]
fn a_terminal_gets_progress_bars_and_a_log_gets_one_line_per_step() {
    if !require(
        "script (util-linux) for a pseudo-terminal",
        crate::support::has_program("script"),
    ) {
        return;
    }
    let (ws, fakes) = workspace();
    let logged = fakes.cmd(&ws, &["-b"]).success();
    logged
        .stderr_contains("Precompiling bpf.h (BPF prelude) (")
        .stderr_contains("Compiling probes/alpha/alpha.bpf.c (")
        .stderr_contains("Generating .output/alpha/alpha.skel.h (")
        .stderr_contains("Linking .output/bin/alpha (")
        .stderr_contains("Built alpha → .output/bin/alpha");
    assert!(
        !logged.stderr().contains("Building ["),
        "{}",
        logged.report()
    );

    fakes.cmd(&ws, &["-c"]).success();
    let _ptys = PseudoTerminals::ensure();
    let command = format!("{} -b", crate::support::BIN);
    let shown = fakes
        .env(ws.program("script"))
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .success();
    shown
        .stdout_contains("Building [")
        .stdout_contains("Built alpha");
    assert!(
        !shown
            .stdout()
            .contains("Compiling probes/alpha/alpha.bpf.c ("),
        "per-step lines are for logs, not terminals\n{}",
        shown.report()
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
        program("mount")
            .args([
                "-t",
                "devpts",
                "-o",
                "newinstance,ptmxmode=0666",
                "devpts",
                "/dev/pts",
            ])
            .success();
        PseudoTerminals { mounted: true }
    }
}

impl Drop for PseudoTerminals {
    fn drop(&mut self) {
        if self.mounted {
            let _ = program("umount").arg("/dev/pts").try_output();
        }
    }
}
