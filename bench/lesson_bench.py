"""The whole lesson, executed headless by nbclient: the Rust lesson the first time after `install` in a
fresh cache (every #[jit] function compiled), then warm (jit cache filled); and in the same run the
lesson's Python original on ipykernel with Numba (bench/numba_lesson.py: same cells, parameters and loop
counts), the ratio to beat (issue 16: Rust warm <= 1.0x Python). Warm runs alternate, `--rounds` each.
Issue 6's goals on a 2-core machine: first run <= 90 s, warm <= 30 s.

    .venv/bin/python bench/lesson_bench.py [--rounds 2] [--without-kept-cells] [--report FILE]

With `--without-kept-cells`, each round also runs the Rust lesson warm with
RUST_JIT_KERNEL_CELL_CACHE=off (every cell compiled by rustc, as before kept cells), in the same run.
    (with NVRTC on LD_LIBRARY_PATH, as tests/venv.sh sets; the Python lesson draws its chart with
    matplotlib: `.venv/bin/pip install matplotlib==3.10.8`, not needed by the tests)
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

import nbclient
import nbformat

from benchlib import LESSON, fresh_install, machine
from numba_lesson import notebook, parameters


def execute(nb: nbformat.NotebookNode, kernel_name: str) -> float:
    """Seconds from the kernel's start to the last cell's end; an error in a cell fails it."""
    nb = copy.deepcopy(nb)  # nbclient writes the outputs into it
    started = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=900, kernel_name=kernel_name).execute()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--without-kept-cells", action="store_true", help="also the Rust lesson warm with kept cells off")
    args = parser.parse_args()
    rust = nbformat.read(LESSON, as_version=4)
    python = notebook(parameters())
    started = time.perf_counter()
    cache = fresh_install("lesson")
    install = time.perf_counter() - started
    first = execute(rust, "rust-jit")
    python_first = execute(python, "python3")
    warm, python_warm, warm_off = [], [], []
    for _ in range(args.rounds):
        warm.append(execute(rust, "rust-jit"))
        python_warm.append(execute(python, "python3"))
        if args.without_kept_cells:
            os.environ["RUST_JIT_KERNEL_CELL_CACHE"] = "off"
            try:
                warm_off.append(execute(rust, "rust-jit"))
            finally:
                del os.environ["RUST_JIT_KERNEL_CELL_CACHE"]
    rust_w, python_w = statistics.median(warm), statistics.median(python_warm)
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}")
    print(f"install (fresh cache {cache}): {install:.1f} s; parameters {parameters()}")
    print("| run | Rust lesson (rust-jit) | Python lesson (Numba, ipykernel) | ratio | goal |")
    print("|---|---|---|---|---|")
    print(f"| first after install | {first:.1f} s | {python_first:.1f} s | {first / python_first:.2f}x | <= 90 s |")
    print(f"| warm, median of {args.rounds} (each) | {rust_w:.1f} s ({', '.join(f'{t:.1f}' for t in warm)}) | "
          f"{python_w:.1f} s ({', '.join(f'{t:.1f}' for t in python_warm)}) | {rust_w / python_w:.2f}x | <= 30 s, <= 1.0x |")
    if warm_off:
        off = statistics.median(warm_off)
        print(f"| warm, kept cells off, median of {args.rounds} | {off:.1f} s ({', '.join(f'{t:.1f}' for t in warm_off)}) | "
              f"{python_w:.1f} s | {off / python_w:.2f}x | |")
    if args.report:
        args.report.write_text(json.dumps({"machine": machine(), "install": install, "first": first, "python_first": python_first,
                                           "warm": warm, "python_warm": python_warm, "warm_kept_cells_off": warm_off, "parameters": parameters()}, indent=1))


if __name__ == "__main__":
    main()
