"""Issue 6: the lesson executed headless (`jupyter nbconvert --to notebook --execute`), the first time
after `install` in a fresh cache (every #[jit] function and plotters compiled), then again (jit cache
warm). Goals on a 2-core machine: <= 90 s and <= 30 s.

    .venv/bin/python bench/lesson_bench.py    (with NVRTC on LD_LIBRARY_PATH, as tests/venv.sh sets)
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchlib import execute_lesson, fresh_install, machine


def execute() -> float:
    out = Path(tempfile.mkdtemp(prefix="rjk-lesson-"))
    started = time.perf_counter()
    execute_lesson(out)
    return time.perf_counter() - started


def main() -> None:
    started = time.perf_counter()
    cache = fresh_install("lesson")
    install = time.perf_counter() - started
    first = execute()
    second = execute()
    print(f"Machine: {machine()}")
    print(f"install (fresh cache {cache}): {install:.1f} s")
    print("| run | seconds | goal |")
    print("|---|---|---|")
    print(f"| first after install | {first:.1f} | <= 90 |")
    print(f"| again (jit cache warm) | {second:.1f} | <= 30 |")


if __name__ == "__main__":
    main()
