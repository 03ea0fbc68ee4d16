//! `#[jit]`, `#[jit(parallel)]` and `#[vectorize]`: a [`Backend`] layer over the backend that
//! runs cells ([`JitBackend`]).
//!
//! For each cell it splits off the top-level jit functions (`jit_codegen::split`), compiles
//! them ([`compiler`], in dependency order, interruptible), and gives the rest to the inner
//! backend with what makes the functions callable in [`Front`] of it: their wrappers ("glue")
//! and, the first time the session needs it, the runtime (its imports and the crate as a
//! dependency). It keeps what the session's jit functions are (a later definition replaces an
//! earlier one) and which `use` items they may see, and applies the nopython rule: a jit
//! function that names something of a plain cell is a `JitError`.

pub mod compiler;
pub mod errors;
pub mod inspect;
pub mod runtime;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use jit_codegen::{JitFn, SplitCell, RUNTIME_PRELUDE};
use magics::{CompiledCode, Found, JitReport};

use crate::backend::{Backend, CellError, Completions, Front, LiveOutput, MimeBundle, OutputSink, RunError};
pub use compiler::{Compile, Compiled, JitCompiler};

/// The jit layer over `inner` (see the module docs).
pub struct JitBackend<B, C = JitCompiler> {
    inner: B,
    compiler: C,
    /// The runtime's sources (a path dependency of the session once it joins).
    runtime: PathBuf,
    /// The runtime is a dependency of the session and its prelude is imported.
    runtime_joined: bool,
    /// The session's jit functions by name (their latest definitions), and how each compiled.
    functions: BTreeMap<String, JitFn>,
    compiled: BTreeMap<String, Compiled>,
    /// The session's plain functions that can be compiled on their own (`%jit_asm --naive`).
    plain: BTreeMap<String, JitFn>,
    /// The session's `use` items that jit functions may see.
    uses: Vec<String>,
    /// Wrappers of jit functions compiled since the inner backend last compiled a cell: they go
    /// in front of the next one.
    glue: String,
    /// A line the next cell shows first, on stderr (see [`JitBackend::notify_once`]).
    notice: Option<String>,
}

impl<B: Backend, C: Compile> JitBackend<B, C> {
    pub fn new(inner: B, compiler: C, runtime: PathBuf) -> Self {
        JitBackend {
            inner,
            compiler,
            runtime,
            runtime_joined: false,
            functions: BTreeMap::new(),
            compiled: BTreeMap::new(),
            plain: BTreeMap::new(),
            uses: Vec::new(),
            glue: String::new(),
            notice: None,
        }
    }

    /// Shows `text` once, on stderr, before the output of the next cell (what the session
    /// setup has to tell the learner, e.g. that a shared cache could not be used).
    pub fn notify_once(&mut self, text: String) {
        self.notice = Some(text);
    }

    pub fn compiler(&self) -> &C {
        &self.compiler
    }

    /// Compiles the cell's jit functions (callees first) and queues their wrappers as glue.
    fn compile_functions(&mut self, cell: &str, split: &SplitCell, sink: OutputSink<'_>) -> Result<(), CellError> {
        if !self.compiler.runtime_built() {
            // jit libraries link the session's own build of the runtime (one copy per process):
            // the session builds it first.
            self.join_runtime(sink)?;
        }
        let defined: BTreeSet<String> = self.inner.items().into_iter().chain(self.inner.variables()).collect();
        let uses = merged_uses(&self.uses, &split.uses);
        for function in in_dependency_order(&split.functions) {
            let deps = dependencies(function, &|name| self.functions.get(name));
            let plain = |name: &str| defined.contains(name) && !self.functions.contains_key(name);
            let mut compiled = None;
            let compiler = &self.compiler;
            let interrupted = self.inner.interruptible(&mut || compiled = Some(compiler.compile(function, &deps, &uses, cell, &plain)));
            if interrupted {
                let evalue = "the cell was stopped while a #[jit] function compiled, so it did not run. Nothing was lost: all variables are kept.";
                return Err(CellError::new("Interrupted", evalue));
            }
            let compiled = compiled.expect("the compile ran")?;
            sink(LiveOutput::Stdout(format!("{}\n", compiled.report())));
            self.glue.push_str(&compiled.wrapper);
            self.functions.insert(function.name.clone(), function.clone());
            self.plain.remove(&function.name);
            self.compiled.insert(function.name.clone(), compiled);
        }
        Ok(())
    }

    /// Makes the runtime a dependency of the session now (cargo builds it), with nothing else.
    fn join_runtime(&mut self, sink: OutputSink<'_>) -> Result<(), CellError> {
        let front = Front { items: if self.runtime_joined { "" } else { RUNTIME_PRELUDE }, dependency: Some(&self.runtime) };
        // A statement, so that evcxr builds (it keeps `use` items without building).
        self.inner.execute_with(&front, "jit::prange(0..0);", sink).map_err(RunError::into_cell_error)?;
        self.runtime_joined = true;
        Ok(())
    }

    /// Runs plain code (a cell, or what is left of it) with the glue and, when due, the runtime
    /// in front; `uses` are the cell's `use` items, remembered once it compiled.
    fn run(&mut self, outer: &Front<'_>, code: &str, split: &SplitCell, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, RunError> {
        let uses = &split.uses;
        // Wrappers name the runtime's types too.
        let runtime_due = !self.runtime_joined && (!self.glue.is_empty() || runtime::uses_runtime(code));
        let mut items = outer.items.to_string();
        if runtime_due {
            items.push_str(RUNTIME_PRELUDE);
        }
        items.push_str(&self.glue);
        let front = Front { items: &items, dependency: if runtime_due { Some(&self.runtime) } else { outer.dependency } };
        match self.inner.execute_with(&front, code, sink) {
            Ok(value) => {
                self.runtime_joined |= runtime_due;
                self.glue.clear();
                self.uses = merged_uses(&self.uses, uses);
                for function in &split.plain {
                    // A plain definition replaces a jit one of the name.
                    self.functions.remove(&function.name);
                    self.compiled.remove(&function.name);
                    self.plain.insert(function.name.clone(), function.clone());
                }
                Ok(value)
            }
            Err(RunError::Front(error)) if !self.glue.is_empty() => {
                // A jit function's wrapper that does not compile in a cell. Dropped, or it would
                // fail every later cell.
                self.glue.clear();
                let evalue = format!(
                    "a #[jit] function compiled, but cells cannot call it ({}); define it again with a signature \
                     that uses only std and ndarray types",
                    error.evalue
                );
                Err(RunError::Cell(CellError { evalue, ..error }))
            }
            Err(error) => Err(error),
        }
    }
}

impl<B: Backend, C: Compile> Backend for JitBackend<B, C> {
    fn execute_with(&mut self, front: &Front<'_>, code: &str, sink: OutputSink<'_>) -> Result<Option<MimeBundle>, RunError> {
        if let Some(notice) = self.notice.take() {
            sink(LiveOutput::Stderr(format!("{notice}\n")));
        }
        let split = jit_codegen::split(code).map_err(|e| RunError::Cell(errors::codegen_error(&e, code)))?;
        if split.functions.is_empty() {
            return self.run(front, code, &split, sink);
        }
        self.compile_functions(code, &split, sink).map_err(RunError::Cell)?;
        if split.rest_is_empty() && front.is_empty() {
            // Nothing to run: the functions become callable with the next cell compiled.
            self.uses = merged_uses(&self.uses, &split.uses);
            return Ok(None);
        }
        self.run(front, &split.rest, &split, sink)
    }

    fn complete(&mut self, code: &str, cursor: usize) -> Completions {
        self.inner.complete(code, cursor)
    }

    fn inspect(&mut self, code: &str, cursor: usize) -> Option<MimeBundle> {
        self.inner.inspect(code, cursor)
    }

    fn variables(&self) -> Vec<String> {
        self.inner.variables()
    }

    fn items(&self) -> Vec<String> {
        self.inner.items()
    }

    fn result_part(&self, mime: &str, text: &str) -> String {
        self.inner.result_part(mime, text)
    }

    fn set_env(&mut self, name: &str, value: &str) -> Result<(), CellError> {
        self.inner.set_env(name, value)
    }

    fn set_env_in_kernel(&mut self, name: &str, value: &str) -> Result<(), CellError> {
        self.inner.set_env_in_kernel(name, value)
    }

    fn interruptible(&mut self, work: &mut dyn FnMut()) -> bool {
        self.inner.interruptible(work)
    }

    /// The runtime joins the session (cargo builds the session crate with it, and the session's
    /// prelude compiles) and rust-analyzer makes its first inference of a variable's type: what the
    /// first cell that names an array, and the first `let`, would wait for.
    fn warm_up(&mut self) -> bool {
        if self.runtime_joined {
            return false;
        }
        let started = std::time::Instant::now();
        let front = Front { items: RUNTIME_PRELUDE, dependency: Some(&self.runtime) };
        match self.inner.execute_with(&front, WARM_UP, &crate::backend::discard) {
            Ok(_) => {
                self.runtime_joined = true;
                tracing::info!(ms = started.elapsed().as_millis() as u64, "warmed up");
                false
            }
            Err(error) => {
                tracing::info!(?error, "warm-up failed; the first cell does its work");
                error.into_cell_error().ename == "Interrupted"
            }
        }
    }

    fn compiled_code(&mut self, name: &str, naive: bool, sink: OutputSink<'_>) -> Result<Found<CompiledCode>, CellError> {
        if let (Some(function), Some(compiled), false) = (self.functions.get(name), self.compiled.get(name), naive) {
            return inspect::code(function, &compiled.krate, &compiled.library, false).map(Found::Jit);
        }
        let function = match self.functions.get(name).or(self.plain.get(name)) {
            Some(function) if naive => function.clone(),
            Some(_) => return Ok(Found::Plain),
            None => return Err(self.not_a_function(name, naive)),
        };
        if !self.compiler.runtime_built() {
            self.join_runtime(sink)?;
        }
        let deps = dependencies(&function, &|n| self.functions.get(n).or(self.plain.get(n)));
        let uses = self.uses.clone();
        let (compiler, mut built) = (&self.compiler, None);
        // The function where it was in its cell, for errors against the cell's lines.
        let cell = format!("{}{}{}", "\n".repeat(function.line - 1), " ".repeat(function.column), function.written);
        if self.inner.interruptible(&mut || built = Some(compiler.naive(&function, &deps, &uses, &cell))) {
            return Err(CellError::new("Interrupted", "stopped while the opt-level-0 listing compiled; nothing was lost"));
        }
        let naive = built.expect("the compile ran")?;
        if let Some(seconds) = naive.seconds {
            sink(LiveOutput::Stdout(format!("jit: compiled {name} as plain cells are (opt-level 0) in {seconds:.2} s\n")));
        }
        inspect::code(&function, &naive.krate, &naive.library, true).map(Found::Jit)
    }

    fn jit_report(&mut self, name: &str) -> Result<Found<JitReport>, CellError> {
        match (self.functions.get(name), self.compiled.get(name)) {
            (Some(function), Some(compiled)) => Ok(Found::Jit(inspect::report(function, compiled, inspect::threads()))),
            _ if self.plain.contains_key(name) || self.inner.items().iter().any(|i| i == name) => Ok(Found::Plain),
            _ => Err(self.not_a_function(name, false)),
        }
    }
}

impl<B: Backend, C: Compile> JitBackend<B, C> {
    /// The error for a name the jit magics cannot show.
    fn not_a_function(&self, name: &str, naive: bool) -> CellError {
        if self.inner.items().iter().any(|i| i == name) {
            if naive {
                return CellError::new("JitError", format!("`{name}` cannot be compiled on its own for a listing (a function with type parameters has no code until it is used, and only functions are listed)"));
            }
            return CellError::new("JitError", format!("`{name}` is not a function compiled by the jit"));
        }
        if self.inner.variables().iter().any(|v| v == name) {
            return CellError::new("NameError", format!("`{name}` is a variable, not a function"));
        }
        CellError::new("NameError", format!("no function `{name}` in this session: define it in a cell first (with #[jit] for optimised code)"))
    }
}

/// The warm-up cell: a `let` of an (empty) array, whose type rust-analyzer infers, under a name nobody
/// uses: the first inference, and the first of ndarray's types, are done.
pub const WARM_UP: &str = "let __rjk_warm_up: Array1<f64> = Array1::zeros(0);";

/// The jit functions `function` calls, directly or through others (as `defined` finds them),
/// each once, by name.
fn dependencies<'a>(function: &JitFn, defined: &dyn Fn(&str) -> Option<&'a JitFn>) -> Vec<&'a JitFn> {
    let mut found: Vec<&JitFn> = Vec::new();
    let mut queue: Vec<&str> = function.references.iter().map(String::as_str).collect();
    while let Some(name) = queue.pop() {
        if name == function.name || found.iter().any(|f| f.name == name) {
            continue;
        }
        if let Some(dep) = defined(name) {
            found.push(dep);
            queue.extend(dep.references.iter().map(String::as_str));
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// The cell's functions, each after the ones of the cell it calls (a cycle keeps cell order).
fn in_dependency_order(functions: &[JitFn]) -> Vec<&JitFn> {
    let mut ordered: Vec<&JitFn> = Vec::new();
    let mut left: Vec<&JitFn> = functions.iter().collect();
    while !left.is_empty() {
        let waiting = |f: &JitFn| !dependencies(f, &|name| left.iter().find(|g| g.name == name).copied()).is_empty();
        let ready = left.iter().position(|f| !waiting(f)).unwrap_or(0);
        ordered.push(left.remove(ready));
    }
    ordered
}

/// `earlier` with `later` added; an item that imports a name an earlier one imported replaces
/// it. Only items a jit function may use (rooted in std, core, alloc, ndarray, rayon, jit).
fn merged_uses(earlier: &[String], later: &[String]) -> Vec<String> {
    let mut out: Vec<String> = earlier.to_vec();
    for item in later {
        let allowed = jit_codegen::use_root(item).is_some_and(|r| jit_codegen::ALLOWED_ROOTS.contains(&r.as_str()));
        if !allowed {
            continue;
        }
        let names = jit_codegen::use_names(item);
        out.retain(|old| old != item && jit_codegen::use_names(old).is_disjoint(&names));
        out.push(item.clone());
    }
    out
}

#[cfg(test)]
mod tests;
