#!/usr/bin/env python3
"""Benchmark `ebpf-probe compat` against a fleet of kernels (issue 12: "100 kernel BTFs in seconds").

What it does, on one machine in one run:

  1. a workspace of the shipped probes plus one probe with CO-RE reads of several kernel structs
     (`ebpf-probe init`, the probes copied from this repository, `-g`, `-b`);
  2. a BTFHub-style directory of N kernel BTFs (`<distro>/<version>/x86_64/<release>.btf`), each a copy of this
     machine's /sys/kernel/btf/vmlinux (real size, ~5 MB, ~150,000 types) in which every tenth kernel has the
     field `tgid` renamed, so that the matrix has real failures to report;
  3. `ebpf-probe compat --no-running --kernel DIR --json` timed --runs times (median), with the number of
     programs, kernels, failing cells, the bytes of BTF read, and the peak memory (ru_maxrss of the child);
     and the same with -j 1, to show what the parallel reading buys.

Run from the repository root as root (for -g): python3 bench/compat_fleet.py [--kernels 100] [--runs 3]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CORE_PROBE = r"""#define BPF_PROG_KERN
#include "bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/sched/sched_process_exec")
int exec_reads(void *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    int tgid = BPF_CORE_READ(task, tgid);
    int ppid = BPF_CORE_READ(task, real_parent, tgid);
    u64 start = BPF_CORE_READ(task, start_time);
    unsigned long rss = BPF_CORE_READ(task, mm, total_vm);
    int uid = BPF_CORE_READ(task, cred, uid.val);
    bpf_printk("%d %d %llu %lu %d", tgid, ppid, start, rss, uid);
    return 0;
}

SEC("raw_tracepoint/sched_switch")
int switch_reads(void *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    int prio = BPF_CORE_READ(task, prio);
    unsigned int state = BPF_CORE_READ(task, __state);
    bpf_printk("%d %u", prio, state);
    return 0;
}
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def timed(cmd, cwd):
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(cmd, cwd=cwd, text=True, capture_output=True)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return done, elapsed, max(peak, before)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bin", default="target/release/ebpf-probe")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    repo = os.getcwd()
    vmlinux = open("/sys/kernel/btf/vmlinux", "rb").read()
    with tempfile.TemporaryDirectory(prefix="compat-fleet-") as tmp:
        ws = os.path.join(tmp, "ws")
        run([binary, "init", ws])
        for probe in ("killprobe", "dnsprobe"):
            shutil.rmtree(os.path.join(ws, "probes", probe), ignore_errors=True)
            shutil.copytree(os.path.join(repo, "probes", probe), os.path.join(ws, "probes", probe))
        core = os.path.join(ws, "probes", "corereads")
        os.makedirs(core)
        open(os.path.join(core, "corereads.bpf.c"), "w").write(CORE_PROBE)
        open(os.path.join(core, "corereads.c"), "w").write("int main(void) { return 0; }\n")
        run([binary, "-g", "-b"], cwd=ws)

        fleet = os.path.join(tmp, "btfs")
        renamed = vmlinux.replace(b"\0tgid\0", b"\0tgiX\0", 1)
        assert renamed != vmlinux, "no `tgid` string in this kernel's BTF"
        total_bytes = 0
        for i in range(args.kernels):
            distro = ("debian", "ubuntu", "centos", "openeuler")[i % 4]
            path = os.path.join(fleet, distro, str(10 + i % 7), "x86_64")
            os.makedirs(path, exist_ok=True)
            data = renamed if i % 10 == 9 else vmlinux
            with open(os.path.join(path, f"6.{i // 10}.{i % 10}-bench.btf"), "wb") as f:
                f.write(data)
            total_bytes += len(data)

        print(f"compat against {args.kernels} kernel BTFs ({total_bytes / 2**20:.0f} MiB), "
              f"{os.cpu_count()} CPUs, {args.runs} runs each")
        results = {}
        for label, extra in (("parallel", []), ("-j 1", ["-j", "1"])):
            times, peak, out = [], 0, None
            for _ in range(args.runs):
                done, elapsed, rss = timed(
                    [binary, "compat", "--no-running", "--json", "--kernel", fleet] + extra, ws)
                if done.returncode not in (0, 1):
                    sys.exit(f"compat failed:\n{done.stderr}")
                times.append(elapsed)
                peak = max(peak, rss)
                out = json.loads(done.stdout)
            results[label] = statistics.median(times)
            programs = len(out["programs"])
            failing = sum(1 for p in out["programs"] for c in p["kernels"] if c["status"] == "fail")
            print(f"  {label:9} median {results[label]:.2f} s  ({programs} programs x {len(out['kernels'])} kernels, "
                  f"{failing} failing cells, peak RSS of all children so far {peak / 1024:.0f} MiB)")
        print(f"  per kernel: {results['parallel'] / args.kernels * 1000:.1f} ms; "
              f"parallel / -j 1 = {results['parallel'] / results['-j 1']:.2f}x")
        verdict = "✔" if results["parallel"] < 10 else "✘"
        print(f"  {verdict} target: {args.kernels} kernels in seconds (< 10 s): {results['parallel']:.2f} s")


if __name__ == "__main__":
    main()
