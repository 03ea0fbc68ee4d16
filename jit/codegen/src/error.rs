//! What codegen reports: [`CodegenError`] for the cell, and [`Unsupported`], a construct the
//! translation of a `#[vectorize]` function does not take, located in the function's text.

use proc_macro2::Span;
use syn::spanned::Spanned;

use crate::Position;

/// A problem with a `#[jit]` function found before rustc sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CodegenError {
    pub message: String,
    /// 1-based cell line and 1-based column.
    pub line: usize,
    pub column: usize,
    pub help: Option<String>,
}

impl CodegenError {
    pub(crate) fn at(span: Span, offset: Position, message: impl Into<String>) -> Self {
        let start = span.start();
        let column = if start.line == 1 { start.column + offset.column } else { start.column };
        CodegenError { message: message.into(), line: start.line + offset.line - 1, column: column + 1, help: None }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A construct that is not supported, and where (a span of the function's text).
#[derive(Debug)]
pub struct Unsupported {
    pub span: Span,
    pub message: String,
}

/// `what` (e.g. "a `for` loop") is not supported, at `node`.
pub(crate) fn unsupported(node: &impl Spanned, what: &str) -> Unsupported {
    Unsupported {
        span: node.span(),
        message: format!("{what} is not supported in a #[vectorize(target = \"cuda\")] function"),
    }
}
