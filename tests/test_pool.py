"""One rayon per session: plain cells and jit functions share the session pool, sized by `%env
RAYON_NUM_THREADS`; the user process's threads stay bounded; an idle session does not spin."""
from __future__ import annotations

import os
import time

THREADS_FN = """#[jit(parallel)]
fn jit_rayon_threads(a: &Array1<f64>) -> (usize, usize, f64) {
    let mut total = 0.0;
    for i in prange(0..a.len()) {
        total += a[i];
    }
    (rayon::current_num_threads(), num_threads(), total)
}"""

PAR_ITER_FN = """#[jit]
fn jit_par_iter_sum(v: &Array1<f64>) -> f64 {
    use rayon::prelude::*;
    v.as_slice().unwrap().par_iter().map(|x| x * x).sum()
}"""


def user_pid(kernel) -> int:
    return int(kernel.result("std::process::id()"))


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def cpu_seconds(pid: int) -> float:
    """User and system time of the process, all its threads."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_rayon_follows_rayon_num_threads_in_plain_cells_and_jit_functions(kernel):
    kernel.ok(THREADS_FN)
    kernel.ok("let pool_ones = Array1::<f64>::ones(1000);")
    for n in (3, 1, 2):
        kernel.ok(f"%env RAYON_NUM_THREADS={n}")
        assert kernel.result("(rayon::current_num_threads(), num_threads())") == f"({n}, {n})"
        assert kernel.result("jit_rayon_threads(&pool_ones)") == f"({n}, {n}, 1000.0)"
        # rayon's own calls in a plain cell run on the same pool.
        assert kernel.result("rayon::join(|| rayon::current_num_threads(), || rayon::current_thread_index().is_some())") == f"({n}, true)"


def test_par_iter_in_plain_cells_and_in_jit_code(kernel):
    kernel.ok("%env RAYON_NUM_THREADS=2")
    kernel.ok("use rayon::prelude::*;")
    assert kernel.result("(0..100_000u64).into_par_iter().map(|x| x * x).sum::<u64>()") == str(sum(x * x for x in range(100_000)))
    assert kernel.result("let mut words = vec![\"b\", \"a\", \"c\"]; words.par_sort(); words") == '["a", "b", "c"]'
    kernel.ok(PAR_ITER_FN)
    assert kernel.result("jit_par_iter_sum(&Array1::from_iter((0..1000).map(|i| i as f64)))") == f"{float(sum(i * i for i in range(1000)))}"


def test_threads_stay_bounded_over_100_cells_that_use_rayon(fresh_kernel):
    k = fresh_kernel
    k.ok("%env RAYON_NUM_THREADS=2")
    k.ok("use rayon::prelude::*;\nlet seed_v: Vec<u64> = (0..10_000).collect();")
    pid = user_pid(k)
    counts = []
    for i in range(100):
        # Each a new cell (its own shared object), as a learner's would be.
        cell = [
            f"seed_v.par_iter().map(|x| x + {i}).sum::<u64>()",
            f"rayon::join(|| {i} + 1, || {i} * 2)",
            f"(0..{i + 10}u64).into_par_iter().filter(|x| x % 3 == 0).count()",
            f"let mut s{i}: Vec<u64> = seed_v.clone(); s{i}.par_sort_unstable_by(|a, b| b.cmp(a)); s{i}[0]",
        ][i % 4]
        k.ok(cell)
        if i in (9, 99):
            counts.append(threads_of(pid))
    assert user_pid(k) == pid, "no cell crashed"
    # The main thread, the pool's two, and no more than a couple of others.
    assert counts[1] <= 2 + 3, counts
    assert counts[1] == counts[0], f"threads grew from {counts[0]} to {counts[1]}"


def test_an_idle_session_after_parallel_work_is_not_spinning(fresh_kernel):
    k = fresh_kernel
    k.ok("%env RAYON_NUM_THREADS=2")
    k.ok(THREADS_FN)
    k.ok("let idle_big = Array1::<f64>::ones(2_000_000);\nfor _ in 0..20 { jit_rayon_threads(&idle_big); }")
    k.ok("use rayon::prelude::*;\n(0..1_000_000u64).into_par_iter().sum::<u64>()")
    pid = user_pid(k)
    time.sleep(0.5)
    before = cpu_seconds(pid)
    time.sleep(3)
    used = cpu_seconds(pid) - before
    # Spinning workers would use up to 2 cores (6 s here); a sleeping pool, none.
    assert used < 0.1, f"the idle user process used {used:.2f} s of CPU in 3 s"
