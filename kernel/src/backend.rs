//! The narrow interface between the dispatch core and a language engine.
//!
//! The dispatch core ([`crate::dispatch`]) knows nothing about evcxr, cargo or
//! processes; it talks to a [`Backend`]. The real implementation lives in
//! [`crate::evcxr_backend`]; tests use a fake.

use std::collections::BTreeMap;

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

/// The engine that runs cells. One cell at a time; `execute` blocks until the cell ends.
pub trait Backend {
    /// Runs `code`. Live output goes to `sink` while the cell runs; the value of a
    /// trailing expression (if any) is returned as a MIME bundle.
    fn execute(&mut self, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, CellError>;

    /// Completions at byte offset `cursor`.
    fn complete(&mut self, code: &str, cursor: usize) -> Completions;

    /// Hover documentation at byte offset `cursor`, if any.
    fn inspect(&mut self, code: &str, cursor: usize) -> Option<MimeBundle>;

    /// Names of the variables the user process currently holds.
    fn variables(&self) -> Vec<String>;

    /// Sets an environment variable for what the engine starts from now on (compiles, a
    /// restarted user process) and in the running user process, without a restart.
    fn set_env(&mut self, name: &str, value: &str) -> Result<(), CellError>;
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
