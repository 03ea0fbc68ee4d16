"""Issue 13: what the user process's snapshots cost (a fork before each cell, the copy killed after it).

- The snapshot's own cost per cell, as the user process measures it, with 0 and 1 GiB of variables
  (goal: <= 2 ms with 1 GiB): the fork, made between cells (while the kernel compiles the next one),
  and what the cell's own time pays (telling the copy the cell starts, killing it after).
- A trivial cell's round trip with snapshots on and off (`RUST_JIT_KERNEL_SNAPSHOTS=off`), 1 GiB held.
- A cell that writes one byte in every page of the 1 GiB (each page is copied once, for the
  snapshot): on and off.
- Every code cell of the lesson: the snapshot cost of each (goal: none above 2 ms).

    .venv/bin/python bench/snapshot_bench.py [--rounds 15] [--report FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from benchlib import LESSON, fresh_install, kernel, machine

# Reads the cost of the cell before this one (the kernel exports it; see user_process/snapshot.rs).
PROBE = (
    '{\n    unsafe extern "C" { fn dlsym(h: *mut std::ffi::c_void, s: *const std::ffi::c_char) -> *mut std::ffi::c_void; }\n'
    '    let cost: extern "C" fn(u32) -> u64 = unsafe { std::mem::transmute(dlsym(std::ptr::null_mut(), c"rjk_snapshot_cost_ns".as_ptr())) };\n'
    '    println!("{} {}", cost(0), cost(1));\n}'
)
GIB = "let big: Vec<u8> = vec![1u8; 1 << 30];"
TRIVIAL = "let _ = big.len();"
TOUCH = "for i in (0..big.len()).step_by(4096) { big[i] = 2; }"


def probe(k) -> tuple[float, float]:
    """The snapshot cost of the cell run just before, in ms: the fork between cells, the cell's share."""
    fork, in_cell = k.ok(PROBE, store_history=False).stdout.split()[-2:]
    return int(fork) / 1e6, int(in_cell) / 1e6


def costs(k, code: str, rounds: int) -> list[tuple[float, float]]:
    out = []
    for _ in range(rounds):
        k.ok(code)
        out.append(probe(k))
    return out


def round_trips(k, code: str, rounds: int) -> list[float]:
    k.ok(code)  # compiled once (evcxr caches the build of an unchanged cell)
    return [k.ok(code).seconds * 1000 for _ in range(rounds)]


def lesson_cells() -> list[str]:
    nb = json.loads(LESSON.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--report", help="write the figures as JSON here")
    args = parser.parse_args()
    fresh_install("snapshot")
    report: dict = {"machine": machine(), "rounds": args.rounds}

    with kernel() as k:
        k.ok("let small = 1;")
        report["cost_ms_no_variables"] = costs(k, "let _ = small + 1;", args.rounds)
        k.ok(GIB.replace("let big", "let mut big"))
        report["cost_ms_1gib"] = costs(k, TRIVIAL, args.rounds)
        report["trivial_ms_on"] = round_trips(k, TRIVIAL, args.rounds)
        report["touch_ms_on"] = round_trips(k, TOUCH, args.rounds)
    os.environ["RUST_JIT_KERNEL_SNAPSHOTS"] = "off"
    with kernel() as k:
        k.ok(GIB.replace("let big", "let mut big"))
        report["trivial_ms_off"] = round_trips(k, TRIVIAL, args.rounds)
        report["touch_ms_off"] = round_trips(k, TOUCH, args.rounds)
    del os.environ["RUST_JIT_KERNEL_SNAPSHOTS"]

    lesson = []
    with kernel() as k:
        for i, code in enumerate(lesson_cells(), 1):
            started = time.perf_counter()
            cell = k.run(code)
            fork, in_cell = probe(k)
            lesson.append({"cell": i, "status": cell.status, "seconds": time.perf_counter() - started, "fork_ms": fork, "in_cell_ms": in_cell})
    report["lesson"] = lesson

    med = statistics.median
    print(f"Machine: {report['machine']}")
    print("| measure | snapshots on | off | goal |")
    print("|---|---|---|---|")
    for label, key, goal in [("no variables", "cost_ms_no_variables", ""), ("1 GiB of variables", "cost_ms_1gib", "<= 2")]:
        forks, cells = [c[0] for c in report[key]], [c[1] for c in report[key]]
        print(f"| snapshot, {label}: fork between cells (median / max ms) | {med(forks):.2f} / {max(forks):.2f} | - | |")
        print(f"| snapshot, {label}: in the cell's time (median / max ms) | {med(cells):.3f} / {max(cells):.3f} | - | {goal} |")
    print(f"| trivial cell round trip, 1 GiB held (median ms) | {med(report['trivial_ms_on']):.1f} | {med(report['trivial_ms_off']):.1f} | |")
    print(f"| cell writing every page of the 1 GiB (median ms) | {med(report['touch_ms_on']):.1f} | {med(report['touch_ms_off']):.1f} | |")
    failed = [c["cell"] for c in lesson if c["status"] != "ok"]
    for key, what, goal in [("fork_ms", "fork between cells", ""), ("in_cell_ms", "in the cell's time", "<= 2")]:
        worst = max(lesson, key=lambda c: c[key])
        print(f"| lesson, {len(lesson)} code cells: {what} (median / max ms, at cell {worst['cell']}) | "
              f"{med(c[key] for c in lesson):.3f} / {worst[key]:.3f} | - | {goal} |")
    if failed:
        print(f"lesson cells that failed: {failed}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
