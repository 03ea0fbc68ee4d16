"""`#[vectorize]` in the real kernel: cpu and parallel targets against plain loops, broadcasting,
errors. (The CUDA translation is tested in jit/codegen; the GPU launch is not there yet.)"""
from __future__ import annotations

from conftest import stream_text

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
    msgs = kernel.ok(UFUNCS)
    assert "jit: compiled clipped_sum" in stream_text(msgs) or "jit: clipped_sum from the cache" in stream_text(msgs)
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
    reply, _ = kernel.run("clipped_sum(&array![1.0, 2.0], &array![1.0, 2.0, 3.0])")
    assert reply["content"]["status"] == "error" and "could not broadcast" in reply["content"]["evalue"]
    for code, message in [
        ("#[vectorize]\nfn bad(x: Vec<f64>) -> f64 { 0.0 }", "takes and returns scalars"),
        ('#[vectorize(target = "gpu")]\nfn bad(x: f64) -> f64 { x }', 'unknown target "gpu"'),
        ('#[vectorize(target = "cuda")]\nfn bad(x: f64) -> f64 {\n    let v = vec![x];\n    v[0]\n}', "a macro"),
    ]:
        reply, _ = kernel.run(code)
        assert reply["content"]["status"] == "error", code
        assert message in reply["content"]["evalue"], (code, reply["content"]["evalue"])
    assert kernel.result("kept_v") == "3"
