"""A class on one server: the kernel installed once for everyone (`install --sys-prefix --prepare`
the lesson), two learners (Unix users of their own) running the lesson at once through JupyterHub;
and shared caches a kernel must not use (built by another toolchain, writable by others)."""
from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from hub_class import ClassServer, Learner, defines_jit, dir_size, lesson
from kernel_client import Kernel, stream_text

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="a class needs root: useradd, and a hub that spawns servers as other users")


@ROOT_ONLY
def test_two_learners_run_the_lesson_from_the_shared_cache():
    notebook = lesson()
    with ClassServer(learners=2, prepare=True) as server:
        assert "Prepared " in server.install_output, server.install_output
        assert "0 failed" in server.install_output, server.install_output
        manifest = json.loads((server.shared / "manifest.json").read_text())
        assert manifest["prepared"] == ["compiling-with-jit.ipynb"], manifest
        spec = json.loads((server.venv / "share/jupyter/kernels/rust-jit/kernel.json").read_text())
        assert spec["env"]["RUST_JIT_KERNEL_SHARED"] == str(server.shared), spec
        assert spec["argv"][0] == str(server.shared / "bin/rust-jit-kernel"), spec

        for user in server.users:
            # Nobody but root can change the shared cache.
            for target in (server.shared / "planted", server.shared / "jit/lib/planted.so", server.shared / "seed/planted"):
                assert server.as_learner(user, "touch", str(target)).returncode != 0, f"{user} wrote {target}"
                assert not target.exists()

        results: dict[str, list] = {}
        failures: list[BaseException] = []

        def attend(user: str) -> None:
            try:
                learner = Learner(server, user)
                learner.log_in()
                learner.start_server()
                learner.upload("lesson.ipynb", notebook)
                learner.open_notebook("lesson.ipynb")
                results[user] = learner.run_notebook(notebook)
                learner.close()
            except BaseException as error:  # reported below, with the hub's log
                failures.append(error)

        threads = [threading.Thread(target=attend, args=(user,)) for user in server.users]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, f"{failures!r}\n{server.hub_log_text()}"

        for user, cells in results.items():
            assert sum(defines_jit(cell.code) for cell in cells) == 3, "the lesson's #[jit], #[jit(parallel)] and #[vectorize] cells"
            for cell in cells:
                where = f"{user}, cell {cell.code[:60]!r}"
                assert cell.status == "ok" and not cell.errors, f"{where}: {cell.status} {cell.errors} {cell.stderr}"
                # No cell builds a dependency, and nothing says the shared cache was not used.
                assert "Compiling " not in cell.stdout + cell.stderr, f"{where} built a dependency:\n{cell.stderr}"
                assert "shared cache" not in cell.stderr, f"{where}: {cell.stderr}"
                if defines_jit(cell.code):
                    assert "from the cache" in cell.stdout and "compiled" not in cell.stdout, f"{where}: {cell.stdout}"

            # The learner's own cache: theirs alone, and small.
            cache = server.home(user) / ".cache/rust-jit-kernel"
            info = cache.stat()
            assert stat.S_IMODE(info.st_mode) == 0o700, oct(info.st_mode)
            assert info.st_uid == os.stat(server.home(user)).st_uid
            assert stat.S_IMODE((cache / "sessions").stat().st_mode) == 0o700
            assert dir_size(cache) <= 30 * 2**20, f"{user}'s cache: {dir_size(cache) / 2**20:.1f} MB"
        # Separate: neither learner can look into the other's.
        first, second = server.users
        assert server.as_learner(first, "ls", str(server.home(second) / ".cache/rust-jit-kernel")).returncode != 0

        # A crate nobody prepared: the server's registry is read-only, so it goes to the learner's own.
        learner = Learner(server, first)
        learner.log_in()
        learner.open_notebook("lesson.ipynb")
        dep = learner.execute(':dep bytesize = "1"')
        assert dep.status == "ok", dep
        assert "is read-only here; this session downloads crates into your own cache" in dep.stderr, dep.stderr
        used = learner.execute('println!("{}", bytesize::ByteSize(1536))')
        assert used.status == "ok" and "1.5 KiB" in used.stdout.replace("KB", "KiB"), used
        learner.close()
        own_registry = server.home(first) / ".cache/rust-jit-kernel/cargo-home"
        assert stat.S_IMODE(own_registry.stat().st_mode) == 0o700


def shared_dir(tmp_path, manifest: dict, mode: int = 0o755):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "manifest.json").write_text(json.dumps(manifest))
    shared.chmod(mode)
    return shared


def notices(k: Kernel, code: str) -> tuple[str, list[dict]]:
    msgs = k.run(code).msgs
    return stream_text(msgs, "stderr"), msgs


def test_a_shared_cache_of_another_toolchain_is_not_used_and_the_kernel_says_so_once(tmp_path):
    shared = shared_dir(tmp_path, {"kernel": "0.1.0", "toolchain": "1.0.0-000000000", "cpu": "00000000", "prepared": []})
    with Kernel(env=dict(os.environ, RUST_JIT_KERNEL_SHARED=str(shared))) as k:
        first, _ = notices(k, "40 + 2")
        assert f"note: the shared cache {shared} is not used" in first, first
        assert "with rustc 1.0.0-000000000" in first and "your own cache" in first, first
        assert k.result("40 + 2") == "42"
        again, _ = notices(k, "1 + 1")
        assert "shared cache" not in again, "said once"


def test_a_shared_cache_others_can_write_is_not_used(tmp_path):
    shared = shared_dir(tmp_path, {"kernel": "0.1.0", "toolchain": "x", "cpu": "x", "prepared": []}, mode=0o777)
    with Kernel(env=dict(os.environ, RUST_JIT_KERNEL_SHARED=str(shared))) as k:
        first, _ = notices(k, "1 + 1")
        assert f"{shared} can be changed by other users" in first, first
        assert k.result("2 + 3") == "5"
