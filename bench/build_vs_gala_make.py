#!/usr/bin/env python3
"""Benchmark `ebpf-probe -b` against gala-gopher's own Makefiles on the real ebpf.probe tree.

What it measures, on one machine in one run:

  1. TREE is a gala-gopher checkout (or its src/probes/extends/ebpf.probe); every run works on FRESH
     copies of it (`cp -a` of src/probes/extends/ebpf.probe, src/common and src/lib, not timed):
       reference   the tree's own top-level `make -C ebpf.probe/src`, serial as its Makefile is (the
                   recipes call `make`, not `$(MAKE)`), with the overrides Debian needs: LIBBPF_VER_*
                   from /usr/include/bpf/libbpf_version.h, CLANG_VER_MAJOR from `clang --version`, the
                   C++ ABI include dirs, C_INCLUDE_PATH=/usr/include/<multiarch>,
                   CPLUS_INCLUDE_PATH=/usr/include/jsoncpp and LDFLAGS with -Wl,--no-as-needed;
       ebpf-probe  `ebpf-probe import` (not timed), then a cold `ebpf-probe --libbpf system -b`, so both
                   compile against the same (system) libbpf;
     alternately (reference, ebpf-probe, reference, …) --runs times; medians of the wall time and of
     the user+sys CPU time of each, and the ratio ebpf-probe / reference;
  2. a no-op `ebpf-probe -b` right after the last cold build (median of --noop-runs, in ms) and the
     child processes it starts (strace -f);
  3. instruction identity: every BPF object make produced (`*.bpf.o` anywhere under ebpf.probe/src,
     stack_bpf/ and bpf/ included) against ebpf-probe's `.output/<probe>/<same path>`, compared as
     `llvm-objdump -d --no-show-raw-insn` text and again with relocations (`-dr`), the file-name
     header stripped; and the binaries (the Makefiles' APP) each pipeline built;
  4. `make install` (INSTALL_DIR, META_INSTALL_DIR) against `ebpf-probe install --destdir`: the two
     sets of installed file names, relative to their roots;
  5. the targets, each with ✔/✘: cold ≤ 0.25× the reference, no-op ≤ 50 ms with no child process,
     every object identical, the same binaries and the same installed files.

Run from the repository root (root is not needed to build; clang, llvm-strip, bpftool, cc, g++, make,
llvm-objdump and the -dev packages of libbpf, libelf, libconfig, jsoncpp, libcurl, uthash and a JDK):

    python3 bench/build_vs_gala_make.py TREE [--runs 3] [--bin target/release/ebpf-probe] [--keep]

Copies live in a temporary directory under /tmp, removed at the end unless --keep is given.
"""

import argparse
import difflib
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Where the probes live inside a gala-gopher checkout, and the siblings var.mk reaches
# (GOPHER_COMMON_DIR = ebpf.probe/src/mk/../../../../../common).
EBPF_PROBE_SUBDIR = Path("src/probes/extends/ebpf.probe")
COPIED_SUBDIRS = [EBPF_PROBE_SUBDIR, Path("src/common"), Path("src/lib")]

TOOLS = ["clang", "llvm-strip", "bpftool", "cc", "g++", "make", "llvm-objdump"]

# Headers the tree's sources include, with the library `ebpf-probe --check` names for each.
HEADERS = [
    ("libbpf", ["/usr/include/bpf/libbpf.h"]),
    ("libelf", ["/usr/include/gelf.h", "/usr/include/libelf/gelf.h"]),
    ("libconfig", ["/usr/include/libconfig.h"]),
    ("jsoncpp", ["/usr/include/jsoncpp/json/json.h", "/usr/include/json/json.h"]),
    ("libcurl", ["/usr/include/curl/curl.h", "/usr/include/x86_64-linux-gnu/curl/curl.h",
                 "/usr/include/aarch64-linux-gnu/curl/curl.h"]),
    ("uthash", ["/usr/include/uthash.h"]),
]

# The bookkeeping file `ebpf-probe install` writes under --destdir: not an installed probe file.
INSTALL_RECORD = "var/lib/ebpf-probe/installed.json"

NOOP_TARGET_SECONDS = 0.050
COLD_TARGET_RATIO = 0.25

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# ---------------------------------------------------------------------------------------------
# Small helpers


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def run_checked(argv, cwd=None, env=None, what=None):
    """Runs argv, returns the CompletedProcess; on failure prints the command and its output, exits."""
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"error: {what or 'command failed'}: `{shlex.join(map(str, argv))}` "
              f"(cwd {cwd or os.getcwd()}) exited with {result.returncode}", file=sys.stderr)
        sys.stderr.write(result.stdout + result.stderr)
        sys.exit(1)
    return result


@dataclass
class Timing:
    """One timed command: wall seconds, user+sys CPU seconds of it and its children, its result."""
    seconds: float
    cpu: float
    result: subprocess.CompletedProcess

    @property
    def ok(self):
        return self.result.returncode == 0


def timed(argv, env=None):
    """Runs argv (a failure is returned, not fatal: a build that fails is reported, not hidden)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(seconds, cpu, result)


def make_env(extra=None):
    """The environment for the reference make: no inherited -j or make level, plus `extra`."""
    env = dict(os.environ)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def first_line(argv):
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except OSError:
        return "not found"
    text = result.stdout or result.stderr
    return text.splitlines()[0] if text else "?"


def output_lines(result):
    """stderr then stdout of a finished command, split into lines, colours and cursor moves removed."""
    return ANSI_ESCAPE.sub("", result.stderr + result.stdout).replace("\r", "\n").splitlines()


def tail(result, lines=25):
    return "\n".join("    " + line for line in output_lines(result)[-lines:])


def format_seconds(seconds):
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def check_mark(ok):
    return "✔" if ok else "✘"


def which(tool):
    return shutil.which(tool) or (str(Path("/usr/sbin", tool)) if Path("/usr/sbin", tool).exists() else None)


# ---------------------------------------------------------------------------------------------
# Setup: the tree, the binary, prerequisites, machine facts


def find_tree(requested):
    """(checkout root, ebpf.probe dir) from TREE: the checkout root, ebpf.probe or ebpf.probe/src."""
    path = Path(requested).resolve()
    for candidate in (path, path.parent):
        if (candidate / "src" / "mk" / "var.mk").exists() and (candidate / "src" / "Makefile").exists():
            ebpf_probe = candidate
            root = ebpf_probe.parents[len(EBPF_PROBE_SUBDIR.parts) - 1]
            break
    else:
        ebpf_probe, root = path / EBPF_PROBE_SUBDIR, path
    if not (ebpf_probe / "src" / "mk" / "var.mk").exists():
        fail(f"{requested} is neither a gala-gopher checkout (with {EBPF_PROBE_SUBDIR}/src/mk/var.mk) "
             "nor its ebpf.probe directory")
    if root / EBPF_PROBE_SUBDIR != ebpf_probe or not (root / "src" / "common").is_dir():
        fail(f"{ebpf_probe} is not inside a gala-gopher checkout: var.mk needs "
             f"{ebpf_probe}/../../../common (src/common)")
    built = [p for p in ebpf_probe.rglob("*") if p.name.endswith(".bpf.o") or p.name == ".output"
             or p.name == "ebpf-probe.toml" or p.name.endswith(".skel.h")]
    if built:
        fail(f"{ebpf_probe} is not pristine (it holds {', '.join(str(p.relative_to(root)) for p in built[:5])}"
             f"{' …' if len(built) > 5 else ''}): give a fresh `git archive` extract")
    return root, ebpf_probe


def find_binary(requested):
    binary = Path(requested)
    if not binary.is_absolute():
        binary = (Path.cwd() / binary) if (Path.cwd() / binary).exists() else REPO_ROOT / binary
    if binary.exists():
        return binary.resolve()
    if requested != "target/release/ebpf-probe":
        fail(f"{binary} does not exist")
    print(f"{binary} is missing: running `cargo build --release` in {REPO_ROOT}", flush=True)
    run_checked(["cargo", "build", "--release"], cwd=REPO_ROOT, what="cargo build --release")
    return binary.resolve()


def java_home():
    """The JDK stackprobe's Makefile uses: $JAVA_HOME, else the one of `javac` on PATH."""
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"])
    javac = shutil.which("javac")
    return Path(javac).resolve().parent.parent if javac else None


def check_prerequisites(tree_for_hint):
    missing_tools = [tool for tool in TOOLS if not which(tool)]
    missing_libs = [name for name, paths in HEADERS if not any(Path(p).exists() for p in paths)]
    jdk = java_home()
    if not jdk or not (jdk / "include" / "jni.h").exists():
        missing_libs.append("a JDK (jni.h)")
    if missing_tools or missing_libs:
        lines = []
        if missing_tools:
            lines.append(f"missing tools: {', '.join(missing_tools)}")
        if missing_libs:
            lines.append(f"missing -dev packages: {', '.join(missing_libs)}")
        fail("; ".join(lines) + f".\n  Install them with `ebpf-probe -C {tree_for_hint} import` then "
             f"`ebpf-probe -C {tree_for_hint} --check --fix` (`--check` lists the libraries the workspace "
             "names), on a scratch copy if the tree must stay pristine")
    if not which("strace"):
        print("note: strace is missing; the children of a no-op build will not be counted "
              "(apt-get install -y strace / dnf install -y strace)", file=sys.stderr)


def multiarch():
    """`x86_64-linux-gnu`: gcc's multiarch triplet (Debian's include subdirectory)."""
    result = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True)
    if result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip()
    return f"{platform.machine()}-linux-gnu"


def system_libbpf_version():
    header = Path("/usr/include/bpf/libbpf_version.h")
    if not header.exists():
        fail(f"{header} is missing: install libbpf's -dev package (the reference make needs its version)")
    text = header.read_text()
    major = re.search(r"#define\s+LIBBPF_MAJOR_VERSION\s+(\d+)", text)
    minor = re.search(r"#define\s+LIBBPF_MINOR_VERSION\s+(\d+)", text)
    if not major or not minor:
        fail(f"{header}: no LIBBPF_MAJOR_VERSION / LIBBPF_MINOR_VERSION")
    return major.group(1), minor.group(1)


def clang_major():
    """The major version from any clang banner ("Debian clang version 14.0.6", "clang version 17.0.6 (…)"),
    not the third word var.mk takes (Debian's banner makes that `version`)."""
    banner = first_line(["clang", "--version"])
    match = re.search(r"clang version (\d+)\.", banner)
    if not match:
        fail(f"cannot read clang's major version from `{banner}`")
    return match.group(1)


@dataclass
class Reference:
    """The top-level make of the tree with the overrides Debian needs (reference doc, "Its own build")."""
    variables: dict
    env: dict

    def argv(self, src, *targets):
        return ["make", "-C", str(src), *targets, *(f"{name}={value}" for name, value in self.variables.items())]


def reference_overrides():
    major, minor = system_libbpf_version()
    triplet = multiarch()
    gxx = subprocess.run(["g++", "-dumpversion"], capture_output=True, text=True).stdout.strip()
    cxx_dir = Path("/usr/include/c++") / gxx
    if not cxx_dir.is_dir():
        fail(f"{cxx_dir} is missing: `g++ -dumpversion` says {gxx!r}")
    variables = {
        "LIBBPF_VER_MAJOR": major,
        "LIBBPF_VER_MINOR": minor,
        "CLANG_VER_MAJOR": clang_major(),
        "CXXABI_INCLUDE_DIR": f"-I{cxx_dir} -I/usr/include/{triplet}/c++/{gxx}",
        "LDFLAGS": "-Wl,--copy-dt-needed-entries -Wl,-z,relro,-z,now -Wl,--no-as-needed",
    }
    env = {"C_INCLUDE_PATH": f"/usr/include/{triplet}", "CPLUS_INCLUDE_PATH": "/usr/include/jsoncpp"}
    return Reference(variables, env)


def print_machine_facts(binary, reference):
    print("machine")
    print(f"  nproc           {os.cpu_count()}")
    print(f"  kernel          {platform.release()}")
    print(f"  load average    {' '.join(f'{load:.2f}' for load in os.getloadavg())} (before the run)")
    print(f"  clang           {first_line(['clang', '--version'])}")
    print(f"  gcc             {first_line(['gcc', '--version'])}")
    print(f"  make            {first_line(['make', '--version'])}")
    print(f"  bpftool         {first_line([which('bpftool') or 'bpftool', '--version'])}")
    print(f"  libbpf          {reference.variables['LIBBPF_VER_MAJOR']}.{reference.variables['LIBBPF_VER_MINOR']}"
          " (system, both pipelines)")
    print(f"  ebpf-probe      {binary} ({first_line([str(binary), '--version'])})")
    print()
    print("reference: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in reference.env.items())
          + " " + shlex.join(reference.argv("<ebpf.probe>/src")))
    print("ebpf-probe: `ebpf-probe -C <ebpf.probe> import` (not timed), then `ebpf-probe -C <ebpf.probe> "
          "--libbpf system -b`")
    print(flush=True)


# ---------------------------------------------------------------------------------------------
# Fresh copies and the two builds


def fresh_copy(root, destination):
    """The parts of the checkout the build reads, copied with `cp -a` (mtimes kept). Ownership is not
    kept: ebpf-probe refuses a workspace owned by another user, and the copy is ours."""
    for subdir in COPIED_SUBDIRS:
        if not (root / subdir).exists():
            continue
        target = destination / subdir
        target.parent.mkdir(parents=True, exist_ok=True)
        run_checked(["cp", "-a", "--no-preserve=ownership", str(root / subdir), str(target)],
                    what=f"copy {subdir}")
    return destination / EBPF_PROBE_SUBDIR


def ebpf_probe_argv(binary, ebpf_probe, *args):
    return [str(binary), "-C", str(ebpf_probe), "--libbpf", "system", *args]


@dataclass
class RunPair:
    """One run: the ebpf.probe directories of its two fresh copies and their timed cold builds."""
    reference_tree: Path = None
    ours_tree: Path = None
    reference: Timing = None
    ours: Timing = None


def run_builds(root, scratch, binary, reference, runs):
    pairs = []
    for run in range(runs):
        pair = RunPair()
        # Alternate which goes first, so neither always runs on a warmer page cache.
        order = ["reference", "ebpf-probe"] if run % 2 == 0 else ["ebpf-probe", "reference"]
        for label in order:
            if label == "reference":
                pair.reference_tree = fresh_copy(root, scratch / f"run{run + 1}-reference")
                pair.reference = timed(reference.argv(pair.reference_tree / "src"), env=make_env(reference.env))
                timing = pair.reference
            else:
                pair.ours_tree = fresh_copy(root, scratch / f"run{run + 1}-ebpf-probe")
                run_checked([str(binary), "-C", str(pair.ours_tree), "import"], what="ebpf-probe import")
                pair.ours = timed(ebpf_probe_argv(binary, pair.ours_tree, "-b"))
                timing = pair.ours
            status = "" if timing.ok else f"  FAILED (exit {timing.result.returncode})"
            print(f"  run {run + 1}/{runs}  cold build  {label:<10} {format_seconds(timing.seconds):>9}"
                  f"  cpu {format_seconds(timing.cpu):>9}{status}", flush=True)
            if not timing.ok:
                print(tail(timing.result), flush=True)
        pairs.append(pair)
    return pairs


# ---------------------------------------------------------------------------------------------
# No-op build and its child processes


def noop_builds(binary, ebpf_probe, count):
    """`count` no-op builds: their Timings (wall and user+sys CPU, which a loaded machine inflates less)."""
    samples = []
    for _ in range(count):
        timing = timed(ebpf_probe_argv(binary, ebpf_probe, "-b"))
        if not timing.ok:
            print(f"  no-op build FAILED (exit {timing.result.returncode})\n{tail(timing.result)}")
        samples.append(timing)
    return samples


def count_children(argv, trace_file):
    """Runs argv under strace -f; returns the programs its child processes exec'd (threads excluded).
    The same count as bench/build_vs_make.py: execs, or process clones when more."""
    strace = ["strace", "-f", "-qq", "-e", "trace=execve,clone3,clone,fork,vfork", "-o", str(trace_file)]
    subprocess.run(strace + argv, capture_output=True, text=True)
    root_pid, execs, process_clones = None, {}, 0
    for line in trace_file.read_text().splitlines():
        pid, _, call = line.partition(" ")
        call = call.strip()
        if call.startswith("execve("):
            if root_pid is None:
                root_pid = pid
            elif pid != root_pid:
                program = re.match(r'execve\("([^"]*)"', call)
                execs.setdefault(pid, program.group(1) if program else "?")
        elif re.match(r"(clone3?|v?fork)\(", call) and "CLONE_THREAD" not in call:
            process_clones += 1
    count = max(len(execs), process_clones)
    programs = {}
    for program in execs.values():
        programs[program] = programs.get(program, 0) + 1
    return count, programs


def describe_children(count, programs):
    if count == 0:
        return "0"
    listed = ", ".join(f"{Path(p).name} ×{n}" if n > 1 else Path(p).name for p, n in sorted(programs.items()))
    return f"{count} ({listed})"


def print_cold_table(pairs):
    """Medians of the cold builds' wall and CPU times; returns the wall ratio ebpf-probe / reference."""
    ref_all, ours_all = [p.reference for p in pairs], [p.ours for p in pairs]
    ref_wall, ours_wall = (statistics.median(t.seconds for t in ref_all),
                           statistics.median(t.seconds for t in ours_all))
    ref_cpu, ours_cpu = statistics.median(t.cpu for t in ref_all), statistics.median(t.cpu for t in ours_all)
    ratio = ours_wall / ref_wall
    ref_ok, ours_ok = sum(t.ok for t in ref_all), sum(t.ok for t in ours_all)
    header = f"{'cold build':<24} {'reference':>10} {'ebpf-probe':>11} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    print(f"{'wall (median)':<24} {format_seconds(ref_wall):>10} {format_seconds(ours_wall):>11} {ratio:>6.2f}×")
    print(f"{'user+sys CPU (median)':<24} {format_seconds(ref_cpu):>10} {format_seconds(ours_cpu):>11} "
          f"{ours_cpu / ref_cpu:>6.2f}×")
    print(f"{'builds that succeeded':<24} {f'{ref_ok}/{len(pairs)}':>10} {f'{ours_ok}/{len(pairs)}':>11}")
    print()
    return ratio


# ---------------------------------------------------------------------------------------------
# Instruction identity and binaries


def disassembly(path, flags):
    """llvm-objdump text without its header (the blank line and `<path>:\tfile format elf64-bpf`),
    the only place the object's path appears."""
    result = subprocess.run(["llvm-objdump", *flags, str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        return None, result.stderr.strip()
    lines = result.stdout.splitlines()
    for index, line in enumerate(lines):
        if "file format" in line:
            lines = lines[index + 1:]
            break
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines, ""


@dataclass
class ObjectComparison:
    relative: str
    ours: Path
    missing: bool = False
    same_bytes: bool = False
    same_text: bool = False
    same_relocations: bool = False
    diff: list = field(default_factory=list)


def compare_objects(reference_src, ours_tree):
    """Every *.bpf.o make wrote under ebpf.probe/src against .output/<same relative path>."""
    comparisons = []
    for ref_object in sorted(reference_src.rglob("*.bpf.o")):
        relative = ref_object.relative_to(reference_src)
        ours = ours_tree / ".output" / relative
        comparison = ObjectComparison(str(relative), ours)
        if not ours.exists():
            comparison.missing = True
            comparisons.append(comparison)
            continue
        comparison.same_bytes = ref_object.read_bytes() == ours.read_bytes()
        for flags in (["-d", "--no-show-raw-insn"], ["-dr", "--no-show-raw-insn"]):
            ref_text, ref_error = disassembly(ref_object, flags)
            our_text, our_error = disassembly(ours, flags)
            same = ref_text is not None and ref_text == our_text
            if flags[0] == "-d":
                comparison.same_text = same
            else:
                comparison.same_relocations = same
            if not same and not comparison.diff:
                if ref_text is None or our_text is None:
                    comparison.diff = [f"llvm-objdump failed: {ref_error or our_error}"]
                else:
                    comparison.diff = list(difflib.unified_diff(
                        ref_text, our_text, f"make/{relative}", f"ebpf-probe/.output/{relative}",
                        n=1, lineterm=""))
        comparisons.append(comparison)
    extra = sorted(str(p.relative_to(ours_tree / ".output")) for p in (ours_tree / ".output").rglob("*.bpf.o")
                   if not (reference_src / p.relative_to(ours_tree / ".output")).exists()
                   and p.relative_to(ours_tree / ".output").parts[0] not in ("pch", "lib", "shared", "bin"))
    return comparisons, extra


def probe_binaries(src):
    """probe dir → the binary its Makefile builds (`APP := …`)."""
    binaries = {}
    for makefile in sorted(src.glob("*/Makefile")):
        match = re.search(r"^APP\s*:?=\s*(\S+)", makefile.read_text(), re.MULTILINE)
        if match:
            binaries[makefile.parent.name] = match.group(1)
    return binaries


def built_binaries(expected, where):
    """The expected binaries that exist and are executable, given `where(probe, binary) → path`."""
    return sorted(binary for probe, binary in expected.items() if os.access(where(probe, binary), os.X_OK)
                  and where(probe, binary).is_file())


def print_identity(comparisons, extra):
    total = len(comparisons)
    text_same = sum(c.same_text for c in comparisons)
    reloc_same = sum(c.same_relocations for c in comparisons)
    print("instruction identity (llvm-objdump, header stripped)")
    print(f"  {text_same}/{total} BPF objects identical  (-d --no-show-raw-insn)")
    print(f"  {reloc_same}/{total} BPF objects identical  (-dr: with relocations)")
    print(f"  {sum(c.same_bytes for c in comparisons)}/{total} byte for byte (the two copies sit in different "
          "directories, and .BTF carries the source paths)")
    for comparison in comparisons:
        if comparison.missing:
            print(f"  ✘ {comparison.relative}: ebpf-probe wrote no {comparison.ours}")
        elif not (comparison.same_text and comparison.same_relocations):
            which_text = "instructions" if not comparison.same_text else "relocations only"
            print(f"  ✘ {comparison.relative}: differs ({which_text}); "
                  f"{sum(1 for l in comparison.diff if l[:1] in '+-' and l[:3] not in ('+++', '---'))} "
                  "changed lines, first ones:")
            for line in comparison.diff[:14]:
                print(f"      {line}")
    if extra:
        print(f"  note: ebpf-probe also built {len(extra)} object(s) make did not: {', '.join(extra)}")
    print()
    return total > 0 and text_same == total and reloc_same == total


# ---------------------------------------------------------------------------------------------
# Install


def file_set(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink())


def compare_installs(binary, reference, reference_tree, ours_tree, scratch):
    ref_root, ours_root = scratch / "install-reference", scratch / "install-ebpf-probe"
    (ref_root / "meta").mkdir(parents=True)  # `cp $(META) $(META_INSTALL_DIR)` needs it to exist
    ref_argv = reference.argv(reference_tree / "src", "install") + [
        f"INSTALL_DIR={ref_root / 'bin'}", f"META_INSTALL_DIR={ref_root / 'meta'}"]
    ours_argv = ebpf_probe_argv(binary, ours_tree, "install", "--destdir", str(ours_root), "-b", "/bin",
                                "-m", "/meta")
    print("install")
    print(f"  reference   {shlex.join(ref_argv)}")
    print(f"  ebpf-probe  {shlex.join(ours_argv)}")
    ref_result = subprocess.run(ref_argv, env=make_env(reference.env), capture_output=True, text=True)
    ours_result = subprocess.run(ours_argv, capture_output=True, text=True)
    for label, result in (("reference", ref_result), ("ebpf-probe", ours_result)):
        if result.returncode != 0:
            print(f"  {label} install FAILED (exit {result.returncode})\n{tail(result)}")
    ref_files = file_set(ref_root) if ref_root.exists() else []
    ours_files = [f for f in (file_set(ours_root) if ours_root.exists() else []) if f != INSTALL_RECORD]
    only_ref = sorted(set(ref_files) - set(ours_files))
    only_ours = sorted(set(ours_files) - set(ref_files))
    same = ref_result.returncode == 0 and ours_result.returncode == 0 and not only_ref and not only_ours
    print(f"  reference {len(ref_files)} files, ebpf-probe {len(ours_files)} files "
          f"(its {INSTALL_RECORD} left out): {'the same set' if same else 'different sets'}")
    if not ref_files or not ours_files:
        # One side installed nothing (its failure is above): listing the other's files adds nothing.
        print(f"    {'make install' if not ref_files else 'ebpf-probe install'} installed nothing")
    else:
        for path in only_ref:
            print(f"    only make install:        {path}")
        for path in only_ours:
            print(f"    only ebpf-probe install:  {path}")
    if same:
        for path in ref_files:
            print(f"    {path}")
    print()
    return same, len(ref_files), len(ours_files)


# ---------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", metavar="TREE",
                        help="a pristine gala-gopher checkout, or its src/probes/extends/ebpf.probe")
    parser.add_argument("--runs", type=int, default=3, help="cold builds per pipeline (default 3)")
    parser.add_argument("--noop-runs", type=int, default=10, help="no-op builds timed (default 10)")
    parser.add_argument("--bin", default="target/release/ebpf-probe",
                        help="the ebpf-probe binary (default target/release/ebpf-probe, built if missing)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    args = parser.parse_args()
    if args.runs < 1 or args.noop_runs < 1:
        parser.error("--runs and --noop-runs must be at least 1")
    return args


def main():
    args = parse_args()
    root, ebpf_probe = find_tree(args.tree)
    check_prerequisites(ebpf_probe)
    binary = find_binary(args.bin)
    reference = reference_overrides()
    print_machine_facts(binary, reference)

    scratch = Path(tempfile.mkdtemp(prefix="bench-gala-make-", dir="/tmp"))
    try:
        print(f"tree {root} ({ebpf_probe.relative_to(root)}); fresh copies in {scratch}", flush=True)
        pairs = run_builds(root, scratch, binary, reference, args.runs)
        last = pairs[-1]

        noop = noop_builds(binary, last.ours_tree, args.noop_runs)
        children, programs = None, {}
        if which("strace"):
            children, programs = count_children(ebpf_probe_argv(binary, last.ours_tree, "-b"),
                                                scratch / "noop.strace")
        walls = [t.seconds for t in noop]
        print(f"  no-op build ebpf-probe  median {statistics.median(walls) * 1000:.0f} ms of {len(walls)} "
              f"(min {min(walls) * 1000:.0f}, max {max(walls) * 1000:.0f}; user+sys CPU median "
              f"{statistics.median(t.cpu for t in noop) * 1000:.0f} ms); children started: "
              + ("unknown (no strace)" if children is None else describe_children(children, programs)))
        print(f"  load average {' '.join(f'{load:.2f}' for load in os.getloadavg())} (after the builds)")
        print()

        ratio = print_cold_table(pairs)

        expected = probe_binaries(last.reference_tree / "src")
        ref_bins = built_binaries(expected, lambda probe, name: last.reference_tree / "src" / probe / name)
        ours_bins = built_binaries(expected, lambda probe, name: last.ours_tree / ".output" / "bin" / name)
        print(f"binaries (the Makefiles' APP): reference {len(ref_bins)}/{len(expected)}, "
              f"ebpf-probe {len(ours_bins)}/{len(expected)}")
        for label, built in (("reference", ref_bins), ("ebpf-probe", ours_bins)):
            missing = sorted(set(expected.values()) - set(built))
            if missing:
                print(f"  {label} did not build: {', '.join(missing)}")
        print()

        comparisons, extra = compare_objects(last.reference_tree / "src", last.ours_tree)
        identical = print_identity(comparisons, extra)

        same_install, ref_count, ours_count = compare_installs(
            binary, reference, last.reference_tree, last.ours_tree, scratch)

        noop_median = statistics.median(t.seconds for t in noop)
        binaries_ok = len(ref_bins) == len(expected) and len(ours_bins) == len(expected)
        rows = [
            (ratio <= COLD_TARGET_RATIO and all(p.ours.ok for p in pairs),
             f"cold build ≤ {COLD_TARGET_RATIO}× reference", f"{ratio:.2f}×"),
            (noop_median <= NOOP_TARGET_SECONDS and children == 0, "no-op ≤ 50 ms, no child process",
             f"{noop_median * 1000:.0f} ms, "
             + ("unknown children" if children is None else f"{children} children")),
            (identical, "every BPF object: same instructions",
             f"{sum(c.same_text for c in comparisons)}/{len(comparisons)} (-d), "
             f"{sum(c.same_relocations for c in comparisons)}/{len(comparisons)} (-dr)"),
            (binaries_ok, "every binary built by both",
             f"reference {len(ref_bins)}/{len(expected)}, ebpf-probe {len(ours_bins)}/{len(expected)}"),
            (same_install, "install: the same files", f"reference {ref_count}, ebpf-probe {ours_count}"),
        ]
        print("targets")
        for ok, target, measured in rows:
            print(f"  {check_mark(ok)} {target:<40} {measured}")
    finally:
        if args.keep:
            print(f"\nkept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
