"""What the jit did, in the notebook: `%jit_asm`, `%jit_llvm`, `%jit_report` and `%timeit -a`."""
from __future__ import annotations

import re

from test_jit import LESSON_JIT, LESSON_NAIVE, LESSON_PARALLEL



def shown(cell) -> tuple[str, str]:
    """The text and HTML a jit magic displayed."""
    [data] = [d["data"] for d in cell.display_data]
    return data["text/plain"], data["text/html"]


def test_jit_asm_shows_packed_doubles_and_the_cells_lines(kernel):
    kernel.ok(LESSON_JIT)
    text, html = shown(kernel.ok("%jit_asm a_plus_tr_tanh_a"))
    summary = text.splitlines()[0]
    assert re.fullmatch(r"a_plus_tr_tanh_a \(#\[jit\]\): \d+ instructions, \d+ of them vector \((AVX|AVX2|AVX-512|SSE/AVX, 128-bit), \d x f64\)", summary), summary
    # `a + trace` as packed double additions; the trace loop's scalar tanh call.
    assert re.search(r"^\s+v?addpd\s", text, re.M), text[:3000]
    assert "tanh@GOTPCREL" in text, text[:3000]
    # The cell's lines above the instructions they became, demangled names, no directives.
    assert "; cell line 5: trace += a[[i, i]].tanh();" in text, text[:3000]
    assert "_ZN" not in text and ".cfi_" not in text and ".loc" not in text
    assert "the library's entry point for `a_plus_tr_tanh_a`" in text
    # HTML: vector instructions highlighted, text escaped.
    assert re.search(r'<span style="background-color:#fff3b0[^"]*">\s+v?addpd ', html), html[:3000]
    assert "&amp;Array2&lt;f64&gt;" in html or "Array2&lt;f64&gt;" in html


def test_jit_llvm_shows_vector_ir(kernel):
    kernel.ok(LESSON_JIT)
    text, html = shown(kernel.ok("%jit_llvm a_plus_tr_tanh_a"))
    assert text.startswith("a_plus_tr_tanh_a (#[jit]): "), text[:200]
    assert "define " in text and "x double>" in text, text[:3000]
    assert "; cell line" in text and "!dbg" not in text
    assert "<pre" in html


def test_plain_and_unknown_functions(kernel):
    kernel.ok(LESSON_JIT)
    kernel.ok(LESSON_NAIVE)
    hint = kernel.ok("%jit_asm naive_a_plus_tr_tanh_a")
    assert "`naive_a_plus_tr_tanh_a` is a plain function" in hint.stdout, hint.describe()
    assert "%jit_asm --naive naive_a_plus_tr_tanh_a" in hint.stdout
    naive, _ = shown(kernel.ok("%jit_asm --naive naive_a_plus_tr_tanh_a"))
    assert naive.startswith("naive_a_plus_tr_tanh_a (as plain cells compile it: opt-level 0): "), naive[:200]
    # At opt-level 0, `a + trace` is a call of ndarray's operator, not a vector loop.
    assert "; cell line 6: a + trace" in naive and "Add<" in naive, naive[:3000]
    # The jit function's own opt-level-0 code, to compare with its optimised code.
    assert shown(kernel.ok("%jit_asm --naive a_plus_tr_tanh_a"))[0].startswith("a_plus_tr_tanh_a (as plain cells compile it")
    kernel.error("%jit_asm no_such_function", "NameError", "no function `no_such_function`")
    kernel.error("%jit_llvm", "UsageError", "which function")
    kernel.ok("let some_value = 3;")
    kernel.error("%jit_report some_value", "NameError", "is a variable, not a function")
    report = kernel.ok("%jit_report naive_a_plus_tr_tanh_a")
    assert "is a plain function" in report.stdout
    assert "%jit_asm" in kernel.ok("%lsmagic").result
    assert "machine code" in kernel.ok("%jit_asm?").stdout


def test_jit_report_of_the_parallel_rewrite(kernel):
    kernel.ok(LESSON_PARALLEL + "\n#[jit(parallel)]\nfn scaled(a: &Array2<f64>, k: f64) -> Array2<f64> {\n    let s = k * 2.0;\n    a * s\n}")
    text, _ = shown(kernel.ok("%jit_report a_plus_tr_tanh_a_par"))
    assert "line 4: `for i in prange(0..a.nrows())`" in text, text
    assert "reduction over `trace` (+=)" in text, text
    assert "line 7: `a + trace`\n      parallel elementwise `+`" in text, text
    assert "Compiled: " in text and "-Copt-level=3" in text
    text, _ = shown(kernel.ok("%jit_report scaled"))
    parallel, serial = text.split("\nSerial:\n")
    assert "`a * s`" in parallel and "parallel elementwise `*`" in parallel, text
    assert "`k * 2.0`\n      numbers, not arrays" in serial, text
    serial_report, _ = shown(kernel.ok(LESSON_JIT + "\n%jit_report a_plus_tr_tanh_a"))
    assert "Parallel" not in serial_report and "flags: " in serial_report and "library: " in serial_report


def test_timeit_counts_allocations(kernel):
    kernel.ok(LESSON_JIT)
    kernel.ok("let a_alloc = Array2::<f64>::from_shape_fn((100, 100), |(i, j)| (i * 100 + j) as f64);")
    lines = kernel.ok("%timeit -a -r 2 a_plus_tr_tanh_a(&a_alloc)").stdout.splitlines()
    assert re.match(r".* per loop \(mean ± std\. dev\. of 2 runs, [\d,]+ loops each\)$", lines[0]), lines
    assert lines[1] == "1 allocation (78.1 KiB) per loop", lines
    assert kernel.ok("%timeit -a -r 2 1 + 1").stdout.splitlines()[1] == "0 allocations per loop"
    assert len(kernel.ok("%timeit -r 2 -n 10 1 + 1").stdout.splitlines()) == 1, "no second line without -a"
    kernel.ok("let t_alloc = %timeit -q -o -a -r 2 vec![0u8; 16]")
    assert kernel.result("(t_alloc.allocations(), t_alloc.allocated_bytes())") == "(Some(1.0), Some(16.0))"
    kernel.ok("let t_plain = %timeit -q -o -r 2 -n 10 1 + 1")
    assert kernel.result("t_plain.allocations()") == "None"
