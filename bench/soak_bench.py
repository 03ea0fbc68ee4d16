"""Issue 13: a long session stays healthy. 300 cells of a learner's mix (lets, fns, `#[jit]`, parallel
calls, rayon in plain cells, `%timeit -n`), in rounds of ten; goals: no failure, cell time at the end
<= 1.3x the start (the first three rounds against the last three, and one fixed cell run each round),
resident memory growth <= 50 MiB (kernel and user process, between cells), user-process threads bounded.

    .venv/bin/python bench/soak_bench.py [--cells 300] [--report FILE.json]
"""
from __future__ import annotations

import argparse
import json
import statistics

from benchlib import fresh_install, kernel, kernel_pid, machine, rss_mib

SETUP = [
    "let data = Array1::from_iter((0..100_000).map(|i| i as f64));",
    "#[jit(parallel)]\nfn scaled_sum(a: &Array1<f64>) -> f64 {\n    let mut s = 0.0;\n    for i in prange(0..a.len()) {\n        s += a[i] * 2.0;\n    }\n    s\n}",
]
FIXED = "data.len() + 1"


def round_cells(i: int) -> list[str]:
    """Ten cells a learner might write in a row (their names new each round)."""
    return [
        f"let a{i}: i64 = {i} * 2;",
        f"fn f{i}(x: i64) -> i64 {{ x * 3 + {i} }}",
        f"f{i}(a{i})",
        f"#[jit]\nfn j{i}(n: u64) -> u64 {{\n    let mut s = 0;\n    for k in 0..n {{ s += k * {i}; }}\n    s\n}}",
        f"j{i}(1000)",
        "scaled_sum(&data)",
        "use rayon::prelude::*;\n(0..10_000u64).into_par_iter().map(|x| x % 7).sum::<u64>()",
        f"%timeit -n 20 f{i}(3)",
        f'println!("round {i}: {{}}", a{i});',
        f"let v{i}: Vec<f64> = (0..1000).map(|x| x as f64 * {i} as f64).collect();",
    ]


def threads(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/task"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--report", help="write the figures as JSON here")
    args = parser.parse_args()
    fresh_install("soak")
    rounds = max(1, args.cells // 10)
    per_round: list[dict] = []
    failures: list[str] = []
    with kernel() as k:
        for code in SETUP:
            k.ok(code)
        pid = kernel_pid(k)
        for i in range(rounds):
            seconds = 0.0
            for code in round_cells(i):
                cell = k.run(code)
                seconds += cell.seconds
                if cell.status != "ok" or cell.errors:
                    failures.append(f"round {i}: {cell.describe()[:300]}")
            fixed = k.ok(FIXED).seconds
            user = int(k.result("std::process::id()"))
            per_round.append({"round": i, "seconds": seconds, "fixed_seconds": fixed, "rss_mib": rss_mib(pid), "user_threads": threads(user)})
            print(f"round {i}: {seconds:.1f} s, fixed cell {fixed * 1000:.0f} ms, {per_round[-1]['rss_mib']:.0f} MiB, {per_round[-1]['user_threads']} threads", flush=True)
    first, last = per_round[:3], per_round[-3:]
    mean = statistics.mean
    report = {
        "machine": machine(),
        "cells": rounds * 10,
        "failures": failures,
        "round_seconds_start": mean(r["seconds"] for r in first),
        "round_seconds_end": mean(r["seconds"] for r in last),
        "fixed_ms_start": 1000 * statistics.median(r["fixed_seconds"] for r in first),
        "fixed_ms_end": 1000 * statistics.median(r["fixed_seconds"] for r in last),
        "rss_mib_start": per_round[0]["rss_mib"],
        "rss_mib_end": per_round[-1]["rss_mib"],
        "threads_start": per_round[0]["user_threads"],
        "threads_end": per_round[-1]["user_threads"],
        "rounds": per_round,
    }
    print(f"Machine: {report['machine']}")
    print("| measure | start | end | ratio / growth | goal |")
    print("|---|---|---|---|---|")
    print(f"| a round of 10 cells (s) | {report['round_seconds_start']:.1f} | {report['round_seconds_end']:.1f} | {report['round_seconds_end'] / report['round_seconds_start']:.2f}x | <= 1.3x |")
    print(f"| the fixed cell (ms) | {report['fixed_ms_start']:.0f} | {report['fixed_ms_end']:.0f} | {report['fixed_ms_end'] / report['fixed_ms_start']:.2f}x | <= 1.3x |")
    print(f"| resident memory, kernel + user process (MiB) | {report['rss_mib_start']:.0f} | {report['rss_mib_end']:.0f} | +{report['rss_mib_end'] - report['rss_mib_start']:.0f} | <= +50 |")
    print(f"| user-process threads | {report['threads_start']} | {report['threads_end']} | +{report['threads_end'] - report['threads_start']} | bounded |")
    print(f"| failed cells | | | {len(failures)} | 0 |")
    for f in failures:
        print("  " + f)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
