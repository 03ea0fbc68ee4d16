"""`#[jit]` and `#[jit(parallel)]` against Numba (issue 4), in one run on one machine.

1. Numba: `../shared/lesson/numba_baseline.py` run 3 times (NUMBA_NUM_THREADS=2); median of each figure.
2. rust-jit on a fresh cache prepared by `install`: the first ndarray cell of a session (sent at once, and after a `1 + 1`); the
   lesson function's jit cell cold (3 variants that differ by a comment, so each compiles) and cached
   (after a kernel restart); `%timeit -o` of the naive (plain cell), jit and parallel versions at
   100x100 and 1000x1000 with `%env RAYON_NUM_THREADS=2`.

Usage: .venv/bin/python bench/jit_bench.py   (numpy and numba come with tests/requirements.txt)
Prints Markdown tables for docs/benchmarks.md.
"""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time

from benchlib import ROOT, fresh_install, kernel, lesson_fn, machine

BASELINE = ROOT.parent / "shared/lesson/numba_baseline.py"

NAIVE = lesson_fn("", "naive")
JIT = lesson_fn("#[jit]", "a_plus_tr_tanh_a")
PARALLEL = lesson_fn("#[jit(parallel)]", "a_plus_tr_tanh_a_par", parallel=True)
# The lesson's arrays: np.arange(n * n).reshape((n, n)).
ARRAYS = "\n".join(f"let a{n} = Array2::from_shape_fn(({n}, {n}), |(i, j)| (i * {n} + j) as f64);" for n in (100, 1000))

LINE = re.compile(r"(\w+)\s+n=\s*(\d+) first_call=\s*([\d.]+) ms\s+per_loop=\s*([\d.]+) us")


def numba(runs: int = 3) -> dict:
    """(case, n) -> {"first": s, "loop": s}, medians over `runs` processes."""
    seen: dict = {}
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    for _ in range(runs):
        out = subprocess.run([sys.executable, str(BASELINE)], env=env, capture_output=True, text=True, check=True).stdout
        for name, n, first, loop in LINE.findall(out):
            seen.setdefault((name, int(n)), []).append((float(first) / 1e3, float(loop) / 1e6))
    return {k: {"first": statistics.median(v[0] for v in vals), "loop": statistics.median(v[1] for v in vals)} for k, vals in seen.items()}


def timeit(k, expr: str) -> float:
    k.ok(f"let bench_t = %timeit -o -q {expr}")
    return float(k.result("bench_t.average()"))


def rust() -> dict:
    out: dict = {}
    started = time.perf_counter()
    with kernel() as k:
        cell = k.ok(ARRAYS.splitlines()[0])
        out["ndarray first, since start"] = time.perf_counter() - started
        out["ndarray first, round trip"] = cell.seconds
        k.ok(ARRAYS)
        k.ok(NAIVE)
        cold = []
        for variant in range(3):
            cell = k.ok(JIT.replace("{\n", f"{{\n    // variant {variant} {time.time()}\n", 1))
            assert "jit: compiled" in cell.stdout, cell.stdout
            cold.append(cell.seconds)
        out["cold"] = statistics.median(cold)
        out["first call"] = k.ok("a_plus_tr_tanh_a(&a100).len()").seconds
        k.ok(JIT)  # the version timed below, and found in the cache after the restart
        k.ok(PARALLEL)
        k.ok("%env RAYON_NUM_THREADS=2")
        assert k.result("a_plus_tr_tanh_a_par(&a1000) == a_plus_tr_tanh_a(&a1000)") == "true"
        for n in (100, 1000):
            if n == 100:
                out[("naive", n)] = timeit(k, f"naive(&a{n})")
            out[("jit", n)] = timeit(k, f"a_plus_tr_tanh_a(&a{n})")
            out[("parallel", n)] = timeit(k, f"a_plus_tr_tanh_a_par(&a{n})")
        k.restart()
        k.ok("1 + 1")
        out["ndarray after a plain cell"] = k.ok(ARRAYS.splitlines()[0]).seconds
        cached = []
        for _ in range(5):
            cell = k.ok(JIT)
            assert "from the cache" in cell.stdout, cell.stdout
            cached.append(cell.seconds)
        out["cached"] = statistics.median(cached)
    return out


def main() -> None:
    fresh_install("jit-bench")
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}")
    nb = numba()
    import numba as numba_module
    import numpy

    print(f"Numba {numba_module.__version__}, NumPy {numpy.__version__}, NUMBA_NUM_THREADS=2; rust-jit RAYON_NUM_THREADS=2\n")
    rs = rust()
    us = lambda s: f"{s * 1e6:.2f} us"  # noqa: E731
    print("| per loop (`%timeit`) | rust-jit | Numba | rust-jit / Numba | goal |")
    print("|---|---|---|---|---|")
    goals = {("jit", 100): "<= 0.75", ("jit", 1000): "<= 1.0"}
    for case, n in [("naive", 100), ("jit", 100), ("jit", 1000), ("parallel", 100), ("parallel", 1000)]:
        r, b = rs[(case, n)], nb[(case, n)]["loop"]
        print(f"| {case} {n}x{n} | {us(r)} | {us(b)} | {r / b:.2f}x | {goals.get((case, n), '')} |")
    print()
    print("| ratio | rust-jit | Numba | goal |")
    print("|---|---|---|---|")
    print(f"| naive / jit, 100x100 | {rs[('naive', 100)] / rs[('jit', 100)]:.0f}x | {nb[('naive', 100)]['loop'] / nb[('jit', 100)]['loop']:.0f}x | >= 40x |")
    print(f"| parallel / jit, 1000x1000 | {rs[('parallel', 1000)] / rs[('jit', 1000)]:.2f}x | {nb[('parallel', 1000)]['loop'] / nb[('jit', 1000)]['loop']:.2f}x | <= 0.7x |")
    print(f"| parallel / jit, 100x100 (overhead) | {rs[('parallel', 100)] / rs[('jit', 100)]:.2f}x | {nb[('parallel', 100)]['loop'] / nb[('jit', 100)]['loop']:.2f}x | > 1 (visible) |")
    print()
    first = nb[("jit", 100)]["first"]
    print("| compile | rust-jit | Numba first call (100x100) | rust-jit / Numba | goal |")
    print("|---|---|---|---|---|")
    print(f"| jit cell round trip, cold (median of 3) | {rs['cold'] * 1e3:.0f} ms | {first * 1e3:.0f} ms | {rs['cold'] / first:.2f}x | <= 1.0x |")
    print(f"| jit cell round trip, cached after a restart (median of 5) | {rs['cached'] * 1e3:.1f} ms | {first * 1e3:.0f} ms | {rs['cached'] / first:.3f}x | <= 0.2x |")
    print(f"| then the first call's cell (`a_plus_tr_tanh_a(&a100).len()`) | {rs['first call'] * 1e3:.0f} ms | | | |")
    print()
    print("| first plain cell that uses ndarray in a new session | round trip | goal |")
    print("|---|---|---|")
    print(f"| after a `1 + 1` cell (the session is up) | {rs['ndarray after a plain cell']:.2f} s | <= 3 s |")
    print(f"| as the very first cell, sent at once (waits for the session to start) | {rs['ndarray first, round trip']:.2f} s ({rs['ndarray first, since start']:.2f} s since `start_kernel`) | |")


if __name__ == "__main__":
    main()
