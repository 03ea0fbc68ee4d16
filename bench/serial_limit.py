"""Where is the floor of a serial `a + trace` at 1000x1000 on this machine?

Issue 14 asks serial `#[jit]` to reach 0.8x Numba's serial time. This measures, in one process and
interleaved (the memory bandwidth of these virtual machines drifts by 2x over minutes), Numba's serial
function, NumPy's `copyto` of the same array (the traffic floor of reading 8 MB and writing 8 MB),
and the lesson's function compiled with the jit's flags three ways (bench/serial_limit/src/lib.rs):
ndarray's operator (what serial `#[jit]` runs), streaming stores, and a result in huge pages.

    .venv/bin/python bench/serial_limit.py [--n 1000] [--rounds 15] [--report FILE]
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRATE = HERE / "serial_limit"
FLAGS = "-Copt-level=3 -Ctarget-cpu=native -Ctarget-feature=+prefer-256-bit"  # the jit's (kernel/src/jit/compiler.rs)


def build() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", "/tmp/rjk-serial-limit-target"))
    env = dict(os.environ, RUSTFLAGS=FLAGS, CARGO_TARGET_DIR=str(target))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path", str(CRATE / "Cargo.toml")], env=env, check=True)
    return target / "release" / "libserial_limit.so"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--report")
    args = parser.parse_args()
    lib = ctypes.CDLL(str(build()))
    import numba
    import numpy as np

    n = args.n
    a = np.arange(n * n, dtype=np.float64).reshape(n, n) * 1e-6

    @numba.njit
    def numba_serial(a):
        trace = 0.0
        for i in range(a.shape[0]):
            trace += np.tanh(a[i, i])
        return a + trace

    numba_serial(a)
    out = np.empty_like(a)
    reps = max(20, 100 * (1000 // n) ** 2)
    data, size = ctypes.c_void_p(a.ctypes.data), ctypes.c_size_t(n)

    def native(name):
        fn = getattr(lib, name)
        return lambda: fn(data, size, ctypes.c_size_t(reps))

    def numba_loop():
        for _ in range(reps):
            numba_serial(a)

    def copy_loop():
        for _ in range(reps):
            np.copyto(out, a)

    cases = {"Numba serial": numba_loop, "NumPy copyto": copy_loop, "ndarray a + trace (serial #[jit])": native("ndarray_op"),
             "streaming stores": native("streamed"), "huge-page result": native("huge_pages")}
    runs = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            runs[name].append((time.perf_counter() - start) / reps * 1e6)
    medians = {name: statistics.median(v) for name, v in runs.items()}
    from benchlib import machine  # noqa: E402 (after the build: it imports the tests' client)

    print(f"Machine: {machine()}; Numba {numba.__version__}, NumPy {np.__version__}")
    print(f"{n}x{n}, medians of {args.rounds} interleaved rounds of {reps} calls\n")
    print("| | per call | / Numba serial | / NumPy copyto |\n|---|---|---|---|")
    for name, us in medians.items():
        print(f"| {name} | {us:.1f} us | {us / medians['Numba serial']:.2f}x | {us / medians['NumPy copyto']:.2f}x |")
    if args.report:
        Path(args.report).write_text(json.dumps({"machine": machine(), "n": n, "reps": reps, "runs_us": runs}, indent=1))


if __name__ == "__main__":
    main()
