//! Turns the user process's stdout/stderr lines into live outputs.
//!
//! Two things are recognised on the way:
//! - rich displays: `RJK_BEGIN_DISPLAY <mime>` ... `RJK_END_DISPLAY` on stdout becomes one
//!   `display_data` (the lines between are the data, joined with newlines);
//! - a panic of the cell (`thread 'main' panicked at ...` on stderr, as Rust's default panic
//!   hook writes it): its text is taken out of the stream and kept, so the kernel can report
//!   the cell as failed. evcxr catches the unwind and would otherwise report success.

use crate::backend::{LiveOutput, MimeBundle, OutputSink};

pub const BEGIN_DISPLAY: &str = "RJK_BEGIN_DISPLAY ";
pub const END_DISPLAY: &str = "RJK_END_DISPLAY";
const MAIN_PANIC: &str = "thread 'main' panicked at ";

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
    stdout: String,
    stderr: String,
    display: Option<(String, Vec<String>)>,
    state: PanicState,
    panic: Option<Panic>,
}

impl<'a> OutputPump<'a> {
    pub fn new(sink: OutputSink<'a>) -> Self {
        OutputPump { sink, stdout: String::new(), stderr: String::new(), display: None, state: PanicState::None, panic: None }
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
        } else if let Some(mime) = line.strip_prefix(BEGIN_DISPLAY) {
            self.display = Some((mime.trim().to_string(), Vec::new()));
        } else {
            self.stdout.push_str(line);
            self.stdout.push('\n');
        }
    }

    pub fn stderr_line(&mut self, line: &str) {
        match self.state {
            PanicState::None => {
                if let Some(location) = line.strip_prefix(MAIN_PANIC) {
                    self.state = PanicState::Message;
                    let location = location.trim_end_matches(':').to_string();
                    self.panic = Some(Panic { location, message: String::new() });
                    return;
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
    /// the panic, if the cell panicked.
    pub fn finish(mut self) -> Option<Panic> {
        if let Some((mime, lines)) = self.display.take() {
            self.stdout.push_str(&format!("{BEGIN_DISPLAY}{mime}\n"));
            for line in lines {
                self.stdout.push_str(&line);
                self.stdout.push('\n');
            }
        }
        self.flush();
        self.panic.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn run(stdout: &[&str], stderr: &[&str]) -> (Vec<LiveOutput>, Option<Panic>) {
        let seen = Mutex::new(Vec::new());
        let sink = |o: LiveOutput| seen.lock().unwrap().push(o);
        let mut pump = OutputPump::new(&sink);
        for l in stdout {
            pump.stdout_line(l);
        }
        for l in stderr {
            pump.stderr_line(l);
        }
        let panic = pump.finish();
        (seen.into_inner().unwrap(), panic)
    }

    #[test]
    fn plain_lines_are_batched_per_stream() {
        let (out, panic) = run(&["a", "b"], &["c"]);
        assert_eq!(out, vec![LiveOutput::Stdout("a\nb\n".into()), LiveOutput::Stderr("c\n".into())]);
        assert_eq!(panic, None);
    }

    #[test]
    fn display_block_becomes_display_output_in_order() {
        let (out, _) = run(&["before", "RJK_BEGIN_DISPLAY text/html", "<b>x</b>", "<i>y</i>", "RJK_END_DISPLAY", "after"], &[]);
        assert_eq!(
            out,
            vec![
                LiveOutput::Stdout("before\n".into()),
                LiveOutput::Display(MimeBundle::from([("text/html".into(), "<b>x</b>\n<i>y</i>".into())])),
                LiveOutput::Stdout("after\n".into()),
            ]
        );
    }

    #[test]
    fn main_thread_panic_is_taken_out_of_stderr() {
        let (out, panic) = run(
            &[],
            &[
                "before",
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
    fn short_panic_note_and_other_threads() {
        let (out, panic) = run(
            &[],
            &[
                "thread '<unnamed>' panicked at src/lib.rs:3:1:",
                "worker",
                "thread 'main' panicked at src/lib.rs:4:1:",
                "boom",
                "second line",
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            ],
        );
        assert_eq!(out, vec![LiveOutput::Stderr("thread '<unnamed>' panicked at src/lib.rs:3:1:\nworker\n".into())]);
        assert_eq!(panic.unwrap().message, "boom\nsecond line");
    }
}
