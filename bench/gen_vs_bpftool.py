#!/usr/bin/env python3
"""Benchmark `ebpf-probe -g` against a bare bpftool dump (issue 14: the target is <= 1.15x).

What it measures, on one machine in one run:

  reference   `bpftool btf dump file BTF format c > FILE` (the shell's redirection, nothing else)
  ebpf-probe  `ebpf-probe -g` in a fresh workspace: the same dump streamed through the ext_def.h insertion
              and the enumerator #ifndef wrapping into a temp file, renamed, vmlinux.h linked

Each is run alternately (reference, ebpf-probe, reference, ...) --runs times after one untimed warm-up of
each; the median wall times and the ratio ebpf-probe / reference are printed, with the target's verdict.
Both write into the same temporary directory, so the filesystem is the same.

Run from the repository root:

    python3 bench/gen_vs_bpftool.py [--runs 11] [--btf /sys/kernel/btf/vmlinux] [--bin target/release/ebpf-probe]
"""

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 1.15


def timed(argv, **kwargs):
    start = time.perf_counter()
    subprocess.run(argv, check=True, **kwargs)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--btf", default="/sys/kernel/btf/vmlinux")
    parser.add_argument("--bin", default="target/release/ebpf-probe")
    parser.add_argument("--bpftool", default=os.environ.get("BPFTOOL") or shutil.which("bpftool")
                        or "/usr/sbin/bpftool")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} is not built: run `cargo build --release` first")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="gen-bench.") as tmp:
        workspace = os.path.join(tmp, "ws")
        os.makedirs(os.path.join(workspace, "include"))
        with open(os.path.join(workspace, "ebpf-probe.toml"), "w") as marker:
            marker.write("# gen benchmark workspace\n")
        for name in os.listdir(os.path.join(repo, "include")):
            if name.startswith("linux_") or name == "vmlinux.h":
                continue
            shutil.copy(os.path.join(repo, "include", name), os.path.join(workspace, "include", name))
        reference_out = os.path.join(tmp, "reference.h")
        reference = f"{shlex.quote(args.bpftool)} btf dump file {shlex.quote(args.btf)} format c > {reference_out}"
        ours = [binary, "-C", workspace, "-g", "--btf", args.btf, "--kernel-release", "bench"]
        env = dict(os.environ, BPFTOOL=args.bpftool)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        # Warm-up: page cache, the binary, bpftool.
        timed(["sh", "-c", reference], **quiet)
        timed(ours, **quiet)
        times = {"reference": [], "ebpf-probe": []}
        for _ in range(args.runs):
            times["reference"].append(timed(["sh", "-c", reference], **quiet))
            times["ebpf-probe"].append(timed(ours, **quiet))
        header = os.path.join(workspace, "include", "linux_bench.h")
        print(f"BTF: {args.btf} ({os.path.getsize(args.btf)} bytes); header: {os.path.getsize(header)} bytes "
              f"(bpftool's own: {os.path.getsize(reference_out)} bytes); {args.runs} runs each, alternating")
        for name, values in times.items():
            print(f"  {name:<11} median {statistics.median(values) * 1000:7.1f} ms   "
                  f"min {min(values) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms")
        ratio = statistics.median(times["ebpf-probe"]) / statistics.median(times["reference"])
        verdict = "✔" if ratio <= TARGET else "✘"
        print(f"ratio ebpf-probe -g / bare bpftool dump: {ratio:.2f}x  {verdict} (target <= {TARGET}x)")


if __name__ == "__main__":
    main()
