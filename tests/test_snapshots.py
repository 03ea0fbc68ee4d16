"""Nothing a learner typed is lost: a cell whose process dies (segfault, abort, stack overflow,
`process::exit`, a huge allocation, running out of memory, SIGKILL) or that is interrupted gives back
every variable from before it (the user process's snapshot takes over); stdin reads go to the
frontend (or end at once without one)."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from kernel_client import Kernel, assert_error

SLEEP = "std::thread::sleep(std::time::Duration::from_millis(200));"


@pytest.fixture(scope="module")
def k():
    with Kernel() as kernel:
        kernel.ok('let kept = vec![1, 2, 3];\nlet mut counter = 41;\nfn survivor() -> i32 { 9 }')
        yield kernel


def still_all_there(k: Kernel) -> None:
    assert k.result("format!(\"{:?} {} {}\", kept, counter, survivor())") == '"[1, 2, 3] 41 9"'


CRASHES = {
    "segfault": ("unsafe { std::ptr::null_mut::<u64>().write_volatile(1) };", "segmentation fault (SIGSEGV)"),
    "abort": ("std::process::abort();", "an abort (SIGABRT)"),
    "stack_overflow": (
        "fn down(n: u64) -> u64 { let pad = [n; 64]; std::hint::black_box(&pad); down(n + 1) + pad[3] }\ndown(0);",
        "overflowed its stack",
    ),
    "exit": ("std::process::exit(3);", "exited with status 3"),
    "huge_allocation": ("let huge: Vec<u8> = Vec::with_capacity(16 << 40);\nhuge.len()", "ran out of memory (memory allocation of 17592186044416 bytes failed)"),
    # The address space limit is set inside the cell, so the snapshot (taken before it) has none.
    "out_of_memory_rlimit": (
        "unsafe { let lim = libc_rlimit { cur: 1 << 30, max: 1 << 30 }; setrlimit(9, &lim); }\n"
        "let mut grow: Vec<Vec<u8>> = Vec::new();\nfor _ in 0..64 { grow.push(vec![1u8; 64 << 20]); }",
        "ran out of memory",
    ),
}

RLIMIT_ITEMS = "#[repr(C)] struct libc_rlimit { cur: u64, max: u64 }\nunsafe extern \"C\" { fn setrlimit(resource: i32, rlim: *const libc_rlimit) -> i32; }"


@pytest.mark.parametrize("kind", list(CRASHES))
def test_a_crash_keeps_every_variable(k, kind):
    code, cause = CRASHES[kind]
    if kind == "out_of_memory_rlimit":
        k.ok(RLIMIT_ITEMS)
    cell = k.run(f'fn made_in_{kind}() -> i32 {{ 7 }}\ncounter += 1;\nlet made_here = 5;\nprintln!("before the crash");\n{code}')
    assert_error(cell, "ProcessCrashed", cause, "every variable is kept")
    assert "before the crash" in cell.stdout
    still_all_there(k)
    # Functions the cell defined are kept, as after a panic.
    assert k.result(f"made_in_{kind}()") == "7"
    # The cell's own variable is not there: the session is as it was before it.
    assert_error(k.run("made_here"), "CompilationError")


def test_a_panic_in_a_spawned_thread_is_an_error_of_the_cell_that_joins_it(k):
    cell = k.run('counter += 1;\nstd::thread::spawn(|| panic!("worker failed")).join().unwrap();')
    assert_error(cell, "panic", "called `Result::unwrap()`")
    assert "worker failed" in cell.stderr
    # A panic unwinds: the cell's changes before it stay, as in Rust.
    assert k.result("counter") == "42"
    k.ok("counter -= 1;")
    still_all_there(k)


def user_pid(k: Kernel) -> int:
    return int(k.result("std::process::id()"))


def test_sigkill_from_outside_is_reported_as_the_out_of_memory_killer(k):
    pid = user_pid(k)
    msg_id = k.kc.execute(f'counter += 1;\nloop {{ {SLEEP} }}')
    time.sleep(2.5)
    os.kill(pid, signal.SIGKILL)
    cell = k.wait(msg_id, timeout=30)
    assert_error(cell, "ProcessCrashed", "SIGKILL, most likely from the out-of-memory killer", "every variable is kept")
    still_all_there(k)
    # The snapshot is the user process now; the next crash is caught as well.
    assert user_pid(k) != pid
    assert_error(k.run("std::process::abort();"), "ProcessCrashed", "SIGABRT")
    still_all_there(k)


def test_a_process_killed_between_cells_is_replaced_by_its_snapshot(k):
    pid = user_pid(k)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    still_all_there(k)
    assert user_pid(k) != pid


def test_an_interrupted_endless_loop_keeps_every_variable(k):
    msg_id = k.kc.execute("counter += 1;\nloop { std::hint::black_box(counter); }")
    time.sleep(2.5)
    at = time.perf_counter()
    k.km.interrupt_kernel()
    cell = k.wait(msg_id, timeout=30)
    assert cell.reply_at - at < 2.0, cell.reply_at - at
    assert_error(cell, "Interrupted", "Nothing was lost", "every variable")
    still_all_there(k)


def answer_inputs(k: Kernel, answers: list[str], prompts: list[dict]) -> threading.Thread:
    def serve():
        for value in answers:
            msg = k.kc.get_stdin_msg(timeout=60)
            assert msg["msg_type"] == "input_request"
            prompts.append(msg["content"])
            k.kc.input(value)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_stdin_asks_the_frontend_when_the_request_allows_it(k):
    prompts: list[dict] = []
    thread = answer_inputs(k, ["Ada", "first", "second", "s3cret"], prompts)
    code = (
        'use std::io::{BufRead, Write};\n'
        'print!("Name: "); std::io::stdout().flush().unwrap();\n'
        'let mut name = String::new();\nstd::io::stdin().read_line(&mut name).unwrap();\n'
        'let two: Vec<String> = std::io::stdin().lock().lines().take(2).map(|l| l.unwrap()).collect();\n'
        'let secret = jit::input::password("Password: ").unwrap();\n'
        'format!("{}|{:?}|{}", name.trim(), two, secret.len())'
    )
    cell = k.run(code, allow_stdin=True)
    thread.join(5)
    assert cell.status == "ok", cell.describe()
    assert cell.result == '"Ada|[\\"first\\", \\"second\\"]|6"'
    assert "Name: " in cell.stdout
    assert [p["password"] for p in prompts] == [False, False, False, True]
    assert prompts[-1]["prompt"] == "Password: "


def test_without_stdin_a_read_is_end_of_file_at_once(k):
    code = 'let mut line = String::new();\nlet n = std::io::stdin().read_line(&mut line).unwrap();\nlet rest = std::io::read_to_string(std::io::stdin()).unwrap();\n(n, rest.len())'
    started = time.perf_counter()
    cell = k.ok(code, allow_stdin=False)
    assert time.perf_counter() - started < 30
    assert cell.result == "(0, 0)"
    assert cell.stderr.count("allow_stdin false") == 1
    # Once per session.
    assert "allow_stdin" not in k.ok(code, allow_stdin=False).stderr


def test_an_interrupt_while_waiting_for_input_keeps_every_variable(k):
    msg_id = k.kc.execute("counter += 1;\nlet mut line = String::new();\nstd::io::stdin().read_line(&mut line).unwrap();", allow_stdin=True)
    request = k.kc.get_stdin_msg(timeout=60)
    assert request["msg_type"] == "input_request"
    k.km.interrupt_kernel()
    cell = k.wait(msg_id, timeout=30)
    assert_error(cell, "Interrupted", "Nothing was lost")
    still_all_there(k)


def test_evcxr_commands_that_would_break_the_session_are_refused(k):
    k.error(":allow_static_linking 0", "UnsupportedCommand", "Nothing ran")
    k.error(":opt 2\nlet x_opt = 1;", "UnsupportedCommand", "opt-level 0")
    still_all_there(k)
