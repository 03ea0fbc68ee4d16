"""Issue 15: what seeing inside the jit costs.

1. `%timeit` without `-a`, against the kernel before `-a` existed (`--before BIN`): the harness's
   own cost (`()`, `1 + 1`) and statements that allocate (`Box::new`, `vec![0u8; 4096]`, the lesson's
   jit function at 100x100): the binary's `malloc` & co. add a relaxed load and a branch per allocation.
2. `-a`'s cost: the round trip of `%timeit -q -n N` with and without `-a` (one more run, counted).
3. A jit compile now writes the assembly and LLVM IR too: `jit: compiled ... in S s` for fresh
   functions, this kernel and the one before.
4. The round trip of `%jit_asm`, `%jit_llvm`, `%jit_report` on the lesson's function.

Each kernel is a worker on a fresh cache (`install`), asked in turn (interleaved rounds).

    .venv/bin/python bench/inspect_bench.py [--before BIN] [--rounds 5] [--report FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

STATEMENTS = ["()", "1 + 1", "Box::new(std::hint::black_box(7u64))", "vec![0u8; 4096]", "a_plus_tr_tanh_a(&a100)"]


def rust_worker() -> None:
    """A kernel of RUST_JIT_KERNEL_BIN answering `timeit I` (ns per loop of statement I),
    `round I A` (round trip of `%timeit -q -n 1000 -r 7` of statement I, with -a when A is 1),
    `compile K` (seconds rustc took for a fresh jit function) and `magics` (round trips)."""
    from benchlib import fresh_install, kernel, lesson_fn

    fresh_install("inspect-bench")
    with kernel() as k:
        k.ok(lesson_fn("#[jit]", "a_plus_tr_tanh_a"))
        k.ok("let a100 = Array2::from_shape_fn((100, 100), |(i, j)| (i * 100 + j) as f64);")
        print("{}", flush=True)
        for line in sys.stdin:
            question = line.split()
            if question[0] == "timeit":
                k.ok(f"let bench_t = %timeit -o -q {STATEMENTS[int(question[1])]}")
                print(float(k.result("bench_t.average()")) * 1e9, flush=True)
            elif question[0] == "round":
                flag = "-a " if question[2] == "1" else ""
                print(k.ok(f"%timeit -q -n 1000 -r 7 {flag}{STATEMENTS[int(question[1])]}").seconds, flush=True)
            elif question[0] == "compile":
                out = k.ok(lesson_fn("#[jit]", f"lesson_k{question[1]}_{os.getpid()}")).stdout
                print(float(re.search(r"jit: compiled \w+ in ([\d.]+) s", out).group(1)), flush=True)
            elif question[0] == "magics":
                times = {}
                for magic in ("%jit_asm a_plus_tr_tanh_a", "%jit_llvm a_plus_tr_tanh_a", "%jit_report a_plus_tr_tanh_a", "%jit_asm --naive a_plus_tr_tanh_a"):
                    times[magic] = k.ok(magic).seconds
                print(json.dumps(times), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="the kernel binary before issue 15, measured the same way")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--rust-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rust_worker:
        rust_worker()
        return
    from benchlib import BINARY, Worker, machine

    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}\n")
    binaries = {"now": BINARY, **({"before": args.before} if args.before else {})}
    workers = {label: Worker([sys.executable, __file__, "--rust-worker"], dict(os.environ, RUST_JIT_KERNEL_BIN=str(b))) for label, b in binaries.items()}
    seen: dict = {}
    for r in range(args.rounds):
        for i in range(len(STATEMENTS)):
            for label, worker in workers.items():
                seen.setdefault(("timeit", label, i), []).append(worker.ask(f"timeit {i}"))
            for flag in (0, 1):
                seen.setdefault(("round", flag, i), []).append(workers["now"].ask(f"round {i} {flag}"))
        for label, worker in workers.items():
            seen.setdefault(("compile", label), []).append(worker.ask(f"compile {r}"))
    magics = workers["now"].ask("magics")
    for worker in workers.values():
        worker.close()
    med = {key: statistics.median(v) for key, v in seen.items()}
    labels = list(workers)
    print(f"Medians of {args.rounds} interleaved rounds; each kernel on a fresh cache.\n")
    print("| `%timeit` (no `-a`) of | " + " | ".join(f"{l}: ns per loop" for l in labels) + (" | now / before |" if args.before else " |"))
    print("|---|" + "---|" * len(labels) + ("---|" if args.before else ""))
    for i, statement in enumerate(STATEMENTS):
        row = " | ".join(f"{med[('timeit', l, i)]:.2f}" for l in labels)
        ratio = f" | {med[('timeit', 'now', i)] / med[('timeit', 'before', i)]:.3f}x" if args.before else ""
        print(f"| `{statement}` | {row}{ratio} |")
    print("\n| `%timeit -q -n 1000 -r 7` of | round trip | with `-a` | `-a` adds |\n|---|---|---|---|")
    for i, statement in enumerate(STATEMENTS):
        plain, counted = med[("round", 0, i)], med[("round", 1, i)]
        print(f"| `{statement}` | {plain * 1e3:.0f} ms | {counted * 1e3:.0f} ms | {(counted - plain) * 1e3:+.0f} ms |")
    print("\n| a fresh `#[jit]` lesson function | " + " | ".join(f"{l}: rustc" for l in labels) + " |\n|---|" + "---|" * len(labels))
    print("| compile (seconds rustc took) | " + " | ".join(f"{med[('compile', l)]:.2f} s" for l in labels) + " |")
    print("\n| magic (this kernel) | round trip |\n|---|---|")
    for magic, seconds in magics.items():
        print(f"| `{magic}` | {seconds * 1e3:.0f} ms |")
    if args.report:
        args.report.write_text(json.dumps({"machine": machine(), "rounds": args.rounds, "statements": STATEMENTS, "raw": {repr(k): v for k, v in seen.items()}, "magics": magics}, indent=1))


if __name__ == "__main__":
    main()
