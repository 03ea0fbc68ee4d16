"""A class on one server, for real: a JupyterHub whose learners are Unix users of their own, and the
kernel installed once for all of them. Used by tests/test_class.py (2 learners) and
bench/class_bench.py (N learners at once).

`ClassServer` (root only) makes, under a fresh directory in /opt that every user can read:
- a Rust toolchain and a cargo registry every learner can reach (hard-linked copies of this user's:
  learners cannot read root's home), as an admin's install under /opt would be;
- the hub's Python environment from the system's python3 (tests/hub-requirements.txt: jupyterhub,
  jupyter_server) and configurable-http-proxy from npm;
- the kernel installed into it with `install --sys-prefix` (the shared cache), with the lesson
  `--prepare`d or not;
- Unix users (`useradd`), removed again with their homes when the class ends;
- a hub on 127.0.0.1 with DummyAuthenticator and the default LocalProcessSpawner, so that every
  learner's server runs as that learner.

`Learner` does what a browser does: logs in through the hub's REST API (a token for the user's name
and password), starts the learner's server, uploads the notebook, starts a kernel for it and runs its
code cells over the kernel's websocket, recording each cell's outputs and time.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import websocket  # websocket-client, as jupyter_server brings it

from kernel_client import BINARY, KERNEL_NAME, LESSON, ROOT

PASSWORD = "class-password"
HUB_REQUIREMENTS = ROOT / "tests/hub-requirements.txt"
PROXY_VERSION = "5.3.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def linked_copy(source: Path, target: Path) -> None:
    """`cp -al` (hard links: instant, no space), or `cp -a` across file systems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["cp", "-al", str(source), str(target)], capture_output=True).returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        run("cp", "-a", str(source), str(target))


def system_python() -> str:
    """A Python outside root's home (learners' servers run it)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if Path(candidate).exists():
            return candidate
    raise RuntimeError("no system python3 (/usr/bin/python3): apt-get install python3 python3-venv")


@dataclass
class Cell:
    code: str
    status: str = ""
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass
class ClassServer:
    learners: int
    prepare: bool = True
    base: Path = Path()
    venv: Path = Path()
    shared: Path = Path()
    toolchain_bin: Path = Path()
    cargo_home: Path = Path()
    users: list[str] = field(default_factory=list)
    url: str = ""
    install_seconds: float = 0.0
    install_output: str = ""
    hub: subprocess.Popen | None = None

    def __enter__(self) -> ClassServer:
        if os.geteuid() != 0:
            raise RuntimeError("a class needs root (useradd, and a hub that spawns servers as other users)")
        try:
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _build(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="rjk-class-", dir="/opt"))
        self.base.chmod(0o755)
        # The toolchain and registry, where every learner can read them.
        sysroot = Path(run("rustc", "--print", "sysroot").stdout.strip())
        linked_copy(sysroot, self.base / "rust/toolchain")
        self.toolchain_bin = self.base / "rust/toolchain/bin"
        cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
        self.cargo_home = self.base / "rust/cargo"
        linked_copy(cargo_home / "registry", self.cargo_home / "registry")
        # The hub's environment, and the proxy.
        self.venv = self.base / "venv"
        run(system_python(), "-m", "venv", str(self.venv))
        run(str(self.venv / "bin/pip"), "install", "--quiet", "-r", str(HUB_REQUIREMENTS))
        run("npm", "install", "--silent", "--prefix", str(self.base / "proxy"), f"configurable-http-proxy@{PROXY_VERSION}")
        # The kernel, for everyone, as an admin would install it.
        env = {**self.admin_env(), "VIRTUAL_ENV": str(self.venv)}
        command = [str(BINARY), "install", "--sys-prefix"] + (["--prepare", str(LESSON)] if self.prepare else [])
        started = time.monotonic()
        self.install_output = run(*command, env=env).stdout
        self.install_seconds = time.monotonic() - started
        self.shared = self.venv / "share/rust-jit-kernel"
        # The learners, and the hub.
        tag = f"{os.getpid() % 10000}"
        for i in range(self.learners):
            name = f"rjk{tag}l{i}"
            run("useradd", "--create-home", "--shell", "/bin/bash", name)
            self.users.append(name)
        self._start_hub()

    def admin_env(self) -> dict[str, str]:
        """The environment of an admin whose toolchain is the class's (no rustup in front), and whose
        libraries are the learners' (not the test's NVRTC: a cuda function's crate names what NVRTC
        there is, so the prepared one would not be the learners')."""
        env = {k: v for k, v in os.environ.items() if k not in ("RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "RUST_JIT_KERNEL_CACHE", "RUST_JIT_KERNEL_SHARED", "LD_LIBRARY_PATH")}
        env["PATH"] = f"{self.toolchain_bin}:/usr/local/bin:/usr/bin:/bin"
        env["CARGO_HOME"] = str(self.cargo_home)
        return env

    def _start_hub(self) -> None:
        hub_dir = self.base / "hub"
        hub_dir.mkdir(mode=0o700)
        port, hub_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = f"""
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{hub_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{hub_dir}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allowed_users = set({self.users!r})
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = ["{self.venv}/bin/jupyterhub-singleuser"]
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.ConfigurableHTTPProxy.command = ["{self.base}/proxy/node_modules/.bin/configurable-http-proxy"]
c.JupyterHub.cleanup_servers = True
"""
        (hub_dir / "jupyterhub_config.py").write_text(config)
        env = {"PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(hub_dir)}
        self.hub_log = open(hub_dir / "hub.log", "w")
        self.hub = subprocess.Popen(
            [str(self.venv / "bin/jupyterhub"), "-f", str(hub_dir / "jupyterhub_config.py")],
            cwd=hub_dir, env=env, stdout=self.hub_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.hub.poll() is not None:
                raise RuntimeError(f"the hub exited:\n{self.hub_log_text()}")
            try:
                urllib.request.urlopen(f"{self.url}/hub/api", timeout=2)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"the hub did not answer in 90 s:\n{self.hub_log_text()}")

    def hub_log_text(self) -> str:
        return (self.base / "hub/hub.log").read_text(errors="replace")[-5000:]

    def as_learner(self, user: str, *command: str) -> subprocess.CompletedProcess:
        """Runs `command` as `user` (not checked)."""
        return subprocess.run(["runuser", "-u", user, "--", *command], capture_output=True, text=True)

    def home(self, user: str) -> Path:
        return Path(pwd.getpwnam(user).pw_dir)

    def __exit__(self, *exc) -> None:
        if self.hub is not None:
            os.killpg(self.hub.pid, signal.SIGTERM)
            try:
                self.hub.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.hub.pid, signal.SIGKILL)
            self.hub_log.close()
        for user in self.users:
            subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
        for user in self.users:
            for _ in range(20):
                if subprocess.run(["userdel", "--remove", user], capture_output=True).returncode in (0, 6):
                    break
                time.sleep(0.5)  # processes still going away
        if self.base != Path() and str(self.base).startswith("/opt/rjk-class-"):
            shutil.rmtree(self.base, ignore_errors=True)


class Learner:
    """One learner, through the hub's REST API and their server's, as a browser would."""

    def __init__(self, server: ClassServer, user: str):
        self.server, self.user = server, user
        self.token = ""
        self.kernel_id = ""
        self.ws: websocket.WebSocket | None = None
        self.session = uuid.uuid4().hex

    def api(self, method: str, path: str, body: dict | None = None, token: bool = True, timeout: float = 60) -> dict:
        request = urllib.request.Request(f"{self.server.url}{path}", method=method, data=None if body is None else json.dumps(body).encode())
        request.add_header("Content-Type", "application/json")
        if token and self.token:
            request.add_header("Authorization", f"token {self.token}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else {}

    def log_in(self) -> None:
        """A token for the learner's name and password (the hub's Authenticator checks them)."""
        reply = self.api("POST", f"/hub/api/users/{self.user}/tokens", {"auth": {"username": self.user, "password": PASSWORD}, "note": "class"}, token=False)
        self.token = reply["token"]

    def start_server(self, timeout: float = 180) -> None:
        try:
            self.api("POST", f"/hub/api/users/{self.user}/server")
        except urllib.error.HTTPError as error:
            if error.code != 400:  # 400: already running
                raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api("GET", f"/hub/api/users/{self.user}").get("servers", {}).get("", {})
            if server.get("ready"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.user}'s server did not start:\n{self.server.hub_log_text()}")

    def upload(self, name: str, notebook: dict) -> None:
        self.api("PUT", f"/user/{self.user}/api/contents/{name}", {"type": "notebook", "format": "json", "content": notebook})

    def open_notebook(self, name: str, timeout: float = 180) -> float:
        """Starts a kernel for the notebook (a session, as JupyterLab does) and waits for its
        kernel_info_reply; returns the seconds that took."""
        started = time.monotonic()
        session = self.api("POST", f"/user/{self.user}/api/sessions", {"path": name, "name": name, "type": "notebook", "kernel": {"name": KERNEL_NAME}})
        self.session_id = session["id"]
        self.kernel_id = session["kernel"]["id"]
        ws_url = self.server.url.replace("http://", "ws://") + f"/user/{self.user}/api/kernels/{self.kernel_id}/channels?session_id={self.session}"
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {self.token}"], timeout=timeout)
        msg_id = self.send("kernel_info_request", {})
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("no kernel_info_reply")
            msg = self.receive(deadline - time.monotonic())
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "kernel_info_reply":
                return time.monotonic() - started

    def send(self, msg_type: str, content: dict, channel: str = "shell") -> str:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "session": self.session, "username": self.user, "version": "5.3", "date": ""}
        assert self.ws is not None
        self.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": channel, "buffers": []}))
        return msg_id

    def receive(self, timeout: float) -> dict:
        assert self.ws is not None
        self.ws.settimeout(max(timeout, 0.1))
        return json.loads(self.ws.recv())

    def execute(self, code: str, timeout: float = 600) -> Cell:
        """Runs one cell; returns when its execute_reply and its `idle` have both come."""
        cell = Cell(code)
        started = time.monotonic()
        msg_id = self.send("execute_request", {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        replied = idle = False
        deadline = started + timeout
        while not (replied and idle):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:80]!r}")
            msg = self.receive(deadline - time.monotonic())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "execute_reply":
                cell.status, replied = content["status"], True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "stream":
                setattr(cell, content["name"], getattr(cell, content["name"]) + content["text"])
            elif kind == "error":
                cell.errors.append(f"{content['ename']}: {content['evalue']}")
        cell.seconds = time.monotonic() - started
        return cell

    def run_notebook(self, notebook: dict) -> list[Cell]:
        cells = []
        for source in code_cells(notebook):
            cells.append(self.execute(source))
        return cells

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        if self.kernel_id:
            self.api("DELETE", f"/user/{self.user}/api/sessions/{self.session_id}")
            self.kernel_id = ""

    def stop_server(self) -> None:
        self.api("DELETE", f"/hub/api/users/{self.user}/server")


def defines_jit(code: str) -> bool:
    """Whether a cell defines a #[jit] or #[vectorize] function."""
    return re.search(r"^\s*#\[(jit|vectorize)\b", code, re.M) is not None


def code_cells(notebook: dict) -> list[str]:
    sources = ("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in notebook["cells"] if c["cell_type"] == "code")
    return [s for s in sources if s.strip()]


def lesson() -> dict:
    return json.loads(LESSON.read_text())


def dir_size(path: Path) -> int:
    """Bytes of the files under `path` (symbolic links count as links, as `du` does)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


class Usage:
    """Samples the resident memory of every process of some users (every 0.5 s) while it runs;
    `peak[user]` in bytes. CPU seconds come from `cpu_seconds` (a finished server's)."""

    def __init__(self, users: list[str]):
        self.uids = {pwd.getpwnam(u).pw_uid: u for u in users}
        self.peak = {u: 0 for u in users}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Usage:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            totals = {u: 0 for u in self.peak}
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    uid = os.stat(f"/proc/{pid}").st_uid
                    if uid in self.uids:
                        rss_pages = int(open(f"/proc/{pid}/statm").read().split()[1])
                        totals[self.uids[uid]] += rss_pages * page
                except (OSError, ValueError, IndexError):
                    continue
            for user, total in totals.items():
                self.peak[user] = max(self.peak[user], total)
            self._stop.wait(0.5)


def cpu_seconds(user: str) -> float:
    """CPU seconds of `user`'s processes so far, their waited-for children included (a learner's
    server, once its kernel ended, holds everything the kernel, cargo and rustc used)."""
    uid = pwd.getpwnam(user).pw_uid
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            # utime stime cutime cstime: fields 14-17 of stat, 12-15 after the name
            total += sum(int(x) for x in fields[11:15]) / ticks
        except (OSError, ValueError, IndexError):
            continue
    return total
