//! Runs a cell: its Rust through the backend, its magics through the `magics` crate.
//!
//! A cell such as `let a = make(); f(&a);\n%timeit f(&a)` runs its Rust first, then the
//! magic, which sees `a`. The cell's result is the last segment's value.

use magics::parse::{split, Segment};
use magics::{Context, MagicError, Value};

use crate::backend::{Backend, CellError, LiveOutput, MimeBundle, OutputSink};

pub fn run<B: Backend + ?Sized>(backend: &mut B, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, CellError> {
    let segments = split(code);
    if let [Segment::Rust(_)] = segments.as_slice() {
        return backend.execute(code, sink);
    }
    let mut result = None;
    for segment in segments {
        result = match segment {
            Segment::Rust(rust) => backend.execute(&rust, sink)?,
            Segment::Magic(call) => {
                let mut session = Session { backend: &mut *backend, sink };
                match magics::run(&call, &mut session) {
                    Ok(Some(value)) => show(value, sink),
                    Ok(None) => None,
                    Err(MagicError { ename, evalue, mut traceback }) => {
                        if traceback.is_empty() {
                            traceback = crate::diagnostics::error(&ename, evalue.as_str()).traceback;
                        }
                        return Err(CellError { ename, evalue, traceback });
                    }
                }
            }
        };
    }
    Ok(result)
}

/// Shows what a magic gave; returns its result value, if any.
fn show(value: Value, sink: OutputSink<'_>) -> Option<MimeBundle> {
    match value {
        Value::Show(bundle) => {
            match bundle.get("text/plain") {
                Some(text) if bundle.len() == 1 => sink(LiveOutput::Stdout(format!("{text}\n"))),
                _ => sink(LiveOutput::Display(bundle)),
            }
            None
        }
        Value::Result(bundle) => Some(bundle),
        Value::Many(values) => values.into_iter().fold(None, |_, v| show(v, sink)),
    }
}

/// What a magic may use of the session.
struct Session<'a, 'b, B: Backend + ?Sized> {
    backend: &'a mut B,
    sink: OutputSink<'b>,
}

impl<B: Backend + ?Sized> Context for Session<'_, '_, B> {
    fn run_rust(&mut self, code: &str) -> Result<Option<MimeBundle>, MagicError> {
        self.backend.execute(code, self.sink).map_err(magic_error)
    }

    fn env_vars(&self) -> Vec<(String, String)> {
        std::env::vars_os()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
            .collect()
    }

    fn set_env(&mut self, name: &str, value: &str) -> Result<(), MagicError> {
        self.backend.set_env(name, value).map_err(|e| MagicError::new(e.ename, e.evalue))
    }

    fn set_env_in_kernel(&mut self, name: &str, value: &str) -> Result<(), MagicError> {
        self.backend.set_env_in_kernel(name, value).map_err(|e| MagicError::new(e.ename, e.evalue))
    }

    fn result_part(&self, mime: &str, text: &str) -> String {
        self.backend.result_part(mime, text)
    }

    fn variables(&self) -> Vec<String> {
        self.backend.variables()
    }

    fn compiled_code(&mut self, name: &str, naive: bool) -> Result<magics::Found<magics::CompiledCode>, MagicError> {
        self.backend.compiled_code(name, naive, self.sink).map_err(magic_error)
    }

    fn jit_report(&mut self, name: &str) -> Result<magics::Found<magics::JitReport>, MagicError> {
        self.backend.jit_report(name).map_err(magic_error)
    }
}

fn magic_error(e: CellError) -> MagicError {
    MagicError { ename: e.ename, evalue: e.evalue, traceback: e.traceback }
}
