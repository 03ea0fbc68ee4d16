"""The lesson notebook, executed headless the two ways CI runs notebooks: `jupyter nbconvert --to
notebook --execute` and nbclient, with no GPU and without `--allow-errors`: an error output fails the
run. Then what the lesson promises is checked in the outputs (the compile reported ahead of timing, the
%timeit lines, the speedup computed from two `-o` results, the SVG plot, the GPU cell's message)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from kernel_client import KERNEL_NAME, LESSON, execute_lesson


def outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == kind]


def check_lesson_outputs(nb, n: int = 100, n_big: int = 1000) -> None:
    assert not outputs(nb, "error"), outputs(nb, "error")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every code cell ran"
    stdout = "".join(o.text for o in outputs(nb, "stream") if o.name == "stdout")
    # 1. The compile happens when the function is defined, and says so.
    assert re.search(r"jit: (compiled a_plus_tr_tanh_a in [\d.]+ s|a_plus_tr_tanh_a from the cache)", stdout), stdout
    assert len(re.findall(r"per loop \(mean ± std\. dev\. of 7 runs, [\d,]+ loops each\)", stdout)) == 6, stdout
    # What the jit did: the machine code with its vector instructions, the one allocation per call,
    # and what went parallel.
    shown = [o.data["text/plain"] for o in outputs(nb, "display_data") if "text/html" in o.data and "text/plain" in o.data]
    assert any(re.match(r"a_plus_tr_tanh_a \(#\[jit\]\): \d+ instructions, [1-9]\d* of them vector", s) for s in shown), shown
    assert any(s.startswith("a_plus_tr_tanh_a_naive (as plain cells compile it: opt-level 0)") for s in shown), shown
    kib = n * n * 8 / 1024
    assert f"1 allocation ({kib:.3g} KiB) per loop" in stdout, stdout
    assert any("line 7: `a + trace`\n      parallel elementwise `+`" in s and "a plain loop: serial" in s for s in shown), shown
    # 2. The speedup, computed from the two %timeit -o results.
    speedup = re.search(r"a (\d+)x speedup", stdout)
    assert speedup and int(speedup.group(1)) >= 2, stdout
    # 3. and 4. Parallel at both sizes, and the crossover plot as an SVG display_data.
    assert f"at {n}x{n}, parallel takes" in stdout and f"at {n_big}x{n_big}, parallel takes" in stdout, stdout
    svgs = [o for o in outputs(nb, "display_data") if "image/svg+xml" in o.data]
    assert len(svgs) == 1 and svgs[0].data["image/svg+xml"].lstrip().startswith("<svg"), svgs
    assert "serial vs parallel" in svgs[0].data["image/svg+xml"]
    # Drawn by the kernel (plotters' lines and the legend), not the runtime's stand-in outside a kernel.
    assert "<polyline" in svgs[0].data["image/svg+xml"] and "charts are drawn by" not in svgs[0].data["image/svg+xml"]
    # The sweep's table and crossover: the plot cell's value.
    results = [o.data.get("text/plain", "") for o in outputs(nb, "execute_result")]
    assert any(re.search(r"#\[jit\(parallel\)\] (is faster than #\[jit\] from n = \d+ on|was not faster than #\[jit\] at any size measured)", r) for r in results), results
    # The lesson needs no `:dep`: charts come with the prelude.
    assert not any(c.source.lstrip().startswith(":dep") for c in nb.cells if c.cell_type == "code")
    # 5. The GPU: run where there is one, a clear message where there is none.
    assert "10^7 int64 additions in" in stdout or "No GPU here, so add_ufunc does not run. CUDA is not available:" in stdout, stdout


def test_the_repository_keeps_the_lesson_without_outputs():
    nb = nbformat.read(LESSON, as_version=4)
    assert nb.metadata.kernelspec.name == KERNEL_NAME
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_nbconvert_executes_the_lesson(tmp_path: Path):
    check_lesson_outputs(nbformat.read(execute_lesson(tmp_path), as_version=4))


def test_nbclient_executes_the_lesson():
    nb = nbformat.read(LESSON, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name=KERNEL_NAME, resources={"metadata": {"path": str(LESSON.parent)}}).execute()
    check_lesson_outputs(nb)


# A quick run, as a CI job would do it: small sizes and loop counts through papermill's parameters.
QUICK = {"n": 50, "n_big": 200, "threads": 2, "loops": 2000, "plot_sizes": [25, 50, 100, 200]}


def quick_args() -> list[str]:
    """QUICK as papermill's options: `-y` takes YAML (the list), `-p` a name and a value."""
    args = []
    for name, value in QUICK.items():
        args += ["-y", f"{name}: {value}"] if isinstance(value, list) else ["-p", name, str(value)]
    return args


def test_papermill_runs_the_lesson_with_parameters(tmp_path: Path):
    """papermill with the Rust translator (python/papermill-rust-jit, installed into the venv by
    tests/venv.sh): its injected cell is Rust, and the lesson runs at the sizes given."""
    out = tmp_path / "quick.ipynb"
    papermill = Path(sys.executable).parent / "papermill"
    subprocess.run([str(papermill), str(LESSON), str(out), "--cwd", str(LESSON.parent), *quick_args()], check=True, capture_output=True, text=True)
    nb = nbformat.read(out, as_version=4)
    [injected] = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    lines = injected.source.splitlines()
    assert lines[0] == "// Parameters" and sorted(lines[1:]) == sorted([
        "let n = 50usize;",
        "let n_big = 200usize;",
        "let threads = 2usize;",
        "let loops = 2000usize;",
        "let plot_sizes = vec![25usize, 50usize, 100usize, 200usize];",
    ]), injected.source
    check_lesson_outputs(nb, n=50, n_big=200)
    stdout = "".join(o.text for o in outputs(nb, "stream") if o.name == "stdout")
    assert "env: RAYON_NUM_THREADS=2" in stdout and "(2 threads, " in stdout, stdout
    # `papermill --help-notebook` reads the parameters cell.
    help_text = subprocess.run([str(papermill), "--help-notebook", str(LESSON)], check=True, capture_output=True, text=True).stdout
    assert "n: usize (default 100usize)" in help_text and "plot_sizes: Vec<usize> (default vec![25usize," in help_text, help_text


def test_nbmake_runs_the_lesson(tmp_path: Path):
    """`pytest --nbmake`, as a CI job runs notebooks: the quick copy papermill made of the lesson."""
    quick = tmp_path / "quick.ipynb"
    bin_dir = Path(sys.executable).parent
    # Not executed by papermill here (`--prepare-only`): nbmake runs it.
    subprocess.run([str(bin_dir / "papermill"), str(LESSON), str(quick), "--prepare-only", *quick_args()], check=True, capture_output=True)
    (tmp_path / "conftest.py").write_text("")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake", "--nbmake-timeout=600", str(quick)],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 passed" in run.stdout, run.stdout
