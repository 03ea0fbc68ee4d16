"""The lesson as its Python original teaches it (Numba on ipykernel), cell for cell beside
`lessons/compiling-with-jit.ipynb`, with the same parameters (read from the Rust lesson's `parameters`
cell) and the same loop counts, so that the two lessons' times can be compared in one run
(bench/lesson_bench.py). Where the Rust lesson looks inside the compiled code, this one asks Numba the
same (`inspect_asm`, `dis`, `parallel_diagnostics`); the sweep times each size as `jit::sweep` does
(1-2-5 loops up to a 50 ms run, 5 runs, the mean) and draws the chart with matplotlib.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from benchlib import LESSON


def parameters(lesson: Path = LESSON) -> dict:
    """The values of the Rust lesson's `parameters` cell (`let NAME = VALUE;`), as Python values."""
    nb = nbformat.read(lesson, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values = {}
    for name, value in re.findall(r"let\s+(\w+)\s*=\s*(.+?);", cell.source):
        value = re.sub(r"(\d)(usize|u64|i64|f64)\b", r"\1", value).replace("vec!", "")
        values[name] = eval(value, {})  # integers and lists of integers, written by the lesson
    return values


def notebook(params: dict) -> nbformat.NotebookNode:
    """The Python lesson, its first cell setting the parameters (and NUMBA_NUM_THREADS before Numba
    is imported, as the original says)."""
    p = params
    loops = p["loops"]  # IPython's %timeit does not expand {expressions}: the counts are written into the cells
    cells = [
        f"%env NUMBA_NUM_THREADS={p['threads']}\n"
        + "\n".join(f"{name} = {value!r}" for name, value in p.items()),
        "from numba import jit\nimport numpy as np\n\n"
        "@jit(nopython=True)\ndef a_plus_tr_tanh_a(a):\n    trace = 0.0\n    for i in range(a.shape[0]):\n"
        "        trace += np.tanh(a[i, i])\n    return a + trace",
        "a = np.arange(n * n, dtype=np.float64).reshape((n, n))\na_plus_tr_tanh_a(a)[0, 0]",
        f"jit_time = %timeit -o -n {loops} a_plus_tr_tanh_a(a)",
        "def a_plus_tr_tanh_a_naive(a):\n    trace = 0.0\n    for i in range(a.shape[0]):\n"
        "        trace += np.tanh(a[i, i])\n    return a + trace",
        f"naive_time = %timeit -o -n {loops // 40} a_plus_tr_tanh_a_naive(a)",
        'print(f"@jit: {jit_time.average * 1e6:.2f} µs, naive: {naive_time.average * 1e6:.2f} µs per call: '
        'a {naive_time.average / jit_time.average:.0f}x speedup")',
        "asm = a_plus_tr_tanh_a.inspect_asm(a_plus_tr_tanh_a.signatures[0])\n"
        "print(len(asm.splitlines()), 'lines')\nprint('\\n'.join(asm.splitlines()[:200]))",
        "import dis\ndis.dis(a_plus_tr_tanh_a_naive)",
        f"%timeit -n {loops} a_plus_tr_tanh_a(a)",
        "@jit(nopython=True, parallel=True)\ndef a_plus_tr_tanh_a_parallel(a):\n    trace = 0.0\n"
        "    for i in range(a.shape[0]):\n        trace += np.tanh(a[i, i])\n    return a + trace\n\n"
        "a_plus_tr_tanh_a_parallel(a)[0, 0]",
        f"parallel_time = %timeit -o -n {loops // 10} a_plus_tr_tanh_a_parallel(a)",
        "import numba, os\n"
        'print(f"at {n}x{n}, parallel takes {parallel_time.average / jit_time.average:.1f}x the serial @jit time '
        '({numba.get_num_threads()} threads, {os.cpu_count()} cores)")',
        "a_plus_tr_tanh_a_parallel.parallel_diagnostics(level=1)",
        "big = np.arange(n_big * n_big, dtype=np.float64).reshape((n_big, n_big))\n"
        f"serial_big = %timeit -o -n {loops // 100} a_plus_tr_tanh_a(big)",
        f"parallel_big = %timeit -o -n {loops * 3 // 200} a_plus_tr_tanh_a_parallel(big)",
        'print(f"at {n_big}x{n_big}, parallel takes {parallel_big.average / serial_big.average:.2f}x the serial time")',
        SWEEP,
        "from numba import cuda\nif cuda.is_available():\n"
        "    from numba import vectorize\n\n"
        "    @vectorize(['int64(int64, int64)'], target='cuda')\n    def add_ufunc(x, y):\n        return x + y\n"
        "else:\n    print('No GPU here, so add_ufunc is not compiled.')",
    ]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    return nb


# The crossover chart: each size timed as `jit::sweep` does, drawn with matplotlib.
SWEEP = '''import timeit
import matplotlib.pyplot as plt

def per_call(f, a, run=0.05, runs=5):
    """Seconds per call: loops from 1, 2, 5, 10, ... until one run takes `run`, then `runs` runs, the mean."""
    t = timeit.Timer(lambda: f(a))
    loops, base = 1, 1
    while True:
        for step in (1, 2, 5):
            loops = base * step
            if t.timeit(loops) >= run:
                return sum(t.repeat(runs, loops)) / runs / loops
        base *= 10

times = {name: [per_call(f, np.arange(s * s, dtype=np.float64).reshape((s, s))) for s in plot_sizes]
         for name, f in (("@jit", a_plus_tr_tanh_a), ("@jit(parallel=True)", a_plus_tr_tanh_a_parallel))}
fig, ax = plt.subplots()
for name, ts in times.items():
    ax.loglog(plot_sizes, ts, marker="o", label=name)
ax.set_xlabel("n (an n x n array)"); ax.set_ylabel("seconds per call"); ax.legend()
ax.set_title(f"a_plus_tr_tanh_a: serial vs parallel ({numba.get_num_threads()} threads)")
plt.show()
for s, a, b in zip(plot_sizes, *times.values()):
    print(f"{s:6d} {a * 1e6:10.1f} us {b * 1e6:10.1f} us")'''
