"""What this machine is, in the figures README's timings are stated with: CPU cores, the CPU's
name and vector extensions, and one thread's fp32 matrix-multiply throughput, so a reader on
another machine can scale the quick demo's times (its jobs run one thread each).

    python benchmarks/machine.py

GFLOP/s: the best of `--repeats` timed 1024 x 1024 fp32 matrix products on one thread (2 n^3
FLOP each), after one untimed warm-up; the best, not the mean, so a busy neighbour lowers it
less.
"""

import argparse
import os
import platform
import time
from pathlib import Path

import torch


def cpu_name_and_flags() -> tuple[str, list[str]]:
    """The CPU's model name and its AVX/AMX extensions, from /proc/cpuinfo (Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return platform.processor() or "unknown", []
    name, flags = "unknown", []
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name == "unknown":
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = sorted(f for f in value.split() if f.startswith(("avx", "amx")))
    return name, flags


def matmul_gflops(n: int, repeats: int) -> float:
    """One thread's best fp32 n x n matrix-product rate."""
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=generator)
    b = torch.rand(n, n, generator=generator)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    name, flags = cpu_name_and_flags()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gflops = matmul_gflops(args.size, args.repeats)
    print(f"cpu: {name}; extensions: {' '.join(flags) or 'none found'}")
    print(f"cores available: {cores}; torch {torch.__version__}")
    print(f"one thread, fp32 {args.size}x{args.size} matmul: {gflops:.1f} GFLOP/s")
    print(f"RESULT cores={cores} matmul_1thread_gflops={gflops:.1f}")


if __name__ == "__main__":
    main()
