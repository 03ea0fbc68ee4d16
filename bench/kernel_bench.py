"""Kernel benchmarks (issue 2): trivial-cell round trip, start to first result, memory.

Usage: .venv/bin/python bench/kernel_bench.py [KERNEL_NAME ...]
Kernels are looked up in JUPYTER_PATH; `rust-jit` is installed first from RUST_JIT_KERNEL_BIN
(default target/release/rust-jit-kernel), in a fresh cache.
Prints a Markdown table to paste into docs/benchmarks.md.
"""
from __future__ import annotations

import statistics
import sys
import time

from benchlib import fresh_install, kernel, kernel_pid, machine, rss_mib

fresh_install("kernel-bench")


def bench(kernel_name: str, rounds: int = 20) -> dict:
    """Times to the execute_reply (not to idle)."""
    t0 = time.perf_counter()
    with kernel(kernel_name) as k:
        first_result = k.ok("1 + 1").reply_at - t0
        rss = rss_mib(kernel_pid(k))
        times = [k.ok("1 + 1").reply_seconds for _ in range(rounds)]
    return {
        "kernel": kernel_name,
        "first": first_result,
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "rss": rss,
    }


def main() -> None:
    names = sys.argv[1:] or ["rust-jit"]
    # rust-jit twice: the first start after install, then a later start (a restart).
    runs = [(f"{n} (first start after install)" if n == "rust-jit" else n, n) for n in names]
    if "rust-jit" in names:
        runs.insert(names.index("rust-jit") + 1, ("rust-jit (later start)", "rust-jit"))
    print(f"Machine: {machine()}")
    print()
    print("| kernel | start to first result | `1 + 1` round trip, median of 20 (min-max) | RSS after one cell (kernel + children) |")
    print("|---|---|---|---|")
    for label, name in runs:
        r = bench(name)
        print(f"| {label} | {r['first']:.2f} s | {r['median']*1000:.0f} ms ({r['min']*1000:.0f}-{r['max']*1000:.0f}) | {r['rss']:.0f} MiB |")


if __name__ == "__main__":
    main()
