"""Shared fixtures: the built kernel binary, its kernelspec in a temporary JUPYTER_PATH,
and helpers to drive a kernel with jupyter_client."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINARY = Path(os.environ.get("RUST_JIT_KERNEL_BIN", ROOT / "target/release/rust-jit-kernel"))
KERNEL_NAME = "rust-jit"

# Install the kernelspec once, before jupyter_client reads JUPYTER_PATH. `install` also builds the
# session crate, as it does for a learner.
_PREFIX = Path(tempfile.mkdtemp(prefix="rjk-jupyter-"))
_INSTALL = subprocess.run([str(BINARY), "install", "--prefix", str(_PREFIX)], check=True, capture_output=True, text=True)
assert "Built the session crate" in _INSTALL.stdout, _INSTALL
os.environ["JUPYTER_PATH"] = str(_PREFIX / "share/jupyter")
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")

from jupyter_client.manager import start_new_kernel  # noqa: E402


class Kernel:
    """A started kernel with helpers that collect everything one request produced."""

    def __init__(self) -> None:
        self.km, self.kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=120)

    def reply_to(self, msg_id: str, timeout: float = 120, channel: str = "shell") -> dict:
        get = self.kc.get_shell_msg if channel == "shell" else self.kc.get_control_msg
        deadline = time.time() + timeout
        while True:
            msg = get(timeout=max(0.1, deadline - time.time()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def iopub_for(self, msg_id: str, timeout: float = 120) -> list[dict]:
        """IOPub messages of a request, busy to idle (both included)."""
        out = []
        deadline = time.time() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.time()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out

    def run(self, code: str, timeout: float = 120, **kw) -> tuple[dict, list[dict]]:
        msg_id = self.kc.execute(code, **kw)
        reply = self.reply_to(msg_id, timeout)
        return reply, self.iopub_for(msg_id, timeout)

    def ok(self, code: str, **kw) -> list[dict]:
        reply, msgs = self.run(code, **kw)
        assert reply["content"]["status"] == "ok", (code, reply["content"], msgs)
        return msgs

    def result(self, code: str) -> str:
        msgs = self.ok(code)
        results = [m for m in msgs if m["msg_type"] == "execute_result"]
        assert results, msgs
        return results[-1]["content"]["data"]["text/plain"]

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def stream_text(msgs: list[dict], name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == name)


@pytest.fixture(scope="module")
def kernel():
    k = Kernel()
    yield k
    k.shutdown()
