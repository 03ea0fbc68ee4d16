"""What the benchmark scripts share: the client of the tests (tests/kernel_client.py: the kernel
binary, RUST_JIT_KERNEL_BIN honoured, so a "before" and an "after" build can be compared; the lesson;
`Kernel`, whose cells report their result, stdout and round trip), a fresh cache prepared by
`install`, and the machine line."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

# The client lives with the tests, which use it too (tests/ is pytest's import root there).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from kernel_client import BINARY, KERNEL_NAME, LESSON, ROOT, Cell, Kernel, execute_lesson, first_on_jupyter_path, install  # noqa: E402

__all__ = ["BINARY", "KERNEL_NAME", "LESSON", "ROOT", "Cell", "Kernel", "Worker", "execute_lesson", "first_on_jupyter_path", "fresh_install", "kernel", "kernel_pid", "lesson_fn", "machine", "rss_mib"]

# The lesson's function, `a_plus_tr_tanh_a`, after its signature; RANGE is the trace loop's range.
LESSON_BODY = """(a: &Array2<f64>) -> Array2<f64> {
    let mut trace = 0.0;
    for i in RANGE {
        trace += a[[i, i]].tanh();
    }
    a + trace
}"""


def lesson_fn(head: str, name: str, parallel: bool = False) -> str:
    """The lesson's function as `head` (an attribute line, or "") `fn NAME`, its trace loop over
    `prange(0..n)` when `parallel`."""
    body = LESSON_BODY.replace("RANGE", "prange(0..a.nrows())" if parallel else "0..a.nrows()")
    return f"{head}\nfn {name}{body}".lstrip("\n")


class Worker:
    """A process that answers one figure per line asked (a JSON value per line; its first line is its
    hello), so that figures of several kernels (a "before" binary: RUST_JIT_KERNEL_BIN in `env`) or of
    Numba can be taken in turn, interleaved."""

    def __init__(self, argv: list[str], env: dict) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.hello = self.answer()

    def answer(self) -> dict | float:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"a worker ended: {self.proc.args}")
            if line.startswith("{") or line[:1].isdigit():
                return json.loads(line)

    def ask(self, question: str):
        self.proc.stdin.write(question + "\n")
        self.proc.stdin.flush()
        return self.answer()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


CELL_TIMEOUT = 600  # s: a cold jit compile or `:dep` build in a benchmark may take minutes


def fresh_install(label: str) -> Path:
    """A fresh cache directory, prepared the way a learner's is: by `install` (which builds the
    session crate and its dependencies once); the kernelspec first in JUPYTER_PATH. Call before
    starting a kernel."""
    return install(label, fresh_cache=True).cache


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0) / 2**20
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    mold = "mold" if subprocess.run(["which", "mold"], capture_output=True).returncode == 0 else "system linker"
    return f"{os.cpu_count()} cores, {cpu}, {mem:.0f} GiB, {platform.system()} {platform.release()}; {rustc}; {mold}"


def kernel(name: str = KERNEL_NAME, env: dict | None = None) -> Kernel:
    """A started kernel whose requests wait up to CELL_TIMEOUT; `with kernel() as k:` shuts it down.
    `k.ok(code)` raises on an error; its `seconds` run from execute_request sent to idle received.
    `env`: variables set in the kernel's environment on top of this process's."""
    return Kernel(name, timeout=CELL_TIMEOUT, env={**os.environ, **env} if env else None)


def kernel_pid(k: Kernel) -> int:
    """The kernel process's pid."""
    km = k.km
    return km.provisioner.pid if hasattr(km.provisioner, "pid") else km.kernel.pid


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            # Each thread has its own children (the kernel starts the user process from a thread).
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    pids.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            pass
    return total / 1024
