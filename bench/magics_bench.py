"""Magics benchmarks (issue 3).

1. Harness overhead: `%timeit -o` of trivial expressions, ns per loop.
2. `%timeit` of the lesson's function (bench/lesson_fn, a path dependency compiled at
   opt-level 3 like a release build) against the same function timed by a standalone release
   binary (bench/lesson_fn/src/bin/handtimed.rs) the same way.

Usage: .venv/bin/python bench/magics_bench.py
"""
from __future__ import annotations

import subprocess

from benchlib import ROOT, fresh_install, kernel, machine

CRATE = ROOT / "bench/lesson_fn"
cache = fresh_install("magics-bench")
# Dependencies of the session crate as in a release build (the cells stay at opt-level 0): a
# `.cargo/config.toml` in the slot is nearer than the kernel's own (sessions/.cargo), so it wins.
session = next((cache / "sessions").glob("[0-9]*/"))
(session / ".cargo").mkdir(exist_ok=True)
(session / ".cargo/config.toml").write_text(
    '[profile.dev.package."*"]\nopt-level = 3\ndebug-assertions = false\noverflow-checks = false\n'
)


def main() -> None:
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=CRATE, check=True)
    with kernel() as k:
        print(f"Machine: {machine()}")
        print()
        print("| `%timeit` of | ns per loop |")
        print("|---|---|")
        for expr in ["()", "1 + 1", "std::hint::black_box(2u64) * 3"]:
            k.ok(f"let t = %timeit -o -q {expr}")
            ns = float(k.result("t.average() * 1e9"))
            print(f"| `{expr}` | {ns:.2f} |")
        print()
        k.ok(f':dep lesson_fn = {{ path = "{CRATE}" }}')
        print("| size | `%timeit` in the kernel | standalone release loop | ratio |")
        print("|---|---|---|---|")
        for n in (100, 1000):
            k.ok(f"let a: lesson_fn::ndarray::Array2<f64> = lesson_fn::lesson_array({n}); lesson_fn::a_plus_tr_tanh_a(&a);")
            k.ok("let t = %timeit -o -q lesson_fn::a_plus_tr_tanh_a(&a)")
            kernel_s = float(k.result("t.average()"))
            out = subprocess.run([str(CRATE / "target/release/handtimed"), str(n)], capture_output=True, text=True, check=True)
            standalone_s = float(out.stdout.split()[0])
            print(f"| {n}x{n} | {kernel_s*1e6:.2f} µs | {standalone_s*1e6:.2f} µs | {kernel_s/standalone_s:.3f} |")

if __name__ == "__main__":
    main()
