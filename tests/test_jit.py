"""`#[jit]` and `#[jit(parallel)]` in the real kernel: results, flags, errors, cache, threads."""
from __future__ import annotations

import random
import re

from kernel_client import Cell

LESSON_JIT = """#[jit]
fn a_plus_tr_tanh_a(a: &Array2<f64>) -> Array2<f64> {
    let mut trace = 0.0;
    for i in 0..a.nrows() {
        trace += a[[i, i]].tanh();
    }
    a + trace
}"""

LESSON_NAIVE = LESSON_JIT.replace("#[jit]\nfn a_plus_tr_tanh_a", "fn naive_a_plus_tr_tanh_a")

LESSON_PARALLEL = """#[jit(parallel)]
fn a_plus_tr_tanh_a_par(a: &Array2<f64>) -> Array2<f64> {
    let mut trace = 0.0;
    for i in prange(0..a.nrows()) {
        trace += a[[i, i]].tanh();
    }
    a + trace
}"""

REPORT = re.compile(r"^jit: (compiled (\w+) in \d+\.\d\d s|(\w+) from the cache)$")


def reports(cell: Cell) -> list[str]:
    lines = cell.stdout.splitlines()
    assert all(REPORT.match(line) for line in lines if line.startswith("jit:")), lines
    return [line for line in lines if line.startswith("jit:")]


def test_prelude_needs_no_dep_line(kernel):
    assert kernel.result("let z = Array2::<f64>::ones((3, 4)); z.sum()") == "12.0"
    assert kernel.result("ndarray::arr1(&[1, 2, 3]).len() + rayon::current_num_threads().min(1)") == "4"


def test_jit_and_naive_agree(kernel):
    cell = kernel.ok(LESSON_JIT)
    assert len(reports(cell)) == 1 and "a_plus_tr_tanh_a" in reports(cell)[0]
    kernel.ok(LESSON_NAIVE)
    kernel.ok("let a = Array2::from_shape_fn((100, 100), |(i, j)| ((i * 100 + j) as f64).sin());")
    assert kernel.result("a_plus_tr_tanh_a(&a) == naive_a_plus_tr_tanh_a(&a)") == "true"
    assert kernel.result("a_plus_tr_tanh_a(&a)[[3, 4]] - a[[3, 4]] > 0.0") == "true"


def test_jit_code_is_built_optimised_and_plain_cells_are_not(kernel):
    kernel.ok(
        "#[jit]\nfn jit_debug_assertions() -> bool { cfg!(debug_assertions) }\n"
        "#[jit]\nfn jit_wrapping(x: u8) -> u8 { x + 100 }\n"
        "#[jit]\nfn jit_has_avx2() -> bool { cfg!(target_feature = \"avx2\") }"
    )
    assert kernel.result("jit_debug_assertions()") == "false"
    assert kernel.result("cfg!(debug_assertions)") == "true"
    # Overflow checks off in jit code (wraps), on in plain cells (panics).
    assert kernel.result("jit_wrapping(200)") == "44"
    kernel.error("let x: u8 = std::hint::black_box(200); x + 100", "panic", "overflow")
    # -C target-cpu=native: the jit crate sees the features this CPU has.
    assert kernel.result('jit_has_avx2() == std::is_x86_feature_detected!("avx2")') == "true"


def cells(kernel, *steps):
    """Runs each `(code, result)` in order: `result` is the text/plain the cell must give, or
    None for a cell that must only succeed."""
    for code, expected in steps:
        if expected is None:
            kernel.ok(code)
        else:
            assert kernel.result(code) == expected, code


def test_jit_functions_call_each_other_and_redefinition_replaces(kernel):
    cells(
        kernel,
        ("#[jit]\nfn base_value() -> i64 { 1 }\n#[jit]\nfn ten() -> i64 { 10 }\nlet survivor = 5i64;", None),
        ("#[jit]\nfn twice_base() -> i64 { base_value() * 2 }", None),
        ("twice_base() + ten() + survivor", "17"),
        ("#[jit]\nfn base_value() -> i64 { 100 }", None),
        ("base_value() + ten() + survivor", "115"),
    )


def test_plain_function_redefined_as_jit(kernel):
    kernel.ok("fn was_plain() -> i32 { 1 }")
    assert kernel.result("was_plain()") == "1"
    kernel.ok("#[jit]\nfn was_plain() -> i32 { 2 }")
    assert kernel.result("was_plain()") == "2"


def test_nopython_error_says_why_and_keeps_everything(kernel):
    kernel.ok("fn plain_helper(x: f64) -> f64 { x * 2.0 }\nlet kept_value = 41;")
    content = kernel.error(
        "let lost = 1;\n#[jit]\nfn uses_plain(x: f64) -> f64 {\n    plain_helper(x) + 1.0\n}",
        "JitError",
        "`plain_helper` is defined in a plain cell",
        "Mark `plain_helper` with #[jit]",
    )
    assert any("cell:4:5" in line for line in content["traceback"]), content["traceback"]
    assert kernel.result("kept_value + 1") == "42"
    assert kernel.result("plain_helper(1.0)") == "2.0"


def test_lessons_type_error_reads_like_rustc(kernel):
    content = kernel.error(LESSON_JIT.replace("let mut trace = 0.0;", "let mut trace = 0;"), "CompilationError")
    assert content["evalue"] == "error[E0277]: cannot add-assign `f64` to `{integer}` (cell line 5)", content["evalue"]
    text = "\n".join(content["traceback"])
    assert "trace += a[[i, i]].tanh();" in text and "jit_" not in text and "aborting" not in text


def test_bad_jit_attributes_are_clear_errors(kernel):
    for code, message in [
        ("#[jit(fastmath)]\nfn f() {}", "unknown #[jit] option `fastmath`"),
        ("#[jit]\nfn generic<T: Copy>(x: T) -> T { x }", "cannot have type or const parameters"),
        ("#[jit]\nstruct NotAFunction;", "goes on a function"),
        ("#[jit(parallel)]\nfn f() { for i in prange(0..3) { break; } }", "cannot `break`"),
    ]:
        kernel.error(code, "JitError", message)
    content = kernel.error("fn outer() {\n    #[jit]\n    fn inner() {}\n}", "CompilationError")
    assert any("top level of a cell" in line for line in content["traceback"])


def test_cache_hit_after_restart(fresh_kernel):
    k = fresh_kernel
    marker = random.randrange(1 << 40)
    cell = f"#[jit]\nfn cached_marker() -> u64 {{ {marker} }}"
    assert reports(k.ok(cell))[0].startswith("jit: compiled cached_marker in ")
    assert reports(k.ok(cell)) == ["jit: cached_marker from the cache"]
    k.restart()
    again = k.ok(cell)
    assert reports(again) == ["jit: cached_marker from the cache"]
    assert k.result("cached_marker()") == str(marker)


def test_parallel_lesson_function_agrees_and_follows_rayon_num_threads(kernel):
    kernel.ok(LESSON_JIT)
    kernel.ok(LESSON_PARALLEL + "\n#[jit(parallel)]\nfn pool_threads() -> usize { num_threads() }")
    kernel.ok("let big = Array2::from_shape_fn((300, 300), |(i, j)| ((i * 7 + j) as f64).cos());")
    # The same sum of the diagonal, in parts: equal up to rounding.
    assert kernel.result("(&a_plus_tr_tanh_a_par(&big) - &a_plus_tr_tanh_a(&big)).iter().all(|d| d.abs() < 1e-9)") == "true"
    kernel.ok("%env RAYON_NUM_THREADS=3")
    assert kernel.result("pool_threads()") == "3"
    kernel.ok("%env RAYON_NUM_THREADS=2")
    assert kernel.result("pool_threads()") == "2"


def test_parallel_operators_broadcast_and_prange_reduces(kernel):
    kernel.ok(
        "#[jit(parallel)]\nfn affine(m: &Array2<f64>, row: &Array1<f64>) -> Array2<f64> { m * 2.0 - row / 4.0 + 1.0 }\n"
        "#[jit(parallel)]\nfn sum_and_product(n: u64) -> (u64, u64, f64) {\n"
        "    let (mut s, mut p, mut f) = (0u64, 1u64, 0.0);\n"
        "    for i in prange(1..=n) { s += i; p *= 1 + (i % 2); f -= 0.5; }\n"
        "    (s, p, f)\n}"
    )
    kernel.ok("let m = Array2::from_shape_fn((5, 3), |(i, j)| (i + j) as f64);\nlet row = array![4.0, 8.0, 12.0];")
    assert kernel.result("affine(&m, &row) == &m * 2.0 - &row / 4.0 + 1.0") == "true"
    # 2^500 wraps to 0 in u64: jit code has no overflow checks.
    assert kernel.result("sum_and_product(1000)") == "(500500, 0, -500.0)"
    kernel.error("affine(&m, &array![1.0, 2.0])", "panic", "broadcast")
    assert kernel.result("m.sum()") == "45.0"
    # Numba's `prange(n)`, in a jit function and in a plain cell.
    kernel.ok("#[jit(parallel)]\nfn count_up(n: usize) -> usize {\n    let mut s = 0;\n    for i in prange(n) { s += i; }\n    s\n}")
    assert kernel.result("(count_up(10), prange(4).sum::<usize>())") == "(45, 6)"


def test_thread_count_stays_bounded_over_many_cells(fresh_kernel):
    k = fresh_kernel
    k.ok("%env RAYON_NUM_THREADS=2")
    k.ok(LESSON_PARALLEL + "\nlet a = Array2::<f64>::ones((64, 64));")
    threads = "std::fs::read_to_string(\"/proc/self/status\").unwrap().lines().find(|l| l.starts_with(\"Threads:\")).unwrap()[8..].trim().parse::<usize>().unwrap()"
    counts = []
    for i in range(200):
        k.ok(f"let s{i % 10} = a_plus_tr_tanh_a_par(&a).sum();")
        if i % 50 == 49:
            counts.append(int(k.result(threads)))
    assert max(counts) <= 2 + 8, counts
    assert counts[-1] <= counts[0] + 1, counts


def test_uses_from_plain_cells_and_callees_later_in_the_cell(kernel):
    cells(
        kernel,
        ("use std::f64::consts::PI;", None),
        ("#[jit]\nfn circle_area(r: f64) -> f64 { PI * r * r }", None),
        ("circle_area(1.0) == std::f64::consts::PI", "true"),
        # `outer` calls `inner`, which comes after it in the cell.
        ("#[jit]\nfn outer_fn(x: i64) -> i64 { inner_fn(x) + 1 }\n#[jit]\nfn inner_fn(x: i64) -> i64 { x * 10 }", None),
        ("outer_fn(4)", "41"),
    )
