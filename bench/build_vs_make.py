#!/usr/bin/env python3
"""Benchmark `ebpf-probe -b` against the old gala-gopher Makefile pipeline (issue 6).

What it measures, on one machine in one run:

  1. a workspace of N C probes is generated with `ebpf-probe init` + `ebpf-probe new`, cycling
     tracepoint / raw_tracepoint / uprobe attach points, and its kernel header with `ebpf-probe -g`;
  2. a copy of it gets the *reference pipeline*: what gala-gopher's ebpf.probe did -- a Makefile per
     probe (clang -target bpf + llvm-strip -g, bpftool gen skeleton, then one cc command that
     recompiles lib/*.c into the binary; prerequisites are the probe's own sources only, no SDK
     headers), driven one probe after another by a top-level Makefile (`make -s -C p || exit`), no -j.
     The clang/cc flags are the ones `ebpf-probe -v -b` prints, so both pipelines compile the same code;
  3. four scenarios, each run alternately (reference, ebpf-probe, reference, ebpf-probe, ...) --runs
     times; the median wall time of each is printed with the ratio ebpf-probe / reference:
       cold          outputs removed (`make clean` / `ebpf-probe -c`, not timed), then a build
       no-op         a build with nothing changed
       touch .bpf.c  one probe's .bpf.c gets a new mtime, then a build
       touch header  the shared SDK header include/bpf.h gets a new mtime, then a build
     plus how many probes each pipeline rebuilt (ebpf-probe: its Built/Fresh lines, cross-checked
     with the mtimes of .output/bin/*; reference: binaries whose mtime changed), and the child
     processes a no-op `ebpf-probe -b` starts (strace);
  4. for ebpf-probe's cold builds, the limit it is measured against: its critical path (the longest chain of
     step durations in its build graph, read from `--message-format json`'s step records and their `deps`) and
     its CPU work (user + system time of the build and every process it started) divided by the cores;
  5. the issues' targets, each with ✔/✘ against the measured figures.

Run from the repository root (needs root for `-g`, clang, llvm-strip, bpftool, cc, make, libbpf):

    python3 bench/build_vs_make.py [--probes 24] [--runs 5] [--bin target/release/ebpf-probe]

Workspaces live in a temporary directory under /tmp, removed at the end unless --keep is given.
"""

import argparse
import json
import os
import platform
import re
import resource
import select
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

# Attach points cycled through when generating probes: tracepoint, raw tracepoint, uprobe, in turn.
TRACEPOINTS = [
    "sched/sched_process_exec",
    "syscalls/sys_enter_kill",
    "syscalls/sys_enter_openat",
    "sched/sched_process_exit",
    "sched/sched_process_fork",
    "syscalls/sys_enter_write",
    "syscalls/sys_enter_read",
    "signal/signal_generate",
]
RAW_TRACEPOINTS = [
    "sched_switch",
    "sched_wakeup",
    "sys_enter",
    "sys_exit",
    "sched_process_exec",
    "sched_process_fork",
    "task_newtask",
    "signal_generate",
]
LIBC_SYMBOLS = ["getaddrinfo", "malloc", "free", "connect", "open", "read", "write", "gethostbyname"]

# The SDK umbrella header every probe file includes (BPF side and loader).
SHARED_HEADER = "include/bpf.h"

SCENARIOS = [
    ("cold", "cold build"),
    ("noop", "no-op rebuild"),
    ("touch_bpf", "touch one .bpf.c"),
    ("touch_header", f"touch {SHARED_HEADER}"),
]

# Lines ebpf-probe prints per probe, e.g. "       Built p00 → .output/bin/p00 (0.6s)". Parsed loosely
# (any of these words first, then the probe name) so a small format change does not break the count.
BUILT_LINE = re.compile(r"^\s*(Built|Rebuilt|Compiled|Linked)\s+(\S+)", re.IGNORECASE)
FRESH_LINE = re.compile(r"^\s*(Fresh|Up-to-date|Unchanged)\s+(\S+)", re.IGNORECASE)
RUNNING_LINE = re.compile(r"Running:?\s+`(.*)`\s*$", re.IGNORECASE)
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


def children_cpu_seconds():
    """User + system time of every finished child (and what it waited for) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv, env=None, what=None):
    """Runs argv and returns (wall seconds, CompletedProcess, CPU seconds it and its children used)."""
    cpu_before = children_cpu_seconds()
    start = time.perf_counter()
    result = run_checked(argv, env=env, what=what)
    return time.perf_counter() - start, result, children_cpu_seconds() - cpu_before


def make_env():
    """The environment for the reference make: no inherited -j or make level."""
    env = dict(os.environ)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES"):
        env.pop(name, None)
    return env


def first_line(argv):
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except OSError:
        return "not found"
    return (result.stdout or result.stderr).splitlines()[0] if (result.stdout or result.stderr) else "?"


def output_lines(result):
    """stderr then stdout of a finished command, split into lines, colours and cursor moves removed."""
    return ANSI_ESCAPE.sub("", result.stderr + result.stdout).replace("\r", "\n").splitlines()


def format_seconds(seconds):
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def mtimes(paths):
    """path → (mtime_ns, inode) for the files that exist; an atomic rename changes the inode."""
    stamps = {}
    for path in paths:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        stamps[path.name] = (st.st_mtime_ns, st.st_ino)
    return stamps


def changed(before, after):
    return sorted(name for name, stamp in after.items() if before.get(name) != stamp)


def touch(path):
    """A new mtime strictly later than anything built so far (make compares mtimes)."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))


# ---------------------------------------------------------------------------------------------
# Setup: binary, machine facts, workspace generation


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


def check_prerequisites():
    missing = [tool for tool in ("make", "clang", "llvm-strip", "bpftool", "cc") if not shutil.which(tool)
               and not Path("/usr/sbin", tool).exists()]
    if missing:
        fail(f"missing tools: {', '.join(missing)} (`ebpf-probe --check --fix` installs them)")
    if os.geteuid() != 0:
        fail("run as root: `ebpf-probe -g` needs to read the kernel's BTF")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        fail("/sys/kernel/btf/vmlinux is missing: this kernel has no BTF to generate vmlinux.h from")


def print_machine_facts(binary, jobs):
    print("machine")
    print(f"  nproc           {os.cpu_count()}")
    print(f"  kernel          {platform.release()}")
    print(f"  load average    {' '.join(f'{load:.2f}' for load in os.getloadavg())} (before the run)")
    print(f"  clang           {first_line(['clang', '--version'])}")
    print(f"  make            {first_line(['make', '--version'])}")
    print(f"  ebpf-probe      {binary} ({first_line([str(binary), '--version'])}), "
          f"-j {jobs if jobs else f'default ({os.cpu_count()})'}")
    print(flush=True)


def attach_spec(index):
    """The attach point of probe number `index`: kinds cycle, targets vary within a kind."""
    kind, round_ = index % 3, index // 3
    if kind == 0:
        return "tp", f"tracepoint:{TRACEPOINTS[round_ % len(TRACEPOINTS)]}"
    if kind == 1:
        return "raw", f"raw_tracepoint:{RAW_TRACEPOINTS[round_ % len(RAW_TRACEPOINTS)]}"
    return "up", f"uprobe:libc.so.6:{LIBC_SYMBOLS[round_ % len(LIBC_SYMBOLS)]}"


def generate_workspace(binary, workspace, probe_count):
    """`ebpf-probe init`, N × `new`, `-g`. Returns the probe names in order."""
    run_checked([binary, "init", workspace], what="ebpf-probe init")
    names = []
    for index in range(probe_count):
        prefix, spec = attach_spec(index)
        name = f"{prefix}{index:02d}"
        run_checked([binary, "-C", workspace, "new", name, "--attach", spec], what=f"ebpf-probe new {name}")
        names.append(name)
    run_checked([binary, "-C", workspace, "-g"], what="ebpf-probe -g")
    return names


def probes_including(workspace, names, header_name):
    """Probes whose own sources #include the header directly (the ones a header change must rebuild)."""
    pattern = re.compile(rf'#\s*include\s*"{re.escape(header_name)}"')
    return [name for name in names
            if any(pattern.search(source.read_text()) for source in (workspace / "probes" / name).glob("*.c"))]


# ---------------------------------------------------------------------------------------------
# The reference pipeline: gala-gopher's Makefiles with ebpf-probe's flags


@dataclass
class BuildCommands:
    """What `ebpf-probe -v -b` ran for one probe, reduced to tools and position-independent flags."""
    clang: str = ""
    llvm_strip: str = ""
    bpftool: str = ""
    cc: str = ""
    clang_flags: list = field(default_factory=list)
    cc_flags: list = field(default_factory=list)
    link_libs: list = field(default_factory=list)


def portable_flags(argv):
    """Drops the program, include dirs, dependency-file, input and output arguments of a compile."""
    kept, skip_next = [], False
    for index, arg in enumerate(argv[1:]):
        if skip_next:
            skip_next = False
            continue
        # -include-pch is ebpf-probe's own precompiled kernel header, `-include .output/pch/loader-*.h` its
        # precompiled loader prelude; the old pipeline had neither.
        if arg in ("-I", "-MF", "-MT", "-MQ", "-c", "-o", "-include-pch"):
            skip_next = True
            continue
        if arg == "-include" and argv[index + 2].startswith(".output/pch/"):
            skip_next = True
            continue
        if arg.startswith("-I") or arg in ("-MD", "-MMD", "-MP"):
            continue
        kept.append(arg)
    return kept


def discover_commands(binary, workspace, probe):
    """Builds once with -v (untimed) and reads the commands ebpf-probe ran for `probe`."""
    result = run_checked([binary, "-C", workspace, "-v", "-b"], what="ebpf-probe -v -b")
    commands = BuildCommands()
    for line in output_lines(result):
        match = RUNNING_LINE.search(line)
        if not match:
            continue
        argv = shlex.split(match.group(1))
        if f"probes/{probe}/{probe}.bpf.c" in argv and "bpf" in argv and not commands.clang:
            commands.clang, commands.clang_flags = argv[0], portable_flags(argv)
        elif f"probes/{probe}/{probe}.c" in argv and "-c" in argv and not commands.cc:
            commands.cc, commands.cc_flags = argv[0], portable_flags(argv)
        # The link writes a temp file beside `.output/bin/<probe>` (`.p.tmp.<pid>.<random>`) and renames it.
        elif any(re.fullmatch(rf"\.output/bin/\.?{re.escape(probe)}(\.tmp\.\d+(\.\w+)?)?", arg) for arg in argv):
            commands.link_libs = [arg for arg in argv if arg.startswith("-l") or arg.startswith("-Wl,")]
        elif Path(argv[0]).name.startswith("llvm-strip") and not commands.llvm_strip:
            commands.llvm_strip = argv[0]
        elif Path(argv[0]).name.startswith("bpftool") and not commands.bpftool:
            commands.bpftool = argv[0]
    if not all([commands.clang, commands.cc, commands.llvm_strip, commands.bpftool, commands.link_libs]):
        fail(f"could not find every step of probe {probe} in `ebpf-probe -v -b` output "
             "(expected `Running `…`` lines for clang, llvm-strip, bpftool, cc and the link):\n"
             + result.stderr)
    return commands


PROBE_MAKEFILE = """\
# Reference pipeline written by bench/build_vs_make.py: gala-gopher's per-probe Makefile
# (ebpf.probe/src/killprobe/Makefile) with the flags ebpf-probe uses, so both compile the same code.
# As in the original: outputs sit next to the sources, lib/*.c is recompiled into every binary, and
# no rule lists the SDK headers, so touching include/*.h rebuilds nothing. The binary's
# prerequisites are its .c files only (`%: %.c $(SRC_C)`), not the skeleton.
CLANG := {clang}
LLVM_STRIP := {llvm_strip}
BPFTOOL := {bpftool}
CC := {cc}
CLANGFLAGS := {clang_flags}
CFLAGS := {cc_flags}
LINK_TARGET := {link_libs}
INCLUDES := -I../../include -I. -I../../lib

APP := {app}

BPF_C := $(wildcard *.bpf.c)
DEPS := $(patsubst %.bpf.c, %.bpf.o, $(BPF_C))
DEPS += $(patsubst %.bpf.c, %.skel.h, $(BPF_C))

SRC_C := $(filter-out $(BPF_C), $(wildcard *.c))
SRC_C += $(wildcard ../../lib/*.c)

.PHONY: all clean deps app

all: deps app
deps: $(DEPS)

%.bpf.o: %.bpf.c
\t$(CLANG) $(CLANGFLAGS) $(INCLUDES) -c $(filter %.c,$^) -o $@
\t$(LLVM_STRIP) -g $@

%.skel.h: %.bpf.o
\t$(BPFTOOL) gen skeleton $< name $*_bpf > $@

app: $(APP)
%: %.c $(SRC_C)
\t$(CC) $(CFLAGS) $(INCLUDES) $^ $(LINK_TARGET) -o $@

clean:
\trm -rf $(DEPS) $(APP)
"""

TOP_MAKEFILE = """\
# Reference pipeline written by bench/build_vs_make.py: gala-gopher's ebpf.probe/src/Makefile,
# one probe after another, stopping at the first failure.
APPS := $(patsubst %/Makefile,%,$(wildcard */Makefile))

.PHONY: all clean
all:
\t@for p in $(APPS); do $(MAKE) -s -C $$p || exit $$?; done
clean:
\t@for p in $(APPS); do $(MAKE) -s -C $$p clean || exit $$?; done
"""


def write_reference_workspace(source, reference, names, commands):
    """A copy of the generated workspace (sources, SDK, header; no outputs) with the Makefiles."""
    shutil.copytree(source, reference, symlinks=True, ignore=shutil.ignore_patterns(".output"))
    for name in names:
        (reference / "probes" / name / "Makefile").write_text(PROBE_MAKEFILE.format(
            clang=commands.clang,
            llvm_strip=commands.llvm_strip,
            bpftool=commands.bpftool,
            cc=commands.cc,
            clang_flags=shlex.join(commands.clang_flags),
            cc_flags=shlex.join(commands.cc_flags),
            link_libs=shlex.join(commands.link_libs),
            app=name,
        ))
    (reference / "probes" / "Makefile").write_text(TOP_MAKEFILE)


def verify_binaries(binaries, label):
    """Every binary exists, is executable and answers -h; one per attach kind loads and attaches."""
    for binary in binaries:
        if not os.access(binary, os.X_OK):
            fail(f"{label}: {binary} was not built")
        run_checked([binary, "-h"], what=f"{label}: {binary.name} -h")
    kinds_seen = set()
    for binary in binaries:
        kind = re.match(r"[a-z]+", binary.name).group(0)
        if kind in kinds_seen:
            continue
        kinds_seen.add(kind)
        if not wait_until_ready(binary):
            fail(f"{label}: {binary} did not print `ready` within 5 s (it must load and attach)")


def wait_until_ready(binary, timeout=5.0):
    """Runs a probe until it says it is attached ("…: ready…" on stderr), then stops it with SIGTERM."""
    process = subprocess.Popen([binary], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    buffered = b""
    try:
        while b"ready" not in buffered and time.monotonic() < deadline:
            readable, _, _ = select.select([process.stderr], [], [], 0.1)
            if readable:
                chunk = os.read(process.stderr.fileno(), 4096)
                if not chunk:
                    break  # the probe exited
                buffered += chunk
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()
    return b"ready" in buffered


# ---------------------------------------------------------------------------------------------
# The two pipelines, behind one interface


class Reference:
    label = "reference"

    def __init__(self, workspace, names):
        self.workspace, self.names = workspace, names
        # Only its CPU work: make runs one step at a time, its critical path is the whole build.
        self.last_profile = None

    def binaries(self):
        return [self.workspace / "probes" / name / name for name in self.names]

    def skeletons(self):
        return [self.workspace / "probes" / name / f"{name}.skel.h" for name in self.names]

    def clean(self):
        run_checked(["make", "-s", "-C", self.workspace / "probes", "clean"], env=make_env(), what="make clean")

    def build_argv(self):
        return ["make", "-s", "-C", str(self.workspace / "probes")]

    def build(self):
        """Returns (seconds, probes whose binary was relinked, note)."""
        binaries_before, skeletons_before = mtimes(self.binaries()), mtimes(self.skeletons())
        seconds, _, cpu = timed(self.build_argv(), env=make_env(), what="reference make")
        self.last_profile = Profile(0.0, cpu, 0.0)
        relinked = changed(binaries_before, mtimes(self.binaries()))
        regenerated = changed(skeletons_before, mtimes(self.skeletons()))
        note = ""
        if len(regenerated) != len(relinked):
            note = f"{len(regenerated)} skeleton(s) regenerated, {len(relinked)} binary(ies) relinked"
        return seconds, relinked, note


class EbpfProbe:
    label = "ebpf-probe"

    def __init__(self, binary, workspace, names, jobs):
        self.binary, self.workspace, self.names, self.jobs = binary, workspace, names, jobs
        # (critical path, CPU seconds, step seconds) of each build, for the limit of the cold ones.
        self.last_profile = None

    def binaries(self):
        return [self.workspace / ".output" / "bin" / name for name in self.names]

    def clean(self):
        run_checked([self.binary, "-C", self.workspace, "-c"], what="ebpf-probe -c")

    def build_argv(self, json_messages=False):
        argv = [str(self.binary), "-C", str(self.workspace), "-b"]
        if json_messages:
            argv += ["--message-format", "json"]
        if self.jobs:
            argv += ["-j", str(self.jobs)]
        return argv

    def build(self):
        """Returns (seconds, probes rebuilt, note): the Built lines, checked against binary mtimes."""
        before = mtimes(self.binaries())
        seconds, result, cpu = timed(self.build_argv(json_messages=True), what="ebpf-probe -b")
        self.last_profile = Profile(critical_path(result.stdout), cpu, step_seconds(result.stdout))
        relinked = changed(before, mtimes(self.binaries()))
        output = output_lines(result)
        built = {m.group(2) for m in map(BUILT_LINE.match, output) if m}
        fresh = {m.group(2) for m in map(FRESH_LINE.match, output) if m}
        if not built and not fresh:
            return seconds, relinked, "no Built/Fresh lines: counted changed binaries"
        note = ""
        if sorted(built) != relinked:
            note = f"says Built {len(built)}, {len(relinked)} binary(ies) changed"
        return seconds, sorted(built), note


# ---------------------------------------------------------------------------------------------
# The limit of a build: its critical path and its CPU work over the cores


@dataclass
class Profile:
    """What one ebpf-probe build's graph allows: the critical path, the CPU work and the sum of step times."""
    critical_path: float
    cpu: float
    steps: float

    def limit(self, cores):
        """No schedule beats the longest chain, nor the CPU work spread evenly over every core."""
        return max(self.critical_path, self.cpu / cores)


def step_records(stdout):
    records = []
    for line in stdout.splitlines():
        if line.startswith('{"reason":"step"'):
            records.append(json.loads(line))
    return records


def critical_path(stdout):
    """The longest chain of step durations, following each step record's `deps` (ids come in graph order: a
    step's dependencies have lower ids; a step that did not run, as a fresh one, counts 0)."""
    records = [r for r in step_records(stdout) if "id" in r]  # an ebpf-probe before ids has no graph to follow
    duration = {r["id"]: r["duration_ms"] / 1000 for r in records}
    deps = {r["id"]: r["deps"] for r in records}
    longest = {}
    for step in sorted(duration):
        longest[step] = duration[step] + max((longest.get(dep, 0.0) for dep in deps[step]), default=0.0)
    return max(longest.values(), default=0.0)


def step_seconds(stdout):
    return sum(r["duration_ms"] for r in step_records(stdout)) / 1000


# ---------------------------------------------------------------------------------------------
# Child processes of a no-op build


def ensure_strace():
    if shutil.which("strace"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("strace is missing: `apt-get install -y strace`", flush=True)
        subprocess.run(["apt-get", "install", "-y", "strace"], capture_output=True)
    return shutil.which("strace") is not None


def count_children(argv, trace_file, env=None):
    """Runs argv under strace -f; returns the programs its child processes exec'd (threads excluded)."""
    strace = ["strace", "-f", "-qq", "-e", "trace=execve,clone3,clone,fork,vfork", "-o", str(trace_file)]
    run_checked(strace + argv, env=env, what="strace of a no-op build")
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
    # A child that forks without exec'ing is a child too: count whichever is larger.
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


# ---------------------------------------------------------------------------------------------
# The measurement loop


@dataclass
class Sample:
    """One timed build: wall seconds, the probes it rebuilt, the probes it should have rebuilt."""
    seconds: float
    rebuilt: list
    expected: list
    note: str = ""
    profile: Profile = None


def run_scenarios(pipelines, names, runs, header_users):
    """Alternates the pipelines in every scenario of every run; returns {scenario: {label: [Sample]}}."""
    results = {key: {p.label: [] for p in pipelines} for key, _ in SCENARIOS}
    for run in range(runs):
        touched_probe = names[run % len(names)]
        expected = {"cold": sorted(names), "noop": [], "touch_bpf": [touched_probe],
                    "touch_header": sorted(header_users)}
        for key, title in SCENARIOS:
            for pipeline in pipelines:
                if key == "cold":
                    pipeline.clean()
                elif key == "touch_bpf":
                    touch(pipeline.workspace / "probes" / touched_probe / f"{touched_probe}.bpf.c")
                elif key == "touch_header":
                    touch(pipeline.workspace / SHARED_HEADER)
                seconds, rebuilt, note = pipeline.build()
                sample = Sample(seconds, rebuilt, expected[key], note, getattr(pipeline, "last_profile", None))
                results[key][pipeline.label].append(sample)
                wrong = "" if rebuilt == expected[key] else f"  expected {describe_probes(expected[key])}"
                print(f"  run {run + 1}/{runs}  {title:<24} {pipeline.label:<10} {format_seconds(seconds):>9}"
                      f"  rebuilt {describe_probes(rebuilt)}{wrong}" + (f"  ({note})" if note else ""),
                      flush=True)
    return results


def describe_probes(names):
    """`0`, `1 (tp00)`, `24`: a count, with the name when there is one."""
    return f"{len(names)} ({names[0]})" if len(names) == 1 else str(len(names))


def rebuilt_summary(samples):
    counts = sorted({len(sample.rebuilt) for sample in samples})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def median_seconds(samples):
    return statistics.median(sample.seconds for sample in samples)


def all_as_expected(samples):
    return all(sample.rebuilt == sample.expected for sample in samples)


def print_table(results, reference_label, ours_label):
    print()
    header = f"{'scenario':<24} {'reference':>10} {'ebpf-probe':>11} {'ratio':>7}   rebuilt ref / ours"
    print(header)
    print("-" * len(header))
    for key, title in SCENARIOS:
        ref = results[key][reference_label]
        ours = results[key][ours_label]
        ref_median, ours_median = median_seconds(ref), median_seconds(ours)
        if key == "touch_header" and all(not sample.rebuilt for sample in ref):
            # The reference rebuilt nothing: a ratio would compare a build with a no-op.
            ratio_text = "n/a"
        else:
            ratio_text = f"{ours_median / ref_median:.2f}×"
        print(f"{title:<24} {format_seconds(ref_median):>10} {format_seconds(ours_median):>11} {ratio_text:>7}"
              f"   {rebuilt_summary(ref):>7} / {rebuilt_summary(ours)}")
    notes = [(title, label, sample.note)
             for key, title in SCENARIOS for label in (reference_label, ours_label)
             for sample in results[key][label] if sample.note]
    for title, label, note in dict.fromkeys(notes):
        print(f"  note: {title}, {label}: {note}")
    print()


def print_limit(results, reference_label, ours_label):
    """Each cold build of ebpf-probe against what its graph allows on this machine, and the reference."""
    cores = os.cpu_count()
    print(f"cold build against its limit (critical path; CPU work / {cores} cores)")
    for number, (ours, ref) in enumerate(zip(results["cold"][ours_label], results["cold"][reference_label]), 1):
        profile = ours.profile
        limit = profile.limit(cores)
        print(f"  run {number}: wall {format_seconds(ours.seconds)} = {ours.seconds / ref.seconds:.2f}× reference "
              f"({format_seconds(ref.seconds)}); critical path {format_seconds(profile.critical_path)}, "
              f"CPU {format_seconds(profile.cpu)} / {cores} = {format_seconds(profile.cpu / cores)} "
              f"(steps took {format_seconds(profile.steps)}); limit {format_seconds(limit)} = "
              f"{limit / ref.seconds:.2f}× reference, wall {ours.seconds / limit:.2f}× the limit; "
              f"reference CPU {format_seconds(ref.profile.cpu)}")
    print()


def check_mark(ok):
    return "✔" if ok else "✘"


def print_targets(results, probe_count, header_users, children, reference_label, ours_label):
    cold_ratio = median_seconds(results["cold"][ours_label]) / median_seconds(results["cold"][reference_label])
    noop = median_seconds(results["noop"][ours_label])
    expected = len(header_users)

    noop_ok = noop <= 0.050 and children == 0
    children_text = "unknown (strace unavailable)" if children is None else f"{children} children"
    ref_header_text = rebuilt_summary(results["touch_header"][reference_label])
    if all(len(sample.rebuilt) < expected for sample in results["touch_header"][reference_label]):
        ref_header_text += " — misses the header change"
    rows = [
        (cold_ratio <= 0.35, "cold build ≤ 0.35× reference", f"{cold_ratio:.2f}×"),
        (cold_ratio <= 0.22, "cold build ≤ 0.22× reference (issue 14)", f"{cold_ratio:.2f}× (median)"),
        (noop_ok, "no-op ≤ 50 ms, no child process", f"{noop * 1000:.0f} ms, {children_text}"),
        (all_as_expected(results["touch_bpf"][ours_label]), "touch one .bpf.c: only that probe",
         f"{rebuilt_summary(results['touch_bpf'][ours_label])} rebuilt"),
        (all_as_expected(results["touch_header"][ours_label]), f"touch {SHARED_HEADER}: every includer",
         f"{rebuilt_summary(results['touch_header'][ours_label])} of {expected} rebuilt "
         f"(reference: {ref_header_text})"),
    ]
    print("targets (issues 6 and 14)")
    for ok, target, measured in rows:
        print(f"  {check_mark(ok)} {target:<40} {measured}")
    if expected != probe_count:
        print(f"  note: only {expected} of {probe_count} probes include {SHARED_HEADER} directly")
    if not all_as_expected(results["cold"][ours_label]) or not all_as_expected(results["noop"][ours_label]):
        print("  note: ebpf-probe rebuilt an unexpected set of probes in a cold or no-op build (see the runs)")


# ---------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=24, help="number of probes to generate (default 24)")
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario and pipeline (default 5)")
    parser.add_argument("--bin", default="target/release/ebpf-probe",
                        help="the ebpf-probe binary (default target/release/ebpf-probe, built if missing)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="-j for ebpf-probe (default: none given, ebpf-probe uses nproc)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspaces")
    args = parser.parse_args()
    if args.probes < 1 or args.runs < 1:
        parser.error("--probes and --runs must be at least 1")
    return args


def main():
    args = parse_args()
    check_prerequisites()
    binary = find_binary(args.bin)
    print_machine_facts(binary, args.jobs)

    root = Path(tempfile.mkdtemp(prefix="ebpf-probe-bench-", dir="/tmp"))
    try:
        ours_dir, reference_dir = root / "ebpf-probe", root / "reference"
        print(f"generating {args.probes} probes in {ours_dir}", flush=True)
        names = generate_workspace(binary, ours_dir, args.probes)
        header_users = probes_including(ours_dir, names, Path(SHARED_HEADER).name)

        commands = discover_commands(binary, ours_dir, names[0])
        verify_binaries([ours_dir / ".output" / "bin" / n for n in names], "ebpf-probe")
        write_reference_workspace(ours_dir, reference_dir, names, commands)
        print(f"reference pipeline in {reference_dir}: `make -s -C probes` (no -j)")
        print(f"  clang {shlex.join(commands.clang_flags)}")
        print(f"  cc    {shlex.join(commands.cc_flags)} … {shlex.join(commands.link_libs)}", flush=True)

        reference = Reference(reference_dir, names)
        ours = EbpfProbe(binary, ours_dir, names, args.jobs)
        run_checked(reference.build_argv(), env=make_env(), what="reference make (verification build)")
        verify_binaries(reference.binaries(), "reference")
        print("  verified: every reference binary answers -h; one per kind loads and attaches", flush=True)
        print()

        results = run_scenarios([reference, ours], names, args.runs, header_users)

        children = None
        if ensure_strace():
            trace_file = root / "noop.strace"
            ours_count, ours_programs = count_children(ours.build_argv(), trace_file)
            ref_count, ref_programs = count_children(reference.build_argv(), trace_file, env=make_env())
            children = ours_count
            print(f"\nno-op children started: ebpf-probe {describe_children(ours_count, ours_programs)}; "
                  f"reference {describe_children(ref_count, ref_programs)}")
        else:
            print("\nno-op children started: unknown — strace is not installed and could not be "
                  "(install it: apt-get install -y strace / dnf install -y strace)")

        print_table(results, reference.label, ours.label)
        print_limit(results, reference.label, ours.label)
        print_targets(results, args.probes, header_users, children, reference.label, ours.label)
    finally:
        if args.keep:
            print(f"\nkept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
