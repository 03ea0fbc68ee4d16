"""`#[vectorize]` on the CPU (issue 5): targets cpu and parallel against hand-written loops.

The lesson's ufunc (`add_ufunc(x: i64, y: i64) -> i64 { x + y }`) on two 10^7-element i64 arrays:
- `target = "cpu"` against a hand-written serial loop in a `#[jit]` function (slices, zip, collect);
- `target = "parallel"` against a hand-written rayon loop in a `#[jit]` function (`par_iter`), both with
  `RAYON_NUM_THREADS=2` (the hand-written loop uses rayon's own pool, sized by the same variable).
`%timeit -o`, `t.average()`; the GPU target's benchmark needs a GPU and is not here yet.

Usage: .venv/bin/python bench/vectorize_bench.py
"""
from __future__ import annotations

import time

from benchlib import fresh_install, kernel, machine

CELLS = """#[vectorize]
fn add_ufunc(x: i64, y: i64) -> i64 { x + y }
#[vectorize(target = "parallel")]
fn add_ufunc_par(x: i64, y: i64) -> i64 { x + y }
#[jit]
fn hand_add(a: &Array1<i64>, b: &Array1<i64>) -> Array1<i64> {
    let (a, b) = (a.as_slice().unwrap(), b.as_slice().unwrap());
    Array1::from_vec(a.iter().zip(b).map(|(x, y)| x + y).collect())
}
#[jit]
fn hand_add_par(a: &Array1<i64>, b: &Array1<i64>) -> Array1<i64> {
    use rayon::prelude::*;
    let (a, b) = (a.as_slice().unwrap(), b.as_slice().unwrap());
    Array1::from_vec(a.par_iter().zip(b).map(|(x, y)| x + y).collect())
}
let n = 10_000_000usize;
let a = Array1::from_shape_fn(n, |i| i as i64);
let b = Array1::from_shape_fn(n, |i| (2 * i) as i64);"""


def main() -> None:
    fresh_install("vectorize-bench")
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}\n")
    with kernel() as k:
        k.ok("%env RAYON_NUM_THREADS=2")
        k.ok(CELLS)
        assert k.result("add_ufunc(&a, &b) == hand_add(&a, &b) && add_ufunc_par(&a, &b) == hand_add_par(&a, &b)") == "true"
        times = {}
        for name in ["add_ufunc", "hand_add", "add_ufunc_par", "hand_add_par"]:
            k.ok(f"let t = %timeit -o -q {name}(&a, &b)")
            times[name] = float(k.result("t.average()"))
        print("| 10^7 i64 add | `#[vectorize]` | hand-written loop (`#[jit]`) | ratio | goal |")
        print("|---|---|---|---|---|")
        for target, ufunc, hand in [("cpu", "add_ufunc", "hand_add"), ("parallel (2 threads)", "add_ufunc_par", "hand_add_par")]:
            u, h = times[ufunc], times[hand]
            print(f"| {target} | {u * 1e3:.2f} ms | {h * 1e3:.2f} ms | {u / h:.2f}x | <= 1.1x |")

if __name__ == "__main__":
    main()
