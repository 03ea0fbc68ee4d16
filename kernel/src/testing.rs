//! The fake backend the in-memory tests share (the dispatch core's, the jit layer's).

use std::sync::{Arc, Mutex};

use crate::backend::{Backend, CellError, Completions, Front, LiveOutput, MimeBundle, OutputSink, RunError};

/// One call of [`Fake::execute_with`]: what was in front of the code, and the code.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub front: String,
    pub dependency: bool,
    pub code: String,
}

/// A scripted backend: the code names the behaviour (`print`, `html`, `bug`, a last line `fail`;
/// anything else is its own result). Front items that contain `BROKEN` do not compile. Every call is
/// recorded in `calls`.
#[derive(Default)]
pub struct Fake {
    pub calls: Arc<Mutex<Vec<Call>>>,
    /// What `variables()` and `items()` report.
    pub variables: Vec<String>,
    pub items: Vec<String>,
    /// `interruptible` reports an interrupt.
    pub interrupt_compiles: bool,
    /// Every cell fails to compile.
    pub fail_all: bool,
    /// `warm_up` takes 100 ms and reports an interrupt.
    pub interrupt_warm_up: bool,
}

impl Fake {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Backend for Fake {
    fn execute_with(&mut self, front: &Front<'_>, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, RunError> {
        self.calls.lock().unwrap().push(Call { front: front.items.to_string(), dependency: front.dependency.is_some(), code: code.to_string() });
        if self.fail_all {
            return Err(RunError::Cell(CellError::new("CompilationError", "nothing compiles here")));
        }
        if front.items.contains("BROKEN") {
            return Err(RunError::Front(CellError::new("CompilationError", "cannot find type `Broken`")));
        }
        match code {
            "print" => {
                sink(LiveOutput::Stdout("hello\n".into()));
                sink(LiveOutput::Stderr("careful\n".into()));
                Ok(Some(MimeBundle::from([("text/plain".into(), "42".into())])))
            }
            "html" => {
                sink(LiveOutput::Display(MimeBundle::from([("text/html".into(), "<b>x</b>".into())])));
                Ok(None)
            }
            _ if code.lines().last() == Some("fail") => Err(RunError::Cell(CellError::new("CompilationError", "mismatched types"))),
            "bug" => panic!("engine bug"),
            _ => Ok(Some(MimeBundle::from([("text/plain".into(), code.to_string())]))),
        }
    }
    /// Recorded as a call of code `<warm-up>`.
    fn warm_up(&mut self) -> bool {
        self.calls.lock().unwrap().push(Call { front: String::new(), dependency: false, code: "<warm-up>".to_string() });
        if self.interrupt_warm_up {
            // Long enough for a test to send a cell meanwhile.
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.interrupt_warm_up
    }
    fn complete(&mut self, code: &str, cursor: usize) -> Completions {
        assert!(code.is_char_boundary(cursor));
        Completions { matches: vec!["len".into()], start: cursor - 1, end: cursor }
    }
    fn inspect(&mut self, _code: &str, _cursor: usize) -> Option<MimeBundle> {
        Some(MimeBundle::from([("text/plain".into(), "fn len(&self) -> usize".into())]))
    }
    fn variables(&self) -> Vec<String> {
        self.variables.clone()
    }
    fn result_part(&self, mime: &str, text: &str) -> String {
        format!("part({mime:?}, {text});")
    }
    fn items(&self) -> Vec<String> {
        self.items.clone()
    }
    fn set_env(&mut self, _name: &str, _value: &str) -> Result<(), CellError> {
        Ok(())
    }
    fn set_env_in_kernel(&mut self, _name: &str, _value: &str) -> Result<(), CellError> {
        Ok(())
    }
    fn interruptible(&mut self, work: &mut dyn FnMut()) -> bool {
        work();
        self.interrupt_compiles
    }
}
