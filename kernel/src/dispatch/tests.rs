//! The dispatch core driven with in-memory messages and a fake backend.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use jupyter_protocol::{
    Channel, CompleteRequest, ExecuteRequest, HistoryRequest, InterruptRequest, IsCompleteRequest,
    JupyterMessage, JupyterMessageContent, KernelInfoRequest, ShutdownRequest, UnknownMessage,
};
use serde_json::{json, Value};

use super::*;
use crate::backend::Interrupter;
use crate::testing::Fake;

#[derive(Default)]
struct Recorder(Mutex<Vec<(Channel, JupyterMessage)>>);

impl Outbox for Recorder {
    fn send(&self, channel: Channel, message: JupyterMessage) {
        self.0.lock().unwrap().push((channel, message));
    }
}

impl Recorder {
    fn take(&self) -> Vec<(Channel, JupyterMessage)> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

struct NoInterrupt(Mutex<Vec<&'static str>>);
impl Interrupter for NoInterrupt {
    fn interrupt(&self) -> bool {
        self.0.lock().unwrap().push("interrupt");
        false
    }
    fn terminate(&self) {
        self.0.lock().unwrap().push("terminate");
    }
}

fn shell() -> (Shell<Fake>, Arc<Recorder>, Arc<Mutex<Vec<crate::testing::Call>>>) {
    let recorder = Arc::new(Recorder::default());
    let fake = Fake::default();
    let calls = fake.calls.clone();
    let shell = Shell::new(fake, recorder.clone());
    (shell, recorder, calls)
}

/// The code of each backend call.
fn codes(calls: &Mutex<Vec<crate::testing::Call>>) -> Vec<String> {
    calls.lock().unwrap().iter().map(|c| c.code.clone()).collect()
}

fn execute(code: &str) -> JupyterMessage {
    JupyterMessage::new(ExecuteRequest::new(code.to_string()), None)
}

/// (channel, msg_type, content) of each message, with the parent checked.
fn summary(messages: &[(Channel, JupyterMessage)], parent: &JupyterMessage) -> Vec<(String, String, Value)> {
    messages
        .iter()
        .map(|(channel, m)| {
            assert_eq!(m.parent_header.as_ref().unwrap().msg_id, parent.header.msg_id);
            assert_eq!(m.header.version, "5.4");
            let content = serde_json::to_value(&m.content).unwrap();
            (format!("{channel:?}"), m.header.msg_type.clone(), content)
        })
        .collect()
}

/// Handles `request` on the shell; returns what it produced (parents checked).
fn ask(shell: &mut Shell<Fake>, out: &Recorder, request: JupyterMessage) -> Vec<(String, String, Value)> {
    shell.handle(&request);
    summary(&out.take(), &request)
}

fn types(summary: &[(String, String, Value)]) -> Vec<String> {
    summary.iter().map(|(c, t, _)| format!("{c}:{t}")).collect()
}

#[test]
fn execute_publishes_the_whole_iopub_sequence() {
    let (mut shell, out, _) = shell();
    let request = execute("print");
    assert_eq!(shell.handle(&request), Flow::Continue);
    let s = summary(&out.take(), &request);
    assert_eq!(
        types(&s),
        [
            "IOPub:status", "IOPub:execute_input", "IOPub:stream", "IOPub:stream",
            "IOPub:execute_result", "Shell:execute_reply", "IOPub:status"
        ]
    );
    assert_eq!(s[0].2, json!({"execution_state": "busy"}));
    assert_eq!(s[1].2, json!({"code": "print", "execution_count": 1}));
    assert_eq!(s[2].2, json!({"name": "stdout", "text": "hello\n"}));
    assert_eq!(s[3].2, json!({"name": "stderr", "text": "careful\n"}));
    assert_eq!(s[4].2["data"], json!({"text/plain": "42"}));
    assert_eq!(s[4].2["execution_count"], json!(1));
    assert_eq!(s[4].2["transient"], json!({}));
    assert_eq!(s[5].2["status"], json!("ok"));
    assert_eq!(s[5].2["execution_count"], json!(1));
    assert_eq!(s[6].2, json!({"execution_state": "idle"}));
}

#[test]
fn execution_count_starts_at_one_and_skips_silent_and_unstored() {
    let (mut shell, out, _) = shell();
    shell.handle(&execute("a"));
    out.take();
    let mut silent = execute("b");
    if let JupyterMessageContent::ExecuteRequest(r) = &mut silent.content {
        r.silent = true;
    }
    shell.handle(&silent);
    let silent_msgs = summary(&out.take(), &silent);
    // Silent: only status and the reply.
    assert_eq!(types(&silent_msgs), ["IOPub:status", "Shell:execute_reply", "IOPub:status"]);
    let mut unstored = execute("c");
    if let JupyterMessageContent::ExecuteRequest(r) = &mut unstored.content {
        r.store_history = false;
    }
    shell.handle(&unstored);
    out.take();
    let third = execute("d");
    shell.handle(&third);
    let s = summary(&out.take(), &third);
    assert_eq!(s[1].2["execution_count"], json!(2));
}

/// Executes `code` in a fresh shell; checks that one `middle` message (an IOPub type) came
/// between execute_input and the reply, and returns everything.
fn execute_one(code: &str, middle: &str) -> Vec<(String, String, Value)> {
    let (mut shell, out, _) = shell();
    let s = ask(&mut shell, &out, execute(code));
    let middle = format!("IOPub:{middle}");
    assert_eq!(types(&s), ["IOPub:status", "IOPub:execute_input", middle.as_str(), "Shell:execute_reply", "IOPub:status"]);
    s
}

#[test]
fn display_data_is_published_as_display_data() {
    let s = execute_one("html", "display_data");
    assert_eq!(s[2].2["data"], json!({"text/html": "<b>x</b>"}));
}

#[test]
fn an_error_gives_error_status_and_an_error_message() {
    let s = execute_one("fail", "error");
    assert_eq!(s[2].2["ename"], json!("CompilationError"));
    assert_eq!(s[3].2["status"], json!("error"));
    assert_eq!(s[3].2["ename"], json!("CompilationError"));
    assert_eq!(s[3].2["evalue"], json!("mismatched types"));
}

#[test]
fn stop_on_error_aborts_queued_executes_but_answers_other_requests() {
    let (shell, out, calls) = shell();
    let (tx, rx) = mpsc::channel();
    let fail = execute("fail");
    let queued = execute("never");
    let info = JupyterMessage::new(IsCompleteRequest { code: "1 + 1".into() }, None);
    let after = execute("after");
    for m in [&fail, &queued, &info] {
        tx.send((*m).clone()).unwrap();
    }
    drop(tx);
    shell.run(rx);
    let all = out.take();
    let of = |parent: &JupyterMessage| -> Vec<(Channel, JupyterMessage)> {
        all.iter().filter(|(_, m)| m.parent_header.as_ref().unwrap().msg_id == parent.header.msg_id).cloned().collect()
    };
    let aborted = summary(&of(&queued), &queued);
    assert_eq!(types(&aborted), ["IOPub:status", "Shell:execute_reply", "IOPub:status"]);
    assert_eq!(aborted[1].2["status"], json!("aborted"));
    assert_eq!(types(&summary(&of(&info), &info)), ["IOPub:status", "Shell:is_complete_reply", "IOPub:status"]);
    assert_eq!(codes(&calls), ["fail"]);

    // After the queue is drained, executes run again.
    let (mut shell, _out, calls) = self::shell();
    shell.handle(&fail);
    shell.handle(&after);
    assert_eq!(codes(&calls), ["fail", "after"]);
}

#[test]
fn stop_on_error_false_runs_queued_cells() {
    let (shell, _out, calls) = shell();
    let (tx, rx) = mpsc::channel();
    let mut fail = execute("fail");
    if let JupyterMessageContent::ExecuteRequest(r) = &mut fail.content {
        r.stop_on_error = false;
    }
    tx.send(fail).unwrap();
    tx.send(execute("next")).unwrap();
    drop(tx);
    shell.run(rx);
    assert_eq!(codes(&calls), ["fail", "next"]);
}

#[test]
fn kernel_info_reply_describes_rust() {
    // The transport hands kernel_info_request to `Control`, from either channel.
    let recorder = Arc::new(Recorder::default());
    let control = Control::new(recorder.clone(), Arc::new(NoInterrupt(Mutex::new(Vec::new()))), kernel_info("1.95.0"));
    let request = JupyterMessage::new(KernelInfoRequest {}, None);
    control.handle(Channel::Shell, &request);
    let s = summary(&recorder.take(), &request);
    assert_eq!(types(&s), ["IOPub:status", "Shell:kernel_info_reply", "IOPub:status"]);
    let info = &s[1].2;
    assert_eq!(info["protocol_version"], json!("5.4"));
    assert_eq!(
        info["language_info"],
        json!({"name": "rust", "version": "1.95.0", "mimetype": "text/rust", "file_extension": ".rs",
               "pygments_lexer": "rust", "codemirror_mode": "rust"})
    );
    assert!(info["banner"].as_str().unwrap().contains("Rust"));
    assert!(!info["help_links"].as_array().unwrap().is_empty());
}

#[test]
fn complete_converts_code_points_and_bytes() {
    let (mut shell, out, _) = shell();
    // "é" is two bytes, one code point: cursor 4 (code points) is byte 5.
    let s = ask(&mut shell, &out, JupyterMessage::new(CompleteRequest { code: "é.le".into(), cursor_pos: 4 }, None));
    assert_eq!(s[1].2["cursor_start"], json!(3));
    assert_eq!(s[1].2["cursor_end"], json!(4));
    assert_eq!(s[1].2["matches"], json!(["len"]));
}

#[test]
fn is_complete_history_comm_info_and_unknown() {
    let (mut shell, out, _) = shell();
    let s = ask(&mut shell, &out, JupyterMessage::new(IsCompleteRequest { code: "fn f() {".into() }, None));
    assert_eq!(s[1].2, json!({"status": "incomplete", "indent": "    "}));

    shell.handle(&execute("x"));
    out.take();
    let s = ask(&mut shell, &out, JupyterMessage::new(HistoryRequest::Tail { n: 5, output: false, raw: true }, None));
    assert_eq!(s[1].2["history"], json!([[1, 1, "x"]]));

    let s = ask(&mut shell, &out, JupyterMessage::new(jupyter_protocol::CommInfoRequest { target_name: None }, None));
    assert_eq!(s[1].2["comms"], json!({}));

    let content = JupyterMessageContent::from_type_and_content("frobnicate_request", json!({})).unwrap();
    let s = ask(&mut shell, &out, JupyterMessage::new(content, None));
    assert_eq!(types(&s), ["IOPub:status", "Shell:frobnicate_reply", "IOPub:status"]);
    assert_eq!(s[1].2["status"], json!("error"));
}

#[test]
fn control_interrupts_and_shuts_down() {
    let recorder = Arc::new(Recorder::default());
    let interrupter = Arc::new(NoInterrupt(Mutex::new(Vec::new())));
    let control = Control::new(recorder.clone(), interrupter.clone(), kernel_info("1.95.0"));
    let request = JupyterMessage::new(InterruptRequest {}, None);
    assert_eq!(control.handle(Channel::Control, &request), Flow::Continue);
    let s = summary(&recorder.take(), &request);
    assert_eq!(types(&s), ["IOPub:status", "Control:interrupt_reply", "IOPub:status"]);
    let request = JupyterMessage::new(ShutdownRequest { restart: true }, None);
    assert_eq!(control.handle(Channel::Control, &request), Flow::Shutdown { restart: true });
    let s = summary(&recorder.take(), &request);
    assert_eq!(s[1].2, json!({"restart": true, "status": "ok"}));
    let request = JupyterMessage::new(KernelInfoRequest {}, None);
    control.handle(Channel::Shell, &request);
    let s = summary(&recorder.take(), &request);
    assert_eq!(types(&s), ["IOPub:status", "Shell:kernel_info_reply", "IOPub:status"]);
    assert_eq!(*interrupter.0.lock().unwrap(), ["interrupt", "terminate"]);
}

#[test]
fn shutdown_on_shell_stops_the_loop() {
    let (shell, _out, _) = shell();
    let (tx, rx) = mpsc::channel();
    tx.send(JupyterMessage::new(ShutdownRequest { restart: false }, None)).unwrap();
    tx.send(execute("never")).unwrap();
    assert_eq!(shell.run(rx), Flow::Shutdown { restart: false });
}

#[test]
fn malformed_request_gets_an_error_reply() {
    let (mut shell, out, _) = shell();
    let content = JupyterMessageContent::UnknownMessage(UnknownMessage {
        msg_type: "complete_request".into(),
        content: json!({ crate::wire::MALFORMED: "invalid type: integer" }),
    });
    let s = ask(&mut shell, &out, JupyterMessage::new(content, None));
    assert_eq!(types(&s), ["IOPub:status", "Shell:complete_reply", "IOPub:status"]);
    assert_eq!(s[1].2["ename"], json!("MalformedMessage"));
}

#[test]
fn question_mark_name_pages_the_documentation() {
    assert_eq!(help_request("?std::mem::swap"), Some("std::mem::swap"));
    assert_eq!(help_request("  ? Vec::new \n"), Some("Vec::new"));
    assert_eq!(help_request("x?"), None);
    assert_eq!(help_request("?"), None);
    assert_eq!(help_request("? a + b"), None);
    let (mut shell, out, calls) = shell();
    let s = ask(&mut shell, &out, execute("?Vec::len"));
    assert_eq!(types(&s), ["IOPub:status", "IOPub:execute_input", "Shell:execute_reply", "IOPub:status"]);
    assert_eq!(s[2].2["payload"], json!([{"source": "page", "data": {"text/plain": "fn len(&self) -> usize"}, "start": 0}]));
    assert!(calls.lock().unwrap().is_empty(), "nothing was executed");
}

#[test]
fn a_panicking_backend_gives_an_error_and_the_shell_goes_on() {
    let (mut shell, out, _) = shell();
    let s = ask(&mut shell, &out, execute("bug"));
    assert_eq!(s[3].2["status"], json!("error"));
    assert_eq!(s[3].2["ename"], json!("InternalError"));
    let next = execute("1");
    shell.handle(&next);
    let s = summary(&out.take(), &next);
    assert_eq!(s[3].2["status"], json!("ok"));
}

#[test]
fn a_mixed_cell_runs_rust_then_the_magic() {
    let (mut shell, out, calls) = shell();
    let s = ask(&mut shell, &out, execute("let a = 1;\n%lsmagic"));
    assert_eq!(codes(&calls), ["let a = 1;"]);
    assert_eq!(types(&s), ["IOPub:status", "IOPub:execute_input", "IOPub:execute_result", "Shell:execute_reply", "IOPub:status"]);
    assert!(s[2].2["data"]["text/plain"].as_str().unwrap().contains("%env"));
}

#[test]
fn an_unknown_magic_is_a_usage_error_and_runs_nothing_after_it() {
    let (mut shell, out, calls) = shell();
    let s = ask(&mut shell, &out, execute("%nope\nlet b = 2;"));
    assert!(calls.lock().unwrap().is_empty());
    assert_eq!(s[3].2["status"], json!("error"));
    assert_eq!(s[3].2["ename"], json!("UsageError"));
    assert!(s[3].2["evalue"].as_str().unwrap().contains("%nope"));
}

/// Runs `requests` through `shell`, the first sent `delay` after the start (so the shell finds none
/// waiting), the channel open until all are handled.
fn run_later(shell: Shell<Fake>, requests: Vec<JupyterMessage>, delay_ms: u64) {
    let (tx, rx) = mpsc::channel();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        for r in requests {
            tx.send(r).unwrap();
        }
    });
    shell.run(rx);
    sender.join().unwrap();
}

#[test]
fn the_backend_warms_up_once_at_the_first_idle_moment() {
    // Nothing waiting at start: the warm-up first, then the requests that came meanwhile.
    let (shell, _out, calls) = shell();
    run_later(shell, vec![execute("1"), execute("2")], 50);
    assert_eq!(codes(&calls), ["<warm-up>", "1", "2"]);
    // A cell that comes first does the work itself: no warm-up after it.
    let (shell, _out, calls) = self::shell();
    let (tx, rx) = mpsc::channel();
    tx.send(execute("first")).unwrap();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        tx.send(execute("second")).unwrap();
    });
    shell.run(rx);
    sender.join().unwrap();
    assert_eq!(codes(&calls), ["first", "second"]);
}

#[test]
fn an_interrupt_that_stops_the_warm_up_stops_the_cell_that_waited_for_it() {
    let recorder = Arc::new(Recorder::default());
    // The fake's warm-up takes 100 ms and reports an interrupt; the first cell is sent during it.
    let fake = Fake { interrupt_warm_up: true, ..Fake::default() };
    let calls = fake.calls.clone();
    let shell = Shell::new(fake, recorder.clone());
    let (tx, rx) = mpsc::channel();
    let waiting = execute("waiting");
    let (w, n) = (waiting.clone(), execute("next"));
    let sender = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(30));
        tx.send(w).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        tx.send(n).unwrap();
    });
    shell.run(rx);
    sender.join().unwrap();
    assert_eq!(codes(&calls), ["<warm-up>", "next"], "the waiting cell did not run; the next one did");
    let all = recorder.take();
    let reply = all
        .iter()
        .find(|(c, m)| matches!(c, Channel::Shell) && m.parent_header.as_ref().is_some_and(|p| p.msg_id == waiting.header.msg_id))
        .map(|(_, m)| serde_json::to_value(&m.content).unwrap())
        .expect("the waiting cell's reply");
    assert_eq!((reply["status"].as_str(), reply["ename"].as_str()), (Some("error"), Some("Interrupted")), "{reply}");
}
