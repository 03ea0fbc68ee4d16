"""`#[vectorize]` in the real kernel: cpu and parallel targets against plain loops, broadcasting,
errors; `target = "cuda"` with and without a GPU. (The CUDA translation is tested in jit/codegen,
the launch path on a GPU also by kernel/tests/gpu.rs.)"""
from __future__ import annotations

import ctypes.util
import os

import pytest


def gpu_reason() -> str | None:
    """Why there is no GPU here, or None when there is one."""
    if not ctypes.util.find_library("cuda"):
        return "no libcuda (NVIDIA driver) on this machine"
    if not os.path.exists("/dev/nvidia0") and not os.path.exists("/dev/nvidiactl"):
        return "libcuda but no /dev/nvidia* device"
    return None

UFUNCS = """#[vectorize]
fn clipped_sum(x: f64, y: f64) -> f64 {
    let s = x + y;
    if s > 10.0 { 10.0 } else { s }
}
#[vectorize(target = "parallel")]
fn clipped_sum_par(x: f64, y: f64) -> f64 {
    let s = x + y;
    if s > 10.0 { 10.0 } else { s }
}
#[vectorize(target = "parallel")]
fn mixed(x: i64, k: u32, flag: bool) -> i64 {
    if flag { x.pow(k) } else { -x }
}"""

# The same, elementwise, as a plain loop over the broadcast shape.
PLAIN = """fn plain(a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
    // NumPy's rule, for shapes that broadcast: align from the right, a missing axis is 1.
    let n = a.ndim().max(b.ndim());
    let axis = |s: &[usize], i: usize| if i + s.len() >= n { s[i + s.len() - n] } else { 1 };
    let shape: Vec<usize> = (0..n).map(|i| axis(a.shape(), i).max(axis(b.shape(), i))).collect();
    let (a, b) = (a.broadcast(IxDyn(&shape)).unwrap(), b.broadcast(IxDyn(&shape)).unwrap());
    let mut out = ArrayD::<f64>::zeros(IxDyn(&shape));
    for (index, o) in out.indexed_iter_mut() {
        let s = a[index.clone()] + b[index.clone()];
        *o = if s > 10.0 { 10.0 } else { s };
    }
    out
}"""


def test_cpu_and_parallel_targets_match_a_plain_loop_with_broadcasting(kernel):
    stdout = kernel.ok(UFUNCS).stdout
    assert "jit: compiled clipped_sum" in stdout or "jit: clipped_sum from the cache" in stdout
    kernel.ok(PLAIN)
    kernel.ok(
        "let m = Array2::from_shape_fn((37, 5), |(i, j)| (i as f64 * 0.3) - j as f64);\n"
        "let row = array![1.0, 2.0, 3.0, 4.0, 5.0];\n"
        "let column = Array2::from_shape_fn((37, 1), |(i, _)| i as f64 * 0.1);"
    )
    for a, b in [("m", "m"), ("m", "row"), ("column", "row"), ("row", "column"), ("m", "2.5f64")]:
        dyn_b = f"aview0(&{b}).to_owned().into_dyn()" if b.endswith("f64") else f"{b}.clone().into_dyn()"
        expected = f"plain(&{a}.clone().into_dyn(), &{dyn_b})"
        for f in ("clipped_sum", "clipped_sum_par"):
            assert kernel.result(f"{f}(&{a}, {'&' if not b.endswith('f64') else ''}{b}).into_dyn() == {expected}") == "true", (f, a, b)
    # The result has the broadcast dimension type: Array2 here, with the broadcast shape.
    assert kernel.result("clipped_sum(&column, &row).dim()") == "(37, 5)"
    assert kernel.result("mixed(&array![2i64, 3, 4], 3u32, &array![true, false, true])") == (
        "[8, -3, 64], shape=[3], strides=[1], layout=CFcf (0xf), const ndim=1"
    )


def test_shapes_that_do_not_broadcast_and_bad_signatures(kernel):
    kernel.ok(UFUNCS + "\nlet kept_v = 3;")
    kernel.error("clipped_sum(&array![1.0, 2.0], &array![1.0, 2.0, 3.0])", "panic", "could not broadcast")
    for code, ename, message in [
        ("#[vectorize]\nfn bad(x: Vec<f64>) -> f64 { 0.0 }", "JitError", "takes and returns scalars"),
        ('#[vectorize(target = "gpu")]\nfn bad(x: f64) -> f64 { x }', "JitError", 'unknown target "gpu"'),
        ('#[vectorize(target = "cuda")]\nfn bad(x: f64) -> f64 {\n    let v = vec![x];\n    v[0]\n}', "JitError", "a macro"),
    ]:
        kernel.error(code, ename, message)
    assert kernel.result("kept_v") == "3"


ADD_UFUNC = """#[vectorize(target = "cuda")]
fn add_ufunc(x: i64, y: i64) -> i64 {
    x + y
}"""


def test_cuda_without_a_gpu_is_a_clear_error_and_keeps_variables(kernel):
    if gpu_reason() is None:
        pytest.skip("this machine has a GPU: test_cuda_on_the_gpu covers it")
    text = kernel.ok(ADD_UFUNC + "\nlet kept_a = Array1::from_iter(0..10i64);").stdout
    # NVRTC (from the test environment) still compiles the kernel, to PTX.
    assert "cuda: NVRTC compiled add_ufunc for PTX (no GPU here)" in text or "cuda: add_ufunc for PTX (no GPU here) from the cache" in text, text
    for call in ["add_ufunc(&kept_a, &kept_a)", "to_device(&kept_a)"]:
        content = kernel.error(call, "CudaError")
        # The reason depends on the machine (no driver, or a driver but no usable GPU).
        assert content["evalue"].startswith("CUDA is not available: "), content
        assert 'use target = "cpu" or "parallel"' in content["evalue"], content
    assert kernel.result("kept_a.sum()") == "45"
    # A notebook can ask first instead of failing.
    assert kernel.result("cuda::is_available()") == "false"
    assert kernel.result('match cuda::device() { Ok(_) => "gpu".to_string(), Err(why) => why }').startswith('"CUDA is not available')


def test_cuda_on_the_gpu(kernel):
    reason = gpu_reason()
    if reason:
        pytest.skip(f"no GPU: {reason}")
    kernel.ok(ADD_UFUNC)
    kernel.ok("let a = Array1::from_iter(0..1_000_000i64);\nlet b = &a * 2;")
    assert kernel.result("add_ufunc(&a, &b) == &a + &b") == "true"
    kernel.ok("let (da, db) = (to_device(&a), to_device(&b));\nlet dc = add_ufunc(&da, &db);")
    assert kernel.result("dc.to_host() == &a * 3") == "true"
    assert kernel.result("add_ufunc(&dc, 1i64).to_host()[10]") == "31"
    assert "per loop" in kernel.ok("%timeit add_ufunc(&da, &db)").stdout
