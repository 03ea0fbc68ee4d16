//! The narrow interface between the dispatch core and a language engine.
//!
//! The dispatch core ([`crate::dispatch`]) knows nothing about evcxr, cargo or
//! processes; it talks to a [`Backend`]. The real one is [`crate::jit::JitBackend`] over
//! [`crate::evcxr_backend::EvcxrBackend`]; tests use fakes.

use std::collections::BTreeMap;
use std::path::Path;

/// A MIME bundle: MIME type -> data (text, or base64 for binary types).
pub type MimeBundle = BTreeMap<String, String>;

/// Output produced while a cell runs, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveOutput {
    Stdout(String),
    Stderr(String),
    /// A rich output emitted mid-cell (becomes `display_data`).
    Display(MimeBundle),
    /// Clear the cell's output (`wait`: when the next output arrives).
    Clear { wait: bool },
}

/// Where live output goes. Called from whichever thread reads the engine's output.
pub type OutputSink<'a> = &'a (dyn Fn(LiveOutput) + Sync);

/// The sink of code the kernel runs for itself, whose output nobody sees.
pub fn discard(_: LiveOutput) {}

/// Why a cell failed. Rendered as an `error` message: `ename`, `evalue`, `traceback`.
#[derive(Debug, Clone, PartialEq)]
pub struct CellError {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

impl CellError {
    pub fn new(ename: &str, evalue: impl Into<String>) -> Self {
        let evalue = evalue.into();
        let traceback = vec![format!("{ename}: {evalue}")];
        CellError { ename: ename.to_string(), evalue, traceback }
    }
}

/// Completion candidates; offsets are byte offsets into the code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completions {
    pub matches: Vec<String>,
    pub start: usize,
    pub end: usize,
}

/// What a layer over a backend (the jit) compiles in front of a cell, outside the cell's own
/// line numbers (errors are still reported against the cell as typed).
#[derive(Debug, Clone, Copy, Default)]
pub struct Front<'a> {
    /// Items (`use`s, functions) that the session keeps once the cell compiles.
    pub items: &'a str,
    /// A path dependency (a crate's directory) that joins the session with this cell.
    pub dependency: Option<&'a Path>,
}

impl Front<'_> {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.dependency.is_none()
    }
}

/// Why [`Backend::execute_with`] failed.
#[derive(Debug, Clone, PartialEq)]
pub enum RunError {
    /// The cell failed (or stopped, or crashed).
    Cell(CellError),
    /// The cell was fine, but the [`Front`] items did not compile.
    Front(CellError),
}

impl RunError {
    pub fn into_cell_error(self) -> CellError {
        match self {
            RunError::Cell(e) | RunError::Front(e) => e,
        }
    }
}

/// The engine that runs cells. One cell at a time; `execute` blocks until the cell ends.
pub trait Backend {
    /// Runs `code` with `front` compiled in front of it. Live output goes to `sink` while the
    /// cell runs; the value of a trailing expression (if any) is returned as a MIME bundle.
    fn execute_with(&mut self, front: &Front<'_>, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, RunError>;

    /// Runs `code` (see [`Backend::execute_with`]).
    fn execute(&mut self, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, CellError> {
        self.execute_with(&Front::default(), code, sink).map_err(RunError::into_cell_error)
    }

    /// Completions at byte offset `cursor`.
    fn complete(&mut self, code: &str, cursor: usize) -> Completions;

    /// Hover documentation at byte offset `cursor`, if any.
    fn inspect(&mut self, code: &str, cursor: usize) -> Option<MimeBundle>;

    /// Names of the variables the user process currently holds, sorted.
    fn variables(&self) -> Vec<String>;

    /// A one-line Rust statement that adds the text of `text` (an expression of a `Display`
    /// type) to the running cell's result bundle, under `mime` (see `magics::Context`).
    fn result_part(&self, mime: &str, text: &str) -> String;

    /// Names of the items (functions, types, ...) the session has defined.
    fn items(&self) -> Vec<String> {
        Vec::new()
    }

    /// Runs `work` (a compile the kernel runs itself, e.g. rustc for a jit function) so that an
    /// interrupt stops it as it stops the engine's own compiles. Returns whether it was
    /// interrupted.
    fn interruptible(&mut self, work: &mut dyn FnMut()) -> bool {
        work();
        false
    }

    /// Sets an environment variable for what the engine starts from now on (compiles, a
    /// restarted user process) and in the running user process, without a restart.
    fn set_env(&mut self, name: &str, value: &str) -> Result<(), CellError>;

    /// [`Backend::set_env`] without the running user process: for a value that a cell has set
    /// there itself (`%env NAME={expr}` computes and sets it with one compile).
    fn set_env_in_kernel(&mut self, name: &str, value: &str) -> Result<(), CellError>;

    /// The one-time work a first cell would otherwise wait for, done while the kernel is idle after
    /// start (the dispatch core calls it once, when no request is waiting and no cell has run). It
    /// shows nothing, and a failure only leaves the work to the first cell that needs it. Returns
    /// whether an interrupt stopped it.
    fn warm_up(&mut self) -> bool {
        false
    }

    /// The compiled code of the session's function `name` (`%jit_asm`, `%jit_llvm`); `naive`:
    /// compiled as plain cells are, for comparison (which may compile, reporting to `sink`).
    fn compiled_code(&mut self, name: &str, naive: bool, sink: OutputSink<'_>) -> Result<magics::Found<magics::CompiledCode>, CellError> {
        let _ = (name, naive, sink);
        Err(CellError::new("JitError", "this session has no #[jit]"))
    }

    /// What the jit did with the session's jit function `name` (`%jit_report`).
    fn jit_report(&mut self, name: &str) -> Result<magics::Found<magics::JitReport>, CellError> {
        let _ = name;
        Err(CellError::new("JitError", "this session has no #[jit]"))
    }
}

/// An [`Interrupter`] that exists before the engine does: until [`LateInterrupter::set`] is
/// called there is nothing to interrupt.
#[derive(Default)]
pub struct LateInterrupter(std::sync::OnceLock<std::sync::Arc<dyn Interrupter>>);

impl LateInterrupter {
    pub fn set(&self, interrupter: std::sync::Arc<dyn Interrupter>) {
        let _ = self.0.set(interrupter);
    }
}

impl Interrupter for LateInterrupter {
    fn interrupt(&self) -> bool {
        self.0.get().is_some_and(|i| i.interrupt())
    }
    fn terminate(&self) {
        if let Some(i) = self.0.get() {
            i.terminate()
        }
    }
}

/// Stops a running cell from another thread (control channel).
pub trait Interrupter: Send + Sync {
    /// Asks the running cell to stop. Returns false when no cell was running.
    fn interrupt(&self) -> bool;

    /// Stops everything the engine started (the kernel is shutting down).
    fn terminate(&self);
}
