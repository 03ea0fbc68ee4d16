//! A fake session for the magics' tests.

use crate::{Call, Context, MagicError, MimeBundle};

/// Records the Rust it is asked to run and answers with `answer`; keeps an environment.
#[derive(Default)]
pub struct FakeSession {
    pub env: Vec<(String, String)>,
    pub ran: Vec<String>,
    pub answer: Option<MimeBundle>,
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
    fn result_part(&self, mime: &str, text: &str) -> String {
        format!("report({mime:?}, {text});")
    }
}

/// `%name args` (line magic) or, with a body, `%%name args` (cell magic) on line 1.
pub fn call(name: &str, args: &str, body: Option<&str>) -> Call {
    Call { name: name.into(), args: args.into(), body: body.map(Into::into), line: 1, assign_to: None }
}
