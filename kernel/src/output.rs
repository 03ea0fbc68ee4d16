//! Turns the user process's stdout/stderr lines into live outputs: [`pump_output`] reads them
//! while a cell runs (with cargo's progress lines from the kernel's own stderr), batches what
//! is waiting, and feeds an [`OutputPump`], which calls the sink.
//!
//! Recognised on the way:
//! - rich displays: `RJK_BEGIN_DISPLAY <mime>` ... `RJK_END_DISPLAY` on stdout becomes one
//!   `display_data` (the lines between are the data, joined with newlines);
//! - `RJK_CLEAR_OUTPUT [wait]` on stdout becomes `clear_output`;
//! - a panic on the cell's thread: the session's panic hook (`evcxr_backend::prelude::PANIC_HOOK`) reports it
//!   as one `RJK_PANIC location<TAB>message` line on stdout, which is taken out and kept, so
//!   the kernel can report the cell as failed (evcxr catches the unwind and would otherwise
//!   report success). Rust's default report on stderr (`thread '<name>' (TID) panicked at
//!   ...`, TID the user process's main thread) is recognised too, for a cell that replaced the
//!   hook. Panics on other threads stay ordinary stderr;
//! - what the user process says about itself (`user_process`): a snapshot took over
//!   (`RJK_RESTORED`), a cell ran without one (`RJK_NO_SNAPSHOT`), the end of a prompt's line
//!   before an input request (taken out; the prompt stays on its line); and Rust's last words
//!   on stderr before a process dies ([`LastWords`]).

use std::time::Duration;

use crossbeam_channel::{never, select, Receiver};

use crate::backend::{LiveOutput, MimeBundle, OutputSink};
pub use crate::crash::LastWords;
use crate::user_process::stdin::{unescape, PROMPT_END};
use crate::user_process::{monotonic_ns, CELL_END, NO_SNAPSHOT, RESTORED, TOOK_OVER};

/// How long stderr must stay quiet after a cell that did not run ends before its output is
/// complete (cargo's lines from the kernel's own stderr are read by another thread).
const STDERR_SETTLE: Duration = Duration::from_millis(5);
/// How long, after a cell that ran in a user process still there, stderr may stay quiet before
/// the user process's end-of-cell line ([`CELL_END`]: everything the cell wrote to stderr comes
/// before it, and the snapshot for the next cell is taken): past it (an interrupted build, which
/// evcxr reports as it reports a cell's own error; a process killed after the cell ended), the
/// output is taken as complete.
const CELL_END_WAIT: Duration = Duration::from_millis(200);

pub const BEGIN_DISPLAY: &str = "RJK_BEGIN_DISPLAY ";
pub const END_DISPLAY: &str = "RJK_END_DISPLAY";
/// `RJK_CLEAR_OUTPUT` (or `RJK_CLEAR_OUTPUT wait`) on its own line clears the cell's output.
pub const CLEAR_OUTPUT: &str = "RJK_CLEAR_OUTPUT";
/// `RJK_PANIC location<TAB>message` (newlines and backslashes escaped): the session's panic
/// hook reports a panic on the cell's thread this way.
pub const PANIC: &str = "RJK_PANIC ";

/// If `line` starts a panic report on the main thread (`main_tid`), its location.
fn main_thread_panic(line: &str, main_tid: Option<u32>) -> Option<String> {
    let rest = line.strip_prefix("thread '")?;
    let (name, rest) = rest.split_once('\'')?;
    let (tid, rest) = match rest.strip_prefix(" (") {
        Some(r) => {
            let (tid, r) = r.split_once(')')?;
            (tid.parse::<u32>().ok(), r)
        }
        None => (None, rest),
    };
    let location = rest.strip_prefix(" panicked at ")?;
    let on_main = match (tid, main_tid) {
        (Some(tid), Some(main)) => tid == main,
        _ => name == "main",
    };
    on_main.then(|| location.trim_end_matches(':').to_string())
}

fn two_pids(text: &str) -> Option<(u32, u32)> {
    let mut pids = text.split(' ').filter_map(|p| p.parse::<u32>().ok());
    Some((pids.next()?, pids.next()?))
}

/// A panic seen on the cell's main thread.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Panic {
    /// `src/lib.rs:LINE:COL` in the generated crate.
    pub location: String,
    pub message: String,
}

enum PanicState {
    None,
    Message,
    Backtrace,
}

pub struct OutputPump<'a> {
    sink: OutputSink<'a>,
    main_tid: Option<u32>,
    stdout: String,
    stderr: String,
    display: Option<(String, Vec<String>)>,
    state: PanicState,
    panic: Option<Panic>,
    /// An empty stderr line held back: the panic hook writes one before its report.
    pending_blank: bool,
    report: Report,
}

/// What the pump learned about the cell, besides its output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// A panic on the cell's thread.
    pub panic: Option<Panic>,
    /// The process that ran the cell died (the first pid); its snapshot (the second) took over.
    pub restored: Option<(u32, u32)>,
    /// The same, between cells (the cell itself ran).
    pub took_over: Option<(u32, u32)>,
    /// The cell ran without a snapshot, and why.
    pub no_snapshot: Option<String>,
    pub last_words: LastWords,
}

impl<'a> OutputPump<'a> {
    /// `main_tid`: the thread id of the user process's main thread (its pid).
    pub fn new(sink: OutputSink<'a>, main_tid: Option<u32>) -> Self {
        OutputPump { sink, main_tid, stdout: String::new(), stderr: String::new(), display: None, state: PanicState::None, panic: None, pending_blank: false, report: Report::default() }
    }

    pub fn stdout_line(&mut self, line: &str) {
        if let Some((_, lines)) = &mut self.display {
            if line == END_DISPLAY {
                let (mime, lines) = self.display.take().unwrap();
                self.flush();
                (self.sink)(LiveOutput::Display(MimeBundle::from([(mime, lines.join("\n"))])));
            } else {
                lines.push(line.to_string());
            }
        } else if let Some(report) = line.strip_prefix(PANIC) {
            let (location, message) = report.split_once('\t').unwrap_or(("", report));
            self.panic = Some(Panic { location: location.to_string(), message: unescape(message) });
        } else if let Some(pids) = line.strip_prefix(RESTORED) {
            self.report.restored = two_pids(pids);
        } else if let Some(pids) = line.strip_prefix(TOOK_OVER) {
            self.report.took_over = two_pids(pids);
        } else if let Some(why) = line.strip_prefix(NO_SNAPSHOT) {
            self.report.no_snapshot = Some(why.to_string());
        } else if let Some(prompt) = line.strip_suffix(PROMPT_END) {
            self.stdout.push_str(prompt);
        } else if let Some(mime) = line.strip_prefix(BEGIN_DISPLAY) {
            self.display = Some((mime.trim().to_string(), Vec::new()));
        } else if let Some(rest) = line.strip_prefix(CLEAR_OUTPUT).filter(|r| r.is_empty() || *r == " wait") {
            self.flush();
            (self.sink)(LiveOutput::Clear { wait: !rest.is_empty() });
        } else {
            self.stdout.push_str(line);
            self.stdout.push('\n');
        }
    }

    pub fn stderr_line(&mut self, line: &str) {
        self.report.last_words.hear(line);
        match self.state {
            PanicState::None => {
                if line.is_empty() && !self.pending_blank {
                    self.pending_blank = true;
                    return;
                }
                let blank = std::mem::take(&mut self.pending_blank);
                if let Some(location) = main_thread_panic(line, self.main_tid) {
                    self.state = PanicState::Message;
                    self.panic = Some(Panic { location, message: String::new() });
                    return;
                }
                if blank {
                    self.stderr.push('\n');
                }
            }
            PanicState::Message => {
                if line.starts_with("note: run with `RUST_BACKTRACE") {
                    self.state = PanicState::None;
                } else if line == "stack backtrace:" {
                    self.state = PanicState::Backtrace;
                } else if let Some(panic) = &mut self.panic {
                    if !panic.message.is_empty() {
                        panic.message.push('\n');
                    }
                    panic.message.push_str(line);
                }
                return;
            }
            PanicState::Backtrace => {
                if line.starts_with("note: Some details are omitted") {
                    self.state = PanicState::None;
                    return;
                }
                if line.starts_with(' ') {
                    return;
                }
                self.state = PanicState::None;
            }
        }
        self.stderr.push_str(line);
        self.stderr.push('\n');
    }

    /// Sends what is buffered, stdout first.
    pub fn flush(&mut self) {
        if !self.stdout.is_empty() {
            (self.sink)(LiveOutput::Stdout(std::mem::take(&mut self.stdout)));
        }
        if !self.stderr.is_empty() {
            (self.sink)(LiveOutput::Stderr(std::mem::take(&mut self.stderr)));
        }
    }

    /// Flushes everything (an unterminated display is shown as plain stdout) and returns
    /// what the pump learned (the panic, if the cell panicked).
    pub fn finish(mut self) -> Report {
        if std::mem::take(&mut self.pending_blank) {
            self.stderr.push('\n');
        }
        if let Some((mime, lines)) = self.display.take() {
            self.stdout.push_str(&format!("{BEGIN_DISPLAY}{mime}\n"));
            for line in lines {
                self.stdout.push_str(&line);
                self.stdout.push('\n');
            }
        }
        self.flush();
        Report { panic: self.panic.take(), ..self.report }
    }
}


/// Reads the user process's output until the cell ends, batching what is available. `done`
/// says when evcxr is done with the cell, and whether the cell ran in the user process (then its
/// stderr is complete with the user process's end-of-cell line, else when it has been quiet
/// for [`STDERR_SETTLE`]).
pub fn pump_output(
    sink: OutputSink<'_>,
    main_tid: Option<u32>,
    stdout: &Receiver<String>,
    stderr: &Receiver<String>,
    host: &Receiver<String>,
    done: &Receiver<bool>,
) -> Report {
    let started = monotonic_ns();
    let mut pump = OutputPump::new(sink, main_tid);
    let (mut out_rx, mut err_rx, mut host_rx) = (stdout.clone(), stderr.clone(), host.clone());
    let (mut finishing, mut ran, mut ended) = (false, false, false);
    // A line of the user process's stderr; its end-of-cell line (this cell's, not one left from
    // a cell nobody pumped) is not output.
    let stderr_line = |pump: &mut OutputPump, line: &str| match line.strip_prefix(CELL_END) {
        Some(at) => at.parse::<u64>().is_ok_and(|at| at >= started),
        None => {
            pump.stderr_line(line);
            false
        }
    };
    loop {
        if finishing && ended {
            break;
        }
        let mut got = false;
        if finishing {
            let quiet = if ran { CELL_END_WAIT } else { STDERR_SETTLE };
            select! {
                recv(out_rx) -> l => match l { Ok(l) => { pump.stdout_line(&l); got = true } Err(_) => out_rx = never() },
                recv(err_rx) -> l => match l { Ok(l) => { ended |= stderr_line(&mut pump, &l); got = true } Err(_) => err_rx = never() },
                recv(host_rx) -> l => match l { Ok(l) => { pump.stderr_line(&l); got = true } Err(_) => host_rx = never() },
                default(quiet) => {}
            }
            if !got {
                break;
            }
        } else {
            select! {
                recv(out_rx) -> l => match l { Ok(l) => pump.stdout_line(&l), Err(_) => out_rx = never() },
                recv(err_rx) -> l => match l { Ok(l) => ended |= stderr_line(&mut pump, &l), Err(_) => err_rx = never() },
                recv(host_rx) -> l => match l { Ok(l) => pump.stderr_line(&l), Err(_) => host_rx = never() },
                recv(done) -> r => {
                    finishing = true;
                    ran = r.unwrap_or(false);
                }
            }
        }
        // Take whatever else is already waiting, then send it as one message per stream.
        for _ in 0..10_000 {
            if let Ok(l) = out_rx.try_recv() {
                pump.stdout_line(&l);
            } else if let Ok(l) = err_rx.try_recv() {
                ended |= stderr_line(&mut pump, &l);
            } else if let Ok(l) = host_rx.try_recv() {
                pump.stderr_line(&l);
            } else {
                break;
            }
        }
        pump.flush();
    }
    pump.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn run(stdout: &[&str], stderr: &[&str]) -> (Vec<LiveOutput>, Option<Panic>) {
        let seen = Mutex::new(Vec::new());
        let sink = |o: LiveOutput| seen.lock().unwrap().push(o);
        let mut pump = OutputPump::new(&sink, Some(77));
        for l in stdout {
            pump.stdout_line(l);
        }
        for l in stderr {
            pump.stderr_line(l);
        }
        let panic = pump.finish().panic;
        (seen.into_inner().unwrap(), panic)
    }

    #[test]
    fn what_the_user_process_says_about_itself() {
        let seen = Mutex::new(Vec::new());
        let sink = |o: LiveOutput| seen.lock().unwrap().push(o);
        let mut pump = OutputPump::new(&sink, Some(77));
        pump.stdout_line(&format!("Name: {PROMPT_END}"));
        pump.stdout_line(&format!("{NO_SNAPSHOT}cuda"));
        pump.stderr_line("thread 'main' (77) has overflowed its stack");
        pump.stdout_line(&format!("{RESTORED}77 78"));
        let report = pump.finish();
        assert_eq!(report.restored, Some((77, 78)));
        assert_eq!(report.no_snapshot.as_deref(), Some("cuda"));
        assert!(report.last_words.stack_overflow);
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen[0], LiveOutput::Stdout("Name: ".into()));
    }

    #[test]
    fn plain_lines_are_batched_per_stream() {
        let (out, panic) = run(&["a", "b"], &["", "c", ""]);
        assert_eq!(out, vec![LiveOutput::Stdout("a\nb\n".into()), LiveOutput::Stderr("\nc\n\n".into())]);
        assert_eq!(panic, None);
    }

    #[test]
    fn display_block_becomes_display_output_in_order() {
        let (out, _) = run(&["before", "RJK_BEGIN_DISPLAY text/html", "<b>x</b>", "<i>y</i>", "RJK_END_DISPLAY", "after", "RJK_CLEAR_OUTPUT wait"], &[]);
        assert_eq!(
            out,
            vec![
                LiveOutput::Stdout("before\n".into()),
                LiveOutput::Display(MimeBundle::from([("text/html".into(), "<b>x</b>\n<i>y</i>".into())])),
                LiveOutput::Stdout("after\n".into()),
                LiveOutput::Clear { wait: true },
            ]
        );
    }

    #[test]
    fn main_thread_panic_is_taken_out_of_stderr() {
        let (out, panic) = run(
            &[],
            &[
                "before",
                "",
                "thread 'main' panicked at src/lib.rs:12:5:",
                "index out of bounds: the len is 3 but the index is 7",
                "stack backtrace:",
                "   0: rust_begin_unwind",
                "             at /rustc/library/std/src/panicking.rs:1:1",
                "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
                "after",
            ],
        );
        assert_eq!(out, vec![LiveOutput::Stderr("before\nafter\n".into())]);
        let panic = panic.unwrap();
        assert_eq!(panic.location, "src/lib.rs:12:5");
        assert_eq!(panic.message, "index out of bounds: the len is 3 but the index is 7");
    }

    #[test]
    fn panic_hook_report_on_stdout() {
        let (out, panic) = run(&["x", "RJK_PANIC src/lib.rs:3:9\tline one\\nline \\\\two"], &[]);
        assert_eq!(out, vec![LiveOutput::Stdout("x\n".into())]);
        assert_eq!(panic, Some(Panic { location: "src/lib.rs:3:9".into(), message: "line one\nline \\two".into() }));
    }

    #[test]
    fn main_thread_is_recognised_by_tid_or_name() {
        assert_eq!(main_thread_panic("thread '<unnamed>' (77) panicked at src/lib.rs:1:2:", Some(77)).as_deref(), Some("src/lib.rs:1:2"));
        assert_eq!(main_thread_panic("thread 'main' panicked at src/lib.rs:1:2:", Some(77)).as_deref(), Some("src/lib.rs:1:2"));
        assert_eq!(main_thread_panic("thread 'main' (5) panicked at x:", Some(77)), None);
        assert_eq!(main_thread_panic("thread 'worker' panicked at x:", None), None);
        assert_eq!(main_thread_panic("the thread 'main' panicked at x:", None), None);
    }

    #[test]
    fn short_panic_note_and_other_threads() {
        let (out, panic) = run(
            &[],
            &[
                "thread '<unnamed>' (78) panicked at src/lib.rs:3:1:",
                "worker",
                "thread '<unnamed>' (77) panicked at src/lib.rs:4:1:",
                "boom",
                "second line",
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            ],
        );
        assert_eq!(out, vec![LiveOutput::Stderr("thread '<unnamed>' (78) panicked at src/lib.rs:3:1:\nworker\n".into())]);
        assert_eq!(panic.unwrap().message, "boom\nsecond line");
    }

    #[test]
    fn a_cells_stderr_is_complete_at_its_end_of_cell_line_not_at_an_older_one() {
        let seen = Mutex::new(Vec::new());
        let sink = |o: LiveOutput| seen.lock().unwrap().push(o);
        let (out_tx, out_rx) = crossbeam_channel::unbounded::<String>();
        let (err_tx, err_rx) = crossbeam_channel::unbounded::<String>();
        let (done_tx, done_rx) = crossbeam_channel::bounded::<bool>(1);
        // One left from a cell nobody pumped (evcxr's at start), then this cell's.
        err_tx.send(format!("{CELL_END}1")).unwrap();
        let started = std::time::Instant::now();
        std::thread::scope(|scope| {
            let pump = scope.spawn(|| pump_output(&sink, Some(1), &out_rx, &err_rx, &never(), &done_rx));
            std::thread::sleep(Duration::from_millis(20));
            err_tx.send("warning: last words".to_string()).unwrap();
            err_tx.send(format!("{CELL_END}{}", monotonic_ns())).unwrap();
            done_tx.send(true).unwrap();
            pump.join().unwrap();
        });
        assert!(started.elapsed() < CELL_END_WAIT, "ended at its line, not after waiting");
        let text: String = seen.into_inner().unwrap().into_iter().map(|o| format!("{o:?}")).collect();
        assert!(text.contains("warning: last words") && !text.contains(CELL_END.trim()), "{text}");
        drop(out_tx);
    }

    #[test]
    fn without_its_end_of_cell_line_a_cell_that_ran_ends_when_stderr_is_quiet() {
        let sink = |_: LiveOutput| {};
        let (done_tx, done_rx) = crossbeam_channel::bounded::<bool>(1);
        done_tx.send(true).unwrap();
        let started = std::time::Instant::now();
        pump_output(&sink, Some(1), &never(), &never(), &never(), &done_rx);
        assert!(started.elapsed() >= CELL_END_WAIT);
    }
}
