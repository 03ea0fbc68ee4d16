"""`#[jit(parallel)]` against Numba's `parallel=True` (issue 14), side by side in one run.

The machines here are shared virtual machines whose memory bandwidth drifts by a factor of two over
minutes, so the figures are taken interleaved: three long-lived workers (Numba in a Python process;
rust-jit in a kernel; with `--before`, another build of the kernel in a kernel of its own), each asked in
turn for one figure, three rounds; the median of each.

- Numba (NUMBA_NUM_THREADS=2, its default threading layer, named) and NumPy's `copyto` of the same
  array: the lesson's function, serial (`@jit`) and parallel, over the lesson's sizes; per loop = the
  mean of 7 runs of an autoranged loop count (IPython's `%timeit`).
- rust-jit (RAYON_NUM_THREADS=2), on a fresh cache prepared by `install`: the same function as
  `#[jit]` and `#[jit(parallel)]`, `%timeit -o -q` of each. Then the session's threads and its CPU use
  over 5 s of idleness after the parallel calls; then plain cells' round trips (compile, link, run) once
  the runtime is in the session.

Usage: .venv/bin/python bench/parallel_bench.py [--before OLD_BINARY] [--rounds 3] [--sizes 100,1000] [--svg FILE.svg] [--report FILE.json]
Prints Markdown tables for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

SIZES = [25, 50, 100, 200, 400, 700, 1000, 1500, 2000]
THREADS = 2


def functions() -> str:
    """The lesson's function as `#[jit]` `serial` and `#[jit(parallel)]` `parallel`."""
    from benchlib import lesson_fn

    return lesson_fn("#[jit]", "serial") + "\n" + lesson_fn("#[jit(parallel)]", "parallel", parallel=True)


NUMBA = r"""
import json, sys, timeit
import numpy as np
import numba
from numba import jit

def f(a):
    trace = 0.0
    for i in range(a.shape[0]):
        trace += np.tanh(a[i, i])
    return a + trace

serial = jit(nopython=True)(f)
parallel = jit(nopython=True, parallel=True)(f)

def per_loop(fn):
    t = timeit.Timer(fn)
    loops, _ = t.autorange()
    return sum(x / loops for x in t.repeat(repeat=7, number=loops)) / 7

arrays = {n: np.arange(n * n, dtype=np.float64).reshape((n, n)) for n in json.loads(sys.argv[1])}
for a in arrays.values():
    serial(a); parallel(a)
out = {n: np.empty_like(a) for n, a in arrays.items()}
print(json.dumps({"layer": numba.threading_layer(), "versions": f"Numba {numba.__version__}, NumPy {np.__version__}"}), flush=True)
for line in sys.stdin:
    case, n = line.split()
    a = arrays[int(n)]
    fn = {"serial": lambda: serial(a), "parallel": lambda: parallel(a), "copy": lambda: np.copyto(out[int(n)], a)}[case]
    print(per_loop(fn), flush=True)
"""


def user_pid(k) -> int:
    return int(k.result("std::process::id()"))


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rust_worker() -> None:
    """A kernel of the binary this process was started with (RUST_JIT_KERNEL_BIN), answering
    `serial N` / `parallel N` (seconds per loop) and `session` (threads, idle CPU, plain cells)."""
    from benchlib import fresh_install, kernel

    fresh_install("parallel-bench")
    with kernel() as k:
        k.ok(f"%env RAYON_NUM_THREADS={THREADS}")
        k.ok("\n".join(f"let a{n} = Array2::from_shape_fn(({n}, {n}), |(i, j)| (i * {n} + j) as f64);" for n in SIZES))
        k.ok(functions())
        largest = max(SIZES)
        assert k.result(f"parallel(&a{largest}) == serial(&a{largest})") == "true"
        print("{}", flush=True)
        for line in sys.stdin:
            question = line.split()
            if question[0] in ("serial", "parallel"):
                k.ok(f"let bench_t = %timeit -o -q {question[0]}(&a{question[1]})")
                print(float(k.result("bench_t.average()")), flush=True)
                continue
            out: dict = {}
            pid = user_pid(k)
            out["threads"] = len(os.listdir(f"/proc/{pid}/task"))
            k.ok(f"parallel(&a{max(SIZES)}).len()")
            time.sleep(0.2)
            before = cpu_seconds(pid)
            time.sleep(5)
            out["idle cpu"] = (cpu_seconds(pid) - before) / 5
            # Plain cells, the runtime in the session: a trivial one, and one that instantiates
            # ndarray's generic code in the cell (compiled and linked each time: a new comment).
            trivial, generic = [], []
            for i in range(7):
                trivial.append(k.ok(f"{i} + 1").seconds)
                generic.append(k.ok(f"// {i}\n(&a{min(SIZES)} + 1.0).sum()").seconds)
            out["trivial cell"] = statistics.median(trivial)
            out["ndarray cell"] = statistics.median(generic)
            print(json.dumps(out), flush=True)


def crossover(serial: dict, parallel: dict) -> int | None:
    """The smallest size from which parallel is faster than serial at every larger size."""
    found = None
    for n in sorted(serial, reverse=True):
        if parallel[n] < serial[n]:
            found = n
        else:
            break
    return found


def svg(path: Path, series: dict[str, dict[int, float]]) -> None:
    """A log-log line chart of per-loop times, as the lesson draws it (no plotting library here)."""
    import math

    w, h, m = 640, 420, 60
    xs = [math.log10(n) for n in SIZES]
    ys = [math.log10(t) for s in series.values() for t in s.values()]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    px = lambda n: m + (math.log10(n) - x0) / (x1 - x0) * (w - 2 * m)  # noqa: E731
    py = lambda t: h - m - (math.log10(t) - y0) / (y1 - y0) * (h - 2 * m)  # noqa: E731
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#ff7f0e"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="15">a_plus_tr_tanh_a per loop, {THREADS} threads (log-log)</text>',
             f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/><line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>']
    for n in SIZES:
        parts.append(f'<text x="{px(n):.1f}" y="{h - m + 16}" text-anchor="middle">{n}</text>')
    for e in range(math.floor(y0), math.ceil(y1) + 1):
        if y0 <= e <= y1:
            label = {-6: "1 us", -5: "10 us", -4: "100 us", -3: "1 ms", -2: "10 ms", -1: "100 ms"}.get(e, f"1e{e} s")
            parts.append(f'<text x="{m - 6}" y="{py(10 ** e) + 4:.1f}" text-anchor="end">{label}</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 18}" text-anchor="middle">n (n x n array)</text>')
    for i, (name, s) in enumerate(series.items()):
        c = colors[i % len(colors)]
        dash = ' stroke-dasharray="5,4"' if "Numba" in name else ""
        points = " ".join(f"{px(n):.1f},{py(t):.1f}" for n, t in sorted(s.items()))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        parts.append(f'<line x1="{m + 10}" y1="{m + 16 * i}" x2="{m + 34}" y2="{m + 16 * i}" stroke="{c}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{m + 40}" y="{m + 16 * i + 4}">{name}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="another kernel binary, measured the same way")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=lambda text: [int(n) for n in text.split(",")], help="only these sizes (comma-separated)")
    parser.add_argument("--svg", type=Path, help="write the crossover chart here")
    parser.add_argument("--report", type=Path, help="write the raw figures here (JSON)")
    parser.add_argument("--rust-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global SIZES
    if args.sizes:
        SIZES = args.sizes
        os.environ["RJK_BENCH_SIZES"] = ",".join(map(str, SIZES))
    elif os.environ.get("RJK_BENCH_SIZES"):
        SIZES = [int(n) for n in os.environ["RJK_BENCH_SIZES"].split(",")]
    if args.rust_worker:
        rust_worker()
        return
    from benchlib import BINARY, Worker, machine

    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}")
    numba_worker = Worker([sys.executable, "-c", NUMBA, json.dumps(SIZES)], dict(os.environ, NUMBA_NUM_THREADS=str(THREADS)))
    nb_info = numba_worker.hello
    binaries = {"rust-jit": BINARY, **({"rust-jit before": args.before} if args.before else {})}
    # One at a time: each install builds a session crate.
    workers = {label: Worker([sys.executable, __file__, "--rust-worker"], dict(os.environ, RUST_JIT_KERNEL_BIN=str(b))) for label, b in binaries.items()}
    labels = list(workers)
    seen: dict = {}
    for n in SIZES:
        for _ in range(args.rounds):
            for case in ("serial", "parallel", "copy"):
                seen.setdefault(("Numba", case, n), []).append(numba_worker.ask(f"{case} {n}"))
                if case == "copy":
                    continue
                for label, worker in workers.items():
                    seen.setdefault((label, case, n), []).append(worker.ask(f"{case} {n}"))
    numba_worker.close()
    fig = {k: statistics.median(v) for k, v in seen.items()}
    nb = {case: {n: fig[("Numba", case, n)] for n in SIZES} for case in ("serial", "parallel", "copy")}
    runs = {}
    for label, worker in workers.items():
        runs[label] = {case: {n: fig[(label, case, n)] for n in SIZES} for case in ("serial", "parallel")}
        runs[label].update(worker.ask("session"))
        worker.close()
    print(f"{nb_info['versions']}, NUMBA_NUM_THREADS={THREADS}, threading layer `{nb_info['layer']}`; rust-jit RAYON_NUM_THREADS={THREADS}; "
          f"medians of {args.rounds} interleaved rounds\n")
    us = lambda s: f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"  # noqa: E731
    head = "| n | Numba serial | Numba parallel | " + " | ".join(f"{l} serial | {l} parallel" for l in labels) + " | NumPy copyto |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for n in SIZES:
        cells = [us(nb["serial"][n]), us(nb["parallel"][n])]
        for l in labels:
            cells += [us(runs[l]["serial"][n]), us(runs[l]["parallel"][n])]
        print(f"| {n}x{n} | " + " | ".join(cells) + f" | {us(nb['copy'][n])} |")
    print()
    r = runs["rust-jit"]
    print("| ratio (same run) | measured | goal |")
    print("|---|---|---|")
    if 100 in SIZES:
        print(f"| 100x100 parallel / Numba parallel | {r['parallel'][100] / nb['parallel'][100]:.2f}x | <= 0.5x |")
    if 1000 in SIZES:
        print(f"| 1000x1000 parallel / Numba parallel | {r['parallel'][1000] / nb['parallel'][1000]:.2f}x | <= 0.8x |")
        print(f"| 1000x1000 serial / Numba serial | {r['serial'][1000] / nb['serial'][1000]:.2f}x | <= 0.8x |")
        print(f"| 1000x1000 serial / NumPy copyto of the same array | {r['serial'][1000] / nb['copy'][1000]:.2f}x | <= 1.15x |")
    if 100 in SIZES:
        print(f"| 100x100 parallel / serial (the overhead the lesson shows) | {r['parallel'][100] / r['serial'][100]:.2f}x (Numba {nb['parallel'][100] / nb['serial'][100]:.2f}x) | |")
    print()
    print("| crossover: parallel faster from | n |")
    print("|---|---|")
    print(f"| Numba | {crossover(nb['serial'], nb['parallel'])} |")
    for l in labels:
        print(f"| {l} | {crossover(runs[l]['serial'], runs[l]['parallel'])} |")
    print()
    print("| session | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    print("| user-process threads after the sweep | " + " | ".join(str(runs[l]["threads"]) for l in labels) + " |")
    print("| CPU over 5 s idle after a parallel call (share of one core) | " + " | ".join(f"{runs[l]['idle cpu'] * 100:.2f}%" for l in labels) + " |")
    print("| plain cell `N + 1`, round trip (median of 7) | " + " | ".join(f"{runs[l]['trivial cell'] * 1e3:.0f} ms" for l in labels) + " |")
    print(f"| plain cell `(&a{min(SIZES)} + 1.0).sum()`, round trip (median of 7) | " + " | ".join(f"{runs[l]['ndarray cell'] * 1e3:.0f} ms" for l in labels) + " |")
    if args.report:
        raw = {"machine": machine(), "numba": {**nb, **nb_info}, "rust": runs, "rounds": {f"{k[0]} {k[1]} {k[2]}": v for k, v in seen.items()}}
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(raw, indent=1) + "\n")
    if args.svg:
        series = {"Numba serial": nb["serial"], "Numba parallel": nb["parallel"]}
        for l in labels:
            series[f"{l} serial"] = runs[l]["serial"]
            series[f"{l} parallel"] = runs[l]["parallel"]
        svg(args.svg, series)
        print(f"\nChart: {args.svg}")


if __name__ == "__main__":
    main()
