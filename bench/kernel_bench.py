"""Kernel benchmarks (issues 2 and 16): start to first result, a trivial cell's round trip in a plain
session and in an array session (a 100x100 array of f64 held), resident memory; rust-jit beside
evcxr_jupyter in the same run, their cells alternating so both see the same machine.

Usage: .venv/bin/python bench/kernel_bench.py [--evcxr PATH_TO_evcxr_jupyter] [--cells 20] [--variant NAME=VALUE] [--before PATH]
`rust-jit` is installed first from RUST_JIT_KERNEL_BIN (default target/release/rust-jit-kernel), in a
fresh cache; evcxr_jupyter (`cargo install evcxr_jupyter --version 0.22.0 --locked --root DIR`, then
`--evcxr DIR/bin/evcxr_jupyter`) gets its kernelspec `rust` in a fresh directory on JUPYTER_PATH, and its
array session `:dep ndarray` (the runtime's version). The trivial cells differ (`{i} + 1`), so no cache of
compiled cells could answer them. `--variant NAME=VALUE` (repeatable) runs one more rust-jit kernel per
variant, started with that variable set (an A/B in the same run, e.g. RUST_JIT_KERNEL_CELL_LINKER=cc);
`--before PATH` one more, `rust-jit before`, of another build of the kernel binary (installed, in the same
cache, as the kernelspec `rust-jit-before`).
Prints Markdown tables to paste into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import first_on_jupyter_path, fresh_install, kernel, kernel_pid, machine, rss_mib

ARRAY = "let a = Array2::<f64>::zeros((100, 100));"
# evcxr_jupyter has no ndarray of its own: the version the runtime uses (jit/runtime/Cargo.toml).
EVCXR_ARRAY = [':dep ndarray = "=0.17.2"', "use ndarray::prelude::*;\n" + ARRAY]


def install_evcxr(binary: Path) -> None:
    """evcxr_jupyter's kernelspec (`rust`) in a fresh directory, first on JUPYTER_PATH."""
    where = Path(tempfile.mkdtemp(prefix="rjk-bench-evcxr-"))
    env = {**os.environ, "JUPYTER_PATH": str(where)}
    subprocess.run([str(binary), "--install"], env=env, check=True, capture_output=True)
    first_on_jupyter_path(where)


def install_before(binary: Path) -> None:
    """Another build of the kernel binary as the kernelspec `rust-jit-before`, first on JUPYTER_PATH
    (its `install` builds its session crate in the same cache, as for a learner)."""
    where = Path(tempfile.mkdtemp(prefix="rjk-bench-before-"))
    env = {**os.environ, "JUPYTER_DATA_DIR": str(where)}
    subprocess.run([str(binary), "install", "--user"], env=env, check=True, capture_output=True)
    (where / "kernels/rust-jit").rename(where / "kernels/rust-jit-before")
    first_on_jupyter_path(where)


def trivial(kernels: dict, cells: int, offset: int) -> dict:
    """Round trips (to the execute_reply) of `cells` different trivial cells per kernel, alternating."""
    times = {name: [] for name in kernels}
    for i in range(cells):
        for name, k in kernels.items():
            cell = k.ok(f"{offset + i} + 1")
            times[name].append(cell.reply_seconds)
    return times


def row(label: str, times: list[float], anchor: list[float] | None) -> str:
    ratio = f"{statistics.median(times) / statistics.median(anchor):.2f}x" if anchor else ""
    return f"| {label} | {statistics.median(times) * 1000:.0f} ms ({min(times) * 1000:.0f}-{max(times) * 1000:.0f}) | {ratio} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--evcxr", type=Path, help="the evcxr_jupyter binary to compare with")
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE", help="also a rust-jit kernel started with NAME=VALUE")
    parser.add_argument("--before", type=Path, help="also a rust-jit kernel of this kernel binary (an earlier build)")
    args = parser.parse_args()
    fresh_install("kernel-bench")
    # label -> (kernelspec, variables set for it)
    specs = {"rust-jit": ("rust-jit", {})} | {f"rust-jit {v}": ("rust-jit", dict([v.split("=", 1)])) for v in args.variant}
    if args.before:
        install_before(args.before)
        specs["rust-jit before"] = ("rust-jit-before", {})
    if args.evcxr:
        install_evcxr(args.evcxr)
        specs["rust"] = ("rust", {})
    names = list(specs)
    kernels, first, rss = {}, {}, {}
    try:
        for name, (spec, env) in specs.items():
            started = time.perf_counter()
            kernels[name] = kernel(spec, env).__enter__()
            first[name] = kernels[name].ok("1 + 1").reply_at - started
            rss[name] = rss_mib(kernel_pid(kernels[name]))
        plain = trivial(kernels, args.cells, 2)
        for name, (spec, _) in specs.items():
            if spec.startswith("rust-jit"):
                kernels[name].ok(ARRAY)
        if "rust" in kernels:
            for cell in EVCXR_ARRAY:
                kernels["rust"].ok(cell)
        array = trivial(kernels, args.cells, 1000)
    finally:
        for k in kernels.values():
            k.__exit__(None, None, None)
    anchor = "rust" if "rust" in kernels else None
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}\n")
    print("| kernel | start to first result | RSS after one cell (kernel + children) |\n|---|---|---|")
    for name in names:
        print(f"| {name} | {first[name]:.2f} s | {rss[name]:.0f} MiB |")
    print(f"\n| trivial cell (`{{i}} + 1`, {args.cells} different cells, alternating) | median (min-max) | ratio to evcxr_jupyter |\n|---|---|---|")
    for session, times in (("plain session", plain), ("array session (100x100 f64 held)", array)):
        for name in names:
            print(row(f"{name}, {session}", times[name], times[anchor] if anchor and name != anchor else None))
    if args.report:
        args.report.write_text(json.dumps({"machine": machine(), "first": first, "rss": rss, "plain": plain, "array": array}, indent=1))


if __name__ == "__main__":
    main()
