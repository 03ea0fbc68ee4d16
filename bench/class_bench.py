"""Issue 12: a class on one server, through JupyterHub (tests/hub_class.py: learners are Unix users,
the kernel installed once with `install --sys-prefix`). Root only.

1. A new learner alone (fresh home) on the shared install: kernel start (POST /api/sessions to
   kernel_info_reply), start to the first result (`1 + 1`), the first array cell, and the lesson's
   jit cells (from the shared cache or not).
2. N learners at once (default 8), each logging in, starting a server and running the lesson: wall
   time, CPU seconds and peak resident memory per learner (all of the learner's processes: server,
   kernel, evcxr's user process, cargo, rustc), errors, dependencies built, disk per learner.
3. The same, with the shared install made without `--prepare` (only the install's defaults).

From those, a sizing table: learners per core, GiB per learner, and a memory guarantee and limit.

    .venv/bin/python bench/class_bench.py [--learners 8] [--only prepared|unprepared] [--json FILE]
    .venv/bin/python bench/class_bench.py --report FILE     (the tables again, from a saved run)
    .venv/bin/python bench/class_bench.py --new-learners 5  (only new learners' first kernels)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import threading
import time

from benchlib import machine  # noqa: F401  (puts tests/ on sys.path)
from hub_class import ClassServer, Learner, Usage, cpu_seconds, defines_jit, dir_size, lesson

FIRST_ARRAY_CELL = "Array2::<f64>::zeros((2, 2)).sum()"


def first_cells(server: ClassServer, user: str) -> tuple[Learner, dict]:
    """A learner's first kernel: kernel start, start to the first result, the first array cell."""
    learner = Learner(server, user)
    learner.log_in()
    learner.start_server()
    learner.upload("first.ipynb", {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    started = time.monotonic()
    kernel_start = learner.open_notebook("first.ipynb")
    one = learner.execute("1 + 1")
    first_result = time.monotonic() - started
    array = learner.execute(FIRST_ARRAY_CELL)
    learner.close()
    return learner, {"kernel_start_s": kernel_start, "first_result_s": first_result, "first_array_cell_s": array.seconds, "errors": one.errors + array.errors}


def new_learner(server: ClassServer, user: str) -> dict:
    """One learner alone: their first kernel, then the lesson, then a kernel again."""
    learner, first = first_cells(server, user)
    # Then the lesson, alone on the machine: its pace sets what a core can serve.
    notebook = lesson()
    learner.upload("lesson.ipynb", notebook)
    time.sleep(1.0)
    cpu_before, started = cpu_seconds(user), time.monotonic()
    learner.open_notebook("lesson.ipynb")
    cells = learner.run_notebook(notebook)
    learner.close()
    lesson_s = time.monotonic() - started
    time.sleep(1.0)
    lesson_cpu_s = cpu_seconds(user) - cpu_before
    # The same learner again (their slot built): the anchor for the new learner's figures.
    started = time.monotonic()
    learner.open_notebook("first.ipynb")
    learner.execute("1 + 1")
    again_first_result = time.monotonic() - started
    again_array = learner.execute("Array2::<f64>::ones((3, 3)).sum()")
    learner.close()
    return {
        **first,
        "lesson_s": lesson_s,
        "lesson_cpu_s": lesson_cpu_s,
        "returning_first_result_s": again_first_result,
        "returning_first_array_cell_s": again_array.seconds,
        "jit_cells": [c.stdout.strip() for c in cells if defines_jit(c.code)],
        "errors": first["errors"] + [e for c in cells for e in c.errors],
    }


def attend(server: ClassServer, user: str, notebook: dict, out: dict) -> None:
    record: dict = {"user": user}
    out[user] = record
    try:
        started = time.monotonic()
        learner = Learner(server, user)
        learner.log_in()
        learner.start_server()
        learner.upload("lesson.ipynb", notebook)
        record["kernel_start_s"] = learner.open_notebook("lesson.ipynb")
        cells = learner.run_notebook(notebook)
        learner.close()
        record["wall_s"] = time.monotonic() - started
        record["cells"] = [
            {"first_line": c.code.splitlines()[0][:60], "seconds": round(c.seconds, 2), "status": c.status, "errors": c.errors,
             "built_dependency": "Compiling " in c.stdout + c.stderr,
             "jit": ("from the cache" if "from the cache" in c.stdout else "compiled") if defines_jit(c.code) else None}
            for c in cells
        ]
        # The kernel is gone: its CPU time, and that of everything it ran, is its server's now.
        time.sleep(1.0)
        record["cpu_s"] = cpu_seconds(user)
        record["disk_bytes"] = dir_size(server.home(user) / ".cache/rust-jit-kernel")
    except BaseException as error:
        record["failure"] = repr(error)


def class_run(learners: int, prepare: bool) -> dict:
    notebook = lesson()
    with ClassServer(learners=learners + 1, prepare=prepare) as server:
        solo_user, class_users = server.users[0], server.users[1:]
        solo = new_learner(server, solo_user)
        results: dict = {}
        with Usage(class_users) as usage:
            started = time.monotonic()
            threads = [threading.Thread(target=attend, args=(server, u, notebook, results)) for u in class_users]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - started
        for user in class_users:
            results[user]["peak_rss_bytes"] = usage.peak[user]
        return {
            "prepared": prepare,
            "install_s": server.install_seconds,
            "shared_cache_bytes": dir_size(server.shared),
            "new_learner": solo,
            "learners": learners,
            "wall_s": wall,
            "per_learner": [results[u] for u in class_users],
        }


def summary(run: dict) -> dict:
    learners = run["per_learner"]
    ok = [l for l in learners if "failure" not in l and all(c["status"] == "ok" and not c["errors"] for c in l["cells"])]
    done = [l for l in learners if "failure" not in l]
    cells = [c for l in done for c in l["cells"]]
    median = lambda key: statistics.median(l[key] for l in done) if done else float("nan")  # noqa: E731
    return {
        "finished_without_error": f"{len(ok)}/{len(learners)}",
        "wall_s": run["wall_s"],
        "lesson_wall_median_s": median("wall_s"),
        "cpu_s_median": median("cpu_s"),
        "peak_rss_mib_max": max((l["peak_rss_bytes"] for l in done), default=0) / 2**20,
        "peak_rss_mib_median": median("peak_rss_bytes") / 2**20,
        "disk_mib_max": max((l["disk_bytes"] for l in done), default=0) / 2**20,
        "cells_building_a_dependency": sum(c["built_dependency"] for c in cells),
        "jit_cells_from_cache": f"{sum(c['jit'] == 'from the cache' for c in cells)}/{sum(c['jit'] is not None for c in cells)}",
    }


LESSON_MINUTES = 30  # how long a learner takes over the lesson in class (reading, typing, running)


def sizing(run: dict) -> dict:
    """CPU: the lesson's CPU seconds per learner, and what a core serves (a) when learners take
    LESSON_MINUTES over it, and (b) when all run it at once and may take twice as long as one alone
    (measured: N learners at once against one alone). Memory: the peak of the busiest learner; the
    guarantee is that peak, the limit twice it (room for the learner's own arrays)."""
    s = summary(run)
    solo = run["new_learner"]
    cpu = s["cpu_s_median"]
    peak_gib = s["peak_rss_mib_max"] / 1024
    return {
        "cpu_s_per_learner": cpu,
        "learners_per_core_paced": LESSON_MINUTES * 60 / cpu,
        "learners_per_core_at_once": 2 * solo["lesson_s"] / cpu,
        "at_once_slowdown": s["lesson_wall_median_s"] / solo["lesson_s"],
        "gib_per_learner": peak_gib,
        "mem_guarantee": f"{math.ceil(peak_gib * 4) / 4:.2f}G",
        "mem_limit": f"{math.ceil(peak_gib * 2 * 4) / 4:.2f}G",
    }


def report(runs: list[dict], learners: int) -> None:
    print(f"\n| install | install s | shared cache MB | new learner: kernel start | first result | first array cell | the same learner again: first result | first array cell |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        n = run["new_learner"]
        name = "--sys-prefix --prepare lesson" if run["prepared"] else "--sys-prefix (no --prepare)"
        print(f"| {name} | {run['install_s']:.0f} | {run['shared_cache_bytes'] / 2**20:.0f} | {n['kernel_start_s']:.2f} s | {n['first_result_s']:.2f} s | {n['first_array_cell_s']:.2f} s | {n['returning_first_result_s']:.2f} s | {n['returning_first_array_cell_s']:.2f} s |")
    print(f"\n| {learners} learners at once | finished without error | wall | lesson wall (median) | CPU s per learner (median) | peak RSS per learner (median / max) | cells building a dependency | jit cells from the cache | disk per learner (max) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        s = summary(run)
        name = "prepared" if run["prepared"] else "not prepared"
        print(f"| {name} | {s['finished_without_error']} | {s['wall_s']:.0f} s | {s['lesson_wall_median_s']:.0f} s | {s['cpu_s_median']:.0f} | "
              f"{s['peak_rss_mib_median']:.0f} / {s['peak_rss_mib_max']:.0f} MiB | {s['cells_building_a_dependency']} | {s['jit_cells_from_cache']} | {s['disk_mib_max']:.1f} MB |")
    print(f"\n| sizing | lesson alone (wall / CPU) | {learners} at once: lesson wall / alone | learners per core, {LESSON_MINUTES} min each | learners per core, all at once within 2x alone | GiB per learner (peak) | memory guarantee | memory limit |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        z, solo = sizing(run), run["new_learner"]
        name = "prepared" if run["prepared"] else "not prepared"
        print(f"| {name} | {solo['lesson_s']:.0f} s / {solo['lesson_cpu_s']:.0f} s | {z['at_once_slowdown']:.1f}x | {z['learners_per_core_paced']:.0f} | "
              f"{z['learners_per_core_at_once']:.1f} | {z['gib_per_learner']:.2f} | {z['mem_guarantee']} | {z['mem_limit']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=8)
    parser.add_argument("--only", choices=["prepared", "unprepared"])
    parser.add_argument("--json", help="write every figure here too")
    parser.add_argument("--new-learners", type=int, metavar="K", help="only time the first kernel of K new learners (prepared install)")
    parser.add_argument("--report", metavar="JSON", help="only print the tables of a run saved with --json")
    args = parser.parse_args()
    if args.new_learners:
        with ClassServer(learners=args.new_learners, prepare=True) as server:
            starts = [first_cells(server, user)[1] for user in server.users]
        print(f"Machine: {machine()}")
        print(f"| {len(starts)} new learners, one after another | median | min | max |")
        print("|---|---|---|---|")
        for key, name in (("kernel_start_s", "kernel start"), ("first_result_s", "start to first result"), ("first_array_cell_s", "first array cell")):
            values = [s[key] for s in starts]
            print(f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f} s | {max(values):.2f} s |")
        return
    if args.report:
        with open(args.report) as f:
            runs = json.load(f)
        report(runs, runs[0]["learners"])
        return
    if os.geteuid() != 0:
        sys.exit("class_bench.py needs root (useradd, a hub spawning servers as other users)")
    runs = []
    for prepare in (True, False):
        if args.only and args.only != ("prepared" if prepare else "unprepared"):
            continue
        runs.append(class_run(args.learners, prepare))
        print(json.dumps(summary(runs[-1]), indent=1), flush=True)
    print(f"Machine: {machine()}")
    report(runs, args.learners)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
