//! IPython-style magics for rust-jit-kernel.
//!
//! A cell is split into Rust code and magics ([`parse::split`]); the kernel runs the Rust
//! through its engine and each magic through [`Magic::run`], with a [`Context`] that gives
//! the magic what it may use of the session (run Rust code, the environment). Magics know
//! no sockets and print nothing: they return a [`Value`] that renders itself.
//!
//! The registry ([`REGISTRY`]) is ordered; it drives `%lsmagic` and each magic's help
//! (`%name?`), which is the magic's [`Magic::help`] text.

use std::collections::BTreeMap;

pub mod env;
pub mod format;
pub mod jit_asm;
pub mod jit_llvm;
pub mod jit_report;
pub mod lex;
pub mod listing;
pub mod lsmagic;
pub mod parse;
pub mod time;
pub mod timeit;

pub use jit_report::{JitReport, ReportSite};
pub use listing::CompiledCode;

#[cfg(test)]
mod testing;

/// MIME type -> data.
pub type MimeBundle = BTreeMap<String, String>;

/// Whether a magic is used as `%name` (line), `%%name` (cell), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Line,
    Cell,
    LineAndCell,
}

impl Kind {
    pub fn line(self) -> bool {
        matches!(self, Kind::Line | Kind::LineAndCell)
    }
    pub fn cell(self) -> bool {
        matches!(self, Kind::Cell | Kind::LineAndCell)
    }
}

/// One use of a magic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    /// The rest of the magic's line.
    pub args: String,
    /// `%%name`: the lines after the first.
    pub body: Option<String>,
    /// 1-based line of the cell the magic is on.
    pub line: usize,
    /// `let NAME = %magic ...`: where the value goes.
    pub assign_to: Option<String>,
}

/// What a magic gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Shown now, as output of the cell (like IPython's `print`).
    Show(MimeBundle),
    /// The value of the magic (IPython's `return`): the cell's result when the magic ends it.
    Result(MimeBundle),
    /// Several of the above, in order.
    Many(Vec<Value>),
}

impl Value {
    pub fn text(text: impl Into<String>) -> Value {
        Value::Show(MimeBundle::from([("text/plain".to_string(), text.into())]))
    }
}

/// A failure, shown as an `error` with `ename`/`evalue` (e.g. `UsageError`); `traceback`
/// when there is more to show (a compile error in the timed statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagicError {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

impl MagicError {
    pub fn new(ename: impl Into<String>, evalue: impl Into<String>) -> Self {
        MagicError { ename: ename.into(), evalue: evalue.into(), traceback: Vec::new() }
    }

    pub fn usage(evalue: impl Into<String>) -> Self {
        MagicError::new("UsageError", evalue)
    }
}

/// What a magic may use of the kernel session.
pub trait Context {
    /// Runs Rust code in the session as a cell would (its output streams as usual); returns
    /// the value of a trailing expression.
    fn run_rust(&mut self, code: &str) -> Result<Option<MimeBundle>, MagicError>;
    /// The kernel process's environment.
    fn env_vars(&self) -> Vec<(String, String)>;
    /// Sets a variable in the kernel process (later compiles see it) and in the user
    /// process (later cells see it).
    fn set_env(&mut self, name: &str, value: &str) -> Result<(), MagicError>;
    /// [`Context::set_env`] for the kernel process only: for a value that code given to
    /// [`Context::run_rust`] has set in the user process already.
    fn set_env_in_kernel(&mut self, name: &str, value: &str) -> Result<(), MagicError>;
    /// A Rust statement that, run in code given to [`Context::run_rust`], adds the text of
    /// `text` (an expression of a `Display` type) to the bundle it returns, under `mime`.
    fn result_part(&self, mime: &str, text: &str) -> String;
    /// Names of the session's variables.
    fn variables(&self) -> Vec<String>;
    /// The compiled code of the session's function `name` (`naive`: compiled as plain cells
    /// are, at opt-level 0, for a plain function or a jit one).
    fn compiled_code(&mut self, name: &str, naive: bool) -> Result<Found<CompiledCode>, MagicError> {
        let _ = (name, naive);
        Err(MagicError::new("JitError", "this kernel has no jit"))
    }
    /// What the jit did with the session's jit function `name`.
    fn jit_report(&mut self, name: &str) -> Result<Found<JitReport>, MagicError> {
        let _ = name;
        Err(MagicError::new("JitError", "this kernel has no jit"))
    }
}

/// What the session knows of a function a jit magic names.
#[derive(Debug, Clone, PartialEq)]
pub enum Found<T> {
    Jit(T),
    /// A function of plain cells: compiled with its cell, at opt-level 0, nothing kept.
    Plain,
}

/// The environment variable that names the interrupt flag file: while the file exists, the
/// code a magic generates (the `%timeit` harness) stops at its next check. The kernel creates
/// the file when an interrupt arrives.
pub const INTERRUPT_FILE_VAR: &str = "RJK_INTERRUPT_FILE";

/// A magic: one file in this crate, registered in [`REGISTRY`].
pub trait Magic: Sync {
    fn name(&self) -> &'static str;
    fn kind(&self) -> Kind;
    /// Usage and description, shown by `%name?` (the magic's docstring).
    fn help(&self) -> &'static str;
    /// Whether `let NAME = %magic ...` makes sense (the magic leaves a Rust value).
    fn assignable(&self) -> bool {
        false
    }
    fn run(&self, call: &Call, ctx: &mut dyn Context) -> Result<Option<Value>, MagicError>;
}

/// Every magic, in the order `%lsmagic` lists them.
pub static REGISTRY: &[&dyn Magic] =
    &[&env::Env, &jit_asm::JitAsm, &jit_llvm::JitLlvm, &jit_report::JitReportMagic, &lsmagic::Lsmagic, &time::Time, &timeit::Timeit];

/// The magic named `name` usable as a line (`cell == false`) or cell magic.
pub fn find(name: &str, cell: bool) -> Option<&'static dyn Magic> {
    REGISTRY.iter().copied().find(|m| m.name() == name && if cell { m.kind().cell() } else { m.kind().line() })
}

/// Runs one call: help for `%name?`, the error for an unknown magic, else the magic.
pub fn run(call: &Call, ctx: &mut dyn Context) -> Result<Option<Value>, MagicError> {
    let cell = call.body.is_some();
    let sigil = if cell { "%%" } else { "%" };
    if let Some(name) = call.name.strip_suffix('?') {
        let magic = find(name, cell).or_else(|| find(name, !cell));
        return match magic {
            Some(m) => Ok(Some(Value::text(format!("{sigil}{name}\n\n{}", m.help().trim())))),
            None => Err(unknown(sigil, name)),
        };
    }
    match find(&call.name, cell) {
        Some(magic) if call.assign_to.is_some() && !magic.assignable() => {
            Err(MagicError::usage(format!("`{sigil}{}` gives no Rust value to assign", call.name)))
        }
        Some(magic) => magic.run(call, ctx),
        None => Err(unknown(sigil, &call.name)),
    }
}

/// Checks that code handed to a magic is whole Rust (brackets, strings, comments closed).
pub(crate) fn require_complete(magic: &str, code: &str) -> Result<(), MagicError> {
    match lex::check(code) {
        lex::Completeness::Complete => Ok(()),
        lex::Completeness::Incomplete { .. } => {
            Err(MagicError::usage(format!("{magic}: the code is not complete (a bracket, string or comment is not closed)")))
        }
        lex::Completeness::Invalid => Err(MagicError::usage(format!("{magic}: a closing bracket does not match"))),
    }
}

fn unknown(sigil: &str, name: &str) -> MagicError {
    let other = if sigil == "%" { "%%" } else { "%" };
    let hint = match find(name, sigil == "%") {
        Some(_) => format!(" (there is a {other}{name})"),
        None => String::new(),
    };
    MagicError::usage(format!("Line magic function `{sigil}{name}` not found{hint}. `%lsmagic` lists the magics."))
        .with_cell_wording(sigil)
}

impl MagicError {
    fn with_cell_wording(mut self, sigil: &str) -> Self {
        if sigil == "%%" {
            self.evalue = self.evalue.replacen("Line magic", "Cell magic", 1);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_every_magic_has_help() {
        let mut seen = std::collections::HashSet::new();
        for magic in REGISTRY {
            assert!(seen.insert((magic.name(), magic.kind().line(), magic.kind().cell())), "duplicate {}", magic.name());
            assert!(!magic.name().is_empty() && magic.name().chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            let help = magic.help().trim();
            assert!(help.len() > 20, "{} has no help", magic.name());
            assert!(help.contains(&format!("%{}", magic.name())), "{}'s help shows no usage", magic.name());
        }
    }

    use crate::testing::FakeSession;

    fn call(name: &str, cell: bool) -> Call {
        crate::testing::call(name, "", cell.then_some(""))
    }

    #[test]
    fn unknown_magic_names_it_and_points_to_lsmagic() {
        let e = run(&call("nope", false), &mut FakeSession::default()).unwrap_err();
        assert_eq!(e.ename, "UsageError");
        assert_eq!(e.evalue, "Line magic function `%nope` not found. `%lsmagic` lists the magics.");
        let e = run(&call("nope", true), &mut FakeSession::default()).unwrap_err();
        assert_eq!(e.evalue, "Cell magic function `%%nope` not found. `%lsmagic` lists the magics.");
        let e = run(&call("env", true), &mut FakeSession::default()).unwrap_err();
        assert!(e.evalue.contains("(there is a %env)"), "{}", e.evalue);
    }

    #[test]
    fn question_mark_shows_help() {
        let Some(Value::Show(b)) = run(&call("env?", false), &mut FakeSession::default()).unwrap() else { panic!() };
        assert!(b["text/plain"].starts_with("%env\n\n"));
        assert!(b["text/plain"].contains("Usage"));
    }
}
