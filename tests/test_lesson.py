"""The lesson notebook, executed headless the two ways CI runs notebooks: `jupyter nbconvert --to
notebook --execute` and nbclient, with no GPU and without `--allow-errors`: an error output fails the
run. Then what the lesson promises is checked in the outputs (the compile reported ahead of timing, the
%timeit lines, the speedup computed from two `-o` results, the SVG plot, the GPU cell's message)."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from kernel_client import KERNEL_NAME, LESSON, execute_lesson


def outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == kind]


def check_lesson_outputs(nb) -> None:
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
    assert "1 allocation (78.1 KiB) per loop" in stdout, stdout
    assert any("line 7: `a + trace`\n      parallel elementwise `+`" in s and "a plain loop: serial" in s for s in shown), shown
    # 2. The speedup, computed from the two %timeit -o results.
    speedup = re.search(r"a (\d+)x speedup", stdout)
    assert speedup and int(speedup.group(1)) >= 2, stdout
    # 3. and 4. Parallel at both sizes, and the crossover plot as an SVG display_data.
    assert "at 100x100, parallel takes" in stdout and "at 1000x1000, parallel takes" in stdout, stdout
    svgs = [o for o in outputs(nb, "display_data") if "image/svg+xml" in o.data]
    assert len(svgs) == 1 and svgs[0].data["image/svg+xml"].lstrip().startswith("<svg"), svgs
    assert "serial vs parallel" in svgs[0].data["image/svg+xml"]
    assert re.search(r"parallel (is faster from n = \d+ on|was not faster at any size)", stdout), stdout
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
