"""The one Jupyter client of the tests and the benchmarks.

It says once where things are (ROOT, the kernel BINARY, the LESSON notebook), installs the kernelspec
into a fresh prefix (and, for benchmarks, a fresh cache), starts kernels, runs cells and collects
everything one request produced: its reply and its IOPub messages from `busy` to `idle` (stdout,
stderr, results, display data, errors), and asserts a failed cell by its error name.

    with Kernel() as k:                      # started, shut down on leaving
        k.ok("let x = 40;")                  # a Cell; raises CellFailed unless it ran without error
        assert k.result("x + 2") == "42"     # the text/plain of its execute_result
        k.error("x +", "CompilationError")   # the reply's content, after assert_error

tests/conftest.py builds its fixtures on it; bench/benchlib.py puts tests/ on sys.path to use it.
jupyter_client is imported only when a kernel starts, so that `install` sets JUPYTER_PATH first.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
# RUST_JIT_KERNEL_BIN picks another build (tests/run.sh sets it; a benchmark can compare two binaries).
BINARY = Path(os.environ.get("RUST_JIT_KERNEL_BIN", ROOT / "target/release/rust-jit-kernel"))
KERNEL_NAME = "rust-jit"
LESSON = ROOT / "lessons/compiling-with-jit.ipynb"
STARTUP_TIMEOUT = 120.0  # s, until a started (or restarted) kernel answers kernel_info


@dataclass
class Installed:
    """Where `install` put the kernelspec (`prefix/share/jupyter`) and the cache it used (None: the
    default one), with what `install` printed."""

    prefix: Path
    cache: Path | None
    stdout: str


def first_on_jupyter_path(where: Path) -> None:
    """Puts `where` (a directory with `kernels/`) first in JUPYTER_PATH."""
    earlier = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(where), *earlier])


def install(label: str, fresh_cache: bool = False) -> Installed:
    """Installs the `rust-jit` kernelspec of BINARY into a fresh prefix, put first in JUPYTER_PATH.
    `install` also builds the session crate and its dependencies, as it does for a learner. With
    `fresh_cache`, it runs in a fresh RUST_JIT_KERNEL_CACHE (set for the kernels started later).
    Call before jupyter_client reads JUPYTER_PATH."""
    cache = None
    if fresh_cache:
        cache = Path(tempfile.mkdtemp(prefix=f"rjk-{label}-cache-"))
        os.environ["RUST_JIT_KERNEL_CACHE"] = str(cache)
    prefix = Path(tempfile.mkdtemp(prefix=f"rjk-{label}-"))
    # A user install (own cache) whose kernelspec goes into the fresh prefix: `--prefix` would make
    # a shared install for every user of the machine.
    env = {**os.environ, "JUPYTER_DATA_DIR": str(prefix / "share/jupyter")}
    done = subprocess.run([str(BINARY), "install", "--user"], capture_output=True, text=True, env=env)
    if done.returncode != 0 or "Built the session crate" not in done.stdout:
        raise RuntimeError(f"`{BINARY} install` failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    first_on_jupyter_path(prefix / "share/jupyter")
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    return Installed(prefix, cache, done.stdout)


def execute_lesson(output_dir: Path, timeout: int = 600) -> Path:
    """Executes the lesson headless (`jupyter nbconvert --to notebook --execute`, no
    `--allow-errors`: an error output fails it); returns the executed copy in `output_dir`."""
    jupyter = Path(sys.executable).parent / "jupyter"
    subprocess.run(
        [str(jupyter), "nbconvert", "--to", "notebook", "--execute", str(LESSON), "--output-dir", str(output_dir), f"--ExecutePreprocessor.timeout={timeout}"],
        check=True,
        capture_output=True,
    )
    return output_dir / LESSON.name


def stream_text(msgs: list[dict], name: str = "stdout") -> str:
    """The text of the `name` stream messages among `msgs`, joined."""
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == name)


class CellFailed(AssertionError):
    """A cell expected to run did not (an AssertionError, so a test reads it as a failed check;
    raised explicitly, so `python -O` keeps it)."""


@dataclass
class Cell:
    """What one request produced: its reply and its IOPub messages, busy to idle (both included).
    `sent_at`, `reply_at`, `idle_at`: time.perf_counter() when it was sent, when its reply and its
    `idle` were received."""

    code: str
    reply: dict
    msgs: list[dict]
    sent_at: float
    reply_at: float
    idle_at: float

    @property
    def content(self) -> dict:
        return self.reply["content"]

    @property
    def status(self) -> str:
        return self.content["status"]

    @property
    def seconds(self) -> float:
        """Sent to idle received."""
        return self.idle_at - self.sent_at

    @property
    def reply_seconds(self) -> float:
        """Sent to reply received."""
        return self.reply_at - self.sent_at

    @property
    def msg_types(self) -> list[str]:
        return [m["msg_type"] for m in self.msgs]

    def contents(self, msg_type: str) -> list[dict]:
        """The contents of the IOPub messages of one type, in order."""
        return [m["content"] for m in self.msgs if m["msg_type"] == msg_type]

    @property
    def stdout(self) -> str:
        return stream_text(self.msgs, "stdout")

    @property
    def stderr(self) -> str:
        return stream_text(self.msgs, "stderr")

    @property
    def results(self) -> list[dict]:
        return self.contents("execute_result")

    @property
    def result(self) -> str | None:
        """The text/plain of the last execute_result; None when there was none."""
        return self.results[-1]["data"]["text/plain"] if self.results else None

    @property
    def display_data(self) -> list[dict]:
        return self.contents("display_data")

    @property
    def errors(self) -> list[dict]:
        return self.contents("error")

    def describe(self) -> str:
        error = f": {self.content.get('ename')}: {self.content.get('evalue')}" if self.status == "error" else ""
        return f"{self.code!r} -> {self.status}{error}\nIOPub: {self.msgs}"


def assert_error(outcome: Cell | dict, ename: str, *evalue_has: str) -> dict:
    """Asserts that a request failed with error `ename` and an evalue holding each of `evalue_has`;
    for a Cell (an execute), also that IOPub carried exactly one `error` message, of that name.
    `outcome`: a Cell, or a reply message. Returns the reply's content."""
    cell = outcome if isinstance(outcome, Cell) else None
    content = outcome.reply["content"] if cell else outcome["content"]
    where = cell.describe() if cell else content
    assert content["status"] == "error", where
    assert content["ename"] == ename, (f"expected {ename}, got {content['ename']}", where)
    for part in evalue_has:
        assert part in content["evalue"], (f"{part!r} not in the evalue", where)
    if cell:
        assert [e["ename"] for e in cell.errors] == [ename], (f"expected one {ename} error on IOPub", where)
    return content


class Kernel:
    """A started kernel: its manager `km` and client `kc` (channels started, ready), and requests
    that collect what they produced. A context manager: leaving it shuts the kernel down.
    `timeout`: the default wait, in seconds, for a reply and for IOPub up to idle."""

    def __init__(
        self, name: str = KERNEL_NAME, timeout: float = 120.0, startup_timeout: float = STARTUP_TIMEOUT, env: dict | None = None
    ) -> None:
        """`env`: the kernel's whole environment (default: this process's)."""
        from jupyter_client.manager import KernelManager

        self.name, self.timeout, self.startup_timeout = name, timeout, startup_timeout
        self._down = False
        self.km = KernelManager(kernel_name=name)
        self.km.start_kernel(**({"env": env} if env is not None else {}))
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=startup_timeout)
        except BaseException:
            self.shutdown()
            raise

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def reply_to(self, msg_id: str, timeout: float | None = None, channel: str = "shell") -> dict:
        """The reply to request `msg_id` on the shell (or control) channel; others are skipped."""
        get = self.kc.get_shell_msg if channel == "shell" else self.kc.get_control_msg
        deadline = time.time() + (timeout or self.timeout)
        while True:
            msg = get(timeout=max(0.1, deadline - time.time()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def iopub(self, msg_id: str, timeout: float | None = None) -> Iterator[dict]:
        """The IOPub messages of request `msg_id` as they arrive, busy to idle (both included)."""
        deadline = time.time() + (timeout or self.timeout)
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.time()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            yield msg
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return

    def iopub_for(self, msg_id: str, timeout: float | None = None) -> list[dict]:
        return list(self.iopub(msg_id, timeout))

    def wait(self, msg_id: str, timeout: float | None = None, code: str = "", sent_at: float | None = None) -> Cell:
        """What the execute request `msg_id`, already sent, produces: its reply, then its IOPub."""
        sent_at = time.perf_counter() if sent_at is None else sent_at
        reply = self.reply_to(msg_id, timeout)
        reply_at = time.perf_counter()
        msgs = self.iopub_for(msg_id, timeout)
        return Cell(code, reply, msgs, sent_at, reply_at, time.perf_counter())

    def run(self, code: str, timeout: float | None = None, **execute_options) -> Cell:
        """Runs `code` (options: those of `KernelClient.execute`, e.g. silent, stop_on_error)."""
        sent_at = time.perf_counter()
        msg_id = self.kc.execute(code, **execute_options)
        return self.wait(msg_id, timeout, code, sent_at)

    def ok(self, code: str, timeout: float | None = None, **execute_options) -> Cell:
        """Runs `code`; raises CellFailed unless the reply is `ok` and IOPub had no error."""
        cell = self.run(code, timeout, **execute_options)
        if cell.status != "ok" or cell.errors:
            raise CellFailed(cell.describe())
        return cell

    def result(self, code: str, timeout: float | None = None) -> str:
        """The text/plain of the result of `code`, which must run and have one."""
        cell = self.ok(code, timeout)
        if cell.result is None:
            raise CellFailed(f"no execute_result: {cell.describe()}")
        return cell.result

    def error(self, code: str, ename: str, *evalue_has: str, **execute_options) -> dict:
        """Runs `code`, which must fail with `ename` (see assert_error); returns the reply's content."""
        return assert_error(self.run(code, **execute_options), ename, *evalue_has)

    def restart(self) -> None:
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=self.startup_timeout)

    def shutdown(self) -> None:
        """Stops the channels and shuts the kernel down (politely); again: nothing."""
        if self._down:
            return
        self._down = True
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)
