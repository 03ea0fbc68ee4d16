"""The real kernel over ZeroMQ: state, streaming, errors, bad input, interrupt, restart."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time

import zmq
from jupyter_client.session import Session

from kernel_client import BINARY, Cell, Kernel, assert_error


def test_state_persists_across_cells(kernel):
    kernel.ok("let mut total = 40;\nfn add(a: i32, b: i32) -> i32 { a + b }\nstruct Point { x: i32 }")
    kernel.ok("total = add(total, 2);")
    assert kernel.result("total") == "42"
    assert kernel.result("Point { x: total }.x") == "42"


def test_output_streams_while_the_cell_runs(kernel):
    code = 'for i in 0..3 {\n    println!("tick {i}");\n    std::thread::sleep(std::time::Duration::from_millis(800));\n}'
    msg_id = kernel.kc.execute(code)
    first_stream_at = None
    for msg in kernel.iopub(msg_id):
        if msg["msg_type"] == "stream" and first_stream_at is None:
            first_stream_at = time.time()
            assert msg["content"]["text"].startswith("tick 0")
    idle_at = time.time()
    kernel.reply_to(msg_id)
    assert first_stream_at is not None
    # The first line arrived while the cell still had >= 1.6 s of sleeping to do.
    assert idle_at - first_stream_at > 1.0, (idle_at - first_stream_at)


def test_iopub_sequence_of_an_execute(kernel):
    cell = kernel.run('println!("out"); 2 + 3')
    msgs, types = cell.msgs, cell.msg_types
    assert types[0] == "status" and msgs[0]["content"]["execution_state"] == "busy"
    assert types[1] == "execute_input"
    assert types[-1] == "status" and msgs[-1]["content"]["execution_state"] == "idle"
    assert types[2:-1] == ["stream", "execute_result"]
    count = cell.content["execution_count"]
    assert msgs[1]["content"]["execution_count"] == count
    assert msgs[3]["content"]["execution_count"] == count


def test_compile_error_points_at_the_cell_and_keeps_everything(kernel):
    kernel.ok("let kept = 7;\nfn kept_fn() -> i32 { 1 }")
    cell = kernel.run('let a = 1;\nlet b: i32 = "two";')
    assert_error(cell, "CompilationError", "E0308", "cell line 2")
    assert len(cell.errors) == 1
    tb = "\n".join(cell.errors[0]["traceback"])
    assert "cell:2:" in tb and 'let b: i32 = "two";' in tb
    assert kernel.result("kept + kept_fn()") == "8"
    # A cell whose value is `()` shows no result (as IPython shows no None).
    assert not kernel.ok("match kept { 7 => println!(\"seven\"), _ => {} }").results


def test_panic_is_an_error_and_keeps_earlier_variables(kernel):
    kernel.ok("let before_panic = 5;")
    cell = kernel.run("let v: Vec<i32> = Vec::new();\nlet x = v[3];")
    assert_error(cell, "panic", "index out of bounds", "cell line 2")
    assert cell.msg_types.count("error") == 1
    assert "panicked" not in cell.stderr
    assert kernel.result("before_panic") == "5"


def test_panic_in_another_thread_is_only_stderr(kernel):
    cell = kernel.ok('let r = std::thread::spawn(|| panic!("worker failed")).join().is_err(); r')
    assert cell.status == "ok"
    assert "worker failed" in cell.stderr


def test_without_snapshots_a_crash_restarts_the_user_process_and_says_what_was_lost():
    # RUST_JIT_KERNEL_SNAPSHOTS=off (an admin's choice in the kernelspec's env): evcxr's behaviour.
    # With snapshots (the default) nothing is lost: tests/test_snapshots.py.
    with Kernel(env={**os.environ, "RUST_JIT_KERNEL_SNAPSHOTS": "off"}) as k:
        k.ok("let lost_a = 1; let lost_b = 2;\nfn survivor() -> i32 { 9 }")
        k.error("std::process::abort();", "ProcessCrashed", "lost_a, lost_b", "snapshots are off")
        assert k.result("survivor()") == "9"


def test_stop_on_error_aborts_queued_cells(kernel):
    first = kernel.kc.execute('let boom: i32 = "x";')
    second = kernel.kc.execute('println!("must not run");')
    assert_error(kernel.wait(first), "CompilationError")
    second_cell = kernel.wait(second)
    assert second_cell.status == "aborted"
    assert second_cell.stdout == ""
    # stop_on_error=False: the next one runs.
    first = kernel.kc.execute('let boom: i32 = "x";', stop_on_error=False)
    second = kernel.kc.execute("1 + 1")
    assert_error(kernel.wait(first), "CompilationError")
    assert kernel.wait(second).status == "ok"


def test_silent_and_store_history(kernel):
    before = kernel.run("0").content["execution_count"]
    quiet = kernel.run('println!("quiet"); 1', silent=True)
    assert quiet.status == "ok"
    assert quiet.msg_types == ["status", "status"]
    kernel.run("2", store_history=False)
    after = kernel.run("3").content["execution_count"]
    assert after == before + 1
    msg_id = kernel.kc.history(hist_access_type="tail", n=2, output=False, raw=True)
    history = kernel.reply_to(msg_id)["content"]["history"]
    assert [h[2] for h in history] == ["0", "3"]


def test_history_search_is_ipythons(kernel):
    # IPython searches its history with SQLite's GLOB: the kernel's answers must be SQLite's, on cells
    # whose text has the wildcard characters themselves.
    import sqlite3

    cells = ["let star_a = \"a*b\";", "let q_mark = \"x?y\";", "star_a.len() * 2", "let set_b = [1, 2];", "star_a.len() * 2"]
    for code in cells:
        kernel.ok(code)
    everything = kernel.reply_to(kernel.kc.history(hist_access_type="tail", n=100000, output=False, raw=True))["content"]["history"]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE history (line INTEGER, source TEXT)")
    db.executemany("INSERT INTO history VALUES (?, ?)", [(h[1], h[2]) for h in everything])
    patterns = ["*a*b*", "*\"a*", "*x?y*", "*?y\";", "star_a*", "*[*]*", "*[?]*", "*[^a-z]2]*", "*[1-2], 2]*", "let [qs]*", "*;", "star_a.len() [*] 2"]
    for pattern in patterns:
        for unique in (False, True):
            for n in (None, 2):
                sql = "SELECT line, MAX(line) FROM history WHERE source GLOB ?" if unique else "SELECT line FROM history WHERE source GLOB ?"
                if unique:
                    sql += " GROUP BY source"
                sql += " ORDER BY line DESC LIMIT ?" if n else " ORDER BY line"
                rows = db.execute(sql, (pattern, n) if n else (pattern,)).fetchall()
                expected = sorted(r[-1] for r in rows)
                options = {"n": n} if n else {}
                reply = kernel.reply_to(kernel.kc.history(hist_access_type="search", pattern=pattern, unique=unique, output=False, raw=True, **options))
                got = [h[1] for h in reply["content"]["history"]]
                assert got == expected, (pattern, unique, n, got, expected)


def test_dependency_build_progress_is_shown(kernel, tmp_path):
    crate = tmp_path / "tiny_dep"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "tiny_dep"\nversion = "0.1.0"\nedition = "2021"\n')
    (crate / "src/lib.rs").write_text("pub fn answer() -> i32 { 42 }\n")
    assert "Compiling tiny_dep" in kernel.ok(f':dep tiny_dep = {{ path = "{crate}" }}').stderr
    assert kernel.result("tiny_dep::answer()") == "42"


def _raw_shell(kernel) -> tuple[zmq.Socket, dict]:
    info = kernel.km.get_connection_info()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
    return sock, info


def test_bad_signatures_are_dropped_and_nothing_runs(kernel, tmp_path):
    marker = tmp_path / "created-by-a-forged-request"
    code = f'std::fs::write("{marker}", "x").unwrap();'
    sock, info = _raw_shell(kernel)
    wrong_key = Session(key=b"not-the-kernel-key", username="attacker")
    wrong_key.send(sock, "execute_request", {"code": code, "silent": False, "store_history": True,
                                             "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    # The same request with the right key, then its signature and content tampered.
    right = Session(key=info["key"], username="attacker")
    msg = right.msg("execute_request", {"code": "1", "silent": False, "store_history": True,
                                         "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    frames = right.serialize(msg)
    frames[-1] = json.dumps({"code": code, "silent": False, "store_history": True, "user_expressions": {},
                             "allow_stdin": False, "stop_on_error": True}).encode()
    sock.send_multipart(frames)
    unsigned = list(frames)
    unsigned[1] = b""
    sock.send_multipart(unsigned)
    assert sock.poll(2000) == 0, "a forged request got a reply"
    sock.close()
    assert kernel.result("6 * 7") == "42"
    assert not marker.exists()


def test_malformed_messages_do_not_stop_the_kernel(kernel):
    sock, info = _raw_shell(kernel)
    session = Session(key=info["key"])
    sock.send_multipart([b"just one frame"])
    sock.send_multipart([b"<IDS|MSG>", b"sig"])
    msg = session.msg("execute_request", {"code": "1"})
    frames = session.serialize(msg)
    frames[2:6] = [b"{not json", b"{}", b"{}", b"{}"]
    sock.send_multipart(frames)
    sock.close()
    # Unknown message type: an error reply, and the kernel keeps serving.
    msg = kernel.kc.session.msg("frobnicate_request", {})
    kernel.kc.shell_channel.send(msg)
    reply = kernel.reply_to(msg["header"]["msg_id"])
    assert reply["msg_type"] == "frobnicate_reply"
    assert_error(reply, "UnknownMessageType", "frobnicate_request")
    assert kernel.result("1 + 1") == "2"


def interrupt_while_running(k: Kernel, code: str, after: float) -> tuple[Cell, float]:
    """Runs `code`, interrupts it `after` seconds later; returns what it produced and how long it
    took to stop (interrupt sent to reply received)."""
    msg_id = k.kc.execute(code)
    time.sleep(after)
    interrupted_at = time.perf_counter()
    k.km.interrupt_kernel()
    cell = k.wait(msg_id, timeout=10, code=code)
    return cell, cell.reply_at - interrupted_at


def test_interrupt_stops_a_running_cell_and_keeps_every_variable(fresh_kernel):
    k = fresh_kernel
    k.ok("let survivor_count = 3;\nfn still_here() -> i32 { 11 }")
    # Interrupted once it runs (past compilation).
    cell, took = interrupt_while_running(k, "loop { std::thread::sleep(std::time::Duration::from_millis(10)); }", 3)
    assert took < 2.0
    assert_error(cell, "Interrupted", "Nothing was lost")
    assert k.result("still_here() + survivor_count") == "14"
    # Interrupt with nothing running: harmless. (Wait for the reply: an interrupt still in flight
    # when the next execute starts would rightly stop that one.)
    request = k.kc.session.msg("interrupt_request", {})
    k.kc.control_channel.send(request)
    assert k.reply_to(request["header"]["msg_id"], channel="control")["content"]["status"] == "ok"
    assert k.result("still_here() + 1") == "12"


def test_without_a_toolchain_the_kernel_starts_and_says_why(tmp_path):
    # A learner whose environment reaches no Rust (no rustup of their own, nothing on PATH).
    env = dict(os.environ, PATH="/usr/bin:/bin", RUSTUP_HOME=str(tmp_path / "no-rustup"), CARGO_HOME=str(tmp_path / "no-cargo"))
    env["RUST_JIT_KERNEL_CACHE"] = str(tmp_path / "cache")
    with Kernel(env=env) as k:
        k.kc.kernel_info()
        info = k.kc.get_shell_msg(timeout=30)["content"]
        assert info["status"] == "ok" and info["language_info"]["name"] == "rust", info
        content = k.error("1 + 1", "ToolchainNotFound", "no Rust toolchain found for this kernel", "RUSTUP_HOME and CARGO_HOME")
        assert "\n" not in content["evalue"], content["evalue"]
        k.error("let x = 2;", "ToolchainNotFound")  # and it goes on serving


def test_the_cache_is_private_and_another_users_is_refused(tmp_path):
    # A cache others could write to would let them plant code that this learner's kernel runs.
    open_cache = tmp_path / "open"
    open_cache.mkdir(mode=0o777)
    open_cache.chmod(0o777)
    with Kernel(env=dict(os.environ, RUST_JIT_KERNEL_CACHE=str(open_cache))):
        assert open_cache.stat().st_mode & 0o777 == 0o700
        assert (open_cache / "sessions").stat().st_mode & 0o077 == 0
    if os.getuid() != 0:
        return  # giving a directory to another user needs root
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    with Kernel(env=dict(os.environ, RUST_JIT_KERNEL_CACHE=str(theirs))) as k:
        k.error("1 + 1", "SetupError", "belongs to another user (uid 65534)", "RUST_JIT_KERNEL_CACHE")
    assert list(theirs.iterdir()) == [], "nothing was written there"


def test_restart_and_shutdown(fresh_kernel):
    k = fresh_kernel
    k.ok("let before_restart = 1;")
    k.restart()
    assert k.error("before_restart", "CompilationError", "before_restart")["execution_count"] == 1
    assert k.result("1 + 1") == "2"
    start = time.time()
    k.shutdown()
    assert not k.km.is_alive()
    assert time.time() - start < 10


def test_cli_errors_and_install(tmp_path):
    missing = subprocess.run([str(BINARY), "--connection-file", str(tmp_path / "nope.json")],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0
    assert len(missing.stderr.strip().splitlines()) == 1 and "nope.json" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = subprocess.run([str(BINARY), "--connection-file", str(bad)], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1
    version = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("rust-jit-kernel ")
    out = subprocess.run([str(BINARY), "install", "--prefix", str(tmp_path), "--no-warm-up"],
                         check=True, capture_output=True, text=True).stdout
    assert "Installed kernelspec rust-jit" in out and "Built" not in out
    spec = json.loads((tmp_path / "share/jupyter/kernels/rust-jit/kernel.json").read_text())
    assert spec["display_name"] == "Rust (JIT)" and spec["interrupt_mode"] == "message"
    # An install for every user: the binary beside the kernelspec, where all can run it; no shared
    # cache without the build.
    shared = tmp_path / "share/rust-jit-kernel"
    assert spec["argv"] == [str(shared / "bin/rust-jit-kernel"), "--connection-file", "{connection_file}"]
    assert (shared / "bin/rust-jit-kernel").stat().st_size == BINARY.stat().st_size
    assert "RUST_JIT_KERNEL_SHARED" not in spec["env"] and spec["env"]["PATH"].endswith(":${PATH}"), spec
    assert (tmp_path / "share/jupyter/kernels/rust-jit/logo-64x64.png").exists()
    bad = subprocess.run([str(BINARY), "install", "--no-warm-up", "--prepare", "x.ipynb"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--prepare needs the build" in bad.stderr
    subprocess.run([str(BINARY), "uninstall", "--prefix", str(tmp_path)], check=True, capture_output=True)
    assert not (tmp_path / "share/jupyter/kernels/rust-jit").exists() and not shared.exists()


def test_interrupt_during_a_compile_keeps_everything(fresh_kernel, tmp_path):
    crate = tmp_path / "slow_build"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "slow_build"\nversion = "0.1.0"\nedition = "2021"\n')
    (crate / "build.rs").write_text("fn main() { std::thread::sleep(std::time::Duration::from_secs(120)); }\n")
    (crate / "src/lib.rs").write_text("pub fn f() -> i32 { 1 }\n")
    k = fresh_kernel
    k.ok("let kept_through_compile = 21;")
    # Interrupted while cargo runs the build script.
    cell, took = interrupt_while_running(k, f':dep slow_build = {{ path = "{crate}" }}', 4)
    assert took < 2.0
    assert_error(cell, "Interrupted", "Nothing was lost")
    assert k.result("kept_through_compile * 2") == "42"


def processes() -> dict[int, tuple[str, int]]:
    """Every process: pid -> (name, parent)."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{entry}/stat").read() if entry.isdigit() else ""
        except OSError:
            continue
        if stat:
            found[int(entry)] = (stat[stat.index("(") + 1 : stat.rindex(")")], int(stat[stat.rindex(")") + 2 :].split()[1]))
    return found


def wait_for(what, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while not (found := what()):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return found


# A cell whose compile never ends (const evaluation, allowed to run long).
ENDLESS_COMPILE = "#[allow(long_running_const_eval)]\nconst ENDLESS: u64 = { let mut i = 0u64; while i < u64::MAX { i += 1; } i };\nENDLESS"


def test_cells_compile_in_forks_of_the_sessions_rustc_zygote_which_an_interrupt_spares(fresh_kernel):
    # kernel/src/evcxr_backend/rustc_zygote.rs: one rustc per session, stopped before its main, forked per cell.
    k = fresh_kernel
    k.ok("let kept_through_compile = 21;")
    kernel_pid = k.km.provisioner.pid
    zygotes = [pid for pid, (name, parent) in processes().items() if parent == kernel_pid and name == "rjk-zygote"]
    assert len(zygotes) == 1, processes()
    zygote = zygotes[0]
    msg_id = k.kc.execute(ENDLESS_COMPILE)
    forks = lambda: [pid for pid, (name, parent) in processes().items() if parent == zygote and name == "rustc"]
    # This cell's: a fork started after its cargo front, which is still there (a fork of the cell
    # before may finish its incremental session after that cell's reply).
    started = lambda pid: int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
    fronts = lambda: [pid for pid, (name, parent) in processes().items() if parent == kernel_pid and name == "cargo"]

    def this_cells_fork():
        try:
            return [f for f in forks() for c in fronts() if started(f) >= started(c)]
        except OSError:
            return []

    wait_for(this_cells_fork)
    interrupted_at = time.perf_counter()
    k.km.interrupt_kernel()
    cell = k.wait(msg_id, timeout=10, code=ENDLESS_COMPILE)
    assert cell.reply_at - interrupted_at < 2.0
    assert_error(cell, "Interrupted", "Nothing was lost")
    wait_for(lambda: not forks(), 5)
    assert zygote in processes()
    assert k.result("kept_through_compile * 2") == "42"
    # The zygote ends with the kernel, however it ends.
    os.kill(kernel_pid, 9)
    wait_for(lambda: processes().get(zygote, ("gone", 0))[0] != "rjk-zygote", 5)


def test_without_the_rustc_zygote_cells_start_rustc_as_before():
    with Kernel(env={**os.environ, "RUST_JIT_KERNEL_RUSTC_ZYGOTE": "off"}) as k:
        assert k.result("40 + 2") == "42"
        kernel_pid = k.km.provisioner.pid
        assert not [pid for pid, (name, parent) in processes().items() if parent == kernel_pid and name == "rjk-zygote"]
        assert k.result("let forty = 40;\nforty + 3") == "43"


def test_variables_of_std_types_written_by_std_macros_are_inferred(kernel):
    # rust-analyzer infers each new variable's type from the kernel's analysis sources, in which std's
    # macros lose their bodies, docs and stability attributes (kernel/src/analysis_src.rs): the impls those macros write
    # (integer conversions and methods, Wrapping, NonZero, atomics) must still be there.
    kernel.ok(
        "let a = u32::from(3u8);\nlet b = std::num::Wrapping(250u8) + std::num::Wrapping(10);\n"
        "let c = std::num::NonZeroU32::new(4).unwrap();\nlet d = 7i64.pow(2);\nlet e = 2.0f64.sqrt();\n"
        "let f = std::sync::atomic::AtomicUsize::new(1);\nlet g = (1..4u64).map(|x| x * 2).collect::<Vec<_>>();\n"
        "let h = std::time::Duration::from_millis(5);\nlet i = u16::try_from(70000u32).is_err();\n"
        "let j = f64::from(1.5f32);\nlet k = 'a'.to_ascii_uppercase();\nlet l = 5u8.checked_add(1);\nlet m = f64::from(true);"
    )
    assert kernel.result('format!("{a} {b} {c} {d} {e:.3} {f:?} {g:?} {h:?} {i} {j} {k} {l:?} {m}")') == (
        '"3 4 4 49 1.414 1 [2, 4, 6] 5ms true 1.5 A Some(6) 1"'
    )


def test_question_mark_pages_documentation(kernel):
    found = kernel.ok("?std::mem::swap")
    assert found.status == "ok"
    page = found.content["payload"][0]
    assert page["source"] == "page" and "swap" in page["data"]["text/plain"]
    kernel.error("?no_such_thing_anywhere", "NotFound", "no_such_thing_anywhere")


def test_env_round_trip_into_user_code(kernel):
    assert kernel.ok("%env RJK_TEST_VALUE=hello world").stdout == "env: RJK_TEST_VALUE=hello world\n"
    assert kernel.result('std::env::var("RJK_TEST_VALUE").unwrap()') == '"hello world"'
    assert kernel.result("%env RJK_TEST_VALUE") == "'hello world'"
    kernel.ok("%env RJK_TEST_OTHER 3")
    assert kernel.result('std::env::var("RJK_TEST_OTHER").unwrap()') == '"3"'
    listing = kernel.result("%env")
    assert "'RJK_TEST_VALUE': 'hello world'" in listing


def test_env_value_from_rust_expressions(kernel):
    # `{expr}` is computed in the session and set in the user process and the kernel, in one cell.
    kernel.ok("let env_threads = 3usize;")
    assert kernel.ok("%env RJK_TEST_EXPR={env_threads * 2}x{{y}}").stdout == "env: RJK_TEST_EXPR=6x{y}\n"
    assert kernel.result('std::env::var("RJK_TEST_EXPR").unwrap()') == '"6x{y}"'
    assert kernel.result("%env RJK_TEST_EXPR") == "'6x{y}'"
    # A NUL is refused and set nowhere; an expression that does not compile is its error.
    kernel.error('%env RJK_TEST_EXPR={"a\\0b"}', "UsageError", "NUL")
    assert kernel.result('std::env::var("RJK_TEST_EXPR").unwrap()') == '"6x{y}"'
    kernel.error("%env RJK_TEST_EXPR={no_such_variable_here}", "CompilationError", "no_such_variable_here")
    assert kernel.result("%env RJK_TEST_EXPR") == "'6x{y}'"
    assert kernel.result("env_threads") == "3"


def test_env_errors_and_help(kernel):
    kernel.ok("let survives_magic_errors = 1;")
    content = kernel.error("%env NOT_SET_ANYWHERE_123", "UsageError")
    assert content["evalue"] == "Environment does not have key: NOT_SET_ANYWHERE_123"
    kernel.error("%env =oops", "UsageError")
    help_text = kernel.ok("%env?").stdout
    assert help_text.startswith("%env") and "Usage" in help_text
    assert kernel.result("survives_magic_errors") == "1"


def test_unknown_magic_and_lsmagic(kernel):
    cell = kernel.run("%frobnicate now")
    assert_error(cell, "UsageError", "%frobnicate", "%lsmagic")
    assert cell.msg_types.count("error") == 1
    listing = kernel.result("%lsmagic")
    assert "%env" in listing and "%lsmagic" in listing


def test_mixed_cell_runs_rust_then_magic(kernel):
    cell = kernel.ok('let mixed = 5;\nprintln!("before {mixed}");\n%env RJK_MIXED=1')
    assert cell.status == "ok"
    assert cell.stdout == "before 5\nenv: RJK_MIXED=1\n"
    assert kernel.result("mixed") == "5"


def test_compile_error_after_a_magic_points_at_the_cell_line(kernel):
    kernel.error('%env RJK_LINES=1\nlet ok = 1;\nlet bad: i32 = "x";', "CompilationError", "cell line 3")


TIMEIT_LINE = re.compile(
    r"^\d[\d.e+]* (ns|µs|ms|s) ± \d[\d.e+]* (ns|µs|ms|s) per loop "
    r"\(mean ± std\. dev\. of (\d+) runs?, ([\d,]+) loops? each\)$"
)


def test_timeit_in_the_lessons_mixed_cell(kernel):
    code = (
        "fn work(v: &Vec<f64>) -> f64 { v.iter().map(|x| x.tanh()).sum() }\n"
        "let data: Vec<f64> = (0..100).map(|x| x as f64).collect();\n"
        "work(&data);\n"
        "%timeit work(&data)"
    )
    line = kernel.ok(code).stdout.strip().splitlines()[-1]
    m = TIMEIT_LINE.match(line)
    assert m, line
    assert m.group(3) == "7"
    loops = int(m.group(4).replace(",", ""))
    assert str(loops).strip("0") == "1", loops  # a power of ten


def test_timeit_options_and_result_kept_for_later_cells(kernel):
    kernel.ok("let nums: Vec<u64> = (0..1000).collect();")
    line = kernel.ok("%timeit -n 100 -r 3 -p 4 nums.iter().sum::<u64>()").stdout.strip()
    m = TIMEIT_LINE.match(line)
    assert m and m.group(3) == "3" and m.group(4) == "100", line
    assert kernel.ok("let t = %timeit -o -q -n 50 -r 4 nums.iter().sum::<u64>()").stdout == ""
    assert kernel.result("(t.loops, t.repeat, t.all_runs.len())") == "(50, 4, 4)"
    assert kernel.result("t.best() <= t.average() && t.average() <= t.worst() && t.stdev() >= 0.0") == "true"
    assert kernel.result("t").startswith("<TimeitResult : ")
    kernel.ok("%timeit -q -v kept -n 10 -r 2 nums.len()")
    assert kernel.result("kept.repeat") == "2"
    kernel.error("%timeit -r 0 nums.len()", "UsageError")


def test_cell_timeit_with_setup(kernel):
    code = "%%timeit -n 20 -r 2 let mut v: Vec<u32> = Vec::with_capacity(64);\nfor i in 0..64 { v.push(i); }\nv.len()"
    line = kernel.ok(code).stdout.strip()
    m = TIMEIT_LINE.match(line)
    assert m and m.group(4) == "20", line


def test_time_magic(kernel):
    cell = kernel.ok("%time (0..1000u64).sum::<u64>()")
    text = cell.stdout
    assert re.match(r"^CPU times: user .+, sys: .+, total: .+\nWall time: .+\n$", text), text
    results = cell.results
    assert results and results[0]["data"]["text/plain"] == "499500"


def test_timeit_compile_error_points_at_the_magic_line(kernel):
    kernel.error("let ok_before = 1;\n%timeit no_such_function(1)", "CompilationError", "cell line 2")
    kernel.error("%timeit broken(", "UsageError")


def test_interrupt_during_timeit_stops_between_chunks_and_keeps_variables(fresh_kernel):
    k = fresh_kernel
    k.ok("let kept_through_timeit = 7;")
    # Interrupted once compiled and timing.
    code = "%timeit -n 1 -r 1000 std::thread::sleep(std::time::Duration::from_millis(50))"
    cell, took = interrupt_while_running(k, code, 4)
    assert took < 1.0, took
    assert_error(cell, "Interrupted", "Nothing was lost")
    assert k.result("kept_through_timeit") == "7"
    # A kept result: interrupted, a new variable is not defined, and one of that name from
    # before stays as it was.
    code = "let {} = %timeit -o -n 1 -r 1000 std::thread::sleep(std::time::Duration::from_millis(50))"
    cell, took = interrupt_while_running(k, code.format("t_new"), 4)
    assert took < 1.0, took
    assert_error(cell, "Interrupted", "Nothing was lost")
    assert cell.stderr == "", cell.stderr
    k.error("t_new", "CompilationError", "cannot find value `t_new`")
    k.ok("let t_kept = 5u8;")
    cell, took = interrupt_while_running(k, code.format("t_kept"), 4)
    assert_error(cell, "Interrupted", "Nothing was lost")
    assert k.result("t_kept") == "5"


def test_env_rustflags_reach_later_compiles(kernel):
    # The cells see the environment the kernel was started with, not the one of its own builds.
    for name in ("RUSTFLAGS", "RUSTC_WRAPPER", "RUSTUP_TOOLCHAIN"):
        started_with = f"Some({json.dumps(os.environ[name])}.to_string())" if name in os.environ else "None"
        assert kernel.result(f'std::env::var("{name}").ok() == {started_with}') == "true", name
    assert kernel.result("cfg!(rjk_bench_flag)") == "false"
    kernel.ok("let kept_across_rustflags = 3;")
    kernel.ok("%env RUSTFLAGS=--cfg rjk_bench_flag")
    assert kernel.result("cfg!(rjk_bench_flag)") == "true"
    assert kernel.result("kept_across_rustflags") == "3"
    assert kernel.result('std::env::var("RUSTFLAGS").unwrap()') == '"--cfg rjk_bench_flag"'
    kernel.ok("%env RUSTFLAGS=")
    assert kernel.result("cfg!(rjk_bench_flag)") == "false"


def kernels_cache():
    """The kernels' own cache directory, as the kernel finds it."""
    from pathlib import Path

    return Path(os.environ.get("RUST_JIT_KERNEL_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rust-jit-kernel")


def kept_cells_naming(path) -> list:
    """The kept cells (ARCHITECTURE.md: the cargo front's path) whose rustc call read `path`, in
    every slot of the kernels' cache: each entry's file (a new one when kept again) and the time it
    was last kept or given back."""
    return [((inputs, inputs.stat().st_ino), inputs.stat().st_mtime) for inputs in kernels_cache().glob("sessions/*/build/target/*/debug/rjk-cells/*/inputs")
            if str(path) in inputs.read_text()]


def test_cells_link_with_rust_lld_and_what_gccs_start_files_give_works(kernel):
    """Cells are linked by the toolchain's rust-lld without cc in front (evcxr_backend/cell_link.rs),
    on a machine with gcc as this one: the kernel tried it once and kept what it found, gcc's start
    files among it. What a cell links from std and the system libraries works: a thread-local's
    destructor, a panic unwound in the cell's code (its unwind tables), libm, a thread."""
    kept = [f.read_text() for f in kernels_cache().glob("cell-link/*")]
    assert kept and all("rust-lld" in text and "crtbeginS.o" in text for text in kept), kept
    kernel.ok("struct LinkNoisy(u32);\nimpl Drop for LinkNoisy { fn drop(&mut self) { println!(\"dropped {}\", self.0); } }\n"
              "fn link_t() -> u32 { thread_local! { static LINK_T: LinkNoisy = LinkNoisy(5); } LINK_T.with(|n| n.0) }")
    cell = kernel.ok("std::thread::spawn(link_t).join().unwrap()")
    assert cell.result == "5" and "dropped 5" in cell.stdout, cell
    assert kernel.result('std::thread::spawn(|| -> u8 { panic!("unwound in the cell") }).join().is_err()') == "true"
    assert kernel.result("(0.5f64).tanh() > 0.46 && (2.0f64).cbrt() < 1.26") == "true"


def test_a_cell_run_again_unchanged_comes_back_without_rustc(kernel):
    """evcxr numbers its builds, but the cell's function keeps one name and symbol from cell to cell
    (evcxr_backend/cell_fn.rs), so a cell run again with nothing changed in between is the same rustc
    call: a kept cell (given back, no new entry), with the same result."""
    kernel.ok("let again_v = vec![1, 2, 3];")
    first = kernel.ok("again_v.iter().sum::<i32>() * 2")
    entries = lambda: {p: p.stat().st_mtime_ns for p in kernels_cache().glob("sessions/*/build/target/*/debug/rjk-cells/*/inputs")}
    before = entries()
    time.sleep(0.05)
    second = kernel.ok("again_v.iter().sum::<i32>() * 2")
    after = entries()
    assert first.result == second.result == "12", (first, second)
    assert set(after) == set(before), "no new entry: not compiled again"
    assert any(after[p] > before[p] for p in before), "an entry given back"


def test_the_kernel_binary_is_position_dependent():
    """kernel/build.rs links the binary without PIE: it starts once per cell as the cargo front,
    and a PIE of its size spends ~1.3 ms of each start writing its relocations."""
    with open(BINARY, "rb") as binary:
        header = binary.read(18)
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[16:18], "little") == 2, "ET_EXEC"


def test_cells_run_again_after_a_restart_are_the_same_and_see_changed_files(tmp_path):
    """Restart and run all: the cells come back from the kept cells (no rustc), with the same
    results, errors, output and panics (at the cell's line); a file a cell includes, once changed, is read again. (The kernel
    is started here, not by a fixture: pytest's PYTEST_CURRENT_TEST, in its environment, is not
    the same in a fixture as in the test, and a call in another environment is another call.)"""
    with Kernel() as k:
        run_again_after_restarts(k, tmp_path / "words.txt")


def run_again_after_restarts(k: Kernel, data) -> None:
    data.write_text("one")

    def run_all() -> list:
        k.ok(f"let words = include_str!({json.dumps(str(data))});")
        return [k.result("words.len() * 10"), k.error('let n: u32 = "no";', "CompilationError", "mismatched types")["evalue"],
                k.ok('println!("{words}");').stdout,
                k.error('let _short = 1;\nassert!(words.len() > 100, "short");', "panic", "short", "cell line 2")["evalue"]]

    first = run_all()
    assert first[0] == "30" and first[2] == "one\n"
    kept = kept_cells_naming(data)
    assert kept, "the cells that read the file were kept"
    k.restart()
    restarted = time.time()
    assert run_all() == first
    replayed = kept_cells_naming(data)
    assert [entry for entry, _ in replayed] == [entry for entry, _ in kept], "no cell compiled again"
    assert all(mtime >= restarted - 1 for _, mtime in replayed), "each given back after the restart"
    data.write_text("three")
    k.restart()
    again = run_all()
    assert (again[0], again[1], again[2]) == ("50", first[1], "three\n")
