"""Kernel benchmarks (issue 2): trivial-cell round trip, start to first result, memory.

Usage: .venv/bin/python bench/kernel_bench.py [KERNEL_NAME ...]
Kernels are looked up in JUPYTER_PATH; `rust-jit` is installed from target/release first.
Prints a Markdown table to paste into docs/benchmarks.md.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target/release/rust-jit-kernel"
prefix = Path(tempfile.mkdtemp(prefix="rjk-bench-"))
# A fresh cache, prepared the way a learner's is: by `install` (which builds the session crate once).
os.environ["RUST_JIT_KERNEL_CACHE"] = tempfile.mkdtemp(prefix="rjk-bench-cache-")
subprocess.run([str(BINARY), "install", "--prefix", str(prefix)], check=True, capture_output=True)
os.environ["JUPYTER_PATH"] = os.pathsep.join(
    [str(prefix / "share/jupyter")] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
)

from jupyter_client.manager import KernelManager  # noqa: E402


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as f:
                pids.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            pass
    return total / 1024


def execute(kc, code: str, timeout: float = 120) -> float:
    t = time.perf_counter()
    msg_id = kc.execute(code)
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    elapsed = time.perf_counter() - t
    assert reply["content"]["status"] == "ok", reply["content"]
    return elapsed


def bench(kernel_name: str, rounds: int = 20) -> dict:
    km = KernelManager(kernel_name=kernel_name)
    t0 = time.perf_counter()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    execute(kc, "1 + 1")
    first_result = time.perf_counter() - t0
    pid = km.provisioner.pid if hasattr(km.provisioner, "pid") else km.kernel.pid
    rss = rss_mib(pid)
    times = [execute(kc, "1 + 1") for _ in range(rounds)]
    kc.stop_channels()
    km.shutdown_kernel(now=False)
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
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    mold = "mold" if subprocess.run(["which", "mold"], capture_output=True).returncode == 0 else "system linker"
    print(f"Machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; {rustc}; {mold}")
    print()
    print("| kernel | start to first result | `1 + 1` round trip, median of 20 (min-max) | RSS after one cell (kernel + children) |")
    print("|---|---|---|---|")
    for label, name in runs:
        r = bench(name)
        print(f"| {label} | {r['first']:.2f} s | {r['median']*1000:.0f} ms ({r['min']*1000:.0f}-{r['max']*1000:.0f}) | {r['rss']:.0f} MiB |")


if __name__ == "__main__":
    main()
