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
from datetime import datetime
from pathlib import Path

import nbclient
import nbformat

from benchlib import LESSON, fresh_install, machine
from numba_lesson import notebook, parameters


CELLS: dict[str, list[list[float]]] = {}  # kernel name (or label) -> per run, [start to the first cell, each code cell's seconds]


def execute(nb: nbformat.NotebookNode, kernel_name: str, label: str = "") -> float:
    """Seconds from the kernel's start to the last cell's end; an error in a cell fails it. Each run's
    start (to the first cell's execute_input) and code cells' times (nbclient's record: execute_input to
    execute_reply) go to CELLS."""
    nb = copy.deepcopy(nb)  # nbclient writes the outputs into it
    started, wall = time.perf_counter(), time.time()
    nbclient.NotebookClient(nb, timeout=900, kernel_name=kernel_name).execute()
    total = time.perf_counter() - started
    stamps = [c.metadata["execution"] for c in nb.cells if c.cell_type == "code"]
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    cells = [parse(t["shell.execute_reply"]) - parse(t["iopub.execute_input"]) for t in stamps]
    CELLS.setdefault(label or kernel_name, []).append([parse(stamps[0]["iopub.execute_input"]) - wall] + cells)
    return total


def cell_table(rust: nbformat.NotebookNode, python: nbformat.NotebookNode) -> None:
    """Warm runs' medians, cell by cell, the Rust lesson's code cells beside the Python lesson's (the
    Python lesson sets its thread count in its first cell and has no cell of its own for it)."""
    med = lambda runs: [statistics.median(x) for x in zip(*runs)]
    r, p = med(CELLS["rust-jit"][1:]), med(CELLS["python3"][1:])
    lines = lambda nb: [c.source.strip().splitlines()[0][:50].replace("|", "\\|") for c in nb.cells if c.cell_type == "code"]
    rl, pl = lines(rust), lines(python)
    print("| step | Rust (warm, median) | Python (warm, median) |\n|---|---|---|")
    print(f"| kernel start to the first cell | {r[0]:.2f} s | {p[0]:.2f} s |")
    pi = 0
    for i, line in enumerate(rl):
        other = ""
        if not line.startswith("%env") and pi < len(pl):
            other = f"{p[pi + 1]:.2f} s `{pl[pi]}`"
            pi += 1
        print(f"| {i} `{line}` | {r[i + 1]:.2f} s | {other} |")


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
                warm_off.append(execute(rust, "rust-jit", "rust-jit, kept cells off"))
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
    print()
    cell_table(rust, python)
    if args.report:
        args.report.write_text(json.dumps({"machine": machine(), "install": install, "first": first, "python_first": python_first,
                                           "warm": warm, "python_warm": python_warm, "warm_kept_cells_off": warm_off, "parameters": parameters(),
                                           "cells": CELLS}, indent=1))


if __name__ == "__main__":
    main()
