"""Issue 16: a kernel's start as a learner meets it. The kernel starts, the learner reads for `--read`
seconds (0: a notebook run headless sends the first cell at once), then runs the lesson's first code
cell. Per start: kernel_info answered (ready), the first cell's round trip, the time from the start to
its result, and the CPU the kernel and its children used up to then.

Each binary (this build, and with `--before BIN` another one) is a worker on a fresh cache made by
`install`; starts alternate between them, so both see the same machine. The first start after
`install` is reported apart from the later ones (the caches that a start fills are empty then).

    .venv/bin/python bench/start_bench.py [--before BIN] [--rounds 5] [--read 0,3] [--report FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its waited-for children, and of its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pids = 0.0, [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def worker() -> None:
    """Answers `start READ` with one start's figures (a JSON object)."""
    import nbformat
    from benchlib import LESSON, fresh_install, kernel, kernel_pid

    fresh_install("start-bench")
    first = next(c.source for c in nbformat.read(LESSON, as_version=4).cells if c.cell_type == "code")
    print("{}", flush=True)
    for line in sys.stdin:
        read = float(line.split()[1])
        started = time.perf_counter()
        with kernel() as k:
            ready = time.perf_counter() - started
            time.sleep(max(0.0, read - ready))
            cell = k.ok(first)
            done = time.perf_counter() - started
            cpu = cpu_seconds(kernel_pid(k))
        print(json.dumps({"ready": ready, "cell": cell.seconds, "done": done, "cpu": cpu}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="another build of the kernel, measured the same way")
    parser.add_argument("--rounds", type=int, default=5, help="rounds after the first (whose first start is the one after `install`)")
    parser.add_argument("--read", default="0,3", help="seconds of reading before the first cell, comma-separated")
    parser.add_argument("--report", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    from benchlib import BINARY, Worker, machine

    reads = [float(r) for r in args.read.split(",")]
    binaries = {"now": BINARY, **({"before": args.before} if args.before else {})}
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}\n")
    workers = {label: Worker([sys.executable, __file__, "--worker"], dict(os.environ, RUST_JIT_KERNEL_BIN=str(b))) for label, b in binaries.items()}
    seen: dict[str, list] = {}
    for r in range(args.rounds + 1):
        for read in reads:
            for label, w in (workers.items() if r % 2 == 0 else reversed(workers.items())):
                first = r == 0 and read == reads[0]
                key = f"{label} read={read:g}" + (" first after install" if first else "")
                seen.setdefault(key, []).append(w.ask(f"start {read}"))
    for w in workers.values():
        w.close()
    print("The first start after `install` (one), then the median (min-max) of the others, alternating.\n")
    print("| binary, reading | ready | first cell's round trip | start to its result | kernel CPU to then |\n|---|---|---|---|---|")
    for key, runs in seen.items():
        def fig(name: str) -> str:
            v = [run[name] for run in runs]
            return f"{v[0]:.2f} s" if len(v) == 1 else f"{statistics.median(v):.2f} s ({min(v):.2f}-{max(v):.2f})"
        print(f"| {key} | {fig('ready')} | {fig('cell')} | {fig('done')} | {fig('cpu')} |")
    if args.report:
        args.report.write_text(json.dumps({"machine": machine(), "binaries": {k: str(v) for k, v in binaries.items()}, "starts": seen}, indent=1))


if __name__ == "__main__":
    main()
