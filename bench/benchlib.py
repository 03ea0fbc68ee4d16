"""What the benchmark scripts share: a fresh cache prepared by `install`, the machine line, and
running a cell while collecting its result, its stdout and its round trip."""
from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target/release/rust-jit-kernel"


def fresh_install(label: str) -> Path:
    """A fresh cache directory, prepared the way a learner's is: by `install` (which builds the
    session crate and its dependencies once). Call before importing jupyter_client."""
    cache = Path(tempfile.mkdtemp(prefix=f"rjk-{label}-cache-"))
    os.environ["RUST_JIT_KERNEL_CACHE"] = str(cache)
    prefix = Path(tempfile.mkdtemp(prefix=f"rjk-{label}-"))
    subprocess.run([str(BINARY), "install", "--prefix", str(prefix)], check=True, capture_output=True)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(prefix / "share/jupyter")] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    )
    return cache


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0) / 2**20
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    mold = "mold" if subprocess.run(["which", "mold"], capture_output=True).returncode == 0 else "system linker"
    return f"{os.cpu_count()} cores, {cpu}, {mem:.0f} GiB, {platform.system()} {platform.release()}; {rustc}; {mold}"


@contextlib.contextmanager
def kernel(name: str = "rust-jit"):
    """A started kernel, `(manager, client)`, shut down afterwards."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=name)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


class Cell:
    """What one execute request produced."""

    def __init__(self, result: str | None, stdout: str, seconds: float) -> None:
        self.result, self.stdout, self.seconds = result, stdout, seconds


def run(kc, code: str, timeout: float = 600) -> Cell:
    """Runs `code`; raises on an error. `seconds`: execute_request sent to idle received."""
    started = time.perf_counter()
    msg_id = kc.execute(code)
    result, stdout = None, ""
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "execute_result":
            result = msg["content"]["data"]["text/plain"]
        elif kind == "stream" and msg["content"]["name"] == "stdout":
            stdout += msg["content"]["text"]
        elif kind == "error":
            raise RuntimeError(f"{code!r}: {msg['content']['ename']}: {msg['content']['evalue']}")
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return Cell(result, stdout, time.perf_counter() - started)
