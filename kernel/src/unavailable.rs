//! The backend of a kernel that cannot run Rust (no toolchain found, or its workspace could not
//! be prepared): it starts anyway, so Jupyter gets `kernel_info` and the learner a clear
//! error on every cell, instead of a kernel that dies while starting.

use crate::backend::{Backend, CellError, Completions, Front, MimeBundle, OutputSink, RunError};

pub struct Unavailable {
    /// The error's name (`ToolchainNotFound`, `SetupError`).
    ename: &'static str,
    /// Why, in one line, with what to do.
    reason: String,
}

impl Unavailable {
    /// Logged once here; every cell then fails with it.
    pub fn new(ename: &'static str, reason: String) -> Self {
        tracing::error!(ename, %reason, "the kernel cannot run Rust");
        Unavailable { ename, reason }
    }

    fn error(&self) -> CellError {
        crate::diagnostics::error(self.ename, self.reason.clone())
    }
}

impl Backend for Unavailable {
    fn execute_with(&mut self, _front: &Front<'_>, _code: &str, _sink: OutputSink<'_>) -> Result<Option<MimeBundle>, RunError> {
        Err(RunError::Cell(self.error()))
    }
    fn complete(&mut self, _code: &str, cursor: usize) -> Completions {
        Completions { matches: Vec::new(), start: cursor, end: cursor }
    }
    fn inspect(&mut self, _code: &str, _cursor: usize) -> Option<MimeBundle> {
        None
    }
    fn variables(&self) -> Vec<String> {
        Vec::new()
    }
    fn result_part(&self, _mime: &str, _text: &str) -> String {
        String::new()
    }
    fn set_env(&mut self, name: &str, value: &str) -> Result<(), CellError> {
        // The kernel's own environment still changes (a later restart of the kernel does not keep it).
        std::env::set_var(name, value);
        Ok(())
    }
    fn set_env_in_kernel(&mut self, name: &str, value: &str) -> Result<(), CellError> {
        self.set_env(name, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_says_why() {
        let mut backend = Unavailable::new("ToolchainNotFound", "no Rust toolchain found".into());
        let error = backend.execute("1 + 1", &crate::backend::discard).unwrap_err();
        assert_eq!((error.ename.as_str(), error.evalue.as_str()), ("ToolchainNotFound", "no Rust toolchain found"));
        assert!(backend.variables().is_empty());
    }
}
