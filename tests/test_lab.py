"""JupyterLab in a real browser: the lesson as a learner meets it.

A `jupyter lab` server is started on 127.0.0.1 with a random token, serving a temporary copy of
`lessons/compiling-with-jit.ipynb` (the repository's copy never gets outputs), with its own config,
data, runtime, settings and workspace folders, no news prompt, and the `rust-jit` kernelspec that
conftest installs (JUPYTER_PATH). Debian's Chromium (`/usr/bin/chromium`; Playwright's own browser
download is not available here) opens the notebook through Playwright, and the test checks what a
learner would see:

1. the notebook starts the Rust kernel named in its metadata ("Rust (JIT)" in the toolbar; a
   "Select Kernel" dialog, should one appear, is answered with it) and the kernel becomes idle;
2. Shift+Enter, from the first cell, runs the cells in order (markdown ones too) up to and including
   the first `%timeit` cell;
3. the `%timeit` line ("... per loop (mean ± std. dev. of 7 runs, ...)") appears in an output area,
   the `#[jit]` cell reported its compile (`jit: ...`), the array cell showed `99.0`, and no cell
   produced an error output (read from the notebook model, which `expose_app_in_browser` makes
   reachable as `window.jupyterapp`: in JupyterLab 4 an error renders like a stderr stream, and stderr
   may legitimately hold cargo's progress lines, so the DOM alone cannot tell them apart).

A screenshot is saved to `artifacts/jupyterlab-lesson.png` (or `artifacts/jupyterlab-failure.png`
when a check fails) so CI keeps what the browser showed. No timing figure is checked, only behaviour.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import expect, sync_playwright

from kernel_client import KERNEL_NAME, LESSON, ROOT

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
KERNEL_DISPLAY_NAME = "Rust (JIT)"
TIMEIT_LINE = "per loop (mean ± std. dev. of 7 runs"

SERVER_START_TIMEOUT = 90  # s, until /api/status answers
KERNEL_START_TIMEOUT = 180  # s, until the kernel is idle (it builds its session crate if needed)
RUN_TIMEOUT = 300  # s, for the first cells: the jit compile with a cold cache



# --- the JupyterLab server -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """`jupyter lab` in a subprocess, self-contained under `base`, serving `base/notebooks`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root_dir = base / "notebooks"
        self.root_dir.mkdir()
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "jupyter-lab.log"

        settings = base / "user-settings"
        # No "Would you like to receive official Jupyter news?" toast, no update check.
        notification = settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))

        env = dict(os.environ)  # keeps the JUPYTER_PATH that conftest set, so `rust-jit` is found
        for name in ("config", "data", "runtime"):
            (base / name).mkdir()
            env[f"JUPYTER_{name.upper()}_DIR"] = str(base / name)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        args = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.allow_root=True",
            "--ServerApp.terminals_enabled=False",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={base / 'workspaces'}",
            "--LabApp.news_url=",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to read the notebook model
        ]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, cwd=self.root_dir, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def api(self, path: str, method: str = "GET") -> dict:
        request = urllib.request.Request(self.url + path, method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def wait_until_up(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer in {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Shut the server down with its kernels; whatever is left of them after that is killed."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.proc.poll() is None:
            try:
                self.api("/api/shutdown", method="POST")  # also shuts down the kernels
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        _, alive = psutil.wait_procs(children, timeout=10)
        for child in alive:
            child.kill()
        self._log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    # A failure, not a skip: the test command installs Chromium (tests/run.sh, as root), and a
    # missing browser must not pass unnoticed.
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (tests/run.sh does, when run as root)")
    server = LabServer(tmp_path_factory.mktemp("lab"))
    try:
        shutil.copy(LESSON, server.root_dir / LESSON.name)
        server.wait_until_up()
        yield server
    finally:
        server.stop()
        print(f"\njupyter lab log: {server.log_path}")


@pytest.fixture
def page(lab):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1400})
            yield context.new_page()
        finally:
            browser.close()


# --- the notebook in the page --------------------------------------------------------------------

def notebook_model(page) -> dict:
    """The open notebook as nbformat JSON (outputs included), and the index of the active cell."""
    return page.evaluate(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            return { nb: panel.content.model.toJSON(), active: panel.content.activeCellIndex };
        }"""
    )


def kernel_name(page) -> str:
    return page.locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName").inner_text().strip()


def kernel_status(page) -> str | None:
    return page.locator(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator").get_attribute("data-status")


def wait_for_rust_kernel(page, timeout: float = KERNEL_START_TIMEOUT) -> None:
    """Until the toolbar shows the Rust kernel, idle; picks it in a "Select Kernel" dialog if one appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog").first
        if dialog.is_visible():
            dialog.locator("select").select_option(label=KERNEL_DISPLAY_NAME)
            dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        elif kernel_name(page) == KERNEL_DISPLAY_NAME and kernel_status(page) == "idle":
            return
        time.sleep(0.5)
    raise TimeoutError(f"kernel: {kernel_name(page)!r}, status {kernel_status(page)!r} after {timeout} s")


def text(value: str | list[str]) -> str:
    """nbformat's multiline strings (a cell's source, a stream's text) may be lists of lines."""
    return value if isinstance(value, str) else "".join(value)


def run_cells_through_first_timeit(page) -> int:
    """Shift+Enter from the first cell until the first `%timeit` cell is queued; returns its index."""
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()  # not on a link
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell and selects the next
    for _ in range(len(notebook_model(page)["nb"]["cells"])):
        state = notebook_model(page)
        index = state["active"]
        page.keyboard.press("Shift+Enter")
        cell = state["nb"]["cells"][index]
        if cell["cell_type"] == "code" and "%timeit" in text(cell["source"]):
            return index
        # The next cell is selected once the keypress has been handled.
        page.wait_for_function("i => window.jupyterapp.shell.currentWidget.content.activeCellIndex > i", arg=index)
    raise AssertionError("no %timeit cell in the lesson")


def outputs_of(cell: dict, kind: str) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o["output_type"] == kind]


def stream(cells: list[dict], name: str = "stdout") -> str:
    return "".join(text(o["text"]) for c in cells for o in outputs_of(c, "stream") if o["name"] == name)


def describe_errors(cells: list[dict]) -> str:
    """The error outputs of `cells`, readable (no ANSI colours); empty when there are none."""
    errors = [f"cell {i}: {o['ename']}: {o['evalue']}\n" + "\n".join(o.get("traceback", []))
              for i, c in enumerate(cells) for o in outputs_of(c, "error")]
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n\n".join(errors))


def describe_progress(cells: list[dict]) -> str:
    return "; ".join(f"cell {i}: [{c['execution_count'] or ' '}] {len(c['outputs'])} outputs"
                     for i, c in enumerate(cells) if c["cell_type"] == "code")


def wait_for_cells(page, last: int, timeout: float = RUN_TIMEOUT) -> list[dict]:
    """Until cells 0..last have all run (the kernel idle again), failing at once on an error output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cells = notebook_model(page)["nb"]["cells"][: last + 1]
        errors = describe_errors(cells)
        if errors:
            pytest.fail(f"error output in the lesson's first cells:\n{errors}")
        code = [c for c in cells if c["cell_type"] == "code"]
        if all(c["execution_count"] for c in code) and outputs_of(cells[-1], "stream") and kernel_status(page) == "idle":
            return cells
        time.sleep(1)
    raise TimeoutError(f"cells 0..{last} did not finish in {timeout} s (kernel {kernel_status(page)!r}): {describe_progress(cells)}")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot: {path}")
    return path


# --- the test ------------------------------------------------------------------------------------

def test_jupyterlab_runs_the_lesson_in_chromium(lab, page):
    try:
        page.goto(f"{lab.url}/lab/tree/{LESSON.name}?token={lab.token}")
        page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        wait_for_rust_kernel(page)
        assert notebook_model(page)["nb"]["metadata"]["kernelspec"]["name"] == KERNEL_NAME

        timeit = run_cells_through_first_timeit(page)
        cells = wait_for_cells(page, timeit)

        # What the learner sees: the %timeit line in the timeit cell's output area.
        timeit_output = page.locator(".jp-Notebook .jp-Cell").nth(timeit).locator(".jp-OutputArea-output", has_text=TIMEIT_LINE)
        timeit_output.first.scroll_into_view_if_needed()
        expect(timeit_output.first).to_be_visible(timeout=30_000)
        # And in the model: the compile reported by the #[jit] cell, the array's value, the timeit line.
        stdout = stream(cells)
        assert re.search(r"jit: (compiled a_plus_tr_tanh_a in [\d.]+ s|a_plus_tr_tanh_a from the cache)", stdout), stdout
        assert TIMEIT_LINE in stream(cells[timeit:]), stdout
        results = [text(o["data"]["text/plain"]) for c in cells for o in outputs_of(c, "execute_result")]
        assert "99.0" in results, results
        assert kernel_name(page) == KERNEL_DISPLAY_NAME
    except BaseException:
        try:
            screenshot(page, "jupyterlab-failure.png")
        finally:
            print(f"\njupyter lab log (tail):\n{lab.log_tail()}")
        raise
    screenshot(page, "jupyterlab-lesson.png")
