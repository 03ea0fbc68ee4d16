//! A fake session for the magics' tests.

use crate::{Call, CompiledCode, Context, Found, JitReport, MagicError, MimeBundle};

/// Records the Rust it is asked to run and answers with `answer`; keeps an environment.
#[derive(Default)]
pub struct FakeSession {
    pub env: Vec<(String, String)>,
    pub ran: Vec<String>,
    pub answer: Option<MimeBundle>,
    /// Plain functions of the session (the jit magics give a hint for them).
    pub plain: Vec<String>,
    /// What the jit magics find (for any jit name; `naive` code for plain ones too).
    pub code: Option<CompiledCode>,
    pub report: Option<JitReport>,
    pub variables: Vec<String>,
}

impl FakeSession {
    fn lookup<T: Clone>(&self, name: &str, naive: bool, found: &Option<T>, is: impl Fn(&T) -> bool) -> Result<Found<T>, MagicError> {
        if self.plain.iter().any(|p| p == name) && !naive {
            return Ok(Found::Plain);
        }
        match found {
            Some(value) if is(value) => Ok(Found::Jit(value.clone())),
            _ => Err(MagicError::new("NameError", format!("no function `{name}`"))),
        }
    }
}

impl Context for FakeSession {
    fn run_rust(&mut self, code: &str) -> Result<Option<MimeBundle>, MagicError> {
        self.ran.push(code.to_string());
        Ok(self.answer.clone())
    }
    fn env_vars(&self) -> Vec<(String, String)> {
        self.env.clone()
    }
    fn set_env(&mut self, name: &str, value: &str) -> Result<(), MagicError> {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.into(), value.into()));
        Ok(())
    }
    fn set_env_in_kernel(&mut self, name: &str, value: &str) -> Result<(), MagicError> {
        self.set_env(name, value)
    }
    fn result_part(&self, mime: &str, text: &str) -> String {
        format!("report({mime:?}, {text});")
    }
    fn variables(&self) -> Vec<String> {
        self.variables.clone()
    }
    fn compiled_code(&mut self, name: &str, naive: bool) -> Result<Found<CompiledCode>, MagicError> {
        self.lookup(name, naive, &self.code, |c| c.name == name)
    }
    fn jit_report(&mut self, name: &str) -> Result<Found<JitReport>, MagicError> {
        self.lookup(name, false, &self.report, |r| r.name == name)
    }
}

/// `%name args` (line magic) or, with a body, `%%name args` (cell magic) on line 1.
pub fn call(name: &str, args: &str, body: Option<&str>) -> Call {
    Call { name: name.into(), args: args.into(), body: body.map(Into::into), line: 1, assign_to: None }
}
