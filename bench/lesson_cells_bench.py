"""Issue 16: every lesson cell's time, the first time after `install` (a fresh cache) and again (warm
caches), as a learner runs it: the kernel starts, the learner reads the first markdown cell for a few
seconds (`--read`, default 3 s), then runs the cells one after another. Timing cells (`%timeit`,
`sweep(`) are marked; the goal is that no other cell takes over 1 s.

    .venv/bin/python bench/lesson_cells_bench.py [--read 3] [--report FILE]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import nbformat

from benchlib import LESSON, fresh_install, kernel, machine

TIMING = ("%timeit", "sweep(", "%time ")


def run_lesson(read: float) -> list[float]:
    nb = nbformat.read(LESSON, as_version=4)
    seconds = []
    with kernel() as k:
        time.sleep(read)
        for cell in nb.cells:
            if cell.cell_type == "code":
                seconds.append(k.ok(cell.source).seconds)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--read", type=float, default=3.0, help="seconds between the kernel's start and the first cell")
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    fresh_install("lesson-cells")
    install = time.perf_counter() - started
    first = run_lesson(args.read)
    warm = run_lesson(args.read)
    sources = [c.source for c in nbformat.read(LESSON, as_version=4).cells if c.cell_type == "code"]
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}")
    print(f"install (fresh cache): {install:.1f} s; {args.read:.0f} s between the kernel's start and the first cell\n")
    print("| cell | first line | first run | warm | times things |\n|---|---|---|---|---|")
    for i, (source, a, b) in enumerate(zip(sources, first, warm)):
        line = source.strip().splitlines()[0][:60].replace("|", "\\|")
        timing = any(t in source for t in TIMING)
        print(f"| {i} | `{line}` | {a:.2f} s | {b:.2f} s | {'yes' if timing else ''} |")
    others = [(a, b, i) for i, (source, a, b) in enumerate(zip(sources, first, warm)) if not any(t in source for t in TIMING)]
    slowest_first = max(others)
    slowest_warm = max(others, key=lambda x: x[1])
    print(f"\nslowest cell that times nothing: first run {slowest_first[0]:.2f} s (cell {slowest_first[2]}), warm {slowest_warm[1]:.2f} s (cell {slowest_warm[2]}); goal <= 1 s")
    print(f"whole lesson, cells only: first run {sum(first):.1f} s, warm {sum(warm):.1f} s")
    if args.report:
        args.report.write_text(json.dumps({"machine": machine(), "read": args.read, "install": install, "sources": sources, "first": first, "warm": warm}, indent=1))


if __name__ == "__main__":
    main()
